package nats_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	natsgo "github.com/nats-io/nats.go"

	"github.com/callbridge/callbridge"
	"github.com/callbridge/callbridge/internal/testenv"
	cbnats "github.com/callbridge/callbridge/nats"
)

// waitTimeout bounds every wait for an event (testenv.Patience, far above normal); tests
// never sleep for a fixed time to pass.
const waitTimeout = testenv.Patience

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

// testLogger logs warnings and errors to the test log.
func testLogger(t testing.TB) *slog.Logger {
	w := &testWriter{t: t}
	t.Cleanup(func() { w.mu.Lock(); w.done = true; w.mu.Unlock() })
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// startServer starts an embedded server without a listener on dir, shut down at cleanup.
func startServer(t testing.TB, dir string) *cbnats.Server {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	s, err := cbnats.StartServer(ctx, cbnats.ServerConfig{DataDir: dir, Logger: testLogger(t)})
	if err != nil {
		t.Fatalf("StartServer: %v", err)
	}
	t.Cleanup(s.Shutdown)
	return s
}

// connect makes an in-process connection, closed at cleanup.
func connect(t testing.TB, s *cbnats.Server) *natsgo.Conn {
	t.Helper()
	nc, err := s.Connect(t.Name())
	if err != nil {
		t.Fatalf("Connect: %v", err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// openLog opens the event log on nc, closed at cleanup.
func openLog(t testing.TB, nc *natsgo.Conn, cfg cbnats.LogConfig) *cbnats.EventLog {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = testLogger(t)
	}
	l, err := cbnats.OpenEventLog(context.Background(), nc, cfg)
	if err != nil {
		t.Fatalf("OpenEventLog: %v", err)
	}
	t.Cleanup(l.Close)
	return l
}

// newLog starts a server in a temporary directory and opens an event log on it.
func newLog(t testing.TB) (*cbnats.Server, *natsgo.Conn, *cbnats.EventLog) {
	t.Helper()
	s := startServer(t, t.TempDir())
	nc := connect(t, s)
	return s, nc, openLog(t, nc, cbnats.LogConfig{})
}

// callEv is a call.delivered event of call in tenant for audience; label is carried in the
// event's data as "device" so that tests can tell events apart.
func callEv(tenant, call, label string, audience ...string) callbridge.Event {
	aud := make([]callbridge.AgentID, len(audience))
	for i, a := range audience {
		aud[i] = callbridge.AgentID(a)
	}
	return callbridge.Event{
		Type:     callbridge.EventCallDelivered,
		Time:     time.Date(2025, 3, 1, 9, 0, 0, 0, time.UTC),
		Tenant:   callbridge.TenantID(tenant),
		CallID:   callbridge.CallID(call),
		Audience: aud,
		Data: &callbridge.CallEvent{
			Call: callbridge.Call{
				ID:           callbridge.CallID(call),
				Tenant:       callbridge.TenantID(tenant),
				Direction:    callbridge.DirInbound,
				ANI:          "+15551230001",
				AttachedData: map[string]string{"IVR_ACCOUNT": "42"},
				Connections:  []callbridge.Connection{},
			},
			Device: callbridge.DeviceID(label),
		},
	}
}

// agentEv is an agent.state_changed event of agent in tenant; label is carried as "reason".
func agentEv(tenant, agent, label string) callbridge.Event {
	return callbridge.Event{
		Type:     callbridge.EventAgentStateChanged,
		Time:     time.Date(2025, 3, 1, 9, 0, 0, 0, time.UTC),
		Tenant:   callbridge.TenantID(tenant),
		Agent:    callbridge.AgentID(agent),
		Audience: []callbridge.AgentID{callbridge.AgentID(agent)},
		Data: &callbridge.Agent{
			ID:     callbridge.AgentID(agent),
			Tenant: callbridge.TenantID(tenant),
			State:  callbridge.AgentNotReady,
			Reason: label,
		},
	}
}

// label returns the label callEv or agentEv put into w.
func label(t testing.TB, w callbridge.WireEvent) string {
	t.Helper()
	var d struct {
		Device string `json:"device"`
		Reason string `json:"reason"`
	}
	if err := json.Unmarshal(w.Data, &d); err != nil {
		t.Fatalf("decode data of seq %d: %v", w.Seq, err)
	}
	if w.Type.IsCall() {
		return d.Device
	}
	return d.Reason
}

// mustAppend appends ev and returns its sequence.
func mustAppend(t testing.TB, l *cbnats.EventLog, ev callbridge.Event) uint64 {
	t.Helper()
	seq, err := l.Append(context.Background(), ev)
	if err != nil {
		t.Fatalf("Append %s: %v", ev.Type, err)
	}
	return seq
}

// collector records what a subscription delivers and notices concurrent calls of fn.
type collector struct {
	mu         sync.Mutex
	evs        []callbridge.WireEvent
	gaps       []cbnats.Gap
	notify     chan struct{}
	inFn       atomic.Int32
	concurrent atomic.Bool
}

func newCollector() *collector { return &collector{notify: make(chan struct{}, 1)} }

func (c *collector) fn(w callbridge.WireEvent) {
	if c.inFn.Add(1) > 1 {
		c.concurrent.Store(true)
	}
	defer c.inFn.Add(-1)
	c.mu.Lock()
	c.evs = append(c.evs, w)
	c.mu.Unlock()
	select {
	case c.notify <- struct{}{}:
	default:
	}
}

func (c *collector) onGap(g cbnats.Gap) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.evs) > 0 {
		panic("OnGap after the first event")
	}
	c.gaps = append(c.gaps, g)
}

func (c *collector) events() []callbridge.WireEvent {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.evs)
}

// waitFor waits until an event labelled lbl has been delivered and returns everything
// delivered up to then. Because delivery is in stream order, an event appended last serves
// as a sentinel: once it arrives, everything before it has arrived too.
func (c *collector) waitFor(t testing.TB, lbl string) []callbridge.WireEvent {
	t.Helper()
	deadline := time.After(waitTimeout)
	for {
		evs := c.events()
		for i, w := range evs {
			if label(t, w) == lbl {
				return evs[:i+1]
			}
		}
		select {
		case <-c.notify:
		case <-deadline:
			t.Fatalf("event %q not delivered within %s; got %v", lbl, waitTimeout, labels(t, evs))
		}
	}
}

func labels(t testing.TB, evs []callbridge.WireEvent) []string {
	t.Helper()
	out := make([]string, len(evs))
	for i, w := range evs {
		out[i] = label(t, w)
	}
	return out
}

// subscribe subscribes c with opts, stopped at cleanup.
func subscribe(t testing.TB, l *cbnats.EventLog, f callbridge.Filter, opts cbnats.SubscribeOptions, c *collector) *cbnats.Subscription {
	t.Helper()
	if opts.OnGap == nil {
		opts.OnGap = c.onGap
	}
	sub, err := l.SubscribeWith(context.Background(), f, opts, c.fn)
	if err != nil {
		t.Fatalf("Subscribe %+v: %v", f, err)
	}
	t.Cleanup(sub.Stop)
	return sub
}

// checkSeqs fails unless the sequences of evs strictly increase.
func checkSeqs(t testing.TB, who string, evs []callbridge.WireEvent) {
	t.Helper()
	for i := 1; i < len(evs); i++ {
		if evs[i].Seq <= evs[i-1].Seq {
			t.Errorf("%s: seq %d after %d: not increasing", who, evs[i].Seq, evs[i-1].Seq)
		}
	}
}
