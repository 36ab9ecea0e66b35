package engine_test

import (
	"strings"
	"testing"
	"time"

	"github.com/callbridge/callbridge"
	"github.com/callbridge/callbridge/engine"
)

func dispo(agent callbridge.AgentID, id callbridge.CallID, code, notes string) callbridge.Command {
	c := cmd(callbridge.CmdSetDisposition, agent)
	c.CallID, c.Disposition, c.Notes = id, code, notes
	return c
}

func TestSetDisposition(t *testing.T) {
	t.Run("during the call and after it, by the agent who answered", func(t *testing.T) {
		f := newFixture(t)
		f.logOn("1002", "acme-support")
		c := f.answeredCall("p1", "1002")
		_, out := f.mustDo(dispo("bob", c.ID, "sale", "wants the blue one"))
		ev := only(t, out, callbridge.EventCallDispositionSet)
		ce := callData(ev)
		if ev.CallID != c.ID || ce.Disposition != "sale" || ce.Notes != "wants the blue one" || ce.Agent != "bob" || ce.Device != "1002" {
			t.Fatalf("disposition_set = %+v", ce)
		}
		f.ev(cleared("p1"))
		if a := f.agent(acme, "bob"); a.State != callbridge.AgentWorkingAfterCall {
			t.Fatalf("bob = %+v", a)
		}
		// After the call, in wrap-up: saved, wrap-up goes on (no state given).
		p, out := f.mustDo(dispo("bob", c.ID, "callback", "line 1\nline 2"))
		ce = callData(only(t, out, callbridge.EventCallDispositionSet))
		if ce.EndedAt.IsZero() || ce.Disposition != "callback" || len(p.Commands) != 0 || f.agent(acme, "bob").State != callbridge.AgentWorkingAfterCall {
			t.Fatalf("after the call: %+v, plan %+v", ce, p)
		}
		if got := only(t, out, callbridge.EventCallDispositionSet).Audience; len(got) != 1 || got[0] != "bob" {
			t.Fatalf("audience = %v", got)
		}
		// With a state: save and end wrap-up in one command.
		d := dispo("bob", c.ID, "callback", "")
		d.State = callbridge.AgentReady
		p, out = f.mustDo(d)
		if len(p.Commands) != 1 || p.Commands[0].Action != callbridge.MemberPause || p.Commands[0].Paused {
			t.Fatalf("plan = %+v", p.Commands)
		}
		wantTypes(t, out, callbridge.EventCallDispositionSet, callbridge.EventAgentStateChanged)
		if a := f.agent(acme, "bob"); a.State != callbridge.AgentReady {
			t.Fatalf("bob = %+v", a)
		}
		d.State, d.Reason = callbridge.AgentNotReady, "lunch"
		_, out = f.mustDo(d)
		if a := agentData(only(t, out, callbridge.EventAgentStateChanged)); a.State != callbridge.AgentNotReady || a.Reason != "lunch" {
			t.Fatalf("bob = %+v", a)
		}
		// A supervisor may set it on bob's behalf.
		s := dispo("bob", c.ID, "sale", "")
		s.Role = callbridge.RoleSupervisor
		f.mustDo(s)
		// Too late: after DispositionWindow the call is forgotten.
		f.wait(engine.DispositionWindow)
		f.tick()
		_, _, err := f.do(dispo("bob", c.ID, "sale", ""))
		wantCode(t, err, callbridge.ENotFound)
	})

	t.Run("refusals change nothing", func(t *testing.T) {
		f := newFixture(t)
		f.logOn("1002", "acme-support")
		f.logOn("1003", "acme-support")
		c := f.answeredCall("p1", "1002")
		f.evs(inbound("p2", didAcme, ivr()), queued("p2", "acme-support"), alerting("p2", "1003"))
		ringing := f.call(acme, "p2")
		before := state(f.e)
		sup := dispo("carol", c.ID, "sale", "")
		sup.Role = callbridge.RoleSupervisor
		withState := func(st callbridge.AgentState, reason string) callbridge.Command {
			d := dispo("bob", c.ID, "sale", "")
			d.State, d.Reason = st, reason
			return d
		}
		reasonOnly := dispo("bob", c.ID, "sale", "")
		reasonOnly.Reason = "lunch"
		for _, tc := range []struct {
			name string
			cmd  callbridge.Command
			code string
		}{
			{"no call id", dispo("bob", "", "sale", ""), callbridge.EInvalid},
			{"no disposition", dispo("bob", c.ID, "", ""), callbridge.EInvalid},
			{"code with a space", dispo("bob", c.ID, "big sale", ""), callbridge.EInvalid},
			{"code with CR/LF", dispo("bob", c.ID, "sale\r\nAction: Hangup", ""), callbridge.EInvalid},
			{"notes too long", dispo("bob", c.ID, "sale", strings.Repeat("x", 4097)), callbridge.EInvalid},
			{"notes with NUL", dispo("bob", c.ID, "sale", "a\x00b"), callbridge.EInvalid},
			{"notes not UTF-8", dispo("bob", c.ID, "sale", "\xff"), callbridge.EInvalid},
			{"unknown call", dispo("bob", "01J999", "sale", ""), callbridge.ENotFound},
			{"another agent's call", dispo("carol", c.ID, "sale", ""), callbridge.EForbidden},
			{"a call the agent did not answer", dispo("carol", ringing.ID, "sale", ""), callbridge.EForbidden},
			{"supervisor naming an agent who did not answer", sup, callbridge.EConflict},
			{"busy is no state to ask for", withState(callbridge.AgentBusy, ""), callbridge.EInvalid},
			{"unknown reason code", withState(callbridge.AgentNotReady, "nap"), callbridge.EInvalid},
			{"reason without state", reasonOnly, callbridge.EInvalid},
		} {
			_, _, err := f.do(tc.cmd)
			if callbridge.ErrorCode(err) != tc.code {
				t.Errorf("%s: err = %v, want %s", tc.name, err, tc.code)
			}
		}
		sameState(t, before, state(f.e))
	})
}

func TestNextState(t *testing.T) {
	t.Run("not ready after this call, shown in every event, then wrap-up, then not_ready", func(t *testing.T) {
		f := newFixture(t)
		f.logOn("1002", "acme-support")
		f.answeredCall("p1", "1002")
		if a := f.agent(acme, "bob"); a.State != callbridge.AgentBusy || a.NextState != callbridge.AgentReady {
			t.Fatalf("bob = %+v", a)
		}
		f.mustDo(stateCmd("bob", callbridge.AgentNotReady, "training"))
		f.ev(cleared("p1"))
		if a := f.agent(acme, "bob"); a.State != callbridge.AgentWorkingAfterCall || a.NextState != callbridge.AgentNotReady || a.NextReason != "training" {
			t.Fatalf("bob in wrap-up = %+v", a)
		}
		f.wait(10 * time.Second)
		out := f.tick()
		a := agentData(only(t, out, callbridge.EventAgentStateChanged))
		if a.State != callbridge.AgentNotReady || a.Reason != "training" || a.NextState != "" || len(out.Commands) != 0 {
			t.Fatalf("bob = %+v, commands %+v", a, out.Commands)
		}
	})

	t.Run("log out after this call", func(t *testing.T) {
		f := newFixture(t)
		f.logOn("1002", "acme-support")
		f.answeredCall("p1", "1002")
		p, out := f.mustDo(stateCmd("bob", callbridge.AgentLoggedOut, ""))
		if len(p.Commands) != 0 {
			t.Fatalf("logged out during the call: %+v", p.Commands)
		}
		if a := agentData(only(t, out, callbridge.EventAgentStateChanged)); a.State != callbridge.AgentBusy || a.NextState != callbridge.AgentLoggedOut {
			t.Fatalf("bob = %+v", a)
		}
		out = f.ev(cleared("p1"))
		if a := f.agent(acme, "bob"); a.State != callbridge.AgentWorkingAfterCall || a.NextState != callbridge.AgentLoggedOut {
			t.Fatalf("bob = %+v", a)
		}
		f.ev(member("1002", "acme-support", true, true, callbridge.ReasonWrapUp))
		f.wait(10 * time.Second)
		out = f.tick()
		var removed bool
		for _, c := range out.Commands {
			removed = removed || c.Action == callbridge.MemberRemove && c.Device == "1002"
		}
		if !removed {
			t.Fatalf("no MemberRemove after wrap-up: %+v", out.Commands)
		}
		wantTypes(t, out, callbridge.EventAgentStateChanged, callbridge.EventAgentLoggedOff)
		av, _ := f.e.Availability(acme, "bob")
		if len(av.Reasons) != 1 || av.Reasons[0].Code != callbridge.UnavailLoggedOut || av.Reasons[0].Cause.Event != "set_agent_state" || av.Reasons[0].Cause.By != "bob" {
			t.Fatalf("availability = %+v", av)
		}
	})

	t.Run("ready during the call cancels a pending log-out", func(t *testing.T) {
		f := newFixture(t)
		f.logOn("1002", "acme-support")
		f.answeredCall("p1", "1002")
		f.mustDo(stateCmd("bob", callbridge.AgentLoggedOut, ""))
		f.mustDo(stateCmd("bob", callbridge.AgentReady, ""))
		if a := f.agent(acme, "bob"); a.NextState != callbridge.AgentReady {
			t.Fatalf("bob = %+v", a)
		}
		f.ev(cleared("p1"))
		f.wait(time.Minute)
		for _, c := range f.tick().Commands {
			if c.Action == callbridge.MemberRemove {
				t.Fatalf("logged out anyway: %+v", c)
			}
		}
	})
}

func TestStagedCommands(t *testing.T) {
	t.Run("blind transfer: data and notes are in the receiver's call.delivered before Apply", func(t *testing.T) {
		f := newFixture(t)
		f.logOn("1002", "acme-support")
		c := f.answeredCall("p1", "1002")
		x := callCmd(callbridge.CmdSingleStepTransfer, "bob", c.ID)
		x.To, x.Notes, x.AttachedData = "carol", "VIP, angry about invoice 7", map[string]string{"crm_case": "C-42"}
		x.Time = f.now
		p, err := f.e.Plan(x)
		if err != nil {
			t.Fatal(err)
		}
		if sc := p.Commands[0]; sc.To != "1003" || sc.Data != nil {
			t.Fatalf("switch command = %+v", sc)
		}
		f.e.Stage(x, p)
		// The switch's events overtake the reply.
		out := f.evs(callbridge.SwitchEvent{Type: callbridge.SwitchTransferred, PBXCallID: "p1", TransferringDevice: "1002", TransferredTo: "1003"},
			sev(callbridge.SwitchConnectionCleared, "p1", "1002"), alerting("p1", "1003"))
		// (bob leaves with the transfer: wrap-up; the switch's connection_cleared is a repeat.)
		wantTypes(t, out, callbridge.EventCallDataUpdated, callbridge.EventCallTransferred, callbridge.EventAgentStateChanged, callbridge.EventCallDelivered)
		del := callData(only(t, out, callbridge.EventCallDelivered))
		if del.AttachedData["crm_case"] != "C-42" || del.AttachedData[engine.NotesKey] != x.Notes || del.AttachedData["IVR_ACCOUNT"] != "12345" || del.Agent != "carol" {
			t.Fatalf("delivered = %+v", del)
		}
		wantTypes(t, f.e.Apply(x, p)) // nothing left to do
	})

	t.Run("consultation: the reservation is staged, the consulted party's pop has the data", func(t *testing.T) {
		f := newFixture(t)
		f.logOn("1002", "acme-support")
		c := f.answeredCall("p1", "1002")
		x := callCmd(callbridge.CmdConsultationCall, "bob", c.ID)
		x.To, x.Notes, x.Time = "1004", "asks for a refund", f.now
		p, err := f.e.Plan(x)
		if err != nil {
			t.Fatal(err)
		}
		f.e.Stage(x, p)
		// A driver without correlation ids (Asterisk Atxfer): claimed by device and call.
		out := f.evs(sev(callbridge.SwitchHeld, "p1", "1002"),
			callbridge.SwitchEvent{Type: callbridge.SwitchCallStarted, PBXCallID: "k1", ConsultOf: "p1", Device: "1002"},
			alerting("k1", "1004"))
		del := callData(only(t, out, callbridge.EventCallDelivered))
		if del.ID != p.Result.CallID || del.ConsultOf != c.ID || del.AttachedData[engine.NotesKey] != "asks for a refund" || del.AttachedData["IVR_REASON"] != "billing" {
			t.Fatalf("delivered = %+v (want call %s)", del, p.Result.CallID)
		}
		wantTypes(t, f.e.Apply(x, p))
	})

	t.Run("abort drops the reservation and the held data", func(t *testing.T) {
		f := newFixture(t)
		f.logOn("1002", "acme-support")
		c := f.answeredCall("p1", "1002")
		x := callCmd(callbridge.CmdSingleStepTransfer, "bob", c.ID)
		x.To, x.AttachedData, x.IdempotencyKey, x.Time = "1003", map[string]string{"k": "v"}, "key-1", f.now
		p, _ := f.e.Plan(x)
		f.e.Stage(x, p)
		// The same key while the first is in flight is refused.
		_, err := f.e.Plan(x)
		wantCode(t, err, callbridge.EConflict)
		f.e.Abort(x, p)
		out := f.evs(alerting("p1", "1003"))
		if _, ok := callData(only(t, out, callbridge.EventCallDelivered)).AttachedData["k"]; ok {
			t.Fatal("aborted data reached the call")
		}
		if _, err := f.e.Plan(x); err != nil {
			t.Fatalf("after Abort the key is free again: %v", err)
		}
		m := makeCall("dave", "15557654321")
		m.Time = f.now
		f.logOn("1004", "acme-support")
		mp, err := f.e.Plan(m)
		if err != nil {
			t.Fatal(err)
		}
		f.e.Stage(m, mp)
		if _, err := f.e.Plan(m); callbridge.ErrorCode(err) != callbridge.EConflict {
			t.Fatalf("second make_call while one is placed: %v", err)
		}
		f.e.Abort(m, mp)
		if _, err := f.e.Plan(m); err != nil {
			t.Fatalf("make_call after Abort: %v", err)
		}
	})

	t.Run("notes validation", func(t *testing.T) {
		f := newFixture(t)
		f.logOn("1002", "acme-support")
		c := f.answeredCall("p1", "1002")
		before := state(f.e)
		bad := []callbridge.Command{}
		x := callCmd(callbridge.CmdSingleStepTransfer, "bob", c.ID)
		x.To, x.Notes = "1003", "two\nlines"
		bad = append(bad, x)
		x.Notes = strings.Repeat("n", 1025)
		bad = append(bad, x)
		x.Notes, x.AttachedData = "n", map[string]string{engine.NotesKey: "also"}
		bad = append(bad, x)
		h := callCmd(callbridge.CmdHoldCall, "bob", c.ID)
		h.Notes = "not taken"
		bad = append(bad, h)
		h = callCmd(callbridge.CmdAnswerCall, "bob", c.ID)
		h.Disposition = "sale"
		bad = append(bad, h)
		for _, b := range bad {
			_, _, err := f.do(b)
			wantCode(t, err, callbridge.EInvalid)
		}
		sameState(t, before, state(f.e))
		u := callCmd(callbridge.CmdUpdateCallData, "bob", c.ID)
		u.Notes = "called back"
		_, out := f.mustDo(u)
		if callData(only(t, out, callbridge.EventCallDataUpdated)).AttachedData[engine.NotesKey] != "called back" {
			t.Fatal("notes not in the data")
		}
	})
}

func TestAvailabilityExplains(t *testing.T) {
	f := newFixture(t)
	av, err := f.e.Availability(acme, "bob")
	if err != nil || av.Routable || av.Reasons[0].Code != callbridge.UnavailLoggedOut || av.Reasons[0].Cause.Event != "start" {
		t.Fatalf("at start: %+v %v", av, err)
	}
	f.wait(time.Second)
	f.ev(member("1002", "acme-support", true, true, "lunch"))
	av, _ = f.e.Availability(acme, "bob")
	if r := av.Reasons[0]; r.Code != callbridge.UnavailNotReady || r.Reason != "lunch" || r.Cause.Source != "switch" || r.Cause.Event != "member_state" || !r.Cause.Time.Equal(f.now) {
		t.Fatalf("paused on the phone: %+v", av)
	}
	f.wait(time.Second)
	s := stateCmd("bob", callbridge.AgentReady, "")
	s.Role = callbridge.RoleSupervisor
	f.mustDo(s)
	f.ev(member("1002", "acme-support", true, false, "")) // the echo keeps the cause
	av, _ = f.e.Availability(acme, "bob")
	if !av.Routable || len(av.Reasons) != 0 {
		t.Fatalf("ready: %+v", av)
	}
	f.wait(time.Second)
	f.evs(inbound("p1", didAcme, ivr()), queued("p1", "acme-support"), alerting("p1", "1002"))
	c := f.call(acme, "p1")
	av, _ = f.e.Availability(acme, "bob")
	if r := av.Reasons[0]; av.Routable || r.Code != callbridge.UnavailBusy || r.Cause.Event != string(callbridge.EventCallDelivered) || r.Cause.CallID != c.ID {
		t.Fatalf("ringing: %+v", av)
	}
	f.ev(connected("p1", "1002"))
	f.wait(time.Second)
	f.ev(cleared("p1"))
	av, _ = f.e.Availability(acme, "bob")
	if r := av.Reasons[0]; r.Code != callbridge.UnavailWrapUp || r.Cause.CallID != c.ID || !r.Cause.Time.Equal(f.now) {
		t.Fatalf("wrap-up: %+v", av)
	}
	if _, err := f.e.Availability(acme, "nobody"); callbridge.ErrorCode(err) != callbridge.ENotFound {
		t.Fatalf("unknown agent: %v", err)
	}
	if _, err := f.e.Availability(globex, "bob"); callbridge.ErrorCode(err) != callbridge.ENotFound {
		t.Fatalf("another tenant's agent: %v", err)
	}
}
