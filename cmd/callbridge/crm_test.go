package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/callbridge/callbridge/internal/testenv"
	"github.com/callbridge/callbridge/webhook"
)

// rest sends a JSON request and decodes the JSON answer into out (when not nil).
func rest(t *testing.T, m *Main, method, path, token string, body any, out any) int {
	t.Helper()
	status, b := restReply(t, m, method, path, token, body)
	if out != nil && len(b) > 0 {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: %d %s", method, path, status, b)
		}
	}
	return status
}

// restReply sends a REST request (body as JSON, when not nil) and returns the status and the
// body exactly as written.
func restReply(t *testing.T, m *Main, method, path, token string, body any) (int, []byte) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, "http://"+m.HTTP.Addr()+path, rd)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, b
}

// crmReceiver is the CRM's webhook endpoint: it verifies every signature.
type crmReceiver struct {
	mu     sync.Mutex
	secret string
	events []webhook.Event
	bad    []string
}

func (r *crmReceiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := webhook.Verify(r.secret, req.Header, body, time.Now(), 0); err != nil {
		r.bad = append(r.bad, err.Error())
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	var ev webhook.Event
	json.Unmarshal(body, &ev)
	r.events = append(r.events, ev)
	w.WriteHeader(http.StatusNoContent)
}

func (r *crmReceiver) find(typ, subject string) (webhook.Event, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, ev := range r.events {
		if string(ev.Type) == typ && ev.Subject == subject {
			return ev, true
		}
	}
	return webhook.Event{}, false
}

// TestServeCRM is the integrator's path on the embedded default: an API key, a webhook, a
// call the CRM answers and hangs up over REST, its record over REST and CSV, the signed
// call_record.completed webhook, and the key revoked.
func TestServeCRM(t *testing.T) {
	testServeCRM(t, runMainWith(t, func(*Main) {}))
}

// TestServeCRMOnPostgres is TestServeCRM with --db on PostgreSQL, in a schema of its own
// (testenv.PostgresSchema: skipped without CALLBRIDGE_TEST_POSTGRES, a failure under CI).
func TestServeCRMOnPostgres(t *testing.T) {
	dsn := testenv.PostgresSchema(t)
	testServeCRM(t, runMainWith(t, func(m *Main) { m.DB = dsn }))
}

func testServeCRM(t *testing.T, m *Main) {
	sup := login(t, m, "supervisor1", "demo")

	var key struct{ ID, Key string }
	if st := rest(t, m, "POST", "/v1/api-keys", sup, map[string]any{
		"name": "crm", "scopes": []string{"records:read", "calls:write", "webhooks:write"},
	}, &key); st != http.StatusCreated || !strings.HasPrefix(key.Key, "cbk_") {
		t.Fatalf("create API key: %d %+v", st, key)
	}

	rcv := &crmReceiver{}
	srv := httptest.NewServer(rcv)
	t.Cleanup(srv.Close)
	var hook struct{ ID, Secret string }
	if st := rest(t, m, "POST", "/v1/webhooks", key.Key, map[string]any{
		"url": srv.URL + "/callbridge", "events": []string{"call.delivered", "call_record.*"},
	}, &hook); st != http.StatusCreated || !strings.HasPrefix(hook.Secret, "whsec_") {
		t.Fatalf("create webhook: %d %+v", st, hook)
	}
	rcv.mu.Lock()
	rcv.secret = hook.Secret
	rcv.mu.Unlock()

	// The CRM makes agent1 ready, answers and hangs up the call for them; agent1's desktop
	// sees it all.
	d := dial(t, m, login(t, m, "agent1", "demo"), "")
	var e struct {
		Error struct{ Code, Message string } `json:"error"`
	}
	if st := rest(t, m, "POST", "/v1/agents/agent1/state", key.Key, map[string]any{"state": "not_ready", "reason": "no-such-reason"}, &e); st != http.StatusBadRequest || e.Error.Code != "invalid" {
		t.Fatalf("unknown reason over REST: %d %+v", st, e)
	}
	if st := rest(t, m, "POST", "/v1/agents/nobody/state", key.Key, map[string]any{"state": "ready"}, &e); st != http.StatusNotFound || e.Error.Code != "not_found" {
		t.Fatalf("unknown agent over REST: %d %+v", st, e)
	}
	if st := rest(t, m, "POST", "/v1/agents/agent1/state", key.Key, map[string]any{"state": "ready"}, nil); st != http.StatusAccepted {
		t.Fatalf("ready over REST: %d", st)
	}
	d.next("agent.state_changed ready", func(f map[string]any) bool {
		data, _ := f["data"].(map[string]any)
		return f["type"] == "agent.state_changed" && data["state"] == "ready"
	})
	ev := d.next("call.delivered", isEvent("call.delivered", nil))
	callID := ev["data"].(map[string]any)["call_id"].(string)
	var reply map[string]any
	if st := rest(t, m, "POST", "/v1/calls/"+callID+"/answer", key.Key, map[string]any{"agent": "agent1"}, &reply); st != http.StatusAccepted {
		t.Fatalf("answer over REST: %d %v", st, reply)
	}
	d.next("call.established", isEvent("call.established", func(c map[string]any) bool { return c["call_id"] == callID }))
	time.Sleep(1100 * time.Millisecond) // talk for a second
	if st := rest(t, m, "POST", "/v1/calls/"+callID+"/hangup", key.Key, map[string]any{"agent": "agent1"}, nil); st != http.StatusAccepted {
		t.Fatalf("hang up over REST: %d", st)
	}
	d.next("call.connection_cleared", isEvent("call.connection_cleared", func(c map[string]any) bool {
		return c["call_id"] == callID && c["device"] == "1001" // the agent's last event of the call
	}))
	if st := rest(t, m, "POST", "/v1/calls/"+callID+"/disposition", key.Key, map[string]any{
		"agent": "agent1", "disposition": "resolved", "notes": "from the CRM", "state": "not_ready", "reason": "break",
	}, nil); st != http.StatusAccepted {
		t.Fatalf("disposition over REST: %d", st)
	}

	// The record: over REST, as CSV, and pushed to the CRM, signed.
	var rec struct {
		CallID      string   `json:"call_id"`
		Agents      []string `json:"agents"`
		Result      string   `json:"result"`
		Disposition string   `json:"disposition"`
		TalkSeconds int      `json:"talk_seconds"`
		Complete    bool     `json:"complete"`
	}
	deadline := time.Now().Add(testenv.Patience)
	for {
		rec.Complete = false
		st := rest(t, m, "GET", "/v1/call-records/"+callID, key.Key, nil, &rec)
		if st == 200 && rec.Complete {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no complete record: %d %+v", st, rec)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if rec.Result != "answered" || len(rec.Agents) != 1 || rec.Agents[0] != "agent1" || rec.Disposition != "resolved" || rec.TalkSeconds < 1 {
		t.Fatalf("record %+v", rec)
	}
	req, _ := http.NewRequest("GET", "http://"+m.HTTP.Addr()+"/v1/call-records?agent=agent1", nil)
	req.Header.Set("Authorization", "Bearer "+key.Key)
	req.Header.Set("Accept", "text/csv")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	csvBody, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if !strings.HasPrefix(res.Header.Get("Content-Type"), "text/csv") || !bytes.Contains(csvBody, []byte(callID)) {
		t.Fatalf("CSV: %s %s", res.Header.Get("Content-Type"), csvBody)
	}
	deadline = time.Now().Add(testenv.Patience)
	for {
		if _, ok := rcv.find("call_record.completed", callID); ok {
			if _, ok := rcv.find("call.delivered", callID); !ok {
				t.Error("call.delivered not pushed")
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("call_record.completed never reached the CRM")
		}
		time.Sleep(50 * time.Millisecond)
	}
	// The dispatcher counts an attempt once the receiver's answer is in, which can be just
	// after the receiver has seen the request.
	for deadline := time.Now().Add(testenv.Patience); ; time.Sleep(50 * time.Millisecond) {
		v := scrapeMetrics(t, m)[`callbridge_webhook_deliveries_total{result="delivered"}`]
		if v >= 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("callbridge_webhook_deliveries_total{result=\"delivered\"} = %v, want at least 2", v)
		}
	}
	rcv.mu.Lock()
	if len(rcv.bad) > 0 {
		t.Errorf("deliveries with bad signatures: %v", rcv.bad)
	}
	rcv.mu.Unlock()

	// Revoked: refused.
	if st := rest(t, m, "DELETE", "/v1/api-keys/"+key.ID, sup, nil, nil); st != http.StatusNoContent {
		t.Fatalf("revoke: %d", st)
	}
	e.Error.Code = ""
	if st := rest(t, m, "GET", "/v1/call-records", key.Key, nil, &e); st != http.StatusUnauthorized || e.Error.Code != "unauthorized" {
		t.Fatalf("revoked key: %d %+v", st, e)
	}
}

// TestServeRefusesUnknownDB: --db names SQLite or PostgreSQL, and the error hides passwords.
func TestServeRefusesUnknownDB(t *testing.T) {
	m := NewMain(io.Discard, io.Discard)
	m.DataDir, m.HTTPAddr, m.LogLevel = t.TempDir(), "127.0.0.1:0", "error"
	m.DB = "mysql://root:hunter2@db/callbridge"
	err := m.Open(t.Context())
	m.Close()
	if err == nil || !strings.Contains(err.Error(), "--db") || strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("Open = %v, want a --db error without the password", err)
	}
}
