package engine_test

import (
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/callbridge/callbridge"
	"github.com/callbridge/callbridge/engine"
)

// callsSetup: alice and bob logged on; p1 answered by alice (connected), p2 ringing at bob,
// p3 held by carol; g1 a globex call answered by gina.
func callsSetup(f *fixture) {
	f.logOn("1001", "acme-support", "acme-load")
	f.logOn("1002", "acme-support")
	f.answeredCall("p1", "1001")
	f.evs(inbound("p2", didAcme, nil), queued("p2", "acme-support"), alerting("p2", "1002"))
	f.answeredCall("p3", "1003")
	f.ev(sev(callbridge.SwitchHeld, "p3", "1003"))
	f.evs(inbound("g1", didGlob, nil), alerting("g1", "2001"), connected("g1", "2001"))
}

// idOf returns the CallID of an active call.
func (f *fixture) idOf(t callbridge.TenantID, pbx string) callbridge.CallID { return f.call(t, pbx).ID }

// TestPlanCommands: each command, planned from a state that allows it, gives the switch
// commands that carry it out; Apply gives the events.
func TestPlanCommands(t *testing.T) {
	sw := func(typ callbridge.SwitchCommandType, pbx string, dev callbridge.DeviceID) callbridge.SwitchCommand {
		return callbridge.SwitchCommand{Type: typ, Tenant: acme, PBXCallID: pbx, Device: dev}
	}
	member := func(action callbridge.MemberAction, paused bool, reason string, qs ...callbridge.QueueName) callbridge.SwitchCommand {
		return callbridge.SwitchCommand{Type: callbridge.SwitchSetMemberState, Tenant: acme, Device: "1001", Interface: "PJSIP/1001",
			MemberName: "Alice Acme", Action: action, Paused: paused, Reason: reason, Queues: qs}
	}
	tests := []struct {
		name   string
		setup  func(f *fixture)
		cmd    func(f *fixture) callbridge.Command
		want   func(f *fixture) []callbridge.SwitchCommand
		events []callbridge.EventType
		check  func(t *testing.T, f *fixture, p engine.Plan, out engine.Output)
	}{
		{
			name: "ready from logged_out adds the configured queues",
			cmd:  func(f *fixture) callbridge.Command { return stateCmd("alice", callbridge.AgentReady, "") },
			want: func(f *fixture) []callbridge.SwitchCommand {
				return []callbridge.SwitchCommand{member(callbridge.MemberAdd, false, "", "acme-support", "acme-load")}
			},
			events: []callbridge.EventType{callbridge.EventAgentLoggedOn, callbridge.EventAgentStateChanged},
			check: func(t *testing.T, f *fixture, p engine.Plan, out engine.Output) {
				if on := agentData(out.Events[0]); on.State != callbridge.AgentReady || len(on.Queues) != 2 || on.PreviousState != "" {
					t.Fatalf("logged_on = %+v", on)
				}
				a := agentData(out.Events[1])
				if a.State != callbridge.AgentReady || a.PreviousState != callbridge.AgentLoggedOut || !slices.Equal(a.Queues, sortedQueues("acme-support", "acme-load")) {
					t.Fatalf("agent = %+v", a)
				}
				// The switch's echo changes nothing.
				echo := f.evs(member2("1001", "acme-support", true, false, ""), member2("1001", "acme-load", true, false, ""))
				if len(echo.Events)+len(echo.Commands) != 0 {
					t.Fatalf("echo: %+v", echo)
				}
			},
		},
		{
			name: "not_ready from logged_out adds paused",
			cmd:  func(f *fixture) callbridge.Command { return stateCmd("alice", callbridge.AgentNotReady, "training") },
			want: func(f *fixture) []callbridge.SwitchCommand {
				return []callbridge.SwitchCommand{member(callbridge.MemberAdd, true, "training", "acme-support", "acme-load")}
			},
			events: []callbridge.EventType{callbridge.EventAgentLoggedOn, callbridge.EventAgentStateChanged},
			check: func(t *testing.T, f *fixture, p engine.Plan, out engine.Output) {
				if a := agentData(out.Events[1]); a.State != callbridge.AgentNotReady || a.Reason != "training" {
					t.Fatalf("agent = %+v", a)
				}
			},
		},
		{
			name:  "not_ready pauses every queue",
			setup: func(f *fixture) { f.logOn("1001", "acme-support", "acme-load") },
			cmd:   func(f *fixture) callbridge.Command { return stateCmd("alice", callbridge.AgentNotReady, "lunch") },
			want: func(f *fixture) []callbridge.SwitchCommand {
				return []callbridge.SwitchCommand{member(callbridge.MemberPause, true, "lunch")}
			},
			events: []callbridge.EventType{callbridge.EventAgentStateChanged},
			check: func(t *testing.T, f *fixture, p engine.Plan, out engine.Output) {
				if a := agentData(out.Events[0]); a.State != callbridge.AgentNotReady || a.Reason != "lunch" || a.PreviousState != callbridge.AgentReady {
					t.Fatalf("agent = %+v", a)
				}
				echo := f.ev(member2("1001", "", true, true, "lunch"))
				if len(echo.Events)+len(echo.Commands) != 0 {
					t.Fatalf("echo: %+v", echo)
				}
			},
		},
		{
			name:  "callbridge's own reason codes are allowed",
			setup: func(f *fixture) { f.logOn("1001", "acme-support") },
			cmd: func(f *fixture) callbridge.Command {
				return stateCmd("alice", callbridge.AgentNotReady, callbridge.ReasonDesktopLost)
			},
			want: func(f *fixture) []callbridge.SwitchCommand {
				return []callbridge.SwitchCommand{member(callbridge.MemberPause, true, "desktop_lost")}
			},
			events: []callbridge.EventType{callbridge.EventAgentStateChanged},
		},
		{
			name:  "ready unpauses",
			setup: func(f *fixture) { f.evs(member2("1001", "acme-support", true, true, "lunch")) },
			cmd:   func(f *fixture) callbridge.Command { return stateCmd("alice", callbridge.AgentReady, "") },
			want: func(f *fixture) []callbridge.SwitchCommand {
				return []callbridge.SwitchCommand{member(callbridge.MemberPause, false, "")}
			},
			events: []callbridge.EventType{callbridge.EventAgentStateChanged},
		},
		{
			name:  "logged_out removes the current queues",
			setup: func(f *fixture) { f.logOn("1001", "acme-support", "acme-vip") },
			cmd:   func(f *fixture) callbridge.Command { return stateCmd("alice", callbridge.AgentLoggedOut, "") },
			want: func(f *fixture) []callbridge.SwitchCommand {
				return []callbridge.SwitchCommand{member(callbridge.MemberRemove, false, "", "acme-support", "acme-vip")}
			},
			events: []callbridge.EventType{callbridge.EventAgentStateChanged, callbridge.EventAgentLoggedOff},
		},
		{
			name:  "the state the agent has already: no commands, no events",
			setup: func(f *fixture) { f.logOn("1001", "acme-support") },
			cmd:   func(f *fixture) callbridge.Command { return stateCmd("alice", callbridge.AgentReady, "") },
			want:  func(f *fixture) []callbridge.SwitchCommand { return nil },
		},
		{
			name: "logged_out when logged out: no commands",
			cmd:  func(f *fixture) callbridge.Command { return stateCmd("alice", callbridge.AgentLoggedOut, "") },
			want: func(f *fixture) []callbridge.SwitchCommand { return nil },
		},
		{
			name:  "a supervisor sets an agent's state",
			setup: func(f *fixture) { f.logOn("1001", "acme-support") },
			cmd: func(f *fixture) callbridge.Command {
				c := stateCmd("alice", callbridge.AgentNotReady, "meeting")
				c.Role = callbridge.RoleSupervisor
				return c
			},
			want: func(f *fixture) []callbridge.SwitchCommand {
				return []callbridge.SwitchCommand{member(callbridge.MemberPause, true, "meeting")}
			},
			events: []callbridge.EventType{callbridge.EventAgentStateChanged},
		},
		{
			name:  "answer_call",
			setup: callsSetup,
			cmd: func(f *fixture) callbridge.Command {
				return callCmd(callbridge.CmdAnswerCall, "bob", f.idOf(acme, "p2"))
			},
			want: func(f *fixture) []callbridge.SwitchCommand {
				return []callbridge.SwitchCommand{sw(callbridge.SwitchAnswerCall, "p2", "1002")}
			},
		},
		{
			name:  "clear_connection",
			setup: callsSetup,
			cmd: func(f *fixture) callbridge.Command {
				return callCmd(callbridge.CmdClearConnection, "alice", f.idOf(acme, "p1"))
			},
			want: func(f *fixture) []callbridge.SwitchCommand {
				return []callbridge.SwitchCommand{sw(callbridge.SwitchClearConnection, "p1", "1001")}
			},
		},
		{
			name:  "clear_connection of a ringing call (reject)",
			setup: callsSetup,
			cmd: func(f *fixture) callbridge.Command {
				return callCmd(callbridge.CmdClearConnection, "bob", f.idOf(acme, "p2"))
			},
			want: func(f *fixture) []callbridge.SwitchCommand {
				return []callbridge.SwitchCommand{sw(callbridge.SwitchClearConnection, "p2", "1002")}
			},
		},
		{
			name:  "clear_call",
			setup: callsSetup,
			cmd: func(f *fixture) callbridge.Command {
				return callCmd(callbridge.CmdClearCall, "alice", f.idOf(acme, "p1"))
			},
			want: func(f *fixture) []callbridge.SwitchCommand {
				return []callbridge.SwitchCommand{sw(callbridge.SwitchClearCall, "p1", "1001")}
			},
		},
		{
			name:  "clear_call by a supervisor without an agent",
			setup: callsSetup,
			cmd: func(f *fixture) callbridge.Command {
				return callbridge.Command{Name: callbridge.CmdClearCall, Tenant: acme, Role: callbridge.RoleSupervisor, CallID: f.idOf(acme, "p2")}
			},
			want: func(f *fixture) []callbridge.SwitchCommand {
				return []callbridge.SwitchCommand{sw(callbridge.SwitchClearCall, "p2", "")}
			},
		},
		{
			name:  "hold_call",
			setup: callsSetup,
			cmd: func(f *fixture) callbridge.Command {
				return callCmd(callbridge.CmdHoldCall, "alice", f.idOf(acme, "p1"))
			},
			want: func(f *fixture) []callbridge.SwitchCommand {
				return []callbridge.SwitchCommand{sw(callbridge.SwitchHoldCall, "p1", "1001")}
			},
		},
		{
			name:  "hold_call by a supervisor on behalf of the agent",
			setup: callsSetup,
			cmd: func(f *fixture) callbridge.Command {
				c := callCmd(callbridge.CmdHoldCall, "alice", f.idOf(acme, "p1"))
				c.Role = callbridge.RoleAdmin
				return c
			},
			want: func(f *fixture) []callbridge.SwitchCommand {
				return []callbridge.SwitchCommand{sw(callbridge.SwitchHoldCall, "p1", "1001")}
			},
		},
		{
			name:  "retrieve_call",
			setup: callsSetup,
			cmd: func(f *fixture) callbridge.Command {
				return callCmd(callbridge.CmdRetrieveCall, "carol", f.idOf(acme, "p3"))
			},
			want: func(f *fixture) []callbridge.SwitchCommand {
				return []callbridge.SwitchCommand{sw(callbridge.SwitchRetrieveCall, "p3", "1003")}
			},
		},
		{
			name:  "single_step_transfer to an agent by user name, with attached data",
			setup: callsSetup,
			cmd: func(f *fixture) callbridge.Command {
				c := callCmd(callbridge.CmdSingleStepTransfer, "alice", f.idOf(acme, "p1"))
				c.To, c.AttachedData = "dave", map[string]string{"note": "wants a refund", "IVR_ACCOUNT": ""}
				return c
			},
			want: func(f *fixture) []callbridge.SwitchCommand {
				c := sw(callbridge.SwitchSingleStepTransfer, "p1", "1001")
				c.To = "1004"
				return []callbridge.SwitchCommand{c}
			},
			events: []callbridge.EventType{callbridge.EventCallDataUpdated},
			check: func(t *testing.T, f *fixture, p engine.Plan, out engine.Output) {
				want := map[string]string{"IVR_REASON": "billing", "note": "wants a refund"}
				if got := callData(out.Events[0]).AttachedData; !maps.Equal(got, want) {
					t.Fatalf("data = %v, want %v", got, want)
				}
			},
		},
		{
			name:  "single_step_transfer to a queue of the tenant",
			setup: callsSetup,
			cmd: func(f *fixture) callbridge.Command {
				c := callCmd(callbridge.CmdSingleStepTransfer, "carol", f.idOf(acme, "p3"))
				c.To = "acme-vip"
				return c
			},
			want: func(f *fixture) []callbridge.SwitchCommand {
				c := sw(callbridge.SwitchSingleStepTransfer, "p3", "1003")
				c.To = "acme-vip"
				return []callbridge.SwitchCommand{c}
			},
		},
		{
			name:  "single_step_transfer to an outside number",
			setup: callsSetup,
			cmd: func(f *fixture) callbridge.Command {
				c := callCmd(callbridge.CmdSingleStepTransfer, "alice", f.idOf(acme, "p1"))
				c.To = "+15559876543"
				return c
			},
			want: func(f *fixture) []callbridge.SwitchCommand {
				c := sw(callbridge.SwitchSingleStepTransfer, "p1", "1001")
				c.To = "+15559876543"
				return []callbridge.SwitchCommand{c}
			},
		},
		{
			name: "make_call reserves a call id",
			cmd: func(f *fixture) callbridge.Command {
				c := cmd(callbridge.CmdMakeCall, "alice")
				c.To = "15557654321"
				return c
			},
			want: func(f *fixture) []callbridge.SwitchCommand {
				return []callbridge.SwitchCommand{{Type: callbridge.SwitchMakeCall, Tenant: acme, Device: "1001", To: "15557654321",
					CorrelationID: "01J00000000000000000000001", Interface: "PJSIP/1001"}}
			},
			check: func(t *testing.T, f *fixture, p engine.Plan, out engine.Output) {
				if p.Result.CallID != "01J00000000000000000000001" {
					t.Fatalf("result = %+v", p.Result)
				}
			},
		},
		{
			name:  "consultation_call reserves a call id",
			setup: callsSetup,
			cmd: func(f *fixture) callbridge.Command {
				c := callCmd(callbridge.CmdConsultationCall, "alice", f.idOf(acme, "p1"))
				c.To = "bob"
				return c
			},
			want: func(f *fixture) []callbridge.SwitchCommand {
				c := sw(callbridge.SwitchConsultationCall, "p1", "1001")
				c.To, c.CorrelationID = "1002", "01J00000000000000000000005"
				return []callbridge.SwitchCommand{c}
			},
			check: func(t *testing.T, f *fixture, p engine.Plan, out engine.Output) {
				if p.Result.CallID != "01J00000000000000000000005" {
					t.Fatalf("result = %+v", p.Result)
				}
			},
		},
		{
			name:  "update_call_data needs no switch command",
			setup: callsSetup,
			cmd: func(f *fixture) callbridge.Command {
				c := callCmd(callbridge.CmdUpdateCallData, "alice", f.idOf(acme, "p1"))
				c.AttachedData = map[string]string{"disposition": "sale", "crm_case": "C-42"}
				return c
			},
			want:   func(f *fixture) []callbridge.SwitchCommand { return nil },
			events: []callbridge.EventType{callbridge.EventCallDataUpdated},
			check: func(t *testing.T, f *fixture, p engine.Plan, out engine.Output) {
				ev := out.Events[0]
				if d := callData(ev).AttachedData; d["disposition"] != "sale" || d["crm_case"] != "C-42" || d["IVR_ACCOUNT"] != "12345" {
					t.Fatalf("data = %v", d)
				}
				if !slices.Equal(ev.Audience, []callbridge.AgentID{"alice"}) {
					t.Fatalf("audience = %v", ev.Audience)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			if tt.setup != nil {
				tt.setup(f)
			}
			f.wait(time.Second)
			c := tt.cmd(f)
			c.Time = f.now
			before := state(f.e)
			p, err := f.e.Plan(c)
			if err != nil {
				t.Fatalf("Plan: %v", err)
			}
			sameState(t, before, state(f.e))
			if want := tt.want(f); !slices.EqualFunc(p.Commands, want, cmdEqual) {
				t.Fatalf("commands = %+v\nwant       %+v", p.Commands, want)
			}
			if p.Duplicate {
				t.Fatal("plan flagged duplicate")
			}
			out := f.e.Apply(c, p)
			checkOutput(t, out)
			wantTypes(t, out, tt.events...)
			if tt.check != nil {
				tt.check(t, f, p, out)
			}
		})
	}
}

func member2(dev callbridge.DeviceID, q callbridge.QueueName, on, paused bool, reason string) callbridge.SwitchEvent {
	return member(dev, q, on, paused, reason)
}

func callCmd(name callbridge.CommandName, agent callbridge.AgentID, id callbridge.CallID) callbridge.Command {
	c := cmd(name, agent)
	c.CallID = id
	return c
}

// TestPlanRefusals: bad input and forbidden or impossible commands get a clear error and
// change nothing.
func TestPlanRefusals(t *testing.T) {
	tests := []struct {
		name string
		caps func(c callbridge.Capabilities)
		cmd  func(f *fixture) callbridge.Command
		code string
		msg  string // part of the message
	}{
		{
			name: "another agent's call",
			cmd: func(f *fixture) callbridge.Command {
				return callCmd(callbridge.CmdAnswerCall, "alice", f.idOf(acme, "p2"))
			},
			code: callbridge.EForbidden, msg: "is not yours",
		},
		{
			name: "transfer of another agent's call",
			cmd: func(f *fixture) callbridge.Command {
				c := callCmd(callbridge.CmdSingleStepTransfer, "bob", f.idOf(acme, "p1"))
				c.To = "1004"
				return c
			},
			code: callbridge.EForbidden, msg: "is not yours",
		},
		{
			name: "update_call_data of another agent's call",
			cmd: func(f *fixture) callbridge.Command {
				c := callCmd(callbridge.CmdUpdateCallData, "bob", f.idOf(acme, "p1"))
				c.AttachedData = map[string]string{"a": "b"}
				return c
			},
			code: callbridge.EForbidden, msg: "is not yours",
		},
		{
			name: "a call of another tenant is not found",
			cmd: func(f *fixture) callbridge.Command {
				return callbridge.Command{Name: callbridge.CmdClearCall, Tenant: globex, Agent: "gina", Role: callbridge.RoleSupervisor, CallID: f.idOf(acme, "p1")}
			},
			code: callbridge.ENotFound,
		},
		{
			name: "unknown call",
			cmd:  func(f *fixture) callbridge.Command { return callCmd(callbridge.CmdHoldCall, "alice", "01JNOPE") },
			code: callbridge.ENotFound,
		},
		{
			name: "missing call id",
			cmd:  func(f *fixture) callbridge.Command { return callCmd(callbridge.CmdHoldCall, "alice", "") },
			code: callbridge.EInvalid, msg: "call_id is required",
		},
		{
			name: "answer a call that is not ringing",
			cmd: func(f *fixture) callbridge.Command {
				return callCmd(callbridge.CmdAnswerCall, "alice", f.idOf(acme, "p1"))
			},
			code: callbridge.EConflict, msg: "not ringing",
		},
		{
			name: "hold a ringing call",
			cmd:  func(f *fixture) callbridge.Command { return callCmd(callbridge.CmdHoldCall, "bob", f.idOf(acme, "p2")) },
			code: callbridge.EConflict,
		},
		{
			name: "retrieve a call that is not held",
			cmd: func(f *fixture) callbridge.Command {
				return callCmd(callbridge.CmdRetrieveCall, "alice", f.idOf(acme, "p1"))
			},
			code: callbridge.EConflict, msg: "not on hold",
		},
		{
			name: "transfer a ringing call",
			cmd: func(f *fixture) callbridge.Command {
				c := callCmd(callbridge.CmdSingleStepTransfer, "bob", f.idOf(acme, "p2"))
				c.To = "1004"
				return c
			},
			code: callbridge.EConflict,
		},
		{
			name: "CR/LF in a transfer target",
			cmd: func(f *fixture) callbridge.Command {
				c := callCmd(callbridge.CmdSingleStepTransfer, "alice", f.idOf(acme, "p1"))
				c.To = "1002\r\nAction: Originate"
				return c
			},
			code: callbridge.EInvalid, msg: "CR, LF or NUL",
		},
		{
			name: "dial-string metacharacters in a make_call target",
			cmd: func(f *fixture) callbridge.Command {
				c := cmd(callbridge.CmdMakeCall, "alice")
				c.To = "1002&PJSIP/1003"
				return c
			},
			code: callbridge.EInvalid, msg: "not allowed in a dial target",
		},
		{
			name: "empty target",
			cmd: func(f *fixture) callbridge.Command {
				return callCmd(callbridge.CmdSingleStepTransfer, "alice", f.idOf(acme, "p1"))
			},
			code: callbridge.EInvalid, msg: "empty",
		},
		{
			name: "another tenant's queue as target",
			cmd: func(f *fixture) callbridge.Command {
				c := callCmd(callbridge.CmdSingleStepTransfer, "alice", f.idOf(acme, "p1"))
				c.To = "globex-sales"
				return c
			},
			code: callbridge.ENotFound, msg: "not a user, extension or queue of this tenant",
		},
		{
			name: "another tenant's agent device as target",
			cmd: func(f *fixture) callbridge.Command {
				c := cmd(callbridge.CmdMakeCall, "dave")
				c.To = "2001"
				return c
			},
			code: callbridge.ENotFound, msg: "not a user, extension or queue of this tenant",
		},
		{
			name: "transfer to the agent's own device",
			cmd: func(f *fixture) callbridge.Command {
				c := callCmd(callbridge.CmdSingleStepTransfer, "alice", f.idOf(acme, "p1"))
				c.To = "alice"
				return c
			},
			code: callbridge.EInvalid, msg: "own device",
		},
		{
			name: "unknown reason code",
			cmd:  func(f *fixture) callbridge.Command { return stateCmd("alice", callbridge.AgentNotReady, "nap") },
			code: callbridge.EInvalid, msg: "unknown reason code",
		},
		{
			name: "another tenant's reason code",
			cmd:  func(f *fixture) callbridge.Command { return stateCmd("alice", callbridge.AgentNotReady, "break") },
			code: callbridge.EInvalid, msg: "unknown reason code",
		},
		{
			name: "callbridge's wrap_up reason cannot be requested",
			cmd: func(f *fixture) callbridge.Command {
				return stateCmd("alice", callbridge.AgentNotReady, callbridge.ReasonWrapUp)
			},
			code: callbridge.EInvalid,
		},
		{
			name: "not_ready without a reason",
			cmd:  func(f *fixture) callbridge.Command { return stateCmd("alice", callbridge.AgentNotReady, "") },
			code: callbridge.EInvalid, msg: "needs a reason",
		},
		{
			name: "CR/LF in a reason",
			cmd:  func(f *fixture) callbridge.Command { return stateCmd("alice", callbridge.AgentNotReady, "lunch\n") },
			code: callbridge.EInvalid,
		},
		{
			name: "reason with ready",
			cmd:  func(f *fixture) callbridge.Command { return stateCmd("alice", callbridge.AgentReady, "lunch") },
			code: callbridge.EInvalid,
		},
		{
			name: "busy cannot be requested",
			cmd:  func(f *fixture) callbridge.Command { return stateCmd("alice", callbridge.AgentBusy, "") },
			code: callbridge.EInvalid, msg: "cannot be requested",
		},
		{
			name: "working_after_call cannot be requested",
			cmd:  func(f *fixture) callbridge.Command { return stateCmd("alice", callbridge.AgentWorkingAfterCall, "") },
			code: callbridge.EInvalid, msg: "cannot be requested",
		},
		{
			name: "unknown state",
			cmd:  func(f *fixture) callbridge.Command { return stateCmd("alice", "dancing", "") },
			code: callbridge.EInvalid,
		},
		{
			name: "log on an agent without queues",
			cmd:  func(f *fixture) callbridge.Command { return stateCmd("judy", callbridge.AgentReady, "") },
			code: callbridge.EConflict, msg: "no queues",
		},
		{
			name: "answer not supported by the switch",
			caps: func(c callbridge.Capabilities) { delete(c, callbridge.SwitchAnswerCall) },
			cmd: func(f *fixture) callbridge.Command {
				return callCmd(callbridge.CmdAnswerCall, "bob", f.idOf(acme, "p2"))
			},
			code: callbridge.ENotSupported, msg: "this switch cannot answer a call remotely; answer on the phone",
		},
		{
			name: "agent state not supported by the switch",
			caps: func(c callbridge.Capabilities) { delete(c, callbridge.SwitchSetMemberState) },
			cmd:  func(f *fixture) callbridge.Command { return stateCmd("alice", callbridge.AgentReady, "") },
			code: callbridge.ENotSupported,
		},
		{
			name: "make_call not supported by the switch",
			caps: func(c callbridge.Capabilities) { delete(c, callbridge.SwitchMakeCall) },
			cmd: func(f *fixture) callbridge.Command {
				c := cmd(callbridge.CmdMakeCall, "dave")
				c.To = "123"
				return c
			},
			code: callbridge.ENotSupported, msg: "dial on the phone",
		},
		{
			name: "make_call while on a call",
			cmd: func(f *fixture) callbridge.Command {
				c := cmd(callbridge.CmdMakeCall, "alice")
				c.To = "15557654321"
				return c
			},
			code: callbridge.EConflict, msg: "already on a call",
		},
		{
			name: "a user without a device",
			cmd:  func(f *fixture) callbridge.Command { return stateCmd("sue", callbridge.AgentReady, "") },
			code: callbridge.EConflict, msg: "no device",
		},
		{
			name: "unknown agent",
			cmd:  func(f *fixture) callbridge.Command { return stateCmd("mallory", callbridge.AgentReady, "") },
			code: callbridge.ENotFound,
		},
		{
			name: "an agent of another tenant",
			cmd:  func(f *fixture) callbridge.Command { return stateCmd("gina", callbridge.AgentReady, "") },
			code: callbridge.ENotFound,
		},
		{
			name: "unknown tenant",
			cmd: func(f *fixture) callbridge.Command {
				c := stateCmd("alice", callbridge.AgentReady, "")
				c.Tenant = "initech"
				return c
			},
			code: callbridge.ENotFound,
		},
		{
			name: "an agent command without the agent",
			cmd:  func(f *fixture) callbridge.Command { return callCmd(callbridge.CmdHoldCall, "", f.idOf(acme, "p1")) },
			code: callbridge.EInvalid, msg: "agent is required",
		},
		{
			name: "a supervisor for an agent who is not on the call",
			cmd: func(f *fixture) callbridge.Command {
				c := callCmd(callbridge.CmdHoldCall, "dave", f.idOf(acme, "p1"))
				c.Role = callbridge.RoleSupervisor
				return c
			},
			code: callbridge.EConflict, msg: "no connection",
		},
		{
			name: "unknown role",
			cmd: func(f *fixture) callbridge.Command {
				c := stateCmd("alice", callbridge.AgentReady, "")
				c.Role = "root"
				return c
			},
			code: callbridge.EForbidden,
		},
		{
			name: "unknown command",
			cmd:  func(f *fixture) callbridge.Command { return cmd("dial_everyone", "alice") },
			code: callbridge.EInvalid, msg: "unknown command",
		},
		{
			name: "attached data key that is not a token",
			cmd: func(f *fixture) callbridge.Command {
				c := callCmd(callbridge.CmdUpdateCallData, "alice", f.idOf(acme, "p1"))
				c.AttachedData = map[string]string{"bad key": "x"}
				return c
			},
			code: callbridge.EInvalid, msg: "bad key",
		},
		{
			name: "attached data key reserved for callbridge",
			cmd: func(f *fixture) callbridge.Command {
				c := callCmd(callbridge.CmdUpdateCallData, "alice", f.idOf(acme, "p1"))
				c.AttachedData = map[string]string{"CTI_TENANT": "globex"}
				return c
			},
			code: callbridge.EInvalid, msg: "reserved",
		},
		{
			name: "CR/LF in attached data",
			cmd: func(f *fixture) callbridge.Command {
				c := callCmd(callbridge.CmdSingleStepTransfer, "alice", f.idOf(acme, "p1"))
				c.To, c.AttachedData = "1004", map[string]string{"note": "a\r\nb"}
				return c
			},
			code: callbridge.EInvalid, msg: "CR, LF or NUL",
		},
		{
			name: "empty update_call_data",
			cmd: func(f *fixture) callbridge.Command {
				return callCmd(callbridge.CmdUpdateCallData, "alice", f.idOf(acme, "p1"))
			},
			code: callbridge.EInvalid,
		},
		{
			name: "transfer_call without a consultation",
			cmd: func(f *fixture) callbridge.Command {
				return callCmd(callbridge.CmdTransferCall, "alice", f.idOf(acme, "p1"))
			},
			code: callbridge.EConflict, msg: "no consultation",
		},
		{
			name: "transfer_call with a call that is not a consultation",
			cmd: func(f *fixture) callbridge.Command {
				c := callCmd(callbridge.CmdTransferCall, "alice", f.idOf(acme, "p1"))
				c.ConsultCallID = f.idOf(acme, "p3")
				return c
			},
			code: callbridge.EConflict, msg: "not a consultation",
		},
		{
			name: "long idempotency key",
			cmd: func(f *fixture) callbridge.Command {
				c := stateCmd("alice", callbridge.AgentReady, "")
				c.IdempotencyKey = strings.Repeat("k", 200)
				return c
			},
			code: callbridge.EInvalid,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			caps := allCaps()
			if tt.caps != nil {
				tt.caps(caps)
			}
			f := newFixtureCaps(t, caps)
			callsSetup(f)
			c := tt.cmd(f)
			c.Time = f.now
			before := state(f.e)
			p, err := f.e.Plan(c)
			wantCode(t, err, tt.code)
			if !strings.Contains(callbridge.ErrorMessage(err), tt.msg) {
				t.Fatalf("message %q does not say %q", callbridge.ErrorMessage(err), tt.msg)
			}
			if len(p.Commands) != 0 || p.Result.CallID != "" {
				t.Fatalf("refused plan has content: %+v", p)
			}
			sameState(t, before, state(f.e))
		})
	}
}

// TestForeignTargetAnswersAsUnknown: every command that dials refuses another tenant's
// device, queue or user name with exactly the reply of a name that exists nowhere (code and
// message), so the reply tells nothing about which names exist on the shared switch; the
// tenant's own targets and outside numbers are still planned.
func TestForeignTargetAnswersAsUnknown(t *testing.T) {
	f := newFixture(t)
	callsSetup(f)
	commands := map[string]func(to string) callbridge.Command{
		"make_call": func(to string) callbridge.Command {
			c := cmd(callbridge.CmdMakeCall, "dave")
			c.To = to
			return c
		},
		"single_step_transfer": func(to string) callbridge.Command {
			c := callCmd(callbridge.CmdSingleStepTransfer, "alice", f.idOf(acme, "p1"))
			c.To = to
			return c
		},
		"consultation_call": func(to string) callbridge.Command {
			c := callCmd(callbridge.CmdConsultationCall, "alice", f.idOf(acme, "p1"))
			c.To = to
			return c
		},
	}
	foreign := []string{"2001", "2002", "globex-sales", "gina"} // globex's devices, queue, user
	nowhere := []string{"2999", "9999", "nosuch", "nosuch-sales", "123456", "sue"}
	for name, mk := range commands {
		reply := func(to string) string {
			t.Helper()
			c := mk(to)
			c.Time = f.now
			before := state(f.e)
			p, err := f.e.Plan(c)
			if err == nil {
				t.Fatalf("%s to %q planned %+v", name, to, p)
			}
			sameState(t, before, state(f.e))
			return callbridge.ErrorCode(err) + ": " + callbridge.ErrorMessage(err)
		}
		want := reply(nowhere[0])
		if !strings.HasPrefix(want, callbridge.ENotFound+": ") {
			t.Fatalf("%s to a name that exists nowhere: %s, want not_found", name, want)
		}
		for _, to := range append(foreign, nowhere[1:]...) {
			if got := reply(to); got != want {
				t.Errorf("%s to %q answers %q; to %q answers %q", name, to, got, nowhere[0], want)
			}
		}
		// The tenant's own targets and outside numbers still go to the switch.
		for _, to := range []string{"judy", "1010", "acme-vip", "+15557654321", "15557654321"} {
			c := mk(to)
			c.Time = f.now
			if _, err := f.e.Plan(c); err != nil {
				t.Errorf("%s to %q: %v", name, to, err)
			}
		}
	}
}
