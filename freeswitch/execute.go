package freeswitch

import (
	"context"
	"crypto/rand"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/callbridge/callbridge"
)

// Capabilities lists the commands Execute carries out. Not supported: answer_call
// (FreeSWITCH cannot make a SIP phone go off-hook) and conference_call (att_xfer has no
// conference that can be started from the event socket).
func (d *Driver) Capabilities() callbridge.Capabilities {
	return callbridge.Capabilities{
		callbridge.SwitchMakeCall:           true,
		callbridge.SwitchClearConnection:    true,
		callbridge.SwitchClearCall:          true,
		callbridge.SwitchHoldCall:           true,
		callbridge.SwitchRetrieveCall:       true,
		callbridge.SwitchSingleStepTransfer: true,
		callbridge.SwitchConsultationCall:   true,
		callbridge.SwitchTransferCall:       true,
		callbridge.SwitchSetMemberState:     true,
	}
}

// Execute carries out cmd with api and bgapi commands (see callbridge.Driver for the errors).
// Every value written is checked first (check.go): uuids, targets, contexts, agent names and
// variables; a refused value is an EInvalid error and nothing is sent.
func (d *Driver) Execute(ctx context.Context, cmd callbridge.SwitchCommand) error {
	switch cmd.Type {
	case callbridge.SwitchAnswerCall:
		return callbridge.Errorf(callbridge.ENotSupported,
			"FreeSWITCH cannot answer a SIP phone remotely; answer on the phone, or use auto-answer")
	case callbridge.SwitchConferenceCall:
		return callbridge.Errorf(callbridge.ENotSupported,
			"FreeSWITCH's att_xfer cannot be turned into a conference from callbridge; transfer the call instead")
	case callbridge.SwitchMakeCall:
		return d.makeCall(ctx, cmd)
	case callbridge.SwitchClearConnection:
		return d.clearConnection(ctx, cmd)
	case callbridge.SwitchClearCall:
		return d.clearCall(ctx, cmd)
	case callbridge.SwitchHoldCall:
		return d.hold(ctx, cmd, true)
	case callbridge.SwitchRetrieveCall:
		return d.hold(ctx, cmd, false)
	case callbridge.SwitchSingleStepTransfer:
		return d.blindTransfer(ctx, cmd)
	case callbridge.SwitchConsultationCall:
		return d.consult(ctx, cmd)
	case callbridge.SwitchTransferCall:
		return d.completeTransfer(ctx, cmd)
	case callbridge.SwitchSetMemberState:
		return d.setMemberState(ctx, cmd)
	}
	return callbridge.Errorf(callbridge.ENotSupported, "command %q is not supported by the FreeSWITCH driver", cmd.Type)
}

// makeCall is the agent-first click-to-call of fs-click-to-call: originate rings the agent's
// phone (user/<device>); once it answers, the agent's leg runs the number in the dialplan
// context (Config.Context), which dials the customer (dialplan/default.xml pstn_out). The
// origination_uuid makes the agent leg's Unique-ID (and so the PBXCallID) known before any
// event, so the call_started it causes carries cmd.CorrelationID; origination_caller_id_*
// show the customer's number on the agent's phone. The command returns once FreeSWITCH
// accepted the job; the job itself ends when the agent answers (BACKGROUND_JOB).
func (d *Driver) makeCall(ctx context.Context, cmd callbridge.SwitchCommand) error {
	if err := CheckTarget("to", cmd.To); err != nil {
		return err
	}
	if err := callbridge.CheckDialTarget("device", string(cmd.Device)); err != nil {
		return err
	}
	if !callbridge.ValidToken(string(cmd.Tenant)) {
		return callbridge.Errorf(callbridge.EInvalid, "tenant %q is not valid", cmd.Tenant)
	}
	if err := CheckContext("context", d.cfg.Context); err != nil {
		return err
	}
	vars := []string{}
	uuid := newUUID()
	add := func(k, v string) error {
		if err := CheckVarName("variable", k); err != nil {
			return err
		}
		if err := CheckVarValue("variable "+k, v); err != nil {
			return err
		}
		vars = append(vars, k+"="+v)
		return nil
	}
	for _, kv := range [][2]string{
		{"origination_uuid", uuid},
		{"origination_caller_id_number", cmd.To},
		{"origination_caller_id_name", cmd.To},
		{"originate_timeout", strconv.Itoa(int(d.cfg.OriginateTimeout.Seconds()))},
		{d.tr.tenantVar, string(cmd.Tenant)},
	} {
		if err := add(kv[0], kv[1]); err != nil {
			return err
		}
	}
	if cmd.CorrelationID != "" {
		if err := add(CorrelationVariable, cmd.CorrelationID); err != nil {
			return err
		}
	}
	// Attached data travels as channel variables only where the tracker would report it back
	// (DataVariables) and the value is safe in a {…} block; the engine keeps the rest.
	keys := make([]string, 0, len(cmd.Data))
	for k := range cmd.Data {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if d.tr.isData(k) && CheckVarName("k", k) == nil && CheckVarValue("v", cmd.Data[k]) == nil {
			vars = append(vars, k+"="+cmd.Data[k])
		}
	}
	line := "originate {" + strings.Join(vars, ",") + "}user/" + string(cmd.Device) + " " + cmd.To + " XML " + d.cfg.Context
	d.mu.Lock()
	d.tr.ExpectOriginate(uuid, cmd.CorrelationID, cmd.To)
	d.mu.Unlock()
	if _, err := d.doBG(ctx, line); err != nil {
		d.mu.Lock()
		d.tr.ForgetOriginate(uuid)
		d.mu.Unlock()
		return err
	}
	return nil
}

// leg returns the Unique-ID of the device's leg in the call, checked for writing.
func (d *Driver) leg(pbxCallID string, device callbridge.DeviceID) (string, error) {
	if err := callbridge.CheckSwitchValue("pbx_call_id", pbxCallID); err != nil {
		return "", err
	}
	if err := callbridge.CheckSwitchValue("device", string(device)); err != nil {
		return "", err
	}
	d.mu.Lock()
	uuid, err := d.tr.Leg(pbxCallID, device)
	d.mu.Unlock()
	if err != nil {
		return "", err
	}
	return uuid, CheckUUID("leg", uuid)
}

// clearConnection hangs up the device's leg ("uuid_kill <uuid>"). The consulting agent of an
// att_xfer has one leg in both calls: leaving the consultation hangs up its target instead
// (att_xfer then gives the agent back the held caller), and leaving the original call is
// refused, since hanging up would complete the transfer.
func (d *Driver) clearConnection(ctx context.Context, cmd callbridge.SwitchCommand) error {
	uuid, err := d.leg(cmd.PBXCallID, cmd.Device)
	if err != nil {
		return err
	}
	d.mu.Lock()
	consult, consulting := d.tr.Consulting(cmd.PBXCallID, cmd.Device)
	d.mu.Unlock()
	switch {
	case consulting && consult == cmd.PBXCallID:
		return d.clearCall(ctx, cmd)
	case consulting:
		return callbridge.Errorf(callbridge.EConflict,
			"device %s is consulting in call %s; transfer the call or end the consultation first", cmd.Device, consult)
	}
	_, err = d.do(ctx, "uuid_kill "+uuid)
	return err
}

// clearCall hangs up every party's leg (for a consultation every party but the consulting
// agent). A leg that is already gone ("-ERR No such channel!") is not an error as long as
// one hangup was accepted.
func (d *Driver) clearCall(ctx context.Context, cmd callbridge.SwitchCommand) error {
	if err := callbridge.CheckSwitchValue("pbx_call_id", cmd.PBXCallID); err != nil {
		return err
	}
	d.mu.Lock()
	legs, err := d.tr.Legs(cmd.PBXCallID)
	d.mu.Unlock()
	if err != nil {
		return err
	}
	var first error
	ok := false
	for _, uuid := range legs {
		if err := CheckUUID("leg", uuid); err != nil {
			return err
		}
		if _, err := d.do(ctx, "uuid_kill "+uuid); err != nil {
			if first == nil {
				first = err
			}
			if callbridge.ErrorCode(err) == callbridge.EUnavailable || ctx.Err() != nil {
				return err
			}
			continue
		}
		ok = true
	}
	if ok || first == nil {
		return nil
	}
	return first
}

// hold puts the device's leg on hold ("uuid_hold <uuid>") or takes it off ("uuid_hold off
// <uuid>"). FreeSWITCH sends the hold re-INVITE to that leg's phone and plays music to its
// partner (fs-hold), which is what the agent pressing hold does.
func (d *Driver) hold(ctx context.Context, cmd callbridge.SwitchCommand, on bool) error {
	uuid, err := d.leg(cmd.PBXCallID, cmd.Device)
	if err != nil {
		return err
	}
	line := "uuid_hold " + uuid
	if !on {
		line = "uuid_hold off " + uuid
	}
	_, err = d.do(ctx, line)
	return err
}

// blindTransfer sends the agent's partner to cmd.To: "uuid_transfer <agent leg> -bleg <to>
// XML <context>", exactly as in fs-blind-transfer. FreeSWITCH hangs up the agent's leg and
// runs the target in the caller's leg, which keeps its Unique-ID (and so the call its
// PBXCallID).
func (d *Driver) blindTransfer(ctx context.Context, cmd callbridge.SwitchCommand) error {
	if err := CheckTarget("to", cmd.To); err != nil {
		return err
	}
	if err := CheckContext("context", d.cfg.Context); err != nil {
		return err
	}
	uuid, err := d.leg(cmd.PBXCallID, cmd.Device)
	if err != nil {
		return err
	}
	_, err = d.do(ctx, "uuid_transfer "+uuid+" -bleg "+cmd.To+" XML "+d.cfg.Context)
	return err
}

// consult starts an attended transfer: att_xfer runs on the agent's leg ("uuid_broadcast
// <agent leg> att_xfer::user/<to> aleg"), holding the caller and calling the target; a
// target that is not a directory user (an outside number) is called through the dialplan
// context with a loopback channel.
func (d *Driver) consult(ctx context.Context, cmd callbridge.SwitchCommand) error {
	if err := CheckTarget("to", cmd.To); err != nil {
		return err
	}
	uuid, err := d.leg(cmd.PBXCallID, cmd.Device)
	if err != nil {
		return err
	}
	target := "user/" + cmd.To
	if isNumber(cmd.To) && len(cmd.To) > 6 {
		if err := CheckContext("context", d.cfg.Context); err != nil {
			return err
		}
		target = "loopback/" + cmd.To + "/" + d.cfg.Context
	}
	d.mu.Lock()
	d.tr.ExpectConsult(uuid, cmd.CorrelationID, cmd.To)
	d.mu.Unlock()
	_, err = d.do(ctx, "uuid_broadcast "+uuid+" att_xfer::"+target+" aleg")
	return err
}

func isNumber(s string) bool {
	s = strings.TrimPrefix(s, "+")
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// completeTransfer completes an att_xfer consultation by hanging up the consulting agent's
// leg: att_xfer then bridges the target to the held caller (README "Transfers": a
// CHANNEL_BRIDGE target → caller follows).
func (d *Driver) completeTransfer(ctx context.Context, cmd callbridge.SwitchCommand) error {
	if cmd.ConsultPBXCallID == "" {
		return callbridge.Errorf(callbridge.EInvalid, "%s needs the consultation call", cmd.Type)
	}
	d.mu.Lock()
	of, known := d.tr.ConsultOf(cmd.ConsultPBXCallID)
	d.mu.Unlock()
	if !known {
		return callbridge.Errorf(callbridge.ENotFound, "consultation %q is not on the switch", cmd.ConsultPBXCallID)
	}
	if cmd.PBXCallID != "" && of != cmd.PBXCallID {
		return callbridge.Errorf(callbridge.EInvalid, "call %q is not a consultation of %q", cmd.ConsultPBXCallID, cmd.PBXCallID)
	}
	uuid, err := d.leg(cmd.ConsultPBXCallID, cmd.Device)
	if err != nil {
		return err
	}
	_, err = d.do(ctx, "uuid_kill "+uuid)
	return err
}

// setMemberState changes a mod_callcenter agent with "callcenter_config agent set status
// <agent> <status>" (and "… set state <agent> Waiting" to undo an Idle), as in
// fs-agent-state. The agent is cmd.Interface (provisioning: "1001@default"), else the agent
// a resync listing gave the device, else "<device>@default". mod_callcenter keeps status per
// agent, not per queue (README "Agent state"), so:
//
//   - add → Available ("On Break" when added paused); remove → "Logged Out";
//   - pause → "On Break" (the reason is remembered for the agent-status-change that
//     follows), except a wrap_up pause: mod_callcenter applies its own wrap-up-time after
//     every queue call and announces nothing, so there is nothing to do;
//   - unpause → Available, unless the agent is Available already (the end of a wrap-up), and
//     state Waiting when mod_callcenter's state is Idle.
func (d *Driver) setMemberState(ctx context.Context, cmd callbridge.SwitchCommand) error {
	name := cmd.Interface
	d.mu.Lock()
	if name == "" {
		name = d.tr.AgentName(cmd.Device)
	}
	if name == "" {
		name = string(cmd.Device) + "@default"
	}
	status, state := d.tr.AgentStatus(name)
	d.mu.Unlock()
	if err := CheckAgentName("agent", name); err != nil {
		return err
	}
	if err := callbridge.CheckSwitchValue("reason", cmd.Reason); err != nil {
		return err
	}
	var lines []string
	switch {
	case cmd.Action == callbridge.MemberRemove:
		lines = append(lines, "callcenter_config agent set status "+name+" 'Logged Out'")
	case cmd.Paused && cmd.Action == callbridge.MemberPause && cmd.Reason == callbridge.ReasonWrapUp:
		return nil
	case cmd.Paused:
		lines = append(lines, "callcenter_config agent set status "+name+" 'On Break'")
	case cmd.Action == callbridge.MemberAdd || cmd.Action == callbridge.MemberPause:
		if cmd.Action == callbridge.MemberAdd || (status != StatusAvailable && status != StatusAvailableOnDemand) {
			lines = append(lines, "callcenter_config agent set status "+name+" Available")
		}
		if state == StateIdle {
			lines = append(lines, "callcenter_config agent set state "+name+" Waiting")
		}
	default:
		return callbridge.Errorf(callbridge.EInvalid, "member action %q is not add, remove or pause", cmd.Action)
	}
	d.mu.Lock()
	old := d.tr.SetAgentReason(name, pauseReason(cmd), cmd.Queues)
	d.mu.Unlock()
	for _, l := range lines {
		if _, err := d.do(ctx, l); err != nil {
			d.mu.Lock()
			d.tr.SetAgentReason(name, old, nil)
			d.mu.Unlock()
			return err
		}
	}
	return nil
}

func pauseReason(cmd callbridge.SwitchCommand) string {
	if cmd.Paused {
		return cmd.Reason
	}
	return ""
}

// newUUID returns a random version 4 UUID, the form of FreeSWITCH's Unique-IDs.
func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
