package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"

	"github.com/callbridge/callbridge"
	"github.com/callbridge/callbridge/engine"
	cbnats "github.com/callbridge/callbridge/nats"
)

// restoreEngine returns the site's engine: the state saved by the previous run (a clean stop
// or a crash) with the event log after it folded in. Without a saved state (a crash before
// the first save) the whole log is folded into a new engine; a saved state that cannot be
// used is said loudly and the log is folded into a new engine as well. restored says whether
// anything was restored (then the desktops of the old process are taken as gone).
func restoreEngine(ctx context.Context, cfg engine.Config, states *cbnats.StateStore, evlog *cbnats.EventLog, lg *slog.Logger) (eng *engine.Engine, restored bool, err error) {
	seq, state, found, err := states.Load(ctx)
	if err != nil {
		return nil, false, fmt.Errorf("engine state: %w", err)
	}
	if found {
		if eng, err = engine.Restore(cfg, state); err != nil {
			lg.Error("the saved engine state cannot be used; rebuilding the model from the whole event log",
				"err", err, "seq", seq, "bytes", len(state))
			found, seq = false, 0
		}
	}
	if !found {
		if eng, err = engine.New(cfg); err != nil {
			return nil, false, err
		}
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
	case errors.Is(err, cbnats.ErrAhead):
		lg.Warn("the saved engine state is newer than the event log (the log was recreated); using it as it is", "state_seq", seq)
	case err != nil:
		return nil, false, fmt.Errorf("engine state: replay the log after seq %d: %w", seq, err)
	}
	if found && first > seq+1 {
		lg.Warn("events between the saved engine state and the log's oldest event are gone; the switch's resync fills in",
			"state_seq", seq, "log_first_seq", first)
	}
	if !found && replayed == 0 {
		return eng, false, nil // a new site
	}
	lg.Info("engine restored", "state_seq", seq, "events_replayed", replayed, "events_skipped", bad)
	return eng, true, nil
}
