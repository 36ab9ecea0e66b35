package node_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/callbridge/callbridge"
	"github.com/callbridge/callbridge/engine"
	"github.com/callbridge/callbridge/internal/testenv"
	"github.com/callbridge/callbridge/node"
	"github.com/callbridge/callbridge/sim"
)

// memLog is an in-memory EventLog without subscriptions.
type memLog struct {
	mu  sync.Mutex
	evs []callbridge.Event
}

func (l *memLog) Append(_ context.Context, ev callbridge.Event) (uint64, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.evs = append(l.evs, ev)
	return uint64(len(l.evs)), nil
}

func (l *memLog) LastSeq(context.Context) (uint64, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return uint64(len(l.evs)), nil
}

func (l *memLog) Subscribe(context.Context, callbridge.Filter, uint64, func(callbridge.WireEvent)) (callbridge.Subscription, error) {
	return nil, callbridge.Errorf(callbridge.ENotSupported, "no subscriptions")
}

func (l *memLog) find(typ callbridge.EventType, f func(callbridge.Event) bool) (callbridge.Event, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, ev := range l.evs {
		if ev.Type == typ && (f == nil || f(ev)) {
			return ev, true
		}
	}
	return callbridge.Event{}, false
}

// refusing is the simulated PBX with a switch that refuses the next n commands.
type refusing struct {
	*sim.Driver
	mu sync.Mutex
	n  int
}

func (r *refusing) Execute(ctx context.Context, c callbridge.SwitchCommand) error {
	r.mu.Lock()
	if r.n > 0 {
		r.n--
		r.mu.Unlock()
		return callbridge.Errorf(callbridge.ESwitchRejected, "switch says no")
	}
	r.mu.Unlock()
	return r.Driver.Execute(ctx, c)
}

func directory() callbridge.Directory {
	return callbridge.Directory{Tenants: []callbridge.TenantConfig{{
		ID: "demo", DIDs: []string{"18005550199"}, ReasonCodes: []string{"break"},
		Queues: []callbridge.QueueConfig{{Name: "support"}},
		Users: []callbridge.UserConfig{
			{Username: "agent1", Role: callbridge.RoleAgent, Device: "1001", Queues: []callbridge.QueueName{"support"}},
			{Username: "agent2", Role: callbridge.RoleAgent, Device: "1002", Queues: []callbridge.QueueName{"support"}},
		},
	}}}
}

func start(t *testing.T, grace time.Duration) (*node.Node, *refusing, *memLog) {
	t.Helper()
	dir := directory()
	drv := &refusing{Driver: sim.New(sim.Config{Directory: dir}, nil)}
	n := 0
	eng, err := engine.New(engine.Config{Directory: dir, Capabilities: drv.Capabilities(), Now: time.Now(), DesktopGrace: grace,
		NewCallID: func(time.Time) callbridge.CallID {
			n++
			return callbridge.CallID(fmt.Sprintf("01J%023d", n))
		}})
	if err != nil {
		t.Fatal(err)
	}
	log := &memLog{}
	nd := node.New(node.Config{Driver: drv, Engine: eng, Log: node.Synchronous(log), TickInterval: 20 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { nd.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	waitReady(t, nd)
	return nd, drv, log
}

func agentCmd(name callbridge.CommandName, agent callbridge.AgentID) callbridge.Command {
	return callbridge.Command{Name: name, Tenant: "demo", Agent: agent, Role: callbridge.RoleAgent}
}

// TestDoStagesAndAborts: a command the switch refuses is aborted (its idempotency key is
// free again, nothing changed); the retry is carried out once.
func TestDoStagesAndAborts(t *testing.T) {
	nd, drv, log := start(t, 0)
	ctx := context.Background()
	drv.mu.Lock()
	drv.n = 1
	drv.mu.Unlock()
	c := agentCmd(callbridge.CmdSetAgentState, "agent1")
	c.State, c.IdempotencyKey = callbridge.AgentReady, "k1"
	if _, err := nd.Do(ctx, c); callbridge.ErrorCode(err) != callbridge.ESwitchRejected {
		t.Fatalf("refused command: %v", err)
	}
	if snap, _ := nd.Snapshot(ctx, "demo", "agent1"); snap.Agent.State != callbridge.AgentLoggedOut {
		t.Fatalf("after the refusal agent1 = %+v", snap.Agent)
	}
	if _, err := nd.Do(ctx, c); err != nil {
		t.Fatalf("retry: %v", err)
	}
	if _, err := nd.Do(ctx, c); err != nil {
		t.Fatalf("duplicate: %v", err)
	}
	if err := nd.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if snap, _ := nd.Snapshot(ctx, "demo", "agent1"); snap.Agent.State != callbridge.AgentReady {
		t.Fatalf("agent1 = %+v", snap.Agent)
	}
	// make_call: the reply's call_id is the call the switch's events name.
	m := agentCmd(callbridge.CmdMakeCall, "agent2")
	m.To, m.AttachedData = "+15557654321", map[string]string{"crm": "K-1"}
	res, err := nd.Do(ctx, m)
	if err != nil {
		t.Fatal(err)
	}
	if err := nd.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	ev, ok := log.find(callbridge.EventCallOriginated, nil)
	if !ok || ev.CallID != res.CallID || ev.Data.(*callbridge.CallEvent).AttachedData["crm"] != "K-1" {
		t.Fatalf("originated %+v, want call %s", ev, res.CallID)
	}
}

// TestPresenceThroughTheNode: desktops reach the engine with the node's clock; the last one
// gone for the grace time makes the agent not_ready desktop_lost, with the switch paused.
func TestPresenceThroughTheNode(t *testing.T) {
	nd, _, log := start(t, 100*time.Millisecond)
	ctx := context.Background()
	c := agentCmd(callbridge.CmdSetAgentState, "agent1")
	c.State = callbridge.AgentReady
	if _, err := nd.Do(ctx, c); err != nil {
		t.Fatal(err)
	}
	if err := nd.DesktopAttached(ctx, "demo", "agent1", "d1"); err != nil {
		t.Fatal(err)
	}
	if err := nd.DesktopHeartbeat(ctx, "demo", "agent1", "d1"); err != nil {
		t.Fatal(err)
	}
	if err := nd.DesktopAttached(ctx, "demo", "nobody", "d1"); callbridge.ErrorCode(err) != callbridge.ENotFound {
		t.Fatalf("unknown agent: %v", err)
	}
	av, err := nd.Availability(ctx, "demo", "agent1")
	if err != nil || !av.Routable || av.Desktops != 1 {
		t.Fatalf("availability = %+v, %v", av, err)
	}
	if err := nd.DesktopDetached(ctx, "demo", "agent1", "d1"); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(testenv.Patience)
	for {
		if _, ok := log.find(callbridge.EventAgentStateChanged, func(ev callbridge.Event) bool {
			return ev.Data.(*callbridge.Agent).Reason == callbridge.ReasonDesktopLost
		}); ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no desktop_lost")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := nd.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	// The switch followed: a snapshot of the simulated PBX shows the pause.
	snap := nd.Driver().(*refusing).Snapshot().Snapshot
	for _, m := range snap.Members {
		if m.Device == "1001" && (!m.Paused || m.Reason != callbridge.ReasonDesktopLost) {
			t.Fatalf("switch member = %+v", m)
		}
	}
	if _, err := nd.Availability(ctx, "demo", "nobody"); callbridge.ErrorCode(err) != callbridge.ENotFound {
		t.Fatalf("unknown agent: %v", err)
	}
}

// gateLog is a node.EventLog that stores into memLog while its gate is open and, while it
// is shut, holds the appending loop (as the JetStream appender does with a full window
// while the log refuses appends).
type gateLog struct {
	log  *memLog
	mu   sync.Mutex
	open chan struct{}
	err  error
	held int
}

func newGateLog() *gateLog {
	g := &gateLog{log: &memLog{}, open: make(chan struct{})}
	close(g.open)
	return g
}

func (g *gateLog) shut(err error) {
	g.mu.Lock()
	g.open, g.err = make(chan struct{}), err
	g.mu.Unlock()
}

func (g *gateLog) reopen() {
	g.mu.Lock()
	close(g.open)
	g.err = nil
	g.mu.Unlock()
}

func (g *gateLog) Append(ctx context.Context, ev callbridge.Event, stored func(uint64, []byte)) error {
	g.mu.Lock()
	open := g.open
	g.held++
	g.mu.Unlock()
	defer func() { g.mu.Lock(); g.held--; g.mu.Unlock() }()
	select {
	case <-open:
	case <-ctx.Done():
		return ctx.Err()
	}
	seq, _ := g.log.Append(ctx, ev)
	if stored != nil {
		stored(seq, nil)
	}
	return nil
}

func (g *gateLog) Barrier(ctx context.Context, fn func()) error {
	g.mu.Lock()
	open := g.open
	g.mu.Unlock()
	select {
	case <-open:
		fn()
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (g *gateLog) Status() (int, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.held, g.err
}

// TestPushBackWhileTheLogRefusesAppends: while the event log cannot take an event the loop
// waits for it (nothing is dropped), readiness says why, requests beyond the loop's queue
// are refused with unavailable at once, and once the log is back every event is stored in
// order and the waiting requests complete.
func TestPushBackWhileTheLogRefusesAppends(t *testing.T) {
	dir := directory()
	drv := sim.New(sim.Config{Directory: dir}, nil)
	n := 0
	eng, err := engine.New(engine.Config{Directory: dir, Capabilities: drv.Capabilities(), Now: time.Now(),
		NewCallID: func(time.Time) callbridge.CallID { n++; return callbridge.CallID(fmt.Sprintf("01J%023d", n)) }})
	if err != nil {
		t.Fatal(err)
	}
	g := newGateLog()
	nd := node.New(node.Config{Driver: drv, Engine: eng, Log: g, TickInterval: time.Hour})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { nd.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	waitReady(t, nd)

	g.shut(errors.New("stream offline"))
	// agent1 logs on: its events reach the log, which holds the loop.
	first := make(chan error, 1)
	go func() {
		_, err := nd.Do(context.Background(), callbridge.Command{Name: callbridge.CmdSetAgentState, Tenant: "demo", Agent: "agent1",
			Role: callbridge.RoleAgent, State: callbridge.AgentReady})
		first <- err
	}()
	waitCond(t, "the loop to wait for the log", func() bool { held, _ := g.Status(); return held > 0 })
	if err := nd.Ready(); callbridge.ErrorCode(err) != callbridge.EUnavailable || !strings.Contains(err.Error(), "stream offline") {
		t.Errorf("Ready = %v, want unavailable naming the log's error", err)
	}
	// Fill the loop's queue; the request that finds it full is refused at once.
	var wg sync.WaitGroup
	refused := make(chan error, 2000)
	for i := 0; i < 1100; i++ {
		wg.Go(func() {
			err := nd.DesktopHeartbeat(context.Background(), "demo", "agent2", "d1")
			if err != nil {
				refused <- err
			}
		})
	}
	var busy error
	select {
	case busy = <-refused:
	case <-time.After(60 * time.Second):
		t.Fatal("no request was refused while the loop's queue was full")
	}
	if callbridge.ErrorCode(busy) != callbridge.EUnavailable || !strings.Contains(busy.Error(), "busy") {
		t.Fatalf("refusal = %v, want unavailable (busy)", busy)
	}

	g.reopen()
	if err := <-first; err != nil {
		t.Fatalf("the command held behind the log: %v", err)
	}
	wg.Wait()
	close(refused)
	for err := range refused {
		if callbridge.ErrorCode(err) != callbridge.EUnavailable {
			t.Errorf("a request failed with %v, want only unavailable refusals", err)
		}
	}
	if _, ok := g.log.find(callbridge.EventAgentStateChanged, func(ev callbridge.Event) bool { return ev.Agent == "agent1" }); !ok {
		t.Fatal("agent1's state change was not stored once the log was back")
	}
	waitReady(t, nd)
}

func waitReady(t *testing.T, nd *node.Node) {
	t.Helper()
	waitCond(t, "the node to be ready", func() bool { return nd.Ready() == nil })
}

func waitCond(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
