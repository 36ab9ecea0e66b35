package http_test

import (
	"io"
	nethttp "net/http"
	"strings"
	"testing"

	cbhttp "github.com/callbridge/callbridge/http"
)

// staticReq is a request with headers; it returns the decoded response.
func staticReq(t *testing.T, method, url string, hdr map[string]string, body string) response {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := nethttp.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	res, err := nethttp.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{status: res.StatusCode, header: res.Header, body: b}
}

// TestStaticFiles: the SDK and the bar are ES modules for any origin, revalidated by ETag; the
// desktop's files are same-origin; unknown files are JSON 404s.
func TestStaticFiles(t *testing.T) {
	t.Parallel()
	h := newServer(t)
	for _, tc := range []struct {
		path, ctype, acao string
	}{
		{"/sdk/callbridge.js", "text/javascript; charset=utf-8", "*"},
		{"/sdk/callbridge-bar.js", "text/javascript; charset=utf-8", "*"},
		{"/sdk/callbridge.d.ts", "application/typescript; charset=utf-8", "*"},
		{"/sdk/callbridge-bar.d.ts", "application/typescript; charset=utf-8", "*"},
		{"/app/desktop.js", "text/javascript; charset=utf-8", ""},
		{"/app/desktop.css", "text/css; charset=utf-8", ""},
	} {
		res := staticReq(t, "GET", h.url+tc.path, map[string]string{"Origin": "https://crm.example.com"}, "")
		if res.status != 200 || len(res.body) == 0 {
			t.Errorf("GET %s: %d (%d bytes)", tc.path, res.status, len(res.body))
			continue
		}
		if ct := res.header.Get("Content-Type"); ct != tc.ctype {
			t.Errorf("GET %s: Content-Type %q, want %q", tc.path, ct, tc.ctype)
		}
		if a := res.header.Get("Access-Control-Allow-Origin"); a != tc.acao {
			t.Errorf("GET %s: Access-Control-Allow-Origin %q, want %q", tc.path, a, tc.acao)
		}
		etag := res.header.Get("ETag")
		if etag == "" || res.header.Get("Cache-Control") != "no-cache" || res.header.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("GET %s: caching headers %v", tc.path, res.header)
		}
		if again := staticReq(t, "GET", h.url+tc.path, map[string]string{"If-None-Match": etag}, ""); again.status != 304 || len(again.body) != 0 {
			t.Errorf("GET %s with its ETag: %d (%d bytes)", tc.path, again.status, len(again.body))
		}
	}
	staticReq(t, "GET", h.url+"/sdk/nope.js", nil, "").wantError(t, 404, "not_found", "/sdk/nope.js")
	staticReq(t, "GET", h.url+"/app/index.html", nil, "").wantError(t, 404, "not_found", "")
	if res := staticReq(t, "POST", h.url+"/sdk/callbridge.js", nil, ""); res.status != 405 {
		t.Errorf("POST /sdk/callbridge.js: %d", res.status)
	}

	page := staticReq(t, "GET", h.url+"/", nil, "")
	csp := page.header.Get("Content-Security-Policy")
	for _, want := range []string{"default-src 'none'", "script-src 'self'", "style-src 'self'", "connect-src 'self'", "frame-ancestors 'none'"} {
		if !strings.Contains(csp, want) {
			t.Errorf("desktop CSP %q lacks %q", csp, want)
		}
	}
	for _, want := range []string{"<callbridge-bar", `src="/app/desktop.js"`} {
		if !strings.Contains(string(page.body), want) {
			t.Errorf("desktop lacks %q", want)
		}
	}
}

// TestCORS: pages on an allowed origin may call /v1/… (preflight answered, origin echoed);
// other origins get no CORS headers and a 403 preflight; other paths are untouched.
func TestCORS(t *testing.T) {
	t.Parallel()
	const crm = "https://crm.example.com"
	h := newServer(t, func(c *cbhttp.Config) { c.AllowedOrigins = []string{crm + "/"} })
	preflight := func(origin string) response {
		return staticReq(t, "OPTIONS", h.url+"/v1/login", map[string]string{
			"Origin": origin, "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type",
		}, "")
	}

	res := preflight("https://CRM.example.com")
	if res.status != 204 || res.header.Get("Access-Control-Allow-Origin") != "https://CRM.example.com" ||
		!strings.Contains(res.header.Get("Access-Control-Allow-Methods"), "POST") ||
		!strings.Contains(res.header.Get("Access-Control-Allow-Headers"), "Content-Type") ||
		!strings.Contains(res.header.Get("Access-Control-Allow-Headers"), "Authorization") ||
		res.header.Get("Access-Control-Allow-Credentials") != "" {
		t.Errorf("allowed preflight: %d %v", res.status, res.header)
	}
	preflight("https://evil.example.com").wantError(t, 403, "forbidden", "evil.example.com")

	login := staticReq(t, "POST", h.url+"/v1/login", map[string]string{"Origin": crm, "Content-Type": "application/json"}, `{"username":"alice","password":"alice-pw"}`)
	if login.status != 200 || login.header.Get("Access-Control-Allow-Origin") != crm || !strings.Contains(login.header.Get("Vary"), "Origin") {
		t.Errorf("allowed login: %d %v", login.status, login.header)
	}
	other := staticReq(t, "POST", h.url+"/v1/login", map[string]string{"Origin": "https://evil.example.com", "Content-Type": "application/json"}, `{"username":"alice","password":"alice-pw"}`)
	if other.header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("login from another origin got CORS headers: %v", other.header)
	}
	// The server's own origin needs no list entry.
	if res := staticReq(t, "GET", h.url+"/v1/me", map[string]string{"Origin": h.url, "Authorization": "Bearer " + h.token(t, "alice")}, ""); res.status != 200 {
		t.Errorf("same-origin /v1/me: %d %s", res.status, res.body)
	}
	if res := staticReq(t, "GET", h.url+"/healthz", map[string]string{"Origin": crm}, ""); res.header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("/healthz got CORS headers: %v", res.header)
	}

	wild := newServer(t, func(c *cbhttp.Config) { c.AllowedOrigins = []string{"*"} })
	res = staticReq(t, "OPTIONS", wild.url+"/v1/me", map[string]string{"Origin": "https://anyone.example", "Access-Control-Request-Method": "GET"}, "")
	if res.status != 204 || res.header.Get("Access-Control-Allow-Origin") != "https://anyone.example" {
		t.Errorf(`preflight with "*": %d %v`, res.status, res.header)
	}
}
