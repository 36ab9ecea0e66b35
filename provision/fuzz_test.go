package provision_test

import (
	"bytes"
	"os"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/callbridge/callbridge"
	"github.com/callbridge/callbridge/provision"
)

// FuzzLoad checks that Load never panics, that every refusal is an invalid *callbridge.Error,
// and that whatever it accepts passes Validate and survives a YAML round trip unchanged.
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
	})
}
