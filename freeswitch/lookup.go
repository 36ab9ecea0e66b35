package freeswitch

import (
	"slices"

	"github.com/callbridge/callbridge"
)

// Leg returns the Unique-ID of the leg through which device takes part in the call
// pbxCallID (for a consultation, the consulting device's own leg). Errors are
// *callbridge.Error with code not_found.
func (t *Tracker) Leg(pbxCallID string, device callbridge.DeviceID) (string, error) {
	cv := t.convs[pbxCallID]
	if cv == nil || cv.cleared {
		return "", callbridge.Errorf(callbridge.ENotFound, "call %q is not on the switch", pbxCallID)
	}
	for _, p := range cv.parties {
		if p.leg.device == device && !p.leg.hungUp && !p.leg.departed {
			return p.leg.uuid, nil
		}
	}
	return "", callbridge.Errorf(callbridge.ENotFound, "device %q is not in call %q", device, pbxCallID)
}

// Legs returns the legs of every party of the call pbxCallID that are up, in the order they
// joined. For a consultation the consulting device's leg is left out: it also carries the
// held original call, and hanging it up would complete the transfer.
func (t *Tracker) Legs(pbxCallID string) ([]string, error) {
	cv := t.convs[pbxCallID]
	if cv == nil || cv.cleared {
		return nil, callbridge.Errorf(callbridge.ENotFound, "call %q is not on the switch", pbxCallID)
	}
	var out []string
	for _, p := range cv.parties {
		if (cv.consult && p.leg == cv.consulter) || p.leg.hungUp || p.leg.departed {
			continue
		}
		if !slices.Contains(out, p.leg.uuid) {
			out = append(out, p.leg.uuid)
		}
	}
	return out, nil
}

// ConsultOf returns the call a consultation consults about, and whether pbxCallID is a
// consultation the tracker knows.
func (t *Tracker) ConsultOf(pbxCallID string) (string, bool) {
	cv := t.convs[pbxCallID]
	if cv == nil || !cv.consult || cv.cleared {
		return "", false
	}
	return cv.consultOf, true
}

// Consulting reports whether device is the consulting device of a consultation that is up:
// of pbxCallID itself, or about pbxCallID.
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
