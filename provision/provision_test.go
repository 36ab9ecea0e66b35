package provision_test

import (
	"errors"
	"io/fs"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"

	"github.com/callbridge/callbridge"
	"github.com/callbridge/callbridge/provision"
)

// examples are the provisioning files shipped in ../examples.
var examples = []string{"asterisk-22.yaml", "freeswitch-1.10.yaml", "two-sites.yaml"}

func examplePath(name string) string { return filepath.Join("..", "examples", name) }

// wantInvalid fails unless err is a *callbridge.Error with code invalid whose message
// contains every fragment.
func wantInvalid(t *testing.T, err error, fragments ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error, want invalid containing %q", fragments)
	}
	var e *callbridge.Error
	if !errors.As(err, &e) || e.Code != callbridge.EInvalid {
		t.Fatalf("got %v (%T), want a *callbridge.Error with code invalid", err, err)
	}
	for _, f := range fragments {
		if !strings.Contains(e.Message, f) {
			t.Errorf("message %q does not contain %q", e.Message, f)
		}
	}
}

func findTenant(t *testing.T, p callbridge.Provisioning, id callbridge.TenantID) callbridge.TenantConfig {
	t.Helper()
	for _, tc := range p.Tenants {
		if tc.ID == id {
			return tc
		}
	}
	t.Fatalf("no tenant %q", id)
	return callbridge.TenantConfig{}
}

func findUser(t *testing.T, tc callbridge.TenantConfig, username string) callbridge.UserConfig {
	t.Helper()
	for _, u := range tc.Users {
		if u.Username == username {
			return u
		}
	}
	t.Fatalf("tenant %q has no user %q", tc.ID, username)
	return callbridge.UserConfig{}
}

func TestLoadFileAsteriskExample(t *testing.T) {
	p, err := provision.LoadFile(examplePath("asterisk-22.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Tenants) != 2 {
		t.Fatalf("got %d tenants, want acme and globex", len(p.Tenants))
	}
	acme := findTenant(t, p, "acme")
	if acme.Name != "ACME Corp" || !slices.Equal(acme.DIDs, []string{"18005550100", "18005550101", "18005550300"}) {
		t.Errorf("acme: name %q, dids %q", acme.Name, acme.DIDs)
	}
	if !slices.Equal(acme.AttachedData, []string{"IVR_LANG", "IVR_ACCOUNT", "IVR_REASON"}) {
		t.Errorf("acme attached data %q", acme.AttachedData)
	}
	for _, code := range []string{"break", "lunch", "meeting", "training"} {
		if !slices.Contains(acme.ReasonCodes, code) {
			t.Errorf("acme reason codes %q lack %q", acme.ReasonCodes, code)
		}
	}
	if len(acme.Users) != 11 {
		t.Errorf("acme has %d users, want 10 agents and a supervisor", len(acme.Users))
	}
	alice := findUser(t, acme, "1001")
	if alice.Name != "Alice Acme" || alice.Device != "1001" || alice.Interface != "PJSIP/1001" ||
		alice.Role != callbridge.RoleAgent || alice.Password != "demo" ||
		!slices.Equal(alice.Queues, []callbridge.QueueName{"acme-support", "acme-load"}) {
		t.Errorf("user 1001 = %+v", alice)
	}
	judy := findUser(t, acme, "1010")
	if judy.Name != "Judy Acme" || !slices.Equal(judy.Queues, []callbridge.QueueName{"acme-load"}) {
		t.Errorf("user 1010 = %+v", judy)
	}
	if sup := findUser(t, acme, "acme-supervisor"); sup.Role != callbridge.RoleSupervisor || sup.Device != "" {
		t.Errorf("acme-supervisor = %+v", sup)
	}

	globex := findTenant(t, p, "globex")
	if !slices.Equal(globex.DIDs, []string{"18005550200"}) || len(globex.Queues) != 1 || globex.Queues[0].Name != "globex-sales" {
		t.Errorf("globex: dids %q, queues %+v", globex.DIDs, globex.Queues)
	}
	iris := findUser(t, globex, "2003")
	if iris.Name != "Iris Globex" || iris.Interface != "Local/2003@globex-agents/n" || iris.Device != "2003" {
		t.Errorf("user 2003 = %+v", iris)
	}
	if sup := findUser(t, globex, "globex-supervisor"); sup.Role != callbridge.RoleSupervisor {
		t.Errorf("globex-supervisor = %+v", sup)
	}
}

func TestLoadFileFreeSWITCHExample(t *testing.T) {
	p, err := provision.LoadFile(examplePath("freeswitch-1.10.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	acme := findTenant(t, p, "acme")
	if !slices.Equal(acme.DIDs, []string{"18005550100"}) || acme.WrapUpSeconds != 5 {
		t.Errorf("acme: dids %q, wrap-up %d", acme.DIDs, acme.WrapUpSeconds)
	}
	if !slices.Equal(acme.AttachedData, []string{"ivr_lang", "ivr_account", "ivr_reason"}) {
		t.Errorf("attached data %q", acme.AttachedData)
	}
	for _, ext := range []string{"1001", "1002", "1003", "1004"} {
		u := findUser(t, acme, ext)
		if u.Device != callbridge.DeviceID(ext) || u.Interface != ext+"@default" || u.Password != "demo" ||
			!slices.Contains(u.Queues, "support@default") {
			t.Errorf("user %s = %+v", ext, u)
		}
	}
	if q := findUser(t, acme, "1004").Queues; !slices.Contains(q, "sales@default") {
		t.Errorf("1004 queues %q lack sales@default", q)
	}
}

func TestLoadFileMissing(t *testing.T) {
	_, err := provision.LoadFile(filepath.Join(t.TempDir(), "nope.yaml"))
	if !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("got %v, want fs.ErrNotExist", err)
	}
}

func TestLoadFileNamesTheFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bad.yaml")
	writeFile(t, path, "tenants:\n  - id: acme\n    colour: red\n")
	_, err := provision.LoadFile(path)
	wantInvalid(t, err, path, "line 3", "colour")
}

func TestLoadDefaultsRoleToAgent(t *testing.T) {
	p, err := provision.Load(strings.NewReader(`
tenants:
  - id: t1
    users:
      - {username: u1, password: pw}
`))
	if err != nil {
		t.Fatal(err)
	}
	if got := p.Tenants[0].Users[0].Role; got != callbridge.RoleAgent {
		t.Fatalf("role %q, want agent", got)
	}
}

func TestLoadReadsUnquotedNumbersAsText(t *testing.T) {
	p, err := provision.Load(strings.NewReader(`
tenants:
  - id: t1
    dids: [18005550100]
    users:
      - {username: 1001, password: pw, device: 0100}
`))
	if err != nil {
		t.Fatal(err)
	}
	tc := p.Tenants[0]
	if tc.DIDs[0] != "18005550100" || tc.Users[0].Username != "1001" || tc.Users[0].Device != "0100" {
		t.Fatalf("got dids %q, user %+v", tc.DIDs, tc.Users[0])
	}
}

func TestLoadRefuses(t *testing.T) {
	tests := []struct {
		name string
		doc  string
		want []string
	}{
		{"empty document", "", []string{"empty"}},
		{"only comments", "# nothing\n", []string{"empty"}},
		{"no tenants", "tenants: []\n", []string{"no tenants"}},
		{"null document", "null\n", []string{"no tenants"}},
		{"unknown top-level field", "tenant:\n  - id: a\n", []string{"line 1", "field tenant not found"}},
		{"unknown user field", "tenants:\n  - id: a\n    users:\n      - username: u\n        pasword: x\n", []string{"line 5", "pasword"}},
		{"wrong type", "tenants:\n  - id: a\n    wrap_up_seconds: soon\n", []string{"line 3", "`soon` into int"}},
		{"list for a string", "tenants:\n  - id: [a]\n", []string{"line 2"}},
		{"duplicate key", "tenants:\n  - id: a\n    id: b\n", []string{"already defined"}},
		{"two documents", "tenants:\n  - id: a\n---\ntenants:\n  - id: b\n", []string{"more than one YAML document"}},
		{"not yaml", "tenants: [\n", []string{"provisioning document"}},
		{"invalid content", "tenants:\n  - id: a b\n", []string{`tenants[0]: id: "a b" is not a token`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := provision.Load(strings.NewReader(tt.doc))
			wantInvalid(t, err, tt.want...)
			if p.Tenants != nil {
				t.Errorf("returned tenants %+v with the error", p.Tenants)
			}
		})
	}
}

func TestLoadRefusesOversizeDocument(t *testing.T) {
	doc := "tenants:\n  - id: a\n    name: " + strings.Repeat("x", provision.MaxDocumentBytes) + "\n"
	_, err := provision.Load(strings.NewReader(doc))
	wantInvalid(t, err, "larger than")
}

// validTenant returns a tenant that passes Validate, for tests to break one field at a time.
func validTenant() callbridge.TenantConfig {
	wrap := 30
	return callbridge.TenantConfig{
		ID:            "acme",
		Name:          "ACME Corp",
		DIDs:          []string{"18005550100", "+15550001"},
		AttachedData:  []string{"IVR_LANG"},
		WrapUpSeconds: 10,
		ReasonCodes:   []string{"lunch", "break"},
		Queues:        []callbridge.QueueConfig{{Name: "acme-support"}, {Name: "sales@default", WrapUpSeconds: &wrap}},
		Users: []callbridge.UserConfig{
			{Username: "1001", Password: "pw", Name: "Alice", Device: "1001", Interface: "PJSIP/1001", Queues: []callbridge.QueueName{"acme-support"}},
			{Username: "1002", Password: "pw", Role: callbridge.RoleAgent, Device: "1002", Queues: []callbridge.QueueName{"acme-support", "sales@default"}},
			{Username: "boss", Password: "pw", Role: callbridge.RoleSupervisor},
			{Username: "root", Password: "pw", Role: callbridge.RoleAdmin},
		},
	}
}

func TestValidateAccepts(t *testing.T) {
	hash, err := bcrypt.GenerateFromPassword([]byte("pw"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	other := validTenant()
	other.ID = "globex"
	other.DIDs = []string{"18005550200"}
	other.Users[0].Password, other.Users[0].PasswordHash = "", string(hash)
	// The switch is shared: globex's devices and queues are not acme's.
	other.Queues = []callbridge.QueueConfig{{Name: "globex-support"}}
	for i := range other.Users[:2] {
		other.Users[i].Device = callbridge.DeviceID("2" + string(other.Users[i].Device[1:]))
		other.Users[i].Queues = []callbridge.QueueName{"globex-support"}
	}
	tests := map[string]callbridge.Provisioning{
		"nothing":                            {},
		"one tenant":                         {Tenants: []callbridge.TenantConfig{validTenant()}},
		"same usernames in two tenants":      {Tenants: []callbridge.TenantConfig{validTenant(), other}},
		"bare tenant":                        {Tenants: []callbridge.TenantConfig{{ID: "t"}}},
		"demo":                               provision.Demo(),
		"a password of exactly 72 bytes":     {Tenants: []callbridge.TenantConfig{{ID: "t", Users: []callbridge.UserConfig{{Username: "u", Password: strings.Repeat("p", 72)}}}}},
		"queue wrap-up overriding with zero": {Tenants: []callbridge.TenantConfig{{ID: "t", Queues: []callbridge.QueueConfig{{Name: "q", WrapUpSeconds: new(int)}}}}},
	}
	for name, p := range tests {
		t.Run(name, func(t *testing.T) {
			if err := provision.Validate(p); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestValidateRefuses(t *testing.T) {
	tests := []struct {
		name   string
		modify func(p *callbridge.Provisioning)
		want   string
	}{
		{"empty tenant id", func(p *callbridge.Provisioning) { p.Tenants[0].ID = "" },
			`tenants[0]: id: "" is not a token`},
		{"tenant id with a dot", func(p *callbridge.Provisioning) { p.Tenants[0].ID = "acme.corp" },
			`tenants[0]: id: "acme.corp" is not a token`},
		{"tenant id too long", func(p *callbridge.Provisioning) { p.Tenants[0].ID = callbridge.TenantID(strings.Repeat("a", 65)) },
			`is not a token`},
		{"duplicate tenant", func(p *callbridge.Provisioning) {
			second := validTenant()
			second.DIDs = nil
			p.Tenants = append(p.Tenants, second)
		}, `tenant "acme": id: duplicate tenant`},
		{"DID in two tenants", func(p *callbridge.Provisioning) {
			p.Tenants = append(p.Tenants, callbridge.TenantConfig{ID: "globex", DIDs: []string{"18005550100"}})
		}, `tenant "globex": dids: "18005550100" already belongs to tenant "acme"`},
		{"DID twice in a tenant", func(p *callbridge.Provisioning) { p.Tenants[0].DIDs = append(p.Tenants[0].DIDs, "18005550100") },
			`tenant "acme": dids: "18005550100" is listed twice`},
		{"DID with a space", func(p *callbridge.Provisioning) { p.Tenants[0].DIDs[0] = "1800 555" },
			`tenant "acme": dids "1800 555" contains ' '`},
		{"empty DID", func(p *callbridge.Provisioning) { p.Tenants[0].DIDs[0] = "" },
			`tenant "acme": dids "" is empty`},
		{"tenant name with CR LF", func(p *callbridge.Provisioning) { p.Tenants[0].Name = "ACME\r\nAction: Originate" },
			`tenant "acme": name contains CR, LF or NUL`},
		{"negative tenant wrap-up", func(p *callbridge.Provisioning) { p.Tenants[0].WrapUpSeconds = -1 },
			`tenant "acme": wrap_up_seconds: -1 is not between 0 and 86400`},
		{"tenant wrap-up over a day", func(p *callbridge.Provisioning) { p.Tenants[0].WrapUpSeconds = 86401 },
			`tenant "acme": wrap_up_seconds: 86401`},
		{"negative queue wrap-up", func(p *callbridge.Provisioning) { n := -5; p.Tenants[0].Queues[0].WrapUpSeconds = &n },
			`tenant "acme": queue "acme-support": wrap_up_seconds: -5`},
		{"reason code not a token", func(p *callbridge.Provisioning) { p.Tenants[0].ReasonCodes = []string{"coffee break"} },
			`tenant "acme": reason_codes: "coffee break" is not a token`},
		{"reason code twice", func(p *callbridge.Provisioning) { p.Tenants[0].ReasonCodes = []string{"lunch", "lunch"} },
			`tenant "acme": reason_codes: "lunch" is listed twice`},
		{"attached data key not a token", func(p *callbridge.Provisioning) { p.Tenants[0].AttachedData = []string{"IVR\nLANG"} },
			`tenant "acme": attached_data: "IVR\nLANG" is not a token`},
		{"empty queue name", func(p *callbridge.Provisioning) { p.Tenants[0].Queues[0].Name = "" },
			`tenant "acme": queues[0]: name "" is empty`},
		{"queue name with a comma", func(p *callbridge.Provisioning) { p.Tenants[0].Queues[0].Name = "a,b" },
			`tenant "acme": queues[0]: name "a,b" contains ','`},
		{"duplicate queue", func(p *callbridge.Provisioning) { p.Tenants[0].Queues[1].Name = "acme-support" },
			`tenant "acme": queue "acme-support": name: duplicate queue`},
		{"empty username", func(p *callbridge.Provisioning) { p.Tenants[0].Users[0].Username = "" },
			`tenant "acme": users[0]: username: "" is not a token`},
		{"username with a slash", func(p *callbridge.Provisioning) { p.Tenants[0].Users[0].Username = "a/b" },
			`tenant "acme": users[0]: username: "a/b" is not a token`},
		{"duplicate user", func(p *callbridge.Provisioning) { p.Tenants[0].Users[1].Username = "1001" },
			`tenant "acme": user "1001": username: duplicate user`},
		{"no password", func(p *callbridge.Provisioning) { p.Tenants[0].Users[0].Password = "" },
			`tenant "acme": user "1001": needs password or password_hash`},
		{"password and hash", func(p *callbridge.Provisioning) { p.Tenants[0].Users[0].PasswordHash = "$2a$10$abc" },
			`tenant "acme": user "1001": has both password and password_hash`},
		{"password over 72 bytes", func(p *callbridge.Provisioning) { p.Tenants[0].Users[0].Password = strings.Repeat("p", 73) },
			`tenant "acme": user "1001": password: longer than 72 bytes`},
		{"hash that is not bcrypt", func(p *callbridge.Provisioning) {
			p.Tenants[0].Users[0].Password, p.Tenants[0].Users[0].PasswordHash = "", "5f4dcc3b5aa765d61d8327deb882cf99"
		}, `tenant "acme": user "1001": password_hash: not a bcrypt hash`},
		{"hash of too high a cost", func(p *callbridge.Provisioning) {
			p.Tenants[0].Users[0].Password = ""
			p.Tenants[0].Users[0].PasswordHash = "$2a$17$" + strings.Repeat("a", 53)
		}, `tenant "acme": user "1001": password_hash: bcrypt cost 17 is above 16`},
		{"unknown role", func(p *callbridge.Provisioning) { p.Tenants[0].Users[0].Role = "superuser" },
			`tenant "acme": user "1001": role: "superuser" is not agent, supervisor or admin`},
		{"role in capitals", func(p *callbridge.Provisioning) { p.Tenants[0].Users[0].Role = "Agent" },
			`role: "Agent"`},
		{"queue of no such name", func(p *callbridge.Provisioning) { p.Tenants[0].Users[0].Queues = []callbridge.QueueName{"acme-sales"} },
			`tenant "acme": user "1001": queues: "acme-sales" is not a queue of the tenant`},
		{"queue of another tenant", func(p *callbridge.Provisioning) {
			p.Tenants = append(p.Tenants, callbridge.TenantConfig{ID: "globex", Queues: []callbridge.QueueConfig{{Name: "globex-sales"}}})
			p.Tenants[0].Users[0].Queues = []callbridge.QueueName{"globex-sales"}
		}, `tenant "acme": user "1001": queues: "globex-sales" is not a queue of the tenant`},
		{"queue listed twice", func(p *callbridge.Provisioning) {
			p.Tenants[0].Users[0].Queues = []callbridge.QueueName{"acme-support", "acme-support"}
		}, `tenant "acme": user "1001": queues: "acme-support" is listed twice`},
		{"device of another user", func(p *callbridge.Provisioning) { p.Tenants[0].Users[1].Device = "1001" },
			`tenant "acme": user "1002": device: "1001" is already the device of user "1001"`},
		{"device with LF", func(p *callbridge.Provisioning) { p.Tenants[0].Users[0].Device = "1001\n" },
			`tenant "acme": user "1001": device contains CR, LF or NUL`},
		{"interface with NUL", func(p *callbridge.Provisioning) { p.Tenants[0].Users[0].Interface = "PJSIP/1001\x00" },
			`tenant "acme": user "1001": interface contains CR, LF or NUL`},
		{"user name with CR", func(p *callbridge.Provisioning) { p.Tenants[0].Users[0].Name = "Alice\r" },
			`tenant "acme": user "1001": name contains CR, LF or NUL`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := callbridge.Provisioning{Tenants: []callbridge.TenantConfig{validTenant()}}
			tt.modify(&p)
			wantInvalid(t, provision.Validate(p), tt.want)
		})
	}
}

func TestValidateListsSeveralProblems(t *testing.T) {
	p := callbridge.Provisioning{Tenants: []callbridge.TenantConfig{validTenant()}}
	p.Tenants[0].WrapUpSeconds = -1
	p.Tenants[0].Users[2].Role = "boss"
	wantInvalid(t, provision.Validate(p), "wrap_up_seconds: -1", `user "boss": role: "boss"`)

	p.Tenants[0].Users = nil
	for i := range 15 {
		p.Tenants[0].Users = append(p.Tenants[0].Users, callbridge.UserConfig{Username: "u" + strings.Repeat("x", i)})
	}
	wantInvalid(t, provision.Validate(p), "and 6 more")
}

func TestWithDefaultsLeavesInputAlone(t *testing.T) {
	in := callbridge.Provisioning{Tenants: []callbridge.TenantConfig{{ID: "t", Users: []callbridge.UserConfig{{Username: "u"}, {Username: "s", Role: callbridge.RoleSupervisor}}}}}
	out := provision.WithDefaults(in)
	if in.Tenants[0].Users[0].Role != "" {
		t.Errorf("input modified: %+v", in.Tenants[0].Users[0])
	}
	if out.Tenants[0].Users[0].Role != callbridge.RoleAgent || out.Tenants[0].Users[1].Role != callbridge.RoleSupervisor {
		t.Errorf("got %+v", out.Tenants[0].Users)
	}
}

func TestDemo(t *testing.T) {
	p := provision.Demo()
	if err := provision.Validate(p); err != nil {
		t.Fatal(err)
	}
	demo := findTenant(t, p, "demo")
	if demo.Name != "Demo Co" || !slices.Equal(demo.DIDs, []string{"18005550199"}) || demo.WrapUpSeconds != 10 ||
		!slices.Equal(demo.AttachedData, []string{"IVR_LANG", "IVR_ACCOUNT", "IVR_REASON"}) ||
		!slices.Equal(demo.ReasonCodes, []string{"break", "lunch", "meeting", "training"}) ||
		len(demo.Queues) != 1 || demo.Queues[0].Name != "support" {
		t.Errorf("demo tenant = %+v", demo)
	}
	agent3 := findUser(t, demo, "agent3")
	if agent3.Name != "Agent Three" || agent3.Device != "1003" || agent3.Interface != "SIM/1003" ||
		agent3.Role != callbridge.RoleAgent || agent3.Password != "demo" || !slices.Equal(agent3.Queues, []callbridge.QueueName{"support"}) {
		t.Errorf("agent3 = %+v", agent3)
	}
	if sup := findUser(t, demo, "supervisor1"); sup.Role != callbridge.RoleSupervisor || sup.Password != "demo" {
		t.Errorf("supervisor1 = %+v", sup)
	}

	// Each call is a fresh value.
	p.Tenants[0].Users[0].Queues[0] = "changed"
	if q := provision.Demo().Tenants[0].Users[0].Queues[0]; q != "support" {
		t.Errorf("Demo shares state between calls: queue %q", q)
	}
}

func TestDemoLogins(t *testing.T) {
	got := provision.DemoLogins()
	want := []string{"agent1", "agent2", "agent3", "agent4", "agent5", "supervisor1"}
	if !slices.Equal(got, want) {
		t.Fatalf("got %q, want %q", got, want)
	}
	for _, u := range provision.Demo().Tenants[0].Users {
		if u.Password != provision.DemoPassword {
			t.Errorf("%s: password %q, want %q", u.Username, u.Password, provision.DemoPassword)
		}
	}
}
