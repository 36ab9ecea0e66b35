package engine

import (
	"strings"
	"time"

	"github.com/callbridge/callbridge"
)

// actor returns the agent cmd acts for (nil when cmd.Agent is empty and required is false).
func (e *Engine) actor(t *tenantInfo, cmd callbridge.Command, required bool) (*agent, error) {
	if cmd.Agent == "" {
		if required || cmd.Role == callbridge.RoleAgent {
			return nil, callbridge.Errorf(callbridge.EInvalid, "agent is required: %s acts on an agent's device", cmd.Name)
		}
		return nil, nil
	}
	if a := e.agents[callbridge.AgentKey{Tenant: t.id, Agent: cmd.Agent}]; a != nil {
		return a, nil
	}
	if _, ok := t.users[string(cmd.Agent)]; ok {
		return nil, callbridge.Errorf(callbridge.EConflict, "user %q has no device", cmd.Agent)
	}
	return nil, callbridge.Errorf(callbridge.ENotFound, "agent %q not found", cmd.Agent)
}

// callOf returns call id of tenant t: EInvalid when id is empty, ENotFound when the call is
// unknown or another tenant's (the error does not tell them apart).
func (e *Engine) callOf(t *tenantInfo, field string, id callbridge.CallID) (*call, error) {
	if id == "" {
		return nil, callbridge.Errorf(callbridge.EInvalid, "%s is required", field)
	}
	c := e.byID[id]
	if c == nil || c.m.Tenant != t.id {
		return nil, callbridge.Errorf(callbridge.ENotFound, "call %s not found", id)
	}
	return c, nil
}

// owned checks that an agent acts only on calls their device is on; with needConn the
// acting agent must be on the call whatever the role. It returns the agent's connection index.
func (e *Engine) owned(cmd callbridge.Command, a *agent, c *call, needConn bool) (int, error) {
	i := -1
	if a != nil {
		i = c.idx(a.user.Device)
	}
	switch {
	case i >= 0:
	case cmd.Role == callbridge.RoleAgent:
		return -1, callbridge.Errorf(callbridge.EForbidden, "call %s is not yours", c.m.ID)
	case needConn:
		return -1, callbridge.Errorf(callbridge.EConflict, "agent %s has no connection to call %s", a.key.Agent, c.m.ID)
	}
	return i, nil
}

// onCall resolves the acting agent and the call of cmd and checks ownership; the agent must
// be on the call. It returns the agent's connection state.
func (e *Engine) onCall(t *tenantInfo, cmd callbridge.Command) (*agent, *call, callbridge.ConnectionState, error) {
	a, err := e.actor(t, cmd, true)
	if err != nil {
		return nil, nil, "", err
	}
	c, err := e.callOf(t, "call_id", cmd.CallID)
	if err != nil {
		return nil, nil, "", err
	}
	i, err := e.owned(cmd, a, c, true)
	if err != nil {
		return nil, nil, "", err
	}
	return a, c, c.m.Connections[i].State, nil
}

func stateIn(s callbridge.ConnectionState, ok []callbridge.ConnectionState) bool {
	for _, o := range ok {
		if s == o {
			return true
		}
	}
	return false
}

// planConnection plans a command on the agent's own connection that must be in one of ok.
func (e *Engine) planConnection(t *tenantInfo, cmd callbridge.Command, st callbridge.SwitchCommandType, want string, ok ...callbridge.ConnectionState) (Plan, error) {
	if err := e.need(st); err != nil {
		return Plan{}, err
	}
	a, c, s, err := e.onCall(t, cmd)
	if err != nil {
		return Plan{}, err
	}
	if !stateIn(s, ok) {
		return Plan{}, callbridge.Errorf(callbridge.EConflict, "call %s is not %s at device %s (it is %s)", c.m.ID, want, a.user.Device, s)
	}
	return Plan{Commands: []callbridge.SwitchCommand{{
		Type: st, Tenant: t.id, PBXCallID: c.m.PBXCallID, Device: a.user.Device,
	}}}, nil
}

func (e *Engine) planClearCall(t *tenantInfo, cmd callbridge.Command) (Plan, error) {
	if err := e.need(callbridge.SwitchClearCall); err != nil {
		return Plan{}, err
	}
	a, err := e.actor(t, cmd, false)
	if err != nil {
		return Plan{}, err
	}
	c, err := e.callOf(t, "call_id", cmd.CallID)
	if err != nil {
		return Plan{}, err
	}
	if _, err := e.owned(cmd, a, c, false); err != nil {
		return Plan{}, err
	}
	sc := callbridge.SwitchCommand{Type: callbridge.SwitchClearCall, Tenant: t.id, PBXCallID: c.m.PBXCallID}
	if a != nil {
		sc.Device = a.user.Device
	}
	return Plan{Commands: []callbridge.SwitchCommand{sc}}, nil
}

func (e *Engine) planSetAgentState(t *tenantInfo, cmd callbridge.Command) (Plan, error) {
	switch cmd.State {
	case callbridge.AgentReady, callbridge.AgentLoggedOut:
		if cmd.Reason != "" {
			return Plan{}, callbridge.Errorf(callbridge.EInvalid, "a reason is only given with state not_ready")
		}
	case callbridge.AgentNotReady:
		if err := callbridge.CheckSwitchValue("reason", cmd.Reason); err != nil {
			return Plan{}, err
		}
		if cmd.Reason == "" {
			return Plan{}, callbridge.Errorf(callbridge.EInvalid, "not_ready needs a reason code")
		}
		if !t.reasonAllowed(cmd.Reason) {
			return Plan{}, callbridge.Errorf(callbridge.EInvalid, "unknown reason code %q (allowed: %s)", cmd.Reason, strings.Join(t.cfg.ReasonCodes, ", "))
		}
	case callbridge.AgentBusy, callbridge.AgentWorkingAfterCall:
		return Plan{}, callbridge.Errorf(callbridge.EInvalid, "state %s cannot be requested: it follows the agent's calls", cmd.State)
	case "":
		return Plan{}, callbridge.Errorf(callbridge.EInvalid, "state is required")
	default:
		return Plan{}, callbridge.Errorf(callbridge.EInvalid, "unknown agent state %q", cmd.State)
	}
	if err := e.need(callbridge.SwitchSetMemberState); err != nil {
		return Plan{}, err
	}
	a, err := e.actor(t, cmd, true)
	if err != nil {
		return Plan{}, err
	}
	wrap := !a.wrapUntil.IsZero()
	base := func(paused bool, reason string) callbridge.SwitchCommand {
		return e.pauseCommand(a, nil, paused, reason)
	}
	var sc callbridge.SwitchCommand
	switch {
	case cmd.State == callbridge.AgentLoggedOut:
		if len(a.members) == 0 {
			return Plan{}, nil
		}
		if e.deviceBusy(a.user.Device) {
			// "Log out after this call": nothing changes on the switch until the call ends.
			return Plan{after: true}, nil
		}
		sc = base(false, "")
		sc.Action, sc.Queues = callbridge.MemberRemove, a.queues()
	case len(a.members) == 0:
		if len(a.user.Queues) == 0 {
			return Plan{}, callbridge.Errorf(callbridge.EConflict, "agent %s has no queues to log on to", a.key.Agent)
		}
		sc = base(cmd.State == callbridge.AgentNotReady, cmd.Reason)
		sc.Action, sc.Queues = callbridge.MemberAdd, append([]callbridge.QueueName(nil), a.user.Queues...)
	case cmd.State == callbridge.AgentReady:
		if !wrap && a.allMembers(func(m member) bool { return !m.paused }) {
			return Plan{}, nil
		}
		sc = base(false, "")
	default: // not_ready
		if !wrap && a.allMembers(func(m member) bool { return m.paused && m.reason == cmd.Reason }) {
			return Plan{}, nil
		}
		sc = base(true, cmd.Reason)
	}
	return Plan{Commands: []callbridge.SwitchCommand{sc}}, nil
}

// allMembers reports whether every membership satisfies f.
func (a *agent) allMembers(f func(member) bool) bool {
	for _, m := range a.members {
		if !f(m) {
			return false
		}
	}
	return true
}

// checkData validates attached data from a command.
func checkData(data map[string]string) error {
	if len(data) > 64 {
		return callbridge.Errorf(callbridge.EInvalid, "attached_data has more than 64 keys")
	}
	for _, k := range sortedKeys(data, compareString) {
		v := data[k]
		switch {
		case !callbridge.ValidToken(k):
			return callbridge.Errorf(callbridge.EInvalid, "attached_data key %q is not 1-64 characters of [A-Za-z0-9_-]", k)
		case strings.HasPrefix(k, "CTI_"):
			return callbridge.Errorf(callbridge.EInvalid, "attached_data key %q is reserved (CTI_ names belong to callbridge)", k)
		case k == TruncatedKey:
			return callbridge.Errorf(callbridge.EInvalid, "attached_data key %q is reserved (callbridge sets it on data cut to the limits)", k)
		case len(v) > 1024:
			return callbridge.Errorf(callbridge.EInvalid, "attached_data %s is longer than 1024 bytes", k)
		}
		if err := callbridge.CheckSwitchValue("attached_data "+k, v); err != nil {
			return err
		}
	}
	return nil
}

// errUnknownTarget is the one answer for a dial target that is not the tenant's: another
// tenant's user, device or queue gets exactly the reply of a name that exists nowhere (the
// same code and message, which does not repeat the name), so that a reply tells nothing about
// which names exist on the shared switch (issue 10, tenant enumeration).
var errUnknownTarget = callbridge.Errorf(callbridge.ENotFound,
	"to is not a user, extension or queue of this tenant, nor an outside number (7 to 20 digits, optionally after +)")

// resolveTarget turns a typed target into what the switch dials: an agent's user name
// becomes their device; a device or queue of the tenant, or an outside number
// (callbridge.IsOutsideNumber) that is no other tenant's device, stays as it is. Anything
// else is errUnknownTarget; the agent's own device is invalid.
func (e *Engine) resolveTarget(t *tenantInfo, to string, self callbridge.DeviceID) (string, error) {
	if err := callbridge.CheckDialTarget("to", to); err != nil {
		return "", err
	}
	var target string
	if u, ok := t.users[to]; ok && u.Device != "" {
		target = string(u.Device)
	} else if _, ok := t.queues[callbridge.QueueName(to)]; ok {
		target = to
	} else if key, ok := e.dir.devices[callbridge.DeviceID(to)]; ok {
		if key.Tenant != t.id {
			return "", errUnknownTarget
		}
		target = to
	} else if callbridge.IsOutsideNumber(to) {
		target = to
	} else {
		return "", errUnknownTarget
	}
	if callbridge.DeviceID(target) == self {
		return "", callbridge.Errorf(callbridge.EInvalid, "to %q is the agent's own device", to)
	}
	return target, nil
}

// dialChecks checks a command that dials cmd.To before anything else: the target's form, the
// desk's attached data (returned) and that the switch can do typ.
func (e *Engine) dialChecks(cmd callbridge.Command, typ callbridge.SwitchCommandType) (map[string]string, error) {
	if err := callbridge.CheckDialTarget("to", cmd.To); err != nil {
		return nil, err
	}
	data, err := deskData(cmd)
	if err != nil {
		return nil, err
	}
	if err := e.need(typ); err != nil {
		return nil, err
	}
	return data, nil
}

// talkingOnCall is onCall for commands that need the agent's connection connected or held.
func (e *Engine) talkingOnCall(t *tenantInfo, cmd callbridge.Command) (*agent, *call, error) {
	a, c, s, err := e.onCall(t, cmd)
	if err != nil {
		return nil, nil, err
	}
	if s != callbridge.ConnConnected && s != callbridge.ConnHeld {
		return nil, nil, callbridge.Errorf(callbridge.EConflict, "call %s is not connected at device %s (it is %s)", c.m.ID, a.user.Device, s)
	}
	return a, c, nil
}

func (e *Engine) planSingleStepTransfer(t *tenantInfo, cmd callbridge.Command) (Plan, error) {
	data, err := e.dialChecks(cmd, callbridge.SwitchSingleStepTransfer)
	if err != nil {
		return Plan{}, err
	}
	a, c, err := e.talkingOnCall(t, cmd)
	if err != nil {
		return Plan{}, err
	}
	to, err := e.resolveTarget(t, cmd.To, a.user.Device)
	if err != nil {
		return Plan{}, err
	}
	if err := e.lim.checkCallData(c.m.ID, c.m.AttachedData, data); err != nil {
		return Plan{}, err
	}
	return Plan{Commands: []callbridge.SwitchCommand{{
		Type: callbridge.SwitchSingleStepTransfer, Tenant: t.id, PBXCallID: c.m.PBXCallID, Device: a.user.Device, To: to,
	}}, data: data}, nil
}

// reserveID returns a CallID from the generator that is in use neither by a call nor by a
// reservation. A generator that repeats itself is a bug of the caller; the engine then makes
// the id unique with a suffix rather than corrupt its state.
func (e *Engine) reserveID(at time.Time) callbridge.CallID {
	id := e.newID(at)
	for n := 1; id == "" || e.byID[id] != nil || e.resv[id] != nil || !e.claimed[id].IsZero(); n++ {
		id = callbridge.CallID(string(e.newID(at)) + "-" + itoa(n))
	}
	return id
}

func (e *Engine) planMakeCall(t *tenantInfo, cmd callbridge.Command) (Plan, error) {
	data, err := e.dialChecks(cmd, callbridge.SwitchMakeCall)
	if err != nil {
		return Plan{}, err
	}
	if err := e.lim.checkCallData("", nil, data); err != nil {
		return Plan{}, err
	}
	a, err := e.actor(t, cmd, true)
	if err != nil {
		return Plan{}, err
	}
	if e.deviceBusy(a.user.Device) {
		return Plan{}, callbridge.Errorf(callbridge.EConflict, "agent %s is already on a call", a.key.Agent)
	}
	for _, r := range e.resv {
		if r.device == a.user.Device && r.consultOf == "" {
			return Plan{}, callbridge.Errorf(callbridge.EConflict, "a call for agent %s is already being placed", a.key.Agent)
		}
	}
	to, err := e.resolveTarget(t, cmd.To, a.user.Device)
	if err != nil {
		return Plan{}, err
	}
	id := e.reserveID(e.cmdTime(cmd))
	return Plan{
		Commands: []callbridge.SwitchCommand{{
			Type: callbridge.SwitchMakeCall, Tenant: t.id, Device: a.user.Device, To: to,
			CorrelationID: string(id), Interface: a.user.Interface,
		}},
		Result: callbridge.CommandResult{CallID: id},
		data:   data,
	}, nil
}

func (e *Engine) planConsultationCall(t *tenantInfo, cmd callbridge.Command) (Plan, error) {
	data, err := e.dialChecks(cmd, callbridge.SwitchConsultationCall)
	if err != nil {
		return Plan{}, err
	}
	a, c, err := e.talkingOnCall(t, cmd)
	if err != nil {
		return Plan{}, err
	}
	if q := e.consultOf(c, a); q != nil {
		return Plan{}, callbridge.Errorf(callbridge.EConflict, "consultation %s of call %s is already in progress", q.m.ID, c.m.ID)
	}
	// The consultation gets a copy of the call's data and the command's.
	if err := e.lim.checkCallData("", c.m.AttachedData, data); err != nil {
		return Plan{}, err
	}
	for _, r := range e.resv {
		if r.consultOf == c.m.ID && r.device == a.user.Device {
			return Plan{}, callbridge.Errorf(callbridge.EConflict, "a consultation of call %s is already being placed", c.m.ID)
		}
	}
	to, err := e.resolveTarget(t, cmd.To, a.user.Device)
	if err != nil {
		return Plan{}, err
	}
	id := e.reserveID(e.cmdTime(cmd))
	return Plan{
		Commands: []callbridge.SwitchCommand{{
			Type: callbridge.SwitchConsultationCall, Tenant: t.id, PBXCallID: c.m.PBXCallID, Device: a.user.Device,
			To: to, CorrelationID: string(id),
		}},
		Result: callbridge.CommandResult{CallID: id},
		data:   data,
	}, nil
}

// consultOf returns a consultation of c that agent a's device is on, or nil (the oldest when
// there are several).
func (e *Engine) consultOf(c *call, a *agent) *call {
	var found *call
	for pbx := range e.devCalls[a.user.Device] {
		q := e.calls[pbx]
		if q != nil && q.m.ConsultOf == c.m.ID && (found == nil || q.m.StartedAt.Before(found.m.StartedAt) ||
			q.m.StartedAt.Equal(found.m.StartedAt) && q.m.ID < found.m.ID) {
			found = q
		}
	}
	return found
}

// planJoin plans transfer_call and conference_call.
func (e *Engine) planJoin(t *tenantInfo, cmd callbridge.Command, st callbridge.SwitchCommandType) (Plan, error) {
	if err := e.need(st); err != nil {
		return Plan{}, err
	}
	a, c, s, err := e.onCall(t, cmd)
	if err != nil {
		return Plan{}, err
	}
	var q *call
	if cmd.ConsultCallID != "" {
		if q, err = e.callOf(t, "consult_call_id", cmd.ConsultCallID); err != nil {
			return Plan{}, err
		}
		if q.m.ConsultOf != c.m.ID {
			return Plan{}, callbridge.Errorf(callbridge.EConflict, "call %s is not a consultation of call %s", q.m.ID, c.m.ID)
		}
	} else if q = e.consultOf(c, a); q == nil {
		return Plan{}, callbridge.Errorf(callbridge.EConflict, "no consultation of call %s is in progress", c.m.ID)
	}
	i, err := e.owned(cmd, a, q, true)
	if err != nil {
		return Plan{}, err
	}
	if s != callbridge.ConnConnected && s != callbridge.ConnHeld {
		return Plan{}, callbridge.Errorf(callbridge.EConflict, "call %s is not connected or held at device %s (it is %s)", c.m.ID, a.user.Device, s)
	}
	if qs := q.m.Connections[i].State; !qs.Active() {
		return Plan{}, callbridge.Errorf(callbridge.EConflict, "consultation %s is not active at device %s (it is %s)", q.m.ID, a.user.Device, qs)
	}
	other := false
	for _, cn := range q.m.Connections {
		other = other || (cn.Device != a.user.Device && cn.State.Active())
	}
	if !other {
		return Plan{}, callbridge.Errorf(callbridge.EConflict, "consultation %s has no other party yet", q.m.ID)
	}
	return Plan{Commands: []callbridge.SwitchCommand{{
		Type: st, Tenant: t.id, PBXCallID: c.m.PBXCallID, ConsultPBXCallID: q.m.PBXCallID, Device: a.user.Device,
	}}}, nil
}

func (e *Engine) planUpdateCallData(t *tenantInfo, cmd callbridge.Command) (Plan, error) {
	if len(cmd.AttachedData) == 0 && cmd.Notes == "" {
		return Plan{}, callbridge.Errorf(callbridge.EInvalid, "attached_data is empty")
	}
	data, err := deskData(cmd)
	if err != nil {
		return Plan{}, err
	}
	a, err := e.actor(t, cmd, false)
	if err != nil {
		return Plan{}, err
	}
	c, err := e.callOf(t, "call_id", cmd.CallID)
	if err != nil {
		return Plan{}, err
	}
	if _, err := e.owned(cmd, a, c, false); err != nil {
		return Plan{}, err
	}
	if err := e.lim.checkCallData(c.m.ID, c.m.AttachedData, data); err != nil {
		return Plan{}, err
	}
	return Plan{data: data}, nil
}
