package engine

import (
	"cmp"
	"slices"
	"strings"
	"time"

	"github.com/callbridge/callbridge"
)

// Timers.
const (
	// ReservationTTL is how long a make_call or consultation_call reservation (the CallID
	// returned by Plan and recorded by Apply) waits for its call_started before Tick drops it.
	ReservationTTL = 60 * time.Second
	// IdempotencyWindow is how long a command's IdempotencyKey is remembered.
	IdempotencyWindow = 10 * time.Minute
	// DispositionWindow is how long after a call ended the agents who handled it may still
	// set its disposition (set_disposition).
	DispositionWindow = time.Hour
)

// Config configures an Engine.
type Config struct {
	// Directory lists the tenants with their DIDs, queues and users; users with a Device are
	// agents. It must pass CheckDirectory.
	Directory callbridge.Directory
	// Capabilities says what the driver can do. A command that needs a switch command the
	// driver cannot do is refused with ENotSupported; a nil map supports nothing. Wrap-up
	// pauses are only output when SwitchSetMemberState is supported.
	Capabilities callbridge.Capabilities
	// NewCallID returns a new CallID (a ULID) for time t. Required; tests pass a deterministic
	// generator. It must not return an id it returned before.
	NewCallID func(t time.Time) callbridge.CallID
	// Now is the start time: the engine's clock starts here and agents are logged_out since Now.
	Now time.Time
	// DesktopGrace is how long an agent who had a desktop may be without one before they are
	// made not_ready with reason desktop_lost. 0 turns desktop_lost off.
	DesktopGrace time.Duration
	// HeartbeatTimeout, when positive, counts a desktop as gone once it has not been heard
	// from (DesktopHeartbeat) for that long, even if it never detached.
	HeartbeatTimeout time.Duration

	// Limits of one call's attached data (see limits.go; 0: the default): keys per call
	// (DefaultMaxDataKeys, 64), bytes per key (64), bytes per value (4096), bytes of keys and
	// values together (32768). Commands that would pass one are refused; switch variables are
	// cut to them.
	MaxDataKeys, MaxDataKeyBytes, MaxDataValueBytes, MaxDataBytes int
	// MaxConnections bounds the parties of one call (0: DefaultMaxConnections, 64) and
	// MaxMemberships the queue memberships of one agent (0: DefaultMaxMemberships, 128).
	MaxConnections, MaxMemberships int
}

// Output is what one input produces: domain events for the event log (in order) and switch
// commands for the driver (to be carried out in order). Both are nil when nothing happened.
type Output struct {
	Events   []callbridge.Event
	Commands []callbridge.SwitchCommand
	// Warnings: what the input brought that a limit kept out (limits.go); the runtime logs
	// each one.
	Warnings []Warning
}

// Engine is the state machine of one site. Create it with New. Not safe for concurrent use.
type Engine struct {
	caps      callbridge.Capabilities
	newID     func(time.Time) callbridge.CallID
	now       time.Time
	dir       *directory
	grace     time.Duration
	heartbeat time.Duration
	lim       limits

	calls    map[string]*call // by PBXCallID
	byID     map[callbridge.CallID]*call
	devCalls map[callbridge.DeviceID]map[string]struct{} // device → PBXCallIDs it has a connection on
	agents   map[callbridge.AgentKey]*agent
	resv     map[callbridge.CallID]*reservation
	idem     map[idemKey]idemEntry
	// inflight: idempotency keys of commands staged and not yet applied or aborted.
	inflight map[idemKey]callbridge.CommandName
	// claimed: reserved CallIDs that a call_started took (by reservation or correlation id),
	// kept ReservationTTL so that a late Apply does not reserve them again.
	claimed map[callbridge.CallID]time.Time
	// handled: ended calls that agents answered, kept DispositionWindow for set_disposition.
	handled map[callbridge.CallID]*handledCall

	// The current step (one public method call).
	out     *Output
	touched map[callbridge.AgentKey]bool
	// leaving: per call, the agents whose connection to it ended during this step; they
	// still receive its events of this step (see emit).
	leaving map[*call][]leaver
	// resync is true while a snapshot is applied: calls it clears ended at an unknown time,
	// so they start no wrap-up (its pause would fight the member states just reported).
	resync bool
}

// New returns an engine for cfg. Errors (*callbridge.Error, code invalid): NewCallID is nil,
// or the directory breaks a rule of CheckDirectory.
func New(cfg Config) (*Engine, error) {
	if cfg.NewCallID == nil {
		return nil, callbridge.Errorf(callbridge.EInvalid, "engine: NewCallID is required")
	}
	dir, err := buildDirectory(cfg.Directory)
	if err != nil {
		return nil, err
	}
	e := &Engine{
		caps:      cfg.Capabilities,
		newID:     cfg.NewCallID,
		now:       cfg.Now.UTC(),
		dir:       dir,
		grace:     max(cfg.DesktopGrace, 0),
		heartbeat: max(cfg.HeartbeatTimeout, 0),
		lim:       limitsOf(cfg),
		calls:     map[string]*call{},
		byID:      map[callbridge.CallID]*call{},
		devCalls:  map[callbridge.DeviceID]map[string]struct{}{},
		agents:    map[callbridge.AgentKey]*agent{},
		resv:      map[callbridge.CallID]*reservation{},
		idem:      map[idemKey]idemEntry{},
		inflight:  map[idemKey]callbridge.CommandName{},
		handled:   map[callbridge.CallID]*handledCall{},
		claimed:   map[callbridge.CallID]time.Time{},
		touched:   map[callbridge.AgentKey]bool{},
	}
	e.syncAgents()
	return e, nil
}

// Reload replaces the directory and keeps the state: calls stay as they are (with their
// tenant), agents keep their memberships and wrap-up, new agents start logged_out, agents no
// longer configured are forgotten. d should pass CheckDirectory; entries that do not are
// ignored (of two duplicates the first wins). State changes that follow from the new
// directory (for example an agent whose device changed) are emitted with the next input.
func (e *Engine) Reload(d callbridge.Directory) {
	dir, _ := buildDirectory(d)
	e.dir = dir
	e.syncAgents()
}

// syncAgents makes e.agents match the directory.
func (e *Engine) syncAgents() {
	seen := map[callbridge.AgentKey]bool{}
	for _, tid := range e.dir.order {
		t := e.dir.tenants[tid]
		for name, u := range t.users {
			if u.Device == "" {
				continue
			}
			key := callbridge.AgentKey{Tenant: tid, Agent: callbridge.AgentID(name)}
			if e.dir.devices[u.Device] != key {
				continue // a duplicate device left out of the index
			}
			seen[key] = true
			a := e.agents[key]
			if a == nil {
				a = &agent{
					key: key, members: map[callbridge.QueueName]member{}, state: callbridge.AgentLoggedOut, since: e.now,
					cause: callbridge.AvailabilityCause{Source: "callbridge", Event: "start", Time: e.now},
					desks: map[string]time.Time{},
				}
				e.agents[key] = a
			}
			a.user = u
			e.touched[key] = true
		}
	}
	for key := range e.agents {
		if !seen[key] {
			delete(e.agents, key)
			delete(e.touched, key)
		}
	}
}

// begin starts a step at time t.
func (e *Engine) begin(t time.Time) {
	e.advance(t)
	e.out = &Output{}
	clear(e.leaving)
}

// end finishes a step: the follow-ups of the step (a log-out asked for during a call, an
// agent without a desktop), then agent events for every agent whose presented state may have
// changed.
func (e *Engine) end() Output {
	for _, key := range sortedKeys(e.touched, compareAgentKey) {
		if a := e.agents[key]; a != nil {
			e.maybeLogoutAfter(a)
			e.deskCheck(a)
		}
	}
	e.flushAgents()
	out := *e.out
	e.out = nil
	return out
}

// advance moves the engine's clock to t when t is later.
func (e *Engine) advance(t time.Time) time.Time {
	if !t.IsZero() {
		if t = t.UTC(); t.After(e.now) {
			e.now = t
		}
	}
	return e.now
}

// command appends a switch command to the step's output.
func (e *Engine) command(c callbridge.SwitchCommand) {
	e.out.Commands = append(e.out.Commands, c)
}

// Calls returns the active calls of tenant (deep copies), sorted by StartedAt, then CallID.
// An unknown tenant has none.
func (e *Engine) Calls(tenant callbridge.TenantID) []callbridge.Call {
	var out []callbridge.Call
	for _, c := range e.calls {
		if c.m.Tenant == tenant && tenant != "" {
			out = append(out, c.view())
		}
	}
	sortCalls(out)
	return out
}

// Agents returns every agent of tenant, sorted by ID. An unknown tenant has none.
func (e *Engine) Agents(tenant callbridge.TenantID) []callbridge.Agent {
	var out []callbridge.Agent
	for key, a := range e.agents {
		if key.Tenant == tenant {
			out = append(out, a.view())
		}
	}
	slices.SortFunc(out, func(a, b callbridge.Agent) int { return strings.Compare(string(a.ID), string(b.ID)) })
	return out
}

// AgentKeys returns every agent of every tenant, sorted by tenant, then agent.
func (e *Engine) AgentKeys() []callbridge.AgentKey {
	return sortedKeys(e.agents, compareAgentKey)
}

// Counts returns the number of active calls and of agents per state, over every tenant
// (metrics).
func (e *Engine) Counts() (calls int, agents map[callbridge.AgentState]int) {
	agents = make(map[callbridge.AgentState]int, 5)
	for _, a := range e.agents {
		agents[a.state]++
	}
	return len(e.calls), agents
}

// Snapshot returns what agent's desktop needs to draw itself: the agent, the calls their
// device has a connection on (sorted like Calls) and the tenant's reason codes. Seq is left 0
// for the caller to fill in. Errors: ENotFound for an unknown tenant or agent.
func (e *Engine) Snapshot(tenant callbridge.TenantID, agent callbridge.AgentID) (callbridge.AgentSnapshot, error) {
	t := e.dir.tenants[tenant]
	if t == nil {
		return callbridge.AgentSnapshot{}, callbridge.Errorf(callbridge.ENotFound, "tenant %q not found", tenant)
	}
	a := e.agents[callbridge.AgentKey{Tenant: tenant, Agent: agent}]
	if a == nil {
		return callbridge.AgentSnapshot{}, callbridge.Errorf(callbridge.ENotFound, "agent %q not found", agent)
	}
	snap := callbridge.AgentSnapshot{Agent: a.view(), Calls: []callbridge.Call{}}
	for pbx := range e.devCalls[a.user.Device] {
		if c := e.calls[pbx]; c != nil && c.m.Tenant == tenant {
			snap.Calls = append(snap.Calls, c.view())
		}
	}
	sortCalls(snap.Calls)
	snap.ReasonCodes = append(snap.ReasonCodes, t.cfg.ReasonCodes...)
	return snap, nil
}

func sortCalls(cs []callbridge.Call) {
	slices.SortFunc(cs, func(a, b callbridge.Call) int {
		if c := a.StartedAt.Compare(b.StartedAt); c != 0 {
			return c
		}
		return cmp.Compare(a.ID, b.ID)
	})
}

// Tick runs the timers at now: wrap-ups whose WrapUpUntil is not after now end (with an
// unpause command for callbridge's wrap_up pauses), desktops not heard from for
// HeartbeatTimeout count as gone, agents whose last desktop has been gone for DesktopGrace
// become not_ready desktop_lost (see presence.go), make_call/consultation_call reservations
// older than ReservationTTL are dropped, idempotency keys older than IdempotencyWindow and
// handled calls older than DispositionWindow are forgotten. Returns the agent events and switch commands this causes.
func (e *Engine) Tick(now time.Time) Output {
	e.begin(now)
	for _, key := range sortedKeys(e.agents, compareAgentKey) {
		a := e.agents[key]
		if !a.wrapUntil.IsZero() && !a.wrapUntil.After(e.now) {
			e.endWrapUp(a)
		}
		e.expireDesktops(a)
		e.deskCheck(a)
	}
	for id, h := range e.handled {
		if e.now.Sub(h.call.EndedAt) >= DispositionWindow {
			delete(e.handled, id)
		}
	}
	for id, r := range e.resv {
		if e.now.Sub(r.at) >= ReservationTTL {
			delete(e.resv, id)
		}
	}
	for id, at := range e.claimed {
		if e.now.Sub(at) >= ReservationTTL {
			delete(e.claimed, id)
		}
	}
	for k, v := range e.idem {
		if e.now.Sub(v.at) >= IdempotencyWindow {
			delete(e.idem, k)
		}
	}
	return e.end()
}

// sortedKeys returns the keys of m sorted with cmp.
func sortedKeys[K comparable, V any](m map[K]V, cmp func(a, b K) int) []K {
	keys := make([]K, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, cmp)
	return keys
}

func compareAgentKey(a, b callbridge.AgentKey) int {
	if c := strings.Compare(string(a.Tenant), string(b.Tenant)); c != 0 {
		return c
	}
	return strings.Compare(string(a.Agent), string(b.Agent))
}
