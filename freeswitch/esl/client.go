package esl

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
	// OnConnect is called after each connect (authenticated and subscribed), before events are
	// considered live; the driver resynchronises here (show channels as json, callcenter_config
	// listings) through c. An error drops the connection and the Client retries. Nil means
	// nothing to do.
	OnConnect func(ctx context.Context, c *Conn) error
	// OnDisconnect is called once for each connection whose OnConnect succeeded, when it
	// ends, with the reason (Conn.Err, or ctx's error when Run is ending).
	OnDisconnect func(err error)
}

// Client keeps one event socket connection up: it dials, reconnects with exponential backoff
// and jitter, and calls OnConnect after every connect.
//
// Event order: events that arrive while OnConnect runs (the switch goes on while the driver
// reads its channels) are buffered and delivered to OnEvent only after OnConnect returns nil,
// in wire order, followed by live events. So a driver applies its snapshot first and then
// every change since, and OnEvent is never called concurrently with itself or with OnConnect.
// Events buffered on a connection whose OnConnect fails are dropped with it.
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
// ctx.Err(). ErrAuthFailed or ErrAccessDenied on the very first attempt is returned at once
// (the configuration is wrong); later ones are retried like any other failure, since a
// switch that is restarting may refuse clients for a moment. Run must not be called twice at
// once.
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
		if attempt == 0 && (errors.Is(err, ErrAuthFailed) || errors.Is(err, ErrAccessDenied)) {
			return err
		}
		if !started.IsZero() && time.Since(started) >= c.cfg.MaxBackoff {
			backoff = c.cfg.MinBackoff
		}
		wait := jitter(backoff)
		c.log.Warn("esl connection lost; reconnecting", "err", err, "in", wait)
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
			return time.Time{}, fmt.Errorf("esl: on connect: %w", err)
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
	c.log.Info("esl connected", "addr", c.cfg.Addr)

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

// Conn returns the live connection (nil while connecting or resynchronising).
func (c *Client) Conn() *Conn {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.conn
}

// API runs an api command on the live connection (see Conn.API). Without one, or when it
// ends before the reply, the error wraps ErrNotConnected.
func (c *Client) API(ctx context.Context, cmd string) (Reply, error) {
	conn := c.Conn()
	if conn == nil {
		if err := CheckCommand(cmd); err != nil {
			return Reply{}, err
		}
		return Reply{}, fmt.Errorf("esl: api: %w", ErrNotConnected)
	}
	r, err := conn.API(ctx, cmd)
	if errors.Is(err, ErrClosed) {
		return r, fmt.Errorf("%w: %w", ErrNotConnected, err)
	}
	return r, err
}

// BGAPI runs a bgapi command on the live connection (see Conn.BGAPI and API).
func (c *Client) BGAPI(ctx context.Context, cmd string) (*Job, error) {
	conn := c.Conn()
	if conn == nil {
		if err := CheckCommand(cmd); err != nil {
			return nil, err
		}
		return nil, fmt.Errorf("esl: bgapi: %w", ErrNotConnected)
	}
	j, err := conn.BGAPI(ctx, cmd)
	if errors.Is(err, ErrClosed) {
		return j, fmt.Errorf("%w: %w", ErrNotConnected, err)
	}
	return j, err
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
	deliver func(*Event)

	mu         sync.Mutex
	onOverflow func() // set once the Conn exists; closes it
	live       bool
	buf        []*Event
	overflow   bool
}

// event is the Conn's OnEvent (reader goroutine).
func (g *eventGate) event(e *Event) {
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
		g.buf = append(g.buf, e)
		g.mu.Unlock()
		return
	}
	g.mu.Unlock()
	if g.deliver != nil {
		g.deliver(e)
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
			return fmt.Errorf("esl: more than %d events while connecting", MaxConnectBacklog)
		}
		batch := g.buf
		g.buf = nil
		if len(batch) == 0 {
			g.live = true
			g.mu.Unlock()
			return nil
		}
		g.mu.Unlock()
		for _, e := range batch {
			if g.deliver != nil {
				g.deliver(e)
			}
		}
	}
}
