package sqlite

import (
	"context"
	"errors"
	"time"

	sqlite3 "modernc.org/sqlite/lib"

	"github.com/callbridge/callbridge"
	"github.com/callbridge/callbridge/internal/sqlstore"
)

// The history (call records, agent states), the webhook outbox and API keys use the SQL that
// the PostgreSQL store shares (package internal/sqlstore) on the schema of package migrations.
var (
	_ callbridge.RecordStore  = (*DB)(nil)
	_ callbridge.WebhookStore = (*DB)(nil)
	_ callbridge.APIKeyStore  = (*DB)(nil)
)

// shared returns the shared SQL implementation on db's connection pool (one per DB, so its
// prepared statements are kept).
func (db *DB) shared() *sqlstore.DB { return db.sh }

func newShared(db *DB) *sqlstore.DB {
	return &sqlstore.DB{
		SQL: db.sql, Dialect: sqlstore.SQLite, Logger: db.logger, BcryptCost: db.bcryptCost,
		IsUniqueViolation: isUniqueViolation,
	}
}

// isUniqueViolation reports whether err is SQLite's UNIQUE or PRIMARY KEY constraint error.
func isUniqueViolation(err error) bool {
	var e interface{ Code() int }
	if !errors.As(err, &e) {
		return false
	}
	return e.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE || e.Code() == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY
}

// CallRecords implements callbridge.RecordStore.
func (db *DB) CallRecords(ctx context.Context, tenant callbridge.TenantID, f callbridge.CallRecordFilter) ([]callbridge.CallRecord, string, error) {
	return db.shared().CallRecords(ctx, tenant, f)
}

// CallRecord implements callbridge.RecordStore.
func (db *DB) CallRecord(ctx context.Context, tenant callbridge.TenantID, id callbridge.CallID) (callbridge.CallRecord, error) {
	return db.shared().CallRecord(ctx, tenant, id)
}

// AgentStates implements callbridge.RecordStore.
func (db *DB) AgentStates(ctx context.Context, tenant callbridge.TenantID, f callbridge.AgentStateFilter) ([]callbridge.AgentStateRecord, string, error) {
	return db.shared().AgentStates(ctx, tenant, f)
}

// ConsumerPosition implements callbridge.RecordStore.
func (db *DB) ConsumerPosition(ctx context.Context, consumer string) (uint64, error) {
	return db.shared().ConsumerPosition(ctx, consumer)
}

// UpdateHistory implements callbridge.RecordStore. The transaction begins IMMEDIATE (see
// Open), so it holds SQLite's write lock from the start.
func (db *DB) UpdateHistory(ctx context.Context, fn func(callbridge.HistoryTx) error) error {
	return db.shared().UpdateHistory(ctx, fn)
}

// CreateWebhook implements callbridge.WebhookStore.
func (db *DB) CreateWebhook(ctx context.Context, w callbridge.Webhook) error {
	return db.shared().CreateWebhook(ctx, w)
}

// Webhooks implements callbridge.WebhookStore.
func (db *DB) Webhooks(ctx context.Context, tenant callbridge.TenantID) ([]callbridge.Webhook, error) {
	return db.shared().Webhooks(ctx, tenant)
}

// Webhook implements callbridge.WebhookStore.
func (db *DB) Webhook(ctx context.Context, tenant callbridge.TenantID, id string) (callbridge.Webhook, error) {
	return db.shared().Webhook(ctx, tenant, id)
}

// DeleteWebhook implements callbridge.WebhookStore.
func (db *DB) DeleteWebhook(ctx context.Context, tenant callbridge.TenantID, id string) error {
	return db.shared().DeleteWebhook(ctx, tenant, id)
}

// Deliveries implements callbridge.WebhookStore.
func (db *DB) Deliveries(ctx context.Context, tenant callbridge.TenantID, webhookID string, f callbridge.DeliveryFilter) ([]callbridge.Delivery, string, error) {
	return db.shared().Deliveries(ctx, tenant, webhookID, f)
}

// Redeliver implements callbridge.WebhookStore.
func (db *DB) Redeliver(ctx context.Context, tenant callbridge.TenantID, webhookID, deliveryID string, at time.Time) (callbridge.Delivery, error) {
	return db.shared().Redeliver(ctx, tenant, webhookID, deliveryID, at)
}

// DueWebhooks implements callbridge.WebhookStore.
func (db *DB) DueWebhooks(ctx context.Context, now time.Time) ([]string, error) {
	return db.shared().DueWebhooks(ctx, now)
}

// ClaimDeliveries implements callbridge.WebhookStore.
func (db *DB) ClaimDeliveries(ctx context.Context, webhookID string, now, leaseUntil time.Time, limit int) ([]callbridge.PendingDelivery, error) {
	return db.shared().ClaimDeliveries(ctx, webhookID, now, leaseUntil, limit)
}

// FinishAttempt implements callbridge.WebhookStore.
func (db *DB) FinishAttempt(ctx context.Context, deliveryID string, a callbridge.DeliveryAttempt) error {
	return db.shared().FinishAttempt(ctx, deliveryID, a)
}

// PruneDeliveries implements callbridge.WebhookStore.
func (db *DB) PruneDeliveries(ctx context.Context, before time.Time) (int64, error) {
	return db.shared().PruneDeliveries(ctx, before)
}

// CreateAPIKey implements callbridge.APIKeyStore.
func (db *DB) CreateAPIKey(ctx context.Context, k callbridge.APIKey, hash string) error {
	return db.shared().CreateAPIKey(ctx, k, hash)
}

// APIKeys implements callbridge.APIKeyStore.
func (db *DB) APIKeys(ctx context.Context, tenant callbridge.TenantID) ([]callbridge.APIKey, error) {
	return db.shared().APIKeys(ctx, tenant)
}

// RevokeAPIKey implements callbridge.APIKeyStore.
func (db *DB) RevokeAPIKey(ctx context.Context, tenant callbridge.TenantID, id string, at time.Time) (callbridge.APIKey, error) {
	return db.shared().RevokeAPIKey(ctx, tenant, id, at)
}

// APIKeyByHash implements callbridge.APIKeyStore.
func (db *DB) APIKeyByHash(ctx context.Context, hash string) (callbridge.APIKey, error) {
	return db.shared().APIKeyByHash(ctx, hash)
}
