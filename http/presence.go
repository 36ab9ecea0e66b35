package http

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"sync"
	"sync/atomic"
	"time"

	"github.com/callbridge/callbridge"
)

// Desktop presence: every WebSocket connection of an agent is one desktop of that agent. The
// gateway reports it to the Commander when it also implements callbridge.Presence (the node
// does): DesktopAttached when the connection is up, DesktopHeartbeat whenever the client
// shows life (any message, including the ping command, and WebSocket pongs; at most one
// every heartbeatEvery), and DesktopDetached when it ends. Supervisors' and admins'
// connections are not desktops. The engine turns the absence of every desktop into
// not_ready desktop_lost after its grace time.
//
// The reports of one connection go out in order from one goroutine, so a heartbeat never
// overtakes the detach; heartbeats that find the goroutine busy are dropped (the next one
// will do).
// heartbeatEvery is the shortest interval between two heartbeats of one desktop (a variable
// for tests).
var heartbeatEvery = 10 * time.Second

// presenceTimeout bounds one report to the Commander.
const presenceTimeout = 5 * time.Second

// desktop is the presence of one connection; its zero value reports nothing.
type desktop struct {
	p      callbridge.Presence
	log    interface{ Debug(string, ...any) }
	tenant callbridge.TenantID
	agent  callbridge.AgentID
	id     string

	last  atomic.Int64  // UnixNano of the last heartbeat sent
	beat  chan struct{} // capacity 1: a heartbeat is due
	done  chan struct{} // closed by detach
	wg    sync.WaitGroup
	once  sync.Once
	ready bool
}

// presence returns the Commander as a callbridge.Presence, or nil.
func (s *Server) presence() callbridge.Presence {
	p, _ := s.cfg.Commander.(callbridge.Presence)
	return p
}

// attachDesktop reports c as a desktop of its agent and starts its reporting goroutine.
func (c *wsConn) attachDesktop() {
	p := c.s.presence()
	if p == nil || c.id.Role != callbridge.RoleAgent {
		return
	}
	var b [8]byte
	_, _ = rand.Read(b[:])
	d := &c.desk
	d.p, d.log, d.tenant, d.agent, d.id = p, c.log, c.id.Tenant, callbridge.AgentID(c.id.Username), hex.EncodeToString(b[:])
	d.beat, d.done = make(chan struct{}, 1), make(chan struct{})
	ctx, cancel := context.WithTimeout(context.Background(), presenceTimeout)
	err := p.DesktopAttached(ctx, d.tenant, d.agent, d.id)
	cancel()
	if err != nil {
		c.log.Debug("desktop attach failed", "err", err)
	}
	d.last.Store(time.Now().UnixNano())
	d.ready = true
	d.wg.Add(1)
	go d.run()
}

// run sends the heartbeats, then the detach.
func (d *desktop) run() {
	defer d.wg.Done()
	for {
		select {
		case <-d.beat:
			ctx, cancel := context.WithTimeout(context.Background(), presenceTimeout)
			if err := d.p.DesktopHeartbeat(ctx, d.tenant, d.agent, d.id); err != nil {
				d.log.Debug("desktop heartbeat failed", "err", err)
			}
			cancel()
		case <-d.done:
			ctx, cancel := context.WithTimeout(context.Background(), presenceTimeout)
			if err := d.p.DesktopDetached(ctx, d.tenant, d.agent, d.id); err != nil {
				d.log.Debug("desktop detach failed", "err", err)
			}
			cancel()
			return
		}
	}
}

// heartbeat asks for a heartbeat when the last one is heartbeatEvery old. It never blocks.
func (d *desktop) heartbeat() {
	if !d.ready {
		return
	}
	now := time.Now().UnixNano()
	last := d.last.Load()
	if now-last < int64(heartbeatEvery) || !d.last.CompareAndSwap(last, now) {
		return
	}
	select {
	case d.beat <- struct{}{}:
	default:
	}
}

// detach reports the desktop gone and waits for its goroutine (at most presenceTimeout plus
// a heartbeat in flight).
func (d *desktop) detach() {
	if !d.ready {
		return
	}
	d.once.Do(func() { close(d.done) })
	d.wg.Wait()
}
