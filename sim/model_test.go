package sim_test

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/callbridge/callbridge"
	"github.com/callbridge/callbridge/sim"
)

// TestRandomizedRun drives the PBX with thousands of random steps (time, inbound calls,
// commands valid and invalid, telset buttons) and checks the sim's own invariants after every
// event (helpers_test.go: well-formed events, legal connection state changes, no device in two
// calls except a held call plus its consultation, time never goes back), that the snapshot
// always agrees with what the events said, that refused commands change nothing, and that
// once automatic calls stop every call clears.
func TestRandomizedRun(t *testing.T) {
	seen := map[string]int{}
	for seed := uint64(1); seed <= 8; seed++ {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			for k, v := range randomRun(t, seed, 4000) {
				seen[k] += v
			}
		})
	}
	// The run must have exercised every part of the model.
	for _, k := range []string{
		"call_started", "data_updated", "queued", "dequeued", "dequeued call_abandoned", "alerting", "connected",
		"held", "retrieved", "transferred", "transferred consult", "conferenced", "connection_cleared",
		"failed no_answer", "failed call_rejected", "failed busy", "call_cleared", "call_cleared transferred",
		"call_cleared conferenced", "member_state", "ok " + string(callbridge.SwitchMakeCall),
		"ok " + string(callbridge.SwitchSingleStepTransfer), "ok " + string(callbridge.SwitchConsultationCall),
		"ok " + string(callbridge.SwitchTransferCall), "ok " + string(callbridge.SwitchConferenceCall),
		"ok " + string(callbridge.SwitchClearCall), "ok button hangup", "ok button hold", "ok button pause",
		"refused " + callbridge.EInvalid, "refused " + callbridge.ENotFound, "refused " + callbridge.EConflict,
	} {
		if seen[k] == 0 {
			t.Errorf("the randomized runs never produced %q", k)
		}
	}
	if t.Failed() {
		t.Logf("coverage: %v", seen)
	}
}

func randomRun(t *testing.T, seed uint64, steps int) map[string]int {
	r := rand.New(rand.NewPCG(seed, 0x5eed))
	cfg := sim.Config{
		CallInterval: time.Duration(4+r.IntN(12)) * time.Second, MembersLoggedIn: true,
		Rand: rand.New(rand.NewPCG(seed, 1)),
	}
	if seed%2 == 0 {
		cfg.AgentAnswer = 3 * time.Second // robot agents on every other seed
	}
	h := newHarness(t, cfg)
	seen := map[string]int{}
	devices := []callbridge.DeviceID{"1001", "1002", "1003", "1004", "2001", "2002", "2003"}
	targets := []string{"1001", "1002", "1003", "1004", "2001", "bob", "gina", "acme-support", "acme-sales",
		"globex-sales", "+15557654321", "15559990486", "12", "nobody", "bad target", ""}
	tenantOf := func(d callbridge.DeviceID) callbridge.TenantID {
		if d[0] == '2' {
			return "globex"
		}
		return "acme"
	}
	pick := func(n int) int { return r.IntN(n) }

	for i := 0; i < steps; i++ {
		h.advance(0)
		calls := slices.Sorted(func(yield func(string) bool) {
			for id := range h.shadow.calls {
				if !yield(id) {
					return
				}
			}
		})
		var c *shadowCall
		var pa *shadowParty
		if len(calls) > 0 {
			c = h.shadow.calls[calls[pick(len(calls))]]
			if len(c.parties) > 0 {
				pa = c.parties[pick(len(c.parties))]
			}
		}
		dev := devices[pick(len(devices))]
		cmd := callbridge.SwitchCommand{Tenant: tenantOf(dev), Device: dev, To: targets[pick(len(targets))]}
		if c != nil {
			cmd.Tenant, cmd.PBXCallID = c.tenant, c.id
			if pa != nil {
				cmd.Device = pa.dev
			}
		}
		var button sim.Button
		switch n := pick(100); {
		case n < 22:
			h.advance(time.Duration(pick(8000)) * time.Millisecond)
			continue
		case n < 25:
			h.step(time.Minute)
			continue
		case n < 27:
			tn := []callbridge.TenantID{"acme", "globex"}[pick(2)]
			if _, err := h.p.InjectCall(h.now, tn, "", "", nil); err != nil {
				t.Fatalf("InjectCall: %v", err)
			}
			continue
		case n < 37:
			cmd.Type = callbridge.SwitchAnswerCall
			if c != nil {
				for _, p := range c.parties {
					if p.state == callbridge.ConnAlerting && pick(4) > 0 {
						cmd.Device = p.dev
					}
				}
			}
		case n < 44:
			cmd.Type = callbridge.SwitchClearConnection
		case n < 46:
			cmd.Type = callbridge.SwitchClearCall
		case n < 51:
			cmd.Type = callbridge.SwitchHoldCall
		case n < 55:
			cmd.Type = callbridge.SwitchRetrieveCall
		case n < 60:
			cmd.Type = callbridge.SwitchSingleStepTransfer
		case n < 66:
			cmd.Type = callbridge.SwitchConsultationCall
			cmd.Data = map[string]string{"note": fmt.Sprint("step ", i)}
		case n < 72:
			cmd.Type = []callbridge.SwitchCommandType{callbridge.SwitchTransferCall, callbridge.SwitchConferenceCall}[pick(2)]
			for _, id := range calls {
				if k := h.shadow.calls[id]; k.consultOf != "" && len(k.parties) > 0 && pick(2) == 0 {
					cmd.Tenant, cmd.PBXCallID, cmd.ConsultPBXCallID, cmd.Device = k.tenant, k.consultOf, k.id, k.parties[0].dev
				}
			}
		case n < 77:
			cmd = callbridge.SwitchCommand{Type: callbridge.SwitchMakeCall, Tenant: tenantOf(dev), Device: dev,
				To: targets[pick(len(targets))], CorrelationID: fmt.Sprint("c2c-", i)}
		case n < 85:
			qs := map[callbridge.TenantID][]callbridge.QueueName{"acme": {"acme-support", "acme-sales"}, "globex": {"globex-sales"}}[tenantOf(dev)]
			cmd = callbridge.SwitchCommand{Type: callbridge.SwitchSetMemberState, Tenant: tenantOf(dev), Device: dev,
				Action: []callbridge.MemberAction{callbridge.MemberAdd, callbridge.MemberRemove, callbridge.MemberPause, callbridge.MemberPause}[pick(4)],
				Queues: qs[:pick(len(qs)+1)],
				Paused: pick(3) == 0,
				Reason: []string{"", "lunch", "training"}[pick(3)],
			}
		case n < 97:
			button = sim.Buttons[pick(len(sim.Buttons))]
			if pick(3) == 0 {
				button = []sim.Button{sim.ButtonUnpause, sim.ButtonHangup}[pick(2)]
			}
		default: // garbage
			cmd.Type = []callbridge.SwitchCommandType{"bogus", callbridge.SwitchAnswerCall, callbridge.SwitchMakeCall}[pick(3)]
			cmd.Tenant = []callbridge.TenantID{"acme", "globex", "nope", "bad tenant"}[pick(4)]
			cmd.PBXCallID = []string{cmd.PBXCallID, "sim-999999", "sim-1\r\n"}[pick(3)]
		}

		// Refused commands must change nothing; comparing snapshots is the costly part of the
		// run, so it is done on every fourth step.
		var before callbridge.SwitchEvent
		if i%4 == 0 {
			before = h.p.Snapshot(h.now)
		}
		next := h.p.NextDeadline()
		var evs []callbridge.SwitchEvent
		var err error
		what := "ok " + string(cmd.Type)
		if button != "" {
			what = "ok button " + string(button)
			evs, err = h.p.PressButton(h.now, dev, button)
		} else {
			evs, err = h.p.Execute(h.now, cmd)
		}
		if err != nil {
			code := callbridge.ErrorCode(err)
			if code != callbridge.EInvalid && code != callbridge.ENotFound && code != callbridge.EConflict {
				t.Fatalf("step %d: %+v: unexpected error %v", i, cmd, err)
			}
			if len(evs) > 0 || next != h.p.NextDeadline() || (i%4 == 0 && !reflect.DeepEqual(before, h.p.Snapshot(h.now))) {
				t.Fatalf("step %d: refused %+v (%v) but the switch changed", i, cmd, err)
			}
			seen["refused "+code]++
			continue
		}
		seen[what]++
		h.record(evs...)
		if i%20 == 0 {
			h.checkSnapshot()
		}
	}
	h.checkSnapshot()

	// Drain: no more automatic calls; every timer runs out.
	h.p.SetCallInterval(h.now, 0)
	for n := 0; !h.p.NextDeadline().IsZero(); n++ {
		if n > 100_000 {
			t.Fatalf("timers never run out; next %s", h.p.NextDeadline())
		}
		h.step(time.Hour)
	}
	h.checkSnapshot()
	// What is left waits for people: calls between agents, nobody ringing or queued.
	for _, sc := range h.p.Snapshot(h.now).Snapshot.Calls {
		for _, p := range sc.Parties {
			if p.External || (p.State != callbridge.ConnConnected && p.State != callbridge.ConnHeld) {
				t.Fatalf("call %s is stuck with party %+v and no timer", sc.PBXCallID, p)
			}
		}
		if _, err := h.exec(callbridge.SwitchCommand{Type: callbridge.SwitchClearCall, Tenant: sc.Tenant, PBXCallID: sc.PBXCallID}); err != nil {
			t.Fatal(err)
		}
	}
	if len(h.shadow.calls) != 0 || len(h.shadow.ended) != h.shadow.started {
		t.Fatalf("%d calls still in progress; %d started, %d cleared", len(h.shadow.calls), h.shadow.started, len(h.shadow.ended))
	}
	st := h.p.Stats()
	if st.ActiveCalls != 0 || st.CallsStarted != st.CallsCleared || int(st.CallsStarted) != h.shadow.started ||
		st.Events != uint64(len(h.log)-1) {
		t.Fatalf("stats %+v, shadow started %d, %d events", st, h.shadow.started, len(h.log)-1)
	}
	for _, ev := range h.log {
		k := string(ev.Type)
		seen[k]++
		if ev.Cause != "" {
			seen[k+" "+string(ev.Cause)]++
		}
		if ev.ConsultPBXCallID != "" {
			seen[k+" consult"]++
		}
	}
	return seen
}
