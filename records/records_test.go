package records_test

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/callbridge/callbridge"
	"github.com/callbridge/callbridge/internal/testenv"
)

// TestRecordOfAFullCall drives one inbound call through the simulated switch and the engine on
// a fake clock — IVR, queue, ring, answer, hold, retrieve, hang-up, wrap-up, disposition — and
// checks the call record the consumer builds from the event log, durations included.
func TestRecordOfAFullCall(t *testing.T) {
	w := newWorld(t)
	c := w.consume(nil)
	alice := func(name callbridge.CommandName) callbridge.Command {
		return callbridge.Command{Name: name, Agent: "alice"}
	}

	// 0 s: alice logs on, not ready. 10 s: a call arrives; IVR until 13 s, then it waits.
	w.at(0)
	cmd := alice(callbridge.CmdSetAgentState)
	cmd.State, cmd.Reason = callbridge.AgentNotReady, "break"
	w.do(cmd)
	w.at(10)
	id := w.inject("+15551230001", map[string]string{"IVR_ACCOUNT": "12345", "IVR_REASON": "billing"})
	w.at(13)
	// 20 s: alice goes ready, her phone rings; 24 s: she answers.
	w.at(20)
	cmd = alice(callbridge.CmdSetAgentState)
	cmd.State = callbridge.AgentReady
	w.do(cmd)
	w.at(24)
	cmd = alice(callbridge.CmdAnswerCall)
	cmd.CallID = id
	w.do(cmd)
	// 60 s hold, 75 s retrieve, 100 s she hangs up; wrap-up until 110 s.
	for _, step := range []struct {
		at   int
		name callbridge.CommandName
	}{{60, callbridge.CmdHoldCall}, {75, callbridge.CmdRetrieveCall}, {100, callbridge.CmdClearConnection}} {
		w.at(step.at)
		cmd = alice(step.name)
		cmd.CallID = id
		w.do(cmd)
	}
	// The record exists once the call ended, but is complete only after the wrap-up.
	rec := w.waitRecord(id, "ended", func(r callbridge.CallRecord) bool { return !r.EndedAt.IsZero() })
	if rec.Complete || rec.WrapUpSeconds != 0 {
		t.Fatalf("record complete before wrap-up ended: %+v", rec)
	}
	w.at(105)
	w.at(110)
	rec = w.waitRecord(id, "complete", func(r callbridge.CallRecord) bool { return r.Complete })

	want := callbridge.CallRecord{
		Tenant: "acme", CallID: id, PBXCallID: rec.PBXCallID, Direction: callbridge.DirInbound,
		ANI: "+15551230001", DNIS: "18005550100", Queue: "acme-support",
		Agents:    []callbridge.AgentID{"alice"},
		StartedAt: sec(10), QueuedAt: sec(13), AnsweredAt: sec(24), EndedAt: sec(100),
		WaitSeconds: 7, RingSeconds: 4, TalkSeconds: 36 + 25, HoldSeconds: 15, WrapUpSeconds: 10,
		Result: callbridge.ResultAnswered, Cause: rec.Cause,
		AttachedData: map[string]string{"IVR_ACCOUNT": "12345", "IVR_REASON": "billing"},
		Complete:     true, UpdatedAt: sec(110),
	}
	if rec.PBXCallID == "" || rec.Cause == "" {
		t.Errorf("record lacks the switch id or cause: %+v", rec)
	}
	if !reflect.DeepEqual(rec, want) {
		t.Fatalf("record\n got %+v\nwant %+v", rec, want)
	}

	// 115 s: the disposition, after the call: the record takes it.
	w.at(115)
	cmd = alice(callbridge.CmdSetDisposition)
	cmd.CallID, cmd.Disposition, cmd.Notes = id, "resolved", "billing question; line 2\nsecond line"
	w.do(cmd)
	rec = w.waitRecord(id, "disposed", func(r callbridge.CallRecord) bool { return r.Disposition != "" })
	want.Disposition, want.Notes, want.UpdatedAt = "resolved", "billing question; line 2\nsecond line", sec(115)
	if !reflect.DeepEqual(rec, want) {
		t.Fatalf("record after disposition\n got %+v\nwant %+v", rec, want)
	}

	// Agent state history: every change, each period with its duration.
	states, _, err := w.store.AgentStates(context.Background(), "acme", callbridge.AgentStateFilter{Agent: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	type period struct {
		state  callbridge.AgentState
		reason string
		start  int
		dur    int64 // -1: current
	}
	var got []period
	for i := len(states) - 1; i >= 0; i-- {
		s := states[i]
		d := int64(-1)
		if s.DurationSeconds != nil {
			d = *s.DurationSeconds
		}
		got = append(got, period{s.State, s.Reason, int(s.StartedAt.Sub(t0).Seconds()), d})
	}
	wantStates := []period{
		{callbridge.AgentNotReady, "break", 0, 20},
		{callbridge.AgentReady, "", 20, 0},
		{callbridge.AgentBusy, "", 20, 80},
		{callbridge.AgentWorkingAfterCall, "", 100, 10},
		{callbridge.AgentReady, "", 110, -1},
	}
	if !reflect.DeepEqual(got, wantStates) {
		t.Fatalf("alice's states\n got %+v\nwant %+v", got, wantStates)
	}
	if c.Position("acme") == 0 {
		t.Error("consumer position not advanced")
	}
}

// TestRecordOfAnAbandonedCall: a caller who gives up in the queue gives a complete record
// at once, with the wait and result abandoned, and no agent.
func TestRecordOfAnAbandonedCall(t *testing.T) {
	w := newWorld(t)
	w.consume(nil)
	w.at(0)
	id := w.inject("+15551230002", map[string]string{})
	w.at(3)  // queued; nobody is logged on
	w.at(33) // the caller's patience (30 s) runs out
	rec := w.waitRecord(id, "complete", func(r callbridge.CallRecord) bool { return r.Complete })
	if rec.Result != callbridge.ResultAbandoned || rec.Cause != callbridge.CauseAbandoned || rec.WaitSeconds != 30 ||
		rec.RingSeconds+rec.TalkSeconds+rec.HoldSeconds+rec.WrapUpSeconds != 0 || len(rec.Agents) != 0 ||
		!rec.EndedAt.Equal(sec(33)) || !rec.AnsweredAt.IsZero() {
		t.Fatalf("abandoned call record: %+v", rec)
	}
}

// TestRecordOfATransferredCall: alice answers and blind-transfers to bob, who answers and
// hangs up; the record names both and ends transferred.
func TestRecordOfATransferredCall(t *testing.T) {
	w := newWorld(t)
	w.consume(nil)
	w.at(0)
	for _, a := range []callbridge.AgentID{"alice", "bob"} {
		cmd := callbridge.Command{Name: callbridge.CmdSetAgentState, Agent: a, State: callbridge.AgentNotReady, Reason: "break"}
		w.do(cmd)
	}
	w.do(callbridge.Command{Name: callbridge.CmdSetAgentState, Agent: "alice", State: callbridge.AgentReady})
	id := w.inject("+15551230003", map[string]string{"IVR_ACCOUNT": "777"})
	w.at(3) // queued and ringing alice
	w.at(5)
	w.do(callbridge.Command{Name: callbridge.CmdAnswerCall, Agent: "alice", CallID: id})
	w.at(30)
	w.do(callbridge.Command{Name: callbridge.CmdSingleStepTransfer, Agent: "alice", CallID: id, To: "bob",
		AttachedData: map[string]string{"note": "VIP"}})
	w.at(32)
	w.do(callbridge.Command{Name: callbridge.CmdAnswerCall, Agent: "bob", CallID: id})
	w.at(40) // alice's wrap-up (10 s) ends
	w.at(50)
	w.do(callbridge.Command{Name: callbridge.CmdClearConnection, Agent: "bob", CallID: id})
	w.at(60) // both wrap-ups (10 s) are over
	rec := w.waitRecord(id, "complete", func(r callbridge.CallRecord) bool { return r.Complete })
	if rec.Result != callbridge.ResultTransferred || !reflect.DeepEqual(rec.Agents, []callbridge.AgentID{"alice", "bob"}) ||
		rec.RingSeconds != 2+2 || rec.TalkSeconds != 25+18 || rec.WrapUpSeconds != 20 || rec.AttachedData["note"] != "VIP" {
		t.Fatalf("transferred call record: %+v", rec)
	}
}

// TestRecordsOfClickToDial: agent-first make_call. The agent's leg rings and auto-answers,
// then the customer rings and answers: an outbound answered call. A busy number ends failed.
func TestRecordsOfClickToDial(t *testing.T) {
	w := newWorld(t)
	w.consume(nil)
	w.at(0)
	w.do(callbridge.Command{Name: callbridge.CmdSetAgentState, Agent: "alice", State: callbridge.AgentNotReady, Reason: "break"})
	id := w.do(callbridge.Command{Name: callbridge.CmdMakeCall, Agent: "alice", To: "+15559870001",
		AttachedData: map[string]string{"crm_contact": "C-4711"}}).CallID
	for s := 1; s <= 10; s++ { // the agent leg auto-answers after 1 s, the customer 2-4 s later
		w.at(s)
	}
	w.at(40)
	w.do(callbridge.Command{Name: callbridge.CmdClearConnection, Agent: "alice", CallID: id})
	w.at(60)
	rec := w.waitRecord(id, "complete", func(r callbridge.CallRecord) bool { return r.Complete })
	if rec.Direction != callbridge.DirOutbound || rec.Result != callbridge.ResultAnswered || rec.DNIS != "+15559870001" ||
		rec.AttachedData["crm_contact"] != "C-4711" || !reflect.DeepEqual(rec.Agents, []callbridge.AgentID{"alice"}) ||
		rec.WaitSeconds != 0 || rec.RingSeconds < 3 || rec.RingSeconds > 5 || rec.RingSeconds+rec.TalkSeconds != 40 || rec.AnsweredAt.IsZero() {
		t.Fatalf("outbound call record: %+v", rec)
	}

	busy := w.do(callbridge.Command{Name: callbridge.CmdMakeCall, Agent: "alice", To: "+15559870486"}).CallID
	for s := 61; s <= 70; s++ {
		w.at(s)
	}
	rec = w.waitRecord(busy, "complete", func(r callbridge.CallRecord) bool { return r.Complete })
	if rec.Result != callbridge.ResultFailed || rec.Cause != callbridge.CauseBusy || rec.TalkSeconds != 0 {
		t.Fatalf("busy call record: %+v", rec)
	}
}

// TestNextStateRequestKeepsThePeriod: an agent on a call who asks to be "not ready after this
// call" changes only their next state; the history keeps one busy period, then wrap-up, then
// not_ready with the requested reason.
func TestNextStateRequestKeepsThePeriod(t *testing.T) {
	w := newWorld(t)
	w.consume(nil)
	alice := func(name callbridge.CommandName) callbridge.Command {
		return callbridge.Command{Name: name, Agent: "alice"}
	}
	w.at(0)
	cmd := alice(callbridge.CmdSetAgentState)
	cmd.State = callbridge.AgentReady
	w.do(cmd)
	w.at(10)
	id := w.inject("+15551230001", nil)
	w.at(20)
	cmd = alice(callbridge.CmdAnswerCall)
	cmd.CallID = id
	w.do(cmd)
	w.at(30)
	cmd = alice(callbridge.CmdSetAgentState)
	cmd.State, cmd.Reason = callbridge.AgentNotReady, "break"
	w.do(cmd)
	w.at(50)
	cmd = alice(callbridge.CmdClearConnection)
	cmd.CallID = id
	w.do(cmd)
	w.at(60)
	w.waitRecord(id, "complete", func(r callbridge.CallRecord) bool { return r.Complete })

	var got []string
	testenv.Eventually(t, "alice's not_ready period", func() bool {
		states, _, err := w.store.AgentStates(context.Background(), "acme", callbridge.AgentStateFilter{Agent: "alice"})
		if err != nil {
			t.Fatal(err)
		}
		got = got[:0]
		for i := len(states) - 1; i >= 0; i-- {
			got = append(got, fmt.Sprintf("%s:%s@%d", states[i].State, states[i].Reason, int(states[i].StartedAt.Sub(t0).Seconds())))
		}
		return len(got) > 0 && strings.HasPrefix(got[len(got)-1], "not_ready")
	})
	want := []string{"ready:@0", "busy:@13", "working_after_call:@50", "not_ready:break@60"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("alice's states\n got %v\nwant %v", got, want)
	}
}
