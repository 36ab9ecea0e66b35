package storetest

import (
	"cmp"
	"slices"
	"testing"

	"github.com/callbridge/callbridge"
)

// siteIDs returns the ids of dir's sites, in order.
func siteIDs(dir callbridge.Directory) []callbridge.SiteID {
	var out []callbridge.SiteID
	for _, s := range dir.Sites {
		out = append(out, s.ID)
	}
	return out
}

func wantSites(t *testing.T, dir callbridge.Directory, want ...callbridge.SiteID) {
	t.Helper()
	if got := siteIDs(dir); !slices.Equal(got, want) {
		t.Fatalf("sites %q, want %q", got, want)
	}
}

// testProvisionSites: sites are stored with their switches and time zones, users and queues
// with their sites; the same extension lives at two sites; a document without sites moves
// everyone to the implicit site and the sites nobody is at any more go.
func testProvisionSites(t *testing.T, open Open) {
	s := open(t)
	wantSites(t, directory(t, s), callbridge.DefaultSite) // a new store has the implicit site
	two := loadExample(t, "two-sites.yaml")
	mustProvision(t, s, two)
	dir := directory(t, s)
	WantDirectory(t, dir, AsDirectory(two))
	wantSites(t, dir, "ber", "msk") // the implicit site is gone: nobody is there
	if site, ok := dir.SiteOf("acme", "berta"); !ok || site != "ber" {
		t.Errorf("SiteOf(acme, berta) = %q, %v", site, ok)
	}
	if ber, _ := dir.Site("ber"); ber.TimeZone != "Europe/Berlin" || ber.Name != "Berlin" || len(ber.Switches) != 1 || ber.Switches[0].PBX != "sim" {
		t.Errorf("site ber = %+v", ber)
	}

	// Anna and Berta swap sites (and keep extension 1001); ber's switches change.
	two.Tenants[0].Users[0].Site, two.Tenants[0].Users[0].Queues = "ber", []callbridge.QueueName{"acme-ber"}
	two.Tenants[0].Users[2].Site, two.Tenants[0].Users[2].Queues = "msk", []callbridge.QueueName{"acme-msk"}
	two.Sites[1].Switches = []callbridge.SwitchConfig{
		{PBX: "ami://cti:secret@10.2.0.5:5038", ARI: "ari://cti:secret@10.2.0.5:8088/callbridge"}, {PBX: "sim"}}
	two.Sites[1].TimeZone = "Europe/Paris"
	mustProvision(t, s, two)
	WantDirectory(t, directory(t, s), AsDirectory(two))

	// Back to one implicit site: every user and queue of the document moves there. acme's
	// queues at msk and ber are not in the document, so they stay (queues the document does
	// not list are left alone), and their sites with them.
	p := loadExample(t, "asterisk-22.yaml")
	mustProvision(t, s, p)
	dir = directory(t, s)
	wantSites(t, dir, "ber", callbridge.DefaultSite, "msk")
	for _, tc := range dir.Tenants {
		for _, u := range tc.Users {
			if u.Site != callbridge.DefaultSite {
				t.Errorf("%s/%s at site %q, want %q", tc.ID, u.Username, u.Site, callbridge.DefaultSite)
			}
		}
	}
	want := AsDirectory(p)
	want.Sites = dir.Sites
	want.Tenants[0].Queues = append(want.Tenants[0].Queues, callbridge.QueueConfig{Name: "acme-ber", Site: "ber"}, callbridge.QueueConfig{Name: "acme-msk", Site: "msk"})
	slices.SortFunc(want.Tenants[0].Queues, func(a, b callbridge.QueueConfig) int { return cmp.Compare(a.Name, b.Name) })
	WantDirectory(t, dir, want)
}

// testProvisionKeepsSitesInUse: a site the document does not have stays while a tenant the
// document does not list is there, with its switches, and goes once nobody is.
func testProvisionKeepsSitesInUse(t *testing.T, open Open) {
	s := open(t)
	initech := callbridge.TenantConfig{ID: "initech",
		Queues: []callbridge.QueueConfig{{Name: "tps", Site: "spb"}},
		Users:  []callbridge.UserConfig{{Username: "peter", Password: "pw", Site: "spb", Device: "1001", Queues: []callbridge.QueueName{"tps"}}}}
	spb := callbridge.Site{ID: "spb", TimeZone: "Europe/Moscow", Switches: []callbridge.SwitchConfig{{PBX: "esl://:secret@10.3.0.5:8021"}}}
	two := loadExample(t, "two-sites.yaml")
	both := two
	both.Sites = append(slices.Clone(two.Sites), spb)
	both.Tenants = append(slices.Clone(two.Tenants), initech)
	mustProvision(t, s, both)
	wantSites(t, directory(t, s), "ber", "msk", "spb")

	mustProvision(t, s, two) // initech is not in it: spb stays, as it was
	dir := directory(t, s)
	wantSites(t, dir, "ber", "msk", "spb")
	if got, _ := dir.Site("spb"); !slices.Equal(got.Switches, spb.Switches) || got.TimeZone != "Europe/Moscow" {
		t.Errorf("kept site spb = %+v, want %+v", got, spb)
	}
	if site, ok := dir.SiteOf("initech", "peter"); !ok || site != "spb" {
		t.Errorf("SiteOf(initech, peter) = %q, %v", site, ok)
	}

	initech.Queues[0].Site, initech.Users[0].Site = "msk", "msk"
	initech.Users[0].Device = "3001"
	two.Tenants = append(two.Tenants, initech)
	mustProvision(t, s, two) // nobody is at spb any more
	WantDirectory(t, directory(t, s), AsDirectory(two))
}

// testProvisionForSite: the directory of each stored site is what the engine of that site
// runs with: its users and queues only.
func testProvisionForSite(t *testing.T, open Open) {
	s := open(t)
	mustProvision(t, s, loadExample(t, "two-sites.yaml"))
	dir := directory(t, s)
	for site, want := range map[callbridge.SiteID][]string{"msk": {"acme/anna", "acme/boris"}, "ber": {"acme/berta", "globex/gerd"}} {
		sd, err := dir.ForSite(site)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, tc := range sd.Tenants {
			for _, u := range tc.Users {
				got = append(got, string(tc.ID)+"/"+u.Username)
			}
			for _, q := range tc.Queues {
				if q.Site != site {
					t.Errorf("ForSite(%s) has queue %s of site %s", site, q.Name, q.Site)
				}
			}
		}
		if !slices.Equal(got, want) {
			t.Errorf("ForSite(%s) users %q, want %q", site, got, want)
		}
	}
}
