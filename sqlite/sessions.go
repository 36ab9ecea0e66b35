package sqlite

import (
	"context"
	"time"

	"github.com/callbridge/callbridge"
)

// Login sessions use the SQL the PostgreSQL store shares (package internal/sqlstore).
var _ callbridge.SessionStore = (*DB)(nil)

// CreateSession implements callbridge.SessionStore.
func (db *DB) CreateSession(ctx context.Context, s callbridge.Session) error {
	return db.shared().CreateSession(ctx, s)
}

// Session implements callbridge.SessionStore.
func (db *DB) Session(ctx context.Context, id string) (callbridge.Session, error) {
	return db.shared().Session(ctx, id)
}

// RotateSession implements callbridge.SessionStore.
func (db *DB) RotateSession(ctx context.Context, id, oldHash, newHash string, at, expires time.Time) error {
	return db.shared().RotateSession(ctx, id, oldHash, newHash, at, expires)
}

// RevokeSession implements callbridge.SessionStore.
func (db *DB) RevokeSession(ctx context.Context, id string, at time.Time) error {
	return db.shared().RevokeSession(ctx, id, at)
}

// PruneSessions implements callbridge.SessionStore.
func (db *DB) PruneSessions(ctx context.Context, before time.Time) (int, error) {
	return db.shared().PruneSessions(ctx, before)
}

// RehashPassword implements callbridge.SessionStore.
func (db *DB) RehashPassword(ctx context.Context, tenant callbridge.TenantID, username, oldHash, newHash string) error {
	return db.shared().RehashPassword(ctx, tenant, username, oldHash, newHash)
}

// DropDemo implements callbridge.Store: it deletes the demo tenants with everything of theirs.
func (db *DB) DropDemo(ctx context.Context) ([]callbridge.TenantID, error) {
	return db.shared().DropDemo(ctx)
}
