package nats

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	natsgo "github.com/nats-io/nats.go"
)

// DefaultServerName is the server name used when ServerConfig.ServerName is empty.
const DefaultServerName = "callbridge"

// startTimeout bounds how long StartServer waits for the server to accept connections when
// ctx has no earlier deadline. Recovering a large JetStream store can take a few seconds.
const startTimeout = 30 * time.Second

// ServerConfig configures the embedded NATS server.
type ServerConfig struct {
	// DataDir is the JetStream storage directory, e.g. "./data/nats". Required. The server
	// keeps its file store under DataDir/jetstream; restarting with the same DataDir keeps
	// every stream and its sequence numbers.
	DataDir string
	// Listen is the client listener: "" for none (in-process connections only, the embedded
	// default), else "host:port", e.g. "127.0.0.1:4222". Port -1 picks a free port (tests);
	// an empty host means 127.0.0.1, so give "0.0.0.0:4222" explicitly to listen on every
	// interface. The listener has no authentication: anything that reaches it can publish
	// events, so keep it on loopback.
	Listen string
	// ServerName names the server in logs and JetStream metadata; "" means DefaultServerName.
	ServerName string
	// Logger receives the server's log lines (notices at Info, or Debug while starting;
	// warnings at Warn, errors at Error, debug at Debug, protocol traces at LevelTrace). nil
	// discards them.
	Logger *slog.Logger
}

// Server is a NATS server with JetStream running inside this process.
type Server struct {
	ns     *server.Server
	log    *slog.Logger
	listen bool

	mu    sync.Mutex
	conns []*natsgo.Conn // in-process connections made by Connect, closed by Shutdown

	shutdown sync.Once
}

// StartServer starts a NATS server in this process with JetStream enabled on a file store
// under cfg.DataDir, and returns once it accepts connections. It returns an error when the
// configuration is invalid, the listener cannot be bound, JetStream cannot open its store,
// or the server is not ready before ctx ends (at most 30 s); in every error case the server
// has been shut down again. The server installs no signal handlers.
func StartServer(ctx context.Context, cfg ServerConfig) (*Server, error) {
	if cfg.DataDir == "" {
		return nil, errors.New("nats: start server: DataDir is required")
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	name := cfg.ServerName
	if name == "" {
		name = DefaultServerName
	}
	opts := &server.Options{
		ServerName: name,
		JetStream:  true,
		StoreDir:   cfg.DataDir,
		NoSigs:     true,
		// No HTTP monitoring, cluster, gateway or leaf node listeners.
	}
	if cfg.Listen == "" {
		opts.DontListen = true
	} else {
		host, port, err := splitListen(cfg.Listen)
		if err != nil {
			return nil, fmt.Errorf("nats: start server: %w", err)
		}
		opts.Host, opts.Port = host, port
	}

	ns, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("nats: start server: %w", err)
	}
	adapter := newServerLogger(log)
	ns.SetLoggerV2(adapter, log.Enabled(ctx, slog.LevelDebug), log.Enabled(ctx, LevelTrace), false)

	s := &Server{ns: ns, log: log, listen: !opts.DontListen}
	go ns.Start()
	if err := s.waitReady(ctx, adapter); err != nil {
		s.Shutdown()
		return nil, fmt.Errorf("nats: start server: %w", err)
	}
	if !ns.JetStreamEnabled() {
		s.Shutdown()
		return nil, errors.New("nats: start server: JetStream is not enabled")
	}
	adapter.started()
	log.Info("nats server ready", "name", name, "version", server.VERSION, "listen", s.ClientURL(),
		"data_dir", cfg.DataDir)
	return s, nil
}

// splitListen parses "host:port" where port may be -1 (random); an empty host is 127.0.0.1.
func splitListen(listen string) (string, int, error) {
	host, p, err := net.SplitHostPort(listen)
	if err != nil {
		return "", 0, fmt.Errorf("listen %q: %w", listen, err)
	}
	port, err := strconv.Atoi(p)
	if err != nil || port < -1 || port > 65535 {
		return "", 0, fmt.Errorf("listen %q: bad port", listen)
	}
	if port == 0 {
		// nats-server treats 0 as "the default port 4222"; say it explicitly instead.
		return "", 0, fmt.Errorf("listen %q: port 0 is ambiguous, use -1 for a random port", listen)
	}
	if host == "" {
		host = "127.0.0.1"
	}
	return host, port, nil
}

// waitReady polls the server until it accepts connections, it reports a fatal error, or the
// deadline passes.
func (s *Server) waitReady(ctx context.Context, adapter *serverLogger) error {
	deadline := time.Now().Add(startTimeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	for {
		if err := adapter.fatalErr(); err != nil {
			return err
		}
		if s.ns.ReadyForConnections(50 * time.Millisecond) {
			return nil
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not ready for connections after %s", startTimeout)
		}
	}
}

// Connect returns a client connection to this server named name (the name shows in the
// server's connection list). The connection is in-process (no TCP, even when the server
// listens). Shutdown closes every connection made here; closing one earlier is fine.
func (s *Server) Connect(name string) (*natsgo.Conn, error) {
	nc, err := natsgo.Connect(s.ns.ClientURL(),
		natsgo.Name(name),
		natsgo.InProcessServer(s.ns),
		natsgo.MaxReconnects(-1),
	)
	if err != nil {
		return nil, fmt.Errorf("nats: connect in-process %q: %w", name, err)
	}
	s.mu.Lock()
	s.conns = slices.DeleteFunc(s.conns, (*natsgo.Conn).IsClosed)
	s.conns = append(s.conns, nc)
	s.mu.Unlock()
	return nc, nil
}

// ClientURL returns the URL of the client listener, e.g. "nats://127.0.0.1:4222" (with the
// real port when Listen asked for -1), or "" when the server does not listen.
func (s *Server) ClientURL() string {
	if !s.listen {
		return ""
	}
	return s.ns.ClientURL()
}

// Shutdown closes the connections made by Connect (flushing what they have buffered), stops
// the server, flushes JetStream to disk, and returns once the server has stopped. It is safe
// to call more than once.
func (s *Server) Shutdown() {
	s.shutdown.Do(func() {
		s.mu.Lock()
		conns := s.conns
		s.conns = nil
		s.mu.Unlock()
		for _, nc := range conns {
			nc.Close()
		}
		s.ns.Shutdown()
		s.ns.WaitForShutdown()
		s.log.Info("nats server stopped")
	})
}

// Connect connects to an external NATS server or cluster at url (comma-separated URLs are
// allowed, e.g. "nats://n1:4222,nats://n2:4222"), naming the connection name. The connection
// reconnects forever (1 s between attempts, with jitter) and pings every 20 s so a dead link
// is noticed within a minute. opts are applied after these defaults (credentials, TLS,
// handlers).
func Connect(url string, name string, opts ...natsgo.Option) (*natsgo.Conn, error) {
	all := append([]natsgo.Option{
		natsgo.Name(name),
		natsgo.MaxReconnects(-1),
		natsgo.ReconnectWait(time.Second),
		natsgo.PingInterval(20 * time.Second),
		natsgo.MaxPingsOutstanding(3),
	}, opts...)
	nc, err := natsgo.Connect(url, all...)
	if err != nil {
		return nil, fmt.Errorf("nats: connect %q: %w", name, err)
	}
	return nc, nil
}
