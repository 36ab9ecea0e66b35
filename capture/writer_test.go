package capture_test

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/callbridge/callbridge/capture"
)

func TestWriterRoundTripsThroughRead(t *testing.T) {
	var buf bytes.Buffer
	w := capture.NewWriter(&buf, time.Now().Add(-1500*time.Millisecond))
	frames := []struct{ dir, raw string }{
		{capture.DirIn, "Asterisk Call Manager/11.0.0\r\n"},
		{capture.DirOut, "Action: Originate\r\nActionID: cb-1\r\nCallerID: \"Call: 1555\" <1555>\r\n\r\n"},
		{capture.DirIn, "Event: Hangup\r\nCause-txt: Normal & \"clear\"\t\u00e9\r\n\r\n"},
		{capture.DirEOF, ""},
	}
	for _, f := range frames {
		if err := w.Write(f.dir, f.raw); err != nil {
			t.Fatal(err)
		}
	}
	// Same JSON shape as the fixtures: keys in order, '<' and '&' not escaped.
	if line := strings.SplitN(buf.String(), "\n", 3)[1]; !strings.HasPrefix(line, `{"t_ms":15`) ||
		!strings.Contains(line, `"dir":"out","raw":"Action: Originate\r\n`) || !strings.Contains(line, `<1555>`) {
		t.Fatalf("line = %s", line)
	}
	recs, err := capture.Read(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != len(frames) {
		t.Fatalf("%d records", len(recs))
	}
	for i, f := range frames {
		if recs[i].Dir != f.dir || recs[i].Raw != f.raw {
			t.Errorf("record %d = %+v, want %s %q", i, recs[i], f.dir, f.raw)
		}
		if recs[i].TMs < 1500 || recs[i].TMs > 60_000 {
			t.Errorf("record %d t_ms = %d, want about 1500", i, recs[i].TMs)
		}
	}
}

func TestWriterConcurrentLinesStayWhole(t *testing.T) {
	var buf bytes.Buffer
	w := capture.NewWriter(&buf, time.Now())
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 100; i++ {
				raw := fmt.Sprintf("Event: G%d\r\nN: %d\r\n%s\r\n\r\n", g, i, strings.Repeat("x", 500))
				if err := w.Write(capture.DirIn, raw); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	recs, err := capture.Read(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 800 {
		t.Fatalf("%d records, want 800", len(recs))
	}
	next := map[string]int{}
	var last int64
	for _, r := range recs {
		var g string
		var n int
		if _, err := fmt.Sscanf(r.Raw, "Event: %s\r\nN: %d", &g, &n); err != nil {
			t.Fatalf("record %q: %v", truncate(r.Raw, 40), err)
		}
		if n != next[g] {
			t.Fatalf("%s: record %d after %d: lines reordered", g, n, next[g]-1)
		}
		next[g]++
		if r.TMs < last {
			t.Fatalf("t_ms went back from %d to %d", last, r.TMs)
		}
		last = r.TMs
	}
}

type failingWriter struct{ n int }

func (f *failingWriter) Write(p []byte) (int, error) {
	if f.n == 0 {
		return 0, errors.New("disk full")
	}
	f.n--
	return len(p), nil
}

func TestWriterErrors(t *testing.T) {
	w := capture.NewWriter(&failingWriter{n: 1}, time.Now())
	if err := w.Write("sideways", "x"); err == nil {
		t.Error("unknown direction accepted")
	}
	if err := w.Write(capture.DirIn, "a"); err != nil {
		t.Fatal(err)
	}
	w.Tap(capture.DirIn, "b")
	if err := w.Err(); err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Fatalf("Err = %v, want the write error", err)
	}
	if err := w.Write(capture.DirIn, "c"); err == nil {
		t.Fatal("Write after a failure succeeded")
	}
}
