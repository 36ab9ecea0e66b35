package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"

	"github.com/callbridge/callbridge"
	"github.com/callbridge/callbridge/engine"
	cbnats "github.com/callbridge/callbridge/nats"
)

// restoreEngine returns the site's engine: the state saved by the previous run (a clean stop
// or a crash) with the event log after it folded in, or a new engine when nothing was saved
// or the saved state cannot be used (said loudly: calls that outlived the restart then get
// new call ids from the switch's resync). restored says which.
func restoreEngine(ctx context.Context, cfg engine.Config, states *cbnats.StateStore, evlog *cbnats.EventLog, lg *slog.Logger) (eng *engine.Engine, restored bool, err error) {
	seq, state, found, err := states.Load(ctx)
	if err != nil {
		return nil, false, fmt.Errorf("engine state: %w", err)
	}
	if !found {
		eng, err := engine.New(cfg)
		return eng, false, err
	}
	eng, err = engine.Restore(cfg, state)
	if err != nil {
		lg.Error("the saved engine state cannot be used; starting with an empty model (the switch's resync rebuilds live calls with new call ids)",
			"err", err, "seq", seq, "bytes", len(state))
		eng, err := engine.New(cfg)
		return eng, false, err
	}
	replayed, bad := 0, 0
	first, err := evlog.Read(ctx, seq, 0, func(r cbnats.Record) error {
		var w callbridge.WireEvent
		if err := json.Unmarshal(r.Frame, &w); err != nil {
			bad++
			return nil
		}
		if err := eng.Recover(w); err != nil {
			bad++
			lg.Warn("event not folded into the restored state", "seq", r.Seq, "type", r.Type, "err", err)
			return nil
		}
		replayed++
		return nil
	})
	switch {
	case err == cbnats.ErrAhead:
		lg.Warn("the saved engine state is newer than the event log (the log was recreated); using it as it is", "state_seq", seq)
	case err != nil:
		return nil, false, fmt.Errorf("engine state: replay the log after seq %d: %w", seq, err)
	}
	if first > seq+1 {
		lg.Warn("events between the saved engine state and the log's oldest event are gone; the switch's resync fills in",
			"state_seq", seq, "log_first_seq", first)
	}
	lg.Info("engine restored", "state_seq", seq, "events_replayed", replayed, "events_skipped", bad)
	return eng, true, nil
}
