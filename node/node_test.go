package node_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/callbridge/callbridge"
	"github.com/callbridge/callbridge/engine"
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
	for nd.Ready() != nil {
		time.Sleep(5 * time.Millisecond)
	}
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
	deadline := time.Now().Add(5 * time.Second)
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
