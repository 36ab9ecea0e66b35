//go:build unix

package main

import (
	"syscall"
	"time"
)

// cpuStats is the process's CPU time (user + system, every thread: the embedded NATS server
// and SQLite run in this process too) at a wall-clock time.
type cpuStats struct {
	cpu  time.Duration
	wall time.Time
}

func cpuSample() cpuStats {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return cpuStats{wall: time.Now()}
	}
	return cpuStats{cpu: time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), wall: time.Now()}
}
