package main

import (
	"context"
	"io"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/callbridge/callbridge/asterisk/ami"
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
	go stopWhenCaptured(cancel, srv.Played(0), out, func(recs []capture.Record) bool {
		return amiListDone(recs, "BridgeList") && holds(recs, last) // the last resync action, the last event
	})
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

// holds reports whether recs has a frame received from the switch that is exactly raw.
func holds(recs []capture.Record, raw string) bool {
	return slices.ContainsFunc(recs, func(r capture.Record) bool { return r.Dir == capture.DirIn && r.Raw == raw })
}

// amiListDone reports whether recs holds the end of the event list that the capture's
// action (e.g. "BridgeList") asked for: the Complete event with that action's ActionID.
func amiListDone(recs []capture.Record, action string) bool {
	for _, r := range recs {
		if r.Dir == capture.DirOut && strings.HasPrefix(r.Raw, "Action: "+action+"\r\n") {
			id := "ActionID: " + ami.ParseMessage(r.Raw).ActionID() + "\r\n"
			return slices.ContainsFunc(recs, func(in capture.Record) bool {
				return in.Dir == capture.DirIn && strings.Contains(in.Raw, id) && strings.Contains(in.Raw, "EventList: Complete")
			})
		}
	}
	return false
}

// eslAPIDone reports whether recs holds the api command starting with cmd and a reply to
// every api command so far (FreeSWITCH answers them in order).
func eslAPIDone(recs []capture.Record, cmd string) bool {
	sent, answered, asked := 0, 0, false
	for _, r := range recs {
		switch {
		case r.Dir == capture.DirOut && strings.HasPrefix(r.Raw, "api "):
			sent++
			asked = asked || strings.HasPrefix(r.Raw, "api "+cmd)
		case r.Dir == capture.DirIn && strings.HasPrefix(r.Raw, "Content-Type: api/response\n"):
			answered++
		}
	}
	return asked && answered >= sent
}

// stopWhenCaptured calls stop once the replay server has played its script (played is
// closed) and the capture file at path satisfies done (read while it is written: a
// half-written last line is "not yet"): the capture's own resync has been answered and the
// last frame the switch sent has been written, so nothing is cut off. It gives up after
// testenv.Patience, leaving the capture's own deadline to end it (and the test to say so).
func stopWhenCaptured(stop func(), played <-chan struct{}, path string, done func([]capture.Record) bool) {
	select {
	case <-played:
	case <-time.After(testenv.Patience):
		return
	}
	for deadline := time.Now().Add(testenv.Patience); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if recs, _ := capture.ReadFile(path); done(recs) {
			stop()
			return
		}
	}
}
