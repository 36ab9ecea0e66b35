package webhook

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/callbridge/callbridge"
	"github.com/callbridge/callbridge/metrics"
)

// Defaults of Config.
const (
	DefaultTimeout      = 10 * time.Second
	DefaultMaxAttempts  = 15
	DefaultBaseBackoff  = 10 * time.Second
	DefaultMaxBackoff   = 6 * time.Hour
	DefaultWorkers      = 16
	DefaultPerWebhook   = 4
	DefaultPollInterval = time.Second
	DefaultRetention    = 30 * 24 * time.Hour
)

// UserAgent is sent with every delivery.
const UserAgent = "callbridge-webhooks/1"

// Config configures a Dispatcher. Store is required; zero fields take the defaults above.
type Config struct {
	Store callbridge.WebhookStore
	// Client sends the requests; default: Destinations.Client(Timeout), which does not follow
	// redirects (a 3xx is a failed attempt).
	Client *http.Client
	// Destinations restricts the addresses the default Client dials (see Destinations).
	Destinations Destinations
	Logger       *slog.Logger
	// Now is the clock; default time.Now.
	Now func() time.Time
	// Timeout bounds one attempt (connect, send, response headers and up to 64 KiB of body).
	Timeout time.Duration
	// MaxAttempts is how many attempts a delivery gets before it becomes a dead letter.
	// With the default backoff, 15 attempts span about a day (the
	// last retries are 6 h apart).
	MaxAttempts int
	// BaseBackoff and MaxBackoff shape the retry delays: see Backoff.
	BaseBackoff, MaxBackoff time.Duration
	// NoJitter turns off the ±10 % randomisation of retry delays (tests).
	NoJitter bool
	// Workers bounds the attempts in flight; PerWebhook bounds them per endpoint, so that a
	// slow endpoint cannot take every worker.
	Workers, PerWebhook int
	// PollInterval is how often the outbox is checked for due deliveries (Notify wakes the
	// dispatcher at once for new ones).
	PollInterval time.Duration
	// Retention is how long delivered and dead-letter deliveries are kept; negative keeps
	// them forever.
	Retention time.Duration
	// Metrics counts delivery attempts by result; nil counts nothing.
	Metrics *metrics.Metrics
}

// Dispatcher sends the webhook outbox. Create it with New, run it with Run.
type Dispatcher struct {
	cfg  Config
	log  *slog.Logger
	wake chan struct{}

	mu       sync.Mutex
	inflight map[string]int // webhook id → attempts in flight
	total    int
	wg       sync.WaitGroup
}

// New returns a dispatcher for cfg; nothing runs until Run.
func New(cfg Config) *Dispatcher {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&cfg.Timeout, DefaultTimeout)
	def(&cfg.BaseBackoff, DefaultBaseBackoff)
	def(&cfg.MaxBackoff, DefaultMaxBackoff)
	def(&cfg.PollInterval, DefaultPollInterval)
	if cfg.Retention == 0 {
		cfg.Retention = DefaultRetention
	}
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = DefaultMaxAttempts
	}
	if cfg.Workers <= 0 {
		cfg.Workers = DefaultWorkers
	}
	if cfg.PerWebhook <= 0 {
		cfg.PerWebhook = DefaultPerWebhook
	}
	if cfg.Client == nil {
		cfg.Client = cfg.Destinations.Client(cfg.Timeout)
	}
	return &Dispatcher{
		cfg:      cfg,
		log:      cfg.Logger.With("component", "webhooks"),
		wake:     make(chan struct{}, 1),
		inflight: map[string]int{},
	}
}

// Notify wakes the dispatcher: the outbox has new deliveries. It never blocks.
func (d *Dispatcher) Notify() {
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// Backoff returns the delay before the retry that follows failed attempt n (1-based):
// base·2^(n-1), at most max. With the defaults: 10 s, 20 s, 40 s … 6 h.
func Backoff(n int, base, max time.Duration) time.Duration {
	d := base
	for i := 1; i < n; i++ {
		if d >= max/2 {
			return max
		}
		d *= 2
	}
	return min(d, max)
}

// Run sends due deliveries until ctx ends, then waits for the attempts in flight (each
// bounded by Timeout) and returns nil. Store errors are logged and retried at the next poll.
func (d *Dispatcher) Run(ctx context.Context) error {
	poll := time.NewTicker(d.cfg.PollInterval)
	defer poll.Stop()
	prune := time.NewTicker(time.Hour)
	defer prune.Stop()
	d.prune(ctx)
	for {
		d.dispatch(ctx)
		select {
		case <-ctx.Done():
			d.wg.Wait()
			return nil
		case <-d.wake:
		case <-poll.C:
		case <-prune.C:
			d.prune(ctx)
		}
	}
}

// dispatch claims and starts what is due, within the worker limits.
func (d *Dispatcher) dispatch(ctx context.Context) {
	now := d.cfg.Now()
	due, err := d.cfg.Store.DueWebhooks(ctx, now)
	if err != nil {
		if ctx.Err() == nil {
			d.log.Warn("read outbox", "err", err)
		}
		return
	}
	for _, wh := range due {
		d.mu.Lock()
		free := min(d.cfg.PerWebhook-d.inflight[wh], d.cfg.Workers-d.total)
		d.mu.Unlock()
		if free <= 0 {
			continue
		}
		// The lease outlasts an attempt, so no other dispatcher sends it meanwhile; if this
		// process dies, the delivery is due again when the lease ends.
		lease := now.Add(2*d.cfg.Timeout + 30*time.Second)
		claimed, err := d.cfg.Store.ClaimDeliveries(ctx, wh, now, lease, free)
		if err != nil {
			if ctx.Err() == nil {
				d.log.Warn("claim deliveries", "webhook", wh, "err", err)
			}
			return
		}
		for _, p := range claimed {
			d.mu.Lock()
			d.inflight[wh]++
			d.total++
			d.mu.Unlock()
			d.wg.Go(func() {
				d.attempt(ctx, p)
				d.mu.Lock()
				if d.inflight[wh]--; d.inflight[wh] == 0 {
					delete(d.inflight, wh)
				}
				d.total--
				d.mu.Unlock()
				d.Notify() // a worker is free
			})
		}
	}
}

// attempt sends one delivery and records the outcome. A shutdown does not cut an attempt
// short: it runs to its Timeout.
func (d *Dispatcher) attempt(ctx context.Context, p callbridge.PendingDelivery) {
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), d.cfg.Timeout)
	defer cancel()
	status, err := d.send(actx, p)
	now := d.cfg.Now()
	a := callbridge.DeliveryAttempt{At: now, StatusCode: status}
	attempts := p.Attempts + 1
	log := d.log.With("webhook", p.WebhookID, "delivery", p.ID, "event", p.EventType, "attempt", attempts)
	switch {
	case err == nil:
		a.Status = callbridge.DeliveryDelivered
		log.Debug("delivered", "status", status)
		d.cfg.Metrics.WebhookDelivery("delivered")
	case attempts >= d.cfg.MaxAttempts:
		a.Status, a.Error = callbridge.DeliveryDeadLetter, err.Error()
		log.Warn("delivery failed for good; dead letter", "status", status, "err", err)
		d.cfg.Metrics.WebhookDelivery("dead_letter")
	default:
		d.cfg.Metrics.WebhookDelivery("retry")
		a.Status, a.Error = callbridge.DeliveryPending, err.Error()
		a.NextAttemptAt = now.Add(d.jitter(Backoff(attempts, d.cfg.BaseBackoff, d.cfg.MaxBackoff)))
		log.Info("delivery failed; will retry", "status", status, "err", err, "next_attempt_at", a.NextAttemptAt)
	}
	fctx, fcancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer fcancel()
	if err := d.cfg.Store.FinishAttempt(fctx, p.ID, a); err != nil {
		// The lease runs out and the delivery is sent again: at least once.
		log.Error("record delivery attempt", "err", err)
	}
}

// send POSTs the delivery and returns the HTTP status (0 without a response) and an error
// unless the status is 2xx.
func (d *Dispatcher) send(ctx context.Context, p callbridge.PendingDelivery) (int, error) {
	h, err := Headers(p.Secret, p.ID, d.cfg.Now(), p.Body)
	if err != nil {
		return 0, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.URL, bytes.NewReader(p.Body))
	if err != nil {
		return 0, fmt.Errorf("bad webhook URL: %w", err)
	}
	req.Header = h
	req.Header.Set("Content-Type", ContentType)
	req.Header.Set("User-Agent", UserAgent)
	resp, err := d.cfg.Client.Do(req)
	if err != nil {
		var ue interface{ Timeout() bool }
		if errors.As(err, &ue) && ue.Timeout() {
			return 0, fmt.Errorf("no response within %s", d.cfg.Timeout)
		}
		return 0, fmt.Errorf("send: %w", unwrapURLError(err))
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return resp.StatusCode, errors.New("HTTP " + strconv.Itoa(resp.StatusCode) + " " + http.StatusText(resp.StatusCode))
	}
	return resp.StatusCode, nil
}

// unwrapURLError drops the *url.Error wrapper, whose message repeats the URL (which may hold
// a token in its query).
func unwrapURLError(err error) error {
	var ue interface{ Unwrap() error }
	if errors.As(err, &ue) {
		if inner := ue.Unwrap(); inner != nil {
			return inner
		}
	}
	return err
}

// jitter spreads d by ±10 % so that retries of many deliveries do not come in waves.
func (d *Dispatcher) jitter(v time.Duration) time.Duration {
	if d.cfg.NoJitter || v <= 0 {
		return v
	}
	spread := int64(v) / 5
	if spread <= 0 {
		return v
	}
	return v - time.Duration(spread/2) + time.Duration(rand.Int64N(spread))
}

// prune deletes old delivered and dead-letter deliveries.
func (d *Dispatcher) prune(ctx context.Context) {
	if d.cfg.Retention < 0 {
		return
	}
	n, err := d.cfg.Store.PruneDeliveries(ctx, d.cfg.Now().Add(-d.cfg.Retention))
	switch {
	case err != nil && ctx.Err() == nil:
		d.log.Warn("prune deliveries", "err", err)
	case n > 0:
		d.log.Info("pruned old deliveries", "n", n, "retention", d.cfg.Retention)
	}
}
