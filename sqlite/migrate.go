package sqlite

import (
	"context"
	"fmt"
	"time"

	"github.com/callbridge/callbridge/migrations"
)

// migrate applies every embedded migration the database has not seen, each in its own
// transaction together with its schema_migrations row, so a failed step leaves the schema as
// it was and the next Open retries it. Concurrent Opens of one file are safe: write
// transactions begin IMMEDIATE and each step re-checks schema_migrations inside its
// transaction.
func (db *DB) migrate(ctx context.Context) error {
	steps, err := migrations.All()
	if err != nil {
		return err
	}
	if _, err := db.sql.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    INTEGER NOT NULL PRIMARY KEY,
		name       TEXT    NOT NULL,
		applied_at TEXT    NOT NULL
	)`); err != nil {
		return fmt.Errorf("create schema_migrations: %w", err)
	}
	var newest int
	if err := db.sql.QueryRowContext(ctx, "SELECT COALESCE(MAX(version), 0) FROM schema_migrations").Scan(&newest); err != nil {
		return fmt.Errorf("read schema version: %w", err)
	}
	if known := steps[len(steps)-1].Version; newest > known {
		return fmt.Errorf("schema version %d is newer than this build of callbridge knows (%d); use a newer callbridge", newest, known)
	}
	for _, m := range steps {
		if err := db.apply(ctx, m); err != nil {
			return fmt.Errorf("migration %04d_%s: %w", m.Version, m.Name, err)
		}
	}
	return nil
}

// apply runs m unless it is already recorded.
func (db *DB) apply(ctx context.Context, m migrations.Migration) error {
	tx, err := db.sql.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	var n int
	if err := tx.QueryRowContext(ctx, "SELECT COUNT(*) FROM schema_migrations WHERE version = ?", m.Version).Scan(&n); err != nil {
		return err
	}
	if n > 0 {
		return nil
	}
	if _, err := tx.ExecContext(ctx, m.SQL); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
		m.Version, m.Name, time.Now().UTC().Format(time.RFC3339)); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	db.logger.Info("sqlite: applied migration", "path", db.path, "version", m.Version, "name", m.Name)
	return nil
}
