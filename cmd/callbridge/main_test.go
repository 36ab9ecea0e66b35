package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"slices"
	"syscall"
	"testing"
)

// childEnv, set to "serve", makes the test binary a `callbridge serve` process with the
// arguments after "--" (startChild), so that tests can run a second, real process.
const childEnv = "CALLBRIDGE_TEST_CHILD"

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) == "serve" {
		os.Exit(childServe())
	}
	os.Exit(m.Run())
}

// childServe is the child's main: serve until SIGTERM or SIGINT.
func childServe() int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	i := slices.Index(os.Args, "--")
	if i < 0 {
		fmt.Fprintln(os.Stderr, "child: no -- in the arguments")
		return 2
	}
	if err := run(ctx, append([]string{"serve"}, os.Args[i+1:]...), os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "callbridge:", err)
		return 1
	}
	return 0
}
