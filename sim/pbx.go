package sim

import (
	"cmp"
	"container/heap"
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/callbridge/callbridge"
)

// PBX is the deterministic core of the simulated switch. It is not safe for concurrent use;
// Driver serialises access to it.
//
// Every method that takes now first moves the PBX's clock to now (never backwards: an
// earlier now counts as the current time). Events carry the simulated time at which they
// happen: a timer's events carry its deadline, a command's events carry the command's now.
// Execute and PressButton do not run timers; call Advance(now) first (Driver does), or
// timers due before now fire afterwards, with their earlier times.
type PBX struct {
	cfg      Config
	rng      *rand.Rand
	now      time.Time
	timers   timerHeap
	timerSeq uint64
	callSeq  uint64

	tenants  []*tenant
	tenantBy map[callbridge.TenantID]*tenant
	devices  []*device // directory order
	deviceBy map[callbridge.DeviceID]*device
	queues   []*queue                               // directory order
	wrapUp   map[callbridge.QueueName]time.Duration // HonourWrapUp: per queue
	queueBy  map[callbridge.QueueName]*queue
	didRoute map[string]*queue
	calls    map[string]*call // started or scheduled calls, by PBXCallID

	out   []callbridge.SwitchEvent // events of the operation in progress
	dirty bool                     // a queue may be able to offer a call
	stats Stats
}

// Stats counts what the PBX has done since it was created.
type Stats struct {
	CallsStarted   uint64 // call_started events (inbound, outbound, consultations)
	CallsCleared   uint64 // call_cleared events
	CallsAnswered  uint64 // queue offers answered by an agent
	CallsAbandoned uint64 // callers who gave up in a queue
	Offers         uint64 // alerting events for queue offers
	Events         uint64 // every event emitted
	ActiveCalls    int    // calls started and not cleared
}

type tenant struct {
	id      callbridge.TenantID
	dids    []string
	queues  []*queue
	byUser  map[string]*device // agent user name → device
	arrival *timer
}

type device struct {
	id        callbridge.DeviceID
	tenant    *tenant
	order     int
	conns     []*party  // the device's connections (at most two: a held call and a consultation)
	members   []*member // memberships, in the order they were added
	idleSince time.Time // when the device last finished a call it had answered
	defQueues []*queue  // the user's configured queues (MembersLoggedIn)
	// unregistered: the phone is not registered (SetRegistered): the queues skip it and
	// nobody can call it.
	unregistered bool
	// wrapUntil: with HonourWrapUp, the queues skip the device until then.
	wrapUntil time.Time
}

type queue struct {
	name    callbridge.QueueName
	tenant  *tenant
	members []*member
	waiting []*call // FIFO
}

type member struct {
	dev    *device
	queue  *queue
	paused bool
	reason string
}

// NewPBX returns a PBX in the state of cfg.Start: agents idle (and paused queue members when
// cfg.MembersLoggedIn), no calls, the first automatic call of each tenant scheduled within
// CallInterval. Directory entries that conflict (see Config.Validate) are skipped: the first
// definition wins.
func NewPBX(cfg Config) *PBX {
	cfg = cfg.withDefaults()
	p := &PBX{
		cfg:      cfg,
		rng:      cfg.Rand,
		now:      cfg.Start,
		tenantBy: map[callbridge.TenantID]*tenant{},
		deviceBy: map[callbridge.DeviceID]*device{},
		queueBy:  map[callbridge.QueueName]*queue{},
		didRoute: map[string]*queue{},
		calls:    map[string]*call{},
		wrapUp:   map[callbridge.QueueName]time.Duration{},
	}
	for _, tc := range cfg.Directory.Tenants {
		if _, dup := p.tenantBy[tc.ID]; dup || !callbridge.ValidToken(string(tc.ID)) {
			continue
		}
		tn := &tenant{id: tc.ID, byUser: map[string]*device{}}
		p.tenants = append(p.tenants, tn)
		p.tenantBy[tc.ID] = tn
		for _, qc := range tc.Queues {
			if _, dup := p.queueBy[qc.Name]; dup || callbridge.CheckDialTarget("queue", string(qc.Name)) != nil {
				continue
			}
			q := &queue{name: qc.Name, tenant: tn}
			wrap := tc.WrapUpSeconds
			if qc.WrapUpSeconds != nil {
				wrap = *qc.WrapUpSeconds
			}
			p.wrapUp[q.name] = time.Duration(wrap) * time.Second
			tn.queues = append(tn.queues, q)
			p.queues = append(p.queues, q)
			p.queueBy[q.name] = q
		}
		for _, did := range tc.DIDs {
			if _, dup := p.didRoute[did]; dup || len(tn.queues) == 0 || callbridge.CheckDialTarget("did", did) != nil {
				continue
			}
			tn.dids = append(tn.dids, did)
			p.didRoute[did] = tn.queues[min(len(tn.dids)-1, len(tn.queues)-1)]
		}
		for _, u := range tc.Users {
			if u.Device == "" || callbridge.CheckDialTarget("device", string(u.Device)) != nil {
				continue
			}
			if _, dup := p.deviceBy[u.Device]; dup {
				continue
			}
			d := &device{id: u.Device, tenant: tn, order: len(p.devices), idleSince: cfg.Start}
			for _, qn := range u.Queues {
				if q := p.queueBy[qn]; q != nil && q.tenant == tn {
					d.defQueues = append(d.defQueues, q)
				}
			}
			if len(u.Queues) == 0 {
				d.defQueues = tn.queues
			}
			p.devices = append(p.devices, d)
			p.deviceBy[d.id] = d
			if u.Username != "" {
				tn.byUser[u.Username] = d
			}
		}
	}
	if cfg.MembersLoggedIn {
		for _, d := range p.devices {
			for _, q := range d.defQueues {
				p.addMember(d, q, true, "")
			}
		}
	}
	// The memberships above are the initial state, which a snapshot reports: no events.
	p.out, p.stats.Events = nil, 0
	if cfg.CallInterval > 0 {
		for _, tn := range p.tenants {
			if len(tn.queues) > 0 {
				tn.arrival = p.schedule(between(p.rng, 0, cfg.CallInterval), tArrival, tn, nil, nil)
			}
		}
	}
	return p
}

// SetCallInterval changes the mean time between automatic inbound calls per tenant from now
// on; 0 stops them (to let a load run drain). The next call of each tenant is drawn anew.
func (p *PBX) SetCallInterval(now time.Time, d time.Duration) {
	p.setNow(now)
	p.cfg.CallInterval = clampInterval(d)
	for _, tn := range p.tenants {
		p.cancel(&tn.arrival)
		if p.cfg.CallInterval > 0 && len(tn.queues) > 0 {
			tn.arrival = p.schedule(between(p.rng, 0, p.cfg.CallInterval), tArrival, tn, nil, nil)
		}
	}
}

// Now returns the PBX's current simulated time.
func (p *PBX) Now() time.Time { return p.now }

// Stats returns counters of what the PBX has done so far.
func (p *PBX) Stats() Stats {
	s := p.stats
	s.ActiveCalls = int(s.CallsStarted - s.CallsCleared)
	return s
}

// NextDeadline returns when the earliest pending timer is due (automatic calls, IVR, ring
// timeouts, patience, talk time, auto-answers), or the zero time when nothing is pending.
// A runtime sleeps until then, or until it has a command, and calls Advance.
func (p *PBX) NextDeadline() time.Time {
	if len(p.timers) == 0 {
		return time.Time{}
	}
	return p.timers[0].at
}

// Advance runs, in deadline order, every timer due at or before now, and returns the events
// they caused, each with its timer's time. It then sets the PBX's clock to now.
func (p *PBX) Advance(now time.Time) []callbridge.SwitchEvent {
	p.out = nil
	for len(p.timers) > 0 && !p.timers[0].at.After(now) {
		t := heap.Pop(&p.timers).(*timer)
		if t.at.After(p.now) {
			p.now = t.at
		}
		p.fire(t)
		p.dispatch()
	}
	p.setNow(now)
	return p.take()
}

func (p *PBX) setNow(now time.Time) {
	if now.After(p.now) {
		p.now = now
	}
}

// take returns the events of the current operation and resets the buffer.
func (p *PBX) take() []callbridge.SwitchEvent {
	out := p.out
	p.out = nil
	return out
}

// fire carries out one timer that is due. The timer has been removed from the heap already;
// the field of its owner that points to it is cleared here.
func (p *PBX) fire(t *timer) {
	switch t.kind {
	case tArrival:
		tn := t.tenant
		tn.arrival = nil
		iv := p.cfg.CallInterval
		tn.arrival = p.schedule(between(p.rng, iv/2, iv+iv/2), tArrival, tn, nil, nil)
		ani, name := randomCaller(p.rng)
		dnis := ""
		route := tn.queues[0]
		if len(tn.dids) > 0 {
			dnis = tn.dids[0]
			route = p.didRoute[dnis]
		}
		c := p.newCall(tn, callbridge.DirInbound, ani, name, dnis)
		c.route = route
		c.ivrData = randomIVR(p.rng)
		p.startInbound(c)
	case tStart:
		t.call.startTimer = nil
		p.startInbound(t.call)
	case tIVR:
		t.call.ivrTimer = nil
		p.ivrDone(t.call)
	case tPatience:
		t.call.patience = nil
		if t.call.waiting {
			p.stats.CallsAbandoned++
			p.clearCall(t.call, callbridge.CauseAbandoned)
		}
	case tTalk:
		t.call.talk = nil
		if ext := t.call.talkingOutsider(); ext != nil {
			p.leave(ext, callbridge.CauseNormal)
		}
	case tRing:
		t.party.ring = nil
		p.leave(t.party, callbridge.CauseNoAnswer)
	case tAnswer:
		t.party.answer = nil
		p.answer(t.party)
	case tWrapUp:
		p.dirty = true // the member may take calls again: dispatch
	}
}

// InjectCall places a specific inbound call from ani to dnis for tenantID and returns its
// PBXCallID. The call starts at now: its call_started comes from the next Advance(now), and
// it then goes through the IVR and its queue like an automatic call.
//
// tenantID may be empty when dnis is a DID (the DID names the tenant); dnis may be empty for
// the tenant's first DID. The call goes to the queue of the DID, or the tenant's first queue
// when dnis is not a DID. ani empty: a random caller with a name. data nil: random IVR
// answers; data empty but not nil: the IVR attaches nothing (no data_updated).
//
// Errors (*callbridge.Error; nothing changes): EInvalid for a malformed ani, dnis or data, or
// a DID of another tenant; ENotFound for an unknown tenant or an empty tenant with a dnis
// that is no DID; EConflict when the tenant has no queue.
func (p *PBX) InjectCall(now time.Time, tenantID callbridge.TenantID, ani, dnis string, data map[string]string) (string, error) {
	p.setNow(now)
	name := ""
	if ani != "" {
		if err := callbridge.CheckDialTarget("ani", ani); err != nil {
			return "", err
		}
	}
	if dnis != "" {
		if err := callbridge.CheckDialTarget("dnis", dnis); err != nil {
			return "", err
		}
	}
	if err := checkData(data); err != nil {
		return "", err
	}
	var tn *tenant
	var route *queue
	if q := p.didRoute[dnis]; dnis != "" && q != nil {
		if tenantID != "" && tenantID != q.tenant.id {
			return "", callbridge.Errorf(callbridge.EInvalid, "DID %s does not belong to tenant %s", dnis, tenantID)
		}
		tn, route = q.tenant, q
	} else {
		if tenantID == "" {
			return "", callbridge.Errorf(callbridge.ENotFound, "no tenant has DID %q", dnis)
		}
		tn = p.tenantBy[tenantID]
		if tn == nil {
			return "", callbridge.Errorf(callbridge.ENotFound, "unknown tenant %s", tenantID)
		}
		if len(tn.queues) == 0 {
			return "", callbridge.Errorf(callbridge.EConflict, "tenant %s has no queue", tenantID)
		}
		route = tn.queues[0]
		if dnis == "" && len(tn.dids) > 0 {
			dnis = tn.dids[0]
			route = p.didRoute[dnis]
		}
	}
	if ani == "" {
		ani, name = randomCaller(p.rng)
	}
	if data == nil {
		data = randomIVR(p.rng)
	}
	c := p.newCall(tn, callbridge.DirInbound, ani, name, dnis)
	c.route = route
	c.ivrData = cloneData(data)
	c.startTimer = p.schedule(0, tStart, nil, c, nil)
	return c.id, nil
}

// Snapshot returns a SwitchSnapshot event describing every call in progress (by PBXCallID
// order) and every queue membership (by device, then queue, in directory order). It changes
// nothing; Time is now.
func (p *PBX) Snapshot(now time.Time) callbridge.SwitchEvent {
	if p.now.After(now) {
		now = p.now
	}
	snap := &callbridge.Snapshot{Calls: []callbridge.SnapshotCall{}, Members: []callbridge.SnapshotMember{}}
	var calls []*call
	for _, c := range p.calls {
		if c.started {
			calls = append(calls, c)
		}
	}
	slices.SortFunc(calls, func(a, b *call) int { return cmp.Compare(a.seq, b.seq) })
	for _, c := range calls {
		sc := callbridge.SnapshotCall{
			PBXCallID: c.id, Tenant: c.tenant.id, Direction: c.dir,
			ANI: c.ani, ANIName: c.aniName, DNIS: c.dnis,
			Data: cloneData(c.data), ConsultOf: c.consultOf,
			Parties: make([]callbridge.SnapshotParty, 0, len(c.parties)),
		}
		if c.queue != nil {
			sc.Queue = c.queue.name
		}
		for _, pa := range c.parties {
			sc.Parties = append(sc.Parties, callbridge.SnapshotParty{
				Device: pa.id, Leg: pa.leg, State: pa.state, External: pa.dev == nil,
			})
		}
		if c.waiting {
			// The call waits at the queue's device (CSTA: a queued connection).
			sc.Parties = append(sc.Parties, callbridge.SnapshotParty{Device: callbridge.DeviceID(c.queue.name), State: callbridge.ConnQueued})
		}
		snap.Calls = append(snap.Calls, sc)
	}
	for _, d := range p.devices {
		for _, q := range p.queues {
			if m := d.member(q); m != nil {
				snap.Members = append(snap.Members, callbridge.SnapshotMember{
					Device: d.id, Queue: q.name, Paused: m.paused, Reason: m.reason, Status: d.status(),
				})
			}
		}
	}
	return callbridge.SwitchEvent{Type: callbridge.SwitchSnapshot, Time: now, Snapshot: snap}
}

// status is the device state a switch would report.
func (d *device) status() callbridge.DeviceStatus {
	if d.unregistered {
		return callbridge.DeviceUnavailable
	}
	if len(d.conns) == 0 {
		return callbridge.DeviceIdle
	}
	for _, pa := range d.conns {
		if pa.state != callbridge.ConnAlerting {
			return callbridge.DeviceInUse
		}
	}
	return callbridge.DeviceRinging
}

// member returns d's membership of q, or nil.
func (d *device) member(q *queue) *member {
	for _, m := range d.members {
		if m.queue == q {
			return m
		}
	}
	return nil
}

// emit appends ev, stamped with the current time, to the events of the operation.
func (p *PBX) emit(ev callbridge.SwitchEvent) {
	ev.Time = p.now
	p.out = append(p.out, ev)
	p.stats.Events++
}

// newCall creates a call (not yet started) with the next PBXCallID.
func (p *PBX) newCall(tn *tenant, dir callbridge.Direction, ani, aniName, dnis string) *call {
	p.callSeq++
	c := &call{
		id: fmt.Sprintf("sim-%06d", p.callSeq), seq: p.callSeq, tenant: tn, dir: dir,
		ani: ani, aniName: aniName, dnis: dnis,
	}
	p.calls[c.id] = c
	return c
}

// cloneData returns a copy of m (nil for an empty m).
func cloneData(m map[string]string) map[string]string {
	if len(m) == 0 {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}
