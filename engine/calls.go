package engine

import (
	"slices"
	"time"

	"github.com/callbridge/callbridge"
)

// call is one conversation in the model.
type call struct {
	m callbridge.Call
	// seen: for each agent who answered the call and whose part of it ended, the call as the
	// event that ended their part showed it. set_disposition shows them that, never what
	// others did on the call after they left.
	seen map[callbridge.AgentID]callbridge.Call
	// answered: devices that were connected at some time (wrap-up applies to them).
	answered map[callbridge.DeviceID]bool
	// gone: devices that left (failed, cleared) and did not come back; repeated leave events
	// for them are duplicates.
	gone map[callbridge.DeviceID]bool
	// customer: the call was queued or had an outside party (wrap-up applies).
	customer  bool
	abandoned bool
	// unrung: a device stopped ringing (or its queue let the call go) while nobody had the
	// call; the next device that rings gets it by diversion (see divertTo).
	unrung *departure
	// own: attached-data keys set on a consultation after its copy (merged back on transfer).
	own map[string]bool
	// noTenant: the switch named a tenant that is not configured; only an explicit tenant
	// in a later event is adopted.
	noTenant bool
	// unclaimed: an agent's device started the call and no make_call/consultation_call
	// reservation claimed it (Apply may still come and claim it).
	unclaimed bool
	// pending: attached data of a staged single_step_transfer (see Stage).
	pending map[string]string
	// since: when each device's connection last changed state (availability explains with it).
	since map[callbridge.DeviceID]time.Time
}

// departure is a device that a call left without being answered there.
type departure struct {
	device callbridge.DeviceID
	agent  callbridge.AgentID
	cause  callbridge.Cause
}

// leaver is an agent whose connection to a call ended during the current step; noted once
// the first event after it recorded what they saw of the call.
type leaver struct {
	agent  callbridge.AgentID
	device callbridge.DeviceID
	noted  bool
}

// idx returns the index of device d's connection, or -1. The queue connection is not a
// device's: see queueIdx.
func (c *call) idx(d callbridge.DeviceID) int {
	return slices.IndexFunc(c.m.Connections, func(cn callbridge.Connection) bool {
		return cn.Device == d && cn.State != callbridge.ConnQueued
	})
}

// queueIdx returns the index of c's queue connection, or -1: the connection of the queue (ACD
// group) device the call waits in, in state queued, as CSTA models a queued call. The device
// is the queue's name; it has no agent.
func (c *call) queueIdx() int {
	return slices.IndexFunc(c.m.Connections, func(cn callbridge.Connection) bool { return cn.State == callbridge.ConnQueued })
}

// queue returns the device of c's queue connection, or "".
func (c *call) queue() callbridge.DeviceID {
	if i := c.queueIdx(); i >= 0 {
		return c.m.Connections[i].Device
	}
	return ""
}

// attended reports whether a device of the switch (not an outside party) is connected to c
// or holds it.
func (c *call) attended() bool {
	for _, cn := range c.m.Connections {
		if !cn.External && (cn.State == callbridge.ConnConnected || cn.State == callbridge.ConnHeld) {
			return true
		}
	}
	return false
}

// state returns device d's connection state (ConnNull when it has none).
func (c *call) state(d callbridge.DeviceID) callbridge.ConnectionState {
	if i := c.idx(d); i >= 0 {
		return c.m.Connections[i].State
	}
	return callbridge.ConnNull
}

// view returns a deep copy of the call with non-nil slices and map.
func (c *call) view() callbridge.Call {
	v := c.m.Clone()
	if v.Connections == nil {
		v.Connections = []callbridge.Connection{}
	}
	return v
}

// emit appends a call event about c (nothing for a call of no known tenant) for the agents
// who have a connection to c after the change and those whose connection ended during this
// step: an agent receives a call's events while, and only while, a connection of theirs is on
// it, plus the events that end their part (DESIGN.md §1: agents see only their own calls).
// The view in the first event after an agent who answered the call left it is what
// set_disposition shows them later (the event that ended their part).
func (e *Engine) emit(c *call, typ callbridge.EventType, ce callbridge.CallEvent) {
	if c.m.Tenant == "" {
		return
	}
	ce.Call = c.view()
	for i, l := range e.leaving[c] {
		if !l.noted && c.answered[l.device] {
			if c.seen == nil {
				c.seen = map[callbridge.AgentID]callbridge.Call{}
			}
			c.seen[l.agent] = ce.Call.Clone()
			e.leaving[c][i].noted = true
		}
	}
	e.out.Events = append(e.out.Events, callbridge.Event{
		Type:     typ,
		Time:     e.now,
		Tenant:   c.m.Tenant,
		Data:     &ce,
		CallID:   c.m.ID,
		Audience: e.audience(c),
	})
}

// audience lists the agents of c's connections (in order) and then the agents whose
// connection to c ended during this step.
func (e *Engine) audience(c *call) []callbridge.AgentID {
	out := []callbridge.AgentID{}
	add := func(a callbridge.AgentID) {
		if a != "" && !slices.Contains(out, a) {
			out = append(out, a)
		}
	}
	for _, cn := range c.m.Connections {
		add(cn.Agent)
	}
	for _, l := range e.leaving[c] {
		add(l.agent)
	}
	return out
}

// left records that agent a (on device d) took part in c during this step although they have
// no connection to it afterwards: the events of c in this step still reach them.
func (e *Engine) left(c *call, a callbridge.AgentID, d callbridge.DeviceID) {
	if a == "" {
		return
	}
	if e.leaving == nil {
		e.leaving = map[*call][]leaver{}
	}
	e.leaving[c] = append(e.leaving[c], leaver{agent: a, device: d})
}

// about is the CallEvent naming device d (and its agent) of call c.
func (e *Engine) about(c *call, d callbridge.DeviceID) callbridge.CallEvent {
	ce := callbridge.CallEvent{Device: d}
	if i := c.idx(d); i >= 0 {
		ce.Agent = c.m.Connections[i].Agent
	} else if a := e.agentFor(c.m.Tenant, d); a != nil {
		ce.Agent = a.key.Agent
	}
	return ce
}

// uniqueID returns a new CallID for a call the switch started.
func (e *Engine) uniqueID() callbridge.CallID { return e.reserveID(e.now) }

func itoa(n int) string {
	var b []byte
	for {
		b = append([]byte{byte('0' + n%10)}, b...)
		if n /= 10; n == 0 {
			return string(b)
		}
	}
}

// newCall registers a new call.
func (e *Engine) newCall(pbx string, id callbridge.CallID, tenant callbridge.TenantID, noTenant bool, dir callbridge.Direction) *call {
	c := &call{
		m: callbridge.Call{
			ID:           id,
			Tenant:       tenant,
			PBXCallID:    pbx,
			Direction:    dir,
			AttachedData: map[string]string{},
			Connections:  []callbridge.Connection{},
			StartedAt:    e.now,
		},
		answered: map[callbridge.DeviceID]bool{},
		gone:     map[callbridge.DeviceID]bool{},
		since:    map[callbridge.DeviceID]time.Time{},
		own:      map[string]bool{},
		noTenant: noTenant,
	}
	e.calls[pbx] = c
	e.byID[id] = c
	return c
}

// resolveTenant finds the tenant of a new call (see the package documentation). noTenant is
// true when the switch named a tenant that is not configured.
func (e *Engine) resolveTenant(named callbridge.TenantID, dnis string, devices []callbridge.DeviceID, consult *call, r *reservation) (t callbridge.TenantID, noTenant bool) {
	if named != "" {
		if e.dir.tenants[named] != nil {
			return named, false
		}
		return "", true
	}
	if consult != nil && consult.m.Tenant != "" {
		return consult.m.Tenant, false
	}
	if r != nil && e.dir.tenants[r.tenant] != nil {
		return r.tenant, false
	}
	if dnis != "" {
		if t, ok := e.dir.dids[normDID(dnis)]; ok {
			return t, false
		}
	}
	for _, d := range devices {
		if key, ok := e.dir.devices[d]; ok {
			return key.Tenant, false
		}
	}
	if len(e.dir.order) == 1 {
		return e.dir.order[0], false
	}
	return "", false
}

// adopt gives a call of no known tenant the tenant t; explicit is true when the switch named
// t. The attached data is filtered again and the connections learn their agents.
func (e *Engine) adopt(c *call, t callbridge.TenantID, explicit bool) {
	ti := e.dir.tenants[t]
	if c.m.Tenant != "" || ti == nil || (c.noTenant && !explicit) {
		return
	}
	c.m.Tenant, c.noTenant = t, false
	for k := range c.m.AttachedData {
		if !ti.keep(k) {
			delete(c.m.AttachedData, k)
		}
	}
	for i, cn := range c.m.Connections {
		if cn.External {
			continue
		}
		if a := e.agentFor(t, cn.Device); a != nil {
			c.m.Connections[i].Agent = a.key.Agent
			e.touched[a.key] = true
		}
	}
}

// adoptFrom lets a call of no known tenant adopt one from a later event.
func (e *Engine) adoptFrom(c *call, named callbridge.TenantID, d callbridge.DeviceID) {
	if c.m.Tenant != "" {
		return
	}
	if named != "" {
		e.adopt(c, named, true)
		return
	}
	if key, ok := e.dir.devices[d]; ok {
		e.adopt(c, key.Tenant, false)
	}
}

// mergeSwitchData merges switch variables into c, cut to the limits (limits.go); with del
// an empty value deletes the key, else empty values are skipped. It reports whether the data
// changed.
func (e *Engine) mergeSwitchData(c *call, data map[string]string, del bool) bool {
	t := e.dir.tenants[c.m.Tenant]
	kept := make(map[string]string, len(data))
	for k, v := range data {
		if t.keep(k) {
			kept[k] = v
		}
	}
	return e.mergeCapped(c, kept, "switch variables", func(k, v string) bool { return c.setData(k, v, del) })
}

// setData sets (or with del and an empty v deletes) one key of c's attached data.
func (c *call) setData(k, v string, del bool) bool {
	old, ok := c.m.AttachedData[k]
	switch {
	case v == "" && del && ok:
		delete(c.m.AttachedData, k)
	case v == "" || old == v:
		return false
	default:
		c.m.AttachedData[k] = v
	}
	if c.m.ConsultOf != "" {
		c.own[k] = true
	}
	return true
}

// mergeDeskData merges attached data from a command (validated: tokens, no CR/LF/NUL); an
// empty value deletes the key. Plan refused data over the limits, but the call may have grown
// since: what no longer fits is cut (limits.go).
func (e *Engine) mergeDeskData(c *call, data map[string]string) bool {
	return e.mergeCapped(c, data, "command data", func(k, v string) bool { return c.setData(k, v, true) })
}

func compareString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// setConn gives device d the connection state st on c, creating the connection (with its
// agent, in the call's tenant) when missing. It returns the previous state.
func (e *Engine) setConn(c *call, d callbridge.DeviceID, ext bool, st callbridge.ConnectionState) callbridge.ConnectionState {
	e.touchDevice(d)
	if st == callbridge.ConnConnected {
		c.answered[d] = true
	}
	c.since[d] = e.now
	if i := c.idx(d); i >= 0 {
		prev := c.m.Connections[i].State
		c.m.Connections[i].State = st
		return prev
	}
	cn := callbridge.Connection{Device: d, State: st, External: ext}
	if !ext {
		if a := e.agentFor(c.m.Tenant, d); a != nil {
			cn.Agent = a.key.Agent
		}
	} else {
		c.customer = true
	}
	c.m.Connections = append(c.m.Connections, cn)
	delete(c.gone, d)
	set := e.devCalls[d]
	if set == nil {
		set = map[string]struct{}{}
		e.devCalls[d] = set
	}
	set[c.m.PBXCallID] = struct{}{}
	return callbridge.ConnNull
}

// removeConn removes device d's connection from c and starts the agent's wrap-up when it
// applies. It returns the removed connection and whether there was one. The agent of the
// connection still receives the events of c in this step (see emit).
func (e *Engine) removeConn(c *call, d callbridge.DeviceID) (callbridge.Connection, bool) {
	i := c.idx(d)
	if i < 0 {
		return callbridge.Connection{}, false
	}
	cn := c.m.Connections[i]
	c.m.Connections = slices.Delete(c.m.Connections, i, i+1)
	c.gone[d] = true
	delete(c.since, d)
	if set := e.devCalls[d]; set != nil {
		delete(set, c.m.PBXCallID)
		if len(set) == 0 {
			delete(e.devCalls, d)
		}
	}
	e.left(c, cn.Agent, d)
	e.touchDevice(d)
	e.maybeWrapUp(c, d)
	return cn, true
}

// enqueue gives c a connection at queue q's device in state queued and emits call.queued
// naming that device. A call waiting in another queue is diverted from it first; a call that
// a device had just stopped ringing for is diverted from that device to the queue.
func (e *Engine) enqueue(c *call, q callbridge.QueueName) {
	qd := callbridge.DeviceID(q)
	if old := c.queue(); old != "" {
		e.dropQueue(c)
		e.emit(c, callbridge.EventCallDiverted, callbridge.CallEvent{Device: old, DivertedTo: qd, Cause: callbridge.CauseRedirected})
	} else {
		e.divertTo(c, qd)
	}
	c.m.Queue, c.m.QueuedAt, c.customer = q, e.now, true
	c.since[qd] = e.now
	c.m.Connections = append(c.m.Connections, callbridge.Connection{Device: qd, State: callbridge.ConnQueued})
	e.emit(c, callbridge.EventCallQueued, callbridge.CallEvent{Device: qd})
}

// dropQueue removes c's queue connection and returns its device ("" when there was none).
func (e *Engine) dropQueue(c *call) callbridge.DeviceID {
	i := c.queueIdx()
	if i < 0 {
		return ""
	}
	d := c.m.Connections[i].Device
	c.m.Connections = slices.Delete(c.m.Connections, i, i+1)
	delete(c.since, d)
	return d
}

// dequeue ends c's wait in its queue with call.connection_cleared for the queue device:
// cause call_abandoned when the caller gave up, distributed when a device of the switch
// rings or talks for the call (the queue handed it over), else normal_clearing (the queue let
// the call go on in the dialplan: the next device that rings gets it by diversion).
func (e *Engine) dequeue(c *call, abandoned bool) {
	d := e.dropQueue(c)
	if d == "" {
		return
	}
	cause := callbridge.CauseNormal
	switch {
	case abandoned:
		cause = callbridge.CauseAbandoned
	case c.offered():
		cause = callbridge.CauseDistributed
	default:
		c.unrung = &departure{device: d, cause: callbridge.CauseRedirected}
	}
	e.emit(c, callbridge.EventCallConnectionCleared, callbridge.CallEvent{Device: d, Cause: cause})
}

// offered reports whether a device of the switch rings for c, talks in it or holds it.
func (c *call) offered() bool {
	for _, cn := range c.m.Connections {
		if !cn.External && cn.State != callbridge.ConnQueued && cn.State != callbridge.ConnInitiated && cn.State.Active() {
			return true
		}
	}
	return false
}

// divertTo emits call.diverted when device d is the first to ring for c after another
// device stopped ringing for it, or its queue let it go, while nobody had the call (CSTA
// Diverted: the call left that device for d). The departure is forgotten either way.
func (e *Engine) divertTo(c *call, d callbridge.DeviceID) {
	u := c.unrung
	c.unrung = nil
	if u == nil || u.device == d || e.resync {
		return
	}
	e.emit(c, callbridge.EventCallDiverted, callbridge.CallEvent{Device: u.device, Agent: u.agent, DivertedTo: d, Cause: u.cause})
}
