package engine_test

import (
	"slices"
	"testing"
	"time"

	"github.com/callbridge/callbridge"
	"github.com/callbridge/callbridge/engine"
)

func snapshot(s callbridge.Snapshot) callbridge.SwitchEvent {
	return callbridge.SwitchEvent{Type: callbridge.SwitchSnapshot, Snapshot: &s}
}

// eventsByCall groups the call events of out by PBX call id, and the agent events by agent.
func eventsByCall(out engine.Output) (map[string][]callbridge.EventType, map[callbridge.AgentID][]callbridge.Agent) {
	calls := map[string][]callbridge.EventType{}
	agents := map[callbridge.AgentID][]callbridge.Agent{}
	for _, ev := range out.Events {
		if ev.Type.IsCall() {
			pbx := callData(ev).PBXCallID
			calls[pbx] = append(calls[pbx], ev.Type)
		} else if ev.Type == callbridge.EventAgentStateChanged {
			agents[ev.Agent] = append(agents[ev.Agent], *agentData(ev))
		}
	}
	return calls, agents
}

// TestSnapshotReconciles: after a driver reconnect the switch's state replaces the model.
func TestSnapshotReconciles(t *testing.T) {
	f := newFixture(t)
	f.logOn("1001", "acme-support")
	f.logOn("1002", "acme-support")
	f.answeredCall("gone", "1002")                                                                      // ended while the link was down
	f.evs(inbound("known", didAcme, ivr()), queued("known", "acme-support"), alerting("known", "1001")) // answered meanwhile
	knownID := f.call(acme, "known").ID
	f.wait(time.Minute)

	out := f.ev(snapshot(callbridge.Snapshot{
		Calls: []callbridge.SnapshotCall{
			{PBXCallID: "known", Direction: callbridge.DirInbound, ANI: caller, DNIS: didAcme, Queue: "acme-support",
				Parties: []callbridge.SnapshotParty{{Device: caller, State: callbridge.ConnConnected, External: true}, {Device: "1001", State: callbridge.ConnConnected}}},
			{PBXCallID: "new", Direction: callbridge.DirInbound, ANI: "+15551230009", DNIS: didAcme, Queue: "acme-support",
				Data: map[string]string{"IVR_REASON": "support", "CTI_TENANT": "acme"},
				Parties: []callbridge.SnapshotParty{
					{Device: "+15551230009", State: callbridge.ConnConnected, External: true},
					{Device: "1003", State: callbridge.ConnHeld},
					{Device: "1004", State: callbridge.ConnAlerting},
				}},
			{PBXCallID: "waiting", Direction: callbridge.DirInbound, ANI: "+15551230010", DNIS: didGlob, Queue: "globex-sales",
				Parties: []callbridge.SnapshotParty{{Device: "+15551230010", State: callbridge.ConnConnected, External: true}, {Device: "globex-sales", State: callbridge.ConnQueued}}},
		},
		Members: []callbridge.SnapshotMember{
			{Device: "1001", Queue: "acme-support"},
			{Device: "1003", Queue: "acme-support", Paused: true, Reason: "training"},
			{Device: "1004", Queue: "acme-support", Paused: true, Reason: callbridge.ReasonWrapUp},
			{Device: "2002", Queue: "globex-sales"},
			{Device: "9999", Queue: "acme-support"}, // not an agent
		},
	}))
	calls, agents := eventsByCall(out)
	wantCalls := map[string][]callbridge.EventType{
		"gone":    {callbridge.EventCallCleared},
		"known":   {callbridge.EventCallConnectionCleared, callbridge.EventCallEstablished}, // the queue handed it over meanwhile
		"new":     {callbridge.EventCallEstablished, callbridge.EventCallDelivered},
		"waiting": {callbridge.EventCallQueued},
	}
	for pbx, want := range wantCalls {
		if !slices.Equal(calls[pbx], want) {
			t.Fatalf("events of %s = %v, want %v", pbx, calls[pbx], want)
		}
	}
	for _, ev := range out.Events {
		if ev.Type == callbridge.EventCallCleared && callData(ev).Cause != callbridge.CauseResync {
			t.Fatalf("stale call cleared with %s", callData(ev).Cause)
		}
		if ev.Type == callbridge.EventCallDelivered {
			ce := callData(ev)
			if ce.ANI != "+15551230009" || ce.DNIS != didAcme || ce.Queue != "acme-support" || ce.AttachedData["IVR_REASON"] != "support" || ce.Agent != "dave" {
				t.Fatalf("resync pop = %+v", ce)
			}
		}
	}
	if f.call(acme, "known").ID != knownID {
		t.Fatal("a known call changed its id")
	}
	// Agents: bob lost his call and his membership; carol (held) and dave (ringing) are busy.
	wantState := map[callbridge.AgentID]callbridge.AgentState{
		"alice": callbridge.AgentBusy, "bob": callbridge.AgentLoggedOut, "carol": callbridge.AgentBusy, "dave": callbridge.AgentBusy,
	}
	for id, st := range wantState {
		if a := f.agent(acme, id); a.State != st {
			t.Fatalf("%s = %+v, want %s", id, a, st)
		}
	}
	if a := agents["bob"]; len(a) != 1 || a[0].State != callbridge.AgentLoggedOut {
		t.Fatalf("bob's events = %+v (no wrap-up for a logged-out agent)", a)
	}
	if a := f.agent(globex, "hank"); a.State != callbridge.AgentReady {
		t.Fatalf("hank = %+v", a)
	}
	// Dave's wrap_up pause is stale (the engine has no wrap-up for him): lifted.
	want := []callbridge.SwitchCommand{{Type: callbridge.SwitchSetMemberState, Tenant: acme, Device: "1004", MemberName: "Dave Acme",
		Action: callbridge.MemberPause, Queues: []callbridge.QueueName{"acme-support"}}}
	if !slices.EqualFunc(out.Commands, want, cmdEqual) {
		t.Fatalf("commands = %+v", out.Commands)
	}

	// The same snapshot again changes nothing.
	again := f.ev(snapshot(callbridge.Snapshot{
		Calls: []callbridge.SnapshotCall{
			{PBXCallID: "known", Parties: []callbridge.SnapshotParty{{Device: caller, State: callbridge.ConnConnected, External: true}, {Device: "1001", State: callbridge.ConnConnected}}},
			{PBXCallID: "new", Parties: []callbridge.SnapshotParty{
				{Device: "+15551230009", State: callbridge.ConnConnected, External: true},
				{Device: "1003", State: callbridge.ConnHeld},
				{Device: "1004", State: callbridge.ConnAlerting},
			}},
			{PBXCallID: "waiting", Parties: []callbridge.SnapshotParty{{Device: "+15551230010", State: callbridge.ConnConnected, External: true}, {Device: "globex-sales", State: callbridge.ConnQueued}}},
		},
		Members: []callbridge.SnapshotMember{
			{Device: "1001", Queue: "acme-support"},
			{Device: "1003", Queue: "acme-support", Paused: true, Reason: "training"},
			{Device: "1004", Queue: "acme-support"},
			{Device: "2002", Queue: "globex-sales"},
		},
	}))
	if len(again.Events)+len(again.Commands) != 0 {
		t.Fatalf("repeated snapshot: %v %+v", types(again), again.Commands)
	}

	// A party that left meanwhile is cleared with cause resync.
	out = f.ev(snapshot(callbridge.Snapshot{
		Calls: []callbridge.SnapshotCall{
			{PBXCallID: "known", Parties: []callbridge.SnapshotParty{{Device: caller, State: callbridge.ConnConnected, External: true}}},
		},
	}))
	calls, _ = eventsByCall(out)
	if !slices.Equal(calls["known"], []callbridge.EventType{callbridge.EventCallConnectionCleared}) ||
		!slices.Equal(calls["new"], []callbridge.EventType{callbridge.EventCallCleared}) ||
		!slices.Equal(calls["waiting"], []callbridge.EventType{callbridge.EventCallCleared}) {
		t.Fatalf("events = %v", calls)
	}
	for _, tn := range []callbridge.TenantID{acme, globex} {
		for _, a := range f.e.Agents(tn) {
			if a.State == callbridge.AgentBusy || a.State != callbridge.AgentLoggedOut {
				t.Fatalf("%s after an empty member list: %+v", a.ID, a)
			}
		}
	}
}

// TestSnapshotConsultation: a consultation in a snapshot is linked to its call, whatever the
// order of the list.
func TestSnapshotConsultation(t *testing.T) {
	f := newFixture(t)
	f.ev(snapshot(callbridge.Snapshot{Calls: []callbridge.SnapshotCall{
		{PBXCallID: "q1", ConsultOf: "p1", Direction: callbridge.DirInternal, Parties: []callbridge.SnapshotParty{
			{Device: "1001", State: callbridge.ConnConnected}, {Device: "1002", State: callbridge.ConnConnected}}},
		{PBXCallID: "p1", Direction: callbridge.DirInbound, DNIS: didAcme, ANI: caller, Data: map[string]string{"IVR_ACCOUNT": "9"},
			Parties: []callbridge.SnapshotParty{{Device: caller, State: callbridge.ConnConnected, External: true}, {Device: "1001", State: callbridge.ConnHeld}}},
	}}))
	p1, q1 := f.call(acme, "p1"), f.call(acme, "q1")
	if q1.ConsultOf != p1.ID || q1.AttachedData["IVR_ACCOUNT"] != "9" {
		t.Fatalf("consultation = %+v, call %+v", q1, p1)
	}
}

// TestFinalEmptySnapshot: an empty snapshot clears every call and logs every agent out.
func TestFinalEmptySnapshot(t *testing.T) {
	f := newFixture(t)
	callsSetup(f)
	out := f.ev(snapshot(callbridge.Snapshot{}))
	n := 0
	for _, ev := range out.Events {
		if ev.Type == callbridge.EventCallCleared {
			n++
		}
	}
	if n != 4 || len(f.e.Calls(acme))+len(f.e.Calls(globex)) != 0 {
		t.Fatalf("cleared %d calls; left %v %v", n, f.e.Calls(acme), f.e.Calls(globex))
	}
	for _, a := range append(f.e.Agents(acme), f.e.Agents(globex)...) {
		if a.State != callbridge.AgentLoggedOut {
			t.Fatalf("agent %+v", a)
		}
	}
}

// TestAgentSnapshot: what a desktop draws itself from.
func TestAgentSnapshot(t *testing.T) {
	f := newFixture(t)
	callsSetup(f)
	s, err := f.e.Snapshot(acme, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if s.Agent.ID != "alice" || s.Agent.State != callbridge.AgentBusy || s.Agent.Device != "1001" || s.Seq != 0 {
		t.Fatalf("snapshot agent = %+v", s.Agent)
	}
	if len(s.Calls) != 1 || s.Calls[0].PBXCallID != "p1" {
		t.Fatalf("snapshot calls = %+v", s.Calls)
	}
	if !slices.Equal(s.ReasonCodes, []string{"lunch", "meeting", "training"}) {
		t.Fatalf("reason codes = %v", s.ReasonCodes)
	}
	if s, _ := f.e.Snapshot(acme, "dave"); s.Calls == nil || len(s.Calls) != 0 {
		t.Fatalf("dave's calls = %#v", s.Calls)
	}
	_, err = f.e.Snapshot(acme, "gina")
	wantCode(t, err, callbridge.ENotFound)
	_, err = f.e.Snapshot("initech", "alice")
	wantCode(t, err, callbridge.ENotFound)
	_, err = f.e.Snapshot(acme, "sue")
	wantCode(t, err, callbridge.ENotFound)

	agents := f.e.Agents(acme)
	var ids []callbridge.AgentID
	for _, a := range agents {
		ids = append(ids, a.ID)
	}
	if !slices.Equal(ids, []callbridge.AgentID{"alice", "bob", "carol", "dave", "judy"}) {
		t.Fatalf("agents = %v", ids)
	}
}

// TestNewAndReload: the directory is checked at start; a reload keeps the state.
func TestNewAndReload(t *testing.T) {
	bad := []struct {
		name string
		edit func(d *callbridge.Directory)
	}{
		{"tenant id not a token", func(d *callbridge.Directory) { d.Tenants[0].ID = "ac me" }},
		{"duplicate tenant", func(d *callbridge.Directory) { d.Tenants[1].ID = acme }},
		{"device on two agents", func(d *callbridge.Directory) { d.Tenants[1].Users[0].Device = "1001" }},
		{"DID of two tenants", func(d *callbridge.Directory) { d.Tenants[1].DIDs = []string{"+" + didAcme} }},
		{"queue of two tenants", func(d *callbridge.Directory) { d.Tenants[1].Queues[0].Name = "acme-support" }},
		{"agent in an unknown queue", func(d *callbridge.Directory) { d.Tenants[0].Users[0].Queues = []callbridge.QueueName{"nope"} }},
		{"CR/LF in an interface", func(d *callbridge.Directory) { d.Tenants[0].Users[0].Interface = "PJSIP/1001\r\n" }},
		{"reserved reason code", func(d *callbridge.Directory) { d.Tenants[0].ReasonCodes = []string{callbridge.ReasonWrapUp} }},
		{"negative wrap-up", func(d *callbridge.Directory) { d.Tenants[0].WrapUpSeconds = -1 }},
		{"agent user name not a token", func(d *callbridge.Directory) { d.Tenants[0].Users[0].Username = "alice smith" }},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			d := testDirectory()
			tt.edit(&d)
			_, err := engine.New(engine.Config{Directory: d, NewCallID: idGen(), Now: t0})
			wantCode(t, err, callbridge.EInvalid)
			wantCode(t, engine.CheckDirectory(d), callbridge.EInvalid)
		})
	}
	t.Run("NewCallID is required", func(t *testing.T) {
		_, err := engine.New(engine.Config{Directory: testDirectory(), Now: t0})
		wantCode(t, err, callbridge.EInvalid)
	})
	t.Run("agents start logged out at Now", func(t *testing.T) {
		f := newFixture(t)
		for _, a := range f.e.Agents(acme) {
			if a.State != callbridge.AgentLoggedOut || !a.Since.Equal(t0) {
				t.Fatalf("agent = %+v", a)
			}
		}
	})
	t.Run("reload keeps state", func(t *testing.T) {
		f := newFixture(t)
		f.logOn("1001", "acme-support")
		f.answeredCall("p1", "1001")
		d := testDirectory()
		d.Tenants[0].Users = append(d.Tenants[0].Users[:1], callbridge.UserConfig{Username: "zoe", Device: "1005", Name: "Zoe"})
		f.e.Reload(d)
		if a := f.agent(acme, "alice"); a.State != callbridge.AgentBusy {
			t.Fatalf("alice = %+v", a)
		}
		if a := f.agent(acme, "zoe"); a.State != callbridge.AgentLoggedOut {
			t.Fatalf("zoe = %+v", a)
		}
		if _, err := f.e.Snapshot(acme, "bob"); callbridge.ErrorCode(err) != callbridge.ENotFound {
			t.Fatalf("bob still known: %v", err)
		}
		if c := f.call(acme, "p1"); c.AttachedData["IVR_ACCOUNT"] != "12345" {
			t.Fatalf("call = %+v", c)
		}
		wantTypes(t, f.ev(alerting("p1", "1005")), callbridge.EventCallDelivered)
	})
}

// TestSnapshotQueueConnection: a snapshot's queued party is the queue connection of the call;
// a call that no longer waits loses it with cause resync.
func TestSnapshotQueueConnection(t *testing.T) {
	f := newFixture(t)
	waiting := callbridge.SnapshotCall{PBXCallID: "w", Direction: callbridge.DirInbound, ANI: caller, DNIS: didAcme, Queue: "acme-support",
		Parties: []callbridge.SnapshotParty{{Device: caller, State: callbridge.ConnConnected, External: true}, {Device: "acme-support", State: callbridge.ConnQueued}}}
	out := f.ev(snapshot(callbridge.Snapshot{Calls: []callbridge.SnapshotCall{waiting}}))
	if ce := callData(only(t, out, callbridge.EventCallQueued)); ce.Device != "acme-support" || len(ce.Connections) != 2 || ce.Connections[1].State != callbridge.ConnQueued {
		t.Fatalf("queued = %+v", ce)
	}
	wantTypes(t, f.ev(snapshot(callbridge.Snapshot{Calls: []callbridge.SnapshotCall{waiting}})))
	// Moved to another queue meanwhile.
	moved := waiting
	moved.Parties = []callbridge.SnapshotParty{waiting.Parties[0], {Device: "acme-vip", State: callbridge.ConnQueued}}
	out = f.ev(snapshot(callbridge.Snapshot{Calls: []callbridge.SnapshotCall{moved}}))
	wantTypes(t, out, callbridge.EventCallConnectionCleared, callbridge.EventCallQueued)
	// Answered meanwhile by alice: the queue connection goes, alice's comes.
	answered := waiting
	answered.Parties = []callbridge.SnapshotParty{waiting.Parties[0], {Device: "1001", State: callbridge.ConnConnected}}
	out = f.ev(snapshot(callbridge.Snapshot{Calls: []callbridge.SnapshotCall{answered}}))
	wantTypes(t, out, callbridge.EventCallConnectionCleared, callbridge.EventCallEstablished)
	if ce := callData(out.Events[0]); ce.Device != "acme-vip" || ce.Cause != callbridge.CauseResync {
		t.Fatalf("connection_cleared = %+v", ce)
	}
	if c := f.call(acme, "w"); len(c.Connections) != 2 || c.Connections[1].Device != "1001" {
		t.Fatalf("connections = %+v", c.Connections)
	}
}
