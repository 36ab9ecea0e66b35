package freeswitch_test

import (
	"testing"

	"github.com/callbridge/callbridge"
	"github.com/callbridge/callbridge/freeswitch"
	"github.com/callbridge/callbridge/freeswitch/esl"
)

// The stories below are written from shared/fixtures/freeswitch-1.10/README.md, scenario by
// scenario, in callbridge's switch-event vocabulary.

// TestInboundAnswered: caller, IVR, queue support@default, agent 1001 rings (mod_callcenter
// originates its leg with variable_cc_member_session_uuid = the caller's leg), answers, the
// caller hangs up. One conversation named by the caller's leg.
func TestInboundAnswered(t *testing.T) {
	for _, name := range []string{"fs-inbound-answered", "fs-inbound-answered-json"} {
		t.Run(name, func(t *testing.T) {
			_, evs := feed(t, name)
			expectStory(t, evs,
				"A call_started +15551230001 ext dir=inbound ani=+15551230001 dnis=18005550100",
				"A queued queue=support@default",
				"A alerting 1001 queue=support@default",
				"A dequeued queue=support@default",
				"A connected 1001 queue=support@default",
				"A connection_cleared +15551230001 ext cause=normal_clearing",
				"A call_cleared cause=normal_clearing",
			)
			// The dialplan exports cti_tenant first (the tenant), then the IVR's answers; the
			// agent's screen pop has them before the phone rings.
			var data []string
			tenant := callbridge.TenantID("")
			for _, e := range evs {
				if e.Type == callbridge.SwitchDataUpdated {
					tenant = e.Tenant
					for k, v := range e.Data {
						data = append(data, k+"="+v)
					}
				}
				if e.Type == callbridge.SwitchAlerting {
					break
				}
			}
			if tenant != "acme" {
				t.Errorf("tenant %q, want acme (variable_cti_tenant)", tenant)
			}
			want := []string{"ivr_lang=en", "ivr_menu=1", "ivr_reason=billing", "ivr_acct_digits=12345", "ivr_account=12345"}
			if len(data) != len(want) {
				t.Fatalf("data updates %v, want %v", data, want)
			}
			for i := range want {
				if data[i] != want[i] {
					t.Fatalf("data updates %v, want %v", data, want)
				}
			}
		})
	}
}

// TestInboundAbandon: nobody available; the caller hangs up after 8 s in the queue. There is
// no abandon event: the hangup while queued is the abandon (member-queue-end CC-Cause Cancel,
// CC-Cancel-Reason BREAK_OUT comes in the same millisecond).
func TestInboundAbandon(t *testing.T) {
	_, evs := feed(t, "fs-inbound-abandon")
	expectStory(t, evs,
		"A call_started +15551230003 ext dir=inbound ani=+15551230003 dnis=18005550100",
		"A queued queue=support@default",
		"A dequeued queue=support@default cause=call_abandoned",
		"A call_cleared cause=normal_clearing",
	)
}

// TestBlindTransfer: uuid_transfer of the agent leg's partner to 1002. FreeSWITCH hangs up
// the agent leg, then sends CHANNEL_UNBRIDGE for the caller without Other-Leg-* and with a
// bl_xfer Caller-Transfer-Source; the new leg to 1002 has variable_originating_leg_uuid =
// the caller's leg. One PBXCallID from first ring to last hang-up.
func TestBlindTransfer(t *testing.T) {
	_, evs := feed(t, "fs-blind-transfer")
	expectStory(t, evs,
		"A call_started +15551230004 ext dir=inbound ani=+15551230004 dnis=18005550100",
		"A queued queue=support@default",
		"A alerting 1001 queue=support@default",
		"A dequeued queue=support@default",
		"A connected 1001 queue=support@default",
		"A transferred 1001 from=1001 to=1002",
		"A alerting 1002",
		"A connected 1002",
		"A connection_cleared +15551230004 ext cause=normal_clearing",
		"A call_cleared cause=normal_clearing",
	)
}

// TestHold: uuid_hold on the caller leg (held: the caller's device got the re-INVITE), off,
// then on the agent leg (the agent holds the customer), toggle off.
func TestHold(t *testing.T) {
	_, evs := feed(t, "fs-hold")
	expectStory(t, evs,
		"A call_started +15551230006 ext dir=inbound ani=+15551230006 dnis=18005550100",
		"A queued queue=support@default",
		"A alerting 1001 queue=support@default",
		"A dequeued queue=support@default",
		"A connected 1001 queue=support@default",
		"A held +15551230006 ext",
		"A retrieved +15551230006 ext",
		"A held 1001",
		"A retrieved 1001",
		"A connection_cleared +15551230006 ext cause=normal_clearing",
		"A call_cleared cause=normal_clearing",
	)
}

// TestClickToCall: bgapi originate user/1003 first (the agent leg, Unique-ID = the
// origination_uuid, cti_tenant=acme), then the customer leg with variable_originating_leg_uuid
// = the agent leg.
func TestClickToCall(t *testing.T) {
	_, evs := feed(t, "fs-click-to-call")
	expectStory(t, evs,
		"A call_started 1003 dir=outbound tenant=acme ani=1003 dnis=15557654321",
		"A connected 1003",
		"A alerting 15557654321 ext",
		"A connected 15557654321 ext",
		"A connection_cleared 15557654321 ext cause=normal_clearing",
		"A call_cleared cause=normal_clearing",
	)
	if evs[0].PBXCallID != "af1ad743-8ea0-4f53-bd88-dd628245d045" {
		t.Errorf("PBXCallID %q, want the origination_uuid", evs[0].PBXCallID)
	}
}

// TestClickToCallCorrelation: when make_call announced the origination_uuid, call_started
// carries the command's correlation id.
func TestClickToCallCorrelation(t *testing.T) {
	tr := freeswitch.NewTracker(freeswitch.TrackerConfig{})
	tr.ExpectOriginate("af1ad743-8ea0-4f53-bd88-dd628245d045", "01JCORRELATION0000000000AA", "15557654321")
	for _, e := range recordedEvents(t, "fs-click-to-call") {
		for _, s := range tr.Feed(e) {
			if s.Type == callbridge.SwitchCallStarted {
				if s.CorrelationID != "01JCORRELATION0000000000AA" || s.DNIS != "15557654321" {
					t.Fatalf("call_started %+v", s)
				}
				return
			}
		}
	}
	t.Fatal("no call_started")
}

// TestAgentState: mod_callcenter status and state changes become member states: On Break →
// paused (reason break), Available → ready, state Idle → paused (idle), Waiting → ready,
// Logged Out → logged off. Invalid values (Lunch, Busy) send no event; the get commands'
// events repeat the current value and change nothing. 1010 is added and made Available.
func TestAgentState(t *testing.T) {
	_, evs := feed(t, "fs-agent-state")
	expectStory(t, evs,
		"member 1001 paused=break",
		"member 1001 ready",
		"member 1001 paused=idle",
		"member 1001 ready",
		"member 1001 logged_off",
		"member 1001 ready",
		"member 1010 ready",
	)
}

// TestNoiseOnly: fs-resync has only API events: nothing happens.
func TestNoiseOnly(t *testing.T) {
	if _, evs := feed(t, "fs-resync"); len(evs) != 0 {
		t.Fatalf("events from API noise: %s", story(evs))
	}
}

// TestBadInputChangesNothing: truncated, empty and mixed-up events produce no event, never
// panic, and leave the tracker as they found it: a recording fed afterwards tells the same
// story as on a fresh tracker. A channel that names itself as its originating leg is not
// refused (it is a channel like any other), but it leads to no loop: its call starts, and
// its destroy clears it.
func TestBadInputChangesNothing(t *testing.T) {
	tr := freeswitch.NewTracker(freeswitch.TrackerConfig{})
	for i, tc := range []struct {
		ev   *esl.Event
		want string // the story it tells: "" for none
	}{
		{nil, ""},
		{ev(), ""},
		{ev("Event-Name", "CHANNEL_HANGUP"), ""},
		{ev("Event-Name", "CHANNEL_BRIDGE", "Unique-ID", "x", "Other-Leg-Unique-ID", "x"), ""},
		{ev("Event-Name", "CUSTOM", "Event-Subclass", "callcenter::info", "CC-Action", "member-queue-start"), ""},
		{ev("Event-Name", "CUSTOM", "Event-Subclass", "callcenter::info", "CC-Action", "agent-status-change"), ""},
		{ev("Event-Name", "CHANNEL_CREATE", "Unique-ID", "a", "variable_originating_leg_uuid", "a", "variable_uuid", "a"),
			"A call_started unknown ext dir=outbound dnis=unknown"},
		{ev("Event-Name", "CHANNEL_EXECUTE", "Unique-ID", "a", "Application", "att_xfer", "variable_uuid", "a"), ""},
		{ev("Event-Name", "CHANNEL_DESTROY", "Unique-ID", "a"), "A call_cleared cause=normal_clearing"},
		{ev("Event-Name", "CHANNEL_ANSWER", "Unique-ID", "a", "variable_uuid", "a"), ""},
		{ev("Event-Name", "CHANNEL_DESTROY", "Unique-ID", "a"), ""},
	} {
		if got := story(tr.Feed(tc.ev)); got != tc.want {
			t.Errorf("event %d %v: story %q, want %q", i, tc.ev, got, tc.want)
		}
	}
	_, fresh := feed(t, "fs-inbound-answered")
	var after []callbridge.SwitchEvent
	for _, e := range recordedEvents(t, "fs-inbound-answered") {
		after = append(after, tr.Feed(e)...)
	}
	if got, want := story(after), story(fresh); got != want || len(after) != len(fresh) {
		t.Fatalf("a recording after the bad input tells\n%s\n\nwant, as on a fresh tracker:\n%s", got, want)
	}
}
