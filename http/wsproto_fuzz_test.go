package http

import (
	"testing"

	"github.com/callbridge/callbridge"
)

// FuzzParseRequest checks that any client message either parses into a known command with an
// id, and without tenant, agent or role, or is refused with an EInvalid error.
// This white-box test fuzzes the parser alone; the black-box tests drive it over a socket.
func FuzzParseRequest(f *testing.F) {
	for _, s := range []string{
		`{"id":"c7","cmd":"answer_call","params":{"call_id":"01J"}}`,
		`{"id":"c8","cmd":"make_call","params":{"to":"+1555","attached_data":{"a":"b"},"idempotency_key":"k"}}`,
		`{"id":"r","cmd":"resume","params":{"after_seq":41}}`,
		`{"id":"p","cmd":"ping"}`,
		`{"id":"s","cmd":"set_agent_state","params":{"state":"not_ready","reason":"break","agent":"bob"}}`,
		`{"id":"x","cmd":"answer_call","params":{"tenant":"globex"}}`,
		`{"id":1}`, `[]`, `null`, `{"id":"a","cmd":"ping","params":null}`, `{`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		req, err := parseRequest(data)
		if err != nil {
			if err.Code != callbridge.EInvalid || err.Message == "" {
				t.Fatalf("error %v is not an EInvalid with a message", err)
			}
			return
		}
		if req.id == "" || len(req.id) > maxIDLen {
			t.Fatalf("parsed with id %q", req.id)
		}
		switch {
		case req.name == cmdPing, req.name == cmdResume:
		case knownCommands[callbridge.CommandName(req.name)]:
			if req.cmd.Name != callbridge.CommandName(req.name) {
				t.Fatalf("cmd.Name %q for %q", req.cmd.Name, req.name)
			}
			if req.cmd.Tenant != "" || req.cmd.Agent != "" || req.cmd.Role != "" {
				t.Fatalf("identity from the message: %+v", req.cmd)
			}
		default:
			t.Fatalf("accepted unknown cmd %q", req.name)
		}
	})
}
