package sqlite_test

import (
	"path/filepath"
	"testing"

	"golang.org/x/crypto/bcrypt"

	"github.com/callbridge/callbridge/sqlite"
)

// BenchmarkProvisionUnchanged measures start-up provisioning of asterisk-22.yaml (15 users)
// into a store that already holds it, at the production bcrypt cost: every password is
// checked against its stored hash, none is rehashed, and the rows are rewritten.
func BenchmarkProvisionUnchanged(b *testing.B) {
	db, err := sqlite.Open(b.Context(), filepath.Join(b.TempDir(), "callbridge.db"), nil, sqlite.WithBcryptCost(bcrypt.DefaultCost))
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	p := loadExample(b, "asterisk-22.yaml")
	if err := db.Provision(b.Context(), p); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if err := db.Provision(b.Context(), p); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkFindUsers measures the store side of one login lookup.
func BenchmarkFindUsers(b *testing.B) {
	db, err := sqlite.Open(b.Context(), filepath.Join(b.TempDir(), "callbridge.db"), nil, sqlite.WithBcryptCost(bcrypt.MinCost))
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	if err := db.Provision(b.Context(), loadExample(b, "asterisk-22.yaml")); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := db.FindUsers(b.Context(), "1005"); err != nil {
			b.Fatal(err)
		}
	}
}
