package main

import (
	"context"
	"encoding/json"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"

	"github.com/callbridge/callbridge"
	"github.com/callbridge/callbridge/capture"
	"github.com/callbridge/callbridge/internal/fixtures"
	"github.com/callbridge/callbridge/internal/testenv"
	"github.com/callbridge/callbridge/pbxtest"
)

// step is one expected domain event. Empty fields are not checked. Data lists attached-data
// values that must be present.
type step struct {
	Type   callbridge.EventType
	Tenant callbridge.TenantID
	Device callbridge.DeviceID
	Agent  callbridge.AgentID
	Queue  callbridge.QueueName
	ANI    string
	DNIS   string
	Cause  callbridge.Cause
	Data   map[string]string
	State  callbridge.AgentState
	Reason string
	// Call names the conversation ("A", "B", …): steps with the same name must have the same
	// call_id, different names different ones.
	Call string
	// To / From check call.transferred; DivertedTo call.diverted.
	From, To   callbridge.DeviceID
	DivertedTo callbridge.DeviceID
}

func (s step) String() string {
	b, _ := json.Marshal(s)
	return string(b)
}

// CallName is the Call name (pbxtest.Expectation).
func (s step) CallName() string { return s.Call }

// Matches reports whether ev satisfies s (ignoring the Call name).
func (s step) Matches(ev callbridge.Event) bool {
	if ev.Type != s.Type || (s.Tenant != "" && ev.Tenant != s.Tenant) {
		return false
	}
	switch d := ev.Data.(type) {
	case *callbridge.CallEvent:
		if s.Device != "" && d.Device != s.Device || s.Agent != "" && d.Agent != s.Agent ||
			s.Queue != "" && d.Queue != s.Queue || s.ANI != "" && d.ANI != s.ANI ||
			s.DNIS != "" && d.DNIS != s.DNIS || s.Cause != "" && d.Cause != s.Cause ||
			s.From != "" && d.TransferringDevice != s.From || s.To != "" && d.TransferredTo != s.To ||
			s.DivertedTo != "" && d.DivertedTo != s.DivertedTo {
			return false
		}
		for k, v := range s.Data {
			if d.AttachedData[k] != v {
				return false
			}
		}
	case *callbridge.Agent:
		if s.Agent != "" && d.ID != s.Agent || s.State != "" && d.State != s.State ||
			s.Reason != "" && d.Reason != s.Reason {
			return false
		}
	default:
		return false
	}
	return true
}

func replayFixture(t *testing.T, name string) []callbridge.Event {
	t.Helper()
	recs, err := capture.ReadFile(filepath.Join(fixtures.Dir(t, "asterisk-22"), name+".ami.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	p, err := loadReplayProvisioning("")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), testenv.Patience)
	defer cancel()
	evs, err := Replay(ctx, recs, p, 0, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("replay %s: %v", name, err)
	}
	return evs
}

var (
	inboundData = map[string]string{"IVR_REASON": "billing", "IVR_ACCOUNT": "12345", "IVR_LANG": "en"}
)

// TestReplayRecordings replays every AMI recording of a real Asterisk 22 through the replay
// server, the real AMI socket client, the Asterisk driver and the engine, and checks the CSTA
// story the fixtures' README describes.
func TestReplayRecordings(t *testing.T) {
	cases := []struct {
		name  string
		steps []step
		open  int // calls still up at the end of the recording
	}{
		{name: "inbound-answered", steps: []step{
			// The call waits at the queue's device (CSTA queued connection) ...
			{Type: callbridge.EventCallQueued, Tenant: "acme", Device: "acme-support", Queue: "acme-support", Call: "A"},
			{Type: callbridge.EventCallDelivered, Tenant: "acme", Device: "1001", Agent: "1001", ANI: "+15551230001", DNIS: "18005550100", Queue: "acme-support", Data: inboundData, Call: "A"},
			// ... until the queue hands it over (QueueCallerLeave before AgentConnect).
			{Type: callbridge.EventCallConnectionCleared, Device: "acme-support", Cause: callbridge.CauseDistributed, Call: "A"},
			{Type: callbridge.EventCallEstablished, Device: "1001", Agent: "1001", Call: "A"},
			{Type: callbridge.EventCallCleared, Call: "A"},
		}},
		{name: "inbound-agent-hangup", steps: []step{
			{Type: callbridge.EventCallQueued, Tenant: "globex", Device: "globex-sales", Queue: "globex-sales", Call: "A"},
			{Type: callbridge.EventCallDelivered, Tenant: "globex", Device: "2001", Agent: "2001", ANI: "+15551230002", DNIS: "18005550200", Data: map[string]string{"IVR_REASON": "sales", "IVR_ACCOUNT": "67890"}, Call: "A"},
			{Type: callbridge.EventCallEstablished, Device: "2001", Call: "A"},
			{Type: callbridge.EventCallConnectionCleared, Device: "2001", Call: "A"},
			{Type: callbridge.EventCallCleared, Call: "A"},
		}},
		{name: "inbound-abandon", steps: []step{
			{Type: callbridge.EventCallQueued, Tenant: "globex", Device: "globex-sales", Queue: "globex-sales", Call: "A"},
			{Type: callbridge.EventCallConnectionCleared, Device: "globex-sales", Cause: callbridge.CauseAbandoned, Call: "A"},
			{Type: callbridge.EventCallCleared, Tenant: "globex", Cause: callbridge.CauseAbandoned, ANI: "+15551230003", Call: "A"},
		}},
		{name: "blind-transfer", steps: []step{
			{Type: callbridge.EventCallDelivered, Tenant: "acme", Device: "1001", ANI: "+15551230004", Call: "A"},
			{Type: callbridge.EventCallEstablished, Device: "1001", Call: "A"},
			{Type: callbridge.EventCallTransferred, From: "1001", Call: "A"},
			{Type: callbridge.EventCallDelivered, Device: "1002", Agent: "1002", ANI: "+15551230004", Data: map[string]string{"IVR_ACCOUNT": "24680", "IVR_REASON": "billing"}, Call: "A"},
			{Type: callbridge.EventCallEstablished, Device: "1002", Call: "A"},
			{Type: callbridge.EventCallCleared, Call: "A"},
		}},
		{name: "click-to-call", steps: []step{
			{Type: callbridge.EventCallOriginated, Tenant: "acme", Device: "1003", Call: "A"},
			{Type: callbridge.EventCallEstablished, Device: "1003", Call: "A"},
			{Type: callbridge.EventCallEstablished, Device: "15557654321", Call: "A"},
			{Type: callbridge.EventCallCleared, Call: "A"},
		}},
		{name: "click-to-call-busy", steps: []step{
			{Type: callbridge.EventCallOriginated, Tenant: "acme", Device: "1003", Call: "A"},
			{Type: callbridge.EventCallEstablished, Device: "1003", Call: "A"},
			{Type: callbridge.EventCallFailed, Cause: callbridge.CauseBusy, Call: "A"},
			{Type: callbridge.EventCallCleared, Call: "A"},
		}},
		// 1001's phone answers the INVITE with 480 (AgentRingNoAnswer RingTime 0): the call is
		// diverted back to the queue, which rings 1002 at once.
		{name: "agent-unreachable", steps: []step{
			{Type: callbridge.EventCallQueued, Tenant: "acme", Device: "acme-support", Call: "A"},
			{Type: callbridge.EventCallDelivered, Tenant: "acme", Device: "1001", ANI: "+15551230024", Call: "A"},
			{Type: callbridge.EventCallDiverted, Device: "1001", Agent: "1001", DivertedTo: "acme-support", Cause: callbridge.CauseNoAnswer, Call: "A"},
			{Type: callbridge.EventCallDelivered, Device: "1002", Data: map[string]string{"IVR_REASON": "support", "IVR_ACCOUNT": "99001"}, Call: "A"},
			{Type: callbridge.EventCallEstablished, Device: "1002", Call: "A"},
			{Type: callbridge.EventCallCleared, Call: "A"},
		}},
		{name: "attended-transfer-b", steps: []step{
			{Type: callbridge.EventCallDelivered, Tenant: "acme", Device: "1003", ANI: "+15551230021", Call: "A"},
			{Type: callbridge.EventCallEstablished, Device: "1003", Call: "A"},
			{Type: callbridge.EventCallHeld, Device: "1003", Call: "A"},
			{Type: callbridge.EventCallDelivered, Device: "1004", Data: map[string]string{"IVR_ACCOUNT": "11223"}, Call: "B"},
			{Type: callbridge.EventCallEstablished, Device: "1004", Call: "B"},
			{Type: callbridge.EventCallTransferred, From: "1003", To: "1004", Data: map[string]string{"IVR_ACCOUNT": "11223", "IVR_REASON": "billing"}, Call: "A"},
			{Type: callbridge.EventCallCleared, Cause: callbridge.CauseTransferred, Call: "B"},
			{Type: callbridge.EventCallCleared, Call: "A"},
		}},
		{name: "conference-threeway", steps: []step{
			{Type: callbridge.EventCallEstablished, Tenant: "acme", Device: "1001", ANI: "+15551230023", Call: "A"},
			{Type: callbridge.EventCallHeld, Device: "1001", Call: "A"},
			{Type: callbridge.EventCallEstablished, Device: "1002", Call: "B"},
			{Type: callbridge.EventCallConferenced, Call: "A"},
			{Type: callbridge.EventCallConnectionCleared, Device: "1001", Call: "A"},
			{Type: callbridge.EventCallCleared, Call: "A"},
		}},
		{name: "hold-retrieve-b", steps: []step{
			{Type: callbridge.EventCallEstablished, Tenant: "acme", Device: "1002", ANI: "+15551230022", Call: "A"},
			{Type: callbridge.EventCallHeld, Device: "1002", Call: "A"},
			{Type: callbridge.EventCallRetrieved, Device: "1002", Call: "A"},
			{Type: callbridge.EventCallHeld, Device: "1002", Call: "A"},
			{Type: callbridge.EventCallRetrieved, Device: "1002", Call: "A"},
			{Type: callbridge.EventCallCleared, Call: "A"},
		}},
		{name: "telset-pause", steps: []step{
			{Type: callbridge.EventAgentStateChanged, Tenant: "acme", Agent: "1002", State: callbridge.AgentNotReady, Reason: "lunch"},
			{Type: callbridge.EventAgentStateChanged, Tenant: "acme", Agent: "1002", State: callbridge.AgentReady},
		}},
		{name: "agent-state", steps: []step{
			{Type: callbridge.EventAgentStateChanged, Tenant: "acme", Agent: "1010", State: callbridge.AgentReady},
			{Type: callbridge.EventAgentStateChanged, Tenant: "acme", Agent: "1010", State: callbridge.AgentNotReady, Reason: "lunch"},
			{Type: callbridge.EventAgentStateChanged, Tenant: "acme", Agent: "1010", State: callbridge.AgentReady},
			{Type: callbridge.EventAgentStateChanged, Tenant: "acme", Agent: "1010", State: callbridge.AgentLoggedOut},
		}},
		// The routing app dials 1007, whose dial times out (cause 19, no DialEnd), then 1006:
		// the call is diverted from 1007 to 1006.
		{name: "ari-route-noanswer", steps: []step{
			{Type: callbridge.EventCallDelivered, Tenant: "acme", Device: "1007", Agent: "1007", ANI: "+15551230031", Call: "A"},
			{Type: callbridge.EventCallFailed, Device: "1007", Cause: callbridge.CauseNoAnswer, Call: "A"},
			{Type: callbridge.EventCallDiverted, Device: "1007", Agent: "1007", DivertedTo: "1006", Cause: callbridge.CauseNoAnswer, Call: "A"},
			{Type: callbridge.EventCallDelivered, Device: "1006", Agent: "1006", Call: "A"},
			{Type: callbridge.EventCallEstablished, Device: "1006", Call: "A"},
			{Type: callbridge.EventCallCleared, Call: "A"},
		}},
		{name: "ari-stasis-call", steps: []step{
			{Type: callbridge.EventCallDelivered, Tenant: "acme", Device: "1005", ANI: "+15551230011", Call: "A"},
			{Type: callbridge.EventCallEstablished, Device: "1005", Call: "A"},
			{Type: callbridge.EventCallCleared, Call: "A"},
		}},
		// resync: three calls are up on the switch when callbridge connects; the snapshot
		// must bring them into the model (answered calls to their agents' desktops).
		{name: "resync", open: 3, steps: []step{
			{Type: callbridge.EventCallEstablished, Tenant: "acme", Device: "1001", ANI: "+15551230007"},
			{Type: callbridge.EventCallEstablished, Tenant: "globex", Device: "2001", ANI: "+15551230008"},
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			evs := replayFixture(t, tc.name)
			pbxtest.ExpectSequence(t, evs, tc.steps)
			pbxtest.CheckNothingStuck(t, evs, tc.open)
		})
	}
}

// TestReplayBadLogin: a recording of a refused login ends the replay with an error, and no
// event is produced.
func TestReplayBadLogin(t *testing.T) {
	for _, name := range []string{"bad-login", "bad-login-unknown-user"} {
		recs, err := capture.ReadFile(filepath.Join(fixtures.Dir(t, "asterisk-22"), name+".ami.jsonl"))
		if err != nil {
			t.Fatal(err)
		}
		p, _ := loadReplayProvisioning("")
		ctx, cancel := context.WithTimeout(context.Background(), testenv.Patience)
		evs, err := Replay(ctx, recs, p, 0, slog.New(slog.DiscardHandler))
		cancel()
		if err == nil || !strings.Contains(strings.ToLower(err.Error()), "auth") {
			t.Errorf("%s: err = %v, want an authentication error", name, err)
		}
		if len(evs) != 0 {
			t.Errorf("%s: %d events, want none", name, len(evs))
		}
	}
}

// TestReplayReconnectMidCall cuts the AMI connection in the middle of the inbound-answered
// call (after the agent's BridgeEnter, before anyone hangs up). When the driver reconnects,
// the switch has no channels any more (the second connection only logs in, and the resync's
// CoreShowChannels and QueueStatus come back empty): the call must clear with cause resync and
// the agent must not stay busy.
func TestReplayReconnectMidCall(t *testing.T) {
	recs, err := capture.ReadFile(filepath.Join(fixtures.Dir(t, "asterisk-22"), "inbound-answered.ami.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	// The second connection: banner, login and its greeting events only.
	var loginOnly []capture.Record
	for _, r := range recs {
		loginOnly = append(loginOnly, r)
		if strings.HasPrefix(r.Raw, "Event: SuccessfulAuth") {
			break
		}
	}
	p, err := loadReplayProvisioning("")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), testenv.Patience)
	defer cancel()
	scripts := []capture.Script{{Records: recs, DropAfter: 140}, {Records: loginOnly}}
	// Paced at 5x the recorded speed: the call's first event then comes about 200 ms after the
	// login, once the driver's resync is done (events that arrive during a resync that is cut
	// short are rightly dropped: the next resync supersedes them).
	evs, err := ReplayScripts(ctx, scripts, p, 5, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	pbxtest.ExpectSequence(t, evs, []step{
		{Type: callbridge.EventCallDelivered, Tenant: "acme", Device: "1001", ANI: "+15551230001", Call: "A"},
		{Type: callbridge.EventAgentStateChanged, Agent: "1001", State: callbridge.AgentBusy},
		{Type: callbridge.EventCallEstablished, Device: "1001", Call: "A"},
		{Type: callbridge.EventCallCleared, Cause: callbridge.CauseResync, Call: "A"},
	})
	for _, ev := range evs {
		if ev.Type == callbridge.EventCallEstablished && ev.Data.(*callbridge.CallEvent).Device == "1001" {
			break
		}
		if ev.Type == callbridge.EventCallCleared {
			t.Fatalf("call cleared before it was established: the drop came too early")
		}
	}
	pbxtest.CheckNothingStuck(t, evs, 0)
}
