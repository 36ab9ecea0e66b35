package sim

import (
	"time"

	"github.com/callbridge/callbridge"
)

// Limits on command values.
const (
	maxDataKeys   = 64
	maxDataKey    = 64
	maxDataValue  = 1024
	maxShortValue = 128 // Reason, CorrelationID, Interface, MemberName
)

// Capabilities returns every switch command: the simulated switch supports them all.
func Capabilities() callbridge.Capabilities {
	return callbridge.Capabilities{
		callbridge.SwitchMakeCall:           true,
		callbridge.SwitchAnswerCall:         true,
		callbridge.SwitchClearConnection:    true,
		callbridge.SwitchClearCall:          true,
		callbridge.SwitchHoldCall:           true,
		callbridge.SwitchRetrieveCall:       true,
		callbridge.SwitchSingleStepTransfer: true,
		callbridge.SwitchConsultationCall:   true,
		callbridge.SwitchTransferCall:       true,
		callbridge.SwitchConferenceCall:     true,
		callbridge.SwitchSetMemberState:     true,
	}
}

// Execute applies cmd at now and returns the events it causes at once; later effects (a
// phone that answers, a customer who picks up) come from Advance. It does not run timers:
// call Advance(now) first.
//
// Every command names cmd.Tenant; calls, devices and queues of another tenant do not exist
// for it. Device is the acting agent's device (for clear_connection it may also be an
// outside party of the call). To is an agent's extension, an agent's user name, a queue of
// the tenant, or an outside number (7 or more digits, optionally with a leading +).
//
//   - make_call (Device, To, CorrelationID, Data): call_started(outbound, or internal to an
//     extension or queue) with CorrelationID and Data, alerting(Device); after
//     AutoAnswerAgentLeg connected(Device), then To is dialled (see consultation_call).
//   - answer_call (PBXCallID, Device alerting): [dequeued(Queue) for a queue offer]
//     connected(Device).
//   - clear_connection (PBXCallID, Device): an alerting Device rejects: failed(call_rejected);
//     a queue offer then goes to the next member, any other call clears. A talking Device
//     leaves: connection_cleared(normal_clearing), then call_cleared(normal_clearing) when
//     fewer than two parties remain. The caller of a call in queue abandons it.
//   - clear_call (PBXCallID): [dequeued(call_abandoned)] call_cleared(normal_clearing).
//   - hold_call / retrieve_call (PBXCallID, Device): held / retrieved on Device.
//   - single_step_transfer (PBXCallID, Device talking with one other party, To):
//     transferred(TransferringDevice, TransferredTo) then connection_cleared(Device,
//     transfer), then To rings (alerting; it fails with no_answer after RingTimeout and the
//     call clears), or the call is queued, or the number rings and answers. Same PBXCallID.
//   - consultation_call (PBXCallID, Device connected and in no other call, To, Data):
//     held(Device) on the call, call_started(new PBXCallID, ConsultOf, Device, Data = the
//     call's data plus cmd.Data), connected(Device), then To is dialled as above.
//   - transfer_call (PBXCallID held by Device, ConsultPBXCallID a consultation of it with
//     its target alerting or connected): transferred(ConsultPBXCallID, TransferringDevice,
//     TransferredTo) on PBXCallID, connection_cleared(Device, transfer), call_cleared of the
//     consultation with cause transfer. The target keeps its leg, now in PBXCallID.
//   - conference_call (as transfer_call, target connected): conferenced(Device,
//     TransferredTo, ConsultPBXCallID) on PBXCallID, call_cleared of the consultation with
//     cause conference. Device is connected again (no separate retrieved), three parties talk.
//   - set_member_state (Device, Action, Queues, Paused, Reason): one member_state per queue.
//     add and remove need Queues; pause with no Queues means every queue of Device.
//
// Errors are *callbridge.Error and change nothing: EInvalid for a malformed or missing
// value (unknown command type, CR/LF, bad dial target, a target equal to Device); ENotFound
// for an unknown tenant, call, device, queue or target, or a device with no connection to
// the call; EConflict for a state that does not allow the command (not alerting, not
// connected, the target device busy, already a member, …).
func (p *PBX) Execute(now time.Time, cmd callbridge.SwitchCommand) ([]callbridge.SwitchEvent, error) {
	p.setNow(now)
	p.out = nil
	if err := p.execute(cmd); err != nil {
		p.out = nil
		return nil, err
	}
	p.dispatch()
	return p.take(), nil
}

func (p *PBX) execute(cmd callbridge.SwitchCommand) error {
	if err := checkCommand(cmd); err != nil {
		return err
	}
	tn := p.tenantBy[cmd.Tenant]
	if tn == nil {
		return callbridge.Errorf(callbridge.ENotFound, "unknown tenant %s", cmd.Tenant)
	}
	switch cmd.Type {
	case callbridge.SwitchMakeCall:
		return p.makeCall(tn, cmd)
	case callbridge.SwitchAnswerCall:
		pa, err := p.partyFor(tn, cmd.PBXCallID, cmd.Device, false)
		if err != nil {
			return err
		}
		if pa.state != callbridge.ConnAlerting {
			return conflict("device %s is %s, not alerting, in call %s", pa.id, pa.state, cmd.PBXCallID)
		}
		p.answer(pa)
		return nil
	case callbridge.SwitchClearConnection:
		pa, err := p.partyFor(tn, cmd.PBXCallID, cmd.Device, true)
		if err != nil {
			return err
		}
		p.hangup(pa)
		return nil
	case callbridge.SwitchClearCall:
		c, err := p.callFor(tn, cmd.PBXCallID)
		if err != nil {
			return err
		}
		p.clearCall(c, callbridge.CauseNormal)
		return nil
	case callbridge.SwitchHoldCall:
		pa, err := p.partyFor(tn, cmd.PBXCallID, cmd.Device, false)
		if err != nil {
			return err
		}
		return p.hold(pa)
	case callbridge.SwitchRetrieveCall:
		pa, err := p.partyFor(tn, cmd.PBXCallID, cmd.Device, false)
		if err != nil {
			return err
		}
		return p.retrieve(pa)
	case callbridge.SwitchSingleStepTransfer:
		return p.singleStepTransfer(tn, cmd)
	case callbridge.SwitchConsultationCall:
		return p.consultationCall(tn, cmd)
	case callbridge.SwitchTransferCall, callbridge.SwitchConferenceCall:
		pa, k, err := p.consultPair(tn, cmd.PBXCallID, cmd.ConsultPBXCallID, cmd.Device)
		if err != nil {
			return err
		}
		if cmd.Type == callbridge.SwitchTransferCall {
			return p.completeTransfer(pa, k)
		}
		return p.conference(pa, k)
	case callbridge.SwitchSetMemberState:
		return p.setMemberState(tn, cmd)
	}
	return callbridge.Errorf(callbridge.EInvalid, "unknown command type %q", cmd.Type)
}

func conflict(format string, args ...any) error {
	return callbridge.Errorf(callbridge.EConflict, format, args...)
}

func notFound(format string, args ...any) error {
	return callbridge.Errorf(callbridge.ENotFound, format, args...)
}

func invalid(format string, args ...any) error {
	return callbridge.Errorf(callbridge.EInvalid, format, args...)
}

// checkCommand validates the values of cmd that do not need the PBX's state.
func checkCommand(cmd callbridge.SwitchCommand) error {
	if !callbridge.ValidToken(string(cmd.Tenant)) {
		return invalid("tenant %q is not a valid id", cmd.Tenant)
	}
	for _, f := range []struct{ name, v string }{
		{"pbx_call_id", cmd.PBXCallID}, {"consult_pbx_call_id", cmd.ConsultPBXCallID},
		{"interface", cmd.Interface}, {"member_name", cmd.MemberName},
		{"reason", cmd.Reason}, {"correlation_id", cmd.CorrelationID},
	} {
		if err := callbridge.CheckSwitchValue(f.name, f.v); err != nil {
			return err
		}
		if len(f.v) > maxShortValue {
			return invalid("%s is longer than %d characters", f.name, maxShortValue)
		}
	}
	if err := checkData(cmd.Data); err != nil {
		return err
	}
	needCall := func() error {
		if cmd.PBXCallID == "" {
			return invalid("pbx_call_id is missing")
		}
		return nil
	}
	needDevice := func() error { return callbridge.CheckDialTarget("device", string(cmd.Device)) }
	needTo := func() error { return callbridge.CheckDialTarget("to", cmd.To) }
	var errs []func() error
	switch cmd.Type {
	case callbridge.SwitchMakeCall:
		errs = append(errs, needDevice, needTo)
	case callbridge.SwitchAnswerCall, callbridge.SwitchClearConnection,
		callbridge.SwitchHoldCall, callbridge.SwitchRetrieveCall:
		errs = append(errs, needCall, needDevice)
	case callbridge.SwitchClearCall:
		errs = append(errs, needCall)
	case callbridge.SwitchSingleStepTransfer, callbridge.SwitchConsultationCall:
		errs = append(errs, needCall, needDevice, needTo)
	case callbridge.SwitchTransferCall, callbridge.SwitchConferenceCall:
		errs = append(errs, needCall, needDevice, func() error {
			if cmd.ConsultPBXCallID == "" {
				return invalid("consult_pbx_call_id is missing")
			}
			if cmd.ConsultPBXCallID == cmd.PBXCallID {
				return invalid("consult_pbx_call_id is the call itself")
			}
			return nil
		})
	case callbridge.SwitchSetMemberState:
		errs = append(errs, needDevice, func() error {
			switch cmd.Action {
			case callbridge.MemberAdd, callbridge.MemberRemove:
				if len(cmd.Queues) == 0 {
					return invalid("queues are missing for %s", cmd.Action)
				}
			case callbridge.MemberPause:
			default:
				return invalid("unknown member action %q", cmd.Action)
			}
			seen := map[callbridge.QueueName]bool{}
			for _, q := range cmd.Queues {
				if err := callbridge.CheckDialTarget("queue", string(q)); err != nil {
					return err
				}
				if seen[q] {
					return invalid("queue %s is listed twice", q)
				}
				seen[q] = true
			}
			return nil
		})
	default:
		return invalid("unknown command type %q", cmd.Type)
	}
	for _, f := range errs {
		if err := f(); err != nil {
			return err
		}
	}
	return nil
}

// checkData validates attached data: at most 64 keys, keys 1-64 characters, values up to
// 1024 characters, no CR, LF or NUL.
func checkData(m map[string]string) error {
	if len(m) > maxDataKeys {
		return invalid("data has more than %d keys", maxDataKeys)
	}
	for k, v := range m {
		if k == "" || len(k) > maxDataKey {
			return invalid("data key %q must be 1-%d characters", k, maxDataKey)
		}
		if err := callbridge.CheckSwitchValue("data key", k); err != nil {
			return err
		}
		if len(v) > maxDataValue {
			return invalid("data value of %s is longer than %d characters", k, maxDataValue)
		}
		if err := callbridge.CheckSwitchValue("data value of "+k, v); err != nil {
			return err
		}
	}
	return nil
}

// callFor returns tenant tn's started call id.
func (p *PBX) callFor(tn *tenant, id string) (*call, error) {
	c := p.calls[id]
	if c == nil || !c.started || c.tenant != tn {
		return nil, notFound("unknown call %s", id)
	}
	return c, nil
}

// deviceFor returns tenant tn's agent device id.
func (p *PBX) deviceFor(tn *tenant, id callbridge.DeviceID) (*device, error) {
	d := p.deviceBy[id]
	if d == nil || d.tenant != tn {
		return nil, notFound("unknown device %s", id)
	}
	return d, nil
}

// partyFor returns the connection of device d to call id. d must be an agent device of tn,
// or with outside true also an outside party of the call.
func (p *PBX) partyFor(tn *tenant, id string, d callbridge.DeviceID, outside bool) (*party, error) {
	c, err := p.callFor(tn, id)
	if err != nil {
		return nil, err
	}
	pa := c.partyOf(d)
	if pa != nil && (pa.dev != nil || outside) {
		return pa, nil
	}
	if _, err := p.deviceFor(tn, d); err != nil && pa == nil {
		return nil, err
	}
	return nil, notFound("device %s has no connection to call %s", d, id)
}

// resolve finds what To names for tenant tn: an agent's extension or user name, a queue, or
// an outside number (7-20 digits with an optional leading +).
func (p *PBX) resolve(tn *tenant, to string) (target, error) {
	if d := p.deviceBy[callbridge.DeviceID(to)]; d != nil && d.tenant == tn {
		return target{kind: targetDevice, dev: d}, nil
	}
	if d := tn.byUser[to]; d != nil {
		return target{kind: targetDevice, dev: d}, nil
	}
	if q := p.queueBy[callbridge.QueueName(to)]; q != nil && q.tenant == tn {
		return target{kind: targetQueue, queue: q}, nil
	}
	if !callbridge.IsOutsideNumber(to) {
		return target{}, notFound("unknown target %s", to)
	}
	return target{kind: targetOutside, number: to}, nil
}

// resolveFor resolves To for an acting device d and checks that it can be dialled now.
func (p *PBX) resolveFor(tn *tenant, d *device, to string) (target, error) {
	t, err := p.resolve(tn, to)
	if err != nil {
		return t, err
	}
	if t.kind == targetDevice {
		if t.dev == d {
			return t, invalid("device %s cannot call itself", d.id)
		}
		if len(t.dev.conns) > 0 {
			return t, conflict("device %s is busy", t.dev.id)
		}
		if t.dev.unregistered {
			return t, conflict("device %s is not registered", t.dev.id)
		}
	}
	return t, nil
}

// makeCall starts an agent-first call from cmd.Device to cmd.To.
func (p *PBX) makeCall(tn *tenant, cmd callbridge.SwitchCommand) error {
	d, err := p.deviceFor(tn, cmd.Device)
	if err != nil {
		return err
	}
	if len(d.conns) > 0 {
		return conflict("device %s is busy", d.id)
	}
	if d.unregistered {
		return conflict("device %s is not registered", d.id)
	}
	t, err := p.resolveFor(tn, d, cmd.To)
	if err != nil {
		return err
	}
	dir := callbridge.DirOutbound
	if t.kind != targetOutside {
		dir = callbridge.DirInternal
	}
	c := p.newCall(tn, dir, string(d.id), "", cmd.To)
	c.started, c.dial, c.data = true, t, cloneData(cmd.Data)
	p.stats.CallsStarted++
	pa := p.addParty(c, d, d.id, roleOriginator, callbridge.ConnAlerting)
	ev := pa.event(callbridge.SwitchCallStarted)
	ev.Direction, ev.ANI, ev.DNIS = dir, c.ani, c.dnis
	ev.CorrelationID, ev.Data = cmd.CorrelationID, cloneData(c.data)
	p.emit(ev)
	p.emit(pa.event(callbridge.SwitchAlerting))
	pa.answer = p.schedule(p.cfg.AutoAnswerAgentLeg, tAnswer, nil, nil, pa)
	return nil
}

// hangup is a party hanging up or rejecting (clear_connection, ButtonHangup).
func (p *PBX) hangup(pa *party) {
	cause := callbridge.CauseNormal
	if pa.state == callbridge.ConnAlerting {
		cause = callbridge.CauseRejected
	}
	p.leave(pa, cause)
}

// hold puts a connected party on hold. The device must be in no other call.
func (p *PBX) hold(pa *party) error {
	if pa.state != callbridge.ConnConnected {
		return conflict("device %s is %s, not connected, in call %s", pa.id, pa.state, pa.call.id)
	}
	if pa.dev != nil && len(pa.dev.conns) > 1 {
		return conflict("device %s has another call", pa.id)
	}
	pa.state = callbridge.ConnHeld
	p.emit(pa.event(callbridge.SwitchHeld))
	return nil
}

// retrieve takes a held party off hold. The device must be in no other call.
func (p *PBX) retrieve(pa *party) error {
	if pa.state != callbridge.ConnHeld {
		return conflict("device %s is %s, not held, in call %s", pa.id, pa.state, pa.call.id)
	}
	if pa.dev != nil && len(pa.dev.conns) > 1 {
		return conflict("device %s has another call", pa.id)
	}
	pa.state = callbridge.ConnConnected
	p.emit(pa.event(callbridge.SwitchRetrieved))
	return nil
}

// singleStepTransfer sends the Device's partner to To.
func (p *PBX) singleStepTransfer(tn *tenant, cmd callbridge.SwitchCommand) error {
	pa, err := p.partyFor(tn, cmd.PBXCallID, cmd.Device, false)
	if err != nil {
		return err
	}
	return p.blindTransfer(pa, cmd.To)
}

// blindTransfer sends pa's partner to the target to; pa leaves.
func (p *PBX) blindTransfer(pa *party, to string) error {
	c := pa.call
	if pa.state != callbridge.ConnConnected && pa.state != callbridge.ConnHeld {
		return conflict("device %s is %s in call %s", pa.id, pa.state, c.id)
	}
	if len(c.parties) != 2 || c.talking() != 2 {
		return conflict("call %s is not a call between two talking parties", c.id)
	}
	if c.waiting {
		return conflict("call %s is waiting in queue %s", c.id, c.queue.name)
	}
	t, err := p.resolveFor(c.tenant, pa.dev, to)
	if err != nil {
		return err
	}
	if c.partyOf(t.name()) != nil {
		return conflict("%s is already a party of call %s", to, c.id)
	}
	ev := c.event(callbridge.SwitchTransferred)
	ev.TransferringDevice, ev.TransferredTo = pa.id, t.name()
	p.emit(ev)
	ev = pa.event(callbridge.SwitchConnectionCleared)
	ev.Cause = callbridge.CauseTransferred
	p.emit(ev)
	p.removeParty(pa)
	p.deliver(c, t)
	return nil
}

// consultationCall holds the Device's call and calls To in a new call.
func (p *PBX) consultationCall(tn *tenant, cmd callbridge.SwitchCommand) error {
	pa, err := p.partyFor(tn, cmd.PBXCallID, cmd.Device, false)
	if err != nil {
		return err
	}
	return p.consult(pa, cmd.To, cmd.CorrelationID, cmd.Data)
}

// consult holds pa's call and calls to in a new consultation call that carries the call's
// data plus data; corr (may be empty) is echoed in its call_started.
func (p *PBX) consult(pa *party, to, corr string, data map[string]string) error {
	c := pa.call
	if pa.state != callbridge.ConnConnected {
		return conflict("device %s is %s, not connected, in call %s", pa.id, pa.state, c.id)
	}
	if len(pa.dev.conns) > 1 {
		return conflict("device %s has another call", pa.id)
	}
	t, err := p.resolveFor(c.tenant, pa.dev, to)
	if err != nil {
		return err
	}
	if c.partyOf(t.name()) != nil {
		// A consultation of somebody already in the call could never be transferred to them.
		return conflict("%s is already a party of call %s", to, c.id)
	}
	tn := c.tenant
	pa.state = callbridge.ConnHeld
	p.emit(pa.event(callbridge.SwitchHeld))

	dir := callbridge.DirInternal
	if t.kind == targetOutside {
		dir = callbridge.DirOutbound
	}
	k := p.newCall(tn, dir, string(pa.id), "", to)
	k.started, k.consultOf = true, c.id
	k.data = cloneData(c.data)
	for key, v := range data {
		if k.data == nil {
			k.data = map[string]string{}
		}
		k.data[key] = v
	}
	p.stats.CallsStarted++
	ka := p.addParty(k, pa.dev, pa.id, roleCaller, callbridge.ConnConnected)
	ka.answered = true
	ev := ka.event(callbridge.SwitchCallStarted)
	ev.Direction, ev.ANI, ev.DNIS, ev.ConsultOf, ev.Data = dir, k.ani, k.dnis, c.id, cloneData(k.data)
	ev.CorrelationID = corr
	p.emit(ev)
	p.emit(ka.event(callbridge.SwitchConnected))
	p.deliver(k, t)
	return nil
}

// consultPair checks a transfer_call or conference_call: Device held in call id and
// connected in consultation kid, whose target is there.
func (p *PBX) consultPair(tn *tenant, id, kid string, d callbridge.DeviceID) (*party, *call, error) {
	pa, err := p.partyFor(tn, id, d, false)
	if err != nil {
		return nil, nil, err
	}
	k, err := p.callFor(tn, kid)
	if err != nil {
		return nil, nil, err
	}
	if k.consultOf != id {
		return nil, nil, conflict("call %s is not a consultation of call %s", kid, id)
	}
	if pa.state != callbridge.ConnHeld {
		return nil, nil, conflict("device %s is %s, not held, in call %s", d, pa.state, id)
	}
	ka := k.partyOf(d)
	if ka == nil || ka.state != callbridge.ConnConnected {
		return nil, nil, conflict("device %s is not connected in consultation %s", d, kid)
	}
	if k.waiting || len(k.parties) != 2 {
		return nil, nil, conflict("consultation %s has no party to hand over", kid)
	}
	return pa, k, nil
}

// consultTarget returns the party of consultation k other than the consulting device.
func consultTarget(k *call, d callbridge.DeviceID) *party {
	for _, x := range k.parties {
		if x.id != d {
			return x
		}
	}
	return nil
}

// completeTransfer hands the consultation's target the original call and takes the
// transferring device out of both.
func (p *PBX) completeTransfer(pa *party, k *call) error {
	c := pa.call
	t := consultTarget(k, pa.id)
	if c.partyOf(t.id) != nil {
		return conflict("%s is already a party of call %s", t.id, c.id)
	}
	ev := c.event(callbridge.SwitchTransferred)
	ev.TransferringDevice, ev.TransferredTo, ev.ConsultPBXCallID = pa.id, t.id, k.id
	p.emit(ev)
	ev = pa.event(callbridge.SwitchConnectionCleared)
	ev.Cause = callbridge.CauseTransferred
	p.emit(ev)
	p.removeParty(pa)
	p.moveParty(t, c)
	p.clearCall(k, callbridge.CauseTransferred)
	p.startTalk(c)
	return nil
}

// conference joins the consultation's target into the original call.
func (p *PBX) conference(pa *party, k *call) error {
	c := pa.call
	t := consultTarget(k, pa.id)
	if c.partyOf(t.id) != nil {
		return conflict("%s is already a party of call %s", t.id, c.id)
	}
	if t.state != callbridge.ConnConnected {
		return conflict("consultation target %s is %s, not connected", t.id, t.state)
	}
	ev := c.event(callbridge.SwitchConferenced)
	ev.Device, ev.Leg, ev.TransferredTo, ev.ConsultPBXCallID = pa.id, pa.leg, t.id, k.id
	p.emit(ev)
	pa.state = callbridge.ConnConnected
	p.moveParty(t, c)
	p.clearCall(k, callbridge.CauseConferenced)
	if c.talk == nil {
		p.startTalk(c)
	}
	return nil
}

// setMemberState adds, removes or pauses Device's queue memberships.
func (p *PBX) setMemberState(tn *tenant, cmd callbridge.SwitchCommand) error {
	d, err := p.deviceFor(tn, cmd.Device)
	if err != nil {
		return err
	}
	var qs []*queue
	for _, qn := range cmd.Queues {
		q := p.queueBy[qn]
		if q == nil || q.tenant != tn {
			return notFound("unknown queue %s", qn)
		}
		qs = append(qs, q)
	}
	switch cmd.Action {
	case callbridge.MemberAdd:
		for _, q := range qs {
			if d.member(q) != nil {
				return conflict("device %s is already a member of %s", d.id, q.name)
			}
		}
		for _, q := range qs {
			p.addMember(d, q, cmd.Paused, cmd.Reason)
		}
	case callbridge.MemberRemove:
		for _, q := range qs {
			if d.member(q) == nil {
				return conflict("device %s is not a member of %s", d.id, q.name)
			}
		}
		for _, q := range qs {
			p.removeMember(d.member(q))
		}
	case callbridge.MemberPause:
		return p.pause(d, qs, cmd.Paused, cmd.Reason)
	}
	return nil
}

// pause pauses or unpauses d in qs, or in every queue of d when qs is empty.
func (p *PBX) pause(d *device, qs []*queue, paused bool, reason string) error {
	var ms []*member
	if len(qs) == 0 {
		ms = append(ms, d.members...)
		if len(ms) == 0 {
			return conflict("device %s is not a member of any queue", d.id)
		}
	}
	for _, q := range qs {
		m := d.member(q)
		if m == nil {
			return conflict("device %s is not a member of %s", d.id, q.name)
		}
		ms = append(ms, m)
	}
	for _, m := range ms {
		p.pauseMember(m, paused, reason)
	}
	if !paused && !d.wrapUntil.IsZero() {
		// Going ready ends the wrap-up early (Asterisk keeps wrapuptime; callbridge's agents
		// end wrap-up themselves, and the engine unpauses them when they do).
		d.wrapUntil = time.Time{}
		p.dirty = true
	}
	return nil
}
