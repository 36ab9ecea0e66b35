package migrations_test

import (
	"regexp"
	"strings"
	"testing"

	"github.com/callbridge/callbridge/migrations"
)

// TestMigrationsArePortable checks the embedded files: numbered from 1 without gaps, and
// free of what only one of SQLite and PostgreSQL understands.
func TestMigrationsArePortable(t *testing.T) {
	all, err := migrations.All()
	if err != nil {
		t.Fatal(err)
	}
	for i, m := range all {
		if m.Version != i+1 {
			t.Errorf("migration %d has version %d", i, m.Version)
		}
	}
	if migrations.Latest() != len(all) {
		t.Errorf("Latest() = %d", migrations.Latest())
	}
	forbidden := regexp.MustCompile(`(?i)\b(AUTOINCREMENT|SERIAL|BIGSERIAL|WITHOUT ROWID|JSONB|TIMESTAMPTZ|BOOLEAN|DATETIME|PRAGMA|STRICT|RETURNING|REAL|BLOB|BYTEA)\b`)
	comment := regexp.MustCompile(`--[^\n]*`)
	for _, m := range all {
		sql := comment.ReplaceAllString(m.SQL, "")
		if bad := forbidden.FindString(sql); bad != "" {
			t.Errorf("%04d_%s uses %s, which is not portable", m.Version, m.Name, bad)
		}
		if strings.Contains(sql, "`") || strings.Contains(sql, `"`) {
			t.Errorf("%04d_%s quotes identifiers", m.Version, m.Name)
		}
	}
}
