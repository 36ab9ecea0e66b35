package asterisk

import (
	"strings"

	"github.com/callbridge/callbridge"
)

// describe fills in the call_started fields of cv from its first channel: who calls, in
// which direction, ANI, DNIS, tenant and attached data.
//
//   - A trunk leg that called in (state Ring at Newchannel, context from-carrier in the
//     recordings) is an inbound call: the outside party is Device = CallerIDNum, ANI/ANIName
//     are its CallerIDNum/CallerIDName, DNIS is CTI_DNIS or the Exten it arrived on (the DID).
//   - A telset that called in (state Ring, e.g. the *46 feature code of telset-pause) is an
//     internal call, or outbound once it dials a trunk; DNIS is the Exten it dialled.
//   - A channel created in state Down was originated (click-to-call: Originate with ChannelId,
//     so Uniqueid = Linkedid = ChannelId): an outbound call from that device; DNIS is the
//     make_call target, else the ConnectedLineNum the Originate's CallerID gave it.
func (t *Tracker) describe(cv *conv, trigger *channel) callbridge.SwitchEvent {
	e := callbridge.SwitchEvent{
		Type: callbridge.SwitchCallStarted, Time: t.ts, Tenant: cv.tenant, PBXCallID: cv.id,
		Data: copyData(cv.data), CorrelationID: cv.corrID,
	}
	if cv.consult {
		e.Direction = callbridge.DirInternal
		e.ConsultOf = cv.consultOf
		e.DNIS = cv.target
		if c := cv.consulter; c != nil {
			t.identify(c)
			e.Device, e.Leg, e.External = c.device, c.uid, c.external
			e.ANI = string(c.device)
			e.ANIName = c.cidName0
		}
		return e
	}
	root := cv.root
	if root == nil {
		root = trigger
	}
	if root == nil || !root.physical() {
		e.Direction = callbridge.DirInternal
		return e
	}
	t.identify(root)
	e.Device, e.Leg, e.External = root.device, root.uid, root.external
	dnis := cv.data["CTI_DNIS"]
	switch {
	case root.kind == kindTrunk && root.firstUp:
		e.Direction = callbridge.DirInbound
		e.ANI = knownNum(root.cidNum)
		e.ANIName = knownNum(root.cidName)
		if dnis == "" && root.exten0 != "s" {
			dnis = root.exten0
		}
	case root.firstUp:
		e.Direction = callbridge.DirInternal
		if root.dialTrunk {
			e.Direction = callbridge.DirOutbound
		}
		e.ANI = string(root.device)
		e.ANIName = knownNum(root.cidName0)
		if dnis == "" && root.exten0 != "s" {
			dnis = root.exten0
		}
	default:
		e.Direction = callbridge.DirOutbound
		if root.kind == kindPhone {
			e.ANI = string(root.device)
			e.ANIName = knownNum(root.cidName0)
		}
		if dnis == "" {
			dnis = cv.dialTo
		}
		if dnis == "" && root.kind == kindTrunk {
			dnis = string(root.device)
		}
		if dnis == "" {
			dnis = knownNum(root.connNum)
		}
		if dnis == "" && root.exten != "s" {
			dnis = root.exten
		}
	}
	e.DNIS = dnis
	return e
}

// ensureStarted emits call_started for cv if it has not been emitted yet. trigger is the
// channel whose event made the call visible (used when the first channel was not seen).
func (t *Tracker) ensureStarted(cv *conv, trigger *channel) {
	if cv == nil || cv.started || cv.cleared {
		return
	}
	if cv.consult {
		t.startConsult(cv, nil)
		return
	}
	root := cv.root
	if root == nil {
		if trigger == nil || !trigger.physical() {
			return
		}
		root = trigger
		cv.root = root
		if cv.dataUID == "" {
			cv.dataUID = root.uid
		}
	}
	cv.started = true
	t.emit(t.describe(cv, trigger))
	p, _ := t.party(cv, root)
	p.state = callbridge.ConnInitiated
	switch {
	case root.firstUp && root.kind == kindTrunk:
		p.state = callbridge.ConnConnected // the caller
	case root.firstUp && root.state == "Up":
		t.connected(cv, p) // a telset that called in and is answered (the *46 of telset-pause)
	}
}

// rootUp: the first channel of a call placed by a telset is answered (Newstate Up): its
// connection, initiated until then, is connected.
func (t *Tracker) rootUp(ch *channel) {
	cv := ch.conv
	if cv == nil || ch != cv.root || !cv.started || ch.kind != kindPhone || !ch.firstUp {
		return
	}
	if p := cv.partyOf(ch); p != nil && p.state == callbridge.ConnInitiated {
		t.connected(cv, p)
	}
}

// startConsult emits call_started for an Atxfer consultation. The consulting device is the
// telset that enters the consultation bridge with the Local ;1 half (attended-transfer-b:
// BridgeEnter of PJSIP/1003 right after the ;1 half's); failing that, the party Atxfer put
// on hold in the call consulted about.
func (t *Tracker) startConsult(cv *conv, consulter *channel) {
	if cv.started || cv.cleared {
		return
	}
	if consulter == nil {
		if orig := t.convs[cv.consultOf]; orig != nil {
			for _, p := range orig.parties {
				if p.state == callbridge.ConnHeld && p.ch.kind == kindPhone {
					consulter = p.ch
					break
				}
			}
		}
	}
	cv.consulter = consulter
	cv.started = true
	if orig := t.convs[cv.consultOf]; orig != nil && cv.tenant == "" {
		cv.tenant = orig.tenant
	}
	t.emit(t.describe(cv, nil))
	if consulter != nil {
		// The transferer is already in the consultation bridge: its connection to the
		// consultation is connected (CSTA: the consulting device's call is originated).
		p, _ := t.party(cv, consulter)
		t.connected(cv, p)
	}
}

// identify fixes the device of a physical channel: the endpoint of a telset, the outside
// number of a trunk leg (its CallerIDNum: the caller for an inbound leg, the dialled number
// for an outbound one — Dial(PJSIP/15557654321@carrier) gives the leg CallerIDNum
// 15557654321 in the click-to-call recording).
func (t *Tracker) identify(ch *channel) {
	if ch.device != "" {
		return
	}
	switch ch.kind {
	case kindPhone:
		ch.device = callbridge.DeviceID(ch.endpoint)
	case kindTrunk:
		ch.external = true
		num := knownNum(ch.cidNum)
		if num == "" && ch.exten != "s" {
			num = ch.exten
		}
		if num == "" {
			num = "unknown"
		}
		ch.device = callbridge.DeviceID(num)
	default:
		ch.device = callbridge.DeviceID(ch.endpoint)
	}
}

// party returns ch's party in cv, creating it.
func (t *Tracker) party(cv *conv, ch *channel) (*party, bool) {
	if p := cv.partyOf(ch); p != nil {
		return p, false
	}
	t.identify(ch)
	p := &party{ch: ch}
	cv.parties = append(cv.parties, p)
	ch.partyOf = append(ch.partyOf, cv)
	return p, true
}

func (cv *conv) partyOf(ch *channel) *party {
	for _, p := range cv.parties {
		if p.ch == ch {
			return p
		}
	}
	return nil
}

// dropParty removes ch's party from cv without an event.
func (t *Tracker) dropParty(cv *conv, ch *channel) *party {
	var out *party
	for i, p := range cv.parties {
		if p.ch == ch {
			out = p
			cv.parties = append(cv.parties[:i], cv.parties[i+1:]...)
			break
		}
	}
	for i, c := range ch.partyOf {
		if c == cv {
			ch.partyOf = append(ch.partyOf[:i], ch.partyOf[i+1:]...)
			break
		}
	}
	return out
}

func (t *Tracker) partyEvent(cv *conv, p *party, typ callbridge.SwitchEventType) *callbridge.SwitchEvent {
	e := t.callEvent(cv, typ)
	e.Device, e.Leg, e.External = p.ch.device, p.ch.uid, p.ch.external
	return e
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
	p.answered = false
	t.partyEvent(cv, p, callbridge.SwitchConnected).Queue = p.queue
}

func (t *Tracker) failed(cv *conv, p *party, cause callbridge.Cause) {
	switch p.state {
	case callbridge.ConnConnected, callbridge.ConnHeld:
		return
	}
	t.partyEvent(cv, p, callbridge.SwitchFailed).Cause = cause
	t.dropParty(cv, p.ch)
}

// physical resolves a channel to the telset or trunk leg behind it: itself, or for a Local
// half the channel its ;2 half dialled (inbound-agent-hangup: AgentCalled names
// Local/2001@globex-agents-…;1, whose ;2 runs Dial(PJSIP/2001)).
func (t *Tracker) physical(ch *channel) *channel {
	for i := 0; ch != nil && i < 8; i++ {
		if ch.physical() {
			return ch
		}
		if ch.kind != kindLocal {
			return nil
		}
		p := t.pairs[ch.localBase]
		if p == nil || p.phone == "" {
			return nil
		}
		ch = t.chans[p.phone]
	}
	return nil
}

// onDialBegin: a channel is being dialled (by Dial, app_queue, Originate or ARI). Asterisk
// 22 sends DialBegin with only Dest* fields for an Originate (click-to-call recording) and for
// an ARI dial (ari-stasis-call); then the dialled channel's own conversation is used.
func (t *Tracker) onDialBegin() {
	dest, src := t.chanOf("Dest"), t.chanOf("")
	if dest == nil || dest.kind == kindOther {
		return
	}
	cv := dest.conv
	if src != nil && src.conv != nil {
		cv = src.conv
	}
	if cv == nil {
		return
	}
	// A dial from the channel waiting in a queue is app_queue ringing a member, even when
	// the AgentCalled of the same millisecond comes after the DialBegin.
	var queue callbridge.QueueName
	if src != nil && cv.queue != "" && cv.queueLeg == src {
		queue = cv.queue
	}
	if dest.kind == kindLocal {
		if dp := t.pairs[dest.localBase]; dp != nil && !dp.consult {
			if dp.conv != cv {
				t.pairInto(dp, cv)
			}
			if queue != "" && dp.queue == "" {
				dp.queue = queue
			}
		}
		return
	}
	var pair *localPair
	if src != nil && src.kind == kindLocal {
		if pr := t.pairs[src.localBase]; pr != nil && pr.two == src {
			pair = pr
			pair.phone = dest.uid
		}
	}
	if len(dest.partyOf) == 0 {
		t.moveChan(dest, cv)
	}
	if src != nil && src == cv.root && dest.kind == kindTrunk {
		src.dialTrunk = true
	}
	t.ensureStarted(cv, dest)
	p, _ := t.party(cv, dest)
	if pair != nil && pair.queue != "" {
		queue = pair.queue
	}
	if queue != "" {
		p.queue, p.viaQueue = queue, true
	}
	t.alerting(cv, p)
}

// pairInto makes a Local pair work for cv.
func (t *Tracker) pairInto(p *localPair, cv *conv) {
	p.conv = cv
	if p.one != nil {
		t.moveChan(p.one, cv)
	}
	if p.two != nil {
		t.moveChan(p.two, cv)
	}
}

// onDialEnd: ANSWER connects the dialled party, except a party app_queue offered: that one
// connects on AgentConnect, which Asterisk 22 sends after QueueCallerLeave (README "Queue
// lifecycle"), so the story reads queued, alerting, dequeued, connected. BUSY, NOANSWER,
// CONGESTION and CHANUNAVAIL fail the party; CANCEL leaves it to its Hangup.
func (t *Tracker) onDialEnd(status string) {
	dest := t.chanOf("Dest")
	ph := t.physical(dest)
	if ph == nil || ph.conv == nil {
		return
	}
	cv := ph.conv
	p := cv.partyOf(ph)
	if p == nil {
		return
	}
	if strings.EqualFold(status, "ANSWER") {
		if p.viaQueue && p.state == callbridge.ConnAlerting {
			p.answered = true
			return
		}
		t.connected(cv, p)
		return
	}
	if cause := dialFailure(status); cause != "" {
		t.failed(cv, p, cause)
	}
}

// onAgentCalled: app_queue offers the call to a member. DestChannel is the member's channel,
// or for a Local member its ;1 half; the physical phone is then found when the ;2 half dials.
func (t *Tracker) onAgentCalled(queue callbridge.QueueName) {
	dest, src := t.chanOf("Dest"), t.chanOf("")
	if dest == nil {
		return
	}
	if dest.kind == kindLocal {
		dp := t.pairs[dest.localBase]
		if dp == nil {
			return
		}
		dp.queue = queue
		if ph := t.physical(dest); ph != nil && ph.conv != nil {
			if p := ph.conv.partyOf(ph); p != nil {
				p.queue, p.viaQueue = queue, true
			}
		}
		return
	}
	if !dest.physical() {
		return
	}
	cv := dest.conv
	if src != nil && src.conv != nil {
		cv = src.conv
	}
	if cv == nil {
		return
	}
	if len(dest.partyOf) == 0 {
		t.moveChan(dest, cv)
	}
	t.ensureStarted(cv, dest)
	p, _ := t.party(cv, dest)
	p.queue, p.viaQueue = queue, true
	t.alerting(cv, p)
}

func (t *Tracker) onAgentConnect() {
	ph := t.physical(t.chanOf("Dest"))
	if ph == nil || ph.conv == nil {
		return
	}
	cv := ph.conv
	t.ensureStarted(cv, ph)
	p, _ := t.party(cv, ph)
	t.connected(cv, p)
}

// onAgentRingNoAnswer: the member did not answer in time, or rejected the call (a SIP 480
// gives AgentRingNoAnswer RingTime 0 in agent-unreachable).
func (t *Tracker) onAgentRingNoAnswer() {
	ph := t.physical(t.chanOf("Dest"))
	if ph == nil || ph.conv == nil {
		return
	}
	if p := ph.conv.partyOf(ph); p != nil && p.state == callbridge.ConnAlerting {
		t.failed(ph.conv, p, callbridge.CauseNoAnswer)
	}
}

func (t *Tracker) onQueueJoin(queue callbridge.QueueName) {
	ch := t.chanOf("")
	if ch == nil || ch.conv == nil || queue == "" {
		return
	}
	cv := ch.conv
	t.ensureStarted(cv, ch)
	if !cv.started || cv.queue == queue {
		return
	}
	if cv.queue != "" {
		t.callEvent(cv, callbridge.SwitchDequeued).Queue = cv.queue
	}
	cv.queue, cv.queueLeg = queue, ch
	e := t.callEvent(cv, callbridge.SwitchQueued)
	e.Queue, e.Leg = queue, ch.uid
}

// onQueueLeave handles QueueCallerLeave (cause "") and QueueCallerAbandon (cause
// abandoned). Asterisk 22 sends QueueCallerLeave after QueueCallerAbandon, so the second one
// finds the call no longer queued (inbound-abandon).
func (t *Tracker) onQueueLeave(queue callbridge.QueueName, cause callbridge.Cause) {
	ch := t.chanOf("")
	if ch == nil || ch.conv == nil {
		return
	}
	cv := ch.conv
	if !cv.started || cv.queue == "" || (queue != "" && cv.queue != queue) {
		return
	}
	e := t.callEvent(cv, callbridge.SwitchDequeued)
	e.Queue, e.Cause, e.Leg = cv.queue, cause, ch.uid
	cv.queue, cv.queueLeg = "", nil
	if cause == callbridge.CauseAbandoned {
		cv.endCause = callbridge.CauseAbandoned
	}
}

func (t *Tracker) onLocalBridge() {
	one, two := t.chanOf("LocalOne"), t.chanOf("LocalTwo")
	if one == nil || two == nil || one.kind != kindLocal || two.kind != kindLocal {
		return
	}
	if one.localBase != two.localBase {
		t.log.Debug("asterisk: LocalBridge halves with different names", "one", one.name, "two", two.name)
	}
}

func (t *Tracker) onBridgeEnter(bid string) {
	ch := t.chanOf("")
	if ch == nil || bid == "" {
		return
	}
	b := t.bridges[bid]
	if b == nil {
		if len(t.bridges) >= 1<<16 {
			return
		}
		b = &bridge{}
		t.bridges[bid] = b
	}
	b.add(ch)
	ch.bridge = bid
	// Atxfer: the transferer moves into the consultation bridge holding the Local ;1 half.
	for _, o := range b.members {
		switch {
		case ch.kind == kindLocal && o.kind == kindPhone:
			if p := t.pairs[ch.localBase]; p != nil && p.consult && p.one == ch && p.conv != nil {
				t.startConsult(p.conv, o)
			}
		case ch.kind == kindPhone && o.kind == kindLocal:
			if p := t.pairs[o.localBase]; p != nil && p.consult && p.one == o && p.conv != nil {
				t.startConsult(p.conv, ch)
			}
		}
	}
	if !ch.physical() || ch.conv == nil {
		return
	}
	cv := ch.conv
	t.ensureStarted(cv, ch)
	if !cv.started {
		return
	}
	if len(ch.partyOf) == 0 {
		// Bridged without a Dial (an ARI app adding a channel it created).
		p, _ := t.party(cv, ch)
		t.connected(cv, p)
	}
	if ch == cv.root {
		// The caller joins the agent: any answered queue member not yet connected
		// (AgentConnect missing) is connected now.
		for _, p := range cv.parties {
			if p.answered && p.state == callbridge.ConnAlerting {
				t.connected(cv, p)
			}
		}
	}
}

func (t *Tracker) onBridgeLeave(bid string) {
	ch := t.chanOf("")
	if ch == nil {
		return
	}
	if b := t.bridges[bid]; b != nil {
		b.remove(ch)
	}
	if ch.bridge == bid {
		ch.bridge = ""
	}
}

func (b *bridge) add(ch *channel) {
	for _, m := range b.members {
		if m == ch {
			return
		}
	}
	if len(b.members) < 64 {
		b.members = append(b.members, ch)
	}
}

func (b *bridge) remove(ch *channel) {
	for i, m := range b.members {
		if m == ch {
			b.members = append(b.members[:i], b.members[i+1:]...)
			return
		}
	}
}
