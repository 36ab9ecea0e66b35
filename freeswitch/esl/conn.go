package esl

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Errors. Test them with errors.Is.
var (
	// ErrAuthFailed: the switch refused the password. FreeSWITCH 1.10 answers "auth" with
	// "Reply-Text: -ERR invalid", then a text/disconnect-notice and the close, all at once
	// (fs-bad-auth).
	ErrAuthFailed = errors.New("esl: authentication failed")
	// ErrAccessDenied: the switch's ACL (event_socket.conf.xml apply-inbound-acl) refused the
	// client: it sends text/rude-rejection instead of auth/request and closes.
	ErrAccessDenied = errors.New("esl: access denied by the event socket ACL")
	// ErrClosed: the connection is closed (by Close, by the switch, or after an error; Conn.Err
	// says which).
	ErrClosed = errors.New("esl: connection closed")
	// ErrDisconnected: the switch said goodbye with a text/disconnect-notice (after "exit", a
	// failed auth, or a shutdown).
	ErrDisconnected = errors.New("esl: disconnected by the switch")
	// ErrKeepAliveTimeout: the connection was silent for Config.KeepAlive and a probe command
	// got no answer within Config.KeepAliveTimeout.
	ErrKeepAliveTimeout = errors.New("esl: keep-alive probe not answered")
	// ErrNotConnected: Client.API or Client.BGAPI was called while the client has no live
	// connection.
	ErrNotConnected = errors.New("esl: not connected")
)

// Defaults for Config fields left zero.
const (
	// DefaultKeepAlive: FreeSWITCH sends HEARTBEAT every 20 s to clients subscribed to it
	// (README "Noise you must tolerate"), so 30 s of silence is unusual; only then is a probe
	// sent.
	DefaultKeepAlive        = 30 * time.Second
	DefaultKeepAliveTimeout = 5 * time.Second
	DefaultDialTimeout      = 10 * time.Second
	DefaultWriteTimeout     = 10 * time.Second
	// KeepAliveCommand is the probe: "version" is answered by every FreeSWITCH (mod_commands)
	// without touching a channel (fs-agent-state).
	KeepAliveCommand = "version"
)

// Event formats for Config.Format.
const (
	FormatPlain = "plain"
	FormatJSON  = "json"
)

// Config configures one connection.
type Config struct {
	// Addr is host:port of the event socket, e.g. "127.0.0.1:8021".
	Addr string
	// Password is event_socket.conf.xml's password (sent in clear: keep the socket on a
	// trusted network, see docs/freeswitch.md).
	Password string
	// Format is the event format to subscribe with: FormatPlain (default) or FormatJSON.
	Format string
	// Events are the event names subscribed to after auth ("event plain ALL" when empty, as in
	// the recordings; ALL includes every CUSTOM subclass). An empty slice with NoEvents set
	// subscribes to nothing.
	Events   []string
	NoEvents bool
	// Logger receives connection-level logs; nil discards them.
	Logger *slog.Logger
	// OnEvent receives every event, in wire order, from the connection's single reader
	// goroutine. It must not block for long and must not wait for a command of the same
	// connection (the reader would be waiting on it). Nil discards events.
	OnEvent func(*Event)
	// Tap, when set, sees every raw frame: dir "in" for frames read (auth/request first) and
	// "out" for commands written (just before the write), in order and never concurrently:
	// the capture format of shared/fixtures/freeswitch-1.10/README.md. The password of the auth
	// command is replaced by "********" in what Tap sees.
	Tap func(dir, raw string)
	// KeepAlive: when nothing has been read for this long a probe command is sent. 0 means
	// DefaultKeepAlive; negative disables probes.
	KeepAlive time.Duration
	// KeepAliveTimeout bounds the probe's answer (default 5 s).
	KeepAliveTimeout time.Duration
	// DialTimeout bounds Dial as a whole: connect, auth/request, auth and event subscription
	// (default 10 s).
	DialTimeout time.Duration
	// WriteTimeout is the deadline of each write (default 10 s). A write that misses it closes
	// the connection.
	WriteTimeout time.Duration
}

func (cfg Config) withDefaults() Config {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Format == "" {
		cfg.Format = FormatPlain
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

// subscription returns the event command of cfg ("event plain ALL"), or "" for none.
func (cfg Config) subscription() (string, error) {
	if cfg.NoEvents {
		return "", nil
	}
	if cfg.Format != FormatPlain && cfg.Format != FormatJSON {
		return "", fmt.Errorf("esl: event format %q: want plain or json", cfg.Format)
	}
	evs := cfg.Events
	if len(evs) == 0 {
		evs = []string{"ALL"}
	}
	for _, e := range evs {
		if e == "" || strings.ContainsAny(e, " \t") {
			return "", fmt.Errorf("esl: event name %q is empty or contains a space", e)
		}
	}
	line := "event " + cfg.Format + " " + strings.Join(evs, " ")
	if err := CheckCommand(line); err != nil {
		return "", err
	}
	return line, nil
}

// Conn is one authenticated event socket connection in inbound mode. Commands may be sent
// from any goroutine; each is written with its place in the reply queue reserved first, so
// replies (which FreeSWITCH sends strictly in command order) are matched by position. One
// reader goroutine reads every frame and hands replies to their commands, completes bgapi
// jobs from BACKGROUND_JOB events, and delivers every event to Config.OnEvent in wire order.
type Conn struct {
	cfg Config
	log *slog.Logger
	nc  net.Conn
	rd  *Reader

	writeMu sync.Mutex // serialises writes and the reply queue order
	tapMu   sync.Mutex

	mu       sync.Mutex
	pending  []*pendingCmd
	jobs     map[string]*Job
	jobOrder []string
	closed   bool
	err      error
	noticed  bool // a text/disconnect-notice arrived

	lastRead atomic.Int64 // unix nanoseconds of the last frame read
	done     chan struct{}
}

type pendingCmd struct {
	line string
	ch   chan cmdResult // buffered 1
}

type cmdResult struct {
	reply Reply
	job   *Job // the job a bgapi reply started, registered by the reader
	err   error
}

// maxJobs bounds the bgapi jobs a Conn remembers; the oldest is forgotten first.
const maxJobs = 1024

// Dial connects to cfg.Addr, reads auth/request, authenticates with cfg.Password and
// subscribes to events (unless cfg.NoEvents). It returns once the subscription is accepted.
//
// Errors: ErrAuthFailed (wrapped) for a refused password; ErrAccessDenied for an ACL refusal;
// an error wrapping callbridge's invalid code when the password contains CR, LF or NUL or a
// space (nothing is sent then); ctx's error or a timeout after DialTimeout; or the network
// error.
func Dial(ctx context.Context, cfg Config) (*Conn, error) {
	cfg = cfg.withDefaults()
	if cfg.Addr == "" {
		return nil, errors.New("esl: dial: no address")
	}
	if err := CheckCommand("auth " + cfg.Password); err != nil {
		return nil, err
	}
	if strings.ContainsAny(cfg.Password, " \t") {
		return nil, errors.New("esl: the password must not contain spaces (mod_event_socket reads one word)")
	}
	sub, err := cfg.subscription()
	if err != nil {
		return nil, err
	}
	dctx, cancel := context.WithTimeout(ctx, cfg.DialTimeout)
	defer cancel()
	var d net.Dialer
	nc, err := d.DialContext(dctx, "tcp", cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("esl: dial %s: %w", cfg.Addr, err)
	}
	// Until Dial returns, ending dctx interrupts any blocked read or write.
	stop := context.AfterFunc(dctx, func() { _ = nc.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	c := &Conn{
		cfg:  cfg,
		log:  cfg.Logger.With("pbx", cfg.Addr),
		nc:   nc,
		rd:   NewReader(nc),
		jobs: map[string]*Job{},
		done: make(chan struct{}),
	}
	wrap := func(step string, err error) error {
		nc.Close()
		if dctx.Err() != nil {
			return fmt.Errorf("esl: dial %s: %s: %w", cfg.Addr, step, context.Cause(dctx))
		}
		return fmt.Errorf("esl: dial %s: %s: %w", cfg.Addr, step, err)
	}
	// auth/request is the first frame of every connection (every recording).
	first, err := c.rd.ReadFrame()
	if err != nil {
		return nil, wrap("auth/request", err)
	}
	c.tap("in", first.Raw)
	switch first.ContentType() {
	case TypeAuthRequest:
	case TypeRudeRejection:
		return nil, wrap("greeting", fmt.Errorf("%w: %s", ErrAccessDenied, strings.TrimSpace(first.Body)))
	default:
		return nil, wrap("greeting", fmt.Errorf("unexpected %q frame instead of auth/request", first.ContentType()))
	}
	// The auth exchange runs before the reader goroutine: no event can arrive before it.
	_ = nc.SetWriteDeadline(time.Now().Add(cfg.WriteTimeout))
	c.tap("out", "auth ********\n\n")
	if _, err := nc.Write([]byte("auth " + cfg.Password + "\n\n")); err != nil {
		return nil, wrap("auth", err)
	}
	for {
		f, err := c.rd.ReadFrame()
		if err != nil {
			return nil, wrap("auth", err)
		}
		c.tap("in", f.Raw)
		if f.ContentType() != TypeCommandReply {
			continue // nothing else is expected here; tolerate it
		}
		r := Reply{Frame: f, Command: "auth"}
		if r.Err() != nil {
			// fs-bad-auth: "-ERR invalid", then text/disconnect-notice and the close.
			nc.Close()
			return nil, fmt.Errorf("esl: auth to %s: %w (%s)", cfg.Addr, ErrAuthFailed, r.Text())
		}
		break
	}
	c.lastRead.Store(time.Now().UnixNano())
	go c.readLoop()
	if sub != "" {
		r, err := c.Command(dctx, sub)
		if err == nil && !stop() {
			err = context.Cause(dctx)
		}
		if err == nil {
			err = r.Err()
		}
		if err != nil {
			c.fail(err)
			<-c.done
			return nil, fmt.Errorf("esl: subscribe on %s: %w", cfg.Addr, err)
		}
	}
	stop()
	_ = nc.SetDeadline(time.Time{})
	c.log.Debug("esl connected", "addr", cfg.Addr, "events", sub)
	if cfg.KeepAlive > 0 {
		go c.keepAlive(cfg.KeepAlive, cfg.KeepAliveTimeout)
	}
	return c, nil
}

// API runs "api <cmd>" and returns the api/response. The error is non-nil only when no
// response arrived (a refused command line, ctx's error, or an error wrapping ErrClosed); a
// "-ERR …" answer is returned with a nil error: check Reply.Err.
func (c *Conn) API(ctx context.Context, cmd string) (Reply, error) {
	if err := CheckCommand(cmd); err != nil {
		return Reply{}, err
	}
	return c.Command(ctx, "api "+cmd)
}

// Command writes one raw command line ("event plain ALL", "filter …", "exit") and waits for
// its reply (see API for the errors).
func (c *Conn) Command(ctx context.Context, line string) (Reply, error) {
	r, err := c.command(ctx, line)
	return r.reply, err
}

func (c *Conn) command(ctx context.Context, line string) (cmdResult, error) {
	if err := CheckCommand(line); err != nil {
		return cmdResult{}, err
	}
	if err := ctx.Err(); err != nil {
		return cmdResult{}, fmt.Errorf("esl: %s: %w", commandName(line), err)
	}
	p := &pendingCmd{line: line, ch: make(chan cmdResult, 1)}
	if err := c.write(ctx, p); err != nil {
		return cmdResult{}, err
	}
	select {
	case r := <-p.ch:
		return r, r.err
	case <-ctx.Done():
		// The entry stays queued, so the late reply is consumed in its place.
		return cmdResult{}, fmt.Errorf("esl: %s: %w", commandName(line), ctx.Err())
	case <-c.done:
		select {
		case r := <-p.ch:
			return r, r.err
		default:
			return cmdResult{}, closedError(commandName(line), c.Err())
		}
	}
}

// Job is a bgapi command running in the switch. Its result is the body of the
// BACKGROUND_JOB event carrying its UUID ("+OK <uuid>\n" for a successful originate,
// fs-click-to-call, which FreeSWITCH sends only once the originate finished: when the agent
// answered, not when the customer did).
type Job struct {
	UUID    string
	Command string

	done   chan struct{}
	result string
	err    error
}

// Done is closed when the job's result arrived or the connection ended.
func (j *Job) Done() <-chan struct{} { return j.done }

// Wait waits for the job's result. The error is ctx's, an error wrapping ErrClosed when the
// connection ended first, or a *ReplyError when the result starts with "-ERR" (the body is
// returned too).
func (j *Job) Wait(ctx context.Context) (string, error) {
	select {
	case <-j.done:
		return j.result, j.err
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

// BGAPI runs "bgapi <cmd>": it returns once the switch accepted the job (command/reply
// "+OK Job-UUID: …" with a Job-UUID header, fs-click-to-call). Errors as for API, plus a
// *ReplyError when the switch refused the job outright.
func (c *Conn) BGAPI(ctx context.Context, cmd string) (*Job, error) {
	if err := CheckCommand(cmd); err != nil {
		return nil, err
	}
	res, err := c.command(ctx, "bgapi "+cmd)
	if err != nil {
		return nil, err
	}
	if err := res.reply.Err(); err != nil {
		return nil, err
	}
	if res.job == nil {
		return nil, &ReplyError{Command: "bgapi " + cmd, Text: "no Job-UUID in " + res.reply.Text()}
	}
	return res.job, nil
}

func (c *Conn) addJobLocked(j *Job) {
	if len(c.jobOrder) >= maxJobs {
		old := c.jobOrder[0]
		c.jobOrder = c.jobOrder[1:]
		if oj := c.jobs[old]; oj != nil {
			delete(c.jobs, old)
			oj.err = errors.New("esl: job forgotten (too many jobs in flight)")
			close(oj.done)
		}
	}
	c.jobs[j.UUID] = j
	c.jobOrder = append(c.jobOrder, j.UUID)
}

func closedError(what string, cause error) error {
	if cause == nil || errors.Is(cause, ErrClosed) {
		return fmt.Errorf("esl: %s: %w", what, ErrClosed)
	}
	return fmt.Errorf("esl: %s: %w: %w", what, ErrClosed, cause)
}

// write queues p for its reply and writes its line, under one lock so that queue order is
// wire order. A failed write closes the connection.
func (c *Conn) write(ctx context.Context, p *pendingCmd) error {
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	c.mu.Lock()
	if c.closed {
		err := c.err
		c.mu.Unlock()
		return closedError(commandName(p.line), err)
	}
	c.pending = append(c.pending, p)
	c.mu.Unlock()
	dl := time.Now().Add(c.cfg.WriteTimeout)
	if d, ok := ctx.Deadline(); ok && d.Before(dl) {
		dl = d
	}
	_ = c.nc.SetWriteDeadline(dl)
	raw := p.line + "\n\n"
	tapRaw := raw
	if strings.HasPrefix(p.line, "auth ") {
		tapRaw = "auth ********\n\n"
	}
	c.tap("out", tapRaw)
	if _, err := c.nc.Write([]byte(raw)); err != nil {
		err = fmt.Errorf("esl: write: %w", err)
		c.fail(err)
		return closedError(commandName(p.line), err)
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

// readLoop is the single reader goroutine; it ends at the first read error (or Close) and
// then closes done.
func (c *Conn) readLoop() {
	defer close(c.done)
	for {
		f, err := c.rd.ReadFrame()
		if errors.Is(err, ErrFrameTooLarge) {
			c.log.Warn("esl frame dropped", "type", f.ContentType(), "err", err)
			if f.IsReply() {
				c.popReply(Reply{Frame: f}, err)
			}
			continue
		}
		if err != nil {
			c.mu.Lock()
			bye := c.err == nil && c.noticed
			c.mu.Unlock()
			if bye {
				err = ErrDisconnected
			}
			c.fail(fmt.Errorf("esl: read: %w", err))
			return
		}
		c.lastRead.Store(time.Now().UnixNano())
		c.tap("in", f.Raw)
		c.dispatch(f)
	}
}

func (c *Conn) dispatch(f Frame) {
	switch ct := f.ContentType(); ct {
	case TypeCommandReply, TypeAPIResponse:
		c.popReply(Reply{Frame: f}, nil)
	case TypeEventPlain, TypeEventJSON:
		ev, err := f.Event()
		if err != nil {
			c.log.Warn("esl event dropped", "err", err)
			return
		}
		if ev.Name() == "BACKGROUND_JOB" {
			c.finishJob(ev)
		}
		if c.cfg.OnEvent != nil {
			c.cfg.OnEvent(ev)
		}
	case TypeDisconnectNotice:
		c.mu.Lock()
		c.noticed = true
		c.mu.Unlock()
		c.log.Debug("esl disconnect notice", "text", strings.TrimSpace(f.Body))
	case TypeRudeRejection:
		c.fail(fmt.Errorf("%w: %s", ErrAccessDenied, strings.TrimSpace(f.Body)))
	default:
		// log/data (only after a "log" command), text/event-xml, a second auth/request.
		c.log.Debug("esl frame ignored", "type", ct)
	}
}

// popReply hands r to the oldest command waiting for a reply.
func (c *Conn) popReply(r Reply, err error) {
	c.mu.Lock()
	if len(c.pending) == 0 {
		c.mu.Unlock()
		c.log.Debug("esl reply without a command ignored", "type", r.ContentType())
		return
	}
	p := c.pending[0]
	c.pending[0] = nil
	c.pending = c.pending[1:]
	r.Command = p.line
	if strings.HasPrefix(p.line, "auth ") {
		r.Command = "auth"
	}
	var job *Job
	if err == nil && strings.HasPrefix(p.line, "bgapi ") && r.Err() == nil {
		if id := r.JobUUID(); id != "" {
			// Registered before the reader reads on, so the job's BACKGROUND_JOB (which
			// FreeSWITCH sends after the reply) always finds it.
			job = &Job{UUID: id, Command: commandName(p.line), done: make(chan struct{})}
			c.addJobLocked(job)
		}
	}
	c.mu.Unlock()
	p.ch <- cmdResult{reply: r, job: job, err: err}
}

// finishJob completes the job of a BACKGROUND_JOB event (Job-UUID header; body = result).
func (c *Conn) finishJob(ev *Event) {
	id := ev.Get("Job-UUID")
	c.mu.Lock()
	j := c.jobs[id]
	if j != nil {
		delete(c.jobs, id)
		for i, k := range c.jobOrder {
			if k == id {
				c.jobOrder = append(c.jobOrder[:i], c.jobOrder[i+1:]...)
				break
			}
		}
	}
	c.mu.Unlock()
	if j == nil {
		return
	}
	j.result = ev.Body
	if t := strings.TrimSpace(ev.Body); strings.HasPrefix(t, "-ERR") || strings.HasPrefix(t, "-USAGE") {
		j.err = &ReplyError{Command: j.Command, Text: t}
	}
	close(j.done)
}

// keepAlive probes a silent connection (see Config.KeepAlive).
func (c *Conn) keepAlive(interval, timeout time.Duration) {
	t := time.NewTicker(interval / 2)
	defer t.Stop()
	for {
		select {
		case <-c.done:
			return
		case <-t.C:
		}
		if time.Since(time.Unix(0, c.lastRead.Load())) < interval {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		_, err := c.API(ctx, KeepAliveCommand)
		cancel()
		if err != nil {
			if errors.Is(err, context.DeadlineExceeded) {
				c.log.Warn("esl keep-alive probe not answered; closing", "timeout", timeout)
				c.fail(fmt.Errorf("%w within %s", ErrKeepAliveTimeout, timeout))
			}
			return
		}
	}
}

// fail closes the connection with cause (the first cause wins) and fails every waiting
// command and job.
func (c *Conn) fail(cause error) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.closed = true
	c.err = cause
	pending := c.pending
	c.pending = nil
	jobs := c.jobs
	c.jobs = map[string]*Job{}
	c.jobOrder = nil
	c.mu.Unlock()
	_ = c.nc.Close()
	for _, p := range pending {
		p.ch <- cmdResult{err: closedError(commandName(p.line), cause)}
	}
	for _, j := range jobs {
		j.err = closedError("bgapi", cause)
		close(j.done)
	}
}

// Exit sends "exit" and waits for the switch's "+OK bye" (then it closes the socket), as the
// recording client ends every session; then it closes the connection.
func (c *Conn) Exit(ctx context.Context) error {
	_, err := c.Command(ctx, "exit")
	c.Close()
	return err
}

// Close closes the connection; waiting commands fail with ErrClosed. It does not wait for
// the reader goroutine (it may be called from OnEvent); Done is closed once the reader has
// stopped, after which OnEvent is not called again. Close is idempotent and returns nil.
func (c *Conn) Close() error {
	c.fail(ErrClosed)
	return nil
}

// Done is closed when the connection has ended and its reader goroutine has stopped.
func (c *Conn) Done() <-chan struct{} { return c.done }

// Err returns why the connection ended: ErrClosed after Close, an error wrapping
// ErrDisconnected after a disconnect notice, ErrKeepAliveTimeout, or the read/write error. It
// is nil while the connection is open.
func (c *Conn) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}
