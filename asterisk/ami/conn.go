package ami

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Errors. Test them with errors.Is.
var (
	// ErrAuthFailed: the switch refused the login ("Response: Error / Message: Authentication
	// failed", about 1 s after the Login action, then it closes the connection; see
	// bad-login.ami.jsonl and bad-login-unknown-user.ami.jsonl).
	ErrAuthFailed = errors.New("ami: authentication failed")
	// ErrClosed: the connection is closed (by Close, by the switch, or after an error; Conn.Err
	// says which).
	ErrClosed = errors.New("ami: connection closed")
	// ErrKeepAliveTimeout: a keep-alive Ping got no answer within Config.KeepAliveTimeout.
	ErrKeepAliveTimeout = errors.New("ami: keep-alive ping not answered")
	// ErrNotConnected: Client.Action was called while the client has no live connection.
	ErrNotConnected = errors.New("ami: not connected")
)

// Defaults for Config fields left zero.
const (
	DefaultKeepAlive        = 15 * time.Second
	DefaultKeepAliveTimeout = 5 * time.Second
	DefaultDialTimeout      = 10 * time.Second
	DefaultWriteTimeout     = 10 * time.Second
)

// Config configures one connection.
type Config struct {
	// Addr is host:port of the manager interface, e.g. "127.0.0.1:5038".
	Addr string
	// Username and Secret are the manager.conf user and its secret (sent in clear in the
	// Login action: AMI over TCP has no transport security; keep it on a trusted network).
	Username, Secret string
	// Logger receives connection-level logs; nil discards them.
	Logger *slog.Logger
	// OnEvent receives every event that is not a list item of a pending action, in wire order,
	// from the connection's single reader goroutine. It must not block for long and must not
	// wait for an Action of the same connection (the reader would be waiting on it). Nil
	// discards events. Events sent right after login (FullyBooted, SuccessfulAuth) may arrive
	// before Dial returns.
	OnEvent func(Message)
	// Tap, when set, sees every raw frame: dir "in" for frames read (the banner first) and
	// "out" for frames written, called in order and never concurrently, "out" just before the
	// write (the capture format of shared/fixtures/asterisk-22/README.md). The Secret of the
	// Login action is replaced by "********" in what Tap sees.
	Tap func(dir string, raw string)
	// KeepAlive is the interval between keep-alive "Action: Ping"s: 0 means
	// DefaultKeepAlive (15 s); negative disables keep-alive.
	KeepAlive time.Duration
	// KeepAliveTimeout is how long a Ping may go unanswered before the connection is closed
	// with ErrKeepAliveTimeout: 0 means DefaultKeepAliveTimeout (5 s).
	KeepAliveTimeout time.Duration
	// DialTimeout bounds Dial as a whole (TCP connect, banner, login): 0 means
	// DefaultDialTimeout (10 s). Asterisk answers a bad login after about 1 s.
	DialTimeout time.Duration
	// WriteTimeout is the deadline of each write: 0 means DefaultWriteTimeout (10 s). A write
	// that misses it closes the connection (the stream may hold half a frame).
	WriteTimeout time.Duration
}

func (cfg Config) withDefaults() Config {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.KeepAlive == 0 {
		cfg.KeepAlive = DefaultKeepAlive
	}
	if cfg.KeepAliveTimeout <= 0 {
		cfg.KeepAliveTimeout = DefaultKeepAliveTimeout
	}
	if cfg.DialTimeout <= 0 {
		cfg.DialTimeout = DefaultDialTimeout
	}
	if cfg.WriteTimeout <= 0 {
		cfg.WriteTimeout = DefaultWriteTimeout
	}
	return cfg
}

// Conn is one logged-in AMI connection. Actions may be sent from any goroutine; writes are
// serialised. One reader goroutine reads every frame and:
//
//   - hands a response to the Action waiting for its ActionID, together with the list items
//     and the Complete event of an event-list action;
//   - ignores responses and list items whose ActionID this Conn never issued (never delivered
//     as events: a replayed recording is full of them), and responses to actions whose caller
//     gave up;
//   - delivers every other event to Config.OnEvent, in wire order. An event carrying an
//     ActionID this Conn issued after its action completed (OriginateResponse for an Async
//     Originate) is an event like the others.
//
// A response may arrive before or after the events its action causes (QueueAdd,
// BlindTransfer, Originate in the recordings); correlation is by ActionID only.
type Conn struct {
	cfg    Config
	log    *slog.Logger
	nc     net.Conn
	rd     *Reader
	banner string

	idPrefix string // "cb<8 hex>-": ActionIDs unique to this Conn, so replayed ids never match
	seq      atomic.Uint64

	writeMu sync.Mutex
	tapMu   sync.Mutex

	mu      sync.Mutex
	pending map[string]*pendingAction
	closed  bool
	err     error

	done chan struct{} // closed when the reader goroutine has stopped
}

type pendingAction struct {
	resp     Response
	gotResp  bool
	complete bool // the Complete event came (before the response, which Asterisk never does)
	ch       chan actionResult
}

type actionResult struct {
	resp Response
	err  error
}

// Dial connects to cfg.Addr, reads the banner and logs in with Username, Secret and
// "Events: on". It returns when the switch accepted the login.
//
// Errors: ErrAuthFailed (wrapped) when the switch answers "Authentication failed"; a
// *ResponseError for any other refusal; an error wrapping callbridge's invalid code when
// Username or Secret contain CR, LF or NUL (nothing is sent then); ctx's error or a
// timeout after DialTimeout; or the network error.
func Dial(ctx context.Context, cfg Config) (*Conn, error) {
	cfg = cfg.withDefaults()
	if cfg.Addr == "" {
		return nil, errors.New("ami: dial: no address")
	}
	login := Action{Name: "Login", Fields: []Field{
		{"Username", cfg.Username}, {"Secret", cfg.Secret}, {"Events", "on"},
	}}
	if _, err := login.Encode("x"); err != nil {
		return nil, err
	}
	dctx, cancel := context.WithTimeout(ctx, cfg.DialTimeout)
	defer cancel()

	var d net.Dialer
	nc, err := d.DialContext(dctx, "tcp", cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("ami: dial %s: %w", cfg.Addr, err)
	}
	// Until Dial returns, ending dctx interrupts any blocked read or write.
	stop := context.AfterFunc(dctx, func() { _ = nc.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	c := newConn(nc, cfg)
	banner, err := c.rd.ReadBanner()
	if err != nil {
		nc.Close()
		if dctx.Err() != nil {
			return nil, fmt.Errorf("ami: dial %s: banner: %w", cfg.Addr, context.Cause(dctx))
		}
		return nil, fmt.Errorf("ami: dial %s: banner: %w", cfg.Addr, err)
	}
	c.banner = banner
	c.tap("in", banner)
	go c.readLoop()

	resp, err := c.Action(dctx, login)
	if err == nil && !stop() {
		err = context.Cause(dctx) // dctx ended as the response came: the deadline may be broken
	}
	if err != nil {
		c.fail(err)
		return nil, fmt.Errorf("ami: login to %s: %w", cfg.Addr, err)
	}
	if err := resp.Err(); err != nil {
		c.fail(err)
		if strings.EqualFold(resp.Get("Message"), "Authentication failed") {
			return nil, fmt.Errorf("ami: login to %s as %q: %w", cfg.Addr, cfg.Username, ErrAuthFailed)
		}
		return nil, fmt.Errorf("ami: login to %s: %w", cfg.Addr, err)
	}
	_ = nc.SetDeadline(time.Time{})
	c.log.Debug("ami logged in", "addr", cfg.Addr, "banner", strings.TrimSpace(banner))
	if cfg.KeepAlive > 0 {
		go c.keepAlive(cfg.KeepAlive, cfg.KeepAliveTimeout)
	}
	return c, nil
}

func newConn(nc net.Conn, cfg Config) *Conn {
	var nonce [4]byte
	_, _ = rand.Read(nonce[:])
	return &Conn{
		cfg:      cfg,
		log:      cfg.Logger.With("pbx", cfg.Addr),
		nc:       nc,
		rd:       NewReader(nc),
		idPrefix: "cb" + hex.EncodeToString(nonce[:]) + "-",
		pending:  map[string]*pendingAction{},
		done:     make(chan struct{}),
	}
}

// Banner returns the switch's greeting line, e.g. "Asterisk Call Manager/11.0.0\r\n".
func (c *Conn) Banner() string { return c.banner }

// Action sends a with a new ActionID and waits for its response (and, for an event-list
// action, for every item up to the Complete event).
//
// The error is non-nil only when no response arrived: a refused encoding (nothing written;
// see Action.Encode), ctx's error, or an error wrapping ErrClosed. A response with
// "Response: Error" is returned with a nil error; check Response.Err.
func (c *Conn) Action(ctx context.Context, a Action) (Response, error) {
	id := c.idPrefix + strconv.FormatUint(c.seq.Add(1), 10)
	frame, err := a.Encode(id)
	if err != nil {
		return Response{}, err
	}
	if err := ctx.Err(); err != nil {
		return Response{}, fmt.Errorf("ami: %s: %w", a.Name, err)
	}
	p := &pendingAction{ch: make(chan actionResult, 1)}
	p.resp.action = a.Name
	c.mu.Lock()
	if c.closed {
		err := c.err
		c.mu.Unlock()
		return Response{}, closedError(a.Name, err)
	}
	c.pending[id] = p
	c.mu.Unlock()

	tapFrame := frame
	if strings.EqualFold(a.Name, "Login") {
		tapFrame = redactSecret(a, id)
	}
	if err := c.write(ctx, frame, tapFrame); err != nil {
		c.mu.Lock()
		delete(c.pending, id)
		c.mu.Unlock()
		return Response{}, fmt.Errorf("ami: %s: %w", a.Name, err)
	}
	select {
	case r := <-p.ch:
		return r.resp, r.err
	case <-ctx.Done():
		// The entry stays pending, so the late response and list items are consumed quietly.
		return Response{}, fmt.Errorf("ami: %s: %w", a.Name, ctx.Err())
	case <-c.done:
		select {
		case r := <-p.ch:
			return r.resp, r.err
		default:
			return Response{}, closedError(a.Name, c.Err())
		}
	}
}

func closedError(action string, cause error) error {
	if cause == nil || errors.Is(cause, ErrClosed) {
		return fmt.Errorf("ami: %s: %w", action, ErrClosed)
	}
	return fmt.Errorf("ami: %s: %w: %w", action, ErrClosed, cause)
}

func redactSecret(a Action, id string) []byte {
	r := Action{Name: a.Name, Fields: make([]Field, len(a.Fields))}
	for i, f := range a.Fields {
		if strings.EqualFold(f.Key, "Secret") {
			f.Value = "********"
		}
		r.Fields[i] = f
	}
	b, _ := r.Encode(id)
	return b
}

// write sends one encoded frame. Writes are serialised and have a deadline: the earlier of
// WriteTimeout and ctx's deadline. A failed write closes the connection.
func (c *Conn) write(ctx context.Context, frame, tapFrame []byte) error {
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	c.mu.Lock()
	closed, cause := c.closed, c.err
	c.mu.Unlock()
	if closed {
		return closedError("write", cause)
	}
	dl := time.Now().Add(c.cfg.WriteTimeout)
	if d, ok := ctx.Deadline(); ok && d.Before(dl) {
		dl = d
	}
	_ = c.nc.SetWriteDeadline(dl)
	c.tap("out", string(tapFrame))
	if _, err := c.nc.Write(frame); err != nil {
		err = fmt.Errorf("ami: write: %w", err)
		c.fail(err)
		return err
	}
	return nil
}

func (c *Conn) tap(dir, raw string) {
	if c.cfg.Tap == nil {
		return
	}
	c.tapMu.Lock()
	defer c.tapMu.Unlock()
	c.cfg.Tap(dir, raw)
}

// readLoop is the single reader goroutine. It ends at the first read error (or Close), and
// then closes done.
func (c *Conn) readLoop() {
	defer close(c.done)
	for {
		raw, err := c.rd.ReadFrame()
		if errors.Is(err, ErrFrameTooLarge) {
			c.log.Warn("ami frame dropped", "err", err)
			continue
		}
		if err != nil {
			c.fail(fmt.Errorf("ami: read: %w", err))
			return
		}
		c.tap("in", raw)
		c.dispatch(ParseMessage(raw))
	}
}

// dispatch routes one message (see the Conn doc).
func (c *Conn) dispatch(m Message) {
	id, hasID := m.Lookup("ActionID")
	if m.Event() == "" {
		if m.Response() == "" {
			c.log.Debug("ami frame without Event or Response ignored", "fields", len(m.Fields))
			return
		}
		c.mu.Lock()
		p := c.pending[id]
		if p == nil || !hasID {
			c.mu.Unlock()
			c.log.Debug("ami response for unknown ActionID ignored", "action_id", id)
			return
		}
		p.resp.Message = m
		p.gotResp = true
		if p.resp.IsList() && !p.complete {
			c.mu.Unlock()
			return
		}
		delete(c.pending, id)
		c.mu.Unlock()
		p.ch <- actionResult{resp: p.resp}
		return
	}
	if hasID && id != "" {
		c.mu.Lock()
		if p := c.pending[id]; p != nil {
			if strings.EqualFold(m.Get("EventList"), "Complete") {
				p.resp.Complete = m
				p.complete = true
				if p.gotResp {
					delete(c.pending, id)
					c.mu.Unlock()
					p.ch <- actionResult{resp: p.resp}
					return
				}
			} else {
				p.resp.Items = append(p.resp.Items, m)
			}
			c.mu.Unlock()
			return
		}
		c.mu.Unlock()
		if !strings.HasPrefix(id, c.idPrefix) {
			c.log.Debug("ami list item for unknown ActionID ignored", "event", m.Event(), "action_id", id)
			return
		}
	}
	if c.cfg.OnEvent != nil {
		c.cfg.OnEvent(m)
	}
}

// keepAlive pings every interval and closes the connection when a Ping is not answered
// within timeout. Any answer counts, even an error response.
func (c *Conn) keepAlive(interval, timeout time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-c.done:
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		_, err := c.Action(ctx, Action{Name: "Ping"})
		cancel()
		if err != nil {
			if errors.Is(err, context.DeadlineExceeded) {
				c.log.Warn("ami keep-alive ping not answered; closing", "timeout", timeout)
				c.fail(fmt.Errorf("%w within %s", ErrKeepAliveTimeout, timeout))
			}
			return
		}
	}
}

// fail closes the connection with cause (the first cause wins) and fails every pending action.
func (c *Conn) fail(cause error) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.closed = true
	c.err = cause
	pending := c.pending
	c.pending = map[string]*pendingAction{}
	c.mu.Unlock()
	_ = c.nc.Close()
	for _, p := range pending {
		p.ch <- actionResult{err: closedError(p.resp.action, cause)}
	}
}

// Close closes the connection; pending actions fail with ErrClosed. It does not wait for the
// reader goroutine (it may be called from OnEvent); Done is closed once the reader has
// stopped, after which OnEvent is not called again. Close is idempotent and returns nil.
func (c *Conn) Close() error {
	c.fail(ErrClosed)
	return nil
}

// Done is closed when the connection has ended and its reader goroutine has stopped.
func (c *Conn) Done() <-chan struct{} { return c.done }

// Err returns why the connection ended: ErrClosed after Close, an error wrapping
// ErrKeepAliveTimeout, or the read/write error (io.EOF when the switch closed the
// connection, e.g. after Logoff). It is nil while the connection is open.
func (c *Conn) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}
