package main

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"

	"github.com/callbridge/callbridge"
	"github.com/callbridge/callbridge/capture"
	"github.com/callbridge/callbridge/freeswitch"
	"github.com/callbridge/callbridge/internal/fixtures"
	"github.com/callbridge/callbridge/internal/testenv"
	"github.com/callbridge/callbridge/pbxtest"
)

// replayESLFixture replays shared/fixtures/freeswitch-1.10/<name>.esl.jsonl the way
// `callbridge replay` does (embedded examples/freeswitch-1.10.yaml).
func replayESLFixture(t *testing.T, name string) []callbridge.Event {
	t.Helper()
	path := filepath.Join(fixtures.Dir(t, "freeswitch-1.10"), name+".esl.jsonl")
	recs, err := capture.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	replay, p, err := replayerFor(path, "")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), testenv.Patience)
	defer cancel()
	evs, err := replay(ctx, recs, p, 0, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("replay %s: %v", name, err)
	}
	return evs
}

// TestReplayESLRecordings replays every FreeSWITCH recording of a real FreeSWITCH 1.10 through
// the ESL replay server, the real event socket client, the FreeSWITCH driver and the engine,
// and checks the CSTA story the fixtures' README describes: the same stories as the Asterisk
// recordings where the scenario is the same.
func TestReplayESLRecordings(t *testing.T) {
	billing := map[string]string{"ivr_reason": "billing", "ivr_account": "12345", "ivr_lang": "en"}
	cases := []struct {
		name  string
		steps []step
		open  int
	}{
		{name: "fs-inbound-answered", steps: []step{
			{Type: callbridge.EventCallQueued, Tenant: "acme", Device: "support@default", Queue: "support@default", ANI: "+15551230001", DNIS: "18005550100", Data: billing, Call: "A"},
			{Type: callbridge.EventCallDelivered, Tenant: "acme", Device: "1001", Agent: "1001", ANI: "+15551230001", DNIS: "18005550100", Queue: "support@default", Data: billing, Call: "A"},
			// bridge-agent-start: the queue hands the call over.
			{Type: callbridge.EventCallConnectionCleared, Device: "support@default", Cause: callbridge.CauseDistributed, Call: "A"},
			{Type: callbridge.EventCallEstablished, Device: "1001", Agent: "1001", Call: "A"},
			{Type: callbridge.EventCallConnectionCleared, Device: "+15551230001", Call: "A"},
			{Type: callbridge.EventCallCleared, Cause: callbridge.CauseNormal, Call: "A"},
		}},
		{name: "fs-inbound-answered-json", steps: []step{
			{Type: callbridge.EventCallDelivered, Tenant: "acme", Device: "1001", Agent: "1001", ANI: "+15551230001", DNIS: "18005550100", Queue: "support@default", Data: billing, Call: "A"},
			{Type: callbridge.EventCallEstablished, Device: "1001", Call: "A"},
			{Type: callbridge.EventCallCleared, Call: "A"},
		}},
		{name: "fs-inbound-abandon", steps: []step{
			{Type: callbridge.EventCallQueued, Tenant: "acme", Device: "support@default", Queue: "support@default", ANI: "+15551230003", Data: map[string]string{"ivr_reason": "sales", "ivr_account": "67890"}, Call: "A"},
			{Type: callbridge.EventCallConnectionCleared, Device: "support@default", Cause: callbridge.CauseAbandoned, Call: "A"},
			{Type: callbridge.EventCallCleared, Tenant: "acme", Cause: callbridge.CauseAbandoned, ANI: "+15551230003", Call: "A"},
		}},
		{name: "fs-blind-transfer", steps: []step{
			{Type: callbridge.EventCallDelivered, Tenant: "acme", Device: "1001", ANI: "+15551230004", Call: "A"},
			{Type: callbridge.EventCallEstablished, Device: "1001", Call: "A"},
			{Type: callbridge.EventCallTransferred, From: "1001", To: "1002", Call: "A"},
			// DNIS stays the DID (Caller-RDNIS after the transfer); the IVR data reaches 1002.
			{Type: callbridge.EventCallDelivered, Device: "1002", Agent: "1002", ANI: "+15551230004", DNIS: "18005550100", Data: map[string]string{"ivr_account": "24680", "ivr_reason": "support"}, Call: "A"},
			{Type: callbridge.EventCallEstablished, Device: "1002", Call: "A"},
			{Type: callbridge.EventCallCleared, Call: "A"},
		}},
		{name: "fs-hold", steps: []step{
			{Type: callbridge.EventCallEstablished, Tenant: "acme", Device: "1001", ANI: "+15551230006", Call: "A"},
			// uuid_hold on the caller leg: the caller's device holds.
			{Type: callbridge.EventCallHeld, Device: "+15551230006", Call: "A"},
			{Type: callbridge.EventCallRetrieved, Device: "+15551230006", Call: "A"},
			// uuid_hold on the agent leg: the agent holds the customer.
			{Type: callbridge.EventCallHeld, Device: "1001", Agent: "1001", Call: "A"},
			{Type: callbridge.EventCallRetrieved, Device: "1001", Agent: "1001", Call: "A"},
			{Type: callbridge.EventCallCleared, Call: "A"},
		}},
		{name: "fs-click-to-call", steps: []step{
			{Type: callbridge.EventCallOriginated, Tenant: "acme", Device: "1003", Agent: "1003", DNIS: "15557654321", Call: "A"},
			{Type: callbridge.EventCallEstablished, Device: "1003", Call: "A"},
			{Type: callbridge.EventCallDelivered, Device: "15557654321", Call: "A"},
			{Type: callbridge.EventCallEstablished, Device: "15557654321", Call: "A"},
			{Type: callbridge.EventCallCleared, Call: "A"},
		}},
		// fs-agent-state: the resync's "queue list agents" is answered with the recording's
		// first listing (1001 Logged Out); then the status and state changes of 1001.
		{name: "fs-agent-state", steps: []step{
			{Type: callbridge.EventAgentStateChanged, Tenant: "acme", Agent: "1002", State: callbridge.AgentReady},
			{Type: callbridge.EventAgentStateChanged, Tenant: "acme", Agent: "1001", State: callbridge.AgentNotReady, Reason: "break"},
			{Type: callbridge.EventAgentStateChanged, Tenant: "acme", Agent: "1001", State: callbridge.AgentReady},
			{Type: callbridge.EventAgentStateChanged, Tenant: "acme", Agent: "1001", State: callbridge.AgentNotReady, Reason: "idle"},
			{Type: callbridge.EventAgentStateChanged, Tenant: "acme", Agent: "1001", State: callbridge.AgentReady},
			{Type: callbridge.EventAgentStateChanged, Tenant: "acme", Agent: "1001", State: callbridge.AgentLoggedOut},
			{Type: callbridge.EventAgentStateChanged, Tenant: "acme", Agent: "1001", State: callbridge.AgentReady},
		}},
		// fs-resync: calls A and B are answered by 1001 and 1002, C waits in the queue; 1003
		// and 1004 are On Break. The snapshot brings all of it into the model.
		{name: "fs-resync", open: 3, steps: []step{
			{Type: callbridge.EventCallEstablished, Tenant: "acme", Device: "1001", Agent: "1001", ANI: "+15551230007", DNIS: "18005550100", Queue: "support@default", Data: map[string]string{"ivr_reason": "billing"}, Call: "A"},
			{Type: callbridge.EventCallEstablished, Tenant: "acme", Device: "1002", Agent: "1002", ANI: "+15551230008", Call: "B"},
			{Type: callbridge.EventCallQueued, Tenant: "acme", Device: "support@default", Queue: "support@default", ANI: "+15551230009", Call: "C"},
			{Type: callbridge.EventAgentStateChanged, Agent: "1001", State: callbridge.AgentBusy},
			{Type: callbridge.EventAgentStateChanged, Agent: "1002", State: callbridge.AgentBusy},
			{Type: callbridge.EventAgentStateChanged, Agent: "1003", State: callbridge.AgentNotReady, Reason: "break"},
			{Type: callbridge.EventAgentStateChanged, Agent: "1004", State: callbridge.AgentNotReady, Reason: "break"},
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			evs := replayESLFixture(t, tc.name)
			pbxtest.ExpectSequence(t, evs, tc.steps)
			pbxtest.CheckNothingStuck(t, evs, tc.open)
		})
	}
}

// TestReplayESLBadAuth: fs-bad-auth ends the replay with an authentication error and no event.
func TestReplayESLBadAuth(t *testing.T) {
	path := filepath.Join(fixtures.Dir(t, "freeswitch-1.10"), "fs-bad-auth.esl.jsonl")
	recs, err := capture.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	replay, p, err := replayerFor(path, "")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), testenv.Patience)
	defer cancel()
	evs, err := replay(ctx, recs, p, 0, slog.New(slog.DiscardHandler))
	if err == nil || !strings.Contains(strings.ToLower(err.Error()), "auth") {
		t.Errorf("err = %v, want an authentication error", err)
	}
	if len(evs) != 0 {
		t.Errorf("%d events, want none", len(evs))
	}
}

// TestESLCaptureArgs: capture goes to the ESL recorder for an esl:// switch.
func TestESLCaptureArgs(t *testing.T) {
	for args, want := range map[string]bool{
		"--pbx esl://:ClueCon@127.0.0.1:8021 --out x.esl.jsonl": true,
		"-pbx=esl://:x@h --out y":                               true,
		"--pbx ami://u:s@h --out z":                             false,
		"--out z":                                               false,
	} {
		if got := isESLCapture(strings.Fields(args)); got != want {
			t.Errorf("isESLCapture(%q) = %v", args, got)
		}
	}
	if !isESLRecording("a/fs-hold.esl.jsonl") || isESLRecording("hold.ami.jsonl") {
		t.Error("isESLRecording")
	}
}

// TestCaptureESL records a live event socket session (here the replay server playing
// fs-inbound-answered) in the capture format: the password is redacted, the resync commands
// and every event are there, and the file replays to the same story.
func TestCaptureESL(t *testing.T) {
	recorded, err := capture.ReadFile(filepath.Join(fixtures.Dir(t, "freeswitch-1.10"), "fs-inbound-answered.esl.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	srv := capture.NewESLServer([]capture.Script{{Records: recorded}}, capture.ServerOptions{})
	if err := srv.Listen("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	out := filepath.Join(t.TempDir(), "session.esl.jsonl")
	var stdout, stderr strings.Builder
	ctx, cancel := context.WithTimeout(context.Background(), testenv.Patience)
	defer cancel()
	last := lastEvent(recorded, "Content-Length: ", "Content-Type: text/event-plain\n")
	if last == "" {
		t.Fatal("the recording has no event")
	}
	go stopWhenCaptured(cancel, srv.Played(0), out, func(recs []capture.Record) bool {
		return eslAPIDone(recs, "callcenter_config queue list members") && holds(recs, last) // the last resync command, the last event
	})
	err = run(ctx, []string{"capture", "--pbx", "esl://:s3cret-pw@" + srv.Addr() + "?queues=support@default", "--out", out}, &stdout, &stderr)
	if err != nil {
		t.Fatalf("capture: %v\n%s", err, stderr.String())
	}
	if ctx.Err() == context.DeadlineExceeded {
		t.Fatal("the capture never held the recording's last event")
	}
	recs, err := capture.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var outs []string
	events := 0
	for _, r := range recs {
		switch {
		case r.Dir == capture.DirOut:
			outs = append(outs, strings.TrimSuffix(r.Raw, "\n\n"))
		case r.Dir == capture.DirIn && strings.Contains(r.Raw, "Content-Type: text/event-plain"):
			events++
		}
		if strings.Contains(r.Raw, "s3cret-pw") {
			t.Fatalf("the password is in the capture: %q", r.Raw)
		}
	}
	wantOuts := []string{"auth ********", "event plain ALL", "api show channels as json", "api show calls as json",
		"api callcenter_config queue list", "api callcenter_config queue list agents support@default",
		"api callcenter_config queue list members support@default", "exit"}
	if strings.Join(outs, "|") != strings.Join(wantOuts, "|") {
		t.Fatalf("commands %q, want %q", outs, wantOuts)
	}
	if events != 113 || recs[len(recs)-1].Dir != capture.DirEOF {
		t.Fatalf("%d events (want 113), last record %q", events, recs[len(recs)-1].Dir)
	}
	replay, p, err := replayerFor(out, "")
	if err != nil {
		t.Fatal(err)
	}
	evs, err := replay(context.Background(), recs, p, 0, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	pbxtest.ExpectSequence(t, evs, []step{
		{Type: callbridge.EventCallDelivered, Tenant: "acme", Device: "1001", ANI: "+15551230001", Call: "A"},
		{Type: callbridge.EventCallCleared, Call: "A"},
	})
}

// TestServeESLDriver: `serve --pbx esl://…` selects the FreeSWITCH driver; a bad URL is an
// error naming the flag.
func TestServeESLDriver(t *testing.T) {
	m := NewMain(io.Discard, io.Discard)
	m.Logger = slog.New(slog.DiscardHandler)
	m.PBX = "esl://:ClueCon@127.0.0.1:8021"
	dir := callbridge.Directory{Tenants: []callbridge.TenantConfig{{ID: "acme", Queues: []callbridge.QueueConfig{{Name: "support@default"}}}}}
	drv, err := m.driver(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := drv.(*freeswitch.Driver); !ok {
		t.Fatalf("driver %T, want *freeswitch.Driver", drv)
	}
	if !drv.Capabilities()[callbridge.SwitchHoldCall] {
		t.Error("FreeSWITCH driver cannot hold")
	}
	m.PBX = "esl://127.0.0.1:8021"
	if _, err := m.driver(dir); err == nil || !strings.Contains(err.Error(), "--pbx") {
		t.Errorf("URL without password: %v", err)
	}
}
