// Package postgres is the PostgreSQL implementation of callbridge's stores (Store,
// RecordStore, WebhookStore, APIKeyStore) for production, on pgx
// (github.com/jackc/pgx/v5) through database/sql.
//
// It runs the same migrations as the embedded SQLite store (package migrations) and the same
// queries (package internal/sqlstore), and passes the same conformance suite
// (package storetest). Several callbridge nodes may share one database: migrations take a
// transaction-scoped advisory lock, and the history consumers lock their position row.
package postgres

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
	"golang.org/x/crypto/bcrypt"

	"github.com/callbridge/callbridge"
	"github.com/callbridge/callbridge/internal/sqlstore"
	"github.com/callbridge/callbridge/migrations"
)

// DB is a callbridge store in a PostgreSQL database. It is safe for concurrent use.
type DB struct {
	*sqlstore.DB
	logger *slog.Logger
	name   string // database@host, for logs (no password)
}

var (
	_ callbridge.Store        = (*DB)(nil)
	_ callbridge.SessionStore = (*DB)(nil)
	_ callbridge.RecordStore  = (*DB)(nil)
	_ callbridge.WebhookStore = (*DB)(nil)
	_ callbridge.APIKeyStore  = (*DB)(nil)
)

// Option changes how Open sets up a DB.
type Option func(*options)

type options struct {
	bcryptCost   int
	maxOpenConns int
}

// WithBcryptCost sets the bcrypt cost Provision hashes clear passwords with (default
// bcrypt.DefaultCost). Tests use bcrypt.MinCost; production must not.
func WithBcryptCost(cost int) Option { return func(o *options) { o.bcryptCost = cost } }

// WithMaxOpenConns caps the connection pool (default 20).
func WithMaxOpenConns(n int) Option { return func(o *options) { o.maxOpenConns = n } }

// Open connects to the database at url (postgres://user:password@host:5432/db?sslmode=…,
// or a libpq key=value string; PG* environment variables fill in what it leaves out),
// checks the connection and migrates the schema to the newest version. A nil logger
// discards logs.
//
// Errors: a *callbridge.Error with code invalid for a URL that does not parse or a bad
// option; otherwise the wrapped connection or migration error, or a refusal when the
// schema is newer than this build knows. On error nothing stays open.
func Open(ctx context.Context, url string, logger *slog.Logger, opts ...Option) (*DB, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	o := options{bcryptCost: bcrypt.DefaultCost, maxOpenConns: 20}
	for _, opt := range opts {
		opt(&o)
	}
	if o.bcryptCost < bcrypt.MinCost || o.bcryptCost > bcrypt.MaxCost {
		return nil, callbridge.Errorf(callbridge.EInvalid, "bcrypt cost %d is not between %d and %d",
			o.bcryptCost, bcrypt.MinCost, bcrypt.MaxCost)
	}
	if o.maxOpenConns < 1 {
		return nil, callbridge.Errorf(callbridge.EInvalid, "max open connections must be at least 1")
	}
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		// pgx's parse errors do not repeat the password.
		return nil, callbridge.Errorf(callbridge.EInvalid, "postgres URL: %v", err)
	}
	name := fmt.Sprintf("%s@%s:%d", cfg.Database, cfg.Host, cfg.Port)
	sqldb := stdlib.OpenDB(*cfg)
	sqldb.SetMaxOpenConns(o.maxOpenConns)
	sqldb.SetMaxIdleConns(min(o.maxOpenConns, 5))
	sqldb.SetConnMaxIdleTime(5 * time.Minute)

	db := &DB{
		DB: &sqlstore.DB{
			SQL: sqldb, Dialect: sqlstore.Postgres, Logger: logger, BcryptCost: o.bcryptCost,
			IsUniqueViolation: isUniqueViolation,
		},
		logger: logger,
		name:   name,
	}
	if err := sqldb.PingContext(ctx); err != nil {
		sqldb.Close()
		return nil, fmt.Errorf("connect to postgres %s: %w", name, err)
	}
	if err := db.migrate(ctx); err != nil {
		sqldb.Close()
		return nil, fmt.Errorf("migrate postgres %s: %w", name, err)
	}
	return db, nil
}

// isUniqueViolation reports whether err is PostgreSQL's unique_violation (23505).
func isUniqueViolation(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "23505"
}

// Ping checks that the database answers (for /readyz).
func (db *DB) Ping(ctx context.Context) error {
	if err := db.SQL.PingContext(ctx); err != nil {
		return fmt.Errorf("ping postgres %s: %w", db.name, err)
	}
	return nil
}

// Close closes the connection pool.
func (db *DB) Close() error {
	db.DB.Close() // the cached statements
	if err := db.SQL.Close(); err != nil {
		return fmt.Errorf("close postgres %s: %w", db.name, err)
	}
	return nil
}

// migrationLock is the advisory lock key migrations hold ("callbrdg" in ASCII).
const migrationLock int64 = 0x63616c6c62726467

// migrate applies every migration the database has not seen, each in its own transaction
// with its schema_migrations row, under a transaction-scoped advisory lock so that nodes
// starting together apply each step once.
func (db *DB) migrate(ctx context.Context) error {
	steps, err := migrations.All()
	if err != nil {
		return err
	}
	// Under the lock too: PostgreSQL's CREATE TABLE IF NOT EXISTS is not safe against a
	// concurrent one (the loser fails on the catalog, 23505 or 42710).
	if err := db.locked(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
			version    INTEGER NOT NULL PRIMARY KEY,
			name       TEXT    NOT NULL,
			applied_at TEXT    NOT NULL
		)`)
		return err
	}); err != nil {
		return fmt.Errorf("create schema_migrations: %w", err)
	}
	var newest int
	if err := db.SQL.QueryRowContext(ctx, "SELECT COALESCE(MAX(version), 0) FROM schema_migrations").Scan(&newest); err != nil {
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

// locked runs f in a transaction that holds the migration lock, and commits it.
func (db *DB) locked(ctx context.Context, f func(tx *sql.Tx) error) error {
	tx, err := db.SQL.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, "SELECT pg_advisory_xact_lock($1)", migrationLock); err != nil {
		return err
	}
	if err := f(tx); err != nil {
		return err
	}
	return tx.Commit()
}

// apply runs m unless it is already recorded.
func (db *DB) apply(ctx context.Context, m migrations.Migration) error {
	applied := false
	err := db.locked(ctx, func(tx *sql.Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx, "SELECT COUNT(*) FROM schema_migrations WHERE version = $1", m.Version).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return nil
		}
		if _, err := tx.ExecContext(ctx, m.SQL); err != nil {
			return err
		}
		applied = true
		_, err := tx.ExecContext(ctx, "INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)",
			m.Version, m.Name, time.Now().UTC().Format(time.RFC3339))
		return err
	})
	if err == nil && applied {
		db.logger.Info("postgres: applied migration", "db", db.name, "version", m.Version, "name", m.Name)
	}
	return err
}
