// Package records builds callbridge's history from the domain event stream: a call record
// (callbridge.CallRecord) per call and a row per agent state period, and it fills the webhook
// outbox. It needs nothing from the engine: it follows each tenant's events in the event log
// like a supervisor's desktop does (callbridge.Filter{Tenant}: every call event once, every
// agent state event).
//
// # Exactly once
//
// Events are applied in batches; each batch is one store transaction (RecordStore.
// UpdateHistory) that locks the tenant's consumer position ("records:<tenant>"), skips
// events at or below it, writes the records, the agent state rows and the outbox
// deliveries, and moves the position to the batch's last sequence. A crash between two
// batches loses nothing (the next start resumes after the committed position) and applies
// nothing twice; two nodes consuming the same tenant into one database serialize on the
// position row.
//
// # What goes to the outbox
//
// Every event the tenant's webhooks subscribe to, as it is (call.*, agent.*), and the
// records: call_record.completed once a call ended and every agent who handled it finished
// wrap-up (at once when nobody did), call_record.updated when a disposition
// (call.disposition_set) arrives for a complete record. The dispatcher of package webhook
// sends them; OnEnqueue wakes it.
package records

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/callbridge/callbridge"
)

// Defaults of Config.
const (
	DefaultBatchSize      = 256
	DefaultRescanInterval = 30 * time.Second
	maxRetryDelay         = 10 * time.Second
)

// Config configures a Consumer. Log, Store and Tenants are required.
type Config struct {
	Log   callbridge.EventLog
	Store callbridge.RecordStore
	// Tenants returns the tenants to follow; it is called at start and every RescanInterval,
	// and a consumer starts for each new one.
	Tenants func(ctx context.Context) ([]callbridge.TenantID, error)
	Logger  *slog.Logger
	// Now is the clock of the outbox (when deliveries are due); default time.Now. Record
	// times come from the events.
	Now func() time.Time
	// OnEnqueue, if set, is called after a batch that created webhook deliveries committed.
	OnEnqueue func()
	// BatchSize caps the events of one transaction.
	BatchSize      int
	RescanInterval time.Duration
}

// Consumer follows every tenant's events into the history. Create it with New, run it
// with Run.
type Consumer struct {
	cfg Config
	log *slog.Logger

	mu        sync.Mutex
	positions map[callbridge.TenantID]uint64
}

// New returns a consumer for cfg; nothing runs until Run.
func New(cfg Config) *Consumer {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = DefaultBatchSize
	}
	if cfg.RescanInterval <= 0 {
		cfg.RescanInterval = DefaultRescanInterval
	}
	return &Consumer{cfg: cfg, log: cfg.Logger.With("component", "records"), positions: map[callbridge.TenantID]uint64{}}
}

// ConsumerName is the name of tenant's position in the store.
func ConsumerName(tenant callbridge.TenantID) string { return "records:" + string(tenant) }

// Position returns the last sequence committed for tenant by this consumer (0 before the
// first batch).
func (c *Consumer) Position(tenant callbridge.TenantID) uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.positions[tenant]
}

// Run follows every tenant until ctx ends, then returns nil once every follower stopped.
func (c *Consumer) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	started := map[callbridge.TenantID]bool{}
	tick := time.NewTicker(c.cfg.RescanInterval)
	defer tick.Stop()
	for {
		tenants, err := c.cfg.Tenants(ctx)
		if err != nil && ctx.Err() == nil {
			c.log.Warn("list tenants", "err", err)
		}
		for _, t := range tenants {
			if started[t] || !callbridge.ValidToken(string(t)) {
				continue
			}
			started[t] = true
			wg.Go(func() { c.follow(ctx, t) })
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

// follow consumes one tenant's events until ctx ends, resubscribing after the committed
// position whenever the subscription ends by itself (the connection to NATS closed).
func (c *Consumer) follow(ctx context.Context, tenant callbridge.TenantID) {
	log := c.log.With("tenant", tenant)
	name := ConsumerName(tenant)
	for attempt := 0; ctx.Err() == nil; attempt++ {
		if attempt > 0 {
			sleep(ctx, retryDelay(attempt))
		}
		pos, err := c.startPosition(ctx, tenant)
		if err != nil {
			if ctx.Err() == nil {
				log.Warn("read position", "consumer", name, "err", err)
			}
			continue
		}
		events := make(chan callbridge.WireEvent, c.cfg.BatchSize)
		sctx, cancel := context.WithCancel(ctx)
		// A position of 0 (never ran) subscribes after sequence 1, the marker that the
		// NATS event log writes first into a new stream: every retained event is read.
		sub, err := c.cfg.Log.Subscribe(sctx, callbridge.Filter{Tenant: tenant}, max(pos, 1), func(ev callbridge.WireEvent) {
			select {
			case events <- ev:
			case <-sctx.Done():
			}
		})
		if err != nil {
			cancel()
			if ctx.Err() == nil {
				log.Warn("subscribe", "err", err)
			}
			continue
		}
		log.Info("following events", "after_seq", pos)
		attempt = 0
		var ended <-chan struct{}
		if d, ok := sub.(interface{ Done() <-chan struct{} }); ok {
			ended = d.Done()
		}
		c.consume(sctx, tenant, events, ended)
		cancel()
		sub.Stop()
		if ctx.Err() == nil {
			log.Warn("subscription ended; resubscribing")
		}
	}
}

// startPosition returns the committed position, resetting it when it lies beyond the event
// log's end (the log was recreated: its sequences start again at 1).
func (c *Consumer) startPosition(ctx context.Context, tenant callbridge.TenantID) (uint64, error) {
	name := ConsumerName(tenant)
	pos, err := c.cfg.Store.ConsumerPosition(ctx, name)
	if err != nil {
		return 0, err
	}
	last, err := c.cfg.Log.LastSeq(ctx)
	if err != nil {
		return 0, err
	}
	if pos > last {
		c.log.Warn("position is beyond the event log's end; the log was recreated, starting over",
			"tenant", tenant, "position", pos, "last_seq", last)
		err := c.cfg.Store.UpdateHistory(ctx, func(tx callbridge.HistoryTx) error {
			cur, err := tx.LockPosition(ctx, name)
			if err != nil || cur <= last {
				return err
			}
			return tx.SetPosition(ctx, name, 0)
		})
		if err != nil {
			return 0, err
		}
		pos = 0
	}
	c.setPosition(tenant, pos)
	return pos, nil
}

func (c *Consumer) setPosition(tenant callbridge.TenantID, pos uint64) {
	c.mu.Lock()
	c.positions[tenant] = pos
	c.mu.Unlock()
}

// consume applies events in batches until ctx ends or the subscription ends.
func (c *Consumer) consume(ctx context.Context, tenant callbridge.TenantID, events <-chan callbridge.WireEvent, ended <-chan struct{}) {
	batch := make([]callbridge.WireEvent, 0, c.cfg.BatchSize)
	for {
		select {
		case <-ctx.Done():
			return
		case <-ended:
			// Apply what arrived before the end, then resubscribe.
			for {
				select {
				case ev := <-events:
					batch = append(batch, ev)
					continue
				default:
				}
				break
			}
			if len(batch) > 0 {
				c.commit(ctx, tenant, batch)
			}
			return
		case ev := <-events:
			batch = append(batch[:0], ev)
		}
	fill:
		for len(batch) < c.cfg.BatchSize {
			select {
			case ev := <-events:
				batch = append(batch, ev)
			default:
				break fill
			}
		}
		if !c.commit(ctx, tenant, batch) {
			return
		}
	}
}

// commit applies batch in one transaction, retrying on store errors until it succeeds or
// ctx ends (reported as false).
func (c *Consumer) commit(ctx context.Context, tenant callbridge.TenantID, batch []callbridge.WireEvent) bool {
	name := ConsumerName(tenant)
	for attempt := 0; ; attempt++ {
		if attempt > 0 {
			if !sleep(ctx, retryDelay(attempt)) {
				return false
			}
		}
		var (
			enqueued int
			last     uint64
			skipped  []error
		)
		err := c.cfg.Store.UpdateHistory(ctx, func(tx callbridge.HistoryTx) error {
			enqueued, skipped = 0, nil
			pos, err := tx.LockPosition(ctx, name)
			if err != nil {
				return err
			}
			last = pos
			a := &applier{tx: tx, now: c.cfg.Now()}
			for _, ev := range batch {
				if ev.Seq <= pos {
					continue // applied before (a redelivery, or another node got here first)
				}
				if err := a.apply(ctx, ev); err != nil {
					var se storeError
					if errors.As(err, &se) {
						return se.err
					}
					skipped = append(skipped, err)
				}
				last = ev.Seq
			}
			enqueued = a.enqueued
			if last > pos {
				return tx.SetPosition(ctx, name, last)
			}
			return nil
		})
		if err != nil {
			if ctx.Err() != nil {
				return false
			}
			c.log.Warn("apply events; retrying", "tenant", tenant, "events", len(batch), "attempt", attempt+1, "err", err)
			continue
		}
		for _, e := range skipped {
			c.log.Warn("event skipped", "tenant", tenant, "err", e)
		}
		c.setPosition(tenant, last)
		if enqueued > 0 && c.cfg.OnEnqueue != nil {
			c.cfg.OnEnqueue()
		}
		return true
	}
}

// retryDelay is 100 ms doubling per attempt, at most maxRetryDelay.
func retryDelay(attempt int) time.Duration {
	d := 100 * time.Millisecond
	for i := 1; i < attempt && d < maxRetryDelay; i++ {
		d *= 2
	}
	return min(d, maxRetryDelay)
}

// sleep waits d or until ctx ends, and reports whether d passed.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
