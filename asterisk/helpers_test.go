package asterisk_test

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/callbridge/callbridge"
	"github.com/callbridge/callbridge/asterisk"
	"github.com/callbridge/callbridge/asterisk/ami"
	"github.com/callbridge/callbridge/capture"
	"github.com/callbridge/callbridge/internal/fixtures"
)

// recording returns the path of a recording in shared/fixtures/asterisk-22.
func recording(t testing.TB, name string) string {
	t.Helper()
	return filepath.Join(fixtures.Dir(t, "asterisk-22"), name+".ami.jsonl")
}

// frames returns the parsed AMI messages the recording client received, after the banner.
func frames(t testing.TB, name string) []ami.Message {
	t.Helper()
	recs, err := capture.ReadFile(recording(t, name))
	if err != nil {
		t.Fatal(err)
	}
	var out []ami.Message
	banner := true
	for _, r := range recs {
		if r.Dir != capture.DirIn {
			continue
		}
		if banner {
			banner = false
			continue
		}
		out = append(out, ami.ParseMessage(r.Raw))
	}
	return out
}

// feed runs every frame of the recording through a new Tracker.
func feed(t testing.TB, name string) (*asterisk.Tracker, []callbridge.SwitchEvent) {
	t.Helper()
	tr := asterisk.NewTracker(asterisk.TrackerConfig{})
	var evs []callbridge.SwitchEvent
	for _, m := range frames(t, name) {
		evs = append(evs, tr.Feed(m)...)
	}
	return tr, evs
}

// story renders events one per line, for failure messages and debugging.
func story(evs []callbridge.SwitchEvent) string {
	var b strings.Builder
	for _, e := range evs {
		b.WriteString(line(e))
		b.WriteByte('\n')
	}
	return b.String()
}

func line(e callbridge.SwitchEvent) string {
	s := fmt.Sprintf("%s call=%s dev=%s", e.Type, e.PBXCallID, e.Device)
	add := func(k, v string) {
		if v != "" {
			s += " " + k + "=" + v
		}
	}
	if e.External {
		s += " ext"
	}
	add("tenant", string(e.Tenant))
	add("dir", string(e.Direction))
	add("ani", e.ANI)
	add("aniname", e.ANIName)
	add("dnis", e.DNIS)
	add("queue", string(e.Queue))
	add("cause", string(e.Cause))
	add("corr", e.CorrelationID)
	add("consultof", e.ConsultOf)
	add("consult", e.ConsultPBXCallID)
	add("xfrom", string(e.TransferringDevice))
	add("xto", string(e.TransferredTo))
	add("leg", e.Leg)
	if e.Type == callbridge.SwitchMemberState {
		s += fmt.Sprintf(" loggedon=%v paused=%v reason=%q", e.LoggedOn, e.Paused, e.Reason)
	}
	add("status", string(e.DeviceStatus))
	if len(e.Data) > 0 {
		s += fmt.Sprintf(" data=%v", e.Data)
	}
	return s
}

// compact renders the call events of evs (not data_updated, member_state, device_state) as
// "<call> <type> <device> k=v…", naming PBXCallIDs A, B, C … in order of appearance, so a
// story shows which events belong to the same conversation.
func compact(evs []callbridge.SwitchEvent) []string {
	return compactNamed(evs, callNames(evs))
}

// callNames names the PBXCallIDs of evs A, B, C … in order of appearance.
func callNames(evs []callbridge.SwitchEvent) map[string]string {
	names := map[string]string{}
	for _, e := range evs {
		for _, id := range []string{e.PBXCallID, e.ConsultOf, e.ConsultPBXCallID} {
			if _, ok := names[id]; id != "" && !ok {
				names[id] = string(rune('A' + len(names)))
			}
		}
	}
	return names
}

func compactNamed(evs []callbridge.SwitchEvent, names map[string]string) []string {
	var out []string
	for _, e := range evs {
		switch e.Type {
		case callbridge.SwitchDataUpdated, callbridge.SwitchMemberState, callbridge.SwitchDeviceState:
			continue
		}
		s := names[e.PBXCallID] + " " + string(e.Type)
		if e.Device != "" {
			s += " " + string(e.Device)
		}
		if e.External {
			s += " ext"
		}
		if e.Type == callbridge.SwitchCallStarted {
			s += " dir=" + string(e.Direction)
		}
		kv := func(k, v string) {
			if v != "" {
				s += " " + k + "=" + v
			}
		}
		kv("queue", string(e.Queue))
		kv("cause", string(e.Cause))
		kv("consult_of", names[e.ConsultOf])
		kv("consult", names[e.ConsultPBXCallID])
		kv("from", string(e.TransferringDevice))
		kv("to", string(e.TransferredTo))
		out = append(out, s)
	}
	return out
}
