//go:build !unix

package main

import "time"

// cpuStats is not measured outside Unix: busyFraction reports 0.
type cpuStats struct {
	cpu  time.Duration
	wall time.Time
}

func cpuSample() cpuStats { return cpuStats{wall: time.Now()} }
