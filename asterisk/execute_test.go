package asterisk_test

import (
	"context"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/callbridge/callbridge"
	"github.com/callbridge/callbridge/asterisk"
	"github.com/callbridge/callbridge/asterisk/ami"
	"github.com/callbridge/callbridge/capture"
	"github.com/callbridge/callbridge/internal/testenv"
)

// cut returns the recording up to (not including) t_ms until, plus the recording client's
// actions named keep and the switch's answers to them, so the replay server answers the
// driver's own actions as Asterisk answered the recording client. The call is then still up
// when the test sends its command.
func cut(t *testing.T, name string, until int64, keep ...string) (capture.Script, []ami.Message) {
	t.Helper()
	recs, err := capture.ReadFile(recording(t, name))
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]bool{}
	var kept []ami.Message
	var out []capture.Record
	for _, r := range recs {
		m := ami.ParseMessage(r.Raw)
		switch {
		case r.TMs < until:
			out = append(out, r)
		case r.Dir == capture.DirOut && slices.Contains(keep, m.Get("Action")):
			ids[m.Get("ActionID")] = true
			kept = append(kept, withoutID(m))
			out = append(out, r)
		case r.Dir == capture.DirIn && m.Event() == "" && ids[m.Get("ActionID")]:
			out = append(out, r)
		}
	}
	return capture.Script{Records: out}, kept
}

func do(t *testing.T, h *harness, cmd callbridge.SwitchCommand) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testenv.Patience)
	defer cancel()
	return h.drv.Execute(ctx, cmd)
}

func sameFields(a, b ami.Message) bool {
	return slices.Equal(a.Fields, b.Fields)
}

// make_call is the click-to-call recording's agent-first Originate, with a fresh ChannelId.
func TestExecuteMakeCall(t *testing.T) {
	s, recorded := cut(t, "click-to-call", 1027, "Originate")
	h := startDriver(t, s)
	h.played(t, 0)
	err := do(t, h, callbridge.SwitchCommand{Type: callbridge.SwitchMakeCall, Tenant: "acme", Device: "1003",
		To: "15557654321", CorrelationID: "c2c-0001"})
	if err != nil {
		t.Fatalf("make_call: %v", err)
	}
	got := h.rec.actions("Originate")
	if len(got) != 1 {
		t.Fatalf("Originate frames: %v", got)
	}
	id := got[0].Get("ChannelId")
	if !regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`).MatchString(id) {
		t.Errorf("ChannelId %q is not a UUID", id)
	}
	// The recorded frame, with our ChannelId and without the recorder's own CTI_CLICK2CALL_ID.
	var want ami.Message
	for _, f := range recorded[0].Fields {
		switch {
		case f.Key == "ChannelId":
			f.Value = id
		case f.Key == "Variable" && strings.HasPrefix(f.Value, "CTI_CLICK2CALL_ID="):
			continue
		}
		want.Fields = append(want.Fields, f)
	}
	if !sameFields(got[0], want) {
		t.Errorf("Originate =\n%v\nwant\n%v", got[0].Fields, want.Fields)
	}
}

// single_step_transfer is the blind-transfer recording's BlindTransfer on the agent's channel.
func TestExecuteSingleStepTransfer(t *testing.T) {
	s, recorded := cut(t, "blind-transfer", 10963, "BlindTransfer")
	h := startDriver(t, s)
	h.played(t, 0)
	err := do(t, h, callbridge.SwitchCommand{Type: callbridge.SwitchSingleStepTransfer, Tenant: "acme",
		PBXCallID: "1795305634.7", Device: "1001", To: "1002"})
	if err != nil {
		t.Fatal(err)
	}
	if got := h.rec.actions("BlindTransfer"); len(got) != 1 || !sameFields(got[0], recorded[0]) {
		t.Errorf("BlindTransfer = %v, want %v", got, recorded)
	}
}

// consultation_call is attended-transfer-b's Atxfer; transfer_call completes it by hanging up
// the consulting agent (phone 1003 hung up in the recording).
func TestExecuteConsultationAndTransfer(t *testing.T) {
	s, recorded := cut(t, "attended-transfer-b", 10960, "Atxfer")
	h := startDriver(t, s)
	h.played(t, 0)
	if err := do(t, h, callbridge.SwitchCommand{Type: callbridge.SwitchConsultationCall, Tenant: "acme",
		PBXCallID: "1795306748.0", Device: "1003", To: "1004"}); err != nil {
		t.Fatal(err)
	}
	if got := h.rec.actions("Atxfer"); len(got) != 1 || !sameFields(got[0], recorded[0]) {
		t.Errorf("Atxfer = %v, want %v", got, recorded)
	}

	s, _ = cut(t, "attended-transfer-b", 16505)
	h = startDriver(t, s)
	h.played(t, 0)
	// The consultation of another call is refused before anything is written.
	err := do(t, h, callbridge.SwitchCommand{Type: callbridge.SwitchTransferCall, Tenant: "acme",
		PBXCallID: "1795305582.0", ConsultPBXCallID: "1795306758.2", Device: "1003"})
	if callbridge.ErrorCode(err) != callbridge.EInvalid {
		t.Errorf("transfer_call with a foreign consultation: %v, want invalid", err)
	}
	if err := do(t, h, callbridge.SwitchCommand{Type: callbridge.SwitchTransferCall, Tenant: "acme",
		PBXCallID: "1795306748.0", ConsultPBXCallID: "1795306758.2", Device: "1003"}); err != nil {
		t.Fatal(err)
	}
	want := ami.Message{Fields: []ami.Field{{Key: "Action", Value: "Hangup"}, {Key: "Channel", Value: "PJSIP/1003-00000001"}, {Key: "Cause", Value: "16"}}}
	if got := h.rec.actions("Hangup"); len(got) != 1 || !sameFields(got[0], want) {
		t.Errorf("Hangup = %v, want %v", got, want)
	}
}

// conference_call injects *3 into the consulting agent's channel, as in conference-threeway.
func TestExecuteConference(t *testing.T) {
	s, recorded := cut(t, "conference-threeway", 16490, "PlayDTMF")
	h := startDriver(t, s)
	h.played(t, 0)
	if err := do(t, h, callbridge.SwitchCommand{Type: callbridge.SwitchConferenceCall, Tenant: "acme",
		PBXCallID: "1795306813.9", ConsultPBXCallID: "1795306823.11", Device: "1001"}); err != nil {
		t.Fatal(err)
	}
	got := h.rec.actions("PlayDTMF")
	if len(got) != 2 || !sameFields(got[0], recorded[0]) || !sameFields(got[1], recorded[1]) {
		t.Errorf("PlayDTMF = %v, want %v", got, recorded)
	}
}

// clear_connection hangs up the device's leg; clear_call every party's leg.
func TestExecuteClear(t *testing.T) {
	s, _ := cut(t, "inbound-answered", 10968)
	h := startDriver(t, s)
	h.played(t, 0)
	if err := do(t, h, callbridge.SwitchCommand{Type: callbridge.SwitchClearConnection, Tenant: "acme",
		PBXCallID: "1795305582.0", Device: "1001"}); err != nil {
		t.Fatal(err)
	}
	if err := do(t, h, callbridge.SwitchCommand{Type: callbridge.SwitchClearCall, Tenant: "acme",
		PBXCallID: "1795305582.0"}); err != nil {
		t.Fatal(err)
	}
	var chans []string
	for _, m := range h.rec.actions("Hangup") {
		chans = append(chans, m.Get("Channel"))
	}
	if want := []string{"PJSIP/1001-00000001", "PJSIP/carrier-00000000", "PJSIP/1001-00000001"}; !slices.Equal(chans, want) {
		t.Errorf("Hangup channels %v, want %v", chans, want)
	}
	err := do(t, h, callbridge.SwitchCommand{Type: callbridge.SwitchClearConnection, Tenant: "acme",
		PBXCallID: "1795305582.0", Device: "1002"})
	if callbridge.ErrorCode(err) != callbridge.ENotFound {
		t.Errorf("clear_connection of a device not in the call: %v, want not_found", err)
	}
}

// set_member_state: the agent-state recording's QueueAdd, QueuePause and QueueRemove; the
// second QueueAdd ("Already there") and QueueRemove ("Not there") are successes.
func TestExecuteMemberState(t *testing.T) {
	recs, err := capture.ReadFile(recording(t, "agent-state"))
	if err != nil {
		t.Fatal(err)
	}
	h := startDriver(t, capture.Script{Records: recs})
	h.played(t, 0)
	member := func(a callbridge.MemberAction, paused bool, reason string, queues ...callbridge.QueueName) callbridge.SwitchCommand {
		return callbridge.SwitchCommand{Type: callbridge.SwitchSetMemberState, Tenant: "acme", Device: "1010",
			Interface: "PJSIP/1010", MemberName: "Judy Acme", Action: a, Paused: paused, Reason: reason, Queues: queues}
	}
	for i, cmd := range []callbridge.SwitchCommand{
		member(callbridge.MemberAdd, false, "", "acme-support"),
		member(callbridge.MemberAdd, false, "", "acme-support"), // Already there
		member(callbridge.MemberPause, true, "lunch", "acme-support"),
		member(callbridge.MemberPause, false, "", "acme-support"),
		member(callbridge.MemberRemove, false, "", "acme-support"),
		member(callbridge.MemberRemove, false, "", "acme-support"), // Not there
	} {
		if err := do(t, h, cmd); err != nil {
			t.Errorf("command %d (%s): %v", i, cmd.Action, err)
		}
	}
	fields := func(kv ...string) ami.Message {
		var m ami.Message
		for i := 0; i < len(kv); i += 2 {
			m.Fields = append(m.Fields, ami.Field{Key: kv[i], Value: kv[i+1]})
		}
		return m
	}
	add := fields("Action", "QueueAdd", "Queue", "acme-support", "Interface", "PJSIP/1010", "MemberName", "Judy Acme",
		"StateInterface", "PJSIP/1010", "Penalty", "0", "Paused", "false") // the recording's first QueueAdd
	want := map[string][]ami.Message{
		"QueueAdd": {add, add},
		"QueuePause": {
			fields("Action", "QueuePause", "Queue", "acme-support", "Interface", "PJSIP/1010", "Paused", "true", "Reason", "lunch"),
			fields("Action", "QueuePause", "Queue", "acme-support", "Interface", "PJSIP/1010", "Paused", "false"),
		},
		"QueueRemove": {
			fields("Action", "QueueRemove", "Queue", "acme-support", "Interface", "PJSIP/1010"),
			fields("Action", "QueueRemove", "Queue", "acme-support", "Interface", "PJSIP/1010"),
		},
	}
	for name, w := range want {
		got := h.rec.actions(name)
		if !slices.EqualFunc(got, w, sameFields) {
			t.Errorf("%s frames:\n got %v\nwant %v", name, got, w)
		}
	}
}

// Refusals: nothing reaches the switch for a bad value, an unsupported command, or with the
// link down.
func TestExecuteRefusals(t *testing.T) {
	s, _ := cut(t, "blind-transfer", 10963)
	h := startDriver(t, s)
	h.played(t, 0)
	before := len(h.rec.actions("BlindTransfer")) + len(h.rec.actions("Originate")) + len(h.rec.actions("QueuePause"))
	for _, c := range []struct {
		cmd  callbridge.SwitchCommand
		code string
	}{
		{callbridge.SwitchCommand{Type: callbridge.SwitchSingleStepTransfer, PBXCallID: "1795305634.7", Device: "1001", To: "1002\r\nAction: Originate"}, callbridge.EInvalid},
		{callbridge.SwitchCommand{Type: callbridge.SwitchSingleStepTransfer, PBXCallID: "1795305634.7", Device: "1001", To: "1002&PJSIP/1003"}, callbridge.EInvalid},
		{callbridge.SwitchCommand{Type: callbridge.SwitchSingleStepTransfer, PBXCallID: "1795305634.7", Device: "1001", To: "${SHELL(id)}"}, callbridge.EInvalid},
		{callbridge.SwitchCommand{Type: callbridge.SwitchSingleStepTransfer, PBXCallID: "nope", Device: "1001", To: "1002"}, callbridge.ENotFound},
		{callbridge.SwitchCommand{Type: callbridge.SwitchMakeCall, Tenant: "acme", Device: "1003", To: "155\n5"}, callbridge.EInvalid},
		{callbridge.SwitchCommand{Type: callbridge.SwitchMakeCall, Tenant: "acme\r\n", Device: "1003", To: "1555"}, callbridge.EInvalid},
		{callbridge.SwitchCommand{Type: callbridge.SwitchMakeCall, Tenant: "acme", Device: "1003", Interface: "PJSIP/1003&PJSIP/1004", To: "1555"}, callbridge.EInvalid},
		{callbridge.SwitchCommand{Type: callbridge.SwitchMakeCall, Tenant: "acme", Device: "1003", To: "1555", Data: map[string]string{"NOTE": "a\r\nb"}}, callbridge.EInvalid},
		{callbridge.SwitchCommand{Type: callbridge.SwitchSetMemberState, Device: "1001", Action: callbridge.MemberPause, Paused: true, Reason: "lunch\r\n"}, callbridge.EInvalid},
		{callbridge.SwitchCommand{Type: callbridge.SwitchSetMemberState, Device: "1001", Action: callbridge.MemberPause, Queues: []callbridge.QueueName{"acme support"}}, callbridge.EInvalid},
		{callbridge.SwitchCommand{Type: callbridge.SwitchHoldCall, PBXCallID: "1795305634.7", Device: "1001"}, callbridge.ENotSupported},
		{callbridge.SwitchCommand{Type: callbridge.SwitchRetrieveCall, PBXCallID: "1795305634.7", Device: "1001"}, callbridge.ENotSupported},
		{callbridge.SwitchCommand{Type: callbridge.SwitchAnswerCall, PBXCallID: "1795305634.7", Device: "1001"}, callbridge.ENotSupported},
		{callbridge.SwitchCommand{Type: "reboot_pbx"}, callbridge.ENotSupported},
	} {
		err := do(t, h, c.cmd)
		if callbridge.ErrorCode(err) != c.code {
			t.Errorf("%s %q: %v, want %s", c.cmd.Type, c.cmd.To, err, c.code)
		}
		if c.code == callbridge.ENotSupported && !strings.Contains(callbridge.ErrorMessage(err), " ") {
			t.Errorf("%s: message %q does not explain", c.cmd.Type, callbridge.ErrorMessage(err))
		}
	}
	if after := len(h.rec.actions("BlindTransfer")) + len(h.rec.actions("Originate")) + len(h.rec.actions("QueuePause")); after != before {
		t.Errorf("%d actions were written for refused commands", after-before)
	}

	// Capabilities say exactly what Execute does.
	caps := h.drv.Capabilities()
	for _, typ := range []callbridge.SwitchCommandType{callbridge.SwitchAnswerCall, callbridge.SwitchHoldCall, callbridge.SwitchRetrieveCall} {
		if caps[typ] {
			t.Errorf("Capabilities lists %s", typ)
		}
	}
	if len(caps) != 8 {
		t.Errorf("Capabilities = %v", caps)
	}

	// Link down: a driver that is not running.
	idle := asterisk.New(asterisk.Config{Addr: "127.0.0.1:1"})
	err := idle.Execute(context.Background(), callbridge.SwitchCommand{Type: callbridge.SwitchMakeCall, Tenant: "acme", Device: "1003", To: "15557654321"})
	if callbridge.ErrorCode(err) != callbridge.EUnavailable {
		t.Errorf("make_call while not connected: %v, want unavailable", err)
	}
	if err := idle.Sync(context.Background()); callbridge.ErrorCode(err) != callbridge.EUnavailable {
		t.Errorf("Sync while not connected: %v", err)
	}
}

// The Atxfer transferer has one channel in both calls: clearing its connection to the
// consultation hangs up the consulted party (the transferer gets the caller back); clearing
// its connection to the original call is refused, since the hangup would transfer the caller.
func TestExecuteClearDuringConsultation(t *testing.T) {
	s, _ := cut(t, "attended-transfer-b", 16505)
	h := startDriver(t, s)
	h.played(t, 0)
	err := do(t, h, callbridge.SwitchCommand{Type: callbridge.SwitchClearConnection, Tenant: "acme",
		PBXCallID: "1795306748.0", Device: "1003"})
	if callbridge.ErrorCode(err) != callbridge.EConflict {
		t.Errorf("clear_connection of the transferer in the original call: %v, want conflict", err)
	}
	if n := len(h.rec.actions("Hangup")); n != 0 {
		t.Fatalf("%d Hangup written for a refused command", n)
	}
	if err := do(t, h, callbridge.SwitchCommand{Type: callbridge.SwitchClearConnection, Tenant: "acme",
		PBXCallID: "1795306758.2", Device: "1003"}); err != nil {
		t.Fatal(err)
	}
	if err := do(t, h, callbridge.SwitchCommand{Type: callbridge.SwitchClearCall, Tenant: "acme",
		PBXCallID: "1795306758.2"}); err != nil {
		t.Fatal(err)
	}
	var chans []string
	for _, m := range h.rec.actions("Hangup") {
		chans = append(chans, m.Get("Channel"))
	}
	if want := []string{"PJSIP/1004-00000002", "PJSIP/1004-00000002"}; !slices.Equal(chans, want) {
		t.Errorf("Hangup channels %v, want %v (never the transferer PJSIP/1003-00000001)", chans, want)
	}
}
