package ami

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"
)

// Backoff defaults for ClientConfig fields left zero.
const (
	DefaultMinBackoff = 500 * time.Millisecond
	DefaultMaxBackoff = 30 * time.Second
)

// MaxConnectBacklog is how many events a Client holds while OnConnect runs. A switch that
// sends more than this during one resync drops the connection (and the Client retries)
// rather than growing memory without bound.
const MaxConnectBacklog = 100_000

// ClientConfig configures a Client. Config.OnEvent receives the events of every connection
// (see Client for when).
type ClientConfig struct {
	Config
	// MinBackoff is the first wait before reconnecting (default 500 ms); each failed attempt
	// doubles it up to MaxBackoff (default 30 s). Every wait is jittered: a random duration
	// between half the backoff and the full backoff. The backoff starts again at MinBackoff
	// after a connection that stayed up at least MaxBackoff.
	MinBackoff, MaxBackoff time.Duration
	// OnConnect is called after each login, before events are considered live; the driver
	// resynchronises here (CoreShowChannels, QueueStatus …) through c. An error drops the
	// connection and the Client retries. Nil means nothing to do.
	OnConnect func(ctx context.Context, c *Conn) error
	// OnDisconnect is called once for each connection whose OnConnect succeeded, when it
	// ends, with the reason (Conn.Err, or ctx's error when Run is ending). Not called for
	// failed dials or failed OnConnects, which are only logged.
	OnDisconnect func(err error)
}

// Client keeps one AMI connection up: it dials, reconnects with exponential backoff and
// jitter, and calls OnConnect after every login.
//
// Event order: events that arrive while Dial and OnConnect run (FullyBooted, SuccessfulAuth,
// anything the switch raises during the resync) are buffered and delivered to OnEvent only
// after OnConnect returns nil, in wire order, followed by live events. So a driver applies
// its snapshot first and then every change since, and OnEvent is never called concurrently
// with itself or with OnConnect. Events buffered on a connection whose OnConnect fails are
// dropped with it.
type Client struct {
	cfg ClientConfig
	log *slog.Logger

	mu   sync.Mutex
	conn *Conn
}

// NewClient returns a Client for cfg; call Run to connect.
func NewClient(cfg ClientConfig) *Client {
	cfg.Config = cfg.Config.withDefaults()
	if cfg.MinBackoff <= 0 {
		cfg.MinBackoff = DefaultMinBackoff
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = DefaultMaxBackoff
	}
	if cfg.MaxBackoff < cfg.MinBackoff {
		cfg.MaxBackoff = cfg.MinBackoff
	}
	return &Client{cfg: cfg, log: cfg.Logger.With("pbx", cfg.Addr)}
}

// Run connects and stays connected until ctx ends, then closes the connection and returns
// ctx.Err(). An ErrAuthFailed on the very first attempt is returned at once (the
// configuration is wrong); later ones are retried like any other failure, since a switch
// that is restarting may refuse logins for a moment. Run must not be called twice at once.
func (c *Client) Run(ctx context.Context) error {
	backoff := c.cfg.MinBackoff
	for attempt := 0; ; attempt++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		started, err := c.connectOnce(ctx)
		if err := ctx.Err(); err != nil {
			return err
		}
		if attempt == 0 && errors.Is(err, ErrAuthFailed) {
			return err
		}
		if !started.IsZero() && time.Since(started) >= c.cfg.MaxBackoff {
			backoff = c.cfg.MinBackoff
		}
		wait := jitter(backoff)
		c.log.Warn("ami connection lost; reconnecting", "err", err, "in", wait)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
		backoff = min(backoff*2, c.cfg.MaxBackoff)
	}
}

// connectOnce runs one connection from dial to its end. It returns when the connection went
// live (zero if it never did) and why it ended.
func (c *Client) connectOnce(ctx context.Context) (time.Time, error) {
	g := &eventGate{deliver: c.cfg.OnEvent}
	cfg := c.cfg.Config
	cfg.OnEvent = g.event
	conn, err := Dial(ctx, cfg)
	if err != nil {
		return time.Time{}, err
	}
	g.mu.Lock()
	g.onOverflow = func() { conn.Close() }
	g.mu.Unlock()
	if c.cfg.OnConnect != nil {
		if err := c.cfg.OnConnect(ctx, conn); err != nil {
			conn.Close()
			<-conn.Done()
			return time.Time{}, fmt.Errorf("ami: on connect: %w", err)
		}
	}
	if err := g.open(); err != nil {
		conn.Close()
		<-conn.Done()
		return time.Time{}, err
	}
	started := time.Now()
	c.mu.Lock()
	c.conn = conn
	c.mu.Unlock()
	c.log.Info("ami connected", "addr", c.cfg.Addr)

	select {
	case <-ctx.Done():
		conn.Close()
	case <-conn.Done():
	}
	<-conn.Done()
	c.mu.Lock()
	c.conn = nil
	c.mu.Unlock()
	err = conn.Err()
	if ctx.Err() != nil {
		err = ctx.Err()
	}
	if c.cfg.OnDisconnect != nil {
		c.cfg.OnDisconnect(err)
	}
	return started, err
}

// Action runs a on the current connection (see Conn.Action). When there is none, or it ends
// before the response, the error wraps ErrNotConnected.
func (c *Client) Action(ctx context.Context, a Action) (Response, error) {
	c.mu.Lock()
	conn := c.conn
	c.mu.Unlock()
	if conn == nil {
		if _, err := a.Encode("x"); err != nil {
			return Response{}, err
		}
		return Response{}, fmt.Errorf("ami: %s: %w", a.Name, ErrNotConnected)
	}
	resp, err := conn.Action(ctx, a)
	if errors.Is(err, ErrClosed) {
		return resp, fmt.Errorf("%w: %w", ErrNotConnected, err)
	}
	return resp, err
}

// jitter returns a random duration in [d/2, d].
func jitter(d time.Duration) time.Duration {
	if d <= 1 {
		return d
	}
	return d/2 + rand.N(d/2+1)
}

// eventGate buffers events until open, then passes them straight through.
type eventGate struct {
	deliver func(Message)

	mu         sync.Mutex
	onOverflow func() // set once the Conn exists; closes it
	live       bool
	buf        []Message
	overflow   bool
}

// event is the Conn's OnEvent (reader goroutine).
func (g *eventGate) event(m Message) {
	g.mu.Lock()
	if !g.live {
		if len(g.buf) >= MaxConnectBacklog {
			first, onOverflow := !g.overflow, g.onOverflow
			g.overflow = true
			g.mu.Unlock()
			if first && onOverflow != nil {
				onOverflow()
			}
			return
		}
		g.buf = append(g.buf, m)
		g.mu.Unlock()
		return
	}
	g.mu.Unlock()
	if g.deliver != nil {
		g.deliver(m)
	}
}

// open delivers the buffered events in order on the calling goroutine, then lets later events
// through directly. Events that arrive meanwhile are appended and delivered in the same loop,
// so order holds and deliver is never called concurrently.
func (g *eventGate) open() error {
	for {
		g.mu.Lock()
		if g.overflow {
			g.mu.Unlock()
			return fmt.Errorf("ami: more than %d events while connecting", MaxConnectBacklog)
		}
		batch := g.buf
		g.buf = nil
		if len(batch) == 0 {
			g.live = true
			g.mu.Unlock()
			return nil
		}
		g.mu.Unlock()
		for _, m := range batch {
			if g.deliver != nil {
				g.deliver(m)
			}
		}
	}
}
