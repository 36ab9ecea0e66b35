package engine

import (
	"slices"
	"unicode/utf8"

	"github.com/callbridge/callbridge"
)

// handledCall is an ended call that agents answered, kept DispositionWindow so that they can
// still set its disposition.
type handledCall struct {
	call callbridge.Call // as it ended
	// views: for each agent who answered it, the call as the event that ended their part
	// showed it.
	views map[callbridge.AgentID]callbridge.Call
}

// remember keeps ended call c for set_disposition when an agent answered it.
func (e *Engine) remember(c *call) {
	if c.m.Tenant == "" {
		return
	}
	views := map[callbridge.AgentID]callbridge.Call{}
	for d := range c.answered {
		if a := e.agentFor(c.m.Tenant, d); a != nil {
			views[a.key.Agent] = c.seenBy(a.key.Agent)
		}
	}
	if len(views) == 0 {
		return
	}
	e.handled[c.m.ID] = &handledCall{call: c.view(), views: views}
}

// seenBy is the call as agent a knows it: its current state while they are on it, else as
// the event that ended their part showed it (never what others did after).
func (c *call) seenBy(a callbridge.AgentID) callbridge.Call {
	if v, ok := c.seen[a]; ok && !slices.ContainsFunc(c.m.Connections, func(cn callbridge.Connection) bool { return cn.Agent == a }) {
		return v.Clone()
	}
	return c.view()
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
		_, handled = h.views[a.key.Agent]
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
// for that agent only (other agents on the call never see their wrap-up notes), with the call
// as that agent knows it (see seenBy), then the state part.
func (e *Engine) applyDisposition(t *tenantInfo, a *agent, cmd callbridge.Command, p Plan) {
	if a == nil {
		return
	}
	ce := callbridge.CallEvent{Device: a.user.Device, Agent: a.key.Agent, Disposition: cmd.Disposition, Notes: cmd.Notes}
	var view callbridge.Call
	switch c, h := e.byID[cmd.CallID], e.handled[cmd.CallID]; {
	case c != nil && c.m.Tenant == t.id:
		view = c.seenBy(a.key.Agent)
	case h != nil && h.call.Tenant == t.id:
		if v, ok := h.views[a.key.Agent]; ok {
			view = v.Clone()
		} else {
			view = h.call.Clone()
		}
	default:
		if p.state != nil {
			e.applyAgentState(a, *p.state, p)
		}
		return
	}
	ce.Call = view
	if ce.Connections == nil {
		ce.Connections = []callbridge.Connection{}
	}
	e.out.Events = append(e.out.Events, callbridge.Event{
		Type: callbridge.EventCallDispositionSet, Time: e.now, Tenant: t.id, Data: &ce,
		CallID: view.ID, Audience: []callbridge.AgentID{a.key.Agent},
	})
	if p.state != nil {
		e.applyAgentState(a, *p.state, p)
	}
}
