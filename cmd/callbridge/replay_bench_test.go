package main

import (
	"context"
	"log/slog"
	"path/filepath"
	"testing"

	"github.com/callbridge/callbridge/capture"
	"github.com/callbridge/callbridge/internal/fixtures"
)

// BenchmarkReplay measures end-to-end replay throughput: the blind-transfer recording (266
// AMI events) played over loopback TCP by the replay server, read by the real AMI client,
// translated by the Asterisk driver and consumed by the engine, with domain events collected in
// memory. It reports AMI frames per second through the whole pipeline.
func BenchmarkReplay(b *testing.B) {
	recs, err := capture.ReadFile(filepath.Join(fixtures.Dir(b, "asterisk-22"), "blind-transfer.ami.jsonl"))
	if err != nil {
		b.Fatal(err)
	}
	frames := 0
	for _, r := range recs {
		if r.Dir == capture.DirIn {
			frames++
		}
	}
	p, err := loadReplayProvisioning("")
	if err != nil {
		b.Fatal(err)
	}
	logger := slog.New(slog.DiscardHandler)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		evs, err := Replay(context.Background(), recs, p, 0, logger)
		if err != nil {
			b.Fatal(err)
		}
		if len(evs) == 0 {
			b.Fatal("no events")
		}
	}
	b.ReportMetric(float64(frames*b.N)/b.Elapsed().Seconds(), "frames/s")
}
