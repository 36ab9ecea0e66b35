package engine_test

import (
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/callbridge/callbridge"
)

func makeCall(agent callbridge.AgentID, to string) callbridge.Command {
	c := cmd(callbridge.CmdMakeCall, agent)
	c.To = to
	return c
}

// outboundStarted is the driver's call_started for a make_call (agent-first originate).
func outboundStarted(pbx string, dev callbridge.DeviceID, corr callbridge.CallID) callbridge.SwitchEvent {
	return callbridge.SwitchEvent{Type: callbridge.SwitchCallStarted, PBXCallID: pbx, Direction: callbridge.DirOutbound,
		Device: dev, ANI: string(dev), DNIS: "15557654321", CorrelationID: string(corr), Data: map[string]string{"CTI_TENANT": "acme"}}
}

// TestMakeCall: the reserved CallID becomes the call's id when the driver's call_started
// carries it, whether Apply ran before or not; unclaimed reservations expire.
func TestMakeCall(t *testing.T) {
	t.Run("call_started claims the reservation", func(t *testing.T) {
		f := newFixture(t)
		f.logOn("1003", "acme-support")
		c := makeCall("carol", "15557654321")
		c.AttachedData = map[string]string{"crm_contact": "K-7"}
		p, out := f.mustDo(c)
		wantTypes(t, out)
		id := p.Result.CallID
		out = f.ev(outboundStarted("o1", "1003", id))
		ev := only(t, out, callbridge.EventCallOriginated)
		ce := callData(ev)
		if ev.CallID != id || ce.Direction != callbridge.DirOutbound || ce.Agent != "carol" || ce.AttachedData["crm_contact"] != "K-7" {
			t.Fatalf("originated = %+v", ev)
		}
		if !slices.Equal(ev.Audience, []callbridge.AgentID{"carol"}) {
			t.Fatalf("audience = %v", ev.Audience)
		}
		// Agent-first: the agent's phone answers, then the customer rings and answers.
		f.wait(2 * time.Second)
		wantTypes(t, f.ev(connected("o1", "1003")), callbridge.EventCallEstablished)
		if !f.call(acme, "o1").AnsweredAt.IsZero() {
			t.Fatal("AnsweredAt set by the agent's own leg of an outbound call")
		}
		f.wait(3 * time.Second)
		out = f.evs(callbridge.SwitchEvent{Type: callbridge.SwitchAlerting, PBXCallID: "o1", Device: "15557654321", External: true},
			callbridge.SwitchEvent{Type: callbridge.SwitchConnected, PBXCallID: "o1", Device: "15557654321", External: true})
		wantTypes(t, out, callbridge.EventCallDelivered, callbridge.EventCallEstablished)
		if got := f.call(acme, "o1").AnsweredAt; !got.Equal(f.now) {
			t.Fatalf("AnsweredAt = %v, want the customer's answer %v", got, f.now)
		}
		// A customer call: wrap-up afterwards.
		f.ev(cleared("o1"))
		if a := f.agent(acme, "carol"); a.State != callbridge.AgentWorkingAfterCall {
			t.Fatalf("carol = %+v", a)
		}
	})

	t.Run("call_started arrives before Apply", func(t *testing.T) {
		f := newFixture(t)
		c := makeCall("carol", "15557654321")
		c.AttachedData = map[string]string{"crm_contact": "K-7"}
		c.Time = f.now
		p, err := f.e.Plan(c)
		if err != nil {
			t.Fatal(err)
		}
		out := f.ev(outboundStarted("o1", "1003", p.Result.CallID))
		if ev := only(t, out, callbridge.EventCallOriginated); ev.CallID != p.Result.CallID {
			t.Fatalf("originated call id %s, reserved %s", ev.CallID, p.Result.CallID)
		}
		out = f.e.Apply(c, p)
		if ev := only(t, out, callbridge.EventCallDataUpdated); ev.CallID != p.Result.CallID || callData(ev).AttachedData["crm_contact"] != "K-7" {
			t.Fatalf("data_updated = %+v", ev)
		}
	})

	t.Run("a driver without correlation: the oldest reservation of the device", func(t *testing.T) {
		f := newFixture(t)
		p, _ := f.mustDo(makeCall("carol", "15557654321"))
		out := f.ev(outboundStarted("o1", "1003", ""))
		if ev := only(t, out, callbridge.EventCallOriginated); ev.CallID != p.Result.CallID {
			t.Fatalf("originated call id %s, reserved %s", ev.CallID, p.Result.CallID)
		}
	})

	t.Run("a pending make_call blocks a second one until it expires", func(t *testing.T) {
		f := newFixture(t)
		f.mustDo(makeCall("carol", "15557654321"))
		f.wait(59 * time.Second)
		f.tick()
		_, _, err := f.do(makeCall("carol", "15557654321"))
		wantCode(t, err, callbridge.EConflict)
		f.wait(time.Second)
		if out := f.tick(); len(out.Events)+len(out.Commands) != 0 {
			t.Fatalf("expiry output: %+v", out)
		}
		p, _ := f.mustDo(makeCall("carol", "15557654321"))
		// The fresh reservation is claimed as usual.
		out := f.ev(outboundStarted("o1", "1003", p.Result.CallID))
		if ev := only(t, out, callbridge.EventCallOriginated); ev.CallID != p.Result.CallID {
			t.Fatalf("call id %s, want %s", ev.CallID, p.Result.CallID)
		}
	})
}

// TestIdempotency: a repeated (tenant, agent, key) returns the first result and no commands.
func TestIdempotency(t *testing.T) {
	f := newFixture(t)
	c := makeCall("carol", "15557654321")
	c.IdempotencyKey = "click-1"
	p1, _ := f.mustDo(c)

	f.wait(time.Minute)
	c.Time = f.now
	p2, err := f.e.Plan(c)
	if err != nil {
		t.Fatal(err)
	}
	if !p2.Duplicate || len(p2.Commands) != 0 || p2.Result != p1.Result {
		t.Fatalf("repeat plan = %+v, first %+v", p2, p1)
	}
	before := state(f.e)
	if out := f.e.Apply(c, p2); len(out.Events)+len(out.Commands) != 0 {
		t.Fatalf("duplicate apply output: %+v", out)
	}
	sameState(t, before, state(f.e))

	// The same key for another command is a conflict.
	other := stateCmd("carol", callbridge.AgentReady, "")
	other.IdempotencyKey, other.Time = "click-1", f.now
	_, err = f.e.Plan(other)
	wantCode(t, err, callbridge.EConflict)

	// Another agent's key is their own.
	c2 := makeCall("dave", "15557654321")
	c2.IdempotencyKey, c2.Time = "click-1", f.now
	if p, err := f.e.Plan(c2); err != nil || p.Duplicate {
		t.Fatalf("dave's plan = %+v, %v", p, err)
	}

	// After the window the key is forgotten.
	f.wait(10 * time.Minute)
	f.tick()
	c.Time = f.now
	p3, err := f.e.Plan(c)
	if err != nil || p3.Duplicate || p3.Result.CallID == p1.Result.CallID {
		t.Fatalf("plan after the window = %+v, %v", p3, err)
	}

	// A command that was planned but never applied (the switch refused it) is not remembered.
	f2 := newFixture(t)
	c4 := stateCmd("alice", callbridge.AgentReady, "")
	c4.IdempotencyKey, c4.Time = "k", f2.now
	if _, err := f2.e.Plan(c4); err != nil {
		t.Fatal(err)
	}
	if p, err := f2.e.Plan(c4); err != nil || p.Duplicate || len(p.Commands) != 1 {
		t.Fatalf("second plan = %+v, %v", p, err)
	}
}

// consultScenario: alice answers inbound call p1 (acme-support), adds a note, and starts a
// consultation to bob through the command; the driver reports it as call q1.
func consultScenario(t *testing.T, f *fixture) (orig, consult callbridge.CallID) {
	t.Helper()
	f.logOn("1001", "acme-support")
	f.logOn("1002", "acme-support")
	orig = f.answeredCall("p1", "1001").ID
	up := callCmd(callbridge.CmdUpdateCallData, "alice", orig)
	up.AttachedData = map[string]string{"note": "VIP"}
	f.mustDo(up)

	cc := callCmd(callbridge.CmdConsultationCall, "alice", orig)
	cc.To = "bob"
	cc.AttachedData = map[string]string{"transfer_reason": "billing dispute"}
	p, out := f.mustDo(cc)
	wantTypes(t, out)
	consult = p.Result.CallID
	if consult == "" || consult == orig {
		t.Fatalf("consultation id %q (original %q)", consult, orig)
	}

	// Asterisk Atxfer: the agent's channel holds, the consultation leg starts.
	f.ev(sev(callbridge.SwitchHeld, "p1", "1001"))
	out = f.ev(callbridge.SwitchEvent{Type: callbridge.SwitchCallStarted, PBXCallID: "q1", Direction: callbridge.DirInternal,
		Device: "1001", ConsultOf: "p1", CorrelationID: string(consult), ANI: "1001", DNIS: "1002",
		Data: map[string]string{"IVR_ACCOUNT": "12345"}})
	ev := only(t, out, callbridge.EventCallOriginated)
	ce := callData(ev)
	if ev.CallID != consult || ce.ConsultOf != orig {
		t.Fatalf("consultation originated = %+v", ce)
	}
	want := map[string]string{"IVR_ACCOUNT": "12345", "IVR_REASON": "billing", "note": "VIP", "transfer_reason": "billing dispute"}
	if !maps.Equal(ce.AttachedData, want) {
		t.Fatalf("consultation data = %v, want %v", ce.AttachedData, want)
	}
	out = f.ev(alerting("q1", "1002"))
	ev = only(t, out, callbridge.EventCallDelivered)
	if ev.CallID != consult || !maps.Equal(callData(ev).AttachedData, want) || !slices.Equal(ev.Audience, []callbridge.AgentID{"alice", "bob"}) {
		t.Fatalf("consulted agent's pop = %+v", ev)
	}
	f.ev(connected("q1", "1002"))
	return orig, consult
}

// TestConsultativeTransfer: the original call_id stays; the consulted agent gets the customer
// with all the data; the consultation clears with cause transfer.
func TestConsultativeTransfer(t *testing.T) {
	f := newFixture(t)
	orig, consult := consultScenario(t, f)

	tc := callCmd(callbridge.CmdTransferCall, "alice", orig)
	p, _ := f.mustDo(tc)
	want := []callbridge.SwitchCommand{{Type: callbridge.SwitchTransferCall, Tenant: acme, PBXCallID: "p1", ConsultPBXCallID: "q1", Device: "1001"}}
	if !slices.EqualFunc(p.Commands, want, cmdEqual) {
		t.Fatalf("transfer plan = %+v", p.Commands)
	}

	out := f.ev(callbridge.SwitchEvent{Type: callbridge.SwitchTransferred, PBXCallID: "p1", ConsultPBXCallID: "q1",
		TransferringDevice: "1001", TransferredTo: "1002"})
	var calls []callbridge.EventType
	for _, ev := range out.Events {
		if ev.Type.IsCall() {
			calls = append(calls, ev.Type)
		}
	}
	if !slices.Equal(calls, []callbridge.EventType{callbridge.EventCallTransferred, callbridge.EventCallCleared}) {
		t.Fatalf("call events = %v", calls)
	}
	tr := out.Events[0]
	ce := callData(tr)
	if tr.CallID != orig || ce.TransferringDevice != "1001" || ce.TransferredTo != "1002" || ce.ConsultCallID != consult {
		t.Fatalf("transferred = %+v", ce)
	}
	if ce.AttachedData["transfer_reason"] != "billing dispute" || ce.AttachedData["note"] != "VIP" || ce.AttachedData["IVR_ACCOUNT"] != "12345" {
		t.Fatalf("transferred data = %v", ce.AttachedData)
	}
	if len(ce.Connections) != 2 || ce.Connections[0].Device != caller || ce.Connections[1].Device != "1002" || ce.Connections[1].State != callbridge.ConnConnected {
		t.Fatalf("transferred connections = %+v", ce.Connections)
	}
	if !slices.Equal(tr.Audience, []callbridge.AgentID{"bob", "alice"}) { // bob is on it, alice leaves with it
		t.Fatalf("audience = %v", tr.Audience)
	}
	cl := only(t, out, callbridge.EventCallCleared)
	if cl.CallID != consult || callData(cl).Cause != callbridge.CauseTransferred {
		t.Fatalf("consultation cleared = %+v", callData(cl))
	}
	if a := f.agent(acme, "alice"); a.State != callbridge.AgentWorkingAfterCall {
		t.Fatalf("alice = %+v", a)
	}
	if a := f.agent(acme, "bob"); a.State != callbridge.AgentBusy {
		t.Fatalf("bob = %+v", a)
	}
	// The consultation's own later events find nothing; the customer call goes on with bob.
	wantTypes(t, f.evs(callbridge.SwitchEvent{Type: callbridge.SwitchConnectionCleared, PBXCallID: "q1", Device: "1002"}, cleared("q1")))
	if c := f.call(acme, "p1"); c.ID != orig {
		t.Fatalf("call id changed: %s", c.ID)
	}
	snap, _ := f.e.Snapshot(acme, "bob")
	if len(snap.Calls) != 1 || snap.Calls[0].ID != orig {
		t.Fatalf("bob's snapshot = %+v", snap.Calls)
	}
	out = f.ev(cleared("p1"))
	if ev := only(t, out, callbridge.EventCallCleared); ev.CallID != orig || !slices.Equal(ev.Audience, []callbridge.AgentID{"bob"}) {
		t.Fatalf("cleared = %+v", ev)
	}
	if a := f.agent(acme, "bob"); a.State != callbridge.AgentWorkingAfterCall {
		t.Fatalf("bob = %+v", a)
	}
}

// TestConference: the consultation's parties join the original call; the consultation
// clears with cause conference.
func TestConference(t *testing.T) {
	f := newFixture(t)
	orig, consult := consultScenario(t, f)
	cc := callCmd(callbridge.CmdConferenceCall, "alice", orig)
	cc.ConsultCallID = consult
	p, _ := f.mustDo(cc)
	want := []callbridge.SwitchCommand{{Type: callbridge.SwitchConferenceCall, Tenant: acme, PBXCallID: "p1", ConsultPBXCallID: "q1", Device: "1001"}}
	if !slices.EqualFunc(p.Commands, want, cmdEqual) {
		t.Fatalf("conference plan = %+v", p.Commands)
	}
	out := f.ev(callbridge.SwitchEvent{Type: callbridge.SwitchConferenced, PBXCallID: "p1", ConsultPBXCallID: "q1", Device: "1001", TransferredTo: "1002"})
	wantTypes(t, out, callbridge.EventCallConferenced, callbridge.EventCallCleared)
	conf := out.Events[0]
	ce := callData(conf)
	if conf.CallID != orig || ce.Device != "1001" || ce.Agent != "alice" || ce.TransferredTo != "1002" || ce.ConsultCallID != consult {
		t.Fatalf("conferenced = %+v", ce)
	}
	states := map[callbridge.DeviceID]callbridge.ConnectionState{}
	for _, cn := range ce.Connections {
		states[cn.Device] = cn.State
	}
	if !maps.Equal(states, map[callbridge.DeviceID]callbridge.ConnectionState{caller: callbridge.ConnConnected, "1001": callbridge.ConnConnected, "1002": callbridge.ConnConnected}) {
		t.Fatalf("conference connections = %+v", ce.Connections)
	}
	if cl := out.Events[1]; cl.CallID != consult || callData(cl).Cause != callbridge.CauseConferenced {
		t.Fatalf("consultation cleared = %+v", callData(cl))
	}
	if ce.AttachedData["transfer_reason"] != "billing dispute" {
		t.Fatalf("conference data = %v", ce.AttachedData)
	}
	// Alice leaves the conference; the customer stays with bob.
	out = f.ev(callbridge.SwitchEvent{Type: callbridge.SwitchConnectionCleared, PBXCallID: "p1", Device: "1001"})
	only(t, out, callbridge.EventCallConnectionCleared)
	if a := f.agent(acme, "alice"); a.State != callbridge.AgentWorkingAfterCall {
		t.Fatalf("alice = %+v", a)
	}
}

// TestConsultationRules: a consultation is planned once; its clearing without transfer leaves
// the original call alone; a phone-started consultation copies the data too.
func TestConsultationRules(t *testing.T) {
	t.Run("one consultation at a time", func(t *testing.T) {
		f := newFixture(t)
		orig, _ := consultScenario(t, f)
		cc := callCmd(callbridge.CmdConsultationCall, "alice", orig)
		cc.To = "dave"
		_, _, err := f.do(cc)
		wantCode(t, err, callbridge.EConflict)
	})
	t.Run("a consultation that ends does not touch the original", func(t *testing.T) {
		f := newFixture(t)
		orig, consult := consultScenario(t, f)
		out := f.ev(cleared("q1"))
		if ev := only(t, out, callbridge.EventCallCleared); ev.CallID != consult || callData(ev).Cause != callbridge.CauseNormal {
			t.Fatalf("cleared = %+v", ev)
		}
		if a := f.agent(acme, "alice"); a.State != callbridge.AgentBusy {
			t.Fatalf("alice = %+v (still holding the customer)", a)
		}
		if a := f.agent(acme, "bob"); a.State != callbridge.AgentReady {
			t.Fatalf("bob = %+v (an internal consultation has no wrap-up)", a)
		}
		if c := f.call(acme, "p1"); c.ID != orig || c.AttachedData["transfer_reason"] != "" {
			t.Fatalf("original = %+v", c)
		}
	})
	t.Run("a consultation started on the phone", func(t *testing.T) {
		f := newFixture(t)
		orig := f.answeredCall("p1", "1001").ID
		out := f.ev(callbridge.SwitchEvent{Type: callbridge.SwitchCallStarted, PBXCallID: "q1", Device: "1001", ConsultOf: "p1"})
		ev := only(t, out, callbridge.EventCallOriginated)
		ce := callData(ev)
		if ev.CallID == orig || ce.ConsultOf != orig || ce.Direction != callbridge.DirInternal || ce.AttachedData["IVR_ACCOUNT"] != "12345" {
			t.Fatalf("consultation = %+v", ce)
		}
	})
	t.Run("consultation_call whose call_started came first, without correlation", func(t *testing.T) {
		f := newFixture(t)
		orig := f.answeredCall("p1", "1001").ID
		cc := callCmd(callbridge.CmdConsultationCall, "alice", orig)
		cc.To, cc.AttachedData, cc.Time = "bob", map[string]string{"why": "help"}, f.now
		p, err := f.e.Plan(cc)
		if err != nil {
			t.Fatal(err)
		}
		f.ev(callbridge.SwitchEvent{Type: callbridge.SwitchCallStarted, PBXCallID: "q1", Device: "1001", ConsultOf: "p1"})
		out := f.e.Apply(cc, p)
		ev := only(t, out, callbridge.EventCallDataUpdated)
		if c := f.call(acme, "q1"); ev.CallID != c.ID || c.AttachedData["why"] != "help" {
			t.Fatalf("data_updated = %+v, consultation %+v", ev, c)
		}
	})
}
