package engine

import (
	"slices"

	"github.com/callbridge/callbridge"
)

// HandleSwitchEvent applies one normalised switch event and returns the domain events and
// switch commands (wrap-up pauses) it causes. Unknown event types, events without the
// fields their type needs and events for unknown calls change nothing (see the package
// documentation for what each type does).
func (e *Engine) HandleSwitchEvent(ev callbridge.SwitchEvent) Output {
	e.begin(ev.Time)
	if !e.admit(&ev) {
		return e.end() // an id over MaxFieldBytes (limits.go)
	}
	switch ev.Type {
	case callbridge.SwitchCallStarted:
		e.onCallStarted(ev)
	case callbridge.SwitchDataUpdated:
		if c := e.callFor(ev, false); c != nil && e.mergeSwitchData(c, ev.Data, true) {
			e.emit(c, callbridge.EventCallDataUpdated, callbridge.CallEvent{})
		}
	case callbridge.SwitchQueued:
		e.onQueued(ev)
	case callbridge.SwitchDequeued:
		if c := e.callFor(ev, false); c != nil {
			if ev.Cause == callbridge.CauseAbandoned {
				c.abandoned = true
			}
			e.dequeue(c, ev.Cause == callbridge.CauseAbandoned)
		}
	case callbridge.SwitchAlerting, callbridge.SwitchConnected:
		if c := e.callFor(ev, true); c != nil && ev.Device != "" {
			if ev.Queue != "" && c.m.Queue == "" {
				c.m.Queue, c.customer = ev.Queue, true
			}
			target := callbridge.ConnAlerting
			if ev.Type == callbridge.SwitchConnected {
				target = callbridge.ConnConnected
			}
			e.transition(c, ev.Device, ev.External, target, false)
		}
	case callbridge.SwitchHeld:
		if c := e.callFor(ev, false); c != nil && ev.Device != "" {
			e.transition(c, ev.Device, ev.External, callbridge.ConnHeld, false)
		}
	case callbridge.SwitchRetrieved:
		if c := e.callFor(ev, false); c != nil && ev.Device != "" && c.state(ev.Device) == callbridge.ConnHeld {
			e.transition(c, ev.Device, ev.External, callbridge.ConnConnected, false)
		}
	case callbridge.SwitchFailed:
		e.onFailed(ev)
	case callbridge.SwitchConnectionCleared:
		if c := e.callFor(ev, false); c != nil && ev.Device != "" {
			if cn, ok := e.removeConn(c, ev.Device); ok {
				if cn.State == callbridge.ConnAlerting {
					e.unrung(c, cn, callbridge.CauseRedirected)
				}
				e.emit(c, callbridge.EventCallConnectionCleared, callbridge.CallEvent{
					Device: cn.Device, Agent: cn.Agent, Cause: orCause(ev.Cause, callbridge.CauseNormal),
				})
			}
		}
	case callbridge.SwitchTransferred:
		e.onTransferred(ev)
	case callbridge.SwitchConferenced:
		e.onConferenced(ev)
	case callbridge.SwitchCallCleared:
		if c := e.callFor(ev, false); c != nil {
			cause := ev.Cause
			if c.abandoned && c.m.AnsweredAt.IsZero() && (cause == "" || cause == callbridge.CauseNormal) {
				cause = callbridge.CauseAbandoned
			}
			e.clearCall(c, orCause(cause, callbridge.CauseNormal))
		}
	case callbridge.SwitchMemberState:
		e.onMemberState(ev)
	case callbridge.SwitchDeviceState:
		e.onDeviceState(ev)
	case callbridge.SwitchSnapshot:
		e.onSnapshot(ev.Snapshot)
	}
	return e.end()
}

func orCause(c, def callbridge.Cause) callbridge.Cause {
	if c == "" {
		return def
	}
	return c
}

// callFor returns the call of ev.PBXCallID; with create, an unknown call is created from the
// event (alerting/connected of a call that began before a resync).
func (e *Engine) callFor(ev callbridge.SwitchEvent, create bool) *call {
	if ev.PBXCallID == "" {
		return nil
	}
	if c := e.calls[ev.PBXCallID]; c != nil {
		e.adoptFrom(c, ev.Tenant, ev.Device)
		return c
	}
	if !create {
		return nil
	}
	t, no := e.resolveTenant(ev.Tenant, ev.DNIS, []callbridge.DeviceID{ev.Device}, nil, nil)
	dir := ev.Direction
	if dir == "" {
		dir = callbridge.DirInbound
	}
	c := e.newCall(ev.PBXCallID, e.uniqueID(), t, no, dir)
	c.m.ANI, c.m.ANIName, c.m.DNIS = ev.ANI, ev.ANIName, ev.DNIS
	e.mergeSwitchData(c, ev.Data, false)
	return c
}

// onCallStarted creates a call (see the package documentation).
func (e *Engine) onCallStarted(ev callbridge.SwitchEvent) {
	if ev.PBXCallID == "" {
		return
	}
	if c := e.calls[ev.PBXCallID]; c != nil {
		// Repeated, or late after alerting/connected created the call: fill in, emit nothing.
		e.adoptFrom(c, ev.Tenant, ev.Device)
		if c.m.ANI == "" {
			c.m.ANI, c.m.ANIName = ev.ANI, ev.ANIName
		}
		if c.m.DNIS == "" {
			c.m.DNIS = ev.DNIS
		}
		e.mergeSwitchData(c, ev.Data, false)
		return
	}
	var consult *call
	if ev.ConsultOf != "" && ev.ConsultOf != ev.PBXCallID {
		consult = e.calls[ev.ConsultOf]
	}
	r := e.claim(ev, consult)
	t, no := e.resolveTenant(ev.Tenant, ev.DNIS, []callbridge.DeviceID{ev.Device}, consult, r)
	var id callbridge.CallID
	switch {
	case r != nil:
		id = r.id
		delete(e.resv, r.id)
		e.claimed[id] = e.now
	case looksLikeULID(ev.CorrelationID) && e.byID[callbridge.CallID(ev.CorrelationID)] == nil && e.claimed[callbridge.CallID(ev.CorrelationID)].IsZero():
		// The make_call's Apply has not run yet (the runtime executes switch commands outside
		// the engine): the correlation id is the CallID that Plan reserved.
		id = callbridge.CallID(ev.CorrelationID)
		e.claimed[id] = e.now
	default:
		id = e.uniqueID()
	}
	dir := ev.Direction
	if dir == "" {
		switch {
		case consult != nil || ev.ConsultOf != "":
			dir = callbridge.DirInternal
		case ev.External:
			dir = callbridge.DirInbound
		case r != nil:
			dir = callbridge.DirOutbound
		default:
			dir = callbridge.DirInternal
		}
	}
	c := e.newCall(ev.PBXCallID, id, t, no, dir)
	c.m.ANI, c.m.ANIName, c.m.DNIS = ev.ANI, ev.ANIName, ev.DNIS
	if consult != nil {
		c.m.ConsultOf = consult.m.ID
		for k, v := range consult.m.AttachedData {
			c.m.AttachedData[k] = v
		}
	}
	e.mergeSwitchData(c, ev.Data, false)
	if r != nil {
		e.mergeDeskData(c, r.data)
	}
	if ev.Device == "" {
		return
	}
	_, agentDevice := e.dir.devices[ev.Device]
	ext := ev.External || (dir == callbridge.DirInbound && !agentDevice)
	st := callbridge.ConnInitiated
	if ext {
		st = callbridge.ConnConnected
	}
	e.setConn(c, ev.Device, ext, st)
	if ce := e.about(c, ev.Device); ce.Agent != "" && !ext && dir != callbridge.DirInbound {
		c.unclaimed = r == nil && id != callbridge.CallID(ev.CorrelationID)
		e.emit(c, callbridge.EventCallOriginated, ce)
	}
}

// looksLikeULID reports whether s has the form of a ULID: 26 characters of Crockford base32.
func looksLikeULID(s string) bool {
	if len(s) != 26 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= '0' && c <= '9':
		case c >= 'A' && c <= 'Z' && c != 'I' && c != 'L' && c != 'O' && c != 'U':
		default:
			return false
		}
	}
	return s[0] <= '7'
}

// onQueued records that the call joined a queue: a connection at the queue's device (see
// enqueue). A call already waiting in that queue changes nothing.
func (e *Engine) onQueued(ev callbridge.SwitchEvent) {
	c := e.callFor(ev, false)
	if c == nil || ev.Queue == "" || c.queue() == callbridge.DeviceID(ev.Queue) {
		return
	}
	e.enqueue(c, ev.Queue)
}

// unrung notes that connection cn, which was ringing, left c for cause while nobody has the
// call and it waits in no queue: the next device to ring gets the call by diversion.
func (e *Engine) unrung(c *call, cn callbridge.Connection, cause callbridge.Cause) {
	if c.attended() || c.queue() != "" {
		return
	}
	c.unrung = &departure{device: cn.Device, agent: cn.Agent, cause: cause}
}

// transition moves device d of call c towards state target and emits the CSTA event for it.
// In resync mode (a snapshot) events are only emitted for agents' connections, and a party
// found held is reported established.
func (e *Engine) transition(c *call, d callbridge.DeviceID, ext bool, target callbridge.ConnectionState, resync bool) {
	if !e.roomFor(c, d) {
		return // MaxConnections (limits.go)
	}
	prev := c.state(d)
	ev := callbridge.EventType("")
	switch target {
	case callbridge.ConnInitiated:
		if prev == callbridge.ConnNull {
			e.setConn(c, d, ext, target)
			if resync && !ext { // a started call outside a resync emits in onCallStarted
				ev = callbridge.EventCallOriginated
			}
		}
	case callbridge.ConnAlerting:
		if prev == callbridge.ConnNull || prev == callbridge.ConnInitiated {
			e.divertTo(c, d)
			// A transfer's data is in the call before the new party's screen pop.
			e.flushPending(c)
			e.setConn(c, d, ext, target)
			ev = callbridge.EventCallDelivered
		}
	case callbridge.ConnConnected:
		switch prev {
		case callbridge.ConnNull, callbridge.ConnInitiated, callbridge.ConnAlerting:
			c.unrung = nil
			if !ext && !resync {
				// The queue handed the call to this device (a switch that reports no
				// dequeued before the answer).
				e.dequeue(c, false)
			}
			e.setConn(c, d, ext, target)
			e.markAnswered(c, d)
			ev = callbridge.EventCallEstablished
		case callbridge.ConnHeld:
			e.setConn(c, d, ext, target)
			ev = callbridge.EventCallRetrieved
		}
	case callbridge.ConnHeld:
		switch {
		case prev == callbridge.ConnConnected:
			e.setConn(c, d, ext, target)
			ev = callbridge.EventCallHeld
		case resync && prev != callbridge.ConnHeld:
			e.setConn(c, d, ext, callbridge.ConnConnected)
			e.markAnswered(c, d)
			e.setConn(c, d, ext, target)
			ev = callbridge.EventCallEstablished
		}
	}
	if ev == "" {
		return
	}
	ce := e.about(c, d)
	if resync && ce.Agent == "" {
		return
	}
	e.emit(c, ev, ce)
}

// markAnswered sets AnsweredAt on the first answer that counts: an agent's device, or for an
// outbound call the outside party.
func (e *Engine) markAnswered(c *call, d callbridge.DeviceID) {
	if !c.m.AnsweredAt.IsZero() {
		return
	}
	i := c.idx(d)
	if i < 0 {
		return
	}
	cn := c.m.Connections[i]
	if c.m.Direction == callbridge.DirOutbound && cn.External || c.m.Direction != callbridge.DirOutbound && cn.Agent != "" {
		c.m.AnsweredAt = e.now
	}
}

// onFailed handles a device the call could not reach (busy, rejected, no answer):
//
//   - a device of the switch that rang (or was being rung) for a call waiting in a queue: a
//     queue member whose phone rang out or rejected the call. Its connection is removed and
//     call.diverted names the queue's device as where the call went (CSTA Diverted, as a
//     switch's redirection on no answer returns the call to its ACD group); the queue then
//     offers the call to the next member;
//   - any other connection is shown failed in call.failed, then removed; when nobody has the
//     call afterwards, the next device to ring gets it by diversion;
//   - a failure of a device that had no connection (rejected before ringing) is reported once.
func (e *Engine) onFailed(ev callbridge.SwitchEvent) {
	c := e.callFor(ev, false)
	d := ev.Device
	if c == nil || d == "" {
		return
	}
	cause := orCause(ev.Cause, callbridge.CauseUnavailable)
	if i := c.idx(d); i >= 0 {
		cn := c.m.Connections[i]
		if q := c.queue(); q != "" && cn.State == callbridge.ConnAlerting && !cn.External {
			e.removeConn(c, d)
			e.emit(c, callbridge.EventCallDiverted, callbridge.CallEvent{Device: d, Agent: cn.Agent, DivertedTo: q, Cause: cause})
			return
		}
		c.m.Connections[i].State = callbridge.ConnFailed
		e.emit(c, callbridge.EventCallFailed, callbridge.CallEvent{Device: d, Agent: cn.Agent, Cause: cause})
		e.removeConn(c, d)
		if cn.State == callbridge.ConnAlerting {
			e.unrung(c, cn, cause)
		}
		return
	}
	if c.gone[d] {
		return
	}
	c.gone[d] = true
	ce := e.about(c, d)
	if ev.External {
		ce.Agent = ""
	}
	ce.Cause = cause
	e.left(c, ce.Agent, d)
	if q := c.queue(); q != "" && !ev.External {
		ce.DivertedTo = q
		e.emit(c, callbridge.EventCallDiverted, ce)
		return
	}
	e.emit(c, callbridge.EventCallFailed, ce)
	if c.queue() == "" && !c.attended() {
		c.unrung = &departure{device: d, agent: ce.Agent, cause: cause}
	}
}

// consultation returns the consultation call named pbx for call c, or nil.
func (e *Engine) consultation(pbx string, c *call) *call {
	q := e.calls[pbx]
	if q == nil || q == c || q.m.Tenant != c.m.Tenant {
		return nil
	}
	return q
}

// moveParties adds q's connections (except device skip, and devices already in c) to c and
// returns the devices added.
func (e *Engine) moveParties(q, c *call, skip callbridge.DeviceID) []callbridge.DeviceID {
	var moved []callbridge.DeviceID
	for _, cn := range slices.Clone(q.m.Connections) {
		if cn.Device == skip || c.idx(cn.Device) >= 0 || !cn.State.Active() || !e.roomFor(c, cn.Device) {
			continue
		}
		if q.answered[cn.Device] {
			c.answered[cn.Device] = true
		}
		e.setConn(c, cn.Device, cn.External, cn.State)
		moved = append(moved, cn.Device)
	}
	// The attached data the consultation changed travels with the customer (within the
	// limits: limits.go).
	changes := map[string]string{}
	for k := range q.own {
		changes[k] = q.m.AttachedData[k] // "": deleted in the consultation
	}
	e.mergeCapped(c, changes, "consultation data", func(k, v string) bool {
		old, ok := c.m.AttachedData[k]
		switch {
		case v == "" && ok:
			delete(c.m.AttachedData, k)
		case v == "" || old == v:
			return false
		default:
			c.m.AttachedData[k] = v
		}
		return true
	})
	return moved
}

// onTransferred completes a blind or consultative transfer (see the package documentation).
func (e *Engine) onTransferred(ev callbridge.SwitchEvent) {
	c := e.callFor(ev, false)
	if c == nil {
		return
	}
	t := ev.TransferringDevice
	q := e.consultation(ev.ConsultPBXCallID, c)
	ce := callbridge.CallEvent{TransferringDevice: t, TransferredTo: ev.TransferredTo}
	changed := false
	if q != nil {
		ce.ConsultCallID = q.m.ID
		if t != "" {
			e.removeConn(q, t) // before leaving c, so that wrap-up sees the device free
		}
		moved := e.moveParties(q, c, t)
		if ce.TransferredTo == "" && len(moved) > 0 {
			ce.TransferredTo = moved[0]
		}
		changed = true
	}
	if t != "" {
		if cn, ok := e.removeConn(c, t); ok {
			ce.Agent = cn.Agent
			changed = true
		}
	}
	if !changed {
		return
	}
	c.unrung = nil
	e.flushPending(c)
	e.emit(c, callbridge.EventCallTransferred, ce)
	if q != nil {
		e.clearCall(q, callbridge.CauseTransferred)
	}
}

// onConferenced joins a consultation into its call (see the package documentation).
func (e *Engine) onConferenced(ev callbridge.SwitchEvent) {
	c := e.callFor(ev, false)
	if c == nil {
		return
	}
	q := e.consultation(ev.ConsultPBXCallID, c)
	if q == nil {
		return
	}
	d := ev.Device
	if d == "" {
		for _, cn := range q.m.Connections {
			if c.idx(cn.Device) >= 0 {
				d = cn.Device
				break
			}
		}
	}
	if d != "" {
		e.removeConn(q, d)
	}
	moved := e.moveParties(q, c, d)
	if i := c.idx(d); d != "" && i >= 0 && c.m.Connections[i].State == callbridge.ConnHeld {
		e.setConn(c, d, false, callbridge.ConnConnected)
	}
	c.unrung = nil
	ce := e.about(c, d)
	ce.TransferredTo, ce.ConsultCallID = ev.TransferredTo, q.m.ID
	if ce.TransferredTo == "" && len(moved) > 0 {
		ce.TransferredTo = moved[0]
	}
	e.emit(c, callbridge.EventCallConferenced, ce)
	e.clearCall(q, callbridge.CauseConferenced)
}

// clearCall ends c: every connection is removed, call.cleared is emitted with cause, and the
// call is forgotten.
func (e *Engine) clearCall(c *call, cause callbridge.Cause) {
	e.dropQueue(c)
	c.unrung = nil
	for len(c.m.Connections) > 0 {
		e.removeConn(c, c.m.Connections[0].Device)
	}
	c.m.EndedAt = e.now
	e.emit(c, callbridge.EventCallCleared, callbridge.CallEvent{Cause: cause})
	e.remember(c)
	delete(e.calls, c.m.PBXCallID)
	delete(e.byID, c.m.ID)
}
