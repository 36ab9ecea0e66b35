package engine

import (
	"encoding/json"
	"maps"
	"slices"
	"time"

	"github.com/callbridge/callbridge"
)

// Recover folds one domain event read back from the event log into the state: after Restore
// of a saved state, the node passes every event the log holds after the save, in log order,
// and the engine then knows what it knew when it wrote them. It emits nothing and commands
// nothing. Afterwards the node applies the switch's resync (a SwitchSnapshot), as after any
// reconnect: calls gone from the switch clear with cause resync, agents follow the switch.
//
// Call events carry the whole call (callbridge.CallEvent embeds Call): the call is created or
// replaced by it with its call_id, pbx_call_id, connections, attached data, queue,
// consultation link and times; call.failed then removes the failed connection, call.cleared
// removes the call (kept for set_disposition when an agent answered it, as the engine does),
// call.disposition_set changes nothing. Agent events carry the presented agent: state,
// reason, since, next state, wrap-up end, queues.
//
// What the engine keeps beside the events is rebuilt by rule, exactly where the events show
// it: answered devices (connected or held at some time), devices that left, a caller who gave
// up in the queue (call.connection_cleared of the queue's device, cause call_abandoned), what
// an agent who answered saw of the call when they left it (the call of the first event
// without their connection), when each connection last changed, customer calls (a queue or an
// outside party), the keys a consultation set itself (those that differ from the consulted
// call's),
// claimed reservations (call.originated of a reserved call_id), held transfer data (merged by
// call.delivered or call.transferred), log-out after the call (next_state logged_out),
// wrap-up (working_after_call and its end; callbridge paused for it when the next state is
// ready and the driver can pause), device unavailable (not_ready device_unavailable that no
// pause explains).
//
// Inputs that produced no event after the save cannot be recovered, because the log does not
// hold them: a call that the switch started and that had no event yet (an inbound call before
// it queues or rings: the resync creates it, with a new call_id that no one has seen), calls
// of no configured tenant, the device a diversion would come from (a device that stopped
// ringing for a call nobody has: the resync that follows forgets it anyway), membership changes
// that did not change the presented state (per-queue pauses; the resync's member states
// replace them), device states that did not show, desktops attaching or leaving (desktops
// reconnect after a restart; see DetachAllDesktops), idempotency keys and reservations of
// commands committed after the save (a retried command runs again), and the causes that
// Availability explains with. The property test in recover_test.go lists how each of these
// is compared.
//
// Errors (*callbridge.Error, code invalid; nothing changes): a type that is neither a call
// event ("call.*": every call event folds alike, so a new type needs nothing here) nor an
// agent event, data that does not decode, a call event without call_id or pbx_call_id, whose
// tenant differs from the event's, whose call_id the engine knows with another pbx_call_id
// or tenant, or with a connection without device or a device twice; an agent event without
// agent or of another tenant.
// An event of an agent who is no longer configured is skipped without error.
func (e *Engine) Recover(ev callbridge.WireEvent) error {
	switch {
	case ev.Type.IsCall():
		var ce callbridge.CallEvent
		if err := json.Unmarshal(ev.Data, &ce); err != nil {
			return callbridge.Errorf(callbridge.EInvalid, "engine: recover %s: data: %v", ev.Type, err)
		}
		if ce.ID == "" || ce.PBXCallID == "" || ce.Tenant != ev.Tenant || ev.Tenant == "" {
			return callbridge.Errorf(callbridge.EInvalid, "engine: recover %s: the call needs call_id, pbx_call_id and the event's tenant", ev.Type)
		}
		if c := e.byID[ce.ID]; c != nil && (c.m.PBXCallID != ce.PBXCallID || c.m.Tenant != ce.Tenant) {
			return callbridge.Errorf(callbridge.EInvalid, "engine: recover %s: call %s is %s/%s, the event says %s/%s", ev.Type, ce.ID, c.m.Tenant, c.m.PBXCallID, ce.Tenant, ce.PBXCallID)
		}
		seen := map[callbridge.DeviceID]bool{}
		for _, cn := range ce.Connections {
			if cn.Device == "" || seen[cn.Device] {
				return callbridge.Errorf(callbridge.EInvalid, "engine: recover %s: call %s has a connection without device, or device %q twice", ev.Type, ce.ID, cn.Device)
			}
			seen[cn.Device] = true
		}
		e.advance(ev.Time)
		e.recoverCall(ev.Type, &ce)
	case ev.Type == callbridge.EventAgentStateChanged || ev.Type == callbridge.EventAgentLoggedOn || ev.Type == callbridge.EventAgentLoggedOff:
		var v callbridge.Agent
		if err := json.Unmarshal(ev.Data, &v); err != nil {
			return callbridge.Errorf(callbridge.EInvalid, "engine: recover %s: data: %v", ev.Type, err)
		}
		if v.ID == "" || v.Tenant != ev.Tenant || ev.Tenant == "" {
			return callbridge.Errorf(callbridge.EInvalid, "engine: recover %s: the agent needs an id and the event's tenant", ev.Type)
		}
		e.advance(ev.Time)
		if a := e.agents[callbridge.AgentKey{Tenant: v.Tenant, Agent: v.ID}]; a != nil {
			e.recoverAgent(a, &v)
		}
	default:
		return callbridge.Errorf(callbridge.EInvalid, "engine: recover: unknown event type %q", ev.Type)
	}
	return nil
}

// recoverCall folds a call event (see Recover).
func (e *Engine) recoverCall(typ callbridge.EventType, ce *callbridge.CallEvent) {
	m := ce.Call.Clone()
	if m.Connections == nil {
		m.Connections = []callbridge.Connection{}
	}
	m.StartedAt, m.QueuedAt, m.AnsweredAt, m.EndedAt = m.StartedAt.UTC(), m.QueuedAt.UTC(), m.AnsweredAt.UTC(), m.EndedAt.UTC()
	if typ == callbridge.EventCallDispositionSet {
		return // the call's model does not change; it may have ended already
	}
	if typ == callbridge.EventCallTransferred && ce.TransferringDevice != "" {
		// The engine took the transferring device out of the consultation first.
		if q := e.byID[ce.ConsultCallID]; q != nil && q.m.ID != m.ID {
			e.dropConn(q, ce.TransferringDevice, true)
		}
	}
	c := e.byID[m.ID]
	first := c == nil
	if c == nil {
		if typ == callbridge.EventCallCleared {
			return // a call that had no other event: no agent answered it
		}
		if old := e.calls[m.PBXCallID]; old != nil {
			e.forgetCall(old) // the log has a newer call on this switch id
		}
		c = &call{
			m:        callbridge.Call{ID: m.ID, PBXCallID: m.PBXCallID, AttachedData: map[string]string{}, Connections: []callbridge.Connection{}},
			answered: map[callbridge.DeviceID]bool{},
			gone:     map[callbridge.DeviceID]bool{},
			since:    map[callbridge.DeviceID]time.Time{},
			own:      map[string]bool{},
		}
		if m.ConsultOf != "" {
			// Keys the consultation set itself are those that differ from the consulted
			// call's (all of them when the consulted call is unknown).
			orig := map[string]string{}
			if q := e.byID[m.ConsultOf]; q != nil {
				orig = q.m.AttachedData
			}
			for k, v := range m.AttachedData {
				if ov, ok := orig[k]; !ok || ov != v {
					c.own[k] = true
				}
			}
			for k := range orig {
				if _, ok := m.AttachedData[k]; !ok {
					c.own[k] = true
				}
			}
			c.m.AttachedData = maps.Clone(m.AttachedData)
		}
		if r := e.resv[m.ID]; r != nil {
			delete(e.resv, m.ID)
			e.claimed[m.ID] = e.now
		} else if typ == callbridge.EventCallOriginated {
			c.unclaimed = true
		}
		e.calls[m.PBXCallID], e.byID[m.ID] = c, c
	}
	if c.m.ConsultOf != "" {
		// Stored values are never empty, so a missing key reads as "".
		for k := range unionKeys(c.m.AttachedData, m.AttachedData) {
			if c.m.AttachedData[k] != m.AttachedData[k] {
				c.own[k] = true
			}
		}
	}
	old := map[callbridge.DeviceID]callbridge.Connection{}
	for _, cn := range c.m.Connections {
		old[cn.Device] = cn
	}
	_, hadDevice := old[ce.Device]
	for _, cn := range m.Connections {
		o, had := old[cn.Device]
		delete(old, cn.Device)
		switch {
		case !had && cn.State == callbridge.ConnQueued:
			c.since[cn.Device] = e.now // the queue's device: not indexed (see enqueue)
		case !had:
			delete(c.gone, cn.Device)
			c.since[cn.Device] = e.now
			set := e.devCalls[cn.Device]
			if set == nil {
				set = map[string]struct{}{}
				e.devCalls[cn.Device] = set
			}
			set[m.PBXCallID] = struct{}{}
			if cn.External {
				c.customer = true
			}
		case o.State != cn.State:
			c.since[cn.Device] = e.now
		}
		if cn.State == callbridge.ConnConnected || cn.State == callbridge.ConnHeld {
			c.answered[cn.Device] = true
		}
	}
	for _, d := range sortedKeys(old, compareDevice) {
		if a := old[d].Agent; a != "" && c.answered[d] {
			// The event that ended their part: what set_disposition shows them.
			if c.seen == nil {
				c.seen = map[callbridge.AgentID]callbridge.Call{}
			}
			c.seen[a] = m.Clone()
		}
		e.dropConn(c, d, ce.Cause != callbridge.CauseResync)
	}
	// A party that the event names as gone.
	left := ce.Device
	if typ == callbridge.EventCallTransferred {
		left = ce.TransferringDevice
	}
	queueLeft := typ == callbridge.EventCallConnectionCleared && left != "" && left == callbridge.DeviceID(m.Queue) && ce.Agent == ""
	if queueLeft && ce.Cause == callbridge.CauseAbandoned {
		c.abandoned = true // the caller gave up in the queue (the engine's dequeued)
	}
	if left != "" && !queueLeft && c.idx(left) < 0 && (typ == callbridge.EventCallConnectionCleared || typ == callbridge.EventCallTransferred) {
		c.gone[left] = true
		if _, agentDevice := e.dir.devices[left]; first && !agentDevice && m.Direction == callbridge.DirInbound {
			// The call's first event says a party left that no event showed: the caller,
			// who joined with the call's start (an inbound start emits nothing).
			c.customer, c.answered[left] = true, true
		}
	}
	c.m = m
	if m.Queue != "" {
		c.customer = true
	}
	switch typ {
	case callbridge.EventCallDelivered, callbridge.EventCallTransferred:
		c.pending = nil // merged before the new party's screen pop, or by the transfer
	case callbridge.EventCallFailed:
		if i := c.idx(ce.Device); i >= 0 && c.m.Connections[i].State == callbridge.ConnFailed {
			e.dropConn(c, ce.Device, true)
		} else if i < 0 && ce.Device != "" {
			c.gone[ce.Device] = true
		}
	case callbridge.EventCallDiverted:
		// A queue member that failed before it rang: the call still waits at DivertedTo.
		if ce.Device != "" && !hadDevice && ce.DivertedTo != "" && c.queue() == ce.DivertedTo {
			c.gone[ce.Device] = true
		}
	case callbridge.EventCallCleared:
		for len(c.m.Connections) > 0 {
			e.dropConn(c, c.m.Connections[0].Device, ce.Cause != callbridge.CauseResync)
		}
		e.remember(c)
		delete(e.calls, c.m.PBXCallID)
		delete(e.byID, c.m.ID)
	}
}

// dropConn removes device d's connection from c, as removeConn does; agent events carry
// the wrap-up itself, but with wrap its cause (the call and the time, which Availability
// shows) is noted as maybeWrapUp notes it.
func (e *Engine) dropConn(c *call, d callbridge.DeviceID, wrap bool) {
	i := slices.IndexFunc(c.m.Connections, func(cn callbridge.Connection) bool { return cn.Device == d })
	if i < 0 {
		return
	}
	if c.m.Connections[i].State == callbridge.ConnQueued {
		// The queue's device: not indexed, no agent.
		c.m.Connections = slices.Delete(c.m.Connections, i, i+1)
		delete(c.since, d)
		return
	}
	c.m.Connections = slices.Delete(c.m.Connections, i, i+1)
	c.gone[d] = true
	delete(c.since, d)
	if set := e.devCalls[d]; set != nil {
		delete(set, c.m.PBXCallID)
		if len(set) == 0 {
			delete(e.devCalls, d)
		}
	}
	if !wrap || !c.answered[d] || !c.customer {
		return
	}
	if a := e.agentFor(c.m.Tenant, d); a != nil && len(a.members) > 0 && !e.deviceBusy(d) {
		secs := e.dir.tenants[c.m.Tenant].wrapUpSeconds(c.m.Queue)
		if until := e.now.Add(time.Duration(secs) * time.Second); secs > 0 && until.After(a.wrapUntil) {
			a.wrapCall, a.wrapAt = c.m.ID, e.now
		}
	}
}

// forgetCall removes c from the model without a trace.
func (e *Engine) forgetCall(c *call) {
	for len(c.m.Connections) > 0 {
		e.dropConn(c, c.m.Connections[0].Device, false)
	}
	delete(e.calls, c.m.PBXCallID)
	delete(e.byID, c.m.ID)
}

// recoverAgent folds an agent event (see Recover).
func (e *Engine) recoverAgent(a *agent, v *callbridge.Agent) {
	a.state, a.reason, a.since = v.State, v.Reason, v.Since.UTC()
	a.nextState, a.nextReason = v.NextState, v.NextReason
	a.on = len(v.Queues) > 0
	a.logoutAfter = v.NextState == callbridge.AgentLoggedOut
	switch v.State {
	case callbridge.AgentWorkingAfterCall:
		a.wrapUntil = v.WrapUpUntil.UTC()
		if v.NextState == callbridge.AgentReady && e.caps[callbridge.SwitchSetMemberState] {
			a.wrapPaused = true
		}
	case callbridge.AgentBusy:
		// A wrap-up may go on under a call; the events do not show it.
	default:
		a.wrapUntil, a.wrapPaused = time.Time{}, false
	}
	// Memberships: the event's queues; a queue's pause is kept from the state when it agrees
	// with the state the memberships give, else set to it. The resync replaces them all.
	want := map[callbridge.QueueName]bool{}
	for _, q := range v.Queues {
		want[q] = true
		if _, ok := a.members[q]; !ok {
			a.members[q] = member{}
		}
	}
	for q := range a.members {
		if !want[q] {
			delete(a.members, q)
		}
	}
	base, reason, known := callbridge.AgentState(""), "", true
	switch {
	case len(a.members) == 0:
		known = false
	case v.State == callbridge.AgentBusy || v.State == callbridge.AgentWorkingAfterCall:
		base, reason = v.NextState, v.NextReason
		known = v.NextState == callbridge.AgentReady || v.NextState == callbridge.AgentNotReady
	case v.State == callbridge.AgentNotReady && v.Reason == callbridge.ReasonDeviceUnavailable:
		if st, rs := a.baseState(); st != callbridge.AgentNotReady || rs != callbridge.ReasonDeviceUnavailable {
			// Not a pause: the switch reports the device unavailable.
			if a.devStatus != callbridge.DeviceUnavailable {
				a.devStatus, a.devAt = callbridge.DeviceUnavailable, a.since
			}
		}
		known = false
	default:
		base, reason = v.State, v.Reason
	}
	if v.State == callbridge.AgentReady || v.State == callbridge.AgentNotReady && v.Reason != callbridge.ReasonDeviceUnavailable {
		if a.devStatus == callbridge.DeviceUnavailable {
			a.devStatus, a.devAt = callbridge.DeviceUnknown, a.since
		}
	}
	if known {
		if st, rs := a.baseState(); st != base || rs != reason {
			m := member{}
			if base == callbridge.AgentNotReady {
				m = member{paused: true, reason: reason}
			}
			for q := range a.members {
				a.members[q] = m
			}
		}
	}
}

func compareDevice(a, b callbridge.DeviceID) int { return compareString(string(a), string(b)) }

// unionKeys returns the keys of a and b.
func unionKeys(a, b map[string]string) map[string]bool {
	out := make(map[string]bool, len(a)+len(b))
	for k := range a {
		out[k] = true
	}
	for k := range b {
		out[k] = true
	}
	return out
}

// DetachAllDesktops takes every desktop the engine knows as gone at now, as DesktopDetached
// of each would: agents who had one start their grace time (Config.DesktopGrace). A node
// calls it after Restore when the desktops of the saved state were connected to the process
// that stopped: their sockets are closed, and those that come back attach again (a heartbeat
// of an unknown desktop attaches it). It returns what the next input would (agent events of
// agents whose state check was due, switch commands for a ringing call at an empty seat).
func (e *Engine) DetachAllDesktops(now time.Time) Output {
	e.begin(now)
	for _, key := range sortedKeys(e.agents, compareAgentKey) {
		if a := e.agents[key]; len(a.desks) > 0 {
			clear(a.desks)
			a.deskGoneAt = e.now
			e.touched[key] = true
		}
	}
	return e.end()
}
