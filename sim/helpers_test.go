package sim_test

import (
	"cmp"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"reflect"
	"regexp"
	"slices"
	"testing"
	"time"

	"github.com/callbridge/callbridge"
	"github.com/callbridge/callbridge/sim"
)

var t0 = time.Date(2026, 11, 21, 9, 0, 0, 0, time.UTC)

// testDirectory is two tenants like the Asterisk fixtures: acme (agents 1001-1004, queues
// acme-support and acme-sales, two DIDs) and globex (agents 2001-2003, globex-sales).
func testDirectory() callbridge.Directory {
	return callbridge.Directory{Tenants: []callbridge.TenantConfig{
		{
			ID: "acme", Name: "ACME", DIDs: []string{"18005550100", "18005550101"},
			Queues: []callbridge.QueueConfig{{Name: "acme-support"}, {Name: "acme-sales"}},
			Users: []callbridge.UserConfig{
				{Username: "alice", Device: "1001", Queues: []callbridge.QueueName{"acme-support", "acme-sales"}},
				{Username: "bob", Device: "1002", Queues: []callbridge.QueueName{"acme-support"}},
				{Username: "carol", Device: "1003", Queues: []callbridge.QueueName{"acme-support"}},
				{Username: "dave", Device: "1004"},
				{Username: "admin", Role: callbridge.RoleAdmin},
			},
		},
		{
			ID: "globex", Name: "Globex", DIDs: []string{"18005550200"},
			Queues: []callbridge.QueueConfig{{Name: "globex-sales"}},
			Users: []callbridge.UserConfig{
				{Username: "gina", Device: "2001"},
				{Username: "hank", Device: "2002"},
				{Username: "iris", Device: "2003"},
			},
		},
	}}
}

// harness drives a PBX with a fake clock and checks every event against a shadow model
// built from the events alone.
type harness struct {
	t      testing.TB
	p      *sim.PBX
	now    time.Time
	shadow *shadow
	log    []callbridge.SwitchEvent
}

func newHarness(t testing.TB, cfg sim.Config) *harness {
	t.Helper()
	if cfg.Directory.Tenants == nil {
		cfg.Directory = testDirectory()
	}
	if cfg.Start.IsZero() {
		cfg.Start = t0
	}
	if cfg.Rand == nil {
		cfg.Rand = rand.New(rand.NewPCG(7, 11))
	}
	h := &harness{t: t, p: sim.NewPBX(cfg), now: cfg.Start, shadow: newShadow(cfg.Directory)}
	h.record(h.p.Snapshot(h.now))
	return h
}

// record checks evs against the shadow model and keeps them.
func (h *harness) record(evs ...callbridge.SwitchEvent) {
	h.t.Helper()
	for _, ev := range evs {
		if err := h.shadow.apply(ev); err != nil {
			h.t.Fatalf("event %d %s: %v\nevent: %+v\nlast events:\n%s", len(h.log), ev.Type, err, ev, h.tail(12))
		}
		h.log = append(h.log, ev)
	}
}

func (h *harness) tail(n int) string {
	s := ""
	for _, ev := range h.log[max(0, len(h.log)-n):] {
		s += fmt.Sprintf("  %s %s %s dev=%s q=%s cause=%s\n", ev.Time.Format("15:04:05.000"), ev.Type, ev.PBXCallID, ev.Device, ev.Queue, ev.Cause)
	}
	return s
}

// advance moves the clock by d and runs the timers due.
func (h *harness) advance(d time.Duration) []callbridge.SwitchEvent {
	h.t.Helper()
	h.now = h.now.Add(d)
	evs := h.p.Advance(h.now)
	h.record(evs...)
	return evs
}

// step advances to the next deadline (at most limit ahead) and returns its events.
func (h *harness) step(limit time.Duration) []callbridge.SwitchEvent {
	h.t.Helper()
	next := h.p.NextDeadline()
	if next.IsZero() || next.Sub(h.now) > limit {
		return h.advance(limit)
	}
	return h.advance(next.Sub(h.now))
}

// until steps through timers until an event matches f, for at most limit of simulated time.
func (h *harness) until(limit time.Duration, f func(callbridge.SwitchEvent) bool) callbridge.SwitchEvent {
	h.t.Helper()
	end := h.now.Add(limit)
	for !h.now.After(end) {
		for _, ev := range h.step(end.Sub(h.now) + time.Nanosecond) {
			if f(ev) {
				return ev
			}
		}
	}
	h.t.Fatalf("no matching event within %s\nlast events:\n%s", limit, h.tail(15))
	return callbridge.SwitchEvent{}
}

// exec runs due timers, then cmd; events are checked and recorded.
func (h *harness) exec(cmd callbridge.SwitchCommand) ([]callbridge.SwitchEvent, error) {
	h.t.Helper()
	h.advance(0)
	if cmd.Tenant == "" {
		cmd.Tenant = "acme"
	}
	evs, err := h.p.Execute(h.now, cmd)
	h.record(evs...)
	return evs, err
}

func (h *harness) mustExec(cmd callbridge.SwitchCommand) []callbridge.SwitchEvent {
	h.t.Helper()
	evs, err := h.exec(cmd)
	if err != nil {
		h.t.Fatalf("%s: %v", cmd.Type, err)
	}
	return evs
}

func (h *harness) press(dev callbridge.DeviceID, b sim.Button) ([]callbridge.SwitchEvent, error) {
	h.t.Helper()
	h.advance(0)
	evs, err := h.p.PressButton(h.now, dev, b)
	h.record(evs...)
	return evs, err
}

func (h *harness) mustPress(dev callbridge.DeviceID, b sim.Button) []callbridge.SwitchEvent {
	h.t.Helper()
	evs, err := h.press(dev, b)
	if err != nil {
		h.t.Fatalf("press %s on %s: %v", b, dev, err)
	}
	return evs
}

func (h *harness) inject(tenant callbridge.TenantID, ani, dnis string, data map[string]string) string {
	h.t.Helper()
	id, err := h.p.InjectCall(h.now, tenant, ani, dnis, data)
	if err != nil {
		h.t.Fatalf("InjectCall: %v", err)
	}
	return id
}

// ready makes dev an unpaused member of queues.
func (h *harness) ready(dev callbridge.DeviceID, queues ...callbridge.QueueName) {
	h.t.Helper()
	tenant := callbridge.TenantID("acme")
	if dev[0] == '2' {
		tenant = "globex"
	}
	h.mustExec(callbridge.SwitchCommand{Type: callbridge.SwitchSetMemberState, Tenant: tenant, Device: dev,
		Action: callbridge.MemberAdd, Queues: queues})
}

// answered injects a call to acme-support and lets dev (ready) answer it; it returns the id.
func (h *harness) answered(dev callbridge.DeviceID) string {
	h.t.Helper()
	id := h.inject("acme", "+15551230001", "18005550100", nil)
	h.until(time.Minute, isEvent(callbridge.SwitchAlerting, id, dev))
	h.mustExec(callbridge.SwitchCommand{Type: callbridge.SwitchAnswerCall, PBXCallID: id, Device: dev})
	return id
}

// checkSnapshot compares the PBX's snapshot with the shadow model.
func (h *harness) checkSnapshot() {
	h.t.Helper()
	if err := h.shadow.compare(h.p.Snapshot(h.now)); err != nil {
		h.t.Fatalf("snapshot differs from the events: %v\nlast events:\n%s", err, h.tail(15))
	}
}

func isEvent(typ callbridge.SwitchEventType, id string, dev callbridge.DeviceID) func(callbridge.SwitchEvent) bool {
	return func(ev callbridge.SwitchEvent) bool {
		return ev.Type == typ && (id == "" || ev.PBXCallID == id) && (dev == "" || ev.Device == dev)
	}
}

// types returns "type device" of each event, for compact sequence assertions.
func types(evs []callbridge.SwitchEvent) []string {
	var out []string
	for _, ev := range evs {
		s := string(ev.Type)
		if ev.Device != "" {
			s += " " + string(ev.Device)
		}
		if ev.Cause != "" {
			s += " (" + string(ev.Cause) + ")"
		}
		out = append(out, s)
	}
	return out
}

func wantTypes(t testing.TB, evs []callbridge.SwitchEvent, want ...string) {
	t.Helper()
	if got := types(evs); !slices.Equal(got, want) {
		t.Fatalf("events:\n got %q\nwant %q", got, want)
	}
}

func wantCode(t testing.TB, err error, code string) {
	t.Helper()
	var e *callbridge.Error
	if !errors.As(err, &e) || e.Code != code {
		t.Fatalf("error = %v, want a *callbridge.Error with code %s", err, code)
	}
}

// ---- the shadow model: what a consumer of the events knows ----

type shadowParty struct {
	dev      callbridge.DeviceID
	leg      string
	state    callbridge.ConnectionState
	external bool
}

type shadowCall struct {
	id        string
	tenant    callbridge.TenantID
	dir       callbridge.Direction
	ani, dnis string
	aniName   string
	data      map[string]string
	consultOf string
	queue     callbridge.QueueName
	waiting   bool
	parties   []*shadowParty
}

func (c *shadowCall) party(d callbridge.DeviceID) *shadowParty {
	for _, p := range c.parties {
		if p.dev == d {
			return p
		}
	}
	return nil
}

func (c *shadowCall) remove(d callbridge.DeviceID) {
	c.parties = slices.DeleteFunc(c.parties, func(p *shadowParty) bool { return p.dev == d })
}

type memberKey struct {
	dev   callbridge.DeviceID
	queue callbridge.QueueName
}

type shadow struct {
	agents  map[callbridge.DeviceID]callbridge.TenantID
	queues  map[callbridge.QueueName]callbridge.TenantID
	calls   map[string]*shadowCall
	ended   map[string]bool
	started int
	members map[memberKey]callbridge.SnapshotMember
	last    time.Time
}

var callIDRe = regexp.MustCompile(`^sim-[0-9]{6,}$`)

func newShadow(dir callbridge.Directory) *shadow {
	s := &shadow{
		agents: map[callbridge.DeviceID]callbridge.TenantID{}, queues: map[callbridge.QueueName]callbridge.TenantID{},
		calls: map[string]*shadowCall{}, ended: map[string]bool{}, members: map[memberKey]callbridge.SnapshotMember{},
	}
	for _, t := range dir.Tenants {
		for _, u := range t.Users {
			if _, dup := s.agents[u.Device]; u.Device != "" && !dup {
				s.agents[u.Device] = t.ID
			}
		}
		for _, q := range t.Queues {
			if _, dup := s.queues[q.Name]; !dup {
				s.queues[q.Name] = t.ID
			}
		}
	}
	return s
}

// active counts the live connections of agent device d, and reports whether a second one
// is allowed (a held call plus its consultation).
func (s *shadow) checkDevice(d callbridge.DeviceID) error {
	if _, ok := s.agents[d]; !ok {
		return nil
	}
	var in []*shadowCall
	for _, c := range s.calls {
		if p := c.party(d); p != nil && p.state.Active() {
			in = append(in, c)
		}
	}
	switch len(in) {
	case 0, 1:
		return nil
	case 2:
		a, b := in[0], in[1]
		if b.consultOf == a.id {
			a, b = b, a
		}
		if a.consultOf == b.id && b.party(d).state == callbridge.ConnHeld {
			return nil
		}
	}
	return fmt.Errorf("device %s is in %d calls", d, len(in))
}

func (s *shadow) apply(ev callbridge.SwitchEvent) error {
	if ev.Time.Before(s.last) {
		return fmt.Errorf("time goes back: %s after %s", ev.Time, s.last)
	}
	s.last = ev.Time
	switch ev.Type {
	case callbridge.SwitchSnapshot:
		if ev.Snapshot == nil {
			return errors.New("snapshot without Snapshot")
		}
		s.load(ev.Snapshot)
		return nil
	case callbridge.SwitchLinkUp, callbridge.SwitchLinkDown:
		return nil
	case callbridge.SwitchDeviceState:
		if s.agents[ev.Device] != ev.Tenant || ev.Tenant == "" || ev.DeviceStatus == "" {
			return fmt.Errorf("device_state for device %q tenant %q status %q", ev.Device, ev.Tenant, ev.DeviceStatus)
		}
		return nil
	case callbridge.SwitchMemberState:
		if s.agents[ev.Device] != ev.Tenant || s.queues[ev.Queue] != ev.Tenant || ev.Tenant == "" {
			return fmt.Errorf("member_state for device %q queue %q tenant %q", ev.Device, ev.Queue, ev.Tenant)
		}
		k := memberKey{ev.Device, ev.Queue}
		if !ev.LoggedOn {
			if _, ok := s.members[k]; !ok {
				return errors.New("removed member that is no member")
			}
			delete(s.members, k)
			return nil
		}
		if !ev.Paused && ev.Reason != "" {
			return errors.New("unpaused member with a reason")
		}
		s.members[k] = callbridge.SnapshotMember{Device: ev.Device, Queue: ev.Queue, Paused: ev.Paused, Reason: ev.Reason}
		return nil
	}
	if !callIDRe.MatchString(ev.PBXCallID) {
		return fmt.Errorf("bad PBXCallID %q", ev.PBXCallID)
	}
	if ev.Tenant == "" {
		return errors.New("call event without tenant")
	}
	if ev.Type == callbridge.SwitchCallStarted {
		if s.calls[ev.PBXCallID] != nil || s.ended[ev.PBXCallID] {
			return errors.New("call started twice")
		}
		if ev.Device == "" || ev.Leg == "" || ev.Direction == "" {
			return errors.New("call_started without device, leg or direction")
		}
		c := &shadowCall{id: ev.PBXCallID, tenant: ev.Tenant, dir: ev.Direction, ani: ev.ANI, aniName: ev.ANIName,
			dnis: ev.DNIS, data: maps.Clone(ev.Data), consultOf: ev.ConsultOf}
		st := callbridge.ConnInitiated
		if ev.Direction == callbridge.DirInbound {
			if !ev.External || callbridge.DeviceID(ev.ANI) != ev.Device || ev.DNIS == "" && ev.ANI == "" {
				return errors.New("inbound call_started must name the outside caller")
			}
			st = callbridge.ConnConnected
		} else if s.agents[ev.Device] != ev.Tenant {
			return fmt.Errorf("%s call_started from %s, which is no agent of %s", ev.Direction, ev.Device, ev.Tenant)
		}
		if ev.ConsultOf != "" && s.calls[ev.ConsultOf] == nil {
			return fmt.Errorf("consultation of unknown call %s", ev.ConsultOf)
		}
		c.parties = append(c.parties, &shadowParty{dev: ev.Device, leg: ev.Leg, state: st, external: ev.External})
		s.calls[c.id] = c
		s.started++
		return s.checkDevice(ev.Device)
	}
	c := s.calls[ev.PBXCallID]
	if c == nil {
		return fmt.Errorf("event for a call that is not in progress (ended=%v)", s.ended[ev.PBXCallID])
	}
	if c.tenant != ev.Tenant {
		return fmt.Errorf("tenant %s, call is %s", ev.Tenant, c.tenant)
	}
	p := c.party(ev.Device)
	needParty := func(states ...callbridge.ConnectionState) error {
		if p == nil {
			return fmt.Errorf("device %q has no connection", ev.Device)
		}
		if p.leg != ev.Leg {
			return fmt.Errorf("leg %q, want %q", ev.Leg, p.leg)
		}
		if !slices.Contains(states, p.state) {
			return fmt.Errorf("device %s is %s, want %v", ev.Device, p.state, states)
		}
		return nil
	}
	switch ev.Type {
	case callbridge.SwitchDataUpdated:
		if len(ev.Data) == 0 {
			return errors.New("data_updated without data")
		}
		if c.data == nil {
			c.data = map[string]string{}
		}
		maps.Copy(c.data, ev.Data)
	case callbridge.SwitchQueued:
		if c.waiting || s.queues[ev.Queue] != c.tenant {
			return fmt.Errorf("queued in %q while waiting=%v", ev.Queue, c.waiting)
		}
		c.waiting, c.queue = true, ev.Queue
	case callbridge.SwitchDequeued:
		if !c.waiting || ev.Queue != c.queue || (ev.Cause != "" && ev.Cause != callbridge.CauseAbandoned) {
			return fmt.Errorf("dequeued from %q cause %q while waiting=%v in %q", ev.Queue, ev.Cause, c.waiting, c.queue)
		}
		c.waiting = false
	case callbridge.SwitchAlerting:
		if ev.Queue != "" && (!c.waiting || ev.Queue != c.queue) {
			return errors.New("queue offer of a call that does not wait in that queue")
		}
		if p != nil {
			if err := needParty(callbridge.ConnInitiated); err != nil {
				return err
			}
		} else {
			if ev.Leg == "" {
				return errors.New("alerting without leg")
			}
			p = &shadowParty{dev: ev.Device, leg: ev.Leg, external: ev.External}
			c.parties = append(c.parties, p)
		}
		if !ev.External && s.agents[ev.Device] != c.tenant {
			return fmt.Errorf("alerting at %s, no agent of %s", ev.Device, c.tenant)
		}
		p.state = callbridge.ConnAlerting
		return s.checkDevice(ev.Device)
	case callbridge.SwitchConnected:
		if err := needParty(callbridge.ConnAlerting, callbridge.ConnInitiated); err != nil {
			return err
		}
		if c.waiting {
			return errors.New("connected while still queued")
		}
		p.state = callbridge.ConnConnected
	case callbridge.SwitchHeld:
		if err := needParty(callbridge.ConnConnected); err != nil {
			return err
		}
		p.state = callbridge.ConnHeld
	case callbridge.SwitchRetrieved:
		if err := needParty(callbridge.ConnHeld); err != nil {
			return err
		}
		p.state = callbridge.ConnConnected
		return s.checkDevice(ev.Device)
	case callbridge.SwitchConnectionCleared:
		states := []callbridge.ConnectionState{callbridge.ConnConnected, callbridge.ConnHeld, callbridge.ConnInitiated}
		if ev.Cause == callbridge.CauseRedirected {
			states = append(states, callbridge.ConnAlerting) // Redirect stops the ringing
		}
		if err := needParty(states...); err != nil {
			return err
		}
		if ev.Cause == "" {
			return errors.New("connection_cleared without cause")
		}
		c.remove(ev.Device)
	case callbridge.SwitchFailed:
		if ev.Cause == "" {
			return errors.New("failed without cause")
		}
		if p == nil {
			if ev.Cause != callbridge.CauseBusy || ev.Leg == "" {
				return errors.New("failed for a device that was never alerting")
			}
			return nil
		}
		if err := needParty(callbridge.ConnAlerting, callbridge.ConnInitiated); err != nil {
			return err
		}
		c.remove(ev.Device)
	case callbridge.SwitchTransferred, callbridge.SwitchConferenced:
		from := ev.TransferringDevice
		if ev.Type == callbridge.SwitchConferenced {
			from = ev.Device
		}
		fp := c.party(from)
		if fp == nil || ev.TransferredTo == "" {
			return fmt.Errorf("%s by %q (no connection) to %q", ev.Type, from, ev.TransferredTo)
		}
		if ev.ConsultPBXCallID == "" {
			if ev.Type == callbridge.SwitchConferenced {
				return errors.New("conferenced without consultation")
			}
			return nil
		}
		k := s.calls[ev.ConsultPBXCallID]
		if k == nil || k.consultOf != c.id {
			return fmt.Errorf("consultation %s is not in progress for %s", ev.ConsultPBXCallID, c.id)
		}
		if fp.state != callbridge.ConnHeld {
			return fmt.Errorf("%s is %s in the original call", from, fp.state)
		}
		tp := k.party(ev.TransferredTo)
		if tp == nil {
			return fmt.Errorf("target %s is not in the consultation", ev.TransferredTo)
		}
		k.remove(from)
		k.remove(tp.dev)
		c.parties = append(c.parties, tp)
		if ev.Type == callbridge.SwitchConferenced {
			if tp.state != callbridge.ConnConnected {
				return errors.New("conference with a target that is not connected")
			}
			fp.state = callbridge.ConnConnected
		}
	case callbridge.SwitchCallCleared:
		if c.waiting {
			return errors.New("call_cleared while queued (no dequeued)")
		}
		if ev.Cause == "" {
			return errors.New("call_cleared without cause")
		}
		delete(s.calls, c.id)
		s.ended[c.id] = true
	default:
		return fmt.Errorf("unexpected event type %q", ev.Type)
	}
	return nil
}

// load takes the state of a snapshot, as the engine does after a (re)connect. A call that
// waits in its queue has a queued party at the queue's device.
func (s *shadow) load(snap *callbridge.Snapshot) {
	s.calls = map[string]*shadowCall{}
	for _, sc := range snap.Calls {
		c := &shadowCall{id: sc.PBXCallID, tenant: sc.Tenant, dir: sc.Direction, ani: sc.ANI, aniName: sc.ANIName,
			dnis: sc.DNIS, data: maps.Clone(sc.Data), consultOf: sc.ConsultOf, queue: sc.Queue}
		for _, p := range sc.Parties {
			if p.State == callbridge.ConnQueued {
				c.waiting = true
				continue
			}
			c.parties = append(c.parties, &shadowParty{dev: p.Device, leg: p.Leg, state: p.State, external: p.External})
		}
		s.calls[c.id] = c
	}
	s.members = map[memberKey]callbridge.SnapshotMember{}
	for _, m := range snap.Members {
		m.Status = ""
		s.members[memberKey{m.Device, m.Queue}] = m
	}
}

// compare checks a snapshot against the shadow.
func (s *shadow) compare(ev callbridge.SwitchEvent) error {
	snap := ev.Snapshot
	var want []callbridge.SnapshotCall
	for _, c := range s.calls {
		sc := callbridge.SnapshotCall{PBXCallID: c.id, Tenant: c.tenant, Direction: c.dir, ANI: c.ani, ANIName: c.aniName,
			DNIS: c.dnis, Queue: c.queue, Data: c.data, ConsultOf: c.consultOf}
		if len(sc.Data) == 0 {
			sc.Data = nil
		}
		for _, p := range c.parties {
			sc.Parties = append(sc.Parties, callbridge.SnapshotParty{Device: p.dev, Leg: p.leg, State: p.state, External: p.external})
		}
		if c.waiting {
			sc.Parties = append(sc.Parties, callbridge.SnapshotParty{Device: callbridge.DeviceID(c.queue), State: callbridge.ConnQueued})
		}
		want = append(want, sc)
	}
	norm := func(cs []callbridge.SnapshotCall) []callbridge.SnapshotCall {
		cs = slices.Clone(cs)
		slices.SortFunc(cs, func(a, b callbridge.SnapshotCall) int { return cmp.Compare(a.PBXCallID, b.PBXCallID) })
		for i := range cs {
			ps := slices.Clone(cs[i].Parties)
			slices.SortFunc(ps, func(a, b callbridge.SnapshotParty) int { return cmp.Compare(a.Leg, b.Leg) })
			if len(ps) == 0 {
				ps = nil
			}
			cs[i].Parties = ps
		}
		return cs
	}
	got, exp := norm(snap.Calls), norm(want)
	if len(got) != len(exp) {
		return fmt.Errorf("%d calls, events say %d", len(got), len(exp))
	}
	for i := range got {
		if !reflect.DeepEqual(got[i], exp[i]) {
			return fmt.Errorf("call differs:\nsnapshot %+v\n  events %+v", got[i], exp[i])
		}
	}
	var gm []callbridge.SnapshotMember
	for _, m := range snap.Members {
		m.Status = ""
		gm = append(gm, m)
	}
	wm := slices.Collect(maps.Values(s.members))
	byKey := func(a, b callbridge.SnapshotMember) int {
		return cmp.Or(cmp.Compare(a.Device, b.Device), cmp.Compare(a.Queue, b.Queue))
	}
	slices.SortFunc(gm, byKey)
	slices.SortFunc(wm, byKey)
	if !slices.Equal(gm, wm) {
		return fmt.Errorf("members differ:\nsnapshot %+v\n  events %+v", gm, wm)
	}
	return nil
}
