package main

import (
	"fmt"
	"strings"

	"github.com/callbridge/callbridge/asterisk"
	"github.com/callbridge/callbridge/freeswitch"
)

// Kinds of switch --pbx names.
const (
	pbxSim      = "sim" // the simulated PBX
	pbxAsterisk = "ami" // ami://user:secret@host:port
	pbxFS       = "esl" // esl://:password@host:port
)

// pbxWant is what --pbx takes, for error messages.
const pbxWant = `want "sim", ami://user:secret@host:5038 (Asterisk) or esl://:password@host:8021 (FreeSWITCH)`

// pbxKind validates a --pbx value completely, before anything is opened, and returns its kind
// (pbxSim, pbxAsterisk or pbxFS). The error names what is wrong — not "sim" and not a URL, an
// unknown scheme, or what the switch's URL parser refused (no port, no user, a bad port …) —
// and shows the value with its secret hidden.
func pbxKind(s string) (string, error) {
	if s == pbxSim {
		return pbxSim, nil
	}
	scheme, _, ok := strings.Cut(s, "://")
	if !ok {
		return "", fmt.Errorf("--pbx %q is neither \"sim\" nor a switch URL: %s", redactPBX(s), pbxWant)
	}
	var err error
	switch strings.ToLower(scheme) {
	case pbxAsterisk:
		_, err = asterisk.ParseURL(s)
	case pbxFS:
		_, err = freeswitch.ParseURL(s)
	default:
		return "", fmt.Errorf("--pbx %s: unknown scheme %q: %s", redactPBX(s), scheme, pbxWant)
	}
	if err != nil {
		return "", fmt.Errorf("--pbx %s: %w", redactPBX(s), err)
	}
	return strings.ToLower(scheme), nil
}

// redactPBX hides the secret of a --pbx value: a URL's password (redactURL), or whatever
// comes before an @ in a value that has no scheme ("cti:secret@pbx:5038" → "***@pbx:5038").
func redactPBX(s string) string {
	if strings.Contains(s, "://") {
		return redactURL(s)
	}
	if at := strings.LastIndex(s, "@"); at >= 0 {
		return "***" + s[at:]
	}
	return s
}
