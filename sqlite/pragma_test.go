package sqlite

import (
	"path/filepath"
	"testing"
)

// TestConnectionSettings checks the settings every pooled connection gets from the DSN.
func TestConnectionSettings(t *testing.T) {
	db, err := Open(t.Context(), filepath.Join(t.TempDir(), "callbridge.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	db.sql.SetMaxIdleConns(0) // every query below on a fresh connection
	for _, tt := range []struct {
		pragma string
		want   string
	}{
		{"foreign_keys", "1"},
		{"busy_timeout", "5000"},
		{"journal_mode", "wal"},
	} {
		var got string
		if err := db.sql.QueryRowContext(t.Context(), "PRAGMA "+tt.pragma).Scan(&got); err != nil {
			t.Fatal(err)
		}
		if got != tt.want {
			t.Errorf("PRAGMA %s = %q, want %q", tt.pragma, got, tt.want)
		}
	}
	// With foreign keys on, a queue of a tenant that does not exist is refused.
	if _, err := db.sql.ExecContext(t.Context(), "INSERT INTO queues (tenant, name) VALUES ('ghost', 'q')"); err == nil {
		t.Error("foreign key not enforced")
	}
}
