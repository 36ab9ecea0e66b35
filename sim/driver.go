package sim

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/callbridge/callbridge"
)

// Driver is the simulated PBX as a callbridge.Driver, running in real time. It is safe for
// concurrent use: a mutex serialises access to the PBX, and every event, whether caused by a
// timer or by Execute, InjectCall or PressButton, is emitted in order from Run's goroutine.
type Driver struct {
	logger *slog.Logger
	now    func() time.Time
	wake   chan struct{} // capacity 1: something changed, look again

	mu       sync.Mutex
	pbx      *PBX
	running  bool
	pending  []callbridge.SwitchEvent // caused by commands, not yet handed to Run
	produced uint64                   // events caused so far (pending included)
	emitted  uint64                   // events emit has returned from
	progress chan struct{}            // closed and replaced whenever emitted or running changes
}

var _ callbridge.Driver = (*Driver)(nil)

// New returns a Driver for cfg. A zero cfg.Start is the current time; a nil cfg.Rand is
// seeded from the clock (pass a seeded one for a reproducible demo). Problems that
// cfg.Validate finds are logged as warnings; the PBX skips what it cannot use.
func New(cfg Config, logger *slog.Logger) *Driver {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	now := func() time.Time { return time.Now().UTC() }
	if cfg.Start.IsZero() {
		cfg.Start = now()
	}
	if cfg.Rand == nil {
		seed := uint64(time.Now().UnixNano())
		cfg.Rand = rand.New(rand.NewPCG(seed, seed>>1|1))
	}
	if err := cfg.Validate(); err != nil {
		logger.Warn("sim: configuration problems", "err", err)
	}
	return &Driver{
		logger:   logger,
		now:      now,
		wake:     make(chan struct{}, 1),
		pbx:      NewPBX(cfg),
		progress: make(chan struct{}),
	}
}

// Capabilities reports every switch command as supported.
func (d *Driver) Capabilities() callbridge.Capabilities { return Capabilities() }

// Run emits a snapshot and link_up, then the events of the simulated switch as they happen,
// until ctx ends; it returns ctx.Err(). Timers due while no Run was active take effect
// silently at the next Run (the snapshot shows their outcome), like a reconnect. Only one
// Run may be active at a time; a second returns an error at once.
func (d *Driver) Run(ctx context.Context, emit func(callbridge.SwitchEvent)) error {
	d.mu.Lock()
	if d.running {
		d.mu.Unlock()
		return errors.New("sim: Run is already running")
	}
	now := d.now()
	d.pbx.Advance(now) // happened while nobody listened: the snapshot covers it
	first := []callbridge.SwitchEvent{
		d.pbx.Snapshot(now),
		{Type: callbridge.SwitchLinkUp, Time: d.pbx.Now()},
	}
	d.running = true
	d.pending = nil
	d.produced = d.emitted + uint64(len(first))
	d.mu.Unlock()
	d.logger.Info("sim: switch link up")

	defer func() {
		d.mu.Lock()
		d.running = false
		d.pending = nil
		d.produced = d.emitted
		d.notify()
		d.mu.Unlock()
	}()

	d.emitAll(ctx, emit, first)
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		d.mu.Lock()
		evs := d.pending
		d.pending = nil
		more := d.pbx.Advance(d.now())
		d.produced += uint64(len(more))
		evs = append(evs, more...)
		next := d.pbx.NextDeadline()
		d.mu.Unlock()

		d.emitAll(ctx, emit, evs)

		wait := time.Hour
		if !next.IsZero() {
			wait = max(next.Sub(d.now()), 0)
		}
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-d.wake:
		case <-timer.C:
		}
	}
}

// emitAll hands evs to emit in order and records the progress for Sync.
func (d *Driver) emitAll(ctx context.Context, emit func(callbridge.SwitchEvent), evs []callbridge.SwitchEvent) {
	for _, ev := range evs {
		if ctx.Err() != nil {
			return
		}
		emit(ev)
		d.mu.Lock()
		d.emitted++
		d.notify()
		d.mu.Unlock()
	}
}

// notify wakes Sync callers; d.mu must be held.
func (d *Driver) notify() {
	close(d.progress)
	d.progress = make(chan struct{})
}

// poke wakes Run without blocking.
func (d *Driver) poke() {
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// Execute runs cmd on the simulated switch (see PBX.Execute for the events and errors) and
// queues the events it causes for Run to emit; Sync waits for them. It returns an *Error with
// EUnavailable when no Run is active (the link is down), and ctx.Err() if ctx is done.
func (d *Driver) Execute(ctx context.Context, cmd callbridge.SwitchCommand) error {
	err := d.do(ctx, func(p *PBX, now time.Time) ([]callbridge.SwitchEvent, error) {
		return p.Execute(now, cmd)
	})
	d.logger.Debug("sim: command", "type", cmd.Type, "tenant", cmd.Tenant, "pbx_call_id", cmd.PBXCallID,
		"device", cmd.Device, "err", err)
	return err
}

// PressButton presses a button on the telset dev (see PBX.PressButton); like Execute it
// needs an active Run.
func (d *Driver) PressButton(ctx context.Context, dev callbridge.DeviceID, b Button) error {
	return d.do(ctx, func(p *PBX, now time.Time) ([]callbridge.SwitchEvent, error) {
		return p.PressButton(now, dev, b)
	})
}

// Redirect moves a call nobody has answered to another target (see PBX.Redirect), as an AMI
// Redirect or a FreeSWITCH uuid_transfer by another application would; like Execute it needs
// an active Run.
func (d *Driver) Redirect(ctx context.Context, pbxCallID, to string) error {
	return d.do(ctx, func(p *PBX, now time.Time) ([]callbridge.SwitchEvent, error) {
		return p.Redirect(now, pbxCallID, to)
	})
}

func (d *Driver) do(ctx context.Context, f func(*PBX, time.Time) ([]callbridge.SwitchEvent, error)) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	d.mu.Lock()
	if !d.running {
		d.mu.Unlock()
		return callbridge.Errorf(callbridge.EUnavailable, "the simulated switch is not running")
	}
	now := d.now()
	evs := d.pbx.Advance(now)
	more, err := f(d.pbx, now)
	evs = append(evs, more...)
	d.pending = append(d.pending, evs...)
	d.produced += uint64(len(evs))
	d.mu.Unlock()
	if len(evs) > 0 {
		d.poke()
	}
	return err
}

// SetRegistered registers or unregisters the phone dev now (see PBX.SetRegistered).
func (d *Driver) SetRegistered(ctx context.Context, dev callbridge.DeviceID, registered bool) error {
	return d.do(ctx, func(p *PBX, now time.Time) ([]callbridge.SwitchEvent, error) {
		return p.SetRegistered(now, dev, registered)
	})
}

// Dial makes the phone dev dial to now (see PBX.Dial).
func (d *Driver) Dial(ctx context.Context, dev callbridge.DeviceID, to string) error {
	return d.do(ctx, func(p *PBX, now time.Time) ([]callbridge.SwitchEvent, error) {
		return p.Dial(now, dev, to)
	})
}

// PhoneTransfer transfers on the phone dev now (see PBX.PhoneTransfer).
func (d *Driver) PhoneTransfer(ctx context.Context, dev callbridge.DeviceID, to string, attended bool) error {
	return d.do(ctx, func(p *PBX, now time.Time) ([]callbridge.SwitchEvent, error) {
		return p.PhoneTransfer(now, dev, to, attended)
	})
}

// InjectCall places a specific inbound call now (see PBX.InjectCall) and returns its
// PBXCallID; its events follow from Run.
func (d *Driver) InjectCall(ctx context.Context, tenant callbridge.TenantID, ani, dnis string, data map[string]string) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	d.mu.Lock()
	id, err := d.pbx.InjectCall(d.now(), tenant, ani, dnis, data)
	d.mu.Unlock()
	d.poke()
	return id, err
}

// Sync returns once every event caused so far (by commands, buttons and timers that were due
// when Sync was called) has been emitted, that is emit has returned for it. It returns an
// *Error with EUnavailable when Run is not active, or ctx.Err(). It must not be called from
// emit (it would wait for itself).
func (d *Driver) Sync(ctx context.Context) error {
	d.mu.Lock()
	if d.running {
		more := d.pbx.Advance(d.now())
		d.pending = append(d.pending, more...)
		d.produced += uint64(len(more))
		if len(more) > 0 {
			d.poke()
		}
	}
	target := d.produced
	d.mu.Unlock()
	for {
		d.mu.Lock()
		done, running, ch := d.emitted >= target, d.running, d.progress
		d.mu.Unlock()
		if done {
			return nil
		}
		if !running {
			return callbridge.Errorf(callbridge.EUnavailable, "the simulated switch is not running")
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-ch:
		}
	}
}

// Snapshot returns the switch state now (a SwitchSnapshot event), for diagnostics.
func (d *Driver) Snapshot() callbridge.SwitchEvent {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.pbx.Snapshot(d.now())
}

// Stats returns the PBX's counters.
func (d *Driver) Stats() Stats {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.pbx.Stats()
}

// SetCallInterval changes the mean time between automatic inbound calls per tenant; 0 stops
// them (see PBX.SetCallInterval).
func (d *Driver) SetCallInterval(iv time.Duration) {
	d.mu.Lock()
	d.pbx.SetCallInterval(d.now(), iv)
	d.mu.Unlock()
	d.poke()
}
