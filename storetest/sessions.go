package storetest

import (
	"slices"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"

	"github.com/callbridge/callbridge"
	"github.com/callbridge/callbridge/provision"
)

// session returns a live session of user 1001 of acme (asterisk-22.yaml) created at at(0).
func newSession(id string) callbridge.Session {
	return callbridge.Session{
		ID: id, Tenant: "acme", Username: "1001", RefreshHash: "h0",
		CreatedAt: at(0), RotatedAt: at(0), ExpiresAt: at(3600),
	}
}

func getSession(t *testing.T, s Store, id string) callbridge.Session {
	t.Helper()
	got, err := s.Session(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func testSessions(t *testing.T, open Open) {
	s := open(t)
	ctx := t.Context()
	mustProvision(t, s, loadExample(t, "asterisk-22.yaml"))

	a := newSession("sess-a")
	if err := s.CreateSession(ctx, a); err != nil {
		t.Fatal(err)
	}
	if got := getSession(t, s, "sess-a"); got != a {
		t.Fatalf("Session = %+v, want %+v", got, a)
	}
	wantCode(t, s.CreateSession(ctx, a), callbridge.EConflict)
	ghost := newSession("sess-ghost")
	ghost.Username = "nobody"
	wantCode(t, s.CreateSession(ctx, ghost), callbridge.ENotFound)
	_, err := s.Session(ctx, "sess-none")
	wantCode(t, err, callbridge.ENotFound)

	// Rotation is a compare-and-swap on the current hash.
	if err := s.RotateSession(ctx, "sess-a", "h0", "h1", at(60), at(7200)); err != nil {
		t.Fatal(err)
	}
	got := getSession(t, s, "sess-a")
	if got.RefreshHash != "h1" || got.PreviousHash != "h0" || !got.RotatedAt.Equal(at(60)) || !got.ExpiresAt.Equal(at(7200)) {
		t.Fatalf("after rotation: %+v", got)
	}
	wantCode(t, s.RotateSession(ctx, "sess-a", "h0", "h2", at(61), at(7200)), callbridge.EConflict)
	wantCode(t, s.RotateSession(ctx, "sess-none", "h0", "h2", at(61), at(7200)), callbridge.ENotFound)
	wantCode(t, s.RotateSession(ctx, "sess-a", "h1", "h2", at(7200), at(9000)), callbridge.EConflict) // expired
	if got := getSession(t, s, "sess-a"); got.RefreshHash != "h1" {
		t.Fatalf("refused rotations changed the session: %+v", got)
	}

	// Revocation keeps its first time and ends rotation.
	if err := s.RevokeSession(ctx, "sess-a", at(100)); err != nil {
		t.Fatal(err)
	}
	if err := s.RevokeSession(ctx, "sess-a", at(200)); err != nil {
		t.Fatal(err)
	}
	got = getSession(t, s, "sess-a")
	if !got.RevokedAt.Equal(at(100)) || got.Live(at(101)) {
		t.Fatalf("after revoke: %+v (live %v)", got, got.Live(at(101)))
	}
	wantCode(t, s.RotateSession(ctx, "sess-a", "h1", "h2", at(101), at(7200)), callbridge.EConflict)
	wantCode(t, s.RevokeSession(ctx, "sess-none", at(100)), callbridge.ENotFound)

	// Pruning deletes what expired before the given time, revoked or not.
	b := newSession("sess-b")
	b.ExpiresAt = at(10_000)
	if err := s.CreateSession(ctx, b); err != nil {
		t.Fatal(err)
	}
	n, err := s.PruneSessions(ctx, at(8000))
	if err != nil || n != 1 {
		t.Fatalf("PruneSessions = %d, %v; want 1", n, err)
	}
	_, err = s.Session(ctx, "sess-a")
	wantCode(t, err, callbridge.ENotFound)
	if got := getSession(t, s, "sess-b"); !got.Live(at(8000)) {
		t.Fatalf("sess-b was pruned or changed: %+v", got)
	}
}

// testProvisionRemovesDroppedUsers: a user that a re-provisioning no longer lists is deleted
// with their sessions, and may give their device to another user of the document.
func testProvisionRemovesDroppedUsers(t *testing.T, open Open) {
	s := open(t)
	ctx := t.Context()
	mustProvision(t, s, loadExample(t, "asterisk-22.yaml"))
	gone, kept := newSession("sess-gone"), newSession("sess-kept")
	gone.Username = "1010"
	for _, sess := range []callbridge.Session{gone, kept} {
		if err := s.CreateSession(ctx, sess); err != nil {
			t.Fatal(err)
		}
	}

	p := loadExample(t, "asterisk-22.yaml")
	p.Tenants[0].Users = slices.DeleteFunc(p.Tenants[0].Users, func(u callbridge.UserConfig) bool { return u.Username == "1010" })
	p.Tenants[0].Users[0].Device = "1010" // the dropped user's device
	mustProvision(t, s, p)

	if users := findUsers(t, s, "1010"); len(users) != 0 {
		t.Errorf("dropped user still found: %+v", users)
	}
	WantDirectory(t, directory(t, s), AsDirectory(p))
	_, err := s.Session(ctx, "sess-gone")
	wantCode(t, err, callbridge.ENotFound)
	if got := getSession(t, s, "sess-kept"); got != kept {
		t.Errorf("a kept user's session changed: %+v", got)
	}
	// Another tenant's users are not touched by a document without that tenant.
	only := loadExample(t, "asterisk-22.yaml")
	only.Tenants = only.Tenants[1:]
	mustProvision(t, s, only)
	if users := findUsers(t, s, "1001"); len(users) == 0 {
		t.Error("a tenant missing from the document lost its users")
	}
}

// testDemoIsDropped: DropDemo removes the demo tenant with its users and sessions and
// nothing else; a demo tenant never replaces a tenant that is not a demo.
func testDemoIsDropped(t *testing.T, open Open) {
	s := open(t)
	ctx := t.Context()
	file := loadExample(t, "asterisk-22.yaml")
	mustProvision(t, s, file)
	mustProvision(t, s, provision.Demo())
	if err := s.CreateSession(ctx, callbridge.Session{
		ID: "sess-demo", Tenant: "demo", Username: "agent1", RefreshHash: "h",
		CreatedAt: at(0), RotatedAt: at(0), ExpiresAt: at(60),
	}); err != nil {
		t.Fatal(err)
	}
	if dir := directory(t, s); !slices.ContainsFunc(dir.Tenants, func(t callbridge.TenantConfig) bool { return t.ID == "demo" && t.Demo }) {
		t.Fatalf("the demo tenant is not stored as a demo: %+v", dir.Tenants)
	}

	dropped, err := s.DropDemo(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(dropped, []callbridge.TenantID{"demo"}) {
		t.Errorf("DropDemo = %v, want [demo]", dropped)
	}
	WantDirectory(t, directory(t, s), AsDirectory(file))
	if users := findUsers(t, s, "agent1"); len(users) != 0 {
		t.Errorf("demo user left: %+v", users)
	}
	_, err = s.Session(ctx, "sess-demo")
	wantCode(t, err, callbridge.ENotFound)
	if dropped, err := s.DropDemo(ctx); err != nil || len(dropped) != 0 {
		t.Errorf("second DropDemo = %v, %v; want nothing", dropped, err)
	}

	// A tenant called "demo" from a file is not a demo: the demo does not replace it.
	mine := callbridge.Provisioning{Tenants: []callbridge.TenantConfig{{ID: "demo", Name: "Ours",
		Users: []callbridge.UserConfig{{Username: "boss", Password: "secret", Role: callbridge.RoleAdmin}}}}}
	mustProvision(t, s, mine)
	before := directory(t, s)
	wantCode(t, s.Provision(ctx, provision.Demo()), callbridge.EConflict)
	WantDirectory(t, directory(t, s), before)
	if dropped, err := s.DropDemo(ctx); err != nil || len(dropped) != 0 {
		t.Errorf("DropDemo dropped %v (%v), a tenant from a file", dropped, err)
	}
}

// testProvisionRefusesHashOfAnotherCost: every stored hash has the store's bcrypt cost, so a
// password_hash of another cost is refused; RehashPassword replaces a hash only while it is
// the one the caller saw.
func testProvisionRefusesHashOfAnotherCost(t *testing.T, open Open) {
	s := open(t)
	ctx := t.Context()
	other, err := bcrypt.GenerateFromPassword([]byte("pw"), bcrypt.MinCost+1)
	if err != nil {
		t.Fatal(err)
	}
	p := callbridge.Provisioning{Tenants: []callbridge.TenantConfig{{ID: "t",
		Users: []callbridge.UserConfig{{Username: "u", PasswordHash: string(other)}}}}}
	err = s.Provision(ctx, p)
	wantCode(t, err, callbridge.EInvalid)
	if !strings.Contains(err.Error(), "bcrypt cost 5") {
		t.Errorf("error %q does not name the cost", err)
	}
	if dir := directory(t, s); len(dir.Tenants) != 0 {
		t.Fatalf("a refused document changed the store: %+v", dir)
	}

	same, err := bcrypt.GenerateFromPassword([]byte("pw"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	p.Tenants[0].Users[0].PasswordHash = string(same)
	mustProvision(t, s, p)
	if err := s.RehashPassword(ctx, "t", "u", "not-the-hash", "x"); err != nil {
		t.Fatal(err)
	}
	if got := findUsers(t, s, "u")[0].PasswordHash; got != string(same) {
		t.Fatalf("RehashPassword with a stale hash replaced it: %q", got)
	}
	if err := s.RehashPassword(ctx, "t", "u", string(same), string(other)); err != nil {
		t.Fatal(err)
	}
	if got := findUsers(t, s, "u")[0].PasswordHash; got != string(other) {
		t.Fatalf("hash = %q, want the new one", got)
	}
}
