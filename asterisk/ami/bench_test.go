package ami_test

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/callbridge/callbridge/asterisk/ami"
)

// BenchmarkReadMessage parses the whole received stream of blind-transfer.ami.jsonl (274
// frames, 266 events) from memory: framing plus ParseMessage, as the Conn's reader does.
func BenchmarkReadMessage(b *testing.B) {
	stream := []byte(strings.Join(inFrames(loadFixture(b, "blind-transfer.ami.jsonl")), ""))
	b.SetBytes(int64(len(stream)))
	b.ReportAllocs()
	events := 0
	for b.Loop() {
		r := ami.NewReader(bytes.NewReader(stream))
		if _, err := r.ReadBanner(); err != nil {
			b.Fatal(err)
		}
		for {
			m, err := r.ReadMessage()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
			if m.Event() != "" {
				events++
			}
		}
	}
	b.ReportMetric(float64(events)/b.Elapsed().Seconds(), "events/s")
}
