// Package webhook delivers callbridge events to tenants' HTTP endpoints (a CRM).
//
// # Wire format
//
// Every delivery is an HTTP POST whose body is one CloudEvents 1.0 event in structured
// JSON mode (Content-Type: application/cloudevents+json; see Event), signed by the Standard
// Webhooks scheme (https://www.standardwebhooks.com, specification v1):
//
//	webhook-id:        msg_01JD…          the delivery id: the same on every retry and redelivery
//	webhook-timestamp: 1772442000         Unix seconds of this attempt
//	webhook-signature: v1,K5oZfzN95Z9U…   base64 HMAC-SHA256 over "<id>.<timestamp>.<body>"
//
// The HMAC key is the base64-decoded part of the endpoint's secret "whsec_<base64>" (shown
// once, when the webhook is created). Receivers verify with Verify (or the same few lines in
// any language; see examples/webhook-receiver), reject timestamps outside a tolerance
// (replays), and deduplicate on webhook-id: delivery is at least once.
//
// # Delivery
//
// Package records writes each event into the store's outbox in the same transaction as the
// call records (one delivery per subscribed webhook). Dispatcher sends what is due, retries
// failures with exponential backoff, and after MaxAttempts moves a delivery to the dead
// letter state, from which a redeliver (REST) brings it back. Nothing here runs on the call
// path: a slow or dead endpoint only delays its own deliveries.
package webhook

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Standard Webhooks headers.
const (
	HeaderID        = "webhook-id"
	HeaderTimestamp = "webhook-timestamp"
	HeaderSignature = "webhook-signature"
)

// SecretPrefix starts every signing secret.
const SecretPrefix = "whsec_"

// DefaultTolerance is how far a webhook-timestamp may be from the receiver's clock.
const DefaultTolerance = 5 * time.Minute

// Verification errors. Verify wraps them; test with errors.Is.
var (
	ErrMissingHeaders  = errors.New("webhook: missing webhook-id, webhook-timestamp or webhook-signature")
	ErrBadTimestamp    = errors.New("webhook: webhook-timestamp is not a Unix time in seconds")
	ErrTimestampTooOld = errors.New("webhook: webhook-timestamp is too old")
	ErrTimestampTooNew = errors.New("webhook: webhook-timestamp is in the future")
	ErrNoMatchingSig   = errors.New("webhook: no matching signature")
	ErrBadSecret       = errors.New("webhook: the secret is not whsec_ followed by base64")
	ErrSecretTooShort  = errors.New("webhook: the secret's key is shorter than 24 bytes")
)

// secretEncoding is the encoding of the key in a secret (standard base64, padded).
var secretEncoding = base64.StdEncoding

// maxSignatureEntries bounds the entries of webhook-signature that Verify tries.
const maxSignatureEntries = 16

// NewSecret returns a new random signing secret: "whsec_" and 32 random bytes in base64.
func NewSecret() string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic("webhook: crypto/rand failed: " + err.Error()) // never happens on supported systems
	}
	return SecretPrefix + secretEncoding.EncodeToString(b)
}

// key decodes a secret into its HMAC key. The "whsec_" prefix is optional here, as in the
// reference libraries. Errors: ErrBadSecret.
func key(secret string) ([]byte, error) {
	k, err := secretEncoding.DecodeString(strings.TrimPrefix(secret, SecretPrefix))
	if err != nil || len(k) == 0 {
		return nil, ErrBadSecret
	}
	return k, nil
}

// CheckSecret reports whether secret can sign: whsec_ and base64 of at least 24 bytes.
func CheckSecret(secret string) error {
	k, err := key(secret)
	if err != nil {
		return err
	}
	if len(k) < 24 {
		return ErrSecretTooShort
	}
	return nil
}

// Sign returns the webhook-signature value for a message: "v1," and the base64 HMAC-SHA256,
// keyed with the secret, of "<msgID>.<unix seconds of ts>.<body>". Errors: ErrBadSecret.
func Sign(secret, msgID string, ts time.Time, body []byte) (string, error) {
	k, err := key(secret)
	if err != nil {
		return "", err
	}
	return "v1," + signature(k, msgID, strconv.FormatInt(ts.Unix(), 10), body), nil
}

func signature(k []byte, msgID, ts string, body []byte) string {
	mac := hmac.New(sha256.New, k)
	mac.Write([]byte(msgID))
	mac.Write([]byte{'.'})
	mac.Write([]byte(ts))
	mac.Write([]byte{'.'})
	mac.Write(body)
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// Headers returns the three Standard Webhooks headers for a message sent at ts.
func Headers(secret, msgID string, ts time.Time, body []byte) (http.Header, error) {
	sig, err := Sign(secret, msgID, ts, body)
	if err != nil {
		return nil, err
	}
	h := http.Header{}
	h.Set(HeaderID, msgID)
	h.Set(HeaderTimestamp, strconv.FormatInt(ts.Unix(), 10))
	h.Set(HeaderSignature, sig)
	return h, nil
}

// Verify checks a received webhook: the headers are present, webhook-timestamp is within
// tolerance of now (DefaultTolerance when tolerance is 0), and one of the space-separated
// "v1,<base64>" entries of webhook-signature is the HMAC of "<id>.<timestamp>.<body>"
// (compared in constant time). body must be the raw bytes received, before any parsing.
// It returns nil or an error wrapping one of the Err… values above.
func Verify(secret string, h http.Header, body []byte, now time.Time, tolerance time.Duration) error {
	if tolerance <= 0 {
		tolerance = DefaultTolerance
	}
	id, ts, sigs := h.Get(HeaderID), h.Get(HeaderTimestamp), h.Get(HeaderSignature)
	if id == "" || ts == "" || sigs == "" {
		return ErrMissingHeaders
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return ErrBadTimestamp
	}
	sent := time.Unix(sec, 0)
	switch {
	case now.Sub(sent) > tolerance:
		return fmt.Errorf("%w (%s ago)", ErrTimestampTooOld, now.Sub(sent).Round(time.Second))
	case sent.Sub(now) > tolerance:
		return ErrTimestampTooNew
	}
	k, err := key(secret)
	if err != nil {
		return err
	}
	want := []byte(signature(k, id, ts, body))
	for i, entry := range strings.Fields(sigs) {
		if i >= maxSignatureEntries {
			break
		}
		version, sig, ok := strings.Cut(entry, ",")
		if !ok || version != "v1" {
			continue
		}
		if hmac.Equal([]byte(sig), want) {
			return nil
		}
	}
	return ErrNoMatchingSig
}
