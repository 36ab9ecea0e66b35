package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/coder/websocket"

	"github.com/callbridge/callbridge/internal/testenv"
)

// twoTenants is a provisioning of two companies on the simulated switch: acme (alice 1001,
// bob 1002, supervisor sam, queue acme-support) and globex (gina 2001, queue globex-sales).
const twoTenants = `tenants:
  - id: acme
    name: ACME
    dids: ["18005550100"]
    reason_codes: [break]
    queues: [{name: acme-support}]
    users:
      - {username: alice, password: demo, name: Alice, device: "1001", queues: [acme-support]}
      - {username: bob, password: demo, name: Bob, device: "1002", queues: [acme-support]}
      - {username: sam, password: demo, role: supervisor, name: Sam}
  - id: globex
    name: Globex
    dids: ["18005550200"]
    reason_codes: [break]
    queues: [{name: globex-sales}]
    users:
      - {username: gina, password: demo, name: Gina, device: "2001", queues: [globex-sales]}
`

// wsReply sends one command, with id "t", on a new WebSocket of token and returns the reply
// frame exactly as the server wrote it.
func wsReply(t *testing.T, m *Main, token, cmd string, params map[string]any) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testenv.Patience)
	defer cancel()
	c, _, err := websocket.Dial(ctx, "ws://"+m.HTTP.Addr()+"/v1/ws?access_token="+token, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	c.SetReadLimit(1 << 20)
	b, _ := json.Marshal(map[string]any{"id": "t", "cmd": cmd, "params": params})
	if err := c.Write(ctx, websocket.MessageText, b); err != nil {
		t.Fatal(err)
	}
	for {
		_, frame, err := c.Read(ctx)
		if err != nil {
			t.Fatalf("waiting for the reply to %s %v: %v", cmd, params, err)
		}
		var msg struct {
			Re string `json:"re"`
		}
		if json.Unmarshal(frame, &msg) == nil && msg.Re == "t" {
			return frame
		}
	}
}

// TestForeignTargetRepliesAreIdentical: on a live node, every command that dials answers a
// target of another tenant (its device, queue, user name) byte for byte as it answers a
// name that exists nowhere, over the WebSocket and over REST.
func TestForeignTargetRepliesAreIdentical(t *testing.T) {
	prov := filepath.Join(t.TempDir(), "two-tenants.yaml")
	if err := os.WriteFile(prov, []byte(twoTenants), 0o600); err != nil {
		t.Fatal(err)
	}
	m := runMainWith(t, func(m *Main) { m.ProvisionFile, m.SimInterval = prov, 0 })
	alice, sam := login(t, m, "alice", "demo"), login(t, m, "sam", "demo")
	foreign := []string{"2001", "globex-sales", "gina"}
	nowhere := []string{"2999", "nosuch"}
	const unknown = "not a user, extension or queue of this tenant"

	// same checks that every target gets one reply, which is the unknown-target refusal.
	same := func(what string, reply func(to string) []byte) {
		t.Helper()
		want := reply(nowhere[0])
		if !bytes.Contains(want, []byte(unknown)) {
			t.Fatalf("%s to %q: %s, want the unknown-target refusal", what, nowhere[0], want)
		}
		for _, to := range append(foreign, nowhere[1:]...) {
			if got := reply(to); !bytes.Equal(got, want) {
				t.Errorf("%s to %q: %s\n%s to %q: %s", what, to, got, what, nowhere[0], want)
			}
		}
	}
	rest := func(path string, body map[string]any) func(to string) []byte {
		return func(to string) []byte {
			body["to"] = to
			st, b := restReply(t, m, "POST", path, sam, body)
			return append([]byte(http.StatusText(st)+" "), b...)
		}
	}
	same("WebSocket make_call", func(to string) []byte { return wsReply(t, m, alice, "make_call", map[string]any{"to": to}) })
	same("REST POST /v1/calls", rest("/v1/calls", map[string]any{"agent": "alice"}))

	// On a call, the transfers answer alike too.
	d := agentDesk(t, m, "alice")
	res := d.ok("make_call", map[string]any{"to": "+15557654321"})
	id, _ := res["call_id"].(string)
	d.callEvent("call.established", id, "1001")
	d.callEvent("call.established", id, "+15557654321")
	for _, cmd := range []string{"single_step_transfer", "consultation_call"} {
		same("WebSocket "+cmd, func(to string) []byte { return wsReply(t, m, alice, cmd, map[string]any{"call_id": id, "to": to}) })
	}
	for _, op := range []string{"transfer", "consult"} {
		same("REST "+op, rest("/v1/calls/"+id+"/"+op, map[string]any{"agent": "alice"}))
	}
	// The call is untouched: alice can still hang up.
	if !strings.Contains(string(wsReply(t, m, alice, "clear_connection", map[string]any{"call_id": id})), `"ok":true`) {
		t.Fatal("clear_connection after the refusals was refused")
	}
	d.callEvent("call.connection_cleared", id, "1001") // alice's last event of the call
}
