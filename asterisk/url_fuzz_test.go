package asterisk_test

import (
	"strings"
	"testing"

	"github.com/callbridge/callbridge"
	"github.com/callbridge/callbridge/asterisk"
)

// FuzzParseURL: the --pbx ami:// parser never panics, and what it accepts is safe to write
// into AMI (no CR, LF or NUL in the user or secret) and has an address with a port.
func FuzzParseURL(f *testing.F) {
	for _, s := range []string{
		"ami://cti:cti-secret@127.0.0.1:5038",
		"ami://cti:cti-secret@pbx.example",
		"ami://cti@[::1]:5038?transfer_context=xfer&trunks=carrier,other",
		"ami://cti:se%0D%0Acret@host",
		"esl://:ClueCon@host:8021",
		"ami://:x@host",
		"",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		cfg, err := asterisk.ParseURL(s)
		if err != nil {
			return
		}
		if cfg.Addr == "" || !strings.Contains(cfg.Addr, ":") || cfg.Username == "" {
			t.Fatalf("accepted %q with config %+v", s, cfg)
		}
		for _, v := range []string{cfg.Username, cfg.Secret, cfg.TransferContext} {
			if callbridge.CheckSwitchValue("v", v) != nil {
				t.Fatalf("accepted %q with an unsafe value %q", s, v)
			}
		}
	})
}
