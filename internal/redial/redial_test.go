package redial_test

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/callbridge/callbridge/internal/redial"
	"github.com/callbridge/callbridge/internal/testenv"
)

var errClosed = errors.New("fake: closed")

// fakeConn is a connection that ends when Close or end is called.
type fakeConn struct {
	n       int
	onEvent func(string)
	once    sync.Once
	done    chan struct{}
	err     error
}

func (c *fakeConn) end(err error) {
	c.once.Do(func() {
		c.err = err
		close(c.done)
	})
}
func (c *fakeConn) Close() error          { c.end(errClosed); return nil }
func (c *fakeConn) Done() <-chan struct{} { return c.done }
func (c *fakeConn) Err() error {
	select {
	case <-c.done:
		return c.err
	default:
		return nil
	}
}

// dialer hands out fakeConns and records when each dial happened. setup, when set, runs in
// Dial (its error fails the dial).
type dialer struct {
	mu    sync.Mutex
	times []time.Time
	conns []*fakeConn
	setup func(c *fakeConn) error
}

func (d *dialer) dial(ctx context.Context, onEvent func(string)) (*fakeConn, error) {
	d.mu.Lock()
	c := &fakeConn{n: len(d.conns), onEvent: onEvent, done: make(chan struct{})}
	d.times = append(d.times, time.Now())
	d.conns = append(d.conns, c)
	setup := d.setup
	d.mu.Unlock()
	if setup != nil {
		if err := setup(c); err != nil {
			return nil, err
		}
	}
	return c, nil
}

func (d *dialer) dials() []time.Time {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.times)
}

func config(d *dialer) redial.Config[*fakeConn, string] {
	return redial.Config[*fakeConn, string]{
		Prefix:     "fake",
		MinBackoff: time.Millisecond,
		MaxBackoff: 10 * time.Millisecond,
		MaxBacklog: 100,
		Dial:       d.dial,
	}
}

// run runs l in the background; stop cancels it and returns Run's result.
func run(t *testing.T, l *redial.Loop[*fakeConn, string]) (stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- l.Run(ctx) }()
	var once sync.Once
	var err error
	stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case err = <-done:
			case <-time.After(testenv.Patience):
				t.Fatal("Run did not return after cancel")
			}
		})
		return err
	}
	t.Cleanup(func() { stop() })
	return stop
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	testenv.Eventually(t, what, cond)
}

// Every connection ends right after OnConnect; the loop reconnects with growing, jittered
// waits (at least half the backoff each time) and reports each connection once.
func TestReconnectsWithBackoff(t *testing.T) {
	d := &dialer{}
	var connects, disconnects atomic.Int32
	cfg := config(d)
	cfg.MinBackoff, cfg.MaxBackoff = 20*time.Millisecond, 2*time.Second
	cfg.OnConnect = func(ctx context.Context, c *fakeConn) error {
		connects.Add(1)
		go c.end(errors.New("dropped"))
		return nil
	}
	cfg.OnDisconnect = func(err error) {
		if err == nil {
			t.Error("OnDisconnect(nil)")
		}
		disconnects.Add(1)
	}
	stop := run(t, redial.New(cfg))
	waitUntil(t, "4 connections", func() bool { return len(d.dials()) >= 4 })
	if err := stop(); !errors.Is(err, context.Canceled) {
		t.Fatalf("Run = %v, want context.Canceled", err)
	}
	acc := d.dials()
	backoff := 20 * time.Millisecond
	for i := 1; i < 4; i++ {
		if gap := acc[i].Sub(acc[i-1]); gap < backoff/2 {
			t.Errorf("reconnect %d after %v, want at least %v", i, gap, backoff/2)
		}
		backoff *= 2
	}
	if connects.Load() != disconnects.Load() {
		t.Errorf("OnConnect %d times but OnDisconnect %d times", connects.Load(), disconnects.Load())
	}
}

var errRefused = errors.New("fake: refused")

func fatal(err error) bool { return errors.Is(err, errRefused) }

func TestFirstFatalErrorEndsRun(t *testing.T) {
	d := &dialer{setup: func(*fakeConn) error { return errRefused }}
	cfg := config(d)
	cfg.Fatal = fatal
	err := redial.New(cfg).Run(context.Background())
	if !errors.Is(err, errRefused) {
		t.Fatalf("Run = %v, want errRefused", err)
	}
	if n := len(d.dials()); n != 1 {
		t.Fatalf("%d dials, want 1", n)
	}
}

// After a first good connection, a fatal-looking error (a switch restarting) is retried.
func TestLaterFatalErrorsAreRetried(t *testing.T) {
	d := &dialer{setup: func(c *fakeConn) error {
		if c.n == 0 {
			go c.end(errors.New("dropped"))
			return nil
		}
		return errRefused
	}}
	cfg := config(d)
	cfg.Fatal = fatal
	stop := run(t, redial.New(cfg))
	waitUntil(t, "3 dials", func() bool { return len(d.dials()) >= 3 })
	if err := stop(); !errors.Is(err, context.Canceled) {
		t.Fatalf("Run = %v, want context.Canceled", err)
	}
}

// eventLog collects delivered events.
type eventLog struct {
	mu  sync.Mutex
	evs []string
}

func (l *eventLog) add(e string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.evs = append(l.evs, e)
}

func (l *eventLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.evs, ",")
}

// Events that arrive during Dial and OnConnect are delivered after OnConnect returns, in
// order, then live events; OnEvent never runs during OnConnect, and Conn is not live before.
func TestDeliversEventsAfterOnConnectInOrder(t *testing.T) {
	d := &dialer{setup: func(c *fakeConn) error {
		c.onEvent("E1")
		c.onEvent("E2")
		return nil
	}}
	var inOnConnect atomic.Bool
	events := &eventLog{}
	cfg := config(d)
	cfg.OnEvent = func(e string) {
		if inOnConnect.Load() {
			t.Errorf("event %s delivered during OnConnect", e)
		}
		events.add(e)
	}
	var l *redial.Loop[*fakeConn, string]
	cfg.OnConnect = func(ctx context.Context, c *fakeConn) error {
		inOnConnect.Store(true)
		defer inOnConnect.Store(false)
		if _, ok := l.Conn(); ok {
			t.Error("Conn is live during OnConnect")
		}
		c.onEvent("E3")
		var wg sync.WaitGroup
		wg.Go(func() { c.onEvent("E4") }) // from another goroutine, as a reader would
		wg.Wait()
		return nil
	}
	l = redial.New(cfg)
	stop := run(t, l)
	var conn *fakeConn
	waitUntil(t, "a live connection", func() bool {
		c, ok := l.Conn()
		conn = c
		return ok
	})
	conn.onEvent("E5")
	if got := events.String(); got != "E1,E2,E3,E4,E5" {
		t.Fatalf("events = %s", got)
	}
	stop()
	if c, ok := l.Conn(); ok || c != nil {
		t.Fatalf("Conn = %v, %v after Run", c, ok)
	}
}

// An OnConnect error drops the connection and its buffered events, is not reported to
// OnDisconnect, and the loop tries again.
func TestRetriesWhenOnConnectFails(t *testing.T) {
	d := &dialer{setup: func(c *fakeConn) error {
		c.onEvent("from " + string(rune('0'+c.n)))
		return nil
	}}
	var calls, disconnects atomic.Int32
	events := &eventLog{}
	cfg := config(d)
	cfg.OnEvent = events.add
	cfg.OnDisconnect = func(error) { disconnects.Add(1) }
	cfg.OnConnect = func(ctx context.Context, c *fakeConn) error {
		if calls.Add(1) < 3 {
			return errors.New("resync failed")
		}
		return nil
	}
	l := redial.New(cfg)
	stop := run(t, l)
	waitUntil(t, "a live connection", func() bool { _, ok := l.Conn(); return ok })
	if n := len(d.dials()); n != 3 {
		t.Fatalf("%d dials, want 3", n)
	}
	if got := events.String(); got != "from 2" {
		t.Fatalf("events = %q, want only the live connection's", got)
	}
	stop()
	if n := disconnects.Load(); n != 1 {
		t.Fatalf("OnDisconnect %d times, want 1", n)
	}
}

// More than MaxBacklog events while connecting closes the connection (at once when it
// happens during OnConnect) and the attempt fails; the loop retries.
func TestBacklogOverflowDropsConnection(t *testing.T) {
	d := &dialer{}
	var connects, disconnects atomic.Int32
	cfg := config(d)
	cfg.MaxBacklog = 3
	cfg.OnDisconnect = func(error) { disconnects.Add(1) }
	cfg.OnConnect = func(ctx context.Context, c *fakeConn) error {
		connects.Add(1)
		if c.n > 0 {
			return nil
		}
		for range 5 {
			c.onEvent("x")
		}
		if !errors.Is(c.Err(), errClosed) {
			t.Errorf("connection 0: Err = %v after the overflow, want errClosed", c.Err())
		}
		return nil
	}
	events := &eventLog{}
	cfg.OnEvent = events.add
	l := redial.New(cfg)
	run(t, l)
	waitUntil(t, "a second connection", func() bool { c, ok := l.Conn(); return ok && c.n == 1 })
	if n := disconnects.Load(); n != 0 {
		t.Errorf("OnDisconnect %d times for a connection that never went live", n)
	}
	if got := events.String(); got != "" {
		t.Fatalf("events = %q, want none from the dropped connection", got)
	}
	if n := connects.Load(); n != 2 {
		t.Fatalf("OnConnect %d times, want 2", n)
	}
}

func TestJitter(t *testing.T) {
	for _, d := range []time.Duration{0, 1, 2, 3, time.Second} {
		for range 100 {
			if j := redial.Jitter(d); j < d/2 || j > d {
				t.Fatalf("Jitter(%v) = %v, want in [%v, %v]", d, j, d/2, d)
			}
		}
	}
}

func TestNotConnected(t *testing.T) {
	errNot := errors.New("not connected")
	if err := redial.NotConnected(nil, errClosed, errNot); err != nil {
		t.Fatalf("nil: %v", err)
	}
	other := errors.New("other")
	if err := redial.NotConnected(other, errClosed, errNot); err != other {
		t.Fatalf("other: %v", err)
	}
	err := redial.NotConnected(errClosed, errClosed, errNot)
	if !errors.Is(err, errNot) || !errors.Is(err, errClosed) || err.Error() != "not connected: fake: closed" {
		t.Fatalf("closed: %v", err)
	}
}

// lineLog is a slog handler that keeps the messages, in order.
type lineLog struct {
	mu    sync.Mutex
	lines []string
}

func (l *lineLog) Enabled(context.Context, slog.Level) bool { return true }
func (l *lineLog) Handle(_ context.Context, r slog.Record) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, r.Message)
	return nil
}
func (l *lineLog) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l *lineLog) WithGroup(string) slog.Handler      { return l }
func (l *lineLog) messages() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.lines)
}

// A switch that has not answered yet is "cannot reach", not "connection lost": attempts that
// never went live say so; only the end of a live connection is a loss. Here two dials fail,
// the third connects and drops, the fourth fails again.
func TestLogsCannotReachUntilConnected(t *testing.T) {
	d := &dialer{setup: func(c *fakeConn) error {
		switch c.n {
		case 2:
			go c.end(errors.New("dropped"))
			return nil
		default:
			return errors.New("connection refused")
		}
	}}
	logs := &lineLog{}
	cfg := config(d)
	cfg.Addr = "pbx.example:5038"
	cfg.Logger = slog.New(logs)
	stop := run(t, redial.New(cfg))
	// The fifth dial comes after the fourth attempt's line was logged.
	waitUntil(t, "5 dials", func() bool { return len(d.dials()) >= 5 })
	stop()
	want := []string{
		"fake cannot reach pbx.example:5038; retrying",
		"fake cannot reach pbx.example:5038; retrying",
		"fake connected",
		"fake connection lost; reconnecting",
		"fake cannot reach pbx.example:5038; retrying",
	}
	if got := logs.messages(); len(got) < len(want) || !slices.Equal(got[:len(want)], want) {
		t.Fatalf("log lines:\n%s\nwant them to start with:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
