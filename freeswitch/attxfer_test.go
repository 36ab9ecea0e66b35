package freeswitch_test

import (
	"path/filepath"
	"slices"
	"testing"

	"github.com/callbridge/callbridge"
	"github.com/callbridge/callbridge/capture"
	"github.com/callbridge/callbridge/freeswitch"
	"github.com/callbridge/callbridge/freeswitch/esl"
)

// builtEvents returns the events of the built recording testdata/<name>.esl.jsonl, parsed.
func builtEvents(t testing.TB, name string) []*esl.Event {
	t.Helper()
	recs, err := capture.ReadFile(filepath.Join("testdata", name+".esl.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	return eventsOf(t, recs)
}

// feedBuilt runs every event of the built recording testdata/<name>.esl.jsonl through a new
// Tracker.
func feedBuilt(t testing.TB, name string) []callbridge.SwitchEvent {
	t.Helper()
	tr := freeswitch.NewTracker(freeswitch.TrackerConfig{})
	var out []callbridge.SwitchEvent
	for _, ev := range builtEvents(t, name) {
		out = append(out, tr.Feed(ev)...)
	}
	return out
}

// attXferRecordedStart is the story of the built att_xfer recordings up to the consultation's
// call_started: the caller's call answered by 1001, then att_xfer on 1001's leg holds it.
var attXferRecordedStart = []string{
	"A call_started +15551230004 ext dir=inbound ani=+15551230004 dnis=18005550100",
	"A queued queue=support@default",
	"A alerting 1001 queue=support@default",
	"A dequeued queue=support@default",
	"A connected 1001 queue=support@default",
	"A held 1001",
	"B call_started 1001 dir=internal tenant=acme ani=1001 dnis=1002 consult_of=A",
	"B alerting 1002",
}

// TestAttXferRecorded feeds the built att_xfer recordings (attxfer_build_test.go).
//
//   - fs-att-xfer: 1001's phone hangs up during the consultation. The events that follow the
//     hangup (CHANNEL_UNBRIDGE of the consultation, then of A's suspended bridge with B) are
//     not a leave: att_xfer's CHANNEL_BRIDGE of the target (Unique-ID C) to the caller is the
//     transfer, on the caller's conversation, naming the consultation.
//   - fs-att-xfer-cancel: 1002 hangs up during the consultation; it clears and 1001 has the
//     caller back (att_xfer's uuid_bridge of B to A is no transfer).
//   - fs-att-xfer-no-answer: 1002 never answers (leg_timeout: ALLOTTED_TIMEOUT); the
//     consultation fails and clears, 1001 has the caller back.
func TestAttXferRecorded(t *testing.T) {
	hungUp := []string{
		"A connection_cleared +15551230004 ext cause=normal_clearing",
		"A call_cleared cause=normal_clearing",
	}
	for _, tc := range []struct {
		name string
		then []string
	}{
		{"fs-att-xfer", []string{"B connected 1002", "B connected 1001", "A transferred consult=B from=1001 to=1002"}},
		{"fs-att-xfer-cancel", []string{"B connected 1002", "B connected 1001", "B connection_cleared 1002 cause=normal_clearing",
			"B call_cleared cause=normal_clearing", "A retrieved 1001"}},
		{"fs-att-xfer-no-answer", []string{"B failed 1002 cause=no_answer", "B call_cleared cause=normal_clearing", "A retrieved 1001"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			expectStory(t, feedBuilt(t, tc.name), slices.Concat(attXferRecordedStart, tc.then, hungUp)...)
		})
	}
}
