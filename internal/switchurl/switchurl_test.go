package switchurl_test

import (
	"strings"
	"testing"

	"github.com/callbridge/callbridge/internal/switchurl"
)

func TestKind(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"sim", switchurl.Sim},
		{"ami://cti:secret@127.0.0.1:5038", switchurl.Asterisk},
		{"AMI://cti:secret@127.0.0.1:5038", switchurl.Asterisk},
		{"ami://cti:secret@pbx.example:5038?trunks=PJSIP/trunk", switchurl.Asterisk},
		{"esl://:ClueCon@127.0.0.1:8021", switchurl.FreeSWITCH},
	} {
		got, err := switchurl.Kind("--pbx", tc.in)
		if err != nil || got != tc.want {
			t.Errorf("Kind(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

func TestKindRefuses(t *testing.T) {
	for _, tc := range []struct{ field, in, want string }{
		{"--pbx", "simm", `--pbx "simm" is neither "sim" nor a switch URL: want "sim", ami://user:secret@host:5038 (Asterisk) or esl://:password@host:8021 (FreeSWITCH)`},
		{"--pbx", "", `--pbx "" is neither "sim" nor a switch URL`},
		{"--pbx", "cti:s3cret@pbx.example:5038", `--pbx "***@pbx.example:5038" is neither "sim" nor a switch URL`},
		{`site "msk": switches[0]: pbx`, "amii://cti:s3cret@pbx.example:5038", `site "msk": switches[0]: pbx amii://cti:***@pbx.example:5038: unknown scheme "amii": want "sim", ami://`},
		{"--pbx", "ami://cti:s3cret@127.0.0.1", "--pbx ami://cti:***@127.0.0.1: asterisk: URL has no port (the manager interface listens on 5038 by default: ami://USER:SECRET@127.0.0.1:5038)"},
		{"--pbx", "esl://:s3cret@127.0.0.1", "--pbx esl://:***@127.0.0.1: freeswitch: URL has no port"},
		{"--pbx", "ami://cti:s3cret@127.0.0.1:99999", `asterisk: URL port "99999" is not a number from 1 to 65535`},
		{"--pbx", "ami://:s3cret@127.0.0.1:5038", "asterisk: URL has no user"},
		{"--pbx", "esl://127.0.0.1:8021", "freeswitch: URL has no password"},
	} {
		_, err := switchurl.Kind(tc.field, tc.in)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Kind(%q) = %v, want an error containing %q", tc.in, err, tc.want)
			continue
		}
		if strings.Contains(err.Error(), "s3cret") {
			t.Errorf("Kind(%q): the error shows the secret: %v", tc.in, err)
		}
	}
}

func TestCheckARI(t *testing.T) {
	for _, ok := range []string{
		"ari://cti:secret@127.0.0.1:8088/callbridge",
		"ari://cti:secret@127.0.0.1:8088",
		"ari://cti@pbx.example:8088/",
	} {
		if err := switchurl.CheckARI("ari", ok); err != nil {
			t.Errorf("CheckARI(%q) = %v", ok, err)
		}
	}
	for _, tc := range []struct{ in, want string }{
		{"http://cti:s3cret@127.0.0.1:8088/app", `ari http://cti:***@127.0.0.1:8088/app: scheme "http": want ari://`},
		{"ari://cti:s3cret@127.0.0.1/app", "URL has no port"},
		{"ari://:s3cret@127.0.0.1:8088/app", "URL has no user"},
		{"ari://cti:s3cret@:8088/app", "URL has no host"},
		{"ari://cti:s3cret@127.0.0.1:8088/my/app", `application "my/app" is not a token`},
		{"ari://cti:s3cret@127.0.0.1:8088/app?x=1", "query or fragment"},
		{"ari://cti:s3%0Acret@127.0.0.1:8088/app", "contains CR, LF or NUL"},
		{"ari://cti:s3cret@127.0.0.1:8088/app\n", "bad URL"},
	} {
		err := switchurl.CheckARI("ari", tc.in)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("CheckARI(%q) = %v, want an error containing %q", tc.in, err, tc.want)
			continue
		}
		if strings.Contains(err.Error(), "s3cret") {
			t.Errorf("CheckARI(%q): the error shows the secret: %v", tc.in, err)
		}
	}
}

func TestRedact(t *testing.T) {
	for in, want := range map[string]string{
		"ami://cti:s3cret@pbx:5038":      "ami://cti:***@pbx:5038",
		"esl://:s3cret@pbx:8021":         "esl://:***@pbx:8021",
		"ami://cti@pbx:5038":             "ami://cti:***@pbx:5038",
		"cti:s3cret@pbx:5038":            "***@pbx:5038",
		"sim":                            "sim",
		"ami://pbx:5038":                 "ami://pbx:5038",
		"ami://cti:p@ss@word@pbx:5038/x": "ami://cti:***@pbx:5038/x",
	} {
		if got := switchurl.Redact(in); got != want {
			t.Errorf("Redact(%q) = %q, want %q", in, got, want)
		}
	}
}

// FuzzKind: Kind and CheckARI never panic, an error never shows a URL's password, and
// Redact is idempotent.
func FuzzKind(f *testing.F) {
	for _, s := range []string{"sim", "ami://cti:secret@127.0.0.1:5038", "esl://:pw@h:8021?format=json",
		"ari://u:p@h:8088/app", "a://", "://@", "ami://u:p@[::1]:5038", "esl://:p@h:0"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		_, kerr := switchurl.Kind("pbx", s)
		aerr := switchurl.CheckARI("ari", s)
		r := switchurl.Redact(s)
		if again := switchurl.Redact(r); again != r {
			t.Fatalf("Redact not idempotent: %q → %q → %q", s, r, again)
		}
		// A password that occurs once in s must not be shown: one of at least 6 letters and
		// digits with both in it, so that it cannot be a word of the messages themselves.
		scheme, rest, ok := strings.Cut(s, "://")
		if !ok || scheme == "" {
			return
		}
		at := strings.LastIndex(rest, "@")
		if at < 0 {
			return
		}
		_, pw, ok := strings.Cut(rest[:at], ":")
		if !ok || len(pw) < 6 || strings.Count(s, pw) != 1 || !mixed(pw) {
			return
		}
		for _, err := range []error{kerr, aerr} {
			if err != nil && strings.Contains(err.Error(), pw) {
				t.Fatalf("error shows the password %q: %v", pw, err)
			}
		}
		if strings.Contains(r, pw) {
			t.Fatalf("Redact(%q) = %q shows the password", s, r)
		}
	})
}

// mixed reports whether s is ASCII letters and digits only, with at least one of each.
func mixed(s string) bool {
	var letter, digit bool
	for _, c := range s {
		switch {
		case c >= '0' && c <= '9':
			digit = true
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z':
			letter = true
		default:
			return false
		}
	}
	return letter && digit
}
