// Package redial keeps one connection to a switch up: it dials, reconnects with exponential
// backoff and jitter, runs a resync hook after every connect, and holds the connection's
// events back until that hook has returned. It is the protocol-neutral core of ami.Client
// and esl.Client; the protocol packages wrap it and keep their own API and error values.
package redial

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"
)

// Conn is what a Loop needs of a connection.
type Conn interface {
	// Close closes the connection without waiting; Done is closed once it has ended.
	Close() error
	// Done is closed when the connection has ended and delivers no more events.
	Done() <-chan struct{}
	// Err says why the connection ended.
	Err() error
}

// Config configures a Loop. C is the connection type, E the event type.
type Config[C Conn, E any] struct {
	// Prefix starts error messages ("ami" gives "ami: on connect: …") and log lines ("ami
	// connected").
	Prefix string
	// Addr is the switch's address, named in the log lines.
	Addr string
	// Logger receives the connection's log lines; nil discards them. An attempt that never
	// went live logs "<Prefix> cannot reach <Addr>; retrying" (so a switch that never
	// answered is never said to be "lost"), a live connection "<Prefix> connected", and its
	// end "<Prefix> connection lost; reconnecting"; each with err and the wait (in).
	Logger *slog.Logger
	// MinBackoff is the first wait before reconnecting; each failed attempt doubles it up to
	// MaxBackoff. Every wait is jittered: a random duration between half the backoff and the
	// full backoff. The backoff starts again at MinBackoff after a connection that stayed up
	// at least MaxBackoff. The caller sets both (MaxBackoff ≥ MinBackoff > 0).
	MinBackoff, MaxBackoff time.Duration
	// MaxBacklog is how many events are held while Dial and OnConnect run; one more closes
	// the connection and the attempt fails.
	MaxBacklog int
	// Dial opens one connection whose events go to onEvent, from one goroutine at a time.
	Dial func(ctx context.Context, onEvent func(E)) (C, error)
	// Fatal reports whether an error of the very first attempt ends Run at once (a refused
	// login: the configuration is wrong). Nil means none is.
	Fatal func(error) bool
	// OnEvent, OnConnect and OnDisconnect: see ami.ClientConfig. Each may be nil.
	OnEvent      func(E)
	OnConnect    func(ctx context.Context, c C) error
	OnDisconnect func(err error)
}

// Loop keeps one connection up (see Run).
type Loop[C Conn, E any] struct {
	cfg Config[C, E]
	log *slog.Logger

	mu   sync.Mutex
	conn C
	live bool
}

// New returns a Loop for cfg; call Run to connect.
func New[C Conn, E any](cfg Config[C, E]) *Loop[C, E] {
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Loop[C, E]{cfg: cfg, log: log}
}

// Conn returns the live connection: ok is false while connecting or resynchronising.
func (l *Loop[C, E]) Conn() (c C, ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.conn, l.live
}

// Run connects and stays connected until ctx ends, then closes the connection and returns
// ctx.Err(). An error of the very first attempt for which Fatal is true is returned at once.
// Run must not be called twice at once.
func (l *Loop[C, E]) Run(ctx context.Context) error {
	backoff := l.cfg.MinBackoff
	for attempt := 0; ; attempt++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		started, err := l.connectOnce(ctx)
		if err := ctx.Err(); err != nil {
			return err
		}
		if attempt == 0 && l.cfg.Fatal != nil && l.cfg.Fatal(err) {
			return err
		}
		if !started.IsZero() && time.Since(started) >= l.cfg.MaxBackoff {
			backoff = l.cfg.MinBackoff
		}
		wait := Jitter(backoff)
		if started.IsZero() {
			l.log.Warn(l.cfg.Prefix+" cannot reach "+l.cfg.Addr+"; retrying", "err", err, "in", wait)
		} else {
			l.log.Warn(l.cfg.Prefix+" connection lost; reconnecting", "addr", l.cfg.Addr, "err", err, "in", wait)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
		backoff = min(backoff*2, l.cfg.MaxBackoff)
	}
}

// connectOnce runs one connection from dial to its end. It returns when the connection went
// live (zero if it never did) and why it ended.
func (l *Loop[C, E]) connectOnce(ctx context.Context) (time.Time, error) {
	g := &gate[E]{deliver: l.cfg.OnEvent, max: l.cfg.MaxBacklog, prefix: l.cfg.Prefix}
	conn, err := l.cfg.Dial(ctx, g.event)
	if err != nil {
		return time.Time{}, err
	}
	g.mu.Lock()
	g.onOverflow = func() { conn.Close() }
	g.mu.Unlock()
	if l.cfg.OnConnect != nil {
		if err := l.cfg.OnConnect(ctx, conn); err != nil {
			conn.Close()
			<-conn.Done()
			return time.Time{}, fmt.Errorf("%s: on connect: %w", l.cfg.Prefix, err)
		}
	}
	if err := g.open(); err != nil {
		conn.Close()
		<-conn.Done()
		return time.Time{}, err
	}
	started := time.Now()
	l.mu.Lock()
	l.conn, l.live = conn, true
	l.mu.Unlock()
	l.log.Info(l.cfg.Prefix+" connected", "addr", l.cfg.Addr)

	select {
	case <-ctx.Done():
		conn.Close()
	case <-conn.Done():
	}
	<-conn.Done()
	var zero C
	l.mu.Lock()
	l.conn, l.live = zero, false
	l.mu.Unlock()
	err = conn.Err()
	if ctx.Err() != nil {
		err = ctx.Err()
	}
	if l.cfg.OnDisconnect != nil {
		l.cfg.OnDisconnect(err)
	}
	return started, err
}

// NotConnected wraps ErrClosed-like errors of a command that went to a connection which
// ended before the reply: when errors.Is(err, closed), the result wraps notConnected and err.
func NotConnected(err, closed, notConnected error) error {
	if errors.Is(err, closed) {
		return fmt.Errorf("%w: %w", notConnected, err)
	}
	return err
}

// Jitter returns a random duration in [d/2, d].
func Jitter(d time.Duration) time.Duration {
	if d <= 1 {
		return d
	}
	return d/2 + rand.N(d/2+1)
}

// gate buffers events until open, then passes them straight through.
type gate[E any] struct {
	deliver func(E)
	max     int
	prefix  string

	mu         sync.Mutex
	onOverflow func() // set once the connection exists; closes it
	live       bool
	buf        []E
	overflow   bool
}

// event is the connection's OnEvent (its reader goroutine).
func (g *gate[E]) event(e E) {
	g.mu.Lock()
	if !g.live {
		if len(g.buf) >= g.max {
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
func (g *gate[E]) open() error {
	for {
		g.mu.Lock()
		if g.overflow {
			g.mu.Unlock()
			return fmt.Errorf("%s: more than %d events while connecting", g.prefix, g.max)
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
