package main

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
)

// TestServeAttachedDataCap: the per-call limit of attached data (32768 bytes of keys and
// values) over REST against a real node on the simulated PBX. Thirty updates of 1064 bytes
// fit; the 31st would pass the limit and gets 400 invalid naming it, and changes nothing (the
// next call.data_updated the desktop sees does not have it); a smaller update still works,
// and the call goes on and clears normally.
func TestServeAttachedDataCap(t *testing.T) {
	m, drv := runQuietMain(t, 0)
	a1 := agentDesk(t, m, "agent1")
	a1.ok("set_agent_state", map[string]any{"state": "ready"})
	a1.agentState("ready", "")
	var key struct{ ID, Key string }
	if st := rest(t, m, "POST", "/v1/api-keys", login(t, m, "supervisor1", "demo"), map[string]any{
		"name": "crm", "scopes": []string{"calls:write"},
	}, &key); st != http.StatusCreated {
		t.Fatalf("create API key: %d", st)
	}

	inject(t, drv, "+15551230077")
	c := a1.callEvent("call.delivered", "", "")
	id := c["call_id"].(string)
	have := 0
	for k, v := range attached(c) {
		have += len(k) + len(v.(string))
	}
	if have+30*1064 > 32768 {
		t.Fatalf("the call starts with %d bytes of data: the test's sizes do not fit", have)
	}
	keyOf := func(i int) string { s := fmt.Sprintf("crm%d_", i); return s + strings.Repeat("x", 40-len(s)) }
	value := strings.Repeat("v", 1024)
	update := func(i int, v string, out any) int {
		return rest(t, m, "POST", "/v1/calls/"+id+"/attached-data", key.Key, map[string]any{"attached_data": map[string]string{keyOf(i): v}}, out)
	}
	for i := 1; i <= 30; i++ {
		if st := update(i, value, nil); st != http.StatusAccepted {
			t.Fatalf("update %d: HTTP %d", i, st)
		}
	}
	a1.callEvent("call.data_updated", id, "") // the first; the 30th is below
	var e struct {
		Error struct{ Code, Message string } `json:"error"`
	}
	if st := update(31, value, &e); st != http.StatusBadRequest || e.Error.Code != "invalid" || !strings.Contains(e.Error.Message, "32768 bytes per call") {
		t.Fatalf("the 31st update: HTTP %d %+v, want 400 invalid naming the limit", st, e)
	}
	if st := update(31, "small", nil); st != http.StatusAccepted {
		t.Fatalf("an update within the limit: HTTP %d", st)
	}
	ev := a1.next("call.data_updated with the small update", isEvent("call.data_updated", func(c map[string]any) bool {
		return c["call_id"] == id && attached(c)[keyOf(31)] == "small"
	}))
	d := attached(ev["data"].(map[string]any))
	if d[keyOf(30)] != value || d["cb_truncated"] != nil {
		t.Fatalf("data after the refused update: 30th %v, cb_truncated %v", d[keyOf(30)] != nil, d["cb_truncated"])
	}

	a1.ok("answer_call", map[string]any{"call_id": id})
	a1.callEvent("call.established", id, "")
	a1.ok("clear_call", map[string]any{"call_id": id})
	cl := a1.callEvent("call.cleared", id, "")
	if cl["cause"] != "normal_clearing" || attached(cl)[keyOf(31)] != "small" {
		t.Fatalf("call.cleared: %v", cl["cause"])
	}
}
