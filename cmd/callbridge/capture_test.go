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
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	go func() {
		<-srv.Played(0)
		time.Sleep(300 * time.Millisecond) // let the last frames reach the file
		cancel()
	}()
	if err := run(ctx, []string{"capture", "--pbx", "ami://cti:cti-secret@" + srv.Addr(), "--out", out}, io.Discard, io.Discard); err != nil {
		t.Fatal(err)
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
	rctx, rcancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer rcancel()
	evs, err := Replay(rctx, got, p, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) == 0 {
		t.Error("replaying the capture produced no events")
	}
}
