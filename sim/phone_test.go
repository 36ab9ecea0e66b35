package sim_test

import (
	"testing"
	"time"

	"github.com/callbridge/callbridge"
	"github.com/callbridge/callbridge/sim"
)

func (h *harness) register(dev callbridge.DeviceID, on bool) ([]callbridge.SwitchEvent, error) {
	h.t.Helper()
	h.advance(0)
	evs, err := h.p.SetRegistered(h.now, dev, on)
	h.record(evs...)
	return evs, err
}

func TestUnregisteredPhone(t *testing.T) {
	h := newHarness(t, sim.Config{})
	h.ready("1001", "acme-support")
	h.ready("1002", "acme-support")
	evs, err := h.register("1001", false)
	if err != nil || len(evs) != 1 || evs[0].Type != callbridge.SwitchDeviceState || evs[0].DeviceStatus != callbridge.DeviceUnavailable || evs[0].Tenant != "acme" {
		t.Fatalf("unregister: %+v, %v", evs, err)
	}
	_, err = h.register("1001", false)
	wantCode(t, err, callbridge.EConflict)
	// The queue skips it (1001 would be first), nobody can call it, it cannot call.
	id := h.inject("acme", "", "", nil)
	h.until(time.Minute, isEvent(callbridge.SwitchAlerting, id, "1002"))
	for _, snapMember := range h.p.Snapshot(h.now).Snapshot.Members {
		if snapMember.Device == "1001" && snapMember.Status != callbridge.DeviceUnavailable {
			t.Fatalf("snapshot status %+v", snapMember)
		}
	}
	_, err = h.exec(callbridge.SwitchCommand{Type: callbridge.SwitchMakeCall, Device: "1003", To: "1001"})
	wantCode(t, err, callbridge.EConflict)
	_, err = h.exec(callbridge.SwitchCommand{Type: callbridge.SwitchMakeCall, Device: "1001", To: "+15550001111"})
	wantCode(t, err, callbridge.EConflict)
	_, err = h.p.Dial(h.now, "1001", "1003")
	wantCode(t, err, callbridge.EConflict)
	// Registered again: idle, and offered calls again.
	evs, err = h.register("1001", true)
	if err != nil || evs[0].DeviceStatus != callbridge.DeviceIdle {
		t.Fatalf("register: %+v, %v", evs, err)
	}
	id = h.inject("acme", "", "", nil)
	h.until(time.Minute, isEvent(callbridge.SwitchAlerting, id, "1001"))
	_, err = h.register("9999", true)
	wantCode(t, err, callbridge.ENotFound)
	h.checkSnapshot()
}

func TestPhoneDial(t *testing.T) {
	h := newHarness(t, sim.Config{})
	h.advance(0)
	evs, err := h.p.Dial(h.now, "1001", "1002")
	h.record(evs...)
	if err != nil {
		t.Fatal(err)
	}
	wantTypes(t, evs, "call_started 1001", "connected 1001", "alerting 1002")
	if evs[0].CorrelationID != "" || evs[0].Direction != callbridge.DirInternal || evs[0].DNIS != "1002" {
		t.Fatalf("call_started %+v", evs[0])
	}
	wantTypes(t, h.mustPress("1002", sim.ButtonAnswer), "connected 1002")
	_, err = h.p.Dial(h.now, "1001", "1003")
	wantCode(t, err, callbridge.EConflict) // in a call
	_, err = h.p.Dial(h.now, "1003", "a,b")
	wantCode(t, err, callbridge.EInvalid)
	_, err = h.p.Dial(h.now, "1003", "1003")
	wantCode(t, err, callbridge.EInvalid)
	h.advance(0)
	evs, err = h.p.Dial(h.now, "1003", "+15550000486")
	h.record(evs...)
	if err != nil {
		t.Fatal(err)
	}
	wantTypes(t, evs, "call_started 1003", "connected 1003", "failed +15550000486 (busy)", "call_cleared (busy)")
	h.checkSnapshot()
}

func TestPhoneTransfers(t *testing.T) {
	t.Run("blind", func(t *testing.T) {
		h := newHarness(t, sim.Config{})
		h.ready("1001", "acme-support")
		id := h.answered("1001")
		h.advance(0)
		evs, err := h.p.PhoneTransfer(h.now, "1001", "1002", false)
		h.record(evs...)
		if err != nil {
			t.Fatal(err)
		}
		wantTypes(t, evs, "transferred", "connection_cleared 1001 (transferred)", "alerting 1002")
		if evs[0].PBXCallID != id || evs[0].TransferringDevice != "1001" || evs[0].TransferredTo != "1002" {
			t.Fatalf("transferred %+v", evs[0])
		}
		h.checkSnapshot()
	})
	t.Run("attended, then conference on the phone", func(t *testing.T) {
		h := newHarness(t, sim.Config{})
		h.ready("1001", "acme-support")
		id := h.answered("1001")
		h.advance(0)
		evs, err := h.p.PhoneTransfer(h.now, "1001", "bob", true)
		h.record(evs...)
		if err != nil {
			t.Fatal(err)
		}
		wantTypes(t, evs, "held 1001", "call_started 1001", "connected 1001", "alerting 1002")
		k := evs[1].PBXCallID
		if evs[1].ConsultOf != id || evs[1].CorrelationID != "" || evs[1].Data["IVR_ACCOUNT"] == "" {
			t.Fatalf("consultation %+v", evs[1])
		}
		_, err = h.press("1001", sim.ButtonConference)
		wantCode(t, err, callbridge.EConflict) // 1002 has not answered
		h.mustPress("1002", sim.ButtonAnswer)
		evs = h.mustPress("1001", sim.ButtonConference)
		wantTypes(t, evs, "conferenced 1001", "call_cleared (conferenced)")
		if evs[0].ConsultPBXCallID != k || evs[0].TransferredTo != "1002" {
			t.Fatalf("conferenced %+v", evs[0])
		}
		h.checkSnapshot()
	})
	t.Run("refusals", func(t *testing.T) {
		h := newHarness(t, sim.Config{})
		h.advance(0)
		_, err := h.p.PhoneTransfer(h.now, "1001", "1002", false)
		wantCode(t, err, callbridge.EConflict)
		_, err = h.p.PhoneTransfer(h.now, "1001", "1002\r\n", true)
		wantCode(t, err, callbridge.EInvalid)
		_, err = h.p.PhoneTransfer(h.now, "0000", "1002", true)
		wantCode(t, err, callbridge.ENotFound)
		h.ready("1001", "acme-support")
		h.answered("1001")
		// The caller cannot be consulted about themself.
		snap := h.p.Snapshot(h.now).Snapshot
		var caller string
		for _, p := range snap.Calls[0].Parties {
			if p.External {
				caller = string(p.Device)
			}
		}
		_, err = h.p.PhoneTransfer(h.now, "1001", caller, true)
		wantCode(t, err, callbridge.EConflict)
		_, err = h.p.PhoneTransfer(h.now, "1001", caller, false)
		wantCode(t, err, callbridge.EConflict)
		h.checkSnapshot()
	})
}
