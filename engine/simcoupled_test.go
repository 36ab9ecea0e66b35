package engine_test

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/callbridge/callbridge"
	"github.com/callbridge/callbridge/engine"
	simpbx "github.com/callbridge/callbridge/sim"
)

// TestRandomWithSimulatedPBX couples the engine with the real simulated PBX core (sim.PBX)
// on one fake clock, the way package node couples them at run time: the switch's events go
// into the engine, the engine's own switch commands (wrap-up pauses, desktop_lost, log-out
// after a call) are carried out by the switch, and random agents act through Plan, Stage,
// the switch and Apply or Abort (the switch's events randomly before or after Apply). Random
// people also press telset buttons, transfer and dial on the phone, phones unregister and
// come back, desktops come and go. Calls arrive by themselves.
//
// After every step the engine's model must match the switch: the same calls with the same
// parties in the same states, no call without a party, every agent's memberships as on the
// switch, no agent busy without a call and every agent on a call busy. At the end arrivals
// stop, every call is cleared, and every call the engine reported must have been cleared
// exactly once.
func TestRandomWithSimulatedPBX(t *testing.T) {
	steps := 12000
	if testing.Short() {
		steps = 1500
	}
	seeds := uint64(4)
	if n, err := strconv.ParseUint(os.Getenv("CALLBRIDGE_RANDOM_SEEDS"), 10, 64); err == nil && n > 0 {
		seeds = n // more seeds for a long soak: CALLBRIDGE_RANDOM_SEEDS=200
	}
	for seed := uint64(1); seed <= seeds; seed++ {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			t.Parallel()
			h := newCoupled(t, seed)
			h.run(steps)
		})
	}
}

type coupled struct {
	t   *testing.T
	rng *rand.Rand
	e   *engine.Engine
	p   *simpbx.PBX
	now time.Time

	desks   map[callbridge.AgentKey][]string
	deskSeq int
	step    int
	what    string

	trace []string // the last lines of what happened, shown when a check fails
	// queue holds the engine's own switch commands until the events in flight are fed.
	queue   []callbridge.SwitchCommand
	running bool

	// checker
	reported map[callbridge.CallID]bool
	cleared  map[callbridge.CallID]int
	counts   map[string]int
}

// coupledAgents are the agents the random people play, with their devices.
var coupledAgents = []struct {
	tenant callbridge.TenantID
	agent  callbridge.AgentID
	device callbridge.DeviceID
}{
	{acme, "alice", "1001"}, {acme, "bob", "1002"}, {acme, "carol", "1003"}, {acme, "dave", "1004"},
	{acme, "judy", "1010"}, {globex, "gina", "2001"}, {globex, "hank", "2002"},
}

func newCoupled(t *testing.T, seed uint64) *coupled {
	dir := testDirectory()
	// Judy gets a queue so that she can log on; reason codes for the phone's DND.
	dir.Tenants[0].Users[4].Queues = []callbridge.QueueName{"acme-load"}
	dir.Tenants[0].ReasonCodes = append(dir.Tenants[0].ReasonCodes, simpbx.TelsetPauseReason)
	rng := rand.New(rand.NewPCG(seed, seed*31337))
	p := simpbx.NewPBX(simpbx.Config{
		Directory: dir, Rand: rand.New(rand.NewPCG(seed, 99)), Start: t0,
		CallInterval: 25 * time.Second, RingTimeout: 12 * time.Second, CallerPatience: 60 * time.Second,
		TalkTimeMin: 10 * time.Second, TalkTimeMax: 90 * time.Second, AgentAnswer: 9 * time.Second,
	})
	e, err := engine.New(engine.Config{Directory: dir, Capabilities: simpbx.Capabilities(), NewCallID: idGen(), Now: t0,
		DesktopGrace: 30 * time.Second, HeartbeatTimeout: 90 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	h := &coupled{t: t, rng: rng, e: e, p: p, now: t0,
		desks: map[callbridge.AgentKey][]string{}, reported: map[callbridge.CallID]bool{},
		cleared: map[callbridge.CallID]int{}, counts: map[string]int{}}
	h.feed(p.Snapshot(t0))
	return h
}

func (h *coupled) chance(p float64) bool { return h.rng.Float64() < p }

func (h *coupled) run(steps int) {
	for h.step = 0; h.step < steps; h.step++ {
		switch n := h.rng.IntN(100); {
		case n < 30:
			h.what = "time"
			h.advance(time.Duration(h.rng.IntN(4000)) * time.Millisecond)
		case n < 70:
			h.agentCommand()
		case n < 82:
			h.phone()
		case n < 92:
			h.presence()
		case n < 95:
			h.what = "register"
			a := pick(h.rng, coupledAgents)
			evs, err := h.p.SetRegistered(h.now, a.device, h.chance(0.6))
			h.count("register", err)
			h.feed(evs...)
		default:
			h.what = "inject"
			tn := pick(h.rng, []callbridge.TenantID{acme, globex})
			if _, err := h.p.InjectCall(h.now, tn, "", "", nil); err != nil {
				h.t.Fatal(err)
			}
		}
		h.check()
	}
	h.drain()
	h.t.Logf("%d calls reported; %v", len(h.reported), h.counts)
}

func (h *coupled) count(what string, err error) {
	if err == nil {
		h.counts["ok "+what]++
		return
	}
	h.counts[callbridge.ErrorCode(err)+" "+what]++
	if code := callbridge.ErrorCode(err); code == callbridge.EInternal {
		h.t.Fatalf("step %d %s: %v", h.step, what, err)
	}
}

// advance moves the clock by d, running the switch's timers and the engine's.
func (h *coupled) advance(d time.Duration) {
	h.now = h.now.Add(d)
	h.feed(h.p.Advance(h.now)...)
	h.out(h.e.Tick(h.now))
}

// feed hands switch events to the engine.
func (h *coupled) feed(evs ...callbridge.SwitchEvent) {
	if !h.running {
		// Feed the whole batch first, then carry out the engine's commands.
		h.running = true
		for _, ev := range evs {
			h.log("  switch %s %s dev=%s q=%s on=%v paused=%v %s cause=%s to=%s consult=%s corr=%s", ev.Type, ev.PBXCallID, ev.Device, ev.Queue, ev.LoggedOn, ev.Paused, ev.Reason, ev.Cause, ev.TransferredTo, ev.ConsultPBXCallID, ev.CorrelationID)
			h.out(h.e.HandleSwitchEvent(ev))
		}
		h.running = false
		h.out(engine.Output{})
		return
	}
	for _, ev := range evs {
		h.log("  switch %s %s dev=%s q=%s on=%v paused=%v %s cause=%s to=%s consult=%s corr=%s", ev.Type, ev.PBXCallID, ev.Device, ev.Queue, ev.LoggedOn, ev.Paused, ev.Reason, ev.Cause, ev.TransferredTo, ev.ConsultPBXCallID, ev.CorrelationID)
		h.out(h.e.HandleSwitchEvent(ev))
	}
}

// log keeps a line for the trace.
func (h *coupled) log(format string, args ...any) {
	if len(h.trace) >= 80 {
		h.trace = h.trace[1:]
	}
	h.trace = append(h.trace, fmt.Sprintf("%d: ", h.step)+fmt.Sprintf(format, args...))
}

// fail reports a broken rule with the trace.
func (h *coupled) fail(format string, args ...any) {
	h.t.Helper()
	h.t.Fatalf("step %d (%s): %s\ntrace:\n%s", h.step, h.what, fmt.Sprintf(format, args...), strings.Join(h.trace, "\n"))
}

// out checks an engine output and carries out its switch commands on the switch.
func (h *coupled) out(o engine.Output) {
	h.t.Helper()
	checkOutput(h.t, o)
	for _, ev := range o.Events {
		if !ev.Type.IsCall() {
			a := agentData(ev)
			h.log("  agent %s %s %s (next %s %s) queues %v", ev.Type, a.ID, a.State, a.NextState, a.NextReason, a.Queues)
			continue
		}
		h.log("  call %s %s dev=%s", ev.Type, ev.CallID, callData(ev).Device)
		if h.cleared[ev.CallID] > 0 && ev.Type != callbridge.EventCallDispositionSet {
			h.fail("%s for call %s after its call.cleared", ev.Type, ev.CallID)
		}
		h.reported[ev.CallID] = true
		if ev.Type == callbridge.EventCallCleared {
			h.cleared[ev.CallID]++
		}
	}
	for _, sc := range o.Commands {
		if sc.Type != callbridge.SwitchSetMemberState {
			h.t.Fatalf("step %d: the engine output a %s by itself", h.step, sc.Type)
		}
	}
	// As in package node, the engine's own commands are carried out after the events in
	// flight (the rest of the batch being fed) have reached the engine.
	h.queue = append(h.queue, o.Commands...)
	if h.running {
		return
	}
	h.running = true
	defer func() { h.running = false }()
	for len(h.queue) > 0 {
		sc := h.queue[0]
		h.queue = h.queue[1:]
		evs, err := h.p.Execute(h.now, sc)
		h.log("  engine command %s %s %v paused=%v %s: %v", sc.Action, sc.Device, sc.Queues, sc.Paused, sc.Reason, err)
		h.count("engine "+string(sc.Action)+" "+sc.Reason, err)
		if callbridge.ErrorCode(err) == callbridge.EInvalid {
			h.t.Fatalf("step %d: the switch refused the engine's %+v: %v", h.step, sc, err)
		}
		h.feed(evs...)
	}
}

// agentCommand plays one random desktop command through Plan, Stage, the switch and Apply.
// Mostly agents with a call act on it, with a command that fits its state; the rest is any
// command with random, often bad, parameters.
func (h *coupled) agentCommand() {
	a := pick(h.rng, coupledAgents)
	if h.chance(0.7) {
		var busy []int
		for i, x := range coupledAgents {
			if s, _ := h.e.Snapshot(x.tenant, x.agent); len(s.Calls) > 0 {
				busy = append(busy, i)
			}
		}
		if len(busy) > 0 {
			a = coupledAgents[pick(h.rng, busy)]
		}
	}
	snap, err := h.e.Snapshot(a.tenant, a.agent)
	if err != nil {
		h.t.Fatal(err)
	}
	c := callbridge.Command{Tenant: a.tenant, Agent: a.agent, Role: callbridge.RoleAgent, Time: h.now}
	if h.chance(0.05) {
		c.Role = callbridge.RoleSupervisor
	}
	var call, consult *callbridge.Call
	mine := callbridge.ConnNull
	if len(snap.Calls) > 0 {
		call = &snap.Calls[h.rng.IntN(len(snap.Calls))]
		c.CallID = call.ID
		if cn, ok := call.Connection(a.device); ok {
			mine = cn.State
		}
		for i := range snap.Calls {
			if snap.Calls[i].ConsultOf == call.ID {
				consult = &snap.Calls[i]
			}
		}
		if call.ConsultOf != "" {
			consult, c.CallID = call, call.ConsultOf
		}
	} else if h.chance(0.3) {
		c.CallID = "01JNOSUCHCALL0000000000000"
	}
	targets := []string{"bob", "carol", "1003", "1004", "gina", "2002", "acme-support", "acme-load", "globex-sales",
		"+15557654321", "15559990486", "alice"}
	if h.chance(0.1) {
		targets = []string{"1002\r\nAction: Hangup", "a,b", "", "${EXEC}"}
	}
	fitting := map[callbridge.ConnectionState][]callbridge.CommandName{
		callbridge.ConnAlerting:  {callbridge.CmdAnswerCall, callbridge.CmdAnswerCall, callbridge.CmdClearConnection},
		callbridge.ConnConnected: {callbridge.CmdHoldCall, callbridge.CmdSingleStepTransfer, callbridge.CmdConsultationCall, callbridge.CmdConsultationCall, callbridge.CmdClearConnection, callbridge.CmdUpdateCallData, callbridge.CmdSetDisposition},
		callbridge.ConnHeld:      {callbridge.CmdRetrieveCall, callbridge.CmdSingleStepTransfer, callbridge.CmdConsultationCall},
	}
	if consult != nil {
		fitting[callbridge.ConnHeld] = []callbridge.CommandName{callbridge.CmdTransferCall, callbridge.CmdConferenceCall, callbridge.CmdRetrieveCall}
		fitting[callbridge.ConnConnected] = []callbridge.CommandName{callbridge.CmdTransferCall, callbridge.CmdConferenceCall, callbridge.CmdClearConnection}
	}
	all := []callbridge.CommandName{callbridge.CmdSetAgentState, callbridge.CmdSetAgentState, callbridge.CmdAnswerCall,
		callbridge.CmdClearConnection, callbridge.CmdClearCall, callbridge.CmdHoldCall, callbridge.CmdRetrieveCall,
		callbridge.CmdSingleStepTransfer, callbridge.CmdConsultationCall, callbridge.CmdTransferCall, callbridge.CmdConferenceCall,
		callbridge.CmdMakeCall, callbridge.CmdUpdateCallData, callbridge.CmdSetDisposition, "bogus"}
	if f := fitting[mine]; len(f) > 0 && h.chance(0.75) {
		c.Name = pick(h.rng, f)
	} else {
		c.Name = pick(h.rng, all)
	}
	switch c.Name {
	case callbridge.CmdSetAgentState:
		c.State = pick(h.rng, []callbridge.AgentState{callbridge.AgentReady, callbridge.AgentReady, callbridge.AgentNotReady, callbridge.AgentLoggedOut, callbridge.AgentBusy})
		if c.State == callbridge.AgentNotReady {
			c.Reason = pick(h.rng, []string{"lunch", "break", "meeting", "nap", ""})
		}
	case callbridge.CmdSingleStepTransfer:
		c.To = pick(h.rng, targets)
		c.AttachedData = map[string]string{"xfer": fmt.Sprint(h.step)}
		if h.chance(0.5) {
			c.Notes = "note " + fmt.Sprint(h.step)
		}
	case callbridge.CmdConsultationCall:
		c.To = pick(h.rng, targets)
		c.Notes = "consult " + fmt.Sprint(h.step)
	case callbridge.CmdTransferCall, callbridge.CmdConferenceCall:
		if consult != nil && h.chance(0.8) {
			c.ConsultCallID = consult.ID
		}
	case callbridge.CmdMakeCall:
		c.To = pick(h.rng, targets)
	case callbridge.CmdUpdateCallData:
		c.AttachedData = map[string]string{"crm": fmt.Sprint(h.step)}
	case callbridge.CmdSetDisposition:
		c.Disposition = pick(h.rng, []string{"sale", "no_sale", "sale", "bad code"})
		c.Notes = "wrap-up notes\nline 2"
		if h.chance(0.5) {
			c.State = pick(h.rng, []callbridge.AgentState{callbridge.AgentReady, callbridge.AgentNotReady})
			if c.State == callbridge.AgentNotReady {
				c.Reason = "lunch"
			}
		}
	case "bogus":
		c.CallID = pick(h.rng, []callbridge.CallID{c.CallID, "", "x\r\ny"})
	}
	if h.chance(0.2) {
		c.IdempotencyKey = fmt.Sprint("k", h.rng.IntN(20))
	}
	h.what = "command " + string(c.Name)
	h.log("%s by %s call=%s consult=%s to=%s state=%s %s", c.Name, c.Agent, c.CallID, c.ConsultCallID, c.To, c.State, c.Reason)
	before := state(h.e)
	plan, err := h.e.Plan(c)
	if err != nil {
		sameState(h.t, before, state(h.e))
		h.count("plan "+string(c.Name), err)
		return
	}
	h.e.Stage(c, plan)
	var evs []callbridge.SwitchEvent
	for _, sc := range plan.Commands {
		more, err := h.p.Execute(h.now, sc)
		if err != nil {
			if callbridge.ErrorCode(err) == callbridge.EInvalid {
				h.t.Fatalf("step %d: the switch found the engine's %+v invalid: %v", h.step, sc, err)
			}
			h.count("switch "+string(c.Name), err)
			h.e.Abort(c, plan)
			h.feed(evs...)
			return
		}
		evs = append(evs, more...)
	}
	h.count(string(c.Name), nil)
	if h.chance(0.5) {
		h.feed(evs...)
		h.out(h.e.Apply(c, plan))
	} else {
		h.out(h.e.Apply(c, plan))
		h.feed(evs...)
	}
	if c.IdempotencyKey != "" {
		// A retry with the same key is a duplicate with the same result.
		c.Time = h.now
		again, err := h.e.Plan(c)
		if err != nil || !again.Duplicate || again.Result != plan.Result {
			h.t.Fatalf("step %d: retry of %s with key %s: %+v, %v", h.step, c.Name, c.IdempotencyKey, again, err)
		}
	}
}

// phone plays one random action on a telset.
func (h *coupled) phone() {
	a := pick(h.rng, coupledAgents)
	var evs []callbridge.SwitchEvent
	var err error
	switch n := h.rng.IntN(10); {
	case n < 6:
		b := pick(h.rng, simpbx.Buttons)
		h.what = "button " + string(b)
		evs, err = h.p.PressButton(h.now, a.device, b)
	case n < 8:
		h.what = "phone transfer"
		evs, err = h.p.PhoneTransfer(h.now, a.device, pick(h.rng, []string{"1002", "1003", "bob", "acme-support", "2001", "+15550001111"}), h.chance(0.5))
	default:
		h.what = "phone dial"
		evs, err = h.p.Dial(h.now, a.device, pick(h.rng, []string{"1001", "1004", "+15550002222", "15550000486", "globex-sales"}))
	}
	h.log("%s on %s: %v", h.what, a.device, err)
	h.count(h.what, err)
	h.feed(evs...)
}

// presence attaches, detaches or heartbeats a random desktop.
func (h *coupled) presence() {
	a := pick(h.rng, coupledAgents)
	key := callbridge.AgentKey{Tenant: a.tenant, Agent: a.agent}
	ds := h.desks[key]
	var o engine.Output
	var err error
	switch {
	case len(ds) == 0 || h.chance(0.3):
		h.deskSeq++
		d := fmt.Sprint("d", h.deskSeq)
		h.desks[key] = append(ds, d)
		h.what = "attach"
		o, err = h.e.DesktopAttached(a.tenant, a.agent, d, h.now)
	case h.chance(0.5):
		i := h.rng.IntN(len(ds))
		h.what = "detach"
		o, err = h.e.DesktopDetached(a.tenant, a.agent, ds[i], h.now)
		h.desks[key] = slices.Delete(ds, i, i+1)
	default:
		h.what = "heartbeat"
		o, err = h.e.DesktopHeartbeat(a.tenant, a.agent, pick(h.rng, ds), h.now)
	}
	if err != nil {
		h.t.Fatal(err)
	}
	h.out(o)
}

// check compares the engine's model with the switch.
func (h *coupled) check() {
	h.t.Helper()
	snap := h.p.Snapshot(h.now).Snapshot
	sw := map[string]map[callbridge.DeviceID]callbridge.ConnectionState{}
	busy := map[callbridge.DeviceID]bool{}
	for _, c := range snap.Calls {
		m := map[callbridge.DeviceID]callbridge.ConnectionState{}
		for _, p := range c.Parties {
			m[p.Device] = p.State
			if p.State.Active() {
				busy[p.Device] = true
			}
		}
		sw[c.PBXCallID] = m
	}
	seen := map[string]bool{}
	for _, tn := range []callbridge.TenantID{acme, globex} {
		for _, c := range h.e.Calls(tn) {
			seen[c.PBXCallID] = true
			if len(c.Connections) == 0 {
				h.fail("call %s has no party", c.ID)
			}
			m := map[callbridge.DeviceID]callbridge.ConnectionState{}
			for _, cn := range c.Connections {
				m[cn.Device] = cn.State
			}
			if want, ok := sw[c.PBXCallID]; !ok || !maps.Equal(m, want) {
				h.fail("call %s (%s) is %v in the engine, %v on the switch", c.ID, c.PBXCallID, m, want)
			}
		}
	}
	for pbx := range sw {
		if !seen[pbx] {
			h.fail("switch call %s is missing from the engine", pbx)
		}
	}
	members := map[callbridge.DeviceID][]callbridge.QueueName{}
	for _, m := range snap.Members {
		members[m.Device] = append(members[m.Device], m.Queue)
	}
	for _, a := range coupledAgents {
		ag := h.agent(a.tenant, a.agent)
		qs := slices.Sorted(slices.Values(members[a.device]))
		if !slices.Equal(ag.Queues, qs) {
			h.fail("%s queues %v, switch %v", a.agent, ag.Queues, qs)
		}
		switch {
		case len(qs) == 0:
			if ag.State != callbridge.AgentLoggedOut {
				h.fail("%s is %s with no queue", a.agent, ag.State)
			}
		case busy[a.device] != (ag.State == callbridge.AgentBusy):
			h.fail("%s is %s, device busy on the switch: %v", a.agent, ag.State, busy[a.device])
		}
	}
}

func (h *coupled) agent(tn callbridge.TenantID, id callbridge.AgentID) callbridge.Agent {
	s, err := h.e.Snapshot(tn, id)
	if err != nil {
		h.t.Fatal(err)
	}
	return s.Agent
}

// drain stops arrivals, lets every timer run out, clears what people left up, and checks that
// every call was cleared exactly once.
func (h *coupled) drain() {
	h.what = "drain"
	h.p.SetCallInterval(h.now, 0)
	for i := 0; ; i++ {
		if i > 10000 {
			h.t.Fatal("timers never ran out")
		}
		if next := h.p.NextDeadline(); next.IsZero() {
			break
		}
		h.advance(time.Minute)
		h.check()
	}
	for _, tn := range []callbridge.TenantID{acme, globex} {
		for _, c := range h.e.Calls(tn) {
			evs, err := h.p.Execute(h.now, callbridge.SwitchCommand{Type: callbridge.SwitchClearCall, Tenant: tn, PBXCallID: c.PBXCallID})
			if err != nil && callbridge.ErrorCode(err) != callbridge.ENotFound {
				h.t.Fatal(err)
			}
			h.feed(evs...)
		}
	}
	h.advance(time.Hour)
	h.check()
	for _, tn := range []callbridge.TenantID{acme, globex} {
		if cs := h.e.Calls(tn); len(cs) != 0 {
			h.t.Fatalf("%d calls left in %s", len(cs), tn)
		}
	}
	if len(h.p.Snapshot(h.now).Snapshot.Calls) != 0 {
		h.t.Fatal("calls left on the switch")
	}
	for id := range h.reported {
		if h.cleared[id] != 1 {
			h.t.Fatalf("call %s cleared %d times", id, h.cleared[id])
		}
	}
	for _, a := range coupledAgents {
		if st := h.agent(a.tenant, a.agent).State; st == callbridge.AgentBusy {
			h.t.Fatalf("%s busy at the end", a.agent)
		}
	}
	if len(h.reported) < 1000 && !testing.Short() {
		h.t.Fatalf("only %d calls: the run is too short to mean much", len(h.reported))
	}
}
