package nats_test

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"

	"github.com/callbridge/callbridge"
	"github.com/callbridge/callbridge/internal/testenv"
	cbnats "github.com/callbridge/callbridge/nats"
)

// syncBuffer is a bytes.Buffer safe for the server's goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func TestServerWithoutListenerServesInProcessClients(t *testing.T) {
	var logs syncBuffer
	s, err := cbnats.StartServer(context.Background(), cbnats.ServerConfig{
		DataDir: t.TempDir(),
		Logger:  slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Shutdown()
	if u := s.ClientURL(); u != "" {
		t.Errorf("ClientURL() = %q without a listener, want \"\"", u)
	}
	nc, err := s.Connect("test")
	if err != nil {
		t.Fatal(err)
	}
	l, err := cbnats.OpenEventLog(context.Background(), nc, cbnats.LogConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if seq := mustAppend(t, l, agentEv("acme", "alice", "x")); seq != 2 {
		t.Errorf("first event's sequence %d, want 2 (after the marker)", seq)
	}
	s.Shutdown()
	// nats-server's notices arrive through slog: at Debug while it starts, then at Info.
	out := logs.String()
	for _, want := range []string{
		`level=DEBUG msg="Server is ready" component=nats-server`,
		`level=INFO msg="nats server ready" name=callbridge`,
		`level=INFO msg="Server Exiting.." component=nats-server`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %s:\n%s", want, out)
		}
	}
	if !nc.IsClosed() {
		t.Error("Shutdown left an in-process connection open")
	}
	s.Shutdown() // again: no-op
}

func TestServerWithListenerServesTCPClients(t *testing.T) {
	s, err := cbnats.StartServer(context.Background(), cbnats.ServerConfig{
		DataDir:    t.TempDir(),
		Listen:     "127.0.0.1:-1",
		ServerName: "site-a",
		Logger:     testLogger(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Shutdown()
	u := s.ClientURL()
	if !strings.HasPrefix(u, "nats://127.0.0.1:") || strings.HasSuffix(u, ":-1") {
		t.Fatalf("ClientURL() = %q, want nats://127.0.0.1:<port>", u)
	}
	nc, err := cbnats.Connect(u, "external")
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	l, err := cbnats.OpenEventLog(context.Background(), nc, cbnats.LogConfig{Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	c := newCollector()
	subscribe(t, l, callbridge.Filter{Tenant: "acme", Agent: "alice"}, cbnats.SubscribeOptions{}, c)
	mustAppend(t, l, callEv("acme", "C1", "over-tcp", "alice"))
	c.waitFor(t, "over-tcp")
}

func TestStartServerFailsCleanly(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()

	tests := []struct {
		name string
		cfg  cbnats.ServerConfig
		want string
	}{
		{"no data dir", cbnats.ServerConfig{}, "DataDir"},
		{"listen without port", cbnats.ServerConfig{DataDir: t.TempDir(), Listen: "127.0.0.1"}, "listen"},
		{"bad port", cbnats.ServerConfig{DataDir: t.TempDir(), Listen: "127.0.0.1:http"}, "bad port"},
		{"port zero", cbnats.ServerConfig{DataDir: t.TempDir(), Listen: "127.0.0.1:0"}, "-1"},
		{"port in use", cbnats.ServerConfig{DataDir: t.TempDir(), Listen: busy.Addr().String()}, "listening"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Failing is prompt: it does not wait for StartServer's 30 s readiness bound.
			ctx, cancel := context.WithTimeout(context.Background(), testenv.Patience)
			defer cancel()
			s, err := cbnats.StartServer(ctx, tt.cfg)
			if err == nil {
				s.Shutdown()
				t.Fatal("StartServer succeeded")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not mention %q", err, tt.want)
			}
			if ctx.Err() != nil {
				t.Errorf("StartServer failed only when its context ended: %v", err)
			}
		})
	}
}
