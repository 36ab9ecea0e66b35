package freeswitch

import (
	"github.com/callbridge/callbridge"
)

// The checks below run on every value before it is written into an ESL command. An api
// command is one line whose arguments are split at spaces, and originate's {var=value,…}
// blocks split at commas, so on top of callbridge.CheckSwitchValue (CR, LF, NUL) they refuse
// spaces and FreeSWITCH's dial-string metacharacters: , | [ ] { } ' " ; ^ and the
// ${…}/$${…} expansions ($). Errors are *callbridge.Error with code invalid.

// checkChars returns an invalid error when s is empty, longer than max, or has a byte
// outside [A-Za-z0-9] and extra.
func checkChars(field, s string, max int, extra string) error {
	if err := callbridge.CheckSwitchValue(field, s); err != nil {
		return err
	}
	if s == "" {
		return callbridge.Errorf(callbridge.EInvalid, "%s is empty", field)
	}
	if len(s) > max {
		return callbridge.Errorf(callbridge.EInvalid, "%s is longer than %d characters", field, max)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case indexByte(extra, c):
		default:
			return callbridge.Errorf(callbridge.EInvalid, "%s contains %q, which cannot be written into an ESL command", field, c)
		}
	}
	return nil
}

func indexByte(s string, c byte) bool {
	for i := 0; i < len(s); i++ {
		if s[i] == c {
			return true
		}
	}
	return false
}

// CheckUUID validates a leg's Unique-ID: 1-64 characters of [A-Za-z0-9-] (FreeSWITCH's
// UUIDs, or an origination_uuid of that form). No space, which would end the argument.
func CheckUUID(field, s string) error { return checkChars(field, s, 64, "-") }

// CheckTarget validates a dial or transfer target (extension, queue, outside number):
// callbridge.CheckDialTarget, whose character set ([A-Za-z0-9+*#_.@-]) already excludes
// FreeSWITCH's , | [ ] { } and spaces.
func CheckTarget(field, s string) error { return callbridge.CheckDialTarget(field, s) }

// CheckContext validates a dialplan context name: 1-64 characters of [A-Za-z0-9_.-].
func CheckContext(field, s string) error { return checkChars(field, s, 64, "_.-") }

// CheckAgentName validates a mod_callcenter agent name ("1001@default"): 1-128 characters of
// [A-Za-z0-9_.@+-].
func CheckAgentName(field, s string) error { return checkChars(field, s, 128, "_.@+-") }

// CheckVarName validates a channel variable name: 1-64 characters of [A-Za-z0-9_].
func CheckVarName(field, s string) error { return checkChars(field, s, 64, "_") }

// CheckVarValue validates a value set in an originate {var=value} block: 0-128 characters of
// [A-Za-z0-9+*#_.@:-] (no comma, brace, quote, space or $).
func CheckVarValue(field, s string) error {
	if s == "" {
		return callbridge.CheckSwitchValue(field, s)
	}
	return checkChars(field, s, 128, "+*#_.@:-")
}
