// Package switchurl checks the switch addresses callbridge takes — `serve --pbx`, `--ari`
// and the `switches:` of a provisioning's sites — completely, before anything is opened, and
// hides their secrets in messages. The URL parsers are the drivers' own (asterisk.ParseURL,
// freeswitch.ParseURL), so a value accepted here is one the driver accepts.
package switchurl

import (
	"fmt"
	"strings"

	"github.com/callbridge/callbridge"
	"github.com/callbridge/callbridge/asterisk"
	"github.com/callbridge/callbridge/freeswitch"
	"github.com/callbridge/callbridge/internal/driverkit"
)

// Kinds of switch a PBX value names.
const (
	Sim        = "sim" // the simulated PBX
	Asterisk   = "ami" // ami://user:secret@host:port
	FreeSWITCH = "esl" // esl://:password@host:port
)

// Want is what a PBX value may be, for error messages.
const Want = `want "sim", ami://user:secret@host:5038 (Asterisk) or esl://:password@host:8021 (FreeSWITCH)`

// Kind validates a PBX value and returns its kind (Sim, Asterisk or FreeSWITCH). field names
// the value in the error ("--pbx", `site "msk": switches[0]: pbx`). The error names what is
// wrong — not "sim" and not a URL, an unknown scheme, or what the switch's URL parser refused
// (no port, no user, a bad port …) — and shows the value with its secret hidden (Redact):
//
//	--pbx "simm" is neither "sim" nor a switch URL: want "sim", ami://…
//	--pbx amii://cti:***@pbx:5038: unknown scheme "amii": want "sim", ami://…
//	--pbx ami://cti:***@127.0.0.1: asterisk: URL has no port (…)
func Kind(field, s string) (string, error) {
	if s == Sim {
		return Sim, nil
	}
	scheme, _, ok := strings.Cut(s, "://")
	if !ok {
		return "", fmt.Errorf("%s %q is neither \"sim\" nor a switch URL: %s", field, Redact(s), Want)
	}
	var err error
	switch strings.ToLower(scheme) {
	case Asterisk:
		_, err = asterisk.ParseURL(s)
	case FreeSWITCH:
		_, err = freeswitch.ParseURL(s)
	default:
		return "", fmt.Errorf("%s %s: unknown scheme %q: %s", field, Redact(s), scheme, Want)
	}
	if err != nil {
		return "", fmt.Errorf("%s %s: %w", field, Redact(s), err)
	}
	return strings.ToLower(scheme), nil
}

// CheckARI validates an Asterisk REST interface URL, ari://user:secret@host:port[/app]: a
// user, a host and a port are required; the path, when given, is the Stasis application's
// name, a token (callbridge.ValidToken); user and secret are free of CR, LF and NUL. Errors
// name field and show the value with its secret hidden.
func CheckARI(field, s string) error {
	fail := func(msg string) error { return fmt.Errorf("%s %s: %s", field, Redact(s), msg) }
	u, err := driverkit.ParseURL(s)
	if err != nil {
		return fail("bad URL: " + err.Error())
	}
	if u.Scheme != "ari" {
		return fail(fmt.Sprintf("scheme %q: want ari://user:secret@host:8088/app", u.Scheme))
	}
	if u.Hostname() == "" {
		return fail("URL has no host")
	}
	if u.User == nil || u.User.Username() == "" {
		return fail("URL has no user (ari://user:secret@host:8088/app)")
	}
	if _, err := driverkit.URLPort(u); err != nil {
		return fail(err.Error() + " (ARI listens on the HTTP port of http.conf, 8088 by default)")
	}
	secret, _ := u.User.Password()
	for _, v := range []string{u.User.Username(), secret} {
		if callbridge.CheckSwitchValue("", v) != nil {
			return fail("URL user or secret contains CR, LF or NUL")
		}
	}
	if app := strings.TrimPrefix(u.Path, "/"); app != "" && !callbridge.ValidToken(app) {
		return fail(fmt.Sprintf("application %q is not a token (1-64 characters of A-Z a-z 0-9 _ -)", app))
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return fail("URL has a query or fragment; want ari://user:secret@host:8088/app")
	}
	return nil
}

// Redact hides the secret of a switch value: a URL's password ("ami://cti:***@pbx:5038"), or
// whatever comes before an @ in a value that has no scheme ("cti:secret@pbx:5038" →
// "***@pbx:5038").
func Redact(s string) string {
	scheme, rest, ok := strings.Cut(s, "://")
	if !ok {
		if at := strings.LastIndex(s, "@"); at >= 0 {
			return "***" + s[at:]
		}
		return s
	}
	at := strings.LastIndex(rest, "@")
	if at < 0 {
		return s
	}
	user, _, _ := strings.Cut(rest[:at], ":")
	return scheme + "://" + user + ":***@" + rest[at+1:]
}
