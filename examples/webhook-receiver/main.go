// Command webhook-receiver is a small CRM-side endpoint for callbridge webhooks: it checks
// each delivery's Standard Webhooks signature, drops replays and duplicates, and prints the
// CloudEvent. It uses the standard library only, so that the few lines of verification can
// be carried over to any language (see docs/crm.md).
//
//	WEBHOOK_SECRET=whsec_… go run ./examples/webhook-receiver -listen 127.0.0.1:9090
//
// Then create a webhook with url http://127.0.0.1:9090/callbridge (POST /v1/webhooks) and
// put the secret of its reply in WEBHOOK_SECRET.
package main

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// tolerance is how far webhook-timestamp may be from our clock: older messages are replays.
const tolerance = 5 * time.Minute

// verify checks a delivery: body must be the raw bytes as received.
//
//  1. the signed content is "<webhook-id>.<webhook-timestamp>.<body>";
//  2. the key is the base64 after "whsec_" in the secret;
//  3. webhook-signature holds space-separated "v1,<base64 HMAC-SHA256>" entries: one must
//     equal ours (compared in constant time);
//  4. webhook-timestamp (Unix seconds) must be within tolerance of now.
func verify(secret string, h http.Header, body []byte, now time.Time) error {
	id, ts, sigs := h.Get("webhook-id"), h.Get("webhook-timestamp"), h.Get("webhook-signature")
	if id == "" || ts == "" || sigs == "" {
		return errors.New("missing webhook headers")
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return errors.New("bad webhook-timestamp")
	}
	if d := now.Sub(time.Unix(sec, 0)); d > tolerance || d < -tolerance {
		return errors.New("webhook-timestamp outside the tolerance (replay?)")
	}
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if err != nil {
		return errors.New("bad secret")
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(id + "." + ts + "."))
	mac.Write(body)
	want := base64.StdEncoding.EncodeToString(mac.Sum(nil))
	for _, entry := range strings.Fields(sigs) {
		if v, sig, ok := strings.Cut(entry, ","); ok && v == "v1" && hmac.Equal([]byte(sig), []byte(want)) {
			return nil
		}
	}
	return errors.New("no matching signature")
}

// event is the part of the CloudEvent this receiver looks at.
type event struct {
	ID      string          `json:"id"`
	Type    string          `json:"type"`
	Subject string          `json:"subject"`
	Time    time.Time       `json:"time"`
	Tenant  string          `json:"tenant"`
	Seq     uint64          `json:"seq"`
	Data    json.RawMessage `json:"data"`
}

// receiver is the HTTP handler. Deliveries are at least once: a webhook-id seen before is
// acknowledged again without being processed twice.
type receiver struct {
	secret  string
	handle  func(event)
	now     func() time.Time
	mu      sync.Mutex
	seen    map[string]time.Time
	seenTTL time.Duration
}

func newReceiver(secret string, handle func(event)) *receiver {
	return &receiver{secret: secret, handle: handle, now: time.Now, seen: map[string]time.Time{}, seenTTL: 48 * time.Hour}
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		http.Error(w, "POST only", http.StatusMethodNotAllowed)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		http.Error(w, "read error", http.StatusBadRequest)
		return
	}
	if err := verify(rc.secret, r.Header, body, rc.now()); err != nil {
		log.Printf("refused delivery %q: %v", r.Header.Get("webhook-id"), err)
		http.Error(w, "bad signature", http.StatusUnauthorized)
		return
	}
	id := r.Header.Get("webhook-id")
	rc.mu.Lock()
	_, dup := rc.seen[id]
	now := rc.now()
	rc.seen[id] = now
	for k, t := range rc.seen { // forget ids older than the retry horizon
		if now.Sub(t) > rc.seenTTL {
			delete(rc.seen, k)
		}
	}
	rc.mu.Unlock()
	if dup {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	var ev event
	if err := json.Unmarshal(body, &ev); err != nil {
		http.Error(w, "not a CloudEvent", http.StatusBadRequest)
		return
	}
	rc.handle(ev)
	w.WriteHeader(http.StatusNoContent) // any 2xx; answer fast and do slow work later
}

func main() {
	listen := flag.String("listen", "127.0.0.1:9090", "address to listen on")
	flag.Parse()
	secret := os.Getenv("WEBHOOK_SECRET")
	if !strings.HasPrefix(secret, "whsec_") {
		fmt.Fprintln(os.Stderr, "set WEBHOOK_SECRET to the webhook's secret (whsec_…)")
		os.Exit(2)
	}
	rc := newReceiver(secret, func(ev event) {
		log.Printf("%s %s seq=%d subject=%s data=%s", ev.Time.Format(time.RFC3339), ev.Type, ev.Seq, ev.Subject, ev.Data)
	})
	log.Printf("listening on http://%s/", *listen)
	srv := &http.Server{Addr: *listen, Handler: rc, ReadHeaderTimeout: 10 * time.Second}
	log.Fatal(srv.ListenAndServe())
}
