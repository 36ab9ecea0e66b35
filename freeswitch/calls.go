package freeswitch

import (
	"strings"

	"github.com/callbridge/callbridge"
	"github.com/callbridge/callbridge/freeswitch/esl"
)

// onChannel handles the CHANNEL_* events (and CALL_UPDATE) of one leg.
func (t *Tracker) onChannel(name string, ev *esl.Event) {
	uid := ev.Get("Unique-ID")
	if uid == "" {
		return
	}
	create := name == "CHANNEL_OUTGOING" || name == "CHANNEL_CREATE" || name == "CHANNEL_ORIGINATE"
	l := t.legFor(uid, name, ev, create)
	if l == nil {
		return
	}
	if name == "CHANNEL_DESTROY" {
		defer t.forget(l) // the last event of every leg (README "Hangup")
	}
	defer func() {
		if src, ok := ev.Lookup("Caller-Transfer-Source"); ok {
			l.xferSource = src
		}
	}()
	cv := l.conv
	if cv == nil {
		return
	}
	// Transfers first: they consume the pending leave of the transferring party.
	switch name {
	case "CHANNEL_UNBRIDGE":
		t.blindTransfer(l, ev)
	case "CHANNEL_BRIDGE":
		if t.completeConsult(l, ev) {
			return
		}
	}
	if decisive(name) {
		t.settle(cv, l, name)
	}
	if !cv.cleared {
		t.refreshData(l, ev)
	}
	switch name {
	case "CHANNEL_ANSWER":
		t.onAnswer(l)
	case "CHANNEL_BRIDGE":
		t.onBridge(l, ev)
	case "CHANNEL_UNBRIDGE":
		l.partner = ""
		if o := t.legs[ev.Get("Bridge-B-Unique-ID")]; o != nil && o.partner == l.uuid {
			o.partner = ""
		}
	case "CHANNEL_HOLD":
		t.onHold(l, true)
	case "CHANNEL_UNHOLD":
		t.onHold(l, false)
	case "CHANNEL_EXECUTE":
		if ev.Get("Application") == "att_xfer" {
			t.onAttXfer(l, ev)
		}
	case "CHANNEL_EXECUTE_COMPLETE":
		if ev.Get("Application") == "att_xfer" {
			t.onAttXferDone(l)
		}
	case "CHANNEL_HANGUP", "CHANNEL_HANGUP_COMPLETE":
		t.onHangup(l, ev)
	case "CHANNEL_DESTROY":
		t.onHangup(l, ev)
	}
}

// decisive reports whether an event of another leg tells what a pending leave was: the
// bridge ending or starting, a hangup, a new leg, an answer. Dialplan noise (CHANNEL_EXECUTE,
// CALL_UPDATE) does not, since the same millisecond's events may come in any order (README
// "Run-to-run variation").
func decisive(name string) bool {
	switch name {
	case "CHANNEL_UNBRIDGE", "CHANNEL_BRIDGE", "CHANNEL_HANGUP", "CHANNEL_HANGUP_COMPLETE",
		"CHANNEL_DESTROY", "CHANNEL_CREATE", "CHANNEL_ANSWER":
		return true
	}
	return false
}

// hasVars reports whether ev carries channel variables (they are the last headers of the
// events that have them; CHANNEL_OUTGOING, CHANNEL_STATE and CHANNEL_CALLSTATE do not,
// README "Attached data").
func hasVars(ev *esl.Event) bool {
	n := len(ev.Headers)
	return n > 0 && strings.HasPrefix(ev.Headers[n-1].Name, "variable_") || ev.Get("variable_uuid") != ""
}

// legFor returns the leg uid, creating it when create is set, and attaches it to a
// conversation as soon as an event with variables tells where it belongs.
func (t *Tracker) legFor(uid, name string, ev *esl.Event, create bool) *leg {
	l := t.legs[uid]
	if l == nil {
		if !create || t.dead.has(uid) {
			return nil
		}
		l = &leg{uuid: uid}
		t.legs[uid] = l
	}
	if l.name == "" {
		l.name = ev.Get("Channel-Name")
		l.direction = ev.Get("Call-Direction")
	}
	if l.conv == nil && hasVars(ev) {
		t.attach(l, name, ev)
	}
	return l
}

// attach puts a new leg into its conversation: the one of the leg it comes from
// (variable_cc_member_session_uuid for mod_callcenter agent legs, fs-inbound-answered;
// variable_originating_leg_uuid for bridge and transfer targets, fs-blind-transfer and
// fs-click-to-call; Other-Leg-Unique-ID), or a new conversation it starts.
func (t *Tracker) attach(l *leg, name string, ev *esl.Event) {
	for _, k := range []string{"variable_cc_member_session_uuid", "variable_originating_leg_uuid", "Other-Leg-Unique-ID"} {
		p := t.legs[ev.Get(k)]
		if p == nil || p == l || p.conv == nil {
			continue
		}
		cv := p.conv
		if p.consult != nil && !p.consult.cleared {
			cv = p.consult // a leg att_xfer originates is the consultation's target
		}
		if cv.cleared {
			return
		}
		t.join(cv, l, ev)
		return
	}
	if _, ok := t.expect[l.uuid]; ok || name == "CHANNEL_CREATE" || name == "CHANNEL_ORIGINATE" {
		t.newConv(l, ev)
	}
}

// identify fixes who a leg is (see the package documentation).
func (t *Tracker) identify(l *leg, ev *esl.Event) {
	l.cidNum = ev.Get("Caller-Caller-ID-Number")
	l.cidName = ev.Get("Caller-Caller-ID-Name")
	l.dest = ev.Get("Caller-Destination-Number")
	l.context = ev.Get("Caller-Context")
	l.dialedUser = ev.Var("dialed_user")
	if ev.Var("cc_side") == "agent" {
		l.ccAgent = ev.Var("cc_agent")
		l.ccQueue = ev.Var("cc_queue")
	}
	if ev.Get("Answer-State") == "answered" {
		l.answered = true
	}
	switch {
	case l.dialedUser != "":
		l.telset, l.device = true, callbridge.DeviceID(l.dialedUser)
	case l.ccAgent != "":
		l.telset, l.device = true, t.agentDevice(l.ccAgent)
	case l.direction == "inbound" && t.userCtx[l.context]:
		l.telset = true
		u := ev.Get("Caller-Username")
		if u == "" {
			u = l.cidNum
		}
		l.device = callbridge.DeviceID(u)
	case l.direction == "inbound":
		l.external, l.device = true, callbridge.DeviceID(orUnknown(l.cidNum))
	default:
		num := l.dest
		if num == "" {
			num = ev.Get("Caller-Callee-ID-Number")
		}
		l.external, l.device = true, callbridge.DeviceID(orUnknown(num))
	}
	if l.device == "" {
		l.device = "unknown"
	}
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}

// newConv starts a conversation with l as its first leg and emits call_started.
func (t *Tracker) newConv(l *leg, ev *esl.Event) {
	cv := &conv{id: l.uuid, root: l, legs: map[string]*leg{}, data: map[string]string{}}
	t.convs[cv.id] = cv
	l.conv = cv
	cv.legs[l.uuid] = l
	t.identify(l, ev)
	cv.tenant = t.tenantOf(ev)
	cv.dnis = ev.Var(t.dnisVar)
	if cv.dnis == "" {
		// A leg first seen after a transfer shows the target as Caller-Destination-Number and
		// the DID it came in on as Caller-RDNIS (fs-blind-transfer).
		cv.dnis = ev.Get("Caller-RDNIS")
	}
	for k, v := range t.dataOf(ev) {
		if v != "" {
			cv.data[k] = v
		}
	}
	if x, ok := t.expect[l.uuid]; ok {
		cv.corrID, cv.dialTo = x.corrID, x.to
		delete(t.expect, l.uuid)
	} else {
		cv.corrID = ev.Var(CorrelationVariable)
	}
	if cv.dialTo == "" && l.direction == "outbound" && l.telset {
		// make_call (and the click-to-call recording) show the customer's number on the
		// agent's phone with origination_caller_id_number.
		cv.dialTo = ev.Var("origination_caller_id_number")
	}
	cv.started = true
	t.emit(t.describe(cv))
	p := t.addParty(cv, l)
	if l.direction == "inbound" || l.answered {
		p.state = callbridge.ConnConnected
	} else {
		p.state = callbridge.ConnInitiated
	}
}

// describe is the call_started of cv (see Tracker).
//
//   - An inbound leg from outside (the carrier, context public in the recordings) is an
//     inbound call: the outside party is Device = its number, ANI/ANIName its caller id, DNIS
//     the DNIS variable (cti_dnis) or the Caller-Destination-Number it arrived with. After a
//     blind transfer the same leg shows Caller-Destination-Number 1002 and Caller-RDNIS
//     18005550100 (fs-blind-transfer), so DNIS is fixed here, once.
//   - An inbound leg from a user context is an internal call from that telset.
//   - An outbound first leg was originated (click-to-call: the agent leg): an outbound call
//     from that device, DNIS the make_call target.
func (t *Tracker) describe(cv *conv) callbridge.SwitchEvent {
	root := cv.root
	e := callbridge.SwitchEvent{
		Type: callbridge.SwitchCallStarted, Time: t.ts, Tenant: cv.tenant, PBXCallID: cv.id,
		Data: copyData(cv.data), CorrelationID: cv.corrID,
		Device: root.device, Leg: root.uuid, External: root.external,
	}
	switch {
	case root.direction == "inbound" && root.external:
		e.Direction = callbridge.DirInbound
		e.ANI, e.ANIName = root.cidNum, root.cidName
		e.DNIS = cv.dnis
		if e.DNIS == "" {
			e.DNIS = root.dest
		}
	case root.direction == "inbound":
		e.Direction = callbridge.DirInternal
		e.ANI, e.ANIName = string(root.device), root.cidName
		e.DNIS = root.dest
	default:
		e.Direction = callbridge.DirOutbound
		if root.telset {
			e.ANI = string(root.device)
		}
		e.DNIS = cv.dialTo
		if e.DNIS == "" && root.external {
			e.DNIS = string(root.device)
		}
	}
	return e
}

// join adds l to cv as a new party that is being called.
func (t *Tracker) join(cv *conv, l *leg, ev *esl.Event) {
	l.conv = cv
	cv.legs[l.uuid] = l
	t.identify(l, ev)
	p := t.addParty(cv, l)
	if l.ccAgent != "" {
		p.queue = callbridge.QueueName(l.ccQueue)
	}
	if l.answered {
		t.connected(cv, p)
		return
	}
	t.alerting(cv, p)
}

func (t *Tracker) addParty(cv *conv, l *leg) *party {
	if p := cv.partyOf(l); p != nil {
		return p
	}
	p := &party{leg: l, state: callbridge.ConnNull}
	cv.parties = append(cv.parties, p)
	return p
}

func (cv *conv) partyOf(l *leg) *party {
	for _, p := range cv.parties {
		if p.leg == l {
			return p
		}
	}
	return nil
}

// dropParty removes l's party from cv without an event.
func (cv *conv) dropParty(l *leg) {
	for i, p := range cv.parties {
		if p.leg == l {
			cv.parties = append(cv.parties[:i], cv.parties[i+1:]...)
			return
		}
	}
}

func (t *Tracker) alerting(cv *conv, p *party) {
	switch p.state {
	case callbridge.ConnAlerting, callbridge.ConnConnected, callbridge.ConnHeld:
		return
	}
	p.state = callbridge.ConnAlerting
	t.partyEvent(cv, p, callbridge.SwitchAlerting).Queue = p.queue
}

func (t *Tracker) connected(cv *conv, p *party) {
	switch p.state {
	case callbridge.ConnConnected, callbridge.ConnHeld:
		return
	}
	p.state = callbridge.ConnConnected
	t.partyEvent(cv, p, callbridge.SwitchConnected).Queue = p.queue
}

// onAnswer: CHANNEL_ANSWER connects a party. For a mod_callcenter agent leg the call leaves
// the queue first (bridge-agent-start follows in the same millisecond, fs-inbound-answered),
// so the story reads queued, alerting, dequeued, connected as on Asterisk. The caller's own
// answer by the IVR changes nothing: the outside party is connected from the start.
func (t *Tracker) onAnswer(l *leg) {
	l.answered = true
	cv := l.conv
	if cv.cleared {
		return
	}
	p := cv.partyOf(l)
	if p == nil {
		return
	}
	if cv.inQueue && l.ccAgent != "" {
		t.dequeue(cv, "")
	}
	t.connected(cv, p)
}

func (t *Tracker) dequeue(cv *conv, cause callbridge.Cause) {
	cv.inQueue = false
	e := t.callEvent(cv, callbridge.SwitchDequeued)
	e.Queue, e.Cause = cv.queue, cause
}

// onBridge: CHANNEL_BRIDGE comes once per bridge, for the A side only (Unique-ID =
// Bridge-A-Unique-ID, README "Call correlation"). Both sides are connected now; the
// consulting leg's bridge to its target connects it in the consultation.
func (t *Tracker) onBridge(l *leg, ev *esl.Event) {
	o := t.legs[ev.Get("Bridge-B-Unique-ID")]
	if o == nil {
		o = t.legs[ev.Get("Other-Leg-Unique-ID")]
	}
	if o == nil || o == l {
		return
	}
	l.partner, o.partner = o.uuid, l.uuid
	for _, x := range []*leg{l, o} {
		if q := x.consult; q != nil && !q.cleared {
			if y := other(l, o, x); y.conv == q {
				if p := q.partyOf(x); p != nil {
					t.connected(q, p)
				}
				continue
			}
		}
		if x.conv != nil && !x.conv.cleared && x.answered {
			if p := x.conv.partyOf(x); p != nil && p.state == callbridge.ConnAlerting {
				t.connected(x.conv, p)
			}
		}
	}
}

func other(a, b, x *leg) *leg {
	if x == a {
		return b
	}
	return a
}

// onHold: CHANNEL_HOLD and CHANNEL_UNHOLD come for the leg that was put on hold, whose device
// got the hold re-INVITE while its partner hears music (fs-hold). That leg's device is the
// holding one in CSTA terms, as when a SIP phone presses hold: "agent holds customer" is
// uuid_hold on the agent leg.
func (t *Tracker) onHold(l *leg, on bool) {
	cv := l.conv
	if cv.cleared {
		return
	}
	p := cv.partyOf(l)
	if p == nil {
		return
	}
	switch {
	case on && p.state == callbridge.ConnConnected:
		p.state = callbridge.ConnHeld
		t.partyEvent(cv, p, callbridge.SwitchHeld)
	case !on && p.state == callbridge.ConnHeld:
		p.state = callbridge.ConnConnected
		t.partyEvent(cv, p, callbridge.SwitchRetrieved)
	}
}

// blindTarget returns the destination of a blind transfer from a Caller-Transfer-Source such
// as "1795307445:ba70a717-…:bl_xfer:1002/default/XML" (fs-blind-transfer), or "".
func blindTarget(src string) string {
	_, rest, ok := strings.Cut(src, ":bl_xfer:")
	if !ok {
		return ""
	}
	dest, _, _ := strings.Cut(rest, "/")
	return dest
}

// blindTransfer recognises a blind transfer. FreeSWITCH has no transfer event (README
// "Transfers"): after "uuid_transfer <agent leg> -bleg 1002 XML default" the agent leg is
// hung up and the caller's leg gets CHANNEL_UNBRIDGE without Other-Leg-* headers, with a new
// Caller-Transfer-Source ending in bl_xfer:<dest>/<context>/XML (fs-blind-transfer). The
// party that was bridged to it (Bridge-B-Unique-ID) transferred the call to dest.
func (t *Tracker) blindTransfer(l *leg, ev *esl.Event) {
	src := ev.Get("Caller-Transfer-Source")
	dest := blindTarget(src)
	if dest == "" || src == l.xferSource {
		return
	}
	cv := l.conv
	if cv.cleared {
		return
	}
	x := t.legs[ev.Get("Bridge-B-Unique-ID")]
	if x == nil {
		x = t.legs[ev.Var("last_bridge_to")]
	}
	if x == nil || x == l || x.conv != cv || x.departed {
		return
	}
	p := cv.partyOf(x)
	if p == nil || (p.state != callbridge.ConnConnected && p.state != callbridge.ConnHeld) {
		return
	}
	cv.unpend(x)
	x.departed = true
	cv.dropParty(x)
	e := t.callEvent(cv, callbridge.SwitchTransferred)
	e.Device, e.Leg = x.device, x.uuid
	e.TransferringDevice = x.device
	e.TransferredTo = callbridge.DeviceID(dest)
}

func (cv *conv) unpend(l *leg) {
	for i, x := range cv.pending {
		if x == l {
			cv.pending = append(cv.pending[:i], cv.pending[i+1:]...)
			return
		}
	}
}

// settle decides what the pending leaves of cv were, at a decisive event of another leg:
// they were not transfers (those were handled by blindTransfer and completeConsult), so the
// parties left.
func (t *Tracker) settle(cv *conv, by *leg, name string) {
	if len(cv.pending) == 0 || cv.cleared {
		return
	}
	if by != nil && cv.isPending(by) && name != "CHANNEL_DESTROY" {
		return // the pending leg's own later events (HANGUP_COMPLETE) change nothing
	}
	pend := cv.pending
	cv.pending = nil
	for _, x := range pend {
		t.leave(cv, x)
	}
}

func (cv *conv) isPending(l *leg) bool {
	for _, x := range cv.pending {
		if x == l {
			return true
		}
	}
	return false
}

// leave emits connection_cleared for x in cv (and in the consultation x started).
func (t *Tracker) leave(cv *conv, x *leg) {
	if p := cv.partyOf(x); p != nil {
		cv.dropParty(x)
		t.partyEvent(cv, p, callbridge.SwitchConnectionCleared).Cause = hangupCause(x.cause, true)
	}
	if q := x.consult; q != nil && !q.cleared {
		if p := q.partyOf(x); p != nil {
			q.dropParty(x)
			t.partyEvent(q, p, callbridge.SwitchConnectionCleared).Cause = hangupCause(x.cause, true)
		}
	}
}

// onHangup handles the end of a leg (CHANNEL_HANGUP, or CHANNEL_HANGUP_COMPLETE /
// CHANNEL_DESTROY when the first was missed).
//
//   - A party that was still being called failed (USER_BUSY, NO_ANSWER, CALL_REJECTED …) or,
//     when the call was cancelled (ORIGINATOR_CANCEL, LOSE_RACE), simply left.
//   - A connected party whose leg hangs up while other legs stay is pending: the next
//     decisive event says whether it transferred the call (see blindTransfer) or left.
//   - A party whose leg hangs up while the att_xfer consultation it started is still up is
//     completing an attended transfer (leg.handover): neither pending nor gone until
//     att_xfer bridges the target to the call (completeConsult) or the consultation ends.
//   - The caller hanging up while waiting in a queue abandoned the call: dequeued with cause
//     call_abandoned at once (fs-inbound-abandon: member-queue-end with CC-Cause Cancel comes
//     in the same millisecond, before or after).
//   - When no leg of the conversation is left, it is cleared.
func (t *Tracker) onHangup(l *leg, ev *esl.Event) {
	if l.hungUp {
		return
	}
	l.hungUp = true
	l.cause = ev.Get("Hangup-Cause")
	cv := l.conv
	if cv == nil || cv.cleared {
		return
	}
	handover := false
	if q := l.consult; q != nil && !q.cleared && q.consulter == l {
		if t.live(q, l) == 0 {
			t.endConv(q, "")
		} else {
			handover = true
		}
	}
	live := t.live(cv, l)
	if l == cv.root && cv.inQueue {
		cv.abandoned = true
		t.dequeue(cv, callbridge.CauseAbandoned)
	}
	if p := cv.partyOf(l); p != nil && !l.departed && live > 0 {
		switch p.state {
		case callbridge.ConnConnected, callbridge.ConnHeld:
			switch {
			case cv.consult:
				t.leave(cv, l) // a consultation target cannot transfer the consultation
			case handover:
				l.handover = true
			default:
				cv.pending = append(cv.pending, l)
			}
		default:
			cv.dropParty(l)
			if cause := hangupCause(l.cause, false); cause != "" {
				t.partyEvent(cv, p, callbridge.SwitchFailed).Cause = cause
			} else {
				t.partyEvent(cv, p, callbridge.SwitchConnectionCleared).Cause = callbridge.CauseNormal
			}
		}
	}
	if live == 0 {
		t.endConv(cv, "")
	}
}

// live counts the legs of cv other than except that have not hung up (the consulting leg
// counts for its consultation).
func (t *Tracker) live(cv *conv, except *leg) int {
	n := 0
	for _, x := range cv.legs {
		if x != except && !x.hungUp && !x.departed {
			n++
		}
	}
	if c := cv.consulter; c != nil && c != except && !c.hungUp && c.consult == cv {
		n++
	}
	return n
}

// endConv clears cv: call_cleared once, and the legs forgotten.
func (t *Tracker) endConv(cv *conv, cause callbridge.Cause) {
	if cv.cleared {
		return
	}
	cv.cleared = true
	cv.pending = nil
	if cause == "" {
		cause = callbridge.CauseNormal
	}
	t.callEvent(cv, callbridge.SwitchCallCleared).Cause = cause
	for _, x := range cv.legs {
		if x.consult == cv {
			x.consult = nil
		}
	}
	if c := cv.consulter; c != nil && c.consult == cv {
		c.consult = nil
	}
	delete(t.convs, cv.id)
	if c := cv.consulter; c != nil && c.handover {
		// The consulting leg hung up to complete an attended transfer, but the consultation
		// ended before att_xfer bridged its target to the call: the consulting party left.
		c.handover = false
		if x := t.convs[cv.consultOf]; x != nil && !x.cleared && !c.departed {
			t.leave(x, c)
			if t.live(x, nil) == 0 {
				t.endConv(x, "")
			}
		}
	}
}

// forget drops a destroyed leg; later events for it are ignored.
func (t *Tracker) forget(l *leg) {
	delete(t.legs, l.uuid)
	t.dead.add(l.uuid)
	if cv := l.conv; cv != nil && cv.cleared {
		delete(cv.legs, l.uuid)
	}
}

// hangupCause maps a FreeSWITCH Hangup-Cause (Q.850 names) to a CSTA cause. With connected
// set (a party that had answered) every cause is a normal clearing; else failures map to
// their cause and a cancelled call to "".
func hangupCause(c string, connected bool) callbridge.Cause {
	if connected {
		return callbridge.CauseNormal
	}
	switch c {
	case "USER_BUSY":
		return callbridge.CauseBusy
	case "NO_ANSWER", "NO_USER_RESPONSE", "ALLOTTED_TIMEOUT", "PROGRESS_TIMEOUT", "MEDIA_TIMEOUT":
		return callbridge.CauseNoAnswer
	case "CALL_REJECTED", "USER_NOT_REGISTERED_REJECTED":
		return callbridge.CauseRejected
	case "UNALLOCATED_NUMBER", "NO_ROUTE_DESTINATION", "NO_ROUTE_TRANSIT_NET", "USER_NOT_REGISTERED",
		"SUBSCRIBER_ABSENT", "NUMBER_CHANGED", "INVALID_NUMBER_FORMAT", "DESTINATION_OUT_OF_ORDER",
		"NORMAL_TEMPORARY_FAILURE", "RECOVERY_ON_TIMER_EXPIRE", "INCOMPATIBLE_DESTINATION":
		return callbridge.CauseUnavailable
	case "NETWORK_OUT_OF_ORDER", "SWITCH_CONGESTION", "NORMAL_CIRCUIT_CONGESTION":
		return callbridge.CauseNetworkOut
	}
	return "" // NORMAL_CLEARING, ORIGINATOR_CANCEL, LOSE_RACE, PICKED_OFF …: cancelled
}

// refreshData compares the attached-data variables of an event of the conversation's first
// leg with what is known and emits data_updated with the changes. Variables appear on the
// events that carry them as soon as the dialplan sets them (CHANNEL_EXECUTE_COMPLETE of
// "export ivr_lang=en", fs-inbound-answered), and never disappear, so only additions and
// changes are reported. The tenant variable, once seen, names the call's tenant.
func (t *Tracker) refreshData(l *leg, ev *esl.Event) {
	cv := l.conv
	if cv.root != l || cv.consult || !hasVars(ev) {
		return
	}
	var diff map[string]string
	for k, v := range t.dataOf(ev) {
		if v == "" || cv.data[k] == v {
			continue
		}
		if diff == nil {
			diff = map[string]string{}
		}
		diff[k] = v
		cv.data[k] = v
	}
	tenantChanged := false
	if tn := t.tenantOf(ev); tn != "" && tn != cv.tenant {
		cv.tenant, tenantChanged = tn, true
	}
	if cv.dnis == "" {
		cv.dnis = ev.Var(t.dnisVar)
	}
	if diff != nil || tenantChanged {
		t.callEvent(cv, callbridge.SwitchDataUpdated).Data = diff
	}
}
