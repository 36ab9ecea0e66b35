package nats

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"

	"github.com/callbridge/callbridge"
)

// Defaults of LogConfig.
const (
	DefaultStream = "CB"
	DefaultMaxAge = 7 * 24 * time.Hour
)

// dupeWindow is how long JetStream remembers Nats-Msg-Id headers to drop re-sent copies.
const dupeWindow = 2 * time.Minute

// ackTimeout is how long Append waits for one publish ack before re-sending that copy (same
// Nats-Msg-Id, so the stream stores it once); appendAttempts bounds the sends of one copy.
const (
	ackTimeout     = 5 * time.Second
	appendAttempts = 3
)

// LogConfig configures the JetStream stream behind the event log.
type LogConfig struct {
	// Stream is the JetStream stream name; "" means DefaultStream ("CB").
	Stream string
	// MaxAge is how long events are kept; 0 means DefaultMaxAge (7 days). Older events are
	// deleted by the server; a subscriber asking for them gets a Gap.
	MaxAge time.Duration
	// Replicas is the stream's replica count in a cluster; 0 means 1. The embedded server
	// supports only 1.
	Replicas int
	// Logger receives the event log's own log lines; nil discards them.
	Logger *slog.Logger
}

// EventLog is callbridge's event log on a JetStream stream (subjects "cb.>", file storage,
// limits retention by age). It implements callbridge.EventLog; see subject.go for the
// subject scheme and SubscribeWith for the meaning of sequence numbers.
//
// An EventLog does not own its connection: Close stops its subscriptions, and the caller
// closes the connection afterwards. When the connection closes first, every subscription
// ends with Err() == natsgo.ErrConnectionClosed.
type EventLog struct {
	nc     *natsgo.Conn
	js     jetstream.JetStream
	stream jetstream.Stream
	name   string
	log    *slog.Logger

	mu     sync.Mutex
	subs   map[*Subscription]struct{}
	closed bool

	statusCh  chan natsgo.Status
	quit      chan struct{}
	watchDone chan struct{}
}

var _ callbridge.EventLog = (*EventLog)(nil)

// OpenEventLog creates the stream cfg.Stream with subjects "cb.>" on nc's JetStream, or
// updates its limits (MaxAge, Replicas) when it exists, and returns the log. Errors come from
// JetStream, e.g. when another stream already holds subjects under "cb." or the existing
// stream uses memory storage (which cannot be changed).
func OpenEventLog(ctx context.Context, nc *natsgo.Conn, cfg LogConfig) (*EventLog, error) {
	if cfg.Stream == "" {
		cfg.Stream = DefaultStream
	}
	if cfg.MaxAge == 0 {
		cfg.MaxAge = DefaultMaxAge
	}
	if cfg.MaxAge < 0 {
		return nil, fmt.Errorf("nats: open event log: negative MaxAge %s", cfg.MaxAge)
	}
	if cfg.Replicas == 0 {
		cfg.Replicas = 1
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("component", "eventlog", "stream", cfg.Stream)

	js, err := jetstream.New(nc,
		jetstream.WithPublishAsyncTimeout(ackTimeout),
		jetstream.WithPublishAsyncMaxPending(4096),
	)
	if err != nil {
		return nil, fmt.Errorf("nats: open event log: %w", err)
	}
	stream, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:        cfg.Stream,
		Description: "callbridge domain events",
		Subjects:    []string{subjectRoot + ".>"},
		Storage:     jetstream.FileStorage,
		Retention:   jetstream.LimitsPolicy,
		Discard:     jetstream.DiscardOld,
		MaxAge:      cfg.MaxAge,
		Replicas:    cfg.Replicas,
		Duplicates:  min(dupeWindow, cfg.MaxAge),
	})
	if err != nil {
		return nil, fmt.Errorf("nats: open event log: stream %s: %w", cfg.Stream, err)
	}
	if err := writeOpenedMarker(ctx, js, stream, cfg.Stream); err != nil {
		return nil, fmt.Errorf("nats: open event log: stream %s: %w", cfg.Stream, err)
	}

	l := &EventLog{
		nc:        nc,
		js:        js,
		stream:    stream,
		name:      cfg.Stream,
		log:       log,
		subs:      make(map[*Subscription]struct{}),
		statusCh:  nc.StatusChanged(natsgo.CLOSED),
		quit:      make(chan struct{}),
		watchDone: make(chan struct{}),
	}
	go l.watch()
	if info, err := stream.Info(ctx); err == nil {
		log.Info("event log open", "first_seq", info.State.FirstSeq, "last_seq", info.State.LastSeq,
			"messages", info.State.Msgs, "max_age", cfg.MaxAge)
	}
	return l, nil
}

// OpenedMarkerSubject is the subject of the one message OpenEventLog writes into a stream
// that never held a message. It lies outside every tenant's subjects ("$" is not allowed in a
// token), so no subscriber sees it; it exists so that LastSeq is at least 1 once the log is
// open. A position taken from LastSeq or a snapshot is therefore never 0, and afterSeq 0
// can mean "from now on" without a desktop that drew a snapshot of an empty log missing the
// events appended before it subscribed.
const OpenedMarkerSubject = subjectRoot + ".$log.opened"

// writeOpenedMarker writes the marker when the stream has never held a message. Two nodes
// racing here write it once: the publish expects last sequence 0.
func writeOpenedMarker(ctx context.Context, js jetstream.JetStream, stream jetstream.Stream, name string) error {
	if stream.CachedInfo().State.LastSeq != 0 {
		return nil
	}
	_, err := js.Publish(ctx, OpenedMarkerSubject, []byte(`{}`),
		jetstream.WithExpectStream(name), jetstream.WithExpectLastSequence(0))
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) && (apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
		apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant) {
		return nil // another node wrote it first
	}
	return err
}

// watch ends every subscription when the connection closes.
func (l *EventLog) watch() {
	defer close(l.watchDone)
	select {
	case <-l.statusCh:
		l.log.Warn("connection closed, ending subscriptions")
		l.stopAll(natsgo.ErrConnectionClosed)
	case <-l.quit:
	}
}

// Close stops every subscription, waits until each has ended (Done), and refuses new ones.
// It does not close the connection. It is safe to call more than once.
func (l *EventLog) Close() {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return
	}
	l.closed = true
	l.mu.Unlock()
	close(l.quit)
	<-l.watchDone
	l.nc.RemoveStatusListener(l.statusCh)
	for _, s := range l.stopAll(nil) {
		<-s.Done()
	}
}

// stopAll stops every subscription with err and returns them.
func (l *EventLog) stopAll(err error) []*Subscription {
	l.mu.Lock()
	subs := make([]*Subscription, 0, len(l.subs))
	for s := range l.subs {
		subs = append(subs, s)
	}
	l.mu.Unlock()
	for _, s := range subs {
		s.stop(err)
	}
	return subs
}

// Append stores ev once and returns its stream sequence. It encodes ev with Encode (which
// validates its routing fields; EInvalid *callbridge.Error, nothing published) and
// publishes it with a fresh Nats-Msg-Id. A publish whose ack does not come within 5 s, or
// is lost to a reconnect, is re-sent up to twice with the same id, which the stream stores
// only once. On any other JetStream or connection error, or when ctx ends first, it
// returns that error wrapped. Append is for tests and tools; the node appends through an
// Appender, which pipelines and never gives up.
func (l *EventLog) Append(ctx context.Context, ev callbridge.Event) (uint64, error) {
	e, err := Encode(ev)
	if err != nil {
		return 0, err
	}
	id := nuid.Next()
	f, err := l.publish(e, id, "")
	if err != nil {
		return 0, fmt.Errorf("nats: append %s to %s: %w", ev.Type, e.Subject, err)
	}
	for attempt := 1; ; attempt++ {
		var ack *jetstream.PubAck
		select {
		case ack = <-f.Ok():
		case err = <-f.Err():
		case <-ctx.Done():
			return 0, fmt.Errorf("nats: append %s to %s: %w", ev.Type, e.Subject, ctx.Err())
		}
		if ack != nil {
			return ack.Sequence, nil
		}
		if !retryable(err) || attempt >= appendAttempts {
			return 0, fmt.Errorf("nats: append %s to %s: %w", ev.Type, e.Subject, err)
		}
		l.log.Warn("publish not acknowledged, re-sending", "subject", e.Subject, "attempt", attempt, "err", err)
		if f, err = l.publish(e, id, ""); err != nil {
			return 0, fmt.Errorf("nats: append %s to %s: %w", ev.Type, e.Subject, err)
		}
	}
}

// retryable reports whether a copy whose publish failed with err may be re-sent: the stream
// may or may not have stored it, and its Nats-Msg-Id makes a second copy a no-op.
func retryable(err error) bool {
	return errors.Is(err, jetstream.ErrAsyncPublishTimeout) ||
		errors.Is(err, natsgo.ErrDisconnected) ||
		errors.Is(err, jetstream.ErrNoStreamResponse)
}

// publish sends e asynchronously with message id id and the expected stream; lastID, when
// not empty, is the Nats-Msg-Id the stream's last message must have (the Appender's order
// guard).
func (l *EventLog) publish(e *Entry, id, lastID string) (jetstream.PubAckFuture, error) {
	h := e.header(id)
	h[jetstream.ExpectedStreamHeader] = []string{l.name}
	if lastID != "" {
		h[jetstream.ExpectedLastMsgIDHeader] = []string{lastID}
	}
	return l.js.PublishMsgAsync(&natsgo.Msg{Subject: e.Subject, Data: e.Payload, Header: h})
}

// LastSeq returns the stream sequence of the newest event ever appended (0 for a log that
// never had one). It stays put when old events age out. Errors come from JetStream.
func (l *EventLog) LastSeq(ctx context.Context) (uint64, error) {
	info, err := l.stream.Info(ctx)
	if err != nil {
		return 0, fmt.Errorf("nats: last seq: %w", err)
	}
	return info.State.LastSeq, nil
}

// Bounds returns the first retained and the last stream sequence. For an empty stream first
// is last+1 (or 0 when nothing was ever stored). Errors come from JetStream.
func (l *EventLog) Bounds(ctx context.Context) (first, last uint64, err error) { return l.bounds(ctx) }

// bounds is Bounds.
func (l *EventLog) bounds(ctx context.Context) (first, last uint64, err error) {
	info, err := l.stream.Info(ctx)
	if err != nil {
		return 0, 0, err
	}
	return info.State.FirstSeq, info.State.LastSeq, nil
}
