package examples_test

import (
	"io/fs"
	"slices"
	"testing"

	"github.com/callbridge/callbridge/examples"
	"github.com/callbridge/callbridge/provision"
)

// TestEmbeddedExamplesLoad checks that every embedded example is a valid provisioning document.
func TestEmbeddedExamplesLoad(t *testing.T) {
	names, err := fs.Glob(examples.FS, "*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"asterisk-22.yaml", "freeswitch-1.10.yaml"} {
		if !slices.Contains(names, want) {
			t.Errorf("%s is not embedded (have %q)", want, names)
		}
	}
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			f, err := examples.FS.Open(name)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			p, err := provision.Load(f)
			if err != nil {
				t.Fatal(err)
			}
			if len(p.Tenants) == 0 {
				t.Fatal("no tenants")
			}
		})
	}
}
