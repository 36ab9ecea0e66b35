package sim

import (
	"time"

	"github.com/callbridge/callbridge"
)

// Button is a key an agent presses on the telset. The switch reports what it does with the
// same events as the matching command, with nothing that tells them apart (as Asterisk's
// QueueMemberPause has no channel section): the engine must follow the phone.
type Button string

// Telset buttons.
const (
	// ButtonAnswer answers the call alerting at the device (answer_call).
	ButtonAnswer Button = "answer"
	// ButtonHangup hangs up the device's current call: the call it is talking in, else the
	// call alerting (a reject), else the held call. Hanging up while consulting completes the
	// transfer, as Asterisk's attended transfer does when the transferer hangs up
	// (fixture attended-transfer-b): the held call goes to the consultation's target.
	ButtonHangup Button = "hangup"
	// ButtonHold holds the device's connected call (hold_call).
	ButtonHold Button = "hold"
	// ButtonRetrieve takes the device's held call off hold (retrieve_call).
	ButtonRetrieve Button = "retrieve"
	// ButtonPause (DND on, Asterisk feature code *46) pauses the device in every queue it is
	// a member of, with reason TelsetPauseReason: one member_state per queue.
	ButtonPause Button = "pause"
	// ButtonUnpause (DND off, *47) unpauses it in every queue.
	ButtonUnpause Button = "unpause"
	// ButtonConference (Asterisk's *3 during an attended transfer) joins the consultation's
	// target into the held call: a three-way call (conference_call).
	ButtonConference Button = "conference"
)

// Buttons lists every telset button.
var Buttons = []Button{ButtonAnswer, ButtonHangup, ButtonHold, ButtonRetrieve, ButtonPause, ButtonUnpause, ButtonConference}

// PressButton applies a button pressed on the agent phone device at now and returns the
// events it causes at once. Like Execute it does not run timers.
//
// Errors (*callbridge.Error; nothing changes): EInvalid for an unknown button or a malformed
// device; ENotFound for a device that is no agent phone; EConflict when the button does
// nothing in the device's state (no call to hang up, nothing alerting, not a queue member, …).
func (p *PBX) PressButton(now time.Time, dev callbridge.DeviceID, b Button) ([]callbridge.SwitchEvent, error) {
	p.setNow(now)
	p.out = nil
	if err := p.press(dev, b); err != nil {
		p.out = nil
		return nil, err
	}
	p.dispatch()
	return p.take(), nil
}

func (p *PBX) press(id callbridge.DeviceID, b Button) error {
	if err := callbridge.CheckDialTarget("device", string(id)); err != nil {
		return err
	}
	d := p.deviceBy[id]
	if d == nil {
		return notFound("unknown device %s", id)
	}
	find := func(st callbridge.ConnectionState) *party {
		for _, pa := range d.conns {
			if pa.state == st {
				return pa
			}
		}
		return nil
	}
	switch b {
	case ButtonAnswer:
		pa := find(callbridge.ConnAlerting)
		if pa == nil {
			return conflict("nothing is alerting at device %s", id)
		}
		p.answer(pa)
	case ButtonHangup:
		held, talking := find(callbridge.ConnHeld), find(callbridge.ConnConnected)
		if held != nil && talking != nil && talking.call.consultOf == held.call.id {
			k := talking.call
			if !k.waiting && len(k.parties) == 2 {
				return p.completeTransfer(held, k)
			}
		}
		pa := talking
		if pa == nil {
			pa = find(callbridge.ConnAlerting)
		}
		if pa == nil {
			pa = held
		}
		if pa == nil {
			return conflict("device %s has no call", id)
		}
		p.hangup(pa)
	case ButtonHold:
		pa := find(callbridge.ConnConnected)
		if pa == nil {
			return conflict("device %s has no connected call", id)
		}
		return p.hold(pa)
	case ButtonRetrieve:
		pa := find(callbridge.ConnHeld)
		if pa == nil {
			return conflict("device %s has no held call", id)
		}
		return p.retrieve(pa)
	case ButtonPause:
		return p.pause(d, nil, true, TelsetPauseReason)
	case ButtonUnpause:
		return p.pause(d, nil, false, "")
	case ButtonConference:
		held, talking := find(callbridge.ConnHeld), find(callbridge.ConnConnected)
		if held == nil || talking == nil || talking.call.consultOf != held.call.id {
			return conflict("device %s is not consulting", id)
		}
		k := talking.call
		if k.waiting || len(k.parties) != 2 {
			return conflict("consultation %s has no party to join", k.id)
		}
		return p.conference(held, k)
	default:
		return invalid("unknown button %q", b)
	}
	return nil
}
