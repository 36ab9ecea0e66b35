package esl_test

import (
	"path/filepath"
	"testing"

	"github.com/callbridge/callbridge/capture"
	"github.com/callbridge/callbridge/internal/fixtures"
)

// recording returns the records of shared/fixtures/freeswitch-1.10/<name>.esl.jsonl.
func recording(t testing.TB, name string) []capture.Record {
	t.Helper()
	recs, err := capture.ReadFile(filepath.Join(fixtures.Dir(t, "freeswitch-1.10"), name+".esl.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	return recs
}

// eslRecordings returns the paths of every .esl.jsonl recording.
func eslRecordings(t testing.TB) []string {
	t.Helper()
	return fixtures.Files(t, "freeswitch-1.10", "*.esl.jsonl")
}

// received returns the raw "in" frames of recs, in order.
func received(recs []capture.Record) []string {
	var out []string
	for _, r := range recs {
		if r.Dir == capture.DirIn {
			out = append(out, r.Raw)
		}
	}
	return out
}

func readAll(t testing.TB, path string) []capture.Record {
	t.Helper()
	recs, err := capture.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return recs
}
