package sqlite

import (
	"context"

	"github.com/callbridge/callbridge"
)

// Provision implements callbridge.Store: it validates p, hashes clear passwords (keeping a
// stored hash that still matches), and upserts every tenant, queue and user of p in one
// transaction (internal/sqlstore, shared with PostgreSQL). Errors: *callbridge.Error with code
// invalid for a bad document, with nothing changed; otherwise a wrapped SQLite error or ctx's
// error, also with nothing changed.
func (db *DB) Provision(ctx context.Context, p callbridge.Provisioning) error {
	return db.shared().Provision(ctx, p)
}

// Directory implements callbridge.Store: every tenant with DIDs, attached-data keys, reason
// codes, queues and users (no passwords), in a deterministic order.
func (db *DB) Directory(ctx context.Context) (callbridge.Directory, error) {
	return db.shared().Directory(ctx)
}

// FindUsers implements callbridge.Store: the users named username in every tenant, with their
// password hashes, ordered by tenant.
func (db *DB) FindUsers(ctx context.Context, username string) ([]callbridge.User, error) {
	return db.shared().FindUsers(ctx, username)
}
