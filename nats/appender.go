package nats

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"

	"github.com/callbridge/callbridge"
)

// DefaultAppendWindow is the default of AppenderConfig.Window.
const DefaultAppendWindow = 1024

// jsErrWrongLastMsgID is JetStream's error code for a publish whose
// Nats-Expected-Last-Msg-Id is not the stream's last message id (nats-server
// JSStreamWrongLastMsgIDErrF).
const jsErrWrongLastMsgID jetstream.ErrorCode = 10070

// Retry pacing of an Appender whose log refuses appends.
const (
	appendRetryMin = 50 * time.Millisecond
	appendRetryMax = 2 * time.Second
)

// AppenderConfig configures an Appender.
type AppenderConfig struct {
	// Window caps the entries an Appender holds: at most Window wait to be published and at
	// most Window more are published and not yet acknowledged. Append blocks while the
	// queue is full. 0 means DefaultAppendWindow.
	Window int
	// Logger receives warnings while the log refuses appends; nil discards them.
	Logger *slog.Logger
}

// Appender appends entries to an EventLog in order, pipelined (many publishes in flight,
// one round trip for all of them), and never drops one: a publish that fails or is not
// acknowledged is sent again, with the same Nats-Msg-Id so that the stream stores it once,
// until the stream takes it. Order in the stream is guaranteed by
// Nats-Expected-Last-Msg-Id: each publish names the message before it, so a message whose
// predecessor was lost is refused and re-sent after it. The Appender must be the stream's
// only writer.
//
// While the log refuses appends the entries stay held (at most 2 × Window); Append then
// blocks, which is how the node stops reading its switch instead of dropping events.
// Status says how many entries are held and why.
type Appender struct {
	l      *EventLog
	log    *slog.Logger
	window int
	in     chan item

	prefix string
	next   uint64
	// lastID is the message id of the last message stored, "" when unknown (a new stream,
	// or one whose last message carries none).
	lastID string

	held   atomic.Int64
	errMu  sync.Mutex
	err    error
	closed chan struct{}
	done   chan struct{}
	once   sync.Once
}

// item is one queued entry (with done, called once it is stored), or a barrier (e nil, fn
// set).
type item struct {
	e    *Entry
	id   string
	done func(seq uint64)
	fn   func()
}

// flight is an item published and not yet acknowledged.
type flight struct {
	item
	f jetstream.PubAckFuture // nil for a barrier
}

// NewAppender returns an Appender for l that continues after the stream's last message. It
// reads that message's id; errors come from JetStream. Run must be started.
func (l *EventLog) NewAppender(ctx context.Context, cfg AppenderConfig) (*Appender, error) {
	if cfg.Window <= 0 {
		cfg.Window = DefaultAppendWindow
	}
	log := cfg.Logger
	if log == nil {
		log = l.log
	}
	lastID, _, err := l.lastMessage(ctx)
	if err != nil {
		return nil, fmt.Errorf("nats: appender: %w", err)
	}
	return &Appender{
		l:      l,
		log:    log.With("component", "appender"),
		window: cfg.Window,
		in:     make(chan item, cfg.Window),
		prefix: nuid.Next(),
		lastID: lastID,
		closed: make(chan struct{}),
		done:   make(chan struct{}),
	}, nil
}

// lastMessage returns the Nats-Msg-Id and sequence of the stream's last message ("" and 0
// for an empty stream).
func (l *EventLog) lastMessage(ctx context.Context) (string, uint64, error) {
	_, last, err := l.bounds(ctx)
	if err != nil || last == 0 {
		return "", last, err
	}
	m, err := l.stream.GetMsg(ctx, last)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return "", last, nil
	}
	if err != nil {
		return "", 0, err
	}
	return m.Header.Get(natsgo.MsgIdHdr), last, nil
}

// Append encodes ev (Encode; an EInvalid *callbridge.Error queues nothing) and queues it.
// stored, when not nil, is called once the stream has stored it, with its sequence and its
// frame ({"seq":…,"type":…}), in the order of Append calls, on the Appender's goroutine; it
// must not block for long (it delays every later event) and must not call Append. Append
// blocks while the Appender holds its whole window, until ctx ends (its error) or the
// Appender is closed (ErrAppenderClosed). Callers that need a total order call Append from
// one goroutine.
func (a *Appender) Append(ctx context.Context, ev callbridge.Event, stored func(seq uint64, frame []byte)) error {
	e, err := Encode(ev)
	if err != nil {
		return err
	}
	it := item{e: e}
	if stored != nil {
		it.done = func(seq uint64) { stored(seq, e.Frame(seq)) }
	}
	return a.enqueue(ctx, it)
}

// AppendEntry queues an entry made by Encode; done, when not nil, is called with its
// sequence once stored (as Append's stored).
func (a *Appender) AppendEntry(ctx context.Context, e *Entry, done func(seq uint64)) error {
	return a.enqueue(ctx, item{e: e, done: done})
}

// Barrier queues fn, which runs on the Appender's goroutine once every entry appended
// before it has been stored (after their Stored calls). Errors as for Append.
func (a *Appender) Barrier(ctx context.Context, fn func()) error {
	return a.enqueue(ctx, item{fn: fn})
}

// ErrAppenderClosed is returned by Append after Close.
var ErrAppenderClosed = errors.New("nats: appender closed")

func (a *Appender) enqueue(ctx context.Context, it item) error {
	select {
	case <-a.closed:
		return ErrAppenderClosed
	default:
	}
	a.held.Add(1)
	select {
	case a.in <- it:
		return nil
	case <-ctx.Done():
		a.held.Add(-1)
		return ctx.Err()
	case <-a.closed:
		a.held.Add(-1)
		return ErrAppenderClosed
	}
}

// Status returns how many entries are held (queued or not yet acknowledged) and, while the
// log refuses appends, the last error (nil once an append succeeds again).
func (a *Appender) Status() (held int, err error) {
	a.errMu.Lock()
	defer a.errMu.Unlock()
	return int(a.held.Load()), a.err
}

func (a *Appender) setErr(err error) {
	a.errMu.Lock()
	a.err = err
	a.errMu.Unlock()
}

// Close stops taking entries and waits, until ctx ends, for Run to store every entry it
// holds. It returns ctx's error when entries were left unstored.
func (a *Appender) Close(ctx context.Context) error {
	a.once.Do(func() { close(a.closed) })
	select {
	case <-a.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Run publishes until ctx ends, or until Close and every held entry is stored. It returns
// nil after a drained Close, ctx's error otherwise.
func (a *Appender) Run(ctx context.Context) error {
	defer close(a.done)
	var inflight []flight
	for {
		// Barriers at the head have nothing to wait for.
		for len(inflight) > 0 && inflight[0].f == nil {
			inflight[0].fn()
			inflight = inflight[1:]
			a.held.Add(-1)
		}
		var in chan item
		if len(inflight) < a.window {
			in = a.in
		}
		var ok <-chan *jetstream.PubAck
		var fail <-chan error
		var idle <-chan struct{}
		if len(inflight) > 0 {
			ok, fail = inflight[0].f.Ok(), inflight[0].f.Err()
		} else if len(a.in) == 0 {
			select {
			case <-a.closed:
				return nil // closed and drained
			default:
				idle = a.closed
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-idle:
			// Closed while idle: the loop sees it and returns, unless an item came in.
		case it := <-in:
			inflight = a.send(inflight, it)
		case ack := <-ok:
			inflight = a.ack(inflight, ack.Sequence)
		case err := <-fail:
			if inflight = a.recover(ctx, inflight, err); inflight == nil {
				return ctx.Err()
			}
		}
	}
}

// send publishes it (a barrier is only queued) and appends it to inflight. A publish that
// cannot even be sent is queued with a future that has already failed, so that recovery
// takes over in order.
func (a *Appender) send(inflight []flight, it item) []flight {
	if it.e == nil {
		return append(inflight, flight{item: it})
	}
	a.next++
	it.id = a.prefix + "-" + strconv.FormatUint(a.next, 10)
	prev := a.lastID
	if n := len(inflight); n > 0 {
		prev = ""
		for i := n - 1; i >= 0; i-- {
			if inflight[i].e != nil {
				prev = inflight[i].id
				break
			}
		}
		if prev == "" {
			prev = a.lastID
		}
	}
	f, err := a.l.publish(it.e, it.id, prev)
	if err != nil {
		f = failedFuture{err: err}
	}
	return append(inflight, flight{item: it, f: f})
}

// ack records that the head was stored at seq.
func (a *Appender) ack(inflight []flight, seq uint64) []flight {
	a.stored(inflight[0], seq)
	if a.err != nil {
		a.setErr(nil)
		a.log.Info("event log takes appends again")
	}
	return inflight[1:]
}

// stored records that fl was stored at seq.
func (a *Appender) stored(fl flight, seq uint64) {
	a.lastID = fl.id
	if fl.done != nil {
		fl.done(seq)
	}
	a.held.Add(-1)
}

// recover handles a failed head: it lets every other publish in flight finish (each either
// was stored right after its predecessor, or was refused), then re-sends from the head, one
// at a time, until each is stored, and returns what is left in flight (nothing). It returns
// nil when ctx ends first.
func (a *Appender) recover(ctx context.Context, inflight []flight, err error) []flight {
	a.fail(err, len(inflight))
	// Outcomes of the others; a publish cannot be cancelled, only waited for.
	type outcome struct {
		seq uint64
		ok  bool
	}
	outs := make([]outcome, len(inflight))
	for i := 1; i < len(inflight); i++ {
		if inflight[i].f == nil {
			continue
		}
		select {
		case ack := <-inflight[i].f.Ok():
			outs[i] = outcome{seq: ack.Sequence, ok: true}
		case <-inflight[i].f.Err():
		case <-ctx.Done():
			return nil
		}
	}
	delay := appendRetryMin
	for i := 0; i < len(inflight); i++ {
		fl := inflight[i]
		if fl.f == nil {
			fl.fn()
			a.held.Add(-1)
			continue
		}
		if i > 0 && outs[i].ok {
			// Stored with its predecessor's id as the expected last: in order.
			a.stored(fl, outs[i].seq)
			continue
		}
		for {
			seq, err := a.resend(ctx, fl)
			if err == nil {
				a.stored(fl, seq)
				delay = appendRetryMin
				break
			}
			if ctx.Err() != nil {
				return nil
			}
			a.fail(err, len(inflight)-i)
			select {
			case <-time.After(delay):
			case <-ctx.Done():
				return nil
			}
			delay = min(2*delay, appendRetryMax)
		}
	}
	a.setErr(nil)
	a.log.Info("event log takes appends again")
	return inflight[:0]
}

// resend publishes fl after a.lastID and waits for its ack. A stream that says its last
// message is another one either already holds fl (its ack was lost and the duplicate
// window has passed) or was recreated or written by someone else: resend checks which,
// and in the second case continues after the stream's actual last message.
func (a *Appender) resend(ctx context.Context, fl flight) (uint64, error) {
	f, err := a.l.publish(fl.e, fl.id, a.lastID)
	if err != nil {
		return 0, err
	}
	select {
	case ack := <-f.Ok():
		return ack.Sequence, nil
	case err = <-f.Err():
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	var apiErr *jetstream.APIError
	if !errors.As(err, &apiErr) || apiErr.ErrorCode != jsErrWrongLastMsgID {
		return 0, err
	}
	lctx, cancel := context.WithTimeout(ctx, ackTimeout)
	defer cancel()
	id, seq, lerr := a.l.lastMessage(lctx)
	if lerr != nil {
		return 0, lerr
	}
	if id == fl.id {
		return seq, nil
	}
	a.log.Warn("event log's last message is not the last one appended (the stream was recreated or written by another node); continuing after it",
		"expected", a.lastID, "found", id, "last_seq", seq)
	a.lastID = id
	return 0, err
}

// fail records err as the reason appends are held.
func (a *Appender) fail(err error, n int) {
	if a.err == nil {
		a.log.Error("event log refuses appends; holding events and retrying", "held", a.held.Load(), "in_flight", n, "err", err)
	}
	a.setErr(err)
}

// failedFuture is the future of a publish that could not be sent.
type failedFuture struct{ err error }

func (f failedFuture) Ok() <-chan *jetstream.PubAck { return nil }
func (f failedFuture) Err() <-chan error {
	ch := make(chan error, 1)
	ch <- f.err
	return ch
}
func (f failedFuture) Msg() *natsgo.Msg { return nil }
