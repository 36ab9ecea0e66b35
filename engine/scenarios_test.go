package engine_test

import (
	"slices"
	"testing"
	"time"

	"github.com/callbridge/callbridge"
)

// TestHandWrittenSwitchStories feeds switch events written by hand — what the Asterisk driver
// makes of the scenarios recorded from Asterisk 22 (shared/fixtures/asterisk-22, each case
// named after its file) — and checks the complete domain event sequence and where the agents
// end up. No recording is read here: the recordings themselves go through the real drivers
// and this engine in pbxtest and in cmd/callbridge's replay tests.
func TestHandWrittenSwitchStories(t *testing.T) {
	const (
		delivered   = callbridge.EventCallDelivered
		established = callbridge.EventCallEstablished
		cleared_    = callbridge.EventCallCleared
		queuedEv    = callbridge.EventCallQueued
		dataUpd     = callbridge.EventCallDataUpdated
		failed      = callbridge.EventCallFailed
		state       = callbridge.EventAgentStateChanged
		held        = callbridge.EventCallHeld
		retrieved   = callbridge.EventCallRetrieved
		originated  = callbridge.EventCallOriginated
		connCleared = callbridge.EventCallConnectionCleared
		diverted    = callbridge.EventCallDiverted
	)
	// Asterisk's channel variables before the IVR set them: CTI_TENANT=, IVR_ACCOUNT= ….
	emptyVars := map[string]string{"CTI_TENANT": "", "CTI_DNIS": "", "IVR_LANG": "", "IVR_ACCOUNT": "", "IVR_REASON": ""}
	tests := []struct {
		name      string
		members   []callbridge.SwitchEvent
		evs       []callbridge.SwitchEvent
		want      []callbridge.EventType
		states    map[callbridge.AgentID]callbridge.AgentState
		wantCause callbridge.Cause
		commands  int
	}{
		{
			name:    "inbound-answered",
			members: []callbridge.SwitchEvent{member("1001", "acme-support", true, false, "")},
			evs: []callbridge.SwitchEvent{
				inbound("c1", didAcme, emptyVars),
				{Type: callbridge.SwitchDataUpdated, PBXCallID: "c1", Data: map[string]string{"CTI_TENANT": "acme", "CTI_DNIS": didAcme}},
				{Type: callbridge.SwitchDataUpdated, PBXCallID: "c1", Data: map[string]string{"IVR_REASON": "billing"}},
				{Type: callbridge.SwitchDataUpdated, PBXCallID: "c1", Data: map[string]string{"IVR_ACCOUNT": "12345", "IVR_LANG": "en"}},
				queued("c1", "acme-support"),
				{Type: callbridge.SwitchAlerting, PBXCallID: "c1", Device: "1001", Queue: "acme-support"},
				{Type: callbridge.SwitchDequeued, PBXCallID: "c1", Queue: "acme-support"},
				connected("c1", "1001"),
				cleared("c1"),
			},
			want:      []callbridge.EventType{dataUpd, dataUpd, queuedEv, delivered, state, connCleared, established, cleared_, state},
			states:    map[callbridge.AgentID]callbridge.AgentState{"alice": callbridge.AgentWorkingAfterCall},
			wantCause: callbridge.CauseNormal,
			commands:  1, // the wrap-up pause
		},
		{
			name: "inbound-abandon",
			members: []callbridge.SwitchEvent{
				member("2001", "globex-sales", true, true, "meeting"), member("2002", "globex-sales", true, true, "meeting"),
			},
			evs: []callbridge.SwitchEvent{
				inbound("c1", didGlob, map[string]string{"IVR_REASON": "sales", "IVR_ACCOUNT": "67890"}),
				queued("c1", "globex-sales"),
				{Type: callbridge.SwitchDequeued, PBXCallID: "c1", Queue: "globex-sales", Cause: callbridge.CauseAbandoned},
				cleared("c1"),
			},
			want:      []callbridge.EventType{queuedEv, connCleared, cleared_},
			states:    map[callbridge.AgentID]callbridge.AgentState{"gina": callbridge.AgentNotReady},
			wantCause: callbridge.CauseAbandoned,
		},
		{
			name:    "agent-unreachable",
			members: []callbridge.SwitchEvent{member("1001", "acme-support", true, false, ""), member("1002", "acme-support", true, false, "")},
			evs: []callbridge.SwitchEvent{
				inbound("c1", didAcme, map[string]string{"IVR_REASON": "support", "IVR_ACCOUNT": "99001"}),
				queued("c1", "acme-support"),
				// 1001 answers the INVITE with 480 before ringing: NOANSWER, RingTime 0.
				{Type: callbridge.SwitchFailed, PBXCallID: "c1", Device: "1001", Cause: callbridge.CauseNoAnswer},
				{Type: callbridge.SwitchAlerting, PBXCallID: "c1", Device: "1002", Queue: "acme-support"},
				connected("c1", "1002"),
				cleared("c1"),
			},
			want:      []callbridge.EventType{queuedEv, diverted, delivered, state, connCleared, established, cleared_, state},
			states:    map[callbridge.AgentID]callbridge.AgentState{"alice": callbridge.AgentReady, "bob": callbridge.AgentWorkingAfterCall},
			wantCause: callbridge.CauseNormal,
			commands:  1,
		},
		{
			name:    "hold-retrieve-b",
			members: []callbridge.SwitchEvent{member("1002", "acme-support", true, false, "")},
			evs: []callbridge.SwitchEvent{
				inbound("c1", didAcme, map[string]string{"IVR_REASON": "sales", "IVR_ACCOUNT": "44556"}),
				queued("c1", "acme-support"), alerting("c1", "1002"), connected("c1", "1002"),
				sev(callbridge.SwitchHeld, "c1", "1002"), sev(callbridge.SwitchRetrieved, "c1", "1002"),
				sev(callbridge.SwitchHeld, "c1", "1002"), sev(callbridge.SwitchRetrieved, "c1", "1002"),
				cleared("c1"),
			},
			want:      []callbridge.EventType{queuedEv, delivered, state, connCleared, established, held, retrieved, held, retrieved, cleared_, state},
			states:    map[callbridge.AgentID]callbridge.AgentState{"bob": callbridge.AgentWorkingAfterCall},
			wantCause: callbridge.CauseNormal,
			commands:  1,
		},
		{
			// The feature-code call (*46) makes the member busy; the pause has no channel.
			// A call with no customer starts no wrap-up, so the pause is what remains.
			name:    "telset-pause",
			members: []callbridge.SwitchEvent{member("1002", "acme-support", true, false, "")},
			evs: []callbridge.SwitchEvent{
				{Type: callbridge.SwitchCallStarted, PBXCallID: "c1", Direction: callbridge.DirInternal, Device: "1002", ANI: "1002", DNIS: "*46", Data: emptyVars},
				connected("c1", "1002"),
				member("1002", "acme-support", true, true, "lunch"),
				{Type: callbridge.SwitchCallCleared, PBXCallID: "c1", Cause: callbridge.CauseNormal},
			},
			// The pause during the *46 call shows as bob's next state (busy → next not_ready lunch).
			want:      []callbridge.EventType{originated, state, established, state, cleared_, state},
			states:    map[callbridge.AgentID]callbridge.AgentState{"bob": callbridge.AgentNotReady},
			wantCause: callbridge.CauseNormal,
		},
		{
			// The customer answers 486 at once; the agent leg is hung up with cause 17 too.
			name:    "click-to-call-busy",
			members: []callbridge.SwitchEvent{member("1003", "acme-support", true, false, "")},
			evs: []callbridge.SwitchEvent{
				{Type: callbridge.SwitchCallStarted, PBXCallID: "c1", Direction: callbridge.DirOutbound, Device: "1003", ANI: "1003", DNIS: "15559990486"},
				alerting("c1", "1003"),
				connected("c1", "1003"),
				{Type: callbridge.SwitchFailed, PBXCallID: "c1", Device: "15559990486", External: true, Cause: callbridge.CauseBusy},
				{Type: callbridge.SwitchCallCleared, PBXCallID: "c1", Cause: callbridge.CauseBusy},
			},
			want:      []callbridge.EventType{originated, state, delivered, established, failed, cleared_, state},
			states:    map[callbridge.AgentID]callbridge.AgentState{"carol": callbridge.AgentReady},
			wantCause: callbridge.CauseBusy,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			f.evs(tt.members...)
			var out []callbridge.EventType
			cmds := 0
			var last callbridge.Event
			for _, ev := range tt.evs {
				f.wait(700 * time.Millisecond)
				o := f.ev(ev)
				out = append(out, types(o)...)
				cmds += len(o.Commands)
				for _, e := range o.Events {
					if e.Type == callbridge.EventCallCleared {
						last = e
					}
				}
			}
			if !slices.Equal(out, tt.want) {
				t.Fatalf("events = %v\nwant     %v", out, tt.want)
			}
			if c := callData(last).Cause; c != tt.wantCause {
				t.Fatalf("cleared cause = %s, want %s", c, tt.wantCause)
			}
			if cmds != tt.commands {
				t.Fatalf("%d switch commands, want %d", cmds, tt.commands)
			}
			for id, st := range tt.states {
				tn := acme
				if id == "gina" {
					tn = globex
				}
				if a := f.agent(tn, id); a.State != st {
					t.Fatalf("%s = %+v, want %s", id, a, st)
				}
			}
		})
	}
}

// BenchmarkInboundCall measures one whole inbound call: start, IVR data, queue, ring,
// answer, hold, retrieve, hang-up, and the wrap-up tick.
func BenchmarkInboundCall(b *testing.B) {
	f := newFixture(b)
	f.logOn("1001", "acme-support")
	pbx := []string{"a", "b"}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		p := pbx[i%2]
		f.wait(time.Minute)
		for _, ev := range []callbridge.SwitchEvent{
			inbound(p, didAcme, ivr()), queued(p, "acme-support"), alerting(p, "1001"), connected(p, "1001"),
			sev(callbridge.SwitchHeld, p, "1001"), sev(callbridge.SwitchRetrieved, p, "1001"), cleared(p),
			member("1001", "acme-support", true, true, callbridge.ReasonWrapUp),
		} {
			ev.Time = f.now
			f.e.HandleSwitchEvent(ev)
		}
		f.e.Tick(f.now.Add(30 * time.Second))
	}
}
