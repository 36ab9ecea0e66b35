package loadtest

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/callbridge/callbridge/internal/testenv"
)

// TestFleetOnRelay runs a few desktops in this process against the relay: they log in,
// connect, count their own pop with its latency, catch an event that is not theirs, and
// come back after the relay restarts.
func TestFleetOnRelay(t *testing.T) {
	r, err := StartRelay("127.0.0.1:0", []byte(`{"type":"snapshot","seq":0,"data":{}}`))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	agents := []Agent{{"a1", "101"}, {"a2", "102"}, {"a3", "103"}}
	f, err := NewFleet(FleetConfig{Mode: ModeRelay, URL: "http://" + r.Addr(), Source: "127.0.1.1", Agents: agents, Password: "x"})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if n, err := f.Login(context.Background()); n != 3 || err != nil {
		t.Fatalf("login: %d, %v", n, err)
	}
	if n := f.Connect(testenv.Patience); n != 3 {
		t.Fatalf("%d desktops up, want 3", n)
	}
	f.Measure(true)
	pop := `{"seq":7,"type":"call.delivered","time":"2026-01-01T00:00:00Z","tenant":"t","data":{"call_id":"c1","agent":"a1","device":"101","connections":[{"device":"101"}]}}`
	if err := r.Publish([]string{"a1"}, Restamp([]byte(pop), time.Now())); err != nil {
		t.Fatal(err)
	}
	notHers := `{"seq":8,"type":"agent.state_changed","time":"2026-01-01T00:00:00Z","tenant":"t","data":{"agent":"a1"}}`
	if err := r.Publish([]string{"a2"}, []byte(notHers)); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, "the pop and the stray event", func() bool {
		st := f.Stats()
		return st.WinPops == 1 && st.Wrong == 1
	})
	f.Measure(false)
	st := f.Stats()
	if len(st.PopLatUS) != 1 || st.PopLatUS[0] < 0 || st.Events != 2 {
		t.Errorf("stats: %+v", st)
	}
	if !strings.HasPrefix(st.WrongExamples[0], "a2: ") {
		t.Errorf("wrong examples: %q", st.WrongExamples)
	}
	if got := f.Seqs(0, 100); got["a1"] != (SeqCount{N: 1, Sum: 7}) || got["a2"] != (SeqCount{N: 1, Sum: 8}) || got["a3"].N != 0 {
		t.Errorf("seqs: %+v", got)
	}

	since := time.Now().UnixNano()
	if err := r.Restart(); err != nil {
		t.Fatal(err)
	}
	up, dropped, last := f.WaitUp(since, true, testenv.Patience)
	if up != 3 || dropped != 3 || last <= since {
		t.Errorf("after the restart: %d up, %d dropped, last up %d (restart at %d)", up, dropped, last, since)
	}
}

func TestRestamp(t *testing.T) {
	at := time.Date(2026, 12, 1, 10, 0, 0, 123456789, time.UTC)
	got := Restamp([]byte(`{"seq":1,"type":"call.delivered","time":"2026-01-01T00:00:00Z","data":{"time":"x"}}`), at)
	want := `{"seq":1,"type":"call.delivered","time":"2026-12-01T10:00:00.123456789Z","data":{"time":"x"}}`
	if string(got) != want {
		t.Errorf("got %s\nwant %s", got, want)
	}
}

func FuzzRestamp(f *testing.F) {
	f.Add([]byte(`{"seq":1,"time":"2026-01-01T00:00:00Z"}`))
	f.Add([]byte(`{"time":"`))
	f.Add([]byte(`no time`))
	at := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, b []byte) {
		out := Restamp(b, at)
		if !bytes.Contains(b, []byte(`"time":"`)) && !bytes.Equal(out, b) {
			t.Fatalf("changed a frame without a time: %q → %q", b, out)
		}
		var v map[string]any
		if json.Unmarshal(b, &v) == nil {
			if _, ok := v["time"].(string); ok && bytes.HasPrefix(b, []byte(`{"time":"`)) && json.Unmarshal(out, &v) != nil {
				t.Fatalf("a frame that starts with its time is no longer JSON: %q → %q", b, out)
			}
		}
	})
}

func TestRestampSkipsEscapes(t *testing.T) {
	at := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	got := Restamp([]byte(`{"time":"a\"b","x":1}`), at)
	if want := `{"time":"2026-12-01T10:00:00Z","x":1}`; string(got) != want {
		t.Errorf("got %s, want %s", got, want)
	}
}
