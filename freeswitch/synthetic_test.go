package freeswitch_test

import (
	"bytes"
	"fmt"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/callbridge/callbridge"
	"github.com/callbridge/callbridge/engine"
	"github.com/callbridge/callbridge/examples"
	"github.com/callbridge/callbridge/freeswitch"
	"github.com/callbridge/callbridge/freeswitch/esl"
	"github.com/callbridge/callbridge/provision"
)

// The tests in this file feed synthetic events for situations the public recordings do not
// show (an agent hanging up first, an agent not answering, att_xfer, events of one
// millisecond in another order). Each event carries only the headers the README names for
// it; the sequences follow the README's descriptions of the recorded scenarios.

type simSwitch struct {
	t   *testing.T
	tr  *freeswitch.Tracker
	seq int
	out []callbridge.SwitchEvent
}

func newSim(t *testing.T) *simSwitch {
	return &simSwitch{t: t, tr: freeswitch.NewTracker(freeswitch.TrackerConfig{})}
}

// send feeds one event: name, Unique-ID, then header pairs; channel events get the
// variable_uuid that marks events carrying variables.
func (s *simSwitch) send(name, uuid string, pairs ...string) {
	s.seq++
	hs := []string{"Event-Name", name, "Event-Sequence", strconv.Itoa(s.seq),
		"Event-Date-Timestamp", strconv.Itoa(1795307366000000 + s.seq*1000)}
	if uuid != "" {
		hs = append(hs, "Unique-ID", uuid)
	}
	hs = append(hs, pairs...)
	if uuid != "" {
		hs = append(hs, "variable_uuid", uuid)
	}
	s.out = append(s.out, s.tr.Feed(esl.NewEvent("", hs...))...)
}

func (s *simSwitch) cc(action string, pairs ...string) {
	s.send("CUSTOM", "", append([]string{"Event-Subclass", "callcenter::info", "CC-Action", action}, pairs...)...)
}

// inboundQueued plays a caller (leg A) through the IVR into support@default.
func (s *simSwitch) inboundQueued(a, ani string) {
	s.send("CHANNEL_CREATE", a, "Call-Direction", "inbound", "Caller-Caller-ID-Number", ani,
		"Caller-Caller-ID-Name", "Test Caller", "Caller-Destination-Number", "18005550100", "Caller-Context", "public")
	s.send("CHANNEL_EXECUTE_COMPLETE", a, "variable_cti_tenant", "acme", "variable_ivr_account", "777")
	s.cc("member-queue-start", "Unique-ID", a, "CC-Queue", "support@default", "CC-Member-Session-UUID", a)
}

// agentLeg plays mod_callcenter calling agent ext on leg b for the caller's leg a, and its
// answer and bridge when answer is set.
func (s *simSwitch) agentLeg(a, b, ext string, answer bool) {
	s.send("CHANNEL_OUTGOING", b, "Call-Direction", "outbound")
	s.send("CHANNEL_CREATE", b, "Call-Direction", "outbound", "Caller-Destination-Number", ext,
		"variable_dialed_user", ext, "variable_cc_side", "agent", "variable_cc_agent", ext+"@default",
		"variable_cc_queue", "support@default", "variable_cc_member_session_uuid", a)
	if !answer {
		return
	}
	s.send("CHANNEL_ANSWER", b)
	s.cc("bridge-agent-start", "Unique-ID", b, "CC-Member-Session-UUID", a, "CC-Agent", ext+"@default")
	s.send("CHANNEL_BRIDGE", a, "Bridge-A-Unique-ID", a, "Bridge-B-Unique-ID", b, "Other-Leg-Unique-ID", b)
}

func (s *simSwitch) hangup(uuid, cause string, pairs ...string) {
	s.send("CHANNEL_HANGUP", uuid, append([]string{"Hangup-Cause", cause}, pairs...)...)
}

func (s *simSwitch) expect(want ...string) {
	s.t.Helper()
	expectStory(s.t, s.out, want...)
}

// TestAgentHangsUpFirst: the agent's phone sends BYE; the caller leg, with
// hangup_after_bridge=true, is unbridged (no transfer source) and hung up.
func TestAgentHangsUpFirst(t *testing.T) {
	s := newSim(t)
	s.inboundQueued("A", "+15550001")
	s.agentLeg("A", "B", "1001", true)
	s.hangup("B", "NORMAL_CLEARING")
	s.send("CHANNEL_HANGUP_COMPLETE", "B", "Hangup-Cause", "NORMAL_CLEARING", "variable_sip_hangup_disposition", "recv_bye")
	s.send("CHANNEL_UNBRIDGE", "A", "Bridge-A-Unique-ID", "A", "Bridge-B-Unique-ID", "B", "Other-Leg-Unique-ID", "B")
	s.hangup("A", "NORMAL_CLEARING")
	s.send("CHANNEL_DESTROY", "B")
	s.send("CHANNEL_DESTROY", "A")
	s.expect(
		"A call_started +15550001 ext dir=inbound ani=+15550001 dnis=18005550100",
		"A queued queue=support@default",
		"A alerting 1001 queue=support@default",
		"A dequeued queue=support@default",
		"A connected 1001 queue=support@default",
		"A connection_cleared 1001 cause=normal_clearing",
		"A call_cleared cause=normal_clearing",
	)
}

// TestAgentNoAnswerThenNext: mod_callcenter's leg_timeout ends the first agent's leg
// (NO_ANSWER); the next agent is offered the call and answers.
func TestAgentNoAnswerThenNext(t *testing.T) {
	s := newSim(t)
	s.inboundQueued("A", "+15550002")
	s.agentLeg("A", "B1", "1001", false)
	s.hangup("B1", "NO_ANSWER")
	s.send("CHANNEL_DESTROY", "B1")
	s.agentLeg("A", "B2", "1002", true)
	s.expect(
		"A call_started +15550002 ext dir=inbound ani=+15550002 dnis=18005550100",
		"A queued queue=support@default",
		"A alerting 1001 queue=support@default",
		"A failed 1001 cause=no_answer",
		"A alerting 1002 queue=support@default",
		"A dequeued queue=support@default",
		"A connected 1002 queue=support@default",
	)
}

// TestAgentNoAnswerThenNextIsDiverted: the same ring-no-answer through the engine (with the
// provisioning of examples/freeswitch-1.10.yaml): the first agent's part ends with
// call.diverted to the queue's device, the next agent's with the call.
func TestAgentNoAnswerThenNextIsDiverted(t *testing.T) {
	s := newSim(t)
	s.inboundQueued("A", "+15550002")
	s.agentLeg("A", "B1", "1001", false)
	s.hangup("B1", "NO_ANSWER")
	s.send("CHANNEL_DESTROY", "B1")
	s.agentLeg("A", "B2", "1002", true)
	got := engineStory(t, s.out)
	want := []string{
		"call.queued dev=support@default to= cause= audience=[]",
		"call.delivered dev=1001 to= cause= audience=[1001]",
		"call.diverted dev=1001 to=support@default cause=no_answer audience=[1001]",
		"call.delivered dev=1002 to= cause= audience=[1002]",
		"call.connection_cleared dev=support@default to= cause=distributed audience=[1002]",
		"call.established dev=1002 to= cause= audience=[1002]",
	}
	if !slices.Equal(got, want) {
		t.Fatalf("engine events:\n got %q\nwant %q", got, want)
	}
}

// engineStory runs the tracker's switch events through an engine with the provisioning of
// examples/freeswitch-1.10.yaml and returns its call events as "type dev=… to=… cause=…
// audience=[…]".
func engineStory(t *testing.T, evs []callbridge.SwitchEvent) []string {
	t.Helper()
	b, err := examples.FS.ReadFile("freeswitch-1.10.yaml")
	if err != nil {
		t.Fatal(err)
	}
	p, err := provision.Load(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	e, err := engine.New(engine.Config{Directory: callbridge.Directory{Tenants: p.Tenants}, NewCallID: func(time.Time) callbridge.CallID {
		n++
		return callbridge.CallID(fmt.Sprintf("01J%023d", n))
	}})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, sev := range evs {
		for _, ev := range e.HandleSwitchEvent(sev).Events {
			if ce, ok := ev.Data.(*callbridge.CallEvent); ok && ev.Type != callbridge.EventCallDataUpdated {
				got = append(got, fmt.Sprintf("%s dev=%s to=%s cause=%s audience=%v", ev.Type, ce.Device, ce.DivertedTo, ce.Cause, ev.Audience))
			}
		}
	}
	return got
}

// TestRedirectOfARingingCall: "uuid_transfer <caller> 1002 XML default" while the caller's
// bridge to user/1001 rings. FreeSWITCH cancels the ringing leg (ORIGINATOR_CANCEL, as when
// mod_callcenter cancels an offer in fs-inbound-abandon's README) and the caller's leg runs
// 1002 in the dialplan: a new leg with variable_originating_leg_uuid = the caller's, as after
// the uuid_transfer of fs-blind-transfer. The engine reports the diversion from 1001 to 1002.
func TestRedirectOfARingingCall(t *testing.T) {
	s := newSim(t)
	s.send("CHANNEL_CREATE", "A", "Call-Direction", "inbound", "Caller-Caller-ID-Number", "+15550006",
		"Caller-Caller-ID-Name", "Test Caller", "Caller-Destination-Number", "18005550100", "Caller-Context", "public")
	s.send("CHANNEL_EXECUTE_COMPLETE", "A", "variable_cti_tenant", "acme", "variable_ivr_account", "778")
	s.send("CHANNEL_CREATE", "B", "Call-Direction", "outbound", "Caller-Destination-Number", "1001",
		"variable_dialed_user", "1001", "variable_originating_leg_uuid", "A")
	s.hangup("B", "ORIGINATOR_CANCEL")
	s.send("CHANNEL_DESTROY", "B")
	s.send("CHANNEL_EXECUTE", "A", "Application", "bridge", "Application-Data", "user/1002",
		"Caller-Destination-Number", "1002", "Caller-RDNIS", "18005550100",
		"Caller-Transfer-Source", "1795307445:ba70a717:bl_xfer:1002/default/XML")
	s.send("CHANNEL_CREATE", "C", "Call-Direction", "outbound", "Caller-Destination-Number", "1002",
		"variable_dialed_user", "1002", "variable_originating_leg_uuid", "A")
	s.expect(
		"A call_started +15550006 ext dir=inbound ani=+15550006 dnis=18005550100",
		"A alerting 1001",
		"A connection_cleared 1001 cause=normal_clearing",
		"A alerting 1002",
	)
	got := engineStory(t, s.out)
	want := []string{
		"call.delivered dev=1001 to= cause= audience=[1001]",
		"call.connection_cleared dev=1001 to= cause=normal_clearing audience=[1001]",
		"call.diverted dev=1001 to=1002 cause=redirected audience=[]",
		"call.delivered dev=1002 to= cause= audience=[1002]",
	}
	if !slices.Equal(got, want) {
		t.Fatalf("engine events:\n got %q\nwant %q", got, want)
	}
}

// TestBlindTransferOtherOrder: the caller's CHANNEL_UNBRIDGE (bl_xfer) comes before the agent
// leg's CHANNEL_HANGUP (same millisecond, README "Run-to-run variation"): still a transfer.
func TestBlindTransferOtherOrder(t *testing.T) {
	s := newSim(t)
	s.inboundQueued("A", "+15550003")
	s.agentLeg("A", "B", "1001", true)
	s.send("CHANNEL_UNBRIDGE", "A", "Bridge-A-Unique-ID", "A", "Bridge-B-Unique-ID", "B",
		"Caller-Destination-Number", "1002", "Caller-RDNIS", "18005550100",
		"Caller-Transfer-Source", "1795307445:ba70a717:bl_xfer:1002/default/XML")
	s.hangup("B", "NORMAL_CLEARING")
	s.send("CHANNEL_CREATE", "C", "Call-Direction", "outbound", "Caller-Destination-Number", "1002",
		"variable_dialed_user", "1002", "variable_originating_leg_uuid", "A")
	s.expect(
		"A call_started +15550003 ext dir=inbound ani=+15550003 dnis=18005550100",
		"A queued queue=support@default",
		"A alerting 1001 queue=support@default",
		"A dequeued queue=support@default",
		"A connected 1001 queue=support@default",
		"A transferred 1001 from=1001 to=1002",
		"A alerting 1002",
	)
}

// TestCallerHangsUpWhileAgentRings: abandoned while an agent's phone rings; mod_callcenter
// cancels the agent leg (ORIGINATOR_CANCEL).
func TestCallerHangsUpWhileAgentRings(t *testing.T) {
	s := newSim(t)
	s.inboundQueued("A", "+15550004")
	s.agentLeg("A", "B", "1001", false)
	s.hangup("A", "NORMAL_CLEARING")
	s.hangup("B", "ORIGINATOR_CANCEL")
	s.expect(
		"A call_started +15550004 ext dir=inbound ani=+15550004 dnis=18005550100",
		"A queued queue=support@default",
		"A alerting 1001 queue=support@default",
		"A dequeued queue=support@default cause=call_abandoned",
		"A connection_cleared +15550004 ext cause=normal_clearing",
		"A call_cleared cause=normal_clearing",
	)
}

// attXferStart plays att_xfer on agent leg B (caller A) to user/1004 on leg C, as
// "uuid_broadcast B att_xfer::user/1004" runs it (attxfer_build_test.go has the order and
// its sources): A's hold music, CHANNEL_EXECUTE att_xfer on B, C originated from B (no
// caller variables), and, when answer is set, C's answer and the consultation bridge
// (Unique-ID B).
func (s *simSwitch) attXferStart(answer bool) {
	s.inboundQueued("A", "+15550005")
	s.agentLeg("A", "B", "1001", true)
	s.send("CHANNEL_EXECUTE", "A", "Application", "playback", "Application-Data", "tone_stream://%(300,2700,440);loops=-1")
	s.send("CHANNEL_EXECUTE", "B", "Application", "att_xfer", "Application-Data", "user/1004", "Application-UUID", "Q")
	s.send("CHANNEL_CREATE", "C", "Call-Direction", "outbound", "Caller-Destination-Number", "1004",
		"variable_dialed_user", "1004", "variable_originating_leg_uuid", "B", "Other-Leg-Unique-ID", "B")
	if !answer {
		return
	}
	s.send("CHANNEL_ANSWER", "C", "variable_originating_leg_uuid", "B")
	s.send("CHANNEL_BRIDGE", "B", "Bridge-A-Unique-ID", "B", "Bridge-B-Unique-ID", "C", "Other-Leg-Unique-ID", "C",
		"variable_soft_holding_uuid", "A")
}

var attXferConsulted = []string{
	"A call_started +15550005 ext dir=inbound ani=+15550005 dnis=18005550100",
	"A queued queue=support@default",
	"A alerting 1001 queue=support@default",
	"A dequeued queue=support@default",
	"A connected 1001 queue=support@default",
	"A held 1001",
	"B call_started 1001 dir=internal tenant=acme ani=1001 dnis=1004 consult_of=A",
	"B alerting 1004",
}

// TestAttXferCompleted: the agent's phone hangs up during the consultation. The hangup of B
// is followed by the end of the consultation bridge (CHANNEL_UNBRIDGE B, Bridge-B C) and of
// A's suspended bridge with B (CHANNEL_UNBRIDGE A, Bridge-B B) — decisive events that would
// settle a plain hangup as a leave — then att_xfer's uuid_bridge(C, A): CHANNEL_BRIDGE with
// Unique-ID C. B's CHANNEL_EXECUTE_COMPLETE att_xfer comes up to 100 ms after its hangup,
// before or after that bridge, and B may be destroyed before it (the bridge event comes from
// C's thread): every order is the same transfer.
func TestAttXferCompleted(t *testing.T) {
	hangup := func(s *simSwitch) {
		s.hangup("B", "NORMAL_CLEARING", "variable_soft_holding_uuid", "A")
		s.send("CHANNEL_UNBRIDGE", "B", "Bridge-A-Unique-ID", "B", "Bridge-B-Unique-ID", "C", "Other-Leg-Unique-ID", "C")
		s.send("PLAYBACK_STOP", "A")
		s.send("CHANNEL_UNBRIDGE", "A", "Bridge-A-Unique-ID", "A", "Bridge-B-Unique-ID", "B", "Other-Leg-Unique-ID", "B",
			"Caller-Transfer-Source", "1795307451:A:uuid_br:C")
	}
	bridge := func(s *simSwitch) {
		s.send("CHANNEL_EXECUTE", "C", "Application", "uuid_bridge", "Application-Data", "A")
		s.send("CHANNEL_EXECUTE", "A", "Application", "uuid_bridge", "Application-Data", "C")
		s.send("CHANNEL_BRIDGE", "C", "Bridge-A-Unique-ID", "C", "Bridge-B-Unique-ID", "A", "Other-Leg-Unique-ID", "A",
			"variable_att_xfer_result", "success")
	}
	done := func(s *simSwitch) {
		s.send("CHANNEL_EXECUTE_COMPLETE", "B", "Application", "att_xfer", "Application-Data", "user/1004")
	}
	bGone := func(s *simSwitch) {
		s.send("CHANNEL_HANGUP_COMPLETE", "B", "Hangup-Cause", "NORMAL_CLEARING", "variable_sip_hangup_disposition", "recv_bye")
		s.cc("bridge-agent-end", "Unique-ID", "B", "CC-Member-Session-UUID", "A", "CC-Agent", "1001@default")
		s.cc("member-queue-end", "Unique-ID", "A", "CC-Member-Session-UUID", "A", "CC-Cause", "Terminated")
		s.send("CHANNEL_DESTROY", "B", "Hangup-Cause", "NORMAL_CLEARING")
	}
	for _, tc := range []struct {
		name  string
		order []func(*simSwitch)
	}{
		{"bridge before att_xfer returns", []func(*simSwitch){hangup, bridge, done, bGone}},
		{"att_xfer returns first", []func(*simSwitch){hangup, done, bridge, bGone}},
		{"agent leg destroyed before the bridge", []func(*simSwitch){hangup, done, bGone, bridge}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newSim(t)
			s.attXferStart(true)
			for _, f := range tc.order {
				f(s)
			}
			s.hangup("A", "NORMAL_CLEARING")
			s.send("CHANNEL_UNBRIDGE", "C", "Bridge-A-Unique-ID", "C", "Bridge-B-Unique-ID", "A")
			s.hangup("C", "NORMAL_CLEARING")
			s.expect(slices.Concat(attXferConsulted, []string{
				"B connected 1004",
				"B connected 1001",
				"A transferred consult=B from=1001 to=1004",
				"A connection_cleared +15550005 ext cause=normal_clearing",
				"A call_cleared cause=normal_clearing",
			})...)
		})
	}
}

// TestAttXferCancelled: the target hangs up (or the agent's cancel key hangs it up);
// att_xfer puts the agent back with uuid_bridge(B, A): CHANNEL_BRIDGE with Unique-ID B is no
// transfer, and the agent has the caller back.
func TestAttXferCancelled(t *testing.T) {
	s := newSim(t)
	s.attXferStart(true)
	s.hangup("C", "NORMAL_CLEARING")
	s.send("CHANNEL_UNBRIDGE", "B", "Bridge-A-Unique-ID", "B", "Bridge-B-Unique-ID", "C")
	s.send("CHANNEL_DESTROY", "C")
	s.send("CHANNEL_UNBRIDGE", "A", "Bridge-A-Unique-ID", "A", "Bridge-B-Unique-ID", "B")
	s.send("CHANNEL_EXECUTE_COMPLETE", "B", "Application", "att_xfer", "variable_att_xfer_result", "success")
	s.send("CHANNEL_BRIDGE", "B", "Bridge-A-Unique-ID", "B", "Bridge-B-Unique-ID", "A", "Other-Leg-Unique-ID", "A")
	s.expect(slices.Concat(attXferConsulted, []string{
		"B connected 1004",
		"B connected 1001",
		"B connection_cleared 1004 cause=normal_clearing",
		"B call_cleared cause=normal_clearing",
		"A retrieved 1001",
	})...)
}

// TestAttXferAgentHangsUpWhileRinging: the agent hangs up before the target answers.
//
//   - cancelled: att_xfer's originate is cancelled (ORIGINATOR_CANCEL on C): no transfer, the
//     consultation clears and the agent has left the caller's call, which goes on without
//     them.
//   - transferred: FreeSWITCH bridges the caller to the ringing target itself
//     (switch_ivr_originate's transfer of a soft-held call: uuid_bridge(A, C), so
//     CHANNEL_BRIDGE has Unique-ID A): the transfer completes to a target still alerting,
//     which then answers in the caller's call.
func TestAttXferAgentHangsUpWhileRinging(t *testing.T) {
	for _, tc := range []struct {
		name   string
		events func(s *simSwitch)
		then   []string
	}{
		{"cancelled", func(s *simSwitch) {
			s.send("CHANNEL_UNBRIDGE", "A", "Bridge-A-Unique-ID", "A", "Bridge-B-Unique-ID", "B")
			s.hangup("C", "ORIGINATOR_CANCEL")
			s.send("CHANNEL_EXECUTE_COMPLETE", "B", "Application", "att_xfer")
			s.send("CHANNEL_DESTROY", "B")
			s.send("CHANNEL_DESTROY", "C")
		}, []string{"B call_cleared cause=normal_clearing", "A connection_cleared 1001 cause=normal_clearing"}},
		{"transferred", func(s *simSwitch) {
			s.send("CHANNEL_BRIDGE", "A", "Bridge-A-Unique-ID", "A", "Bridge-B-Unique-ID", "C", "Other-Leg-Unique-ID", "C")
			s.send("CHANNEL_DESTROY", "B")
			s.send("CHANNEL_ANSWER", "C")
		}, []string{"A transferred consult=B from=1001 to=1004", "A connected 1004"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newSim(t)
			s.attXferStart(false)
			s.hangup("B", "NORMAL_CLEARING", "variable_soft_holding_uuid", "A")
			tc.events(s)
			s.expect(slices.Concat(attXferConsulted, tc.then)...)
		})
	}
}

// TestTransferTargetKeepsCall: a leg that joins by Other-Leg-Unique-ID (no
// originating_leg_uuid) still joins the conversation, and a stray leg never seen created is
// ignored.
func TestTransferTargetKeepsCall(t *testing.T) {
	s := newSim(t)
	s.inboundQueued("A", "+15550006")
	s.send("CHANNEL_CREATE", "C", "Call-Direction", "outbound", "Caller-Destination-Number", "15557654321",
		"Other-Leg-Unique-ID", "A")
	s.send("CHANNEL_ANSWER", "Z")
	s.expect(
		"A call_started +15550006 ext dir=inbound ani=+15550006 dnis=18005550100",
		"A queued queue=support@default",
		"A alerting 15557654321 ext",
	)
}
