package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/callbridge/callbridge/internal/testenv"
)

// TestServeRefusesBadPBX: a --pbx mistake is named before anything opens: the data directory
// is not even created, and the secret is not shown.
func TestServeRefusesBadPBX(t *testing.T) {
	for _, tc := range []struct{ pbx, want string }{
		{"simm", `--pbx "simm" is neither "sim" nor a switch URL: want "sim", ami://user:secret@host:5038 (Asterisk) or esl://:password@host:8021 (FreeSWITCH)`},
		{"cti:s3cret@pbx.example:5038", `--pbx "***@pbx.example:5038" is neither "sim" nor a switch URL`},
		{"amii://cti:s3cret@pbx.example:5038", `--pbx amii://cti:***@pbx.example:5038: unknown scheme "amii": want "sim", ami://`},
		{"http://pbx.example:5038", `unknown scheme "http"`},
		{"ami://cti:s3cret@127.0.0.1", "--pbx ami://cti:***@127.0.0.1: asterisk: URL has no port (the manager interface listens on 5038 by default: ami://USER:SECRET@127.0.0.1:5038)"},
		{"esl://:s3cret@127.0.0.1", "--pbx esl://:***@127.0.0.1: freeswitch: URL has no port (the event socket listens on 8021 by default: esl://:PASSWORD@127.0.0.1:8021)"},
		{"ami://cti:s3cret@127.0.0.1:99999", `asterisk: URL port "99999" is not a number from 1 to 65535`},
		{"ami://:s3cret@127.0.0.1:5038", "asterisk: URL has no user"},
		{"esl://127.0.0.1:8021", "freeswitch: URL has no password"},
	} {
		t.Run(tc.pbx, func(t *testing.T) {
			data := filepath.Join(t.TempDir(), "data")
			var stdout, stderr bytes.Buffer
			ctx, cancel := context.WithTimeout(context.Background(), testenv.Patience)
			defer cancel()
			err := run(ctx, []string{"serve", "--pbx", tc.pbx, "--data", data, "--http", "127.0.0.1:0", "--log-level", "error"}, &stdout, &stderr)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("serve --pbx %s: %v, want an error saying %q", tc.pbx, err, tc.want)
			}
			if strings.Contains(err.Error(), "s3cret") {
				t.Errorf("the error shows the secret: %v", err)
			}
			if _, serr := os.Stat(data); !errors.Is(serr, os.ErrNotExist) {
				t.Errorf("the data directory exists after the refusal (%v): something opened before --pbx was checked", serr)
			}
		})
	}
}
