package freeswitch_test

import (
	"strings"
	"testing"

	"github.com/callbridge/callbridge/freeswitch"
)

// FuzzParseURL: the --pbx esl:// parser never panics, and what it accepts can be written into
// the event socket's auth line: a non-empty password without spaces, CR, LF or NUL.
func FuzzParseURL(f *testing.F) {
	for _, s := range []string{
		"esl://:ClueCon@127.0.0.1:8021",
		"esl://ClueCon@fs.example",
		"esl://:pw@[::1]:8021?format=json&context=default&queues=support@default,sales@default&vars=ivr_*",
		"esl://:pw%0Aexit@host",
		"esl://:pw@host?format=xml",
		"ami://cti:cti-secret@host",
		"",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		cfg, err := freeswitch.ParseURL(s)
		if err != nil {
			return
		}
		if cfg.Addr == "" || cfg.Password == "" || strings.ContainsAny(cfg.Password, " \t\r\n\x00") {
			t.Fatalf("accepted %q with config %+v", s, cfg)
		}
		if strings.ContainsAny(cfg.Context, " \r\n\x00") {
			t.Fatalf("accepted %q with an unsafe context %q", s, cfg.Context)
		}
	})
}
