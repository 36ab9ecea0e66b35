package provision_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/callbridge/callbridge"
	"github.com/callbridge/callbridge/engine"
	"github.com/callbridge/callbridge/provision"
)

func TestLoadFileTwoSitesExample(t *testing.T) {
	p, err := provision.LoadFile(examplePath("two-sites.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Sites) != 2 {
		t.Fatalf("sites %+v, want msk and ber", p.Sites)
	}
	msk, ber := p.Sites[0], p.Sites[1]
	if msk.ID != "msk" || msk.Name != "Moscow" || msk.TimeZone != "Europe/Moscow" ||
		len(msk.Switches) != 1 || msk.Switches[0].PBX != "sim" || msk.Switches[0].ARI != "" {
		t.Errorf("site msk = %+v", msk)
	}
	if ber.ID != "ber" || ber.TimeZone != "Europe/Berlin" {
		t.Errorf("site ber = %+v", ber)
	}
	acme := findTenant(t, p, "acme")
	// Extension 1001 at both sites, each its own agent.
	if anna, berta := findUser(t, acme, "anna"), findUser(t, acme, "berta"); anna.Site != "msk" || berta.Site != "ber" ||
		anna.Device != "1001" || berta.Device != "1001" || !slices.Equal(berta.Queues, []callbridge.QueueName{"acme-ber"}) {
		t.Errorf("anna = %+v, berta = %+v", anna, berta)
	}
	if sup := findUser(t, acme, "acme-supervisor"); sup.Site != "" || sup.Device != "" {
		t.Errorf("supervisor without a device in a document of two sites has site %q, want none", sup.Site)
	}
	if q := acme.Queues; len(q) != 2 || q[0].Site != "msk" || q[1].Site != "ber" {
		t.Errorf("acme queues %+v", q)
	}
}

func TestLoadWithoutSitesPutsEveryoneAtTheDefaultSite(t *testing.T) {
	p, err := provision.LoadFile(examplePath("asterisk-22.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if p.Sites != nil {
		t.Fatalf("sites %+v: a document without sites gets none (the implicit site is not written in)", p.Sites)
	}
	for _, tc := range p.Tenants {
		for _, q := range tc.Queues {
			if q.Site != callbridge.DefaultSite {
				t.Errorf("%s: queue %s at site %q, want %q", tc.ID, q.Name, q.Site, callbridge.DefaultSite)
			}
		}
		for _, u := range tc.Users {
			if u.Site != callbridge.DefaultSite {
				t.Errorf("%s: user %s at site %q, want %q", tc.ID, u.Username, u.Site, callbridge.DefaultSite)
			}
		}
	}
}

func TestLoadOneSite(t *testing.T) {
	p, err := provision.Load(strings.NewReader(`
sites:
  - id: hq
    switches: [{pbx: "ami://cti:secret@10.0.0.1:5038", ari: "ari://cti:secret@10.0.0.1:8088/callbridge"}]
tenants:
  - id: t1
    queues: [{name: q1}]
    users:
      - {username: u1, password: pw, device: "1001", queues: [q1]}
      - {username: boss, password: pw, role: supervisor}
`))
	if err != nil {
		t.Fatal(err)
	}
	if s := p.Sites[0]; s.TimeZone != "UTC" || s.Switches[0].ARI != "ari://cti:secret@10.0.0.1:8088/callbridge" {
		t.Errorf("site %+v: want time zone UTC by default and the ARI URL", s)
	}
	tc := p.Tenants[0]
	if tc.Queues[0].Site != "hq" || tc.Users[0].Site != "hq" || tc.Users[1].Site != "hq" {
		t.Errorf("with one site everything is there: queues %+v, users %+v", tc.Queues, tc.Users)
	}
}

func TestLoadRefusesUnknownSiteField(t *testing.T) {
	_, err := provision.Load(strings.NewReader("sites:\n  - id: a\n    trunk: {}\ntenants:\n  - id: t\n"))
	wantInvalid(t, err, "line 3", "trunk")
}

// twoSites returns a valid document of two sites (msk in Moscow, ber in UTC), acme at both
// with device 1001 at each, for tests to break one field at a time.
func twoSites() callbridge.Provisioning {
	return callbridge.Provisioning{
		Sites: []callbridge.Site{
			{ID: "msk", Name: "Moscow", TimeZone: "Europe/Moscow", Switches: []callbridge.SwitchConfig{
				{PBX: "ami://cti:s3cret@10.1.0.5:5038", ARI: "ari://cti:s3cret@10.1.0.5:8088/callbridge"}}},
			{ID: "ber", Switches: []callbridge.SwitchConfig{{PBX: "esl://:s3cret@10.2.0.5:8021"}, {PBX: "sim"}}},
		},
		Tenants: []callbridge.TenantConfig{{
			ID:     "acme",
			Queues: []callbridge.QueueConfig{{Name: "acme-msk", Site: "msk"}, {Name: "acme-ber", Site: "ber"}},
			Users: []callbridge.UserConfig{
				{Username: "anna", Password: "pw", Site: "msk", Device: "1001", Queues: []callbridge.QueueName{"acme-msk"}},
				{Username: "berta", Password: "pw", Site: "ber", Device: "1001", Queues: []callbridge.QueueName{"acme-ber"}},
				{Username: "boss", Password: "pw", Role: callbridge.RoleSupervisor},
			},
		}},
	}
}

func TestValidateAcceptsSites(t *testing.T) {
	tests := map[string]func(p *callbridge.Provisioning){
		"two sites":                                   func(*callbridge.Provisioning) {},
		"the same queue name at two sites":            func(p *callbridge.Provisioning) { addGlobex(p, "ber", "acme-msk", "2001") },
		"the same device in two tenants at two sites": func(p *callbridge.Provisioning) { addGlobex(p, "ber", "globex", "1002") },
		"a supervisor with a home site":               func(p *callbridge.Provisioning) { p.Tenants[0].Users[2].Site = "ber" },
		"a site without switches or users":            func(p *callbridge.Provisioning) { p.Sites = append(p.Sites, callbridge.Site{ID: "spare"}) },
		"the same sim in two sites": func(p *callbridge.Provisioning) {
			p.Sites[0].Switches = append(p.Sites[0].Switches, callbridge.SwitchConfig{PBX: "sim"})
		},
		"a site named default":              func(p *callbridge.Provisioning) { p.Sites[1].ID = "default"; retarget(p, "ber", "default") },
		"time zone UTC":                     func(p *callbridge.Provisioning) { p.Sites[1].TimeZone = "UTC" },
		"time zone America/Argentina/Salta": func(p *callbridge.Provisioning) { p.Sites[1].TimeZone = "America/Argentina/Salta" },
		"no sites, site default given": func(p *callbridge.Provisioning) {
			*p = callbridge.Provisioning{Tenants: []callbridge.TenantConfig{{ID: "t", Queues: []callbridge.QueueConfig{{Name: "q", Site: "default"}},
				Users: []callbridge.UserConfig{{Username: "u", Password: "pw", Site: "default", Device: "1"}}}}}
		},
	}
	for name, modify := range tests {
		t.Run(name, func(t *testing.T) {
			p := twoSites()
			modify(&p)
			if err := provision.Validate(p); err != nil {
				t.Fatal(err)
			}
			// What passes Validate runs: every site's directory is one an engine takes.
			checkEngines(t, provision.WithDefaults(p))
		})
	}
}

// addGlobex adds tenant globex with queue at site and agent gerd on device there.
func addGlobex(p *callbridge.Provisioning, site callbridge.SiteID, queue callbridge.QueueName, device callbridge.DeviceID) {
	p.Tenants = append(p.Tenants, callbridge.TenantConfig{ID: "globex",
		Queues: []callbridge.QueueConfig{{Name: queue, Site: site}},
		Users:  []callbridge.UserConfig{{Username: "gerd", Password: "pw", Site: site, Device: device, Queues: []callbridge.QueueName{queue}}}})
}

// retarget moves every user and queue of site from to site to.
func retarget(p *callbridge.Provisioning, from, to callbridge.SiteID) {
	for i := range p.Tenants {
		for j := range p.Tenants[i].Queues {
			if p.Tenants[i].Queues[j].Site == from {
				p.Tenants[i].Queues[j].Site = to
			}
		}
		for j := range p.Tenants[i].Users {
			if p.Tenants[i].Users[j].Site == from {
				p.Tenants[i].Users[j].Site = to
			}
		}
	}
}

// checkEngines fails unless the directory of every site of p passes engine.CheckDirectory.
func checkEngines(t *testing.T, p callbridge.Provisioning) {
	t.Helper()
	dir := p.Directory()
	for _, s := range dir.SiteList() {
		sd, err := dir.ForSite(s.ID)
		if err != nil {
			t.Fatalf("ForSite(%s): %v", s.ID, err)
		}
		if err := engine.CheckDirectory(sd); err != nil {
			t.Fatalf("site %s: the engine refuses the directory of a valid document: %v", s.ID, err)
		}
	}
}

func TestValidateRefusesSites(t *testing.T) {
	tests := []struct {
		name   string
		modify func(p *callbridge.Provisioning)
		want   string
	}{
		{"site id not a token", func(p *callbridge.Provisioning) { p.Sites[0].ID = "m s k" },
			`sites[0]: id: "m s k" is not a token`},
		{"duplicate site", func(p *callbridge.Provisioning) { p.Sites[1].ID = "msk" },
			`site "msk": id: duplicate site`},
		{"site name with LF", func(p *callbridge.Provisioning) { p.Sites[0].Name = "Moscow\nAction: Originate" },
			`site "msk": name contains CR, LF or NUL`},
		{"unknown time zone", func(p *callbridge.Provisioning) { p.Sites[0].TimeZone = "Europe/Mowcow" },
			`site "msk": time_zone: time zone "Europe/Mowcow" is not an IANA time zone name`},
		{"time zone Local", func(p *callbridge.Provisioning) { p.Sites[0].TimeZone = "Local" },
			`site "msk": time_zone: time zone "Local" depends on the host`},
		{"time zone as a path", func(p *callbridge.Provisioning) { p.Sites[0].TimeZone = "../../etc/passwd" },
			`time zone "../../etc/passwd" is not an IANA time zone name`},
		{"time zone as an offset", func(p *callbridge.Provisioning) { p.Sites[0].TimeZone = "+03:00" },
			`time zone "+03:00" is not an IANA time zone name`},
		{"pbx that is not a URL", func(p *callbridge.Provisioning) { p.Sites[0].Switches[0].PBX = "cti:s3cret@10.1.0.5:5038" },
			`site "msk": switches[0]: pbx "***@10.1.0.5:5038" is neither "sim" nor a switch URL`},
		{"pbx of an unknown scheme", func(p *callbridge.Provisioning) { p.Sites[0].Switches[0].PBX = "sip://cti:s3cret@10.1.0.5:5060" },
			`site "msk": switches[0]: pbx sip://cti:***@10.1.0.5:5060: unknown scheme "sip"`},
		{"pbx without a port", func(p *callbridge.Provisioning) { p.Sites[0].Switches[0].PBX = "ami://cti:s3cret@10.1.0.5" },
			`site "msk": switches[0]: pbx ami://cti:***@10.1.0.5: asterisk: URL has no port`},
		{"pbx empty", func(p *callbridge.Provisioning) { p.Sites[1].Switches[1].PBX = "" },
			`site "ber": switches[1]: pbx "" is neither "sim" nor a switch URL`},
		{"ari of a FreeSWITCH", func(p *callbridge.Provisioning) { p.Sites[1].Switches[0].ARI = "ari://cti:s3cret@10.2.0.5:8088/cb" },
			`site "ber": switches[0]: ari: only an Asterisk switch (ami://…) has ARI`},
		{"ari without a port", func(p *callbridge.Provisioning) { p.Sites[0].Switches[0].ARI = "ari://cti:s3cret@10.1.0.5/cb" },
			`site "msk": switches[0]: ari ari://cti:***@10.1.0.5/cb: URL has no port`},
		{"pbx twice in a site", func(p *callbridge.Provisioning) { p.Sites[1].Switches[1].PBX = p.Sites[1].Switches[0].PBX },
			`site "ber": switches[1]: pbx: esl://:***@10.2.0.5:8021 is listed twice`},
		{"one switch in two sites", func(p *callbridge.Provisioning) { p.Sites[1].Switches[1].PBX = p.Sites[0].Switches[0].PBX },
			`site "ber": switches[1]: pbx: ami://cti:***@10.1.0.5:5038 is already a switch of site "msk"`},
		{"user at an unknown site", func(p *callbridge.Provisioning) { p.Tenants[0].Users[0].Site = "spb" },
			`tenant "acme": user "anna": site: "spb" is not a site of the document`},
		{"queue at an unknown site", func(p *callbridge.Provisioning) { p.Tenants[0].Queues[0].Site = "spb" },
			`tenant "acme": queue "acme-msk": site: "spb" is not a site of the document`},
		{"site given in a document without sites", func(p *callbridge.Provisioning) {
			p.Sites = nil
			p.Tenants[0].Users = p.Tenants[0].Users[:1]
			p.Tenants[0].Queues[1].Site = ""
			p.Tenants[0].Queues[0].Site = ""
		}, `tenant "acme": user "anna": site: "msk" is not a site of the document (it has no sites: every user and queue is at site "default")`},
		{"agent without a site", func(p *callbridge.Provisioning) { p.Tenants[0].Users[0].Site = "" },
			`tenant "acme": user "anna": site: required when there are several sites`},
		{"queue without a site", func(p *callbridge.Provisioning) { p.Tenants[0].Queues[1].Site = "" },
			`tenant "acme": queue "acme-ber": site: required when there are several sites`},
		{"user at a site without switches", func(p *callbridge.Provisioning) {
			p.Sites = append(p.Sites, callbridge.Site{ID: "spb"})
			p.Tenants[0].Users[2].Site = "spb"
		}, `tenant "acme": user "boss": site: site "spb" has no switches`},
		{"queue at a site without switches", func(p *callbridge.Provisioning) { p.Sites[1].Switches = nil },
			`tenant "acme": queue "acme-ber": site: site "ber" has no switches`},
		{"a device twice at one site", func(p *callbridge.Provisioning) {
			p.Tenants[0].Users[1].Site = "msk"
			p.Tenants[0].Users[1].Queues = nil
		}, `tenant "acme": user "berta": device: "1001" is already the device of user "anna" at site "msk"`},
		{"a device of another tenant at one site", func(p *callbridge.Provisioning) { addGlobex(p, "msk", "globex", "1001") },
			`tenant "globex": user "gerd": device: "1001" is already the device of user "anna" of tenant "acme" at site "msk" (the switch is shared)`},
		{"a queue name of another tenant at one site", func(p *callbridge.Provisioning) { addGlobex(p, "msk", "acme-msk", "2001") },
			`tenant "globex": queue "acme-msk": name: already a queue of tenant "acme" at site "msk" (the switch is shared)`},
		{"an agent in a queue of another site", func(p *callbridge.Provisioning) {
			p.Tenants[0].Users[0].Queues = []callbridge.QueueName{"acme-msk", "acme-ber"}
		}, `tenant "acme": user "anna": queues: "acme-ber" is a queue of site "ber", not of the user's site "msk"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := twoSites()
			tt.modify(&p)
			err := provision.Validate(p)
			wantInvalid(t, err, tt.want)
			if err != nil && strings.Contains(err.Error(), "s3cret") {
				t.Errorf("the error shows a switch secret: %v", err)
			}
		})
	}
}

// TestValidateRefusesWhatTheEngineRefuses: rules the engine of a site has always had, which
// a document now meets before it is stored.
func TestValidateRefusesWhatTheEngineRefuses(t *testing.T) {
	tests := []struct {
		name   string
		modify func(p *callbridge.Provisioning)
		want   string
	}{
		{"reason code wrap_up", func(p *callbridge.Provisioning) { p.Tenants[0].ReasonCodes = []string{"lunch", "wrap_up"} },
			`tenant "acme": reason_codes: "wrap_up" is callbridge's own pause reason during wrap-up`},
		{"DID with and without +", func(p *callbridge.Provisioning) { p.Tenants[0].DIDs = []string{"15550001", "+15550001"} },
			`tenant "acme": dids: "+15550001" is listed twice (with and without +)`},
		{"DID of another tenant with a +", func(p *callbridge.Provisioning) {
			p.Tenants = append(p.Tenants, callbridge.TenantConfig{ID: "globex", DIDs: []string{"+18005550100"}})
		}, `tenant "globex": dids: "+18005550100" already belongs to tenant "acme"`},
		{"DID that is only a +", func(p *callbridge.Provisioning) { p.Tenants[0].DIDs = []string{"+"} },
			`tenant "acme": dids: "+" is not a number`},
		{"the same device in two tenants", func(p *callbridge.Provisioning) {
			p.Tenants = append(p.Tenants, callbridge.TenantConfig{ID: "globex",
				Users: []callbridge.UserConfig{{Username: "g", Password: "pw", Device: "1002"}}})
		}, `tenant "globex": user "g": device: "1002" is already the device of user "1002" of tenant "acme" (the switch is shared)`},
		{"the same queue in two tenants", func(p *callbridge.Provisioning) {
			p.Tenants = append(p.Tenants, callbridge.TenantConfig{ID: "globex", Queues: []callbridge.QueueConfig{{Name: "acme-support"}}})
		}, `tenant "globex": queue "acme-support": name: already a queue of tenant "acme" (the switch is shared)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := callbridge.Provisioning{Tenants: []callbridge.TenantConfig{validTenant()}}
			tt.modify(&p)
			wantInvalid(t, provision.Validate(p), tt.want)
		})
	}
}

func TestWithDefaultsSites(t *testing.T) {
	in := twoSites()
	in.Sites[0].TimeZone = ""
	out := provision.WithDefaults(in)
	if in.Sites[0].TimeZone != "" {
		t.Errorf("input modified: %+v", in.Sites[0])
	}
	if out.Sites[0].TimeZone != "UTC" || out.Sites[1].TimeZone != "UTC" {
		t.Errorf("sites %+v: want UTC for an empty time zone", out.Sites)
	}
	if boss := out.Tenants[0].Users[2]; boss.Site != "" {
		t.Errorf("with two sites a user without a site keeps none: %+v", boss)
	}

	one := callbridge.Provisioning{Tenants: []callbridge.TenantConfig{{ID: "t",
		Queues: []callbridge.QueueConfig{{Name: "q"}}, Users: []callbridge.UserConfig{{Username: "u"}}}}}
	got := provision.WithDefaults(one)
	if got.Tenants[0].Queues[0].Site != callbridge.DefaultSite || got.Tenants[0].Users[0].Site != callbridge.DefaultSite {
		t.Errorf("without sites: queue %+v, user %+v; want site %q", got.Tenants[0].Queues[0], got.Tenants[0].Users[0], callbridge.DefaultSite)
	}
	if one.Tenants[0].Queues[0].Site != "" || one.Tenants[0].Users[0].Site != "" {
		t.Errorf("input modified: %+v", one.Tenants[0])
	}
}

func TestDemoIsAtTheDefaultSite(t *testing.T) {
	p := provision.WithDefaults(provision.Demo())
	if site, ok := p.Directory().SiteOf("demo", "agent1"); !ok || site != callbridge.DefaultSite {
		t.Fatalf("agent1 at %q, %v; want %q", site, ok, callbridge.DefaultSite)
	}
	checkEngines(t, p)
}
