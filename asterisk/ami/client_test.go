package ami_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/callbridge/callbridge/asterisk/ami"
	"github.com/callbridge/callbridge/internal/testenv"
)

// runClient runs c in the background; stop cancels it and returns Run's result.
func runClient(t *testing.T, c *ami.Client) (stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
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

// The server drops every connection right after login; the client reconnects with growing,
// jittered waits (at least half the backoff each time) and reports each connection.
func TestClientReconnectsWithBackoff(t *testing.T) {
	srv := startFake(t, func(c *fakeConn) {
		if c.login() {
			c.send(event("FullyBooted"))
		}
		// returning closes the connection
	})
	var connects, disconnects atomic.Int32
	cfg := ami.ClientConfig{
		Config:     testConfig(srv.addr()),
		MinBackoff: 40 * time.Millisecond,
		MaxBackoff: 2 * time.Second,
		OnConnect: func(ctx context.Context, c *ami.Conn) error {
			connects.Add(1)
			return nil
		},
		OnDisconnect: func(err error) {
			if err == nil {
				t.Error("OnDisconnect(nil)")
			}
			disconnects.Add(1)
		},
	}
	stop := runClient(t, ami.NewClient(cfg))
	waitUntil(t, "4 connections", func() bool { return len(srv.acceptTimes()) >= 4 })
	if err := stop(); !errors.Is(err, context.Canceled) {
		t.Fatalf("Run = %v, want context.Canceled", err)
	}
	acc := srv.acceptTimes()
	backoff := 40 * time.Millisecond
	for i := 1; i < 4; i++ {
		if gap := acc[i].Sub(acc[i-1]); gap < backoff/2 {
			t.Errorf("reconnect %d after %v, want at least %v", i, gap, backoff/2)
		}
		backoff *= 2
	}
	if connects.Load() < 3 || disconnects.Load() < 3 {
		t.Errorf("OnConnect %d times, OnDisconnect %d times", connects.Load(), disconnects.Load())
	}
	if connects.Load() != disconnects.Load() {
		t.Errorf("OnConnect %d times but OnDisconnect %d times", connects.Load(), disconnects.Load())
	}
}

func refuseLogin(c *fakeConn) {
	c.send("Asterisk Call Manager/11.0.0\r\n")
	if _, m, ok := c.recv(); ok {
		c.send("Response: Error\r\nActionID: " + m.ActionID() + "\r\nMessage: Authentication failed\r\n\r\n")
	}
}

func TestClientFirstAuthFailureIsFatal(t *testing.T) {
	srv := startFake(t, refuseLogin)
	c := ami.NewClient(ami.ClientConfig{Config: testConfig(srv.addr()), MinBackoff: time.Millisecond})
	err := c.Run(ctxT(t))
	if !errors.Is(err, ami.ErrAuthFailed) {
		t.Fatalf("Run = %v, want ErrAuthFailed", err)
	}
	if n := len(srv.acceptTimes()); n != 1 {
		t.Fatalf("%d connections, want 1", n)
	}
}

// After a first good login, an authentication failure (a switch restarting) is retried.
func TestClientRetriesLaterAuthFailures(t *testing.T) {
	srv := startFake(t, func(c *fakeConn) {
		if c.n == 0 {
			c.login()
			return
		}
		refuseLogin(c)
	})
	c := ami.NewClient(ami.ClientConfig{Config: testConfig(srv.addr()), MinBackoff: 5 * time.Millisecond, MaxBackoff: 10 * time.Millisecond})
	stop := runClient(t, c)
	waitUntil(t, "3 connections", func() bool { return len(srv.acceptTimes()) >= 3 })
	if err := stop(); !errors.Is(err, context.Canceled) {
		t.Fatalf("Run = %v, want context.Canceled", err)
	}
}

// Events that arrive during login and OnConnect are delivered after OnConnect returns, in
// wire order, then live events; OnEvent never runs during OnConnect. E3 and E4 surely arrive
// during OnConnect: they come before CoreShowChannelsComplete on the wire, the one reader
// handles frames in wire order, and the action returns only once Complete has been read. The
// test checks that through the tap, so it cannot pass without exercising the buffering.
func TestClientDeliversEventsAfterOnConnectInOrder(t *testing.T) {
	srv := startFake(t, func(c *fakeConn) {
		c.send("Asterisk Call Manager/11.0.0\r\n")
		_, m, ok := c.recv()
		if !ok {
			return
		}
		c.send(success(m, "Message: Authentication accepted\r\n"), event("E1"), event("E2"))
		c.serveActions(func(m ami.Message) []string {
			id := "ActionID: " + m.ActionID()
			switch m.Get("Action") {
			case "CoreShowChannels":
				return []string{
					event("E3"),
					success(m, "EventList: start\r\nMessage: Channels will follow\r\n"),
					event("CoreShowChannel", "Channel: PJSIP/1001-00000001", id),
					event("E4"),
					event("CoreShowChannelsComplete", id, "EventList: Complete", "ListItems: 1"),
				}
			case "Ping":
				return []string{event("E5"), success(m, "Ping: Pong\r\n")}
			}
			return []string{success(m, "")}
		})
	})
	var inOnConnect atomic.Bool
	events := newEventLog()
	var tapMu sync.Mutex
	var read []string // events read off the wire so far, in order
	cfg := ami.ClientConfig{Config: testConfig(srv.addr())}
	cfg.Tap = func(dir, raw string) {
		if m := ami.ParseMessage(raw); dir == "in" && m.Event() != "" {
			tapMu.Lock()
			read = append(read, m.Event())
			tapMu.Unlock()
		}
	}
	cfg.OnEvent = func(m ami.Message) {
		if inOnConnect.Load() {
			t.Errorf("event %s delivered during OnConnect", m.Event())
		}
		events.add(m)
	}
	cfg.OnConnect = func(ctx context.Context, c *ami.Conn) error {
		inOnConnect.Store(true)
		defer inOnConnect.Store(false)
		resp, err := c.Action(ctx, ami.Action{Name: "CoreShowChannels"})
		if err != nil || len(resp.Items) != 1 {
			t.Errorf("CoreShowChannels: %d items, %v", len(resp.Items), err)
		}
		tapMu.Lock()
		got := strings.Join(read, ",")
		tapMu.Unlock()
		if !strings.HasPrefix(got, "E1,E2,E3,CoreShowChannel,E4,") {
			t.Errorf("read during OnConnect: %s; want E1 to E4 (the events to hold back)", got)
		}
		if n := len(events.names()); n != 0 {
			t.Errorf("%d events delivered before OnConnect returned", n)
		}
		return nil
	}
	cfg.OnDisconnect = func(error) {}
	client := ami.NewClient(cfg)
	stop := runClient(t, client)
	events.waitFor(t, "E4")
	// The held events are delivered just before the connection counts as live, so the first
	// Ping may still find none (and then sends nothing): wait for the one that goes through.
	waitUntil(t, "a live connection", func() bool {
		_, err := client.Action(ctxT(t), ami.Action{Name: "Ping"})
		if err != nil && !errors.Is(err, ami.ErrNotConnected) {
			t.Fatal(err)
		}
		return err == nil
	})
	events.waitFor(t, "E5")
	stop()
	if got := strings.Join(events.names(), ","); got != "E1,E2,E3,E4,E5" {
		t.Fatalf("events = %s", got)
	}
}

func TestClientActionWhenNotConnected(t *testing.T) {
	c := ami.NewClient(ami.ClientConfig{Config: testConfig("127.0.0.1:1")})
	_, err := c.Action(ctxT(t), ami.Action{Name: "Ping"})
	if !errors.Is(err, ami.ErrNotConnected) {
		t.Fatalf("err = %v, want ErrNotConnected", err)
	}
}

// An OnConnect error drops the connection and the client tries again.
func TestClientRetriesWhenOnConnectFails(t *testing.T) {
	srv := startFake(t, func(c *fakeConn) {
		if c.login() {
			c.serveActions(func(m ami.Message) []string { return []string{success(m, "")} })
		}
	})
	var calls atomic.Int32
	connected := make(chan struct{})
	cfg := ami.ClientConfig{Config: testConfig(srv.addr()), MinBackoff: 5 * time.Millisecond}
	cfg.OnConnect = func(ctx context.Context, c *ami.Conn) error {
		if calls.Add(1) < 3 {
			return errors.New("resync failed")
		}
		close(connected)
		return nil
	}
	client := ami.NewClient(cfg)
	runClient(t, client)
	select {
	case <-connected:
	case <-time.After(testenv.Patience):
		t.Fatal("never connected")
	}
	waitUntil(t, "a live connection", func() bool {
		_, err := client.Action(ctxT(t), ami.Action{Name: "Ping"})
		return err == nil
	})
	if n := len(srv.acceptTimes()); n != 3 {
		t.Fatalf("%d connections, want 3", n)
	}
}
