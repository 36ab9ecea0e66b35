package engine

import (
	"slices"
	"time"

	"github.com/callbridge/callbridge"
)

// call is one conversation in the model.
type call struct {
	m callbridge.Call
	// audience: every agent who has or had a connection, in order of arrival.
	audience []callbridge.AgentID
	// answered: devices that were connected at some time (wrap-up applies to them).
	answered map[callbridge.DeviceID]bool
	// gone: devices that left (failed, cleared) and did not come back; repeated leave events
	// for them are duplicates.
	gone map[callbridge.DeviceID]bool
	// customer: the call was queued or had an outside party (wrap-up applies).
	customer  bool
	inQueue   bool
	abandoned bool
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

// idx returns the index of device d's connection, or -1.
func (c *call) idx(d callbridge.DeviceID) int {
	return slices.IndexFunc(c.m.Connections, func(cn callbridge.Connection) bool { return cn.Device == d })
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

func (c *call) addAudience(a callbridge.AgentID) {
	if a != "" && !slices.Contains(c.audience, a) {
		c.audience = append(c.audience, a)
	}
}

// emit appends a call event about c (nothing for a call of no known tenant).
func (e *Engine) emit(c *call, typ callbridge.EventType, ce callbridge.CallEvent) {
	if c.m.Tenant == "" {
		return
	}
	ce.Call = c.view()
	e.out.Events = append(e.out.Events, callbridge.Event{
		Type:     typ,
		Time:     e.now,
		Tenant:   c.m.Tenant,
		Data:     &ce,
		CallID:   c.m.ID,
		Audience: slices.Clone(c.audience),
	})
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
			c.addAudience(a.key.Agent)
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
			c.addAudience(cn.Agent)
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
// applies. It returns the removed connection and whether there was one.
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
	e.touchDevice(d)
	e.maybeWrapUp(c, d)
	return cn, true
}
