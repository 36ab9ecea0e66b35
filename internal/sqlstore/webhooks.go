package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"time"

	"github.com/callbridge/callbridge"
	"github.com/callbridge/callbridge/internal/ids"
)

const webhookColumns = `id, tenant, url, events, description, secret, created_at`

func scanWebhook(row interface{ Scan(...any) error }) (callbridge.Webhook, error) {
	var (
		w       callbridge.Webhook
		tenant  string
		events  string
		created int64
	)
	if err := row.Scan(&w.ID, &tenant, &w.URL, &events, &w.Description, &w.Secret, &created); err != nil {
		return w, err
	}
	w.Tenant = callbridge.TenantID(tenant)
	w.CreatedAt = time.UnixMicro(created).UTC()
	if err := json.Unmarshal([]byte(events), &w.Events); err != nil {
		return w, fmt.Errorf("webhook %s: events: %w", w.ID, err)
	}
	return w, nil
}

// CreateWebhook implements callbridge.WebhookStore.
func (db *DB) CreateWebhook(ctx context.Context, w callbridge.Webhook) error {
	events, err := jsonText(w.Events)
	if err != nil {
		return err
	}
	_, err = db.SQL.ExecContext(ctx, db.q("INSERT INTO webhooks ("+webhookColumns+") VALUES (?, ?, ?, ?, ?, ?, ?)"),
		w.ID, string(w.Tenant), w.URL, events, w.Description, w.Secret, mustMicros(w.CreatedAt))
	if db.unique(err) {
		return callbridge.Errorf(callbridge.EConflict, "webhook %q exists", w.ID)
	}
	if err != nil {
		return fmt.Errorf("create webhook: %w", err)
	}
	return nil
}

// Webhooks implements callbridge.WebhookStore.
func (db *DB) Webhooks(ctx context.Context, tenant callbridge.TenantID) ([]callbridge.Webhook, error) {
	return webhooksOf(ctx, db, db.SQL, tenant)
}

func webhooksOf(ctx context.Context, db *DB, ex execer, tenant callbridge.TenantID) ([]callbridge.Webhook, error) {
	rows, err := ex.QueryContext(ctx, db.q("SELECT "+webhookColumns+" FROM webhooks WHERE tenant = ? ORDER BY created_at, id"), string(tenant))
	if err != nil {
		return nil, fmt.Errorf("webhooks: %w", err)
	}
	defer rows.Close()
	out := []callbridge.Webhook{}
	for rows.Next() {
		w, err := scanWebhook(rows)
		if err != nil {
			return nil, fmt.Errorf("webhooks: %w", err)
		}
		out = append(out, w)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("webhooks: %w", err)
	}
	return out, nil
}

// Webhook implements callbridge.WebhookStore.
func (db *DB) Webhook(ctx context.Context, tenant callbridge.TenantID, id string) (callbridge.Webhook, error) {
	w, err := scanWebhook(db.SQL.QueryRowContext(ctx, db.q("SELECT "+webhookColumns+" FROM webhooks WHERE tenant = ? AND id = ?"), string(tenant), id))
	if err != nil {
		return callbridge.Webhook{}, notFound(err, "webhook %q not found", id)
	}
	return w, nil
}

// DeleteWebhook implements callbridge.WebhookStore. Its deliveries go with it (ON DELETE
// CASCADE); events no other delivery needs are left to PruneDeliveries.
func (db *DB) DeleteWebhook(ctx context.Context, tenant callbridge.TenantID, id string) error {
	return db.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, db.q("DELETE FROM webhook_deliveries WHERE webhook_id = ? AND tenant = ?"), id, string(tenant)); err != nil {
			return fmt.Errorf("delete webhook: %w", err)
		}
		res, err := tx.ExecContext(ctx, db.q("DELETE FROM webhooks WHERE tenant = ? AND id = ?"), string(tenant), id)
		if err != nil {
			return fmt.Errorf("delete webhook: %w", err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return fmt.Errorf("delete webhook: %w", err)
		} else if n == 0 {
			return callbridge.Errorf(callbridge.ENotFound, "webhook %q not found", id)
		}
		return nil
	})
}

const deliveryColumns = `d.id, d.webhook_id, d.event_id, d.event_type, d.status, d.attempts, d.next_attempt_at,
	d.last_attempt_at, d.last_status_code, d.last_error, d.created_at, d.delivered_at`

func scanDelivery(row interface{ Scan(...any) error }, extra ...any) (callbridge.Delivery, error) {
	var (
		d                     callbridge.Delivery
		typ, status           string
		next, last, delivered sql.NullInt64
		created               int64
	)
	dest := []any{&d.ID, &d.WebhookID, &d.EventID, &typ, &status, &d.Attempts, &next, &last,
		&d.LastStatusCode, &d.LastError, &created, &delivered}
	if err := row.Scan(append(dest, extra...)...); err != nil {
		return d, err
	}
	d.EventType, d.Status = callbridge.EventType(typ), callbridge.DeliveryStatus(status)
	d.NextAttemptAt, d.LastAttemptAt, d.DeliveredAt = fromMicros(next), fromMicros(last), fromMicros(delivered)
	d.CreatedAt = time.UnixMicro(created).UTC()
	if d.Status != callbridge.DeliveryPending {
		d.NextAttemptAt = time.Time{}
	}
	return d, nil
}

// Deliveries implements callbridge.WebhookStore.
func (db *DB) Deliveries(ctx context.Context, tenant callbridge.TenantID, webhookID string, f callbridge.DeliveryFilter) ([]callbridge.Delivery, string, error) {
	limit, err := pageLimit(f.Limit)
	if err != nil {
		return nil, "", err
	}
	cur, hasCur, err := parseCursor(f.Cursor)
	if err != nil {
		return nil, "", err
	}
	if f.Status != "" && !f.Status.Valid() {
		return nil, "", callbridge.Errorf(callbridge.EInvalid, "status %q is not pending, delivered or dead_letter", f.Status)
	}
	if _, err := db.Webhook(ctx, tenant, webhookID); err != nil {
		return nil, "", err
	}
	var w where
	w.add("d.webhook_id = ?", webhookID)
	w.add("d.tenant = ?", string(tenant))
	if f.Status != "" {
		w.add("d.status = ?", string(f.Status))
	}
	if hasCur {
		w.after(cur, "d.created_at", "d.id")
	}
	rows, err := db.SQL.QueryContext(ctx, db.q("SELECT "+deliveryColumns+" FROM webhook_deliveries d"+w.String()+
		" ORDER BY d.created_at DESC, d.id DESC LIMIT ?"), append(w.args, limit+1)...)
	if err != nil {
		return nil, "", fmt.Errorf("deliveries: %w", err)
	}
	defer rows.Close()
	out := []callbridge.Delivery{}
	for rows.Next() {
		d, err := scanDelivery(rows)
		if err != nil {
			return nil, "", fmt.Errorf("deliveries: %w", err)
		}
		out = append(out, d)
	}
	if err := rows.Err(); err != nil {
		return nil, "", fmt.Errorf("deliveries: %w", err)
	}
	next := ""
	if len(out) > limit {
		out = out[:limit]
		last := out[limit-1]
		next = cursor{at: mustMicros(last.CreatedAt), id: last.ID}.String()
	}
	return out, next, nil
}

// Redeliver implements callbridge.WebhookStore.
func (db *DB) Redeliver(ctx context.Context, tenant callbridge.TenantID, webhookID, deliveryID string, at time.Time) (callbridge.Delivery, error) {
	var d callbridge.Delivery
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, db.q(`UPDATE webhook_deliveries SET status = 'pending', attempts = 0, next_attempt_at = ?,
			delivered_at = NULL WHERE id = ? AND webhook_id = ? AND tenant = ?`), mustMicros(at), deliveryID, webhookID, string(tenant))
		if err != nil {
			return fmt.Errorf("redeliver: %w", err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return fmt.Errorf("redeliver: %w", err)
		} else if n == 0 {
			return callbridge.Errorf(callbridge.ENotFound, "delivery %q of webhook %q not found", deliveryID, webhookID)
		}
		d, err = scanDelivery(tx.QueryRowContext(ctx, db.q("SELECT "+deliveryColumns+" FROM webhook_deliveries d WHERE d.id = ?"), deliveryID))
		return err
	})
	return d, err
}

// DueWebhooks implements callbridge.WebhookStore.
func (db *DB) DueWebhooks(ctx context.Context, now time.Time) ([]string, error) {
	rows, err := db.SQL.QueryContext(ctx, db.q(`SELECT DISTINCT webhook_id FROM webhook_deliveries
		WHERE status = 'pending' AND next_attempt_at <= ?`), mustMicros(now))
	if err != nil {
		return nil, fmt.Errorf("due webhooks: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("due webhooks: %w", err)
		}
		out = append(out, id)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("due webhooks: %w", err)
	}
	return out, nil
}

// ClaimDeliveries implements callbridge.WebhookStore. Each row is taken with an UPDATE that
// re-checks it is still due, so of two dispatchers racing for a row only one gets it.
func (db *DB) ClaimDeliveries(ctx context.Context, webhookID string, now, leaseUntil time.Time, limit int) ([]callbridge.PendingDelivery, error) {
	if limit <= 0 {
		return nil, nil
	}
	var out []callbridge.PendingDelivery
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		out = nil
		rows, err := tx.QueryContext(ctx, db.q(`SELECT id FROM webhook_deliveries
			WHERE webhook_id = ? AND status = 'pending' AND next_attempt_at <= ?
			ORDER BY next_attempt_at, created_at, id LIMIT ?`), webhookID, mustMicros(now), limit)
		if err != nil {
			return err
		}
		var ids []string
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return err
			}
			ids = append(ids, id)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		for _, id := range ids {
			res, err := tx.ExecContext(ctx, db.q(`UPDATE webhook_deliveries SET next_attempt_at = ?
				WHERE id = ? AND status = 'pending' AND next_attempt_at <= ?`), mustMicros(leaseUntil), id, mustMicros(now))
			if err != nil {
				return err
			}
			if n, err := res.RowsAffected(); err != nil {
				return err
			} else if n == 0 {
				continue
			}
			var (
				p    callbridge.PendingDelivery
				body string
			)
			p.Delivery, err = scanDelivery(tx.QueryRowContext(ctx, db.q("SELECT "+deliveryColumns+`, w.url, w.secret, e.body
				FROM webhook_deliveries d JOIN webhooks w ON w.id = d.webhook_id JOIN webhook_events e ON e.id = d.event_id
				WHERE d.id = ?`), id), &p.URL, &p.Secret, &body)
			if err != nil {
				return err
			}
			p.Body = []byte(body)
			out = append(out, p)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("claim deliveries of %s: %w", webhookID, err)
	}
	return out, nil
}

// FinishAttempt implements callbridge.WebhookStore.
func (db *DB) FinishAttempt(ctx context.Context, deliveryID string, a callbridge.DeliveryAttempt) error {
	if !a.Status.Valid() {
		return callbridge.Errorf(callbridge.EInvalid, "delivery status %q", a.Status)
	}
	var next, delivered any
	switch a.Status {
	case callbridge.DeliveryPending:
		next = mustMicros(a.NextAttemptAt)
	case callbridge.DeliveryDelivered:
		delivered = mustMicros(a.At)
	}
	msg := a.Error
	if len(msg) > 1000 {
		msg = msg[:1000]
	}
	_, err := db.SQL.ExecContext(ctx, db.q(`UPDATE webhook_deliveries SET attempts = attempts + 1, status = ?,
		next_attempt_at = ?, last_attempt_at = ?, last_status_code = ?, last_error = ?, delivered_at = ?
		WHERE id = ?`), string(a.Status), next, mustMicros(a.At), a.StatusCode, msg, delivered, deliveryID)
	if err != nil {
		return fmt.Errorf("finish attempt of %s: %w", deliveryID, err)
	}
	return nil
}

// PruneDeliveries implements callbridge.WebhookStore.
func (db *DB) PruneDeliveries(ctx context.Context, before time.Time) (int64, error) {
	var n int64
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, db.q(`DELETE FROM webhook_deliveries WHERE status IN ('delivered', 'dead_letter') AND created_at < ?`), mustMicros(before))
		if err != nil {
			return err
		}
		if n, err = res.RowsAffected(); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, db.q(`DELETE FROM webhook_events WHERE created_at < ?
			AND NOT EXISTS (SELECT 1 FROM webhook_deliveries d WHERE d.event_id = webhook_events.id)`), mustMicros(before))
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("prune deliveries: %w", err)
	}
	return n, nil
}

// Enqueue implements callbridge.HistoryTx: one webhook_events row (only when some webhook
// subscribes) and one pending delivery ("msg_…") per subscribed webhook, due at ev.Time.
func (h *historyTx) Enqueue(ctx context.Context, ev callbridge.OutboxEvent) (int, error) {
	if h.webhooks == nil {
		h.webhooks = map[callbridge.TenantID][]callbridge.Webhook{}
	}
	hooks, ok := h.webhooks[ev.Tenant]
	if !ok {
		var err error
		if hooks, err = webhooksOf(ctx, h.db, h.tx, ev.Tenant); err != nil {
			return 0, fmt.Errorf("enqueue %s: %w", ev.Type, err)
		}
		h.webhooks[ev.Tenant] = hooks
	}
	var targets []string
	for i := range hooks {
		if hooks[i].Subscribes(ev.Type) {
			targets = append(targets, hooks[i].ID)
		}
	}
	if len(targets) == 0 {
		return 0, nil
	}
	at := mustMicros(ev.Time)
	if err := h.exec(ctx, "INSERT INTO webhook_events (id, tenant, type, body, created_at) VALUES (?, ?, ?, ?, ?)",
		ev.ID, string(ev.Tenant), string(ev.Type), string(ev.Body), at); err != nil {
		return 0, fmt.Errorf("enqueue %s: %w", ev.Type, err)
	}
	for _, wh := range targets {
		if err := h.exec(ctx, `INSERT INTO webhook_deliveries (id, webhook_id, event_id, tenant, event_type, status,
			attempts, next_attempt_at, created_at) VALUES (?, ?, ?, ?, ?, 'pending', 0, ?, ?)`,
			ids.New("msg_", ev.Time), wh, ev.ID, string(ev.Tenant), string(ev.Type), at, at); err != nil {
			return 0, fmt.Errorf("enqueue %s: %w", ev.Type, err)
		}
	}
	return len(targets), nil
}
