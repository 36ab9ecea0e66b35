package freeswitch

import (
	"strings"

	"github.com/callbridge/callbridge"
	"github.com/callbridge/callbridge/freeswitch/esl"
)

// The attended transfer of FreeSWITCH is the att_xfer dialplan application, run on the
// transferring (agent) leg B while it is bridged to the caller A. No public recording shows
// it; the order below is FreeSWITCH 1.10.12's (mod_dptools.c att_xfer_function and
// att_thread_run, switch_ivr_bridge.c, switch_ivr_originate.c), and the recordings built in
// freeswitch/testdata (attxfer_build_test.go) follow it:
//
//   - CHANNEL_EXECUTE att_xfer on B (A's bridge with B is suspended: no CHANNEL_UNBRIDGE);
//     att_xfer's thread sets variable_soft_holding_uuid = A on B and originates the target C
//     from B (variable_originating_leg_uuid = B, none of the caller's variables);
//   - the consultation: CHANNEL_ANSWER C, CHANNEL_BRIDGE with Unique-ID B, Bridge-B C;
//   - completed (B hangs up): CHANNEL_HANGUP B, CHANNEL_UNBRIDGE B and A, then att_xfer's
//     uuid_bridge(C, A): CHANNEL_BRIDGE with Unique-ID C, Bridge-B A
//     (variable_att_xfer_result success); B's CHANNEL_EXECUTE_COMPLETE att_xfer up to 100 ms
//     after its hangup, before or after that bridge;
//   - not completed (C hangs up, or never answers): CHANNEL_EXECUTE_COMPLETE att_xfer on B,
//     which is still up, and uuid_bridge(B, A) when C had answered.
//
// callbridge's model (DESIGN.md §2): the consultation is a call of its own, started by the
// transferring device (whose connection to the original call is held meanwhile); completing
// it emits transferred on the original call, naming the consultation.

// onAttXfer starts a consultation when l runs att_xfer.
func (t *Tracker) onAttXfer(l *leg, ev *esl.Event) {
	cv := l.conv
	if cv.cleared || cv.consult || l.consult != nil {
		return
	}
	p := cv.partyOf(l)
	if p == nil || (p.state != callbridge.ConnConnected && p.state != callbridge.ConnHeld) {
		return
	}
	id := ev.Get("Application-UUID")
	if id == "" {
		id = l.uuid + "/att_xfer/" + ev.Get("Event-Sequence")
	}
	if t.convs[id] != nil {
		return
	}
	q := &conv{
		id: id, consult: true, consultOf: cv.id, consulter: l, tenant: cv.tenant,
		legs: map[string]*leg{}, data: map[string]string{},
		target: dialTarget(ev.Get("Application-Data")),
	}
	if x, ok := t.expect["consult:"+l.uuid]; ok {
		q.corrID = x.corrID
		if x.to != "" {
			q.target = x.to
		}
		delete(t.expect, "consult:"+l.uuid)
	}
	t.convs[id] = q
	l.consult = q
	if p.state == callbridge.ConnConnected {
		p.state = callbridge.ConnHeld
		t.partyEvent(cv, p, callbridge.SwitchHeld)
	}
	q.started = true
	t.emit(callbridge.SwitchEvent{
		Type: callbridge.SwitchCallStarted, Time: t.ts, Tenant: q.tenant, PBXCallID: q.id,
		Direction: callbridge.DirInternal, ConsultOf: cv.id, CorrelationID: q.corrID,
		Device: l.device, Leg: l.uuid, External: l.external,
		ANI: string(l.device), ANIName: l.cidName, DNIS: q.target,
	})
	t.addParty(q, l).state = callbridge.ConnInitiated
}

// completeConsult recognises the end of a completed att_xfer: a bridge between the
// consultation's target and a leg of the consulted call (att_xfer's uuid_bridge(C, A), or
// FreeSWITCH's bridge of a soft-held caller to a target still ringing, Unique-ID A). It
// emits transferred on the consulted call and reports whether it did.
func (t *Tracker) completeConsult(l *leg, ev *esl.Event) bool {
	o := t.legs[ev.Get("Bridge-B-Unique-ID")]
	if o == nil {
		o = t.legs[ev.Get("Other-Leg-Unique-ID")]
	}
	if o == nil || l.conv == nil || o.conv == nil || l.conv == o.conv {
		return false
	}
	target, held := l, o
	if !target.conv.consult {
		target, held = o, l
	}
	q, x := target.conv, held.conv
	if !q.consult || q.cleared || x.cleared || q.consultOf != x.id || held == q.consulter {
		return false // not a consultation, or its own bridge from the consulting leg
	}
	c := q.consulter
	x.unpend(c)
	if c != nil {
		c.handover = false
	}
	e := t.callEvent(x, callbridge.SwitchTransferred)
	e.ConsultPBXCallID = q.id
	e.TransferredTo = target.device
	if c != nil {
		e.TransferringDevice = c.device
		c.departed = true
		x.dropParty(c)
		c.consult = nil
	}
	// The consultation's parties now belong to the consulted call; the engine moves them and
	// clears the consultation with cause transfer.
	q.cleared = true
	delete(t.convs, q.id)
	for _, y := range q.legs {
		y.conv = x
		x.legs[y.uuid] = y
		if p := q.partyOf(y); p != nil {
			x.parties = append(x.parties, p)
		}
	}
	target.partner, held.partner = held.uuid, target.uuid
	return true
}

// onAttXferDone: att_xfer returned on the transferring leg (CHANNEL_EXECUTE_COMPLETE). If
// the leg is still up and the consultation is still there, the transfer did not complete
// (the target did not answer or hung up, or the agent cancelled): the consultation ends and
// the agent is back with the caller. If the leg hung up to complete the transfer, att_xfer
// returns within 100 ms of the hangup (it polls the channel), before or after its
// uuid_bridge of the target to the caller shows as CHANNEL_BRIDGE: that bridge, or the
// consultation's end, decides (leg.handover).
func (t *Tracker) onAttXferDone(l *leg) {
	q := l.consult
	if q == nil || l.handover && !q.cleared {
		return
	}
	l.consult = nil
	if !q.cleared {
		t.endConv(q, "")
	}
	cv := l.conv
	if l.hungUp || cv.cleared {
		return
	}
	if p := cv.partyOf(l); p != nil && p.state == callbridge.ConnHeld {
		p.state = callbridge.ConnConnected
		t.partyEvent(cv, p, callbridge.SwitchRetrieved)
	}
}

// dialTarget returns the user or number a dial string calls: "{…}user/1004" → "1004",
// "sofia/internal/15557654321@127.0.0.1:5090" → "15557654321", "loopback/1004/default" →
// "1004".
func dialTarget(s string) string {
	s = strings.TrimSpace(s)
	for len(s) > 0 && (s[0] == '{' || s[0] == '[' || s[0] == '<') {
		end := map[byte]byte{'{': '}', '[': ']', '<': '>'}[s[0]]
		i := strings.IndexByte(s, end)
		if i < 0 {
			return ""
		}
		s = s[i+1:]
	}
	if i := strings.IndexAny(s, " ,|"); i >= 0 {
		s = s[:i]
	}
	parts := strings.Split(s, "/")
	switch {
	case len(parts) >= 2 && (parts[0] == "user" || parts[0] == "loopback"):
		s = parts[1]
	case len(parts) >= 3:
		s = parts[2]
	default:
		s = parts[len(parts)-1]
	}
	s, _, _ = strings.Cut(s, "@")
	return s
}
