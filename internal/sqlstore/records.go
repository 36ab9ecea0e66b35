package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/callbridge/callbridge"
)

const callRecordColumns = `tenant, call_id, pbx_call_id, consult_of, direction, ani, ani_name, dnis, queue,
	agents, started_at, queued_at, answered_at, ended_at, wait_seconds, ring_seconds, talk_seconds,
	hold_seconds, wrap_up_seconds, result, cause, disposition, notes, attached_data, complete, updated_at`

// scanCallRecord scans the columns of callRecordColumns (plus extra destinations).
func scanCallRecord(row interface{ Scan(...any) error }, extra ...any) (callbridge.CallRecord, error) {
	var (
		r                                callbridge.CallRecord
		agents, data                     string
		started, updated                 int64
		queued, answered, ended          sql.NullInt64
		complete                         int
		direction, result, cause         string
		tenant, callID, consultOf, queue string
	)
	dest := []any{&tenant, &callID, &r.PBXCallID, &consultOf, &direction, &r.ANI, &r.ANIName, &r.DNIS, &queue,
		&agents, &started, &queued, &answered, &ended, &r.WaitSeconds, &r.RingSeconds, &r.TalkSeconds,
		&r.HoldSeconds, &r.WrapUpSeconds, &result, &cause, &r.Disposition, &r.Notes, &data, &complete, &updated}
	if err := row.Scan(append(dest, extra...)...); err != nil {
		return r, err
	}
	r.Tenant, r.CallID, r.ConsultOf, r.Queue = callbridge.TenantID(tenant), callbridge.CallID(callID), callbridge.CallID(consultOf), callbridge.QueueName(queue)
	r.Direction, r.Result, r.Cause = callbridge.Direction(direction), callbridge.CallResult(result), callbridge.Cause(cause)
	r.StartedAt = time.UnixMicro(started).UTC()
	r.UpdatedAt = time.UnixMicro(updated).UTC()
	r.QueuedAt, r.AnsweredAt, r.EndedAt = fromMicros(queued), fromMicros(answered), fromMicros(ended)
	r.Complete = complete != 0
	if err := json.Unmarshal([]byte(agents), &r.Agents); err != nil {
		return r, fmt.Errorf("call record %s: agents: %w", r.CallID, err)
	}
	if r.Agents == nil {
		r.Agents = []callbridge.AgentID{}
	}
	if err := json.Unmarshal([]byte(data), &r.AttachedData); err != nil {
		return r, fmt.Errorf("call record %s: attached data: %w", r.CallID, err)
	}
	if r.AttachedData == nil {
		r.AttachedData = map[string]string{}
	}
	return r, nil
}

// CallRecords implements callbridge.RecordStore.
func (db *DB) CallRecords(ctx context.Context, tenant callbridge.TenantID, f callbridge.CallRecordFilter) ([]callbridge.CallRecord, string, error) {
	limit, err := pageLimit(f.Limit)
	if err != nil {
		return nil, "", err
	}
	cur, hasCur, err := parseCursor(f.Cursor)
	if err != nil {
		return nil, "", err
	}
	var w where
	w.add("r.tenant = ?", string(tenant))
	w.add("r.ended_at IS NOT NULL")
	if !f.From.IsZero() {
		w.add("r.started_at >= ?", mustMicros(f.From))
	}
	if !f.To.IsZero() {
		w.add("r.started_at < ?", mustMicros(f.To))
	}
	if f.Agent != "" {
		w.add("EXISTS (SELECT 1 FROM call_record_agents a WHERE a.tenant = r.tenant AND a.call_id = r.call_id AND a.agent = ?)", string(f.Agent))
	}
	if f.Queue != "" {
		w.add("r.queue = ?", string(f.Queue))
	}
	if f.ANI != "" {
		w.add("r.ani = ?", f.ANI)
	}
	if f.Result != "" {
		w.add("r.result = ?", string(f.Result))
	}
	if f.Direction != "" {
		w.add("r.direction = ?", string(f.Direction))
	}
	if hasCur {
		w.after(cur, "r.started_at", "r.call_id")
	}
	query := "SELECT " + prefixed("r.", callRecordColumns) + " FROM call_records r" + w.String() +
		" ORDER BY r.started_at DESC, r.call_id DESC LIMIT ?"
	rows, err := db.SQL.QueryContext(ctx, db.q(query), append(w.args, limit+1)...)
	if err != nil {
		return nil, "", fmt.Errorf("call records: %w", err)
	}
	defer rows.Close()
	out := []callbridge.CallRecord{}
	for rows.Next() {
		r, err := scanCallRecord(rows)
		if err != nil {
			return nil, "", fmt.Errorf("call records: %w", err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, "", fmt.Errorf("call records: %w", err)
	}
	next := ""
	if len(out) > limit {
		out = out[:limit]
		last := out[limit-1]
		next = cursor{at: mustMicros(last.StartedAt), id: string(last.CallID)}.String()
	}
	return out, next, nil
}

// CallRecord implements callbridge.RecordStore.
func (db *DB) CallRecord(ctx context.Context, tenant callbridge.TenantID, id callbridge.CallID) (callbridge.CallRecord, error) {
	row := db.SQL.QueryRowContext(ctx, db.q("SELECT "+callRecordColumns+
		" FROM call_records WHERE tenant = ? AND call_id = ? AND ended_at IS NOT NULL"), string(tenant), string(id))
	r, err := scanCallRecord(row)
	if err != nil {
		return callbridge.CallRecord{}, notFound(err, "no record of call %q (unknown, or still in progress)", id)
	}
	return r, nil
}

const agentStateColumns = `id, tenant, agent, device, state, reason, previous_state, started_at, ended_at, duration_seconds`

func scanAgentState(row interface{ Scan(...any) error }) (callbridge.AgentStateRecord, error) {
	var (
		r                                  callbridge.AgentStateRecord
		tenant, agent, device, state, prev string
		started                            int64
		ended, dur                         sql.NullInt64
	)
	if err := row.Scan(&r.ID, &tenant, &agent, &device, &state, &r.Reason, &prev, &started, &ended, &dur); err != nil {
		return r, err
	}
	r.Tenant, r.Agent, r.Device = callbridge.TenantID(tenant), callbridge.AgentID(agent), callbridge.DeviceID(device)
	r.State, r.PreviousState = callbridge.AgentState(state), callbridge.AgentState(prev)
	r.StartedAt = time.UnixMicro(started).UTC()
	r.EndedAt = fromMicros(ended)
	if dur.Valid {
		d := dur.Int64
		r.DurationSeconds = &d
	}
	return r, nil
}

// AgentStates implements callbridge.RecordStore.
func (db *DB) AgentStates(ctx context.Context, tenant callbridge.TenantID, f callbridge.AgentStateFilter) ([]callbridge.AgentStateRecord, string, error) {
	limit, err := pageLimit(f.Limit)
	if err != nil {
		return nil, "", err
	}
	cur, hasCur, err := parseCursor(f.Cursor)
	if err != nil {
		return nil, "", err
	}
	var w where
	w.add("tenant = ?", string(tenant))
	if !f.From.IsZero() {
		w.add("started_at >= ?", mustMicros(f.From))
	}
	if !f.To.IsZero() {
		w.add("started_at < ?", mustMicros(f.To))
	}
	if f.Agent != "" {
		w.add("agent = ?", string(f.Agent))
	}
	if f.State != "" {
		w.add("state = ?", string(f.State))
	}
	if hasCur {
		w.after(cur, "started_at", "id")
	}
	query := "SELECT " + agentStateColumns + " FROM agent_states" + w.String() + " ORDER BY started_at DESC, id DESC LIMIT ?"
	rows, err := db.SQL.QueryContext(ctx, db.q(query), append(w.args, limit+1)...)
	if err != nil {
		return nil, "", fmt.Errorf("agent states: %w", err)
	}
	defer rows.Close()
	out := []callbridge.AgentStateRecord{}
	for rows.Next() {
		r, err := scanAgentState(rows)
		if err != nil {
			return nil, "", fmt.Errorf("agent states: %w", err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, "", fmt.Errorf("agent states: %w", err)
	}
	next := ""
	if len(out) > limit {
		out = out[:limit]
		last := out[limit-1]
		next = cursor{at: mustMicros(last.StartedAt), id: last.ID}.String()
	}
	return out, next, nil
}

// ConsumerPosition implements callbridge.RecordStore.
func (db *DB) ConsumerPosition(ctx context.Context, consumer string) (uint64, error) {
	var pos int64
	err := db.SQL.QueryRowContext(ctx, db.q("SELECT position FROM consumer_positions WHERE consumer = ?"), consumer).Scan(&pos)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("consumer position %s: %w", consumer, err)
	}
	return uint64(pos), nil
}

// UpdateHistory implements callbridge.RecordStore.
func (db *DB) UpdateHistory(ctx context.Context, fn func(callbridge.HistoryTx) error) error {
	return db.inTx(ctx, func(tx *sql.Tx) error { return fn(&historyTx{db: db, tx: tx}) })
}

// historyTx implements callbridge.HistoryTx on one transaction.
type historyTx struct {
	db *DB
	tx *sql.Tx
	// webhooks caches each tenant's webhooks for Enqueue within the transaction.
	webhooks map[callbridge.TenantID][]callbridge.Webhook
}

var _ callbridge.HistoryTx = (*historyTx)(nil)

// exec, queryRow and query run a cached prepared statement (DB.stmt) in the transaction.
func (h *historyTx) exec(ctx context.Context, query string, args ...any) error {
	st, err := h.db.stmt(ctx, query)
	if err != nil {
		return err
	}
	_, err = h.tx.StmtContext(ctx, st).ExecContext(ctx, args...)
	return err
}

func (h *historyTx) queryRow(ctx context.Context, query string, args ...any) rowScanner {
	st, err := h.db.stmt(ctx, query)
	if err != nil {
		return errRow{err}
	}
	return h.tx.StmtContext(ctx, st).QueryRowContext(ctx, args...)
}

func (h *historyTx) query(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	st, err := h.db.stmt(ctx, query)
	if err != nil {
		return nil, err
	}
	return h.tx.StmtContext(ctx, st).QueryContext(ctx, args...)
}

// rowScanner is what *sql.Row and errRow have in common.
type rowScanner interface{ Scan(dest ...any) error }

// errRow is a row whose query could not be prepared.
type errRow struct{ err error }

func (r errRow) Scan(...any) error { return r.err }

// LockPosition implements callbridge.HistoryTx. The no-op UPDATE takes the row's write lock
// (PostgreSQL row lock; SQLite already holds the database's write lock in a write
// transaction), so a second consumer of the same events waits here and then sees the new
// position.
func (h *historyTx) LockPosition(ctx context.Context, consumer string) (uint64, error) {
	if err := h.exec(ctx, "INSERT INTO consumer_positions (consumer, position) VALUES (?, 0) ON CONFLICT (consumer) DO NOTHING", consumer); err != nil {
		return 0, fmt.Errorf("lock position %s: %w", consumer, err)
	}
	if err := h.exec(ctx, "UPDATE consumer_positions SET position = position WHERE consumer = ?", consumer); err != nil {
		return 0, fmt.Errorf("lock position %s: %w", consumer, err)
	}
	var pos int64
	if err := h.queryRow(ctx, "SELECT position FROM consumer_positions WHERE consumer = ?", consumer).Scan(&pos); err != nil {
		return 0, fmt.Errorf("lock position %s: %w", consumer, err)
	}
	return uint64(pos), nil
}

// SetPosition implements callbridge.HistoryTx.
func (h *historyTx) SetPosition(ctx context.Context, consumer string, seq uint64) error {
	if err := h.exec(ctx, `INSERT INTO consumer_positions (consumer, position) VALUES (?, ?)
		ON CONFLICT (consumer) DO UPDATE SET position = excluded.position`, consumer, int64(seq)); err != nil {
		return fmt.Errorf("set position %s: %w", consumer, err)
	}
	return nil
}

// CallTracking implements callbridge.HistoryTx.
func (h *historyTx) CallTracking(ctx context.Context, tenant callbridge.TenantID, id callbridge.CallID) (callbridge.CallRecord, []byte, bool, error) {
	var state string
	row := h.queryRow(ctx, "SELECT "+callRecordColumns+", tracking FROM call_records WHERE tenant = ? AND call_id = ?",
		string(tenant), string(id))
	r, err := scanCallRecord(row, &state)
	if errors.Is(err, sql.ErrNoRows) {
		return callbridge.CallRecord{}, nil, false, nil
	}
	if err != nil {
		return callbridge.CallRecord{}, nil, false, fmt.Errorf("call tracking %s: %w", id, err)
	}
	return r, []byte(state), true, nil
}

// PutCallRecord implements callbridge.HistoryTx.
func (h *historyTx) PutCallRecord(ctx context.Context, r callbridge.CallRecord, state []byte) error {
	agents := r.Agents
	if agents == nil {
		agents = []callbridge.AgentID{}
	}
	agentsJSON, err := jsonText(agents)
	if err != nil {
		return err
	}
	data := r.AttachedData
	if data == nil {
		data = map[string]string{}
	}
	dataJSON, err := jsonText(data)
	if err != nil {
		return err
	}
	if state == nil {
		state = []byte("{}")
	}
	complete := 0
	if r.Complete {
		complete = 1
	}
	err = h.exec(ctx, `INSERT INTO call_records (`+callRecordColumns+`, tracking)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (tenant, call_id) DO UPDATE SET pbx_call_id = excluded.pbx_call_id,
			consult_of = excluded.consult_of, direction = excluded.direction, ani = excluded.ani,
			ani_name = excluded.ani_name, dnis = excluded.dnis, queue = excluded.queue,
			agents = excluded.agents, started_at = excluded.started_at, queued_at = excluded.queued_at,
			answered_at = excluded.answered_at, ended_at = excluded.ended_at,
			wait_seconds = excluded.wait_seconds, ring_seconds = excluded.ring_seconds,
			talk_seconds = excluded.talk_seconds, hold_seconds = excluded.hold_seconds,
			wrap_up_seconds = excluded.wrap_up_seconds, result = excluded.result, cause = excluded.cause,
			disposition = excluded.disposition, notes = excluded.notes,
			attached_data = excluded.attached_data, complete = excluded.complete,
			updated_at = excluded.updated_at, tracking = excluded.tracking`,
		string(r.Tenant), string(r.CallID), r.PBXCallID, string(r.ConsultOf), string(r.Direction), r.ANI, r.ANIName,
		r.DNIS, string(r.Queue), agentsJSON, mustMicros(r.StartedAt), micros(r.QueuedAt), micros(r.AnsweredAt),
		micros(r.EndedAt), r.WaitSeconds, r.RingSeconds, r.TalkSeconds, r.HoldSeconds, r.WrapUpSeconds,
		string(r.Result), string(r.Cause), r.Disposition, r.Notes, dataJSON, complete, mustMicros(r.UpdatedAt), string(state))
	if err != nil {
		return fmt.Errorf("put call record %s: %w", r.CallID, err)
	}
	if err := h.exec(ctx, "DELETE FROM call_record_agents WHERE tenant = ? AND call_id = ?", string(r.Tenant), string(r.CallID)); err != nil {
		return fmt.Errorf("put call record %s: %w", r.CallID, err)
	}
	seen := map[callbridge.AgentID]bool{}
	for i, a := range agents {
		if seen[a] {
			continue
		}
		seen[a] = true
		if err := h.exec(ctx, "INSERT INTO call_record_agents (tenant, call_id, agent, position) VALUES (?, ?, ?, ?)",
			string(r.Tenant), string(r.CallID), string(a), i); err != nil {
			return fmt.Errorf("put call record %s: %w", r.CallID, err)
		}
	}
	return nil
}

// AgentTracking implements callbridge.HistoryTx.
func (h *historyTx) AgentTracking(ctx context.Context, tenant callbridge.TenantID, agent callbridge.AgentID) ([]byte, error) {
	var state string
	err := h.queryRow(ctx, "SELECT tracking FROM agent_tracking WHERE tenant = ? AND agent = ?",
		string(tenant), string(agent)).Scan(&state)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("agent tracking %s/%s: %w", tenant, agent, err)
	}
	return []byte(state), nil
}

// PutAgentTracking implements callbridge.HistoryTx.
func (h *historyTx) PutAgentTracking(ctx context.Context, tenant callbridge.TenantID, agent callbridge.AgentID, state []byte) error {
	if err := h.exec(ctx, `INSERT INTO agent_tracking (tenant, agent, tracking) VALUES (?, ?, ?)
		ON CONFLICT (tenant, agent) DO UPDATE SET tracking = excluded.tracking`,
		string(tenant), string(agent), string(state)); err != nil {
		return fmt.Errorf("put agent tracking %s/%s: %w", tenant, agent, err)
	}
	return nil
}

// AddAgentState implements callbridge.HistoryTx.
func (h *historyTx) AddAgentState(ctx context.Context, r callbridge.AgentStateRecord) error {
	// Close the open period: its duration is whole seconds, rounded, never negative.
	rows, err := h.query(ctx, "SELECT id, started_at FROM agent_states WHERE tenant = ? AND agent = ? AND ended_at IS NULL",
		string(r.Tenant), string(r.Agent))
	if err != nil {
		return fmt.Errorf("add agent state %s/%s: %w", r.Tenant, r.Agent, err)
	}
	type open struct {
		id      string
		started int64
	}
	var opens []open
	for rows.Next() {
		var o open
		if err := rows.Scan(&o.id, &o.started); err != nil {
			rows.Close()
			return fmt.Errorf("add agent state %s/%s: %w", r.Tenant, r.Agent, err)
		}
		opens = append(opens, o)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("add agent state %s/%s: %w", r.Tenant, r.Agent, err)
	}
	end := mustMicros(r.StartedAt)
	for _, o := range opens {
		d := max(end-o.started, 0)
		secs := (d + 500_000) / 1_000_000
		if err := h.exec(ctx, "UPDATE agent_states SET ended_at = ?, duration_seconds = ? WHERE id = ?", max(end, o.started), secs, o.id); err != nil {
			return fmt.Errorf("add agent state %s/%s: %w", r.Tenant, r.Agent, err)
		}
	}
	if err := h.exec(ctx, `INSERT INTO agent_states (`+agentStateColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, NULL, NULL)`,
		r.ID, string(r.Tenant), string(r.Agent), string(r.Device), string(r.State), r.Reason, string(r.PreviousState), end); err != nil {
		return fmt.Errorf("add agent state %s/%s: %w", r.Tenant, r.Agent, err)
	}
	return nil
}

// prefixed puts p before every column of a comma-separated list.
func prefixed(p, columns string) string {
	out := make([]byte, 0, len(columns)+64)
	start := true
	for i := 0; i < len(columns); i++ {
		c := columns[i]
		if start && c != ' ' && c != '\t' && c != '\n' {
			out = append(out, p...)
			start = false
		}
		if c == ',' {
			start = true
		}
		out = append(out, c)
	}
	return string(out)
}
