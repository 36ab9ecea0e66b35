package hub

import (
	"context"
	"errors"
)

// readReq is one subscriber waiting for events (after, upto] from the log.
type readReq struct {
	sub         *Subscription
	after, upto uint64
	frames      []entry
	bytes       int
	failed      string
}

// Run serves subscribers whose position is older than their audience's window, until ctx
// ends: it takes every request waiting, reads the log once from the oldest position to the
// newest window start among them, and hands each subscriber its events. Without a Reader it
// only waits for ctx.
func (h *Hub) Run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case r := <-h.reads:
			batch := []*readReq{r}
		more:
			for {
				select {
				case r := <-h.reads:
					batch = append(batch, r)
				default:
					break more
				}
			}
			h.serve(ctx, batch)
		}
	}
}

// serve reads the log once for batch and finishes every request.
func (h *Hub) serve(ctx context.Context, batch []*readReq) {
	byKey := make(map[Key][]*readReq, len(batch))
	after, upto := batch[0].after, batch[0].upto
	for _, r := range batch {
		byKey[r.sub.key] = append(byKey[r.sub.key], r)
		after, upto = min(after, r.after), max(upto, r.upto)
	}
	add := func(k Key, m Message) {
		for _, r := range byKey[k] {
			if m.Seq <= r.after || m.Seq > r.upto || r.failed != "" {
				continue
			}
			r.frames = append(r.frames, entry{seq: m.Seq, frame: m.Frame})
			if r.bytes += len(m.Frame); r.bytes > h.cfg.HoldBytes {
				r.failed, r.frames = ReasonOverload, nil
			}
		}
	}
	first, err := h.cfg.Reader.Read(ctx, after, upto, func(m Message) error {
		add(Key{Tenant: m.Tenant}, m)
		for i, a := range m.Agents {
			if !containsBefore(m.Agents, i) {
				add(Key{Tenant: m.Tenant, Agent: a}, m)
			}
		}
		return nil
	})
	reason := ""
	switch {
	case err == nil:
	case errors.Is(err, ErrAhead):
		reason = ReasonAhead
	case errors.Is(err, ErrAgedOut):
		reason = ReasonAgedOut
	default:
		reason = ReasonUnavailable
		if ctx.Err() == nil {
			h.log.Warn("log read for resuming subscribers failed; they resync", "subscribers", len(batch),
				"after_seq", after, "upto_seq", upto, "err", err)
		}
	}
	for _, r := range batch {
		h.pending.Add(-1)
		why := reason
		if why == "" {
			why = r.failed
		}
		if why == "" && r.after+1 < first {
			why = ReasonAgedOut
		}
		h.finish(r, why)
	}
}

// finish hands r's events, then the frames held meanwhile, to its subscriber, or ends the
// subscription with reason.
func (h *Hub) finish(r *readReq, reason string) {
	sub := r.sub
	sh := h.shard(sub.key)
	sh.mu.Lock()
	if sub.closed {
		sh.mu.Unlock()
		return
	}
	if reason != "" {
		sub.closed, sub.resync, sub.held = true, reason, nil
		if a := sh.auds[sub.key]; a != nil {
			a.remove(sub)
		}
		sh.mu.Unlock()
		sub.s.Resync(reason)
		return
	}
	for _, e := range r.frames {
		if e.seq > sub.sent {
			sub.sent = e.seq
			sub.s.Send(e.seq, e.frame)
		}
	}
	for _, e := range sub.held {
		if e.seq > sub.sent {
			sub.sent = e.seq
			sub.s.Send(e.seq, e.frame)
		}
	}
	sub.catching, sub.held, sub.heldBytes = false, nil, 0
	sh.mu.Unlock()
}
