package webhook_test

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/callbridge/callbridge"
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
		// Cloud metadata outside link-local: AWS over IPv6 (a unique local address) and
		// Alibaba Cloud (shared address space), refused whatever the options.
		{"fd00:ec2::254", webhook.Destinations{AllowLoopback: true}, "cloud metadata"},
		{"fd00:ec2:0:0:0:0:0:254", webhook.Destinations{}, "cloud metadata"},
		{"100.100.100.200", webhook.Destinations{AllowLoopback: true}, "cloud metadata"},
		{"::ffff:100.100.100.200", webhook.Destinations{}, "cloud metadata"},
		{"fd00:ec2::253", webhook.Destinations{}, ""},
		{"100.100.100.201", webhook.Destinations{}, ""},
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

// fakeResolver answers lookups from a table (the edge of the unit: DNS).
type fakeResolver map[string][]string

func (f fakeResolver) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	addrs, ok := f[host]
	if !ok {
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
	var out []netip.Addr
	for _, a := range addrs {
		out = append(out, netip.MustParseAddr(a))
	}
	return out, nil
}

// TestDestinationsCheckURL: the check at creation refuses an address literal or a name with
// any refused address, saying which, and lets through names that do not resolve (they are
// checked at every delivery).
func TestDestinationsCheckURL(t *testing.T) {
	dns := fakeResolver{
		"crm.example":      {"203.0.113.7"},
		"metadata.example": {"203.0.113.8", "169.254.169.254"},
		"aws6.example":     {"fd00:ec2::254"},
		"ali.example":      {"100.100.100.200"},
		"intranet.example": {"10.0.0.5"},
	}
	for _, tc := range []struct {
		url     string
		d       webhook.Destinations
		refused string // "" = allowed; else a part of the message
	}{
		{"https://crm.example/hook", webhook.Destinations{}, ""},
		{"https://unknown.example/hook", webhook.Destinations{}, ""},
		{"https://203.0.113.9:8443/hook", webhook.Destinations{}, ""},
		{"http://169.254.169.254/latest/meta-data/", webhook.Destinations{AllowLoopback: true}, "host 169.254.169.254 is a link-local address"},
		{"http://[fd00:ec2::254]/latest/meta-data/", webhook.Destinations{}, "host fd00:ec2::254 is a cloud metadata address"},
		{"http://100.100.100.200/latest/meta-data/", webhook.Destinations{}, "host 100.100.100.200 is a cloud metadata address"},
		{"https://metadata.example/", webhook.Destinations{}, "host metadata.example resolves to 169.254.169.254, a link-local address"},
		{"https://aws6.example/", webhook.Destinations{}, "resolves to fd00:ec2::254, a cloud metadata address"},
		{"https://ali.example/", webhook.Destinations{}, "resolves to 100.100.100.200, a cloud metadata address"},
		{"https://intranet.example/", webhook.Destinations{}, ""},
		{"https://intranet.example/", webhook.Destinations{DenyPrivate: true}, "resolves to 10.0.0.5, a private address"},
		{"http://127.0.0.1:9/", webhook.Destinations{}, "host 127.0.0.1 is a loopback address"},
		{"http://127.0.0.1:9/", webhook.Destinations{AllowLoopback: true}, ""},
		{"http://[::ffff:169.254.169.254]/", webhook.Destinations{AllowLoopback: true}, "link-local"},
	} {
		err := tc.d.CheckURL(t.Context(), dns, tc.url)
		switch {
		case tc.refused == "" && err != nil:
			t.Errorf("%s with %+v refused: %v", tc.url, tc.d, err)
		case tc.refused != "" && (err == nil || !strings.Contains(err.Error(), tc.refused) || callbridge.ErrorCode(err) != callbridge.EInvalid):
			t.Errorf("%s with %+v: err = %v, want invalid saying %q", tc.url, tc.d, err, tc.refused)
		}
	}
	// The real resolver: localhost is a loopback name.
	if err := (webhook.Destinations{}).CheckURL(t.Context(), nil, "http://localhost:8080/hook"); err == nil || !strings.Contains(err.Error(), "loopback") {
		t.Errorf("localhost with the system resolver: err = %v, want a loopback refusal", err)
	}
}
