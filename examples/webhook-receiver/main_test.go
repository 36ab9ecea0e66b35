package main

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/callbridge/callbridge/webhook"
)

// TestReceiverVerifiesWhatCallbridgeSigns: the example's few lines accept exactly what
// package webhook signs, refuse a tampered body or a replay, and process a duplicate once.
func TestReceiverVerifiesWhatCallbridgeSigns(t *testing.T) {
	secret := webhook.NewSecret()
	now := time.Now()
	var got []event
	rc := newReceiver(secret, func(ev event) { got = append(got, ev) })
	rc.now = func() time.Time { return now }
	body := []byte(`{"specversion":"1.0","id":"evt_1","source":"/callbridge/tenants/acme","type":"call.cleared","subject":"CALL1","time":"2026-03-02T09:00:00Z","tenant":"acme","seq":42,"data":{"call_id":"CALL1"}}`)
	send := func(id string, ts time.Time, b []byte) int {
		h, err := webhook.Headers(secret, id, ts, body)
		if err != nil {
			t.Fatal(err)
		}
		req := httptest.NewRequest(http.MethodPost, "/callbridge", bytes.NewReader(b))
		req.Header = h
		w := httptest.NewRecorder()
		rc.ServeHTTP(w, req)
		return w.Code
	}
	if code := send("msg_1", now, body); code != http.StatusNoContent || len(got) != 1 || got[0].Type != "call.cleared" || got[0].Seq != 42 {
		t.Fatalf("good delivery: %d %+v", code, got)
	}
	if code := send("msg_1", now, body); code != http.StatusNoContent || len(got) != 1 {
		t.Fatalf("duplicate: %d, processed %d times", code, len(got))
	}
	if code := send("msg_2", now, bytes.Replace(body, []byte("42"), []byte("43"), 1)); code != http.StatusUnauthorized {
		t.Fatalf("tampered body: %d", code)
	}
	if code := send("msg_3", now.Add(-time.Hour), body); code != http.StatusUnauthorized {
		t.Fatalf("replay: %d", code)
	}
	if len(got) != 1 {
		t.Fatalf("processed %d events, want 1", len(got))
	}
}
