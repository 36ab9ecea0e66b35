package sim_test

import (
	"math/rand/v2"
	"reflect"
	"regexp"
	"slices"
	"testing"
	"time"

	"github.com/callbridge/callbridge"
	"github.com/callbridge/callbridge/sim"
)

func TestReadyAgentIsOfferedACallWithin30s(t *testing.T) {
	aniRe := regexp.MustCompile(`^\+1555[0-9]{7}$`)
	for seed := uint64(1); seed <= 40; seed++ {
		h := newHarness(t, sim.Config{
			CallInterval: sim.DemoCallInterval, MembersLoggedIn: true,
			Rand: rand.New(rand.NewPCG(seed, seed*31)),
		})
		h.mustExec(callbridge.SwitchCommand{Type: callbridge.SwitchSetMemberState, Device: "1002",
			Action: callbridge.MemberPause, Paused: false})
		ev := h.until(30*time.Second, isEvent(callbridge.SwitchAlerting, "", "1002"))
		if ev.Queue != "acme-support" || ev.ANI == "" || ev.DNIS != "18005550100" {
			t.Fatalf("seed %d: offer %+v", seed, ev)
		}
		var story []callbridge.SwitchEvent
		for _, e := range h.log {
			if e.PBXCallID == ev.PBXCallID {
				story = append(story, e)
			}
		}
		wantTypes(t, story, "call_started "+string(story[0].Device), "data_updated", "queued", "alerting 1002")
		st := story[0]
		if st.Direction != callbridge.DirInbound || !st.External || !aniRe.MatchString(st.ANI) || st.ANIName == "" || st.Tenant != "acme" {
			t.Fatalf("seed %d: call_started %+v", seed, st)
		}
		d := story[1].Data
		if !slices.Contains([]string{"en", "es", "fr"}, d["IVR_LANG"]) ||
			!regexp.MustCompile(`^[0-9]{5}$`).MatchString(d["IVR_ACCOUNT"]) ||
			!slices.Contains([]string{"billing", "sales", "support"}, d["IVR_REASON"]) || len(d) != 3 {
			t.Fatalf("seed %d: IVR data %v", seed, d)
		}
		if story[1].Time.Sub(st.Time) != sim.DefaultIVRTime || story[2].Queue != "acme-support" {
			t.Fatalf("seed %d: IVR took %s, queue %q", seed, story[1].Time.Sub(st.Time), story[2].Queue)
		}
		h.checkSnapshot()
	}
}

func TestAutomaticCallsComeForEveryTenantAroundTheInterval(t *testing.T) {
	h := newHarness(t, sim.Config{CallInterval: 10 * time.Second})
	h.advance(time.Hour)
	starts := map[callbridge.TenantID][]time.Time{}
	for _, ev := range h.log {
		if ev.Type == callbridge.SwitchCallStarted {
			starts[ev.Tenant] = append(starts[ev.Tenant], ev.Time)
		}
	}
	for _, tn := range []callbridge.TenantID{"acme", "globex"} {
		ts := starts[tn]
		if len(ts) < 300 || len(ts) > 420 {
			t.Fatalf("%s: %d calls in an hour, want about 360", tn, len(ts))
		}
		for i := 1; i < len(ts); i++ {
			if gap := ts[i].Sub(ts[i-1]); gap < 5*time.Second || gap > 15*time.Second {
				t.Fatalf("%s: gap %s outside 5-15 s", tn, gap)
			}
		}
	}
	// Nobody is logged on: every call is abandoned after the caller's patience.
	st := h.p.Stats()
	if st.CallsAbandoned == 0 || st.CallsAnswered != 0 || st.Offers != 0 {
		t.Fatalf("stats %+v", st)
	}
	h.checkSnapshot()
}

func TestInboundCallAbandonsAfterCallerPatience(t *testing.T) {
	h := newHarness(t, sim.Config{})
	id := h.inject("globex", "+15551230003", "18005550200", map[string]string{"IVR_REASON": "sales"})
	evs := h.advance(0)
	wantTypes(t, evs, "call_started +15551230003")
	if evs[0].Tenant != "globex" || evs[0].DNIS != "18005550200" || evs[0].Leg != id+"-+15551230003" {
		t.Fatalf("call_started %+v", evs[0])
	}
	evs = h.advance(sim.DefaultIVRTime)
	wantTypes(t, evs, "data_updated", "queued")
	if evs[1].Queue != "globex-sales" || evs[0].Data["IVR_REASON"] != "sales" {
		t.Fatalf("events %+v", evs)
	}
	queuedAt := h.now
	ev := h.until(2*time.Minute, isEvent(callbridge.SwitchCallCleared, id, ""))
	if got := ev.Time.Sub(queuedAt); got != sim.DefaultCallerPatience {
		t.Fatalf("abandoned after %s, want %s", got, sim.DefaultCallerPatience)
	}
	wantTypes(t, h.log[len(h.log)-2:], "dequeued (call_abandoned)", "call_cleared (call_abandoned)")
	if st := h.p.Stats(); st.CallsAbandoned != 1 || st.ActiveCalls != 0 {
		t.Fatalf("stats %+v", st)
	}
}

func TestRingNoAnswerGoesToTheNextMember(t *testing.T) {
	h := newHarness(t, sim.Config{})
	h.ready("1001", "acme-support")
	h.ready("1002", "acme-support")
	id := h.inject("acme", "", "", nil)
	first := h.until(10*time.Second, isEvent(callbridge.SwitchAlerting, id, ""))
	if first.Device != "1001" || first.Queue != "acme-support" {
		t.Fatalf("first offer %+v, want 1001 (idle longest, first in the directory)", first)
	}
	evs := h.advance(sim.DefaultRingTimeout)
	wantTypes(t, evs, "failed 1001 (no_answer)", "alerting 1002")
	if evs[0].Queue != "acme-support" || evs[1].Time != first.Time.Add(sim.DefaultRingTimeout) {
		t.Fatalf("events %+v", evs)
	}
	// Every member was tried: the next round starts again with 1001.
	wantTypes(t, h.advance(sim.DefaultRingTimeout), "failed 1002 (no_answer)", "alerting 1001")
	h.mustExec(callbridge.SwitchCommand{Type: callbridge.SwitchClearConnection, PBXCallID: id, Device: "1001"})
	wantTypes(t, h.log[len(h.log)-2:], "failed 1001 (call_rejected)", "alerting 1002")
	wantTypes(t, h.mustExec(callbridge.SwitchCommand{Type: callbridge.SwitchAnswerCall, PBXCallID: id, Device: "1002"}),
		"dequeued", "connected 1002")
	h.checkSnapshot()
}

func TestLongestIdleMemberGetsTheCall(t *testing.T) {
	h := newHarness(t, sim.Config{})
	h.ready("1001", "acme-support")
	h.ready("1002", "acme-support")
	a := h.answered("1001")
	h.advance(5 * time.Second)
	h.mustExec(callbridge.SwitchCommand{Type: callbridge.SwitchClearConnection, PBXCallID: a, Device: "1001"})
	b := h.inject("acme", "", "", nil)
	if ev := h.until(time.Minute, isEvent(callbridge.SwitchAlerting, b, "")); ev.Device != "1002" {
		t.Fatalf("offered to %s, want 1002 (1001 just finished a call)", ev.Device)
	}
}

func TestPausedAndBusyMembersAreNotOffered(t *testing.T) {
	h := newHarness(t, sim.Config{})
	h.ready("1001", "acme-support")
	h.ready("1002", "acme-support")
	h.mustExec(callbridge.SwitchCommand{Type: callbridge.SwitchSetMemberState, Device: "1001",
		Action: callbridge.MemberPause, Queues: []callbridge.QueueName{"acme-support"}, Paused: true, Reason: "lunch"})
	a := h.answered("1002")
	b := h.inject("acme", "", "", nil)
	h.until(time.Minute, isEvent(callbridge.SwitchQueued, b, ""))
	if evs := h.advance(30 * time.Second); slices.ContainsFunc(evs, isEvent(callbridge.SwitchAlerting, b, "")) {
		t.Fatalf("call offered while every member is paused or busy: %q", types(evs))
	}
	// The agent on the call hangs up: the waiting call is offered to them at once.
	evs := h.mustExec(callbridge.SwitchCommand{Type: callbridge.SwitchClearConnection, PBXCallID: a, Device: "1002"})
	wantTypes(t, evs, "connection_cleared 1002 (normal_clearing)", "call_cleared (normal_clearing)", "alerting 1002")
	if evs[2].PBXCallID != b {
		t.Fatalf("offered %s, want %s", evs[2].PBXCallID, b)
	}
}

func TestAnsweredCallTalksThenCallerHangsUp(t *testing.T) {
	h := newHarness(t, sim.Config{})
	h.ready("1001", "acme-support")
	id := h.inject("acme", "+15551230001", "", nil)
	h.until(time.Minute, isEvent(callbridge.SwitchAlerting, id, "1001"))
	evs := h.mustExec(callbridge.SwitchCommand{Type: callbridge.SwitchAnswerCall, PBXCallID: id, Device: "1001"})
	wantTypes(t, evs, "dequeued", "connected 1001")
	if evs[0].Queue != "acme-support" || evs[1].Leg != id+"-1001" {
		t.Fatalf("answer events %+v", evs)
	}
	answeredAt := h.now
	ev := h.until(3*time.Minute, isEvent(callbridge.SwitchConnectionCleared, id, ""))
	if talk := ev.Time.Sub(answeredAt); ev.Device != "+15551230001" || !ev.External ||
		talk < sim.DefaultTalkTimeMin || talk > sim.DefaultTalkTimeMax {
		t.Fatalf("caller hung up %+v after %s", ev, talk)
	}
	wantTypes(t, h.log[len(h.log)-1:], "call_cleared (normal_clearing)")
	if st := h.p.Stats(); st.CallsAnswered != 1 || st.ActiveCalls != 0 || st.CallsCleared != 1 {
		t.Fatalf("stats %+v", st)
	}
}

func TestAgentClearConnectionEndsATwoPartyCall(t *testing.T) {
	h := newHarness(t, sim.Config{})
	h.ready("1001", "acme-support")
	id := h.answered("1001")
	wantTypes(t, h.mustExec(callbridge.SwitchCommand{Type: callbridge.SwitchClearConnection, PBXCallID: id, Device: "1001"}),
		"connection_cleared 1001 (normal_clearing)", "call_cleared (normal_clearing)")
	if !h.p.NextDeadline().IsZero() {
		t.Fatalf("a timer is left: %s", h.p.NextDeadline())
	}
	h.checkSnapshot()
}

func TestClearCall(t *testing.T) {
	h := newHarness(t, sim.Config{})
	h.ready("1001", "acme-support")
	id := h.answered("1001")
	wantTypes(t, h.mustExec(callbridge.SwitchCommand{Type: callbridge.SwitchClearCall, PBXCallID: id}),
		"call_cleared (normal_clearing)")
	queued := h.inject("acme", "", "", nil)
	h.until(time.Minute, isEvent(callbridge.SwitchAlerting, queued, "1001"))
	wantTypes(t, h.mustExec(callbridge.SwitchCommand{Type: callbridge.SwitchClearCall, PBXCallID: queued}),
		"dequeued (call_abandoned)", "call_cleared (normal_clearing)")
	h.checkSnapshot()
}

func TestHoldAndRetrieve(t *testing.T) {
	h := newHarness(t, sim.Config{})
	h.ready("1002", "acme-support")
	id := h.answered("1002")
	wantTypes(t, h.mustExec(callbridge.SwitchCommand{Type: callbridge.SwitchHoldCall, PBXCallID: id, Device: "1002"}), "held 1002")
	h.checkSnapshot()
	wantTypes(t, h.mustExec(callbridge.SwitchCommand{Type: callbridge.SwitchRetrieveCall, PBXCallID: id, Device: "1002"}), "retrieved 1002")
	h.checkSnapshot()
}

func TestSingleStepTransferKeepsThePBXCallID(t *testing.T) {
	cases := []struct {
		name, to string
		want     []string
		then     func(h *harness, id string)
	}{
		{"to an agent", "1002",
			[]string{"transferred", "connection_cleared 1001 (transferred)", "alerting 1002"},
			func(h *harness, id string) {
				wantTypes(t, h.mustExec(callbridge.SwitchCommand{Type: callbridge.SwitchAnswerCall, PBXCallID: id, Device: "1002"}), "connected 1002")
			}},
		{"to an agent by user name", "bob",
			[]string{"transferred", "connection_cleared 1001 (transferred)", "alerting 1002"},
			func(h *harness, id string) {
				evs := h.advance(sim.DefaultRingTimeout)
				wantTypes(t, evs, "failed 1002 (no_answer)", "call_cleared (no_answer)")
			}},
		{"to a queue", "acme-sales",
			[]string{"transferred", "connection_cleared 1001 (transferred)", "queued", "alerting 1001"},
			func(h *harness, id string) {
				if ev := h.log[len(h.log)-1]; ev.Queue != "acme-sales" {
					t.Fatalf("offer %+v", ev)
				}
			}},
		{"to an outside number", "+15557654321",
			[]string{"transferred", "connection_cleared 1001 (transferred)", "alerting +15557654321"},
			func(h *harness, id string) {
				ev := h.until(5*time.Second, isEvent(callbridge.SwitchConnected, id, "+15557654321"))
				if !ev.External {
					t.Fatalf("connected %+v", ev)
				}
			}},
		{"to a busy number", "15559990486",
			[]string{"transferred", "connection_cleared 1001 (transferred)", "failed 15559990486 (busy)", "call_cleared (busy)"},
			nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, sim.Config{})
			h.ready("1001", "acme-support", "acme-sales")
			id := h.answered("1001")
			evs := h.mustExec(callbridge.SwitchCommand{Type: callbridge.SwitchSingleStepTransfer, PBXCallID: id, Device: "1001", To: tc.to})
			wantTypes(t, evs, tc.want...)
			for _, ev := range evs {
				if ev.PBXCallID != id {
					t.Fatalf("event %s on %s, want the same call %s", ev.Type, ev.PBXCallID, id)
				}
			}
			if evs[0].TransferringDevice != "1001" || evs[0].TransferredTo == "" {
				t.Fatalf("transferred %+v", evs[0])
			}
			if tc.then != nil {
				tc.then(h, id)
			}
			h.checkSnapshot()
		})
	}
}

// consult sets up 1001 talking to a caller on id and consulting 1002 on the returned call.
func consult(t *testing.T, h *harness, answer bool) (id, k string) {
	t.Helper()
	h.ready("1001", "acme-support")
	id = h.answered("1001")
	evs := h.mustExec(callbridge.SwitchCommand{Type: callbridge.SwitchConsultationCall, PBXCallID: id, Device: "1001",
		To: "1002", Data: map[string]string{"note": "VIP"}})
	wantTypes(t, evs, "held 1001", "call_started 1001", "connected 1001", "alerting 1002")
	k = evs[1].PBXCallID
	if k == id || evs[0].PBXCallID != id || evs[1].ConsultOf != id || evs[3].PBXCallID != k {
		t.Fatalf("consultation events %+v", evs)
	}
	if d := evs[1].Data; d["note"] != "VIP" || d["IVR_ACCOUNT"] == "" {
		t.Fatalf("consultation data %v, want the call's data plus the note", d)
	}
	if answer {
		h.mustExec(callbridge.SwitchCommand{Type: callbridge.SwitchAnswerCall, PBXCallID: k, Device: "1002"})
	}
	return id, k
}

func TestConsultationThenTransfer(t *testing.T) {
	h := newHarness(t, sim.Config{})
	id, k := consult(t, h, true)
	h.checkSnapshot()
	evs := h.mustExec(callbridge.SwitchCommand{Type: callbridge.SwitchTransferCall, PBXCallID: id, ConsultPBXCallID: k, Device: "1001"})
	wantTypes(t, evs, "transferred", "connection_cleared 1001 (transferred)", "call_cleared (transferred)")
	if tr := evs[0]; tr.PBXCallID != id || tr.ConsultPBXCallID != k || tr.TransferringDevice != "1001" || tr.TransferredTo != "1002" {
		t.Fatalf("transferred %+v", tr)
	}
	if evs[1].PBXCallID != id || evs[2].PBXCallID != k {
		t.Fatalf("events on the wrong calls: %+v", evs)
	}
	snap := h.p.Snapshot(h.now).Snapshot
	if len(snap.Calls) != 1 || snap.Calls[0].PBXCallID != id || len(snap.Calls[0].Parties) != 2 ||
		snap.Calls[0].Parties[1].Device != "1002" || snap.Calls[0].Parties[1].State != callbridge.ConnConnected {
		t.Fatalf("after the transfer: %+v", snap.Calls)
	}
	h.checkSnapshot()
	h.until(3*time.Minute, isEvent(callbridge.SwitchCallCleared, id, ""))
}

func TestTransferWhileTheTargetRings(t *testing.T) {
	h := newHarness(t, sim.Config{})
	id, k := consult(t, h, false)
	wantTypes(t, h.mustExec(callbridge.SwitchCommand{Type: callbridge.SwitchTransferCall, PBXCallID: id, ConsultPBXCallID: k, Device: "1001"}),
		"transferred", "connection_cleared 1001 (transferred)", "call_cleared (transferred)")
	wantTypes(t, h.mustExec(callbridge.SwitchCommand{Type: callbridge.SwitchAnswerCall, PBXCallID: id, Device: "1002"}), "connected 1002")
	h.checkSnapshot()
}

func TestConsultationThenConference(t *testing.T) {
	h := newHarness(t, sim.Config{})
	id, k := consult(t, h, false)
	_, err := h.exec(callbridge.SwitchCommand{Type: callbridge.SwitchConferenceCall, PBXCallID: id, ConsultPBXCallID: k, Device: "1001"})
	wantCode(t, err, callbridge.EConflict) // the target still rings
	h.mustExec(callbridge.SwitchCommand{Type: callbridge.SwitchAnswerCall, PBXCallID: k, Device: "1002"})
	evs := h.mustExec(callbridge.SwitchCommand{Type: callbridge.SwitchConferenceCall, PBXCallID: id, ConsultPBXCallID: k, Device: "1001"})
	wantTypes(t, evs, "conferenced 1001", "call_cleared (conferenced)")
	if c := evs[0]; c.PBXCallID != id || c.ConsultPBXCallID != k || c.TransferredTo != "1002" || evs[1].PBXCallID != k {
		t.Fatalf("conference events %+v", evs)
	}
	snap := h.p.Snapshot(h.now).Snapshot
	if len(snap.Calls) != 1 || len(snap.Calls[0].Parties) != 3 {
		t.Fatalf("want one call with three parties: %+v", snap.Calls)
	}
	for _, pa := range snap.Calls[0].Parties {
		if pa.State != callbridge.ConnConnected {
			t.Fatalf("party %+v is not connected", pa)
		}
	}
	h.checkSnapshot()
	// The first agent leaves; the caller and 1002 go on.
	wantTypes(t, h.mustExec(callbridge.SwitchCommand{Type: callbridge.SwitchClearConnection, PBXCallID: id, Device: "1001"}),
		"connection_cleared 1001 (normal_clearing)")
	h.until(3*time.Minute, isEvent(callbridge.SwitchCallCleared, id, ""))
}

func TestConsultationEndsWithoutAnswer(t *testing.T) {
	h := newHarness(t, sim.Config{})
	id, k := consult(t, h, false)
	evs := h.advance(sim.DefaultRingTimeout)
	wantTypes(t, evs, "failed 1002 (no_answer)", "call_cleared (no_answer)")
	if evs[1].PBXCallID != k {
		t.Fatalf("cleared %s, want the consultation %s", evs[1].PBXCallID, k)
	}
	wantTypes(t, h.mustExec(callbridge.SwitchCommand{Type: callbridge.SwitchRetrieveCall, PBXCallID: id, Device: "1001"}), "retrieved 1001")
}

func TestMakeCallAgentFirst(t *testing.T) {
	h := newHarness(t, sim.Config{})
	evs := h.mustExec(callbridge.SwitchCommand{Type: callbridge.SwitchMakeCall, Device: "1003", To: "15557654321",
		CorrelationID: "c2c-0001", Data: map[string]string{"crm_id": "42"}})
	wantTypes(t, evs, "call_started 1003", "alerting 1003")
	st := evs[0]
	id := st.PBXCallID
	if st.Direction != callbridge.DirOutbound || st.CorrelationID != "c2c-0001" || st.DNIS != "15557654321" ||
		st.Data["crm_id"] != "42" || st.Leg != id+"-1003" || evs[1].Leg != st.Leg {
		t.Fatalf("call_started %+v", st)
	}
	evs = h.advance(sim.DefaultAutoAnswerAgentLeg)
	wantTypes(t, evs, "connected 1003", "alerting 15557654321")
	if !evs[1].External {
		t.Fatalf("customer leg %+v", evs[1])
	}
	ev := h.until(5*time.Second, isEvent(callbridge.SwitchConnected, id, "15557654321"))
	if d := ev.Time.Sub(evs[1].Time); d < sim.DefaultCustomerAnswerMin || d > sim.DefaultCustomerAnswerMax {
		t.Fatalf("customer answered after %s", d)
	}
	h.until(3*time.Minute, isEvent(callbridge.SwitchCallCleared, id, ""))
}

func TestMakeCallToABusyNumber(t *testing.T) {
	h := newHarness(t, sim.Config{})
	evs := h.mustExec(callbridge.SwitchCommand{Type: callbridge.SwitchMakeCall, Device: "1003", To: "15559990486", CorrelationID: "c2c-0002"})
	wantTypes(t, evs, "call_started 1003", "alerting 1003")
	wantTypes(t, h.advance(time.Second), "connected 1003", "failed 15559990486 (busy)", "call_cleared (busy)")
	h.checkSnapshot()
}

func TestMakeCallToAnExtension(t *testing.T) {
	h := newHarness(t, sim.Config{})
	evs := h.mustExec(callbridge.SwitchCommand{Type: callbridge.SwitchMakeCall, Device: "1003", To: "1004"})
	if evs[0].Direction != callbridge.DirInternal {
		t.Fatalf("direction %s", evs[0].Direction)
	}
	wantTypes(t, h.advance(time.Second), "connected 1003", "alerting 1004")
	wantTypes(t, h.mustPress("1004", sim.ButtonAnswer), "connected 1004")
	wantTypes(t, h.mustPress("1004", sim.ButtonHangup), "connection_cleared 1004 (normal_clearing)", "call_cleared (normal_clearing)")
}

func TestTelsetButtons(t *testing.T) {
	h := newHarness(t, sim.Config{})
	h.ready("1001", "acme-support", "acme-sales")
	evs := h.mustPress("1001", sim.ButtonPause)
	wantTypes(t, evs, "member_state 1001", "member_state 1001")
	for _, ev := range evs {
		if !ev.LoggedOn || !ev.Paused || ev.Reason != sim.TelsetPauseReason {
			t.Fatalf("pause %+v", ev)
		}
	}
	if evs[0].Queue == evs[1].Queue {
		t.Fatalf("one member_state per queue, got %s twice", evs[0].Queue)
	}
	evs = h.mustPress("1001", sim.ButtonUnpause)
	if len(evs) != 2 || evs[0].Paused || evs[0].Reason != "" {
		t.Fatalf("unpause %+v", evs)
	}
	id := h.inject("acme", "", "", nil)
	h.until(time.Minute, isEvent(callbridge.SwitchAlerting, id, "1001"))
	wantTypes(t, h.mustPress("1001", sim.ButtonAnswer), "dequeued", "connected 1001")
	wantTypes(t, h.mustPress("1001", sim.ButtonHold), "held 1001")
	_, err := h.press("1001", sim.ButtonHold)
	wantCode(t, err, callbridge.EConflict)
	wantTypes(t, h.mustPress("1001", sim.ButtonRetrieve), "retrieved 1001")
	wantTypes(t, h.mustPress("1001", sim.ButtonHangup), "connection_cleared 1001 (normal_clearing)", "call_cleared (normal_clearing)")

	_, err = h.press("1001", sim.ButtonHangup)
	wantCode(t, err, callbridge.EConflict)
	_, err = h.press("1004", sim.ButtonPause) // not a member of any queue
	wantCode(t, err, callbridge.EConflict)
	_, err = h.press("1001", "flash")
	wantCode(t, err, callbridge.EInvalid)
	_, err = h.press("9999", sim.ButtonHangup)
	wantCode(t, err, callbridge.ENotFound)
	h.checkSnapshot()
}

func TestTelsetHangupWhileConsultingCompletesTheTransfer(t *testing.T) {
	h := newHarness(t, sim.Config{})
	id, k := consult(t, h, true)
	evs := h.mustPress("1001", sim.ButtonHangup)
	wantTypes(t, evs, "transferred", "connection_cleared 1001 (transferred)", "call_cleared (transferred)")
	if evs[0].PBXCallID != id || evs[0].ConsultPBXCallID != k {
		t.Fatalf("transferred %+v", evs[0])
	}
	h.checkSnapshot()
}

func TestTelsetRejectGoesToTheNextMember(t *testing.T) {
	h := newHarness(t, sim.Config{})
	h.ready("1001", "acme-support")
	h.ready("1002", "acme-support")
	id := h.inject("acme", "", "", nil)
	h.until(time.Minute, isEvent(callbridge.SwitchAlerting, id, "1001"))
	wantTypes(t, h.mustPress("1001", sim.ButtonHangup), "failed 1001 (call_rejected)", "alerting 1002")
}

func TestMembersLoggedInStartPaused(t *testing.T) {
	h := newHarness(t, sim.Config{MembersLoggedIn: true})
	got := map[string]bool{}
	for _, m := range h.p.Snapshot(h.now).Snapshot.Members {
		if !m.Paused || m.Status != callbridge.DeviceIdle {
			t.Fatalf("member %+v, want paused and idle", m)
		}
		got[string(m.Device)+"@"+string(m.Queue)] = true
	}
	want := map[string]bool{
		"1001@acme-support": true, "1001@acme-sales": true, "1002@acme-support": true, "1003@acme-support": true,
		"1004@acme-support": true, "1004@acme-sales": true, // no queues listed: every queue of the tenant
		"2001@globex-sales": true, "2002@globex-sales": true, "2003@globex-sales": true,
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("members %v, want %v", got, want)
	}
	if h2 := newHarness(t, sim.Config{}); len(h2.p.Snapshot(h2.now).Snapshot.Members) != 0 {
		t.Fatal("agents are members without MembersLoggedIn")
	}
}

func TestSetMemberState(t *testing.T) {
	h := newHarness(t, sim.Config{})
	evs := h.mustExec(callbridge.SwitchCommand{Type: callbridge.SwitchSetMemberState, Device: "1004", Action: callbridge.MemberAdd,
		Queues: []callbridge.QueueName{"acme-support", "acme-sales"}, Paused: true, Reason: "login"})
	wantTypes(t, evs, "member_state 1004", "member_state 1004")
	if !evs[0].LoggedOn || !evs[0].Paused || evs[0].Reason != "login" || evs[0].Queue != "acme-support" || evs[1].Queue != "acme-sales" {
		t.Fatalf("add %+v", evs)
	}
	evs = h.mustExec(callbridge.SwitchCommand{Type: callbridge.SwitchSetMemberState, Device: "1004", Action: callbridge.MemberPause})
	if len(evs) != 2 || evs[0].Paused || !evs[0].LoggedOn {
		t.Fatalf("unpause everywhere %+v", evs)
	}
	evs = h.mustExec(callbridge.SwitchCommand{Type: callbridge.SwitchSetMemberState, Device: "1004", Action: callbridge.MemberRemove,
		Queues: []callbridge.QueueName{"acme-sales"}})
	if len(evs) != 1 || evs[0].LoggedOn || evs[0].Queue != "acme-sales" {
		t.Fatalf("remove %+v", evs)
	}
	h.checkSnapshot()
}

func TestDeterministic(t *testing.T) {
	run := func() []callbridge.SwitchEvent {
		h := newHarness(t, sim.Config{CallInterval: 5 * time.Second, AgentAnswer: 2 * time.Second, Rand: rand.New(rand.NewPCG(3, 4))})
		for _, d := range []callbridge.DeviceID{"1001", "1002", "2001"} {
			h.ready(d, map[byte]callbridge.QueueName{'1': "acme-support", '2': "globex-sales"}[d[0]])
		}
		h.advance(30 * time.Minute)
		return h.log
	}
	a, b := run(), run()
	if len(a) < 1000 || !reflect.DeepEqual(a, b) {
		t.Fatalf("two runs with the same seed differ (%d and %d events)", len(a), len(b))
	}
}

func TestInjectCallRefusals(t *testing.T) {
	h := newHarness(t, sim.Config{})
	for _, tc := range []struct {
		name         string
		tenant       callbridge.TenantID
		ani, dnis    string
		data         map[string]string
		code         string
		wantTenantOK bool
	}{
		{"unknown tenant", "nope", "", "", nil, callbridge.ENotFound, false},
		{"DID of another tenant", "acme", "", "18005550200", nil, callbridge.EInvalid, false},
		{"no tenant, unknown DID", "", "", "18009999999", nil, callbridge.ENotFound, false},
		{"CR in ani", "acme", "+1555\r\n", "", nil, callbridge.EInvalid, false},
		{"dial string in dnis", "acme", "", "1800&PJSIP/x", nil, callbridge.EInvalid, false},
		{"LF in data", "acme", "", "", map[string]string{"k": "a\nb"}, callbridge.EInvalid, false},
	} {
		_, err := h.p.InjectCall(h.now, tc.tenant, tc.ani, tc.dnis, tc.data)
		if callbridge.ErrorCode(err) != tc.code {
			t.Errorf("%s: error %v, want code %s", tc.name, err, tc.code)
		}
	}
	if !h.p.NextDeadline().IsZero() {
		t.Fatal("a refused InjectCall scheduled something")
	}
	// A DID alone names the tenant and the queue: DIDs[1] routes to Queues[1].
	id, err := h.p.InjectCall(h.now, "", "+15550001111", "18005550101", map[string]string{})
	if err != nil {
		t.Fatal(err)
	}
	evs := h.advance(sim.DefaultIVRTime)
	wantTypes(t, evs, "call_started +15550001111", "queued") // empty data: no data_updated
	if evs[0].PBXCallID != id || evs[0].Tenant != "acme" || evs[1].Queue != "acme-sales" {
		t.Fatalf("events %+v", evs)
	}
}

func TestConfigValidate(t *testing.T) {
	if err := (sim.Config{Directory: testDirectory()}).Validate(); err != nil {
		t.Fatalf("test directory: %v", err)
	}
	dir := testDirectory()
	dir.Tenants[1].Users[0].Device = "1001"
	dir.Tenants[1].DIDs = append(dir.Tenants[1].DIDs, "18005550100")
	err := sim.Config{Directory: dir, RingTimeout: -time.Second}.Validate()
	if callbridge.ErrorCode(err) != callbridge.EInvalid {
		t.Fatalf("Validate = %v, want invalid", err)
	}
	for _, s := range []string{"RingTimeout is negative", "device 1001 belongs to", "DID \"18005550100\" belongs to"} {
		if !regexp.MustCompile(regexp.QuoteMeta(s)).MatchString(err.Error()) {
			t.Errorf("Validate error %q does not mention %q", err, s)
		}
	}
	// NewPBX still works: the first owner of the device and the DID wins.
	h := newHarness(t, sim.Config{Directory: dir})
	h.ready("1001", "acme-support")
	h.answered("1001")
}
