package freeswitch_test

import (
	"testing"

	"github.com/callbridge/callbridge"
	"github.com/callbridge/callbridge/capture"
	"github.com/callbridge/callbridge/freeswitch"
	"github.com/callbridge/callbridge/freeswitch/esl"
)

var fuzzRecordings = []string{"fs-blind-transfer", "fs-hold", "fs-click-to-call", "fs-inbound-abandon", "fs-agent-state"}

// FuzzTrackerOrder feeds the real events of several recordings in an order (and with
// repetitions and gaps) chosen by the fuzzer: the tracker never panics, clears each
// conversation at most once, and says nothing more about a conversation once it is cleared.
func FuzzTrackerOrder(f *testing.F) {
	var all []*esl.Event
	for _, n := range fuzzRecordings {
		all = append(all, recordedEvents(f, n)...)
	}
	for _, n := range []string{"fs-att-xfer", "fs-att-xfer-cancel"} {
		evs := builtEvents(f, n)
		all = append(all, evs[len(evs)-60:]...) // att_xfer and after (testdata, built)
	}
	f.Add([]byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9})
	f.Add([]byte("the quick brown fox jumps over the lazy dog"))
	seq := make([]byte, 255)
	for i := range seq {
		seq[i] = byte(i)
	}
	f.Add(seq)
	f.Fuzz(func(t *testing.T, pick []byte) {
		tr := freeswitch.NewTracker(freeswitch.TrackerConfig{})
		cleared := map[string]bool{}
		base := 0
		for i, b := range pick {
			if i%2 == 0 {
				base = int(b) * 7
			}
			e := all[(base+int(b))%len(all)]
			for _, s := range tr.Feed(e) {
				if s.PBXCallID == "" {
					continue
				}
				if cleared[s.PBXCallID] {
					t.Fatalf("%s for %s after its call_cleared", s.Type, s.PBXCallID)
				}
				if s.Type == callbridge.SwitchCallCleared {
					cleared[s.PBXCallID] = true
				}
			}
		}
	})
}

// FuzzTrackerEvent feeds one arbitrary plain event after the start of a real call: it never
// panics.
func FuzzTrackerEvent(f *testing.F) {
	evs := recordedEvents(f, "fs-blind-transfer")
	for _, e := range evs[:60] {
		f.Add(e.EncodePlain())
	}
	f.Add("Event-Name: CHANNEL_BRIDGE\nUnique-ID: x\nOther-Leg-Unique-ID: x\n\n")
	f.Fuzz(func(t *testing.T, body string) {
		e, err := esl.ParsePlain(body)
		if err != nil {
			return
		}
		tr := freeswitch.NewTracker(freeswitch.TrackerConfig{})
		for _, x := range evs[:40] {
			tr.Feed(x)
		}
		tr.Feed(e)
		for _, x := range evs[40:] {
			tr.Feed(x)
		}
	})
}

// FuzzListings: the resync parsers and Snapshot take any listing without panicking.
func FuzzListings(f *testing.F) {
	for _, r := range records(f, "fs-resync") {
		if r.Dir == capture.DirIn {
			if fr, err := esl.ParseFrame(r.Raw); err == nil && fr.ContentType() == esl.TypeAPIResponse {
				f.Add(fr.Body)
			}
		}
	}
	f.Add("a|b\n1|2|3\n|\n+OK\n")
	f.Fuzz(func(t *testing.T, body string) {
		rows, _ := freeswitch.ParseJSONRows(body)
		table := freeswitch.ParseTable(body)
		tr := freeswitch.NewTracker(freeswitch.TrackerConfig{})
		snap := tr.Snapshot(append(rows, table...), rows, []freeswitch.QueueListing{{Queue: "q", Agents: table, Members: table}}, nil)
		if snap.Snapshot == nil {
			t.Fatal("no snapshot")
		}
	})
}
