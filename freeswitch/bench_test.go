package freeswitch_test

import (
	"testing"

	"github.com/callbridge/callbridge/freeswitch"
)

// BenchmarkTracker feeds the 154 events of fs-blind-transfer (already parsed) through a new
// Tracker per iteration: the driver's work per event after framing.
func BenchmarkTracker(b *testing.B) {
	evs := recordedEvents(b, "fs-blind-transfer")
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		tr := freeswitch.NewTracker(freeswitch.TrackerConfig{})
		for _, e := range evs {
			tr.Feed(e)
		}
		n += len(evs)
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "events/s")
}
