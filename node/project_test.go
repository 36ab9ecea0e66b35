package node_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/callbridge/callbridge"
	"github.com/callbridge/callbridge/engine"
	"github.com/callbridge/callbridge/hub"
	"github.com/callbridge/callbridge/internal/testenv"
	"github.com/callbridge/callbridge/node"
	"github.com/callbridge/callbridge/sim"
)

// TestProjectionFromEventsMatchesTheEngine runs a site on the simulated PBX with robot agents
// and compares, for every agent whose snapshot the node published at the same sequence as
// the events last touched it, the engine's snapshot (the node's View) with the one a
// hub.Projector builds from the events alone (what a node without an engine serves).
func TestProjectionFromEventsMatchesTheEngine(t *testing.T) {
	dir := directory()
	drv := sim.New(sim.Config{Directory: dir, CallInterval: 30 * time.Millisecond, AgentAnswer: 20 * time.Millisecond,
		IVRTime: 10 * time.Millisecond, TalkTimeMin: 50 * time.Millisecond, TalkTimeMax: 200 * time.Millisecond,
		MembersLoggedIn: true}, nil)
	n := 0
	eng, err := engine.New(engine.Config{Directory: dir, Capabilities: drv.Capabilities(), Now: time.Now(),
		NewCallID: func(time.Time) callbridge.CallID { n++; return callbridge.CallID(fmt.Sprintf("01J%023d", n)) }})
	if err != nil {
		t.Fatal(err)
	}
	view, projected := hub.NewView(), hub.NewView()
	proj := hub.NewProjector(projected, func(callbridge.TenantID) []string { return []string{"break"} })
	var mu sync.Mutex
	compared, cleared := 0, 0
	var problems []string
	onEvent := func(ev callbridge.Event) {
		frame, _ := json.Marshal(ev)
		agents := ev.Audience
		if !ev.Type.IsCall() {
			agents = []callbridge.AgentID{ev.Agent}
		}
		if err := proj.Apply(hub.Message{Seq: ev.Seq, Tenant: ev.Tenant, Agents: agents, Frame: frame}); err != nil {
			t.Error(err)
		}
		mu.Lock()
		defer mu.Unlock()
		if ev.Type == callbridge.EventCallCleared {
			cleared++
		}
		for _, a := range agents {
			k := hub.Key{Tenant: ev.Tenant, Agent: a}
			want, ok1 := view.Get(k)
			got, ok2 := projected.Get(k)
			if !ok1 || !ok2 || want.Seq != got.Seq {
				continue // the engine's snapshot is of another point of the step
			}
			compared++
			if d := diffSnap(want, got); d != "" && len(problems) < 5 {
				problems = append(problems, fmt.Sprintf("seq %d %s: %s", ev.Seq, a, d))
			}
		}
	}
	nd := node.New(node.Config{Driver: drv, Engine: eng, Log: node.Synchronous(&memLog{}), View: view,
		OnEvent: onEvent, TickInterval: 20 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { nd.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	waitReady(t, nd)
	for _, a := range []callbridge.AgentID{"agent1", "agent2"} {
		c := agentCmd(callbridge.CmdSetAgentState, a)
		c.State = callbridge.AgentReady
		if _, err := nd.Do(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	testenv.Eventually(t, "40 calls to clear", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return cleared >= 40
	})
	mu.Lock()
	defer mu.Unlock()
	if len(problems) > 0 {
		t.Fatalf("the projection differs from the engine:\n%s", problems)
	}
	if compared < 40 {
		t.Fatalf("only %d comparisons", compared)
	}
	t.Logf("%d snapshots compared", compared)
}

// diffSnap describes how got differs from want in what a desktop draws.
func diffSnap(want, got callbridge.AgentSnapshot) string {
	wa, ga := want.Agent, got.Agent
	wa.PreviousState, ga.PreviousState = "", ""
	if fmt.Sprint(wa) != fmt.Sprint(ga) {
		return fmt.Sprintf("agent %+v, want %+v", ga, wa)
	}
	ids := func(cs []callbridge.Call) []string {
		var out []string
		for _, c := range cs {
			out = append(out, fmt.Sprintf("%s%v", c.ID, c.Connections))
		}
		return out
	}
	if !slices.Equal(ids(want.Calls), ids(got.Calls)) {
		return fmt.Sprintf("calls %v, want %v", ids(got.Calls), ids(want.Calls))
	}
	return ""
}
