package engine

import (
	"time"

	"github.com/callbridge/callbridge"
)

// Plan is how a command is carried out: the switch commands to execute, in order, and the
// result for the caller.
type Plan struct {
	Commands []callbridge.SwitchCommand
	// Result is the reply: CallID is the call a make_call or consultation_call will create
	// (reserved now, claimed by the call_started that carries it as CorrelationID).
	Result callbridge.CommandResult
	// Duplicate is true when the command repeats the IdempotencyKey of a command that the
	// same agent of the same tenant committed (Apply) less than IdempotencyWindow ago:
	// Commands is empty, Result is the first command's result, and Apply does nothing.
	Duplicate bool

	// data is the command's attached data with its notes (NotesKey), validated.
	data map[string]string
	// after: set_agent_state logged_out during a call, carried out when the call is over.
	after bool
	// state is the set_agent_state part of a set_disposition (nil: none).
	state *callbridge.Command
}

// reservation is a CallID reserved by make_call or consultation_call, waiting for the
// call_started that the switch command causes.
type reservation struct {
	id        callbridge.CallID
	tenant    callbridge.TenantID
	agent     callbridge.AgentID
	device    callbridge.DeviceID
	consultOf callbridge.CallID // consultation_call: the consulted call
	data      map[string]string
	at        time.Time
}

type idemKey struct {
	tenant callbridge.TenantID
	agent  callbridge.AgentID
	key    string
}

type idemEntry struct {
	name   callbridge.CommandName
	result callbridge.CommandResult
	at     time.Time
}

// notSupported is the ENotSupported message for switch command t.
func notSupported(t callbridge.SwitchCommandType) string {
	switch t {
	case callbridge.SwitchMakeCall:
		return "this switch cannot place a call for an agent; dial on the phone"
	case callbridge.SwitchAnswerCall:
		return "this switch cannot answer a call remotely; answer on the phone"
	case callbridge.SwitchClearConnection:
		return "this switch cannot hang up a call remotely; hang up on the phone"
	case callbridge.SwitchClearCall:
		return "this switch cannot clear a whole call"
	case callbridge.SwitchHoldCall:
		return "this switch cannot put a call on hold remotely; use the hold button of the phone"
	case callbridge.SwitchRetrieveCall:
		return "this switch cannot retrieve a held call remotely; use the hold button of the phone"
	case callbridge.SwitchSingleStepTransfer:
		return "this switch cannot transfer a call remotely; transfer on the phone"
	case callbridge.SwitchConsultationCall:
		return "this switch cannot start a consultation call remotely; use the phone"
	case callbridge.SwitchTransferCall:
		return "this switch cannot complete a transfer remotely; use the phone"
	case callbridge.SwitchConferenceCall:
		return "this switch cannot make a conference remotely; use the phone"
	case callbridge.SwitchSetMemberState:
		return "this switch cannot change queue membership; use the feature codes of the phone"
	}
	return "this switch cannot do " + string(t)
}

// need returns ENotSupported when the driver cannot carry out switch commands of type t.
func (e *Engine) need(t callbridge.SwitchCommandType) error {
	if e.caps[t] {
		return nil
	}
	return callbridge.Errorf(callbridge.ENotSupported, "%s", notSupported(t))
}

// Plan validates a desktop/CRM command against the current state and returns the switch
// commands that carry it out. It changes nothing (it may call Config.NewCallID to reserve an
// id). Errors are *callbridge.Error:
//
//   - invalid: unknown command or state, missing field (agent, call_id, to, reason), a
//     target that fails callbridge.CheckDialTarget (CR/LF/NUL, dial-string metacharacters),
//     attached_data with more than 64 keys, a key that is not a token or starts with CTI_ or
//     is TruncatedKey, a value with CR/LF/NUL or longer than 1024 bytes, data that would take
//     the call (for make_call the new call, for consultation_call the consultation) past a
//     limit of its attached data (limits.go), a not_ready reason that is not one of the tenant's ReasonCodes
//     (or desktop_lost / device_unavailable), a request for busy or working_after_call, a
//     transfer or call to the agent's own device;
//   - forbidden: a role other than agent/supervisor/admin; an agent acting on a call their
//     device has no connection to ("call … is not yours");
//   - not_found: unknown tenant, agent, or call (a call of another tenant is not found); a
//     dial target that is not the tenant's (another tenant's user, device or queue, or a
//     name that exists nowhere: one reply for all, see resolveTarget);
//   - conflict: the call or agent is not in a state that allows it (answer a call that is not
//     ringing, hold a call that is not connected, make_call while on a call …), a user
//     without a device, an IdempotencyKey reused for another command;
//   - not_supported: the driver lacks the switch command (Config.Capabilities).
//
// Checks run in this order: fields, capability, agent, call, ownership, state.
// Supervisors and admins act on any call of their tenant on behalf of cmd.Agent (the device
// that acts); clear_call and update_call_data need no agent.
//
// Commands:
//
//   - set_agent_state {State, Reason}: from logged_out, ready/not_ready is a MemberAdd of the
//     agent's configured queues (Paused unless ready); when logged on, ready is an unpause
//     and not_ready a pause with Reason (every queue); logged_out is a MemberRemove of the
//     current queues. A request for the state the agent already has plans no commands.
//     not_ready while busy is allowed ("not ready after this call"): the pause applies and
//     the agent shows not_ready when the call (and its wrap-up) ends; logged_out while busy
//     plans nothing and logs out when the call (and its wrap-up) ends. During wrap-up,
//     ready and not_ready end it at once.
//   - answer_call (connection alerting), clear_connection (active), clear_call, hold_call
//     (connected), retrieve_call (held).
//   - single_step_transfer {To}: connection connected or held; To is an agent's user name
//     (→ their device), a device or queue of the tenant, or an outside number. The
//     command's AttachedData is merged into the call by Apply.
//   - make_call {To}: the agent has no active connection and no make_call pending; a CallID
//     is reserved (Result.CallID, also the CorrelationID of SwitchMakeCall).
//   - consultation_call {CallID, To}: connection connected or held, no consultation of the
//     call by this agent in progress; a CallID is reserved for the consultation, which gets
//     the call's attached data plus the command's.
//   - transfer_call / conference_call {CallID, ConsultCallID}: the agent is on both calls,
//     ConsultCallID is a consultation of CallID (found by itself when empty) with another
//     party.
//   - update_call_data {AttachedData, Notes}: no switch command; Apply merges (an empty
//     value deletes a key) and emits call.data_updated.
//   - set_disposition {CallID, Disposition, Notes, State?, Reason?}: no switch command
//     unless State is given (then as set_agent_state); see planSetDisposition.
//
// make_call, single_step_transfer, consultation_call and update_call_data take Notes: one
// line (no CR/LF/NUL) of at most 1024 bytes, carried as attached data NotesKey; other
// commands refuse notes and disposition (invalid).
func (e *Engine) Plan(cmd callbridge.Command) (Plan, error) {
	t := e.dir.tenants[cmd.Tenant]
	if t == nil {
		return Plan{}, callbridge.Errorf(callbridge.ENotFound, "tenant %q not found", cmd.Tenant)
	}
	switch cmd.Role {
	case callbridge.RoleAgent, callbridge.RoleSupervisor, callbridge.RoleAdmin:
	default:
		return Plan{}, callbridge.Errorf(callbridge.EForbidden, "role %q may not run commands", cmd.Role)
	}
	if cmd.IdempotencyKey != "" {
		if len(cmd.IdempotencyKey) > 128 || callbridge.CheckSwitchValue("idempotency_key", cmd.IdempotencyKey) != nil {
			return Plan{}, callbridge.Errorf(callbridge.EInvalid, "idempotency_key must be at most 128 characters without CR, LF or NUL")
		}
		k := idemKey{cmd.Tenant, cmd.Agent, cmd.IdempotencyKey}
		if prev, ok := e.idem[k]; ok && e.cmdTime(cmd).Sub(prev.at) < IdempotencyWindow {
			if prev.name != cmd.Name {
				return Plan{}, callbridge.Errorf(callbridge.EConflict, "idempotency_key %q was used for %s", cmd.IdempotencyKey, prev.name)
			}
			return Plan{Result: prev.result, Duplicate: true}, nil
		}
		if name, ok := e.inflight[k]; ok {
			return Plan{}, callbridge.Errorf(callbridge.EConflict, "a %s with idempotency_key %q is still in progress; retry when it has answered", name, cmd.IdempotencyKey)
		}
	}
	if err := checkExtras(cmd); err != nil {
		return Plan{}, err
	}
	switch cmd.Name {
	case callbridge.CmdSetAgentState:
		return e.planSetAgentState(t, cmd)
	case callbridge.CmdAnswerCall:
		return e.planConnection(t, cmd, callbridge.SwitchAnswerCall, "ringing", callbridge.ConnAlerting)
	case callbridge.CmdClearConnection:
		return e.planConnection(t, cmd, callbridge.SwitchClearConnection, "active",
			callbridge.ConnInitiated, callbridge.ConnAlerting, callbridge.ConnConnected, callbridge.ConnHeld)
	case callbridge.CmdHoldCall:
		return e.planConnection(t, cmd, callbridge.SwitchHoldCall, "connected", callbridge.ConnConnected)
	case callbridge.CmdRetrieveCall:
		return e.planConnection(t, cmd, callbridge.SwitchRetrieveCall, "on hold", callbridge.ConnHeld)
	case callbridge.CmdClearCall:
		return e.planClearCall(t, cmd)
	case callbridge.CmdSingleStepTransfer:
		return e.planSingleStepTransfer(t, cmd)
	case callbridge.CmdMakeCall:
		return e.planMakeCall(t, cmd)
	case callbridge.CmdConsultationCall:
		return e.planConsultationCall(t, cmd)
	case callbridge.CmdTransferCall:
		return e.planJoin(t, cmd, callbridge.SwitchTransferCall)
	case callbridge.CmdConferenceCall:
		return e.planJoin(t, cmd, callbridge.SwitchConferenceCall)
	case callbridge.CmdUpdateCallData:
		return e.planUpdateCallData(t, cmd)
	case callbridge.CmdSetDisposition:
		return e.planSetDisposition(t, cmd)
	}
	return Plan{}, callbridge.Errorf(callbridge.EInvalid, "unknown command %q", cmd.Name)
}

// cmdTime is the time of cmd on the engine's clock.
func (e *Engine) cmdTime(cmd callbridge.Command) time.Time {
	if t := cmd.Time.UTC(); t.After(e.now) {
		return t
	}
	return e.now
}

// Apply commits cmd after the switch accepted p's commands; p must be what Plan returned for
// cmd (and, when the runtime staged it, passed to Stage). Other inputs may have been handled
// since Plan, so Apply re-checks what it touches and skips what no longer applies (a call
// that has gone). It returns the events the change causes:
//
//   - set_agent_state: the memberships change as p's commands say (the switch's echo then
//     changes nothing), wrap-up ends, agent.state_changed (and logged_on/logged_off); a
//     log-out asked for during a call is remembered (next_state logged_out) and carried out
//     once the call and its wrap-up are over;
//   - set_disposition: call.disposition_set, and the set_agent_state part if any;
//   - make_call / consultation_call: the reserved CallID waits for its call_started (or,
//     when the call already started, the command's attached data is merged into it);
//   - single_step_transfer / update_call_data: the attached data is merged, call.data_updated;
//   - an IdempotencyKey is remembered with p.Result.
//
// A Duplicate plan changes nothing.
func (e *Engine) Apply(cmd callbridge.Command, p Plan) Output {
	e.begin(cmd.Time)
	t := e.dir.tenants[cmd.Tenant]
	if p.Duplicate || t == nil {
		return e.end()
	}
	a := e.agents[callbridge.AgentKey{Tenant: t.id, Agent: cmd.Agent}]
	if cmd.IdempotencyKey != "" {
		delete(e.inflight, idemKey{t.id, cmd.Agent, cmd.IdempotencyKey})
	}
	switch cmd.Name {
	case callbridge.CmdSetAgentState:
		if a != nil {
			e.applyAgentState(a, cmd, p)
		}
	case callbridge.CmdSetDisposition:
		e.applyDisposition(t, a, cmd, p)
	case callbridge.CmdMakeCall, callbridge.CmdConsultationCall:
		id := p.Result.CallID
		if id == "" || e.resv[id] != nil {
			break // staged: the call_started claims the reservation
		}
		if _, ok := e.claimed[id]; ok && e.byID[id] == nil {
			break // the call started, claimed it and is over already
		}
		if c := e.byID[id]; c != nil {
			if c.m.Tenant == t.id && e.mergeDeskData(c, p.data) {
				e.emit(c, callbridge.EventCallDataUpdated, callbridge.CallEvent{})
			}
			break
		}
		if a == nil {
			break
		}
		if c := e.startedUnclaimed(cmd, a); c != nil {
			// The switch started the call before Apply and could not carry the correlation id.
			c.unclaimed = false
			if e.mergeDeskData(c, p.data) {
				e.emit(c, callbridge.EventCallDataUpdated, callbridge.CallEvent{})
			}
			break
		}
		e.reserve(cmd, p, a)
	case callbridge.CmdSingleStepTransfer, callbridge.CmdUpdateCallData:
		if c := e.byID[cmd.CallID]; c != nil && c.m.Tenant == t.id {
			c.pending = nil
			if e.mergeDeskData(c, p.data) {
				e.emit(c, callbridge.EventCallDataUpdated, callbridge.CallEvent{})
			}
		}
	}
	if cmd.IdempotencyKey != "" {
		e.idem[idemKey{t.id, cmd.Agent, cmd.IdempotencyKey}] = idemEntry{name: cmd.Name, result: p.Result, at: e.now}
	}
	return e.end()
}

// startedUnclaimed returns the call that a make_call or consultation_call of agent a caused
// when it started before Apply without a correlation id: the oldest unclaimed call their
// device started (for a consultation: a consultation of cmd.CallID).
func (e *Engine) startedUnclaimed(cmd callbridge.Command, a *agent) *call {
	var found *call
	for pbx := range e.devCalls[a.user.Device] {
		c := e.calls[pbx]
		if c == nil || !c.unclaimed || c.m.Tenant != a.key.Tenant {
			continue
		}
		if cmd.Name == callbridge.CmdConsultationCall {
			if c.m.ConsultOf == "" || c.m.ConsultOf != cmd.CallID {
				continue
			}
		} else if c.m.ConsultOf != "" {
			continue
		}
		if found == nil || c.m.StartedAt.Before(found.m.StartedAt) || c.m.StartedAt.Equal(found.m.StartedAt) && c.m.ID < found.m.ID {
			found = c
		}
	}
	return found
}

// claim returns the reservation a call_started belongs to: the one named by its
// CorrelationID, else (drivers that cannot carry one) the oldest of the same kind for the
// starting device: a consultation of the consulted call, or a make_call.
func (e *Engine) claim(ev callbridge.SwitchEvent, consult *call) *reservation {
	if ev.CorrelationID != "" {
		return e.resv[callbridge.CallID(ev.CorrelationID)]
	}
	if ev.Device == "" {
		return nil
	}
	var found *reservation
	for _, r := range e.resv {
		if r.device != ev.Device {
			continue
		}
		if consult != nil && r.consultOf != consult.m.ID || consult == nil && (r.consultOf != "" || ev.ConsultOf != "") {
			continue
		}
		if found == nil || r.at.Before(found.at) || r.at.Equal(found.at) && r.id < found.id {
			found = r
		}
	}
	return found
}
