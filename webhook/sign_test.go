package webhook_test

import (
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/callbridge/callbridge/webhook"
)

// The test vector of the Standard Webhooks reference libraries.
const (
	vecSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	vecID     = "msg_p5jXN8AQM9LWM0D4loKWxJek"
	vecTS     = 1614265330
	vecBody   = `{"test": 2432232314}`
	vecSig    = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
)

func TestSignMatchesStandardWebhooksVector(t *testing.T) {
	sig, err := webhook.Sign(vecSecret, vecID, time.Unix(vecTS, 0), []byte(vecBody))
	if err != nil || sig != vecSig {
		t.Fatalf("Sign = %q, %v; want %q", sig, err, vecSig)
	}
}

func vecHeaders() http.Header {
	h := http.Header{}
	h.Set("webhook-id", vecID)
	h.Set("webhook-timestamp", "1614265330")
	h.Set("webhook-signature", vecSig)
	return h
}

func TestVerify(t *testing.T) {
	now := time.Unix(vecTS, 0).Add(time.Minute)
	if err := webhook.Verify(vecSecret, vecHeaders(), []byte(vecBody), now, 0); err != nil {
		t.Fatalf("good signature refused: %v", err)
	}
	// Several signatures (key rotation): one match is enough.
	h := vecHeaders()
	h.Set("webhook-signature", "v1,bm9wZQ== v2,whatever "+vecSig)
	if err := webhook.Verify(vecSecret, h, []byte(vecBody), now, 0); err != nil {
		t.Fatalf("matching signature among several refused: %v", err)
	}
	if err := webhook.Verify(strings.TrimPrefix(vecSecret, "whsec_"), vecHeaders(), []byte(vecBody), now, 0); err != nil {
		t.Fatalf("secret without prefix: %v", err)
	}

	other := webhook.NewSecret()
	tests := []struct {
		name   string
		secret string
		h      func(http.Header)
		body   string
		now    time.Time
		want   error
	}{
		{"tampered body", vecSecret, nil, `{"test": 2432232315}`, now, webhook.ErrNoMatchingSig},
		{"body with extra space", vecSecret, nil, vecBody + " ", now, webhook.ErrNoMatchingSig},
		{"wrong secret", other, nil, vecBody, now, webhook.ErrNoMatchingSig},
		{"other message id", vecSecret, func(h http.Header) { h.Set("webhook-id", "msg_other") }, vecBody, now, webhook.ErrNoMatchingSig},
		{"timestamp changed", vecSecret, func(h http.Header) { h.Set("webhook-timestamp", "1614265331") }, vecBody, now, webhook.ErrNoMatchingSig},
		{"signature of another version", vecSecret, func(h http.Header) { h.Set("webhook-signature", strings.Replace(vecSig, "v1,", "v1a,", 1)) }, vecBody, now, webhook.ErrNoMatchingSig},
		{"replayed later", vecSecret, nil, vecBody, now.Add(time.Hour), webhook.ErrTimestampTooOld},
		{"from the future", vecSecret, nil, vecBody, time.Unix(vecTS, 0).Add(-time.Hour), webhook.ErrTimestampTooNew},
		{"no signature", vecSecret, func(h http.Header) { h.Del("webhook-signature") }, vecBody, now, webhook.ErrMissingHeaders},
		{"no id", vecSecret, func(h http.Header) { h.Del("webhook-id") }, vecBody, now, webhook.ErrMissingHeaders},
		{"timestamp not a number", vecSecret, func(h http.Header) { h.Set("webhook-timestamp", "yesterday") }, vecBody, now, webhook.ErrBadTimestamp},
		{"bad secret", "whsec_%%%", nil, vecBody, now, webhook.ErrBadSecret},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := vecHeaders()
			if tt.h != nil {
				tt.h(h)
			}
			err := webhook.Verify(tt.secret, h, []byte(tt.body), tt.now, 0)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Verify = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestNewSecret(t *testing.T) {
	a, b := webhook.NewSecret(), webhook.NewSecret()
	if a == b || !strings.HasPrefix(a, "whsec_") {
		t.Fatalf("secrets %q %q", a, b)
	}
	if err := webhook.CheckSecret(a); err != nil {
		t.Fatal(err)
	}
	if err := webhook.CheckSecret("whsec_c2hvcnQ="); !errors.Is(err, webhook.ErrSecretTooShort) {
		t.Fatalf("short secret: %v", err)
	}
	h, err := webhook.Headers(a, "msg_1", time.Unix(1700000000, 0), []byte("{}"))
	if err != nil {
		t.Fatal(err)
	}
	if err := webhook.Verify(a, h, []byte("{}"), time.Unix(1700000000, 0), 0); err != nil {
		t.Fatal(err)
	}
	if h.Get("webhook-timestamp") != "1700000000" || h.Get("webhook-id") != "msg_1" {
		t.Fatalf("headers %v", h)
	}
}

func TestBackoff(t *testing.T) {
	base, max := 10*time.Second, 6*time.Hour
	for n, want := range map[int]time.Duration{
		1: 10 * time.Second, 2: 20 * time.Second, 3: 40 * time.Second, 8: 1280 * time.Second,
		12: 20480 * time.Second, 13: 6 * time.Hour, 100: 6 * time.Hour,
	} {
		if got := webhook.Backoff(n, base, max); got != want {
			t.Errorf("Backoff(%d) = %s, want %s", n, got, want)
		}
	}
}

func FuzzVerify(f *testing.F) {
	f.Add(vecID, "1614265330", vecSig, vecBody)
	f.Add("", "", "", "")
	f.Add("x", "-1", "v1,", "{}")
	f.Fuzz(func(t *testing.T, id, ts, sig, body string) {
		h := http.Header{}
		h.Set("webhook-id", id)
		h.Set("webhook-timestamp", ts)
		h.Set("webhook-signature", sig)
		err := webhook.Verify(vecSecret, h, []byte(body), time.Unix(vecTS, 0), 0)
		if err == nil && (id != vecID || ts != "1614265330" || body != vecBody) {
			t.Fatalf("accepted a forged message: id %q ts %q sig %q body %q", id, ts, sig, body)
		}
	})
}
