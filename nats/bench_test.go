package nats_test

import (
	"context"
	"fmt"
	"log/slog"
	"testing"

	"github.com/callbridge/callbridge"
	cbnats "github.com/callbridge/callbridge/nats"
)

// BenchmarkAppend measures Append on the embedded server (in-process connection, file store
// in a temporary directory, default fsync policy): events/s and allocations per event, for
// an agent event (1 message), a call event with one agent (2 messages) and with three (4),
// sequentially (one engine goroutine) and from parallel goroutines.
func BenchmarkAppend(b *testing.B) {
	ctx := context.Background()
	s, err := cbnats.StartServer(ctx, cbnats.ServerConfig{DataDir: b.TempDir(), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Shutdown()
	nc, err := s.Connect("bench")
	if err != nil {
		b.Fatal(err)
	}
	l, err := cbnats.OpenEventLog(ctx, nc, cbnats.LogConfig{})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()

	cases := []struct {
		name string
		ev   callbridge.Event
	}{
		{"agent", agentEv("acme", "alice", "bench")},
		{"call-1agent", callEv("acme", "01JBENCHCALL00000000000000", "bench", "alice")},
		{"call-3agents", callEv("acme", "01JBENCHCALL00000000000000", "bench", "alice", "bob", "carol")},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := l.Append(ctx, c.ev); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
		})
		b.Run(fmt.Sprintf("%s-parallel", c.name), func(b *testing.B) {
			b.ReportAllocs()
			b.SetParallelism(4)
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := l.Append(ctx, c.ev); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
		})
	}
}
