package freeswitch_test

import (
	"context"
	"strings"
	"testing"

	"github.com/callbridge/callbridge"
	"github.com/callbridge/callbridge/capture"
	"github.com/callbridge/callbridge/freeswitch"
	"github.com/callbridge/callbridge/internal/testenv"
)

// Call A of fs-resync: the caller's leg names the call; 1001 is on it with its agent leg.
const (
	callA      = "fd9a32d6-d5c5-40fe-b604-6b8aaa609a5e"
	agentLegA  = "0a4840d1-0d1e-4192-aef5-d1353ada4992"
	callB      = "1c22b429-482e-4286-b3cb-98db910f8384"
	agentLegB  = "68e069ba-ce74-4eb1-af6c-5b5506a1ceca"
	callerLegB = callB
)

// resynced runs a driver against fs-resync (three calls up) and returns it ready for
// commands, with the number of commands its resync wrote.
func resynced(t *testing.T) (*running, int) {
	t.Helper()
	r := start(t, freeswitch.Config{Queues: supportQueues}, capture.Script{Records: records(t, "fs-resync")})
	r.sync(t, 0)
	return r, len(r.rec.written())
}

// TestExecuteWritesCommands: each command becomes the api/bgapi line the recordings and the
// FreeSWITCH documentation show, on the leg of the acting device.
func TestExecuteWritesCommands(t *testing.T) {
	r, n := resynced(t)
	ctx := context.Background()
	cases := []struct {
		cmd  callbridge.SwitchCommand
		want []string
	}{
		{callbridge.SwitchCommand{Type: callbridge.SwitchHoldCall, PBXCallID: callA, Device: "1001"},
			[]string{"api uuid_hold " + agentLegA}},
		{callbridge.SwitchCommand{Type: callbridge.SwitchRetrieveCall, PBXCallID: callA, Device: "1001"},
			[]string{"api uuid_hold off " + agentLegA}},
		{callbridge.SwitchCommand{Type: callbridge.SwitchSingleStepTransfer, PBXCallID: callA, Device: "1001", To: "1003"},
			[]string{"api uuid_transfer " + agentLegA + " -bleg 1003 XML default"}},
		{callbridge.SwitchCommand{Type: callbridge.SwitchClearConnection, PBXCallID: callB, Device: "1002"},
			[]string{"api uuid_kill " + agentLegB}},
		{callbridge.SwitchCommand{Type: callbridge.SwitchClearCall, PBXCallID: callB},
			[]string{"api uuid_kill " + callerLegB, "api uuid_kill " + agentLegB}},
		{callbridge.SwitchCommand{Type: callbridge.SwitchConsultationCall, PBXCallID: callA, Device: "1001", To: "1004", CorrelationID: "c1"},
			[]string{"api uuid_broadcast " + agentLegA + " att_xfer::user/1004 aleg"}},
		{callbridge.SwitchCommand{Type: callbridge.SwitchSetMemberState, Device: "1003", Interface: "1003@default", Action: callbridge.MemberPause, Paused: true, Reason: "lunch"},
			[]string{"api callcenter_config agent set status 1003@default 'On Break'"}},
		{callbridge.SwitchCommand{Type: callbridge.SwitchSetMemberState, Device: "1003", Action: callbridge.MemberPause},
			[]string{"api callcenter_config agent set status 1003@default Available"}},
		{callbridge.SwitchCommand{Type: callbridge.SwitchSetMemberState, Device: "1002", Action: callbridge.MemberRemove, Queues: supportQueues},
			[]string{"api callcenter_config agent set status 1002@default 'Logged Out'"}},
		{callbridge.SwitchCommand{Type: callbridge.SwitchSetMemberState, Device: "1004", Action: callbridge.MemberAdd, Queues: supportQueues[:1]},
			[]string{"api callcenter_config agent set status 1004@default Available"}},
		// mod_callcenter applies its own wrap-up-time: callbridge's wrap_up pause, and the
		// unpause of an agent who is Available, write nothing.
		{callbridge.SwitchCommand{Type: callbridge.SwitchSetMemberState, Device: "1001", Action: callbridge.MemberPause, Paused: true, Reason: callbridge.ReasonWrapUp}, nil},
		{callbridge.SwitchCommand{Type: callbridge.SwitchSetMemberState, Device: "1001", Action: callbridge.MemberPause}, nil},
	}
	for _, tc := range cases {
		if err := r.drv.Execute(ctx, tc.cmd); err != nil {
			t.Fatalf("%s: %v", tc.cmd.Type, err)
		}
		got := r.rec.since(n)
		n += len(got)
		if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
			t.Errorf("%s wrote %q, want %q", tc.cmd.Type, got, tc.want)
		}
	}
}

// TestExecuteMakeCall: agent-first originate of fs-click-to-call, through the dialplan: the
// agent leg gets an origination_uuid, the customer's number as caller id, the tenant and the
// correlation id, and continues to the number in the default context.
func TestExecuteMakeCall(t *testing.T) {
	r, n := resynced(t)
	err := r.drv.Execute(context.Background(), callbridge.SwitchCommand{
		Type: callbridge.SwitchMakeCall, Tenant: "acme", Device: "1003", To: "15557654321",
		CorrelationID: "01JABCDEFGHJKMNPQRSTVWXYZ0", Data: map[string]string{"ivr_reason": "callback", "crm_note": "a b"},
	})
	if err != nil {
		t.Fatal(err)
	}
	got := r.rec.since(n)
	if len(got) != 1 {
		t.Fatalf("wrote %q", got)
	}
	line := got[0]
	for _, part := range []string{
		"bgapi originate {origination_uuid=", ",origination_caller_id_number=15557654321,origination_caller_id_name=15557654321,",
		",originate_timeout=30,cti_tenant=acme,cti_correlation_id=01JABCDEFGHJKMNPQRSTVWXYZ0,ivr_reason=callback}user/1003 15557654321 XML default",
	} {
		if !strings.Contains(line, part) {
			t.Errorf("originate %q lacks %q", line, part)
		}
	}
	if strings.Contains(line, "crm_note") {
		t.Errorf("data that is not a data variable was sent: %q", line)
	}
}

// TestExecuteRefusesBadValues: CR, LF, NUL, spaces and dial-string metacharacters are
// refused with EInvalid before anything is written.
func TestExecuteRefusesBadValues(t *testing.T) {
	r, n := resynced(t)
	ctx := context.Background()
	for _, cmd := range []callbridge.SwitchCommand{
		{Type: callbridge.SwitchSingleStepTransfer, PBXCallID: callA, Device: "1001", To: "1003 XML public"},
		{Type: callbridge.SwitchSingleStepTransfer, PBXCallID: callA, Device: "1001", To: "1003\n\napi shutdown"},
		{Type: callbridge.SwitchSingleStepTransfer, PBXCallID: callA, Device: "1001", To: "{x=y}1003"},
		{Type: callbridge.SwitchSingleStepTransfer, PBXCallID: callA, Device: "1001", To: "1003,1004"},
		{Type: callbridge.SwitchSingleStepTransfer, PBXCallID: callA, Device: "1001", To: "[a]1003|x"},
		{Type: callbridge.SwitchSingleStepTransfer, PBXCallID: callA + "\r", Device: "1001", To: "1003"},
		{Type: callbridge.SwitchMakeCall, Tenant: "acme", Device: "1003", To: "${system(rm)}"},
		{Type: callbridge.SwitchMakeCall, Tenant: "acme", Device: "1003 x", To: "1555"},
		{Type: callbridge.SwitchMakeCall, Tenant: "acme", Device: "1003", To: "1555", CorrelationID: "a,b"},
		{Type: callbridge.SwitchConsultationCall, PBXCallID: callA, Device: "1001", To: "1004\x00"},
		{Type: callbridge.SwitchSetMemberState, Device: "1003", Interface: "1003@default' Available", Action: callbridge.MemberAdd},
		{Type: callbridge.SwitchSetMemberState, Device: "1003", Interface: "1003@default", Action: callbridge.MemberPause, Paused: true, Reason: "x\ny"},
	} {
		if err := r.drv.Execute(ctx, cmd); callbridge.ErrorCode(err) != callbridge.EInvalid {
			t.Errorf("%s %+v: err = %v, want invalid", cmd.Type, cmd, err)
		}
	}
	if got := r.rec.since(n); len(got) != 0 {
		t.Fatalf("written: %q", got)
	}
}

// TestExecuteErrors: unknown calls and devices are not_found; answer and conference are not
// supported; before a connection everything is unavailable.
func TestExecuteErrors(t *testing.T) {
	r, _ := resynced(t)
	ctx := context.Background()
	for cmd, code := range map[*callbridge.SwitchCommand]string{
		{Type: callbridge.SwitchHoldCall, PBXCallID: "no-such-call", Device: "1001"}:   callbridge.ENotFound,
		{Type: callbridge.SwitchHoldCall, PBXCallID: callA, Device: "1004"}:            callbridge.ENotFound,
		{Type: callbridge.SwitchTransferCall, PBXCallID: callA, ConsultPBXCallID: "x"}: callbridge.ENotFound,
		{Type: callbridge.SwitchAnswerCall, PBXCallID: callA, Device: "1001"}:          callbridge.ENotSupported,
		{Type: callbridge.SwitchConferenceCall, PBXCallID: callA, Device: "1001"}:      callbridge.ENotSupported,
	} {
		if err := r.drv.Execute(ctx, *cmd); callbridge.ErrorCode(err) != code {
			t.Errorf("%s: err = %v, want %s", cmd.Type, err, code)
		}
	}
	idle := freeswitch.New(freeswitch.Config{Addr: "127.0.0.1:1"})
	err := idle.Execute(ctx, callbridge.SwitchCommand{Type: callbridge.SwitchSetMemberState, Device: "1001", Action: callbridge.MemberAdd})
	if callbridge.ErrorCode(err) != callbridge.EUnavailable {
		t.Errorf("not connected: %v", err)
	}
	if caps := r.drv.Capabilities(); caps[callbridge.SwitchAnswerCall] || caps[callbridge.SwitchConferenceCall] || !caps[callbridge.SwitchHoldCall] {
		t.Errorf("capabilities %v", caps)
	}
}

// TestExecuteSwitchRejects: a "-ERR …" answer is switch_rejected with FreeSWITCH's text.
func TestExecuteSwitchRejects(t *testing.T) {
	addr := fakeSwitch(t, func(cmd string) string {
		switch {
		case strings.HasPrefix(cmd, "show channels"):
			return `{"row_count":0}` + "\n"
		case strings.HasPrefix(cmd, "callcenter_config agent set"):
			return "-ERR Invalid Agent Status!\n"
		}
		return "+OK\n"
	})
	drv := freeswitch.New(freeswitch.Config{Addr: addr, Password: "ClueCon"})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- drv.Run(ctx, func(callbridge.SwitchEvent) {}) }()
	defer func() { cancel(); <-done }()
	testenv.Eventually(t, "the driver to be in sync", func() bool { return drv.Sync(ctx) == nil })
	err := drv.Execute(ctx, callbridge.SwitchCommand{Type: callbridge.SwitchSetMemberState, Device: "1001", Action: callbridge.MemberAdd})
	if callbridge.ErrorCode(err) != callbridge.ESwitchRejected || !strings.Contains(callbridge.ErrorMessage(err), "Invalid Agent Status!") {
		t.Fatalf("err = %v, want switch_rejected with the switch's text", err)
	}
}
