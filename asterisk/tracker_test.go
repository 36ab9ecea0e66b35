package asterisk_test

import (
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/callbridge/callbridge"
	"github.com/callbridge/callbridge/asterisk"
)

// storyCase is the normalised story of one recording, written from the recording and the
// scenario description in shared/fixtures/asterisk-22/README.md.
type storyCase struct {
	name  string
	story []string
	// started: the call_started of the first call (zero: not checked).
	started callbridge.SwitchEvent
	// data: the first call's attached data once the IVR is done (call_started + data_updated).
	data map[string]string
	// open: calls still up at the end of the recording (only resync).
	open int
}

var storyCases = []storyCase{
	{
		// Caller, IVR, queue acme-support, 1001 answers, the caller hangs up.
		name: "inbound-answered",
		story: []string{
			"A call_started +15551230001 ext dir=inbound",
			"A queued queue=acme-support",
			"A alerting 1001 queue=acme-support",
			"A dequeued queue=acme-support",
			"A connected 1001 queue=acme-support",
			"A connection_cleared 1001 cause=normal_clearing",
			"A connection_cleared +15551230001 ext cause=normal_clearing",
			"A call_cleared cause=normal_clearing",
		},
		started: callbridge.SwitchEvent{Tenant: "acme", Direction: callbridge.DirInbound, ANI: "+15551230001",
			ANIName: "John Smith", DNIS: "18005550100", Device: "+15551230001", External: true},
		data: map[string]string{"CTI_TENANT": "acme", "CTI_DNIS": "18005550100",
			"IVR_REASON": "billing", "IVR_ACCOUNT": "12345", "IVR_LANG": "en"},
	},
	{
		// globex-sales member Local/2001@globex-agents/n: the story names phone 2001, never
		// the Local channel; the agent hangs up first.
		name: "inbound-agent-hangup",
		story: []string{
			"A call_started +15551230002 ext dir=inbound",
			"A queued queue=globex-sales",
			"A alerting 2001 queue=globex-sales",
			"A dequeued queue=globex-sales",
			"A connected 2001 queue=globex-sales",
			"A connection_cleared 2001 cause=normal_clearing",
			"A connection_cleared +15551230002 ext cause=normal_clearing",
			"A call_cleared cause=normal_clearing",
		},
		started: callbridge.SwitchEvent{Tenant: "globex", Direction: callbridge.DirInbound, ANI: "+15551230002",
			ANIName: "Maria Garcia", DNIS: "18005550200", Device: "+15551230002", External: true},
		data: map[string]string{"CTI_TENANT": "globex", "CTI_DNIS": "18005550200",
			"IVR_REASON": "sales", "IVR_ACCOUNT": "67890", "IVR_LANG": "en"},
	},
	{
		// Nobody is rung (members paused); the caller gives up after 8 s in the queue.
		name: "inbound-abandon",
		story: []string{
			"A call_started +15551230003 ext dir=inbound",
			"A queued queue=globex-sales",
			"A dequeued queue=globex-sales cause=call_abandoned",
			"A connection_cleared +15551230003 ext cause=normal_clearing",
			"A call_cleared cause=call_abandoned",
		},
		started: callbridge.SwitchEvent{Tenant: "globex", Direction: callbridge.DirInbound, ANI: "+15551230003",
			ANIName: "Ken Adams", DNIS: "18005550200", Device: "+15551230003", External: true},
	},
	{
		// AMI BlindTransfer of the caller from 1001 to 1002: one conversation throughout.
		name: "blind-transfer",
		story: []string{
			"A call_started +15551230004 ext dir=inbound",
			"A queued queue=acme-support",
			"A alerting 1001 queue=acme-support",
			"A dequeued queue=acme-support",
			"A connected 1001 queue=acme-support",
			"A transferred from=1001 to=1002",
			"A connection_cleared 1001 cause=transferred",
			"A alerting 1002",
			"A connected 1002",
			"A connection_cleared 1002 cause=normal_clearing",
			"A connection_cleared +15551230004 ext cause=normal_clearing",
			"A call_cleared cause=normal_clearing",
		},
		data: map[string]string{"CTI_TENANT": "acme", "CTI_DNIS": "18005550100",
			"IVR_REASON": "billing", "IVR_ACCOUNT": "24680", "IVR_LANG": "en"},
	},
	{
		// Agent-first Originate to PJSIP/1003, then the customer through the carrier trunk.
		name: "click-to-call",
		story: []string{
			"A call_started 1003 dir=outbound",
			"A alerting 1003",
			"A connected 1003",
			"A alerting 15557654321 ext",
			"A connected 15557654321 ext",
			"A connection_cleared 15557654321 ext cause=normal_clearing",
			"A connection_cleared 1003 cause=normal_clearing",
			"A call_cleared cause=normal_clearing",
		},
		started: callbridge.SwitchEvent{Tenant: "acme", Direction: callbridge.DirOutbound, ANI: "1003",
			ANIName: "Carol Acme", DNIS: "15557654321", Device: "1003"},
	},
	{
		// The customer answers 486 Busy Here; the agent leg is hung up with cause 17 too.
		name: "click-to-call-busy",
		story: []string{
			"A call_started 1003 dir=outbound",
			"A alerting 1003",
			"A connected 1003",
			"A alerting 15559990486 ext",
			"A failed 15559990486 ext cause=busy",
			"A connection_cleared 1003 cause=busy",
			"A call_cleared cause=busy",
		},
		started: callbridge.SwitchEvent{Tenant: "acme", Direction: callbridge.DirOutbound, ANI: "1003",
			ANIName: "Carol Acme", DNIS: "15559990486", Device: "1003"},
	},
	{
		// 1001 rejects with 480 (DialStatus NOANSWER); the queue rings 1002 at once.
		name: "agent-unreachable",
		story: []string{
			"A call_started +15551230024 ext dir=inbound",
			"A queued queue=acme-support",
			"A alerting 1001 queue=acme-support",
			"A failed 1001 cause=no_answer",
			"A alerting 1002 queue=acme-support",
			"A dequeued queue=acme-support",
			"A connected 1002 queue=acme-support",
			"A connection_cleared 1002 cause=normal_clearing",
			"A connection_cleared +15551230024 ext cause=normal_clearing",
			"A call_cleared cause=normal_clearing",
		},
	},
	{
		// Atxfer from 1003 to 1004: the consultation is call B (ConsultOf A); completing it
		// transfers A to 1004 and clears B with cause transfer.
		name: "attended-transfer-b",
		story: []string{
			"A call_started +15551230021 ext dir=inbound",
			"A queued queue=acme-support",
			"A alerting 1003 queue=acme-support",
			"A dequeued queue=acme-support",
			"A connected 1003 queue=acme-support",
			"A held 1003",
			"B call_started 1003 dir=internal consult_of=A",
			"B connected 1003",
			"B alerting 1004",
			"B connected 1004",
			"A transferred consult=B from=1003 to=1004",
			"B call_cleared cause=transferred",
			"A connection_cleared 1003 cause=transferred",
			"A connection_cleared +15551230021 ext cause=normal_clearing",
			"A connection_cleared 1004 cause=normal_clearing",
			"A call_cleared cause=normal_clearing",
		},
		data: map[string]string{"CTI_TENANT": "acme", "CTI_DNIS": "18005550100",
			"IVR_REASON": "billing", "IVR_ACCOUNT": "11223", "IVR_LANG": "en"},
	},
	{
		// Atxfer from 1001 to 1002, then *3: a three-way call; 1001 leaves, 1002 stays.
		name: "conference-threeway",
		story: []string{
			"A call_started +15551230023 ext dir=inbound",
			"A queued queue=acme-support",
			"A alerting 1001 queue=acme-support",
			"A dequeued queue=acme-support",
			"A connected 1001 queue=acme-support",
			"A held 1001",
			"B call_started 1001 dir=internal consult_of=A",
			"B connected 1001",
			"B alerting 1002",
			"B connected 1002",
			"A conferenced 1001 consult=B to=1002",
			"B call_cleared cause=conferenced",
			"A connection_cleared 1001 cause=normal_clearing",
			"A connection_cleared 1002 cause=normal_clearing",
			"A connection_cleared +15551230023 ext cause=normal_clearing",
			"A call_cleared cause=normal_clearing",
		},
	},
	{
		// The phone of 1002 holds and retrieves twice; the caller's MusicOnHoldStart while
		// queued is not a hold.
		name: "hold-retrieve-b",
		story: []string{
			"A call_started +15551230022 ext dir=inbound",
			"A queued queue=acme-support",
			"A alerting 1002 queue=acme-support",
			"A dequeued queue=acme-support",
			"A connected 1002 queue=acme-support",
			"A held 1002",
			"A retrieved 1002",
			"A held 1002",
			"A retrieved 1002",
			"A connection_cleared 1002 cause=normal_clearing",
			"A connection_cleared +15551230022 ext cause=normal_clearing",
			"A call_cleared cause=normal_clearing",
		},
	},
	{
		// The *46 and *47 feature-code calls are calls of their own from phone 1002.
		name: "telset-pause",
		story: []string{
			"A call_started 1002 dir=internal",
			"A connected 1002",
			"A connection_cleared 1002 cause=normal_clearing",
			"A call_cleared cause=normal_clearing",
			"B call_started 1002 dir=internal",
			"B connected 1002",
			"B connection_cleared 1002 cause=normal_clearing",
			"B call_cleared cause=normal_clearing",
		},
		started: callbridge.SwitchEvent{Direction: callbridge.DirInternal, ANI: "1002", ANIName: "Bob Acme",
			DNIS: "*46", Device: "1002"},
	},
	{
		// The call is handled by an ARI app: no queue, agent 1005 dialled by ARI.
		name: "ari-stasis-call",
		story: []string{
			"A call_started +15551230011 ext dir=inbound",
			"A alerting 1005",
			"A connected 1005",
			"A connection_cleared +15551230011 ext cause=normal_clearing",
			"A connection_cleared 1005 cause=normal_clearing",
			"A call_cleared cause=normal_clearing",
		},
		started: callbridge.SwitchEvent{Tenant: "acme", Direction: callbridge.DirInbound, ANI: "+15551230011",
			ANIName: "Peter Parker", DNIS: "18005550300", Device: "+15551230011", External: true},
		data: map[string]string{"CTI_TENANT": "acme", "CTI_DNIS": "18005550300",
			"IVR_REASON": "billing", "IVR_ACCOUNT": "12345", "IVR_LANG": "en"},
	},
	{name: "agent-state"},
	{name: "bad-login"},
	{name: "bad-login-unknown-user"},
	// resync: only list answers to the client's own actions; Snapshot is tested separately.
	{name: "resync"},
}

func TestTrackerStories(t *testing.T) {
	for _, tc := range storyCases {
		t.Run(tc.name, func(t *testing.T) {
			tr, evs := feed(t, tc.name)
			got := compact(evs)
			if !slices.Equal(got, tc.story) {
				t.Fatalf("story:\n  got  %s\n  want %s\nall events:\n%s",
					strings.Join(got, "\n       "), strings.Join(tc.story, "\n       "), story(evs))
			}
			checkInvariants(t, evs)
			if open := tr.OpenCalls(); len(open) != tc.open {
				t.Errorf("calls left open at the end: %v", open)
			}
			if n := tr.NumChannels(); n != 0 {
				t.Errorf("%d channels left in the tracker", n)
			}
			if n := tr.NumPairs(); n != 0 {
				t.Errorf("%d Local pairs left in the tracker", n)
			}
			if tc.started.Direction != "" {
				checkStarted(t, evs, tc.started)
			}
			if tc.data != nil {
				if got := accumulated(evs, evs[0].PBXCallID); !maps.Equal(got, tc.data) {
					t.Errorf("attached data = %v, want %v", got, tc.data)
				}
			}
		})
	}
}

// checkInvariants: every call event has a PBXCallID and a time; every call that starts
// clears once, after every other event of it; no event precedes its call's call_started.
func checkInvariants(t *testing.T, evs []callbridge.SwitchEvent) {
	t.Helper()
	started := map[string]bool{}
	cleared := map[string]bool{}
	for i, e := range evs {
		if e.Time.IsZero() {
			t.Errorf("event %d (%s) has no time", i, e.Type)
		}
		switch e.Type {
		case callbridge.SwitchMemberState, callbridge.SwitchDeviceState:
			if e.Device == "" {
				t.Errorf("event %d (%s) has no device", i, e.Type)
			}
			continue
		}
		if e.PBXCallID == "" {
			t.Errorf("event %d (%s) has no PBXCallID", i, e.Type)
			continue
		}
		if cleared[e.PBXCallID] {
			t.Errorf("event %d (%s) after call_cleared of %s", i, e.Type, e.PBXCallID)
		}
		switch e.Type {
		case callbridge.SwitchCallStarted:
			if started[e.PBXCallID] {
				t.Errorf("second call_started for %s", e.PBXCallID)
			}
			started[e.PBXCallID] = true
		case callbridge.SwitchCallCleared:
			cleared[e.PBXCallID] = true
		}
		if !started[e.PBXCallID] {
			t.Errorf("event %d (%s) before call_started of %s", i, e.Type, e.PBXCallID)
		}
		switch e.Type {
		case callbridge.SwitchAlerting, callbridge.SwitchConnected, callbridge.SwitchHeld,
			callbridge.SwitchRetrieved, callbridge.SwitchConnectionCleared, callbridge.SwitchFailed:
			if e.Device == "" || e.Leg == "" {
				t.Errorf("event %d (%s) lacks device or leg", i, e.Type)
			}
		}
	}
}

// checkStarted compares the first call_started with want (the fields a screen pop needs).
func checkStarted(t *testing.T, evs []callbridge.SwitchEvent, want callbridge.SwitchEvent) {
	t.Helper()
	for _, e := range evs {
		if e.Type != callbridge.SwitchCallStarted {
			continue
		}
		if e.Tenant != want.Tenant || e.Direction != want.Direction || e.ANI != want.ANI ||
			e.ANIName != want.ANIName || e.DNIS != want.DNIS || e.Device != want.Device || e.External != want.External {
			t.Errorf("call_started = %s\nwant tenant=%s dir=%s ani=%s aniname=%s dnis=%s dev=%s ext=%v",
				line(e), want.Tenant, want.Direction, want.ANI, want.ANIName, want.DNIS, want.Device, want.External)
		}
		if e.Leg == "" {
			t.Errorf("call_started has no leg")
		}
		return
	}
	t.Errorf("no call_started")
}

// accumulated applies call_started and data_updated of call id.
func accumulated(evs []callbridge.SwitchEvent, id string) map[string]string {
	out := map[string]string{}
	for _, e := range evs {
		if e.PBXCallID != id || (e.Type != callbridge.SwitchCallStarted && e.Type != callbridge.SwitchDataUpdated) {
			continue
		}
		for k, v := range e.Data {
			if v == "" {
				delete(out, k)
			} else {
				out[k] = v
			}
		}
	}
	return out
}

// PBXCallID is the Linkedid, the Uniqueid of the first channel (README "Call correlation").
func TestTrackerPBXCallIDIsLinkedid(t *testing.T) {
	for name, want := range map[string]string{
		"inbound-answered":     "1795305582.0",
		"inbound-agent-hangup": "1795305598.2",
		"blind-transfer":       "1795305634.7",
		"click-to-call":        "9f8984fd-9c27-4827-b3d2-15c44c3c6841", // the Originate's ChannelId
	} {
		_, evs := feed(t, name)
		for _, e := range evs {
			if e.PBXCallID != "" && e.PBXCallID != want {
				t.Errorf("%s: %s has PBXCallID %q, want %q", name, e.Type, e.PBXCallID, want)
			}
		}
	}
}

// The consultation is its own call: named by the Uniqueid of Local/1004@transfer-targets-…;1,
// with a copy of the original call's attached data, and the consulting agent's leg.
func TestTrackerConsultationIdentity(t *testing.T) {
	_, evs := feed(t, "attended-transfer-b")
	var consult, xfer *callbridge.SwitchEvent
	for i := range evs {
		e := &evs[i]
		switch {
		case e.Type == callbridge.SwitchCallStarted && e.ConsultOf != "":
			consult = e
		case e.Type == callbridge.SwitchTransferred:
			xfer = e
		}
	}
	if consult == nil || xfer == nil {
		t.Fatalf("no consultation or transfer:\n%s", story(evs))
	}
	if consult.PBXCallID != "1795306758.2" || consult.ConsultOf != "1795306748.0" {
		t.Errorf("consultation %s of %s, want 1795306758.2 of 1795306748.0", consult.PBXCallID, consult.ConsultOf)
	}
	if consult.Device != "1003" || consult.Leg != "1795306752.1" || consult.Tenant != "acme" || consult.DNIS != "1004" {
		t.Errorf("consultation call_started = %s", line(*consult))
	}
	if consult.Data["IVR_ACCOUNT"] != "11223" || consult.Data["IVR_REASON"] != "billing" {
		t.Errorf("consultation data = %v, want a copy of the original's", consult.Data)
	}
	if xfer.PBXCallID != "1795306748.0" || xfer.ConsultPBXCallID != "1795306758.2" ||
		xfer.TransferringDevice != "1003" || xfer.TransferredTo != "1004" || xfer.Data["IVR_ACCOUNT"] != "11223" {
		t.Errorf("transferred = %s", line(*xfer))
	}
}

// Queue member and device state: agent-state (AMI QueueAdd/QueuePause/QueuePenalty/
// QueueRemove) and telset-pause (*46/*47 on phone 1002: one QueueMemberPause per queue).
func TestTrackerMemberState(t *testing.T) {
	type ms struct {
		dev, queue     string
		on, paused     bool
		reason, status string
	}
	get := func(name string) (members []ms, devices []ms) {
		_, evs := feed(t, name)
		for _, e := range evs {
			switch e.Type {
			case callbridge.SwitchMemberState:
				members = append(members, ms{string(e.Device), string(e.Queue), e.LoggedOn, e.Paused, e.Reason, ""})
			case callbridge.SwitchDeviceState:
				devices = append(devices, ms{dev: string(e.Device), status: string(e.DeviceStatus)})
			}
		}
		return
	}
	members, _ := get("agent-state")
	want := []ms{
		{"1010", "acme-support", true, false, "", ""},     // QueueMemberAdded
		{"1010", "acme-support", true, true, "lunch", ""}, // QueuePause Paused=true Reason=lunch
		{"1010", "acme-support", true, false, "", ""},     // QueuePause Paused=false (penalty: no change)
		{"1001", "acme-support", true, true, "break", ""}, // QueuePause without Queue: per queue
		{"1001", "acme-load", true, true, "break", ""},
		{"1001", "acme-support", true, false, "", ""},
		{"1001", "acme-load", true, false, "", ""},
		{"1010", "acme-support", false, false, "", ""}, // QueueMemberRemoved
	}
	if !slices.Equal(members, want) {
		t.Errorf("agent-state member_state:\n got %v\nwant %v", members, want)
	}

	members, devices := get("telset-pause")
	want = []ms{
		{"1002", "acme-support", true, false, "", ""}, // first QueueMemberStatus of the run
		{"1002", "acme-load", true, false, "", ""},
		{"1002", "acme-support", true, true, "lunch", ""}, // *46
		{"1002", "acme-load", true, true, "lunch", ""},
		{"1002", "acme-support", true, false, "", ""}, // *47
		{"1002", "acme-load", true, false, "", ""},
	}
	if !slices.Equal(members, want) {
		t.Errorf("telset-pause member_state:\n got %v\nwant %v", members, want)
	}
	wantDev := []ms{{dev: "1002", status: "in_use"}, {dev: "1002", status: "idle"}, {dev: "1002", status: "in_use"}, {dev: "1002", status: "idle"}}
	if !slices.Equal(devices, wantDev) {
		t.Errorf("telset-pause device_state: got %v, want %v (Queue:…_pause_… ignored)", devices, wantDev)
	}

	// hold-retrieve-b: PJSIP/carrier ONHOLD is the trunk's state, not a device_state.
	_, devices = get("hold-retrieve-b")
	for _, d := range devices {
		if d.dev != "1002" {
			t.Errorf("hold-retrieve-b: device_state for %s", d.dev)
		}
	}
}

// A make_call's Originate ChannelId ties the call_started to the command.
func TestTrackerOriginateCorrelation(t *testing.T) {
	tr := asterisk.NewTracker(asterisk.TrackerConfig{})
	tr.ExpectOriginate("9f8984fd-9c27-4827-b3d2-15c44c3c6841", "corr-7", "15557654321")
	var evs []callbridge.SwitchEvent
	for _, m := range frames(t, "click-to-call") {
		evs = append(evs, tr.Feed(m)...)
	}
	if evs[0].Type != callbridge.SwitchCallStarted || evs[0].CorrelationID != "corr-7" || evs[0].DNIS != "15557654321" {
		t.Errorf("first event = %s, want call_started corr=corr-7 dnis=15557654321", line(evs[0]))
	}
}

// The tracker keeps no state between unrelated recordings played one after another on the
// same connection, and every call of each clears.
func TestTrackerAllRecordingsInOneStream(t *testing.T) {
	tr := asterisk.NewTracker(asterisk.TrackerConfig{})
	var evs []callbridge.SwitchEvent
	for _, tc := range storyCases {
		for _, m := range frames(t, tc.name) {
			evs = append(evs, tr.Feed(m)...)
		}
	}
	checkInvariants(t, evs)
	if open := tr.OpenCalls(); len(open) != 0 {
		t.Errorf("open calls: %v", open)
	}
}
