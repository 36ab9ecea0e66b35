package records_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/callbridge/callbridge"
	"github.com/callbridge/callbridge/engine"
	"github.com/callbridge/callbridge/internal/testenv"
	cbnats "github.com/callbridge/callbridge/nats"
	"github.com/callbridge/callbridge/records"
	"github.com/callbridge/callbridge/sim"
	"github.com/callbridge/callbridge/sqlite"
)

// waitTimeout bounds every wait; tests poll for a state, they never sleep to pass.
const waitTimeout = testenv.Patience

// t0 is the fake clock's start (a whole second: stored times are exact).
var t0 = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)

func sec(n int) time.Time { return t0.Add(time.Duration(n) * time.Second) }

// testWriter sends log lines to t.Log until the test's cleanup has run.
type testWriter struct {
	mu   sync.Mutex
	t    testing.TB
	done bool
}

func (w *testWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.t.Log(string(bytes.TrimRight(p, "\n")))
	}
	return len(p), nil
}

func testLogger(t testing.TB) *slog.Logger {
	w := &testWriter{t: t}
	t.Cleanup(func() { w.mu.Lock(); w.done = true; w.mu.Unlock() })
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// provisioning is one tenant with a queue, an agent (alice on 1001) and 10 s of wrap-up.
func provisioning() callbridge.Provisioning {
	return callbridge.Provisioning{Tenants: []callbridge.TenantConfig{{
		ID: "acme", Name: "ACME", DIDs: []string{"18005550100"}, WrapUpSeconds: 10,
		AttachedData: []string{"IVR_ACCOUNT", "IVR_REASON"},
		ReasonCodes:  []string{"break"},
		Queues:       []callbridge.QueueConfig{{Name: "acme-support"}},
		Users: []callbridge.UserConfig{
			{Username: "alice", Password: "pw", Role: callbridge.RoleAgent, Name: "Alice", Device: "1001", Queues: []callbridge.QueueName{"acme-support"}},
			{Username: "bob", Password: "pw", Role: callbridge.RoleAgent, Name: "Bob", Device: "1002", Queues: []callbridge.QueueName{"acme-support"}},
		},
	}}}
}

// world is a site driven by hand on a fake clock: the simulated switch's pure core, the
// engine, the real event log (embedded NATS) and the real SQLite store. It does what package
// node does, synchronously: switch events into the engine, the engine's events into the log,
// its switch commands back into the switch.
type world struct {
	t     *testing.T
	now   time.Time
	pbx   *sim.PBX
	eng   *engine.Engine
	log   *cbnats.EventLog
	store *sqlite.DB
	// appended are the events appended so far, with their sequences.
	appended []callbridge.Event
	seqs     []uint64
}

func newWorld(t *testing.T) *world {
	t.Helper()
	ctx := t.Context()
	store, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "callbridge.db"), testLogger(t), sqlite.WithBcryptCost(bcrypt.MinCost))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	if err := store.Provision(ctx, provisioning()); err != nil {
		t.Fatal(err)
	}
	dir, err := store.Directory(ctx)
	if err != nil {
		t.Fatal(err)
	}

	sctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	srv, err := cbnats.StartServer(sctx, cbnats.ServerConfig{DataDir: t.TempDir(), Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	nc, err := srv.Connect(t.Name())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	evlog, err := cbnats.OpenEventLog(sctx, nc, cbnats.LogConfig{Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(evlog.Close)

	n := 0
	eng, err := engine.New(engine.Config{
		Directory:    dir,
		Capabilities: sim.Capabilities(),
		NewCallID:    func(time.Time) callbridge.CallID { n++; return callbridge.CallID(fmt.Sprintf("CALL%04d", n)) },
		Now:          t0,
	})
	if err != nil {
		t.Fatal(err)
	}
	pbx := sim.NewPBX(sim.Config{
		Directory: dir, Start: t0,
		IVRTime: 3 * time.Second, RingTimeout: 60 * time.Second, CallerPatience: 30 * time.Second,
		TalkTimeMin: time.Hour, TalkTimeMax: time.Hour,
	})
	w := &world{t: t, now: t0, pbx: pbx, eng: eng, log: evlog, store: store}
	w.feed([]callbridge.SwitchEvent{pbx.Snapshot(t0)})
	return w
}

// handle appends out's events and carries out its switch commands.
func (w *world) handle(out engine.Output) {
	w.t.Helper()
	for _, ev := range out.Events {
		seq, err := w.log.Append(context.Background(), ev)
		if err != nil {
			w.t.Fatalf("append %s: %v", ev.Type, err)
		}
		w.appended = append(w.appended, ev)
		w.seqs = append(w.seqs, seq)
	}
	for _, sc := range out.Commands {
		evs, err := w.pbx.Execute(w.now, sc)
		if err != nil {
			w.t.Fatalf("switch refused the engine's %s: %v", sc.Type, err)
		}
		w.feed(evs)
	}
}

// feed hands switch events to the engine.
func (w *world) feed(evs []callbridge.SwitchEvent) {
	w.t.Helper()
	for _, ev := range evs {
		w.handle(w.eng.HandleSwitchEvent(ev))
	}
}

// at moves the fake clock to second n: due switch timers fire, then engine timers.
func (w *world) at(n int) {
	w.t.Helper()
	w.now = sec(n)
	w.feed(w.pbx.Advance(w.now))
	w.handle(w.eng.Tick(w.now))
}

// do runs a command as package node does: plan, switch commands, apply.
func (w *world) do(cmd callbridge.Command) callbridge.CommandResult {
	w.t.Helper()
	if cmd.Tenant == "" {
		cmd.Tenant = "acme"
	}
	if cmd.Role == "" {
		cmd.Role = callbridge.RoleAgent
	}
	cmd.Time = w.now
	plan, err := w.eng.Plan(cmd)
	if err != nil {
		w.t.Fatalf("%s: %v", cmd.Name, err)
	}
	var evs []callbridge.SwitchEvent
	for _, sc := range plan.Commands {
		out, err := w.pbx.Execute(w.now, sc)
		if err != nil {
			w.t.Fatalf("%s: switch: %v", cmd.Name, err)
		}
		evs = append(evs, out...)
	}
	w.handle(w.eng.Apply(cmd, plan))
	w.feed(evs)
	return plan.Result
}

// inject starts an inbound call from ani to the tenant's DID and returns its CallID once the
// engine knows it.
func (w *world) inject(ani string, data map[string]string) callbridge.CallID {
	w.t.Helper()
	pbxID, err := w.pbx.InjectCall(w.now, "acme", ani, "18005550100", data)
	if err != nil {
		w.t.Fatal(err)
	}
	w.feed(w.pbx.Advance(w.now))
	for _, c := range w.eng.Calls("acme") {
		if c.PBXCallID == pbxID {
			return c.ID
		}
	}
	w.t.Fatalf("engine does not know call %s", pbxID)
	return ""
}

// consume runs a records consumer on the world's log and store until the test ends.
func (w *world) consume(onEnqueue func()) *records.Consumer {
	w.t.Helper()
	c := records.New(records.Config{
		Log: w.log, Store: w.store, Logger: testLogger(w.t), OnEnqueue: onEnqueue,
		Tenants: func(context.Context) ([]callbridge.TenantID, error) { return []callbridge.TenantID{"acme"}, nil },
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); c.Run(ctx) }()
	w.t.Cleanup(func() { cancel(); <-done })
	return c
}

// waitRecord polls until the record of id satisfies ok.
func (w *world) waitRecord(id callbridge.CallID, what string, ok func(callbridge.CallRecord) bool) callbridge.CallRecord {
	w.t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for {
		rec, err := w.store.CallRecord(context.Background(), "acme", id)
		if err == nil && ok(rec) {
			return rec
		}
		if time.Now().After(deadline) {
			w.t.Fatalf("timed out waiting for the record of %s to be %s; last: %+v (%v)", id, what, rec, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
