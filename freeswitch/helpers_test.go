package freeswitch_test

import (
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/callbridge/callbridge"
	"github.com/callbridge/callbridge/capture"
	"github.com/callbridge/callbridge/freeswitch"
	"github.com/callbridge/callbridge/freeswitch/esl"
	"github.com/callbridge/callbridge/internal/fixtures"
)

// records returns the records of shared/fixtures/freeswitch-1.10/<name>.esl.jsonl.
func records(t testing.TB, name string) []capture.Record {
	t.Helper()
	recs, err := capture.ReadFile(filepath.Join(fixtures.Dir(t, "freeswitch-1.10"), name+".esl.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	return recs
}

// recordedEvents returns the events the recording client received, parsed.
func recordedEvents(t testing.TB, name string) []*esl.Event {
	t.Helper()
	return eventsOf(t, records(t, name))
}

// eventsOf returns the events among recs (what the recording client received), parsed.
func eventsOf(t testing.TB, recs []capture.Record) []*esl.Event {
	t.Helper()
	var out []*esl.Event
	for _, r := range recs {
		if r.Dir != capture.DirIn {
			continue
		}
		f, err := esl.ParseFrame(r.Raw)
		if err != nil {
			t.Fatal(err)
		}
		if !f.IsEvent() {
			continue
		}
		ev, err := f.Event()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, ev)
	}
	return out
}

// feed runs every event of the recording through a new Tracker.
func feed(t testing.TB, name string) (*freeswitch.Tracker, []callbridge.SwitchEvent) {
	t.Helper()
	tr := freeswitch.NewTracker(freeswitch.TrackerConfig{})
	var evs []callbridge.SwitchEvent
	for _, ev := range recordedEvents(t, name) {
		evs = append(evs, tr.Feed(ev)...)
	}
	return tr, evs
}

// compact renders the call events of evs as "<call> <type> <device> k=v…", naming the
// PBXCallIDs A, B, C … in order of appearance; member_state as "member <device> …".
func compact(evs []callbridge.SwitchEvent) []string {
	names := map[string]string{}
	name := func(id string) string {
		if id == "" {
			return ""
		}
		if _, ok := names[id]; !ok {
			names[id] = string(rune('A' + len(names)))
		}
		return names[id]
	}
	var out []string
	for _, e := range evs {
		var s string
		if e.Type == callbridge.SwitchMemberState {
			s = "member " + string(e.Device)
			if e.Queue != "" {
				s += " queue=" + string(e.Queue)
			}
			switch {
			case !e.LoggedOn:
				s += " logged_off"
			case e.Paused:
				s += " paused=" + e.Reason
			default:
				s += " ready"
			}
			out = append(out, s)
			continue
		}
		s = name(e.PBXCallID) + " " + string(e.Type)
		if e.Device != "" {
			s += " " + string(e.Device)
		}
		if e.External {
			s += " ext"
		}
		kv := func(k, v string) {
			if v != "" {
				s += " " + k + "=" + v
			}
		}
		if e.Type == callbridge.SwitchCallStarted {
			kv("dir", string(e.Direction))
			kv("tenant", string(e.Tenant))
			kv("ani", e.ANI)
			kv("dnis", e.DNIS)
		}
		kv("queue", string(e.Queue))
		kv("cause", string(e.Cause))
		kv("consult_of", name(e.ConsultOf))
		kv("consult", name(e.ConsultPBXCallID))
		kv("from", string(e.TransferringDevice))
		kv("to", string(e.TransferredTo))
		if len(e.Data) > 0 {
			keys := make([]string, 0, len(e.Data))
			for k := range e.Data {
				keys = append(keys, k+"="+e.Data[k])
			}
			sort.Strings(keys)
			s += " data=" + strings.Join(keys, ",")
		}
		out = append(out, s)
	}
	return out
}

func story(evs []callbridge.SwitchEvent) string {
	return strings.Join(compact(evs), "\n")
}

// without returns evs without the events of the given types.
func without(evs []callbridge.SwitchEvent, types ...callbridge.SwitchEventType) []callbridge.SwitchEvent {
	var out []callbridge.SwitchEvent
	for _, e := range evs {
		skip := false
		for _, t := range types {
			skip = skip || e.Type == t
		}
		if !skip {
			out = append(out, e)
		}
	}
	return out
}

// expectStory compares the compact story of evs (data_updated left out) with want.
func expectStory(t testing.TB, evs []callbridge.SwitchEvent, want ...string) {
	t.Helper()
	got := compact(without(evs, callbridge.SwitchDataUpdated))
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("story:\n%s\n\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// ev builds a synthetic event from name/value pairs, for situations no recording shows.
func ev(pairs ...string) *esl.Event { return esl.NewEvent("", pairs...) }
