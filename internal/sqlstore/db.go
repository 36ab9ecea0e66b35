// Package sqlstore is the SQL of callbridge's stores that SQLite and PostgreSQL share: the
// history (call records, agent states, consumer positions), the webhook outbox and API keys,
// and for PostgreSQL also the configuration (provisioning, directory, users). It runs on
// database/sql over the schema of package migrations.
//
// Queries are written once with "?" placeholders; Postgres rewrites them to $1, $2 …. Every
// statement sticks to what both databases accept (ON CONFLICT upserts, no RETURNING, no
// database-specific functions); the one thing that differs, taking a row lock, is done with
// an UPDATE that both treat as a write lock.
package sqlstore

import (
	"context"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/callbridge/callbridge"
)

// Dialect is the SQL database behind a DB.
type Dialect int

// Dialects.
const (
	SQLite Dialect = iota
	Postgres
)

// DB runs the shared queries on one database.
type DB struct {
	SQL     *sql.DB
	Dialect Dialect
	Logger  *slog.Logger
	// BcryptCost hashes clear passwords in Provision.
	BcryptCost int
	// IsUniqueViolation reports whether err is a unique-constraint violation of the driver.
	IsUniqueViolation func(error) bool

	// stmts caches the prepared statements of the history writer (query → *sql.Stmt): the
	// records consumer runs the same few statements for every event, and re-parsing them was
	// most of its cost (docs/benchmarks.md, load harness).
	stmts sync.Map
}

// stmt returns the prepared statement of query (placeholders not yet rewritten), preparing
// it on first use. Statements live until Close.
func (db *DB) stmt(ctx context.Context, query string) (*sql.Stmt, error) {
	q := db.q(query)
	if s, ok := db.stmts.Load(q); ok {
		return s.(*sql.Stmt), nil
	}
	s, err := db.SQL.PrepareContext(ctx, q)
	if err != nil {
		return nil, err
	}
	if prev, loaded := db.stmts.LoadOrStore(q, s); loaded {
		s.Close()
		return prev.(*sql.Stmt), nil
	}
	return s, nil
}

// Close closes the cached statements (not the database, which its owner closes).
func (db *DB) Close() {
	db.stmts.Range(func(k, v any) bool {
		v.(*sql.Stmt).Close()
		db.stmts.Delete(k)
		return true
	})
}

// q rewrites the "?" placeholders of query for the dialect.
func (db *DB) q(query string) string {
	if db.Dialect != Postgres {
		return query
	}
	var b strings.Builder
	b.Grow(len(query) + 16)
	n := 0
	for i := 0; i < len(query); i++ {
		if query[i] == '?' {
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteByte(query[i])
	}
	return b.String()
}

func (db *DB) log() *slog.Logger {
	if db.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return db.Logger
}

// unique reports whether err is a unique violation.
func (db *DB) unique(err error) bool {
	return err != nil && db.IsUniqueViolation != nil && db.IsUniqueViolation(err)
}

// execer is what *sql.DB and *sql.Tx have in common.
type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// inTx runs fn in a transaction and commits it when fn returns nil.
func (db *DB) inTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := db.SQL.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if err := fn(tx); err != nil {
		return err
	}
	return tx.Commit()
}

// ---- value encoding ----------------------------------------------------------------------

// micros encodes t as microseconds since the epoch, or NULL for the zero time.
func micros(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UnixMicro()
}

// mustMicros encodes a time that is never zero.
func mustMicros(t time.Time) int64 { return t.UnixMicro() }

// fromMicros decodes a nullable microsecond time (zero for NULL), in UTC.
func fromMicros(v sql.NullInt64) time.Time {
	if !v.Valid {
		return time.Time{}
	}
	return time.UnixMicro(v.Int64).UTC()
}

// jsonText encodes v as JSON text.
func jsonText(v any) (string, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return "", err
	}
	return string(b), nil
}

// ---- paging ------------------------------------------------------------------------------

// pageLimit checks a requested page size.
func pageLimit(n int) (int, error) {
	switch {
	case n == 0:
		return callbridge.DefaultPageSize, nil
	case n < 0 || n > callbridge.MaxPageSize:
		return 0, callbridge.Errorf(callbridge.EInvalid, "limit must be between 1 and %d", callbridge.MaxPageSize)
	}
	return n, nil
}

// cursor is a position in a list ordered by (time DESC, id DESC): the last item of a page.
type cursor struct {
	at int64
	id string
}

func (c cursor) String() string {
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(c.at, 10) + ":" + c.id))
}

// parseCursor decodes s ("" is no cursor). Errors: EInvalid.
func parseCursor(s string) (cursor, bool, error) {
	if s == "" {
		return cursor{}, false, nil
	}
	bad := callbridge.Errorf(callbridge.EInvalid, "cursor is not valid; pass the next_cursor of a previous page")
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(s) > 200 {
		return cursor{}, false, bad
	}
	at, id, ok := strings.Cut(string(b), ":")
	if !ok || id == "" {
		return cursor{}, false, bad
	}
	n, err := strconv.ParseInt(at, 10, 64)
	if err != nil {
		return cursor{}, false, bad
	}
	return cursor{at: n, id: id}, true, nil
}

// where builds a WHERE clause from conditions joined with AND.
type where struct {
	conds []string
	args  []any
}

func (w *where) add(cond string, args ...any) {
	w.conds = append(w.conds, cond)
	w.args = append(w.args, args...)
}

func (w *where) String() string {
	if len(w.conds) == 0 {
		return ""
	}
	return " WHERE " + strings.Join(w.conds, " AND ")
}

// after adds "(timeCol, idCol) before the cursor" for a DESC listing.
func (w *where) after(c cursor, timeCol, idCol string) {
	w.add(fmt.Sprintf("(%s < ? OR (%s = ? AND %s < ?))", timeCol, timeCol, idCol), c.at, c.at, c.id)
}

// notFound is the error for a missing row when err is sql.ErrNoRows, else err wrapped.
func notFound(err error, format string, args ...any) error {
	if errors.Is(err, sql.ErrNoRows) {
		return callbridge.Errorf(callbridge.ENotFound, format, args...)
	}
	return err
}
