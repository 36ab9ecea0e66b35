package freeswitch

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/callbridge/callbridge"
	"github.com/callbridge/callbridge/freeswitch/esl"
	"github.com/callbridge/callbridge/internal/driverkit"
)

// Config configures a Driver.
type Config struct {
	// Addr is the event socket, host:port ("127.0.0.1:8021").
	Addr string
	// Password is event_socket.conf.xml's password.
	Password string
	// Format is the event format: esl.FormatPlain (default) or esl.FormatJSON.
	Format string
	// Logger receives the driver's logs. Default: discard.
	Logger *slog.Logger
	// Tap, when set, sees every raw frame ("in"/"out"), for capture.
	Tap func(dir, raw string)
	// Context is the dialplan context of transfer targets and click-to-call numbers
	// (default "default", the recordings' dialplan/default.xml).
	Context string
	// Queues are the mod_callcenter queues listed at every resync, on top of those
	// "callcenter_config queue list" names (usually the provisioned queues).
	Queues []callbridge.QueueName
	// DataVariables, TenantVariable, DNISVariable, UserContexts, BreakReason, IdleReason:
	// see TrackerConfig.
	DataVariables                []string
	TenantVariable, DNISVariable string
	UserContexts                 []string
	BreakReason, IdleReason      string
	// OriginateTimeout is how long the agent's phone rings for a make_call (default 30 s).
	OriginateTimeout time.Duration
	// MinBackoff and MaxBackoff bound the reconnect backoff (esl.Client defaults).
	MinBackoff, MaxBackoff time.Duration
	// KeepAlive is the silence after which a probe is sent (esl default 30 s; negative
	// disables).
	KeepAlive time.Duration
}

// ParseURL parses "esl://:password@host:port" into a Config (a user name, if given, is
// ignored: the event socket has only a password; "esl://password@host:port" is accepted too).
// The port is never assumed: a URL without one is an error that suggests DefaultPort.
// Query parameters: format=plain|json, context=NAME, queues=a@default,b@default,
// vars=ivr_*,crm_id (DataVariables).
func ParseURL(s string) (Config, error) {
	u, err := driverkit.ParseURL(s)
	if err != nil {
		return Config{}, fmt.Errorf("freeswitch: bad URL: %w", err)
	}
	if u.Scheme != "esl" {
		return Config{}, fmt.Errorf("freeswitch: URL scheme %q: want esl://:password@host:8021", u.Scheme)
	}
	if u.Hostname() == "" {
		return Config{}, errors.New("freeswitch: URL has no host")
	}
	if u.User == nil {
		return Config{}, errors.New("freeswitch: URL has no password (esl://:password@host:8021)")
	}
	pw, ok := u.User.Password()
	if !ok {
		pw = u.User.Username()
	}
	if pw == "" {
		return Config{}, errors.New("freeswitch: URL has an empty password")
	}
	if err := esl.CheckCommand("auth " + pw); err != nil || strings.ContainsAny(pw, " \t") {
		return Config{}, errors.New("freeswitch: URL password contains a space, CR, LF or NUL")
	}
	port, err := driverkit.URLPort(u)
	if err != nil {
		return Config{}, fmt.Errorf("freeswitch: %w (the event socket listens on %s by default: esl://:PASSWORD@%s)",
			err, DefaultPort, net.JoinHostPort(u.Hostname(), DefaultPort))
	}
	cfg := Config{Addr: net.JoinHostPort(u.Hostname(), port), Password: pw}
	q := u.Query()
	switch f := q.Get("format"); f {
	case "", esl.FormatPlain, esl.FormatJSON:
		cfg.Format = f
	default:
		return Config{}, fmt.Errorf("freeswitch: URL format %q: want plain or json", f)
	}
	if v := q.Get("context"); v != "" {
		if err := CheckContext("context", v); err != nil {
			return Config{}, fmt.Errorf("freeswitch: URL context: %w", err)
		}
		cfg.Context = v
	}
	for _, v := range splitList(q.Get("queues")) {
		if err := CheckAgentName("queue", v); err != nil {
			return Config{}, fmt.Errorf("freeswitch: URL queues: %w", err)
		}
		cfg.Queues = append(cfg.Queues, callbridge.QueueName(v))
	}
	cfg.DataVariables = splitList(q.Get("vars"))
	return cfg, nil
}

func splitList(s string) []string {
	var out []string
	for _, v := range strings.Split(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	return out
}

// Driver is the FreeSWITCH event socket driver (callbridge.Driver).
type Driver struct {
	cfg Config
	log *slog.Logger

	mu      sync.Mutex // guards the fields below and every use of tr
	tr      *Tracker
	client  *esl.Client
	conn    *esl.Conn // the resynchronised connection (commands go here)
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
	if cfg.Context == "" {
		cfg.Context = DefaultContext
	}
	if cfg.OriginateTimeout <= 0 {
		cfg.OriginateTimeout = 30 * time.Second
	}
	d := &Driver{cfg: cfg, log: cfg.Logger}
	d.tr = NewTracker(TrackerConfig{
		Logger: cfg.Logger, DataVariables: cfg.DataVariables,
		TenantVariable: cfg.TenantVariable, DNISVariable: cfg.DNISVariable,
		UserContexts: cfg.UserContexts, BreakReason: cfg.BreakReason, IdleReason: cfg.IdleReason,
	})
	return d
}

// Run connects to FreeSWITCH and emits normalised events until ctx ends (see
// callbridge.Driver). After every connect it resynchronises (see Resync) and emits a snapshot
// and link_up; when the connection is lost it emits link_down and reconnects with backoff. It
// returns ctx's error, or an error wrapping esl.ErrAuthFailed or esl.ErrAccessDenied when the
// very first connect is refused.
func (d *Driver) Run(ctx context.Context, emit func(callbridge.SwitchEvent)) error {
	if emit == nil {
		return errors.New("freeswitch: Run needs an emit function")
	}
	client := esl.NewClient(esl.ClientConfig{
		Config: esl.Config{
			Addr: d.cfg.Addr, Password: d.cfg.Password, Format: d.cfg.Format,
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
		return errors.New("freeswitch: Run is already running")
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
	if errors.Is(err, esl.ErrAuthFailed) || errors.Is(err, esl.ErrAccessDenied) {
		return fmt.Errorf("freeswitch: %w", err)
	}
	return err
}

func (d *Driver) send(evs ...callbridge.SwitchEvent) { d.emitter.Send(evs...) }

// onEvent runs in the ESL reader goroutine: every event goes through the tracker and its
// results are emitted before the next frame is read, which is what makes Sync work.
func (d *Driver) onEvent(ev *esl.Event) {
	d.mu.Lock()
	evs := d.feed(ev)
	d.mu.Unlock()
	d.send(evs...)
}

// feed runs the tracker on ev; a tracker bug is logged, never allowed to stop the reader.
func (d *Driver) feed(ev *esl.Event) (out []callbridge.SwitchEvent) {
	defer func() {
		if r := recover(); r != nil {
			d.log.Error("freeswitch: tracker panic; event dropped", "event", ev.Name(), "panic", r)
			out = nil
		}
	}()
	return d.tr.Feed(ev)
}

// maxDumps bounds the uuid_dump commands of one resync.
const maxDumps = 256

// onConnect resynchronises after a connect (fs-resync):
//
//  1. "api show channels as json": every leg;
//  2. "api show calls as json": the bridged pairs (uuid, b_uuid);
//  3. "api callcenter_config queue list": the queue names, with Config.Queues;
//  4. per queue, "api callcenter_config queue list agents <queue>" and "… list members
//     <queue>": agents' status, state and current leg; waiting and answered callers;
//  5. per conversation, "api uuid_dump <first leg> json": its variables (tenant, DNIS,
//     attached data).
//
// Events that arrive meanwhile are held by the esl.Client and applied after the snapshot.
func (d *Driver) onConnect(ctx context.Context, c *esl.Conn) error {
	body, err := d.api(ctx, c, "show channels as json")
	if err != nil {
		return err
	}
	channels, err := ParseJSONRows(body)
	if err != nil {
		d.log.Warn("freeswitch: show channels gave no JSON; no call is known", "err", err)
	}
	var calls []Row
	if body, err := d.api(ctx, c, "show calls as json"); err == nil {
		calls, _ = ParseJSONRows(body)
	} else if ctx.Err() != nil || errors.Is(err, esl.ErrClosed) {
		return err
	}
	queues := slices.Clone(d.cfg.Queues)
	if body, err := d.api(ctx, c, "callcenter_config queue list"); err == nil {
		for _, r := range ParseTable(body) {
			if q := callbridge.QueueName(r["name"]); q != "" && !slices.Contains(queues, q) {
				queues = append(queues, q)
			}
		}
	} else if ctx.Err() != nil || errors.Is(err, esl.ErrClosed) {
		return err
	} else {
		d.log.Warn("freeswitch: callcenter_config queue list failed; is mod_callcenter loaded?", "err", err)
	}
	var listings []QueueListing
	for _, q := range queues {
		if CheckAgentName("queue", string(q)) != nil {
			d.log.Warn("freeswitch: queue name cannot be written into a command; skipped", "queue", q)
			continue
		}
		l := QueueListing{Queue: q}
		if body, err := d.api(ctx, c, "callcenter_config queue list agents "+string(q)); err == nil {
			l.Agents = ParseTable(body)
		} else if ctx.Err() != nil || errors.Is(err, esl.ErrClosed) {
			return err
		}
		if body, err := d.api(ctx, c, "callcenter_config queue list members "+string(q)); err == nil {
			l.Members = ParseTable(body)
		} else if ctx.Err() != nil || errors.Is(err, esl.ErrClosed) {
			return err
		}
		listings = append(listings, l)
	}
	dumps := map[string]*esl.Event{}
	for _, root := range firstLegs(channels) {
		if len(dumps) >= maxDumps || CheckUUID("uuid", root) != nil {
			break
		}
		body, err := d.api(ctx, c, "uuid_dump "+root+" json")
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, esl.ErrClosed) {
				return err
			}
			continue
		}
		if ev, err := esl.ParseJSON([]byte(strings.TrimSpace(body))); err == nil {
			dumps[root] = ev
		}
	}
	d.mu.Lock()
	snap := d.tr.Snapshot(channels, calls, listings, dumps)
	d.up, d.conn = true, c
	d.mu.Unlock()
	d.log.Info("freeswitch: resynchronised", "calls", len(snap.Snapshot.Calls), "members", len(snap.Snapshot.Members))
	d.send(snap)
	d.send(callbridge.SwitchEvent{Type: callbridge.SwitchLinkUp, Time: time.Now().UTC()})
	return nil
}

// firstLegs returns, for the legs of a channel listing, the ones no other leg points to
// through call_uuid: the A legs, in listing order.
func firstLegs(rows []Row) []string {
	var out []string
	for _, r := range rows {
		if c := r["call_uuid"]; c == "" || c == r["uuid"] {
			out = append(out, r["uuid"])
		}
	}
	return out
}

// api runs one api command during resync and returns its body; a "-ERR" answer is an error.
func (d *Driver) api(ctx context.Context, c *esl.Conn, cmd string) (string, error) {
	r, err := c.API(ctx, cmd)
	if err != nil {
		return "", fmt.Errorf("freeswitch: resync %q: %w", cmd, err)
	}
	if err := r.Err(); err != nil {
		return "", err
	}
	return r.Text(), nil
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
	d.log.Warn("freeswitch: link down", "reason", down.Reason)
	d.send(down)
}

// Sync sends "api version" and waits for the answer. Events are emitted from the ESL reader
// goroutine before it reads the next frame, and FreeSWITCH answers in order, so when Sync
// returns every event received before the answer has been emitted. Right after link_up the
// events that arrived during the resync may still be on their way to emit; the command goes
// through the esl.Client, which takes commands only once they have been delivered, so Sync
// waits for that too. EUnavailable when the link is down.
func (d *Driver) Sync(ctx context.Context) error {
	var client *esl.Client
	up := func() bool {
		d.mu.Lock()
		defer d.mu.Unlock()
		client = d.client
		return client != nil && d.up
	}
	ping := func(ctx context.Context) error {
		_, err := client.API(ctx, esl.KeepAliveCommand)
		return err
	}
	return driverkit.Sync(ctx, "FreeSWITCH", up, ping, esl.ErrNotConnected, esl.ErrClosed)
}

// do runs one api command on the resynchronised connection and maps its failures to
// callbridge errors: EUnavailable without a connection, ESwitchRejected with FreeSWITCH's
// text for a "-ERR" answer, EInvalid for a line the client refused.
func (d *Driver) do(ctx context.Context, cmd string) (esl.Reply, error) {
	d.mu.Lock()
	conn := d.conn
	d.mu.Unlock()
	if conn == nil {
		return esl.Reply{}, callbridge.Errorf(callbridge.EUnavailable, "not connected to FreeSWITCH")
	}
	r, err := conn.API(ctx, cmd)
	return r, d.mapErr(ctx, cmd, r.Err, err)
}

// doBG runs one bgapi command (see do); it returns once FreeSWITCH accepted the job.
func (d *Driver) doBG(ctx context.Context, cmd string) (*esl.Job, error) {
	d.mu.Lock()
	conn := d.conn
	d.mu.Unlock()
	if conn == nil {
		return nil, callbridge.Errorf(callbridge.EUnavailable, "not connected to FreeSWITCH")
	}
	j, err := conn.BGAPI(ctx, cmd)
	var re *esl.ReplyError
	if errors.As(err, &re) {
		return nil, callbridge.Errorf(callbridge.ESwitchRejected, "FreeSWITCH refused %s: %s", firstWord(cmd), re.Message())
	}
	return j, d.mapErr(ctx, cmd, func() error { return nil }, err)
}

func (d *Driver) mapErr(ctx context.Context, cmd string, replyErr func() error, err error) error {
	name := firstWord(cmd)
	if err != nil {
		return driverkit.CommandErr(ctx, d.log, "freeswitch", "FreeSWITCH", "command", name, err)
	}
	var re *esl.ReplyError
	if errors.As(replyErr(), &re) {
		return driverkit.Rejected("FreeSWITCH", name, re.Message())
	}
	return nil
}

func firstWord(cmd string) string {
	w, _, _ := strings.Cut(cmd, " ")
	return w
}
