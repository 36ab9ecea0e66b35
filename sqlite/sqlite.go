// Package sqlite is the embedded SQLite implementation of callbridge.Store, on the pure Go
// driver modernc.org/sqlite (no cgo).
//
// One database file holds configuration (tenants, DIDs, queues, users) and, later, history.
// Open creates the file and its directory, turns on WAL (readers do not block the writer),
// foreign keys and a busy timeout, and applies the embedded migrations of package migrations
// (shared with the PostgreSQL store).
// Write transactions begin IMMEDIATE, so two writers (also in two processes) queue on the busy
// timeout instead of failing with SQLITE_BUSY halfway through.
package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/crypto/bcrypt"
	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver

	"github.com/callbridge/callbridge"
	"github.com/callbridge/callbridge/internal/sqlstore"
)

// BusyTimeout is how long a statement waits for another connection's write lock before it
// fails with SQLITE_BUSY.
const BusyTimeout = 5 * time.Second

// DB is a callbridge store in one SQLite file. It is safe for concurrent use.
type DB struct {
	sql        *sql.DB
	sh         *sqlstore.DB // the SQL shared with PostgreSQL, on sql
	logger     *slog.Logger
	path       string
	bcryptCost int
}

var _ callbridge.Store = (*DB)(nil)

// Option changes how Open sets up a DB.
type Option func(*DB)

// WithBcryptCost sets the bcrypt cost Provision hashes clear passwords with (default
// bcrypt.DefaultCost, 10). Tests use bcrypt.MinCost (4) to run fast; production must not.
// Open fails when cost is outside bcrypt.MinCost…bcrypt.MaxCost.
func WithBcryptCost(cost int) Option {
	return func(db *DB) { db.bcryptCost = cost }
}

// Open opens (creating it, and its directory with mode 0750, when missing) the SQLite database
// at path and migrates it to the newest schema. path is a file name; a name with '?' in it is
// refused because the driver would read the rest as connection parameters. A nil logger
// discards logs.
//
// Errors: a *callbridge.Error with code invalid for a bad path or option; otherwise the
// wrapped file system or SQLite error, or a refusal when the file's schema is newer than
// this build knows (a newer callbridge migrated it). On error nothing stays open.
func Open(ctx context.Context, path string, logger *slog.Logger, opts ...Option) (*DB, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	db := &DB{logger: logger, bcryptCost: bcrypt.DefaultCost}
	for _, opt := range opts {
		opt(db)
	}
	if db.bcryptCost < bcrypt.MinCost || db.bcryptCost > bcrypt.MaxCost {
		return nil, callbridge.Errorf(callbridge.EInvalid, "bcrypt cost %d is not between %d and %d",
			db.bcryptCost, bcrypt.MinCost, bcrypt.MaxCost)
	}
	if path == "" || path == ":memory:" || strings.ContainsAny(path, "?\x00") {
		return nil, callbridge.Errorf(callbridge.EInvalid, "database path %q must name a file and must not contain '?'", path)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("open database: %w", err)
	}
	db.path = abs
	if err := os.MkdirAll(filepath.Dir(abs), 0o750); err != nil {
		return nil, fmt.Errorf("open database: %w", err)
	}

	// Parameters are applied by the driver on every new connection of the pool.
	dsn := abs + "?_txlock=immediate&_foreign_keys=1&_journal_mode=WAL" +
		fmt.Sprintf("&_busy_timeout=%d", BusyTimeout.Milliseconds())
	db.sql, err = sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("open database %s: %w", abs, err)
	}
	db.sh = newShared(db)
	if err := db.setUp(ctx); err != nil {
		db.sql.Close()
		return nil, err
	}
	return db, nil
}

// setUp checks the connection settings and runs the migrations.
func (db *DB) setUp(ctx context.Context) error {
	var mode string
	if err := db.sql.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil {
		return fmt.Errorf("open database %s: %w", db.path, err)
	}
	if !strings.EqualFold(mode, "wal") {
		// WAL needs shared memory, which some network file systems lack; SQLite then keeps
		// its rollback journal. Everything still works, with readers blocking the writer.
		db.logger.Warn("sqlite: WAL mode not available", "path", db.path, "journal_mode", mode)
	}
	if err := db.migrate(ctx); err != nil {
		return fmt.Errorf("migrate database %s: %w", db.path, err)
	}
	return nil
}

// Path returns the absolute path of the database file.
func (db *DB) Path() string { return db.path }

// Ping checks that the database answers (for /readyz).
func (db *DB) Ping(ctx context.Context) error {
	if err := db.sql.PingContext(ctx); err != nil {
		return fmt.Errorf("ping database: %w", err)
	}
	return nil
}

// Close closes the database; SQLite checkpoints the WAL into the main file when the last
// connection closes.
func (db *DB) Close() error {
	db.sh.Close()
	if err := db.sql.Close(); err != nil {
		return fmt.Errorf("close database %s: %w", db.path, err)
	}
	return nil
}
