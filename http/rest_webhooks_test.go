package http_test

import (
	"context"
	"net"
	nethttp "net/http"
	"net/netip"
	"path/filepath"
	"testing"

	"github.com/callbridge/callbridge"
	cbhttp "github.com/callbridge/callbridge/http"
	"github.com/callbridge/callbridge/sqlite"
	"github.com/callbridge/callbridge/webhook"
)

// tableResolver answers DNS lookups from a table: the edge of the unit.
type tableResolver map[string]string

func (r tableResolver) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	a, ok := r[host]
	if !ok {
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
	return []netip.Addr{netip.MustParseAddr(a)}, nil
}

// newWebhookServer is a gateway with a real SQLite store behind the CRM API, its CRM
// configuration changed by change.
func newWebhookServer(t *testing.T, change func(*cbhttp.CRMConfig)) (*harness, *sqlite.DB) {
	t.Helper()
	db, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "callbridge.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	h := newServer(t, func(c *cbhttp.Config) {
		c.CRM = cbhttp.CRMConfig{Records: db, Webhooks: db, APIKeys: db}
		change(&c.CRM)
	})
	return h, db
}

// TestCreateWebhookRefusesForbiddenTargets: POST /v1/webhooks answers 400 for a URL whose
// host is, or resolves to, an address that deliveries may not reach (cloud metadata,
// link-local, loopback when not allowed), says which, and creates nothing. A public host is
// still accepted.
func TestCreateWebhookRefusesForbiddenTargets(t *testing.T) {
	t.Parallel()
	h, db := newWebhookServer(t, func(c *cbhttp.CRMConfig) {
		c.Resolver = tableResolver{"metadata.example": "169.254.169.254", "crm.example": "203.0.113.7"}
	})
	sam := h.token(t, "sam")
	for _, tc := range []struct{ url, msg string }{
		{"http://169.254.169.254/latest/meta-data/", "host 169.254.169.254 is a link-local address"},
		{"http://[fd00:ec2::254]/latest/meta-data/", "host fd00:ec2::254 is a cloud metadata address"},
		{"http://100.100.100.200/latest/meta-data/", "host 100.100.100.200 is a cloud metadata address"},
		{"https://metadata.example/hook", "host metadata.example resolves to 169.254.169.254, a link-local address"},
		{"http://127.0.0.1:9/hook", "host 127.0.0.1 is a loopback address"},
	} {
		h.do(t, "POST", "/v1/webhooks", sam, jsonBody(t, map[string]any{"url": tc.url, "events": []string{"*"}})).
			wantError(t, nethttp.StatusBadRequest, callbridge.EInvalid, tc.msg)
	}
	hooks, err := db.Webhooks(t.Context(), "acme")
	if err != nil || len(hooks) != 0 {
		t.Fatalf("webhooks after refusals: %+v %v", hooks, err)
	}
	if res := h.do(t, "POST", "/v1/webhooks", sam, jsonBody(t, map[string]any{"url": "https://crm.example/hook", "events": []string{"*"}})); res.status != nethttp.StatusCreated {
		t.Fatalf("public host: %d %s", res.status, res.body)
	}
}

// TestCreateWebhookLoopbackWhenAllowed: the creation check follows the delivery guard's
// options (--webhook-allow-loopback).
func TestCreateWebhookLoopbackWhenAllowed(t *testing.T) {
	t.Parallel()
	h, _ := newWebhookServer(t, func(c *cbhttp.CRMConfig) { c.WebhookDestinations = webhook.Destinations{AllowLoopback: true} })
	sam := h.token(t, "sam")
	if res := h.do(t, "POST", "/v1/webhooks", sam, jsonBody(t, map[string]any{"url": "http://localhost:9/hook", "events": []string{"*"}})); res.status != nethttp.StatusCreated {
		t.Fatalf("loopback with AllowLoopback: %d %s", res.status, res.body)
	}
	h.do(t, "POST", "/v1/webhooks", sam, jsonBody(t, map[string]any{"url": "http://169.254.169.254/", "events": []string{"*"}})).
		wantError(t, nethttp.StatusBadRequest, callbridge.EInvalid, "link-local")
}
