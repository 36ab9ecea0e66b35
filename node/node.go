// Package node runs one site: it owns the engine in a single goroutine (so the model needs no
// locks), feeds it the driver's switch events, desktop commands and timer ticks, appends the
// engine's domain events to the event log in order, and carries the engine's switch commands
// out through the driver. It implements callbridge.Commander for the gateway.
package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/callbridge/callbridge"
	"github.com/callbridge/callbridge/engine"
	"github.com/callbridge/callbridge/hub"
	"github.com/callbridge/callbridge/metrics"
)

// EventLog is where the node appends its events: the JetStream Appender (nats.Appender) in
// production, Synchronous(log) for replays and tests.
type EventLog interface {
	// Append queues ev, in the order of calls. stored, when not nil, is called once ev is
	// stored, with its sequence and its frame ({"seq":…,"type":…} JSON, shared, never to be
	// modified), in append order, on one goroutine. Append blocks while the log holds too
	// many events it could not store yet: that stops the loop, and so the switch's reader
	// (push back, never a drop). Errors: an EInvalid *callbridge.Error for an event that
	// cannot be stored (nothing queued), or ctx's error.
	Append(ctx context.Context, ev callbridge.Event, stored func(seq uint64, frame []byte)) error
	// Barrier queues fn to run, on the same goroutine as stored, once every event appended
	// before it is stored.
	Barrier(ctx context.Context, fn func()) error
	// Status says how many events are held and, while the log refuses appends, why.
	Status() (held int, err error)
}

// Config configures a Node.
type Config struct {
	Driver callbridge.Driver
	Engine *engine.Engine
	// Log receives every domain event, in engine order, from the loop goroutine.
	Log EventLog
	// StartSeq is the log's last sequence when the node starts (snapshots drawn before the
	// first event is stored carry it).
	StartSeq uint64
	// Hub, when set, receives every stored event for the node's sockets (hub.Publish), and
	// View the agents' snapshots, each with the sequence of the last event it reflects.
	Hub    *hub.Hub
	View   *hub.View
	Logger *slog.Logger
	// Now is the clock (default time.Now).
	Now func() time.Time
	// TickInterval is how often timers (wrap-up, reservations) are checked (default 250 ms).
	TickInterval time.Duration
	// OnEvent, if set, is called with each event (Seq set) once it is stored, in order, on
	// the log's goroutine (tests, the replay command, the load harness).
	OnEvent func(callbridge.Event)
	// Metrics counts events and commands; nil counts nothing.
	Metrics *metrics.Metrics

	// State, when set, receives the engine's state (engine.MarshalState) every SaveEvery
	// events or SaveInterval, whichever comes first, and once more at a clean stop, with the
	// sequence of the last event it reflects, so that a restart restores it and replays only
	// the log after it (engine.Restore, engine.Recover).
	State StateSaver
	// SaveEvery (default 50,000 events) and SaveInterval (default 10 s) pace the saves.
	SaveEvery    int
	SaveInterval time.Duration
	// Restored says the engine was restored from a saved state: Run first takes every
	// desktop of the saved state as gone (engine.DetachAllDesktops), since their sockets
	// belonged to the process that stopped.
	Restored bool
}

// StateSaver keeps the engine's saved state (nats.StateStore).
type StateSaver interface {
	Save(ctx context.Context, seq uint64, state []byte) error
}

// savedState is one state waiting to be saved.
type savedState struct {
	seq   uint64
	state []byte
}

// Node is one running site. Create it with New, start it with Run.
type Node struct {
	cfg     Config
	log     *slog.Logger
	inbox   chan func()
	linkUp  atomic.Bool
	synced  atomic.Bool
	cmdQ    chan cmdBatch
	running atomic.Bool
	// last is the sequence of the last event stored (StartSeq before any).
	last atomic.Uint64
	// unsaved counts the events appended since the last state save; lastSave is when it was
	// asked for. Loop goroutine only.
	unsaved  int
	lastSave time.Time
	// saves hands the newest state to the saver (capacity 1: a newer state replaces one
	// not yet taken).
	saves chan savedState
	wg    sync.WaitGroup
	// stopped is closed when Run's loop has ended (a new one for each Run).
	stopped atomic.Pointer[chan struct{}]
}

var (
	_ callbridge.Commander           = (*Node)(nil)
	_ callbridge.Presence            = (*Node)(nil)
	_ callbridge.AvailabilityService = (*Node)(nil)
)

// New returns a Node; nothing runs until Run.
func New(cfg Config) *Node {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.TickInterval <= 0 {
		cfg.TickInterval = 250 * time.Millisecond
	}
	if cfg.SaveEvery <= 0 {
		cfg.SaveEvery = 50_000
	}
	if cfg.SaveInterval <= 0 {
		cfg.SaveInterval = 10 * time.Second
	}
	n := &Node{
		cfg:   cfg,
		log:   cfg.Logger,
		inbox: make(chan func(), inboxLen),
		cmdQ:  make(chan cmdBatch, 256),
		saves: make(chan savedState, 1),
	}
	n.last.Store(cfg.StartSeq)
	return n
}

// inboxLen caps what waits for the loop: switch events (a full inbox stops the switch's
// reader) and requests (a full inbox refuses them with EUnavailable).
const inboxLen = 1024

// Run runs the engine loop and the driver until ctx ends. It returns nil after a clean stop,
// or the driver's fatal error (for example a rejected login on the first connect).
func (n *Node) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stopped := make(chan struct{})
	n.stopped.Store(&stopped)
	n.running.Store(true)
	defer n.running.Store(false)
	defer close(stopped)

	driverErr := make(chan error, 1)
	if n.cfg.State != nil {
		n.wg.Add(1)
		go func() {
			defer n.wg.Done()
			n.saver(ctx)
		}()
	}
	n.wg.Add(2)
	go func() {
		defer n.wg.Done()
		err := n.cfg.Driver.Run(ctx, func(ev callbridge.SwitchEvent) { n.emit(ctx, ev) })
		if err != nil && !errors.Is(err, context.Canceled) {
			driverErr <- err
		}
		cancel()
	}()
	go func() {
		defer n.wg.Done()
		n.commandWorker(ctx)
	}()

	tick := time.NewTicker(n.cfg.TickInterval)
	defer tick.Stop()
	n.lastSave = n.cfg.Now()
	if n.cfg.Restored {
		n.handle(ctx, n.cfg.Engine.DetachAllDesktops(n.cfg.Now()))
	}
	n.publishAll(ctx)
	var err error
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case f := <-n.inbox:
			f()
		case <-tick.C:
			n.handle(ctx, n.cfg.Engine.Tick(n.cfg.Now()))
			if n.unsaved > 0 && n.cfg.Now().Sub(n.lastSave) >= n.cfg.SaveInterval {
				n.save(ctx)
			}
		}
	}
	n.finalSave()
	cancel()
	n.wg.Wait()
	select {
	case err = <-driverErr:
	default:
	}
	return err
}

// emit is the driver's callback: it hands the event to the loop, keeping switch order.
func (n *Node) emit(ctx context.Context, ev callbridge.SwitchEvent) {
	switch ev.Type {
	case callbridge.SwitchLinkUp:
		n.linkUp.Store(true)
	case callbridge.SwitchLinkDown:
		n.linkUp.Store(false)
		n.synced.Store(false)
	case callbridge.SwitchSnapshot:
		n.synced.Store(true)
	}
	if ev.Time.IsZero() {
		ev.Time = n.cfg.Now()
	}
	f := func() { n.handle(ctx, n.cfg.Engine.HandleSwitchEvent(ev)) }
	select {
	case n.inbox <- f:
	case <-ctx.Done():
	}
}

// handle appends out's events to the log and queues its switch commands. Loop goroutine
// only. It blocks while the log holds too many events (push back) and while the switch
// command queue is full.
func (n *Node) handle(ctx context.Context, out engine.Output) {
	snaps := n.snapshots(out.Events)
	for i, ev := range out.Events {
		ev, snap := ev, snaps[i]
		err := n.cfg.Log.Append(ctx, ev, func(seq uint64, frame []byte) { n.stored(ev, seq, frame, snap) })
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			// Only an event the log cannot represent gets here (EInvalid): a bug, and loud.
			n.log.Error("append event", "type", ev.Type, "tenant", ev.Tenant, "err", err)
			n.cfg.Metrics.EventLogError()
		}
	}
	if len(out.Commands) > 0 {
		select {
		case n.cmdQ <- cmdBatch{cmds: out.Commands}:
		case <-ctx.Done():
		}
	}
	for _, w := range out.Warnings {
		n.log.Warn("engine", "warning", w)
	}
	if n.unsaved += len(out.Events); n.unsaved >= n.cfg.SaveEvery {
		n.save(ctx)
	}
}

// save asks for the engine's state to be saved once every event appended so far is stored
// (it then reflects exactly the events up to the last stored sequence). Loop goroutine only.
func (n *Node) save(ctx context.Context) {
	if n.cfg.State == nil {
		return
	}
	n.unsaved, n.lastSave = 0, n.cfg.Now()
	state, err := n.cfg.Engine.MarshalState()
	if err != nil {
		n.log.Error("engine state cannot be saved", "err", err)
		return
	}
	_ = n.cfg.Log.Barrier(ctx, func() {
		s := savedState{seq: n.last.Load(), state: state}
		for {
			select {
			case n.saves <- s:
				return
			default:
			}
			select { // replace the older state nobody took yet
			case <-n.saves:
			default:
			}
		}
	})
}

// saver writes the states handed to it, one at a time, until ctx ends.
func (n *Node) saver(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case s := <-n.saves:
			sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			if err := n.cfg.State.Save(sctx, s.seq, s.state); err != nil && ctx.Err() == nil {
				n.log.Error("save engine state", "seq", s.seq, "bytes", len(s.state), "err", err)
			} else if err == nil {
				n.log.Debug("engine state saved", "seq", s.seq, "bytes", len(s.state))
			}
			cancel()
		}
	}
}

// finalSave saves the state at a clean stop, once every event is stored (bounded: a log
// that refuses appends gives up after 10 s; the next start replays more of the log).
func (n *Node) finalSave() {
	if n.cfg.State == nil {
		return
	}
	state, err := n.cfg.Engine.MarshalState()
	if err != nil {
		n.log.Error("engine state cannot be saved", "err", err)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	done := make(chan uint64, 1)
	if err := n.cfg.Log.Barrier(ctx, func() { done <- n.last.Load() }); err != nil {
		return
	}
	select {
	case seq := <-done:
		if err := n.cfg.State.Save(ctx, seq, state); err != nil {
			n.log.Error("save engine state at stop", "seq", seq, "err", err)
		}
	case <-ctx.Done():
		n.log.Warn("engine state not saved at stop: events still held", "err", ctx.Err())
	}
}

// snapshots returns, for each event of a step, the snapshots of the agents whose last event
// in the step it is, drawn from the engine after the step. Nil without a View.
func (n *Node) snapshots(evs []callbridge.Event) [][]callbridge.AgentSnapshot {
	out := make([][]callbridge.AgentSnapshot, len(evs))
	if n.cfg.View == nil || len(evs) == 0 {
		return out
	}
	lastOf := map[callbridge.AgentKey]int{}
	for i, ev := range evs {
		if ev.Type.IsCall() {
			for _, a := range ev.Audience {
				lastOf[callbridge.AgentKey{Tenant: ev.Tenant, Agent: a}] = i
			}
		} else if ev.Agent != "" {
			lastOf[callbridge.AgentKey{Tenant: ev.Tenant, Agent: ev.Agent}] = i
		}
	}
	for k, i := range lastOf {
		if snap, err := n.cfg.Engine.Snapshot(k.Tenant, k.Agent); err == nil {
			out[i] = append(out[i], snap)
		}
	}
	return out
}

// stored runs on the log's goroutine once ev is stored at seq: the node's sockets get it,
// the view the agents' new snapshots.
func (n *Node) stored(ev callbridge.Event, seq uint64, frame []byte, snaps []callbridge.AgentSnapshot) {
	n.last.Store(seq)
	// Snapshots first (announced to the hub, so that subscribing after their sequence is
	// not taken for a position from another log), then the fan-out: whoever sees the event
	// can only draw a snapshot that already reflects it.
	if n.cfg.Hub != nil {
		n.cfg.Hub.Announce(seq)
	}
	for _, s := range snaps {
		s.Seq = seq
		n.cfg.View.Put(s)
	}
	if n.cfg.Hub != nil {
		agents := ev.Audience
		if !ev.Type.IsCall() {
			agents = []callbridge.AgentID{ev.Agent}
		}
		n.cfg.Hub.Publish(hub.Message{Seq: seq, Tenant: ev.Tenant, Agents: agents, Frame: frame})
	}
	n.cfg.Metrics.Event(ev.Type)
	if n.cfg.OnEvent != nil {
		ev.Seq = seq
		n.cfg.OnEvent(ev)
	}
}

// publishAll puts every agent's snapshot into the view, at the log's position once every
// event appended so far is stored. Loop goroutine only.
func (n *Node) publishAll(ctx context.Context) {
	if n.cfg.View == nil {
		return
	}
	var snaps []callbridge.AgentSnapshot
	for _, k := range n.cfg.Engine.AgentKeys() {
		if snap, err := n.cfg.Engine.Snapshot(k.Tenant, k.Agent); err == nil {
			snaps = append(snaps, snap)
		}
	}
	_ = n.cfg.Log.Barrier(ctx, func() {
		seq := n.last.Load()
		for _, s := range snaps {
			s.Seq = seq
			n.cfg.View.Put(s)
		}
	})
}

// commandWorker carries out engine-initiated switch commands (wrap-up pauses …) in order.
func (n *Node) commandWorker(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case b := <-n.cmdQ:
			for _, c := range b.cmds {
				cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
				if err := n.cfg.Driver.Execute(cctx, c); err != nil {
					n.log.Warn("engine switch command failed", "type", c.Type, "device", c.Device, "err", err)
				}
				cancel()
			}
			if b.done != nil {
				close(b.done)
			}
		}
	}
}

// cmdBatch is one step's switch commands for the command worker; done, when set, is closed
// once they (and every batch before) are carried out.
type cmdBatch struct {
	cmds []callbridge.SwitchCommand
	done chan struct{}
}

// call runs f in the loop goroutine and waits for it.
func (n *Node) call(ctx context.Context, f func()) error {
	if !n.running.Load() {
		return callbridge.Errorf(callbridge.EUnavailable, "node is not running")
	}
	var stopped <-chan struct{}
	if p := n.stopped.Load(); p != nil {
		stopped = *p
	}
	done := make(chan struct{})
	select {
	case n.inbox <- func() { f(); close(done) }:
	case <-stopped:
		return callbridge.Errorf(callbridge.EUnavailable, "node is not running")
	default:
		// A full inbox: the loop is behind (or held by an event log that refuses appends).
		// Refuse rather than queue without bound.
		n.cfg.Metrics.Refused()
		return callbridge.Errorf(callbridge.EUnavailable, "node is busy (%d requests and switch events waiting); try again", len(n.inbox))
	}
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return callbridge.Errorf(callbridge.EUnavailable, "node did not answer in time")
		}
		return ctx.Err()
	case <-stopped:
		return callbridge.Errorf(callbridge.EUnavailable, "node is not running")
	}
}

// Do validates cmd in the engine, carries out its switch commands and commits it. The
// command's outcome arrives as events. Errors are *callbridge.Error.
func (n *Node) Do(ctx context.Context, cmd callbridge.Command) (res callbridge.CommandResult, err error) {
	defer func() { n.cfg.Metrics.Command(cmd.Name, err) }()
	if cmd.Time.IsZero() {
		cmd.Time = n.cfg.Now()
	}
	var plan engine.Plan
	var perr error
	err = n.call(ctx, func() {
		if plan, perr = n.cfg.Engine.Plan(cmd); perr == nil {
			// Staged in the same turn of the loop: the switch's events, which may overtake
			// the reply to the switch command, find the reservation and the transfer's data.
			n.cfg.Engine.Stage(cmd, plan)
		}
	})
	if err != nil {
		return callbridge.CommandResult{}, err
	}
	if perr != nil {
		return callbridge.CommandResult{}, perr
	}
	// The switch commands and the commit run to the end even when the caller gives up
	// (a closed WebSocket): a command the switch accepted must be committed.
	xctx := context.WithoutCancel(ctx)
	for _, sc := range plan.Commands {
		cctx, cancel := context.WithTimeout(xctx, commandTimeout)
		err := n.cfg.Driver.Execute(cctx, sc)
		cancel()
		if err != nil {
			var e *callbridge.Error
			if !errors.As(err, &e) {
				err = fmt.Errorf("%s: %w", sc.Type, err)
			}
			_ = n.call(xctx, func() { n.cfg.Engine.Abort(cmd, plan) })
			return callbridge.CommandResult{}, err
		}
	}
	if err := n.call(xctx, func() { n.handle(xctx, n.cfg.Engine.Apply(cmd, plan)) }); err != nil {
		return callbridge.CommandResult{}, err
	}
	return plan.Result, nil
}

// commandTimeout bounds one switch command of Do.
const commandTimeout = 15 * time.Second

// DesktopAttached records a desktop of the agent (callbridge.Presence), with the node's clock.
func (n *Node) DesktopAttached(ctx context.Context, tenant callbridge.TenantID, agent callbridge.AgentID, desktop string) error {
	return n.presence(ctx, func(now time.Time) (engine.Output, error) {
		return n.cfg.Engine.DesktopAttached(tenant, agent, desktop, now)
	})
}

// DesktopHeartbeats records that each agent's desktop showed life, in one turn of the loop
// (the gateway's heartbeat for every agent it holds a desktop of).
func (n *Node) DesktopHeartbeats(ctx context.Context, agents []callbridge.AgentKey, desktop string) error {
	return n.presence(ctx, func(now time.Time) (engine.Output, error) {
		var out engine.Output
		for _, k := range agents {
			o, err := n.cfg.Engine.DesktopHeartbeat(k.Tenant, k.Agent, desktop, now)
			if err != nil {
				continue // an agent gone from the directory
			}
			out.Events = append(out.Events, o.Events...)
			out.Commands = append(out.Commands, o.Commands...)
		}
		return out, nil
	})
}

// DesktopDetached records that a desktop of the agent went away (callbridge.Presence).
func (n *Node) DesktopDetached(ctx context.Context, tenant callbridge.TenantID, agent callbridge.AgentID, desktop string) error {
	return n.presence(ctx, func(now time.Time) (engine.Output, error) {
		return n.cfg.Engine.DesktopDetached(tenant, agent, desktop, now)
	})
}

// DesktopHeartbeat records that a desktop of the agent showed life (callbridge.Presence).
func (n *Node) DesktopHeartbeat(ctx context.Context, tenant callbridge.TenantID, agent callbridge.AgentID, desktop string) error {
	return n.presence(ctx, func(now time.Time) (engine.Output, error) {
		return n.cfg.Engine.DesktopHeartbeat(tenant, agent, desktop, now)
	})
}

func (n *Node) presence(ctx context.Context, f func(time.Time) (engine.Output, error)) error {
	var perr error
	err := n.call(ctx, func() {
		var out engine.Output
		if out, perr = f(n.cfg.Now()); perr == nil {
			n.handle(ctx, out)
		}
	})
	if err != nil {
		return err
	}
	return perr
}

// Availability explains whether the agent is routable (callbridge.AvailabilityService).
func (n *Node) Availability(ctx context.Context, tenant callbridge.TenantID, agent callbridge.AgentID) (callbridge.Availability, error) {
	var av callbridge.Availability
	var aerr error
	if err := n.call(ctx, func() { av, aerr = n.cfg.Engine.Availability(tenant, agent) }); err != nil {
		return av, err
	}
	return av, aerr
}

// Snapshot returns the agent's state and calls with the log position they correspond to:
// from the View when the node has one (no round trip through the loop), else drawn in the
// loop at the position reached once every event before it is stored.
func (n *Node) Snapshot(ctx context.Context, tenant callbridge.TenantID, agent callbridge.AgentID) (callbridge.AgentSnapshot, error) {
	if n.cfg.View != nil {
		if snap, ok := n.cfg.View.Get(callbridge.AgentKey{Tenant: tenant, Agent: agent}); ok {
			return snap, nil
		}
	}
	var snap callbridge.AgentSnapshot
	var serr error
	done := make(chan struct{})
	err := n.call(ctx, func() {
		if snap, serr = n.cfg.Engine.Snapshot(tenant, agent); serr != nil {
			close(done)
			return
		}
		if serr = n.cfg.Log.Barrier(ctx, func() { snap.Seq = n.last.Load(); close(done) }); serr != nil {
			close(done)
		}
	})
	if err != nil {
		return snap, err
	}
	select {
	case <-done:
	case <-ctx.Done():
		return snap, callbridge.Errorf(callbridge.EUnavailable, "node did not answer in time")
	}
	return snap, serr
}

// Ready returns nil once the switch link is up and resynchronised.
func (n *Node) Ready() error {
	if !n.running.Load() {
		return callbridge.Errorf(callbridge.EUnavailable, "node is not running")
	}
	if !n.linkUp.Load() || !n.synced.Load() {
		return callbridge.Errorf(callbridge.EUnavailable, "switch link is down")
	}
	if held, err := n.cfg.Log.Status(); err != nil {
		return callbridge.Errorf(callbridge.EUnavailable, "event log refuses appends (%d events held, switch reading paused): %v", held, err)
	}
	return nil
}

// Counts returns the number of active calls and of agents per state, over every tenant
// (metrics.Model).
func (n *Node) Counts(ctx context.Context) (calls int, agents map[callbridge.AgentState]int, err error) {
	err = n.call(ctx, func() { calls, agents = n.cfg.Engine.Counts() })
	return calls, agents, err
}

// Inspect runs f with the engine in the loop goroutine (tests, admin views). f must not keep
// references to engine state.
func (n *Node) Inspect(ctx context.Context, f func(e *engine.Engine)) error {
	return n.call(ctx, func() { f(n.cfg.Engine) })
}

// Syncer is implemented by drivers that can wait until every switch event received so far
// has been emitted (asterisk: a Ping round trip; sim: its queue drained).
type Syncer interface {
	Sync(ctx context.Context) error
}

// Sync waits until every event the driver has received so far has passed through the engine
// and been appended to the log, and the switch commands the engine asked for so far have
// been carried out.
func (n *Node) Sync(ctx context.Context) error {
	if s, ok := n.cfg.Driver.(Syncer); ok {
		if err := s.Sync(ctx); err != nil {
			return err
		}
	}
	done := make(chan struct{})
	if err := n.call(ctx, func() {
		select {
		case n.cmdQ <- cmdBatch{done: done}:
		case <-ctx.Done():
		}
	}); err != nil {
		return err
	}
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Driver returns the node's switch driver (tests and admin tools reach the simulated PBX's
// extra controls through it).
func (n *Node) Driver() callbridge.Driver { return n.cfg.Driver }
