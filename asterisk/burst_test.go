package asterisk_test

import (
	"maps"
	"math/rand/v2"
	"strconv"
	"testing"

	"github.com/callbridge/callbridge"
	"github.com/callbridge/callbridge/asterisk"
	"github.com/callbridge/callbridge/asterisk/ami"
	"github.com/callbridge/callbridge/capture"
)

// burstShuffled returns the recording's frames with the order inside every group of frames
// read in the same millisecond (same t_ms) changed: README "Run-to-run variation" says the
// interleaving inside such bursts differed between otherwise identical runs. The events of
// one channel (same Uniqueid) keep their order, as Asterisk raises them from the thread that
// runs the channel; what changes is how the channels' streams interleave.
func burstShuffled(t *testing.T, name string, rng *rand.Rand) []ami.Message {
	t.Helper()
	recs, err := capture.ReadFile(recording(t, name))
	if err != nil {
		t.Fatal(err)
	}
	var out []ami.Message
	var group []ami.Message
	flush := func() {
		// Split the burst into per-channel streams, then merge them in random order.
		var keys []string
		streams := map[string][]ami.Message{}
		for i, m := range group {
			k := m.Get("Uniqueid")
			if k == "" {
				k = "#" + strconv.Itoa(i) // channel-less events interleave freely
			}
			if _, ok := streams[k]; !ok {
				keys = append(keys, k)
			}
			streams[k] = append(streams[k], m)
		}
		for len(keys) > 0 {
			i := rng.IntN(len(keys))
			k := keys[i]
			out = append(out, streams[k][0])
			streams[k] = streams[k][1:]
			if len(streams[k]) == 0 {
				keys = append(keys[:i], keys[i+1:]...)
			}
		}
		group = group[:0]
	}
	last := int64(-1)
	for i, r := range recs {
		if r.Dir != capture.DirIn || i == 0 {
			continue
		}
		if len(group) > 0 && r.TMs != last {
			flush()
		}
		last = r.TMs
		group = append(group, ami.ParseMessage(r.Raw))
	}
	flush()
	return out
}

// Whatever the order inside same-millisecond bursts, every call that starts clears, nothing
// is left in the tracker, and the story has the same events (type, device, transfer parties,
// cause) as in the recorded order: 50 shuffles of every recording.
func TestTrackerBurstOrder(t *testing.T) {
	key := func(evs []callbridge.SwitchEvent) map[string]int {
		m := map[string]int{}
		for _, e := range evs {
			if e.Type == callbridge.SwitchDataUpdated || e.Type == callbridge.SwitchDeviceState {
				continue // the number of intermediate data and device updates may differ
			}
			m[string(e.Type)+" "+string(e.Device)+" "+string(e.TransferringDevice)+">"+
				string(e.TransferredTo)+" "+string(e.Cause)+" "+string(e.Queue)]++
		}
		return m
	}
	for _, tc := range storyCases {
		t.Run(tc.name, func(t *testing.T) {
			_, recorded := feed(t, tc.name)
			want := key(recorded)
			for seed := range uint64(50) {
				rng := rand.New(rand.NewPCG(seed, 7))
				tr := asterisk.NewTracker(asterisk.TrackerConfig{})
				var evs []callbridge.SwitchEvent
				for _, m := range burstShuffled(t, tc.name, rng) {
					evs = append(evs, tr.Feed(m)...)
				}
				checkInvariants(t, evs)
				if open := tr.OpenCalls(); len(open) != tc.open {
					t.Errorf("open calls %v", open)
				}
				if n := tr.NumChannels(); n != 0 {
					t.Errorf("%d channels left", n)
				}
				if got := key(evs); !maps.Equal(got, want) {
					t.Errorf("events differ from the recorded order:\n got %v\nwant %v", got, want)
				}
				if t.Failed() {
					t.Fatalf("seed %d:\n%s", seed, story(evs))
				}
			}
		})
	}
}
