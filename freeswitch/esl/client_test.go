package esl_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/callbridge/callbridge/capture"
	"github.com/callbridge/callbridge/freeswitch/esl"
)

// TestClientReconnectsAndResyncs: the first connection drops after 20 frames; the client
// reconnects after a backoff, calls OnConnect again (its resync), and events keep coming.
// Events that arrive during OnConnect are delivered after it returns, in order.
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
			connects.Add(1)
			if _, err := conn.API(ctx, "show channels as json"); err != nil {
				return err
			}
			time.Sleep(20 * time.Millisecond) // events pile up meanwhile
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
	select {
	case <-srv.Played(1):
	case <-time.After(20 * time.Second):
		t.Fatal("second connection did not play")
	}
	// Sync on the live connection: every event before the reply has been delivered.
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, err := c.API(context.Background(), "version"); err == nil {
			break
		} else if !errors.Is(err, esl.ErrNotConnected) || time.Now().After(deadline) {
			t.Fatal(err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Run = %v", err)
	}
	// The first connection may drop before or after its resync went through; the second
	// stays up until Run ends.
	if connects.Load() != 2 || disconnects.Load() < 1 {
		t.Fatalf("connects %d disconnects %d, want 2 and at least 1", connects.Load(), disconnects.Load())
	}
	mu.Lock()
	defer mu.Unlock()
	if order[0] != "resync" {
		t.Fatalf("an event was delivered before the first resync finished: %v", order[:3])
	}
	last := 0
	for i, o := range order {
		if o == "resync" {
			last = i
		}
	}
	if n := len(order) - last - 1; n != 113 {
		t.Fatalf("%d events after the last resync, want the 113 of the recording", n)
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
