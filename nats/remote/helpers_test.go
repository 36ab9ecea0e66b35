package remote_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	natsgo "github.com/nats-io/nats.go"

	"github.com/callbridge/callbridge"
	"github.com/callbridge/callbridge/engine"
	"github.com/callbridge/callbridge/internal/testenv"
	cbnats "github.com/callbridge/callbridge/nats"
	"github.com/callbridge/callbridge/nats/remote"
	"github.com/callbridge/callbridge/node"
	"github.com/callbridge/callbridge/sim"
)

// site is the test's world: an embedded NATS server holding the event log, a node on the
// simulated PBX for site "msk" served by a Service on one connection, and a Client on
// another connection (the centre).
type site struct {
	srv     *cbnats.Server
	siteNC  *natsgo.Conn
	nc      *natsgo.Conn // the centre's connection
	node    *node.Node
	drv     *countingDriver
	svc     *remote.Service
	client  *remote.Client
	backend remote.Backend
}

// options of newSite.
type options struct {
	backend     func(*node.Node) remote.Backend // wraps the node (default: the node)
	client      remote.ClientConfig             // Route defaults to route
	grace       time.Duration
	maxInFlight int
}

// route places tenant "demo" at msk, tenant "far" at spb (a site nobody serves) and
// refuses tenant "ghost" as unknown.
func route(_ context.Context, t remote.Target) (callbridge.SiteID, error) {
	switch t.Tenant {
	case "far":
		return "spb", nil
	case "ghost":
		return "", callbridge.Errorf(callbridge.ENotFound, "tenant %q not found", t.Tenant)
	}
	return "msk", nil
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

func newSite(t *testing.T, o options) *site {
	t.Helper()
	ctx := testenv.Context(t)
	srv, err := cbnats.StartServer(ctx, cbnats.ServerConfig{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	s := &site{srv: srv}
	if s.siteNC, err = srv.Connect("site-msk"); err != nil {
		t.Fatal(err)
	}
	if s.nc, err = srv.Connect("centre"); err != nil {
		t.Fatal(err)
	}
	// The real event log, on "cb.>": requests must not land in it.
	evlog, err := cbnats.OpenEventLog(ctx, s.siteNC, cbnats.LogConfig{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(evlog.Close)

	dir := directory()
	s.drv = &countingDriver{Driver: sim.New(sim.Config{Directory: dir}, nil), counts: map[callbridge.SwitchCommandType]int{}}
	n := 0
	eng, err := engine.New(engine.Config{Directory: dir, Capabilities: s.drv.Capabilities(), Now: time.Now(), DesktopGrace: o.grace,
		NewCallID: func(time.Time) callbridge.CallID { n++; return callbridge.CallID(fmt.Sprintf("01J%023d", n)) }})
	if err != nil {
		t.Fatal(err)
	}
	s.node = node.New(node.Config{Driver: s.drv, Engine: eng, Log: node.Synchronous(evlog), TickInterval: 20 * time.Millisecond})
	nctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.node.Run(nctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	testenv.Eventually(t, "the node to be ready", func() bool { return s.node.Ready() == nil })

	s.backend = s.node
	if o.backend != nil {
		s.backend = o.backend(s.node)
	}
	s.svc, err = remote.NewService(ctx, s.siteNC, remote.ServiceConfig{Site: "msk", Backend: s.backend, MaxInFlight: o.maxInFlight})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		sctx, cancel := context.WithTimeout(context.Background(), testenv.Patience)
		defer cancel()
		if err := s.svc.Stop(sctx); err != nil {
			t.Errorf("stop service: %v", err)
		}
	})
	cc := o.client
	if cc.Route == nil {
		cc.Route = route
	}
	if s.client, err = remote.NewClient(s.nc, cc); err != nil {
		t.Fatal(err)
	}
	return s
}

func agentCmd(name callbridge.CommandName, agent callbridge.AgentID) callbridge.Command {
	return callbridge.Command{Name: name, Tenant: "demo", Agent: agent, Role: callbridge.RoleAgent}
}

// countingDriver is the simulated PBX counting the switch commands it carries out; while
// gate is set, a make_call signals entered and waits for gate to close before it runs.
type countingDriver struct {
	*sim.Driver
	mu      sync.Mutex
	counts  map[callbridge.SwitchCommandType]int
	gate    chan struct{}
	entered chan struct{}
}

func (d *countingDriver) Execute(ctx context.Context, c callbridge.SwitchCommand) error {
	d.mu.Lock()
	d.counts[c.Type]++
	gate, entered := d.gate, d.entered
	d.mu.Unlock()
	if c.Type == callbridge.SwitchMakeCall && gate != nil {
		entered <- struct{}{}
		<-gate
	}
	return d.Driver.Execute(ctx, c)
}

func (d *countingDriver) count(t callbridge.SwitchCommandType) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.counts[t]
}

// hold makes the next make_calls wait; it returns the channel that each signals on and the
// function that lets them all go.
func (d *countingDriver) hold() (entered <-chan struct{}, release func()) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.gate, d.entered = make(chan struct{}), make(chan struct{}, 16)
	gate := d.gate
	var once sync.Once
	return d.entered, func() { once.Do(func() { close(gate) }) }
}

// wantError fails unless err is a *callbridge.Error with code and message.
func wantError(t *testing.T, what string, err error, code, message string) {
	t.Helper()
	var e *callbridge.Error
	if !errors.As(err, &e) {
		t.Fatalf("%s: error %v (%T), want a *callbridge.Error %s: %s", what, err, err, code, message)
	}
	if e.Code != code || e.Message != message {
		t.Fatalf("%s: error %s: %q, want %s: %q", what, e.Code, e.Message, code, message)
	}
}
