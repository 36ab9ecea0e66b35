package engine

import (
	"maps"
	"slices"
	"time"

	"github.com/callbridge/callbridge"
)

// agent is one agent's state.
type agent struct {
	key  callbridge.AgentKey
	user callbridge.UserConfig
	// members is the switch's truth: the queues the device is a member of.
	members map[callbridge.QueueName]member
	// wrapUntil is the end of wrap-up (zero: not in wrap-up); wrapPaused says callbridge
	// paused memberships for it.
	wrapUntil  time.Time
	wrapPaused bool
	// The presented state, as last emitted.
	state  callbridge.AgentState
	reason string
	since  time.Time
	on     bool // logged on (member of some queue), as last emitted
	// nextState and nextReason, as last emitted (see callbridge.Agent.NextState).
	nextState  callbridge.AgentState
	nextReason string

	// cause is what last changed the memberships (availability explains with it).
	cause callbridge.AvailabilityCause
	// wrapCall and wrapAt: the call whose end started the current wrap-up, and when.
	wrapCall callbridge.CallID
	wrapAt   time.Time
	// logoutAfter: the agent asked to log out while on a call; it happens once the call and
	// its wrap-up are over.
	logoutAfter bool
	logoutCause callbridge.AvailabilityCause
	// devStatus is the last device status the switch reported (devAt: since when).
	devStatus callbridge.DeviceStatus
	devAt     time.Time

	// Desktop presence (see presence.go).
	desks      map[string]time.Time // connected desktops → last heard from
	hadDesk    bool                 // a desktop was connected since the engine started
	deskGoneAt time.Time            // when the last desktop went away (zero while one is there)
	deskLost   bool                 // desktop_lost was handled for the current absence
}

// member is one queue membership.
type member struct {
	paused bool
	reason string // pause reason ("" when not paused)
}

// view is the agent as events and queries show it.
func (a *agent) view() callbridge.Agent {
	v := callbridge.Agent{
		ID:     a.key.Agent,
		Tenant: a.key.Tenant,
		Name:   a.user.Name,
		Device: a.user.Device,
		State:  a.state,
		Reason: a.reason,
		Queues: a.queues(),
		Since:  a.since,
	}
	if a.state == callbridge.AgentWorkingAfterCall {
		v.WrapUpUntil = a.wrapUntil
	}
	v.NextState, v.NextReason = a.nextState, a.nextReason
	return v
}

// queues returns the queues the agent is a member of, sorted.
func (a *agent) queues() []callbridge.QueueName {
	qs := slices.Collect(maps.Keys(a.members))
	slices.Sort(qs)
	return qs
}

// baseState is the state the memberships give (ignoring calls and wrap-up): ready unless
// every membership is paused for a reason other than wrap_up.
func (a *agent) baseState() (callbridge.AgentState, string) {
	if len(a.members) == 0 {
		return callbridge.AgentLoggedOut, ""
	}
	reason, found := "", false
	for _, q := range a.queues() {
		m := a.members[q]
		if !m.paused || m.reason == callbridge.ReasonWrapUp {
			return callbridge.AgentReady, ""
		}
		if !found {
			reason, found = m.reason, true
		}
	}
	return callbridge.AgentNotReady, reason
}

// touchDevice marks the agent on device d (if any) for a state check at the end of the step.
func (e *Engine) touchDevice(d callbridge.DeviceID) {
	if key, ok := e.dir.devices[d]; ok {
		e.touched[key] = true
	}
}

// agentFor returns the agent of tenant whose device is d, or nil.
func (e *Engine) agentFor(tenant callbridge.TenantID, d callbridge.DeviceID) *agent {
	key, ok := e.dir.devices[d]
	if !ok || key.Tenant != tenant || tenant == "" {
		return nil
	}
	return e.agents[key]
}

// deviceBusy reports whether device d has an active connection on some call.
func (e *Engine) deviceBusy(d callbridge.DeviceID) bool {
	for pbx := range e.devCalls[d] {
		if c := e.calls[pbx]; c != nil {
			if i := c.idx(d); i >= 0 && c.m.Connections[i].State.Active() {
				return true
			}
		}
	}
	return false
}

// present computes the agent's presented state and reason, and the state that follows a
// call or wrap-up (empty in other states).
func (e *Engine) present(a *agent) (st callbridge.AgentState, reason string, next callbridge.AgentState, nextReason string) {
	if len(a.members) == 0 {
		return callbridge.AgentLoggedOut, "", "", ""
	}
	switch {
	case e.deviceBusy(a.user.Device):
		st = callbridge.AgentBusy
	case !a.wrapUntil.IsZero():
		st = callbridge.AgentWorkingAfterCall
	case a.devStatus == callbridge.DeviceUnavailable:
		return callbridge.AgentNotReady, callbridge.ReasonDeviceUnavailable, "", ""
	default:
		st, reason = a.baseState()
		return st, reason, "", ""
	}
	if a.logoutAfter {
		return st, "", callbridge.AgentLoggedOut, ""
	}
	next, nextReason = a.baseState()
	return st, "", next, nextReason
}

// flushAgents emits agent.logged_on, agent.state_changed and agent.logged_off for the agents
// touched in this step whose presentation changed, in agent order.
func (e *Engine) flushAgents() {
	for _, key := range sortedKeys(e.touched, compareAgentKey) {
		delete(e.touched, key)
		a := e.agents[key]
		if a == nil {
			continue
		}
		if len(a.members) == 0 {
			a.wrapUntil, a.wrapPaused, a.logoutAfter = time.Time{}, false, false
		}
		st, rs, ns, nr := e.present(a)
		prev, changed := a.state, st != a.state || rs != a.reason
		if changed {
			a.state, a.reason, a.since = st, rs, e.now
		}
		if ns != a.nextState || nr != a.nextReason {
			// A new next state alone is shown with an agent.state_changed whose state and
			// previous_state are equal and whose since is unchanged.
			a.nextState, a.nextReason = ns, nr
			changed = true
		}
		// Every event shows the agent after the change.
		on := len(a.members) > 0
		if on && !a.on {
			a.on = true
			e.agentEvent(a, callbridge.EventAgentLoggedOn, "")
		}
		if changed {
			e.agentEvent(a, callbridge.EventAgentStateChanged, prev)
		}
		if !on && a.on {
			a.on = false
			e.agentEvent(a, callbridge.EventAgentLoggedOff, "")
		}
	}
}

func (e *Engine) agentEvent(a *agent, typ callbridge.EventType, prev callbridge.AgentState) {
	v := a.view()
	v.PreviousState = prev
	e.out.Events = append(e.out.Events, callbridge.Event{
		Type:     typ,
		Time:     e.now,
		Tenant:   a.key.Tenant,
		Data:     &v,
		Agent:    a.key.Agent,
		Audience: []callbridge.AgentID{a.key.Agent},
	})
}

// onMemberState follows a member_state event: Device's membership of Queue (every queue the
// device is in when Queue is empty). Devices of no agent, or of another tenant than ev.Tenant
// when set, are ignored.
func (e *Engine) onMemberState(ev callbridge.SwitchEvent) {
	key, ok := e.dir.devices[ev.Device]
	if !ok || (ev.Tenant != "" && ev.Tenant != key.Tenant) {
		return
	}
	a := e.agents[key]
	if a == nil {
		return
	}
	m := member{paused: ev.Paused}
	if ev.Paused {
		m.reason = ev.Reason
	}
	before := maps.Clone(a.members)
	unpaused := false // a paused membership became unpaused
	set := func(q callbridge.QueueName) {
		if !e.roomForMember(a, q) {
			return // MaxMemberships (limits.go)
		}
		if old, ok := a.members[q]; ok && old.paused && !m.paused {
			unpaused = true
		}
		a.members[q] = m
	}
	switch {
	case ev.Queue == "" && !ev.LoggedOn:
		clear(a.members)
	case ev.Queue == "":
		for q := range a.members {
			set(q)
		}
	case !ev.LoggedOn:
		delete(a.members, ev.Queue)
	default:
		set(ev.Queue)
	}
	if unpaused && !a.wrapUntil.IsZero() {
		// The agent made themself available on the phone: wrap-up is over.
		a.wrapUntil, a.wrapPaused = time.Time{}, false
	}
	if !maps.Equal(before, a.members) {
		// Not an echo of callbridge's own command: the phone or the switch did it.
		a.cause = callbridge.AvailabilityCause{Source: "switch", Event: "member_state", Time: e.now}
		if len(a.members) == 0 {
			a.logoutAfter = false
		}
	}
	e.touched[key] = true
	e.healWrapPauses(a)
}

// healWrapPauses lifts wrap_up pauses of an agent who is not in wrap-up: only callbridge
// pauses with that reason, so such a pause is stale (an echo that arrived after wrap-up ended,
// or one left over from before a restart).
func (e *Engine) healWrapPauses(a *agent) {
	if !a.wrapUntil.IsZero() || !e.caps[callbridge.SwitchSetMemberState] {
		return
	}
	var qs []callbridge.QueueName
	for _, q := range a.queues() {
		if m := a.members[q]; m.paused && m.reason == callbridge.ReasonWrapUp {
			qs = append(qs, q)
		}
	}
	if len(qs) == 0 {
		return
	}
	for _, q := range qs {
		a.members[q] = member{}
	}
	e.command(e.pauseCommand(a, qs, false, ""))
	e.touched[a.key] = true
}

// pauseCommand is a SwitchSetMemberState pause of a's device in qs (nil: every queue).
func (e *Engine) pauseCommand(a *agent, qs []callbridge.QueueName, paused bool, reason string) callbridge.SwitchCommand {
	return callbridge.SwitchCommand{
		Type:       callbridge.SwitchSetMemberState,
		Tenant:     a.key.Tenant,
		Device:     a.user.Device,
		Interface:  a.user.Interface,
		Action:     callbridge.MemberPause,
		Queues:     qs,
		Paused:     paused,
		Reason:     reason,
		MemberName: a.user.Name,
	}
}

// maybeWrapUp starts wrap-up for the agent on device d, which just left call c (see the
// package documentation for the rule).
func (e *Engine) maybeWrapUp(c *call, d callbridge.DeviceID) {
	if !c.answered[d] || !c.customer || e.resync {
		return
	}
	a := e.agentFor(c.m.Tenant, d)
	if a == nil || len(a.members) == 0 || e.deviceBusy(d) {
		return
	}
	secs := e.dir.tenants[c.m.Tenant].wrapUpSeconds(c.m.Queue)
	if secs <= 0 {
		return
	}
	if until := e.now.Add(time.Duration(secs) * time.Second); until.After(a.wrapUntil) {
		a.wrapUntil = until
		a.wrapCall, a.wrapAt = c.m.ID, e.now
	}
	e.touched[a.key] = true
	if !e.caps[callbridge.SwitchSetMemberState] {
		return
	}
	// Pause the routable memberships so that the switch offers no call meanwhile; leave
	// pauses of the agent's own alone (they are the state to return to).
	var open []callbridge.QueueName
	all := true
	for _, q := range a.queues() {
		switch m := a.members[q]; {
		case !m.paused:
			open = append(open, q)
		case m.reason != callbridge.ReasonWrapUp:
			all = false
		}
	}
	if len(open) == 0 {
		return
	}
	if all {
		open = nil
	}
	a.wrapPaused = true
	e.command(e.pauseCommand(a, open, true, callbridge.ReasonWrapUp))
}

// endWrapUp ends a's wrap-up: memberships not paused by the agent themself are unpaused.
func (e *Engine) endWrapUp(a *agent) {
	a.wrapUntil = time.Time{}
	e.touched[a.key] = true
	wasPaused := a.wrapPaused
	a.wrapPaused = false
	var qs []callbridge.QueueName
	for _, q := range a.queues() {
		m := a.members[q]
		if m.paused && m.reason == callbridge.ReasonWrapUp {
			wasPaused = true
		}
		if !m.paused || m.reason == callbridge.ReasonWrapUp {
			qs = append(qs, q)
		}
	}
	if !wasPaused || len(qs) == 0 || !e.caps[callbridge.SwitchSetMemberState] {
		return
	}
	for _, q := range qs {
		a.members[q] = member{}
	}
	if len(qs) == len(a.members) {
		qs = nil
	}
	e.command(e.pauseCommand(a, qs, false, ""))
}

// applyMemberCommand records the effect of a SwitchSetMemberState that the switch accepted,
// so the state changes at once; the switch's echo then changes nothing.
func (e *Engine) applyMemberCommand(a *agent, sc callbridge.SwitchCommand) {
	qs := sc.Queues
	if qs == nil {
		qs = a.queues()
	}
	m := member{paused: sc.Paused}
	if sc.Paused {
		m.reason = sc.Reason
	}
	switch sc.Action {
	case callbridge.MemberAdd:
		for _, q := range sc.Queues {
			if e.roomForMember(a, q) {
				a.members[q] = m
			}
		}
	case callbridge.MemberPause:
		for _, q := range qs {
			if _, ok := a.members[q]; ok {
				a.members[q] = m
			}
		}
	case callbridge.MemberRemove:
		for _, q := range qs {
			delete(a.members, q)
		}
	}
	e.touched[a.key] = true
}

// maybeLogoutAfter logs out an agent who asked for it during a call, once the call and its
// wrap-up are over: a MemberRemove of every queue, applied to the model at once.
func (e *Engine) maybeLogoutAfter(a *agent) {
	if !a.logoutAfter || len(a.members) == 0 || !a.wrapUntil.IsZero() || e.deviceBusy(a.user.Device) {
		return
	}
	a.logoutAfter = false
	if !e.caps[callbridge.SwitchSetMemberState] {
		return
	}
	sc := e.pauseCommand(a, nil, false, "")
	sc.Action, sc.Queues = callbridge.MemberRemove, a.queues()
	e.command(sc)
	e.applyMemberCommand(a, sc)
	a.cause = a.logoutCause
	a.cause.Time = e.now
}
