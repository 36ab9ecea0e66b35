package testenv

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"testing"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" database/sql driver, for the schema admin
)

// PostgresEnv names the environment variable with the test database's URL, e.g.
// postgres://callbridge:callbridge@127.0.0.1:5432/callbridge_test?sslmode=disable (.ci/run
// sets it). The user must be allowed to create schemas in that database.
const PostgresEnv = "CALLBRIDGE_TEST_POSTGRES"

// RequirePostgres returns the test database's URL from PostgresEnv, or ends the test as
// Missing says when the variable is not set. It does not connect.
func RequirePostgres(t TB) string {
	t.Helper()
	raw := os.Getenv(PostgresEnv)
	if raw == "" {
		Missing(t, "PostgreSQL ("+PostgresEnv+" is not set)",
			"set "+PostgresEnv+"=postgres://user:pass@127.0.0.1:5432/db; .ci/run starts PostgreSQL and exports it")
	}
	return raw
}

// PostgresSchema creates an empty schema in the test database for one test and drops it when
// the test ends; it returns the database URL with that schema first on the search path. It
// ends the test as RequirePostgres does without a database, and fails it when the database is
// named but not reachable (that is never a skip).
func PostgresSchema(t testing.TB) string {
	t.Helper()
	raw := RequirePostgres(t)
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatalf("%s must be a postgres:// URL: %v", PostgresEnv, err)
	}
	admin, err := sql.Open("pgx", raw)
	if err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), Patience)
		err = admin.PingContext(ctx)
		cancel()
	}
	if err != nil {
		t.Fatalf("PostgreSQL at %s=%s is not reachable: %v", PostgresEnv, u.Redacted(), err)
	}
	b := make([]byte, 6)
	rand.Read(b)
	schema := "cbtest_" + hex.EncodeToString(b)
	ctx, cancel := context.WithTimeout(context.Background(), Patience)
	defer cancel()
	if _, err := admin.ExecContext(ctx, "CREATE SCHEMA "+schema); err != nil {
		admin.Close()
		t.Fatalf("create schema: %v", err)
	}
	t.Cleanup(func() {
		defer admin.Close()
		ctx, cancel := context.WithTimeout(context.Background(), Patience)
		defer cancel()
		if _, err := admin.ExecContext(ctx, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
	})
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}
