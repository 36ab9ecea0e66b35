package node

import (
	"context"
	"encoding/json"

	"github.com/callbridge/callbridge"
)

// Synchronous adapts a log whose Append stores an event before it returns (an in-memory
// log for replays, nats.EventLog.Append in tests) to EventLog: stored and barriers run on
// the caller's goroutine before Append returns, and the frame is the event's JSON with its
// sequence. A failed append is returned as it is (the node logs it: nothing is held).
func Synchronous(l callbridge.EventLog) EventLog { return syncLog{l} }

type syncLog struct{ l callbridge.EventLog }

func (s syncLog) Append(ctx context.Context, ev callbridge.Event, stored func(uint64, []byte)) error {
	seq, err := s.l.Append(ctx, ev)
	if err != nil {
		return err
	}
	if stored != nil {
		ev.Seq = seq
		frame, err := json.Marshal(ev)
		if err != nil {
			return err
		}
		stored(seq, frame)
	}
	return nil
}

func (s syncLog) Barrier(_ context.Context, fn func()) error {
	fn()
	return nil
}

func (s syncLog) Status() (int, error) { return 0, nil }
