// Package testenv is what callbridge's tests share about the machine they run on: whether
// they run under CI, the outside components some of them need (headless Chromium,
// PostgreSQL), and how long a test waits for something before calling it a failure.
//
// One rule for missing components: on a developer's machine a test that needs Chromium or
// PostgreSQL is skipped when it is not there; under CI (see CI) it fails instead, because
// .ci/run installs both and a skip there would turn a broken set-up into a silent pass.
package testenv

import (
	"context"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// Patience bounds every wait of a test for something that normally takes well under a second
// (an event to arrive, a page to render, a node to start, a switch to answer). It is far
// above normal on purpose: a loaded 2-core machine must never reach it, so a test that does
// has found a hang, not slowness. Tests never wait for time to pass instead of a condition.
const Patience = 60 * time.Second

// Context returns a context that ends after Patience or when the test ends.
func Context(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), Patience)
	t.Cleanup(cancel)
	return ctx
}

// Eventually polls cond until it holds, failing the test with what after Patience.
func Eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(Patience)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited %s for %s", Patience, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// CI reports whether the tests run under continuous integration: the environment variable CI
// is set to anything but "", "0" or "false" (any case). .ci/run sets CI=true; most CI
// services set CI themselves.
func CI() bool {
	switch strings.ToLower(strings.TrimSpace(os.Getenv("CI"))) {
	case "", "0", "false":
		return false
	}
	return true
}

// TB is the part of testing.TB that Missing uses.
type TB interface {
	Helper()
	Skipf(format string, args ...any)
	Fatalf(format string, args ...any)
}

// Missing ends the test because component is not available: a skip on a developer's machine,
// a failure under CI. how says how to provide it.
func Missing(t TB, component, how string) {
	t.Helper()
	if CI() {
		t.Fatalf("%s is missing, and CI is set (CI=%q), where every test must run: %s", component, os.Getenv("CI"), how)
		return
	}
	t.Skipf("%s is missing: skipped (under CI this fails): %s", component, how)
}

// chromiumNames are the executables tried, in order.
var chromiumNames = []string{"chromium", "chromium-browser", "google-chrome-stable", "google-chrome"}

// RequireChromium returns the path of a Chromium (or Chrome) executable on PATH, or ends the
// test as Missing says.
func RequireChromium(t TB) string {
	t.Helper()
	for _, name := range chromiumNames {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	Missing(t, "Chromium (headless browser tests)", "install it (.ci/run: apt-get install chromium)")
	return ""
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago (for a server a test
// must start, stop and start again on the same address).
func FreePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}
