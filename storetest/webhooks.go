package storetest

import (
	"fmt"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/callbridge/callbridge"
)

func webhook(id string, tenant callbridge.TenantID, events ...string) callbridge.Webhook {
	return callbridge.Webhook{
		ID: id, Tenant: tenant, URL: "https://crm.example.com/hooks/" + id, Events: events,
		Description: "CRM " + id, Secret: "whsec_c2VjcmV0LW9mLQ==" + id, CreatedAt: at(len(id)),
	}
}

func mustCreateWebhook(t *testing.T, s Store, w callbridge.Webhook) {
	t.Helper()
	if err := s.CreateWebhook(t.Context(), w); err != nil {
		t.Fatal(err)
	}
}

// enqueue puts one event in the outbox and returns how many deliveries it made.
func enqueue(t *testing.T, s Store, id string, tenant callbridge.TenantID, typ callbridge.EventType, when time.Time) int {
	t.Helper()
	var n int
	update(t, s, func(tx callbridge.HistoryTx) error {
		var err error
		n, err = tx.Enqueue(t.Context(), callbridge.OutboxEvent{
			ID: id, Tenant: tenant, Type: typ, Time: when,
			Body: []byte(`{"specversion":"1.0","id":"` + id + `","type":"` + string(typ) + `","data":{"x":"ü"}}`),
		})
		return err
	})
	return n
}

func testWebhooks(t *testing.T, open Open) {
	s := open(t)
	a := webhook("wh_a", "acme", "call.*", "agent.state_changed")
	b := webhook("wh_bb", "acme", "*")
	g := webhook("wh_g", "globex", "call.cleared")
	for _, w := range []callbridge.Webhook{b, a, g} {
		mustCreateWebhook(t, s, w)
	}
	wantCode(t, s.CreateWebhook(t.Context(), a), callbridge.EConflict)

	got, err := s.Webhooks(t.Context(), "acme")
	if err != nil {
		t.Fatal(err)
	}
	if want := []callbridge.Webhook{a, b}; !reflect.DeepEqual(got, want) { // oldest first
		t.Fatalf("Webhooks\n got %+v\nwant %+v", got, want)
	}
	if one, err := s.Webhook(t.Context(), "acme", "wh_a"); err != nil || !reflect.DeepEqual(one, a) {
		t.Fatalf("Webhook = %+v, %v", one, err)
	}
	_, err = s.Webhook(t.Context(), "globex", "wh_a")
	wantCode(t, err, callbridge.ENotFound)
	wantCode(t, s.DeleteWebhook(t.Context(), "globex", "wh_a"), callbridge.ENotFound)
	if err := s.DeleteWebhook(t.Context(), "acme", "wh_a"); err != nil {
		t.Fatal(err)
	}
	wantCode(t, s.DeleteWebhook(t.Context(), "acme", "wh_a"), callbridge.ENotFound)
	if got, _ := s.Webhooks(t.Context(), "acme"); len(got) != 1 || got[0].ID != "wh_bb" {
		t.Fatalf("after delete: %+v", got)
	}
	if got, _ := s.Webhooks(t.Context(), "nobody"); got == nil || len(got) != 0 {
		t.Fatalf("webhooks of an unknown tenant: %#v, want empty", got)
	}
}

func testOutboxEnqueue(t *testing.T, open Open) {
	s := open(t)
	mustCreateWebhook(t, s, webhook("wh_calls", "acme", "call.*"))
	mustCreateWebhook(t, s, webhook("wh_rec", "acme", "call_record.completed", "agent.*"))
	mustCreateWebhook(t, s, webhook("wh_g", "globex", "*"))

	for _, tc := range []struct {
		typ  callbridge.EventType
		want int
	}{
		{callbridge.EventCallDelivered, 1},
		{callbridge.EventCallRecordCompleted, 1},
		{callbridge.EventCallRecordUpdated, 0},
		{callbridge.EventAgentStateChanged, 1},
	} {
		if n := enqueue(t, s, "ev-"+string(tc.typ), "acme", tc.typ, at(0)); n != tc.want {
			t.Errorf("%s: %d deliveries, want %d", tc.typ, n, tc.want)
		}
	}
	due, err := s.DueWebhooks(t.Context(), at(0))
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(due)
	if !reflect.DeepEqual(due, []string{"wh_calls", "wh_rec"}) {
		t.Fatalf("due webhooks %v", due)
	}
	if due, _ := s.DueWebhooks(t.Context(), at(-1)); len(due) != 0 {
		t.Fatalf("due before the events were enqueued: %v", due)
	}
}

func testOutboxClaimAndFinish(t *testing.T, open Open) {
	s := open(t)
	w := webhook("wh_1", "acme", "*")
	mustCreateWebhook(t, s, w)
	for i := range 5 {
		enqueue(t, s, fmt.Sprintf("ev-%d", i), "acme", callbridge.EventCallCleared, at(i))
	}
	// Due at 10 s: all 5; claim 3 (oldest first), leased until 70 s.
	got, err := s.ClaimDeliveries(t.Context(), "wh_1", at(10), at(70), 3)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 {
		t.Fatalf("claimed %d, want 3", len(got))
	}
	for i, p := range got {
		if p.URL != w.URL || p.Secret != w.Secret || p.EventID != fmt.Sprintf("ev-%d", i) ||
			string(p.Body) != `{"specversion":"1.0","id":"ev-`+fmt.Sprint(i)+`","type":"call.cleared","data":{"x":"ü"}}` ||
			p.Status != callbridge.DeliveryPending || p.Attempts != 0 || p.WebhookID != "wh_1" || len(p.ID) < 10 {
			t.Errorf("claimed[%d] = %+v body %s", i, p, p.Body)
		}
	}
	// Leased ones are not due or claimable again before the lease ends.
	more, err := s.ClaimDeliveries(t.Context(), "wh_1", at(20), at(80), 10)
	if err != nil || len(more) != 2 || more[0].EventID != "ev-3" {
		t.Fatalf("second claim: %+v, %v; want the 2 unleased", more, err)
	}
	if due, _ := s.DueWebhooks(t.Context(), at(60)); len(due) != 0 {
		t.Fatalf("leased deliveries due: %v", due)
	}

	// Outcomes: delivered, retry at 100 s, dead letter.
	fin := func(p callbridge.PendingDelivery, a callbridge.DeliveryAttempt) {
		t.Helper()
		if err := s.FinishAttempt(t.Context(), p.ID, a); err != nil {
			t.Fatal(err)
		}
	}
	fin(got[0], callbridge.DeliveryAttempt{At: at(11), StatusCode: 204, Status: callbridge.DeliveryDelivered})
	fin(got[1], callbridge.DeliveryAttempt{At: at(11), StatusCode: 503, Error: "503 Service Unavailable", Status: callbridge.DeliveryPending, NextAttemptAt: at(100)})
	fin(got[2], callbridge.DeliveryAttempt{At: at(12), Error: "dial tcp: connection refused", Status: callbridge.DeliveryDeadLetter})

	// The lease of the two others ends at 80 s; the retry is due at 100 s.
	if due, _ := s.DueWebhooks(t.Context(), at(99)); !reflect.DeepEqual(due, []string{"wh_1"}) {
		t.Fatalf("due at 99 s: %v", due)
	}
	again, err := s.ClaimDeliveries(t.Context(), "wh_1", at(100), at(160), 10)
	if err != nil || len(again) != 3 {
		t.Fatalf("claim after lease and backoff: %d, %v; want 3", len(again), err)
	}
	var retried callbridge.PendingDelivery
	for _, p := range again {
		if p.ID == got[1].ID {
			retried = p
		}
	}
	if retried.Attempts != 1 || retried.LastStatusCode != 503 || retried.LastError != "503 Service Unavailable" || !retried.LastAttemptAt.Equal(at(11)) {
		t.Fatalf("retried delivery = %+v", retried)
	}
	wantCode(t, s.FinishAttempt(t.Context(), got[0].ID, callbridge.DeliveryAttempt{At: at(1), Status: "bogus"}), callbridge.EInvalid)
	// Finishing a delivery that no longer exists is not an error.
	if err := s.FinishAttempt(t.Context(), "msg_gone", callbridge.DeliveryAttempt{At: at(1), Status: callbridge.DeliveryDelivered}); err != nil {
		t.Fatal(err)
	}
}

func testDeliveriesListAndRedeliver(t *testing.T, open Open) {
	s := open(t)
	mustCreateWebhook(t, s, webhook("wh_1", "acme", "*"))
	mustCreateWebhook(t, s, webhook("wh_2", "acme", "*"))
	for i := range 4 {
		enqueue(t, s, fmt.Sprintf("ev-%d", i), "acme", callbridge.EventCallCleared, at(i))
	}
	claimed, err := s.ClaimDeliveries(t.Context(), "wh_1", at(10), at(70), 10)
	if err != nil || len(claimed) != 4 {
		t.Fatal(len(claimed), err)
	}
	dead := claimed[1]
	for i, p := range claimed {
		st := callbridge.DeliveryDelivered
		if i == 1 {
			st = callbridge.DeliveryDeadLetter
		}
		if err := s.FinishAttempt(t.Context(), p.ID, callbridge.DeliveryAttempt{At: at(20), StatusCode: 500, Status: st}); err != nil {
			t.Fatal(err)
		}
	}

	all, next, err := s.Deliveries(t.Context(), "acme", "wh_1", callbridge.DeliveryFilter{Limit: 3})
	if err != nil || len(all) != 3 || next == "" || all[0].EventID != "ev-3" {
		t.Fatalf("first page: %+v next %q err %v", all, next, err)
	}
	rest, next2, err := s.Deliveries(t.Context(), "acme", "wh_1", callbridge.DeliveryFilter{Limit: 3, Cursor: next})
	if err != nil || len(rest) != 1 || next2 != "" || rest[0].EventID != "ev-0" {
		t.Fatalf("second page: %+v next %q err %v", rest, next2, err)
	}
	deads, _, err := s.Deliveries(t.Context(), "acme", "wh_1", callbridge.DeliveryFilter{Status: callbridge.DeliveryDeadLetter})
	if err != nil || len(deads) != 1 || deads[0].ID != dead.ID || deads[0].Attempts != 1 || !deads[0].NextAttemptAt.IsZero() {
		t.Fatalf("dead letters: %+v, %v", deads, err)
	}
	if pend, _, _ := s.Deliveries(t.Context(), "acme", "wh_2", callbridge.DeliveryFilter{Status: callbridge.DeliveryPending}); len(pend) != 4 {
		t.Fatalf("wh_2 pending: %d, want 4", len(pend))
	}
	_, _, err = s.Deliveries(t.Context(), "globex", "wh_1", callbridge.DeliveryFilter{})
	wantCode(t, err, callbridge.ENotFound)
	_, _, err = s.Deliveries(t.Context(), "acme", "wh_1", callbridge.DeliveryFilter{Status: "lost"})
	wantCode(t, err, callbridge.EInvalid)

	// Redeliver: pending again, due now, attempts reset, same id.
	d, err := s.Redeliver(t.Context(), "acme", "wh_1", dead.ID, at(30))
	if err != nil {
		t.Fatal(err)
	}
	if d.ID != dead.ID || d.Status != callbridge.DeliveryPending || d.Attempts != 0 || !d.NextAttemptAt.Equal(at(30)) || d.LastStatusCode != 500 {
		t.Fatalf("redelivered = %+v", d)
	}
	again, err := s.ClaimDeliveries(t.Context(), "wh_1", at(30), at(90), 10)
	if err != nil || len(again) != 1 || again[0].ID != dead.ID {
		t.Fatalf("claim after redeliver: %+v, %v", again, err)
	}
	_, err = s.Redeliver(t.Context(), "acme", "wh_2", dead.ID, at(30))
	wantCode(t, err, callbridge.ENotFound)
	_, err = s.Redeliver(t.Context(), "globex", "wh_1", dead.ID, at(30))
	wantCode(t, err, callbridge.ENotFound)

	// Deleting a webhook takes its deliveries.
	if err := s.DeleteWebhook(t.Context(), "acme", "wh_2"); err != nil {
		t.Fatal(err)
	}
	if due, _ := s.DueWebhooks(t.Context(), at(1000)); slices.Contains(due, "wh_2") {
		t.Fatalf("deleted webhook still due: %v", due)
	}
}

func testPruneDeliveries(t *testing.T, open Open) {
	s := open(t)
	mustCreateWebhook(t, s, webhook("wh_1", "acme", "*"))
	for i := range 3 {
		enqueue(t, s, fmt.Sprintf("ev-%d", i), "acme", callbridge.EventCallCleared, at(i*100))
	}
	claimed, err := s.ClaimDeliveries(t.Context(), "wh_1", at(1000), at(1060), 10)
	if err != nil || len(claimed) != 3 {
		t.Fatal(len(claimed), err)
	}
	// ev-0 delivered, ev-1 still pending, ev-2 delivered but newer than the cut.
	for _, i := range []int{0, 2} {
		if err := s.FinishAttempt(t.Context(), claimed[i].ID, callbridge.DeliveryAttempt{At: at(1001), StatusCode: 200, Status: callbridge.DeliveryDelivered}); err != nil {
			t.Fatal(err)
		}
	}
	n, err := s.PruneDeliveries(t.Context(), at(150))
	if err != nil || n != 1 {
		t.Fatalf("pruned %d, %v; want 1", n, err)
	}
	left, _, _ := s.Deliveries(t.Context(), "acme", "wh_1", callbridge.DeliveryFilter{})
	if len(left) != 2 || left[0].EventID != "ev-2" || left[1].EventID != "ev-1" {
		t.Fatalf("left %+v", left)
	}
	// The pending one still has its body.
	if err := s.FinishAttempt(t.Context(), claimed[1].ID, callbridge.DeliveryAttempt{At: at(1001), Status: callbridge.DeliveryPending, NextAttemptAt: at(1002)}); err != nil {
		t.Fatal(err)
	}
	again, err := s.ClaimDeliveries(t.Context(), "wh_1", at(1100), at(1160), 10)
	if err != nil || len(again) != 1 || len(again[0].Body) == 0 {
		t.Fatalf("claim after prune: %+v, %v", again, err)
	}
}
