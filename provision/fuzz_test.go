package provision_test

import (
	"bytes"
	"os"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/callbridge/callbridge"
	"github.com/callbridge/callbridge/engine"
	"github.com/callbridge/callbridge/provision"
)

// FuzzLoad checks that Load never panics, that every refusal is an invalid *callbridge.Error,
// and that whatever it accepts passes Validate, survives a YAML round trip unchanged, and
// gives every one of its sites a directory the engine takes.
func FuzzLoad(f *testing.F) {
	for _, name := range examples {
		data, err := os.ReadFile(examplePath(name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	demo, err := yaml.Marshal(provision.Demo())
	if err != nil {
		f.Fatal(err)
	}
	f.Add(demo)
	for _, s := range []string{
		"",
		"tenants: []\n",
		"tenants:\n  - id: a\n    users:\n      - {username: u, password: p, queues: [q]}\n    queues: [{name: q, wrap_up_seconds: 3}]\n",
		"tenants:\n  - id: a\n    dids: [1, 1]\n",
		"tenants:\n  - &x {id: a}\n  - *x\n",
		"tenants: [{id: a, wrap_up_seconds: 99999999999999999999}]\n",
		"--- !!map\n? [a]\n: b\n",
		"sites: [{id: a, switches: [{pbx: sim}]}, {id: b, time_zone: Asia/Tokyo, switches: [{pbx: sim}]}]\n" +
			"tenants:\n  - id: t\n    queues: [{name: q, site: a}]\n    users:\n      - {username: u, password: p, site: a, device: 1, queues: [q]}\n      - {username: v, password: p, site: b, device: 1}\n",
		"sites: [{id: a, time_zone: Europe/Moscow, switches: [{pbx: 'ami://u:p@h:5038', ari: 'ari://u:p@h:8088/x'}]}]\ntenants: [{id: t, users: [{username: u, password: p, device: 1}]}]\n",
		"sites: [{id: a}, {id: a}]\ntenants: [{id: t}]\n",
		"tenants: [{id: t, users: [{username: u, password: p, site: default}]}]\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := provision.Load(bytes.NewReader(data))
		if err != nil {
			if code := callbridge.ErrorCode(err); code != callbridge.EInvalid {
				t.Fatalf("refusal has code %q, want invalid: %v", code, err)
			}
			return
		}
		if err := provision.Validate(p); err != nil {
			t.Fatalf("Load accepted a document Validate refuses: %v", err)
		}
		out, err := yaml.Marshal(p)
		if err != nil {
			t.Fatalf("marshal accepted document: %v", err)
		}
		again, err := provision.Load(bytes.NewReader(out))
		if err != nil {
			t.Fatalf("reloading the marshalled document: %v\n%s", err, out)
		}
		out2, err := yaml.Marshal(again)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(out, out2) {
			t.Fatalf("round trip changed the document:\n%s\n---\n%s", out, out2)
		}
		dir := p.Directory()
		for _, s := range dir.SiteList() {
			sd, err := dir.ForSite(s.ID)
			if err != nil {
				t.Fatalf("ForSite(%s) of an accepted document: %v", s.ID, err)
			}
			if err := engine.CheckDirectory(sd); err != nil {
				t.Fatalf("site %s: the engine refuses the directory of an accepted document: %v\n%s", s.ID, err, data)
			}
		}
	})
}
