package sqlite_test

import (
	"context"
	"database/sql"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"golang.org/x/crypto/bcrypt"

	"github.com/callbridge/callbridge"
	"github.com/callbridge/callbridge/migrations"
	"github.com/callbridge/callbridge/provision"
	"github.com/callbridge/callbridge/sqlite"
	"github.com/callbridge/callbridge/storetest"
)

// openDB opens a store at path with the cheapest bcrypt cost and closes it when the test ends.
func openDB(t *testing.T, path string, opts ...sqlite.Option) *sqlite.DB {
	t.Helper()
	opts = append([]sqlite.Option{sqlite.WithBcryptCost(bcrypt.MinCost)}, opts...)
	db, err := sqlite.Open(t.Context(), path, slog.New(slog.NewTextHandler(t.Output(), nil)), opts...)
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

func newDB(t *testing.T) *sqlite.DB {
	t.Helper()
	return openDB(t, filepath.Join(t.TempDir(), "callbridge.db"))
}

func loadExample(t testing.TB, name string) callbridge.Provisioning {
	t.Helper()
	p, err := provision.LoadFile(filepath.Join("..", "examples", name))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func mustProvision(t *testing.T, db *sqlite.DB, p callbridge.Provisioning) {
	t.Helper()
	if err := db.Provision(t.Context(), p); err != nil {
		t.Fatal(err)
	}
}

func directory(t *testing.T, db *sqlite.DB) callbridge.Directory {
	t.Helper()
	dir, err := db.Directory(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

func findUsers(t *testing.T, db *sqlite.DB, username string) []callbridge.User {
	t.Helper()
	users, err := db.FindUsers(t.Context(), username)
	if err != nil {
		t.Fatal(err)
	}
	return users
}

// rawDB opens the database file directly, bypassing the store, for checks of the file itself.
func rawDB(t *testing.T, path string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func TestOpenMigratesOnce(t *testing.T) {
	path := filepath.Join(t.TempDir(), "callbridge.db")
	for range 3 {
		db, err := sqlite.Open(t.Context(), path, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
	}
	raw := rawDB(t, path)
	var versions []int
	rows, err := raw.Query("SELECT version FROM schema_migrations ORDER BY version")
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var v int
		if err := rows.Scan(&v); err != nil {
			t.Fatal(err)
		}
		versions = append(versions, v)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	all, err := migrations.All()
	if err != nil {
		t.Fatal(err)
	}
	var want []int
	for _, m := range all {
		want = append(want, m.Version)
	}
	if !slices.Equal(versions, want) {
		t.Fatalf("schema_migrations has versions %v, want %v once", versions, want)
	}
	var mode string
	if err := raw.QueryRow("PRAGMA journal_mode").Scan(&mode); err != nil {
		t.Fatal(err)
	}
	if mode != "wal" {
		t.Errorf("journal_mode %q, want wal", mode)
	}
}

func TestOpenKeepsDataAcrossReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "callbridge.db")
	db, err := sqlite.Open(t.Context(), path, nil, sqlite.WithBcryptCost(bcrypt.MinCost))
	if err != nil {
		t.Fatal(err)
	}
	mustProvision(t, db, provision.Demo())
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db = openDB(t, path)
	storetest.WantDirectory(t, directory(t, db), storetest.AsDirectory(provision.Demo()))
}

func TestOpenCreatesDirectory(t *testing.T) {
	path := filepath.Join(t.TempDir(), "data", "nested", "callbridge.db")
	db := openDB(t, path)
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("database file not created: %v", err)
	}
	if db.Path() != path {
		t.Errorf("Path() = %q, want %q", db.Path(), path)
	}
	if err := db.Ping(t.Context()); err != nil {
		t.Fatal(err)
	}
}

func TestOpenRefusesNewerSchema(t *testing.T) {
	path := filepath.Join(t.TempDir(), "callbridge.db")
	db, err := sqlite.Open(t.Context(), path, nil)
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	if _, err := rawDB(t, path).Exec("INSERT INTO schema_migrations (version, name, applied_at) VALUES (9999, 'future', '2030-01-01T00:00:00Z')"); err != nil {
		t.Fatal(err)
	}
	_, err = sqlite.Open(t.Context(), path, nil)
	if err == nil || !strings.Contains(err.Error(), "schema version 9999 is newer") {
		t.Fatalf("got %v, want a refusal naming schema version 9999", err)
	}
}

func TestOpenRefusesBadInput(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name string
		path string
		opts []sqlite.Option
	}{
		{"empty path", "", nil},
		{"memory", ":memory:", nil},
		{"query in path", filepath.Join(dir, "x.db?mode=ro"), nil},
		{"bcrypt cost too low", filepath.Join(dir, "x.db"), []sqlite.Option{sqlite.WithBcryptCost(bcrypt.MinCost - 1)}},
		{"bcrypt cost too high", filepath.Join(dir, "x.db"), []sqlite.Option{sqlite.WithBcryptCost(bcrypt.MaxCost + 1)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db, err := sqlite.Open(t.Context(), tt.path, nil, tt.opts...)
			if callbridge.ErrorCode(err) != callbridge.EInvalid {
				if db != nil {
					db.Close()
				}
				t.Fatalf("got %v, want invalid", err)
			}
		})
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("refused opens left files: %v", entries)
	}
}

func TestDirectoryKeepsQueueWrapUpOverride(t *testing.T) {
	db := newDB(t)
	zero, thirty := 0, 30
	p := callbridge.Provisioning{Tenants: []callbridge.TenantConfig{{
		ID: "t", WrapUpSeconds: 15,
		Queues: []callbridge.QueueConfig{{Name: "a", WrapUpSeconds: &zero}, {Name: "b"}, {Name: "c", WrapUpSeconds: &thirty}},
	}}}
	mustProvision(t, db, p)
	qs := directory(t, db).Tenants[0].Queues
	if qs[0].WrapUpSeconds == nil || *qs[0].WrapUpSeconds != 0 || qs[1].WrapUpSeconds != nil || *qs[2].WrapUpSeconds != 30 {
		t.Fatalf("queues %+v", qs)
	}
}

func TestFindUsersReturnsVerifiableHash(t *testing.T) {
	db := newDB(t)
	mustProvision(t, db, loadExample(t, "asterisk-22.yaml"))

	users := findUsers(t, db, "1001")
	if len(users) != 1 {
		t.Fatalf("got %d users named 1001, want 1", len(users))
	}
	u := users[0]
	if u.Tenant != "acme" || u.Username != "1001" || u.Role != callbridge.RoleAgent || u.Name != "Alice Acme" {
		t.Errorf("user = %+v", u)
	}
	if err := bcrypt.CompareHashAndPassword([]byte(u.PasswordHash), []byte("demo")); err != nil {
		t.Errorf("stored hash does not verify the password: %v", err)
	}
	if err := bcrypt.CompareHashAndPassword([]byte(u.PasswordHash), []byte("Demo")); err == nil {
		t.Error("stored hash verifies a wrong password")
	}
	if cost, err := bcrypt.Cost([]byte(u.PasswordHash)); err != nil || cost != bcrypt.MinCost {
		t.Errorf("hash cost %d (%v), want %d", cost, err, bcrypt.MinCost)
	}

	sup := findUsers(t, db, "globex-supervisor")
	if len(sup) != 1 || sup[0].Tenant != "globex" || sup[0].Role != callbridge.RoleSupervisor {
		t.Errorf("globex-supervisor = %+v", sup)
	}
	for _, name := range []string{"nobody", "", "1001' OR '1'='1"} {
		if got := findUsers(t, db, name); len(got) != 0 {
			t.Errorf("FindUsers(%q) = %+v, want none", name, got)
		}
	}
}

func TestProvisionStoresGivenHash(t *testing.T) {
	db := newDB(t)
	hash, err := bcrypt.GenerateFromPassword([]byte("s3cret"), bcrypt.MinCost) // the store's cost
	if err != nil {
		t.Fatal(err)
	}
	mustProvision(t, db, callbridge.Provisioning{Tenants: []callbridge.TenantConfig{{
		ID: "t", Users: []callbridge.UserConfig{{Username: "u", PasswordHash: string(hash)}},
	}}})
	if got := findUsers(t, db, "u"); len(got) != 1 || got[0].PasswordHash != string(hash) {
		t.Fatalf("got %+v, want the given hash", got)
	}
}

func TestProvisionRehashesHashBelowCost(t *testing.T) {
	path := filepath.Join(t.TempDir(), "callbridge.db")
	db := openDB(t, path)
	mustProvision(t, db, provision.Demo())
	weak := findUsers(t, db, "agent1")[0].PasswordHash

	stronger := openDB(t, path, sqlite.WithBcryptCost(bcrypt.MinCost+1))
	mustProvision(t, stronger, provision.Demo())
	hash := findUsers(t, stronger, "agent1")[0].PasswordHash
	if hash == weak {
		t.Fatal("hash below the configured cost was kept")
	}
	if cost, _ := bcrypt.Cost([]byte(hash)); cost != bcrypt.MinCost+1 {
		t.Errorf("new hash has cost %d, want %d", cost, bcrypt.MinCost+1)
	}
	if err := bcrypt.CompareHashAndPassword([]byte(hash), []byte("demo")); err != nil {
		t.Error(err)
	}
}

func TestProvisionUpdates(t *testing.T) {
	db := newDB(t)
	mustProvision(t, db, loadExample(t, "asterisk-22.yaml"))
	oldHash := findUsers(t, db, "1002")[0].PasswordHash

	p := loadExample(t, "asterisk-22.yaml")
	acme := &p.Tenants[0]
	acme.Name = "ACME Corporation"
	acme.DIDs = []string{"18005550101", "18005550100"} // 18005550300 dropped, order changed
	acme.WrapUpSeconds = 20
	acme.ReasonCodes = []string{"training", "lunch"}
	acme.AttachedData = nil
	wrap := 5
	acme.Queues = append(acme.Queues, callbridge.QueueConfig{Name: "acme-vip", WrapUpSeconds: &wrap})
	alice := &acme.Users[0]
	alice.Name, alice.Role, alice.Interface = "Alice Smith", callbridge.RoleSupervisor, "PJSIP/1001-b"
	alice.Queues = []callbridge.QueueName{"acme-vip"}
	acme.Users[1].Password = "changed"
	acme.Users = slices.DeleteFunc(acme.Users, func(u callbridge.UserConfig) bool { return u.Username == "1010" })
	p.Tenants = p.Tenants[:1] // globex not in the document

	mustProvision(t, db, p)
	dir := directory(t, db)

	// acme is as the document says (1010, not in it, is gone); globex, not in the document,
	// stays as it was.
	want := storetest.AsDirectory(loadExample(t, "asterisk-22.yaml"))
	want.Tenants[0] = storetest.AsDirectory(p).Tenants[0]
	storetest.WantDirectory(t, dir, want)

	newHash := findUsers(t, db, "1002")[0].PasswordHash
	if newHash == oldHash || bcrypt.CompareHashAndPassword([]byte(newHash), []byte("changed")) != nil {
		t.Error("changed password was not stored")
	}
	if got := findUsers(t, db, "1010"); len(got) != 0 {
		t.Errorf("user 1010, not in the document, is still stored: %+v", got)
	}
}

func TestProvisionDoesNotModifyItsArgument(t *testing.T) {
	db := newDB(t)
	p := callbridge.Provisioning{Tenants: []callbridge.TenantConfig{{ID: "t", Users: []callbridge.UserConfig{{Username: "u", Password: "pw"}}}}}
	mustProvision(t, db, p)
	if u := p.Tenants[0].Users[0]; u.Role != "" || u.Password != "pw" || u.PasswordHash != "" {
		t.Fatalf("argument modified: %+v", u)
	}
}

func TestProvisionCanceledChangesNothing(t *testing.T) {
	db := newDB(t)
	mustProvision(t, db, provision.Demo())
	before := directory(t, db)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	p := provision.Demo()
	p.Tenants[0].Name = "renamed"
	p.Tenants[0].Users[0].Password = "new"
	if err := db.Provision(ctx, p); !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
	storetest.WantDirectory(t, directory(t, db), before)
}

// TestProvisionFromTwoHandles has two stores on one file (as two processes would) provision at
// the same time; IMMEDIATE transactions and the busy timeout make them queue, not fail.
func TestProvisionFromTwoHandles(t *testing.T) {
	path := filepath.Join(t.TempDir(), "callbridge.db")
	dbs := []*sqlite.DB{openDB(t, path), openDB(t, path)}
	docs := []callbridge.Provisioning{loadExample(t, "asterisk-22.yaml"), provision.Demo()}
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for i, db := range dbs {
		wg.Go(func() {
			for range 10 {
				if err := db.Provision(t.Context(), docs[i]); err != nil {
					errs <- err
					return
				}
			}
		})
		wg.Go(func() {
			for range 10 {
				if _, err := db.Directory(t.Context()); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	want := storetest.AsDirectory(callbridge.Provisioning{Tenants: append(slices.Clone(docs[0].Tenants), docs[1].Tenants...)})
	storetest.WantDirectory(t, directory(t, dbs[0]), want)
}

// TestMigrateFrom0003PutsEveryoneAtTheDefaultSite: a database written before sites (schema
// 0003) opens with its users and queues at the implicit site, which is a row, and keeps
// taking the same documents.
func TestMigrateFrom0003PutsEveryoneAtTheDefaultSite(t *testing.T) {
	path := filepath.Join(t.TempDir(), "callbridge.db")
	raw := rawDB(t, path)
	all, err := migrations.All()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := raw.Exec("CREATE TABLE schema_migrations (version INTEGER NOT NULL PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)"); err != nil {
		t.Fatal(err)
	}
	for _, m := range all[:3] {
		if _, err := raw.Exec(m.SQL); err != nil {
			t.Fatalf("migration %d: %v", m.Version, err)
		}
		if _, err := raw.Exec("INSERT INTO schema_migrations VALUES (?, ?, '2026-01-01T00:00:00Z')", m.Version, m.Name); err != nil {
			t.Fatal(err)
		}
	}
	for _, q := range []string{
		"INSERT INTO tenants (id, name) VALUES ('acme', 'ACME')",
		"INSERT INTO queues (tenant, name) VALUES ('acme', 'support')",
		"INSERT INTO users (tenant, username, password_hash, role, device) VALUES ('acme', 'alice', 'x', 'agent', '1001')",
		"INSERT INTO user_queues (tenant, username, queue, position) VALUES ('acme', 'alice', 'support', 0)",
	} {
		if _, err := raw.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	raw.Close()

	db := openDB(t, path)
	dir := directory(t, db)
	if len(dir.Sites) != 1 || dir.Sites[0].ID != callbridge.DefaultSite || dir.Sites[0].TimeZone != "UTC" {
		t.Fatalf("sites after the migration: %+v", dir.Sites)
	}
	acme := dir.Tenants[0]
	if acme.Users[0].Site != callbridge.DefaultSite || acme.Queues[0].Site != callbridge.DefaultSite || acme.Users[0].Device != "1001" {
		t.Fatalf("acme after the migration: %+v", acme)
	}
	if site, ok := dir.SiteOf("acme", "alice"); !ok || site != callbridge.DefaultSite {
		t.Errorf("SiteOf(acme, alice) = %q, %v", site, ok)
	}
	// The same extension at another site of the same tenant is another device now.
	mustProvision(t, db, callbridge.Provisioning{
		Sites: []callbridge.Site{{ID: "a", Switches: []callbridge.SwitchConfig{{PBX: "sim"}}}, {ID: "b", Switches: []callbridge.SwitchConfig{{PBX: "sim"}}}},
		Tenants: []callbridge.TenantConfig{{ID: "acme", Users: []callbridge.UserConfig{
			{Username: "alice", Password: "pw", Site: "a", Device: "1001"}, {Username: "bob", Password: "pw", Site: "b", Device: "1001"}}}},
	})
	// support (not in the document) is still at the implicit site, which therefore stays.
	if got := siteIDs(directory(t, db)); !slices.Equal(got, []callbridge.SiteID{"a", "b", callbridge.DefaultSite}) {
		t.Errorf("sites %q", got)
	}
}

func siteIDs(dir callbridge.Directory) []callbridge.SiteID {
	var out []callbridge.SiteID
	for _, s := range dir.Sites {
		out = append(out, s.ID)
	}
	return out
}
