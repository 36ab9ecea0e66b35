package asterisk

import (
	"slices"

	"github.com/callbridge/callbridge"
)

// Leg returns the name of the channel through which device takes part in the call
// pbxCallID ("PJSIP/1001-00000006"). Errors are *callbridge.Error with code not_found.
func (t *Tracker) Leg(pbxCallID string, device callbridge.DeviceID) (string, error) {
	cv := t.convs[pbxCallID]
	if cv == nil || cv.cleared {
		return "", callbridge.Errorf(callbridge.ENotFound, "call %q is not on the switch", pbxCallID)
	}
	for _, p := range cv.parties {
		if p.ch.device == device {
			return p.ch.name, nil
		}
	}
	return "", callbridge.Errorf(callbridge.ENotFound, "device %q is not in call %q", device, pbxCallID)
}

// Legs returns the channels of every party of the call pbxCallID, in the order they joined.
// For a consultation the consulting device's channel is left out: it also carries the held
// original call, and hanging it up would complete the transfer.
func (t *Tracker) Legs(pbxCallID string) ([]string, error) {
	cv := t.convs[pbxCallID]
	if cv == nil || cv.cleared {
		return nil, callbridge.Errorf(callbridge.ENotFound, "call %q is not on the switch", pbxCallID)
	}
	var out []string
	for _, p := range cv.parties {
		if cv.consult && p.ch == cv.consulter {
			continue
		}
		if !slices.Contains(out, p.ch.name) {
			out = append(out, p.ch.name)
		}
	}
	return out, nil
}

// ConsultOf returns the call a consultation consults about, and whether pbxCallID is a
// consultation the tracker knows.
func (t *Tracker) ConsultOf(pbxCallID string) (string, bool) {
	cv := t.convs[pbxCallID]
	if cv == nil || !cv.consult {
		return "", false
	}
	return cv.consultOf, true
}

// OpenCalls returns the PBXCallIDs of the calls started and not yet cleared, sorted.
func (t *Tracker) OpenCalls() []string {
	var out []string
	for id, cv := range t.convs {
		if cv.started && !cv.cleared {
			out = append(out, id)
		}
	}
	slices.Sort(out)
	return out
}

// Consulting reports whether device is the consulting device of a consultation that is up:
// of pbxCallID itself (a consultation), or about pbxCallID (its original call). An Atxfer
// transferer has one channel in both calls, so hanging it up completes the transfer
// (atxferdropcall=no), which is not what clearing one of the two calls means.
func (t *Tracker) Consulting(pbxCallID string, device callbridge.DeviceID) (consult string, ok bool) {
	for id, cv := range t.convs {
		if !cv.consult || cv.cleared || cv.consulter == nil || cv.consulter.device != device {
			continue
		}
		if id == pbxCallID || cv.consultOf == pbxCallID {
			return id, true
		}
	}
	return "", false
}
