package engine_test

import (
	"slices"
	"testing"
	"time"

	"github.com/callbridge/callbridge"
)

// TestAgentStateFollowsMemberState: member_state events (phone buttons, other AMI clients)
// are the truth; the agent's state follows them.
func TestAgentStateFollowsMemberState(t *testing.T) {
	unpauseAll := callbridge.SwitchCommand{Type: callbridge.SwitchSetMemberState, Tenant: acme, Device: "1001",
		Interface: "PJSIP/1001", Action: callbridge.MemberPause, MemberName: "Alice Acme"}
	tests := []struct {
		name       string
		setup      []callbridge.SwitchEvent
		ev         callbridge.SwitchEvent
		want       []callbridge.EventType
		state      callbridge.AgentState
		reason     string
		queues     []callbridge.QueueName
		wantCmds   []callbridge.SwitchCommand
		wantTenant callbridge.TenantID
	}{
		{
			name:   "added unpaused: logged on, ready",
			ev:     member("1001", "acme-support", true, false, ""),
			want:   []callbridge.EventType{callbridge.EventAgentLoggedOn, callbridge.EventAgentStateChanged},
			state:  callbridge.AgentReady,
			queues: []callbridge.QueueName{"acme-support"},
		},
		{
			name:   "added paused: not_ready with the reason",
			ev:     member("1001", "acme-support", true, true, "lunch"),
			want:   []callbridge.EventType{callbridge.EventAgentLoggedOn, callbridge.EventAgentStateChanged},
			state:  callbridge.AgentNotReady,
			reason: "lunch",
			queues: []callbridge.QueueName{"acme-support"},
		},
		{
			name:   "a second queue changes only the queues",
			setup:  []callbridge.SwitchEvent{member("1001", "acme-support", true, false, "")},
			ev:     member("1001", "acme-load", true, false, ""),
			state:  callbridge.AgentReady,
			queues: []callbridge.QueueName{"acme-load", "acme-support"},
		},
		{
			name:   "paused in one of two queues: still ready",
			setup:  []callbridge.SwitchEvent{member("1001", "acme-support", true, false, ""), member("1001", "acme-load", true, false, "")},
			ev:     member("1001", "acme-support", true, true, "lunch"),
			state:  callbridge.AgentReady,
			queues: []callbridge.QueueName{"acme-load", "acme-support"},
		},
		{
			name:   "telset pause without a queue applies to every queue",
			setup:  []callbridge.SwitchEvent{member("1001", "acme-support", true, false, ""), member("1001", "acme-load", true, false, "")},
			ev:     member("1001", "", true, true, "lunch"),
			want:   []callbridge.EventType{callbridge.EventAgentStateChanged},
			state:  callbridge.AgentNotReady,
			reason: "lunch",
			queues: []callbridge.QueueName{"acme-load", "acme-support"},
		},
		{
			name:   "telset unpause (empty reason) without a queue",
			setup:  []callbridge.SwitchEvent{member("1001", "acme-support", true, true, "lunch"), member("1001", "acme-load", true, true, "lunch")},
			ev:     member("1001", "", true, false, ""),
			want:   []callbridge.EventType{callbridge.EventAgentStateChanged},
			state:  callbridge.AgentReady,
			queues: []callbridge.QueueName{"acme-load", "acme-support"},
		},
		{
			name:   "reason change is a state change",
			setup:  []callbridge.SwitchEvent{member("1001", "acme-support", true, true, "lunch")},
			ev:     member("1001", "acme-support", true, true, "meeting"),
			want:   []callbridge.EventType{callbridge.EventAgentStateChanged},
			state:  callbridge.AgentNotReady,
			reason: "meeting",
			queues: []callbridge.QueueName{"acme-support"},
		},
		{
			name:   "repeated member_state changes nothing",
			setup:  []callbridge.SwitchEvent{member("1001", "acme-support", true, true, "lunch")},
			ev:     member("1001", "acme-support", true, true, "lunch"),
			state:  callbridge.AgentNotReady,
			reason: "lunch",
			queues: []callbridge.QueueName{"acme-support"},
		},
		{
			name:     "a stale wrap_up pause does not change the state and is lifted",
			setup:    []callbridge.SwitchEvent{member("1001", "acme-support", true, false, "")},
			ev:       member("1001", "", true, true, callbridge.ReasonWrapUp),
			state:    callbridge.AgentReady,
			queues:   []callbridge.QueueName{"acme-support"},
			wantCmds: []callbridge.SwitchCommand{withQueues(unpauseAll, "acme-support")},
		},
		{
			name:   "removed from one of two queues",
			setup:  []callbridge.SwitchEvent{member("1001", "acme-support", true, false, ""), member("1001", "acme-load", true, false, "")},
			ev:     member("1001", "acme-load", false, false, ""),
			state:  callbridge.AgentReady,
			queues: []callbridge.QueueName{"acme-support"},
		},
		{
			name:  "removed from the last queue: logged out",
			setup: []callbridge.SwitchEvent{member("1001", "acme-support", true, true, "lunch")},
			ev:    member("1001", "acme-support", false, false, ""),
			want:  []callbridge.EventType{callbridge.EventAgentStateChanged, callbridge.EventAgentLoggedOff},
			state: callbridge.AgentLoggedOut,
		},
		{
			name:  "removed from every queue at once",
			setup: []callbridge.SwitchEvent{member("1001", "acme-support", true, false, ""), member("1001", "acme-load", true, false, "")},
			ev:    member("1001", "", false, false, ""),
			want:  []callbridge.EventType{callbridge.EventAgentStateChanged, callbridge.EventAgentLoggedOff},
			state: callbridge.AgentLoggedOut,
		},
		{
			name:  "another tenant named by the switch: ignored",
			ev:    callbridge.SwitchEvent{Type: callbridge.SwitchMemberState, Tenant: globex, Device: "1001", Queue: "acme-support", LoggedOn: true},
			state: callbridge.AgentLoggedOut,
		},
		{
			name:  "pause of a device that is in no queue: nothing",
			ev:    member("1001", "", true, true, "lunch"),
			state: callbridge.AgentLoggedOut,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			f.evs(tt.setup...)
			f.wait(time.Minute)
			out := f.ev(tt.ev)
			wantTypes(t, out, tt.want...)
			if !slices.EqualFunc(out.Commands, tt.wantCmds, cmdEqual) {
				t.Fatalf("commands = %+v, want %+v", out.Commands, tt.wantCmds)
			}
			a := f.agent(acme, "alice")
			if a.State != tt.state || a.Reason != tt.reason || !slices.Equal(a.Queues, tt.queues) {
				t.Fatalf("alice = %+v, want %s %q %v", a, tt.state, tt.reason, tt.queues)
			}
			for _, ev := range out.Events {
				if ev.Type == callbridge.EventAgentStateChanged {
					d := agentData(ev)
					if !d.Since.Equal(t0.Add(time.Minute)) || d.State != tt.state {
						t.Fatalf("state_changed = %+v", d)
					}
				}
			}
		})
	}
}

func withQueues(c callbridge.SwitchCommand, qs ...callbridge.QueueName) callbridge.SwitchCommand {
	c.Queues = qs
	return c
}

func cmdEqual(a, b callbridge.SwitchCommand) bool {
	return a.Type == b.Type && a.Tenant == b.Tenant && a.PBXCallID == b.PBXCallID && a.ConsultPBXCallID == b.ConsultPBXCallID &&
		a.Device == b.Device && a.Interface == b.Interface && a.To == b.To && a.CorrelationID == b.CorrelationID &&
		a.Action == b.Action && slices.Equal(a.Queues, b.Queues) && a.Paused == b.Paused && a.Reason == b.Reason &&
		a.MemberName == b.MemberName
}

// TestBusyIsDerived: an agent is busy while their device has an active connection, whatever
// the desktop says, and returns to the membership state afterwards.
func TestBusyIsDerived(t *testing.T) {
	f := newFixture(t)
	f.evs(member("1002", "acme-support", true, true, "lunch"))
	// carol calls bob: an internal call.
	out := f.evs(callbridge.SwitchEvent{Type: callbridge.SwitchCallStarted, PBXCallID: "p1", Direction: callbridge.DirInternal, Device: "1003"},
		alerting("p1", "1002"))
	if a := agentData(only(t, out, callbridge.EventAgentStateChanged)); a.State != callbridge.AgentBusy || a.PreviousState != callbridge.AgentNotReady {
		t.Fatalf("agent = %+v", a)
	}
	// Answer, hold, retrieve: still busy, no new agent events.
	wantTypes(t, f.evs(connected("p1", "1002"), sev(callbridge.SwitchHeld, "p1", "1002"), sev(callbridge.SwitchRetrieved, "p1", "1002")),
		callbridge.EventCallEstablished, callbridge.EventCallHeld, callbridge.EventCallRetrieved)
	// An internal call (no queue, no outside party): no wrap-up afterwards.
	if a := f.agent(acme, "bob"); a.State != callbridge.AgentBusy {
		t.Fatalf("bob = %+v", a)
	}
	out = f.ev(callbridge.SwitchEvent{Type: callbridge.SwitchConnectionCleared, PBXCallID: "p1", Device: "1002"})
	if a := agentData(only(t, out, callbridge.EventAgentStateChanged)); a.State != callbridge.AgentNotReady || a.Reason != "lunch" {
		t.Fatalf("agent = %+v", a)
	}
	// A logged-out agent with a call is not busy: they are not an ACD agent now.
	out = f.evs(member("1002", "acme-support", false, false, ""), alerting("p1", "1002"))
	if a := f.agent(acme, "bob"); a.State != callbridge.AgentLoggedOut {
		t.Fatalf("bob = %+v", a)
	}
}

// TestWrapUp drives after-call work with the fake clock.
func TestWrapUp(t *testing.T) {
	pause := func(dev callbridge.DeviceID, paused bool, reason string, qs ...callbridge.QueueName) callbridge.SwitchCommand {
		c := callbridge.SwitchCommand{Type: callbridge.SwitchSetMemberState, Tenant: acme, Device: dev, Action: callbridge.MemberPause,
			Paused: paused, Reason: reason, Queues: qs}
		switch dev {
		case "1001":
			c.Interface, c.MemberName = "PJSIP/1001", "Alice Acme"
		case "1002":
			c.MemberName = "Bob Acme"
		case "1004":
			c.MemberName = "Dave Acme"
		}
		return c
	}

	t.Run("queue call: wrap-up, pause, tick back to ready", func(t *testing.T) {
		f := newFixture(t)
		f.logOn("1002", "acme-support")
		f.answeredCall("p1", "1002")
		f.wait(20 * time.Second)
		out := f.ev(cleared("p1"))
		wantTypes(t, out, callbridge.EventCallCleared, callbridge.EventAgentStateChanged)
		a := agentData(out.Events[1])
		until := f.now.Add(10 * time.Second)
		if a.State != callbridge.AgentWorkingAfterCall || a.PreviousState != callbridge.AgentBusy || !a.WrapUpUntil.Equal(until) {
			t.Fatalf("agent = %+v", a)
		}
		if want := []callbridge.SwitchCommand{pause("1002", true, callbridge.ReasonWrapUp)}; !slices.EqualFunc(out.Commands, want, cmdEqual) {
			t.Fatalf("commands = %+v", out.Commands)
		}
		// The switch echoes callbridge's own pause: nothing changes.
		out = f.ev(member("1002", "acme-support", true, true, callbridge.ReasonWrapUp))
		wantTypes(t, out)
		if len(out.Commands) != 0 {
			t.Fatalf("commands on echo: %+v", out.Commands)
		}
		f.wait(9 * time.Second)
		if out := f.tick(); len(out.Events)+len(out.Commands) != 0 {
			t.Fatalf("tick before WrapUpUntil: %+v", out)
		}
		f.wait(time.Second)
		out = f.tick()
		if a := agentData(only(t, out, callbridge.EventAgentStateChanged)); a.State != callbridge.AgentReady || !a.WrapUpUntil.IsZero() {
			t.Fatalf("agent = %+v", a)
		}
		if want := []callbridge.SwitchCommand{pause("1002", false, "")}; !slices.EqualFunc(out.Commands, want, cmdEqual) {
			t.Fatalf("commands = %+v", out.Commands)
		}
		out = f.ev(member("1002", "acme-support", true, false, ""))
		if len(out.Events)+len(out.Commands) != 0 {
			t.Fatalf("unpause echo: %+v", out)
		}
	})

	t.Run("queue wrap-up time overrides the tenant's", func(t *testing.T) {
		f := newFixture(t)
		f.logOn("1004", "acme-support", "acme-vip")
		f.evs(inbound("p1", didAcme, nil), queued("p1", "acme-vip"), alerting("p1", "1004"), connected("p1", "1004"))
		out := f.ev(cleared("p1"))
		if a := agentData(only(t, out, callbridge.EventAgentStateChanged)); !a.WrapUpUntil.Equal(f.now.Add(30 * time.Second)) {
			t.Fatalf("agent = %+v", a)
		}
	})

	t.Run("queue with wrap-up 0 and tenant without wrap-up: straight back", func(t *testing.T) {
		f := newFixture(t)
		f.logOn("1001", "acme-support", "acme-load")
		f.logOn("2001", "globex-sales")
		f.evs(inbound("p1", didAcme, nil), queued("p1", "acme-load"), alerting("p1", "1001"), connected("p1", "1001"))
		f.evs(inbound("p2", didGlob, nil), queued("p2", "globex-sales"), alerting("p2", "2001"), connected("p2", "2001"))
		out := f.evs(cleared("p1"), cleared("p2"))
		for _, ev := range out.Events {
			if ev.Type == callbridge.EventAgentStateChanged && agentData(ev).State != callbridge.AgentReady {
				t.Fatalf("agent = %+v", agentData(ev))
			}
		}
		if len(out.Commands) != 0 {
			t.Fatalf("commands = %+v", out.Commands)
		}
	})

	t.Run("a call that rang but was not answered: no wrap-up", func(t *testing.T) {
		f := newFixture(t)
		f.logOn("1002", "acme-support")
		f.evs(inbound("p1", didAcme, nil), queued("p1", "acme-support"), alerting("p1", "1002"))
		f.ev(callbridge.SwitchEvent{Type: callbridge.SwitchFailed, PBXCallID: "p1", Device: "1002", Cause: callbridge.CauseNoAnswer})
		if a := f.agent(acme, "bob"); a.State != callbridge.AgentReady {
			t.Fatalf("bob = %+v", a)
		}
	})

	t.Run("the agent leaves a call that goes on: wrap-up", func(t *testing.T) {
		f := newFixture(t)
		f.logOn("1002", "acme-support")
		f.answeredCall("p1", "1002")
		f.ev(callbridge.SwitchEvent{Type: callbridge.SwitchConnectionCleared, PBXCallID: "p1", Device: "1002"})
		if a := f.agent(acme, "bob"); a.State != callbridge.AgentWorkingAfterCall {
			t.Fatalf("bob = %+v", a)
		}
	})

	t.Run("set ready during wrap-up ends it early", func(t *testing.T) {
		f := newFixture(t)
		f.logOn("1002", "acme-support")
		f.answeredCall("p1", "1002")
		f.evs(cleared("p1"), member("1002", "acme-support", true, true, callbridge.ReasonWrapUp))
		p, out := f.mustDo(stateCmd("bob", callbridge.AgentReady, ""))
		if want := []callbridge.SwitchCommand{pause("1002", false, "")}; !slices.EqualFunc(p.Commands, want, cmdEqual) {
			t.Fatalf("plan = %+v", p.Commands)
		}
		if a := agentData(only(t, out, callbridge.EventAgentStateChanged)); a.State != callbridge.AgentReady || a.PreviousState != callbridge.AgentWorkingAfterCall {
			t.Fatalf("agent = %+v", a)
		}
		f.wait(time.Minute)
		if out := f.tick(); len(out.Events)+len(out.Commands) != 0 {
			t.Fatalf("tick after early end: %+v", out)
		}
	})

	t.Run("set not_ready during wrap-up ends it with the reason", func(t *testing.T) {
		f := newFixture(t)
		f.logOn("1002", "acme-support")
		f.answeredCall("p1", "1002")
		f.ev(cleared("p1"))
		p, out := f.mustDo(stateCmd("bob", callbridge.AgentNotReady, "lunch"))
		if want := []callbridge.SwitchCommand{pause("1002", true, "lunch")}; !slices.EqualFunc(p.Commands, want, cmdEqual) {
			t.Fatalf("plan = %+v", p.Commands)
		}
		if a := agentData(only(t, out, callbridge.EventAgentStateChanged)); a.State != callbridge.AgentNotReady || a.Reason != "lunch" {
			t.Fatalf("agent = %+v", a)
		}
		// The late echo of the wrap-up pause is not the agent's state; lunch wins on the switch.
		f.ev(member("1002", "acme-support", true, true, "lunch"))
		if a := f.agent(acme, "bob"); a.State != callbridge.AgentNotReady {
			t.Fatalf("bob = %+v", a)
		}
	})

	t.Run("pause on the phone during wrap-up is the state after it", func(t *testing.T) {
		f := newFixture(t)
		f.logOn("1002", "acme-support")
		f.answeredCall("p1", "1002")
		f.evs(cleared("p1"), member("1002", "acme-support", true, true, callbridge.ReasonWrapUp))
		// Wrap-up goes on; the pause shows as the state after it.
		out := f.ev(member("1002", "", true, true, "lunch"))
		if a := agentData(only(t, out, callbridge.EventAgentStateChanged)); a.State != callbridge.AgentWorkingAfterCall ||
			a.PreviousState != callbridge.AgentWorkingAfterCall || a.NextState != callbridge.AgentNotReady || a.NextReason != "lunch" {
			t.Fatalf("agent = %+v", a)
		}
		f.wait(10 * time.Second)
		out = f.tick()
		if a := agentData(only(t, out, callbridge.EventAgentStateChanged)); a.State != callbridge.AgentNotReady || a.Reason != "lunch" || a.NextState != "" {
			t.Fatalf("agent = %+v", a)
		}
		if len(out.Commands) != 0 {
			t.Fatalf("wrap-up end fought the phone's pause: %+v", out.Commands)
		}
	})

	t.Run("unpause on the phone during wrap-up ends it", func(t *testing.T) {
		f := newFixture(t)
		f.logOn("1002", "acme-support")
		f.answeredCall("p1", "1002")
		f.evs(cleared("p1"), member("1002", "acme-support", true, true, callbridge.ReasonWrapUp))
		out := f.ev(member("1002", "", true, false, ""))
		if a := agentData(only(t, out, callbridge.EventAgentStateChanged)); a.State != callbridge.AgentReady {
			t.Fatalf("agent = %+v", a)
		}
	})

	t.Run("not_ready requested while busy applies after the call and its wrap-up", func(t *testing.T) {
		f := newFixture(t)
		f.logOn("1002", "acme-support")
		f.answeredCall("p1", "1002")
		p, out := f.mustDo(stateCmd("bob", callbridge.AgentNotReady, "meeting"))
		if len(p.Commands) != 1 {
			t.Fatalf("plan %+v", p.Commands)
		}
		// Every tab sees the request: busy, next not_ready meeting.
		if a := agentData(only(t, out, callbridge.EventAgentStateChanged)); a.State != callbridge.AgentBusy ||
			a.PreviousState != callbridge.AgentBusy || a.NextState != callbridge.AgentNotReady || a.NextReason != "meeting" {
			t.Fatalf("agent = %+v", a)
		}
		out = f.ev(cleared("p1"))
		if a := f.agent(acme, "bob"); a.State != callbridge.AgentWorkingAfterCall || len(out.Commands) != 0 {
			t.Fatalf("bob = %+v, commands %+v (already paused: no wrap-up pause)", a, out.Commands)
		}
		f.wait(10 * time.Second)
		out = f.tick()
		if a := f.agent(acme, "bob"); a.State != callbridge.AgentNotReady || a.Reason != "meeting" || len(out.Commands) != 0 {
			t.Fatalf("bob = %+v, commands %+v", a, out.Commands)
		}
	})

	t.Run("only the routable queues are paused", func(t *testing.T) {
		f := newFixture(t)
		f.evs(member("1001", "acme-support", true, false, ""), member("1001", "acme-load", true, true, "meeting"))
		f.answeredCall("p1", "1001")
		out := f.ev(cleared("p1"))
		if want := []callbridge.SwitchCommand{pause("1001", true, callbridge.ReasonWrapUp, "acme-support")}; !slices.EqualFunc(out.Commands, want, cmdEqual) {
			t.Fatalf("commands = %+v", out.Commands)
		}
		f.ev(member("1001", "acme-support", true, true, callbridge.ReasonWrapUp))
		f.wait(10 * time.Second)
		out = f.tick()
		if want := []callbridge.SwitchCommand{pause("1001", false, "", "acme-support")}; !slices.EqualFunc(out.Commands, want, cmdEqual) {
			t.Fatalf("commands = %+v", out.Commands)
		}
		if a := f.agent(acme, "alice"); a.State != callbridge.AgentReady {
			t.Fatalf("alice = %+v", a)
		}
	})

	t.Run("without member-state capability wrap-up still shows, without commands", func(t *testing.T) {
		caps := allCaps()
		delete(caps, callbridge.SwitchSetMemberState)
		f := newFixtureCaps(t, caps)
		f.logOn("1002", "acme-support")
		f.answeredCall("p1", "1002")
		out := f.ev(cleared("p1"))
		if a := f.agent(acme, "bob"); a.State != callbridge.AgentWorkingAfterCall || len(out.Commands) != 0 {
			t.Fatalf("bob = %+v, commands %+v", a, out.Commands)
		}
		f.wait(10 * time.Second)
		if out := f.tick(); len(out.Commands) != 0 || f.agent(acme, "bob").State != callbridge.AgentReady {
			t.Fatalf("tick: %+v", out)
		}
	})

	t.Run("logged off during wrap-up", func(t *testing.T) {
		f := newFixture(t)
		f.logOn("1002", "acme-support")
		f.answeredCall("p1", "1002")
		f.ev(cleared("p1"))
		f.ev(member("1002", "acme-support", false, false, ""))
		f.wait(time.Minute)
		if out := f.tick(); len(out.Events)+len(out.Commands) != 0 || f.agent(acme, "bob").State != callbridge.AgentLoggedOut {
			t.Fatalf("tick: %+v", out)
		}
	})
}

func stateCmd(agent callbridge.AgentID, s callbridge.AgentState, reason string) callbridge.Command {
	c := cmd(callbridge.CmdSetAgentState, agent)
	c.State, c.Reason = s, reason
	return c
}
