package engine

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/callbridge/callbridge"
)

// Persistence: the engine's dynamic state as versioned JSON, so that a node can save it and
// rebuild the engine after a crash (MarshalState, Restore), then fold in the events it wrote
// after the save (Recover, recover.go) and reconcile with the switch's resync.
//
// The state is everything the engine learnt from its inputs: calls with all their
// bookkeeping, agents (memberships, presented state, wrap-up, log-out-after, device status,
// desktops), make_call/consultation_call reservations, idempotency entries, claimed call ids,
// handled calls (set_disposition), the agents whose state check is due with the next input,
// and the clock. It is not the directory, the capabilities or the limits: those come from the
// Config given to Restore. Indexes (calls by CallID, devices' calls) are rebuilt.
//
// Commands staged and not yet applied (Stage without Apply or Abort) are not part of it:
// after a restart their runtime is gone and no Apply or Abort will come, so their
// idempotency keys are free again (a retry is planned anew). Their reservations and held
// transfer data are part of it (the switch may still carry the command out).
//
// The encoding is deterministic (sorted lists, sorted object keys): the same state gives the
// same bytes, and Restore followed by MarshalState gives back the bytes it was given.

// StateVersion is the version of the JSON that MarshalState writes and Restore reads:
// {"version":2,"now":…,"calls":[…],"agents":[…],…}. Version 2 replaced version 1's
// call and handled-call audiences (an agent now receives a call's events only while on it)
// with what each agent who left a call last saw of it, added the queue connection and the
// departure a diversion comes from; no build wrote version 1 outside tests.
const StateVersion = 2

// stateV2 is the JSON document of version 2.
type stateV2 struct {
	Version      int                `json:"version"`
	Now          time.Time          `json:"now"`
	Calls        []callState        `json:"calls"`        // by PBXCallID
	Agents       []agentState       `json:"agents"`       // by tenant, agent
	Reservations []reservationState `json:"reservations"` // by CallID
	Idempotency  []idemState        `json:"idempotency"`  // by tenant, agent, key
	Claimed      []claimedState     `json:"claimed"`      // by CallID
	Handled      []handledState     `json:"handled"`      // by CallID
	// Touched: agents whose follow-ups (log-out after the call, desktop check) and
	// presentation run with the next input (after New or Reload); by tenant, agent.
	Touched []agentRef `json:"touched,omitempty"`
}

// agentRef names an agent.
type agentRef struct {
	Tenant callbridge.TenantID `json:"tenant"`
	Agent  callbridge.AgentID  `json:"agent"`
}

// callState is one call (type call). A call waiting in a queue has its queue connection
// (state queued) in Call.Connections.
type callState struct {
	Call callbridge.Call `json:"call"`
	// Seen: for each agent who answered the call and left it, the call as they last saw it.
	Seen      map[callbridge.AgentID]callbridge.Call `json:"seen,omitempty"`
	Answered  []callbridge.DeviceID                  `json:"answered,omitempty"` // sorted
	Gone      []callbridge.DeviceID                  `json:"gone,omitempty"`     // sorted
	Customer  bool                                   `json:"customer,omitempty"`
	Unrung    *departureState                        `json:"unrung,omitempty"`
	Abandoned bool                                   `json:"abandoned,omitempty"`
	Own       []string                               `json:"own,omitempty"` // sorted
	NoTenant  bool                                   `json:"no_tenant,omitempty"`
	Unclaimed bool                                   `json:"unclaimed,omitempty"`
	Pending   map[string]string                      `json:"pending,omitempty"`
	Since     map[callbridge.DeviceID]time.Time      `json:"since,omitempty"`
}

// departureState is the device a call left without an answer (type departure).
type departureState struct {
	Device callbridge.DeviceID `json:"device"`
	Agent  callbridge.AgentID  `json:"agent,omitempty"`
	Cause  callbridge.Cause    `json:"cause,omitempty"`
}

// agentState is one agent (type agent) without its directory entry; Device is the device
// the agent had when the state was saved.
type agentState struct {
	Tenant      callbridge.TenantID                  `json:"tenant"`
	Agent       callbridge.AgentID                   `json:"agent"`
	Device      callbridge.DeviceID                  `json:"device"`
	Members     map[callbridge.QueueName]memberState `json:"members,omitempty"`
	WrapUntil   time.Time                            `json:"wrap_until,omitzero"`
	WrapPaused  bool                                 `json:"wrap_paused,omitempty"`
	State       callbridge.AgentState                `json:"state"`
	Reason      string                               `json:"reason,omitempty"`
	Since       time.Time                            `json:"since"`
	On          bool                                 `json:"on,omitempty"`
	NextState   callbridge.AgentState                `json:"next_state,omitempty"`
	NextReason  string                               `json:"next_reason,omitempty"`
	Cause       callbridge.AvailabilityCause         `json:"cause"`
	WrapCall    callbridge.CallID                    `json:"wrap_call,omitempty"`
	WrapAt      time.Time                            `json:"wrap_at,omitzero"`
	LogoutAfter bool                                 `json:"logout_after,omitempty"`
	LogoutCause callbridge.AvailabilityCause         `json:"logout_cause"`
	DevStatus   callbridge.DeviceStatus              `json:"dev_status,omitempty"`
	DevAt       time.Time                            `json:"dev_at,omitzero"`
	Desks       map[string]time.Time                 `json:"desks,omitempty"`
	HadDesk     bool                                 `json:"had_desk,omitempty"`
	DeskGoneAt  time.Time                            `json:"desk_gone_at,omitzero"`
	DeskLost    bool                                 `json:"desk_lost,omitempty"`
}

// memberState is one queue membership (type member).
type memberState struct {
	Paused bool   `json:"paused,omitempty"`
	Reason string `json:"reason,omitempty"`
}

// reservationState is one reservation (type reservation).
type reservationState struct {
	ID        callbridge.CallID   `json:"call_id"`
	Tenant    callbridge.TenantID `json:"tenant"`
	Agent     callbridge.AgentID  `json:"agent"`
	Device    callbridge.DeviceID `json:"device"`
	ConsultOf callbridge.CallID   `json:"consult_of,omitempty"`
	Data      map[string]string   `json:"data,omitempty"`
	At        time.Time           `json:"at"`
}

// idemState is one idempotency entry (types idemKey and idemEntry).
type idemState struct {
	Tenant callbridge.TenantID      `json:"tenant"`
	Agent  callbridge.AgentID       `json:"agent"`
	Key    string                   `json:"key"`
	Name   callbridge.CommandName   `json:"name"`
	Result callbridge.CommandResult `json:"result"`
	At     time.Time                `json:"at"`
}

// claimedState is one claimed CallID.
type claimedState struct {
	ID callbridge.CallID `json:"call_id"`
	At time.Time         `json:"at"`
}

// handledState is one handled call (type handledCall): the call as it ended, and for each
// agent who answered it the call as they last saw it.
type handledState struct {
	Call  callbridge.Call                        `json:"call"`
	Views map[callbridge.AgentID]callbridge.Call `json:"views"`
}

// Now returns the engine's clock: the latest time of its inputs (see the package
// documentation).
func (e *Engine) Now() time.Time { return e.now }

// MarshalState returns the engine's dynamic state as JSON of version StateVersion (see the
// top of persist.go for what it holds). Call it between inputs (never from inside one). The
// only error is a time the JSON encoding cannot hold (a year outside 0-9999, from an input
// with such a time).
func (e *Engine) MarshalState() ([]byte, error) {
	s := stateV2{
		Version:      StateVersion,
		Now:          e.now,
		Calls:        make([]callState, 0, len(e.calls)),
		Agents:       make([]agentState, 0, len(e.agents)),
		Reservations: make([]reservationState, 0, len(e.resv)),
		Idempotency:  make([]idemState, 0, len(e.idem)),
		Claimed:      make([]claimedState, 0, len(e.claimed)),
		Handled:      make([]handledState, 0, len(e.handled)),
	}
	for _, pbx := range sortedKeys(e.calls, strings.Compare) {
		s.Calls = append(s.Calls, encodeCall(e.calls[pbx]))
	}
	for _, key := range sortedKeys(e.agents, compareAgentKey) {
		s.Agents = append(s.Agents, encodeAgent(e.agents[key]))
	}
	for _, id := range sortedKeys(e.resv, compareCallID) {
		s.Reservations = append(s.Reservations, encodeReservation(e.resv[id]))
	}
	for _, k := range sortedKeys(e.idem, compareIdemKey) {
		s.Idempotency = append(s.Idempotency, encodeIdem(k, e.idem[k]))
	}
	for _, id := range sortedKeys(e.claimed, compareCallID) {
		s.Claimed = append(s.Claimed, claimedState{ID: id, At: e.claimed[id]})
	}
	for _, id := range sortedKeys(e.handled, compareCallID) {
		s.Handled = append(s.Handled, encodeHandled(e.handled[id]))
	}
	for _, key := range sortedKeys(e.touched, compareAgentKey) {
		if e.agents[key] != nil {
			s.Touched = append(s.Touched, agentRef(key))
		}
	}
	b, err := json.Marshal(s)
	if err != nil {
		return nil, fmt.Errorf("engine: marshal state: %w", err)
	}
	return b, nil
}

// Restore returns a new engine for cfg (directory, capabilities, limits, id generator) with
// the dynamic state that MarshalState wrote. Agents of the state that the directory no longer
// has are dropped; agents the directory has and the state has not start logged_out, as with
// New; an agent whose device changed gets its presentation checked with the next input, as
// with Reload. Calls keep their tenant even when it is no longer configured. The clock is
// the state's, or cfg.Now when that is later.
//
// Errors (*callbridge.Error, code invalid; no engine is returned): those of New; state that is
// not JSON, has trailing data or unknown fields; a version other than StateVersion; a call
// without call_id or pbx_call_id, two calls with the same call_id or pbx_call_id, a connection
// without device or a device twice on one call; an agent, reservation, idempotency entry,
// claimed id or handled call given twice or without its id.
func Restore(cfg Config, state []byte) (*Engine, error) {
	var probe struct {
		Version *int `json:"version"`
	}
	if err := json.Unmarshal(state, &probe); err != nil {
		return nil, callbridge.Errorf(callbridge.EInvalid, "engine: restore: state is not a JSON object: %v", err)
	}
	if probe.Version == nil {
		return nil, callbridge.Errorf(callbridge.EInvalid, "engine: restore: state has no version")
	}
	if *probe.Version != StateVersion {
		return nil, callbridge.Errorf(callbridge.EInvalid, "engine: restore: state version %d is not supported (this build reads version %d)", *probe.Version, StateVersion)
	}
	var s stateV2
	dec := json.NewDecoder(bytes.NewReader(state))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil {
		return nil, callbridge.Errorf(callbridge.EInvalid, "engine: restore: malformed state: %v", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, callbridge.Errorf(callbridge.EInvalid, "engine: restore: trailing data after the state")
	}
	e, err := New(cfg)
	if err != nil {
		return nil, err
	}
	if err := e.load(&s); err != nil {
		return nil, callbridge.Errorf(callbridge.EInvalid, "engine: restore: %v", err)
	}
	return e, nil
}

// load installs s into a new engine (agents from the directory, nothing else).
func (e *Engine) load(s *stateV2) error {
	if s.Now.UTC().After(e.now) {
		e.now = s.Now.UTC()
	}
	for i := range s.Calls {
		c, err := decodeCall(&s.Calls[i])
		if err != nil {
			return err
		}
		if e.calls[c.m.PBXCallID] != nil {
			return fmt.Errorf("pbx_call_id %q appears twice", c.m.PBXCallID)
		}
		if e.byID[c.m.ID] != nil {
			return fmt.Errorf("call_id %q appears twice", c.m.ID)
		}
		e.calls[c.m.PBXCallID], e.byID[c.m.ID] = c, c
		for _, cn := range c.m.Connections {
			if cn.State == callbridge.ConnQueued {
				continue // the queue's device is not indexed (see enqueue)
			}
			set := e.devCalls[cn.Device]
			if set == nil {
				set = map[string]struct{}{}
				e.devCalls[cn.Device] = set
			}
			set[c.m.PBXCallID] = struct{}{}
		}
	}
	// New marked every agent for a check with the next input; a restored agent keeps the
	// state's mark, a new one (or one whose device changed) keeps New's.
	seen := map[callbridge.AgentKey]bool{}
	for i := range s.Agents {
		st := &s.Agents[i]
		key := callbridge.AgentKey{Tenant: st.Tenant, Agent: st.Agent}
		if key.Tenant == "" || key.Agent == "" {
			return fmt.Errorf("an agent without tenant or id")
		}
		if seen[key] {
			return fmt.Errorf("agent %s appears twice", key)
		}
		seen[key] = true
		a := e.agents[key]
		if a == nil {
			continue // no longer in the directory
		}
		decodeAgent(st, a)
		if a.user.Device == st.Device {
			delete(e.touched, key)
		}
	}
	for _, ref := range s.Touched {
		if key := callbridge.AgentKey(ref); e.agents[key] != nil {
			e.touched[key] = true
		}
	}
	for _, r := range s.Reservations {
		if r.ID == "" || e.resv[r.ID] != nil {
			return fmt.Errorf("reservation %q is empty or appears twice", r.ID)
		}
		e.resv[r.ID] = decodeReservation(r)
	}
	for _, st := range s.Idempotency {
		k := idemKey{st.Tenant, st.Agent, st.Key}
		if _, dup := e.idem[k]; dup || st.Key == "" {
			return fmt.Errorf("idempotency key %q of %s/%s is empty or appears twice", st.Key, st.Tenant, st.Agent)
		}
		e.idem[k] = idemEntry{name: st.Name, result: st.Result, at: st.At.UTC()}
	}
	for _, st := range s.Claimed {
		if _, dup := e.claimed[st.ID]; dup || st.ID == "" {
			return fmt.Errorf("claimed call_id %q is empty or appears twice", st.ID)
		}
		e.claimed[st.ID] = st.At.UTC()
	}
	for i := range s.Handled {
		h := decodeHandled(&s.Handled[i])
		if h.call.ID == "" || e.handled[h.call.ID] != nil {
			return fmt.Errorf("handled call %q is empty or appears twice", h.call.ID)
		}
		e.handled[h.call.ID] = h
	}
	return nil
}

func encodeCall(c *call) callState {
	st := callState{
		Call:      c.m.Clone(),
		Seen:      cloneViews(c.seen),
		Answered:  trueKeys(c.answered),
		Gone:      trueKeys(c.gone),
		Customer:  c.customer,
		Abandoned: c.abandoned,
		Own:       trueKeys(c.own),
		NoTenant:  c.noTenant,
		Unclaimed: c.unclaimed,
		Pending:   cloneMap(c.pending),
	}
	st.Call.Connections = slices.Clone(c.m.Connections) // keeps [] apart from nil
	if u := c.unrung; u != nil {
		st.Unrung = &departureState{Device: u.device, Agent: u.agent, Cause: u.cause}
	}
	if len(c.since) > 0 {
		st.Since = make(map[callbridge.DeviceID]time.Time, len(c.since))
		for d, t := range c.since {
			st.Since[d] = t
		}
	}
	return st
}

func decodeCall(st *callState) (*call, error) {
	m := st.Call
	if m.ID == "" || m.PBXCallID == "" {
		return nil, fmt.Errorf("a call without call_id or pbx_call_id")
	}
	if m.AttachedData == nil {
		m.AttachedData = map[string]string{}
	}
	if m.Connections == nil {
		m.Connections = []callbridge.Connection{}
	}
	seen := map[callbridge.DeviceID]bool{}
	for _, cn := range m.Connections {
		if cn.Device == "" || seen[cn.Device] {
			return nil, fmt.Errorf("call %s: a connection without device, or device %q twice", m.ID, cn.Device)
		}
		seen[cn.Device] = true
	}
	m.StartedAt, m.QueuedAt, m.AnsweredAt, m.EndedAt = m.StartedAt.UTC(), m.QueuedAt.UTC(), m.AnsweredAt.UTC(), m.EndedAt.UTC()
	c := &call{
		m:         m,
		seen:      utcViews(st.Seen),
		answered:  trueSet(st.Answered),
		gone:      trueSet(st.Gone),
		customer:  st.Customer,
		abandoned: st.Abandoned,
		own:       trueSet(st.Own),
		noTenant:  st.NoTenant,
		unclaimed: st.Unclaimed,
		pending:   st.Pending,
		since:     make(map[callbridge.DeviceID]time.Time, len(st.Since)),
	}
	for d, t := range st.Since {
		c.since[d] = t.UTC()
	}
	if u := st.Unrung; u != nil {
		c.unrung = &departure{device: u.Device, agent: u.Agent, cause: u.Cause}
	}
	return c, nil
}

// cloneViews deep-copies calls as agents saw them (nil when none).
func cloneViews(m map[callbridge.AgentID]callbridge.Call) map[callbridge.AgentID]callbridge.Call {
	if len(m) == 0 {
		return nil
	}
	out := make(map[callbridge.AgentID]callbridge.Call, len(m))
	for a, v := range m {
		out[a] = v.Clone()
	}
	return out
}

// utcViews sets the times of decoded views to UTC (nil when none).
func utcViews(m map[callbridge.AgentID]callbridge.Call) map[callbridge.AgentID]callbridge.Call {
	if len(m) == 0 {
		return nil
	}
	for a, v := range m {
		v.StartedAt, v.QueuedAt, v.AnsweredAt, v.EndedAt = v.StartedAt.UTC(), v.QueuedAt.UTC(), v.AnsweredAt.UTC(), v.EndedAt.UTC()
		m[a] = v
	}
	return m
}

func encodeAgent(a *agent) agentState {
	st := agentState{
		Tenant: a.key.Tenant, Agent: a.key.Agent, Device: a.user.Device,
		WrapUntil: a.wrapUntil, WrapPaused: a.wrapPaused,
		State: a.state, Reason: a.reason, Since: a.since, On: a.on,
		NextState: a.nextState, NextReason: a.nextReason,
		Cause: a.cause, WrapCall: a.wrapCall, WrapAt: a.wrapAt,
		LogoutAfter: a.logoutAfter, LogoutCause: a.logoutCause,
		DevStatus: a.devStatus, DevAt: a.devAt,
		HadDesk: a.hadDesk, DeskGoneAt: a.deskGoneAt, DeskLost: a.deskLost,
	}
	if len(a.members) > 0 {
		st.Members = make(map[callbridge.QueueName]memberState, len(a.members))
		for q, m := range a.members {
			st.Members[q] = memberState{Paused: m.paused, Reason: m.reason}
		}
	}
	if len(a.desks) > 0 {
		st.Desks = make(map[string]time.Time, len(a.desks))
		for d, t := range a.desks {
			st.Desks[d] = t
		}
	}
	return st
}

// decodeAgent sets a (from the directory: key and user) to st.
func decodeAgent(st *agentState, a *agent) {
	a.members = make(map[callbridge.QueueName]member, len(st.Members))
	for q, m := range st.Members {
		a.members[q] = member{paused: m.Paused, reason: m.Reason}
	}
	a.wrapUntil, a.wrapPaused = st.WrapUntil.UTC(), st.WrapPaused
	a.state, a.reason, a.since, a.on = st.State, st.Reason, st.Since.UTC(), st.On
	a.nextState, a.nextReason = st.NextState, st.NextReason
	a.cause, a.wrapCall, a.wrapAt = utcCause(st.Cause), st.WrapCall, st.WrapAt.UTC()
	a.logoutAfter, a.logoutCause = st.LogoutAfter, utcCause(st.LogoutCause)
	a.devStatus, a.devAt = st.DevStatus, st.DevAt.UTC()
	a.desks = make(map[string]time.Time, len(st.Desks))
	for d, t := range st.Desks {
		a.desks[d] = t.UTC()
	}
	a.hadDesk, a.deskGoneAt, a.deskLost = st.HadDesk, st.DeskGoneAt.UTC(), st.DeskLost
}

func utcCause(c callbridge.AvailabilityCause) callbridge.AvailabilityCause {
	c.Time = c.Time.UTC()
	return c
}

func encodeReservation(r *reservation) reservationState {
	return reservationState{ID: r.id, Tenant: r.tenant, Agent: r.agent, Device: r.device, ConsultOf: r.consultOf, Data: cloneMap(r.data), At: r.at}
}

func decodeReservation(st reservationState) *reservation {
	return &reservation{id: st.ID, tenant: st.Tenant, agent: st.Agent, device: st.Device, consultOf: st.ConsultOf, data: st.Data, at: st.At.UTC()}
}

func encodeIdem(k idemKey, v idemEntry) idemState {
	return idemState{Tenant: k.tenant, Agent: k.agent, Key: k.key, Name: v.name, Result: v.result, At: v.at}
}

func encodeHandled(h *handledCall) handledState {
	st := handledState{Call: h.call.Clone(), Views: cloneViews(h.views)}
	st.Call.Connections = slices.Clone(h.call.Connections)
	return st
}

func decodeHandled(st *handledState) *handledCall {
	h := &handledCall{call: st.Call, views: utcViews(st.Views)}
	if h.call.AttachedData == nil {
		h.call.AttachedData = map[string]string{}
	}
	if h.call.Connections == nil {
		h.call.Connections = []callbridge.Connection{}
	}
	h.call.StartedAt, h.call.QueuedAt, h.call.AnsweredAt, h.call.EndedAt = h.call.StartedAt.UTC(), h.call.QueuedAt.UTC(), h.call.AnsweredAt.UTC(), h.call.EndedAt.UTC()
	return h
}

// trueKeys returns the keys of m whose value is true, sorted (nil when none).
func trueKeys[K ~string](m map[K]bool) []K {
	var out []K
	for k, v := range m {
		if v {
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return out
}

// trueSet is the set of ks.
func trueSet[K comparable](ks []K) map[K]bool {
	m := make(map[K]bool, len(ks))
	for _, k := range ks {
		m[k] = true
	}
	return m
}

func compareCallID(a, b callbridge.CallID) int { return strings.Compare(string(a), string(b)) }

func compareIdemKey(a, b idemKey) int {
	if c := compareAgentKey(callbridge.AgentKey{Tenant: a.tenant, Agent: a.agent}, callbridge.AgentKey{Tenant: b.tenant, Agent: b.agent}); c != 0 {
		return c
	}
	return strings.Compare(a.key, b.key)
}
