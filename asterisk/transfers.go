package asterisk

import (
	"strings"

	"github.com/callbridge/callbridge"
	"github.com/callbridge/callbridge/asterisk/ami"
)

// onHold handles Hold/Unhold, which Asterisk 22 raises on the channel whose phone pressed
// hold, or on the Atxfer transferer (hold-retrieve-b, attended-transfer-b). MusicOnHoldStart
// on the other party is not used: it also plays to a queued caller.
func (t *Tracker) onHold(on bool) {
	ch := t.chanOf("")
	if ch == nil || !ch.physical() {
		return
	}
	from, to, typ := callbridge.ConnConnected, callbridge.ConnHeld, callbridge.SwitchHeld
	if !on {
		from, to, typ = callbridge.ConnHeld, callbridge.ConnConnected, callbridge.SwitchRetrieved
	}
	for i := len(ch.partyOf) - 1; i >= 0; i-- {
		cv := ch.partyOf[i]
		if p := cv.partyOf(ch); p != nil && p.state == from {
			p.state = to
			t.partyEvent(cv, p, typ)
			return
		}
	}
	// Unhold without Hold: Asterisk 22 sends one on the transferer right before BlindTransfer
	// (blind-transfer recording). Nothing to do.
}

// onBlindTransfer: BlindTransfer (Result Success) names the transferer (the agent who
// leaves), the transferee (who stays, keeping Uniqueid and Linkedid) and the target
// Context/Extension, which the transferee then runs itself (blind-transfer recording).
func (t *Tracker) onBlindTransfer(m ami.Message) {
	if r := m.Get("Result"); r != "" && !strings.EqualFold(r, "Success") {
		return
	}
	xfer, tee := t.chanOf("Transferer"), t.chanOf("Transferee")
	var cv *conv
	switch {
	case tee != nil && tee.conv != nil:
		cv = tee.conv
	case xfer != nil && xfer.conv != nil:
		cv = xfer.conv
	default:
		return
	}
	t.ensureStarted(cv, tee)
	if !cv.started {
		return
	}
	e := t.callEvent(cv, callbridge.SwitchTransferred)
	e.TransferredTo = callbridge.DeviceID(m.Get("Extension"))
	e.Data = copyData(cv.data)
	if xfer != nil {
		if p := cv.partyOf(xfer); p != nil {
			e.TransferringDevice = xfer.device
			p.xferAway = true
		}
	}
}

// onAttendedTransfer: AttendedTransfer (Result Success) ends an Atxfer consultation.
// DestType Bridge: the transfer completed (attended-transfer-b) — the consultation's parties
// join the original call, which emits transferred, and the consultation clears with cause
// transfer. DestType Threeway: a three-way conference (conference-threeway) — the same, with
// conferenced; Asterisk sends no Unhold for the transferer, whose connection to the original
// call is connected again (CSTA Conferenced). TransferTarget is the Local ;1 half; the
// device is the phone its ;2 half dialled.
func (t *Tracker) onAttendedTransfer(m ami.Message) {
	if r := m.Get("Result"); r != "" && !strings.EqualFold(r, "Success") {
		return
	}
	tee, orig := t.chanOf("Transferee"), t.chanOf("OrigTransferer")
	second, target := t.chanOf("SecondTransferer"), t.chanOf("TransferTarget")
	var ocv *conv
	switch {
	case tee != nil && tee.conv != nil:
		ocv = tee.conv
	case orig != nil && orig.conv != nil:
		ocv = orig.conv
	default:
		return
	}
	var ccv *conv
	if target != nil && target.conv != nil && target.conv != ocv {
		ccv = target.conv
	} else if second != nil && second.conv != nil && second.conv != ocv {
		ccv = second.conv
	}
	t.ensureStarted(ocv, tee)
	if !ocv.started {
		return
	}
	transferer := orig
	if transferer == nil {
		transferer = second
	}
	if transferer == nil && ccv != nil {
		transferer = ccv.consulter // its Hangup came first (same-millisecond reordering)
	}
	var to callbridge.DeviceID
	if ph := t.physical(target); ph != nil {
		t.identify(ph)
		to = ph.device
	} else if target != nil && target.kind == kindLocal {
		to = callbridge.DeviceID(target.localExten)
	}
	three := strings.EqualFold(m.Get("DestType"), "Threeway")
	typ := callbridge.SwitchTransferred
	if three {
		typ = callbridge.SwitchConferenced
	}
	e := t.callEvent(ocv, typ)
	e.TransferredTo = to
	e.Data = copyData(ocv.data)
	var xdev callbridge.DeviceID
	if transferer != nil {
		t.identify(transferer)
		xdev = transferer.device
	}
	if three {
		e.Device = xdev
	} else {
		e.TransferringDevice = xdev
	}
	if ccv != nil {
		e.ConsultPBXCallID = ccv.id
		t.merge(ccv, ocv, orig, second, transferer)
	}
	if transferer != nil {
		if p := ocv.partyOf(transferer); p != nil {
			if three {
				if p.state == callbridge.ConnHeld {
					p.state = callbridge.ConnConnected
				}
			} else {
				p.xferAway = true
			}
		}
	}
	if ccv != nil && ccv.started {
		cause := callbridge.CauseTransferred
		if three {
			cause = callbridge.CauseConferenced
		}
		t.callEvent(ccv, callbridge.SwitchCallCleared).Cause = cause
	}
	if ccv != nil {
		t.forget(ccv)
		if ccv.consulterGone && transferer != nil {
			if p := ocv.partyOf(transferer); p != nil {
				c := ccv.consulterCause
				if p.xferAway {
					c = callbridge.CauseTransferred
				}
				t.partyEvent(ocv, p, callbridge.SwitchConnectionCleared).Cause = c
				t.dropParty(ocv, transferer)
			}
		}
	}
}

// merge moves the parties and channels of the consultation from into the call to, except
// the transferer's own legs.
func (t *Tracker) merge(from, to *conv, skip ...*channel) {
	isSkip := func(ch *channel) bool {
		for _, s := range skip {
			if s == ch {
				return true
			}
		}
		return false
	}
	for _, p := range append([]*party(nil), from.parties...) {
		t.dropParty(from, p.ch)
		if isSkip(p.ch) {
			continue
		}
		if q := to.partyOf(p.ch); q == nil {
			np, _ := t.party(to, p.ch)
			np.state, np.queue = p.state, p.queue
		}
	}
	for _, ch := range from.channels {
		if !isSkip(ch) {
			t.moveChan(ch, to)
		}
	}
	for _, p := range t.pairs {
		if p.conv == from {
			p.conv = to
			p.consult = false
		}
	}
}
