package engine_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"math/rand/v2"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/callbridge/callbridge"
	"github.com/callbridge/callbridge/engine"
)

// idCounter is a CallID generator whose position can be copied: 01J…1, 01J…2, …; while
// resync is set it hands out ids of another series (01R…), which leaves the main series where
// it is.
type idCounter struct {
	n, r   int
	resync bool
}

func (g *idCounter) next(time.Time) callbridge.CallID {
	if g.resync {
		g.r++
		return callbridge.CallID(fmt.Sprintf("01R%023d", g.r))
	}
	g.n++
	return callbridge.CallID(fmt.Sprintf("01J%023d", g.n))
}

// newRecoverSim is newSim with an idCounter as generator (no desktops: their presence is not
// in the log).
func newRecoverSim(t *testing.T, seed uint64) (*sim, *idCounter) {
	t.Helper()
	s := newSim(t, seed)
	g := &idCounter{}
	e, err := engine.New(engine.Config{Directory: testDirectory(), Capabilities: allCaps(), NewCallID: g.next, Now: t0})
	if err != nil {
		t.Fatal(err)
	}
	s.f = &fixture{t: t, e: e, now: t0}
	return s, g
}

// cloneSim copies the switch side of s (calls, memberships, undelivered echoes, the clock)
// onto engine e, with a new random source of seed.
func cloneSim(s *sim, e *engine.Engine, seed uint64) *sim {
	c := &sim{
		t: s.t, rng: rand.New(rand.NewPCG(seed, seed*7919)), f: &fixture{t: s.t, e: e, now: s.f.now},
		members: map[callbridge.DeviceID]map[callbridge.QueueName]simMember{},
		pending: slices.Clone(s.pending), n: s.n, last: s.last,
		cleared: map[callbridge.CallID]int{}, started: map[callbridge.CallID]bool{}, counts: map[callbridge.EventType]int{},
		on: maps.Clone(s.on),
	}
	for _, sc := range s.calls {
		cp := *sc
		cp.parties, cp.external = maps.Clone(sc.parties), maps.Clone(sc.external)
		c.calls = append(c.calls, &cp)
	}
	for d, m := range s.members {
		c.members[d] = maps.Clone(m)
	}
	return c
}

// switchSnapshot is what the simulated switch reports after a reconnect: its calls with the
// parties it has (ANI, DNIS, queue and variables as the engine that saw everything has them),
// and its memberships with the echoes not yet delivered applied.
func switchSnapshot(s *sim, truth *engine.Engine) *callbridge.Snapshot {
	views := map[string]callbridge.Call{}
	for _, tn := range simTenants {
		for _, c := range truth.Calls(tn) {
			views[c.PBXCallID] = c
		}
	}
	snap := &callbridge.Snapshot{Members: []callbridge.SnapshotMember{}}
	for _, c := range s.calls {
		sc := callbridge.SnapshotCall{PBXCallID: c.pbx, Direction: callbridge.DirInbound, DNIS: c.dnis, ConsultOf: c.consultOf}
		if v, ok := views[c.pbx]; ok {
			sc.Direction, sc.ANI, sc.ANIName, sc.DNIS, sc.Queue, sc.Data = v.Direction, v.ANI, v.ANIName, v.DNIS, v.Queue, v.AttachedData
		} else if c.tenant == "" {
			sc.Tenant = "initech"
		}
		for _, d := range slices.Sorted(maps.Keys(c.parties)) {
			sc.Parties = append(sc.Parties, callbridge.SnapshotParty{Device: d, State: c.parties[d], External: c.external[d]})
		}
		snap.Calls = append(snap.Calls, sc)
	}
	members := map[callbridge.DeviceID]map[callbridge.QueueName]simMember{}
	for d, m := range s.members {
		members[d] = maps.Clone(m)
	}
	tmp := &sim{members: members}
	for _, ev := range s.pending {
		tmp.setMember(ev)
	}
	for _, d := range slices.Sorted(maps.Keys(members)) {
		for _, q := range slices.Sorted(maps.Keys(members[d])) {
			m := members[d][q]
			snap.Members = append(snap.Members, callbridge.SnapshotMember{Device: d, Queue: q, Paused: m.paused, Reason: m.reason})
		}
	}
	return snap
}

// wire is what the event log gives back for ev: its JSON, decoded as a WireEvent.
func wire(t testing.TB, ev callbridge.Event) callbridge.WireEvent {
	t.Helper()
	b, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	var w callbridge.WireEvent
	if err := json.Unmarshal(b, &w); err != nil {
		t.Fatal(err)
	}
	return w
}

// stateDoc is a MarshalState document as generic JSON.
func stateDoc(t *testing.T, e *engine.Engine) map[string]any {
	t.Helper()
	b, err := e.MarshalState()
	if err != nil {
		t.Fatal(err)
	}
	var d map[string]any
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatal(err)
	}
	return d
}

// diffs lists the paths where a and b differ.
func diffs(path string, a, b any, out *[]string) {
	switch av := a.(type) {
	case map[string]any:
		bv, ok := b.(map[string]any)
		if !ok {
			*out = append(*out, fmt.Sprintf("%s: %v ≠ %v", path, a, b))
			return
		}
		for _, k := range slices.Sorted(maps.Keys(unionAny(av, bv))) {
			diffs(path+"."+k, av[k], bv[k], out)
		}
	case []any:
		bv, ok := b.([]any)
		if !ok {
			*out = append(*out, fmt.Sprintf("%s: %v ≠ %v", path, a, b))
			return
		}
		if len(av) != len(bv) {
			*out = append(*out, fmt.Sprintf("%s: %d elements ≠ %d", path, len(av), len(bv)))
		}
		for i := range min(len(av), len(bv)) {
			diffs(fmt.Sprintf("%s[%d]", path, i), av[i], bv[i], out)
		}
	default:
		if !reflect.DeepEqual(a, b) {
			*out = append(*out, fmt.Sprintf("%s: %v ≠ %v", path, a, b))
		}
	}
}

func unionAny(a, b map[string]any) map[string]bool {
	out := map[string]bool{}
	for k := range a {
		out[k] = true
	}
	for k := range b {
		out[k] = true
	}
	return out
}

// recoveryNormal removes from a state document what the event log cannot carry and the
// comparison of TestRecoverFromLog therefore leaves out (see there).
func recoveryNormal(d map[string]any) {
	now, err := time.Parse(time.RFC3339Nano, d["now"].(string))
	if err != nil {
		panic(err)
	}
	var calls []any
	for _, c := range d["calls"].([]any) {
		c := c.(map[string]any)
		if c["call"].(map[string]any)["tenant"] == "" {
			continue
		}
		delete(c, "since")
		delete(c, "unclaimed")
		calls = append(calls, c)
	}
	d["calls"] = calls
	var handled []any
	for _, h := range d["handled"].([]any) {
		ended, err := time.Parse(time.RFC3339Nano, h.(map[string]any)["call"].(map[string]any)["ended_at"].(string))
		if err != nil {
			panic(err)
		}
		if now.Sub(ended) < engine.DispositionWindow {
			handled = append(handled, h)
		}
	}
	d["handled"] = handled
	for _, a := range d["agents"].([]any) {
		a := a.(map[string]any)
		delete(a, "cause")
		delete(a, "logout_cause")
	}
	delete(d, "idempotency")
	delete(d, "reservations")
	delete(d, "claimed")
}

// TestRecoverFromLog is the property of Recover over the random simulation: run to a random
// step P and save the state; keep running to a random crash step C, collecting every event
// (through its JSON, as the log returns it); then Restore(P) + Recover(each event after P)
// must equal the engine that ran on:
//
//  1. at C, on what the events carry: every call (all fields, same call_id), every agent's
//     state, reason, since, wrap-up end and next state;
//  2. after both take the switch's resync (what a restart does next), on the whole saved
//     state except what the log cannot carry (recoveryNormal): when each connection last
//     changed and whether an agent's device started a call by itself (bookkeeping for
//     Availability and for an Apply that was in flight at the crash), the causes Availability
//     explains with, and the idempotency keys, reservations and claimed ids of commands
//     committed after P;
//  3. and feeding both the same further inputs (at once, or a minute later when reservations
//     of commands after P have to expire first; fresh idempotency keys) gives exactly the same
//     outputs, to the end of the run (every call cleared once, no agent left busy).
//
// C is a step where every call of a configured tenant has had an event since P or was saved
// at P: a call the switch started after P that produced no event yet is not in the log, the
// resync creates it with a new call_id (TestRecoverResync).
func TestRecoverFromLog(t *testing.T) {
	runs := 12
	if testing.Short() {
		runs = 4
	}
	for seed := uint64(1); seed <= uint64(runs); seed++ {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			t.Parallel()
			a, gen := newRecoverSim(t, seed)
			pick := rand.New(rand.NewPCG(seed, 3))
			p := 100 + pick.IntN(1500)
			minC := p + 1 + pick.IntN(600)
			var saved []byte
			from, done := 0, false
			a.onStep = func(i int) {
				switch {
				case i == p:
					var err error
					if saved, err = a.f.e.MarshalState(); err != nil {
						t.Fatal(err)
					}
					from = len(a.outputs)
				case i >= minC && !done:
					done = checkRecovery(t, a, gen, saved, a.outputs[from:], seed)
				}
			}
			a.run(minC + 1500)
			if !done {
				t.Fatalf("no step after %d without a call that had no event", minC)
			}
		})
	}
}

// checkRecovery checks the recovery at the current step of a (see TestRecoverFromLog); it
// returns false, checking nothing, while a has a call of a tenant that the log does not know.
func checkRecovery(t *testing.T, a *sim, gen *idCounter, saved []byte, outs []engine.Output, seed uint64) bool {
	t.Helper()
	known := map[callbridge.CallID]bool{}
	for _, out := range outs {
		for _, ev := range out.Events {
			known[ev.CallID] = true
		}
	}
	savedEngine, err := engine.Restore(engine.Config{Directory: testDirectory(), Capabilities: allCaps(), NewCallID: (&idCounter{}).next}, saved)
	if err != nil {
		t.Fatal(err)
	}
	for _, tn := range simTenants {
		for _, c := range savedEngine.Calls(tn) {
			known[c.ID] = true
		}
	}
	for _, tn := range simTenants {
		for _, c := range a.f.e.Calls(tn) {
			if !known[c.ID] {
				return false
			}
		}
	}

	var evs []callbridge.WireEvent
	for _, out := range outs {
		for _, ev := range out.Events {
			evs = append(evs, wire(t, ev))
		}
	}
	genB := &idCounter{n: gen.n}
	cfgB := engine.Config{Directory: testDirectory(), Capabilities: allCaps(), NewCallID: genB.next}
	b, err := engine.Restore(cfgB, saved)
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range evs {
		if err := b.Recover(w); err != nil {
			t.Fatalf("Recover(%s): %v", w.Type, err)
		}
	}

	// 1. What the events carry.
	for _, tn := range simTenants {
		if got, want := b.Calls(tn), a.f.e.Calls(tn); !reflect.DeepEqual(got, want) {
			t.Fatalf("calls of %s after Recover:\n%+v\nwant\n%+v", tn, got, want)
		}
		ag, aw := b.Agents(tn), a.f.e.Agents(tn)
		for i := range aw {
			g, w := ag[i], aw[i]
			g.Queues, w.Queues = nil, nil
			if !reflect.DeepEqual(g, w) {
				t.Fatalf("agent after Recover:\n%+v\nwant\n%+v", ag[i], aw[i])
			}
		}
	}

	// 2. After the resync, the whole state but what the log cannot carry.
	genA := &idCounter{n: gen.n}
	ca, err := a.f.e.MarshalState()
	if err != nil {
		t.Fatal(err)
	}
	ac, err := engine.Restore(engine.Config{Directory: testDirectory(), Capabilities: allCaps(), NewCallID: genA.next}, ca)
	if err != nil {
		t.Fatal(err)
	}
	snap := callbridge.SwitchEvent{Type: callbridge.SwitchSnapshot, Time: a.f.now, Snapshot: switchSnapshot(a, a.f.e)}
	outA := ac.HandleSwitchEvent(snap)
	genB.resync = true
	outB := b.HandleSwitchEvent(snap)
	genB.resync = false
	if !reflect.DeepEqual(outA, outB) {
		t.Fatalf("the resync gives other outputs:\nran on    %+v\nrecovered %+v", outA, outB)
	}
	// A wrap-up that ended by its timer while the agent was on another call ended silently;
	// the recovered engine ends it with its first timer tick (sending the unpause again).
	outA, outB = ac.Tick(a.f.now), b.Tick(a.f.now)
	if !reflect.DeepEqual(outA.Events, outB.Events) {
		t.Fatalf("the first tick gives other events:\nran on    %+v\nrecovered %+v", outA.Events, outB.Events)
	}
	for _, c := range outB.Commands {
		if !slices.ContainsFunc(outA.Commands, func(x callbridge.SwitchCommand) bool { return reflect.DeepEqual(x, c) }) &&
			(c.Action != callbridge.MemberPause || c.Paused) {
			t.Fatalf("the first tick of the recovered engine commands %+v", c)
		}
	}
	if len(outA.Commands) > len(outB.Commands) {
		t.Fatalf("the first tick: ran on commands %+v, recovered %+v", outA.Commands, outB.Commands)
	}
	da, db := stateDoc(t, ac), stateDoc(t, b)
	translateIDs(t, da, db)
	// Reservations of commands committed after P are not in the log; when there are none,
	// the further inputs start at once, else a minute later, when they have expired.
	wait := !reflect.DeepEqual(da["reservations"], db["reservations"])
	recoveryNormal(da)
	recoveryNormal(db)
	var ds []string
	diffs("state", db, da, &ds)
	if len(ds) > 0 {
		t.Fatalf("state after Recover and resync differs (recovered ≠ ran on):\n%s", strings.Join(ds, "\n"))
	}

	// 3. The same further inputs give the same outputs.
	sa, sb := cloneSim(a, ac, seed+1000), cloneSim(a, b, seed+1000)
	for _, s := range []*sim{sa, sb} {
		s.keyPrefix = "after-"
		if wait {
			s.f.wait(engine.ReservationTTL)
			s.feedOut(s.f.tick())
		}
	}
	steps := 400
	sa.run(steps)
	sb.run(steps)
	if len(sa.outputs) != len(sb.outputs) {
		t.Fatalf("%d outputs after the crash from the engine that ran on, %d from the recovered one", len(sa.outputs), len(sb.outputs))
	}
	for i := range sa.outputs {
		if !reflect.DeepEqual(sa.outputs[i], sb.outputs[i]) {
			t.Fatalf("output %d after the crash differs:\nran on    %+v\nrecovered %+v", i, sa.outputs[i], sb.outputs[i])
		}
	}
	t.Logf("recovered %d events; %d outputs after the crash are the same (a minute later: %v)", len(evs), len(sa.outputs), wait)
	return true
}

// translateIDs renames, in db, the call_ids of calls that the resync created in the recovered
// engine (calls of no configured tenant, which have no events) to the ids the engine that ran
// on gave them (same pbx_call_id).
func translateIDs(t *testing.T, da, db map[string]any) {
	t.Helper()
	ids := map[string]string{}
	for _, c := range da["calls"].([]any) {
		m := c.(map[string]any)["call"].(map[string]any)
		ids[m["pbx_call_id"].(string)] = m["call_id"].(string)
	}
	ren := map[string]string{}
	for _, c := range db["calls"].([]any) {
		m := c.(map[string]any)["call"].(map[string]any)
		if want, ok := ids[m["pbx_call_id"].(string)]; ok && want != m["call_id"] {
			if m["tenant"] != "" {
				t.Fatalf("call %v of tenant %v has another call_id after recovery: %v", m["pbx_call_id"], m["tenant"], m["call_id"])
			}
			ren[m["call_id"].(string)] = want
		}
	}
	if len(ren) == 0 {
		return
	}
	b, err := json.Marshal(db)
	if err != nil {
		t.Fatal(err)
	}
	keys := slices.Collect(maps.Keys(ren))
	sort.Strings(keys)
	for _, k := range keys {
		b = bytes.ReplaceAll(b, []byte(k), []byte(ren[k]))
	}
	clear(db)
	if err := json.Unmarshal(b, &db); err != nil {
		t.Fatal(err)
	}
}

// recoverFrom restores saved and recovers evs (through their JSON).
func recoverFrom(t testing.TB, saved []byte, evs []callbridge.Event) *engine.Engine {
	t.Helper()
	e, err := engine.Restore(engine.Config{Directory: testDirectory(), Capabilities: allCaps(), NewCallID: (&idCounter{n: 1000}).next}, saved)
	if err != nil {
		t.Fatal(err)
	}
	for _, ev := range evs {
		if err := e.Recover(wire(t, ev)); err != nil {
			t.Fatalf("Recover(%s): %v", ev.Type, err)
		}
	}
	return e
}

// TestRecoverResync: after a restart the switch's resync reconciles the recovered model. A
// call the switch no longer has clears with cause resync under the call_id its events had;
// a call it still has keeps its call_id and goes on normally; a call that started after the
// save and had no event is created (with a new call_id, which no one has seen); agents
// follow the switch's member states.
func TestRecoverResync(t *testing.T) {
	f := newFixture(t)
	f.logOn("1001", "acme-support")
	f.logOn("1002", "acme-support")
	f.ev(inbound("p1", didAcme, ivr()))
	f.ev(queued("p1", "acme-support"))
	saved, err := f.e.MarshalState()
	if err != nil {
		t.Fatal(err)
	}
	var tail []callbridge.Event
	collect := func(out engine.Output) { tail = append(tail, out.Events...) }
	f.wait(time.Second)
	collect(f.evs(alerting("p1", "1001"), connected("p1", "1001")))
	collect(f.evs(inbound("p2", didAcme, ivr()), queued("p2", "acme-support"), alerting("p2", "1002"), connected("p2", "1002")))
	_, out := f.mustDo(callbridge.Command{Name: callbridge.CmdUpdateCallData, Tenant: acme, Agent: "bob", Role: callbridge.RoleAgent,
		CallID: f.call(acme, "p2").ID, AttachedData: map[string]string{"crm": "C-1"}, Time: f.now})
	collect(out)
	f.ev(inbound("p3", didAcme, ivr())) // silent: no event yet
	p1, p2 := f.call(acme, "p1"), f.call(acme, "p2")

	e := recoverFrom(t, saved, tail)
	for _, want := range []callbridge.Call{p1, p2} {
		got := callByPBX(t, e, want.PBXCallID)
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("recovered call:\n%+v\nwant\n%+v", got, want)
		}
	}
	if a := agentOf(t, e, "alice"); a.State != callbridge.AgentBusy {
		t.Fatalf("alice after recovery: %+v", a)
	}

	// The switch lost p1 while callbridge was down; bob is still on p2; p3 rings at carol.
	snap := &callbridge.Snapshot{
		Calls: []callbridge.SnapshotCall{
			{PBXCallID: "p2", Direction: callbridge.DirInbound, ANI: caller, DNIS: didAcme, Queue: "acme-support",
				Parties: []callbridge.SnapshotParty{{Device: caller, State: callbridge.ConnConnected, External: true}, {Device: "1002", State: callbridge.ConnConnected}}},
			{PBXCallID: "p3", Direction: callbridge.DirInbound, ANI: caller, DNIS: didAcme, Data: map[string]string{"IVR_REASON": "billing"},
				Parties: []callbridge.SnapshotParty{{Device: caller, State: callbridge.ConnConnected, External: true}, {Device: "1003", State: callbridge.ConnAlerting}}},
		},
		Members: []callbridge.SnapshotMember{{Device: "1001", Queue: "acme-support"}, {Device: "1002", Queue: "acme-support"}, {Device: "1003", Queue: "acme-support", Paused: true, Reason: "lunch"}},
	}
	out = e.HandleSwitchEvent(callbridge.SwitchEvent{Type: callbridge.SwitchSnapshot, Time: f.now, Snapshot: snap})
	cl := only(t, out, callbridge.EventCallCleared)
	if ce := callData(cl); cl.CallID != p1.ID || ce.Cause != callbridge.CauseResync || ce.PBXCallID != "p1" {
		t.Fatalf("call.cleared = %+v (call %s), want p1's call_id %s with cause resync", ce, cl.CallID, p1.ID)
	}
	del := only(t, out, callbridge.EventCallDelivered)
	if ce := callData(del); ce.PBXCallID != "p3" || ce.Device != "1003" || ce.ID == p1.ID || ce.ID == p2.ID || ce.ID == "" {
		t.Fatalf("p3 after the resync: %+v", ce)
	}
	for _, ev := range out.Events {
		if ev.CallID == p2.ID {
			t.Fatalf("the resync changed p2, which the switch still has: %s %+v", ev.Type, callData(ev))
		}
	}
	if got := callByPBX(t, e, "p2"); !reflect.DeepEqual(got, p2) {
		t.Fatalf("p2 after the resync:\n%+v\nwant\n%+v", got, p2)
	}
	if a := agentOf(t, e, "alice"); a.State != callbridge.AgentReady {
		t.Fatalf("alice after her call cleared in the resync: %+v (no wrap-up: it ended at an unknown time)", a)
	}
	if a := agentOf(t, e, "carol"); a.State != callbridge.AgentBusy || a.NextState != callbridge.AgentNotReady || a.NextReason != "lunch" {
		t.Fatalf("carol follows the switch: %+v", a)
	}

	// p2 goes on: bob hangs up, the call clears normally under its call_id, bob wraps up.
	out = e.HandleSwitchEvent(callbridge.SwitchEvent{Type: callbridge.SwitchConnectionCleared, PBXCallID: "p2", Device: "1002", Time: f.now.Add(time.Second)})
	if ev := only(t, out, callbridge.EventCallConnectionCleared); ev.CallID != p2.ID {
		t.Fatalf("connection_cleared of p2 under %s", ev.CallID)
	}
	if a := agentOf(t, e, "bob"); a.State != callbridge.AgentWorkingAfterCall {
		t.Fatalf("bob after his call: %+v", a)
	}
	out = e.HandleSwitchEvent(callbridge.SwitchEvent{Type: callbridge.SwitchCallCleared, PBXCallID: "p2", Time: f.now.Add(2 * time.Second)})
	if ev := only(t, out, callbridge.EventCallCleared); ev.CallID != p2.ID || callData(ev).Cause != callbridge.CauseNormal || callData(ev).AttachedData["crm"] != "C-1" {
		t.Fatalf("p2 cleared: %+v", callData(ev))
	}
}

func callByPBX(t *testing.T, e *engine.Engine, pbx string) callbridge.Call {
	t.Helper()
	for _, c := range e.Calls(acme) {
		if c.PBXCallID == pbx {
			return c
		}
	}
	t.Fatalf("no call %s", pbx)
	return callbridge.Call{}
}

func agentOf(t *testing.T, e *engine.Engine, id callbridge.AgentID) callbridge.Agent {
	t.Helper()
	s, err := e.Snapshot(acme, id)
	if err != nil {
		t.Fatal(err)
	}
	return s.Agent
}

// TestRecoverRefusesBadEvents: an event Recover cannot fold is an error and changes nothing.
func TestRecoverRefusesBadEvents(t *testing.T) {
	f := newFixture(t)
	f.logOn("1001", "acme-support")
	c := f.answeredCall("p1", "1001")
	before, err := f.e.MarshalState()
	if err != nil {
		t.Fatal(err)
	}
	good := wire(t, only(t, f.ev(callbridge.SwitchEvent{Type: callbridge.SwitchHeld, PBXCallID: "p1", Device: "1001"}), callbridge.EventCallHeld))
	e := recoverFrom(t, before, nil)
	bad := func(mod func(w *callbridge.WireEvent)) callbridge.WireEvent {
		w := good
		w.Data = slices.Clone(good.Data)
		mod(&w)
		return w
	}
	cases := map[string]callbridge.WireEvent{
		"unknown type":  bad(func(w *callbridge.WireEvent) { w.Type = "call" }),
		"other type":    bad(func(w *callbridge.WireEvent) { w.Type = "queue.changed" }),
		"data not json": bad(func(w *callbridge.WireEvent) { w.Data = []byte("{") }),
		"data array":    bad(func(w *callbridge.WireEvent) { w.Data = []byte("[]") }),
		"no data":       bad(func(w *callbridge.WireEvent) { w.Data = nil }),
		"other tenant":  bad(func(w *callbridge.WireEvent) { w.Tenant = globex }),
		"no tenant":     bad(func(w *callbridge.WireEvent) { w.Tenant = "" }),
		"no call_id":    bad(func(w *callbridge.WireEvent) { w.Data = bytes.Replace(w.Data, []byte(c.ID), nil, 1) }),
		"no pbx_call_id": bad(func(w *callbridge.WireEvent) {
			w.Data = bytes.Replace(w.Data, []byte(`"pbx_call_id":"p1"`), []byte(`"pbx_call_id":""`), 1)
		}),
		"other pbx_call_id": bad(func(w *callbridge.WireEvent) {
			w.Data = bytes.Replace(w.Data, []byte(`"pbx_call_id":"p1"`), []byte(`"pbx_call_id":"p7"`), 1)
		}),
		"device twice": bad(func(w *callbridge.WireEvent) {
			w.Data = bytes.Replace(w.Data, []byte(`"connections":[`), []byte(`"connections":[{"device":"1001","state":"held"},`), 1)
		}),
		"agent no id":             {Type: callbridge.EventAgentStateChanged, Tenant: acme, Data: []byte(`{"tenant":"acme","state":"ready"}`)},
		"agent of another tenant": {Type: callbridge.EventAgentStateChanged, Tenant: acme, Data: []byte(`{"agent":"gina","tenant":"globex","state":"ready"}`)},
		"agent data not json":     {Type: callbridge.EventAgentLoggedOn, Tenant: acme, Data: []byte(`"x"`)},
	}
	for name, w := range cases {
		if err := e.Recover(w); callbridge.ErrorCode(err) != callbridge.EInvalid || callbridge.ErrorMessage(err) == "" {
			t.Errorf("%s: Recover = %v, want an invalid error", name, err)
		}
	}
	after, err := e.MarshalState()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(before, after) {
		t.Fatalf("refused events changed the state:\n%s\n%s", before, after)
	}
	// An agent who left the directory is skipped; the event itself is fine.
	if err := e.Recover(callbridge.WireEvent{Type: callbridge.EventAgentStateChanged, Tenant: acme, Time: f.now,
		Data: []byte(`{"agent":"nobody","tenant":"acme","state":"ready"}`)}); err != nil {
		t.Fatalf("event of an unknown agent: %v", err)
	}
	if err := e.Recover(good); err != nil {
		t.Fatal(err)
	}
	if got := callByPBX(t, e, "p1"); got.Connections[1].State != callbridge.ConnHeld {
		t.Fatalf("the good event was not folded: %+v", got)
	}
}

// FuzzRecover: no event data may panic Recover; whatever it accepts leaves a state that
// marshals and restores to the same bytes and that a resync can reconcile.
func FuzzRecover(f *testing.F) {
	fx := newFixture(f)
	fx.logOn("1001", "acme-support")
	out := fx.evs(inbound("p1", didAcme, ivr()), queued("p1", "acme-support"), alerting("p1", "1001"), connected("p1", "1001"))
	saved, err := fx.e.MarshalState()
	if err != nil {
		f.Fatal(err)
	}
	for _, ev := range out.Events {
		w := wire(f, ev)
		f.Add(string(w.Type), []byte(w.Data))
	}
	f.Add("call.failed", []byte(`{"call_id":"x","pbx_call_id":"p9","tenant":"acme","device":"1001","connections":[{"device":"1001","state":"failed"}]}`))
	f.Add("call.transferred", []byte(`{"call_id":"x","pbx_call_id":"p1","tenant":"acme","consult_call_id":"x","transferring_device":"1001","consult_of":"x"}`))
	f.Fuzz(func(t *testing.T, typ string, data []byte) {
		e, err := engine.Restore(engine.Config{Directory: testDirectory(), Capabilities: allCaps(), NewCallID: (&idCounter{}).next}, saved)
		if err != nil {
			t.Fatal(err)
		}
		if err := e.Recover(callbridge.WireEvent{Type: callbridge.EventType(typ), Tenant: acme, Time: t0.Add(time.Hour), Data: data}); err != nil {
			if callbridge.ErrorCode(err) != callbridge.EInvalid {
				t.Fatalf("Recover: %v", err)
			}
			return
		}
		st, err := e.MarshalState()
		if err != nil {
			return // a time the encoding cannot hold
		}
		if _, err := engine.Restore(engine.Config{Directory: testDirectory(), Capabilities: allCaps(), NewCallID: (&idCounter{}).next}, st); err != nil {
			t.Fatalf("the recovered state does not restore: %v\n%s", err, st)
		}
		e.HandleSwitchEvent(callbridge.SwitchEvent{Type: callbridge.SwitchSnapshot, Snapshot: &callbridge.Snapshot{}})
		for _, tn := range simTenants {
			if cs := e.Calls(tn); len(cs) != 0 {
				t.Fatalf("calls after an empty resync: %+v", cs)
			}
		}
		e.Tick(e.Now().Add(time.Hour))
	})
}

// TestDetachAllDesktops: after a restart the desktops of the saved state are gone; an agent
// whose desktop does not come back within the grace time becomes not_ready desktop_lost, one
// whose desktop comes back does not.
func TestDetachAllDesktops(t *testing.T) {
	cfg := persistConfig(idGen())
	e, err := engine.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{t: t, e: e, now: t0}
	f.logOn("1001", "acme-support")
	f.logOn("1002", "acme-support")
	for _, ag := range []callbridge.AgentID{"alice", "bob"} {
		if _, err := e.DesktopAttached(acme, ag, "tab", f.now); err != nil {
			t.Fatal(err)
		}
	}
	saved, err := e.MarshalState()
	if err != nil {
		t.Fatal(err)
	}
	f.wait(time.Minute)
	r, err := engine.Restore(cfg, saved)
	if err != nil {
		t.Fatal(err)
	}
	if out := r.DetachAllDesktops(f.now); len(out.Events)+len(out.Commands) != 0 {
		t.Fatalf("detaching gives %+v before the grace time", out)
	}
	f.wait(time.Second)
	if _, err := r.DesktopHeartbeat(acme, "bob", "tab", f.now); err != nil { // bob's desktop reconnects
		t.Fatal(err)
	}
	f.wait(cfg.DesktopGrace)
	out := r.Tick(f.now)
	if len(out.Commands) != 1 || out.Commands[0].Device != "1001" || out.Commands[0].Reason != callbridge.ReasonDesktopLost {
		t.Fatalf("after the grace time: %+v, want alice paused desktop_lost", out.Commands)
	}
	if a := agentOf(t, r, "alice"); a.State != callbridge.AgentNotReady || a.Reason != callbridge.ReasonDesktopLost {
		t.Fatalf("alice: %+v", a)
	}
	if a := agentOf(t, r, "bob"); a.State != callbridge.AgentReady {
		t.Fatalf("bob, whose desktop came back: %+v", a)
	}
}
