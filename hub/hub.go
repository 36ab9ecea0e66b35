// Package hub is a node's fan-out of domain events to its sockets (DESIGN.md §3): the node
// hands each event, once stored in the event log and encoded once, to the Hub, which maps
// audiences — one agent's desktops, a tenant's supervisors — to the local subscribers and
// gives every subscriber the same bytes. It holds no socket, goroutine or timer per
// subscriber: a subscriber is anything with a non-blocking Send.
//
// # Resume
//
// Each audience keeps a bounded window of its most recent events. A subscriber that
// resumes after a sequence inside the window gets the window's later events, then live
// ones, in order, without touching the log. An older position is read from the event log by
// one shared reader goroutine, which serves every waiting subscriber with one read of the
// log (a reconnect storm is one read, not one per desktop); meanwhile live events for that
// subscriber are held, and released after the older ones. A position that cannot be served
// — older than the log keeps, beyond its end (the log was recreated, or another
// cluster's), or too many reads waiting — gets Resync, and the subscriber redraws from a
// snapshot (View) and subscribes again after its sequence.
//
// # Concurrency
//
// Publish is called from one goroutine, in sequence order. Subscribe and Close may be
// called from any goroutine. Audiences are spread over 64 shards, each with its own lock;
// Send runs under the shard's lock and must only queue.
package hub

import (
	"context"
	"errors"
	"hash/maphash"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/callbridge/callbridge"
)

// Defaults of Config.
const (
	DefaultAgentWindow     = 64
	DefaultTenantWindow    = 4096
	DefaultMaxPendingReads = 4096
	DefaultHoldBytes       = 1 << 20
)

// Resync reasons given to Subscriber.Resync.
const (
	// ReasonAgedOut: the events after the position are no longer in the log.
	ReasonAgedOut = "aged_out"
	// ReasonAhead: the position is beyond the log's end; it came from another log (the
	// data directory was wiped, the log recreated, or another cluster).
	ReasonAhead = "ahead"
	// ReasonOverload: too many subscribers are waiting for the log reader, or the events
	// to catch up on are more than a subscriber may be held.
	ReasonOverload = "overload"
	// ReasonUnavailable: the log could not be read.
	ReasonUnavailable = "unavailable"
)

// Errors a Reader returns for positions it cannot serve.
var (
	ErrAgedOut = errors.New("hub: events after that position are no longer in the log")
	ErrAhead   = errors.New("hub: position is beyond the log's last event")
)

// Key names an audience: one agent's desktops (Agent set), or a tenant's tenant-wide
// audience (Agent empty: supervisors and administrators see every event of the tenant).
type Key = callbridge.AgentKey

// Message is one stored event as the hub fans it out.
type Message struct {
	// Seq is the event's sequence in the log; messages are published in increasing Seq.
	Seq    uint64
	Tenant callbridge.TenantID
	// Agents receive the event on their desktops (a call event's audience, an agent
	// event's agent). The tenant-wide audience receives every message of its tenant.
	Agents []callbridge.AgentID
	// Frame is the event as subscribers receive it ({"seq":…,"type":…}). It is shared by
	// every subscriber and must never be modified.
	Frame []byte
}

// Subscriber receives an audience's frames. Send must not block and must not call the Hub
// (it runs under a shard lock); a subscriber that cannot keep up cuts itself off. Resync is
// called, outside any lock, when the subscriber's position cannot be served; the
// subscription has ended by then.
type Subscriber interface {
	Send(seq uint64, frame []byte)
	Resync(reason string)
}

// Reader reads events from the log by sequence, for positions older than a window: fn for
// every message with max(afterSeq, first-1) < Seq <= uptoSeq, in order, where first is the
// oldest sequence the log still holds, which Read returns. ErrAhead says afterSeq is beyond
// the log's end; any other error counts as the log being unavailable.
type Reader interface {
	Read(ctx context.Context, afterSeq, uptoSeq uint64, fn func(Message) error) (first uint64, err error)
}

// Config configures a Hub.
type Config struct {
	// AgentWindow and TenantWindow cap the events kept per agent audience and per tenant
	// audience (defaults 64 and 4096).
	AgentWindow, TenantWindow int
	// Reader serves positions older than a window; nil makes them resync.
	Reader Reader
	// MaxPendingReads caps the subscribers waiting for the reader; more resync at once
	// (default 4096).
	MaxPendingReads int
	// HoldBytes caps what is held for one subscriber while it waits for the reader: live
	// frames, and the frames read for it. Past it the subscriber resyncs (default 1 MiB).
	HoldBytes int
	Logger    *slog.Logger
	// OnSubscribe, when set, is called with every Subscribe's audience and position, before
	// anything is sent (tests and tracing).
	OnSubscribe func(k Key, afterSeq uint64)
}

const nShards = 64

// Hub is a node's fan-out. Create it with New, start its reader with Run, set its
// starting point with Start.
type Hub struct {
	cfg    Config
	log    *slog.Logger
	seed   maphash.Seed
	shards [nShards]shard

	// base: every message after base has been (or will be) published; last: the last
	// published sequence.
	base atomic.Uint64
	last atomic.Uint64
	// announced: a message with this sequence is about to be published (Announce); a
	// snapshot drawn at it may be subscribed after before Publish has run.
	announced atomic.Uint64

	reads   chan *readReq
	pending atomic.Int64
}

type shard struct {
	mu   sync.Mutex
	auds map[Key]*audience
}

// audience is one audience's window and subscribers.
type audience struct {
	win  ring
	from uint64 // the window holds every event of the audience with Seq > from
	subs []*Subscription
}

// New returns a Hub for cfg.
func New(cfg Config) *Hub {
	if cfg.AgentWindow <= 0 {
		cfg.AgentWindow = DefaultAgentWindow
	}
	if cfg.TenantWindow <= 0 {
		cfg.TenantWindow = DefaultTenantWindow
	}
	if cfg.MaxPendingReads <= 0 {
		cfg.MaxPendingReads = DefaultMaxPendingReads
	}
	if cfg.HoldBytes <= 0 {
		cfg.HoldBytes = DefaultHoldBytes
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	h := &Hub{cfg: cfg, log: cfg.Logger.With("component", "hub"), seed: maphash.MakeSeed(),
		reads: make(chan *readReq, cfg.MaxPendingReads)}
	for i := range h.shards {
		h.shards[i].auds = map[Key]*audience{}
	}
	return h
}

// Start sets the hub's starting point: every message after seq will be published (seq is
// the log's last sequence, or the sequence before the first message preloaded with
// Publish). Call it once, before Publish and before any Subscribe.
func (h *Hub) Start(seq uint64) {
	h.base.Store(seq)
	h.last.Store(seq)
}

// Advance records that every message up to seq has been published (the log's last
// sequence may be a message that is not an event). It never moves backwards.
func (h *Hub) Advance(seq uint64) {
	for {
		last := h.last.Load()
		if seq <= last || h.last.CompareAndSwap(last, seq) {
			return
		}
	}
}

// Announce says that the message with sequence seq is stored and about to be published, so
// that a subscriber whose snapshot (View) already reflects it may subscribe after seq before
// Publish has run: it is not taken for a position from another log. The node announces, puts
// the snapshots, then publishes, so that a desktop that saw an event elsewhere never draws a
// snapshot older than it.
func (h *Hub) Announce(seq uint64) {
	for {
		a := h.announced.Load()
		if seq <= a || h.announced.CompareAndSwap(a, seq) {
			return
		}
	}
}

// LastSeq returns the sequence of the last message published (or Start's).
func (h *Hub) LastSeq() uint64 { return h.last.Load() }

func (h *Hub) shard(k Key) *shard { return &h.shards[shardOf(h.seed, k)] }

// shardOf returns the shard index of k.
func shardOf(seed maphash.Seed, k Key) uint64 {
	var m maphash.Hash
	m.SetSeed(seed)
	m.WriteString(string(k.Tenant))
	m.WriteByte(0)
	m.WriteString(string(k.Agent))
	return m.Sum64() % nShards
}

// audience returns k's audience, creating it; the shard is locked.
func (h *Hub) audience(s *shard, k Key) *audience {
	a := s.auds[k]
	if a == nil {
		n := h.cfg.AgentWindow
		if k.Agent == "" {
			n = h.cfg.TenantWindow
		}
		a = &audience{win: ring{cap: n}, from: h.base.Load()}
		s.auds[k] = a
	}
	return a
}

// Publish fans m out to the tenant-wide audience of m.Tenant and to each agent of m.Agents,
// and keeps it in their windows. Messages must come in increasing Seq from one goroutine.
func (h *Hub) Publish(m Message) {
	h.publishTo(Key{Tenant: m.Tenant}, m)
	for i, a := range m.Agents {
		if a == "" || containsBefore(m.Agents, i) {
			continue
		}
		h.publishTo(Key{Tenant: m.Tenant, Agent: a}, m)
	}
	h.last.Store(m.Seq)
}

func containsBefore(as []callbridge.AgentID, i int) bool {
	for _, b := range as[:i] {
		if b == as[i] {
			return true
		}
	}
	return false
}

func (h *Hub) publishTo(k Key, m Message) {
	s := h.shard(k)
	s.mu.Lock()
	a := h.audience(s, k)
	if evicted, ok := a.win.push(entry{seq: m.Seq, frame: m.Frame}); ok {
		a.from = evicted
	}
	ended := false
	for _, sub := range a.subs {
		sub.deliver(m.Seq, m.Frame)
		ended = ended || sub.closed
	}
	if ended {
		a.subs = slices.DeleteFunc(a.subs, func(sub *Subscription) bool { return sub.closed })
	}
	s.mu.Unlock()
}

// Subscription is one subscriber's place in an audience.
type Subscription struct {
	h   *Hub
	key Key
	s   Subscriber

	// Guarded by the shard's lock.
	sent      uint64 // last seq given to Send
	catching  bool   // waiting for the reader: live frames are held
	held      []entry
	heldBytes int
	closed    bool
	resync    string // set when the hub ended the subscription for a resync
}

// deliver sends or holds one frame; the shard is locked.
func (sub *Subscription) deliver(seq uint64, frame []byte) {
	if sub.closed || seq <= sub.sent {
		return
	}
	if sub.catching {
		sub.held = append(sub.held, entry{seq: seq, frame: frame})
		sub.heldBytes += len(frame)
		if sub.heldBytes > sub.h.cfg.HoldBytes {
			sub.end(ReasonOverload)
		}
		return
	}
	sub.sent = seq
	sub.s.Send(seq, frame)
}

// end marks the subscription ended for a resync; the shard is locked and the caller
// removes it from its audience. Resync may not run under the lock, so it runs on a
// goroutine of its own; this is rare (a subscriber that overflowed while catching up).
func (sub *Subscription) end(reason string) {
	if sub.closed {
		return
	}
	sub.closed = true
	sub.resync = reason
	sub.held = nil
	go sub.s.Resync(reason)
}

func (a *audience) remove(sub *Subscription) {
	for i, x := range a.subs {
		if x == sub {
			last := len(a.subs) - 1
			a.subs[i] = a.subs[last]
			a.subs[last] = nil
			a.subs = a.subs[:last]
			return
		}
	}
}

// Subscribe adds s to audience k after sequence afterSeq: s gets every frame of k with a
// greater sequence, in order, then live ones, until Close. afterSeq 0 means from now on.
// When afterSeq cannot be served, s.Resync is called instead (before Subscribe returns, or
// later when the log reader finds out) and the subscription is over.
func (h *Hub) Subscribe(k Key, afterSeq uint64, s Subscriber) *Subscription {
	if h.cfg.OnSubscribe != nil {
		h.cfg.OnSubscribe(k, afterSeq)
	}
	sub := &Subscription{h: h, key: k, s: s}
	sh := h.shard(k)
	sh.mu.Lock()
	last := h.last.Load()
	if afterSeq == 0 {
		afterSeq = last
	}
	if afterSeq > max(last, h.announced.Load()) {
		sub.closed, sub.resync = true, ReasonAhead
		sh.mu.Unlock()
		s.Resync(ReasonAhead)
		return sub
	}
	a := h.audience(sh, k)
	sub.sent = afterSeq
	if afterSeq >= a.from {
		a.win.each(func(e entry) {
			if e.seq > afterSeq {
				sub.sent = e.seq
				s.Send(e.seq, e.frame)
			}
		})
		a.subs = append(a.subs, sub)
		sh.mu.Unlock()
		return sub
	}
	// Older than the window: hold the window and live frames while the reader fetches
	// (afterSeq, from].
	req := &readReq{sub: sub, after: afterSeq, upto: a.from}
	if h.cfg.Reader == nil || h.pending.Load() >= int64(h.cfg.MaxPendingReads) {
		reason := ReasonAgedOut
		if h.cfg.Reader != nil {
			reason = ReasonOverload
		}
		sub.closed, sub.resync = true, reason
		sh.mu.Unlock()
		s.Resync(reason)
		return sub
	}
	sub.catching = true
	a.win.each(func(e entry) {
		sub.held = append(sub.held, e)
		sub.heldBytes += len(e.frame)
	})
	a.subs = append(a.subs, sub)
	h.pending.Add(1)
	select {
	case h.reads <- req:
		sh.mu.Unlock()
	default:
		h.pending.Add(-1)
		a.remove(sub)
		sub.closed, sub.resync, sub.held = true, ReasonOverload, nil
		sh.mu.Unlock()
		s.Resync(ReasonOverload)
	}
	return sub
}

// Close ends the subscription; no Send follows once it returns. Safe to call more than
// once.
func (sub *Subscription) Close() {
	sh := sub.h.shard(sub.key)
	sh.mu.Lock()
	if !sub.closed {
		sub.closed = true
		sub.held = nil
		if a := sh.auds[sub.key]; a != nil {
			a.remove(sub)
		}
	}
	sh.mu.Unlock()
}

// Stats describe the hub for metrics.
type Stats struct {
	Audiences     int // audiences known (windows kept)
	Subscriptions int
	PendingReads  int // subscribers waiting for the log reader
}

// Stats counts the hub's audiences and subscriptions.
func (h *Hub) Stats() Stats {
	var st Stats
	for i := range h.shards {
		s := &h.shards[i]
		s.mu.Lock()
		st.Audiences += len(s.auds)
		for _, a := range s.auds {
			st.Subscriptions += len(a.subs)
		}
		s.mu.Unlock()
	}
	st.PendingReads = int(h.pending.Load())
	return st
}
