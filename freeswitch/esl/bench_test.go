package esl_test

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/callbridge/callbridge/freeswitch/esl"
)

// benchStream reads the whole received stream of a recording and counts its events.
func benchStream(b *testing.B, name string) {
	stream := []byte(strings.Join(received(recording(b, name)), ""))
	b.SetBytes(int64(len(stream)))
	b.ReportAllocs()
	events := 0
	for b.Loop() {
		r := esl.NewReader(bytes.NewReader(stream))
		for {
			f, err := r.ReadFrame()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
			if f.IsEvent() {
				if _, err := f.Event(); err != nil {
					b.Fatal(err)
				}
				events++
			}
		}
	}
	b.ReportMetric(float64(events)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkReadPlainEvents parses the received stream of fs-blind-transfer (154 plain events
// of up to 14 KB, README table): framing plus ParsePlain, as the Conn's reader does.
func BenchmarkReadPlainEvents(b *testing.B) { benchStream(b, "fs-blind-transfer") }

// BenchmarkReadJSONEvents parses fs-inbound-answered-json (113 JSON events).
func BenchmarkReadJSONEvents(b *testing.B) { benchStream(b, "fs-inbound-answered-json") }
