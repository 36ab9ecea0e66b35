package sim

import (
	"slices"
	"time"

	"github.com/callbridge/callbridge"
)

// Redirect moves the call pbxCallID, which no device of the switch has answered yet (it
// rings at devices or waits in a queue), to the target to (an extension, an agent's user
// name, a queue of the call's tenant or an outside number) at now, as an AMI Redirect of the
// caller's channel or a FreeSWITCH uuid_transfer of the caller's leg does: every device that
// rings for the call stops (connection_cleared, cause redirected), a call waiting in a queue
// leaves it (dequeued, no cause), and to is dialled (alerting, queued, or failed busy). Like
// those switches, the simulator sends no event that names the redirect: the engine sees a
// ringing device stop and the next one ring (CSTA Diverted). It returns the events.
//
// Errors: EInvalid for a malformed target, ENotFound for an unknown call or target,
// EConflict when a device of the switch talks in the call or holds it (that is a transfer),
// the call is a consultation, or to already rings for it.
func (p *PBX) Redirect(now time.Time, pbxCallID, to string) ([]callbridge.SwitchEvent, error) {
	p.setNow(now)
	p.out = nil
	if err := p.redirect(pbxCallID, to); err != nil {
		p.out = nil
		return nil, err
	}
	p.dispatch()
	return p.take(), nil
}

func (p *PBX) redirect(id, to string) error {
	if err := callbridge.CheckDialTarget("to", to); err != nil {
		return err
	}
	c := p.calls[id]
	if c == nil || !c.started {
		return notFound("no call %s", id)
	}
	if c.consultOf != "" {
		return conflict("call %s is a consultation", id)
	}
	for _, pa := range c.parties {
		if pa.dev != nil && (pa.state == callbridge.ConnConnected || pa.state == callbridge.ConnHeld) {
			return conflict("device %s has answered call %s: transfer it instead", pa.id, id)
		}
	}
	t, err := p.resolve(c.tenant, to)
	if err != nil {
		return err
	}
	if c.partyOf(t.name()) != nil {
		return conflict("%s is already a party of call %s", to, id)
	}
	for _, pa := range slices.Clone(c.parties) {
		if pa.dev != nil && pa.state == callbridge.ConnAlerting {
			ev := pa.event(callbridge.SwitchConnectionCleared)
			ev.Cause = callbridge.CauseRedirected
			p.emit(ev)
			p.removeParty(pa)
		}
	}
	if c.waiting {
		p.dequeue(c, "")
	}
	p.deliver(c, t)
	return nil
}
