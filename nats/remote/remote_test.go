package remote_test

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	natsgo "github.com/nats-io/nats.go"

	"github.com/callbridge/callbridge"
	cbhttp "github.com/callbridge/callbridge/http"
	"github.com/callbridge/callbridge/internal/testenv"
	cbnats "github.com/callbridge/callbridge/nats"
	"github.com/callbridge/callbridge/nats/remote"
	"github.com/callbridge/callbridge/node"
)

// The gateway takes the client where it takes the node.
var (
	_ cbhttp.HeartbeatReporter = (*remote.Client)(nil)
	_ remote.Backend           = (*node.Node)(nil)
)

// TestCommandsAcrossTheHop: commands, snapshots, availability and readiness of a site reach
// its node through the service and come back as the node gives them.
func TestCommandsAcrossTheHop(t *testing.T) {
	s := newSite(t, options{})
	ctx := testenv.Context(t)
	c := agentCmd(callbridge.CmdSetAgentState, "agent1")
	c.State = callbridge.AgentReady
	if _, err := s.client.Do(ctx, c); err != nil {
		t.Fatalf("set_agent_state through the service: %v", err)
	}
	snap, err := s.client.Snapshot(ctx, "demo", "agent1")
	if err != nil {
		t.Fatal(err)
	}
	if snap.Agent.State != callbridge.AgentReady {
		t.Fatalf("snapshot through the service: agent1 = %+v, want ready", snap.Agent)
	}
	local, err := s.node.Snapshot(ctx, "demo", "agent1")
	if err != nil {
		t.Fatal(err)
	}
	if !sameJSON(t, snap, local) {
		t.Fatalf("remote snapshot %+v differs from the node's %+v", snap, local)
	}

	m := agentCmd(callbridge.CmdMakeCall, "agent2")
	m.To, m.AttachedData = "+15557654321", map[string]string{"crm": "K-1"}
	res, err := s.client.Do(ctx, m)
	if err != nil {
		t.Fatal(err)
	}
	if res.CallID == "" {
		t.Fatal("make_call through the service returned no call_id")
	}
	testenv.Eventually(t, "agent2's snapshot to show the call "+string(res.CallID), func() bool {
		snap, err := s.client.Snapshot(ctx, "demo", "agent2")
		if err != nil {
			t.Fatal(err)
		}
		for _, call := range snap.Calls {
			if call.ID == res.CallID && call.AttachedData["crm"] == "K-1" {
				return true
			}
		}
		return false
	})
	if n := s.drv.count(callbridge.SwitchMakeCall); n != 1 {
		t.Fatalf("the switch got %d make_call, want 1", n)
	}

	av, err := s.client.Availability(ctx, "demo", "agent1")
	if err != nil {
		t.Fatal(err)
	}
	lav, err := s.node.Availability(ctx, "demo", "agent1")
	if err != nil {
		t.Fatal(err)
	}
	if !av.Routable || !sameJSON(t, av, lav) {
		t.Fatalf("remote availability %+v, node's %+v", av, lav)
	}
	if err := s.client.SiteReady(ctx, "msk"); err != nil {
		t.Fatalf("SiteReady(msk) = %v", err)
	}
	if err := s.client.Ready(); err != nil {
		t.Fatalf("Ready = %v", err)
	}
}

func sameJSON(t *testing.T, a, b any) bool {
	t.Helper()
	ja, err := json.Marshal(a)
	if err != nil {
		t.Fatal(err)
	}
	jb, err := json.Marshal(b)
	if err != nil {
		t.Fatal(err)
	}
	return string(ja) == string(jb)
}

// leaky is a node whose Do fails with an error that is not a *callbridge.Error (as a store
// or driver bug would) for the command "leak", and with an internal *callbridge.Error for
// "leak_error".
type leaky struct{ *node.Node }

func (l leaky) Do(ctx context.Context, cmd callbridge.Command) (callbridge.CommandResult, error) {
	switch cmd.Name {
	case "leak":
		return callbridge.CommandResult{}, errors.New("pq: password authentication failed for user cb")
	case "leak_error":
		return callbridge.CommandResult{}, callbridge.Errorf(callbridge.EInternal, "disk /var/lib/cb is full")
	}
	return l.Node.Do(ctx, cmd)
}

// TestErrorsKeepTheirCodeAndMessage: every error of the node reaches the client as the same
// *callbridge.Error; internals stay "internal error"; routing errors come back as the
// router gave them.
func TestErrorsKeepTheirCodeAndMessage(t *testing.T) {
	s := newSite(t, options{backend: func(n *node.Node) remote.Backend { return leaky{n} }})
	ctx := testenv.Context(t)
	// agent2 has a call, so that agent1 can try to touch it.
	m := agentCmd(callbridge.CmdMakeCall, "agent2")
	m.To = "+15557654321"
	res, err := s.client.Do(ctx, m)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.node.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	withState := func(state callbridge.AgentState, key string) callbridge.Command {
		c := agentCmd(callbridge.CmdSetAgentState, "agent1")
		c.State, c.IdempotencyKey = state, key
		return c
	}
	robot := withState(callbridge.AgentReady, "")
	robot.Role = "robot"
	hold := agentCmd(callbridge.CmdHoldCall, "agent1")
	hold.CallID = res.CallID
	cases := []struct {
		name string
		code string
		call func(b remote.Backend) error
	}{
		{"forbidden role", callbridge.EForbidden, func(b remote.Backend) error { _, err := b.Do(ctx, robot); return err }},
		{"forbidden: another agent's call", callbridge.EForbidden, func(b remote.Backend) error { _, err := b.Do(ctx, hold); return err }},
		{"not_found: unknown tenant", callbridge.ENotFound, func(b remote.Backend) error {
			c := withState(callbridge.AgentReady, "")
			c.Tenant = "nope"
			_, err := b.Do(ctx, c)
			return err
		}},
		{"not_found: snapshot of an unknown agent", callbridge.ENotFound, func(b remote.Backend) error {
			_, err := b.Snapshot(ctx, "demo", "nobody")
			return err
		}},
		{"not_found: availability of an unknown agent", callbridge.ENotFound, func(b remote.Backend) error {
			_, err := b.Availability(ctx, "demo", "nobody")
			return err
		}},
		{"not_found: presence of an unknown agent", callbridge.ENotFound, func(b remote.Backend) error {
			return b.DesktopAttached(ctx, "demo", "nobody", "gw-1")
		}},
		{"invalid state", callbridge.EInvalid, func(b remote.Backend) error { _, err := b.Do(ctx, withState("busy", "")); return err }},
		{"invalid command", callbridge.EInvalid, func(b remote.Backend) error { _, err := b.Do(ctx, agentCmd("fly", "agent1")); return err }},
		{"invalid idempotency key", callbridge.EInvalid, func(b remote.Backend) error {
			_, err := b.Do(ctx, withState(callbridge.AgentReady, "k\r\n1"))
			return err
		}},
		{"conflict: make_call while on a call", callbridge.EConflict, func(b remote.Backend) error { _, err := b.Do(ctx, m); return err }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			want := tc.call(s.node)
			var e *callbridge.Error
			if !errors.As(want, &e) || e.Code != tc.code {
				t.Fatalf("the node answered %v, want code %s (the case is wrong)", want, tc.code)
			}
			wantError(t, "client", tc.call(s.client), e.Code, e.Message)
		})
	}
	for _, name := range []callbridge.CommandName{"leak", "leak_error"} {
		_, err := s.client.Do(ctx, agentCmd(name, "agent1"))
		wantError(t, string(name), err, callbridge.EInternal, "internal error")
	}
	if got := s.svc.Counters().Errors; got < uint64(len(cases)+2) {
		t.Errorf("service counted %d errors, want at least %d", got, len(cases)+2)
	}
	_, err = s.client.Snapshot(ctx, "ghost", "agent1")
	wantError(t, "router error", err, callbridge.ENotFound, `tenant "ghost" not found`)
}

// TestPresenceAcrossTheHop: a desktop attached through the client counts at the site; the
// heartbeats of several sites go to each; its detach makes the agent desktop_lost after the
// grace time, as it would locally.
func TestPresenceAcrossTheHop(t *testing.T) {
	s := newSite(t, options{grace: 100 * time.Millisecond})
	ctx := testenv.Context(t)
	c := agentCmd(callbridge.CmdSetAgentState, "agent1")
	c.State = callbridge.AgentReady
	if _, err := s.client.Do(ctx, c); err != nil {
		t.Fatal(err)
	}
	if err := s.client.DesktopAttached(ctx, "demo", "agent1", "gw-1"); err != nil {
		t.Fatal(err)
	}
	if err := s.client.DesktopHeartbeat(ctx, "demo", "agent1", "gw-1"); err != nil {
		t.Fatal(err)
	}
	av, err := s.client.Availability(ctx, "demo", "agent1")
	if err != nil || av.Desktops != 1 || !av.Routable {
		t.Fatalf("availability after attach = %+v, %v", av, err)
	}
	if err := s.client.DesktopHeartbeats(ctx, []callbridge.AgentKey{{Tenant: "demo", Agent: "agent1"}, {Tenant: "demo", Agent: "agent2"}}, "gw-1"); err != nil {
		t.Fatalf("heartbeats: %v", err)
	}
	// One site is unreachable, one tenant is unknown to the router: the error names the
	// unreachable site; msk's report is made all the same.
	err = s.client.DesktopHeartbeats(ctx, []callbridge.AgentKey{{Tenant: "far", Agent: "x"}, {Tenant: "ghost", Agent: "y"}, {Tenant: "demo", Agent: "agent1"}}, "gw-1")
	wantError(t, "heartbeats with spb", err, callbridge.EUnavailable, "site spb is unreachable")

	if err := s.client.DesktopDetached(ctx, "demo", "agent1", "gw-1"); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, "agent1 to be not_ready desktop_lost", func() bool {
		av, err := s.client.Availability(ctx, "demo", "agent1")
		if err != nil {
			t.Fatal(err)
		}
		return av.State == callbridge.AgentNotReady && av.Reason == callbridge.ReasonDesktopLost && av.Desktops == 0
	})
}

// TestStoppedServiceIsUnavailable: once a site's service is stopped (or for a site nobody
// serves) every call fails at once with unavailable, even though the event log's stream
// listens on cb.> on the same server.
func TestStoppedServiceIsUnavailable(t *testing.T) {
	s := newSite(t, options{})
	ctx := testenv.Context(t)
	c := agentCmd(callbridge.CmdSetAgentState, "agent1")
	c.State, c.IdempotencyKey = callbridge.AgentReady, "k-1"
	if _, err := s.client.Do(ctx, c); err != nil {
		t.Fatal(err)
	}
	if err := s.svc.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	const msg = "site msk is unreachable"
	_, err := s.client.Do(ctx, c)
	wantError(t, "do", err, callbridge.EUnavailable, msg)
	_, err = s.client.Snapshot(ctx, "demo", "agent1")
	wantError(t, "snapshot", err, callbridge.EUnavailable, msg)
	_, err = s.client.Availability(ctx, "demo", "agent1")
	wantError(t, "availability", err, callbridge.EUnavailable, msg)
	wantError(t, "attach", s.client.DesktopAttached(ctx, "demo", "agent1", "gw-1"), callbridge.EUnavailable, msg)
	wantError(t, "heartbeats", s.client.DesktopHeartbeats(ctx, []callbridge.AgentKey{{Tenant: "demo", Agent: "agent1"}}, "gw-1"),
		callbridge.EUnavailable, msg)
	wantError(t, "site ready", s.client.SiteReady(ctx, "msk"), callbridge.EUnavailable, msg)
	_, err = s.client.Do(ctx, callbridge.Command{Name: callbridge.CmdSetAgentState, Tenant: "far", Agent: "x", Role: callbridge.RoleAgent})
	wantError(t, "a site nobody serves", err, callbridge.EUnavailable, "site spb is unreachable")
	if err := s.client.Ready(); err != nil {
		t.Fatalf("the client's own readiness (NATS up) = %v", err)
	}
	// This process's own site is served without NATS.
	local, err := remote.NewClient(s.nc, remote.ClientConfig{Route: route, LocalSite: "msk", Local: s.node})
	if err != nil {
		t.Fatal(err)
	}
	if snap, err := local.Snapshot(ctx, "demo", "agent1"); err != nil || snap.Agent.State != callbridge.AgentReady {
		t.Fatalf("local snapshot = %+v, %v", snap.Agent, err)
	}
	if err := local.SiteReady(ctx, "msk"); err != nil {
		t.Fatalf("local SiteReady = %v", err)
	}
	// A closed connection is unavailable too.
	s.nc.Close()
	_, err = s.client.Snapshot(ctx, "demo", "agent1")
	if callbridge.ErrorCode(err) != callbridge.EUnavailable {
		t.Fatalf("snapshot on a closed connection = %v, want unavailable", err)
	}
	if callbridge.ErrorCode(s.client.Ready()) != callbridge.EUnavailable {
		t.Fatalf("Ready on a closed connection = %v, want unavailable", s.client.Ready())
	}
}

// silent is a site whose every request is received and never answered; a request on
// <prefix>.<site>.marker is answered with how many requests of each endpoint came before it
// (NATS keeps the order of one connection's messages, so the marker is a barrier).
type silent struct {
	mu     sync.Mutex
	counts map[string]int
	bodies map[string][]string
	hdrs   []string
}

func newSilent(t *testing.T, nc *natsgo.Conn, prefix, site string) *silent {
	t.Helper()
	q := &silent{counts: map[string]int{}, bodies: map[string][]string{}}
	sub, err := nc.Subscribe(prefix+"."+site+".>", func(m *natsgo.Msg) {
		ep := m.Subject[strings.LastIndexByte(m.Subject, '.')+1:]
		q.mu.Lock()
		defer q.mu.Unlock()
		if ep == "marker" {
			data, _ := json.Marshal(q.counts)
			_ = m.Respond(data)
			clear(q.counts)
			return
		}
		q.counts[ep]++
		q.bodies[ep] = append(q.bodies[ep], string(m.Data))
		q.hdrs = append(q.hdrs, m.Header.Get(remote.TimeoutHeader))
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	return q
}

// since returns the counts of requests received since the last marker, sent on nc.
func (q *silent) since(t *testing.T, nc *natsgo.Conn, subject string) map[string]int {
	t.Helper()
	reply, err := nc.Request(subject, nil, testenv.Patience)
	if err != nil {
		t.Fatal(err)
	}
	var counts map[string]int
	if err := json.Unmarshal(reply.Data, &counts); err != nil {
		t.Fatal(err)
	}
	return counts
}

// TestSilentSiteIsUnavailable: a site that takes requests and never answers costs a caller
// at most the client's deadline, then unavailable; only what is safe to repeat (reads, a
// command with an idempotency key, always the same body) was sent more than once.
func TestSilentSiteIsUnavailable(t *testing.T) {
	ctx := testenv.Context(t)
	srv, err := cbnats.StartServer(ctx, cbnats.ServerConfig{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	siteNC, err := srv.Connect("quiet")
	if err != nil {
		t.Fatal(err)
	}
	nc, err := srv.Connect("centre")
	if err != nil {
		t.Fatal(err)
	}
	q := newSilent(t, siteNC, remote.DefaultPrefix, "quiet")
	const timeout = 2 * time.Second
	cl, err := remote.NewClient(nc, remote.ClientConfig{
		Route:   func(context.Context, remote.Target) (callbridge.SiteID, error) { return "quiet", nil },
		Timeout: timeout, AttemptTimeout: 50 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	marker := remote.DefaultPrefix + ".quiet.marker"

	c := agentCmd(callbridge.CmdSetAgentState, "agent1")
	c.State, c.IdempotencyKey = callbridge.AgentReady, "k-quiet"
	_, err = cl.Do(ctx, c)
	wantError(t, "keyed command", err, callbridge.EUnavailable, "site quiet did not answer in time; the command may still be carried out")
	if n := q.since(t, nc, marker)["do"]; n < 2 {
		t.Fatalf("a keyed command was sent %d times, want retries", n)
	}
	q.mu.Lock()
	for i, b := range q.bodies["do"] {
		if b != q.bodies["do"][0] || !strings.Contains(b, `"idempotency_key":"k-quiet"`) {
			t.Fatalf("attempt %d sent %s, attempt 1 %s", i+1, b, q.bodies["do"][0])
		}
	}
	for _, h := range q.hdrs {
		if ms, err := strconv.Atoi(h); err != nil || ms < 1 || ms > int(timeout/time.Millisecond) {
			t.Fatalf("%s = %q, want 1..%d", remote.TimeoutHeader, h, timeout/time.Millisecond)
		}
	}
	q.mu.Unlock()

	// What is not retried needs no long deadline.
	quick, err := remote.NewClient(nc, remote.ClientConfig{
		Route:   func(context.Context, remote.Target) (callbridge.SiteID, error) { return "quiet", nil },
		Timeout: 100 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	c.IdempotencyKey = ""
	_, err = quick.Do(ctx, c)
	wantError(t, "command without a key", err, callbridge.EUnavailable, "site quiet did not answer in time; the command may still be carried out")
	err = quick.DesktopAttached(ctx, "demo", "agent1", "gw-1")
	wantError(t, "presence", err, callbridge.EUnavailable, "site quiet did not answer in time")
	if got := q.since(t, nc, marker); got["do"] != 1 || got["presence"] != 1 {
		t.Fatalf("sent %v, want one do and one presence (neither is retried)", got)
	}

	_, err = cl.Snapshot(ctx, "demo", "agent1")
	wantError(t, "snapshot", err, callbridge.EUnavailable, "site quiet did not answer in time")
	if n := q.since(t, nc, marker)["snapshot"]; n < 2 {
		t.Fatalf("a snapshot was sent %d times, want retries", n)
	}

	// The caller's own deadline, shorter than the client's, ends the call the same way.
	short, cancel := context.WithTimeout(ctx, 10*time.Millisecond)
	defer cancel()
	_, err = cl.Availability(short, "demo", "agent1")
	wantError(t, "availability past the caller's deadline", err, callbridge.EUnavailable, "site quiet did not answer in time")
	// A caller that gives up gets its own error.
	gone, cancelGone := context.WithCancel(ctx)
	cancelGone()
	if _, err := cl.Availability(gone, "demo", "agent1"); !errors.Is(err, context.Canceled) {
		t.Fatalf("availability with a cancelled context = %v, want context.Canceled", err)
	}
}

// relay stands for a lossy WAN between the client (prefix "lossy") and the site's service
// (prefix "cbsvc"): it forwards every request and drops the next `drop` replies of do.
type relay struct {
	mu      sync.Mutex
	drop    int
	dropped [][]byte
	counts  map[string]int
}

func newRelay(t *testing.T, nc *natsgo.Conn) *relay {
	t.Helper()
	r := &relay{counts: map[string]int{}}
	sub, err := nc.Subscribe("lossy.>", func(m *natsgo.Msg) {
		rest := strings.TrimPrefix(m.Subject, "lossy.")
		ep := rest[strings.LastIndexByte(rest, '.')+1:]
		r.mu.Lock()
		if ep == "marker" {
			data, _ := json.Marshal(r.counts)
			clear(r.counts)
			r.mu.Unlock()
			_ = m.Respond(data)
			return
		}
		r.counts[ep]++
		r.mu.Unlock()
		go func() {
			reply, err := nc.RequestMsg(&natsgo.Msg{Subject: remote.DefaultPrefix + "." + rest, Header: m.Header, Data: m.Data}, testenv.Patience)
			if err != nil {
				return // the client sees no reply, as over a cut link
			}
			r.mu.Lock()
			if ep == "do" && r.drop > 0 {
				r.drop--
				r.dropped = append(r.dropped, reply.Data)
				r.mu.Unlock()
				return
			}
			r.mu.Unlock()
			_ = m.RespondMsg(&natsgo.Msg{Header: reply.Header, Data: reply.Data})
		}()
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	return r
}

func (r *relay) dropNext(n int) {
	r.mu.Lock()
	r.drop = n
	r.mu.Unlock()
}

// TestLostReplyRetriedRunsOnce: the reply to a make_call with an idempotency key is lost;
// the client's retry gets the first result and the switch sees one make_call. Without a key
// the client does not retry, and says the command may have run.
func TestLostReplyRetriedRunsOnce(t *testing.T) {
	s := newSite(t, options{client: remote.ClientConfig{Prefix: "lossy", AttemptTimeout: 500 * time.Millisecond, Timeout: testenv.Patience}})
	ctx := testenv.Context(t)
	wan, err := s.srv.Connect("wan")
	if err != nil {
		t.Fatal(err)
	}
	r := newRelay(t, wan)
	r.dropNext(1)

	m := agentCmd(callbridge.CmdMakeCall, "agent2")
	m.To, m.IdempotencyKey = "+15557654321", "mc-1"
	res, err := s.client.Do(ctx, m)
	if err != nil {
		t.Fatalf("retried make_call: %v", err)
	}
	r.mu.Lock()
	if len(r.dropped) != 1 {
		t.Fatalf("the relay dropped %d replies, want 1", len(r.dropped))
	}
	var first callbridge.CommandResult
	if err := json.Unmarshal(r.dropped[0], &first); err != nil {
		t.Fatalf("dropped reply %q: %v", r.dropped[0], err)
	}
	r.mu.Unlock()
	if res.CallID == "" || res.CallID != first.CallID {
		t.Fatalf("the retry returned call %q, the lost reply had %q", res.CallID, first.CallID)
	}
	if err := s.node.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if n := s.drv.count(callbridge.SwitchMakeCall); n != 1 {
		t.Fatalf("the switch got %d make_call, want 1", n)
	}
	reply, err := s.nc.Request("lossy.msk.marker", nil, testenv.Patience)
	if err != nil {
		t.Fatal(err)
	}
	var counts map[string]int
	if err := json.Unmarshal(reply.Data, &counts); err != nil {
		t.Fatal(err)
	}
	if counts["do"] < 2 {
		t.Fatalf("the client sent the command %d times, want a retry", counts["do"])
	}

	// Without a key: one attempt, and the caller is told it may have run (it did).
	once, err := remote.NewClient(s.nc, remote.ClientConfig{Route: route, Prefix: "lossy", Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	r.dropNext(1)
	m1 := agentCmd(callbridge.CmdMakeCall, "agent1")
	m1.To = "+15557654322"
	_, err = once.Do(ctx, m1)
	wantError(t, "a command without a key whose reply is lost", err, callbridge.EUnavailable,
		"site msk did not answer in time; the command may still be carried out")
	reply, err = s.nc.Request("lossy.msk.marker", nil, testenv.Patience)
	if err != nil {
		t.Fatal(err)
	}
	clear(counts)
	if err := json.Unmarshal(reply.Data, &counts); err != nil {
		t.Fatal(err)
	}
	if counts["do"] != 1 {
		t.Fatalf("a command without a key was sent %d times, want 1", counts["do"])
	}
	testenv.Eventually(t, "the unkeyed make_call to reach the switch", func() bool { return s.drv.count(callbridge.SwitchMakeCall) == 2 })
}

// TestRetryJoinsTheCommandInProgress: a retry that arrives while its command is still at the
// switch waits for it (instead of the engine's "still in progress" conflict) and gets its
// result; the switch sees the command once.
func TestRetryJoinsTheCommandInProgress(t *testing.T) {
	s := newSite(t, options{client: remote.ClientConfig{AttemptTimeout: 50 * time.Millisecond, Timeout: testenv.Patience}})
	ctx := testenv.Context(t)
	entered, release := s.drv.hold()
	t.Cleanup(release)
	type result struct {
		res callbridge.CommandResult
		err error
	}
	done := make(chan result, 1)
	m := agentCmd(callbridge.CmdMakeCall, "agent2")
	m.To, m.IdempotencyKey = "+15557654321", "mc-join"
	go func() {
		res, err := s.client.Do(ctx, m)
		done <- result{res, err}
	}()
	select {
	case <-entered:
	case <-ctx.Done():
		t.Fatal("the make_call never reached the switch")
	}
	testenv.Eventually(t, "a retry to join the command in progress", func() bool { return s.svc.Counters().Joined >= 1 })
	release()
	got := <-done
	if got.err != nil || got.res.CallID == "" {
		t.Fatalf("make_call = %+v, %v", got.res, got.err)
	}
	if err := s.node.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if n := s.drv.count(callbridge.SwitchMakeCall); n != 1 {
		t.Fatalf("the switch got %d make_call, want 1", n)
	}
	// Once committed, the same key answers with the first result and runs nothing.
	again, err := s.client.Do(ctx, m)
	if err != nil || again.CallID != got.res.CallID {
		t.Fatalf("repeat = %+v, %v; want call %s", again, err, got.res.CallID)
	}
	if n := s.drv.count(callbridge.SwitchMakeCall); n != 1 {
		t.Fatalf("after the repeat the switch got %d make_call, want 1", n)
	}
}

// TestBusyServiceRefuses: past MaxInFlight the service answers unavailable at once, and
// serves again once the request in progress is done.
func TestBusyServiceRefuses(t *testing.T) {
	s := newSite(t, options{maxInFlight: 1, client: remote.ClientConfig{Timeout: testenv.Patience}})
	ctx := testenv.Context(t)
	entered, release := s.drv.hold()
	t.Cleanup(release)
	done := make(chan error, 1)
	go func() {
		m := agentCmd(callbridge.CmdMakeCall, "agent2")
		m.To = "+15557654321"
		_, err := s.client.Do(ctx, m)
		done <- err
	}()
	select {
	case <-entered:
	case <-ctx.Done():
		t.Fatal("the make_call never reached the switch")
	}
	_, err := s.client.Snapshot(ctx, "demo", "agent1")
	wantError(t, "snapshot while busy", err, callbridge.EUnavailable, "site msk is busy (1 requests in progress); try again")
	if got := s.svc.Counters(); got.Refused != 1 || got.InFlight != 1 {
		t.Fatalf("counters = %+v, want 1 refused, 1 in flight", got)
	}
	release()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if _, err := s.client.Snapshot(ctx, "demo", "agent1"); err != nil {
		t.Fatalf("snapshot after: %v", err)
	}
}

// TestConfigErrors: what NewService and NewClient refuse.
func TestConfigErrors(t *testing.T) {
	ctx := testenv.Context(t)
	srv, err := cbnats.StartServer(ctx, cbnats.ServerConfig{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	nc, err := srv.Connect("cfg")
	if err != nil {
		t.Fatal(err)
	}
	for _, cfg := range []remote.ServiceConfig{
		{Site: "", Backend: leaky{}},
		{Site: "a.b", Backend: leaky{}},
		{Site: "msk"},
		{Site: "msk", Backend: leaky{}, Prefix: "cb"},
		{Site: "msk", Backend: leaky{}, Prefix: "cb.svc"},
		{Site: "msk", Backend: leaky{}, Prefix: "x.*"},
	} {
		if _, err := remote.NewService(ctx, nc, cfg); err == nil {
			t.Errorf("NewService(%+v) accepted", cfg)
		}
	}
	for _, cfg := range []remote.ClientConfig{
		{},
		{Route: route, Prefix: "cb"},
		{Route: route, Prefix: ">"},
		{Route: route, Local: leaky{}, LocalSite: ""},
	} {
		if _, err := remote.NewClient(nc, cfg); err == nil {
			t.Errorf("NewClient(%+v) accepted", cfg)
		}
	}
	cl, err := remote.NewClient(nc, remote.ClientConfig{Route: func(context.Context, remote.Target) (callbridge.SiteID, error) { return "bad site", nil }})
	if err != nil {
		t.Fatal(err)
	}
	_, err = cl.Snapshot(ctx, "demo", "agent1")
	wantError(t, "a router naming a bad site", err, callbridge.EInternal, "internal error")
}
