package engine_test

import (
	"slices"
	"testing"

	"github.com/callbridge/callbridge"
)

func failedEv(pbx string, dev callbridge.DeviceID, cause callbridge.Cause) callbridge.SwitchEvent {
	return callbridge.SwitchEvent{Type: callbridge.SwitchFailed, PBXCallID: pbx, Device: dev, Cause: cause}
}

// TestQueueOfferNotAnsweredIsDiverted: a queue member whose phone rings out, rejects the call
// or is busy leaves the call by CSTA Diverted to the queue's device, where the call still
// waits; the queue's next offer is an ordinary call.delivered.
func TestQueueOfferNotAnsweredIsDiverted(t *testing.T) {
	for _, tt := range []struct {
		name  string
		rings bool // the phone rang before it failed
		cause callbridge.Cause
	}{
		{"ring-no-answer", true, callbridge.CauseNoAnswer},
		{"the phone rejects after ringing", true, callbridge.CauseRejected},
		{"the phone rejects before ringing (SIP 480, Asterisk NOANSWER)", false, callbridge.CauseNoAnswer},
		{"busy", false, callbridge.CauseBusy},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			f.logOn("1001", "acme-support")
			f.logOn("1002", "acme-support")
			f.evs(inbound("p1", didAcme, ivr()), queued("p1", "acme-support"))
			if tt.rings {
				f.ev(alerting("p1", "1001"))
			}
			out := f.ev(failedEv("p1", "1001", tt.cause))
			var calls []callbridge.EventType
			for _, ev := range out.Events {
				if ev.Type.IsCall() {
					calls = append(calls, ev.Type)
				}
			}
			if !slices.Equal(calls, []callbridge.EventType{callbridge.EventCallDiverted}) {
				t.Fatalf("call events = %v, want call.diverted only", calls)
			}
			ev := only(t, out, callbridge.EventCallDiverted)
			ce := callData(ev)
			if ce.Device != "1001" || ce.Agent != "alice" || ce.DivertedTo != "acme-support" || ce.Cause != tt.cause {
				t.Fatalf("diverted = device %s agent %s to %s cause %s", ce.Device, ce.Agent, ce.DivertedTo, ce.Cause)
			}
			want := []callbridge.Connection{
				{Device: caller, State: callbridge.ConnConnected, External: true},
				{Device: "acme-support", State: callbridge.ConnQueued},
			}
			if !slices.Equal(ce.Connections, want) {
				t.Fatalf("connections = %+v, want %+v", ce.Connections, want)
			}
			if !slices.Equal(ev.Audience, []callbridge.AgentID{"alice"}) {
				t.Fatalf("audience = %v, want alice (the event that ends her part)", ev.Audience)
			}
			if a := f.agent(acme, "alice"); a.State != callbridge.AgentReady {
				t.Fatalf("alice = %+v", a)
			}
			// The next member: delivered, answered; the queue hands the call over.
			wantTypes(t, f.ev(alerting("p1", "1002")), callbridge.EventCallDelivered, callbridge.EventAgentStateChanged)
			out = f.ev(callbridge.SwitchEvent{Type: callbridge.SwitchDequeued, PBXCallID: "p1", Queue: "acme-support"})
			if ce := callData(only(t, out, callbridge.EventCallConnectionCleared)); ce.Device != "acme-support" || ce.Cause != callbridge.CauseDistributed {
				t.Fatalf("connection_cleared = %+v", ce)
			}
			wantTypes(t, f.ev(connected("p1", "1002")), callbridge.EventCallEstablished)
			// A repeated failure of the device is a duplicate.
			wantTypes(t, f.ev(failedEv("p1", "1001", tt.cause)))
		})
	}
}

// TestDivertedToTheNextDevice: when a device stops ringing for a call that nobody has and
// that waits in no queue (a routing point's ring-no-answer, a redirect, a queue that lets the
// call go), the next device that rings gets it by call.diverted naming both devices.
func TestDivertedToTheNextDevice(t *testing.T) {
	type step = callbridge.SwitchEvent
	for _, tt := range []struct {
		name   string
		before []step // after the inbound call started
		evs    []step // the diverted event comes with the last one
		from   callbridge.DeviceID
		agent  callbridge.AgentID
		to     callbridge.DeviceID
		cause  callbridge.Cause
	}{
		{
			// ari-route-noanswer: the app dials 1001, the dial times out (cause 19, no
			// DialEnd), the app dials 1002.
			name:   "a routing point's ring-no-answer",
			before: []step{alerting("p1", "1001"), failedEv("p1", "1001", callbridge.CauseNoAnswer)},
			evs:    []step{alerting("p1", "1002")},
			from:   "1001", agent: "alice", to: "1002", cause: callbridge.CauseNoAnswer,
		},
		{
			// AMI Redirect / uuid_transfer of the ringing caller: the dial is cancelled, the
			// caller rings the new target.
			name:   "a redirect of a ringing call",
			before: []step{alerting("p1", "1001"), {Type: callbridge.SwitchConnectionCleared, PBXCallID: "p1", Device: "1001", Cause: callbridge.CauseNormal}},
			evs:    []step{alerting("p1", "1002")},
			from:   "1001", agent: "alice", to: "1002", cause: callbridge.CauseRedirected,
		},
		{
			name: "a redirect of a queued call",
			before: []step{queued("p1", "acme-support"),
				{Type: callbridge.SwitchDequeued, PBXCallID: "p1", Queue: "acme-support"}},
			evs:  []step{alerting("p1", "1002")},
			from: "acme-support", to: "1002", cause: callbridge.CauseRedirected,
		},
		{
			name:   "a direct call that rang out goes on to a queue",
			before: []step{alerting("p1", "1001"), failedEv("p1", "1001", callbridge.CauseNoAnswer)},
			evs:    []step{queued("p1", "acme-vip")},
			from:   "1001", agent: "alice", to: "acme-vip", cause: callbridge.CauseNoAnswer,
		},
		{
			name:   "busy, then the next device",
			before: []step{failedEv("p1", "1001", callbridge.CauseBusy)},
			evs:    []step{callbridge.SwitchEvent{Type: callbridge.SwitchDataUpdated, PBXCallID: "p1", Data: map[string]string{"IVR_LANG": "de"}}, alerting("p1", "1003")},
			from:   "1001", agent: "alice", to: "1003", cause: callbridge.CauseBusy,
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			f.logOn("1001", "acme-support")
			f.logOn("1002", "acme-support")
			f.evs(append([]step{inbound("p1", didAcme, ivr())}, tt.before...)...)
			out := f.evs(tt.evs...)
			ev := only(t, out, callbridge.EventCallDiverted)
			ce := callData(ev)
			if ce.Device != tt.from || ce.Agent != tt.agent || ce.DivertedTo != tt.to || ce.Cause != tt.cause {
				t.Fatalf("diverted = device %s agent %s to %s cause %s", ce.Device, ce.Agent, ce.DivertedTo, ce.Cause)
			}
			if slices.Contains(ev.Audience, "alice") {
				t.Fatalf("diverted reached alice, whose part ended before: %v", ev.Audience)
			}
			i := slices.IndexFunc(out.Events, func(e callbridge.Event) bool { return e.Type == callbridge.EventCallDiverted })
			if next := out.Events[i+1].Type; next != callbridge.EventCallDelivered && next != callbridge.EventCallQueued {
				t.Fatalf("diverted is followed by %s", next)
			}
		})
	}

	// No diversion: the call was answered meanwhile, a transfer, the caller hanging up, the
	// same device ringing again, a consultation's target.
	for _, tt := range []struct {
		name string
		evs  []callbridge.SwitchEvent
	}{
		{"a blind transfer", []callbridge.SwitchEvent{alerting("p1", "1002"), connected("p1", "1002"),
			{Type: callbridge.SwitchTransferred, PBXCallID: "p1", TransferringDevice: "1002", TransferredTo: "1003"}, alerting("p1", "1003")}},
		{"a device that answered and left", []callbridge.SwitchEvent{alerting("p1", "1002"), connected("p1", "1002"),
			{Type: callbridge.SwitchTransferred, PBXCallID: "p1", TransferringDevice: "1002", TransferredTo: "1003"}, alerting("p1", "1003"),
			connected("p1", "1003"), sev(callbridge.SwitchConnectionCleared, "p1", "1003"), alerting("p1", "1004")}},
		{"the caller hangs up", []callbridge.SwitchEvent{alerting("p1", "1001"),
			{Type: callbridge.SwitchConnectionCleared, PBXCallID: "p1", Device: caller}, {Type: callbridge.SwitchConnectionCleared, PBXCallID: "p1", Device: "1001"}, cleared("p1")}},
		{"the same device rings again", []callbridge.SwitchEvent{alerting("p1", "1001"), failedEv("p1", "1001", callbridge.CauseNoAnswer), alerting("p1", "1001")}},
		{"a ringing device cancelled while another answers", []callbridge.SwitchEvent{alerting("p1", "1001"), alerting("p1", "1002"), connected("p1", "1002"),
			{Type: callbridge.SwitchConnectionCleared, PBXCallID: "p1", Device: "1001"}, alerting("p1", "1003")}},
	} {
		t.Run("none: "+tt.name, func(t *testing.T) {
			f := newFixture(t)
			out := f.evs(append([]callbridge.SwitchEvent{inbound("p1", didAcme, ivr())}, tt.evs...)...)
			if slices.Contains(types(out), callbridge.EventCallDiverted) {
				t.Fatalf("events = %v", types(out))
			}
		})
	}
}
