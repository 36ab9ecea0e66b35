package nats

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/callbridge/callbridge"
)

// GapReason says why a subscription could not start where it was asked to.
type GapReason string

// Gap reasons.
const (
	// GapAgedOut: events after AfterSeq were deleted (older than MaxAge); delivery starts at
	// the oldest retained event. The subscriber missed an unknown number of events and should
	// redraw from a snapshot.
	GapAgedOut GapReason = "aged_out"
	// GapAhead: AfterSeq is beyond the newest event, so it came from another log (the data
	// directory was wiped, or another cluster); delivery starts with the next new event. The
	// subscriber's state is from a different history and should be redrawn from a snapshot.
	GapAhead GapReason = "ahead"
)

// Gap describes a subscription that could not deliver every event after AfterSeq.
type Gap struct {
	Reason GapReason
	// AfterSeq is the sequence the subscriber asked to resume after.
	AfterSeq uint64
	// StartSeq is the stream sequence delivery starts at instead of AfterSeq+1.
	StartSeq uint64
}

// SubscribeOptions says where a subscription starts; see SubscribeWith.
type SubscribeOptions struct {
	// AfterSeq resumes after this stream sequence: the last Seq the subscriber saw, or the
	// Seq of the snapshot it drew from. 0 means "from now on": only events appended after the
	// subscription starts.
	AfterSeq uint64
	// FromStart delivers every retained event first (up to MaxAge old), ignoring AfterSeq.
	// Meant for rebuilding state from the log and for tests, not for desktops.
	FromStart bool
	// OnGap, when set, is called once with the Gap, on the delivery goroutine, before the
	// first event, when the subscription cannot start at AfterSeq+1 (see Gap). Without it a
	// gap is only logged and reported by Subscription.Gap.
	OnGap func(Gap)
}

// Subscribe implements callbridge.EventLog: SubscribeWith with opts{AfterSeq: afterSeq}.
// NOTE afterSeq 0 means "only events after now", not "all of history"; see SubscribeWith.
func (l *EventLog) Subscribe(ctx context.Context, filter callbridge.Filter, afterSeq uint64, fn func(callbridge.WireEvent)) (callbridge.Subscription, error) {
	s, err := l.SubscribeWith(ctx, filter, SubscribeOptions{AfterSeq: afterSeq}, fn)
	if err != nil {
		return nil, err
	}
	return s, nil
}

// SubscribeWith delivers to fn, in stream order, every event for filter whose stream sequence
// is greater than opts.AfterSeq, then live events as they are appended, until ctx ends, Stop
// is called, the EventLog is closed, or its connection closes.
//
// Filter: with Agent set, the agent's state events and the copies of their calls
// (cb.<t>.agent.<a>.>); with Agent empty, the whole tenant: every call event once and every
// agent's state events (cb.<t>.call.> and cb.<t>.agent.*.state). Tenant and Agent must pass
// callbridge.ValidToken, else the error is an EInvalid *callbridge.Error.
//
// Sequences: WireEvent.Seq is the JetStream stream sequence, shared by every subscriber of
// the log and increasing, with holes (a filter skips others' events). A desktop resumes with
// the last Seq it saw. AfterSeq 0 means "from now on" (events appended after SubscribeWith
// reads the log's end), so that a fresh desktop, which draws itself from a snapshot, is not
// sent days of history: take the snapshot at LastSeq and subscribe with AfterSeq = that
// sequence, which is never 0 once the log is open (see OpenedMarkerSubject). When AfterSeq is
// older than the retained history, or newer than the log's last event, delivery starts at
// the oldest retained event (GapAgedOut) or with the next new one (GapAhead), and the Gap is
// reported to opts.OnGap and by Subscription.Gap; such a subscriber should redraw from a
// snapshot. A subscription that falls more than MaxAge behind while running is not detected.
//
// fn runs on one goroutine per subscription, one event at a time, never concurrently, and
// must not call Stop (cancel ctx instead). A slow fn slows only its own subscription: the
// server keeps the events and this subscription pulls at its own pace.
func (l *EventLog) SubscribeWith(ctx context.Context, filter callbridge.Filter, opts SubscribeOptions, fn func(callbridge.WireEvent)) (*Subscription, error) {
	if err := validFilter(filter); err != nil {
		return nil, err
	}
	if fn == nil {
		return nil, callbridge.Errorf(callbridge.EInvalid, "subscribe: fn is nil")
	}
	l.mu.Lock()
	closed := l.closed
	l.mu.Unlock()
	if closed {
		return nil, errors.New("nats: subscribe: event log closed")
	}

	first, last, err := l.bounds(ctx)
	if err != nil {
		return nil, fmt.Errorf("nats: subscribe: %w", err)
	}
	if first == 0 {
		first = 1
	}
	var (
		start  uint64
		gap    Gap
		hasGap bool
	)
	switch after := opts.AfterSeq; {
	case opts.FromStart:
		start = first
	case after == 0:
		start = last + 1
	case after > last:
		start = last + 1
		gap, hasGap = Gap{Reason: GapAhead, AfterSeq: after, StartSeq: start}, true
	case after+1 < first:
		start = first
		gap, hasGap = Gap{Reason: GapAgedOut, AfterSeq: after, StartSeq: start}, true
	default:
		start = after + 1
	}

	cons, err := l.stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{
		FilterSubjects: filterSubjects(filter),
		DeliverPolicy:  jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:    start,
	})
	if err != nil {
		return nil, fmt.Errorf("nats: subscribe: %w", err)
	}
	iter, err := cons.Messages(jetstream.PullMaxMessages(256))
	if err != nil {
		l.deleteConsumer(cons)
		return nil, fmt.Errorf("nats: subscribe: %w", err)
	}

	s := &Subscription{
		owner:  l,
		agent:  filter.Agent,
		log:    l.log.With("tenant", filter.Tenant, "agent", filter.Agent),
		cons:   cons,
		iter:   iter,
		fn:     fn,
		onGap:  opts.OnGap,
		start:  start,
		gap:    gap,
		hasGap: hasGap,
		done:   make(chan struct{}),
	}
	if hasGap {
		s.log.Info("subscription cannot resume where asked", "reason", gap.Reason,
			"after_seq", gap.AfterSeq, "start_seq", gap.StartSeq)
	}
	s.mu.Lock()
	s.stopCtx = context.AfterFunc(ctx, func() { s.stop(nil) })
	s.mu.Unlock()
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		s.stopCtx()
		iter.Stop()
		l.deleteConsumer(cons)
		return nil, errors.New("nats: subscribe: event log closed")
	}
	l.subs[s] = struct{}{}
	l.mu.Unlock()

	go s.run()
	return s, nil
}

// Subscription is a running subscription of an EventLog. It implements
// callbridge.Subscription.
type Subscription struct {
	owner  *EventLog
	agent  callbridge.AgentID // an agent's subscription keeps the call events naming them
	log    *slog.Logger
	cons   jetstream.Consumer
	iter   jetstream.MessagesContext
	fn     func(callbridge.WireEvent)
	onGap  func(Gap)
	start  uint64
	gap    Gap
	hasGap bool

	stopCtx func() bool

	stopping atomic.Bool // set first thing by stop: no new call of fn starts
	mu       sync.Mutex  // held while fn runs, so stop waits for it
	stopped  bool
	err      error

	done chan struct{}
}

var _ callbridge.Subscription = (*Subscription)(nil)

// Stop ends the subscription: once it is called no new call of fn starts; it waits for a
// call in progress to return, then returns. It must not be called from fn (cancel the
// subscription's ctx instead). It is safe to call more than once and concurrently. The
// subscription's goroutine and server-side consumer are released right after; Done is
// closed when that is finished (immediately in normal operation; while the server is
// unreachable, when the client's pending consumer reset gives up, within about 20 s).
func (s *Subscription) Stop() { s.stop(nil) }

// Done is closed when the subscription has ended and released its resources, after Stop,
// ctx, EventLog.Close, a closed connection or an error; Err says which.
func (s *Subscription) Done() <-chan struct{} { return s.done }

// Err returns why the subscription ended: nil after Stop, ctx or EventLog.Close,
// natsgo.ErrConnectionClosed when the connection closed, or the consumer's error. It is nil
// while the subscription runs.
func (s *Subscription) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// Gap returns the gap the subscription started with and true, or false when it started
// exactly after the AfterSeq it was given. It is known when SubscribeWith returns.
func (s *Subscription) Gap() (Gap, bool) { return s.gap, s.hasGap }

// StartSeq returns the stream sequence delivery started at: the first event delivered has a
// Seq at least this.
func (s *Subscription) StartSeq() uint64 { return s.start }

// stop marks the subscription stopped with err once no fn call runs, and stops the iterator
// without waiting for it: the JetStream client holds its lock while it retries recreating a
// consumer, so a synchronous stop could wait for its backoff.
func (s *Subscription) stop(err error) {
	s.stopping.Store(true)
	s.mu.Lock()
	first := !s.stopped
	if first {
		s.stopped = true
		s.err = err
	}
	stopCtx := s.stopCtx
	s.mu.Unlock()
	if first {
		if stopCtx != nil {
			stopCtx()
		}
		go s.iter.Stop()
	}
}

func (s *Subscription) run() {
	defer s.finish()
	if s.hasGap && s.onGap != nil {
		s.mu.Lock()
		if !s.stopped {
			s.onGap(s.gap)
		}
		s.mu.Unlock()
	}
	var last uint64
	for {
		msg, err := s.iter.Next()
		if err != nil {
			s.mu.Lock()
			if !s.stopped {
				s.stopped = true
				if s.owner.nc.IsClosed() {
					s.err = natsgo.ErrConnectionClosed
					s.log.Warn("subscription ended: connection closed")
				} else {
					s.err = fmt.Errorf("nats: subscription: %w", err)
					s.log.Error("subscription ended", "err", err)
				}
			}
			s.mu.Unlock()
			return
		}
		meta, err := msg.Metadata()
		if err != nil {
			s.log.Warn("message without JetStream metadata, skipped", "subject", msg.Subject(), "err", err)
			continue
		}
		seq := meta.Sequence.Stream
		if seq <= last { // never deliver twice, whatever the consumer does on a reset
			continue
		}
		last = seq
		if s.agent != "" && !s.forAgent(msg) {
			continue
		}
		var ev callbridge.WireEvent
		if err := json.Unmarshal(msg.Data(), &ev); err != nil {
			s.log.Warn("undecodable event skipped", "seq", seq, "subject", msg.Subject(), "err", err)
			continue
		}
		ev.Seq = seq
		if !s.deliver(ev) {
			return
		}
	}
}

// forAgent reports whether a message read by an agent's subscription is theirs: their state
// event, or a call event whose AudienceHeader names them.
func (s *Subscription) forAgent(msg jetstream.Msg) bool {
	if !strings.Contains(msg.Subject(), ".call.") {
		return true // the filter only lets the agent's own state subject through
	}
	for _, a := range strings.Fields(msg.Headers().Get(AudienceHeader)) {
		if a == string(s.agent) {
			return true
		}
	}
	return false
}

// deliver calls fn unless the subscription is stopped, and reports whether it did.
func (s *Subscription) deliver(ev callbridge.WireEvent) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped || s.stopping.Load() {
		return false
	}
	s.fn(ev)
	return true
}

// finish removes the subscription from its log, deletes its server-side consumer (it would
// otherwise linger until the server's inactivity timeout) and marks it done.
func (s *Subscription) finish() {
	s.mu.Lock()
	stopCtx := s.stopCtx
	s.mu.Unlock()
	stopCtx()
	s.iter.Stop()
	s.owner.deleteConsumer(s.cons)
	s.owner.mu.Lock()
	delete(s.owner.subs, s)
	s.owner.mu.Unlock()
	close(s.done)
}

// deleteConsumer deletes the server-side consumer behind an ordered consumer, which would
// otherwise linger until the server's inactivity timeout (5 minutes). Best effort, at most 1 s.
func (l *EventLog) deleteConsumer(cons jetstream.Consumer) {
	info := cons.CachedInfo()
	if info == nil || l.nc.IsClosed() {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := l.js.DeleteConsumer(ctx, l.name, info.Name); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
		l.log.Debug("delete consumer", "consumer", info.Name, "err", err)
	}
}
