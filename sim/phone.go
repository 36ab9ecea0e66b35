package sim

import (
	"time"

	"github.com/callbridge/callbridge"
)

// What an agent does on the phone besides pressing buttons: dial, transfer, and the phone's
// registration. The switch reports it with the same events as the matching command, with
// nothing that tells them apart (no CorrelationID): the engine must follow the phone.

// SetRegistered registers (true) or unregisters (false) the agent phone dev at now, as a SIP
// phone's REGISTER or its expiry would, and returns the device_state event it causes:
// unavailable, or on registering the device's status (idle, in_use, ringing). An
// unregistered phone is offered no queue call, cannot be called (transfer, consultation,
// make_call to it: EConflict) and cannot place calls (make_call, Dial: EConflict); calls it
// is already in go on. Errors: EInvalid for a malformed device, ENotFound for a device that
// is no agent phone, EConflict when the phone already is in that state.
func (p *PBX) SetRegistered(now time.Time, dev callbridge.DeviceID, registered bool) ([]callbridge.SwitchEvent, error) {
	p.setNow(now)
	p.out = nil
	d, err := p.phone(dev)
	if err != nil {
		return nil, err
	}
	if d.unregistered == !registered {
		if registered {
			return nil, conflict("device %s is registered already", dev)
		}
		return nil, conflict("device %s is not registered", dev)
	}
	d.unregistered = !registered
	p.emit(callbridge.SwitchEvent{Type: callbridge.SwitchDeviceState, Tenant: d.tenant.id, Device: d.id, DeviceStatus: d.status()})
	p.dirty = true
	p.dispatch()
	return p.take(), nil
}

// Dial is the agent phone dev dialling to (an extension, an agent's user name, a queue of
// its tenant or an outside number) off-hook, at now: call_started(internal, or outbound to
// an outside number; Device dev, no CorrelationID), connected(dev), then to is dialled as
// for make_call. Errors: as SetRegistered, plus EConflict when the phone is in a call or not
// registered, and the target errors of Execute.
func (p *PBX) Dial(now time.Time, dev callbridge.DeviceID, to string) ([]callbridge.SwitchEvent, error) {
	p.setNow(now)
	p.out = nil
	if err := p.dial(dev, to); err != nil {
		p.out = nil
		return nil, err
	}
	p.dispatch()
	return p.take(), nil
}

func (p *PBX) dial(dev callbridge.DeviceID, to string) error {
	d, err := p.phone(dev)
	if err != nil {
		return err
	}
	if err := callbridge.CheckDialTarget("to", to); err != nil {
		return err
	}
	if len(d.conns) > 0 {
		return conflict("device %s is in a call", dev)
	}
	if d.unregistered {
		return conflict("device %s is not registered", dev)
	}
	t, err := p.resolveFor(d.tenant, d, to)
	if err != nil {
		return err
	}
	dir := callbridge.DirInternal
	if t.kind == targetOutside {
		dir = callbridge.DirOutbound
	}
	c := p.newCall(d.tenant, dir, string(d.id), "", to)
	c.started = true
	p.stats.CallsStarted++
	pa := p.addParty(c, d, d.id, roleCaller, callbridge.ConnConnected)
	pa.answered = true
	ev := pa.event(callbridge.SwitchCallStarted)
	ev.Direction, ev.ANI, ev.DNIS = dir, c.ani, c.dnis
	p.emit(ev)
	p.emit(pa.event(callbridge.SwitchConnected))
	p.deliver(c, t)
	return nil
}

// PhoneTransfer is a transfer done on the phone dev at now (Asterisk's #1 blind transfer and
// *2 attended transfer feature codes). Blind (attended false): the device's connected (else
// held) call, between two talking parties, goes to to, as single_step_transfer. Attended:
// the device's connected call is held and a consultation call to to starts, as
// consultation_call without a CorrelationID; hanging up (ButtonHangup) then completes the
// transfer and ButtonConference makes a three-way call. Errors: as Dial, and EConflict when
// the device has no call to transfer.
func (p *PBX) PhoneTransfer(now time.Time, dev callbridge.DeviceID, to string, attended bool) ([]callbridge.SwitchEvent, error) {
	p.setNow(now)
	p.out = nil
	if err := p.phoneTransfer(dev, to, attended); err != nil {
		p.out = nil
		return nil, err
	}
	p.dispatch()
	return p.take(), nil
}

func (p *PBX) phoneTransfer(dev callbridge.DeviceID, to string, attended bool) error {
	d, err := p.phone(dev)
	if err != nil {
		return err
	}
	if err := callbridge.CheckDialTarget("to", to); err != nil {
		return err
	}
	pa := d.find(callbridge.ConnConnected)
	if attended {
		if pa == nil {
			return conflict("device %s has no connected call to transfer", dev)
		}
		return p.consult(pa, to, "", nil)
	}
	if pa == nil {
		pa = d.find(callbridge.ConnHeld)
	}
	if pa == nil {
		return conflict("device %s has no call to transfer", dev)
	}
	return p.blindTransfer(pa, to)
}

// phone returns the agent phone dev.
func (p *PBX) phone(dev callbridge.DeviceID) (*device, error) {
	if err := callbridge.CheckDialTarget("device", string(dev)); err != nil {
		return nil, err
	}
	d := p.deviceBy[dev]
	if d == nil {
		return nil, notFound("unknown device %s", dev)
	}
	return d, nil
}

// find returns d's first connection in state st, or nil.
func (d *device) find(st callbridge.ConnectionState) *party {
	for _, pa := range d.conns {
		if pa.state == st {
			return pa
		}
	}
	return nil
}
