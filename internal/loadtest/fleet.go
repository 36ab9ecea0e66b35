package loadtest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
)

// Agent is one desktop's user: its user name and the device its calls ring on.
type Agent struct {
	Username string
	Device   string
}

// FleetConfig configures a Fleet.
type FleetConfig struct {
	Mode Mode
	// URL is the server's base URL, http://host:port.
	URL string
	// Source is the local address every connection of the fleet is made from (an address
	// on 127.0.0.0/8: each holds its own range of ephemeral ports); "" lets the kernel
	// choose.
	Source   string
	Agents   []Agent
	Password string
	// LoginParallel bounds the logins in flight (default 8); DialParallel the first
	// connections in flight (default 128). Reconnections after a drop are not bounded:
	// every desktop follows the SDK's backoff, as a storm of browsers would.
	LoginParallel, DialParallel int
	Logger                      *slog.Logger
}

// Fleet is a load client's desktops.
type Fleet struct {
	cfg   FleetConfig
	log   *slog.Logger
	login *http.Client
	ws    *http.Client
	wsURL string
	desks []*desk

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	dials  chan struct{} // the first dials' semaphore

	loggedIn                              atomic.Int64 // desktops with a token (Login)
	up                                    atomic.Int64
	messages, events, snapshots, dialErrs atomic.Uint64
	refreshes, wrong                      atomic.Uint64
	measuring                             atomic.Bool
	winMsgs, winPops, winBytes            atomic.Uint64
	mu                                    sync.Mutex
	resyncs, closes                       map[string]uint64
	wrongEx                               []string
	firstDial                             string
	winStart                              time.Time
	winLen                                time.Duration
	lat                                   []int64
}

// desk is one desktop. Its goroutine owns token, refresh, lastSeq, fresh and calls.
type desk struct {
	f              *Fleet
	agent          Agent
	token, refresh string
	hasToken       bool // logged in (set by Login, read-only afterwards)
	lastSeq        uint64
	fresh          bool            // reconnect without after_seq (after a slow-consumer close)
	calls          map[string]bool // calls its device has been on
	ended          atomic.Bool     // the server ended its session (4002)

	isUp   atomic.Bool
	upAt   atomic.Int64 // Unix ns of the last time a socket of it got its first message
	downAt atomic.Int64 // Unix ns of the last time its socket ended

	seqMu sync.Mutex
	seqs  []uint64 // event seqs received, in order of receipt
}

// NewFleet returns the fleet of cfg; nothing is opened yet.
func NewFleet(cfg FleetConfig) (*Fleet, error) {
	if cfg.LoginParallel <= 0 {
		cfg.LoginParallel = 8
	}
	if cfg.DialParallel <= 0 {
		cfg.DialParallel = 128
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	u, err := url.Parse(cfg.URL)
	if err != nil || u.Scheme != "http" || u.Host == "" {
		return nil, fmt.Errorf("loadtest: URL %q: want http://host:port", cfg.URL)
	}
	d := &net.Dialer{Timeout: 30 * time.Second}
	if cfg.Source != "" {
		ip := net.ParseIP(cfg.Source)
		if ip == nil {
			return nil, fmt.Errorf("loadtest: source address %q is not an IP address", cfg.Source)
		}
		d.LocalAddr = &net.TCPAddr{IP: ip}
	}
	f := &Fleet{
		cfg: cfg, log: cfg.Logger,
		login: &http.Client{Timeout: time.Minute, Transport: &http.Transport{
			DialContext: d.DialContext, MaxIdleConnsPerHost: cfg.LoginParallel, Proxy: nil,
		}},
		ws:      &http.Client{Transport: &http.Transport{DialContext: d.DialContext, Proxy: nil}},
		wsURL:   "ws://" + u.Host + "/v1/ws",
		dials:   make(chan struct{}, cfg.DialParallel),
		resyncs: map[string]uint64{}, closes: map[string]uint64{},
	}
	f.ctx, f.cancel = context.WithCancel(context.Background())
	for _, a := range cfg.Agents {
		f.desks = append(f.desks, &desk{f: f, agent: a, calls: map[string]bool{}})
	}
	return f, nil
}

// tokens is the part of a login or refresh answer a desktop needs.
type tokens struct {
	Token        string `json:"token"`
	RefreshToken string `json:"refresh_token"`
}

// Login logs every agent in, LoginParallel at a time, retrying an answer of 503 or 429
// after its Retry-After (at most 20 times). It returns how many succeeded and the first
// error.
func (f *Fleet) Login(ctx context.Context) (done int, firstErr error) {
	var next atomic.Int64
	var ok atomic.Int64
	var mu sync.Mutex
	var wg sync.WaitGroup
	for range f.cfg.LoginParallel {
		wg.Go(func() {
			for i := int(next.Add(1) - 1); i < len(f.desks); i = int(next.Add(1) - 1) {
				d := f.desks[i]
				body, _ := json.Marshal(map[string]string{"username": d.agent.Username, "password": f.cfg.Password})
				t, err := f.post(ctx, "/v1/login", body)
				if err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = fmt.Errorf("login %s: %w", d.agent.Username, err)
					}
					mu.Unlock()
					continue
				}
				d.token, d.refresh = t.Token, t.RefreshToken
				d.hasToken = true
				ok.Add(1)
			}
		})
	}
	wg.Wait()
	f.loggedIn.Store(ok.Load())
	return int(ok.Load()), firstErr
}

// post posts body to path and decodes the tokens of a 200 answer, retrying 429 and 503.
func (f *Fleet) post(ctx context.Context, path string, body []byte) (tokens, error) {
	var t tokens
	for attempt := 0; ; attempt++ {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, f.cfg.URL+path, bytes.NewReader(body))
		if err != nil {
			return t, err
		}
		req.Header.Set("Content-Type", "application/json")
		resp, err := f.login.Do(req)
		if err != nil {
			return t, err
		}
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		resp.Body.Close()
		switch {
		case resp.StatusCode == http.StatusOK:
			if err := json.Unmarshal(b, &t); err != nil || t.Token == "" {
				return t, fmt.Errorf("%s: no token in %q", path, b)
			}
			return t, nil
		case (resp.StatusCode == http.StatusServiceUnavailable || resp.StatusCode == http.StatusTooManyRequests) && attempt < 20:
			wait := time.Second
			if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s > 0 {
				wait = time.Duration(s) * time.Second
			}
			select {
			case <-ctx.Done():
				return t, ctx.Err()
			case <-time.After(wait):
			}
		default:
			return t, fmt.Errorf("%s: %s %s", path, resp.Status, bytes.TrimSpace(b))
		}
	}
}

// Connect starts every logged-in desktop (DialParallel first connections at a time) and
// waits until all are up — each has received its first message — or timeout passes. It
// returns how many are up.
func (f *Fleet) Connect(timeout time.Duration) int {
	for _, d := range f.desks {
		if d.hasToken {
			f.wg.Go(d.run)
		}
	}
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) && f.up.Load() < f.loggedIn.Load() {
		time.Sleep(20 * time.Millisecond) // polling a counter in the client process
	}
	return int(f.up.Load())
}

// WaitUp waits until every desktop is up again, and, when all is set, has dropped after
// since (Unix ns) and come back, or timeout passes. It returns the desktops up, those that
// dropped after since, and the last time one of those came up.
func (f *Fleet) WaitUp(since int64, all bool, timeout time.Duration) (up, dropped int, lastUp int64) {
	deadline := time.Now().Add(timeout)
	for {
		up, dropped, lastUp = 0, 0, 0
		ready := true
		for _, d := range f.desks {
			if !d.hasToken || d.ended.Load() {
				continue
			}
			isUp := d.isUp.Load()
			drop := d.downAt.Load() > since
			if drop {
				dropped++
				if isUp {
					lastUp = max(lastUp, d.upAt.Load())
				}
			}
			if isUp {
				up++
			}
			if !isUp || (all && !drop) {
				ready = false
			}
		}
		if ready || !time.Now().Before(deadline) {
			return up, dropped, lastUp
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Close ends every desktop.
func (f *Fleet) Close() {
	f.cancel()
	f.wg.Wait()
}

// Measure starts (on) or ends a measurement window.
func (f *Fleet) Measure(on bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if on {
		f.winStart = time.Now()
		f.winLen = 0
		f.lat = f.lat[:0]
		f.winMsgs.Store(0)
		f.winPops.Store(0)
		f.winBytes.Store(0)
		f.measuring.Store(true)
		return
	}
	if f.measuring.Swap(false) {
		f.winLen = time.Since(f.winStart)
	}
}

// Stats returns the fleet's counters and its last window.
func (f *Fleet) Stats() *Stats {
	f.mu.Lock()
	defer f.mu.Unlock()
	win := f.winLen
	if f.measuring.Load() {
		win = time.Since(f.winStart)
	}
	return &Stats{
		Desktops: len(f.desks), Up: int(f.up.Load()),
		Messages: f.messages.Load(), Events: f.events.Load(), Snapshots: f.snapshots.Load(),
		Resyncs: clone(f.resyncs), Closes: clone(f.closes),
		DialErrors: f.dialErrs.Load(), FirstDial: f.firstDial, Refreshes: f.refreshes.Load(),
		Wrong: f.wrong.Load(), WrongExamples: slices.Clone(f.wrongEx),
		WindowMS: win.Milliseconds(), WinMsgs: f.winMsgs.Load(), WinPops: f.winPops.Load(),
		WinBytes: f.winBytes.Load(), PopLatUS: slices.Clone(f.lat),
	}
}

func clone(m map[string]uint64) map[string]uint64 {
	out := make(map[string]uint64, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// Seqs counts, per agent, the events received with from < seq <= to.
func (f *Fleet) Seqs(from, to uint64) map[string]SeqCount {
	out := make(map[string]SeqCount, len(f.desks))
	for _, d := range f.desks {
		d.seqMu.Lock()
		var in []uint64
		for _, s := range d.seqs {
			if s > from && s <= to {
				in = append(in, s)
			}
		}
		d.seqMu.Unlock()
		slices.Sort(in)
		c := SeqCount{N: len(in)}
		for i, s := range in {
			c.Sum += s
			if i > 0 && in[i-1] == s {
				c.Dups++
			}
		}
		out[d.agent.Username] = c
	}
	return out
}

// SeqList returns the seqs agent received with from < seq <= to, in order of receipt.
func (f *Fleet) SeqList(agent string, from, to uint64) []uint64 {
	var out []uint64
	for _, d := range f.desks {
		if d.agent.Username != agent {
			continue
		}
		d.seqMu.Lock()
		for _, s := range d.seqs {
			if s > from && s <= to {
				out = append(out, s)
			}
		}
		d.seqMu.Unlock()
	}
	return out
}

func (f *Fleet) count(m map[string]uint64, key string) {
	f.mu.Lock()
	m[key]++
	f.mu.Unlock()
}

// run is one desktop's life: connect, read until the socket ends, reconnect as the SDK
// does (backoff from 500 ms doubling to 15 s, ±25 %; at once with a refreshed token after
// 4001; afresh after 4008; never after 4002), until the fleet closes.
func (d *desk) run() {
	f := d.f
	first := true
	attempt := 0
	for f.ctx.Err() == nil {
		if first {
			select {
			case f.dials <- struct{}{}:
			case <-f.ctx.Done():
				return
			}
		}
		conn, err := d.dial()
		if first {
			<-f.dials
			first = false
		}
		if err != nil {
			if f.ctx.Err() != nil {
				return
			}
			f.dialErrs.Add(1)
			f.mu.Lock()
			if f.firstDial == "" {
				f.firstDial = fmt.Sprintf("%s: %v", d.agent.Username, err)
			}
			f.mu.Unlock()
			if strings.Contains(err.Error(), "401") && d.refreshToken() {
				continue
			}
			d.sleep(attempt)
			attempt++
			continue
		}
		code, gotAny := d.read(conn)
		conn.CloseNow()
		if d.isUp.Swap(false) {
			f.up.Add(-1)
		}
		d.downAt.Store(time.Now().UnixNano())
		if f.ctx.Err() != nil {
			return
		}
		f.count(f.closes, strconv.Itoa(code))
		if gotAny {
			attempt = 0
		}
		switch code {
		case 4002: // session ended: sign in again, which a load client does not do
			d.ended.Store(true)
			return
		case 4001: // token expired: refresh and reconnect at once
			if d.refreshToken() {
				continue
			}
		case 4008: // slow consumer: start again from a snapshot
			d.fresh = true
		}
		d.sleep(attempt)
		attempt++
	}
}

func (d *desk) sleep(attempt int) {
	base := min(15*time.Second, 500*time.Millisecond<<min(attempt, 5))
	delay := time.Duration(float64(base) * (0.75 + 0.5*rand.Float64()))
	select {
	case <-d.f.ctx.Done():
	case <-time.After(delay):
	}
}

func (d *desk) refreshToken() bool {
	if d.f.cfg.Mode != ModeCallbridge || d.refresh == "" {
		return false
	}
	body, _ := json.Marshal(map[string]string{"refresh_token": d.refresh})
	t, err := d.f.post(d.f.ctx, "/v1/refresh", body)
	if err != nil {
		return false
	}
	d.f.refreshes.Add(1)
	d.token, d.refresh = t.Token, t.RefreshToken
	return true
}

// dial opens the desktop's socket: resuming after its last seq in callbridge mode, and
// sends a ping, so that a socket that resumed with nothing to catch up on still gets a
// message (the reply) that marks it up.
func (d *desk) dial() (*websocket.Conn, error) {
	u := d.f.wsURL + "?access_token=" + url.QueryEscape(d.token)
	if d.f.cfg.Mode == ModeCallbridge && d.lastSeq > 0 && !d.fresh {
		u += "&after_seq=" + strconv.FormatUint(d.lastSeq, 10)
	}
	ctx, cancel := context.WithTimeout(d.f.ctx, time.Minute)
	defer cancel()
	c, resp, err := websocket.Dial(ctx, u, &websocket.DialOptions{HTTPClient: d.f.ws})
	if err != nil {
		if resp != nil {
			return nil, fmt.Errorf("%d %w", resp.StatusCode, err)
		}
		return nil, err
	}
	c.SetReadLimit(1 << 20)
	d.fresh = false
	if err := c.Write(ctx, websocket.MessageText, []byte(`{"id":"up","cmd":"ping"}`)); err != nil {
		c.CloseNow()
		return nil, err
	}
	return c, nil
}

// message is what a desktop reads of a server message.
type message struct {
	Seq    uint64          `json:"seq"`
	Type   string          `json:"type"`
	Time   string          `json:"time"`
	Re     *string         `json:"re"`
	Reason string          `json:"reason"`
	Data   json.RawMessage `json:"data"`
}

// eventData is what a desktop reads of an event's data.
type eventData struct {
	CallID      string `json:"call_id"`
	Agent       string `json:"agent"`
	Device      string `json:"device"`
	Connections []struct {
		Device string `json:"device"`
	} `json:"connections"`
}

// read reads the socket until it ends and returns the close code (0 when it ended without
// a close frame) and whether any message came.
func (d *desk) read(c *websocket.Conn) (code int, gotAny bool) {
	f := d.f
	for {
		_, b, err := c.Read(f.ctx)
		if err != nil {
			if st := websocket.CloseStatus(err); st >= 0 {
				return int(st), gotAny
			}
			return 0, gotAny
		}
		now := time.Now()
		if !gotAny {
			gotAny = true
			d.upAt.Store(now.UnixNano())
			if !d.isUp.Swap(true) {
				f.up.Add(1)
			}
		}
		f.messages.Add(1)
		measuring := f.measuring.Load()
		if measuring {
			f.winMsgs.Add(1)
			f.winBytes.Add(uint64(len(b)))
		}
		var m message
		if err := json.Unmarshal(b, &m); err != nil {
			f.wrongEvent(d, "not JSON: "+string(b))
			continue
		}
		switch {
		case m.Re != nil:
			continue // a reply
		case m.Type == "snapshot":
			f.snapshots.Add(1)
			d.lastSeq = max(d.lastSeq, m.Seq)
			continue
		case m.Type == "resync":
			f.count(f.resyncs, m.Reason)
			d.lastSeq = m.Seq // the events after it follow
			continue
		case m.Seq == 0:
			f.wrongEvent(d, "no seq: "+string(b))
			continue
		}
		f.events.Add(1)
		d.lastSeq = max(d.lastSeq, m.Seq)
		d.seqMu.Lock()
		d.seqs = append(d.seqs, m.Seq)
		d.seqMu.Unlock()
		var ev eventData
		if err := json.Unmarshal(m.Data, &ev); err != nil {
			f.wrongEvent(d, "bad data: "+string(b))
			continue
		}
		if !d.mine(m.Type, ev) {
			f.wrongEvent(d, string(b))
			continue
		}
		if measuring && m.Type == "call.delivered" && ev.Agent == d.agent.Username && ev.Device == d.agent.Device {
			f.winPops.Add(1)
			if t, err := time.Parse(time.RFC3339Nano, m.Time); err == nil {
				f.mu.Lock()
				f.lat = append(f.lat, now.Sub(t).Microseconds())
				f.mu.Unlock()
			}
		}
	}
}

// mine says whether an event belongs to the desktop's agent: an agent event about the
// agent, or a call event about its device or a call its device is or was on (call.cleared
// names no parties left).
func (d *desk) mine(typ string, ev eventData) bool {
	if strings.HasPrefix(typ, "agent.") {
		return ev.Agent == d.agent.Username
	}
	ok := ev.Device == d.agent.Device
	for _, c := range ev.Connections {
		ok = ok || c.Device == d.agent.Device
	}
	if ok && ev.CallID != "" {
		d.calls[ev.CallID] = true
	}
	return ok || d.calls[ev.CallID]
}

func (f *Fleet) wrongEvent(d *desk, what string) {
	f.wrong.Add(1)
	f.mu.Lock()
	if len(f.wrongEx) < 5 {
		if len(what) > 400 {
			what = what[:400] + "…"
		}
		f.wrongEx = append(f.wrongEx, d.agent.Username+": "+what)
	}
	f.mu.Unlock()
}

// Serve runs the command loop of a load client: one Command per line of in, one Reply per
// line of out, until quit or the end of in. cpu returns the process's CPU seconds so far.
func (f *Fleet) Serve(in io.Reader, out io.Writer, cpu func() float64) error {
	dec := json.NewDecoder(in)
	enc := json.NewEncoder(out)
	defer f.Close()
	for {
		var c Command
		if err := dec.Decode(&c); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return fmt.Errorf("loadtest: command: %w", err)
		}
		var r Reply
		start := time.Now()
		switch c.Cmd {
		case "login":
			n, err := f.Login(f.ctx)
			r.Done, r.Failed = n, len(f.desks)-n
			if err != nil {
				r.First = err.Error()
			}
		case "connect":
			r.Done = f.Connect(time.Duration(c.TimeoutMS) * time.Millisecond)
			r.Failed = int(f.loggedIn.Load()) - r.Done
			if st := f.Stats(); st.FirstDial != "" {
				r.First = st.FirstDial
			}
		case "measure":
			f.Measure(c.On)
		case "stats":
			r.Stats = f.Stats()
			r.Stats.ClientCPU = cpu()
		case "wait_up":
			up, dropped, last := f.WaitUp(c.SinceNS, c.On, time.Duration(c.TimeoutMS)*time.Millisecond)
			r.Done, r.Dropped, r.LastUpNS = up, dropped, last
			r.Failed = int(f.loggedIn.Load()) - up
		case "seqs":
			r.Seqs = f.Seqs(c.From, c.To)
		case "seqlist":
			r.List = f.SeqList(c.Agent, c.From, c.To)
		case "quit":
			return enc.Encode(Reply{})
		default:
			r.Err = fmt.Sprintf("unknown command %q", c.Cmd)
		}
		r.MS = time.Since(start).Milliseconds()
		if err := enc.Encode(r); err != nil {
			return err
		}
	}
}
