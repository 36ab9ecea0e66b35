package postgres_test

import (
	"context"
	"database/sql"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" database/sql driver, for sqlOf
	"golang.org/x/crypto/bcrypt"

	"github.com/callbridge/callbridge"
	"github.com/callbridge/callbridge/internal/testenv"
	"github.com/callbridge/callbridge/migrations"
	"github.com/callbridge/callbridge/postgres"
	"github.com/callbridge/callbridge/storetest"
)

// newSchema creates an empty schema for one test, dropped at the end, and returns the URL
// that puts it first on the search path. Without CALLBRIDGE_TEST_POSTGRES the test is skipped
// on a developer's machine and fails under CI (testenv.RequirePostgres), where .ci/run
// installs and starts PostgreSQL; a database that is named but not reachable always fails.
func newSchema(t *testing.T) string {
	t.Helper()
	return testenv.PostgresSchema(t)
}

func open(t *testing.T, dsn string, opts ...postgres.Option) *postgres.DB {
	t.Helper()
	opts = append([]postgres.Option{postgres.WithBcryptCost(bcrypt.MinCost)}, opts...)
	db, err := postgres.Open(t.Context(), dsn, slog.New(slog.NewTextHandler(t.Output(), nil)), opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := db.Close(); err != nil {
			t.Error(err)
		}
	})
	return db
}

// TestConformance runs the store conformance suite that the SQLite store runs too.
func TestConformance(t *testing.T) {
	testenv.RequirePostgres(t)
	storetest.Run(t, func(t *testing.T) storetest.Store { return open(t, newSchema(t)) })
}

func TestOpenMigratesOnceConcurrently(t *testing.T) {
	dsn := newSchema(t)
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for range 4 {
		wg.Go(func() {
			db, err := postgres.Open(context.Background(), dsn, nil)
			if err != nil {
				errs <- err
				return
			}
			db.Close()
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	db := open(t, dsn)
	if err := db.Ping(t.Context()); err != nil {
		t.Fatal(err)
	}
	var versions []int
	rows, err := sqlOf(t, dsn).QueryContext(t.Context(), "SELECT version FROM schema_migrations ORDER BY version")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var v int
		if err := rows.Scan(&v); err != nil {
			t.Fatal(err)
		}
		versions = append(versions, v)
	}
	all, _ := migrations.All()
	if len(versions) != len(all) || versions[len(versions)-1] != migrations.Latest() {
		t.Fatalf("schema_migrations has %v, want each of the %d migrations once", versions, len(all))
	}
}

func TestOpenRefusesNewerSchema(t *testing.T) {
	dsn := newSchema(t)
	open(t, dsn)
	if _, err := sqlOf(t, dsn).ExecContext(t.Context(), "INSERT INTO schema_migrations (version, name, applied_at) VALUES (9999, 'future', 'x')"); err != nil {
		t.Fatal(err)
	}
	_, err := postgres.Open(t.Context(), dsn, nil)
	if err == nil || !strings.Contains(err.Error(), "schema version 9999 is newer") {
		t.Fatalf("got %v, want a refusal naming schema version 9999", err)
	}
}

func TestOpenRefusesBadInput(t *testing.T) {
	for _, tc := range []struct {
		name string
		url  string
		opts []postgres.Option
	}{
		{"bad URL", "postgres://%zz", nil},
		{"bcrypt cost", "postgres://127.0.0.1/x", []postgres.Option{postgres.WithBcryptCost(1)}},
		{"pool size", "postgres://127.0.0.1/x", []postgres.Option{postgres.WithMaxOpenConns(0)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			db, err := postgres.Open(t.Context(), tc.url, nil, tc.opts...)
			if callbridge.ErrorCode(err) != callbridge.EInvalid {
				if db != nil {
					db.Close()
				}
				t.Fatalf("got %v, want invalid", err)
			}
		})
	}
}

func TestOpenUnreachable(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	// Port 1 on loopback: connection refused.
	_, err := postgres.Open(ctx, "postgres://u:secret-password@127.0.0.1:1/db?connect_timeout=2", nil)
	if err == nil {
		t.Fatal("opened a database on port 1")
	}
	if strings.Contains(err.Error(), "secret-password") {
		t.Errorf("error shows the password: %v", err)
	}
}

// sqlOf opens a plain connection with dsn's search path.
func sqlOf(t *testing.T, dsn string) *sql.DB {
	t.Helper()
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}
