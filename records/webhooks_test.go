package records_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/callbridge/callbridge"
	"github.com/callbridge/callbridge/webhook"
)

// signedReceiver is a CRM endpoint that verifies every delivery and keeps the raw bodies.
type signedReceiver struct {
	secret string
	srv    *httptest.Server
	mu     sync.Mutex
	bodies map[string][]byte // webhook-id → body
	bad    []string
}

func newSignedReceiver(t *testing.T) *signedReceiver {
	r := &signedReceiver{secret: webhook.NewSecret(), bodies: map[string][]byte{}}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		defer r.mu.Unlock()
		if err := webhook.Verify(r.secret, req.Header, body, time.Now(), 0); err != nil {
			r.bad = append(r.bad, err.Error())
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		r.bodies[req.Header.Get("webhook-id")] = body
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *signedReceiver) events(t *testing.T) []webhook.Event {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.bad) > 0 {
		t.Fatalf("receiver refused deliveries: %v", r.bad)
	}
	var out []webhook.Event
	for _, b := range r.bodies {
		var ev webhook.Event
		if err := json.Unmarshal(b, &ev); err != nil {
			t.Fatalf("delivery body %s: %v", b, err)
		}
		out = append(out, ev)
	}
	return out
}

// TestWebhooksCarryEveryEventSigned runs a full call with a webhook subscribed to everything
// and a receiver that verifies each signature: it gets every domain event of the tenant,
// with the data exactly as in the event log, plus call_record.completed and
// call_record.updated.
func TestWebhooksCarryEveryEventSigned(t *testing.T) {
	w := newWorld(t)
	rcv := newSignedReceiver(t)
	if err := w.store.CreateWebhook(t.Context(), callbridge.Webhook{
		ID: "wh_crm", Tenant: "acme", URL: rcv.srv.URL, Events: []string{"*"}, Secret: rcv.secret, CreatedAt: time.Now(),
	}); err != nil {
		t.Fatal(err)
	}
	d := webhook.New(webhook.Config{Store: w.store, PollInterval: 20 * time.Millisecond, Logger: testLogger(t),
		Destinations: webhook.Destinations{AllowLoopback: true}})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); d.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	w.consume(d.Notify)

	id := runFullCall(w)
	want := len(w.appended) + 2 // + call_record.completed, call_record.updated
	deadline := time.Now().Add(waitTimeout)
	var got []webhook.Event
	for {
		got = rcv.events(t)
		if len(got) >= want || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if len(got) != want {
		t.Fatalf("receiver got %d events, want %d", len(got), want)
	}
	slices.SortStableFunc(got, func(a, b webhook.Event) int {
		if a.Seq != b.Seq {
			return int(a.Seq) - int(b.Seq)
		}
		return len(a.Type) - len(b.Type) // the domain event before the record event of the same seq
	})

	var domain, recs []webhook.Event
	for _, ev := range got {
		if ev.SpecVersion != "1.0" || ev.Tenant != "acme" || ev.Source != "/callbridge/tenants/acme" || ev.DataContentType != "application/json" || ev.ID == "" || ev.Seq == 0 {
			t.Errorf("CloudEvent attributes: %+v", ev)
		}
		if ev.Type == callbridge.EventCallRecordCompleted || ev.Type == callbridge.EventCallRecordUpdated {
			recs = append(recs, ev)
		} else {
			domain = append(domain, ev)
		}
	}
	for i, ev := range w.appended {
		if domain[i].Type != ev.Type {
			t.Fatalf("event %d is %s, want %s", i, domain[i].Type, ev.Type)
		}
		wantData, _ := json.Marshal(ev.Data)
		var a, b any
		json.Unmarshal(wantData, &a)
		json.Unmarshal(domain[i].Data, &b)
		if !reflect.DeepEqual(a, b) {
			t.Fatalf("event %d (%s) data\n got %s\nwant %s", i, ev.Type, domain[i].Data, wantData)
		}
		if !domain[i].Time.Equal(ev.Time) {
			t.Errorf("event %d time %v, want %v", i, domain[i].Time, ev.Time)
		}
	}
	if len(recs) != 2 || recs[0].Type != callbridge.EventCallRecordCompleted || recs[1].Type != callbridge.EventCallRecordUpdated || recs[0].Subject != string(id) {
		t.Fatalf("record events %+v", recs)
	}
	var rec callbridge.CallRecord
	if err := json.Unmarshal(recs[1].Data, &rec); err != nil || rec.Disposition != "resolved" || rec.TalkSeconds != 61 || !rec.Complete {
		t.Fatalf("call_record.updated data %s (%v)", recs[1].Data, err)
	}
}

// TestDeadCRMDoesNotSlowCallHandling: the CRM never answers; calls and their records go on.
func TestDeadCRMDoesNotSlowCallHandling(t *testing.T) {
	w := newWorld(t)
	hang := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-hang:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(srv.Close)
	if err := w.store.CreateWebhook(t.Context(), callbridge.Webhook{
		ID: "wh_dead", Tenant: "acme", URL: srv.URL, Events: []string{"*"}, Secret: webhook.NewSecret(), CreatedAt: time.Now(),
	}); err != nil {
		t.Fatal(err)
	}
	d := webhook.New(webhook.Config{Store: w.store, PollInterval: 10 * time.Millisecond, Timeout: time.Hour, Logger: testLogger(t),
		Destinations: webhook.Destinations{AllowLoopback: true}})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); d.Run(ctx) }()
	t.Cleanup(func() { cancel(); close(hang); <-done })
	w.consume(d.Notify)

	id := runFullCall(w)
	w.waitRecord(id, "complete and disposed", func(r callbridge.CallRecord) bool { return r.Complete && r.Disposition != "" })
	ds, _, err := w.store.Deliveries(t.Context(), "acme", "wh_dead", callbridge.DeliveryFilter{Limit: 1000})
	if err != nil || len(ds) < len(w.appended) {
		t.Fatalf("%d deliveries queued (%v), want at least %d", len(ds), err, len(w.appended))
	}
	for _, d := range ds {
		if d.Status == callbridge.DeliveryDelivered {
			t.Fatalf("delivered to a dead CRM: %+v", d)
		}
	}
}

// runFullCall is the call of TestRecordOfAFullCall, without the checks: it returns the
// call's id once the disposition is set.
func runFullCall(w *world) callbridge.CallID {
	w.t.Helper()
	do := func(name callbridge.CommandName, f func(*callbridge.Command)) {
		cmd := callbridge.Command{Name: name, Agent: "alice"}
		if f != nil {
			f(&cmd)
		}
		w.do(cmd)
	}
	w.at(0)
	do(callbridge.CmdSetAgentState, func(c *callbridge.Command) { c.State, c.Reason = callbridge.AgentNotReady, "break" })
	w.at(10)
	id := w.inject("+15551230001", map[string]string{"IVR_ACCOUNT": "12345", "IVR_REASON": "billing"})
	w.at(13)
	w.at(20)
	do(callbridge.CmdSetAgentState, func(c *callbridge.Command) { c.State = callbridge.AgentReady })
	w.at(24)
	do(callbridge.CmdAnswerCall, func(c *callbridge.Command) { c.CallID = id })
	w.at(60)
	do(callbridge.CmdHoldCall, func(c *callbridge.Command) { c.CallID = id })
	w.at(75)
	do(callbridge.CmdRetrieveCall, func(c *callbridge.Command) { c.CallID = id })
	w.at(100)
	do(callbridge.CmdClearConnection, func(c *callbridge.Command) { c.CallID = id })
	w.at(110)
	w.waitRecord(id, "complete", func(r callbridge.CallRecord) bool { return r.Complete })
	w.at(115)
	do(callbridge.CmdSetDisposition, func(c *callbridge.Command) { c.CallID, c.Disposition, c.Notes = id, "resolved", "ok" })
	return id
}
