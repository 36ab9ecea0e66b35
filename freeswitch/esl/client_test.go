package esl_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/callbridge/callbridge/capture"
	"github.com/callbridge/callbridge/freeswitch/esl"
	"github.com/callbridge/callbridge/internal/testenv"
)

// TestClientReconnectsAndResyncs: the first connection drops after 20 frames; the client
// reconnects after a backoff, calls OnConnect again (its resync), and events keep coming.
// Events that arrive during OnConnect are delivered after it returns, in order. The second
// OnConnect returns only once the whole recording has been read off the wire (the reply to a
// command sent after the server played its last event comes after that event), so every one
// of its 113 events surely arrives while OnConnect runs and must be held back until it ends.
func TestClientReconnectsAndResyncs(t *testing.T) {
	recs := recording(t, "fs-inbound-answered")
	srv := replayScripts(t, capture.Script{Records: recs, DropAfter: 20}, capture.Script{Records: recs})
	var (
		connects, disconnects atomic.Int32
		mu                    sync.Mutex
		order                 []string
	)
	c := esl.NewClient(esl.ClientConfig{
		Config: esl.Config{
			Addr: srv.Addr(), Password: "ClueCon", KeepAlive: -1,
			OnEvent: func(e *esl.Event) {
				mu.Lock()
				order = append(order, "event")
				mu.Unlock()
			},
		},
		MinBackoff: 10 * time.Millisecond, MaxBackoff: 50 * time.Millisecond,
		OnConnect: func(ctx context.Context, conn *esl.Conn) error {
			if connects.Add(1) == 2 {
				mu.Lock()
				before := len(order)
				mu.Unlock()
				if _, err := conn.API(ctx, "show channels as json"); err != nil {
					return err
				}
				select {
				case <-srv.Played(1):
				case <-ctx.Done():
					return ctx.Err()
				}
				if _, err := conn.API(ctx, "version"); err != nil { // after every event
					return err
				}
				mu.Lock()
				n := len(order) - before
				mu.Unlock()
				if n != 0 {
					t.Errorf("%d events delivered while the second resync ran", n)
				}
			}
			mu.Lock()
			order = append(order, "resync")
			mu.Unlock()
			return nil
		},
		OnDisconnect: func(error) { disconnects.Add(1) },
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	// Sync on the live connection: every event before the reply has been delivered.
	testenv.Eventually(t, "a live second connection", func() bool {
		if connects.Load() < 2 {
			return false
		}
		_, err := c.API(context.Background(), "version")
		if err != nil && !errors.Is(err, esl.ErrNotConnected) {
			t.Fatal(err)
		}
		return err == nil
	})
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Run = %v", err)
	}
	// The first connection went live (its OnConnect asks nothing) and dropped; the second
	// stays up until Run ends.
	if connects.Load() != 2 || disconnects.Load() != 2 {
		t.Fatalf("connects %d disconnects %d, want 2 and 2", connects.Load(), disconnects.Load())
	}
	mu.Lock()
	defer mu.Unlock()
	first := slices.Index(order[1:], "resync") + 1
	if order[0] != "resync" || first == 0 {
		t.Fatalf("deliveries %v: want a resync first and one per connection", order)
	}
	if n := len(order) - first - 1; n != 113 {
		t.Fatalf("%d events after the second resync, want the 113 of the recording", n)
	}
}

// TestClientAuthFailureIsFatalFirst: a refused password on the first connect ends Run.
func TestClientAuthFailureIsFatalFirst(t *testing.T) {
	srv := replay(t, "fs-bad-auth")
	c := esl.NewClient(esl.ClientConfig{Config: esl.Config{Addr: srv.Addr(), Password: "WrongPassword"}})
	err := c.Run(ctxT(t))
	if !errors.Is(err, esl.ErrAuthFailed) {
		t.Fatalf("Run = %v, want ErrAuthFailed", err)
	}
}

// TestClientNotConnected: commands without a live connection fail with ErrNotConnected.
func TestClientNotConnected(t *testing.T) {
	c := esl.NewClient(esl.ClientConfig{Config: esl.Config{Addr: "127.0.0.1:1"}})
	if _, err := c.API(context.Background(), "status"); !errors.Is(err, esl.ErrNotConnected) {
		t.Fatalf("API = %v", err)
	}
	if _, err := c.BGAPI(context.Background(), "status"); !errors.Is(err, esl.ErrNotConnected) {
		t.Fatalf("BGAPI = %v", err)
	}
}
