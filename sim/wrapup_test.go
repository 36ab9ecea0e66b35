package sim_test

import (
	"testing"
	"time"

	"github.com/callbridge/callbridge"
	"github.com/callbridge/callbridge/sim"
)

// TestHonourWrapUp: with HonourWrapUp a member who finished a queue call is not offered the
// next waiting call until the queue's wrap-up time is over (as Asterisk's wrapuptime), and
// unpausing the member ends the wrap-up at once. Without it, the next call rings at hang-up.
func TestHonourWrapUp(t *testing.T) {
	wrap := 20
	dir := testDirectory()
	dir.Tenants[0].Queues[0].WrapUpSeconds = &wrap

	t.Run("timer", func(t *testing.T) {
		h := newHarness(t, sim.Config{Directory: dir, HonourWrapUp: true})
		h.ready("1002", "acme-support")
		first := h.answered("1002")
		second := h.inject("acme", "+15551230002", "18005550100", nil)
		h.advance(10 * time.Second) // the second call is queued; 1002 is busy
		h.mustExec(callbridge.SwitchCommand{Type: callbridge.SwitchClearConnection, PBXCallID: first, Device: "1002"})
		for _, ev := range h.advance(19 * time.Second) {
			if ev.Type == callbridge.SwitchAlerting && ev.PBXCallID == second {
				t.Fatalf("second call offered %s after hang-up, during the 20 s wrap-up", ev.Time.Sub(h.now.Add(-19*time.Second)))
			}
		}
		ev := h.until(2*time.Second, isEvent(callbridge.SwitchAlerting, second, "1002"))
		if ev.Time.Before(t0.Add(10*time.Second + 20*time.Second)) {
			t.Errorf("offered at %s, before the wrap-up ended", ev.Time)
		}
	})

	t.Run("unpause ends it", func(t *testing.T) {
		h := newHarness(t, sim.Config{Directory: dir, HonourWrapUp: true})
		h.ready("1002", "acme-support")
		first := h.answered("1002")
		second := h.inject("acme", "+15551230002", "18005550100", nil)
		h.advance(10 * time.Second)
		h.mustExec(callbridge.SwitchCommand{Type: callbridge.SwitchClearConnection, PBXCallID: first, Device: "1002"})
		h.advance(3 * time.Second)
		if offered(h.advance(time.Second), second) {
			t.Fatal("offered during the wrap-up")
		}
		evs := h.mustExec(callbridge.SwitchCommand{Type: callbridge.SwitchSetMemberState, Tenant: "acme", Device: "1002",
			Action: callbridge.MemberPause, Paused: false})
		if !offered(evs, second) {
			t.Fatalf("not offered when the member unpaused: %v", types(evs))
		}
	})

	t.Run("off", func(t *testing.T) {
		h := newHarness(t, sim.Config{Directory: dir})
		h.ready("1002", "acme-support")
		first := h.answered("1002")
		second := h.inject("acme", "+15551230002", "18005550100", nil)
		h.advance(10 * time.Second)
		evs := h.mustExec(callbridge.SwitchCommand{Type: callbridge.SwitchClearConnection, PBXCallID: first, Device: "1002"})
		if !offered(evs, second) {
			t.Fatalf("without HonourWrapUp the next call should ring at hang-up: %v", types(evs))
		}
	})
}

// offered reports whether evs offer call id to device 1002.
func offered(evs []callbridge.SwitchEvent, id string) bool {
	for _, ev := range evs {
		if isEvent(callbridge.SwitchAlerting, id, "1002")(ev) {
			return true
		}
	}
	return false
}
