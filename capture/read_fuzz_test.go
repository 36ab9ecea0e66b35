package capture_test

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/callbridge/callbridge/capture"
)

// FuzzRead: the capture reader (what `callbridge replay FILE` parses from a user's file) never
// panics, reports a malformed line as an error, and what it accepts survives a write and a
// second read unchanged in its protocol fields.
func FuzzRead(f *testing.F) {
	for _, s := range []string{
		`{"t_ms":2,"dir":"in","raw":"Asterisk Call Manager/11.0.0\r\n"}`,
		"{\"t_ms\":12,\"dir\":\"out\",\"raw\":\"Action: Login\\r\\n\\r\\n\"}\n\n{\"t_ms\":14015,\"dir\":\"eof\",\"raw\":\"\"}\n",
		`{"t_ms":1,"sim":"caller-dials","detail":"x"}`,
		`{"t_ms":"x"}`,
		`not json`,
		"",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		recs, err := capture.Read(strings.NewReader(s))
		if err != nil {
			return
		}
		var buf bytes.Buffer
		w := capture.NewWriter(&buf, time.Unix(0, 0))
		for _, r := range recs {
			if r.Dir == "" || r.Dir == capture.DirREST {
				continue
			}
			if err := w.Write(r.Dir, r.Raw); err != nil {
				t.Fatalf("write %+v: %v", r, err)
			}
		}
		again, err := capture.Read(&buf)
		if err != nil {
			t.Fatalf("re-read: %v", err)
		}
		i := 0
		for _, r := range recs {
			if r.Dir == "" || r.Dir == capture.DirREST {
				continue
			}
			if i >= len(again) || again[i].Dir != r.Dir || again[i].Raw != r.Raw {
				t.Fatalf("record %d changed in a round trip: %+v", i, r)
			}
			i++
		}
	})
}
