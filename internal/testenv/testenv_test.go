package testenv_test

import (
	"fmt"
	"testing"

	"github.com/callbridge/callbridge/internal/testenv"
)

// TestCI: CI counts as set for any value but "", "0" and "false" (Travis, GitHub Actions and
// GitLab set "true", some services "1" or "yes").
func TestCI(t *testing.T) {
	for value, want := range map[string]bool{
		"": false, "0": false, "false": false, "FALSE": false, " false ": false,
		"true": true, "1": true, "yes": true, "True": true, "woodpecker": true,
	} {
		t.Setenv("CI", value)
		if got := testenv.CI(); got != want {
			t.Errorf("CI=%q: CI() = %v, want %v", value, got, want)
		}
	}
}

// recorder is a testenv.TB that records what the test would have done.
type recorder struct{ skipped, failed string }

func (r *recorder) Helper()                           {}
func (r *recorder) Skipf(format string, args ...any)  { r.skipped = fmt.Sprintf(format, args...) }
func (r *recorder) Fatalf(format string, args ...any) { r.failed = fmt.Sprintf(format, args...) }

// TestMissingComponentFailsUnderCI: without Chromium on PATH and without a PostgreSQL URL, the
// tests that need them skip on a developer's machine and fail under CI, whatever non-false
// value CI has.
func TestMissingComponentFailsUnderCI(t *testing.T) {
	t.Setenv("PATH", t.TempDir()) // no chromium
	t.Setenv(testenv.PostgresEnv, "")
	require := map[string]func(testenv.TB) string{
		"chromium": func(tb testenv.TB) string { return testenv.RequireChromium(tb) },
		"postgres": func(tb testenv.TB) string { return testenv.RequirePostgres(tb) },
	}
	for _, ci := range []string{"", "false", "0", "true", "1", "yes"} {
		for name, req := range require {
			t.Setenv("CI", ci)
			var r recorder
			req(&r)
			if testenv.CI() {
				if r.failed == "" || r.skipped != "" {
					t.Errorf("CI=%q, %s missing: failed %q, skipped %q; want a failure", ci, name, r.failed, r.skipped)
				}
			} else if r.skipped == "" || r.failed != "" {
				t.Errorf("CI=%q, %s missing: failed %q, skipped %q; want a skip", ci, name, r.failed, r.skipped)
			}
		}
	}
}

// TestPresentComponentIsReturned: a component that is there is neither skipped nor failed.
func TestPresentComponentIsReturned(t *testing.T) {
	t.Setenv("CI", "true")
	t.Setenv(testenv.PostgresEnv, "postgres://u:p@127.0.0.1:1/db")
	var r recorder
	if got := testenv.RequirePostgres(&r); got != "postgres://u:p@127.0.0.1:1/db" || r.failed != "" || r.skipped != "" {
		t.Fatalf("RequirePostgres = %q, failed %q, skipped %q", got, r.failed, r.skipped)
	}
}
