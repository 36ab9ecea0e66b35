// Package storetest is the conformance suite of callbridge's SQL stores: the embedded SQLite
// store (package sqlite) and the PostgreSQL store (package postgres) run exactly these tests,
// so that what a node does with one it can do with the other.
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) storetest.Store { return openEmptyStore(t) })
//	}
//
// Each test opens its own empty store (migrated to the newest schema); open must register
// its own cleanup (t.Cleanup) and use the cheapest bcrypt cost.
package storetest

import (
	"cmp"
	"path/filepath"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/callbridge/callbridge"
	"github.com/callbridge/callbridge/provision"
)

// Store is everything a callbridge SQL store implements.
type Store interface {
	callbridge.Store
	callbridge.SessionStore
	callbridge.RecordStore
	callbridge.WebhookStore
	callbridge.APIKeyStore
}

// Open returns a new, empty, migrated store for one test.
type Open func(t *testing.T) Store

// ExamplesDir is where the provisioning examples are, relative to the test's package
// directory (sqlite/ and postgres/ are both one level below the module root).
var ExamplesDir = filepath.Join("..", "examples")

// Run runs every conformance test against stores from open, in parallel (each on its own
// store).
func Run(t *testing.T, open Open) {
	for _, tc := range []struct {
		name string
		fn   func(t *testing.T, open Open)
	}{
		{"ProvisionDirectoryRoundTrip", testProvisionDirectoryRoundTrip},
		{"ProvisionTwiceIsIdempotent", testProvisionTwiceIsIdempotent},
		{"ProvisionRefusalChangesNothing", testProvisionRefusalChangesNothing},
		{"ProvisionMovesDIDAndDevices", testProvisionMovesDIDAndDevices},
		{"ProvisionSites", testProvisionSites},
		{"ProvisionKeepsSitesInUse", testProvisionKeepsSitesInUse},
		{"ProvisionForSite", testProvisionForSite},
		{"FindUsers", testFindUsers},
		{"ProvisionRemovesDroppedUsers", testProvisionRemovesDroppedUsers},
		{"ProvisionRefusesHashOfAnotherCost", testProvisionRefusesHashOfAnotherCost},
		{"DemoIsDropped", testDemoIsDropped},
		{"Sessions", testSessions},
		{"ConsumerPosition", testConsumerPosition},
		{"UpdateHistoryRollsBack", testUpdateHistoryRollsBack},
		{"ExactlyOnceUnderConcurrency", testExactlyOnceUnderConcurrency},
		{"CallRecordRoundTrip", testCallRecordRoundTrip},
		{"CallRecordsFilterAndPage", testCallRecordsFilterAndPage},
		{"CallRecordsRefuseBadInput", testCallRecordsRefuseBadInput},
		{"AgentStates", testAgentStates},
		{"AgentTracking", testAgentTracking},
		{"Webhooks", testWebhooks},
		{"OutboxEnqueue", testOutboxEnqueue},
		{"OutboxClaimAndFinish", testOutboxClaimAndFinish},
		{"DeliveriesListAndRedeliver", testDeliveriesListAndRedeliver},
		{"PruneDeliveries", testPruneDeliveries},
		{"APIKeys", testAPIKeys},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t, open)
		})
	}
}

// t0 is a whole second, so that stored times (microseconds) compare exactly.
var t0 = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)

func at(sec int) time.Time { return t0.Add(time.Duration(sec) * time.Second) }

func loadExample(t *testing.T, name string) callbridge.Provisioning {
	t.Helper()
	p, err := provision.LoadFile(filepath.Join(ExamplesDir, name))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func mustProvision(t *testing.T, s Store, p callbridge.Provisioning) {
	t.Helper()
	if err := s.Provision(t.Context(), p); err != nil {
		t.Fatal(err)
	}
}

func directory(t *testing.T, s Store) callbridge.Directory {
	t.Helper()
	dir, err := s.Directory(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

func findUsers(t *testing.T, s Store, username string) []callbridge.User {
	t.Helper()
	users, err := s.FindUsers(t.Context(), username)
	if err != nil {
		t.Fatal(err)
	}
	return users
}

// AsDirectory is what Directory returns after provisioning p into an empty store: defaults
// filled in, the implicit site callbridge.DefaultSite when p has no sites, no passwords,
// sites/tenants/queues/users sorted by key, tenant lists non-nil, empty user queue lists and
// site switch lists nil.
func AsDirectory(p callbridge.Provisioning) callbridge.Directory {
	p = provision.WithDefaults(p)
	dir := callbridge.Directory{Sites: slices.Clone(p.Directory().SiteList()), Tenants: slices.Clone(p.Tenants)}
	for i := range dir.Sites {
		if len(dir.Sites[i].Switches) == 0 {
			dir.Sites[i].Switches = nil
		}
	}
	slices.SortFunc(dir.Sites, func(a, b callbridge.Site) int { return cmp.Compare(a.ID, b.ID) })
	orEmpty := func(s []string) []string {
		if s == nil {
			return []string{}
		}
		return s
	}
	for i := range dir.Tenants {
		t := &dir.Tenants[i]
		t.DIDs, t.AttachedData, t.ReasonCodes = orEmpty(t.DIDs), orEmpty(t.AttachedData), orEmpty(t.ReasonCodes)
		t.Queues = slices.Clone(t.Queues)
		if t.Queues == nil {
			t.Queues = []callbridge.QueueConfig{}
		}
		slices.SortFunc(t.Queues, func(a, b callbridge.QueueConfig) int { return cmp.Compare(a.Name, b.Name) })
		t.Users = slices.Clone(t.Users)
		if t.Users == nil {
			t.Users = []callbridge.UserConfig{}
		}
		for j := range t.Users {
			u := &t.Users[j]
			u.Password, u.PasswordHash = "", ""
			if len(u.Queues) == 0 {
				u.Queues = nil
			}
		}
		slices.SortFunc(t.Users, func(a, b callbridge.UserConfig) int { return cmp.Compare(a.Username, b.Username) })
	}
	slices.SortFunc(dir.Tenants, func(a, b callbridge.TenantConfig) int { return cmp.Compare(a.ID, b.ID) })
	return dir
}

// WantDirectory fails t unless got is want.
func WantDirectory(t *testing.T, got, want callbridge.Directory) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("directory differs\n got: %+v\nwant: %+v", got, want)
	}
}

func wantCode(t *testing.T, err error, code string) {
	t.Helper()
	if got := callbridge.ErrorCode(err); got != code {
		t.Fatalf("got error %v (code %q), want code %q", err, got, code)
	}
}

// update runs fn in one history transaction and fails the test on error.
func update(t *testing.T, s Store, fn func(tx callbridge.HistoryTx) error) {
	t.Helper()
	if err := s.UpdateHistory(t.Context(), fn); err != nil {
		t.Fatal(err)
	}
}
