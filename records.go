package callbridge

import (
	"context"
	"time"
)

// CallResult says how a call ended, in its CallRecord.
type CallResult string

// Call results.
const (
	// ResultAnswered: an agent answered (inbound), or the called party answered (outbound,
	// internal), and the call was not transferred.
	ResultAnswered CallResult = "answered"
	// ResultAbandoned: nobody answered and the caller (or, outbound, the agent) hung up first:
	// in the IVR, in the queue or while an agent's phone was ringing.
	ResultAbandoned CallResult = "abandoned"
	// ResultFailed: nobody answered because the call could not be completed: busy, no answer,
	// rejected, unreachable, or the call vanished from the switch (resync).
	ResultFailed CallResult = "failed"
	// ResultTransferred: the call was transferred (blind or consultative) at least once; a
	// consultation call that a transfer completed also ends transferred.
	ResultTransferred CallResult = "transferred"
)

// CallRecord is the history of one call (CDR), built from the call's domain events by
// package records. A call has a record as soon as its first event is seen; the REST API
// lists it once the call has ended (EndedAt set). Times are UTC, stored with microsecond
// precision.
//
// Durations are whole seconds (rounded) of disjoint phases, measured between the events'
// times: WaitSeconds while queued with no phone ringing, RingSeconds while a phone rang
// and nobody talked yet (or any more), TalkSeconds while at least two parties were
// connected, HoldSeconds while a party held the call and fewer than two talked, and
// WrapUpSeconds the after-call work (working_after_call) of every agent who handled it. Time in
// the IVR before queueing is in none of them.
type CallRecord struct {
	Tenant    TenantID  `json:"tenant"`
	CallID    CallID    `json:"call_id"`
	PBXCallID string    `json:"pbx_call_id,omitempty" doc:"The switch's correlation id (Asterisk Linkedid)."`
	ConsultOf CallID    `json:"consult_of,omitempty" doc:"Set on a consultation call: the call it consulted about."`
	Direction Direction `json:"direction" enum:"inbound,outbound,internal"`
	ANI       string    `json:"ani,omitempty" doc:"Calling number."`
	ANIName   string    `json:"ani_name,omitempty" doc:"Calling name, when the switch gave one."`
	DNIS      string    `json:"dnis,omitempty" doc:"Dialed number (DID)."`
	Queue     QueueName `json:"queue,omitempty" doc:"The last queue the call was in."`
	// Agents who answered the call, in the order they first answered.
	Agents     []AgentID `json:"agents" doc:"Every agent who answered the call, in order."`
	StartedAt  time.Time `json:"started_at"`
	QueuedAt   time.Time `json:"queued_at,omitzero"`
	AnsweredAt time.Time `json:"answered_at,omitzero"`
	EndedAt    time.Time `json:"ended_at,omitzero"`

	WaitSeconds   int64 `json:"wait_seconds" doc:"Seconds queued with no phone ringing."`
	RingSeconds   int64 `json:"ring_seconds" doc:"Seconds a phone rang before anyone talked."`
	TalkSeconds   int64 `json:"talk_seconds" doc:"Seconds with at least two parties connected."`
	HoldSeconds   int64 `json:"hold_seconds" doc:"Seconds on hold."`
	WrapUpSeconds int64 `json:"wrap_up_seconds" doc:"Seconds of after-call work of the agents who handled the call."`

	Result CallResult `json:"result,omitempty" enum:"answered,abandoned,failed,transferred" doc:"Set once the call ended."`
	// Cause is the cause of call.cleared.
	Cause Cause `json:"cause,omitempty"`
	// Disposition and Notes come from call.disposition_set (the agent's wrap-up), whenever it
	// arrives.
	Disposition  string            `json:"disposition,omitempty"`
	Notes        string            `json:"notes,omitempty"`
	AttachedData map[string]string `json:"attached_data" doc:"The call's attached data as it was at the last event."`
	// Complete is true once the call ended and every agent who handled it finished wrap-up;
	// the webhook event call_record.completed is sent then. A later disposition sends
	// call_record.updated.
	Complete  bool      `json:"complete"`
	UpdatedAt time.Time `json:"updated_at"`
}

// AgentStateRecord is one period an agent spent in one state, from an agent.state_changed
// event to the next one of the same agent.
type AgentStateRecord struct {
	ID            string     `json:"id" doc:"Unique id (a ULID, ordered by time)."`
	Tenant        TenantID   `json:"tenant"`
	Agent         AgentID    `json:"agent"`
	Device        DeviceID   `json:"device,omitempty"`
	State         AgentState `json:"state" enum:"logged_out,not_ready,ready,busy,working_after_call"`
	Reason        string     `json:"reason,omitempty" doc:"Reason code of not_ready."`
	PreviousState AgentState `json:"previous_state,omitempty"`
	StartedAt     time.Time  `json:"started_at"`
	// EndedAt and DurationSeconds are unset while this is the agent's current state.
	EndedAt         time.Time `json:"ended_at,omitzero"`
	DurationSeconds *int64    `json:"duration_seconds" doc:"Whole seconds in the state; null while it is the current state."`
}

// Page sizes of the list methods.
const (
	DefaultPageSize = 100
	MaxPageSize     = 1000
)

// CallRecordFilter chooses call records. Zero fields do not filter.
type CallRecordFilter struct {
	// From and To bound StartedAt: From <= StartedAt < To.
	From, To  time.Time
	Agent     AgentID // one of the record's Agents
	Queue     QueueName
	ANI       string
	Result    CallResult
	Direction Direction
	// Limit is the page size, 1…MaxPageSize; 0 means DefaultPageSize.
	Limit int
	// Cursor continues a listing: the Next of the previous page.
	Cursor string
}

// AgentStateFilter chooses agent state records. Zero fields do not filter.
type AgentStateFilter struct {
	// From and To bound StartedAt: From <= StartedAt < To.
	From, To time.Time
	Agent    AgentID
	State    AgentState
	Limit    int
	Cursor   string
}

// RecordStore keeps call records and agent state history. Lists are newest first (StartedAt
// descending) and paged: next is the cursor of the following page, "" after the last one.
type RecordStore interface {
	// CallRecords lists the ended calls of tenant that match f. Errors: EInvalid for a bad
	// cursor or limit.
	CallRecords(ctx context.Context, tenant TenantID, f CallRecordFilter) (records []CallRecord, next string, err error)
	// CallRecord returns the record of an ended call. Errors: ENotFound (also while the call
	// is in progress).
	CallRecord(ctx context.Context, tenant TenantID, id CallID) (CallRecord, error)
	// AgentStates lists the state periods of tenant's agents that match f. Errors: EInvalid
	// for a bad cursor or limit.
	AgentStates(ctx context.Context, tenant TenantID, f AgentStateFilter) (records []AgentStateRecord, next string, err error)
	// ConsumerPosition returns the last event-log sequence a history consumer committed (0
	// when it never did).
	ConsumerPosition(ctx context.Context, consumer string) (uint64, error)
	// UpdateHistory runs fn in one transaction and commits it when fn returns nil. This is how
	// package records writes records, outbox entries and its position together (exactly once).
	UpdateHistory(ctx context.Context, fn func(HistoryTx) error) error
}

// HistoryTx is the write side of RecordStore inside one transaction. Its methods fail with
// the store's error; the caller then returns it from the UpdateHistory fn.
type HistoryTx interface {
	// LockPosition returns consumer's position (0 when new) and holds it until the end of the
	// transaction, so that two consumers of the same events apply each event once.
	LockPosition(ctx context.Context, consumer string) (uint64, error)
	// SetPosition sets consumer's position.
	SetPosition(ctx context.Context, consumer string, seq uint64) error
	// CallTracking returns the record of a call and the consumer's opaque working state for
	// it; ok is false for a call never seen.
	CallTracking(ctx context.Context, tenant TenantID, id CallID) (rec CallRecord, state []byte, ok bool, err error)
	// PutCallRecord inserts or replaces the record (and its agents) with its working state.
	PutCallRecord(ctx context.Context, rec CallRecord, state []byte) error
	// AgentTracking returns the consumer's opaque working state for an agent (nil when none).
	AgentTracking(ctx context.Context, tenant TenantID, agent AgentID) ([]byte, error)
	// PutAgentTracking stores it.
	PutAgentTracking(ctx context.Context, tenant TenantID, agent AgentID, state []byte) error
	// AddAgentState ends the agent's current state period at rec.StartedAt (setting its
	// EndedAt and DurationSeconds) and inserts rec as the current one.
	AddAgentState(ctx context.Context, rec AgentStateRecord) error
	// Enqueue puts ev in the webhook outbox: one pending delivery, due now, for every webhook
	// of ev.Tenant subscribed to ev.Type. It returns how many deliveries it created.
	Enqueue(ctx context.Context, ev OutboxEvent) (int, error)
}
