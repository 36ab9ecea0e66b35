package http

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	nethttp "net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/callbridge/callbridge"
	"github.com/coder/websocket"
)

// WebSocket close codes the gateway sends besides the standard ones (1001 going away on
// shutdown, 1011 when the event log fails, 1009 for a message over the read limit).
const (
	// CloseSlowConsumer closes a client whose send queue passed Config.SendQueueBytes; reason
	// "slow consumer". The client should reconnect without after_seq (fresh snapshot), since
	// it fell too far behind to catch up from the log.
	CloseSlowConsumer websocket.StatusCode = 4008
	// CloseTokenExpired closes a connection when its token expires; reason "token expired".
	// The client must log in again.
	CloseTokenExpired websocket.StatusCode = 4001

	closeGoingAway = websocket.StatusGoingAway
)

const (
	// maxMessageBytes is the read limit for one client message; a larger message closes the
	// connection with 1009.
	maxMessageBytes = 64 << 10
	// commandQueueLen is how many commands of one connection may wait for the one before them;
	// more are refused with EUnavailable instead of stalling the reader.
	commandQueueLen = 32
	// commandTimeout bounds one Commander.Do call.
	commandTimeout = 30 * time.Second
)

// handleWS serves GET /v1/ws. Before the upgrade it authenticates (bearer header or
// access_token), checks the Origin, parses after_seq and sets up the event stream, so that
// every failure is a plain JSON HTTP error: 401, 403, 400, or the Commander's/EventLog's error
// (e.g. 404 for an agent the engine does not know, 503 while shutting down).
//
// With ?after_seq=N the stream is every event of the caller's filter after N, then live ones.
// Without it an agent first gets a snapshot message and the events after its seq; supervisors
// and admins get live events from the log's current end.
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
	if err := c.start(r.Context(), afterSeq, hasAfter); err != nil {
		c.finish()
		s.writeError(w, r, err)
		return
	}
	if !s.register(c) {
		c.finish()
		s.writeError(w, r, callbridge.Errorf(callbridge.EUnavailable, "server is shutting down"))
		return
	}
	defer s.unregister(c)
	if err := s.sessionLive(r.Context(), id); err != nil { // logged out while this socket was set up
		c.finish()
		s.writeError(w, r, err)
		return
	}
	ws, err := websocket.Accept(w, r, &websocket.AcceptOptions{
		InsecureSkipVerify: true, // checkOrigin has done it, with our rules
		OnPongReceived:     func(context.Context, []byte) { c.touch() },
	})
	if err != nil {
		c.log.Debug("websocket accept failed", "err", err)
		c.finish()
		return
	}
	s.cfg.Metrics.WebSocketOpened()
	defer s.cfg.Metrics.WebSocketClosed()
	c.serve(ws)
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

// wsConn is one WebSocket client. Goroutines: the reader (the handler's own), one writer (the
// only one writing data frames, pings and the close frame) and one command runner (so that a
// slow command delays later commands of this connection but never event delivery). The
// EventLog's callback only appends to the byte-capped outbox.
type wsConn struct {
	s      *Server
	id     identity
	filter callbridge.Filter
	log    *slog.Logger
	ws     *websocket.Conn

	// ctx lives as long as the connection; cancel cuts it (and aborts a Read or Write).
	ctx    context.Context
	cancel context.CancelFunc

	out  *outbox
	cmds chan request
	// lastRecv is when the client last showed life (a message or a pong), Unix nanoseconds.
	lastRecv atomic.Int64

	closeOnce   sync.Once
	closeReq    chan struct{} // closed when the writer should close with closeCode/closeReason
	closeCode   websocket.StatusCode
	closeReason string

	subMu   sync.Mutex
	sub     callbridge.Subscription
	subDone bool // finish has run: no new subscription
	// lastSeq is the seq of the last event queued in the current subscription; events at or
	// below it are dropped, so a resume never duplicates.
	lastSeq atomic.Uint64
	// desk reports this connection as a desktop of its agent (presence.go).
	desk desktop
}

func (s *Server) newConn(id identity) *wsConn {
	ctx, cancel := context.WithCancel(s.baseCtx)
	filter := callbridge.Filter{Tenant: id.Tenant}
	if id.Role == callbridge.RoleAgent {
		filter.Agent = callbridge.AgentID(id.Username)
	}
	return &wsConn{
		s:        s,
		id:       id,
		filter:   filter,
		log:      s.log.With("tenant", id.Tenant, "user", id.Username, "role", id.Role),
		ctx:      ctx,
		cancel:   cancel,
		out:      newOutbox(s.cfg.SendQueueBytes),
		cmds:     make(chan request, commandQueueLen),
		closeReq: make(chan struct{}),
	}
}

// start queues the snapshot (agents without after_seq) and subscribes to the event log.
// reqCtx bounds the Snapshot and LastSeq calls; the subscription lives with the connection.
func (c *wsConn) start(reqCtx context.Context, afterSeq uint64, hasAfter bool) error {
	if hasAfter {
		return c.subscribe(afterSeq)
	}
	if c.id.Role == callbridge.RoleAgent {
		snap, err := c.s.cfg.Commander.Snapshot(reqCtx, c.id.Tenant, callbridge.AgentID(c.id.Username))
		if err != nil {
			return err
		}
		b, err := json.Marshal(snapshotMessage{Type: "snapshot", Seq: snap.Seq, Data: normSnapshot(snap)})
		if err != nil {
			return err
		}
		c.out.push(outMsg{data: b})
		return c.subscribe(snap.Seq)
	}
	last, err := c.s.cfg.Log.LastSeq(reqCtx)
	if err != nil {
		return err
	}
	return c.subscribe(last)
}

// subscribe (re)starts the event stream after afterSeq: it stops the current subscription
// (waiting for its callback), drops its events still queued, and subscribes anew.
func (c *wsConn) subscribe(afterSeq uint64) error {
	c.subMu.Lock()
	defer c.subMu.Unlock()
	if c.sub != nil {
		c.sub.Stop()
		c.sub = nil
	}
	if c.subDone {
		return callbridge.Errorf(callbridge.EUnavailable, "connection closed")
	}
	c.out.dropEvents()
	c.lastSeq.Store(afterSeq)
	sub, err := c.s.cfg.Log.Subscribe(c.ctx, c.filter, afterSeq, c.deliver)
	if err != nil {
		return err
	}
	c.sub = sub
	return nil
}

// deliver is the EventLog callback: it encodes ev and queues it, never blocking. A full queue
// closes the connection with CloseSlowConsumer.
func (c *wsConn) deliver(ev callbridge.WireEvent) {
	if ev.Seq <= c.lastSeq.Load() {
		return
	}
	c.lastSeq.Store(ev.Seq)
	b, err := json.Marshal(ev)
	if err != nil {
		c.log.Error("cannot encode event; skipped", "seq", ev.Seq, "type", ev.Type, "err", err)
		return
	}
	if !c.out.push(outMsg{data: b, event: true}) {
		c.slowConsumer()
	}
}

func (c *wsConn) slowConsumer() {
	c.closeOnce.Do(func() {
		c.log.Warn("slow consumer: send queue full, closing", "limit_bytes", c.s.cfg.SendQueueBytes)
		c.closeCode, c.closeReason = CloseSlowConsumer, "slow consumer"
		close(c.closeReq)
	})
}

// closeWith asks the writer to close the connection with code and reason (the first request
// wins). It does not block.
func (c *wsConn) closeWith(code websocket.StatusCode, reason string) {
	c.closeOnce.Do(func() {
		c.closeCode, c.closeReason = code, reason
		close(c.closeReq)
	})
}

// abort cuts the connection without a close handshake.
func (c *wsConn) abort() { c.cancel() }

// finish stops the subscription for good and cancels the connection's context.
func (c *wsConn) finish() {
	c.subMu.Lock()
	c.subDone = true
	if c.sub != nil {
		c.sub.Stop()
		c.sub = nil
	}
	c.subMu.Unlock()
	c.cancel()
}

func (c *wsConn) touch() {
	c.lastRecv.Store(time.Now().UnixNano())
	c.desk.heartbeat()
}

// serve runs the connection until it ends.
func (c *wsConn) serve(ws *websocket.Conn) {
	c.ws = ws
	ws.SetReadLimit(maxMessageBytes)
	c.attachDesktop()
	defer c.desk.detach()
	c.touch()
	c.log.Debug("websocket connected")

	var expiry *time.Timer
	if !c.id.Expires.IsZero() {
		expiry = time.AfterFunc(c.id.Expires.Sub(c.s.now()), func() {
			c.closeWith(CloseTokenExpired, "token expired")
		})
	}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); c.writeLoop() }()
	go func() { defer wg.Done(); c.commandLoop() }()
	c.readLoop()
	c.cancel()
	wg.Wait()
	if expiry != nil {
		expiry.Stop()
	}
	c.finish()
	_ = ws.CloseNow()
	c.log.Debug("websocket closed")
}

// readLoop reads client messages until the connection fails or closes. Parse errors and
// pings are answered here; commands go to the command runner in order.
func (c *wsConn) readLoop() {
	for {
		typ, data, err := c.ws.Read(c.ctx)
		if err != nil {
			if st := websocket.CloseStatus(err); st != -1 {
				c.log.Debug("websocket closed by client", "code", st)
			} else if c.ctx.Err() == nil {
				c.log.Debug("websocket read failed", "err", err)
			}
			return
		}
		c.touch()
		if typ != websocket.MessageText {
			c.reply("", nil, invalid("binary messages are not supported; send JSON text"))
			continue
		}
		req, perr := parseRequest(data)
		if perr != nil {
			c.reply(req.id, nil, perr)
			continue
		}
		if req.name == cmdPing {
			c.reply(req.id, nil, nil)
			continue
		}
		select {
		case c.cmds <- req:
		default:
			c.reply(req.id, nil, callbridge.Errorf(callbridge.EUnavailable,
				"more than %d commands are waiting; wait for their replies", commandQueueLen))
		}
	}
}

// commandLoop runs this connection's commands one after another.
func (c *wsConn) commandLoop() {
	for {
		select {
		case <-c.ctx.Done():
			return
		case req := <-c.cmds:
			c.run(req)
		}
	}
}

// run carries out one parsed command and queues its reply.
func (c *wsConn) run(req request) {
	if req.name == cmdResume {
		// The reply goes first, so that the replayed events follow it.
		c.reply(req.id, nil, nil)
		if err := c.subscribe(req.afterSeq); err != nil {
			if c.ctx.Err() == nil {
				c.log.Error("resume: subscribe failed", "after_seq", req.afterSeq, "err", err)
				c.closeWith(websocket.StatusInternalError, "event log unavailable")
			}
		}
		return
	}
	cmd, err := c.command(req)
	if err != nil {
		c.reply(req.id, nil, err)
		return
	}
	ctx, cancel := context.WithTimeout(c.ctx, commandTimeout)
	res, err := c.s.cfg.Commander.Do(ctx, cmd)
	cancel()
	if c.ctx.Err() != nil {
		return // the connection is gone; nobody to reply to
	}
	if err != nil {
		c.log.Debug("command failed", "cmd", cmd.Name, "agent", cmd.Agent, "err", err)
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

// reply queues a reply to the message with id re ("" when it had none): ok with data when
// err is nil, else the error's public form (internal errors are logged, shown as
// "internal error").
func (c *wsConn) reply(re string, data any, err error) {
	m := replyMessage{Re: re, OK: err == nil}
	if err != nil {
		body := publicError(c.log, err, "re", re)
		m.Error = &body
	} else if data != nil {
		m.Data = data
	}
	b, merr := json.Marshal(m)
	if merr != nil {
		c.log.Error("cannot encode reply", "err", merr)
		return
	}
	if !c.out.push(outMsg{data: b}) {
		c.slowConsumer()
	}
}

// writeLoop is the only writer: it sends queued messages, pings a silent client, and does
// the close handshake when asked.
func (c *wsConn) writeLoop() {
	interval := c.s.cfg.PingInterval
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	for {
		select {
		case <-c.closeReq:
			c.closeNow()
			return
		default:
		}
		if m, ok := c.out.pop(); ok {
			ctx, cancel := context.WithTimeout(c.ctx, c.s.cfg.WriteTimeout)
			err := c.ws.Write(ctx, websocket.MessageText, m.data)
			cancel()
			if err != nil {
				if c.ctx.Err() == nil {
					c.log.Info("websocket write failed; closing", "err", err)
				}
				_ = c.ws.CloseNow()
				return
			}
			continue
		}
		select {
		case <-c.ctx.Done():
			_ = c.ws.CloseNow()
			return
		case <-c.closeReq:
			c.closeNow()
			return
		case <-c.out.wake:
		case <-ticker.C:
			if time.Since(time.Unix(0, c.lastRecv.Load())) < interval {
				continue // the client spoke recently: that is its heartbeat
			}
			ctx, cancel := context.WithTimeout(c.ctx, interval)
			err := c.ws.Ping(ctx)
			cancel()
			if err != nil {
				if c.ctx.Err() == nil {
					c.log.Info("websocket ping failed; closing", "err", err)
				}
				_ = c.ws.CloseNow()
				return
			}
		}
	}
}

// closeNow does the close handshake with the requested code and reason.
func (c *wsConn) closeNow() {
	c.log.Debug("closing websocket", "code", c.closeCode, "reason", c.closeReason)
	if err := c.ws.Close(c.closeCode, c.closeReason); err != nil && !errors.Is(err, context.Canceled) {
		c.log.Debug("websocket close handshake incomplete", "err", err)
	}
}
