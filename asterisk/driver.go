package asterisk

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/callbridge/callbridge"
	"github.com/callbridge/callbridge/asterisk/ami"
	"github.com/callbridge/callbridge/internal/driverkit"
)

// Config configures a Driver.
type Config struct {
	// Addr is the manager interface, host:port ("127.0.0.1:5038").
	Addr string
	// Username and Secret are the manager.conf user (see docs/asterisk.md for the least
	// permissions it needs).
	Username, Secret string
	// Logger receives the driver's logs. Default: discard.
	Logger *slog.Logger
	// Tap, when set, sees every raw AMI frame ("in"/"out"), for capture.
	Tap func(dir, raw string)
	// TransferContext is the dialplan context of BlindTransfer and Atxfer targets, and the
	// context whose Local channels are consultations. Default "transfer-targets".
	TransferContext string
	// OriginateContext returns the dialplan context a make_call's agent leg continues in
	// once the agent answers. Default "outbound-<tenant>" (click-to-call recording).
	OriginateContext func(callbridge.TenantID) string
	// ConsultContexts are further contexts whose Local channels are consultations, for
	// attended transfers started with the phone's own atxfer feature code (Asterisk then uses
	// the transferer's TRANSFER_CONTEXT or its own context).
	ConsultContexts []string
	// TrunkEndpoints names the PJSIP endpoints that are trunks; empty: endpoints whose names
	// are not all digits (see TrackerConfig).
	TrunkEndpoints []string
	// OriginateTimeout is how long the agent's phone rings for a make_call (default 30 s,
	// the click-to-call recording's Timeout: 30000).
	OriginateTimeout time.Duration
	// ThreewayDigits is the features.conf atxferthreeway code sent to the consulting agent's
	// channel for conference_call (default "*3", Asterisk's default).
	ThreewayDigits string
	// DTMFGap is the pause between the digits of ThreewayDigits (default 200 ms, as in the
	// conference-threeway recording).
	DTMFGap time.Duration
	// MinBackoff and MaxBackoff bound the reconnect backoff (ami.Client defaults).
	MinBackoff, MaxBackoff time.Duration
	// KeepAlive is the Ping interval (ami default 15 s; negative disables).
	KeepAlive time.Duration
}

// DefaultPort is the port Asterisk's manager interface listens on by default (manager.conf
// "port = 5038"). An ami:// URL must name its port all the same; ParseURL's error suggests
// this one.
const DefaultPort = "5038"

// ParseURL parses "ami://user:secret@host:port" into a Config. Query parameters:
// transfer_context=NAME and trunks=carrier,other (TrunkEndpoints). Errors name what is wrong:
// the scheme, a missing host, port (never assumed) or user, a port outside 1-65535, CR/LF/NUL
// in the user or secret, a bad transfer_context.
func ParseURL(s string) (Config, error) {
	u, err := driverkit.ParseURL(s)
	if err != nil {
		return Config{}, fmt.Errorf("asterisk: bad URL: %w", err)
	}
	if u.Scheme != "ami" {
		return Config{}, fmt.Errorf("asterisk: URL scheme %q: want ami://user:secret@host:port", u.Scheme)
	}
	if u.Hostname() == "" {
		return Config{}, errors.New("asterisk: URL has no host")
	}
	if u.User == nil || u.User.Username() == "" {
		return Config{}, errors.New("asterisk: URL has no user (ami://user:secret@host:port)")
	}
	secret, _ := u.User.Password()
	port, err := driverkit.URLPort(u)
	if err != nil {
		return Config{}, fmt.Errorf("asterisk: %w (the manager interface listens on %s by default: ami://USER:SECRET@%s)",
			err, DefaultPort, net.JoinHostPort(u.Hostname(), DefaultPort))
	}
	cfg := Config{
		Addr:     net.JoinHostPort(u.Hostname(), port),
		Username: u.User.Username(),
		Secret:   secret,
	}
	for _, f := range []struct{ name, v string }{{"user", cfg.Username}, {"secret", cfg.Secret}} {
		if err := callbridge.CheckSwitchValue(f.name, f.v); err != nil {
			return Config{}, fmt.Errorf("asterisk: URL %s: %w", f.name, err)
		}
	}
	q := u.Query()
	if v := q.Get("transfer_context"); v != "" {
		if err := checkContext(v); err != nil {
			return Config{}, fmt.Errorf("asterisk: URL transfer_context: %w", err)
		}
		cfg.TransferContext = v
	}
	if v := q.Get("trunks"); v != "" {
		for _, t := range strings.Split(v, ",") {
			if t = strings.TrimSpace(t); t != "" {
				cfg.TrunkEndpoints = append(cfg.TrunkEndpoints, t)
			}
		}
	}
	return cfg, nil
}

// Driver is the Asterisk AMI driver (callbridge.Driver).
type Driver struct {
	cfg Config
	log *slog.Logger

	mu      sync.Mutex // guards the fields below and every use of tr
	tr      *Tracker
	client  *ami.Client
	conn    *ami.Conn // the resynchronised connection (commands go here)
	running bool
	up      bool

	emitter driverkit.Emitter
}

var _ callbridge.Driver = (*Driver)(nil)

// New returns a Driver for cfg; Run connects it.
func New(cfg Config) *Driver {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.TransferContext == "" {
		cfg.TransferContext = DefaultTransferContext
	}
	if cfg.OriginateContext == nil {
		cfg.OriginateContext = func(t callbridge.TenantID) string { return "outbound-" + string(t) }
	}
	if cfg.OriginateTimeout <= 0 {
		cfg.OriginateTimeout = 30 * time.Second
	}
	if cfg.ThreewayDigits == "" {
		cfg.ThreewayDigits = "*3"
	}
	if cfg.DTMFGap <= 0 {
		cfg.DTMFGap = 200 * time.Millisecond
	}
	d := &Driver{cfg: cfg, log: cfg.Logger}
	d.tr = NewTracker(TrackerConfig{
		Logger:           cfg.Logger,
		TransferContexts: append([]string{cfg.TransferContext}, cfg.ConsultContexts...),
		TrunkEndpoints:   cfg.TrunkEndpoints,
	})
	return d
}

// Run connects to Asterisk and emits normalised events until ctx ends (see callbridge.Driver).
// After every login it resynchronises (CoreShowChannels, QueueStatus, DeviceStateList) and
// emits a snapshot, the device states and link_up; when the connection is lost it emits
// link_down and reconnects with backoff. It returns ctx's error, or an error wrapping
// ami.ErrAuthFailed when the very first login is refused.
func (d *Driver) Run(ctx context.Context, emit func(callbridge.SwitchEvent)) error {
	if emit == nil {
		return errors.New("asterisk: Run needs an emit function")
	}
	if d.cfg.Addr == "" {
		return errors.New("asterisk: no manager address (ami://user:secret@host:5038)")
	}
	client := ami.NewClient(ami.ClientConfig{
		Config: ami.Config{
			Addr: d.cfg.Addr, Username: d.cfg.Username, Secret: d.cfg.Secret,
			Logger: d.log, Tap: d.cfg.Tap, OnEvent: d.onEvent, KeepAlive: d.cfg.KeepAlive,
		},
		MinBackoff:   d.cfg.MinBackoff,
		MaxBackoff:   d.cfg.MaxBackoff,
		OnConnect:    d.onConnect,
		OnDisconnect: d.onDisconnect,
	})
	d.mu.Lock()
	if d.running {
		d.mu.Unlock()
		return errors.New("asterisk: Run is already running")
	}
	d.running, d.client = true, client
	d.mu.Unlock()
	d.emitter.Set(emit)
	defer func() {
		d.mu.Lock()
		d.running, d.client, d.conn, d.up = false, nil, nil, false
		d.mu.Unlock()
	}()
	err := client.Run(ctx)
	if errors.Is(err, ami.ErrAuthFailed) {
		return fmt.Errorf("asterisk: %w", err)
	}
	return err
}

func (d *Driver) send(evs ...callbridge.SwitchEvent) { d.emitter.Send(evs...) }

// onEvent runs in the AMI reader goroutine: every event goes through the tracker and its
// results are emitted before the next frame is read, which is what makes Sync work.
func (d *Driver) onEvent(m ami.Message) {
	d.mu.Lock()
	evs := d.feed(m)
	d.mu.Unlock()
	d.send(evs...)
}

// feed runs the tracker on m; a tracker bug is logged, never allowed to stop the reader.
func (d *Driver) feed(m ami.Message) (out []callbridge.SwitchEvent) {
	defer func() {
		if r := recover(); r != nil {
			d.log.Error("asterisk: tracker panic; event dropped", "event", m.Event(), "panic", r)
			out = nil
		}
	}()
	return d.tr.Feed(m)
}

// onConnect resynchronises after a login. Asterisk 22 answers CoreShowChannels and
// QueueStatus with event lists (resync recording); DeviceStateList gives the telsets' states.
func (d *Driver) onConnect(ctx context.Context, c *ami.Conn) error {
	chans, err := list(ctx, c, "CoreShowChannels")
	if err != nil {
		return err
	}
	queues, err := list(ctx, c, "QueueStatus")
	if err != nil {
		return err
	}
	devices, err := list(ctx, c, "DeviceStateList")
	if err != nil {
		d.log.Warn("asterisk: DeviceStateList failed; device states arrive with the next changes", "err", err)
	}
	d.mu.Lock()
	snap := d.tr.Snapshot(chans, queues, queues)
	var evs []callbridge.SwitchEvent
	for _, m := range devices {
		evs = append(evs, d.feed(m)...)
	}
	d.up, d.conn = true, c
	d.mu.Unlock()
	d.log.Info("asterisk: resynchronised", "calls", len(snap.Snapshot.Calls), "members", len(snap.Snapshot.Members))
	d.send(snap)
	d.send(evs...)
	d.send(callbridge.SwitchEvent{Type: callbridge.SwitchLinkUp, Time: time.Now().UTC()})
	return nil
}

func list(ctx context.Context, c *ami.Conn, name string) ([]ami.Message, error) {
	resp, err := c.Action(ctx, ami.Action{Name: name})
	if err != nil {
		return nil, fmt.Errorf("asterisk: resync %s: %w", name, err)
	}
	if err := resp.Err(); err != nil {
		return nil, fmt.Errorf("asterisk: resync %s: %w", name, err)
	}
	return resp.Items, nil
}

func (d *Driver) onDisconnect(err error) {
	d.mu.Lock()
	wasUp := d.up
	d.up, d.conn = false, nil
	d.mu.Unlock()
	if !wasUp {
		return
	}
	down := driverkit.LinkDown(err)
	d.log.Warn("asterisk: link down", "reason", down.Reason)
	d.send(down)
}

// Sync sends a Ping and waits for the answer. Events are emitted from the AMI reader
// goroutine before it reads the next frame, so when Sync returns every event received before
// the Pong has been emitted. Right after link_up the events that arrived during the resync
// may still be on their way to emit; the Ping goes through the ami.Client, which accepts
// actions only once they have been delivered, so Sync waits for that too. EUnavailable when
// the link is down.
func (d *Driver) Sync(ctx context.Context) error {
	var client *ami.Client
	up := func() bool {
		d.mu.Lock()
		defer d.mu.Unlock()
		client = d.client
		return client != nil && d.up
	}
	ping := func(ctx context.Context) error {
		_, err := client.Action(ctx, ami.Action{Name: "Ping"})
		return err
	}
	return driverkit.Sync(ctx, "Asterisk", up, ping, ami.ErrNotConnected, ami.ErrClosed)
}

// do runs one action on the resynchronised connection (usable from link_up on) and maps its
// failures to callbridge errors: EUnavailable when there is no connection, ESwitchRejected with Asterisk's message for "Response: Error", EInvalid for
// a value the AMI encoder refused.
func (d *Driver) do(ctx context.Context, a ami.Action) (ami.Response, error) {
	d.mu.Lock()
	conn := d.conn
	d.mu.Unlock()
	if conn == nil {
		return ami.Response{}, callbridge.Errorf(callbridge.EUnavailable, "not connected to Asterisk")
	}
	resp, err := conn.Action(ctx, a)
	if err != nil {
		return resp, driverkit.CommandErr(ctx, d.log, "asterisk", "Asterisk", "action", a.Name, err)
	}
	if resp.Err() != nil {
		return resp, driverkit.Rejected("Asterisk", a.Name, resp.Get("Message"))
	}
	return resp, nil
}
