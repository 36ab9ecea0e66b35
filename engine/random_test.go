package engine_test

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/callbridge/callbridge"
	"github.com/callbridge/callbridge/engine"
)

// TestRandomRun feeds long random, well-formed switch event sequences and commands (calls over
// a few agents of two tenants, interleaved, with transfers, consultations, conferences,
// phone pauses, switch echoes of the engine's own commands, timer ticks, snapshots, duplicates
// and events of unknown calls) and checks the model after every step. At the end a final
// empty snapshot must clear every call that was started, exactly once.
func TestRandomRun(t *testing.T) {
	steps := 4000
	if testing.Short() {
		steps = 500
	}
	for seed := uint64(1); seed <= 5; seed++ {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			t.Parallel()
			newSim(t, seed).run(steps)
		})
	}
}

// TestDeterministic: the same inputs give the same outputs (the engine iterates its maps in
// a fixed order wherever that shows).
func TestDeterministic(t *testing.T) {
	a, b := newSim(t, 42), newSim(t, 42)
	a.run(1500)
	b.run(1500)
	if len(a.outputs) != len(b.outputs) {
		t.Fatalf("%d outputs, then %d", len(a.outputs), len(b.outputs))
	}
	for i := range a.outputs {
		if !reflect.DeepEqual(a.outputs[i], b.outputs[i]) {
			t.Fatalf("output %d differs:\n%+v\n%+v", i, a.outputs[i], b.outputs[i])
		}
	}
}

var simDevices = map[callbridge.TenantID][]callbridge.DeviceID{
	acme:   {"1001", "1002", "1003", "1004", "1010"},
	globex: {"2001", "2002"},
}

var simQueues = map[callbridge.TenantID][]callbridge.QueueName{
	acme:   {"acme-support", "acme-load", "acme-vip"},
	globex: {"globex-sales"},
}

var simAgents = map[callbridge.TenantID][]callbridge.AgentID{
	acme:   {"alice", "bob", "carol", "dave", "judy"},
	globex: {"gina", "hank"},
}

var simTenants = []callbridge.TenantID{acme, globex}

type simCall struct {
	pbx       string
	tenant    callbridge.TenantID
	dnis      string
	parties   map[callbridge.DeviceID]callbridge.ConnectionState
	external  map[callbridge.DeviceID]bool
	consultOf string
	from      callbridge.DeviceID // a consultation's consulting device
	queue     callbridge.DeviceID // the queue the call waits in (a party in state queued)
}

// setQueue makes c wait in queue q ("": in none).
func (c *simCall) setQueue(q callbridge.DeviceID) {
	if c.queue != "" {
		delete(c.parties, c.queue)
	}
	c.queue = q
	if q != "" {
		c.parties[q] = callbridge.ConnQueued
	}
}

type simMember struct {
	paused bool
	reason string
}

// sim is a toy switch with a checker.
type sim struct {
	t       *testing.T
	rng     *rand.Rand
	f       *fixture
	calls   []*simCall
	members map[callbridge.DeviceID]map[callbridge.QueueName]simMember
	pending []callbridge.SwitchEvent // echoes of engine commands, not yet delivered
	n       int
	last    callbridge.SwitchEvent
	trace   func(step int, line string) // when set, sees every switch event (to debug a seed)
	outputs []engine.Output             // every output, in order
	step    int
	// onStep, when set, runs after every step of run (after the checks).
	onStep func(step int)
	// keyPrefix starts every idempotency key of the commands.
	keyPrefix string

	// checker
	cleared map[callbridge.CallID]int
	started map[callbridge.CallID]bool
	counts  map[callbridge.EventType]int
	// on: the agents with a connection to each call, as the events showed it at the end of
	// the last step; stepOn as the events of the current step show it.
	on, stepOn map[callbridge.CallID][]callbridge.AgentID
}

func newSim(t *testing.T, seed uint64) *sim {
	return &sim{
		t:       t,
		rng:     rand.New(rand.NewPCG(seed, seed*7919)),
		f:       newFixture(t),
		members: map[callbridge.DeviceID]map[callbridge.QueueName]simMember{},
		cleared: map[callbridge.CallID]int{},
		started: map[callbridge.CallID]bool{},
		counts:  map[callbridge.EventType]int{},
		on:      map[callbridge.CallID][]callbridge.AgentID{},
	}
}

func pick[T any](r *rand.Rand, xs []T) T { return xs[r.IntN(len(xs))] }

func (s *sim) chance(p float64) bool { return s.rng.Float64() < p }

func (s *sim) run(steps int) {
	actions := []struct {
		weight int
		do     func()
	}{
		{8, s.newInbound},
		{4, s.queue},
		{2, s.dequeue},
		{10, s.alert},
		{10, s.connect},
		{4, s.holdOrRetrieve},
		{3, s.fail},
		{4, s.clearConnection},
		{5, s.clearCall},
		{2, s.blindTransfer},
		{3, s.startConsultation},
		{3, s.completeConsultation},
		{2, s.dataUpdate},
		{4, s.memberState},
		{4, s.echo},
		{6, s.command},
		{5, s.tick},
		{1, s.snapshot},
		{2, s.garbage},
	}
	total := 0
	for _, a := range actions {
		total += a.weight
	}
	for i := 0; i < steps; i++ {
		s.step = i
		s.f.wait(time.Duration(s.rng.IntN(3000)) * time.Millisecond)
		n := s.rng.IntN(total)
		for _, a := range actions {
			if n < a.weight {
				a.do()
				break
			}
			n -= a.weight
		}
		s.checkState(i)
		if s.onStep != nil {
			s.onStep(i)
		}
	}
	// The end: deliver the echoes, let every timer run, then the switch is empty.
	for len(s.pending) > 0 {
		s.echo()
	}
	s.f.wait(time.Hour)
	s.feedOut(s.f.tick())
	for _, tn := range simTenants {
		for _, a := range s.f.e.Agents(tn) {
			if a.State == callbridge.AgentWorkingAfterCall {
				s.t.Fatalf("%s still in wrap-up an hour later: %+v", a.ID, a)
			}
		}
	}
	s.calls = nil
	clear(s.members)
	s.send(callbridge.SwitchEvent{Type: callbridge.SwitchSnapshot, Snapshot: &callbridge.Snapshot{}})
	s.checkState(steps)
	for _, tn := range simTenants {
		if cs := s.f.e.Calls(tn); len(cs) != 0 {
			s.t.Fatalf("calls left after the final snapshot: %+v", cs)
		}
		for _, a := range s.f.e.Agents(tn) {
			if a.State != callbridge.AgentLoggedOut {
				s.t.Fatalf("agent after the final snapshot: %+v", a)
			}
		}
	}
	for id := range s.started {
		if s.cleared[id] != 1 {
			s.t.Fatalf("call %s cleared %d times", id, s.cleared[id])
		}
	}
	if steps >= 2000 && (len(s.started) < steps/20 || s.counts[callbridge.EventCallTransferred] == 0 || s.counts[callbridge.EventCallConferenced] == 0 ||
		s.counts[callbridge.EventCallDelivered] < steps/20 || s.counts[callbridge.EventAgentStateChanged] < steps/40) {
		s.t.Fatalf("the run did not exercise enough: %d calls, events %v", len(s.started), s.counts)
	}
	s.t.Logf("%d calls, events %v", len(s.started), s.counts)
}

// send feeds a switch event and checks its output.
func (s *sim) send(ev callbridge.SwitchEvent) {
	if s.trace != nil {
		s.trace(s.step, fmt.Sprintf("%s %s dev=%s tdev=%s to=%s consult=%s consultOf=%s", ev.Type, ev.PBXCallID, ev.Device, ev.TransferringDevice, ev.TransferredTo, ev.ConsultPBXCallID, ev.ConsultOf))
	}
	s.last = ev
	s.feedOut(s.f.ev(ev))
}

// feedOut checks an output and turns its member-state commands into switch echoes.
func (s *sim) feedOut(out engine.Output) {
	s.t.Helper()
	checkOutput(s.t, out)
	s.outputs = append(s.outputs, out)
	s.stepOn = map[callbridge.CallID][]callbridge.AgentID{}
	defer func() { maps.Copy(s.on, s.stepOn) }()
	for _, ev := range out.Events {
		s.counts[ev.Type]++
		if !ev.Type.IsCall() {
			if ev.Type == callbridge.EventAgentStateChanged {
				a := agentData(ev)
				if a.State == a.PreviousState && a.PreviousState != callbridge.AgentNotReady &&
					(a.State != callbridge.AgentBusy && a.State != callbridge.AgentWorkingAfterCall || a.NextState == "") {
					// Only a new next state (during a call or wrap-up) repeats the state.
					s.t.Fatalf("state_changed without a change: %+v", a)
				}
			}
			continue
		}
		ce := callData(ev)
		if s.cleared[ev.CallID] > 0 {
			s.t.Fatalf("%s for call %s after its call.cleared", ev.Type, ev.CallID)
		}
		s.started[ev.CallID] = true
		switch ev.Type {
		case callbridge.EventCallCleared:
			s.cleared[ev.CallID]++
			if len(ce.Connections) != 0 || ce.EndedAt.IsZero() || ce.Cause == "" {
				s.t.Fatalf("call.cleared = %+v", ce)
			}
		case callbridge.EventCallDelivered:
			if ce.ANI == "" || ce.DNIS == "" || ce.AttachedData["IVR_REASON"] == "" || ce.Device == "" {
				s.t.Fatalf("call.delivered without ANI/DNIS/attached data: %+v", ce)
			}
		}
		s.checkAudience(ev, ce)
	}
	for _, c := range out.Commands {
		if c.Type != callbridge.SwitchSetMemberState {
			s.t.Fatalf("the engine output a %s by itself", c.Type)
		}
		s.pending = append(s.pending, s.echoesOf(c)...)
	}
}

// checkAudience checks who receives a call event: exactly the agents with a connection to
// the call after it, plus those who had one before the event's step and lost it (their last
// event of the call); call.disposition_set only the agent who set it.
func (s *sim) checkAudience(ev callbridge.Event, ce *callbridge.CallEvent) {
	s.t.Helper()
	now := []callbridge.AgentID{}
	for _, cn := range ce.Connections {
		if cn.Agent != "" && cn.State != callbridge.ConnFailed && !slices.Contains(now, cn.Agent) {
			now = append(now, cn.Agent)
		}
	}
	if ev.Type == callbridge.EventCallFailed && ce.Agent != "" && !slices.Contains(ev.Audience, ce.Agent) {
		s.t.Fatalf("call.failed of %s does not reach them: %v", ce.Agent, ev.Audience)
	}
	before := s.on[ev.CallID]
	if ev.Type == callbridge.EventCallDispositionSet {
		if !slices.Equal(ev.Audience, []callbridge.AgentID{ce.Agent}) {
			s.t.Fatalf("disposition_set of %s goes to %v", ce.Agent, ev.Audience)
		}
		return
	}
	for _, a := range before {
		if !slices.Contains(ev.Audience, a) {
			s.t.Fatalf("%s: agent %s, on the call before this step, is not in the audience %v", ev.Type, a, ev.Audience)
		}
	}
	for _, a := range ev.Audience {
		if !slices.Contains(now, a) && !slices.Contains(before, a) && !((ev.Type == callbridge.EventCallFailed || ev.Type == callbridge.EventCallDiverted) && ce.Agent == a) {
			s.t.Fatalf("%s: agent %s in the audience %v is not on the call (before %v, after %v)", ev.Type, a, ev.Audience, before, now)
		}
	}
	for _, a := range now {
		if !slices.Contains(ev.Audience, a) {
			s.t.Fatalf("%s: agent %s on the call but not in the audience %v", ev.Type, a, ev.Audience)
		}
	}
	if ev.Type == callbridge.EventCallConnectionCleared || ev.Type == callbridge.EventCallFailed {
		if ce.Agent != "" && !slices.Contains(ev.Audience, ce.Agent) {
			s.t.Fatalf("%s: the leaving agent %s is not in the audience %v", ev.Type, ce.Agent, ev.Audience)
		}
	}
	s.stepOn[ev.CallID] = now
}

// echoesOf is what the switch reports after carrying out a member-state command.
func (s *sim) echoesOf(c callbridge.SwitchCommand) []callbridge.SwitchEvent {
	var evs []callbridge.SwitchEvent
	qs := c.Queues
	if qs == nil {
		qs = slices.Sorted(maps.Keys(s.members[c.Device]))
	}
	for _, q := range qs {
		switch c.Action {
		case callbridge.MemberAdd:
			evs = append(evs, member(c.Device, q, true, c.Paused, c.Reason))
		case callbridge.MemberRemove:
			evs = append(evs, member(c.Device, q, false, false, ""))
		case callbridge.MemberPause:
			if _, ok := s.members[c.Device][q]; ok {
				evs = append(evs, member(c.Device, q, true, c.Paused, c.Reason))
			}
		}
	}
	return evs
}

// checkState checks the invariants of the model.
func (s *sim) checkState(step int) {
	s.t.Helper()
	active := map[callbridge.DeviceID]bool{}
	want := map[string]*simCall{}
	for _, c := range s.calls {
		if c.tenant != "" {
			want[c.pbx] = c
		}
	}
	got := 0
	for _, tn := range simTenants {
		for _, c := range s.f.e.Calls(tn) {
			got++
			// The engine's model is the switch's: the same calls, parties and states.
			sc := want[c.PBXCallID]
			if sc == nil || sc.tenant != c.Tenant {
				s.t.Fatalf("step %d: the engine has call %s (%s) that the switch has not", step, c.PBXCallID, c.Tenant)
			}
			parties := map[callbridge.DeviceID]callbridge.ConnectionState{}
			for _, cn := range c.Connections {
				parties[cn.Device] = cn.State
			}
			if !maps.Equal(parties, sc.parties) {
				s.t.Fatalf("step %d: call %s has %v, the switch %v", step, c.PBXCallID, parties, sc.parties)
			}
			s.started[c.ID] = true
			if c.Tenant != tn || c.AttachedData == nil {
				s.t.Fatalf("step %d: call %+v", step, c)
			}
			seen := map[callbridge.DeviceID]bool{}
			for _, cn := range c.Connections {
				queue := cn.State == callbridge.ConnQueued && slices.Contains(simQueues[tn], callbridge.QueueName(cn.Device)) && cn.Agent == "" && !cn.External
				if seen[cn.Device] || cn.Device == "" || !cn.State.Active() && !queue {
					s.t.Fatalf("step %d: bad connection %+v in %+v", step, cn, c)
				}
				seen[cn.Device] = true
				if queue {
					continue
				}
				active[cn.Device] = true
				wantAgent := callbridge.AgentID("")
				if i := slices.Index(simDevices[tn], cn.Device); i >= 0 && !cn.External {
					wantAgent = simAgents[tn][i]
				}
				if cn.Agent != wantAgent {
					s.t.Fatalf("step %d: connection %+v should have agent %q", step, cn, wantAgent)
				}
			}
		}
	}
	if got != len(want) {
		s.t.Fatalf("step %d: the engine has %d calls, the switch %d", step, got, len(want))
	}
	for _, tn := range simTenants {
		for _, a := range s.f.e.Agents(tn) {
			on := len(a.Queues) > 0
			switch {
			case a.State == callbridge.AgentBusy && !active[a.Device]:
				s.t.Fatalf("step %d: %s busy without an active connection", step, a.ID)
			case on && active[a.Device] && a.State != callbridge.AgentBusy:
				s.t.Fatalf("step %d: %s has an active connection but is %s", step, a.ID, a.State)
			case on == (a.State == callbridge.AgentLoggedOut):
				s.t.Fatalf("step %d: %s is %s with queues %v", step, a.ID, a.State, a.Queues)
			case a.WrapUpUntil.IsZero() == (a.State == callbridge.AgentWorkingAfterCall):
				s.t.Fatalf("step %d: %s is %s with WrapUpUntil %v", step, a.ID, a.State, a.WrapUpUntil)
			case a.State == callbridge.AgentNotReady && a.Reason == callbridge.ReasonWrapUp:
				s.t.Fatalf("step %d: %s shows callbridge's wrap_up pause as not_ready", step, a.ID)
			}
			snap, err := s.f.e.Snapshot(tn, a.ID)
			if err != nil {
				s.t.Fatal(err)
			}
			for _, c := range snap.Calls {
				if _, ok := c.Connection(a.Device); !ok {
					s.t.Fatalf("step %d: %s's snapshot has call %s without their device", step, a.ID, c.ID)
				}
			}
		}
	}
}

// Sim helpers.

func (s *sim) newPBX() string {
	s.n++
	return fmt.Sprintf("pbx-%d", s.n)
}

func (s *sim) randomCall() *simCall {
	if len(s.calls) == 0 {
		return nil
	}
	return pick(s.rng, s.calls)
}

// tenantCall returns a random call of a configured tenant, or nil.
func (s *sim) tenantCall() *simCall {
	var cs []*simCall
	for _, c := range s.calls {
		if c.tenant != "" {
			cs = append(cs, c)
		}
	}
	if len(cs) == 0 {
		return nil
	}
	return pick(s.rng, cs)
}

func (s *sim) byPBX(pbx string) *simCall {
	for _, c := range s.calls {
		if c.pbx == pbx {
			return c
		}
	}
	return nil
}

func (s *sim) drop(c *simCall) {
	s.calls = slices.DeleteFunc(s.calls, func(x *simCall) bool { return x == c })
}

// partyIn returns a random party of c in one of states (agents' devices only with agentsOnly).
func (s *sim) partyIn(c *simCall, agentsOnly bool, states ...callbridge.ConnectionState) (callbridge.DeviceID, bool) {
	var ds []callbridge.DeviceID
	for _, d := range slices.Sorted(maps.Keys(c.parties)) {
		if slices.Contains(states, c.parties[d]) && (!agentsOnly || !c.external[d]) {
			ds = append(ds, d)
		}
	}
	if len(ds) == 0 {
		return "", false
	}
	return pick(s.rng, ds), true
}

func (s *sim) data() map[string]string {
	d := map[string]string{"IVR_REASON": pick(s.rng, []string{"billing", "sales", "support"}), "CTI_TENANT": "x"}
	if s.chance(0.5) {
		d["IVR_ACCOUNT"] = ""
	} else {
		d["IVR_ACCOUNT"] = fmt.Sprint(s.rng.IntN(99999))
	}
	return d
}

// Actions.

func (s *sim) newInbound() {
	tn := pick(s.rng, simTenants)
	dnis := didAcme
	if tn == globex {
		dnis = didGlob
	}
	ani := callbridge.DeviceID(fmt.Sprintf("+1555%07d", s.rng.IntN(9999999)))
	c := &simCall{pbx: s.newPBX(), tenant: tn, dnis: dnis, parties: map[callbridge.DeviceID]callbridge.ConnectionState{ani: callbridge.ConnConnected},
		external: map[callbridge.DeviceID]bool{ani: true}}
	s.calls = append(s.calls, c)
	ev := callbridge.SwitchEvent{Type: callbridge.SwitchCallStarted, PBXCallID: c.pbx, Direction: callbridge.DirInbound,
		ANI: string(ani), DNIS: dnis, Device: ani, External: true, Data: s.data()}
	if s.chance(0.3) {
		ev.Tenant = tn
	}
	s.send(ev)
}

func (s *sim) queue() {
	if c := s.tenantCall(); c != nil && c.consultOf == "" {
		q := pick(s.rng, simQueues[c.tenant])
		c.setQueue(callbridge.DeviceID(q))
		s.send(queued(c.pbx, q))
	}
}

// dequeue: the call leaves its queue (answered elsewhere, timed out, or abandoned).
func (s *sim) dequeue() {
	c := s.tenantCall()
	if c == nil || c.queue == "" {
		return
	}
	ev := callbridge.SwitchEvent{Type: callbridge.SwitchDequeued, PBXCallID: c.pbx, Queue: callbridge.QueueName(c.queue)}
	if s.chance(0.3) {
		ev.Cause = callbridge.CauseAbandoned
	}
	c.setQueue("")
	s.send(ev)
}

func (s *sim) alert() {
	c := s.tenantCall()
	if c == nil {
		return
	}
	d := pick(s.rng, simDevices[c.tenant])
	if _, ok := c.parties[d]; ok {
		if s.chance(0.2) { // a duplicate
			s.send(alerting(c.pbx, d))
		}
		return
	}
	s.alertDevice(c, d)
}

func (s *sim) alertDevice(c *simCall, d callbridge.DeviceID) {
	c.parties[d] = callbridge.ConnAlerting
	ev := alerting(c.pbx, d)
	if s.chance(0.5) {
		ev.Queue = pick(s.rng, simQueues[c.tenant])
	}
	s.send(ev)
}

func (s *sim) connect() {
	c := s.tenantCall()
	if c == nil {
		return
	}
	if d, ok := s.partyIn(c, false, callbridge.ConnAlerting, callbridge.ConnInitiated); ok {
		c.parties[d] = callbridge.ConnConnected
		if !c.external[d] {
			c.setQueue("") // the queue handed the call over
		}
		s.send(callbridge.SwitchEvent{Type: callbridge.SwitchConnected, PBXCallID: c.pbx, Device: d, External: c.external[d]})
	}
}

func (s *sim) holdOrRetrieve() {
	c := s.tenantCall()
	if c == nil {
		return
	}
	if d, ok := s.partyIn(c, true, callbridge.ConnConnected); ok && s.chance(0.5) {
		c.parties[d] = callbridge.ConnHeld
		s.send(sev(callbridge.SwitchHeld, c.pbx, d))
	} else if d, ok := s.partyIn(c, true, callbridge.ConnHeld); ok {
		c.parties[d] = callbridge.ConnConnected
		s.send(sev(callbridge.SwitchRetrieved, c.pbx, d))
	}
}

func (s *sim) fail() {
	c := s.tenantCall()
	if c == nil {
		return
	}
	if d, ok := s.partyIn(c, false, callbridge.ConnAlerting); ok {
		delete(c.parties, d)
		s.send(callbridge.SwitchEvent{Type: callbridge.SwitchFailed, PBXCallID: c.pbx, Device: d, Cause: callbridge.CauseNoAnswer})
	} else if s.chance(0.5) { // rejected before ringing
		d := pick(s.rng, simDevices[c.tenant])
		if _, ok := c.parties[d]; !ok {
			s.send(callbridge.SwitchEvent{Type: callbridge.SwitchFailed, PBXCallID: c.pbx, Device: d, Cause: callbridge.CauseBusy})
		}
	}
}

func (s *sim) clearConnection() {
	c := s.tenantCall()
	if c == nil {
		return
	}
	if d, ok := s.partyIn(c, false, callbridge.ConnAlerting, callbridge.ConnConnected, callbridge.ConnHeld, callbridge.ConnInitiated); ok {
		s.clearParty(c, d)
	}
}

func (s *sim) clearParty(c *simCall, d callbridge.DeviceID) {
	delete(c.parties, d)
	s.send(callbridge.SwitchEvent{Type: callbridge.SwitchConnectionCleared, PBXCallID: c.pbx, Device: d, Cause: callbridge.CauseNormal})
}

func (s *sim) clearCall() {
	if c := s.randomCall(); c != nil {
		s.endCall(c, callbridge.CauseNormal)
	}
}

func (s *sim) endCall(c *simCall, cause callbridge.Cause) {
	s.drop(c)
	s.send(callbridge.SwitchEvent{Type: callbridge.SwitchCallCleared, PBXCallID: c.pbx, Cause: cause})
	if s.chance(0.1) {
		s.send(s.last) // a duplicate
	}
}

func (s *sim) blindTransfer() {
	c := s.tenantCall()
	if c == nil || c.consultOf != "" {
		return
	}
	if d, ok := s.partyIn(c, true, callbridge.ConnConnected); ok {
		s.blind(c, d, pick(s.rng, simDevices[c.tenant]))
	}
}

func (s *sim) blind(c *simCall, from, to callbridge.DeviceID) {
	delete(c.parties, from)
	s.send(callbridge.SwitchEvent{Type: callbridge.SwitchTransferred, PBXCallID: c.pbx, TransferringDevice: from, TransferredTo: to})
	if _, ok := c.parties[to]; !ok && s.chance(0.8) {
		s.alertDevice(c, to)
	}
}

func (s *sim) startConsultation() {
	c := s.tenantCall()
	if c == nil || c.consultOf != "" {
		return
	}
	if d, ok := s.partyIn(c, true, callbridge.ConnConnected); ok {
		s.consult(c, d, "")
	}
}

func (s *sim) consult(c *simCall, from callbridge.DeviceID, corr callbridge.CallID) {
	c.parties[from] = callbridge.ConnHeld
	s.send(sev(callbridge.SwitchHeld, c.pbx, from))
	q := &simCall{pbx: s.newPBX(), tenant: c.tenant, dnis: c.dnis, consultOf: c.pbx, from: from,
		parties: map[callbridge.DeviceID]callbridge.ConnectionState{from: callbridge.ConnInitiated}, external: map[callbridge.DeviceID]bool{}}
	s.calls = append(s.calls, q)
	s.send(callbridge.SwitchEvent{Type: callbridge.SwitchCallStarted, PBXCallID: q.pbx, Direction: callbridge.DirInternal, Device: from,
		ConsultOf: c.pbx, CorrelationID: string(corr), ANI: string(from), DNIS: "x", Data: map[string]string{"IVR_REASON": "consult"}})
	s.connectParty(q, from)
	if to := pick(s.rng, simDevices[c.tenant]); to != from && s.chance(0.9) {
		s.alertDevice(q, to)
	}
}

func (s *sim) connectParty(c *simCall, d callbridge.DeviceID) {
	c.parties[d] = callbridge.ConnConnected
	c.setQueue("")
	s.send(connected(c.pbx, d))
}

func (s *sim) completeConsultation() {
	var q *simCall
	for _, c := range s.calls {
		if c.consultOf != "" && s.byPBX(c.consultOf) != nil {
			q = c
			break
		}
	}
	if q == nil {
		return
	}
	s.complete(s.byPBX(q.consultOf), q, s.chance(0.5))
}

// complete finishes consultation q of call c as a transfer or a conference.
func (s *sim) complete(c, q *simCall, conference bool) {
	from := q.from
	_, inC := c.parties[from]
	_, inQ := q.parties[from]
	if !inC || !inQ {
		s.endCall(q, callbridge.CauseNormal)
		return
	}
	var to callbridge.DeviceID
	for _, d := range slices.Sorted(maps.Keys(q.parties)) {
		if d != from && q.parties[d] != callbridge.ConnQueued {
			if to == "" {
				to = d
			}
			if _, ok := c.parties[d]; !ok {
				c.parties[d] = q.parties[d]
			}
		}
	}
	s.drop(q)
	if conference {
		c.parties[from] = callbridge.ConnConnected
		s.send(callbridge.SwitchEvent{Type: callbridge.SwitchConferenced, PBXCallID: c.pbx, ConsultPBXCallID: q.pbx, Device: from, TransferredTo: to})
	} else {
		delete(c.parties, from)
		s.send(callbridge.SwitchEvent{Type: callbridge.SwitchTransferred, PBXCallID: c.pbx, ConsultPBXCallID: q.pbx, TransferringDevice: from, TransferredTo: to})
	}
	// Late events of the consultation find nothing.
	if s.chance(0.5) {
		s.send(cleared(q.pbx))
	}
}

func (s *sim) dataUpdate() {
	if c := s.randomCall(); c != nil {
		s.send(callbridge.SwitchEvent{Type: callbridge.SwitchDataUpdated, PBXCallID: c.pbx,
			Data: map[string]string{"IVR_ACCOUNT": pick(s.rng, []string{"", "1", "2"}), "IVR_LANG": pick(s.rng, []string{"", "en"})}})
	}
}

func (s *sim) setMember(ev callbridge.SwitchEvent) {
	m := s.members[ev.Device]
	if m == nil {
		m = map[callbridge.QueueName]simMember{}
		s.members[ev.Device] = m
	}
	reason := ev.Reason
	if !ev.Paused {
		reason = ""
	}
	switch {
	case ev.Queue == "" && !ev.LoggedOn:
		clear(m)
	case ev.Queue == "":
		for q := range m {
			m[q] = simMember{ev.Paused, reason}
		}
	case !ev.LoggedOn:
		delete(m, ev.Queue)
	default:
		m[ev.Queue] = simMember{ev.Paused, reason}
	}
}

// memberState is the phone or another AMI client changing a membership.
func (s *sim) memberState() {
	tn := pick(s.rng, simTenants)
	d := pick(s.rng, simDevices[tn])
	q := pick(s.rng, simQueues[tn])
	if s.chance(0.2) {
		q = ""
	}
	paused := s.chance(0.4)
	reason := ""
	if paused {
		reason = pick(s.rng, []string{"lunch", "", "meeting", callbridge.ReasonWrapUp})
	}
	ev := member(d, q, !s.chance(0.15), paused, reason)
	s.setMember(ev)
	s.send(ev)
}

// echo delivers the switch's report of one engine member-state command.
func (s *sim) echo() {
	if len(s.pending) == 0 {
		return
	}
	ev := s.pending[0]
	s.pending = s.pending[1:]
	s.setMember(ev)
	s.send(ev)
}

func (s *sim) tick() {
	s.f.wait(time.Duration(s.rng.IntN(20)) * time.Second)
	s.feedOut(s.f.tick())
}

// snapshot is a reconnect: some calls ended meanwhile, the rest is reported as it is.
func (s *sim) snapshot() {
	for _, c := range slices.Clone(s.calls) {
		switch {
		case s.chance(0.2):
			s.drop(c)
		case len(c.parties) > 0 && s.chance(0.3):
			d := pick(s.rng, slices.Sorted(maps.Keys(c.parties)))
			delete(c.parties, d)
			if d == c.queue {
				c.queue = ""
			}
		}
	}
	snap := &callbridge.Snapshot{Members: []callbridge.SnapshotMember{}}
	for _, c := range s.calls {
		sc := callbridge.SnapshotCall{PBXCallID: c.pbx, Direction: callbridge.DirInbound, ANI: "+15550000000", DNIS: c.dnis,
			ConsultOf: c.consultOf, Data: map[string]string{"IVR_REASON": "resync"}}
		for _, d := range slices.Sorted(maps.Keys(c.parties)) {
			sc.Parties = append(sc.Parties, callbridge.SnapshotParty{Device: d, State: c.parties[d], External: c.external[d]})
		}
		snap.Calls = append(snap.Calls, sc)
	}
	// Pending echoes are lost with the link; the snapshot has the switch's memberships.
	for _, ev := range s.pending {
		s.setMember(ev)
	}
	s.pending = nil
	for _, d := range slices.Sorted(maps.Keys(s.members)) {
		for _, q := range slices.Sorted(maps.Keys(s.members[d])) {
			m := s.members[d][q]
			snap.Members = append(snap.Members, callbridge.SnapshotMember{Device: d, Queue: q, Paused: m.paused, Reason: m.reason})
		}
	}
	s.send(callbridge.SwitchEvent{Type: callbridge.SwitchSnapshot, Snapshot: snap})
}

// garbage: events of calls the engine does not know, and replays of the last event.
func (s *sim) garbage() {
	switch s.rng.IntN(4) {
	case 0:
		s.send(s.last)
	case 1:
		s.send(callbridge.SwitchEvent{Type: pick(s.rng, []callbridge.SwitchEventType{
			callbridge.SwitchHeld, callbridge.SwitchRetrieved, callbridge.SwitchFailed, callbridge.SwitchConnectionCleared,
			callbridge.SwitchCallCleared, callbridge.SwitchTransferred, callbridge.SwitchConferenced, callbridge.SwitchDataUpdated,
			callbridge.SwitchQueued, callbridge.SwitchDequeued, callbridge.SwitchDeviceState, callbridge.SwitchLinkDown,
		}), PBXCallID: "unknown-" + fmt.Sprint(s.rng.IntN(5)), Device: pick(s.rng, simDevices[acme]), ConsultPBXCallID: "unknown-1"})
	case 2:
		// A call that began before a resync shows up ringing at an agent.
		tn := pick(s.rng, simTenants)
		c := &simCall{pbx: s.newPBX(), tenant: tn, dnis: didAcme, parties: map[callbridge.DeviceID]callbridge.ConnectionState{}, external: map[callbridge.DeviceID]bool{}}
		if tn == globex {
			c.dnis = didGlob
		}
		d := pick(s.rng, simDevices[tn])
		c.parties[d] = callbridge.ConnAlerting
		s.calls = append(s.calls, c)
		s.send(callbridge.SwitchEvent{Type: callbridge.SwitchAlerting, PBXCallID: c.pbx, Device: d, ANI: "+15559999999", DNIS: c.dnis, Data: s.data()})
	case 3:
		// A call of a tenant that is not configured: tracked silently, cleared silently.
		c := &simCall{pbx: s.newPBX(), parties: map[callbridge.DeviceID]callbridge.ConnectionState{"+1": callbridge.ConnConnected},
			external: map[callbridge.DeviceID]bool{"+1": true}}
		s.calls = append(s.calls, c)
		s.send(callbridge.SwitchEvent{Type: callbridge.SwitchCallStarted, PBXCallID: c.pbx, Tenant: "initech", Device: "+1", External: true, Direction: callbridge.DirInbound})
	}
}

// command is a desktop or CRM command, valid or not; when Plan accepts it the switch carries
// it out (most of the time) and Apply commits it.
func (s *sim) command() {
	tn := pick(s.rng, simTenants)
	ag := pick(s.rng, simAgents[tn])
	c := callbridge.Command{Tenant: tn, Agent: ag, Role: callbridge.RoleAgent, Time: s.f.now}
	if s.chance(0.15) {
		c.Role = callbridge.RoleSupervisor
	}
	calls := s.f.e.Calls(pick(s.rng, simTenants))
	if len(calls) > 0 {
		c.CallID = pick(s.rng, calls).ID
	}
	c.To = pick(s.rng, []string{"bob", "gina", "2002", "acme-vip", "15557654321", "1003", "bad\r\nto", "x&y"})
	if s.chance(0.3) {
		c.AttachedData = map[string]string{"note": pick(s.rng, []string{"", "vip", "a\nb"})}
	}
	if s.chance(0.2) {
		c.IdempotencyKey = fmt.Sprint(s.keyPrefix, "k", s.rng.IntN(5))
	}
	c.Name = pick(s.rng, []callbridge.CommandName{
		callbridge.CmdSetAgentState, callbridge.CmdSetAgentState, callbridge.CmdSetAgentState, callbridge.CmdAnswerCall,
		callbridge.CmdClearConnection, callbridge.CmdClearCall, callbridge.CmdHoldCall, callbridge.CmdRetrieveCall,
		callbridge.CmdSingleStepTransfer, callbridge.CmdMakeCall, callbridge.CmdConsultationCall, callbridge.CmdTransferCall,
		callbridge.CmdConferenceCall, callbridge.CmdUpdateCallData,
	})
	c.State = pick(s.rng, []callbridge.AgentState{callbridge.AgentReady, callbridge.AgentReady, callbridge.AgentNotReady, callbridge.AgentLoggedOut, callbridge.AgentBusy})
	if c.State == callbridge.AgentNotReady {
		c.Reason = pick(s.rng, []string{"lunch", "meeting", "break", "nap", ""})
	}
	before := state(s.f.e)
	p, err := s.f.e.Plan(c)
	sameState(s.t, before, state(s.f.e))
	if err != nil {
		if code := callbridge.ErrorCode(err); code == callbridge.EInternal || callbridge.ErrorMessage(err) == "" {
			s.t.Fatalf("Plan(%+v): %v", c, err)
		}
		return
	}
	if s.chance(0.1) {
		return // the switch refused it; no Apply
	}
	for _, sc := range p.Commands {
		for _, v := range []string{sc.To, sc.Reason, sc.CorrelationID, string(sc.Device), sc.PBXCallID} {
			if callbridge.CheckSwitchValue("v", v) != nil {
				s.t.Fatalf("unsafe value in %+v", sc)
			}
		}
	}
	// Sometimes the switch's events overtake Apply.
	early := s.chance(0.3)
	if early {
		s.effects(c, p)
	}
	s.feedOut(s.f.e.Apply(c, p))
	if !early && s.chance(0.8) {
		s.effects(c, p)
	}
}

// effects plays what the switch does for a planned command.
func (s *sim) effects(cmd callbridge.Command, p engine.Plan) {
	for _, sc := range p.Commands {
		c := s.byPBX(sc.PBXCallID)
		switch sc.Type {
		case callbridge.SwitchSetMemberState:
			s.pending = append(s.pending, s.echoesOf(sc)...)
		case callbridge.SwitchAnswerCall:
			if c != nil && c.parties[sc.Device] == callbridge.ConnAlerting {
				s.connectParty(c, sc.Device)
			}
		case callbridge.SwitchHoldCall:
			if c != nil && c.parties[sc.Device] == callbridge.ConnConnected {
				c.parties[sc.Device] = callbridge.ConnHeld
				s.send(sev(callbridge.SwitchHeld, c.pbx, sc.Device))
			}
		case callbridge.SwitchRetrieveCall:
			if c != nil && c.parties[sc.Device] == callbridge.ConnHeld {
				c.parties[sc.Device] = callbridge.ConnConnected
				s.send(sev(callbridge.SwitchRetrieved, c.pbx, sc.Device))
			}
		case callbridge.SwitchClearConnection:
			if c != nil {
				if _, ok := c.parties[sc.Device]; ok {
					s.clearParty(c, sc.Device)
				}
			}
		case callbridge.SwitchClearCall:
			if c != nil {
				s.endCall(c, callbridge.CauseNormal)
			}
		case callbridge.SwitchSingleStepTransfer:
			if c != nil {
				if _, ok := c.parties[sc.Device]; ok {
					to := callbridge.DeviceID(sc.To)
					if !slices.Contains(simDevices[c.tenant], to) {
						to = pick(s.rng, simDevices[c.tenant])
					}
					s.blind(c, sc.Device, to)
				}
			}
		case callbridge.SwitchMakeCall:
			corr := callbridge.CallID(sc.CorrelationID)
			if s.chance(0.2) {
				corr = "" // a driver that cannot correlate
			}
			o := &simCall{pbx: s.newPBX(), tenant: sc.Tenant, dnis: sc.To,
				parties:  map[callbridge.DeviceID]callbridge.ConnectionState{sc.Device: callbridge.ConnInitiated},
				external: map[callbridge.DeviceID]bool{}}
			s.calls = append(s.calls, o)
			s.send(callbridge.SwitchEvent{Type: callbridge.SwitchCallStarted, PBXCallID: o.pbx, Direction: callbridge.DirOutbound,
				Device: sc.Device, ANI: string(sc.Device), DNIS: sc.To, CorrelationID: string(corr), Data: map[string]string{"IVR_REASON": "outbound"}})
			s.connectParty(o, sc.Device)
			cust := callbridge.DeviceID(sc.To)
			o.external[cust] = true
			o.parties[cust] = callbridge.ConnAlerting
			s.send(callbridge.SwitchEvent{Type: callbridge.SwitchAlerting, PBXCallID: o.pbx, Device: cust, External: true})
		case callbridge.SwitchConsultationCall:
			if c != nil && c.parties[sc.Device] == callbridge.ConnConnected {
				s.consult(c, sc.Device, callbridge.CallID(sc.CorrelationID))
			}
		case callbridge.SwitchTransferCall, callbridge.SwitchConferenceCall:
			if q := s.byPBX(sc.ConsultPBXCallID); c != nil && q != nil {
				s.complete(c, q, sc.Type == callbridge.SwitchConferenceCall)
			}
		}
	}
}
