package records

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/callbridge/callbridge"
	"github.com/callbridge/callbridge/internal/ids"
	"github.com/callbridge/callbridge/webhook"
)

// Phases of a call, for the durations of its record (see callbridge.CallRecord).
const (
	phaseNone = ""
	phaseWait = "wait"
	phaseRing = "ring"
	phaseTalk = "talk"
	phaseHold = "hold"
)

// callTrack is the consumer's working state of one call, kept with its record.
type callTrack struct {
	Phase      string    `json:"phase,omitempty"`
	PhaseSince time.Time `json:"phase_since,omitzero"`
	// Milliseconds per phase, and of wrap-up.
	WaitMs int64 `json:"wait_ms,omitempty"`
	RingMs int64 `json:"ring_ms,omitempty"`
	TalkMs int64 `json:"talk_ms,omitempty"`
	HoldMs int64 `json:"hold_ms,omitempty"`
	WrapMs int64 `json:"wrap_ms,omitempty"`
	// Waiting: queued and not answered since.
	Waiting bool `json:"waiting,omitempty"`
	// Active are the agents with an active connection after the last event.
	Active      []callbridge.AgentID `json:"active,omitempty"`
	Talked      bool                 `json:"talked,omitempty"`
	Transferred bool                 `json:"transferred,omitempty"`
	Ended       bool                 `json:"ended,omitempty"`
	// AwaitWrap are agents who handled the call and left it, whose wrap-up (or its absence)
	// is not known yet; the record is complete when the call ended and this is empty.
	AwaitWrap []callbridge.AgentID `json:"await_wrap,omitempty"`
}

// agentTrack is the consumer's working state of one agent: which call a wrap-up belongs to.
type agentTrack struct {
	// Pending are calls the agent handled and left, before their next state change.
	Pending []callbridge.CallID `json:"pending,omitempty"`
	// WrapCall is the call of the wrap-up in progress, which began at WrapSince.
	WrapCall  callbridge.CallID `json:"wrap_call,omitempty"`
	WrapSince time.Time         `json:"wrap_since,omitzero"`
}

// applier applies the events of one batch inside one history transaction.
type applier struct {
	tx       callbridge.HistoryTx
	now      time.Time // the outbox's clock
	enqueued int
}

// apply updates the history for ev and puts ev (and any call_record event it causes) in
// the webhook outbox. A malformed event is skipped with an error the caller logs; store
// errors are returned wrapped in storeError so the caller retries the batch.
func (a *applier) apply(ctx context.Context, ev callbridge.WireEvent) error {
	var subject string
	switch {
	case ev.Type.IsCall():
		var ce callbridge.CallEvent
		if err := json.Unmarshal(ev.Data, &ce); err != nil || ce.ID == "" {
			return fmt.Errorf("call event %s seq %d: undecodable data: %v", ev.Type, ev.Seq, err)
		}
		subject = string(ce.ID)
		if err := a.enqueue(ctx, ev, ev.Type, subject, ev.Data); err != nil {
			return err
		}
		return a.callEvent(ctx, ev, &ce)
	case isAgentEvent(ev.Type):
		var ag callbridge.Agent
		if err := json.Unmarshal(ev.Data, &ag); err != nil || ag.ID == "" {
			return fmt.Errorf("agent event %s seq %d: undecodable data: %v", ev.Type, ev.Seq, err)
		}
		if err := a.enqueue(ctx, ev, ev.Type, string(ag.ID), ev.Data); err != nil {
			return err
		}
		if ev.Type == callbridge.EventAgentStateChanged {
			return a.agentStateChanged(ctx, ev, &ag)
		}
		return nil
	default:
		return fmt.Errorf("event %s seq %d: unknown type, skipped", ev.Type, ev.Seq)
	}
}

func isAgentEvent(t callbridge.EventType) bool {
	return len(t) > 6 && t[:6] == "agent."
}

// storeError marks an error of the store (retry the batch), as opposed to a bad event.
type storeError struct{ err error }

func (e storeError) Error() string { return e.err.Error() }
func (e storeError) Unwrap() error { return e.err }

func wrapStore(err error) error {
	if err == nil {
		return nil
	}
	return storeError{err}
}

// enqueue puts one event in the outbox as a CloudEvent.
func (a *applier) enqueue(ctx context.Context, ev callbridge.WireEvent, typ callbridge.EventType, subject string, data json.RawMessage) error {
	id := ids.New("evt_", ev.Time)
	body, err := webhook.Encode(id, ev.Tenant, typ, subject, ev.Time, ev.Seq, data)
	if err != nil {
		return fmt.Errorf("encode %s seq %d: %w", typ, ev.Seq, err)
	}
	n, err := a.tx.Enqueue(ctx, callbridge.OutboxEvent{ID: id, Tenant: ev.Tenant, Type: typ, Body: body, Time: a.now})
	a.enqueued += n
	return wrapStore(err)
}

// loadCall returns the record and working state of a call, or a new record from c (nil when
// c is unknown, for a call not seen before).
func (a *applier) loadCall(ctx context.Context, tenant callbridge.TenantID, id callbridge.CallID, c *callbridge.Call) (callbridge.CallRecord, callTrack, bool, error) {
	rec, state, ok, err := a.tx.CallTracking(ctx, tenant, id)
	if err != nil {
		return rec, callTrack{}, false, storeError{err}
	}
	var tr callTrack
	if ok {
		if len(state) > 0 {
			if err := json.Unmarshal(state, &tr); err != nil {
				return rec, tr, false, storeError{fmt.Errorf("call %s: working state: %w", id, err)}
			}
		}
		return rec, tr, true, nil
	}
	rec = callbridge.CallRecord{Tenant: tenant, CallID: id, Agents: []callbridge.AgentID{}, AttachedData: map[string]string{}}
	if c != nil {
		rec.StartedAt = c.StartedAt
	}
	return rec, tr, false, nil
}

func (a *applier) saveCall(ctx context.Context, rec *callbridge.CallRecord, tr *callTrack, at time.Time) error {
	rec.WaitSeconds, rec.RingSeconds = seconds(tr.WaitMs), seconds(tr.RingMs)
	rec.TalkSeconds, rec.HoldSeconds, rec.WrapUpSeconds = seconds(tr.TalkMs), seconds(tr.HoldMs), seconds(tr.WrapMs)
	if rec.StartedAt.IsZero() {
		rec.StartedAt = at
	}
	rec.UpdatedAt = at
	state, err := json.Marshal(tr)
	if err != nil {
		return err
	}
	return wrapStore(a.tx.PutCallRecord(ctx, *rec, state))
}

// seconds rounds milliseconds to whole seconds.
func seconds(ms int64) int64 { return (ms + 500) / 1000 }

// callEvent updates the call's record.
func (a *applier) callEvent(ctx context.Context, ev callbridge.WireEvent, ce *callbridge.CallEvent) error {
	tenant := ev.Tenant
	rec, tr, _, err := a.loadCall(ctx, tenant, ce.ID, &ce.Call)
	if err != nil {
		return err
	}
	at := ev.Time.UTC()

	if ev.Type == callbridge.EventCallDispositionSet {
		// Only the wrap-up fields: the event may come long after the call cleared.
		rec.Disposition, rec.Notes = ce.Disposition, ce.Notes
		if rec.Direction == "" { // the first event seen of this call (its others aged out)
			fillFromCall(&rec, &ce.Call)
			if !rec.EndedAt.IsZero() {
				tr.Ended, rec.Complete = true, true
				rec.Result = result(&rec, &tr)
			}
		}
		if err := a.saveCall(ctx, &rec, &tr, at); err != nil {
			return err
		}
		if rec.Complete {
			return a.recordEvent(ctx, ev, callbridge.EventCallRecordUpdated, &rec)
		}
		return nil
	}
	if tr.Ended {
		// A call event after call.cleared (should not happen): keep the record as it is.
		return nil
	}

	// Time since the previous event goes to the phase the call was in.
	if tr.Phase != phaseNone && at.After(tr.PhaseSince) {
		d := at.Sub(tr.PhaseSince).Milliseconds()
		switch tr.Phase {
		case phaseWait:
			tr.WaitMs += d
		case phaseRing:
			tr.RingMs += d
		case phaseTalk:
			tr.TalkMs += d
		case phaseHold:
			tr.HoldMs += d
		}
	}

	switch ev.Type {
	case callbridge.EventCallQueued:
		tr.Waiting = true
	case callbridge.EventCallEstablished:
		if ce.Agent != "" {
			tr.Waiting = false
		}
	case callbridge.EventCallTransferred:
		tr.Transferred = true
	}
	fillFromCall(&rec, &ce.Call)

	// Agents who answered; agents who left after answering.
	active := []callbridge.AgentID{}
	for _, cn := range ce.Connections {
		if cn.Agent == "" {
			continue
		}
		if cn.State == callbridge.ConnConnected && !slices.Contains(rec.Agents, cn.Agent) {
			rec.Agents = append(rec.Agents, cn.Agent)
		}
		if cn.State.Active() && !slices.Contains(active, cn.Agent) {
			active = append(active, cn.Agent)
		}
	}
	if ev.Type == callbridge.EventCallEstablished && ce.Agent != "" && !slices.Contains(rec.Agents, ce.Agent) {
		rec.Agents = append(rec.Agents, ce.Agent)
	}
	var left []callbridge.AgentID
	for _, ag := range tr.Active {
		if !slices.Contains(active, ag) && slices.Contains(rec.Agents, ag) {
			left = append(left, ag)
		}
	}
	tr.Active = active

	tr.Phase = phaseOf(&ce.Call, tr.Waiting)
	tr.PhaseSince = at
	if tr.Phase == phaseTalk {
		tr.Talked = true
	}

	if ev.Type == callbridge.EventCallCleared {
		tr.Ended, tr.Phase, tr.PhaseSince, tr.Waiting, tr.Active = true, phaseNone, time.Time{}, false, nil
		if rec.EndedAt.IsZero() {
			rec.EndedAt = at
		}
		rec.Cause = ce.Cause
		rec.Result = result(&rec, &tr)
	}
	for _, ag := range left {
		if !slices.Contains(tr.AwaitWrap, ag) {
			tr.AwaitWrap = append(tr.AwaitWrap, ag)
		}
	}
	becameComplete := tr.Ended && len(tr.AwaitWrap) == 0 && !rec.Complete
	if becameComplete {
		rec.Complete = true
	}
	if err := a.saveCall(ctx, &rec, &tr, at); err != nil {
		return err
	}
	for _, ag := range left {
		if err := a.agentLeft(ctx, tenant, ag, rec.CallID); err != nil {
			return err
		}
	}
	if becameComplete {
		return a.recordEvent(ctx, ev, callbridge.EventCallRecordCompleted, &rec)
	}
	return nil
}

// fillFromCall copies what the call says into the record.
func fillFromCall(rec *callbridge.CallRecord, c *callbridge.Call) {
	set := func(dst *string, v string) {
		if v != "" {
			*dst = v
		}
	}
	set(&rec.PBXCallID, c.PBXCallID)
	set(&rec.ANI, c.ANI)
	set(&rec.ANIName, c.ANIName)
	set(&rec.DNIS, c.DNIS)
	if c.Direction != "" {
		rec.Direction = c.Direction
	}
	if c.ConsultOf != "" {
		rec.ConsultOf = c.ConsultOf
	}
	if c.Queue != "" {
		rec.Queue = c.Queue
	}
	if c.AttachedData != nil {
		rec.AttachedData = maps.Clone(c.AttachedData)
	}
	if !c.StartedAt.IsZero() {
		rec.StartedAt = c.StartedAt.UTC()
	}
	if rec.QueuedAt.IsZero() && !c.QueuedAt.IsZero() {
		rec.QueuedAt = c.QueuedAt.UTC()
	}
	if rec.AnsweredAt.IsZero() && !c.AnsweredAt.IsZero() {
		rec.AnsweredAt = c.AnsweredAt.UTC()
	}
	if !c.EndedAt.IsZero() {
		rec.EndedAt = c.EndedAt.UTC()
	}
}

// phaseOf is the phase of call c: talk with two parties connected, hold when a party holds
// and fewer talk, ring while a phone rings, wait while queued, else none (IVR, dialling).
func phaseOf(c *callbridge.Call, waiting bool) string {
	var connected, held, alerting int
	for _, cn := range c.Connections {
		switch cn.State {
		case callbridge.ConnConnected:
			connected++
		case callbridge.ConnHeld:
			held++
		case callbridge.ConnAlerting:
			alerting++
		}
	}
	switch {
	case connected >= 2:
		return phaseTalk
	case held > 0:
		return phaseHold
	case alerting > 0:
		return phaseRing
	case waiting:
		return phaseWait
	}
	return phaseNone
}

// result says how the call ended (see callbridge.CallResult).
func result(rec *callbridge.CallRecord, tr *callTrack) callbridge.CallResult {
	switch {
	case tr.Transferred || rec.Cause == callbridge.CauseTransferred:
		return callbridge.ResultTransferred
	case tr.Talked || !rec.AnsweredAt.IsZero():
		return callbridge.ResultAnswered
	}
	switch rec.Cause {
	case callbridge.CauseBusy, callbridge.CauseNoAnswer, callbridge.CauseRejected, callbridge.CauseUnavailable,
		callbridge.CauseNetworkOut, callbridge.CauseResync:
		return callbridge.ResultFailed
	}
	return callbridge.ResultAbandoned
}

// recordEvent puts a call_record event for rec in the outbox.
func (a *applier) recordEvent(ctx context.Context, ev callbridge.WireEvent, typ callbridge.EventType, rec *callbridge.CallRecord) error {
	data, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	return a.enqueue(ctx, ev, typ, string(rec.CallID), data)
}

func (a *applier) loadAgent(ctx context.Context, tenant callbridge.TenantID, agent callbridge.AgentID) (agentTrack, error) {
	var at agentTrack
	state, err := a.tx.AgentTracking(ctx, tenant, agent)
	if err != nil {
		return at, storeError{err}
	}
	if len(state) > 0 {
		if err := json.Unmarshal(state, &at); err != nil {
			return at, storeError{fmt.Errorf("agent %s: working state: %w", agent, err)}
		}
	}
	return at, nil
}

func (a *applier) saveAgent(ctx context.Context, tenant callbridge.TenantID, agent callbridge.AgentID, at *agentTrack) error {
	state, err := json.Marshal(at)
	if err != nil {
		return err
	}
	return wrapStore(a.tx.PutAgentTracking(ctx, tenant, agent, state))
}

// agentLeft notes that agent handled call and left it: its next state change says whether
// a wrap-up for it follows.
func (a *applier) agentLeft(ctx context.Context, tenant callbridge.TenantID, agent callbridge.AgentID, call callbridge.CallID) error {
	at, err := a.loadAgent(ctx, tenant, agent)
	if err != nil {
		return err
	}
	if !slices.Contains(at.Pending, call) {
		at.Pending = append(at.Pending, call)
	}
	return a.saveAgent(ctx, tenant, agent, &at)
}

// agentStateChanged records the state period and attributes wrap-up time to calls: a
// working_after_call that follows leaving a handled call belongs to that call (the latest
// one, when the agent left several), and lasts until the next state change.
func (a *applier) agentStateChanged(ctx context.Context, ev callbridge.WireEvent, ag *callbridge.Agent) error {
	tenant := ev.Tenant
	when := ev.Time.UTC()
	// A change of only the requested next state ("not ready after this call") repeats the
	// state with its old Since: the period goes on, so it is not a new history row.
	if ag.State == ag.PreviousState && !ag.Since.IsZero() && ag.Since.Before(when) {
		return nil
	}
	if err := a.tx.AddAgentState(ctx, callbridge.AgentStateRecord{
		ID: ids.New("as_", when), Tenant: tenant, Agent: ag.ID, Device: ag.Device, State: ag.State,
		Reason: ag.Reason, PreviousState: ag.PreviousState, StartedAt: when,
	}); err != nil {
		return storeError{err}
	}
	tr, err := a.loadAgent(ctx, tenant, ag.ID)
	if err != nil {
		return err
	}
	if tr.WrapCall == "" && len(tr.Pending) == 0 {
		return nil
	}
	if tr.WrapCall != "" && ag.State != callbridge.AgentWorkingAfterCall {
		d := max(when.Sub(tr.WrapSince), 0)
		if err := a.wrapDone(ctx, ev, tr.WrapCall, ag.ID, d); err != nil {
			return err
		}
		tr.WrapCall, tr.WrapSince = "", time.Time{}
	}
	if len(tr.Pending) > 0 {
		resolved := tr.Pending
		if ag.State == callbridge.AgentWorkingAfterCall && tr.WrapCall == "" {
			tr.WrapCall, tr.WrapSince = resolved[len(resolved)-1], when
			resolved = resolved[:len(resolved)-1]
		}
		for _, c := range resolved {
			if err := a.wrapDone(ctx, ev, c, ag.ID, 0); err != nil {
				return err
			}
		}
		tr.Pending = nil
	}
	return a.saveAgent(ctx, tenant, ag.ID, &tr)
}

// wrapDone adds agent's wrap-up time d to call and stops waiting for it; a record that
// thereby becomes complete is sent as call_record.completed.
func (a *applier) wrapDone(ctx context.Context, ev callbridge.WireEvent, call callbridge.CallID, agent callbridge.AgentID, d time.Duration) error {
	rec, tr, ok, err := a.loadCall(ctx, ev.Tenant, call, nil)
	if err != nil || !ok {
		return err
	}
	tr.WrapMs += d.Milliseconds()
	tr.AwaitWrap = slices.DeleteFunc(tr.AwaitWrap, func(x callbridge.AgentID) bool { return x == agent })
	becameComplete := tr.Ended && len(tr.AwaitWrap) == 0 && !rec.Complete
	if becameComplete {
		rec.Complete = true
	}
	if err := a.saveCall(ctx, &rec, &tr, ev.Time.UTC()); err != nil {
		return err
	}
	if becameComplete {
		return a.recordEvent(ctx, ev, callbridge.EventCallRecordCompleted, &rec)
	}
	return nil
}
