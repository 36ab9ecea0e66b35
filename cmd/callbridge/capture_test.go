package main

import (
	"context"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/callbridge/callbridge/capture"
	"github.com/callbridge/callbridge/internal/fixtures"
	"github.com/callbridge/callbridge/internal/testenv"
)

// TestCaptureRecordsSession points `callbridge capture` at a replay server playing a real
// recording and checks that the capture it writes is in the fixtures' format: the banner, the
// login (with the secret masked), the resync lists and the switch's events, in order.
func TestCaptureRecordsSession(t *testing.T) {
	recs, err := capture.ReadFile(filepath.Join(fixtures.Dir(t, "asterisk-22"), "inbound-answered.ami.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	srv := capture.NewAMIServer([]capture.Script{{Records: recs}}, capture.ServerOptions{})
	if err := srv.Listen("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	out := filepath.Join(t.TempDir(), "session.ami.jsonl")
	ctx, cancel := context.WithTimeout(context.Background(), testenv.Patience)
	defer cancel()
	last := lastEvent(recs, "Event: ", "")
	if last == "" {
		t.Fatal("the recording has no event")
	}
	go stopWhenCaptured(cancel, srv.Played(0), out, last)
	if err := run(ctx, []string{"capture", "--pbx", "ami://cti:cti-secret@" + srv.Addr(), "--out", out}, io.Discard, io.Discard); err != nil {
		t.Fatal(err)
	}
	if ctx.Err() == context.DeadlineExceeded {
		t.Fatal("the capture never held the recording's last event")
	}
	got, err := capture.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) < 10 || got[0].Dir != capture.DirIn || !strings.HasPrefix(got[0].Raw, "Asterisk Call Manager/") {
		t.Fatalf("capture does not start with the banner: %+v", got[:min(3, len(got))])
	}
	var sawLogin, sawSecret, sawList, sawAgentConnect bool
	for _, r := range got {
		switch {
		case r.Dir == capture.DirOut && strings.HasPrefix(r.Raw, "Action: Login"):
			sawLogin = true
			sawSecret = strings.Contains(r.Raw, "cti-secret")
		case r.Dir == capture.DirIn && strings.HasPrefix(r.Raw, "Event: CoreShowChannelsComplete"):
			sawList = true
		case r.Dir == capture.DirIn && strings.HasPrefix(r.Raw, "Event: AgentConnect"):
			sawAgentConnect = true
		}
	}
	if !sawLogin || sawSecret {
		t.Errorf("login recorded %v, secret in clear %v", sawLogin, sawSecret)
	}
	if !sawList || !sawAgentConnect {
		t.Errorf("resync list recorded %v, switch events recorded %v", sawList, sawAgentConnect)
	}
	// The capture replays: it is a valid recording itself.
	p, _ := loadReplayProvisioning("")
	evs, err := Replay(testenv.Context(t), got, p, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) == 0 {
		t.Error("replaying the capture produced no events")
	}
}

// lastEvent returns the raw text of the recording's last frame received from the switch that
// starts with prefix and contains inside ("Event: " for Asterisk; a plain event's
// "Content-Type: text/event-plain\n" after its "Content-Length: " for FreeSWITCH).
func lastEvent(recs []capture.Record, prefix, inside string) string {
	for i := len(recs) - 1; i >= 0; i-- {
		if r := recs[i]; r.Dir == capture.DirIn && strings.HasPrefix(r.Raw, prefix) && strings.Contains(r.Raw, inside) {
			return recs[i].Raw
		}
	}
	return ""
}

// stopWhenCaptured calls stop once the replay server has played its script (played is
// closed) and the capture file at path holds the frame raw: the last frame the switch sent
// has been written, so nothing is cut off. It gives up after testenv.Patience, leaving the
// capture's own deadline to end it (and the test to say so).
func stopWhenCaptured(stop func(), played <-chan struct{}, path, raw string) {
	select {
	case <-played:
	case <-time.After(testenv.Patience):
		return
	}
	for deadline := time.Now().Add(testenv.Patience); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		// The file is read while it is written: a half-written last line is "not yet".
		recs, _ := capture.ReadFile(path)
		for _, r := range recs {
			if r.Dir == capture.DirIn && r.Raw == raw {
				stop()
				return
			}
		}
	}
}
