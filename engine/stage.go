package engine

import (
	"time"
	"unicode/utf8"

	"github.com/callbridge/callbridge"
)

// NotesKey is the attached-data key under which the notes of make_call,
// single_step_transfer, consultation_call and update_call_data travel with the call, so the
// receiving agent's call.delivered shows them before they answer.
const NotesKey = "notes"

// Limits on free text.
const (
	maxTransferNotes    = 1024 // notes that travel as attached data (may reach the switch)
	maxDispositionNotes = 4096 // wrap-up notes (never written to the switch)
)

// Stage prepares a planned command before the runtime executes its switch commands, so that
// the switch's events, which may arrive before Apply, already find what the command brings:
//
//   - make_call / consultation_call: the reserved CallID (with the command's attached data
//     and notes) is recorded, so that the call_started it causes claims it at once and the
//     called party's call.delivered shows the data;
//   - single_step_transfer: the attached data and notes are held for the call and merged
//     (with call.data_updated) on the first of: the transfer, a new party alerting, Apply;
//   - an IdempotencyKey is marked in progress: the same key is refused with EConflict until
//     Apply or Abort.
//
// Stage returns no events. A Duplicate plan stages nothing. After Stage, exactly one of Apply
// (the switch accepted) or Abort (it refused) must follow.
func (e *Engine) Stage(cmd callbridge.Command, p Plan) {
	t := e.dir.tenants[cmd.Tenant]
	if p.Duplicate || t == nil {
		return
	}
	e.advance(cmd.Time)
	if cmd.IdempotencyKey != "" {
		e.inflight[idemKey{t.id, cmd.Agent, cmd.IdempotencyKey}] = cmd.Name
	}
	a := e.agents[callbridge.AgentKey{Tenant: t.id, Agent: cmd.Agent}]
	switch cmd.Name {
	case callbridge.CmdMakeCall, callbridge.CmdConsultationCall:
		if a != nil && p.Result.CallID != "" && e.byID[p.Result.CallID] == nil {
			e.reserve(cmd, p, a)
		}
	case callbridge.CmdSingleStepTransfer:
		if c := e.byID[cmd.CallID]; c != nil && c.m.Tenant == t.id && len(p.data) > 0 {
			c.pending = p.data
		}
	}
}

// Abort undoes Stage after the switch refused p's commands: the reservation, the held data
// and the in-progress mark are dropped. Nothing else changes; no events.
func (e *Engine) Abort(cmd callbridge.Command, p Plan) {
	t := e.dir.tenants[cmd.Tenant]
	if p.Duplicate || t == nil {
		return
	}
	if cmd.IdempotencyKey != "" {
		delete(e.inflight, idemKey{t.id, cmd.Agent, cmd.IdempotencyKey})
	}
	switch cmd.Name {
	case callbridge.CmdMakeCall, callbridge.CmdConsultationCall:
		delete(e.resv, p.Result.CallID)
	case callbridge.CmdSingleStepTransfer:
		if c := e.byID[cmd.CallID]; c != nil && c.m.Tenant == t.id {
			c.pending = nil
		}
	}
}

// reserve records the reservation of a make_call or consultation_call.
func (e *Engine) reserve(cmd callbridge.Command, p Plan, a *agent) {
	r := &reservation{id: p.Result.CallID, tenant: a.key.Tenant, agent: a.key.Agent, device: a.user.Device, data: p.data, at: e.now}
	if cmd.Name == callbridge.CmdConsultationCall {
		c := e.byID[cmd.CallID]
		if c == nil {
			return // the consulted call has gone; its consultation cannot be told apart
		}
		r.consultOf = c.m.ID
	}
	e.resv[r.id] = r
}

// flushPending merges the data a staged single_step_transfer holds for c.
func (e *Engine) flushPending(c *call) {
	if len(c.pending) == 0 {
		return
	}
	data := c.pending
	c.pending = nil
	if e.mergeDeskData(c, data) {
		e.emit(c, callbridge.EventCallDataUpdated, callbridge.CallEvent{})
	}
}

// checkExtras refuses disposition and notes on commands that do not take them.
func checkExtras(cmd callbridge.Command) error {
	if cmd.Disposition != "" && cmd.Name != callbridge.CmdSetDisposition {
		return callbridge.Errorf(callbridge.EInvalid, "disposition is only given with set_disposition")
	}
	if cmd.Notes != "" {
		switch cmd.Name {
		case callbridge.CmdMakeCall, callbridge.CmdSingleStepTransfer, callbridge.CmdConsultationCall,
			callbridge.CmdUpdateCallData, callbridge.CmdSetDisposition:
		default:
			return callbridge.Errorf(callbridge.EInvalid, "notes are not taken by %s", cmd.Name)
		}
	}
	return nil
}

// deskData validates the attached data and notes of a command and returns them as one map
// (notes under NotesKey; nil when there is nothing).
func deskData(cmd callbridge.Command) (map[string]string, error) {
	if err := checkData(cmd.AttachedData); err != nil {
		return nil, err
	}
	if cmd.Notes == "" {
		if len(cmd.AttachedData) == 0 {
			return nil, nil
		}
		return cloneMap(cmd.AttachedData), nil
	}
	if len(cmd.Notes) > maxTransferNotes || !utf8.ValidString(cmd.Notes) {
		return nil, callbridge.Errorf(callbridge.EInvalid, "notes must be valid UTF-8 of at most %d bytes", maxTransferNotes)
	}
	if err := callbridge.CheckSwitchValue("notes", cmd.Notes); err != nil {
		return nil, callbridge.Errorf(callbridge.EInvalid, "notes that travel with a call are one line: no CR, LF or NUL")
	}
	if _, ok := cmd.AttachedData[NotesKey]; ok {
		return nil, callbridge.Errorf(callbridge.EInvalid, "give the notes either as notes or as attached_data %q, not both", NotesKey)
	}
	if len(cmd.AttachedData) >= 64 {
		return nil, callbridge.Errorf(callbridge.EInvalid, "attached_data has more than 64 keys")
	}
	m := cloneMap(cmd.AttachedData)
	if m == nil {
		m = map[string]string{}
	}
	m[NotesKey] = cmd.Notes
	return m, nil
}

func cloneMap(m map[string]string) map[string]string {
	if m == nil {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// applyAgentState commits a set_agent_state (or the state part of a set_disposition).
func (e *Engine) applyAgentState(a *agent, cmd callbridge.Command, p Plan) {
	cause := callbridge.AvailabilityCause{Source: "desktop", Event: string(cmd.Name), By: string(cmd.Agent), Time: e.now}
	if cmd.Role != callbridge.RoleAgent {
		cause.Source, cause.By = "supervisor", ""
	}
	e.touched[a.key] = true
	if p.after {
		// Log out once the call is over; meanwhile nothing changes on the switch.
		a.logoutAfter, a.logoutCause = true, cause
		return
	}
	a.wrapUntil, a.wrapPaused, a.logoutAfter = time.Time{}, false, false
	before := len(a.members) > 0
	changed := false
	for _, sc := range p.Commands {
		if sc.Type == callbridge.SwitchSetMemberState && sc.Device == a.user.Device {
			e.applyMemberCommand(a, sc)
			changed = true
		}
	}
	if changed || before != (len(a.members) > 0) {
		a.cause = cause
	}
}
