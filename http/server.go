// Package http is callbridge's gateway: the REST endpoints (login, me), the v1 WebSocket
// protocol for desktops, health and readiness probes, and the embedded agent page.
//
// Routes:
//
//	GET  /            the agent desktop (HTML, embedded from package web)
//	GET  /sdk/…       the SDK and <callbridge-bar> (ES modules + .d.ts, any origin; static.go)
//	GET  /app/…       the desktop's script and style sheet
//	GET  /healthz     200 {"status":"ok"} while the process serves
//	GET  /readyz      200 {"status":"ready"}, or 503 with the reason
//	POST /v1/login    {"username","password","tenant"?} → {"token","expires_at","expires_in",
//	                  "refresh_token","refresh_expires_at","tenant","username","role"} (login.go)
//	POST /v1/refresh  {"refresh_token"} → the same, with a new refresh token
//	POST /v1/logout   ends the session of the bearer token (or of {"refresh_token"}); 204
//	GET  /v1/me       the caller's AgentSnapshot (agents) or {"tenant","username","role"}
//	GET  /v1/ws       the WebSocket protocol (see ws.go)
//	GET  /v1/agents/{id}/availability  routable or not, and why (availability.go)
//	     /v1/call-records, /v1/agent-states, /v1/webhooks…, /v1/api-keys…, /v1/calls…
//	                  the REST API for CRMs (rest*.go, apikeys.go; Config.CRM)
//	GET  /v1/openapi.json, /v1/openapi.yaml, /docs   its OpenAPI document and docs (openapi.go)
//
// Browser pages on Config.AllowedOrigins may call /v1/… cross-origin (CORS, cors.go).
//
// Every error is {"error":{"code":"…","message":"…"}} with the status of its code; unknown
// paths are 404 not_found and known paths with another method 405 invalid (with Allow).
package http

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	nethttp "net/http"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lesismal/nbio/nbhttp"
	"golang.org/x/crypto/bcrypt"

	"github.com/callbridge/callbridge"
	"github.com/callbridge/callbridge/hub"
	"github.com/callbridge/callbridge/metrics"
)

// Defaults for Config fields left zero.
const (
	DefaultAddr     = "127.0.0.1:8080"
	DefaultTokenTTL = 15 * time.Minute
	// DefaultRefreshTTL is how long a session lasts without a refresh (a desktop left closed).
	DefaultRefreshTTL = 12 * time.Hour
	// DefaultSessionMaxAge is the longest a session lasts from its login, refreshed or not.
	DefaultSessionMaxAge  = 7 * 24 * time.Hour
	DefaultLoginQueue     = 64
	DefaultSendQueueBytes = 1 << 20 // 1 MiB of encoded messages waiting for one WebSocket
	DefaultPingInterval   = 25 * time.Second
	DefaultWriteTimeout   = 10 * time.Second
	// DefaultMaxSocketsPerUser caps one user's simultaneous WebSockets (a desktop and a
	// few CRM tabs, on a few devices).
	DefaultMaxSocketsPerUser = 32
	// MinSecretBytes is the shortest accepted token key (HS256 wants a 256-bit key, RFC 7518 §3.2).
	MinSecretBytes = 32
)

// Config configures a Server. Store, Sessions, Hub, Commander and Secret are required.
type Config struct {
	// Addr is the TCP address to listen on; default DefaultAddr. Use "127.0.0.1:0" for any port.
	Addr string
	// Store finds users at login (FindUsers).
	Store callbridge.Store
	// Sessions keeps login sessions; every authenticated request checks its session there.
	Sessions callbridge.SessionStore
	// Hub fans the node's events out to WebSocket clients and serves their resumes.
	Hub *hub.Hub
	// Commander carries out desktop commands and gives agent snapshots.
	Commander callbridge.Commander
	// Secret is the HMAC key (HS256) that signs and checks tokens; at least MinSecretBytes.
	Secret []byte
	// TokenTTL is how long an access token is valid; default DefaultTokenTTL. Clients get
	// the next one from POST /v1/refresh.
	TokenTTL time.Duration
	// RefreshTTL is how long a session lasts after its last refresh; default
	// DefaultRefreshTTL. SessionMaxAge caps a session from its login; default
	// DefaultSessionMaxAge.
	RefreshTTL, SessionMaxAge time.Duration
	// BcryptCost is the cost of the store's password hashes (the store's own setting; default
	// bcrypt.DefaultCost). Unknown users are checked against a dummy hash of this cost, and a
	// user's hash of another cost is re-hashed at this cost when they log in.
	BcryptCost int
	// LoginWorkers is how many password hashes run at once (default half the CPUs, at least
	// one); LoginQueue how many logins may wait for them (default DefaultLoginQueue) before
	// further ones are answered 503 at once.
	LoginWorkers, LoginQueue int
	// LoginLimits limit failed logins per user and per client address.
	LoginLimits LoginLimits
	// AllowedOrigins are the browser origins, besides the server's own, allowed to open a
	// WebSocket: exact origins such as "https://crm.example.com" (scheme, host and port,
	// compared case-insensitively), or "*" for any origin. Requests without an Origin header
	// (non-browser clients) are always allowed; they authenticate with their token.
	AllowedOrigins []string
	// Logger receives the gateway's logs; nil discards them.
	Logger *slog.Logger
	// Now is the clock for tokens and command times; default time.Now.
	Now func() time.Time
	// Ready is an extra readiness check for /readyz (store, bus); nil means always ready.
	Ready func() error

	// SendQueueBytes caps the encoded messages queued for one WebSocket and not yet taken by
	// the kernel; a client that falls further behind is closed with CloseSlowConsumer.
	// Default DefaultSendQueueBytes.
	SendQueueBytes int
	// PingInterval is how long a WebSocket may stay silent before the server pings it; a
	// socket silent for twice as long is closed. Default DefaultPingInterval.
	PingInterval time.Duration
	// WriteTimeout bounds the close handshake: a socket asked to close is cut when the
	// client has not answered within it. Default DefaultWriteTimeout.
	WriteTimeout time.Duration
	// MaxSocketsPerUser caps one user's simultaneous WebSockets; the next is closed at once
	// with CloseTooManyConnections. Default DefaultMaxSocketsPerUser.
	MaxSocketsPerUser int

	// CRM holds the stores of the REST API for CRMs (rest.go); nil stores answer 503.
	CRM CRMConfig

	// Metrics, when set, is served at GET /metrics (Prometheus text format, no
	// authentication: volumes only, no tenant or agent names) and counts WebSocket
	// connections. Nil: no /metrics.
	Metrics *metrics.Metrics

	// compare checks a password against a bcrypt hash; default bcrypt.CompareHashAndPassword
	// (tests count and hold the work through it).
	compare func(hash, password []byte) error
}

// Server is the HTTP gateway. Create it with NewServer, start it with Open, stop it with Close.
type Server struct {
	cfg       Config
	log       *slog.Logger
	now       func() time.Time
	mux       *nethttp.ServeMux
	handler   nethttp.Handler
	dummyHash []byte // bcrypt hash (Config.BcryptCost) checked when no user matches, so timing does not tell
	compare   func(hash, password []byte) error
	hashes    *hashPool // password hashing, off the request and WebSocket goroutines
	perUser   *backoff  // failed logins per user name
	perAddr   *backoff  // failed logins per client address
	lastPrune atomic.Int64
	page      page

	ln  net.Listener
	srv *nethttp.Server
	// serveErr receives the result of srv.Serve.
	serveErr chan error

	// baseCtx is the parent of every WebSocket connection's context; cancelled by Close.
	baseCtx    context.Context
	cancelBase context.CancelFunc

	mu      sync.Mutex
	closing bool
	conns   map[*wsConn]struct{}
	wsWG    sync.WaitGroup

	// The WebSocket side (ws.go, wsengine.go).
	nb       *nbhttp.Engine
	sockets  socketCounts
	desktops desktopSet
	bgWG     sync.WaitGroup // the sweeper and the presence reporter
}

// NewServer checks cfg, fills in defaults and builds the routes. It does not listen; see Open.
// Errors: a missing Store, Log, Commander, or a Secret shorter than MinSecretBytes.
func NewServer(cfg Config) (*Server, error) {
	switch {
	case cfg.Store == nil:
		return nil, errors.New("http: Config.Store is required")
	case cfg.Sessions == nil:
		return nil, errors.New("http: Config.Sessions is required")
	case cfg.Hub == nil:
		return nil, errors.New("http: Config.Hub is required")
	case cfg.Commander == nil:
		return nil, errors.New("http: Config.Commander is required")
	case len(cfg.Secret) < MinSecretBytes:
		return nil, fmt.Errorf("http: Config.Secret must be at least %d bytes", MinSecretBytes)
	}
	if cfg.Addr == "" {
		cfg.Addr = DefaultAddr
	}
	if cfg.TokenTTL <= 0 {
		cfg.TokenTTL = DefaultTokenTTL
	}
	if cfg.RefreshTTL <= 0 {
		cfg.RefreshTTL = DefaultRefreshTTL
	}
	if cfg.SessionMaxAge <= 0 {
		cfg.SessionMaxAge = DefaultSessionMaxAge
	}
	if cfg.BcryptCost == 0 {
		cfg.BcryptCost = bcrypt.DefaultCost
	}
	if cfg.BcryptCost < bcrypt.MinCost || cfg.BcryptCost > bcrypt.MaxCost {
		return nil, fmt.Errorf("http: Config.BcryptCost %d is not between %d and %d", cfg.BcryptCost, bcrypt.MinCost, bcrypt.MaxCost)
	}
	if cfg.LoginWorkers <= 0 {
		cfg.LoginWorkers = max(1, runtime.GOMAXPROCS(0)/2)
	}
	if cfg.LoginQueue <= 0 {
		cfg.LoginQueue = DefaultLoginQueue
	}
	cfg.LoginLimits.PerUser = cfg.LoginLimits.PerUser.orDefault(DefaultPerUserLimit)
	cfg.LoginLimits.PerAddress = cfg.LoginLimits.PerAddress.orDefault(DefaultPerAddressLimit)
	if cfg.compare == nil {
		cfg.compare = bcrypt.CompareHashAndPassword
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.SendQueueBytes <= 0 {
		cfg.SendQueueBytes = DefaultSendQueueBytes
	}
	if cfg.PingInterval <= 0 {
		cfg.PingInterval = DefaultPingInterval
	}
	if cfg.WriteTimeout <= 0 {
		cfg.WriteTimeout = DefaultWriteTimeout
	}
	if cfg.MaxSocketsPerUser <= 0 {
		cfg.MaxSocketsPerUser = DefaultMaxSocketsPerUser
	}
	cfg.Secret = slices.Clone(cfg.Secret)
	cfg.AllowedOrigins = slices.Clone(cfg.AllowedOrigins)

	pg, err := loadPage()
	if err != nil {
		return nil, fmt.Errorf("http: agent page: %w", err)
	}
	// The dummy hash is of a random password nobody knows, at the store's cost.
	dummy, err := bcrypt.GenerateFromPassword([]byte(randomID(32)), cfg.BcryptCost)
	if err != nil {
		return nil, fmt.Errorf("http: dummy hash: %w", err)
	}
	s := &Server{
		cfg:       cfg,
		log:       cfg.Logger,
		now:       cfg.Now,
		dummyHash: dummy,
		compare:   cfg.compare,
		hashes:    newHashPool(cfg.LoginWorkers, cfg.LoginQueue),
		perUser:   newBackoff(cfg.LoginLimits.PerUser),
		perAddr:   newBackoff(cfg.LoginLimits.PerAddress),
		page:      pg,
		conns:     make(map[*wsConn]struct{}),
		sockets:   socketCounts{n: map[userKey]int{}, max: cfg.MaxSocketsPerUser},
	}
	s.desktops = desktopSet{p: s.presence(), id: "gateway-" + randomID(8), log: s.log,
		n: map[hub.Key]int{}, wake: make(chan struct{}, 1)}
	s.nb = s.newEngine()
	s.baseCtx, s.cancelBase = context.WithCancel(context.Background())
	s.routes()
	return s, nil
}

// routes registers every endpoint. The catch-all "/" answers 404 or 405 in JSON.
func (s *Server) routes() {
	m := nethttp.NewServeMux()
	m.HandleFunc("GET /{$}", s.handlePage)
	m.HandleFunc("GET /healthz", s.handleHealthz)
	m.HandleFunc("GET /readyz", s.handleReadyz)
	if s.cfg.Metrics != nil {
		m.Handle("GET /metrics", s.cfg.Metrics.Handler())
	}
	m.HandleFunc("POST /v1/login", s.handleLogin)
	m.HandleFunc("POST /v1/refresh", s.handleRefresh)
	m.HandleFunc("POST /v1/logout", s.handleLogout)
	m.Handle("GET /v1/me", s.requireAuth(false, s.handleMe))
	m.HandleFunc("GET /v1/ws", s.handleWS)
	m.Handle("GET /v1/agents/{id}/availability", s.requireAuth(false, s.handleAvailability))
	m.HandleFunc("GET /sdk/", s.handleStatic)
	m.HandleFunc("GET /app/", s.handleStatic)
	m.HandleFunc("GET /docs", s.handleDocs)
	m.HandleFunc("GET /docs/", s.handleStatic)
	s.restRoutes(m) // REST API for CRMs, /v1/openapi.json
	m.HandleFunc("/", s.handleNoRoute)
	s.mux = m
	s.handler = s.withCORS(m)
}

// handleNoRoute answers requests no route matched: 405 with Allow when the path exists for
// other methods, else 404.
func (s *Server) handleNoRoute(w nethttp.ResponseWriter, r *nethttp.Request) {
	var allow []string
	for _, m := range []string{nethttp.MethodGet, nethttp.MethodHead, nethttp.MethodPost, nethttp.MethodPut, nethttp.MethodPatch, nethttp.MethodDelete} {
		if m == r.Method {
			continue
		}
		probe := r.Clone(r.Context())
		probe.Method = m
		if _, pattern := s.mux.Handler(probe); pattern != "" && pattern != "/" {
			allow = append(allow, m)
		}
	}
	if len(allow) > 0 {
		w.Header().Set("Allow", strings.Join(allow, ", "))
		writeJSON(w, nethttp.StatusMethodNotAllowed, errorResponse{Error: errorBody{
			Code:    callbridge.EMethod,
			Message: fmt.Sprintf("method %s is not allowed on %s (allowed: %s)", r.Method, r.URL.Path, strings.Join(allow, ", ")),
		}})
		return
	}
	s.writeError(w, r, callbridge.Errorf(callbridge.ENotFound, "no such endpoint: %s", r.URL.Path))
}

// Handler returns the gateway's routes, for tests and for embedding in another server.
// WebSockets served through it are tracked and closed by Close like those of Open.
func (s *Server) Handler() nethttp.Handler { return s.handler }

// Open listens on Config.Addr synchronously (so a port clash is an error here) and serves in
// a goroutine until Close.
func (s *Server) Open() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.srv != nil {
		return errors.New("http: server already opened")
	}
	if s.closing {
		return errors.New("http: server closed")
	}
	ln, err := net.Listen("tcp", s.cfg.Addr)
	if err != nil {
		return fmt.Errorf("http: listen %s: %w", s.cfg.Addr, err)
	}
	if err := s.nb.Start(); err != nil {
		ln.Close()
		return fmt.Errorf("http: websocket engine: %w", err)
	}
	wctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	err = s.warmUp(wctx)
	cancel()
	if err != nil {
		ln.Close()
		s.nb.Stop()
		return fmt.Errorf("http: websocket engine: start: %w", err)
	}
	s.bgWG.Add(2)
	go func() { defer s.bgWG.Done(); s.sweep(s.baseCtx) }()
	go func() { defer s.bgWG.Done(); s.desktops.run(s.baseCtx) }()
	s.ln = ln
	s.srv = &nethttp.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return s.baseCtx },
	}
	s.serveErr = make(chan error, 1)
	go func() { s.serveErr <- s.srv.Serve(ln) }()
	s.log.Info("http gateway listening", "addr", ln.Addr().String())
	return nil
}

// Addr returns the bound address ("127.0.0.1:41234"), or Config.Addr before Open.
func (s *Server) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln == nil {
		return s.cfg.Addr
	}
	return s.ln.Addr().String()
}

// URL returns the base URL of the server, "http://" + Addr() (a wildcard host is shown as
// 127.0.0.1, so the URL is usable from the same machine).
func (s *Server) URL() string {
	addr := s.Addr()
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "http://" + addr
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port)
}

// Close stops accepting connections, closes every WebSocket with 1001 (going away), and waits
// for in-flight requests and WebSocket handlers to finish, or for ctx to end, in which case the
// remaining connections are cut and ctx.Err() is returned. Close may be called without Open.
func (s *Server) Close(ctx context.Context) error {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		return nil
	}
	s.closing = true
	srv := s.srv
	conns := make([]*wsConn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()

	// Stop accepting and drain plain requests; hijacked WebSockets are not tracked by Shutdown.
	shutdownErr := make(chan error, 1)
	if srv != nil {
		go func() { shutdownErr <- srv.Shutdown(ctx) }()
	} else {
		shutdownErr <- nil
	}

	for _, c := range conns {
		if c.ws.Load() != nil {
			c.closeWith(closeGoingAway, "server shutting down")
		}
	}
	done := make(chan struct{})
	go func() { s.wsWG.Wait(); close(done) }()

	var err error
	select {
	case <-done:
	case <-ctx.Done():
		err = ctx.Err()
		for _, c := range conns {
			if ws := c.ws.Load(); ws != nil {
				_ = ws.Close()
			}
		}
	}
	if e := <-shutdownErr; e != nil && err == nil {
		err = fmt.Errorf("http: shutdown: %w", e)
	}
	s.cancelBase() // after the drain, so that in-flight requests finish with a live context
	s.hashes.close()
	s.bgWG.Wait()
	if srv != nil {
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if e := s.nb.Shutdown(sctx); e != nil {
			s.log.Warn("websocket engine did not stop in time", "err", e)
		}
		cancel()
		if e := <-s.serveErr; e != nil && !errors.Is(e, nethttp.ErrServerClosed) && err == nil {
			err = fmt.Errorf("http: serve: %w", e)
		}
	}
	s.log.Info("http gateway closed")
	return err
}

// register adds c to the live connections, or returns false once Close has begun.
func (s *Server) register(c *wsConn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return false
	}
	s.conns[c] = struct{}{}
	s.wsWG.Add(1)
	return true
}

func (s *Server) unregister(c *wsConn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
	s.wsWG.Done()
}

// Sockets counts the open WebSockets (every tab of every user).
func (s *Server) Sockets() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

// logger returns the gateway's logger.
func (s *Server) logger() *slog.Logger { return s.log }

func (s *Server) isClosing() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closing
}
