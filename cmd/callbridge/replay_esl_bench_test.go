package main

import (
	"context"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"

	"github.com/callbridge/callbridge/capture"
	"github.com/callbridge/callbridge/internal/fixtures"
)

// BenchmarkReplayESL measures end-to-end replay throughput for FreeSWITCH: fs-blind-transfer
// (154 events, median 3.5 KB each) played over loopback TCP by the ESL replay server, read by
// the real event socket client, translated by the FreeSWITCH driver and consumed by the
// engine. It reports events per second through the whole pipeline (resync included).
func BenchmarkReplayESL(b *testing.B) {
	path := filepath.Join(fixtures.Dir(b, "freeswitch-1.10"), "fs-blind-transfer.esl.jsonl")
	recs, err := capture.ReadFile(path)
	if err != nil {
		b.Fatal(err)
	}
	events := 0
	for _, r := range recs {
		if r.Dir == capture.DirIn && strings.Contains(r.Raw, "Content-Type: text/event-") {
			events++
		}
	}
	replay, p, err := replayerFor(path, "")
	if err != nil {
		b.Fatal(err)
	}
	logger := slog.New(slog.DiscardHandler)
	b.ReportAllocs()
	for b.Loop() {
		evs, err := replay(context.Background(), recs, p, 0, logger)
		if err != nil {
			b.Fatal(err)
		}
		if len(evs) == 0 {
			b.Fatal("no events")
		}
	}
	b.ReportMetric(float64(events*b.N)/b.Elapsed().Seconds(), "events/s")
}
