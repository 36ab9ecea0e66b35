package nats

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Follow calls fn with every event record stored after afterSeq, in order, then with new
// ones as they are stored, until ctx ends (it then returns ctx's error). It is how a node
// that does not append a log itself (a central node, a site's standby) feeds its hub: one
// ordered consumer for the whole node, never one per desktop. When the consumer fails (the
// server restarts, the connection drops) it starts again after the last record it gave fn,
// so fn sees every record once. ErrAhead when afterSeq is beyond the log's end. A position
// older than the log keeps starts at its oldest event (the caller compares with Bounds).
func (l *EventLog) Follow(ctx context.Context, afterSeq uint64, fn func(Record)) error {
	if _, last, err := l.bounds(ctx); err != nil {
		return fmt.Errorf("nats: follow: %w", err)
	} else if afterSeq > last {
		return ErrAhead
	}
	delay := appendRetryMin
	for {
		err := l.follow(ctx, &afterSeq, fn)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		l.log.Warn("following the log failed; starting again", "after_seq", afterSeq, "err", err)
		select {
		case <-time.After(delay):
		case <-ctx.Done():
			return ctx.Err()
		}
		delay = min(2*delay, appendRetryMax)
	}
}

// follow runs one ordered consumer from *after+1, advancing *after, until it fails.
func (l *EventLog) follow(ctx context.Context, after *uint64, fn func(Record)) error {
	cons, err := l.stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{subjectRoot + ".>"},
		DeliverPolicy:  jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:    *after + 1,
	})
	if err != nil {
		return err
	}
	defer l.deleteConsumer(cons)
	it, err := cons.Messages(jetstream.PullMaxMessages(512))
	if err != nil {
		return err
	}
	stop := context.AfterFunc(ctx, it.Stop)
	defer stop()
	defer it.Stop()
	for {
		msg, err := it.Next()
		if err != nil {
			if errors.Is(err, jetstream.ErrMsgIteratorClosed) && ctx.Err() != nil {
				return ctx.Err()
			}
			return err
		}
		meta, err := msg.Metadata()
		if err != nil {
			continue
		}
		seq := meta.Sequence.Stream
		if seq <= *after {
			continue // never twice, whatever the consumer does on a reset
		}
		*after = seq
		if r, ok := decodeRecord(seq, msg.Subject(), msg.Headers(), msg.Data()); ok {
			fn(r)
		}
	}
}
