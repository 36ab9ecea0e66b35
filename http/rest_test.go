package http_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	nethttp "net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/callbridge/callbridge"
	cbhttp "github.com/callbridge/callbridge/http"
	"github.com/callbridge/callbridge/sqlite"
)

// crmServer is a gateway with a real SQLite store behind the CRM API.
type crmServer struct {
	*harness
	db       *sqlite.DB
	notified chan struct{}
}

func newCRMServer(t *testing.T) *crmServer {
	t.Helper()
	db, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "callbridge.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	notified := make(chan struct{}, 100)
	h := newServer(t, func(c *cbhttp.Config) {
		c.CRM = cbhttp.CRMConfig{Records: db, Webhooks: db, APIKeys: db, NotifyWebhooks: func() { notified <- struct{}{} }}
	})
	return &crmServer{harness: h, db: db, notified: notified}
}

// doWith sends a request with extra headers.
func (h *harness) doWith(t *testing.T, method, path, token string, body io.Reader, hdr map[string]string) response {
	t.Helper()
	req, err := nethttp.NewRequest(method, h.url+path, body)
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	res, err := nethttp.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return response{status: res.StatusCode, header: res.Header, body: b}
}

func (r response) decode(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("body %s: %v", r.body, err)
	}
}

// createKey creates an API key with scopes as supervisor sam and returns the key and its id.
func (h *crmServer) createKey(t *testing.T, scopes ...callbridge.APIScope) (key, id string) {
	t.Helper()
	res := h.do(t, "POST", "/v1/api-keys", h.token(t, "sam"), jsonBody(t, map[string]any{"name": "crm", "scopes": scopes}))
	if res.status != nethttp.StatusCreated {
		t.Fatalf("create key: %d %s", res.status, res.body)
	}
	var out struct{ ID, Key string }
	res.decode(t, &out)
	return out.Key, out.ID
}

func TestRESTRefusesAgentsAndStrangers(t *testing.T) {
	t.Parallel()
	h := newCRMServer(t)
	for _, path := range []string{"/v1/call-records", "/v1/agent-states", "/v1/webhooks", "/v1/api-keys"} {
		h.do(t, "GET", path, "", nil).wantError(t, nethttp.StatusUnauthorized, "unauthorized", "bearer token is required")
		h.do(t, "GET", path, "garbage", nil).wantError(t, nethttp.StatusUnauthorized, "unauthorized", "invalid token")
		h.do(t, "GET", path, h.token(t, "alice"), nil).wantError(t, nethttp.StatusForbidden, "forbidden", "agents use the WebSocket")
		if res := h.do(t, "GET", path, h.token(t, "sam"), nil); res.status != 200 {
			t.Errorf("supervisor GET %s: %d %s", path, res.status, res.body)
		}
	}
	res := h.do(t, "POST", "/v1/calls", h.token(t, "alice"), jsonBody(t, map[string]any{"agent": "alice", "to": "1002"}))
	res.wantError(t, nethttp.StatusForbidden, "forbidden", "")
	h.cmd.noCommand(t)
}

func TestAPIKeys(t *testing.T) {
	t.Parallel()
	h := newCRMServer(t)
	sam := h.token(t, "sam")
	key, id := h.createKey(t, callbridge.ScopeRecordsRead)
	if !strings.HasPrefix(key, "cbk_") || len(key) < 40 || !strings.HasPrefix(id, "key_") {
		t.Fatalf("key %q id %q", key, id)
	}
	// Stored hashed: found by the SHA-256 of the key, and nowhere in clear.
	sum := sha256.Sum256([]byte(key))
	stored, err := h.db.APIKeyByHash(t.Context(), hex.EncodeToString(sum[:]))
	if err != nil || stored.ID != id || stored.CreatedBy != "sam" || stored.Prefix != key[:12] {
		t.Fatalf("stored key %+v, %v", stored, err)
	}
	list := h.do(t, "GET", "/v1/api-keys", sam, nil)
	if list.status != 200 || bytes.Contains(list.body, []byte(key)) || !bytes.Contains(list.body, []byte(id)) {
		t.Fatalf("list: %d %s", list.status, list.body)
	}

	// The key works for its scope, and only there.
	if res := h.do(t, "GET", "/v1/call-records", key, nil); res.status != 200 {
		t.Fatalf("records with the key: %d %s", res.status, res.body)
	}
	h.do(t, "GET", "/v1/webhooks", key, nil).wantError(t, nethttp.StatusForbidden, "forbidden", "lacks the scope webhooks:write")
	h.do(t, "POST", "/v1/calls", key, jsonBody(t, map[string]any{"agent": "alice", "to": "1002"})).
		wantError(t, nethttp.StatusForbidden, "forbidden", "lacks the scope calls:write")
	h.do(t, "GET", "/v1/api-keys", key, nil).wantError(t, nethttp.StatusForbidden, "forbidden", "API keys cannot")
	h.do(t, "GET", "/v1/call-records", "cbk_"+strings.Repeat("A", 43), nil).wantError(t, nethttp.StatusUnauthorized, "unauthorized", "invalid or revoked API key")

	// Revoked: refused from then on, still listed.
	if res := h.do(t, "DELETE", "/v1/api-keys/"+id, sam, nil); res.status != nethttp.StatusNoContent {
		t.Fatalf("revoke: %d %s", res.status, res.body)
	}
	h.do(t, "GET", "/v1/call-records", key, nil).wantError(t, nethttp.StatusUnauthorized, "unauthorized", "invalid or revoked API key")
	var keys struct {
		APIKeys []callbridge.APIKey `json:"api_keys"`
	}
	h.do(t, "GET", "/v1/api-keys", sam, nil).decode(t, &keys)
	if len(keys.APIKeys) != 1 || keys.APIKeys[0].RevokedAt.IsZero() {
		t.Fatalf("after revoke: %+v", keys)
	}
	h.do(t, "DELETE", "/v1/api-keys/key_nope", sam, nil).wantError(t, nethttp.StatusNotFound, "not_found", "")

	// Bad requests.
	h.do(t, "POST", "/v1/api-keys", sam, jsonBody(t, map[string]any{"name": "x", "scopes": []string{"everything"}})).
		wantError(t, nethttp.StatusBadRequest, "invalid", "everything")
	h.do(t, "POST", "/v1/api-keys", sam, jsonBody(t, map[string]any{"name": "x", "scopes": []string{}})).
		wantError(t, nethttp.StatusBadRequest, "invalid", "scopes")
	h.do(t, "POST", "/v1/api-keys", sam, strings.NewReader(`{"name":"x","scopes":["records:read"],"tenant":"globex"}`)).
		wantError(t, nethttp.StatusBadRequest, "invalid", "tenant")
}

// putRecords stores ended call records: C00…C(n-1), a minute apart.
func putRecords(t *testing.T, db *sqlite.DB, tenant callbridge.TenantID, n int) {
	t.Helper()
	err := db.UpdateHistory(t.Context(), func(tx callbridge.HistoryTx) error {
		for i := range n {
			start := t0.Add(time.Duration(i) * time.Minute)
			r := callbridge.CallRecord{
				Tenant: tenant, CallID: callbridge.CallID(fmt.Sprintf("C%02d", i)), PBXCallID: "pbx", Direction: callbridge.DirInbound,
				ANI: "+15551230001", DNIS: "18005550100", Queue: "support", Agents: []callbridge.AgentID{"alice"},
				StartedAt: start, AnsweredAt: start.Add(5 * time.Second), EndedAt: start.Add(65 * time.Second),
				RingSeconds: 5, TalkSeconds: 60, Result: callbridge.ResultAnswered, Cause: callbridge.CauseNormal,
				Disposition: "sale", Notes: "=HYPERLINK(\"http://evil\")", AttachedData: map[string]string{"account": "42"},
				Complete: true, UpdatedAt: start.Add(65 * time.Second),
			}
			if i%2 == 1 {
				r.Queue, r.ANI, r.Agents = "sales", "+15550000000", []callbridge.AgentID{"bob"}
			}
			if err := tx.PutCallRecord(t.Context(), r, nil); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestCallRecordsREST(t *testing.T) {
	t.Parallel()
	h := newCRMServer(t)
	putRecords(t, h.db, "acme", 5)
	putRecords(t, h.db, "globex", 1)
	sam := h.token(t, "sam")

	var page struct {
		Records    []callbridge.CallRecord `json:"records"`
		NextCursor string                  `json:"next_cursor"`
	}
	res := h.do(t, "GET", "/v1/call-records?limit=2", sam, nil)
	if res.status != 200 || res.header.Get("Content-Type") != "application/json" {
		t.Fatalf("list: %d %s %s", res.status, res.header.Get("Content-Type"), res.body)
	}
	res.decode(t, &page)
	if len(page.Records) != 2 || page.Records[0].CallID != "C04" || page.NextCursor == "" || res.header.Get("X-Next-Cursor") != page.NextCursor {
		t.Fatalf("first page %+v (header %q)", page, res.header.Get("X-Next-Cursor"))
	}
	res = h.do(t, "GET", "/v1/call-records?limit=2&cursor="+page.NextCursor, sam, nil)
	res.decode(t, &page)
	if len(page.Records) != 2 || page.Records[0].CallID != "C02" {
		t.Fatalf("second page %+v", page)
	}

	for query, want := range map[string][]callbridge.CallID{
		"agent=bob":                        {"C03", "C01"},
		"queue=support&ani=%2B15551230001": {"C04", "C02", "C00"},
		"from=" + t0.Add(time.Minute).Format(time.RFC3339) + "&to=" + t0.Add(3*time.Minute).Format(time.RFC3339): {"C02", "C01"},
		"result=abandoned": nil,
	} {
		page.Records = nil
		res := h.do(t, "GET", "/v1/call-records?"+query, sam, nil)
		res.decode(t, &page)
		var got []callbridge.CallID
		for _, r := range page.Records {
			got = append(got, r.CallID)
		}
		if res.status != 200 || !slices.Equal(got, want) {
			t.Errorf("?%s: %d %v, want %v", query, res.status, got, want)
		}
	}

	// One record; another tenant's is not found.
	var rec callbridge.CallRecord
	h.do(t, "GET", "/v1/call-records/C01", sam, nil).decode(t, &rec)
	if rec.CallID != "C01" || rec.TalkSeconds != 60 || rec.AttachedData["account"] != "42" || rec.Tenant != "acme" {
		t.Fatalf("record %+v", rec)
	}
	h.do(t, "GET", "/v1/call-records/NOPE", sam, nil).wantError(t, nethttp.StatusNotFound, "not_found", "NOPE")

	// Bad query parameters are 400 invalid in the gateway's format.
	h.do(t, "GET", "/v1/call-records?limit=0", sam, nil).wantError(t, nethttp.StatusBadRequest, "invalid", "limit")
	h.do(t, "GET", "/v1/call-records?from=yesterday", sam, nil).wantError(t, nethttp.StatusBadRequest, "invalid", "from")
	h.do(t, "GET", "/v1/call-records?agnet=bob", sam, nil).wantError(t, nethttp.StatusBadRequest, "invalid", "agnet")
	h.do(t, "GET", "/v1/call-records?cursor=zzz", sam, nil).wantError(t, nethttp.StatusBadRequest, "invalid", "cursor")
	h.do(t, "GET", "/v1/call-records?result=won", sam, nil).wantError(t, nethttp.StatusBadRequest, "invalid", "result")
}

func TestCallRecordsCSV(t *testing.T) {
	t.Parallel()
	h := newCRMServer(t)
	putRecords(t, h.db, "acme", 3)
	sam := h.token(t, "sam")
	for _, tc := range []struct {
		name, path string
		hdr        map[string]string
	}{
		{"format", "/v1/call-records?format=csv", nil},
		{"accept", "/v1/call-records", map[string]string{"Accept": "text/csv"}},
		{"accept ranked", "/v1/call-records", map[string]string{"Accept": "application/json;q=0.5, text/csv"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := h.doWith(t, "GET", tc.path, sam, nil, tc.hdr)
			if res.status != 200 || res.header.Get("Content-Type") != "text/csv; charset=utf-8" {
				t.Fatalf("%d %q %s", res.status, res.header.Get("Content-Type"), res.body)
			}
			rows, err := csv.NewReader(bytes.NewReader(res.body)).ReadAll()
			if err != nil {
				t.Fatal(err)
			}
			if len(rows) != 4 || rows[0][0] != "call_id" || rows[1][0] != "C02" {
				t.Fatalf("rows %v", rows)
			}
			col := func(name string) string { return rows[1][slices.Index(rows[0], name)] }
			for name, want := range map[string]string{
				"ani": "+15551230001", "agents": "alice", "talk_seconds": "60", "ring_seconds": "5",
				"started_at": "2026-03-02T09:02:00Z", "answered_at": "2026-03-02T09:02:05Z", "queued_at": "",
				"result": "answered", "attached_data": `{"account":"42"}`, "notes": `'=HYPERLINK("http://evil")`,
			} {
				if got := col(name); got != want {
					t.Errorf("%s = %q, want %q", name, got, want)
				}
			}
		})
	}
	// JSON stays the default, and wins when preferred.
	res := h.doWith(t, "GET", "/v1/call-records", sam, nil, map[string]string{"Accept": "application/json, text/csv;q=0.1"})
	if res.header.Get("Content-Type") != "application/json" {
		t.Fatalf("Content-Type %q", res.header.Get("Content-Type"))
	}
	h.do(t, "GET", "/v1/call-records?format=xml", sam, nil).wantError(t, nethttp.StatusBadRequest, "invalid", "format")
}

func TestAgentStatesREST(t *testing.T) {
	t.Parallel()
	h := newCRMServer(t)
	err := h.db.UpdateHistory(t.Context(), func(tx callbridge.HistoryTx) error {
		for i, st := range []callbridge.AgentState{callbridge.AgentNotReady, callbridge.AgentReady, callbridge.AgentBusy} {
			r := callbridge.AgentStateRecord{ID: fmt.Sprintf("as_%d", i), Tenant: "acme", Agent: "alice", Device: "1001", State: st,
				StartedAt: t0.Add(time.Duration(i*30) * time.Second)}
			if st == callbridge.AgentNotReady {
				r.Reason = "lunch"
			}
			if err := tx.AddAgentState(t.Context(), r); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sam := h.token(t, "sam")
	var page struct {
		States []callbridge.AgentStateRecord `json:"states"`
	}
	h.do(t, "GET", "/v1/agent-states?agent=alice", sam, nil).decode(t, &page)
	if len(page.States) != 3 || page.States[2].Reason != "lunch" || *page.States[2].DurationSeconds != 30 || page.States[0].DurationSeconds != nil {
		t.Fatalf("states %+v", page.States)
	}
	res := h.do(t, "GET", "/v1/agent-states?format=csv&state=not_ready", sam, nil)
	rows, err := csv.NewReader(bytes.NewReader(res.body)).ReadAll()
	if err != nil || len(rows) != 2 || strings.Join(rows[0], ",") != "id,agent,device,state,reason,previous_state,started_at,ended_at,duration_seconds" ||
		strings.Join(rows[1], ",") != "as_0,alice,1001,not_ready,lunch,,2026-03-02T09:00:00Z,2026-03-02T09:00:30Z,30" {
		t.Fatalf("CSV %q (%v)", res.body, err)
	}
}

func TestWebhooksREST(t *testing.T) {
	t.Parallel()
	h := newCRMServer(t)
	sam := h.token(t, "sam")
	res := h.do(t, "POST", "/v1/webhooks", sam, jsonBody(t, map[string]any{
		"url": "https://crm.example.com/hook", "events": []string{"call.*", "call_record.completed"}, "description": "CRM",
	}))
	if res.status != nethttp.StatusCreated {
		t.Fatalf("create: %d %s", res.status, res.body)
	}
	var created struct {
		callbridge.Webhook
		Secret string `json:"secret"`
	}
	res.decode(t, &created)
	if !strings.HasPrefix(created.ID, "wh_") || !strings.HasPrefix(created.Secret, "whsec_") || created.Tenant != "acme" || len(created.Events) != 2 {
		t.Fatalf("created %+v", created)
	}
	// The secret is shown once.
	for _, path := range []string{"/v1/webhooks", "/v1/webhooks/" + created.ID} {
		if res := h.do(t, "GET", path, sam, nil); res.status != 200 || bytes.Contains(res.body, []byte(created.Secret)) || !bytes.Contains(res.body, []byte(created.ID)) {
			t.Fatalf("GET %s: %d %s", path, res.status, res.body)
		}
	}
	for _, bad := range []map[string]any{
		{"url": "ftp://crm.example.com/hook", "events": []string{"*"}},
		{"url": "https://user:pw@crm.example.com/", "events": []string{"*"}},
		{"url": "https://crm.example.com/", "events": []string{"call.exploded"}},
		{"url": "https://crm.example.com/", "events": []string{}},
		{"url": "https://crm.example.com/"},
	} {
		h.do(t, "POST", "/v1/webhooks", sam, jsonBody(t, bad)).wantError(t, nethttp.StatusBadRequest, "invalid", "")
	}

	// Deliveries: one dead letter, listed as a failure and redelivered.
	err := h.db.UpdateHistory(t.Context(), func(tx callbridge.HistoryTx) error {
		_, err := tx.Enqueue(t.Context(), callbridge.OutboxEvent{ID: "evt_1", Tenant: "acme", Type: callbridge.EventCallCleared, Body: []byte(`{}`), Time: t0})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	claimed, err := h.db.ClaimDeliveries(t.Context(), created.ID, t0, t0.Add(time.Minute), 10)
	if err != nil || len(claimed) != 1 {
		t.Fatal(claimed, err)
	}
	if err := h.db.FinishAttempt(t.Context(), claimed[0].ID, callbridge.DeliveryAttempt{At: t0, StatusCode: 500, Error: "HTTP 500", Status: callbridge.DeliveryDeadLetter}); err != nil {
		t.Fatal(err)
	}
	var page struct {
		Deliveries []callbridge.Delivery `json:"deliveries"`
	}
	h.do(t, "GET", "/v1/webhooks/"+created.ID+"/deliveries?status=dead_letter", sam, nil).decode(t, &page)
	if len(page.Deliveries) != 1 || page.Deliveries[0].ID != claimed[0].ID || page.Deliveries[0].LastStatusCode != 500 {
		t.Fatalf("dead letters %+v", page)
	}
	res = h.do(t, "POST", "/v1/webhooks/"+created.ID+"/deliveries/"+claimed[0].ID+"/redeliver", sam, nil)
	if res.status != nethttp.StatusAccepted {
		t.Fatalf("redeliver: %d %s", res.status, res.body)
	}
	var d callbridge.Delivery
	res.decode(t, &d)
	if d.ID != claimed[0].ID || d.Status != callbridge.DeliveryPending || d.Attempts != 0 {
		t.Fatalf("redelivered %+v", d)
	}
	select {
	case <-h.notified:
	default:
		t.Error("the dispatcher was not woken")
	}
	h.do(t, "POST", "/v1/webhooks/"+created.ID+"/deliveries/msg_nope/redeliver", sam, nil).wantError(t, nethttp.StatusNotFound, "not_found", "")

	// Another tenant's key does not see it.
	if err := h.db.CreateAPIKey(t.Context(), callbridge.APIKey{ID: "key_g", Tenant: "globex", Prefix: "cbk_g", Scopes: []callbridge.APIScope{callbridge.ScopeWebhooksWrite}, CreatedAt: t0}, hashKey("cbk_globexkey")); err != nil {
		t.Fatal(err)
	}
	h.do(t, "GET", "/v1/webhooks/"+created.ID, "cbk_globexkey", nil).wantError(t, nethttp.StatusNotFound, "not_found", "")
	h.do(t, "DELETE", "/v1/webhooks/"+created.ID, "cbk_globexkey", nil).wantError(t, nethttp.StatusNotFound, "not_found", "")

	if res := h.do(t, "DELETE", "/v1/webhooks/"+created.ID, sam, nil); res.status != nethttp.StatusNoContent {
		t.Fatalf("delete: %d %s", res.status, res.body)
	}
	h.do(t, "GET", "/v1/webhooks/"+created.ID+"/deliveries", sam, nil).wantError(t, nethttp.StatusNotFound, "not_found", "")
}

func hashKey(k string) string {
	sum := sha256.Sum256([]byte(k))
	return hex.EncodeToString(sum[:])
}

func TestCallControlREST(t *testing.T) {
	t.Parallel()
	h := newCRMServer(t)
	key, _ := h.createKey(t, callbridge.ScopeCallsWrite)
	h.cmd.setDo(func(_ context.Context, cmd callbridge.Command) (callbridge.CommandResult, error) {
		switch {
		case cmd.CallID == "GONE":
			return callbridge.CommandResult{}, callbridge.Errorf(callbridge.ENotFound, "call GONE not found")
		case cmd.Name == callbridge.CmdMakeCall || cmd.Name == callbridge.CmdConsultationCall:
			return callbridge.CommandResult{CallID: "NEWCALL"}, nil
		}
		return callbridge.CommandResult{}, nil
	})

	res := h.do(t, "POST", "/v1/calls", key, jsonBody(t, map[string]any{
		"agent": "alice", "to": "+15551230001", "attached_data": map[string]string{"crm_ticket": "T-9"}, "idempotency_key": "k1",
	}))
	if res.status != nethttp.StatusAccepted || res.json(t)["call_id"] != "NEWCALL" {
		t.Fatalf("make call: %d %s", res.status, res.body)
	}
	cmd := h.cmd.nextCommand(t)
	if cmd.Name != callbridge.CmdMakeCall || cmd.Tenant != "acme" || cmd.Agent != "alice" || cmd.Role != callbridge.RoleSupervisor ||
		cmd.To != "+15551230001" || cmd.AttachedData["crm_ticket"] != "T-9" || cmd.IdempotencyKey != "k1" || cmd.Time.IsZero() {
		t.Fatalf("command %+v", cmd)
	}

	sam := h.token(t, "sam")
	for _, tc := range []struct {
		path string
		body map[string]any
		want callbridge.Command
	}{
		{"answer", map[string]any{"agent": "alice"}, callbridge.Command{Name: callbridge.CmdAnswerCall, Agent: "alice"}},
		{"hangup", map[string]any{"agent": "alice"}, callbridge.Command{Name: callbridge.CmdClearConnection, Agent: "alice"}},
		{"hold", map[string]any{"agent": "alice"}, callbridge.Command{Name: callbridge.CmdHoldCall, Agent: "alice"}},
		{"retrieve", map[string]any{"agent": "alice"}, callbridge.Command{Name: callbridge.CmdRetrieveCall, Agent: "alice"}},
		{"clear", map[string]any{}, callbridge.Command{Name: callbridge.CmdClearCall}},
		{"transfer", map[string]any{"agent": "alice", "to": "bob", "attached_data": map[string]string{"n": "1"}},
			callbridge.Command{Name: callbridge.CmdSingleStepTransfer, Agent: "alice", To: "bob", AttachedData: map[string]string{"n": "1"}}},
		{"consult", map[string]any{"agent": "alice", "to": "1002"}, callbridge.Command{Name: callbridge.CmdConsultationCall, Agent: "alice", To: "1002"}},
		{"complete-transfer", map[string]any{"agent": "alice", "consult_call_id": "K1"}, callbridge.Command{Name: callbridge.CmdTransferCall, Agent: "alice", ConsultCallID: "K1"}},
		{"conference", map[string]any{"agent": "alice"}, callbridge.Command{Name: callbridge.CmdConferenceCall, Agent: "alice"}},
		{"attached-data", map[string]any{"attached_data": map[string]string{"k": ""}}, callbridge.Command{Name: callbridge.CmdUpdateCallData, AttachedData: map[string]string{"k": ""}}},
		{"disposition", map[string]any{"agent": "alice", "disposition": "sale", "notes": "n", "state": "ready"},
			callbridge.Command{Name: callbridge.CmdSetDisposition, Agent: "alice", Disposition: "sale", Notes: "n", State: callbridge.AgentReady}},
	} {
		t.Run(tc.path, func(t *testing.T) {
			res := h.do(t, "POST", "/v1/calls/C1/"+tc.path, sam, jsonBody(t, tc.body))
			if res.status != nethttp.StatusAccepted {
				t.Fatalf("%d %s", res.status, res.body)
			}
			got := h.cmd.nextCommand(t)
			want := tc.want
			want.Tenant, want.Role, want.CallID, want.Time = "acme", callbridge.RoleSupervisor, "C1", got.Time
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("command\n got %+v\nwant %+v", got, want)
			}
		})
	}

	// Agent state, as from the agent's desktop.
	if res := h.do(t, "POST", "/v1/agents/alice/state", sam, jsonBody(t, map[string]any{"state": "not_ready", "reason": "break", "idempotency_key": "s1"})); res.status != nethttp.StatusAccepted {
		t.Fatalf("set agent state: %d %s", res.status, res.body)
	}
	got := h.cmd.nextCommand(t)
	want := callbridge.Command{Name: callbridge.CmdSetAgentState, Tenant: "acme", Role: callbridge.RoleSupervisor,
		Agent: "alice", State: callbridge.AgentNotReady, Reason: "break", IdempotencyKey: "s1", Time: got.Time}
	if got.Time.IsZero() || fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("command\n got %+v\nwant %+v", got, want)
	}
	h.do(t, "POST", "/v1/agents/alice/state", sam, jsonBody(t, map[string]any{"state": "busy"})).wantError(t, nethttp.StatusBadRequest, "invalid", "state")
	h.do(t, "POST", "/v1/agents/al%20ice/state", sam, jsonBody(t, map[string]any{"state": "ready"})).wantError(t, nethttp.StatusBadRequest, "invalid", "id")
	h.cmd.noCommand(t)

	// The Commander's errors keep their code; bad bodies never reach it.
	h.do(t, "POST", "/v1/calls/GONE/answer", sam, jsonBody(t, map[string]any{"agent": "alice"})).wantError(t, nethttp.StatusNotFound, "not_found", "GONE")
	h.cmd.nextCommand(t)
	h.do(t, "POST", "/v1/calls/C1/answer", sam, jsonBody(t, map[string]any{})).wantError(t, nethttp.StatusBadRequest, "invalid", "agent")
	h.do(t, "POST", "/v1/calls/C1/answer", sam, jsonBody(t, map[string]any{"agent": "alice", "tenant": "globex"})).wantError(t, nethttp.StatusBadRequest, "invalid", "tenant")
	h.do(t, "POST", "/v1/calls/C1/answer", sam, jsonBody(t, map[string]any{"agent": "al ice"})).wantError(t, nethttp.StatusBadRequest, "invalid", "agent")
	h.do(t, "POST", "/v1/calls", sam, strings.NewReader(`{"agent":"alice","to":`)).wantError(t, nethttp.StatusBadRequest, "invalid", "")
	h.cmd.noCommand(t)
}

func TestOpenAPIDocument(t *testing.T) {
	t.Parallel()
	h := newServer(t) // no CRM stores: the document is the same
	res := h.do(t, "GET", "/v1/openapi.json", "", nil)
	if res.status != 200 {
		t.Fatalf("GET /v1/openapi.json: %d", res.status)
	}
	var doc struct {
		OpenAPI string                               `json:"openapi"`
		Paths   map[string]map[string]map[string]any `json:"paths"`
	}
	res.decode(t, &doc)
	if !strings.HasPrefix(doc.OpenAPI, "3.") {
		t.Fatalf("openapi %q", doc.OpenAPI)
	}
	for _, route := range []string{
		"GET /v1/call-records", "GET /v1/call-records/{call_id}", "GET /v1/agent-states",
		"POST /v1/webhooks", "GET /v1/webhooks", "GET /v1/webhooks/{id}", "DELETE /v1/webhooks/{id}",
		"GET /v1/webhooks/{id}/deliveries", "POST /v1/webhooks/{id}/deliveries/{delivery_id}/redeliver",
		"POST /v1/api-keys", "GET /v1/api-keys", "DELETE /v1/api-keys/{id}",
		"POST /v1/calls", "POST /v1/calls/{call_id}/answer", "POST /v1/calls/{call_id}/hangup", "POST /v1/calls/{call_id}/clear",
		"POST /v1/calls/{call_id}/hold", "POST /v1/calls/{call_id}/retrieve", "POST /v1/calls/{call_id}/transfer",
		"POST /v1/calls/{call_id}/consult", "POST /v1/calls/{call_id}/complete-transfer", "POST /v1/calls/{call_id}/conference",
		"POST /v1/calls/{call_id}/attached-data", "POST /v1/calls/{call_id}/disposition", "POST /v1/agents/{id}/state",
		"POST /v1/login", "GET /v1/me", "GET /v1/ws", "GET /v1/agents/{id}/availability", "GET /healthz", "GET /readyz", "GET /metrics",
	} {
		method, path, _ := strings.Cut(route, " ")
		op := doc.Paths[path][strings.ToLower(method)]
		if op == nil {
			t.Errorf("%s is not in the OpenAPI document", route)
			continue
		}
		if strings.HasPrefix(path, "/v1/") && path != "/v1/login" && op["security"] == nil {
			t.Errorf("%s has no security requirement", route)
		}
	}
	if !strings.Contains(string(res.body), `"text/csv"`) || !strings.Contains(string(res.body), `"bearer"`) {
		t.Error("the document lacks the CSV form or the bearer scheme")
	}
	if res := h.do(t, "GET", "/v1/openapi.yaml", "", nil); res.status != 200 || !bytes.Contains(res.body, []byte("/v1/call-records")) {
		t.Errorf("GET /v1/openapi.yaml: %d", res.status)
	}
	docs := h.do(t, "GET", "/docs", "", nil)
	if docs.status != 200 || !strings.HasPrefix(docs.header.Get("Content-Type"), "text/html") || !bytes.Contains(docs.body, []byte("/docs/swagger-ui-bundle.js")) {
		t.Errorf("GET /docs: %d %s", docs.status, docs.header.Get("Content-Type"))
	}
	// The renderer is served from this server (no CDN) and reads this server's document.
	if res := h.do(t, "GET", "/docs/init.js", "", nil); res.status != 200 || !bytes.Contains(res.body, []byte(`"/v1/openapi.json"`)) {
		t.Errorf("GET /docs/init.js: %d", res.status)
	}
	if res := h.do(t, "GET", "/docs/swagger-ui-bundle.js", "", nil); res.status != 200 || len(res.body) < 100_000 {
		t.Errorf("GET /docs/swagger-ui-bundle.js: %d, %d bytes", res.status, len(res.body))
	}
}

func TestCRMEndpointsWithoutStoresAreUnavailable(t *testing.T) {
	t.Parallel()
	h := newServer(t)
	h.do(t, "GET", "/v1/call-records", h.token(t, "sam"), nil).wantError(t, nethttp.StatusServiceUnavailable, "unavailable", "call records")
	h.do(t, "GET", "/v1/call-records", "cbk_whatever", nil).wantError(t, nethttp.StatusUnauthorized, "unauthorized", "API key")
}
