package storetest

import (
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"

	"github.com/callbridge/callbridge"
	"github.com/callbridge/callbridge/provision"
)

func testProvisionDirectoryRoundTrip(t *testing.T, open Open) {
	docs := map[string]func(t *testing.T) callbridge.Provisioning{
		"asterisk-22.yaml":     func(t *testing.T) callbridge.Provisioning { return loadExample(t, "asterisk-22.yaml") },
		"freeswitch-1.10.yaml": func(t *testing.T) callbridge.Provisioning { return loadExample(t, "freeswitch-1.10.yaml") },
		"two-sites.yaml":       func(t *testing.T) callbridge.Provisioning { return loadExample(t, "two-sites.yaml") },
		"demo":                 func(*testing.T) callbridge.Provisioning { return provision.Demo() },
	}
	for name, doc := range docs {
		t.Run(name, func(t *testing.T) {
			s := open(t)
			if dir := directory(t, s); len(dir.Tenants) != 0 {
				t.Fatalf("new store has tenants: %+v", dir)
			}
			p := doc(t)
			mustProvision(t, s, p)
			WantDirectory(t, directory(t, s), AsDirectory(p))
		})
	}
}

func testProvisionTwiceIsIdempotent(t *testing.T, open Open) {
	s := open(t)
	p := loadExample(t, "asterisk-22.yaml")
	mustProvision(t, s, p)
	before, dirBefore := findUsers(t, s, "1005"), directory(t, s)
	mustProvision(t, s, p)
	if after := findUsers(t, s, "1005"); !reflect.DeepEqual(before, after) {
		t.Errorf("re-provisioning changed the user\nbefore %+v\n after %+v", before, after)
	}
	WantDirectory(t, directory(t, s), dirBefore)
}

func testProvisionRefusalChangesNothing(t *testing.T, open Open) {
	tests := []struct {
		name   string
		modify func(p *callbridge.Provisioning) // p is asterisk-22.yaml
		want   string
	}{
		{"invalid document", func(p *callbridge.Provisioning) {
			p.Tenants[0].Name = "renamed"
			p.Tenants[0].Users[0].Queues = []callbridge.QueueName{"no-such-queue"}
		}, `user "1001": queues: "no-such-queue" is not a queue of the tenant`},
		{"DID of a tenant not in the document", func(p *callbridge.Provisioning) {
			p.Tenants = p.Tenants[:1]
			p.Tenants[0].Name = "renamed"
			p.Tenants[0].Users[0].Password = "new"
			p.Tenants[0].DIDs = append(p.Tenants[0].DIDs, "18005550200")
		}, `tenant "acme": dids: "18005550200" belongs to tenant "globex", which is not in the document`},
		{"a site with a bad time zone", func(p *callbridge.Provisioning) {
			p.Tenants[0].Name = "renamed"
			p.Sites = []callbridge.Site{{ID: "msk", TimeZone: "Moscow", Switches: []callbridge.SwitchConfig{{PBX: "sim"}}}}
			for i := range p.Tenants {
				for j := range p.Tenants[i].Queues {
					p.Tenants[i].Queues[j].Site = "msk"
				}
				for j := range p.Tenants[i].Users {
					p.Tenants[i].Users[j].Site = "msk"
				}
			}
		}, `site "msk": time_zone: time zone "Moscow" is not an IANA time zone name`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := open(t)
			mustProvision(t, s, loadExample(t, "asterisk-22.yaml"))
			before, hash := directory(t, s), findUsers(t, s, "1001")
			p := loadExample(t, "asterisk-22.yaml")
			tt.modify(&p)
			err := s.Provision(t.Context(), p)
			var e *callbridge.Error
			if !errors.As(err, &e) || e.Code != callbridge.EInvalid || !strings.Contains(e.Message, tt.want) {
				t.Fatalf("got %v, want invalid containing %q", err, tt.want)
			}
			WantDirectory(t, directory(t, s), before)
			if got := findUsers(t, s, "1001"); !reflect.DeepEqual(got, hash) {
				t.Errorf("user changed: %+v", got)
			}
		})
	}
}

func testProvisionMovesDIDAndDevices(t *testing.T, open Open) {
	s := open(t)
	mustProvision(t, s, loadExample(t, "asterisk-22.yaml"))
	p := loadExample(t, "asterisk-22.yaml")
	acme, globex := &p.Tenants[0], &p.Tenants[1]
	acme.DIDs = slices.DeleteFunc(acme.DIDs, func(d string) bool { return d == "18005550300" })
	globex.DIDs = append(globex.DIDs, "18005550300")
	acme.Users[0].Device, acme.Users[1].Device = acme.Users[1].Device, acme.Users[0].Device
	mustProvision(t, s, p)
	WantDirectory(t, directory(t, s), AsDirectory(p))
}

func testFindUsers(t *testing.T, open Open) {
	s := open(t)
	mustProvision(t, s, loadExample(t, "asterisk-22.yaml"))
	mustProvision(t, s, callbridge.Provisioning{Tenants: []callbridge.TenantConfig{{
		ID: "aardvark", Users: []callbridge.UserConfig{{Username: "1001", Password: "other", Role: callbridge.RoleAdmin}},
	}}})
	users := findUsers(t, s, "1001")
	if len(users) != 2 || users[0].Tenant != "aardvark" || users[1].Tenant != "acme" {
		t.Fatalf("got %+v, want aardvark/1001 then acme/1001", users)
	}
	if u := users[1]; u.Role != callbridge.RoleAgent || u.Name != "Alice Acme" ||
		bcrypt.CompareHashAndPassword([]byte(u.PasswordHash), []byte("demo")) != nil {
		t.Errorf("acme/1001 = %+v", u)
	}
	if bcrypt.CompareHashAndPassword([]byte(users[0].PasswordHash), []byte("other")) != nil || users[0].Role != callbridge.RoleAdmin {
		t.Errorf("aardvark/1001 = %+v", users[0])
	}
	for _, name := range []string{"nobody", "", "1001' OR '1'='1"} {
		if got := findUsers(t, s, name); len(got) != 0 {
			t.Errorf("FindUsers(%q) = %+v, want none", name, got)
		}
	}
}
