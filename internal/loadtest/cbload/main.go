// Command cbload is the load harness's client process: it holds the WebSocket desktops of a
// range of agents, logged in and connected from one source address, and obeys the
// orchestrator's commands (loadtest.Command, one JSON line each on stdin; one
// loadtest.Reply line each on stdout). cmd/callbridge's TestScale builds and starts it:
//
//	cbload -mode callbridge -url http://127.0.0.1:8080 -source 127.0.1.1 -first 0 -count 9900
//
// Agents are named by -name (a fmt pattern of the agent's index, default "a%05d", the
// load provisioning's users) and ring on device -device-base + index.
package main

import (
	"flag"
	"fmt"
	"log/slog"
	"os"
	"syscall"
	"time"

	"github.com/callbridge/callbridge/internal/loadtest"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "cbload:", err)
		os.Exit(1)
	}
}

func run() error {
	mode := flag.String("mode", string(loadtest.ModeCallbridge), "callbridge or relay")
	url := flag.String("url", "", "the server's base URL, http://host:port")
	source := flag.String("source", "", "local address of every connection, e.g. 127.0.1.1")
	first := flag.Int("first", 0, "index of the first agent")
	count := flag.Int("count", 0, "number of agents (desktops)")
	name := flag.String("name", "a%05d", "user name of agent i (a fmt pattern)")
	deviceBase := flag.Int("device-base", 100000, "agent i rings on device device-base+i")
	password := flag.String("password", "load", "every agent's password")
	dials := flag.Int("dials", 0, "first connections in flight (0: the default)")
	flag.Parse()
	if *count <= 0 || *url == "" {
		return fmt.Errorf("-url and a positive -count are required")
	}
	if m := loadtest.Mode(*mode); m != loadtest.ModeCallbridge && m != loadtest.ModeRelay {
		return fmt.Errorf("-mode %q: want callbridge or relay", *mode)
	}
	if err := raiseFileLimit(*count + 64); err != nil {
		return err
	}
	agents := make([]loadtest.Agent, *count)
	for i := range agents {
		agents[i] = loadtest.Agent{Username: fmt.Sprintf(*name, *first+i), Device: fmt.Sprint(*deviceBase + *first + i)}
	}
	lg := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	f, err := loadtest.NewFleet(loadtest.FleetConfig{
		Mode: loadtest.Mode(*mode), URL: *url, Source: *source, Agents: agents, Password: *password,
		DialParallel: *dials, Logger: lg,
	})
	if err != nil {
		return err
	}
	return f.Serve(os.Stdin, os.Stdout, cpuSeconds)
}

// raiseFileLimit raises the soft limit of open files to the hard limit and says when even
// that is below need.
func raiseFileLimit(need int) error {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return fmt.Errorf("open files limit: %w", err)
	}
	if rl.Cur < rl.Max {
		rl.Cur = rl.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
			return fmt.Errorf("raise open files limit to %d: %w", rl.Max, err)
		}
	}
	if rl.Cur < uint64(need) {
		return fmt.Errorf("%d desktops need about %d open files; the limit is %d (at most ~%d desktops per process)", need-64, need, rl.Cur, rl.Cur-100)
	}
	return nil
}

// cpuSeconds is the process's user + system CPU time.
func cpuSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return (time.Duration(ru.Utime.Nano()) + time.Duration(ru.Stime.Nano())).Seconds()
}
