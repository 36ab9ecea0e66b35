package engine_test

import (
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/callbridge/callbridge"
	"github.com/callbridge/callbridge/engine"
)

// TestSwitchEvents feeds each switch event type after a setup and checks the domain events
// and the model after it.
func TestSwitchEvents(t *testing.T) {
	tests := []struct {
		name  string
		setup func(f *fixture)
		ev    callbridge.SwitchEvent
		want  []callbridge.EventType
		check func(t *testing.T, f *fixture, out engine.Output)
	}{
		{
			name: "inbound call_started creates the call silently",
			ev:   inbound("p1", didAcme, ivr()),
			check: func(t *testing.T, f *fixture, out engine.Output) {
				c := f.call(acme, "p1")
				if c.ID != "01J00000000000000000000001" || c.Direction != callbridge.DirInbound || c.ANI != caller || c.ANIName != "John Smith" || c.DNIS != didAcme || !c.StartedAt.Equal(t0) {
					t.Fatalf("call = %+v", c)
				}
				want := []callbridge.Connection{{Device: caller, State: callbridge.ConnConnected, External: true}}
				if !slices.Equal(c.Connections, want) {
					t.Fatalf("connections = %+v", c.Connections)
				}
				if !maps.Equal(c.AttachedData, map[string]string{"IVR_ACCOUNT": "12345", "IVR_REASON": "billing"}) {
					t.Fatalf("attached data = %v (CTI_* and empty values must be dropped)", c.AttachedData)
				}
			},
		},
		{
			name: "outbound call_started from an agent device emits call.originated to the agent",
			ev: callbridge.SwitchEvent{Type: callbridge.SwitchCallStarted, PBXCallID: "o1", Direction: callbridge.DirOutbound,
				Device: "1003", ANI: "1003", DNIS: "15557654321"},
			want: []callbridge.EventType{callbridge.EventCallOriginated, callbridge.EventAgentStateChanged},
			check: func(t *testing.T, f *fixture, out engine.Output) {
				ev := out.Events[0]
				ce := callData(ev)
				if ce.Device != "1003" || ce.Agent != "carol" || !slices.Equal(ev.Audience, []callbridge.AgentID{"carol"}) {
					t.Fatalf("originated = %+v audience %v", ce, ev.Audience)
				}
				if cn := ce.Connections; len(cn) != 1 || cn[0].State != callbridge.ConnInitiated || cn[0].Agent != "carol" {
					t.Fatalf("connections = %+v", cn)
				}
				if a := agentData(out.Events[1]); a.State != callbridge.AgentBusy || a.PreviousState != callbridge.AgentReady {
					t.Fatalf("agent = %+v", a)
				}
			},
			setup: func(f *fixture) { f.logOn("1003", "acme-support") },
		},
		{
			name:  "data_updated merges and deletes with empty values",
			setup: func(f *fixture) { f.ev(inbound("p1", didAcme, ivr())) },
			ev: callbridge.SwitchEvent{Type: callbridge.SwitchDataUpdated, PBXCallID: "p1",
				Data: map[string]string{"IVR_ACCOUNT": "", "IVR_LANG": "en", "CTI_DNIS": "x"}},
			want: []callbridge.EventType{callbridge.EventCallDataUpdated},
			check: func(t *testing.T, f *fixture, out engine.Output) {
				want := map[string]string{"IVR_REASON": "billing", "IVR_LANG": "en"}
				if got := callData(out.Events[0]).AttachedData; !maps.Equal(got, want) {
					t.Fatalf("data = %v, want %v", got, want)
				}
			},
		},
		{
			name:  "data_updated that changes nothing emits nothing",
			setup: func(f *fixture) { f.ev(inbound("p1", didAcme, ivr())) },
			ev:    callbridge.SwitchEvent{Type: callbridge.SwitchDataUpdated, PBXCallID: "p1", Data: map[string]string{"IVR_ACCOUNT": "12345", "CTI_X": "1"}},
		},
		{
			name:  "queued sets the queue and connects the call to the queue's device",
			setup: func(f *fixture) { f.ev(inbound("p1", didAcme, nil)); f.wait(time.Second) },
			ev:    queued("p1", "acme-support"),
			want:  []callbridge.EventType{callbridge.EventCallQueued},
			check: func(t *testing.T, f *fixture, out engine.Output) {
				c := callData(out.Events[0])
				if c.Queue != "acme-support" || !c.QueuedAt.Equal(t0.Add(time.Second)) || c.Device != "acme-support" || c.Agent != "" {
					t.Fatalf("call.queued = %+v", c)
				}
				want := []callbridge.Connection{
					{Device: caller, State: callbridge.ConnConnected, External: true},
					{Device: "acme-support", State: callbridge.ConnQueued},
				}
				if !slices.Equal(c.Connections, want) {
					t.Fatalf("connections = %+v, want %+v", c.Connections, want)
				}
			},
		},
		{
			name:  "queued twice emits once",
			setup: func(f *fixture) { f.evs(inbound("p1", didAcme, nil), queued("p1", "acme-support")) },
			ev:    queued("p1", "acme-support"),
		},
		{
			name:  "an abandon clears the queue connection",
			setup: func(f *fixture) { f.evs(inbound("p1", didAcme, nil), queued("p1", "acme-support")) },
			ev:    callbridge.SwitchEvent{Type: callbridge.SwitchDequeued, PBXCallID: "p1", Queue: "acme-support", Cause: callbridge.CauseAbandoned},
			want:  []callbridge.EventType{callbridge.EventCallConnectionCleared},
			check: func(t *testing.T, f *fixture, out engine.Output) {
				ce := callData(out.Events[0])
				if ce.Device != "acme-support" || ce.Cause != callbridge.CauseAbandoned || len(ce.Connections) != 1 || ce.Connections[0].Device != caller {
					t.Fatalf("connection_cleared = %+v", ce)
				}
				wantTypes(t, f.ev(callbridge.SwitchEvent{Type: callbridge.SwitchDequeued, PBXCallID: "p1", Queue: "acme-support"}))
			},
		},
		{
			name: "the queue connection goes when the queue hands the call to the ringing agent",
			setup: func(f *fixture) {
				f.evs(inbound("p1", didAcme, ivr()), queued("p1", "acme-support"), alerting("p1", "1001"))
			},
			ev:   callbridge.SwitchEvent{Type: callbridge.SwitchDequeued, PBXCallID: "p1", Queue: "acme-support"},
			want: []callbridge.EventType{callbridge.EventCallConnectionCleared},
			check: func(t *testing.T, f *fixture, out engine.Output) {
				ev := out.Events[0]
				if ce := callData(ev); ce.Device != "acme-support" || ce.Agent != "" || ce.Cause != callbridge.CauseDistributed || len(ce.Connections) != 2 {
					t.Fatalf("connection_cleared = %+v", ce)
				}
				if !slices.Equal(ev.Audience, []callbridge.AgentID{"alice"}) {
					t.Fatalf("audience = %v", ev.Audience)
				}
				wantTypes(t, f.ev(connected("p1", "1001")), callbridge.EventCallEstablished)
			},
		},
		{
			name: "an answer without dequeued ends the queue connection first",
			setup: func(f *fixture) {
				f.evs(inbound("p1", didAcme, ivr()), queued("p1", "acme-support"), alerting("p1", "1001"))
			},
			ev:   connected("p1", "1001"),
			want: []callbridge.EventType{callbridge.EventCallConnectionCleared, callbridge.EventCallEstablished},
			check: func(t *testing.T, f *fixture, out engine.Output) {
				if ce := callData(out.Events[0]); ce.Device != "acme-support" || ce.Cause != callbridge.CauseDistributed {
					t.Fatalf("connection_cleared = %+v", ce)
				}
				if c := f.call(acme, "p1"); len(c.Connections) != 2 || c.Connections[1].Device != "1001" {
					t.Fatalf("connections = %+v", c.Connections)
				}
			},
		},
		{
			name: "alerting is the screen pop",
			setup: func(f *fixture) {
				f.logOn("1001", "acme-support")
				f.evs(inbound("p1", didAcme, ivr()), queued("p1", "acme-support"))
			},
			ev:   callbridge.SwitchEvent{Type: callbridge.SwitchAlerting, PBXCallID: "p1", Device: "1001", Queue: "acme-support"},
			want: []callbridge.EventType{callbridge.EventCallDelivered, callbridge.EventAgentStateChanged},
			check: func(t *testing.T, f *fixture, out engine.Output) {
				ev := out.Events[0]
				ce := callData(ev)
				if ce.ANI != caller || ce.DNIS != didAcme || ce.Queue != "acme-support" || ce.AttachedData["IVR_ACCOUNT"] != "12345" || ce.AttachedData["IVR_REASON"] != "billing" {
					t.Fatalf("delivered lacks the screen pop: %+v", ce)
				}
				if ce.Device != "1001" || ce.Agent != "alice" || ev.CallID != ce.ID || !slices.Equal(ev.Audience, []callbridge.AgentID{"alice"}) {
					t.Fatalf("delivered = %+v, audience %v", ce, ev.Audience)
				}
				if cn, _ := ce.Connection("1001"); cn.State != callbridge.ConnAlerting || cn.Agent != "alice" {
					t.Fatalf("connection = %+v", cn)
				}
				if a := agentData(out.Events[1]); a.State != callbridge.AgentBusy || out.Events[1].Agent != "alice" {
					t.Fatalf("agent = %+v", a)
				}
			},
		},
		{
			name:  "alerting twice emits once",
			setup: func(f *fixture) { f.evs(inbound("p1", didAcme, nil), alerting("p1", "1001")) },
			ev:    alerting("p1", "1001"),
		},
		{
			name: "connected is call.established and sets AnsweredAt",
			setup: func(f *fixture) {
				f.evs(inbound("p1", didAcme, nil), alerting("p1", "1001"))
				f.wait(2 * time.Second)
			},
			ev:   connected("p1", "1001"),
			want: []callbridge.EventType{callbridge.EventCallEstablished},
			check: func(t *testing.T, f *fixture, out engine.Output) {
				ce := callData(out.Events[0])
				if ce.Device != "1001" || ce.Agent != "alice" || !ce.AnsweredAt.Equal(t0.Add(2*time.Second)) {
					t.Fatalf("established = %+v", ce)
				}
			},
		},
		{
			name:  "connected twice emits once",
			setup: func(f *fixture) { f.answeredCall("p1", "1001") },
			ev:    connected("p1", "1001"),
		},
		{
			name:  "held",
			setup: func(f *fixture) { f.answeredCall("p1", "1001") },
			ev:    sev(callbridge.SwitchHeld, "p1", "1001"),
			want:  []callbridge.EventType{callbridge.EventCallHeld},
			check: func(t *testing.T, f *fixture, out engine.Output) {
				if cn, _ := callData(out.Events[0]).Connection("1001"); cn.State != callbridge.ConnHeld {
					t.Fatalf("connection = %+v", cn)
				}
			},
		},
		{
			name: "held twice emits once",
			setup: func(f *fixture) {
				f.answeredCall("p1", "1001")
				f.ev(sev(callbridge.SwitchHeld, "p1", "1001"))
			},
			ev: sev(callbridge.SwitchHeld, "p1", "1001"),
		},
		{
			name: "retrieved",
			setup: func(f *fixture) {
				f.answeredCall("p1", "1001")
				f.ev(sev(callbridge.SwitchHeld, "p1", "1001"))
			},
			ev:   sev(callbridge.SwitchRetrieved, "p1", "1001"),
			want: []callbridge.EventType{callbridge.EventCallRetrieved},
			check: func(t *testing.T, f *fixture, out engine.Output) {
				if cn, _ := callData(out.Events[0]).Connection("1001"); cn.State != callbridge.ConnConnected {
					t.Fatalf("connection = %+v", cn)
				}
			},
		},
		{
			name:  "retrieved when not held emits nothing",
			setup: func(f *fixture) { f.answeredCall("p1", "1001") },
			ev:    sev(callbridge.SwitchRetrieved, "p1", "1001"),
		},
		{
			name: "failed shows the failed connection, then removes it",
			setup: func(f *fixture) {
				f.logOn("1001", "acme-support")
				f.evs(inbound("p1", didAcme, nil), alerting("p1", "1001"))
			},
			ev:   callbridge.SwitchEvent{Type: callbridge.SwitchFailed, PBXCallID: "p1", Device: "1001", Cause: callbridge.CauseNoAnswer},
			want: []callbridge.EventType{callbridge.EventCallFailed, callbridge.EventAgentStateChanged},
			check: func(t *testing.T, f *fixture, out engine.Output) {
				ce := callData(out.Events[0])
				if cn, _ := ce.Connection("1001"); cn.State != callbridge.ConnFailed || ce.Cause != callbridge.CauseNoAnswer || ce.Agent != "alice" {
					t.Fatalf("failed = %+v", ce)
				}
				if c := f.call(acme, "p1"); hasConn(&c, "1001") {
					t.Fatal("failed connection still on the call")
				}
				if a := agentData(out.Events[1]); a.State != callbridge.AgentReady {
					t.Fatalf("agent = %+v", a)
				}
			},
		},
		{
			name:  "failed of a device that never rang is reported once",
			setup: func(f *fixture) { f.ev(inbound("p1", didAcme, nil)) },
			ev:    callbridge.SwitchEvent{Type: callbridge.SwitchFailed, PBXCallID: "p1", Device: "1001", Cause: callbridge.CauseNoAnswer},
			want:  []callbridge.EventType{callbridge.EventCallFailed},
			check: func(t *testing.T, f *fixture, out engine.Output) {
				if ev := out.Events[0]; callData(ev).Agent != "alice" || !slices.Equal(ev.Audience, []callbridge.AgentID{"alice"}) {
					t.Fatalf("failed = %+v", ev)
				}
				wantTypes(t, f.ev(callbridge.SwitchEvent{Type: callbridge.SwitchFailed, PBXCallID: "p1", Device: "1001"}))
			},
		},
		{
			name:  "connection_cleared removes the party: it is their last event of the call",
			setup: func(f *fixture) { f.answeredCall("p1", "1001") },
			ev:    callbridge.SwitchEvent{Type: callbridge.SwitchConnectionCleared, PBXCallID: "p1", Device: "1001", Cause: callbridge.CauseNormal},
			want:  []callbridge.EventType{callbridge.EventCallConnectionCleared},
			check: func(t *testing.T, f *fixture, out engine.Output) {
				ev := out.Events[0]
				ce := callData(ev)
				if _, ok := ce.Connection("1001"); ok || ce.Device != "1001" || ce.Agent != "alice" || ce.Cause != callbridge.CauseNormal {
					t.Fatalf("connection_cleared = %+v", ce)
				}
				if !slices.Equal(ev.Audience, []callbridge.AgentID{"alice"}) {
					t.Fatalf("audience = %v", ev.Audience)
				}
				out = f.ev(cleared("p1"))
				if ev := only(t, out, callbridge.EventCallCleared); len(ev.Audience) != 0 {
					t.Fatalf("cleared audience = %v, want nobody: alice left", ev.Audience)
				}
			},
		},
		{
			name:  "blind transfer",
			setup: func(f *fixture) { f.answeredCall("p1", "1001") },
			ev: callbridge.SwitchEvent{Type: callbridge.SwitchTransferred, PBXCallID: "p1",
				TransferringDevice: "1001", TransferredTo: "1002"},
			want: []callbridge.EventType{callbridge.EventCallTransferred},
			check: func(t *testing.T, f *fixture, out engine.Output) {
				ce := callData(out.Events[0])
				if ce.TransferringDevice != "1001" || ce.TransferredTo != "1002" || ce.ConsultCallID != "" {
					t.Fatalf("transferred = %+v", ce)
				}
				if _, ok := ce.Connection("1001"); ok {
					t.Fatal("transferring device still on the call")
				}
				// The target rings on the same call: the receiving agent gets the same call id
				// and the whole pop.
				ev := only(t, f.ev(alerting("p1", "1002")), callbridge.EventCallDelivered)
				if ev.CallID != ce.ID || callData(ev).AttachedData["IVR_ACCOUNT"] != "12345" || !slices.Equal(ev.Audience, []callbridge.AgentID{"bob"}) {
					t.Fatalf("delivered after transfer = %+v", ev)
				}
			},
		},
		{
			name: "call_cleared clears once and forgets the call",
			setup: func(f *fixture) {
				f.answeredCall("p1", "1001")
				f.wait(5 * time.Second)
			},
			ev:   cleared("p1"),
			want: []callbridge.EventType{callbridge.EventCallCleared},
			check: func(t *testing.T, f *fixture, out engine.Output) {
				ce := callData(out.Events[0])
				if len(ce.Connections) != 0 || !ce.EndedAt.Equal(t0.Add(5*time.Second)) || ce.Cause != callbridge.CauseNormal {
					t.Fatalf("cleared = %+v", ce)
				}
				if len(f.e.Calls(acme)) != 0 {
					t.Fatal("cleared call still active")
				}
				wantTypes(t, f.ev(cleared("p1")))
			},
		},
		{
			name: "an abandoned call clears with cause call_abandoned",
			setup: func(f *fixture) {
				f.evs(inbound("p1", didAcme, nil), queued("p1", "acme-support"),
					callbridge.SwitchEvent{Type: callbridge.SwitchDequeued, PBXCallID: "p1", Cause: callbridge.CauseAbandoned})
			},
			ev:   cleared("p1"),
			want: []callbridge.EventType{callbridge.EventCallCleared},
			check: func(t *testing.T, f *fixture, out engine.Output) {
				if c := callData(out.Events[0]).Cause; c != callbridge.CauseAbandoned {
					t.Fatalf("cause = %s", c)
				}
			},
		},
		{
			name: "member_state logs the agent on",
			ev:   member("1002", "acme-support", true, false, ""),
			want: []callbridge.EventType{callbridge.EventAgentLoggedOn, callbridge.EventAgentStateChanged},
			check: func(t *testing.T, f *fixture, out engine.Output) {
				a := agentData(out.Events[1])
				if a.State != callbridge.AgentReady || a.PreviousState != callbridge.AgentLoggedOut || !slices.Equal(a.Queues, []callbridge.QueueName{"acme-support"}) {
					t.Fatalf("agent = %+v", a)
				}
			},
		},
		{name: "device_state changes nothing", ev: callbridge.SwitchEvent{Type: callbridge.SwitchDeviceState, Device: "1001", DeviceStatus: callbridge.DeviceUnavailable}},
		{name: "link_up changes nothing", ev: callbridge.SwitchEvent{Type: callbridge.SwitchLinkUp}},
		{name: "unknown event type changes nothing", ev: callbridge.SwitchEvent{Type: "bogus", PBXCallID: "p1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			if tt.setup != nil {
				tt.setup(f)
			}
			out := f.ev(tt.ev)
			wantTypes(t, out, tt.want...)
			if tt.check != nil {
				tt.check(t, f, out)
			}
		})
	}
}

// TestEventsForUnknownCalls: events of calls the engine never saw (a call that began before
// a resync) do not panic and change nothing, except alerting/connected, which create the call.
func TestEventsForUnknownCalls(t *testing.T) {
	quiet := []callbridge.SwitchEvent{
		{Type: callbridge.SwitchDataUpdated, PBXCallID: "x", Data: map[string]string{"A": "1"}},
		{Type: callbridge.SwitchQueued, PBXCallID: "x", Queue: "acme-support"},
		{Type: callbridge.SwitchDequeued, PBXCallID: "x"},
		{Type: callbridge.SwitchHeld, PBXCallID: "x", Device: "1001"},
		{Type: callbridge.SwitchRetrieved, PBXCallID: "x", Device: "1001"},
		{Type: callbridge.SwitchFailed, PBXCallID: "x", Device: "1001"},
		{Type: callbridge.SwitchConnectionCleared, PBXCallID: "x", Device: "1001"},
		{Type: callbridge.SwitchTransferred, PBXCallID: "x", TransferringDevice: "1001", ConsultPBXCallID: "y"},
		{Type: callbridge.SwitchConferenced, PBXCallID: "x", Device: "1001", ConsultPBXCallID: "y"},
		{Type: callbridge.SwitchCallCleared, PBXCallID: "x"},
		{Type: callbridge.SwitchCallStarted},
		{Type: callbridge.SwitchAlerting, PBXCallID: "", Device: "1001"},
		{Type: callbridge.SwitchAlerting, PBXCallID: "x"},
		{Type: callbridge.SwitchMemberState, Device: "9999", Queue: "q", LoggedOn: true},
		{Type: callbridge.SwitchSnapshot},
	}
	for _, ev := range quiet {
		t.Run(string(ev.Type), func(t *testing.T) {
			f := newFixture(t)
			before := state(f.e)
			wantTypes(t, f.ev(ev))
			sameState(t, before, state(f.e))
		})
	}
	t.Run("alerting creates the call", func(t *testing.T) {
		f := newFixture(t)
		out := f.ev(callbridge.SwitchEvent{Type: callbridge.SwitchAlerting, PBXCallID: "x", Device: "1001", ANI: caller, DNIS: didAcme,
			Queue: "acme-support", Data: map[string]string{"IVR_ACCOUNT": "1"}})
		ce := callData(only(t, out, callbridge.EventCallDelivered))
		if ce.Tenant != acme || ce.Queue != "acme-support" || ce.ANI != caller || ce.AttachedData["IVR_ACCOUNT"] != "1" {
			t.Fatalf("delivered = %+v", ce)
		}
		// A late call_started fills in but emits nothing.
		wantTypes(t, f.ev(inbound("x", didAcme, map[string]string{"IVR_REASON": "sales"})))
		if c := f.call(acme, "x"); c.AttachedData["IVR_REASON"] != "sales" || c.ID != ce.ID {
			t.Fatalf("call = %+v", c)
		}
	})
	t.Run("connected creates the call", func(t *testing.T) {
		f := newFixture(t)
		out := f.ev(callbridge.SwitchEvent{Type: callbridge.SwitchConnected, PBXCallID: "x", Device: "2001"})
		ce := callData(only(t, out, callbridge.EventCallEstablished))
		if ce.Tenant != globex || ce.Agent != "gina" {
			t.Fatalf("established = %+v", ce)
		}
	})
}

// TestTenantResolution: ev.Tenant, then DNIS, then the agent's device, then the only tenant;
// a call of no known tenant is tracked silently.
func TestTenantResolution(t *testing.T) {
	tests := []struct {
		name string
		ev   callbridge.SwitchEvent
		want callbridge.TenantID
	}{
		{"switch names the tenant", callbridge.SwitchEvent{Tenant: globex, DNIS: didAcme}, globex},
		{"DNIS in a tenant's DIDs", callbridge.SwitchEvent{DNIS: didGlob}, globex},
		{"DNIS with a leading plus", callbridge.SwitchEvent{DNIS: "+" + didAcme}, acme},
		{"DID listed with a plus", callbridge.SwitchEvent{DNIS: "18005550300"}, acme},
		{"the agent's device", callbridge.SwitchEvent{Device: "2002", Direction: callbridge.DirOutbound}, globex},
		{"unknown DNIS and outside device: no tenant", callbridge.SwitchEvent{DNIS: "999", Device: caller, External: true}, ""},
		{"unconfigured tenant named: no tenant", callbridge.SwitchEvent{Tenant: "initech", DNIS: didAcme}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			ev := tt.ev
			ev.Type, ev.PBXCallID = callbridge.SwitchCallStarted, "p1"
			f.ev(ev)
			for _, tn := range []callbridge.TenantID{acme, globex} {
				if got := f.hasCall(tn, "p1"); got != (tn == tt.want) {
					t.Fatalf("call in %s = %v, want tenant %q", tn, got, tt.want)
				}
			}
		})
	}
	t.Run("the only tenant", func(t *testing.T) {
		d := testDirectory()
		d.Tenants = d.Tenants[1:]
		e, err := engine.New(engine.Config{Directory: d, NewCallID: idGen(), Now: t0})
		if err != nil {
			t.Fatal(err)
		}
		e.HandleSwitchEvent(callbridge.SwitchEvent{Type: callbridge.SwitchCallStarted, PBXCallID: "p1", DNIS: "999", Device: caller, External: true})
		if len(e.Calls(globex)) != 1 {
			t.Fatal("call not given to the only tenant")
		}
	})
	t.Run("a call of no known tenant is silent until an agent's device joins", func(t *testing.T) {
		f := newFixture(t)
		wantTypes(t, f.evs(
			callbridge.SwitchEvent{Type: callbridge.SwitchCallStarted, PBXCallID: "p1", ANI: caller, DNIS: "999", Device: caller, External: true, Direction: callbridge.DirInbound,
				Data: map[string]string{"IVR_ACCOUNT": "7", "IVR_LANG": "fr", "CTI_X": "1"}},
			callbridge.SwitchEvent{Type: callbridge.SwitchDataUpdated, PBXCallID: "p1", Data: map[string]string{"IVR_REASON": "sales"}},
			queued("p1", "globex-sales"),
		))
		out := f.ev(alerting("p1", "2001"))
		ce := callData(only(t, out, callbridge.EventCallDelivered))
		want := map[string]string{"IVR_ACCOUNT": "7", "IVR_REASON": "sales"} // globex keeps only its listed keys
		if ce.Tenant != globex || ce.Agent != "gina" || ce.Queue != "globex-sales" || !maps.Equal(ce.AttachedData, want) {
			t.Fatalf("delivered = %+v", ce)
		}
	})
	t.Run("an unconfigured tenant named by the switch is not adopted from a device", func(t *testing.T) {
		f := newFixture(t)
		f.ev(callbridge.SwitchEvent{Type: callbridge.SwitchCallStarted, PBXCallID: "p1", Tenant: "initech", Device: caller, External: true})
		wantTypes(t, f.ev(alerting("p1", "1001")))
		if len(f.e.Calls(acme)) != 0 {
			t.Fatal("call adopted by acme")
		}
	})
}

// TestAttachedDataFilter: the tenant's AttachedData list, or every key but CTI_*; empty values
// are not stored.
func TestAttachedDataFilter(t *testing.T) {
	data := map[string]string{"IVR_ACCOUNT": "1", "IVR_REASON": "", "IVR_LANG": "en", "CTI_TENANT": "x", "CRM_ID": "c9"}
	tests := []struct {
		dnis string
		t    callbridge.TenantID
		want map[string]string
	}{
		{didAcme, acme, map[string]string{"IVR_ACCOUNT": "1", "IVR_LANG": "en", "CRM_ID": "c9"}},
		{didGlob, globex, map[string]string{"IVR_ACCOUNT": "1"}},
	}
	for _, tt := range tests {
		t.Run(string(tt.t), func(t *testing.T) {
			f := newFixture(t)
			f.ev(inbound("p1", tt.dnis, data))
			if got := f.call(tt.t, "p1").AttachedData; !maps.Equal(got, tt.want) {
				t.Fatalf("data = %v, want %v", got, tt.want)
			}
		})
	}
}

func hasConn(c *callbridge.Call, d callbridge.DeviceID) bool {
	_, ok := c.Connection(d)
	return ok
}

// TestCallsAreClones: what Calls returns cannot change the engine.
func TestCallsAreClones(t *testing.T) {
	f := newFixture(t)
	f.answeredCall("p1", "1001")
	c := f.e.Calls(acme)[0]
	c.AttachedData["IVR_ACCOUNT"] = "evil"
	c.Connections[0].State = callbridge.ConnNull
	if got := f.call(acme, "p1"); got.AttachedData["IVR_ACCOUNT"] != "12345" || got.Connections[0].State != callbridge.ConnConnected {
		t.Fatalf("engine state changed through a returned call: %+v", got)
	}
	if len(f.e.Calls("nobody")) != 0 || len(f.e.Agents("nobody")) != 0 {
		t.Fatal("unknown tenant has calls or agents")
	}
}

// TestCallsSortedByStart: Calls is sorted by StartedAt.
func TestCallsSortedByStart(t *testing.T) {
	f := newFixture(t)
	for _, pbx := range []string{"c", "a", "b"} {
		f.ev(inbound(pbx, didAcme, nil))
		f.wait(time.Second)
	}
	var got []string
	for _, c := range f.e.Calls(acme) {
		got = append(got, c.PBXCallID)
	}
	if !slices.Equal(got, []string{"c", "a", "b"}) {
		t.Fatalf("order = %v", got)
	}
}
