package ami_test

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/callbridge/callbridge/asterisk/ami"
	"github.com/callbridge/callbridge/internal/fixtures"
)

// seedFrames returns every frame ("in" and "out") of every recording, plus a few odd ones.
func seedFrames(f *testing.F) []string {
	var out []string
	for _, path := range fixtures.Files(f, "asterisk-22", "*.ami.jsonl") {
		for _, r := range loadFixture(f, path) {
			if r.Raw != "" {
				out = append(out, r.Raw)
			}
		}
	}
	return append(out,
		"Response: Follows\r\nPrivilege: Command\r\nActionID: 1\r\nout\n\n--END COMMAND--\r\n\r\n",
		"Event: X\nKey:\n:\n\n",
	)
}

func FuzzParseMessage(f *testing.F) {
	for _, s := range seedFrames(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, frame string) {
		m := ami.ParseMessage(frame)
		if n := strings.Count(frame, "\n") + 1; len(m.Fields) > n {
			t.Fatalf("%d fields from %d lines", len(m.Fields), n)
		}
		for _, fl := range m.Fields {
			if strings.ContainsAny(fl.Key, "\n:") || strings.Contains(fl.Value, "\n") {
				t.Fatalf("field %q spans lines or has ':' in its key", fl)
			}
		}
		// A frame built from simple fields parses back to the same fields.
		if !strings.Contains(frame, "\r") && !strings.Contains(frame, endCommandMarker) {
			again := ami.ParseMessage(m.String())
			if len(again.Fields) != len(m.Fields) {
				t.Fatalf("re-parse: %d fields, want %d", len(again.Fields), len(m.Fields))
			}
		}
		_ = m.ChanVariables("")
		_ = m.ChanVariables("Dest")
		_ = (ami.Response{Message: m}).Err()
	})
}

const endCommandMarker = "--END COMMAND--"

// FuzzReader feeds arbitrary bytes to the framing reader: it must end (EOF,
// ErrUnexpectedEOF), return frames that end in an empty line, and never panic.
func FuzzReader(f *testing.F) {
	for _, path := range fixtures.Files(f, "asterisk-22", "*.ami.jsonl") {
		frames := inFrames(loadFixture(f, path))
		f.Add([]byte(strings.Join(frames[:min(6, len(frames))], ""))) // banner and first frames
	}
	for _, s := range seedFrames(f) {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r := ami.NewReader(bytes.NewReader(data))
		if _, err := r.ReadBanner(); err != nil {
			r = ami.NewReader(bytes.NewReader(data)) // not a session start: frames only
		}
		total := 0
		for i := 0; ; i++ {
			raw, err := r.ReadFrame()
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				break
			}
			if errors.Is(err, ami.ErrFrameTooLarge) {
				continue
			}
			if err != nil {
				t.Fatalf("unexpected error %v", err)
			}
			if !strings.HasSuffix(raw, "\n\n") && !strings.HasSuffix(raw, "\n\r\n") {
				t.Fatalf("frame %q does not end in an empty line", raw)
			}
			total += len(raw)
			if total > len(data) || i > len(data) {
				t.Fatalf("read %d bytes in %d frames from %d bytes", total, i, len(data))
			}
		}
	})
}
