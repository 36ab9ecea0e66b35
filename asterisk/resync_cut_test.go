package asterisk_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/callbridge/callbridge"
	"github.com/callbridge/callbridge/asterisk"
	"github.com/callbridge/callbridge/asterisk/ami"
	"github.com/callbridge/callbridge/capture"
)

// A resync at any quiet moment of a recording (no frame for at least 100 ms before it: in
// the IVR, while a phone rings, during talk) followed by the rest of the recording tells the
// same rest of the story as the tracker that saw everything: the snapshot rebuilds
// consultations, Local pairs and queue offers well enough for the events that follow.
// Excluded: moments when a party is on hold other than an Atxfer transferer (whose hold the
// snapshot infers from the consultation): CoreShowChannels does not show holds, so a resync
// during one reports the party connected, and the next Unhold is not a retrieve.
func TestSnapshotAtEveryPoint(t *testing.T) {
	for _, tc := range storyCases {
		if tc.story == nil {
			continue
		}
		t.Run(tc.name, func(t *testing.T) {
			recs, err := capture.ReadFile(recording(t, tc.name))
			if err != nil {
				t.Fatal(err)
			}
			var msgs []ami.Message
			var cuts []int
			last := int64(-1)
			for i, r := range recs {
				if r.Dir != capture.DirIn || i == 0 {
					continue
				}
				if last >= 0 && r.TMs-last >= 100 {
					cuts = append(cuts, len(msgs))
				}
				last = r.TMs
				msgs = append(msgs, ami.ParseMessage(r.Raw))
			}
			full := asterisk.NewTracker(asterisk.TrackerConfig{})
			var ref [][]callbridge.SwitchEvent // events of each frame
			var all []callbridge.SwitchEvent
			for _, m := range msgs {
				evs := full.Feed(m)
				ref = append(ref, evs)
				all = append(all, evs...)
			}
			names := callNames(all)
			tested := 0
			for _, cut := range cuts {
				if heldOutsideConsultation(ref[:cut]) {
					continue
				}
				tested++
				tr := asterisk.NewTracker(asterisk.TrackerConfig{})
				snap := tr.Snapshot(capture.AMIChannelsAt(msgs[:cut]), nil, capture.AMIQueueEntriesAt(msgs[:cut]))
				var got, want []callbridge.SwitchEvent
				for i, m := range msgs[cut:] {
					got = append(got, tr.Feed(m)...)
					want = append(want, ref[cut+i]...)
				}
				// A call in the snapshot is known from it: the reference's call_started of a
				// call that had not shown itself yet at the cut (an inbound call before its
				// tenant is set) is not expected again; nor is the alerting of a party the
				// snapshot lists (a dialled channel exists before its DialBegin).
				inSnap := map[string]bool{}
				listed := map[string]bool{}
				for _, c := range snap.Snapshot.Calls {
					inSnap[c.PBXCallID] = true
					for _, p := range c.Parties {
						listed[c.PBXCallID+" "+string(p.Device)] = true
					}
				}
				want = slices.DeleteFunc(want, func(e callbridge.SwitchEvent) bool {
					switch e.Type {
					case callbridge.SwitchCallStarted:
						return inSnap[e.PBXCallID]
					case callbridge.SwitchAlerting:
						return listed[e.PBXCallID+" "+string(e.Device)]
					}
					return false
				})
				g, w := compactNamed(got, names), compactNamed(want, names)
				if !slices.Equal(g, w) {
					t.Errorf("resync after frame %d (%d calls in snapshot):\n got  %s\n want %s", cut,
						len(snap.Snapshot.Calls), strings.Join(g, "\n       "), strings.Join(w, "\n       "))
					return
				}
				if open := tr.OpenCalls(); len(open) != tc.open {
					t.Errorf("resync after frame %d: open calls %v", cut, open)
					return
				}
			}
			t.Logf("%d quiet moments tested", tested)
			if tested == 0 {
				t.Errorf("no quiet moment to resync at")
			}
		})
	}
}

// heldOutsideConsultation reports whether, after evs, some device is held in a call without
// being the consulting device of a consultation that is still up.
func heldOutsideConsultation(evs [][]callbridge.SwitchEvent) bool {
	held := map[string]bool{}       // call + device
	consulting := map[string]bool{} // consultation call → device + original call
	for _, es := range evs {
		for _, e := range es {
			switch e.Type {
			case callbridge.SwitchHeld:
				held[e.PBXCallID+" "+string(e.Device)] = true
			case callbridge.SwitchRetrieved, callbridge.SwitchConnectionCleared:
				delete(held, e.PBXCallID+" "+string(e.Device))
			case callbridge.SwitchCallStarted:
				if e.ConsultOf != "" {
					consulting[e.PBXCallID] = true
					held[e.ConsultOf+" "+string(e.Device)+" consult "+e.PBXCallID] = true
				}
			case callbridge.SwitchCallCleared:
				delete(consulting, e.PBXCallID)
			}
		}
	}
	for k := range held {
		if i := strings.Index(k, " consult "); i >= 0 {
			delete(held, k[:i])
			if !consulting[k[i+len(" consult "):]] {
				continue
			}
			delete(held, k)
		}
	}
	for k := range held {
		if !strings.Contains(k, " consult ") {
			return true
		}
	}
	return false
}
