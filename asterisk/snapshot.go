package asterisk

import (
	"slices"
	"strings"

	"github.com/callbridge/callbridge"
	"github.com/callbridge/callbridge/asterisk/ami"
)

// Snapshot forgets everything the tracker knew and rebuilds its state from the list answers
// of a resync, returning the snapshot event. channels are the CoreShowChannel items of
// CoreShowChannels; members and entries the QueueMember and QueueEntry items of QueueStatus
// (other items are ignored, so the whole QueueStatus list may be passed for both).
//
// Asterisk 22 CoreShowChannel items carry Uniqueid, Linkedid, ChannelStateDesc, the
// ChanVariable lines, Application/ApplicationData and BridgeId (resync recording), which is
// all a conversation needs: legs are grouped by Linkedid, a Local ;2 half's telset is the
// channel in its bridge, and an Atxfer consultation (Local ;1 in a transfer context) is its
// own call unless its ;1 half is already bridged with the original call (a completed
// transfer). QueueMember items name the member Location and StateInterface, Paused and
// PausedReason; QueueEntry items the waiting callers' Uniqueid.
//
// A call waiting in a queue gets a party whose Device is the queue, in state queued (CSTA
// models an ACD group as a device with a queued connection).
func (t *Tracker) Snapshot(channels, members, entries []ami.Message) callbridge.SwitchEvent {
	expect := t.expect
	t.reset()
	t.expect = expect
	t.ts = t.now()
	t.out = nil

	var order []*channel
	appQueue := map[*conv]callbridge.QueueName{}
	dialing := map[*channel]string{} // ApplicationData of channels in Dial()
	for _, m := range channels {
		if ev := m.Event(); ev != "" && ev != "CoreShowChannel" {
			continue
		}
		t.parseSections(m, true)
		s := t.sec("")
		if s == nil || s.ch == nil || slices.Contains(order, s.ch) {
			continue
		}
		ch := s.ch
		ch.firstUp = ch.state == "Up" || ch.state == "Ring"
		order = append(order, ch)
		if bid := m.Get("BridgeId"); bid != "" {
			b := t.bridges[bid]
			if b == nil {
				b = &bridge{}
				t.bridges[bid] = b
			}
			b.add(ch)
			ch.bridge = bid
		}
		if ch.conv != nil && ch.conv.dataUID == ch.uid {
			loadData(ch.conv, m, "")
		}
		if strings.EqualFold(m.Get("Application"), "Dial") {
			dialing[ch] = m.Get("ApplicationData")
		}
		if ch.conv != nil && ch == ch.conv.root && strings.EqualFold(m.Get("Application"), "Queue") {
			q, _, _ := strings.Cut(m.Get("ApplicationData"), ",")
			appQueue[ch.conv] = callbridge.QueueName(q)
		}
	}

	// Local pairs: the ;2 half's telset, and whether an Atxfer consultation is still one.
	for _, base := range sortedKeys(t.pairs) {
		p := t.pairs[base]
		if p.two != nil {
			if ph := t.bridgePeer(p.two, func(c *channel) bool { return c.physical() }); ph != nil {
				p.phone = ph.uid
			} else if ph := dialedBy(p.two, dialing[p.two], order); ph != nil {
				// Still ringing: the ;2 half runs Dial(PJSIP/1004,25) (attended-transfer-b).
				p.phone = ph.uid
			}
		}
		if !p.consult && p.conv != nil && p.queue == "" {
			// A Local member being offered by the queue the caller runs (globex-sales).
			if q := appQueue[p.conv]; q != "" {
				p.queue = q
			}
		}
		if !p.consult || p.conv == nil {
			continue
		}
		cv := p.conv
		orig := t.convs[cv.consultOf]
		if p.one != nil && orig != nil {
			if peer := t.bridgePeer(p.one, func(c *channel) bool { return c.physical() }); peer != nil {
				if peer.kind == kindTrunk || peer == orig.root {
					// Transfer completed (attended-transfer-b after AttendedTransfer): the
					// pair now carries the original call.
					p.consult = false
					for _, ch := range cv.channels {
						t.moveChan(ch, orig)
					}
					p.conv = orig
					delete(t.convs, cv.id)
					continue
				}
				cv.consulter = peer
			}
		}
	}
	for _, base := range sortedKeys(t.pairs) {
		p := t.pairs[base]
		if ph := t.chans[p.phone]; ph != nil && p.conv != nil && ph.conv != p.conv {
			t.moveChan(ph, p.conv)
		}
	}

	for _, m := range entries {
		if m.Event() != "QueueEntry" {
			continue
		}
		if ch := t.chans[m.Get("Uniqueid")]; ch != nil && ch.conv != nil {
			ch.conv.queue, ch.conv.queueLeg = callbridge.QueueName(m.Get("Queue")), ch
		}
	}

	snap := &callbridge.Snapshot{Calls: []callbridge.SnapshotCall{}, Members: []callbridge.SnapshotMember{}}
	ids := sortedKeys(t.convs)
	// Parties: consultations first need their consulter held in the original call.
	for _, id := range ids {
		cv := t.convs[id]
		legs := make([]*channel, 0, 4)
		if r := cv.root; r != nil && r.conv == cv && r.physical() {
			legs = append(legs, r) // the calling party first
		}
		for _, ch := range order {
			if ch.conv == cv && ch.physical() && ch != cv.root {
				legs = append(legs, ch)
			}
		}
		for _, ch := range legs {
			if ch == cv.root && ch.kind == kindPhone {
				for _, o := range order {
					if o.conv == cv && o.kind == kindTrunk {
						ch.dialTrunk = true
					}
				}
			}
			p, _ := t.party(cv, ch)
			switch {
			case ch.state == "Up", ch == cv.root && ch.firstUp:
				p.state = callbridge.ConnConnected
			case ch == cv.root:
				p.state = callbridge.ConnInitiated
			default:
				p.state = callbridge.ConnAlerting
				if q := appQueue[cv]; q != "" {
					p.queue, p.viaQueue = q, true
				}
			}
		}
	}
	for _, id := range ids {
		cv := t.convs[id]
		if cv.consult && cv.consulter != nil {
			p, _ := t.party(cv, cv.consulter)
			p.state = callbridge.ConnConnected
			// Keep the consulter first: it is the consultation's calling device.
			if i := slices.Index(cv.parties, p); i > 0 {
				cv.parties = append([]*party{p}, slices.Delete(cv.parties, i, i+1)...)
			}
			if orig := t.convs[cv.consultOf]; orig != nil {
				if op := orig.partyOf(cv.consulter); op != nil {
					op.state = callbridge.ConnHeld
				}
			}
		}
	}
	for _, id := range ids {
		cv := t.convs[id]
		if len(cv.parties) == 0 {
			delete(t.convs, id)
			if t.byLinked[cv.linkedid] == cv {
				delete(t.byLinked, cv.linkedid)
			}
			continue
		}
		cv.started = true
		if cv.root == nil {
			cv.root = cv.parties[0].ch
		}
		if cv.tenant == "" && cv.consult {
			if orig := t.convs[cv.consultOf]; orig != nil {
				cv.tenant = orig.tenant
			}
		}
		e := t.describe(cv, nil)
		sc := callbridge.SnapshotCall{
			PBXCallID: cv.id, Tenant: e.Tenant, Direction: e.Direction,
			ANI: e.ANI, ANIName: e.ANIName, DNIS: e.DNIS, Data: e.Data, ConsultOf: e.ConsultOf,
			Queue: cv.queue,
		}
		if sc.Queue == "" {
			sc.Queue = appQueue[cv]
		}
		for _, p := range cv.parties {
			sc.Parties = append(sc.Parties, callbridge.SnapshotParty{
				Device: p.ch.device, Leg: p.ch.uid, State: p.state, External: p.ch.external,
			})
		}
		if cv.queue != "" {
			sc.Parties = append(sc.Parties, callbridge.SnapshotParty{
				Device: callbridge.DeviceID(cv.queue), State: callbridge.ConnQueued,
			})
		}
		snap.Calls = append(snap.Calls, sc)
	}

	for _, m := range members {
		if m.Event() != "QueueMember" {
			continue
		}
		queue := callbridge.QueueName(m.Get("Queue"))
		iface, si := m.Get("Location"), m.Get("StateInterface")
		if iface == "" {
			iface = m.Get("Interface")
		}
		dev := interfaceDevice(iface, si)
		if dev == "" || queue == "" {
			continue
		}
		st := memberState{paused: truthy(m.Get("Paused")), iface: iface, stateFace: si}
		if st.paused {
			st.reason = m.Get("PausedReason")
		}
		t.members[memberKey{dev, queue}] = st
		snap.Members = append(snap.Members, callbridge.SnapshotMember{
			Device: dev, Queue: queue, Paused: st.paused, Reason: st.reason,
			Status: memberStatus(m.Get("Status")),
		})
	}
	t.secs = t.secs[:0]
	return callbridge.SwitchEvent{Type: callbridge.SwitchSnapshot, Time: t.ts, Snapshot: snap}
}

// bridgePeer returns the first other channel in ch's bridge that ok accepts.
func (t *Tracker) bridgePeer(ch *channel, ok func(*channel) bool) *channel {
	b := t.bridges[ch.bridge]
	if b == nil {
		return nil
	}
	for _, o := range b.members {
		if o != ch && ok(o) {
			return o
		}
	}
	return nil
}

// loadData sets cv's attached data from the ChanVariable lines of section prefix of m.
func loadData(cv *conv, m ami.Message, prefix string) {
	want := prefix + "ChanVariable"
	for _, f := range m.Fields {
		if !strings.EqualFold(f.Key, want) {
			continue
		}
		name, val, ok := strings.Cut(f.Value, "=")
		if !ok || name == "" {
			continue
		}
		if val == "" {
			delete(cv.data, name)
			continue
		}
		cv.data[name] = val
		if name == "CTI_TENANT" && callbridge.ValidToken(val) {
			cv.tenant = callbridge.TenantID(val)
		}
	}
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// dialedBy finds the telset a channel in Dial() is ringing: a channel of the same call, not
// bridged yet, whose endpoint is one of the dial string's targets (ApplicationData
// "PJSIP/1004,25" → endpoint 1004).
func dialedBy(ch *channel, appData string, order []*channel) *channel {
	if appData == "" {
		return nil
	}
	targets, _, _ := strings.Cut(appData, ",")
	for _, target := range strings.Split(targets, "&") {
		dev := techDevice(target)
		if dev == "" {
			continue
		}
		for _, c := range order {
			if c != ch && c.physical() && c.bridge == "" && c.linkedid == ch.linkedid && c.endpoint == string(dev) {
				return c
			}
		}
	}
	return nil
}
