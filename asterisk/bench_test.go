package asterisk_test

import (
	"testing"

	"github.com/callbridge/callbridge/asterisk"
)

// BenchmarkTracker translates the blind-transfer recording (266 events, a third of them
// VarSet) with a new Tracker per iteration; events/s counts AMI events fed.
func BenchmarkTracker(b *testing.B) {
	msgs := frames(b, "blind-transfer")
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		tr := asterisk.NewTracker(asterisk.TrackerConfig{})
		for _, m := range msgs {
			n += len(tr.Feed(m))
		}
	}
	if n == 0 {
		b.Fatal("no events")
	}
	b.ReportMetric(float64(len(msgs))*float64(b.N)/b.Elapsed().Seconds(), "events/s")
	b.ReportMetric(float64(len(msgs)), "events/op")
}
