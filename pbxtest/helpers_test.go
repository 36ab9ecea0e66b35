package pbxtest_test

import (
	"bytes"
	"testing"

	"github.com/callbridge/callbridge"
	"github.com/callbridge/callbridge/examples"
	"github.com/callbridge/callbridge/provision"
)

// example loads an embedded provisioning example (examples/<name>).
func example(t testing.TB, name string) callbridge.Provisioning {
	t.Helper()
	b, err := examples.FS.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	p, err := provision.Load(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func queues(dir callbridge.Directory) []callbridge.QueueName {
	var out []callbridge.QueueName
	for _, t := range dir.Tenants {
		for _, q := range t.Queues {
			out = append(out, q.Name)
		}
	}
	return out
}
