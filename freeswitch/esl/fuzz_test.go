package esl_test

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/callbridge/callbridge/freeswitch/esl"
)

// seedFrames returns every frame received in every recording, plus a few odd ones.
func seedFrames(f *testing.F) []string {
	var out []string
	for _, path := range eslRecordings(f) {
		out = append(out, received(readAll(f, path))...)
	}
	return append(out,
		"Content-Type: api/response\nContent-Length: 9\n\nAvailable",
		"Content-Length: 3\nContent-Type: text/event-plain\n\nX\n\n",
		"Content-Type: command/reply\nReply-Text: %ZZ%4\n\n",
		"Content-Length: 99999999999999999999\n\n",
	)
}

// FuzzReader feeds arbitrary bytes to the framing reader: it must end (EOF,
// ErrUnexpectedEOF, ErrMalformedFrame), never panic, and never return more bytes than it
// read.
func FuzzReader(f *testing.F) {
	frames := seedFrames(f)
	for i := 0; i+3 <= len(frames); i += 37 {
		f.Add([]byte(strings.Join(frames[i:i+3], "")))
	}
	for _, s := range frames[:min(len(frames), 200)] {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r := esl.NewReader(bytes.NewReader(data))
		total := 0
		for i := 0; ; i++ {
			fr, err := r.ReadFrame()
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, esl.ErrMalformedFrame) {
				break
			}
			if errors.Is(err, esl.ErrFrameTooLarge) {
				continue
			}
			if err != nil {
				t.Fatalf("unexpected error %v", err)
			}
			total += len(fr.Raw)
			if total > len(data) || i > len(data) {
				t.Fatalf("read %d bytes in %d frames from %d bytes", total, i, len(data))
			}
			if fr.IsEvent() {
				_, _ = fr.Event()
			}
			_ = (esl.Reply{Frame: fr}).Err()
		}
	})
}

// FuzzParsePlain: any body parses or fails cleanly; what parses re-encodes to a body that
// parses to the same headers.
func FuzzParsePlain(f *testing.F) {
	for _, s := range seedFrames(f) {
		if fr, err := esl.ParseFrame(s); err == nil && fr.ContentType() == esl.TypeEventPlain {
			f.Add(fr.Body)
		}
	}
	f.Add("Event-Name: X\nA: %2\nB:\n:\n\nbody")
	f.Fuzz(func(t *testing.T, body string) {
		e, err := esl.ParsePlain(body)
		if err != nil {
			return
		}
		again, err := esl.ParsePlain(e.EncodePlain())
		if err != nil {
			t.Fatalf("re-parse: %v", err)
		}
		for _, h := range e.Headers {
			if h.Name == "Content-Length" || strings.ContainsAny(h.Name, "\n") {
				continue
			}
			if _, ok := again.Lookup(h.Name); !ok {
				t.Fatalf("header %q lost in re-encoding", h.Name)
			}
		}
		_ = e.Name()
		_ = e.Time()
		_ = esl.ArrayValues(e.Get("variable_DP_MATCH"))
	})
}

// FuzzParseJSON: any body parses or fails cleanly, never panics.
func FuzzParseJSON(f *testing.F) {
	for _, s := range seedFrames(f) {
		if fr, err := esl.ParseFrame(s); err == nil && fr.ContentType() == esl.TypeEventJSON {
			f.Add(fr.Body)
		}
	}
	f.Add(`{"a":[1,{"b":2}],"_body":"x","c":null}`)
	f.Fuzz(func(t *testing.T, body string) {
		e, err := esl.ParseJSON([]byte(body))
		if err != nil {
			return
		}
		if _, err := esl.ParseJSON([]byte(e.EncodeJSON())); err != nil {
			t.Fatalf("re-parse of %q: %v", e.EncodeJSON(), err)
		}
	})
}
