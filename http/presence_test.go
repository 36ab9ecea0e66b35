package http_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/callbridge/callbridge"
	cbhttp "github.com/callbridge/callbridge/http"
	"github.com/callbridge/callbridge/internal/testenv"
)

// presenceCommander is a fakeCommander that also takes desktop presence and explains
// availability.
type presenceCommander struct {
	*fakeCommander
	mu    sync.Mutex
	calls []string // "attach|detach|heartbeat tenant/agent desktop"
	seen  chan struct{}
	av    map[callbridge.AgentKey]callbridge.Availability
}

var (
	_ callbridge.Presence            = (*presenceCommander)(nil)
	_ callbridge.AvailabilityService = (*presenceCommander)(nil)
)

func newPresenceServer(t *testing.T) (*harness, *presenceCommander) {
	t.Helper()
	pc := &presenceCommander{fakeCommander: newFakeCommander(), seen: make(chan struct{}, 100), av: map[callbridge.AgentKey]callbridge.Availability{}}
	h := newServer(t, func(c *cbhttp.Config) { c.Commander = pc })
	h.cmd = pc.fakeCommander
	return h, pc
}

func (p *presenceCommander) record(what string, tenant callbridge.TenantID, agent callbridge.AgentID, desk string) error {
	p.mu.Lock()
	p.calls = append(p.calls, what+" "+string(tenant)+"/"+string(agent)+" "+desk)
	p.mu.Unlock()
	p.seen <- struct{}{}
	return nil
}

func (p *presenceCommander) DesktopAttached(_ context.Context, tenant callbridge.TenantID, agent callbridge.AgentID, desk string) error {
	return p.record("attach", tenant, agent, desk)
}

func (p *presenceCommander) DesktopDetached(_ context.Context, tenant callbridge.TenantID, agent callbridge.AgentID, desk string) error {
	return p.record("detach", tenant, agent, desk)
}

func (p *presenceCommander) DesktopHeartbeat(_ context.Context, tenant callbridge.TenantID, agent callbridge.AgentID, desk string) error {
	return p.record("heartbeat", tenant, agent, desk)
}

func (p *presenceCommander) Availability(_ context.Context, tenant callbridge.TenantID, agent callbridge.AgentID) (callbridge.Availability, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	av, ok := p.av[callbridge.AgentKey{Tenant: tenant, Agent: agent}]
	if !ok {
		return av, callbridge.Errorf(callbridge.ENotFound, "agent %q not found", agent)
	}
	return av, nil
}

// wait returns the presence calls once there are n.
func (p *presenceCommander) wait(t *testing.T, n int) []string {
	t.Helper()
	deadline := time.After(testenv.Patience)
	for {
		p.mu.Lock()
		if len(p.calls) >= n {
			out := append([]string(nil), p.calls...)
			p.mu.Unlock()
			return out
		}
		p.mu.Unlock()
		select {
		case <-p.seen:
		case <-deadline:
			p.mu.Lock()
			defer p.mu.Unlock()
			t.Fatalf("want %d presence calls, got %q", n, p.calls)
		}
	}
}

// TestDesktopPresence: an agent's desktops are reported as one desktop of the gateway —
// attached with the first connection, detached with the last — and heartbeats name every
// agent with a desktop. Each "nothing was reported" step is proved by a barrier: a later
// report, which the reporter sends strictly in order, arrives first.
func TestDesktopPresence(t *testing.T) {
	t.Parallel()
	h, pc := newPresenceServer(t)
	c := h.connect(t, h.token(t, "alice"), "")
	c.next() // snapshot
	calls := pc.wait(t, 1)
	desk := strings.TrimPrefix(calls[0], "attach acme/alice ")
	if !strings.HasPrefix(calls[0], "attach acme/alice ") || len(desk) < 8 {
		t.Fatalf("first call = %q", calls[0])
	}
	h.srv.BeatDesktops()
	if calls = pc.wait(t, 2); calls[1] != "heartbeat acme/alice "+desk {
		t.Fatalf("calls = %q", calls)
	}
	// A second tab is not a second desktop: the next report is the next heartbeat.
	c2 := h.connect(t, h.token(t, "alice"), "")
	c2.next()
	h.srv.BeatDesktops()
	if calls = pc.wait(t, 3); calls[2] != "heartbeat acme/alice "+desk {
		t.Fatalf("after a second tab: %q, want a heartbeat and no attach", calls)
	}
	// Closing one tab keeps the desktop.
	_ = c.conn.CloseNow()
	waitFor(t, "the first tab to close", func() bool { return h.srv.Sockets() == 1 })
	h.srv.BeatDesktops()
	if calls = pc.wait(t, 4); calls[3] != "heartbeat acme/alice "+desk {
		t.Fatalf("after closing one of two tabs: %q, want a heartbeat and no detach", calls)
	}
	// Closing the last detaches.
	_ = c2.conn.CloseNow()
	if calls = pc.wait(t, 5); calls[4] != "detach acme/alice "+desk {
		t.Fatalf("calls = %q", calls)
	}
	// Supervisors are no desktops: the next report is alice's new attach.
	s := h.connect(t, h.token(t, "sam"), "")
	s.send("p1", "ping", nil)
	s.reply("p1")
	h.srv.BeatDesktops()
	c3 := h.connect(t, h.token(t, "alice"), "")
	c3.next()
	if calls = pc.wait(t, 6); calls[5] != "attach acme/alice "+desk {
		t.Fatalf("calls = %q: only agents' connections are desktops", calls)
	}
}

func TestSetDispositionOverWebSocket(t *testing.T) {
	h := newServer(t)
	c := h.connect(t, h.token(t, "alice"), "")
	c.next()
	c.send("d1", "set_disposition", map[string]any{"call_id": "01J000", "disposition": "sale", "notes": "two\nlines", "state": "ready"})
	if r := c.reply("d1"); r["ok"] != true {
		t.Fatalf("reply %v", r)
	}
	cmd := h.cmd.nextCommand(t)
	if cmd.Name != callbridge.CmdSetDisposition || cmd.Disposition != "sale" || cmd.Notes != "two\nlines" || cmd.State != callbridge.AgentReady || cmd.CallID != "01J000" {
		t.Fatalf("command = %+v", cmd)
	}
	c.send("d2", "single_step_transfer", map[string]any{"call_id": "01J000", "to": "bob", "notes": "VIP"})
	c.reply("d2")
	if cmd := h.cmd.nextCommand(t); cmd.Notes != "VIP" || cmd.To != "bob" {
		t.Fatalf("command = %+v", cmd)
	}
}

func TestAvailabilityEndpoint(t *testing.T) {
	h, pc := newPresenceServer(t)
	pc.av[callbridge.AgentKey{Tenant: "acme", Agent: "alice"}] = callbridge.Availability{
		Tenant: "acme", Agent: "alice", State: callbridge.AgentNotReady, Reason: "lunch",
		Reasons: []callbridge.AvailabilityReason{{Code: callbridge.UnavailNotReady, Reason: "lunch", Message: "not ready (lunch)",
			Cause: callbridge.AvailabilityCause{Source: "switch", Event: "member_state", Time: t0}}},
	}
	pc.av[callbridge.AgentKey{Tenant: "acme", Agent: "bob"}] = callbridge.Availability{Tenant: "acme", Agent: "bob", Routable: true}
	alice, sam := h.token(t, "alice"), h.token(t, "sam")

	res := h.do(t, "GET", "/v1/agents/alice/availability", alice, nil)
	body := res.json(t)
	rs, _ := body["reasons"].([]any)
	if res.status != 200 || body["routable"] != false || len(rs) != 1 || rs[0].(map[string]any)["cause"].(map[string]any)["event"] != "member_state" {
		t.Fatalf("own availability: %d %s", res.status, res.body)
	}
	h.do(t, "GET", "/v1/agents/bob/availability", alice, nil).wantError(t, 403, callbridge.EForbidden, "own")
	res = h.do(t, "GET", "/v1/agents/bob/availability", sam, nil)
	if body := res.json(t); res.status != 200 || body["routable"] != true || body["reasons"] == nil {
		t.Fatalf("supervisor: %d %s", res.status, res.body)
	}
	h.do(t, "GET", "/v1/agents/nobody/availability", sam, nil).wantError(t, 404, callbridge.ENotFound, "nobody")
	h.do(t, "GET", "/v1/agents/bad%20id/availability", sam, nil).wantError(t, 400, callbridge.EInvalid, "agent id")
	h.do(t, "GET", "/v1/agents/alice/availability", "", nil).wantError(t, 401, callbridge.EUnauthorized, "")
	h.do(t, "POST", "/v1/agents/alice/availability", alice, nil).wantError(t, 405, callbridge.EMethod, "not allowed")

	// A Commander that cannot explain availability.
	plain := newServer(t)
	plain.do(t, "GET", "/v1/agents/alice/availability", plain.token(t, "alice"), nil).wantError(t, 501, callbridge.ENotSupported, "availability")
}
