package nats

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/callbridge/callbridge/hub"
)

// ErrAhead is returned by Read when the asked position is beyond the log's last event: it
// came from another log (the data directory was wiped, or another cluster).
var ErrAhead = errors.New("nats: position is beyond the log's last event")

// readBatch is how many messages one Read pulls per round trip.
const readBatch = 512

// Read calls fn with every event record whose sequence is in (max(afterSeq, first-1),
// uptoSeq], in order, where first is the oldest sequence the log still holds, which Read
// returns (a caller whose afterSeq+1 < first missed the events in between). It reads the
// stream once with one ordered consumer (one JetStream consumer for the whole read,
// however many events). uptoSeq 0 means up to the log's last event when Read starts.
// Messages that are not events (the opened marker, pre-0.9 agent copies) are skipped. It
// returns ErrAhead when afterSeq is beyond the last event, fn's error when fn fails (the
// read stops), or the JetStream error.
func (l *EventLog) Read(ctx context.Context, afterSeq, uptoSeq uint64, fn func(Record) error) (uint64, error) {
	first, last, err := l.bounds(ctx)
	if err != nil {
		return 0, fmt.Errorf("nats: read: %w", err)
	}
	if afterSeq > last {
		return first, ErrAhead
	}
	if first == 0 {
		first = 1
	}
	start := max(afterSeq+1, first)
	if uptoSeq == 0 || uptoSeq > last {
		uptoSeq = last
	}
	if start > uptoSeq {
		return first, nil
	}
	err = l.read(ctx, start, uptoSeq, fn)
	return first, err
}

// read is Read from sequence start (which the stream holds, or the next one after it).
func (l *EventLog) read(ctx context.Context, start, uptoSeq uint64, fn func(Record) error) error {
	cons, err := l.stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{subjectRoot + ".>"},
		DeliverPolicy:  jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:    start,
	})
	if err != nil {
		return fmt.Errorf("nats: read: %w", err)
	}
	defer l.deleteConsumer(cons)
	for {
		batch, err := cons.Fetch(readBatch, jetstream.FetchMaxWait(ackTimeout))
		if err != nil {
			return fmt.Errorf("nats: read: %w", err)
		}
		n := 0
		for msg := range batch.Messages() {
			n++
			meta, err := msg.Metadata()
			if err != nil {
				continue
			}
			seq := meta.Sequence.Stream
			if seq > uptoSeq {
				return nil
			}
			if r, ok := decodeRecord(seq, msg.Subject(), msg.Headers(), msg.Data()); ok {
				if err := fn(r); err != nil {
					return err
				}
			}
			if seq == uptoSeq || meta.NumPending == 0 {
				return nil
			}
		}
		if err := batch.Error(); err != nil {
			return fmt.Errorf("nats: read: %w", err)
		}
		if n == 0 {
			// Nothing came within the wait: the events up to uptoSeq were deleted meanwhile.
			return nil
		}
		if err := ctx.Err(); err != nil {
			return err
		}
	}
}

// HubReader returns l as the hub's reader of older positions (hub.Reader).
func (l *EventLog) HubReader() hub.Reader { return hubReader{l} }

type hubReader struct{ l *EventLog }

func (r hubReader) Read(ctx context.Context, after, upto uint64, fn func(hub.Message) error) (uint64, error) {
	first, err := r.l.Read(ctx, after, upto, func(rec Record) error {
		return fn(hub.Message{Seq: rec.Seq, Tenant: rec.Tenant, Agents: rec.Agents, Frame: rec.Frame})
	})
	if errors.Is(err, ErrAhead) {
		err = hub.ErrAhead
	}
	return first, err
}

// Preload publishes the last n events of the log (at most) into h's windows and starts h
// after them, so that desktops resuming right after a restart are served from memory. It
// returns the log's last sequence, where h now stands. Errors come from JetStream.
func (l *EventLog) Preload(ctx context.Context, h *hub.Hub, n uint64) (uint64, error) {
	_, last, err := l.bounds(ctx)
	if err != nil {
		return 0, fmt.Errorf("nats: preload: %w", err)
	}
	base := last - min(last, n)
	h.Start(base)
	if _, err := l.Read(ctx, base, last, func(rec Record) error {
		h.Publish(hub.Message{Seq: rec.Seq, Tenant: rec.Tenant, Agents: rec.Agents, Frame: rec.Frame})
		return nil
	}); err != nil && !errors.Is(err, ErrAhead) {
		return 0, fmt.Errorf("nats: preload: %w", err)
	}
	h.Advance(last)
	return last, nil
}
