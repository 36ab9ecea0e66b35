package http

import (
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"fmt"
	nethttp "net/http"
	"strings"
)

// pageFS holds the agent page: page/index.html with the markers {{STYLE}} and {{SCRIPT}},
// which are replaced by page/agent.css and page/agent.js so that the page is one
// self-contained document. (A later issue replaces it with the TypeScript SDK build.)
//
//go:embed page/index.html page/agent.css page/agent.js
var pageFS embed.FS

// page is the assembled agent page and its Content-Security-Policy, which allows exactly the
// inline style and script by their SHA-256 hashes, and WebSocket/fetch to the same origin.
type page struct {
	html []byte
	csp  string
}

func loadPage() (page, error) {
	read := func(name string) (string, error) {
		b, err := pageFS.ReadFile("page/" + name)
		if err != nil {
			return "", fmt.Errorf("read %s: %w", name, err)
		}
		return string(b), nil
	}
	doc, err := read("index.html")
	if err != nil {
		return page{}, err
	}
	css, err := read("agent.css")
	if err != nil {
		return page{}, err
	}
	js, err := read("agent.js")
	if err != nil {
		return page{}, err
	}
	if !strings.Contains(doc, "{{STYLE}}") || !strings.Contains(doc, "{{SCRIPT}}") {
		return page{}, fmt.Errorf("index.html lacks the {{STYLE}} or {{SCRIPT}} marker")
	}
	doc = strings.Replace(doc, "{{STYLE}}", css, 1)
	doc = strings.Replace(doc, "{{SCRIPT}}", js, 1)
	csp := strings.Join([]string{
		"default-src 'none'",
		"script-src '" + cspHash(js) + "'",
		"style-src '" + cspHash(css) + "'",
		"connect-src 'self'",
		"img-src 'self' data:",
		"base-uri 'none'",
		"form-action 'none'",
		"frame-ancestors 'none'",
	}, "; ")
	return page{html: []byte(doc), csp: csp}, nil
}

// cspHash is the CSP source expression for inline content s: sha256-<base64 digest>.
func cspHash(s string) string {
	sum := sha256.Sum256([]byte(s))
	return "sha256-" + base64.StdEncoding.EncodeToString(sum[:])
}

// handlePage serves GET / : the agent page, text/html; charset=utf-8.
func (s *Server) handlePage(w nethttp.ResponseWriter, r *nethttp.Request) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", s.page.csp)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-cache")
	w.WriteHeader(nethttp.StatusOK)
	if r.Method != nethttp.MethodHead {
		_, _ = w.Write(s.page.html)
	}
}
