package main

import "github.com/callbridge/callbridge/internal/switchurl"

// Kinds of switch --pbx names.
const (
	pbxSim      = switchurl.Sim        // the simulated PBX
	pbxAsterisk = switchurl.Asterisk   // ami://user:secret@host:port
	pbxFS       = switchurl.FreeSWITCH // esl://:password@host:port
)

// pbxKind validates a --pbx value completely, before anything is opened, and returns its kind
// (pbxSim, pbxAsterisk or pbxFS); see switchurl.Kind, which the provisioning's sites share.
func pbxKind(s string) (string, error) { return switchurl.Kind("--pbx", s) }

// redactPBX hides the secret of a --pbx value (switchurl.Redact).
func redactPBX(s string) string { return switchurl.Redact(s) }
