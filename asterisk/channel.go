package asterisk

import (
	"strconv"
	"strings"

	"github.com/callbridge/callbridge"
)

// chanKind classifies an Asterisk channel by its name.
type chanKind uint8

const (
	kindOther chanKind = iota // Announcer/, Snoop/, Message/, UnicastRTP/ …: never a party
	kindPhone                 // a telset: PJSIP/1001-00000003 is device 1001
	kindTrunk                 // a trunk leg: PJSIP/carrier-00000000 is the outside party
	kindLocal                 // one half of a Local channel pair: Local/2001@globex-agents-00000000;1
)

// chanName is a parsed channel name.
type chanName struct {
	kind     chanKind
	tech     string // "PJSIP"
	endpoint string // "1001", "carrier"; for Local: "2001@globex-agents"
	// Local channels only.
	localBase    string // "Local/2001@globex-agents-00000000", shared by ;1 and ;2
	localHalf    int    // 1 or 2
	localExten   string // "2001"
	localContext string // "globex-agents"
}

// parseChannel parses an Asterisk channel name. Channel names are "<tech>/<resource>-<seq>"
// (PJSIP/1001-00000003, seq is 8 hex digits) and, for Local channels,
// "Local/<exten>@<context>-<seq>;<1|2>" (all seen in the Asterisk 22 recordings). A
// "<ZOMBIE>" suffix (left after a masquerade) is ignored. isTrunk decides, for PJSIP, SIP and
// IAX2 endpoints, whether the endpoint is a trunk.
func parseChannel(name string, isTrunk func(endpoint string) bool) chanName {
	name = strings.TrimSuffix(name, "<ZOMBIE>")
	tech, res, ok := strings.Cut(name, "/")
	if !ok || tech == "" || res == "" {
		return chanName{}
	}
	if strings.EqualFold(tech, "Local") {
		base, half, ok := strings.Cut(name, ";")
		if !ok || (half != "1" && half != "2") {
			return chanName{}
		}
		// base = Local/2001@globex-agents-00000000
		r := base[len(tech)+1:]
		if i := strings.LastIndexByte(r, '-'); i > 0 {
			r = r[:i]
		}
		exten, ctx, _ := strings.Cut(r, "@")
		h := 1
		if half == "2" {
			h = 2
		}
		return chanName{kind: kindLocal, tech: tech, endpoint: r, localBase: base, localHalf: h, localExten: exten, localContext: ctx}
	}
	ep := res
	if i := strings.LastIndexByte(ep, '-'); i > 0 {
		ep = ep[:i]
	}
	switch strings.ToUpper(tech) {
	case "PJSIP", "SIP", "IAX2":
		// PJSIP/15557654321@carrier would be a dial string, not a channel name; channel names
		// carry the endpoint only.
		if isTrunk(ep) {
			return chanName{kind: kindTrunk, tech: tech, endpoint: ep}
		}
		return chanName{kind: kindPhone, tech: tech, endpoint: ep}
	case "DAHDI":
		return chanName{kind: kindTrunk, tech: tech, endpoint: ep}
	}
	return chanName{kind: kindOther, tech: tech, endpoint: ep}
}

// defaultIsTrunk is the trunk test used when no TrunkEndpoints are configured: an endpoint
// whose name is all digits is a telset extension (1001-1010, 2001-2003 in the recordings),
// anything else ("carrier") is a trunk.
func defaultIsTrunk(endpoint string) bool {
	return !allDigits(endpoint)
}

func allDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// interfaceDevice maps a queue member's interface to its device. Asterisk 22 queue events
// carry Interface and StateInterface: "PJSIP/1001" and "PJSIP/1001" for acme-support, and
// "Local/2001@globex-agents/n" with StateInterface "PJSIP/2001" for the FreePBX-style members
// of globex-sales (queues.conf in the recordings' README). The state interface names the
// physical phone, so it wins when it is a tech/endpoint pair; for a Local interface without
// one, the extension before '@' is used.
func interfaceDevice(iface, stateIface string) callbridge.DeviceID {
	if d := techDevice(stateIface); d != "" {
		return d
	}
	if d := techDevice(iface); d != "" {
		return d
	}
	if tech, res, ok := strings.Cut(iface, "/"); ok && strings.EqualFold(tech, "Local") {
		exten, _, _ := strings.Cut(res, "@")
		return callbridge.DeviceID(exten)
	}
	return ""
}

// techDevice returns the endpoint of "PJSIP/1001" (or SIP/, IAX2/), "" for anything else.
func techDevice(s string) callbridge.DeviceID {
	tech, res, ok := strings.Cut(s, "/")
	if !ok || res == "" || strings.ContainsAny(res, "/@") {
		return ""
	}
	switch strings.ToUpper(tech) {
	case "PJSIP", "SIP", "IAX2":
		return callbridge.DeviceID(res)
	}
	return ""
}

// hangupCause maps a Q.850 cause code from Hangup/HangupRequest "Cause:" to a CSTA cause.
// Seen in the recordings: 16 (Normal Clearing), 17 (User busy, with TechCause 486 in
// click-to-call-busy), 19 (User alerting, no answer, with TechCause 480 in
// agent-unreachable), 32 (a soft hangup request from ARI).
func hangupCause(code string) callbridge.Cause {
	n, err := strconv.Atoi(strings.TrimSpace(code))
	if err != nil {
		return callbridge.CauseNormal
	}
	switch n {
	case 17:
		return callbridge.CauseBusy
	case 18, 19:
		return callbridge.CauseNoAnswer
	case 21:
		return callbridge.CauseRejected
	case 1, 2, 3, 20, 22, 27, 28, 34, 38, 41, 42, 44, 58:
		return callbridge.CauseUnavailable
	}
	return callbridge.CauseNormal
}

// dialFailure maps a DialEnd DialStatus to the failure cause, or "" when the status is not a
// failure of the dialled party (ANSWER; CANCEL, which means the dialler gave up; empty).
// Asterisk 22 reports a SIP 480 exactly like a ring timeout (NOANSWER, agent-unreachable
// recording) and a 486 as BUSY (click-to-call-busy recording).
func dialFailure(status string) callbridge.Cause {
	switch strings.ToUpper(status) {
	case "BUSY":
		return callbridge.CauseBusy
	case "NOANSWER":
		return callbridge.CauseNoAnswer
	case "CONGESTION", "CHANUNAVAIL", "INVALIDARGS", "DONTCALL", "TORTURE":
		return callbridge.CauseUnavailable
	}
	return ""
}

// deviceStatus maps an Asterisk device state name (DeviceStateChange "State:") to a
// DeviceStatus. ONHOLD counts as in use.
func deviceStatus(state string) callbridge.DeviceStatus {
	switch strings.ToUpper(state) {
	case "NOT_INUSE":
		return callbridge.DeviceIdle
	case "INUSE", "BUSY", "ONHOLD", "RINGINUSE":
		return callbridge.DeviceInUse
	case "RINGING":
		return callbridge.DeviceRinging
	case "UNAVAILABLE", "INVALID":
		return callbridge.DeviceUnavailable
	}
	return callbridge.DeviceUnknown
}

// memberStatus maps a queue member "Status:" number (app_queue AST_DEVICE_* values:
// 1 not in use, 2 in use, 6 ringing in the recordings) to a DeviceStatus.
func memberStatus(s string) callbridge.DeviceStatus {
	switch strings.TrimSpace(s) {
	case "1":
		return callbridge.DeviceIdle
	case "2", "3", "7", "8":
		return callbridge.DeviceInUse
	case "6":
		return callbridge.DeviceRinging
	case "4", "5":
		return callbridge.DeviceUnavailable
	}
	return callbridge.DeviceUnknown
}

// truthy reads AMI booleans: "1", "yes", "true", "on".
func truthy(s string) bool {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "1", "yes", "true", "on", "y", "t":
		return true
	}
	return false
}

// knownNum returns s unless it is empty or Asterisk's "<unknown>" placeholder.
func knownNum(s string) string {
	if s == "<unknown>" || s == "unknown" {
		return ""
	}
	return s
}
