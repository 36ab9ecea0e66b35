package sim_test

import (
	"reflect"
	"testing"
	"time"

	"github.com/callbridge/callbridge"
	"github.com/callbridge/callbridge/sim"
)

// TestCommandRefusals checks that every refused command returns the right *callbridge.Error
// and changes nothing: no events, the same snapshot, the same timers.
func TestCommandRefusals(t *testing.T) {
	h := newHarness(t, sim.Config{})
	// 1001 talks on x; 1003 talks on y and consults 1004 (ringing) on k; 1002 is ready.
	h.ready("1001", "acme-support")
	x := h.answered("1001")
	h.ready("1003", "acme-support")
	y := h.answered("1003")
	evs := h.mustExec(callbridge.SwitchCommand{Type: callbridge.SwitchConsultationCall, PBXCallID: y, Device: "1003", To: "1004"})
	k := evs[1].PBXCallID
	h.ready("1002", "acme-support")
	ani := callbridge.DeviceID("+15551230001")

	type C = callbridge.SwitchCommand
	const (
		mk    = callbridge.SwitchMakeCall
		ans   = callbridge.SwitchAnswerCall
		clr   = callbridge.SwitchClearConnection
		clrC  = callbridge.SwitchClearCall
		hold  = callbridge.SwitchHoldCall
		ret   = callbridge.SwitchRetrieveCall
		sst   = callbridge.SwitchSingleStepTransfer
		cons  = callbridge.SwitchConsultationCall
		xfer  = callbridge.SwitchTransferCall
		conf  = callbridge.SwitchConferenceCall
		mem   = callbridge.SwitchSetMemberState
		add   = callbridge.MemberAdd
		rem   = callbridge.MemberRemove
		pause = callbridge.MemberPause
	)
	qs := func(q ...callbridge.QueueName) []callbridge.QueueName { return q }
	cases := []struct {
		name string
		cmd  C
		code string
	}{
		{"unknown command type", C{Type: "bogus"}, callbridge.EInvalid},
		{"malformed tenant", C{Type: clrC, Tenant: "a b", PBXCallID: x}, callbridge.EInvalid},
		{"unknown tenant", C{Type: clrC, Tenant: "nope", PBXCallID: x}, callbridge.ENotFound},
		{"call of another tenant", C{Type: clrC, Tenant: "globex", PBXCallID: x}, callbridge.ENotFound},
		{"clear_call without call", C{Type: clrC}, callbridge.EInvalid},
		{"unknown call", C{Type: ans, PBXCallID: "sim-999999", Device: "1002"}, callbridge.ENotFound},
		{"answer a connected call", C{Type: ans, PBXCallID: x, Device: "1001"}, callbridge.EConflict},
		{"answer without connection", C{Type: ans, PBXCallID: x, Device: "1002"}, callbridge.ENotFound},
		{"answer by an outside party", C{Type: ans, PBXCallID: x, Device: ani}, callbridge.ENotFound},
		{"device with CR LF", C{Type: ans, PBXCallID: x, Device: "10\r\n01"}, callbridge.EInvalid},
		{"call id with LF", C{Type: ans, PBXCallID: "sim-1\n", Device: "1001"}, callbridge.EInvalid},
		{"clear_connection unknown device", C{Type: clr, PBXCallID: x, Device: "9999"}, callbridge.ENotFound},
		{"clear_connection without device", C{Type: clr, PBXCallID: x}, callbridge.EInvalid},
		{"hold by an outside party", C{Type: hold, PBXCallID: x, Device: ani}, callbridge.ENotFound},
		{"retrieve a call not held", C{Type: ret, PBXCallID: x, Device: "1001"}, callbridge.EConflict},
		{"hold a held call", C{Type: hold, PBXCallID: y, Device: "1003"}, callbridge.EConflict},
		{"hold while another call is held", C{Type: hold, PBXCallID: k, Device: "1003"}, callbridge.EConflict},
		{"retrieve while consulting", C{Type: ret, PBXCallID: y, Device: "1003"}, callbridge.EConflict},
		{"transfer to itself", C{Type: sst, PBXCallID: x, Device: "1001", To: "1001"}, callbridge.EInvalid},
		{"transfer to nobody", C{Type: sst, PBXCallID: x, Device: "1001", To: "nobody"}, callbridge.ENotFound},
		{"transfer to a short unknown number", C{Type: sst, PBXCallID: x, Device: "1001", To: "12"}, callbridge.ENotFound},
		{"transfer to a dial string", C{Type: sst, PBXCallID: x, Device: "1001", To: "1002&PJSIP/evil"}, callbridge.EInvalid},
		{"transfer to an empty target", C{Type: sst, PBXCallID: x, Device: "1001"}, callbridge.EInvalid},
		{"transfer to a ringing device", C{Type: sst, PBXCallID: x, Device: "1001", To: "1004"}, callbridge.EConflict},
		{"transfer to another tenant's agent", C{Type: sst, PBXCallID: x, Device: "1001", To: "2001"}, callbridge.ENotFound},
		{"transfer to another tenant's queue", C{Type: sst, PBXCallID: x, Device: "1001", To: "globex-sales"}, callbridge.ENotFound},
		{"transfer a held call with a consultation", C{Type: sst, PBXCallID: k, Device: "1003", To: "1002"}, callbridge.EConflict},
		{"consult a busy device", C{Type: cons, PBXCallID: x, Device: "1001", To: "1003"}, callbridge.EConflict},
		{"consult from a held call", C{Type: cons, PBXCallID: y, Device: "1003", To: "1002"}, callbridge.EConflict},
		{"transfer_call without consultation", C{Type: xfer, PBXCallID: y, Device: "1003"}, callbridge.EInvalid},
		{"transfer_call with itself", C{Type: xfer, PBXCallID: y, ConsultPBXCallID: y, Device: "1003"}, callbridge.EInvalid},
		{"transfer_call unknown consultation", C{Type: xfer, PBXCallID: y, ConsultPBXCallID: "sim-999999", Device: "1003"}, callbridge.ENotFound},
		{"transfer_call with a foreign consultation", C{Type: xfer, PBXCallID: x, ConsultPBXCallID: k, Device: "1001"}, callbridge.EConflict},
		{"transfer_call by a device not in the call", C{Type: xfer, PBXCallID: y, ConsultPBXCallID: k, Device: "1004"}, callbridge.ENotFound},
		{"conference with a ringing target", C{Type: conf, PBXCallID: y, ConsultPBXCallID: k, Device: "1003"}, callbridge.EConflict},
		{"make_call from a busy device", C{Type: mk, Device: "1001", To: "15551234567"}, callbridge.EConflict},
		{"make_call to a busy device", C{Type: mk, Device: "1002", To: "1001"}, callbridge.EConflict},
		{"make_call from another tenant's device", C{Type: mk, Device: "2001", To: "15551234567"}, callbridge.ENotFound},
		{"make_call to itself", C{Type: mk, Device: "1002", To: "1002"}, callbridge.EInvalid},
		{"make_call with CR LF in data", C{Type: mk, Device: "1002", To: "15551234567", Data: map[string]string{"k": "a\r\nb"}}, callbridge.EInvalid},
		{"make_call with an empty data key", C{Type: mk, Device: "1002", To: "15551234567", Data: map[string]string{"": "x"}}, callbridge.EInvalid},
		{"make_call with LF in correlation id", C{Type: mk, Device: "1002", To: "15551234567", CorrelationID: "c\n"}, callbridge.EInvalid},
		{"add an existing member", C{Type: mem, Device: "1002", Action: add, Queues: qs("acme-sales", "acme-support")}, callbridge.EConflict},
		{"remove a non-member", C{Type: mem, Device: "1002", Action: rem, Queues: qs("acme-sales")}, callbridge.EConflict},
		{"add without queues", C{Type: mem, Device: "1002", Action: add}, callbridge.EInvalid},
		{"add to an unknown queue", C{Type: mem, Device: "1002", Action: add, Queues: qs("nope")}, callbridge.ENotFound},
		{"add to another tenant's queue", C{Type: mem, Device: "1002", Action: add, Queues: qs("globex-sales")}, callbridge.ENotFound},
		{"member action missing", C{Type: mem, Device: "1002", Queues: qs("acme-sales")}, callbridge.EInvalid},
		{"pause a device in no queue", C{Type: mem, Device: "1004", Action: pause, Paused: true}, callbridge.EConflict},
		{"pause in a queue twice", C{Type: mem, Device: "1002", Action: pause, Queues: qs("acme-support", "acme-support")}, callbridge.EInvalid},
		{"reason with CR", C{Type: mem, Device: "1002", Action: pause, Paused: true, Reason: "lunch\r"}, callbridge.EInvalid},
	}
	h.advance(time.Second)
	for _, tc := range cases {
		before, next, st := h.p.Snapshot(h.now), h.p.NextDeadline(), h.p.Stats()
		evs, err := h.exec(tc.cmd)
		if callbridge.ErrorCode(err) != tc.code {
			t.Errorf("%s: error %v, want code %s", tc.name, err, tc.code)
		}
		if len(evs) != 0 {
			t.Errorf("%s: events %q from a refused command", tc.name, types(evs))
		}
		if after := h.p.Snapshot(h.now); !reflect.DeepEqual(before, after) || next != h.p.NextDeadline() || st != h.p.Stats() {
			t.Errorf("%s: the refused command changed the switch", tc.name)
		}
	}
	if !t.Failed() {
		h.checkSnapshot()
	}
}

func TestCapabilitiesListEveryCommand(t *testing.T) {
	d := sim.New(sim.Config{Directory: testDirectory()}, nil)
	caps := d.Capabilities()
	for _, c := range []callbridge.SwitchCommandType{
		callbridge.SwitchMakeCall, callbridge.SwitchAnswerCall, callbridge.SwitchClearConnection,
		callbridge.SwitchClearCall, callbridge.SwitchHoldCall, callbridge.SwitchRetrieveCall,
		callbridge.SwitchSingleStepTransfer, callbridge.SwitchConsultationCall, callbridge.SwitchTransferCall,
		callbridge.SwitchConferenceCall, callbridge.SwitchSetMemberState,
	} {
		if !caps[c] {
			t.Errorf("capability %s missing", c)
		}
	}
}
