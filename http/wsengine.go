package http

import (
	"context"
	"log/slog"
	"net"
	nethttp "net/http"
	"sync"
	"time"

	"github.com/lesismal/nbio"
	"github.com/lesismal/nbio/logging"
	"github.com/lesismal/nbio/nbhttp"
	"github.com/lesismal/nbio/nbhttp/websocket"

	"github.com/callbridge/callbridge"
	"github.com/callbridge/callbridge/hub"
)

// The WebSocket transport: nbio (github.com/lesismal/nbio), an epoll-driven engine in
// which an idle socket holds no goroutine and borrows buffers only while a frame is read or
// written. The HTTP server (net/http) authenticates and answers the upgrade; the upgraded
// connection is then handed to the engine's poller. docs/benchmarks.md compares it with a
// goroutine-per-socket server.

// quietNBIO turns off nbio's package-level logger (it prints to stdout by default); the
// gateway logs what matters itself.
var quietNBIO sync.Once

// newEngine returns the WebSocket engine of s (started by Open, stopped by Close).
func (s *Server) newEngine() *nbhttp.Engine {
	quietNBIO.Do(func() { logging.SetLevel(logging.LevelNone) })
	e := nbhttp.NewEngine(nbhttp.Config{
		Name: "callbridge-ws",
		// One poller goroutine serves every socket (reads and the flushing of writes the
		// kernel did not take at once; writes themselves happen on the publisher's
		// goroutine). It is also what warmUp waits for.
		NPoller: 1,
		// A hard stop far above the gateway's own byte cap (Send closes slow consumers
		// first, with a close frame), so a socket can never hold unbounded memory.
		MaxWriteBufferSize:      16*s.cfg.SendQueueBytes + maxMessageBytes,
		ReleaseWebsocketPayload: true,
	})
	e.OnWrittenSize(func(c *nbio.Conn, _ []byte, n int) {
		if ws, ok := c.Session().(*websocket.Conn); ok {
			if wc, ok := ws.Session().(*wsConn); ok {
				wc.queued.Add(-int64(n))
			}
		}
	})
	return e
}

// warmUp returns once the engine's poller runs its loop. nbio v1.6.8's poller sets its
// shutdown flag to false when its loop starts, so an engine stopped before that never stops
// (seen: Close right after Open hung for ever). It hands the engine one loopback connection
// and waits until the poller delivers a byte written to it.
func (s *Server) warmUp(ctx context.Context) error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	defer ln.Close()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		return err
	}
	defer client.Close()
	server, err := ln.Accept()
	if err != nil {
		return err
	}
	nbc, err := nbio.NBConn(server)
	if err != nil {
		return err
	}
	got := make(chan struct{})
	var once sync.Once
	nbc.OnData(func(*nbio.Conn, []byte) { once.Do(func() { close(got) }) })
	if err := s.nb.AddTransferredConn(nbc); err != nil {
		return err
	}
	defer nbc.Close()
	if _, err := client.Write([]byte{0}); err != nil {
		return err
	}
	select {
	case <-got:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// upgraderFor returns the upgrader of one connection: its handlers are bound to c, so a
// message that arrives the moment the upgrade is answered already finds its connection.
func (s *Server) upgraderFor(c *wsConn) *websocket.Upgrader {
	u := websocket.NewUpgrader()
	u.Engine = s.nb
	u.BlockingModTrasferConnToPoller = true
	u.CheckOrigin = func(*nethttp.Request) bool { return true } // checkOrigin has done it, with our rules
	u.KeepaliveTime = 2 * s.cfg.PingInterval
	u.MessageLengthLimit = maxMessageBytes
	u.OnMessage(func(ws *websocket.Conn, typ websocket.MessageType, data []byte) {
		c.bind(ws)
		c.onMessage(typ, data)
	})
	u.SetPongHandler(func(*websocket.Conn, string) { c.touch() })
	u.OnClose(func(_ *websocket.Conn, err error) { c.onClose(err) })
	return u
}

// userKey names a user across tenants.
type userKey struct {
	tenant callbridge.TenantID
	name   string
}

// socketCounts counts each user's open sockets against Config.MaxSocketsPerUser.
type socketCounts struct {
	mu  sync.Mutex
	n   map[userKey]int
	max int
}

// add counts one more socket of u and reports whether it is within the cap (it is counted
// either way; remove uncounts it).
func (sc *socketCounts) add(u userKey) bool {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	sc.n[u]++
	return sc.n[u] <= sc.max
}

func (sc *socketCounts) remove(u userKey) {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	if sc.n[u]--; sc.n[u] <= 0 {
		delete(sc.n, u)
	}
}

// sweep runs until ctx ends: every second it pings sockets that have been silent for
// PingInterval (the engine closes one that stays silent for another PingInterval) and
// closes those whose token expired; every heartbeatEvery it reports the desktops alive.
func (s *Server) sweep(ctx context.Context) {
	every := min(time.Second, s.cfg.PingInterval/2)
	tick := time.NewTicker(every)
	defer tick.Stop()
	lastBeat := time.Now()
	var conns []*wsConn
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		now := time.Now()
		s.mu.Lock()
		conns = conns[:0]
		for c := range s.conns {
			conns = append(conns, c)
		}
		s.mu.Unlock()
		ping := int64(s.cfg.PingInterval)
		for _, c := range conns {
			ws := c.ws.Load()
			if c.closing.Load() || ws == nil {
				continue
			}
			if !c.expires.IsZero() && !now.Before(c.expires) {
				c.closeWith(CloseTokenExpired, "token expired")
				continue
			}
			n := now.UnixNano()
			if n-c.lastRecv.Load() >= ping && n-c.lastPing.Load() >= ping {
				c.lastPing.Store(n)
				c.queued.Add(2)
				_ = ws.WriteMessage(websocket.PingMessage, nil)
			}
		}
		if now.Sub(lastBeat) >= heartbeatEvery {
			lastBeat = now
			s.desktops.heartbeat()
		}
		clear(conns)
	}
}

// desktopSet reports every agent with at least one desktop (agent connection) to the
// Commander's callbridge.Presence, as one desktop per gateway: DesktopAttached when the
// agent's first connection opens, DesktopDetached when the last one closes, and a
// DesktopHeartbeat for every agent with desktops every heartbeatEvery (the sockets' own
// liveness is the gateway's pings). Reports go out in order from one goroutine, so a
// detach never overtakes its attach; the gateway's connections never wait for them.
type desktopSet struct {
	p   callbridge.Presence
	id  string // this gateway's desktop id
	log *slog.Logger

	mu    sync.Mutex
	n     map[hub.Key]int
	queue []presenceReport
	wake  chan struct{}
}

type presenceKind int

const (
	reportAttach presenceKind = iota
	reportDetach
	reportBeat
)

type presenceReport struct {
	kind presenceKind
	keys []hub.Key
}

// HeartbeatReporter is implemented by Presence services that take many agents' heartbeats
// in one call (the node: one turn of its loop for every agent).
type HeartbeatReporter interface {
	DesktopHeartbeats(ctx context.Context, agents []callbridge.AgentKey, desktop string) error
}

func (d *desktopSet) attach(k hub.Key) {
	d.mu.Lock()
	d.n[k]++
	if d.n[k] == 1 {
		d.push(presenceReport{kind: reportAttach, keys: []hub.Key{k}})
	}
	d.mu.Unlock()
}

func (d *desktopSet) detach(k hub.Key) {
	d.mu.Lock()
	if d.n[k]--; d.n[k] <= 0 {
		delete(d.n, k)
		d.push(presenceReport{kind: reportDetach, keys: []hub.Key{k}})
	}
	d.mu.Unlock()
}

func (d *desktopSet) heartbeat() {
	d.mu.Lock()
	keys := make([]hub.Key, 0, len(d.n))
	for k := range d.n {
		keys = append(keys, k)
	}
	if len(keys) > 0 {
		d.push(presenceReport{kind: reportBeat, keys: keys})
	}
	d.mu.Unlock()
}

// push queues r; d.mu is held.
func (d *desktopSet) push(r presenceReport) {
	if d.p == nil {
		return
	}
	d.queue = append(d.queue, r)
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// run sends the reports until ctx ends.
func (d *desktopSet) run(ctx context.Context) {
	if d.p == nil {
		return
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-d.wake:
		}
		for {
			d.mu.Lock()
			q := d.queue
			d.queue = nil
			d.mu.Unlock()
			if len(q) == 0 {
				break
			}
			for _, r := range q {
				d.send(ctx, r)
			}
		}
	}
}

func (d *desktopSet) send(ctx context.Context, r presenceReport) {
	ctx, cancel := context.WithTimeout(ctx, presenceTimeout)
	defer cancel()
	var err error
	switch r.kind {
	case reportAttach:
		err = d.p.DesktopAttached(ctx, r.keys[0].Tenant, r.keys[0].Agent, d.id)
	case reportDetach:
		err = d.p.DesktopDetached(ctx, r.keys[0].Tenant, r.keys[0].Agent, d.id)
	case reportBeat:
		if hb, ok := d.p.(HeartbeatReporter); ok {
			err = hb.DesktopHeartbeats(ctx, r.keys, d.id)
			break
		}
		for _, k := range r.keys {
			if e := d.p.DesktopHeartbeat(ctx, k.Tenant, k.Agent, d.id); e != nil {
				err = e
			}
		}
	}
	if err != nil && ctx.Err() == nil {
		d.log.Debug("desktop presence report failed", "kind", r.kind, "agents", len(r.keys), "err", err)
	}
}
