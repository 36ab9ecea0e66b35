package callbridge_test

import (
	"reflect"
	"testing"
	"time"

	"github.com/callbridge/callbridge"
)

// twoSiteDirectory: acme at msk and ber, extension 1001 at both; a supervisor without a
// home site; globex only at ber.
func twoSiteDirectory() callbridge.Directory {
	return callbridge.Directory{
		Sites: []callbridge.Site{
			{ID: "msk", TimeZone: "Europe/Moscow", Switches: []callbridge.SwitchConfig{{PBX: "sim"}}},
			{ID: "ber", TimeZone: "Europe/Berlin", Switches: []callbridge.SwitchConfig{{PBX: "sim"}}},
		},
		Tenants: []callbridge.TenantConfig{
			{ID: "acme", DIDs: []string{"100"}, ReasonCodes: []string{"lunch"},
				Queues: []callbridge.QueueConfig{{Name: "acme-msk", Site: "msk"}, {Name: "acme-ber", Site: "ber"}},
				Users: []callbridge.UserConfig{
					{Username: "anna", Site: "msk", Device: "1001", Queues: []callbridge.QueueName{"acme-msk"}},
					{Username: "berta", Site: "ber", Device: "1001", Queues: []callbridge.QueueName{"acme-ber"}},
					{Username: "boss", Role: callbridge.RoleSupervisor},
				}},
			{ID: "globex", DIDs: []string{"200"},
				Queues: []callbridge.QueueConfig{{Name: "globex-sales", Site: "ber"}},
				Users:  []callbridge.UserConfig{{Username: "gerd", Site: "ber", Device: "2001"}}},
		},
	}
}

func TestForSite(t *testing.T) {
	d := twoSiteDirectory()
	msk, err := d.ForSite("msk")
	if err != nil {
		t.Fatal(err)
	}
	want := callbridge.Directory{
		Sites: []callbridge.Site{d.Sites[0]},
		Tenants: []callbridge.TenantConfig{
			{ID: "acme", DIDs: []string{"100"}, ReasonCodes: []string{"lunch"},
				Queues: []callbridge.QueueConfig{{Name: "acme-msk", Site: "msk"}},
				Users:  []callbridge.UserConfig{{Username: "anna", Site: "msk", Device: "1001", Queues: []callbridge.QueueName{"acme-msk"}}}},
			{ID: "globex", DIDs: []string{"200"}},
		},
	}
	if !reflect.DeepEqual(msk, want) {
		t.Fatalf("ForSite(msk)\n got %+v\nwant %+v", msk, want)
	}
	ber, err := d.ForSite("ber")
	if err != nil {
		t.Fatal(err)
	}
	if n := len(ber.Tenants[0].Users) + len(ber.Tenants[1].Users); n != 2 || ber.Tenants[0].Users[0].Username != "berta" ||
		ber.Tenants[1].Queues[0].Name != "globex-sales" {
		t.Errorf("ForSite(ber) = %+v", ber)
	}
	if _, err := d.ForSite("spb"); callbridge.ErrorCode(err) != callbridge.ENotFound {
		t.Errorf("ForSite(spb) = %v, want not_found", err)
	}
	// d is left as it was.
	if !reflect.DeepEqual(d, twoSiteDirectory()) {
		t.Errorf("ForSite changed its directory: %+v", d)
	}
}

func TestForSiteWithoutSites(t *testing.T) {
	d := callbridge.Directory{Tenants: []callbridge.TenantConfig{{ID: "t",
		Queues: []callbridge.QueueConfig{{Name: "q"}}, Users: []callbridge.UserConfig{{Username: "u", Device: "1"}}}}}
	got, err := d.ForSite(callbridge.DefaultSite)
	if err != nil {
		t.Fatal(err)
	}
	if got.Sites[0].ID != callbridge.DefaultSite || got.Sites[0].TimeZone != "UTC" ||
		got.Tenants[0].Queues[0].Site != callbridge.DefaultSite || got.Tenants[0].Users[0].Site != callbridge.DefaultSite {
		t.Fatalf("ForSite(default) of a directory without sites = %+v", got)
	}
	if _, err := d.ForSite("msk"); err == nil {
		t.Error("ForSite(msk) of a directory without sites succeeded")
	}
}

func TestSiteOf(t *testing.T) {
	d := twoSiteDirectory()
	for _, tc := range []struct {
		tenant callbridge.TenantID
		agent  callbridge.AgentID
		site   callbridge.SiteID
		ok     bool
	}{
		{"acme", "anna", "msk", true},
		{"acme", "berta", "ber", true},
		{"globex", "gerd", "ber", true},
		{"acme", "boss", "", false},   // no device, no home site
		{"acme", "gerd", "", false},   // another tenant's agent
		{"acme", "nobody", "", false}, // unknown
		{"initech", "anna", "", false},
	} {
		site, ok := d.SiteOf(tc.tenant, tc.agent)
		if site != tc.site || ok != tc.ok {
			t.Errorf("SiteOf(%s, %s) = %q, %v; want %q, %v", tc.tenant, tc.agent, site, ok, tc.site, tc.ok)
		}
	}
	want := map[callbridge.AgentKey]callbridge.SiteID{
		{Tenant: "acme", Agent: "anna"}: "msk", {Tenant: "acme", Agent: "berta"}: "ber", {Tenant: "globex", Agent: "gerd"}: "ber",
	}
	if got := d.HomeSites(); !reflect.DeepEqual(got, want) {
		t.Errorf("HomeSites = %v, want %v", got, want)
	}
	// One site: everyone is there, with or without a device.
	one := callbridge.Directory{Tenants: []callbridge.TenantConfig{{ID: "t", Users: []callbridge.UserConfig{{Username: "boss"}}}}}
	if site, ok := one.SiteOf("t", "boss"); !ok || site != callbridge.DefaultSite {
		t.Errorf("SiteOf in a directory without sites = %q, %v; want %q", site, ok, callbridge.DefaultSite)
	}
}

func TestLoadTimeZone(t *testing.T) {
	for _, name := range []string{"", "UTC"} {
		if loc, err := callbridge.LoadTimeZone(name); err != nil || loc != time.UTC {
			t.Errorf("LoadTimeZone(%q) = %v, %v; want UTC", name, loc, err)
		}
	}
	loc, err := callbridge.LoadTimeZone("Europe/Moscow")
	if err != nil {
		t.Fatal(err)
	}
	if got := time.Date(2026, 12, 3, 9, 0, 0, 0, time.UTC).In(loc).Format(time.RFC3339); got != "2026-12-03T12:00:00+03:00" {
		t.Errorf("09:00 UTC in Moscow = %s", got)
	}
	for _, bad := range []string{"Local", "Europe/Mowcow", "../etc/passwd", "/etc/localtime", "Europe/Moscow\n", "+03:00"} {
		if _, err := callbridge.LoadTimeZone(bad); callbridge.ErrorCode(err) != callbridge.EInvalid {
			t.Errorf("LoadTimeZone(%q) = %v, want invalid", bad, err)
		}
	}
}

func TestSiteLocation(t *testing.T) {
	ber := callbridge.Site{ID: "ber", TimeZone: "Europe/Berlin"}
	if got := ber.Location().String(); got != "Europe/Berlin" {
		t.Errorf("Location() = %s", got)
	}
	// Summer time: 10:00 UTC is 12:00 in Berlin in July, 11:00 in January.
	for _, tc := range []struct {
		utc  time.Time
		want int
	}{{time.Date(2026, 7, 1, 10, 0, 0, 0, time.UTC), 12}, {time.Date(2026, 1, 1, 10, 0, 0, 0, time.UTC), 11}} {
		if h := tc.utc.In(ber.Location()).Hour(); h != tc.want {
			t.Errorf("%s in Berlin: hour %d, want %d", tc.utc, h, tc.want)
		}
	}
	for _, s := range []callbridge.Site{{}, {TimeZone: "Nowhere/City"}} {
		if s.Location() != time.UTC {
			t.Errorf("Location() of %+v = %v, want UTC", s, s.Location())
		}
	}
}
