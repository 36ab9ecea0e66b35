package webhook_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/callbridge/callbridge/webhook"
)

// TestDestinationsCheck: which addresses a delivery may connect to.
func TestDestinationsCheck(t *testing.T) {
	for _, tc := range []struct {
		ip      string
		d       webhook.Destinations
		refused string // "" = allowed
	}{
		{"203.0.113.7", webhook.Destinations{}, ""},
		{"2001:db8::1", webhook.Destinations{}, ""},
		{"10.1.2.3", webhook.Destinations{}, ""},
		{"10.1.2.3", webhook.Destinations{DenyPrivate: true}, "private"},
		{"192.168.0.10", webhook.Destinations{DenyPrivate: true}, "private"},
		{"fd00::5", webhook.Destinations{DenyPrivate: true}, "private"},
		{"127.0.0.1", webhook.Destinations{}, "loopback"},
		{"::1", webhook.Destinations{}, "loopback"},
		{"::ffff:127.0.0.1", webhook.Destinations{}, "loopback"},
		{"127.0.0.1", webhook.Destinations{AllowLoopback: true}, ""},
		{"169.254.169.254", webhook.Destinations{AllowLoopback: true}, "link-local"},
		{"fe80::1", webhook.Destinations{}, "link-local"},
		{"0.0.0.0", webhook.Destinations{}, "not a unicast"},
		{"224.0.0.1", webhook.Destinations{}, "link-local"},
		{"239.1.1.1", webhook.Destinations{}, "not a unicast"},
		{"255.255.255.255", webhook.Destinations{}, "not a unicast"},
	} {
		err := tc.d.Check(netip.MustParseAddr(tc.ip))
		switch {
		case tc.refused == "" && err != nil:
			t.Errorf("%s with %+v refused: %v", tc.ip, tc.d, err)
		case tc.refused != "" && (err == nil || !strings.Contains(err.Error(), tc.refused)):
			t.Errorf("%s with %+v: err = %v, want one saying %q", tc.ip, tc.d, err, tc.refused)
		}
	}
}

// TestDestinationsClientDials checks the guard where it matters: on the address dialled.
// A receiver on 127.0.0.1 is unreachable by default and reachable with AllowLoopback; a
// redirect is not followed.
func TestDestinationsClientDials(t *testing.T) {
	hits := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits++
		if r.URL.Path == "/redirect" {
			http.Redirect(w, r, "/elsewhere", http.StatusFound)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	get := func(c *http.Client, path string) (*http.Response, error) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL+path, nil)
		return c.Do(req)
	}

	if resp, err := get(webhook.Destinations{}.Client(5*time.Second), "/"); err == nil || !strings.Contains(err.Error(), "loopback") {
		if resp != nil {
			resp.Body.Close()
		}
		t.Fatalf("default client reached a loopback receiver: err = %v", err)
	}
	if hits != 0 {
		t.Fatalf("the receiver was hit %d times by a refused client", hits)
	}
	c := webhook.Destinations{AllowLoopback: true}.Client(5 * time.Second)
	resp, err := get(c, "/")
	if err != nil || resp.StatusCode != http.StatusNoContent {
		t.Fatalf("allowed client: %v %v", resp, err)
	}
	resp.Body.Close()
	resp, err = get(c, "/redirect")
	if err != nil || resp.StatusCode != http.StatusFound {
		t.Fatalf("redirect: %v %v (want the 302 itself)", resp, err)
	}
	resp.Body.Close()
	if hits != 2 {
		t.Errorf("receiver hits = %d, want 2 (the redirect not followed)", hits)
	}
}
