package engine_test

import (
	"slices"
	"testing"

	"github.com/callbridge/callbridge"
	"github.com/callbridge/callbridge/engine"
)

// audienceLog collects the call events of a run, to check who received what.
type audienceLog struct {
	t   *testing.T
	evs []callbridge.Event
}

func (l *audienceLog) add(out engine.Output) engine.Output {
	for _, ev := range out.Events {
		if ev.Type.IsCall() {
			l.evs = append(l.evs, ev)
		}
	}
	return out
}

// received returns the call events agent a received from index from on.
func (l *audienceLog) received(a callbridge.AgentID, from int) []callbridge.Event {
	var out []callbridge.Event
	for _, ev := range l.evs[from:] {
		if slices.Contains(ev.Audience, a) {
			out = append(out, ev)
		}
	}
	return out
}

// lastFor returns the index of the last event of typ about device d, failing when there is
// none.
func (l *audienceLog) lastFor(typ callbridge.EventType, d callbridge.DeviceID) int {
	l.t.Helper()
	for i := len(l.evs) - 1; i >= 0; i-- {
		if l.evs[i].Type == typ && callData(l.evs[i]).Device == d {
			return i
		}
	}
	l.t.Fatalf("no %s about %s in %v", typ, d, l.types())
	return -1
}

func (l *audienceLog) types() []callbridge.EventType {
	var ts []callbridge.EventType
	for _, ev := range l.evs {
		ts = append(ts, ev.Type)
	}
	return ts
}

// wantNone fails when agent a received any event from index from on.
func (l *audienceLog) wantNone(a callbridge.AgentID, from int) {
	l.t.Helper()
	if got := l.received(a, from); len(got) > 0 {
		var ts []string
		for _, ev := range got {
			ts = append(ts, string(ev.Type)+" "+string(callData(ev).Device))
		}
		l.t.Fatalf("%s received %v after their part of the call ended", a, ts)
	}
}

// wantReached fails unless the event at index i reached agent a.
func (l *audienceLog) wantReached(a callbridge.AgentID, i int) {
	l.t.Helper()
	if ev := l.evs[i]; !slices.Contains(ev.Audience, a) {
		l.t.Fatalf("%s about %s did not reach %s: audience %v", ev.Type, callData(ev).Device, a, ev.Audience)
	}
}

// bobsPartAfterAlice plays bob's part of call p1 once alice is gone: he answers, attaches
// private notes and CRM data, holds, retrieves, hangs up, and saves his wrap-up.
func bobsPartAfterAlice(t *testing.T, f *fixture, l *audienceLog, id callbridge.CallID) {
	t.Helper()
	l.add(f.ev(connected("p1", "1002")))
	upd := cmd(callbridge.CmdUpdateCallData, "bob")
	upd.CallID, upd.Notes, upd.AttachedData = id, "bob's private note", map[string]string{"crm_case": "C-9"}
	_, out := f.mustDo(upd)
	l.add(out)
	l.add(f.evs(sev(callbridge.SwitchHeld, "p1", "1002"), sev(callbridge.SwitchRetrieved, "p1", "1002"), cleared("p1")))
	_, out = f.mustDo(dispo("bob", id, "sale", "bob's wrap-up notes"))
	l.add(out)
	for _, typ := range []callbridge.EventType{callbridge.EventCallDataUpdated, callbridge.EventCallHeld, callbridge.EventCallCleared, callbridge.EventCallDispositionSet} {
		if !slices.ContainsFunc(l.evs, func(ev callbridge.Event) bool { return ev.Type == typ && slices.Contains(ev.Audience, "bob") }) {
			t.Fatalf("bob never received %s: %v", typ, l.types())
		}
	}
}

// TestAudienceEndsWithTheAgentsPart: an agent receives a call's events while, and only
// while, a connection of theirs is on the call, plus the event that ends their part.
func TestAudienceEndsWithTheAgentsPart(t *testing.T) {
	t.Run("single-step transfer: the transferring agent sees nothing of the new agent", func(t *testing.T) {
		f := newFixture(t)
		f.logOn("1001", "acme-support")
		f.logOn("1002", "acme-support")
		l := &audienceLog{t: t}
		l.add(f.evs(inbound("p1", didAcme, ivr()), queued("p1", "acme-support"), alerting("p1", "1001"), connected("p1", "1001")))
		id := f.call(acme, "p1").ID
		x := cmd(callbridge.CmdSingleStepTransfer, "alice")
		x.CallID, x.To, x.Notes = id, "bob", "wants a refund"
		p, err := f.e.Plan(x)
		if err != nil {
			t.Fatal(err)
		}
		f.e.Stage(x, p)
		l.add(f.ev(callbridge.SwitchEvent{Type: callbridge.SwitchTransferred, PBXCallID: "p1", TransferringDevice: "1001", TransferredTo: "1002"}))
		l.add(f.e.Apply(x, p))
		end := l.lastFor(callbridge.EventCallTransferred, "")
		l.wantReached("alice", end)
		l.add(f.ev(alerting("p1", "1002")))
		if pop := l.evs[l.lastFor(callbridge.EventCallDelivered, "1002")]; callData(pop).AttachedData["notes"] != "wants a refund" {
			t.Fatalf("bob's pop = %+v", callData(pop).AttachedData)
		}
		bobsPartAfterAlice(t, f, l, id)
		l.wantNone("alice", end+1)

		// alice's own wrap-up: hers only, and what she saw of the call, not bob's notes.
		_, out := f.mustDo(dispo("alice", id, "transferred", "alice's notes"))
		ev := only(t, out, callbridge.EventCallDispositionSet)
		if !slices.Equal(ev.Audience, []callbridge.AgentID{"alice"}) {
			t.Fatalf("alice's disposition_set goes to %v", ev.Audience)
		}
		if ad := callData(ev).AttachedData; ad["notes"] != "wants a refund" || ad["crm_case"] != "" {
			t.Fatalf("alice's disposition_set shows %v: what bob attached after she left", ad)
		}
		if ce := callData(ev); slices.ContainsFunc(ce.Connections, func(cn callbridge.Connection) bool { return cn.Agent == "bob" && cn.State == callbridge.ConnConnected }) {
			t.Fatalf("alice's disposition_set shows bob talking: %+v", ce.Connections)
		}
	})

	t.Run("ring-no-answer: the agent the call rang first sees nothing of the next one", func(t *testing.T) {
		f := newFixture(t)
		f.logOn("1001", "acme-support")
		f.logOn("1002", "acme-support")
		l := &audienceLog{t: t}
		l.add(f.evs(inbound("p1", didAcme, ivr()), queued("p1", "acme-support"), alerting("p1", "1001")))
		id := f.call(acme, "p1").ID
		l.add(f.ev(callbridge.SwitchEvent{Type: callbridge.SwitchFailed, PBXCallID: "p1", Device: "1001", Cause: callbridge.CauseNoAnswer}))
		end := l.lastFor(callbridge.EventCallDiverted, "1001")
		l.wantReached("alice", end)
		l.add(f.ev(alerting("p1", "1002")))
		bobsPartAfterAlice(t, f, l, id)
		l.wantNone("alice", end+1)
		if _, _, err := f.do(dispo("alice", id, "sale", "")); callbridge.ErrorCode(err) != callbridge.EForbidden {
			t.Fatalf("alice's disposition of a call she never answered: %v", err)
		}
	})

	t.Run("a consultation's receiver does not see the consulting agent's later notes", func(t *testing.T) {
		f := newFixture(t)
		f.logOn("1001", "acme-support")
		f.logOn("1002", "acme-support")
		l := &audienceLog{t: t}
		l.add(f.evs(inbound("p1", didAcme, ivr()), queued("p1", "acme-support"), alerting("p1", "1001"), connected("p1", "1001")))
		id := f.call(acme, "p1").ID
		// alice consults bob, who answers and then hangs up the consultation.
		l.add(f.evs(sev(callbridge.SwitchHeld, "p1", "1001"),
			callbridge.SwitchEvent{Type: callbridge.SwitchCallStarted, PBXCallID: "q1", Direction: callbridge.DirInternal, Device: "1001", ConsultOf: "p1"},
			connected("q1", "1001"), alerting("q1", "1002"), connected("q1", "1002")))
		upd := cmd(callbridge.CmdUpdateCallData, "alice")
		upd.CallID, upd.Notes = id, "said during the consultation"
		_, out := f.mustDo(upd)
		l.add(out)
		l.wantNone("bob", l.lastFor(callbridge.EventCallDataUpdated, "")) // bob is on the consultation, not on the call
		l.add(f.evs(callbridge.SwitchEvent{Type: callbridge.SwitchConnectionCleared, PBXCallID: "q1", Device: "1002"}, cleared("q1"),
			sev(callbridge.SwitchRetrieved, "p1", "1001")))
		upd.Notes = "after the consultation"
		_, out = f.mustDo(upd)
		l.add(out)
		from := len(l.evs) - 1
		l.add(f.ev(cleared("p1")))
		_, out = f.mustDo(dispo("alice", id, "done", "alice's wrap-up notes"))
		l.add(out)
		l.wantNone("bob", from)

		// The same with a conference that bob leaves: his part ends with his connection_cleared.
		f.logOn("1003", "acme-support")
		l.add(f.evs(inbound("p2", didAcme, ivr()), queued("p2", "acme-support"), alerting("p2", "1003"), connected("p2", "1003"),
			sev(callbridge.SwitchHeld, "p2", "1003"),
			callbridge.SwitchEvent{Type: callbridge.SwitchCallStarted, PBXCallID: "q2", Direction: callbridge.DirInternal, Device: "1003", ConsultOf: "p2"},
			connected("q2", "1003"), alerting("q2", "1002"), connected("q2", "1002"),
			callbridge.SwitchEvent{Type: callbridge.SwitchConferenced, PBXCallID: "p2", ConsultPBXCallID: "q2", Device: "1003", TransferredTo: "1002"},
			callbridge.SwitchEvent{Type: callbridge.SwitchConnectionCleared, PBXCallID: "p2", Device: "1002"}))
		end := l.lastFor(callbridge.EventCallConnectionCleared, "1002")
		l.wantReached("bob", end)
		id2 := f.call(acme, "p2").ID
		upd = cmd(callbridge.CmdUpdateCallData, "carol")
		upd.CallID, upd.Notes = id2, "carol after bob left"
		_, out = f.mustDo(upd)
		l.add(out)
		l.add(f.ev(cleared("p2")))
		_, out = f.mustDo(dispo("carol", id2, "done", "carol's wrap-up notes"))
		l.add(out)
		l.wantNone("bob", end+1)
		// bob answered p2 (in the conference): his disposition shows the call as he left it.
		_, out = f.mustDo(dispo("bob", id2, "done", ""))
		if ad := callData(only(t, out, callbridge.EventCallDispositionSet)).AttachedData; ad["notes"] != "" {
			t.Fatalf("bob's disposition_set shows carol's later notes: %v", ad)
		}
	})
}
