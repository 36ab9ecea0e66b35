package http

import (
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"github.com/callbridge/callbridge"
	"io/fs"
	"mime"
	nethttp "net/http"
	"path"
	"strings"

	"github.com/callbridge/callbridge/web"
)

// page is the embedded browser side (package web): the agent desktop served at "/", and the
// files served under /sdk/ (the SDK and <callbridge-bar>, for any origin) and /app/ (the
// desktop's script and style sheet).
type page struct {
	// html is app/index.html and csp the Content-Security-Policy it is served with: scripts,
	// styles and connections to this origin only.
	html []byte
	csp  string
	// files maps a URL path ("/sdk/callbridge.js") to its file.
	files map[string]staticFile
}

// staticFile is one embedded file, ready to serve.
type staticFile struct {
	body  []byte
	ctype string
	etag  string
}

// desktopCSP is the policy of the agent desktop. The bar's styles are constructed style sheets
// (adoptedStyleSheets), so no inline style or script is needed.
var desktopCSP = strings.Join([]string{
	"default-src 'none'",
	"script-src 'self'",
	"style-src 'self'",
	"connect-src 'self'",
	"img-src 'self' data:",
	"base-uri 'none'",
	"form-action 'none'",
	"frame-ancestors 'none'",
}, "; ")

// loadPage reads the desktop and the files under sdk/, app/ and docs/ of web.FS. Errors: a missing
// app/index.html (a broken build).
func loadPage() (page, error) {
	root := web.FS()
	html, err := fs.ReadFile(root, "app/index.html")
	if err != nil {
		return page{}, fmt.Errorf("read desktop: %w", err)
	}
	p := page{html: html, csp: desktopCSP, files: make(map[string]staticFile)}
	err = fs.WalkDir(root, ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		if !strings.HasPrefix(name, "sdk/") && !strings.HasPrefix(name, "app/") && !strings.HasPrefix(name, "docs/") || name == "app/index.html" {
			return nil
		}
		b, err := fs.ReadFile(root, name)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		p.files["/"+name] = staticFile{
			body:  b,
			ctype: contentType(name),
			etag:  `"` + base64.RawURLEncoding.EncodeToString(sum[:18]) + `"`,
		}
		return nil
	})
	if err != nil {
		return page{}, fmt.Errorf("read web files: %w", err)
	}
	return p, nil
}

// contentType is the media type of an embedded file by its extension. Module scripts must be
// served as JavaScript (browsers refuse them otherwise).
func contentType(name string) string {
	switch {
	case strings.HasSuffix(name, ".d.ts"):
		return "application/typescript; charset=utf-8"
	case strings.HasSuffix(name, ".js"):
		return "text/javascript; charset=utf-8"
	}
	if t := mime.TypeByExtension(path.Ext(name)); t != "" {
		return t
	}
	return "application/octet-stream"
}

// handlePage serves GET / : the agent desktop, text/html; charset=utf-8.
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

// docsCSP lets the API reference page run only this server's scripts; Swagger UI sets inline
// styles, and shows inline images.
const docsCSP = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"

// handleDocs serves GET /docs: the rendered OpenAPI reference (Swagger UI from the embedded
// web build, reading /v1/openapi.json), so it works without access to the internet.
func (s *Server) handleDocs(w nethttp.ResponseWriter, r *nethttp.Request) {
	f, ok := s.page.files["/docs/index.html"]
	if !ok {
		s.writeError(w, r, callbridge.Errorf(callbridge.ENotFound, "the API reference is not in this build"))
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", docsCSP)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-cache")
	w.WriteHeader(nethttp.StatusOK)
	if r.Method != nethttp.MethodHead {
		_, _ = w.Write(f.body)
	}
}
