package main

import (
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	natsgo "github.com/nats-io/nats.go"
	"github.com/oklog/ulid/v2"

	"github.com/callbridge/callbridge"
	"github.com/callbridge/callbridge/asterisk"
	"github.com/callbridge/callbridge/engine"
	cbhttp "github.com/callbridge/callbridge/http"
	"github.com/callbridge/callbridge/hub"
	"github.com/callbridge/callbridge/metrics"
	cbnats "github.com/callbridge/callbridge/nats"
	"github.com/callbridge/callbridge/node"
	"github.com/callbridge/callbridge/provision"
	"github.com/callbridge/callbridge/sim"
)

// Main is the serve command: flags, the components it opens and their order of shutdown.
// The end-to-end tests reuse it (HTTP on 127.0.0.1:0, data in a temp dir).
type Main struct {
	HTTPAddr       string
	DataDir        string
	PBX            string
	ProvisionFile  string
	AllowedOrigins string
	NATSURL        string
	DB             string // --db: "" for SQLite in DataDir, or postgres://… (crm.go)
	LogLevel       string
	SimInterval    time.Duration
	// WebhookAllowLoopback lets webhooks go to 127.0.0.0/8 and ::1; WebhookDenyPrivate also
	// refuses the private ranges (see webhook.Destinations).
	WebhookAllowLoopback, WebhookDenyPrivate bool
	// DesktopGrace is how long an agent may be without a desktop before desktop_lost.
	DesktopGrace time.Duration

	stdout, stderr io.Writer
	Logger         *slog.Logger

	store    serveStore // --- CRM (issue 5): SQLite or PostgreSQL, see crm.go
	crm      *crm
	natsSrv  *cbnats.Server
	evlog    *cbnats.EventLog
	appender *cbnats.Appender
	Hub      *hub.Hub
	View     *hub.View
	Node     *node.Node
	HTTP     *cbhttp.Server
	Metrics  *metrics.Metrics // served at /metrics
	demo     bool
	// noDemo says why the embedded default has no demo logins ("" when it has them or is not
	// the embedded default); see demo.go.
	noDemo string
	// bcryptCost is the cost of password hashes, in the store and at login; 0 is
	// bcrypt.DefaultCost. The load harness uses bcrypt.MinCost.
	bcryptCost int

	cancel  context.CancelFunc
	nodeErr chan error
	closers []func()

	// Hooks of the load harness (load_test.go); nil in production.
	newSim  func(sim.Config, *slog.Logger) callbridge.Driver // builds the simulated PBX's driver from serve's Config
	onEvent func(callbridge.Event)                           // node.Config.OnEvent
}

// NewMain returns a Main with the embedded defaults.
func NewMain(stdout, stderr io.Writer) *Main {
	return &Main{
		HTTPAddr:     "127.0.0.1:8080",
		DataDir:      "./data",
		PBX:          "sim",
		LogLevel:     "info",
		SimInterval:  10 * time.Second,
		DesktopGrace: 30 * time.Second,
		stdout:       stdout,
		stderr:       stderr,
	}
}

// envBool returns the boolean in CALLBRIDGE_<NAME> ("1", "true", …), or def when it is unset
// or malformed.
func envBool(name string, def bool) bool {
	if b, err := strconv.ParseBool(envDefault(name, strconv.FormatBool(def))); err == nil {
		return b
	}
	return def
}

// envDuration returns the duration in CALLBRIDGE_<NAME>, or def when it is unset or malformed.
func envDuration(name string, def time.Duration) time.Duration {
	if d, err := time.ParseDuration(envDefault(name, def.String())); err == nil {
		return d
	}
	return def
}

// envDefault returns the environment variable CALLBRIDGE_<NAME> or def.
func envDefault(name, def string) string {
	if v, ok := os.LookupEnv("CALLBRIDGE_" + name); ok {
		return v
	}
	return def
}

// ParseFlags reads the serve flags; every flag has a CALLBRIDGE_* environment variable
// (flag --allowed-origins ↔ CALLBRIDGE_ALLOWED_ORIGINS), and a flag beats its variable.
func (m *Main) ParseFlags(args []string) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(m.stderr)
	fs.StringVar(&m.HTTPAddr, "http", envDefault("HTTP", m.HTTPAddr), "HTTP listen address (CALLBRIDGE_HTTP)")
	fs.StringVar(&m.DataDir, "data", envDefault("DATA", m.DataDir), "data directory: SQLite database, NATS storage, token key (CALLBRIDGE_DATA)")
	fs.StringVar(&m.PBX, "pbx", envDefault("PBX", m.PBX), `switch: "sim" (simulated PBX), ami://user:secret@host:5038 or esl://:password@host:8021 (CALLBRIDGE_PBX)`)
	fs.StringVar(&m.ProvisionFile, "provision", envDefault("PROVISION", m.ProvisionFile), "provisioning YAML: tenants, users, agents, queues (CALLBRIDGE_PROVISION)")
	fs.StringVar(&m.AllowedOrigins, "allowed-origins", envDefault("ALLOWED_ORIGINS", m.AllowedOrigins), "comma-separated origins allowed for CORS and WebSocket (CALLBRIDGE_ALLOWED_ORIGINS)")
	fs.StringVar(&m.DB, "db", envDefault("DB", m.DB), "store: empty for SQLite in --data, another SQLite file (*.db), or postgres://user:pass@host:5432/db (CALLBRIDGE_DB)")
	fs.StringVar(&m.NATSURL, "nats", envDefault("NATS", m.NATSURL), "external NATS URL; empty runs an embedded NATS server (CALLBRIDGE_NATS)")
	fs.StringVar(&m.LogLevel, "log-level", envDefault("LOG_LEVEL", m.LogLevel), "debug, info, warn or error (CALLBRIDGE_LOG_LEVEL)")
	interval := envDefault("SIM_CALL_INTERVAL", m.SimInterval.String())
	fs.Func("sim-call-interval", "simulated PBX: mean time between inbound calls (CALLBRIDGE_SIM_CALL_INTERVAL, default "+interval+")", func(s string) error {
		interval = s
		return nil
	})
	fs.BoolVar(&m.WebhookAllowLoopback, "webhook-allow-loopback", envBool("WEBHOOK_ALLOW_LOOPBACK", false),
		"let webhooks go to loopback addresses, e.g. a CRM on this host (CALLBRIDGE_WEBHOOK_ALLOW_LOOPBACK); link-local and cloud metadata addresses are always refused")
	fs.BoolVar(&m.WebhookDenyPrivate, "webhook-deny-private", envBool("WEBHOOK_DENY_PRIVATE", false),
		"refuse webhooks to private addresses (10/8, 172.16/12, 192.168/16, fc00::/7) too (CALLBRIDGE_WEBHOOK_DENY_PRIVATE)")
	fs.DurationVar(&m.DesktopGrace, "desktop-grace", envDuration("DESKTOP_GRACE", m.DesktopGrace),
		"how long an agent may be without a desktop before they become not_ready desktop_lost; 0 turns it off (CALLBRIDGE_DESKTOP_GRACE)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("serve: unexpected argument %q", fs.Arg(0))
	}
	d, err := time.ParseDuration(interval)
	if err != nil {
		return fmt.Errorf("serve: --sim-call-interval: %w", err)
	}
	m.SimInterval = d
	return nil
}

func (m *Main) logger() (*slog.Logger, error) {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(m.LogLevel)); err != nil {
		return nil, fmt.Errorf("--log-level: %w", err)
	}
	return slog.New(slog.NewTextHandler(m.stderr, &slog.HandlerOptions{Level: lvl})), nil
}

// Open opens every component in order: store, provisioning, bus, engine and driver, HTTP.
// On error the caller calls Close.
func (m *Main) Open(ctx context.Context) error {
	// Flags first: a mistake is named before anything is opened.
	if _, err := pbxKind(m.PBX); err != nil {
		return err
	}
	// Then the data directory, before the store, NATS or the listener touch it.
	lock, err := lockDataDir(m.DataDir)
	if err != nil {
		return err
	}
	m.closers = append(m.closers, lock.release) // closers run in reverse: released last
	if m.Logger == nil {
		lg, err := m.logger()
		if err != nil {
			return err
		}
		m.Logger = lg
	}
	lg := m.Logger

	// Store and provisioning.
	store, err := m.openStore(ctx, lg) // --db (crm.go)
	if err != nil {
		return fmt.Errorf("open store: %w", err)
	}
	m.store = store
	m.closers = append(m.closers, func() { store.Close() })
	if err := m.provision(ctx, store); err != nil { // demo.go
		return err
	}
	dir, err := store.Directory(ctx)
	if err != nil {
		return fmt.Errorf("read directory: %w", err)
	}
	if len(dir.Tenants) == 0 {
		return errors.New("no tenant is provisioned: pass --provision FILE (see examples/)")
	}

	// Bus: embedded NATS with JetStream, or an external cluster.
	if m.NATSURL == "" {
		srv, err := cbnats.StartServer(ctx, cbnats.ServerConfig{
			DataDir: filepath.Join(m.DataDir, "nats"), ServerName: "callbridge", Logger: lg.With("component", "nats"),
		})
		if err != nil {
			return fmt.Errorf("start embedded NATS: %w", err)
		}
		m.natsSrv = srv
		m.closers = append(m.closers, srv.Shutdown)
	}
	nc, err := m.natsConn()
	if err != nil {
		return err
	}
	m.closers = append(m.closers, nc.Close)
	evlog, err := cbnats.OpenEventLog(ctx, nc, cbnats.LogConfig{Logger: lg})
	if err != nil {
		return fmt.Errorf("open event log: %w", err)
	}
	m.evlog = evlog
	m.closers = append(m.closers, evlog.Close)

	// Fan-out: the hub, preloaded with the log's recent events so that desktops resuming
	// after a restart are served from memory; the appender, the node's only way into the log.
	m.Hub = hub.New(hub.Config{Reader: evlog.HubReader(), Logger: lg})
	startSeq, err := evlog.Preload(ctx, m.Hub, preloadEvents)
	if err != nil {
		return fmt.Errorf("event log: %w", err)
	}
	m.View = hub.NewView()
	m.appender, err = evlog.NewAppender(ctx, cbnats.AppenderConfig{Logger: lg})
	if err != nil {
		return fmt.Errorf("event log: %w", err)
	}
	bg, stopBG := context.WithCancel(context.WithoutCancel(ctx))
	appenderDone := make(chan struct{})
	go func() { defer close(appenderDone); _ = m.appender.Run(bg) }()
	go m.Hub.Run(bg)
	m.closers = append(m.closers, func() {
		// After the node has stopped: store what it produced, then stop.
		dctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if err := m.appender.Close(dctx); err != nil {
			held, _ := m.appender.Status()
			lg.Error("event log: events not stored at shutdown", "held", held, "err", err)
		}
		cancel()
		stopBG()
		<-appenderDone
	})

	// Driver and engine.
	drv, err := m.driver(dir)
	if err != nil {
		return err
	}
	states, err := cbnats.OpenStateStore(ctx, nc, "", "engine", 1)
	if err != nil {
		return err
	}
	ecfg := engine.Config{
		Directory:    dir,
		Capabilities: drv.Capabilities(),
		NewCallID:    newCallID,
		Now:          time.Now(),
		DesktopGrace: m.DesktopGrace,
		// Desktops answer the gateway's pings; one silent for this long died without a close.
		HeartbeatTimeout: 3 * cbhttp.DefaultPingInterval,
	}
	if err := checkEventSize(ecfg, nc.MaxPayload()); err != nil {
		return err
	}
	eng, restored, err := restoreEngine(ctx, ecfg, states, evlog, lg.With("component", "engine"))
	if err != nil {
		return fmt.Errorf("engine: %w", err)
	}
	m.Metrics = metrics.New()
	m.Node = node.New(node.Config{Driver: drv, Engine: eng, Log: m.appender, StartSeq: startSeq, Hub: m.Hub, View: m.View,
		Logger: lg.With("component", "node"), OnEvent: m.onEvent, Metrics: m.Metrics,
		State: states, Restored: restored})
	m.Metrics.WatchModel(m.Node)
	m.Metrics.WatchEventLog(m.appender.Status)
	nctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	m.cancel = cancel
	m.nodeErr = make(chan error, 1)
	go func() { m.nodeErr <- m.Node.Run(nctx) }()

	// Gateway.
	secret, err := loadSecret(filepath.Join(m.DataDir, "token.key"))
	if err != nil {
		return err
	}
	var origins []string
	for _, o := range strings.Split(m.AllowedOrigins, ",") {
		if o = strings.TrimSpace(o); o != "" {
			origins = append(origins, o)
		}
	}
	// --- CRM (issue 5): call records, agent states and webhooks from the event log (crm.go).
	m.crm = m.startCRM(store, evlog, lg.With("component", "crm"))
	m.closers = append(m.closers, m.crm.stop) // before the bus and the store close
	// --- end CRM
	hs, err := cbhttp.NewServer(cbhttp.Config{
		Addr: m.HTTPAddr, Store: store, Sessions: store, BcryptCost: m.bcrypt(),
		Hub: m.Hub, Commander: m.Node, Secret: secret,
		AllowedOrigins: origins, Logger: lg.With("component", "http"),
		CRM:     m.crm.httpConfig(store),
		Ready:   readiness(store, nc),
		Metrics: m.Metrics,
	})
	if err != nil {
		return fmt.Errorf("http: %w", err)
	}
	if err := hs.Open(); err != nil {
		return fmt.Errorf("http: %w", err)
	}
	m.HTTP = hs
	if m.demo && !isLoopback(hs.Addr()) {
		return fmt.Errorf("--http %s listens on %s, not on loopback: refusing to serve the demo logins", m.HTTPAddr, hs.Addr())
	}
	return nil
}

func (m *Main) natsConn() (*natsgo.Conn, error) {
	if m.natsSrv != nil {
		nc, err := m.natsSrv.Connect("callbridge")
		if err != nil {
			return nil, fmt.Errorf("connect embedded NATS: %w", err)
		}
		return nc, nil
	}
	nc, err := cbnats.Connect(m.NATSURL, "callbridge")
	if err != nil {
		return nil, fmt.Errorf("connect NATS %s: %w", m.NATSURL, err)
	}
	return nc, nil
}

// driver builds the switch driver named by --pbx.
func (m *Main) driver(dir callbridge.Directory) (callbridge.Driver, error) {
	kind, err := pbxKind(m.PBX)
	if err != nil {
		return nil, err
	}
	switch kind {
	case pbxSim:
		cfg := sim.Config{Directory: dir, CallInterval: m.SimInterval, HonourWrapUp: true}
		if m.newSim != nil {
			return m.newSim(cfg, m.Logger.With("component", "sim")), nil
		}
		return sim.New(cfg, m.Logger.With("component", "sim")), nil
	case pbxAsterisk:
		cfg, err := asterisk.ParseURL(m.PBX)
		if err != nil {
			return nil, fmt.Errorf("--pbx: %w", err)
		}
		cfg.Logger = m.Logger.With("component", "asterisk")
		return asterisk.New(cfg), nil
	default:
		return m.eslDriver(dir)
	}
}

// PrintBanner prints the URL and, on the embedded default, the demo logins.
func (m *Main) PrintBanner() {
	url := "http://" + m.HTTP.Addr()
	if host, port, err := net.SplitHostPort(m.HTTP.Addr()); err == nil && (host == "127.0.0.1" || host == "::1") {
		url = "http://" + net.JoinHostPort("localhost", port)
	}
	fmt.Fprintf(m.stdout, "callbridge %s\n  agent desktop: %s/\n  switch:        %s\n  data:          %s\n", Version, url, redactURL(m.PBX), m.DataDir)
	switch {
	case m.demo:
		fmt.Fprintf(m.stdout, "  demo logins (demo only, loopback only): %s — password \"demo\"\n", strings.Join(provision.DemoLogins(), ", "))
	case m.noDemo != "":
		fmt.Fprintf(m.stdout, "  demo logins:   none, %s\n", m.noDemo)
	}
}

// Wait blocks until ctx ends or the node stops by itself (a fatal driver error).
func (m *Main) Wait(ctx context.Context) error {
	select {
	case <-ctx.Done():
		return nil
	case err := <-m.nodeErr:
		m.nodeErr = nil
		if err != nil {
			return fmt.Errorf("switch: %w", err)
		}
		return nil
	}
}

// Close shuts down in order: stop accepting HTTP, stop the node (driver), then bus and store.
func (m *Main) Close() error {
	var first error
	if m.HTTP != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if err := m.HTTP.Close(ctx); err != nil {
			first = err
		}
		cancel()
	}
	if m.cancel != nil {
		m.cancel()
		if m.nodeErr != nil {
			<-m.nodeErr
			m.nodeErr = nil // a second Close does not wait again
		}
		m.cancel, m.nodeErr = nil, nil // a second Close returns at once
	}
	for i := len(m.closers) - 1; i >= 0; i-- {
		m.closers[i]()
	}
	m.closers = nil
	return first
}

// loadSecret reads the token signing key, creating a random one on first start.
func loadSecret(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err == nil && len(b) >= 32 {
		return b, nil
	}
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("token key: %w", err)
	}
	b = make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return nil, err
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		return nil, fmt.Errorf("token key: %w", err)
	}
	return b, nil
}

// eventHeaderBytes bounds what the event log adds to an event's JSON in one NATS message
// besides its audience: the message id, expected stream and last id headers, and the subject.
const eventHeaderBytes = 1 << 10

// checkEventSize refuses to start when the largest event the engine can produce under its
// limits (engine.MaxEventBytes, with its audience header, engine.MaxAudience) would not fit
// the bus's maximum payload: such an event could not be stored, and the node would hold it
// for ever.
func checkEventSize(cfg engine.Config, maxPayload int64) error {
	agents, bytes := engine.MaxAudience(cfg)
	need := int64(engine.MaxEventBytes(cfg)) + int64(bytes+agents) + eventHeaderBytes
	if need > maxPayload {
		return fmt.Errorf("the largest event under the engine's limits (%d bytes with its headers) does not fit the event bus's maximum payload of %d bytes: raise the NATS server's max_payload or lower the limits", need, maxPayload)
	}
	return nil
}

// preloadEvents is how many of the log's newest events the hub keeps in its windows at
// start (about a minute of a busy site), so that desktops resuming across a restart are
// served without reading the log.
const preloadEvents = 100_000

// newCallID returns a ULID with the call's start time.
func newCallID(t time.Time) callbridge.CallID {
	return callbridge.CallID(ulid.MustNew(ulid.Timestamp(t), rand.Reader).String())
}

// redactURL hides the secret of a switch URL.
func redactURL(s string) string {
	scheme, rest, ok := strings.Cut(s, "://")
	if !ok {
		return s
	}
	at := strings.LastIndex(rest, "@")
	if at < 0 {
		return s
	}
	user, _, _ := strings.Cut(rest[:at], ":")
	return scheme + "://" + user + ":***@" + rest[at+1:]
}

// readiness is /readyz's check of the store and the bus (the switch link is the node's).
func readiness(store interface{ Ping(context.Context) error }, nc *natsgo.Conn) func() error {
	return func() error {
		if !nc.IsConnected() {
			return callbridge.Errorf(callbridge.EUnavailable, "event bus: NATS is %s", nc.Status())
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if err := store.Ping(ctx); err != nil {
			return callbridge.Errorf(callbridge.EUnavailable, "store: %v", err)
		}
		return nil
	}
}
