package engine

import (
	"slices"
	"unicode/utf8"

	"github.com/callbridge/callbridge"
)

// handledCall is an ended call that agents answered, kept DispositionWindow so that they can
// still set its disposition.
type handledCall struct {
	call     callbridge.Call
	audience []callbridge.AgentID
	agents   map[callbridge.AgentID]bool // the agents who answered it
}

// remember keeps ended call c for set_disposition when an agent answered it.
func (e *Engine) remember(c *call) {
	if c.m.Tenant == "" {
		return
	}
	agents := map[callbridge.AgentID]bool{}
	for d := range c.answered {
		if a := e.agentFor(c.m.Tenant, d); a != nil {
			agents[a.key.Agent] = true
		}
	}
	if len(agents) == 0 {
		return
	}
	e.handled[c.m.ID] = &handledCall{call: c.view(), audience: slices.Clone(c.audience), agents: agents}
}

// handledBy reports whether agent a answered call c (active) at some time.
func (c *call) handledBy(a *agent) bool { return c.answered[a.user.Device] }

// planSetDisposition plans set_disposition {CallID, Disposition, Notes, State, Reason}.
//
// The agent (cmd.Agent; supervisors act on an agent's behalf) must have answered the call:
// an active call, or one that ended less than DispositionWindow ago. Disposition is a code of
// 1-64 characters [A-Za-z0-9_-]; Notes are free text (valid UTF-8, at most 4096 bytes, no
// NUL; line breaks allowed, they never reach the switch). Setting it again replaces it.
//
// State (with Reason for not_ready) is optional: it is the set_agent_state the agent asks
// for together with saving the wrap-up, planned exactly like set_agent_state. In wrap-up it
// ends wrap-up at once ("save and ready"); without State the wrap-up goes on until its timer
// or a set_agent_state ends it.
//
// Errors: invalid (missing call_id or disposition, a malformed code, notes too long, a bad
// State/Reason), not_found (an unknown call, or one that ended too long ago), forbidden (an
// agent who did not handle the call), conflict (a supervisor naming an agent who did not
// handle it), and those of set_agent_state for State.
func (e *Engine) planSetDisposition(t *tenantInfo, cmd callbridge.Command) (Plan, error) {
	if cmd.CallID == "" {
		return Plan{}, callbridge.Errorf(callbridge.EInvalid, "call_id is required")
	}
	if cmd.Disposition == "" {
		return Plan{}, callbridge.Errorf(callbridge.EInvalid, "disposition is required")
	}
	if !callbridge.ValidToken(cmd.Disposition) {
		return Plan{}, callbridge.Errorf(callbridge.EInvalid, "disposition must be a code of 1-64 characters [A-Za-z0-9_-]")
	}
	if len(cmd.Notes) > maxDispositionNotes || !utf8.ValidString(cmd.Notes) || containsNUL(cmd.Notes) {
		return Plan{}, callbridge.Errorf(callbridge.EInvalid, "notes must be valid UTF-8 of at most %d bytes without NUL", maxDispositionNotes)
	}
	var p Plan
	if cmd.State != "" {
		sc := cmd
		sc.Name, sc.IdempotencyKey, sc.Disposition, sc.Notes, sc.CallID = callbridge.CmdSetAgentState, "", "", "", ""
		sp, err := e.planSetAgentState(t, sc)
		if err != nil {
			return Plan{}, err
		}
		p.Commands, p.after, p.state = sp.Commands, sp.after, &sc
	} else if cmd.Reason != "" {
		return Plan{}, callbridge.Errorf(callbridge.EInvalid, "a reason is only given with state not_ready")
	}
	a, err := e.actor(t, cmd, true)
	if err != nil {
		return Plan{}, err
	}
	handled := false
	if c := e.byID[cmd.CallID]; c != nil && c.m.Tenant == t.id {
		handled = c.handledBy(a)
	} else if h := e.handled[cmd.CallID]; h != nil && h.call.Tenant == t.id && e.cmdTime(cmd).Sub(h.call.EndedAt) < DispositionWindow {
		handled = h.agents[a.key.Agent]
	} else {
		return Plan{}, callbridge.Errorf(callbridge.ENotFound, "call %s not found (a disposition can be set up to %s after the call)", cmd.CallID, DispositionWindow)
	}
	if !handled {
		if cmd.Role == callbridge.RoleAgent {
			return Plan{}, callbridge.Errorf(callbridge.EForbidden, "call %s is not yours: you did not answer it", cmd.CallID)
		}
		return Plan{}, callbridge.Errorf(callbridge.EConflict, "agent %s did not answer call %s", a.key.Agent, cmd.CallID)
	}
	return p, nil
}

func containsNUL(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] == 0 {
			return true
		}
	}
	return false
}

// applyDisposition commits set_disposition: call.disposition_set about the agent's device,
// then the state part.
func (e *Engine) applyDisposition(t *tenantInfo, a *agent, cmd callbridge.Command, p Plan) {
	if a == nil {
		return
	}
	ce := callbridge.CallEvent{Device: a.user.Device, Agent: a.key.Agent, Disposition: cmd.Disposition, Notes: cmd.Notes}
	if c := e.byID[cmd.CallID]; c != nil && c.m.Tenant == t.id {
		e.emit(c, callbridge.EventCallDispositionSet, ce)
	} else if h := e.handled[cmd.CallID]; h != nil && h.call.Tenant == t.id {
		ce.Call = h.call.Clone()
		if ce.Connections == nil {
			ce.Connections = []callbridge.Connection{}
		}
		e.out.Events = append(e.out.Events, callbridge.Event{
			Type: callbridge.EventCallDispositionSet, Time: e.now, Tenant: t.id, Data: &ce,
			CallID: h.call.ID, Audience: slices.Clone(h.audience),
		})
	}
	if p.state != nil {
		e.applyAgentState(a, *p.state, p)
	}
}
