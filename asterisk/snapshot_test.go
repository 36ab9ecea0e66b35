package asterisk_test

import (
	"slices"
	"testing"

	"github.com/callbridge/callbridge"
	"github.com/callbridge/callbridge/asterisk"
	"github.com/callbridge/callbridge/asterisk/ami"
)

// resyncLists returns the CoreShowChannel items and the QueueStatus items of resync.ami.jsonl.
func resyncLists(t *testing.T) (chans, queue []ami.Message) {
	t.Helper()
	for _, m := range frames(t, "resync") {
		switch m.Event() {
		case "CoreShowChannel":
			chans = append(chans, m)
		case "QueueParams", "QueueMember", "QueueEntry":
			queue = append(queue, m)
		}
	}
	return chans, queue
}

// resync.ami.jsonl (README "resync"): call A (+15551230007) answered by 1001 from
// acme-support; call B (+15551230008) answered by 2001 through Local channels in
// globex-sales; call C (+15551230009) waiting in acme-support; 1002-1004 paused (training)
// in acme-support.
func TestSnapshotResync(t *testing.T) {
	chans, queue := resyncLists(t)
	tr := asterisk.NewTracker(asterisk.TrackerConfig{})
	ev := tr.Snapshot(chans, queue, queue)
	if ev.Type != callbridge.SwitchSnapshot || ev.Snapshot == nil || ev.Time.IsZero() {
		t.Fatalf("got %+v", ev)
	}
	s := ev.Snapshot
	type party struct {
		dev   string
		state callbridge.ConnectionState
		ext   bool
		leg   string
	}
	type call struct {
		id, tenant, ani, aniName, dnis, queue string
		dir                                   callbridge.Direction
		parties                               []party
		account                               string
	}
	want := []call{
		{"1795305729.19", "acme", "+15551230007", "Resync Caller A", "18005550100", "acme-support", callbridge.DirInbound,
			[]party{{"+15551230007", callbridge.ConnConnected, true, "1795305729.19"}, {"1001", callbridge.ConnConnected, false, "1795305734.20"}}, "77777"},
		{"1795305736.21", "globex", "+15551230008", "Resync Caller B", "18005550200", "globex-sales", callbridge.DirInbound,
			[]party{{"+15551230008", callbridge.ConnConnected, true, "1795305736.21"}, {"2001", callbridge.ConnConnected, false, "1795305741.24"}}, "88888"},
		{"1795305743.25", "acme", "+15551230009", "Resync Caller C", "18005550100", "acme-support", callbridge.DirInbound,
			[]party{{"+15551230009", callbridge.ConnConnected, true, "1795305743.25"}, {"acme-support", callbridge.ConnQueued, false, ""}}, "99999"},
	}
	var got []call
	for _, c := range s.Calls {
		g := call{c.PBXCallID, string(c.Tenant), c.ANI, c.ANIName, c.DNIS, string(c.Queue), c.Direction, nil, c.Data["IVR_ACCOUNT"]}
		for _, p := range c.Parties {
			g.parties = append(g.parties, party{string(p.Device), p.State, p.External, p.Leg})
		}
		got = append(got, g)
	}
	if len(got) != len(want) {
		t.Fatalf("calls = %+v\nwant %+v", got, want)
	}
	for i := range want {
		if !slices.Equal(got[i].parties, want[i].parties) || got[i].id != want[i].id || got[i].tenant != want[i].tenant ||
			got[i].ani != want[i].ani || got[i].aniName != want[i].aniName || got[i].dnis != want[i].dnis ||
			got[i].queue != want[i].queue || got[i].dir != want[i].dir || got[i].account != want[i].account {
			t.Errorf("call %d = %+v\n      want %+v", i, got[i], want[i])
		}
	}

	paused := map[string]string{}
	for _, m := range s.Members {
		if m.Paused {
			paused[string(m.Device)+"@"+string(m.Queue)] = m.Reason
		}
	}
	wantPaused := map[string]string{"1002@acme-support": "training", "1003@acme-support": "training", "1004@acme-support": "training"}
	if len(paused) != len(wantPaused) {
		t.Errorf("paused members = %v, want %v", paused, wantPaused)
	}
	for k, v := range wantPaused {
		if paused[k] != v {
			t.Errorf("paused members = %v, want %v", paused, wantPaused)
		}
	}
	if len(s.Members) != 17 { // 3 globex-sales + 4 acme-support + 10 acme-load
		t.Errorf("%d members, want 17", len(s.Members))
	}
	for _, m := range s.Members {
		if m.Device == "2001" && m.Status != callbridge.DeviceInUse {
			t.Errorf("2001 status %s, want in_use (Status: 2)", m.Status)
		}
	}

	// The rebuilt state serves commands: the legs of each device.
	for _, c := range []struct{ call, dev, ch string }{
		{"1795305729.19", "1001", "PJSIP/1001-00000010"},
		{"1795305736.21", "2001", "PJSIP/2001-00000012"},
		{"1795305736.21", "+15551230008", "PJSIP/carrier-00000011"},
	} {
		if got, err := tr.Leg(c.call, callbridge.DeviceID(c.dev)); err != nil || got != c.ch {
			t.Errorf("Leg(%s, %s) = %q, %v; want %q", c.call, c.dev, got, err, c.ch)
		}
	}
	if open := tr.OpenCalls(); len(open) != 3 {
		t.Errorf("open calls %v, want 3", open)
	}
	if got := tr.MemberInterface("2001", "globex-sales"); got != "Local/2001@globex-agents/n" {
		t.Errorf("MemberInterface(2001) = %q", got)
	}
}

// After a resync the tracker goes on from the snapshot: the hangups of call B's legs (as the
// channels CoreShowChannels listed) end it with the phone named 2001, not a Local channel,
// and QueueCallerLeave of the waiting call C dequeues it.
func TestSnapshotThenEvents(t *testing.T) {
	chans, queue := resyncLists(t)
	tr := asterisk.NewTracker(asterisk.TrackerConfig{})
	tr.Snapshot(chans, queue, queue)
	item := func(uid string) ami.Message {
		for _, m := range chans {
			if m.Get("Uniqueid") == uid {
				return m
			}
		}
		t.Fatalf("no CoreShowChannel %s", uid)
		return ami.Message{}
	}
	as := func(m ami.Message, event string, extra ...ami.Field) ami.Message {
		out := ami.Message{Fields: []ami.Field{{Key: "Event", Value: event}}}
		for _, f := range m.Fields {
			if f.Key != "Event" && f.Key != "ActionID" {
				out.Fields = append(out.Fields, f)
			}
		}
		out.Fields = append(out.Fields, extra...)
		return out
	}
	cause := ami.Field{Key: "Cause", Value: "16"}
	var evs []callbridge.SwitchEvent
	for _, m := range []ami.Message{
		as(item("1795305741.24"), "Hangup", cause), // PJSIP/2001
		as(item("1795305741.23"), "Hangup", cause), // Local ;2
		as(item("1795305741.22"), "Hangup", cause), // Local ;1
		as(item("1795305736.21"), "Hangup", cause), // caller B
		as(item("1795305743.25"), "QueueCallerLeave", ami.Field{Key: "Queue", Value: "acme-support"}),
	} {
		evs = append(evs, tr.Feed(m)...)
	}
	want := []string{
		"A connection_cleared 2001 cause=normal_clearing",
		"A connection_cleared +15551230008 ext cause=normal_clearing",
		"A call_cleared cause=normal_clearing",
		"B dequeued queue=acme-support",
	}
	if got := compact(evs); !slices.Equal(got, want) {
		t.Errorf("got %q\nwant %q", got, want)
	}
	if open := tr.OpenCalls(); !slices.Equal(open, []string{"1795305729.19", "1795305743.25"}) {
		t.Errorf("open calls %v", open)
	}
}

// An empty resync (a switch with no calls, as the replay server answers) forgets every
// call of the previous connection. Events that still name its channels afterwards rebuild a
// consistent call from what they carry (Linkedid, ChanVariables), which then clears: the
// tracker heals a resync that missed a call instead of inventing half a story.
func TestSnapshotEmptyForgets(t *testing.T) {
	tr := asterisk.NewTracker(asterisk.TrackerConfig{})
	fr := frames(t, "inbound-answered")
	for _, m := range fr[:len(fr)/2] {
		tr.Feed(m)
	}
	if len(tr.OpenCalls()) != 1 {
		t.Fatalf("open calls %v, want the call in progress", tr.OpenCalls())
	}
	ev := tr.Snapshot(nil, nil, nil)
	if len(ev.Snapshot.Calls) != 0 || len(ev.Snapshot.Members) != 0 {
		t.Errorf("snapshot = %+v", ev.Snapshot)
	}
	if len(tr.OpenCalls()) != 0 {
		t.Errorf("open calls after empty resync: %v", tr.OpenCalls())
	}
	var evs []callbridge.SwitchEvent
	for _, m := range fr[len(fr)/2:] {
		evs = append(evs, tr.Feed(m)...)
	}
	checkInvariants(t, evs)
	want := []string{
		"A call_started +15551230001 ext dir=inbound",
		"A connected 1001",
		"A connection_cleared 1001 cause=normal_clearing",
		"A connection_cleared +15551230001 ext cause=normal_clearing",
		"A call_cleared cause=normal_clearing",
	}
	if got := compact(evs); !slices.Equal(got, want) {
		t.Errorf("got %q\nwant %q", got, want)
	}
	if len(tr.OpenCalls()) != 0 || tr.NumChannels() != 0 {
		t.Errorf("left open: %v, %d channels", tr.OpenCalls(), tr.NumChannels())
	}
}
