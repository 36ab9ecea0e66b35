package sim

import (
	"fmt"
	"strings"
	"time"

	"github.com/callbridge/callbridge"
)

// call is one conversation on the simulated switch.
type call struct {
	id        string
	seq       uint64
	tenant    *tenant
	dir       callbridge.Direction
	ani       string
	aniName   string
	dnis      string
	data      map[string]string
	consultOf string // PBXCallID of the call this one consults about
	started   bool   // call_started was emitted
	parties   []*party
	legs      map[callbridge.DeviceID]int // legs handed out per device

	queue    *queue // the queue the call joined last (kept after it left)
	waiting  bool   // the call is in queue.waiting
	queuedAt time.Time
	offer    *party    // the member the queue rings now
	tried    []*device // members rung without answer in this round

	ivrData map[string]string // inbound: what the IVR attaches
	route   *queue            // inbound: the queue after the IVR
	dial    target            // make_call: dialled once the agent leg answers

	startTimer, ivrTimer, patience, talk *timer
}

// partyRole says how a party came into its call.
type partyRole uint8

const (
	roleCaller     partyRole = iota + 1 // the outside caller, or the device that started the call
	roleOriginator                      // the agent leg of a make_call (agent-first)
	roleOffer                           // a queue member the queue rings
	roleTarget                          // a dialled target: transfer, consultation, make_call
)

// party is one device's connection to a call.
type party struct {
	call     *call
	dev      *device // nil for an outside party
	id       callbridge.DeviceID
	leg      string
	state    callbridge.ConnectionState
	role     partyRole
	answered bool
	ring     *timer // ring timeout
	answer   *timer // auto-answer (phone, customer)
}

// targetKind says what a dialled number is.
type targetKind uint8

const (
	targetNone targetKind = iota
	targetDevice
	targetQueue
	targetOutside
)

// target is a resolved dial target.
type target struct {
	kind   targetKind
	dev    *device
	queue  *queue
	number string
}

// name returns the target as the device id the events name.
func (t target) name() callbridge.DeviceID {
	switch t.kind {
	case targetDevice:
		return t.dev.id
	case targetQueue:
		return callbridge.DeviceID(t.queue.name)
	}
	return callbridge.DeviceID(t.number)
}

// busyNumber reports whether an outside number is busy (ends in 486, like the busy customer
// of the Asterisk click-to-call-busy recording).
func busyNumber(n string) bool { return strings.HasSuffix(n, "486") }

// partyOf returns d's connection to c, or nil.
func (c *call) partyOf(d callbridge.DeviceID) *party {
	for _, pa := range c.parties {
		if pa.id == d {
			return pa
		}
	}
	return nil
}

// talking returns how many parties are connected or held.
func (c *call) talking() int {
	n := 0
	for _, pa := range c.parties {
		if pa.state == callbridge.ConnConnected || pa.state == callbridge.ConnHeld {
			n++
		}
	}
	return n
}

// talkingOutsider returns the first outside party that is connected or held, or nil.
func (c *call) talkingOutsider() *party {
	for _, pa := range c.parties {
		if pa.dev == nil && (pa.state == callbridge.ConnConnected || pa.state == callbridge.ConnHeld) {
			return pa
		}
	}
	return nil
}

// newLeg returns a fresh leg id for device d in c.
func (c *call) newLeg(d callbridge.DeviceID) string {
	if c.legs == nil {
		c.legs = map[callbridge.DeviceID]int{}
	}
	n := c.legs[d] + 1
	c.legs[d] = n
	if n == 1 {
		return c.id + "-" + string(d)
	}
	return fmt.Sprintf("%s-%s-%d", c.id, d, n)
}

// callEvent returns an event of type t about c.
func (c *call) event(t callbridge.SwitchEventType) callbridge.SwitchEvent {
	return callbridge.SwitchEvent{Type: t, Tenant: c.tenant.id, PBXCallID: c.id}
}

// event returns an event of type t about party pa.
func (pa *party) event(t callbridge.SwitchEventType) callbridge.SwitchEvent {
	ev := pa.call.event(t)
	ev.Device, ev.Leg, ev.External = pa.id, pa.leg, pa.dev == nil
	return ev
}

// addParty adds a connection of dev (or of the outside number id when dev is nil) to c.
func (p *PBX) addParty(c *call, dev *device, id callbridge.DeviceID, role partyRole, st callbridge.ConnectionState) *party {
	pa := &party{call: c, dev: dev, id: id, leg: c.newLeg(id), state: st, role: role}
	c.parties = append(c.parties, pa)
	if dev != nil {
		dev.conns = append(dev.conns, pa)
	}
	return pa
}

// removeParty takes pa out of its call and its device, without events.
func (p *PBX) removeParty(pa *party) {
	c := pa.call
	if i := indexOf(c.parties, pa); i >= 0 {
		c.parties = append(c.parties[:i], c.parties[i+1:]...)
	}
	p.cancel(&pa.ring)
	p.cancel(&pa.answer)
	if c.offer == pa {
		c.offer = nil
	}
	if d := pa.dev; d != nil {
		if i := indexOf(d.conns, pa); i >= 0 {
			d.conns = append(d.conns[:i], d.conns[i+1:]...)
		}
		if len(d.conns) == 0 {
			if pa.answered {
				d.idleSince = p.now
				if w := p.wrapUpTime(c); w > 0 {
					d.wrapUntil = p.now.Add(w)
					p.schedule(w, tWrapUp, nil, nil, nil)
				}
			}
			p.dirty = true
		}
	}
}

// moveParty moves pa from its call into c (a completed consultation).
func (p *PBX) moveParty(pa *party, c *call) {
	old := pa.call
	if i := indexOf(old.parties, pa); i >= 0 {
		old.parties = append(old.parties[:i], old.parties[i+1:]...)
	}
	pa.call = c
	c.parties = append(c.parties, pa)
}

func indexOf(s []*party, pa *party) int {
	for i, x := range s {
		if x == pa {
			return i
		}
	}
	return -1
}

// startInbound emits call_started for an inbound call and sends the caller to the IVR.
func (p *PBX) startInbound(c *call) {
	c.started = true
	p.stats.CallsStarted++
	pa := p.addParty(c, nil, callbridge.DeviceID(c.ani), roleCaller, callbridge.ConnConnected)
	ev := pa.event(callbridge.SwitchCallStarted)
	ev.Direction, ev.ANI, ev.ANIName, ev.DNIS = c.dir, c.ani, c.aniName, c.dnis
	p.emit(ev)
	c.ivrTimer = p.schedule(p.cfg.IVRTime, tIVR, nil, c, nil)
}

// ivrDone attaches the IVR's answers and queues the call.
func (p *PBX) ivrDone(c *call) {
	if len(c.ivrData) > 0 {
		c.data = cloneData(c.ivrData)
		ev := c.event(callbridge.SwitchDataUpdated)
		ev.Data = cloneData(c.ivrData)
		p.emit(ev)
	}
	c.ivrData = nil
	p.enqueue(c, c.route)
}

// enqueue puts c into q: queued, then offers follow from dispatch.
func (p *PBX) enqueue(c *call, q *queue) {
	p.cancel(&c.talk)
	c.queue, c.waiting, c.queuedAt, c.tried = q, true, p.now, nil
	q.waiting = append(q.waiting, c)
	ev := c.event(callbridge.SwitchQueued)
	ev.Queue = q.name
	p.emit(ev)
	c.patience = p.schedule(p.cfg.CallerPatience, tPatience, nil, c, nil)
	p.dirty = true
}

// dequeue takes c out of its queue: dequeued with cause (empty when answered).
func (p *PBX) dequeue(c *call, cause callbridge.Cause) {
	q := c.queue
	for i, x := range q.waiting {
		if x == c {
			q.waiting = append(q.waiting[:i], q.waiting[i+1:]...)
			break
		}
	}
	c.waiting, c.offer, c.tried = false, nil, nil
	p.cancel(&c.patience)
	ev := c.event(callbridge.SwitchDequeued)
	ev.Queue, ev.Cause = q.name, cause
	p.emit(ev)
}

// deliver dials t for c: an agent device rings (or is busy when it is in a call by now), a
// queue queues the call, an outside number rings and answers later (or is busy). Busy emits
// failed(busy) for the target and clears the call.
func (p *PBX) deliver(c *call, t target) {
	switch t.kind {
	case targetDevice:
		if len(t.dev.conns) > 0 { // ringinuse no: a device in a call is busy
			ev := c.event(callbridge.SwitchFailed)
			ev.Device, ev.Leg, ev.Cause = t.dev.id, c.newLeg(t.dev.id), callbridge.CauseBusy
			p.emit(ev)
			p.clearCall(c, callbridge.CauseBusy)
			return
		}
		pa := p.addParty(c, t.dev, t.dev.id, roleTarget, callbridge.ConnAlerting)
		p.alert(pa, "")
	case targetQueue:
		p.enqueue(c, t.queue)
	case targetOutside:
		id := callbridge.DeviceID(t.number)
		if busyNumber(t.number) {
			ev := c.event(callbridge.SwitchFailed)
			ev.Device, ev.Leg, ev.External, ev.Cause = id, c.newLeg(id), true, callbridge.CauseBusy
			p.emit(ev)
			p.clearCall(c, callbridge.CauseBusy)
			return
		}
		pa := p.addParty(c, nil, id, roleTarget, callbridge.ConnAlerting)
		p.emit(pa.event(callbridge.SwitchAlerting))
		pa.answer = p.schedule(between(p.rng, p.cfg.CustomerAnswerMin, p.cfg.CustomerAnswerMax), tAnswer, nil, nil, pa)
	}
}

// alert emits alerting for an agent party and sets its ring timeout and auto-answer.
func (p *PBX) alert(pa *party, q callbridge.QueueName) {
	c := pa.call
	ev := pa.event(callbridge.SwitchAlerting)
	ev.Queue, ev.ANI, ev.ANIName, ev.DNIS = q, c.ani, c.aniName, c.dnis
	p.emit(ev)
	pa.ring = p.schedule(p.cfg.RingTimeout, tRing, nil, nil, pa)
	if p.cfg.AgentAnswer > 0 {
		pa.answer = p.schedule(p.cfg.AgentAnswer, tAnswer, nil, nil, pa)
	}
}

// answer connects an alerting party.
func (p *PBX) answer(pa *party) {
	c := pa.call
	p.cancel(&pa.ring)
	p.cancel(&pa.answer)
	if c.waiting && c.offer == pa {
		p.stats.CallsAnswered++
		p.dequeue(c, "")
	}
	pa.state, pa.answered = callbridge.ConnConnected, true
	p.emit(pa.event(callbridge.SwitchConnected))
	if pa.role == roleOriginator {
		t := c.dial
		c.dial = target{}
		p.deliver(c, t)
		return
	}
	p.startTalk(c)
}

// startTalk (re)starts the outside party's talk time when it talks with somebody.
func (p *PBX) startTalk(c *call) {
	if c.talkingOutsider() == nil || c.talking() < 2 {
		return
	}
	p.cancel(&c.talk)
	c.talk = p.schedule(between(p.rng, p.cfg.TalkTimeMin, p.cfg.TalkTimeMax), tTalk, nil, c, nil)
}

// leave takes pa out of its call because it hung up, rejected, or did not answer (cause).
// An alerting party fails: a queue offer goes on to the next member, any other call clears.
// A talking party's connection clears; the call clears when fewer than two parties talk. A
// party of a call waiting in a queue abandons it.
func (p *PBX) leave(pa *party, cause callbridge.Cause) {
	c := pa.call
	if pa.state == callbridge.ConnAlerting {
		offered := c.offer == pa
		ev := pa.event(callbridge.SwitchFailed)
		ev.Cause = cause
		if offered {
			ev.Queue = c.queue.name
		}
		p.emit(ev)
		p.removeParty(pa)
		if offered {
			c.tried = append(c.tried, pa.dev)
			p.dirty = true
			return
		}
		p.clearCall(c, cause)
		return
	}
	if c.waiting {
		p.stats.CallsAbandoned++
		p.clearCall(c, callbridge.CauseAbandoned)
		return
	}
	ev := pa.event(callbridge.SwitchConnectionCleared)
	ev.Cause = cause
	p.emit(ev)
	p.removeParty(pa)
	if c.talking() < 2 {
		p.clearCall(c, callbridge.CauseNormal)
	}
}

// clearCall ends c for every party: dequeued(call_abandoned) when it waits in a queue, then
// call_cleared with cause.
func (p *PBX) clearCall(c *call, cause callbridge.Cause) {
	if c.waiting {
		p.dequeue(c, callbridge.CauseAbandoned)
	}
	for len(c.parties) > 0 {
		p.removeParty(c.parties[len(c.parties)-1])
	}
	p.cancel(&c.startTimer)
	p.cancel(&c.ivrTimer)
	p.cancel(&c.patience)
	p.cancel(&c.talk)
	ev := c.event(callbridge.SwitchCallCleared)
	ev.Cause = cause
	p.emit(ev)
	p.stats.CallsCleared++
	delete(p.calls, c.id)
}

// dispatch offers waiting calls to free members until no queue can offer one: the oldest
// waiting call without an offer, over every queue that has a free member, is offered first.
func (p *PBX) dispatch() {
	if !p.dirty {
		return
	}
	p.dirty = false
	for {
		var best *call
		var bestM *member
		for _, q := range p.queues {
			c := q.nextToOffer()
			if c == nil || (best != nil && !c.queuedAt.Before(best.queuedAt)) {
				continue
			}
			if m := q.pick(c, p.now); m != nil {
				best, bestM = c, m
			}
		}
		if best == nil {
			return
		}
		if bestM.dev.in(best.tried) {
			best.tried = nil // every free member was tried: start a new round
		}
		p.stats.Offers++
		pa := p.addParty(best, bestM.dev, bestM.dev.id, roleOffer, callbridge.ConnAlerting)
		best.offer = pa
		p.alert(pa, best.queue.name)
	}
}

// nextToOffer returns the oldest waiting call of q that nobody rings for, or nil.
func (q *queue) nextToOffer() *call {
	for _, c := range q.waiting {
		if c.offer == nil {
			return c
		}
	}
	return nil
}

// pick returns the member of q to offer c to: free, unpaused, out of wrap-up, not yet tried for c in this
// round if possible, idle longest (ties: directory order). Nil when no member is free.
func (q *queue) pick(c *call, now time.Time) *member {
	var best, bestTried *member
	better := func(a, b *member) bool {
		return b == nil || a.dev.idleSince.Before(b.dev.idleSince) ||
			(a.dev.idleSince.Equal(b.dev.idleSince) && a.dev.order < b.dev.order)
	}
	for _, m := range q.members {
		if m.paused || len(m.dev.conns) > 0 || m.dev.unregistered || m.dev.wrapUntil.After(now) {
			continue
		}
		if m.dev.in(c.tried) {
			if better(m, bestTried) {
				bestTried = m
			}
		} else if better(m, best) {
			best = m
		}
	}
	if best != nil {
		return best
	}
	return bestTried
}

func (d *device) in(s []*device) bool {
	for _, x := range s {
		if x == d {
			return true
		}
	}
	return false
}

// addMember makes d a member of q and emits member_state.
func (p *PBX) addMember(d *device, q *queue, paused bool, reason string) {
	if !paused {
		reason = ""
	}
	m := &member{dev: d, queue: q, paused: paused, reason: reason}
	d.members = append(d.members, m)
	q.members = append(q.members, m)
	p.memberEvent(m, true)
	p.dirty = true
}

// removeMember ends d's membership of q and emits member_state.
func (p *PBX) removeMember(m *member) {
	d, q := m.dev, m.queue
	for i, x := range d.members {
		if x == m {
			d.members = append(d.members[:i], d.members[i+1:]...)
			break
		}
	}
	for i, x := range q.members {
		if x == m {
			q.members = append(q.members[:i], q.members[i+1:]...)
			break
		}
	}
	p.memberEvent(m, false)
}

// pauseMember sets m's pause and emits member_state.
func (p *PBX) pauseMember(m *member, paused bool, reason string) {
	if !paused {
		reason = ""
	}
	m.paused, m.reason = paused, reason
	p.memberEvent(m, true)
	p.dirty = true
}

func (p *PBX) memberEvent(m *member, on bool) {
	ev := callbridge.SwitchEvent{
		Type: callbridge.SwitchMemberState, Tenant: m.dev.tenant.id, Device: m.dev.id,
		Queue: m.queue.name, LoggedOn: on,
	}
	if on {
		ev.Paused, ev.Reason = m.paused, m.reason
	}
	p.emit(ev)
}

// wrapUpTime is the wrap-up a member who handled c gets with HonourWrapUp: the wrap-up of
// the queue c came through (QueueConfig.WrapUpSeconds, else the tenant's), 0 otherwise.
func (p *PBX) wrapUpTime(c *call) time.Duration {
	if !p.cfg.HonourWrapUp || c.queue == nil {
		return 0
	}
	return p.wrapUp[c.queue.name]
}
