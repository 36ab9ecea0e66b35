package http

import (
	"context"
	"encoding/json"
	"log/slog"
	nethttp "net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lesismal/nbio/nbhttp/websocket"

	"github.com/callbridge/callbridge"
	"github.com/callbridge/callbridge/hub"
)

// WebSocket close codes the gateway sends besides the standard ones (1001 going away on
// shutdown, 1011 when the node fails, 1009 for a message over the read limit).
const (
	// CloseSlowConsumer closes a client whose send queue passed Config.SendQueueBytes;
	// reason "slow consumer". The close frame follows what was already queued. The client
	// reconnects and resumes with after_seq (the server answers with a resync when it fell
	// too far behind to catch up).
	CloseSlowConsumer = 4008
	// CloseTokenExpired closes a connection when its access token expires; reason "token
	// expired". The client refreshes (POST /v1/refresh) and reconnects with after_seq; clients
	// move to a new socket with a refreshed token before this (see sessions.go, docs/api.md).
	CloseTokenExpired = 4001
	// CloseTooManyConnections closes a connection at once when its user already has
	// Config.MaxSocketsPerUser open; reason "too many connections". The client should not
	// retry until another of the user's connections has closed.
	CloseTooManyConnections = 4009

	closeGoingAway    = 1001
	closeInternal     = 1011
	closeMessageLarge = 1009
)

const (
	// maxMessageBytes is the read limit for one client message; a larger message closes the
	// connection with 1009.
	maxMessageBytes = 64 << 10
	// commandQueueLen is how many commands of one connection may wait for the one before them;
	// more are refused with EUnavailable.
	commandQueueLen = 32
	// commandTimeout bounds one Commander.Do call.
	commandTimeout = 30 * time.Second
)

// handleWS serves GET /v1/ws. Before the upgrade it authenticates (bearer header or
// access_token), checks the Origin, parses after_seq and, for an agent connecting without
// after_seq, draws the snapshot, so that every failure is a plain JSON HTTP error: 401, 403,
// 400, or the Commander's error (e.g. 404 for an agent the engine does not know, 503 while
// shutting down).
//
// With ?after_seq=N the stream is every event of the caller's audience after N, then live
// ones (or a resync when N cannot be served). Without it an agent first gets a snapshot
// message and the events after its seq; supervisors and admins get live events from now on.
func (s *Server) handleWS(w nethttp.ResponseWriter, r *nethttp.Request) {
	if s.isClosing() {
		s.writeError(w, r, callbridge.Errorf(callbridge.EUnavailable, "server is shutting down"))
		return
	}
	id, err := s.authenticate(r, true)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if err := s.checkOrigin(r); err != nil {
		s.writeError(w, r, err)
		return
	}
	if !isWebSocketUpgrade(r) {
		s.writeError(w, r, callbridge.Errorf(callbridge.EInvalid, "this endpoint needs a WebSocket upgrade"))
		return
	}
	afterSeq, hasAfter, err := parseAfterSeq(r.URL.Query())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	c := s.newConn(id)
	var first []byte
	if !hasAfter && id.Role == callbridge.RoleAgent {
		snap, err := s.cfg.Commander.Snapshot(r.Context(), id.Tenant, c.key.Agent)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		if first, err = json.Marshal(snapshotMessage{Type: "snapshot", Seq: snap.Seq, Data: normSnapshot(snap)}); err != nil {
			s.writeError(w, r, err)
			return
		}
		afterSeq, hasAfter = snap.Seq, true
	}
	if !hasAfter {
		afterSeq = s.cfg.Hub.LastSeq()
	}
	over := !s.sockets.add(c.user)
	if !s.register(c) {
		s.sockets.remove(c.user)
		s.writeError(w, r, callbridge.Errorf(callbridge.EUnavailable, "server is shutting down"))
		return
	}
	if err := s.sessionLive(r.Context(), id); err != nil { // logged out while this socket was set up
		s.sockets.remove(c.user)
		s.unregister(c)
		s.writeError(w, r, err)
		return
	}
	ws, err := s.upgraderFor(c).Upgrade(w, r, nil)
	if err != nil {
		// The upgrader has answered the request itself.
		s.sockets.remove(c.user)
		s.unregister(c)
		s.logger().Debug("websocket upgrade failed", "err", err)
		return
	}
	c.bind(ws)
	s.cfg.Metrics.WebSocketOpened()
	if over {
		c.closeWith(CloseTooManyConnections, "too many connections")
		return
	}
	if p := c.pending.Load(); p != nil {
		c.closeWith(p.code, p.reason)
		return
	}
	if first != nil {
		c.allow.Store(int64(len(first))) // a large snapshot does not count against the queue's cap
		c.write(first)
	}
	c.attachDesktop()
	c.subscribe(afterSeq)
}

// checkOrigin allows requests without Origin (non-browser clients), same-origin requests
// (Origin host equals the Host header) and Config.AllowedOrigins. Errors: EForbidden.
func (s *Server) checkOrigin(r *nethttp.Request) error {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return nil
	}
	u, err := url.Parse(origin)
	if err == nil && u.Host != "" && strings.EqualFold(u.Host, r.Host) {
		return nil
	}
	for _, a := range s.cfg.AllowedOrigins {
		if a == "*" || strings.EqualFold(strings.TrimSuffix(a, "/"), origin) {
			return nil
		}
	}
	return callbridge.Errorf(callbridge.EForbidden, "origin %q is not allowed", origin)
}

func isWebSocketUpgrade(r *nethttp.Request) bool {
	if !strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
		return false
	}
	for _, v := range r.Header.Values("Connection") {
		for _, tok := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(tok), "upgrade") {
				return true
			}
		}
	}
	return false
}

// parseAfterSeq reads the optional after_seq query parameter (a non-negative integer).
func parseAfterSeq(q url.Values) (uint64, bool, error) {
	if !q.Has("after_seq") {
		return 0, false, nil
	}
	n, err := strconv.ParseUint(q.Get("after_seq"), 10, 64)
	if err != nil {
		return 0, false, callbridge.Errorf(callbridge.EInvalid, "after_seq must be a non-negative integer")
	}
	return n, true, nil
}

// wsConn is one WebSocket client. It holds no goroutine of its own: the socket lives in the
// event-driven WebSocket engine (engine.go), which calls onMessage and onClose; the hub
// calls Send from the publisher; a goroutine runs the connection's commands only while it
// has some; the server's sweeper pings it and closes it when its token expires.
type wsConn struct {
	s    *Server
	id   identity
	user userKey
	key  hub.Key
	// ws is the upgraded socket, set once by bind.
	ws atomic.Pointer[websocket.Conn]

	// expires is when the token expires, on the monotonic clock (zero: never).
	expires time.Time
	// lastRecv is when the client last showed life (a message or a pong), Unix nanoseconds;
	// lastPing when the sweeper last pinged it.
	lastRecv atomic.Int64
	lastPing atomic.Int64
	// queued counts the bytes handed to the socket and not yet written to the kernel.
	queued atomic.Int64
	// allow raises the send queue's cap by the size of the last snapshot written (so that a
	// desktop whose snapshot alone is near the cap is not cut off by the events after it).
	allow   atomic.Int64
	closing atomic.Bool
	// pending is a close asked for before the upgrade completed.
	pending atomic.Pointer[closeReq]

	mu      sync.Mutex
	sub     *hub.Subscription
	ended   bool // onClose has run: no new subscription
	cmds    []request
	running bool // a goroutine is running cmds
	desk    bool // counted as a desktop of its agent
}

func (s *Server) newConn(id identity) *wsConn {
	c := &wsConn{s: s, id: id, user: userKey{id.Tenant, id.Username}, key: hub.Key{Tenant: id.Tenant}}
	if id.Role == callbridge.RoleAgent {
		c.key.Agent = callbridge.AgentID(id.Username)
	}
	if !id.Expires.IsZero() {
		c.expires = time.Now().Add(id.Expires.Sub(s.now()))
	}
	c.touch()
	return c
}

// log returns a logger with the connection's identity (built on demand: an idle connection
// keeps none).
func (c *wsConn) log() *slog.Logger {
	return c.s.logger().With("tenant", c.id.Tenant, "user", c.id.Username, "role", c.id.Role)
}

func (c *wsConn) touch() { c.lastRecv.Store(time.Now().UnixNano()) }

// bind attaches the upgraded socket (from the upgrade, or from the first message when that
// comes first).
func (c *wsConn) bind(ws *websocket.Conn) {
	if c.ws.CompareAndSwap(nil, ws) {
		ws.SetSession(c)
	}
}

// subscribe (re)starts the event stream after afterSeq: it ends the current subscription
// (no frame of it follows) and subscribes anew. The window's later events are written
// before subscribe returns.
func (c *wsConn) subscribe(afterSeq uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.sub != nil {
		c.sub.Close()
		c.sub = nil
	}
	if c.ended {
		return
	}
	c.sub = c.s.cfg.Hub.Subscribe(c.key, afterSeq, c)
}

// Send implements hub.Subscriber: it writes frame to the socket without blocking. Past the
// send queue's byte cap the connection is closed as a slow consumer.
func (c *wsConn) Send(_ uint64, frame []byte) {
	if c.closing.Load() {
		return
	}
	if c.queued.Load()+int64(len(frame)) > int64(c.s.cfg.SendQueueBytes)+c.allow.Load() {
		c.s.cfg.Metrics.SlowConsumer()
		c.log().Warn("slow consumer: send queue full, closing", "limit_bytes", c.s.cfg.SendQueueBytes)
		c.closeWith(CloseSlowConsumer, "slow consumer")
		return
	}
	c.write(frame)
}

// Resync implements hub.Subscriber: the position asked for cannot be served. The client
// gets {"type":"resync","reason":…,"seq":S} — for an agent with "data", a fresh snapshot at
// S — and then every event after S.
func (c *wsConn) Resync(reason string) {
	c.s.cfg.Metrics.Resync(reason)
	go c.resync(reason)
}

func (c *wsConn) resync(reason string) {
	msg := resyncMessage{Type: "resync", Reason: reason}
	if c.key.Agent != "" {
		ctx, cancel := context.WithTimeout(c.s.baseCtx, commandTimeout)
		snap, err := c.s.cfg.Commander.Snapshot(ctx, c.id.Tenant, c.key.Agent)
		cancel()
		if err != nil {
			if c.s.baseCtx.Err() == nil {
				c.log().Error("resync: snapshot failed", "err", err)
			}
			c.closeWith(closeInternal, "snapshot unavailable")
			return
		}
		norm := normSnapshot(snap)
		msg.Seq, msg.Data = snap.Seq, &norm
	} else {
		msg.Seq = c.s.cfg.Hub.LastSeq()
	}
	b, err := json.Marshal(msg)
	if err != nil {
		c.closeWith(closeInternal, "internal error")
		return
	}
	c.mu.Lock()
	ended := c.ended
	c.mu.Unlock()
	if ended {
		return
	}
	c.log().Info("resume position cannot be served; sent a resync", "reason", reason, "seq", msg.Seq)
	c.allow.Store(int64(len(b)))
	c.write(b)
	c.subscribe(msg.Seq)
}

// write hands one text message to the socket (never blocking: the engine keeps what the
// kernel does not take yet, and counts it in queued).
func (c *wsConn) write(b []byte) {
	c.queued.Add(int64(len(b)) + frameOverhead(len(b)))
	if err := c.ws.Load().WriteMessage(websocket.TextMessage, b); err != nil {
		c.queued.Add(-(int64(len(b)) + frameOverhead(len(b))))
	}
}

// frameOverhead is the header size of an unmasked server frame of n payload bytes (RFC
// 6455 §5.2).
func frameOverhead(n int) int64 {
	switch {
	case n < 126:
		return 2
	case n < 1<<16:
		return 4
	default:
		return 10
	}
}

// closeWith sends a close frame with code and reason after what is queued, and closes the
// socket once the client answers or after WriteTimeout. The first call wins; later writes
// are dropped.
func (c *wsConn) closeWith(code int, reason string) {
	ws := c.ws.Load()
	if ws == nil {
		// Not upgraded yet: handleWS closes it right after the upgrade.
		c.pending.CompareAndSwap(nil, &closeReq{code, reason})
		return
	}
	if !c.closing.CompareAndSwap(false, true) {
		return
	}
	c.queued.Add(int64(4 + len(reason)))
	_ = ws.WriteClose(code, reason)
	time.AfterFunc(c.s.cfg.WriteTimeout, func() { _ = ws.Close() })
}

// closeReq is a close code and reason.
type closeReq struct {
	code   int
	reason string
}

// onMessage handles one client message (on the engine's handler pool: it must not block).
// Parse errors and pings are answered at once; commands and resume go to the connection's
// command runner, in order.
func (c *wsConn) onMessage(typ websocket.MessageType, data []byte) {
	c.touch()
	if c.closing.Load() {
		return
	}
	if typ != websocket.TextMessage {
		c.reply("", nil, invalid("binary messages are not supported; send JSON text"))
		return
	}
	req, perr := parseRequest(data)
	if perr != nil {
		c.reply(req.id, nil, perr)
		return
	}
	if req.name == cmdPing {
		c.reply(req.id, nil, nil)
		return
	}
	c.mu.Lock()
	if len(c.cmds) >= commandQueueLen {
		c.mu.Unlock()
		c.reply(req.id, nil, callbridge.Errorf(callbridge.EUnavailable,
			"more than %d commands are waiting; wait for their replies", commandQueueLen))
		return
	}
	c.cmds = append(c.cmds, req)
	start := !c.running
	c.running = true
	c.mu.Unlock()
	if start {
		go c.runCommands()
	}
}

// runCommands runs the connection's queued commands one after another and ends when there
// are none.
func (c *wsConn) runCommands() {
	for {
		c.mu.Lock()
		if len(c.cmds) == 0 || c.ended {
			c.cmds, c.running = nil, false
			c.mu.Unlock()
			return
		}
		req := c.cmds[0]
		c.cmds = c.cmds[1:]
		c.mu.Unlock()
		c.run(req)
	}
}

// run carries out one parsed command and writes its reply.
func (c *wsConn) run(req request) {
	if req.name == cmdResume {
		// The old stream stops before the reply, and the new one starts after it: the reply
		// comes before the replayed events, and an event published in between comes once,
		// from the new stream.
		c.mu.Lock()
		if c.sub != nil {
			c.sub.Close()
			c.sub = nil
		}
		c.mu.Unlock()
		c.reply(req.id, nil, nil)
		c.subscribe(req.afterSeq)
		return
	}
	cmd, err := c.command(req)
	if err != nil {
		c.reply(req.id, nil, err)
		return
	}
	ctx, cancel := context.WithTimeout(c.s.baseCtx, commandTimeout)
	res, err := c.s.cfg.Commander.Do(ctx, cmd)
	cancel()
	if err != nil {
		c.log().Debug("command failed", "cmd", cmd.Name, "agent", cmd.Agent, "err", err)
		c.reply(req.id, nil, err)
		return
	}
	c.reply(req.id, res, nil)
}

// command completes req's Command from the connection: Tenant, Role and Agent from the token
// (a supervisor or admin may name another agent with the "agent" param; an agent may name
// only themself), Time from Config.Now.
func (c *wsConn) command(req request) (callbridge.Command, error) {
	cmd := req.cmd
	cmd.Tenant = c.id.Tenant
	cmd.Role = c.id.Role
	cmd.Agent = callbridge.AgentID(c.id.Username)
	cmd.Time = c.s.now()
	if req.agent != "" && req.agent != cmd.Agent {
		if c.id.Role == callbridge.RoleAgent {
			return cmd, callbridge.Errorf(callbridge.EForbidden, "an agent can only act as themself")
		}
		if !callbridge.ValidToken(string(req.agent)) {
			return cmd, invalid(`"agent" must be 1-64 characters of [A-Za-z0-9_-]`)
		}
		cmd.Agent = req.agent
	}
	return cmd, nil
}

// reply writes a reply to the message with id re ("" when it had none): ok with data when
// err is nil, else the error's public form (internal errors are logged, shown as
// "internal error").
func (c *wsConn) reply(re string, data any, err error) {
	m := replyMessage{Re: re, OK: err == nil}
	if err != nil {
		body := publicError(c.log(), err, "re", re)
		m.Error = &body
	} else if data != nil {
		m.Data = data
	}
	b, merr := json.Marshal(m)
	if merr != nil {
		c.log().Error("cannot encode reply", "err", merr)
		return
	}
	if c.closing.Load() {
		return
	}
	c.write(b)
}

// onClose runs once when the socket is gone: it ends the subscription, the command runner
// and the desktop.
func (c *wsConn) onClose(err error) {
	c.mu.Lock()
	if c.ended {
		c.mu.Unlock()
		return
	}
	c.ended = true
	if c.sub != nil {
		c.sub.Close()
		c.sub = nil
	}
	if c.desk {
		c.s.desktops.detach(c.key)
	}
	c.mu.Unlock()
	c.s.sockets.remove(c.user)
	c.s.unregister(c)
	c.s.cfg.Metrics.WebSocketClosed()
	if err != nil && c.s.logger().Enabled(context.Background(), slog.LevelDebug) {
		c.log().Debug("websocket closed", "err", err)
	}
}

// attachDesktop counts the connection as a desktop of its agent (supervisors' and admins'
// connections are not desktops).
func (c *wsConn) attachDesktop() {
	if c.id.Role != callbridge.RoleAgent {
		return
	}
	c.mu.Lock()
	if c.ended {
		c.mu.Unlock()
		return
	}
	c.desk = true
	c.s.desktops.attach(c.key)
	c.mu.Unlock()
}
