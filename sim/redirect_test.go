package sim_test

import (
	"testing"
	"time"

	"github.com/callbridge/callbridge"
	"github.com/callbridge/callbridge/sim"
)

// redirect runs PBX.Redirect at the harness's clock and records its events.
func (h *harness) redirect(id, to string) ([]callbridge.SwitchEvent, error) {
	h.t.Helper()
	h.advance(0)
	evs, err := h.p.Redirect(h.now, id, to)
	h.record(evs...)
	return evs, err
}

// TestRedirect: a call that rings at a member, or waits in its queue, is moved elsewhere the
// way an AMI Redirect or a uuid_transfer of the caller does: the ringing stops (cause
// redirected), the queue lets the call go, the new target rings.
func TestRedirect(t *testing.T) {
	t.Run("a ringing call to another agent", func(t *testing.T) {
		h := newHarness(t, sim.Config{})
		h.ready("1001", "acme-support")
		id := h.inject("acme", "", "", nil)
		h.until(10*time.Second, isEvent(callbridge.SwitchAlerting, id, "1001"))
		evs, err := h.redirect(id, "1003")
		if err != nil {
			t.Fatal(err)
		}
		wantTypes(t, evs, "connection_cleared 1001 (redirected)", "dequeued", "alerting 1003")
		h.mustExec(callbridge.SwitchCommand{Type: callbridge.SwitchAnswerCall, PBXCallID: id, Device: "1003"})
		h.checkSnapshot()
		// Answered: a redirect is refused (that is a transfer).
		_, err = h.redirect(id, "1002")
		wantCode(t, err, callbridge.EConflict)
	})
	t.Run("a queued call to another queue", func(t *testing.T) {
		h := newHarness(t, sim.Config{})
		id := h.inject("acme", "", "", nil)
		h.until(10*time.Second, isEvent(callbridge.SwitchQueued, id, ""))
		evs, err := h.redirect(id, "acme-sales")
		if err != nil {
			t.Fatal(err)
		}
		wantTypes(t, evs, "dequeued", "queued")
		if evs[1].Queue != "acme-sales" {
			t.Fatalf("queued %+v", evs[1])
		}
		h.checkSnapshot()
	})
	t.Run("refusals change nothing", func(t *testing.T) {
		h := newHarness(t, sim.Config{})
		id := h.inject("acme", "", "", nil)
		h.until(10*time.Second, isEvent(callbridge.SwitchQueued, id, ""))
		n := len(h.log)
		for _, tc := range []struct{ id, to, code string }{
			{id, "1003\r\nAction: Hangup", callbridge.EInvalid},
			{id, "no-such-queue", callbridge.ENotFound},
			{"sim-nosuchcall", "1003", callbridge.ENotFound},
		} {
			evs, err := h.redirect(tc.id, tc.to)
			wantCode(t, err, tc.code)
			if len(evs) != 0 || len(h.log) != n {
				t.Fatalf("redirect %q to %q emitted %v", tc.id, tc.to, types(h.log[n:]))
			}
		}
		h.checkSnapshot()
	})
}
