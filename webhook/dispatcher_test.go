package webhook_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/callbridge/callbridge"
	"github.com/callbridge/callbridge/internal/testenv"
	"github.com/callbridge/callbridge/sqlite"
	"github.com/callbridge/callbridge/webhook"
)

const waitTimeout = testenv.Patience

// receipt is one request a test receiver got.
type receipt struct {
	id     string // webhook-id
	event  webhook.Event
	status int // what the receiver answered
}

// receiver is a CRM endpoint that verifies every request and answers with respond(n), n
// counting requests from 1.
type receiver struct {
	t       *testing.T
	secret  string
	respond func(n int) int
	srv     *httptest.Server

	mu       sync.Mutex
	n        int
	receipts []receipt
	bad      []string
}

func newReceiver(t *testing.T, secret string, respond func(n int) int) *receiver {
	r := &receiver{t: t, secret: secret, respond: respond}
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) serve(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.n++
	if err := webhook.Verify(r.secret, req.Header, body, time.Now(), 0); err != nil {
		r.bad = append(r.bad, err.Error())
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	if ct := req.Header.Get("Content-Type"); ct != webhook.ContentType {
		r.bad = append(r.bad, "content type "+ct)
	}
	var ev webhook.Event
	if err := json.Unmarshal(body, &ev); err != nil {
		r.bad = append(r.bad, "body: "+err.Error())
	}
	status := r.respond(r.n)
	r.receipts = append(r.receipts, receipt{id: req.Header.Get("webhook-id"), event: ev, status: status})
	w.WriteHeader(status)
}

func (r *receiver) snapshot() ([]receipt, []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]receipt(nil), r.receipts...), append([]string(nil), r.bad...)
}

func openStore(t *testing.T) *sqlite.DB {
	t.Helper()
	db, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "callbridge.db"), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func addWebhook(t *testing.T, s *sqlite.DB, id, url, secret string) {
	t.Helper()
	if err := s.CreateWebhook(t.Context(), callbridge.Webhook{
		ID: id, Tenant: "acme", URL: url, Events: []string{"*"}, Secret: secret, CreatedAt: time.Now(),
	}); err != nil {
		t.Fatal(err)
	}
}

// enqueueN puts n call.cleared events in the outbox.
func enqueueN(t *testing.T, s *sqlite.DB, n int) []string {
	t.Helper()
	var ids []string
	if err := s.UpdateHistory(t.Context(), func(tx callbridge.HistoryTx) error {
		for i := range n {
			id := fmt.Sprintf("evt_%03d", i)
			body, err := webhook.Encode(id, "acme", callbridge.EventCallCleared, "CALL1", time.Now(), uint64(i+1), json.RawMessage(`{"call_id":"CALL1","n":`+fmt.Sprint(i)+`}`))
			if err != nil {
				return err
			}
			if _, err := tx.Enqueue(t.Context(), callbridge.OutboxEvent{ID: id, Tenant: "acme", Type: callbridge.EventCallCleared, Body: body, Time: time.Now()}); err != nil {
				return err
			}
			ids = append(ids, id)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return ids
}

func runDispatcher(t *testing.T, cfg webhook.Config) *webhook.Dispatcher {
	t.Helper()
	if cfg.PollInterval == 0 {
		cfg.PollInterval = 10 * time.Millisecond
	}
	if cfg.BaseBackoff == 0 {
		cfg.BaseBackoff, cfg.MaxBackoff = 10*time.Millisecond, 40*time.Millisecond
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 2 * time.Second
	}
	cfg.NoJitter = true
	cfg.Destinations.AllowLoopback = true // the test receivers listen on 127.0.0.1
	d := webhook.New(cfg)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); d.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return d
}

// waitDeliveries polls until every delivery of webhook wh has status st.
func waitDeliveries(t *testing.T, s *sqlite.DB, wh string, n int, st callbridge.DeliveryStatus) []callbridge.Delivery {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for {
		ds, _, err := s.Deliveries(context.Background(), "acme", wh, callbridge.DeliveryFilter{Limit: 1000})
		if err != nil {
			t.Fatal(err)
		}
		all := len(ds) == n
		for _, d := range ds {
			all = all && d.Status == st
		}
		if all {
			return ds
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %d deliveries %s: %+v", n, st, ds)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestReceiverThatFailsThenRecovers: the CRM answers 503 to its first 25 requests (and 500
// after accepting to some: those come again), then recovers. Every event arrives, each
// retry of an event carries the same webhook-id, and the outbox ends all delivered.
func TestReceiverThatFailsThenRecovers(t *testing.T) {
	s := openStore(t)
	secret := webhook.NewSecret()
	rcv := newReceiver(t, secret, func(n int) int {
		if n <= 25 {
			return http.StatusServiceUnavailable
		}
		return http.StatusNoContent
	})
	addWebhook(t, s, "wh_crm", rcv.srv.URL+"/hooks?token=abc", secret)
	ids := enqueueN(t, s, 20)
	runDispatcher(t, webhook.Config{Store: s, MaxAttempts: 1000})

	ds := waitDeliveries(t, s, "wh_crm", len(ids), callbridge.DeliveryDelivered)
	receipts, bad := rcv.snapshot()
	if len(bad) > 0 {
		t.Fatalf("receiver refused requests: %v", bad)
	}
	webhookIDs := map[string]string{} // event id → webhook-id
	delivered := map[string]bool{}
	for _, r := range receipts {
		if prev, ok := webhookIDs[r.event.ID]; ok && prev != r.id {
			t.Errorf("event %s came with webhook-id %s, then %s", r.event.ID, prev, r.id)
		}
		webhookIDs[r.event.ID] = r.id
		if r.status < 300 {
			delivered[r.event.ID] = true
		}
		if r.event.SpecVersion != "1.0" || r.event.Type != callbridge.EventCallCleared || r.event.Tenant != "acme" || r.event.Source != "/callbridge/tenants/acme" {
			t.Errorf("event %+v", r.event)
		}
	}
	for _, id := range ids {
		if !delivered[id] {
			t.Errorf("event %s never delivered", id)
		}
	}
	if len(receipts) < len(ids)+25 {
		t.Errorf("%d requests, want at least %d (the failures were retried)", len(receipts), len(ids)+25)
	}
	retried := 0
	for _, d := range ds {
		if d.Attempts > 1 {
			retried++
			if d.LastStatusCode != http.StatusNoContent || d.LastError != "" || d.DeliveredAt.IsZero() {
				t.Errorf("retried delivery %+v", d)
			}
		}
		if webhookIDs[d.EventID] != d.ID {
			t.Errorf("delivery %s was sent as webhook-id %s", d.ID, webhookIDs[d.EventID])
		}
	}
	if retried == 0 {
		t.Error("no delivery needed a retry")
	}
}

// TestDeadLetterAndRedeliver: an endpoint that always fails gets MaxAttempts tries, then the
// delivery is a dead letter; redelivered once the endpoint works, it arrives with the same
// webhook-id.
func TestDeadLetterAndRedeliver(t *testing.T) {
	s := openStore(t)
	secret := webhook.NewSecret()
	var healthy atomic.Bool
	rcv := newReceiver(t, secret, func(int) int {
		if healthy.Load() {
			return http.StatusOK
		}
		return http.StatusInternalServerError
	})
	addWebhook(t, s, "wh_crm", rcv.srv.URL, secret)
	enqueueN(t, s, 1)
	runDispatcher(t, webhook.Config{Store: s, MaxAttempts: 3})

	ds := waitDeliveries(t, s, "wh_crm", 1, callbridge.DeliveryDeadLetter)
	if d := ds[0]; d.Attempts != 3 || d.LastStatusCode != 500 || d.LastError != "HTTP 500 Internal Server Error" {
		t.Fatalf("dead letter %+v", d)
	}
	if receipts, _ := rcv.snapshot(); len(receipts) != 3 {
		t.Fatalf("%d attempts reached the receiver, want 3", len(receipts))
	}

	healthy.Store(true)
	if _, err := s.Redeliver(t.Context(), "acme", "wh_crm", ds[0].ID, time.Now()); err != nil {
		t.Fatal(err)
	}
	waitDeliveries(t, s, "wh_crm", 1, callbridge.DeliveryDelivered)
	receipts, _ := rcv.snapshot()
	if len(receipts) != 4 || receipts[3].id != ds[0].ID || receipts[3].status != 200 {
		t.Fatalf("receipts after redeliver: %+v", receipts)
	}
}

// TestSlowEndpointDoesNotHoldOthers: one endpoint hangs; another gets its events anyway,
// and the hanging one's attempts time out and are retried.
func TestSlowEndpointDoesNotHoldOthers(t *testing.T) {
	s := openStore(t)
	secret := webhook.NewSecret()
	hang := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-hang:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(slow.Close)
	t.Cleanup(func() { close(hang) })
	fast := newReceiver(t, secret, func(int) int { return http.StatusOK })
	addWebhook(t, s, "wh_slow", slow.URL, secret)
	addWebhook(t, s, "wh_fast", fast.srv.URL, secret)
	enqueueN(t, s, 30)
	runDispatcher(t, webhook.Config{Store: s, Timeout: 200 * time.Millisecond, Workers: 4, PerWebhook: 2, MaxAttempts: 1000})

	waitDeliveries(t, s, "wh_fast", 30, callbridge.DeliveryDelivered)
	deadline := time.Now().Add(waitTimeout)
	for {
		ds, _, _ := s.Deliveries(t.Context(), "acme", "wh_slow", callbridge.DeliveryFilter{Status: callbridge.DeliveryPending, Limit: 100})
		timedOut := 0
		for _, d := range ds {
			if d.Attempts > 0 && d.LastError == "no response within 200ms" {
				timedOut++
			}
		}
		if timedOut > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no timed-out attempt recorded for the hanging endpoint: %+v", ds)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
