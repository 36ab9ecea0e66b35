package remote_test

import (
	"fmt"
	"io"
	"net"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	natsgo "github.com/nats-io/nats.go"

	"github.com/callbridge/callbridge"
	"github.com/callbridge/callbridge/internal/testenv"
	"github.com/callbridge/callbridge/nats/remote"
)

// TestCutOffSiteFailsFast: the site's service runs on the site's NATS server, a leaf node of
// the centre's, through a link the test can cut. While the link is cut, a command issued at
// the centre fails at once with unavailable (the centre knows nobody serves the site) and
// the site's own node still takes commands; once the link is back, commands from the centre
// work again.
func TestCutOffSiteFailsFast(t *testing.T) {
	s := newSite(t, options{})
	ctx := testenv.Context(t)

	leafPort := testenv.FreePort(t)
	hub := runServer(t, &server.Options{ServerName: "centre", Host: "127.0.0.1", Port: -1,
		LeafNode: server.LeafNodeOpts{Host: "127.0.0.1", Port: leafPort}})
	wan := newProxy(t, fmt.Sprintf("127.0.0.1:%d", leafPort))
	leaf := runServer(t, &server.Options{ServerName: "site-msk", Host: "127.0.0.1", Port: -1,
		LeafNode: server.LeafNodeOpts{ReconnectInterval: 50 * time.Millisecond,
			Remotes: []*server.RemoteLeafOpts{{URLs: []*url.URL{{Scheme: "nats-leaf", Host: wan.addr()}}}}}})
	testenv.Eventually(t, "the leaf link", func() bool { return hub.NumLeafNodes() == 1 })

	siteNC := connect(t, leaf.ClientURL())
	svc, err := remote.NewService(ctx, siteNC, remote.ServiceConfig{Site: "msk", Backend: s.node})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = svc.Stop(ctx) })
	centre, err := remote.NewClient(connect(t, hub.ClientURL()), remote.ClientConfig{Route: route})
	if err != nil {
		t.Fatal(err)
	}
	// The site's own desktops go through its own server.
	local, err := remote.NewClient(connect(t, leaf.ClientURL()), remote.ClientConfig{Route: route})
	if err != nil {
		t.Fatal(err)
	}
	ready := agentCmd(callbridge.CmdSetAgentState, "agent1")
	ready.State = callbridge.AgentReady
	testenv.Eventually(t, "the centre to reach msk's service", func() bool {
		_, err := centre.Do(ctx, ready)
		if err != nil && callbridge.ErrorCode(err) != callbridge.EUnavailable {
			t.Fatal(err)
		}
		return err == nil
	})

	wan.cut()
	testenv.Eventually(t, "the centre to see the leaf link down", func() bool { return hub.NumLeafNodes() == 0 })
	notReady := agentCmd(callbridge.CmdSetAgentState, "agent1")
	notReady.State, notReady.Reason, notReady.IdempotencyKey = callbridge.AgentNotReady, "break", "nr-1"
	_, err = centre.Do(ctx, notReady)
	wantError(t, "a command from the centre during the cut", err, callbridge.EUnavailable, "site msk is unreachable")
	_, err = centre.Snapshot(ctx, "demo", "agent1")
	wantError(t, "a snapshot from the centre during the cut", err, callbridge.EUnavailable, "site msk is unreachable")
	if _, err := local.Do(ctx, notReady); err != nil {
		t.Fatalf("a command at the site during the cut: %v", err)
	}

	wan.restore()
	testenv.Eventually(t, "the centre to reach msk again", func() bool {
		snap, err := centre.Snapshot(ctx, "demo", "agent1")
		if err != nil && callbridge.ErrorCode(err) != callbridge.EUnavailable {
			t.Fatal(err)
		}
		return err == nil && snap.Agent.State == callbridge.AgentNotReady
	})
	// The command the site took during the cut is not run again by its key.
	if _, err := centre.Do(ctx, notReady); err != nil {
		t.Fatalf("repeat after the cut: %v", err)
	}
}

func runServer(t *testing.T, opts *server.Options) *server.Server {
	t.Helper()
	opts.NoSigs, opts.NoLog = true, true
	s, err := server.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	go s.Start()
	if !s.ReadyForConnections(testenv.Patience) {
		t.Fatalf("server %s not ready", opts.ServerName)
	}
	t.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })
	return s
}

func connect(t *testing.T, url string) *natsgo.Conn {
	t.Helper()
	nc, err := natsgo.Connect(url, natsgo.MaxReconnects(-1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// proxy forwards TCP connections to target until cut: cut closes every connection and
// refuses new ones until restore.
type proxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	down   bool
	conns  map[net.Conn]struct{}
}

func newProxy(t *testing.T, target string) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln, target: target, conns: map[net.Conn]struct{}{}}
	go p.serve()
	t.Cleanup(func() { ln.Close(); p.cut() })
	return p
}

func (p *proxy) addr() string { return p.ln.Addr().String() }

func (p *proxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		down := p.down
		p.mu.Unlock()
		if down {
			c.Close()
			continue
		}
		d, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		p.conns[c], p.conns[d] = struct{}{}, struct{}{}
		p.mu.Unlock()
		go pipe(d, c)
		go pipe(c, d)
	}
}

func pipe(dst, src net.Conn) {
	_, _ = io.Copy(dst, src) // ends when either side is gone: close both
	dst.Close()
	src.Close()
}

func (p *proxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = true
	for c := range p.conns {
		c.Close()
	}
	clear(p.conns)
}

func (p *proxy) restore() {
	p.mu.Lock()
	p.down = false
	p.mu.Unlock()
}
