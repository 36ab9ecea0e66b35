package asterisk

import (
	"github.com/callbridge/callbridge"
)

// forget removes a conversation from the indexes.
func (t *Tracker) forget(cv *conv) {
	cv.cleared = true
	for _, p := range append([]*party(nil), cv.parties...) {
		t.dropParty(cv, p.ch)
	}
	delete(t.convs, cv.id)
	if t.byLinked[cv.linkedid] == cv {
		delete(t.byLinked, cv.linkedid)
	}
}

// onHangup: a channel is gone. Each party it had leaves its call (connection_cleared with the
// Hangup cause, or transfer when it had transferred the call away); a call whose last
// telset/trunk leg is gone clears (call_cleared, with abandoned when the caller gave up in
// the queue). Failed parties were already removed, so a rejected leg's Hangup adds nothing.
func (t *Tracker) onHangup(code string) {
	ch := t.chanOf("")
	if ch == nil {
		return
	}
	cause := hangupCause(code)
	// The Atxfer transferer hanging up completes the transfer (attended-transfer-b: BYE from
	// 1003, then AttendedTransfer, then Hangup of 1003, all in one millisecond). When its
	// Hangup comes before the AttendedTransfer, its connections wait for it.
	waiting := t.consultingParty(ch)
	if waiting != nil {
		waiting.consulterGone, waiting.consulterCause = true, cause
	}
	var affected []*conv
	for _, cv := range append([]*conv(nil), ch.partyOf...) {
		if waiting != nil && (cv == waiting || cv.id == waiting.consultOf) {
			continue
		}
		p := t.dropParty(cv, ch)
		if p == nil {
			continue
		}
		c, typ := cause, callbridge.SwitchConnectionCleared
		switch {
		case p.xferAway:
			c = callbridge.CauseTransferred
		case (p.state == callbridge.ConnAlerting || p.state == callbridge.ConnInitiated) && c != callbridge.CauseNormal:
			// A dialled party that hangs up with a failure cause before answering failed,
			// whether or not the DialEnd (BUSY/NOANSWER) came first: agent-unreachable has
			// HangupRequest, DialEnd NOANSWER and Hangup (cause 19) in the same millisecond.
			typ = callbridge.SwitchFailed
		}
		if cv.started && !cv.cleared {
			e := t.partyEvent(cv, p, typ)
			e.Cause = c
		}
		affected = append(affected, cv)
	}
	if cv := ch.conv; cv != nil {
		delete(cv.channels, ch.uid)
		if ch.physical() {
			cv.physical--
			cv.lastCause = cause
		}
		affected = append(affected, cv)
	}
	for _, cv := range affected {
		if cv.cleared {
			continue
		}
		if cv.physical <= 0 && (ch.physical() || len(cv.channels) == 0) {
			t.endConv(cv)
		}
	}
	t.removeChannel(ch)
}

// consultingParty returns the consultation whose consulter ch is, while it is up and ch is
// held in the call consulted about.
func (t *Tracker) consultingParty(ch *channel) *conv {
	for _, cv := range ch.partyOf {
		if !cv.consult || !cv.started || cv.cleared || cv.consulter != ch {
			continue
		}
		if o := t.convs[cv.consultOf]; o != nil {
			if p := o.partyOf(ch); p != nil && p.state == callbridge.ConnHeld {
				return cv
			}
		}
	}
	return nil
}

// endConv clears a conversation whose last leg is gone.
func (t *Tracker) endConv(cv *conv) {
	if cv.consult && cv.consulterGone {
		// The consulter hung up, but no transfer followed: it leaves both calls.
		if o := t.convs[cv.consultOf]; o != nil && !o.cleared {
			if p := o.partyOf(cv.consulter); p != nil {
				t.partyEvent(o, p, callbridge.SwitchConnectionCleared).Cause = cv.consulterCause
				t.dropParty(o, cv.consulter)
			}
		}
	}
	if cv.started {
		for _, p := range append([]*party(nil), cv.parties...) {
			e := t.partyEvent(cv, p, callbridge.SwitchConnectionCleared)
			e.Cause = callbridge.CauseNormal
		}
		cause := cv.endCause
		if cause == "" {
			cause = cv.lastCause
		}
		if cause == "" {
			cause = callbridge.CauseNormal
		}
		t.callEvent(cv, callbridge.SwitchCallCleared).Cause = cause
	}
	t.forget(cv)
}

func (t *Tracker) removeChannel(ch *channel) {
	delete(t.chans, ch.uid)
	t.dead.add(ch.uid)
	if b := t.bridges[ch.bridge]; b != nil {
		b.remove(ch)
	}
	if ch.kind == kindLocal {
		if p := t.pairs[ch.localBase]; p != nil {
			if p.one == ch {
				p.one = nil
			}
			if p.two == ch {
				p.two = nil
			}
			if p.one == nil && p.two == nil {
				delete(t.pairs, ch.localBase)
			}
		}
	}
}
