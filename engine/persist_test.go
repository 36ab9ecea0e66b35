package engine_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/callbridge/callbridge"
	"github.com/callbridge/callbridge/engine"
)

// persistConfig is the configuration of the persistence tests: the test directory, every
// capability, desktops with a grace time and a heartbeat timeout, and gen as id generator.
func persistConfig(gen func(time.Time) callbridge.CallID) engine.Config {
	return engine.Config{
		Directory: testDirectory(), Capabilities: allCaps(), NewCallID: gen, Now: t0,
		DesktopGrace: 30 * time.Second, HeartbeatTimeout: 20 * time.Second,
	}
}

// newPersistSim is newSim on an engine with desktops (persistConfig); it returns the sim and
// its configuration (whose id generator the sim's engine uses).
func newPersistSim(t *testing.T, seed uint64) (*sim, engine.Config) {
	t.Helper()
	s := newSim(t, seed)
	cfg := persistConfig(idGen())
	e, err := engine.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	s.f = &fixture{t: t, e: e, now: t0}
	return s, cfg
}

// presence is a desktop of a random agent attaching, heartbeating or detaching.
func (s *sim) presence(r *rand.Rand) {
	s.t.Helper()
	tn := pick(r, simTenants)
	ag := pick(r, simAgents[tn])
	desk := pick(r, []string{"d1", "d2", "d3"})
	var out engine.Output
	var err error
	switch r.IntN(3) {
	case 0:
		out, err = s.f.e.DesktopAttached(tn, ag, desk, s.f.now)
	case 1:
		out, err = s.f.e.DesktopHeartbeat(tn, ag, desk, s.f.now)
	default:
		out, err = s.f.e.DesktopDetached(tn, ag, desk, s.f.now)
	}
	if err != nil {
		s.t.Fatalf("presence of %s/%s: %v", tn, ag, err)
	}
	s.feedOut(out)
}

// restoreSame marshals e, restores it with cfg and checks that the restored engine
// marshals to the same bytes and has the same device index.
func restoreSame(t *testing.T, e *engine.Engine, cfg engine.Config) *engine.Engine {
	t.Helper()
	st, err := e.MarshalState()
	if err != nil {
		t.Fatalf("MarshalState: %v", err)
	}
	r, err := engine.Restore(cfg, st)
	if err != nil {
		t.Fatalf("Restore: %v\n%s", err, st)
	}
	again, err := r.MarshalState()
	if err != nil {
		t.Fatalf("MarshalState after Restore: %v", err)
	}
	if !bytes.Equal(st, again) {
		t.Fatalf("Restore then MarshalState changed the state:\n%s\n%s", st, again)
	}
	if !reflect.DeepEqual(engine.DevCallsOf(e), engine.DevCallsOf(r)) {
		t.Fatalf("device index differs after Restore:\n%v\n%v", engine.DevCallsOf(e), engine.DevCallsOf(r))
	}
	return r
}

// TestRestoreContinuesTheRun runs the random simulation (random_test.go, with desktops
// attaching, heartbeating and detaching) twice with the same seed; in the second run the
// engine is replaced at random steps by Restore(MarshalState()). Every restore must give back
// the same bytes and device index, and both runs must produce exactly the same outputs: the
// state holds everything that decides a later output.
func TestRestoreContinuesTheRun(t *testing.T) {
	steps := 3000
	if testing.Short() {
		steps = 600
	}
	for seed := uint64(1); seed <= 6; seed++ {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			t.Parallel()
			a, _ := newPersistSim(t, seed)
			b, cfgB := newPersistSim(t, seed)
			pa, pb := rand.New(rand.NewPCG(seed, 1)), rand.New(rand.NewPCG(seed, 1))
			points := rand.New(rand.NewPCG(seed, 2))
			a.onStep = func(int) {
				if pa.IntN(4) == 0 {
					a.presence(pa)
				}
			}
			restores := 0
			b.onStep = func(int) {
				if pb.IntN(4) == 0 {
					b.presence(pb)
				}
				if points.IntN(25) == 0 {
					b.f.e = restoreSame(t, b.f.e, cfgB)
					restores++
				}
			}
			a.run(steps)
			b.run(steps)
			if restores < steps/50 {
				t.Fatalf("only %d restores", restores)
			}
			if len(a.outputs) != len(b.outputs) {
				t.Fatalf("%d outputs without restores, %d with", len(a.outputs), len(b.outputs))
			}
			for i := range a.outputs {
				if !reflect.DeepEqual(a.outputs[i], b.outputs[i]) {
					t.Fatalf("output %d differs after a restore:\n%+v\n%+v", i, a.outputs[i], b.outputs[i])
				}
			}
			lost := 0
			for _, out := range a.outputs {
				for _, c := range out.Commands {
					if c.Reason == callbridge.ReasonDesktopLost {
						lost++
					}
				}
			}
			if lost == 0 {
				t.Fatalf("no desktop_lost in the run: desktops were not exercised")
			}
			t.Logf("%d restores, %d outputs, %d desktop_lost pauses", restores, len(a.outputs), lost)
		})
	}
}

// TestRestoreKeepsPendingChecks: right after New every agent's state check is due with the
// next input; the state keeps that, and a restored engine behaves like the original.
func TestRestoreKeepsPendingChecks(t *testing.T) {
	cfg := persistConfig(idGen())
	e, err := engine.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	st, err := e.MarshalState()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(st), `"touched":[{"tenant":"acme","agent":"alice"}`) {
		t.Fatalf("state after New has no pending agent checks: %s", st)
	}
	restoreSame(t, e, cfg)
}

// TestRestoreDirectoryChanges: agents no longer in the directory are dropped, new ones start
// logged_out, calls keep their call_id and tenant.
func TestRestoreDirectoryChanges(t *testing.T) {
	f := newFixture(t)
	f.logOn("1001", "acme-support")
	f.logOn("1002", "acme-support")
	c := f.answeredCall("p1", "1002")
	st, err := f.e.MarshalState()
	if err != nil {
		t.Fatal(err)
	}
	dir := testDirectory()
	users := dir.Tenants[0].Users
	for i, u := range users {
		if u.Username == "alice" {
			users = append(users[:i], users[i+1:]...)
			break
		}
	}
	users = append(users, callbridge.UserConfig{Username: "zed", Role: callbridge.RoleAgent, Device: "1020", Queues: []callbridge.QueueName{"acme-support"}})
	dir.Tenants[0].Users = users
	e, err := engine.Restore(engine.Config{Directory: dir, Capabilities: allCaps(), NewCallID: idGen()}, st)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.Snapshot(acme, "alice"); callbridge.ErrorCode(err) != callbridge.ENotFound {
		t.Fatalf("alice after she left the directory: %v", err)
	}
	snap, err := e.Snapshot(acme, "zed")
	if err != nil || snap.Agent.State != callbridge.AgentLoggedOut {
		t.Fatalf("new agent zed: %+v %v", snap.Agent, err)
	}
	bob, err := e.Snapshot(acme, "bob")
	if err != nil || bob.Agent.State != callbridge.AgentBusy || len(bob.Calls) != 1 || !reflect.DeepEqual(bob.Calls[0], c) {
		t.Fatalf("bob after restore: %+v %v, want busy on %+v", bob, err, c)
	}
	if !e.Now().Equal(f.now) {
		t.Fatalf("clock after restore = %v, want %v", e.Now(), f.now)
	}
}

// TestRestoreRefusesBadState: every malformed or foreign state is an error and no engine.
func TestRestoreRefusesBadState(t *testing.T) {
	f := newFixture(t)
	f.logOn("1001", "acme-support")
	f.answeredCall("p1", "1001")
	good, err := f.e.MarshalState()
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(good, &doc); err != nil {
		t.Fatal(err)
	}
	edit := func(f func(map[string]any)) []byte {
		var d map[string]any
		if err := json.Unmarshal(good, &d); err != nil {
			t.Fatal(err)
		}
		f(d)
		b, err := json.Marshal(d)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	calls := func(d map[string]any) []any { return d["calls"].([]any) }
	cases := map[string][]byte{
		"empty":          nil,
		"not json":       []byte("{version:1"),
		"array":          []byte("[1]"),
		"no version":     edit(func(d map[string]any) { delete(d, "version") }),
		"version 1":      edit(func(d map[string]any) { d["version"] = 1 }),
		"version 3":      edit(func(d map[string]any) { d["version"] = 3 }),
		"version 0":      edit(func(d map[string]any) { d["version"] = 0 }),
		"unknown field":  edit(func(d map[string]any) { d["extra"] = true }),
		"trailing data":  append(append([]byte{}, good...), []byte(` {}`)...),
		"wrong type":     edit(func(d map[string]any) { d["now"] = 5 }),
		"call twice":     edit(func(d map[string]any) { d["calls"] = append(calls(d), calls(d)[0]) }),
		"call no id":     edit(func(d map[string]any) { calls(d)[0].(map[string]any)["call"].(map[string]any)["call_id"] = "" }),
		"call no pbx id": edit(func(d map[string]any) { calls(d)[0].(map[string]any)["call"].(map[string]any)["pbx_call_id"] = "" }),
		"device twice on a call": edit(func(d map[string]any) {
			c := calls(d)[0].(map[string]any)["call"].(map[string]any)
			c["connections"] = append(c["connections"].([]any), c["connections"].([]any)[0])
		}),
		"agent twice": edit(func(d map[string]any) { d["agents"] = append(d["agents"].([]any), d["agents"].([]any)[0]) }),
	}
	for name, st := range cases {
		t.Run(name, func(t *testing.T) {
			e, err := engine.Restore(persistConfig(idGen()), st)
			if e != nil || callbridge.ErrorCode(err) != callbridge.EInvalid || callbridge.ErrorMessage(err) == "" {
				t.Fatalf("Restore = %v, %v; want no engine and an invalid error", e, err)
			}
		})
	}
	if _, err := engine.Restore(persistConfig(nil), good); callbridge.ErrorCode(err) != callbridge.EInvalid {
		t.Fatalf("Restore without NewCallID: %v", err)
	}
	if _, err := engine.Restore(persistConfig(idGen()), good); err != nil {
		t.Fatalf("the unedited state: %v", err)
	}
}

// FuzzRestore: no input may panic Restore; a state it accepts marshals to a state that
// restores to the same bytes, and the engine takes a timer tick and a snapshot.
func FuzzRestore(f *testing.F) {
	fx := newFixture(f)
	fx.logOn("1001", "acme-support")
	fx.answeredCall("p1", "1001")
	_, _ = fx.e.DesktopAttached(acme, "alice", "d1", fx.now)
	good, err := fx.e.MarshalState()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add([]byte(`{"version":2}`))
	f.Add([]byte(`{"version":2,"now":"2026-01-01T00:00:00Z","calls":[{"call":{"call_id":"x","pbx_call_id":"p","connections":[{"device":"1001","state":"held"}]}}]}`))
	f.Fuzz(func(t *testing.T, in []byte) {
		cfg := persistConfig(idGen())
		e, err := engine.Restore(cfg, in)
		if err != nil {
			if e != nil || callbridge.ErrorCode(err) != callbridge.EInvalid {
				t.Fatalf("Restore = %v, %v", e, err)
			}
			return
		}
		st, err := e.MarshalState()
		if err != nil {
			return // a time the encoding cannot hold
		}
		restoreSame(t, e, cfg)
		e.Tick(e.Now().Add(time.Hour))
		for _, tn := range simTenants {
			e.Calls(tn)
			for _, a := range e.Agents(tn) {
				if _, err := e.Snapshot(tn, a.ID); err != nil {
					t.Fatal(err)
				}
			}
		}
		e.HandleSwitchEvent(callbridge.SwitchEvent{Type: callbridge.SwitchSnapshot, Snapshot: &callbridge.Snapshot{}})
		_ = st
	})
}
