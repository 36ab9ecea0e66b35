package http

import (
	nethttp "net/http"
	"strings"

	"github.com/callbridge/callbridge"
)

// handleStatic serves GET /sdk/… and /app/…: the embedded SDK, <callbridge-bar> and the
// desktop's script and style sheet (package web). Files are revalidated on every use
// (Cache-Control: no-cache, with an ETag of their content), so an upgraded server is picked up
// at once. /sdk/ files are public code that CRM pages on other origins load as ES modules,
// which browsers fetch in CORS mode: they carry Access-Control-Allow-Origin: * (no credentials
// are involved; what --allowed-origins governs is the API and the WebSocket). Unknown files
// are 404 not_found.
func (s *Server) handleStatic(w nethttp.ResponseWriter, r *nethttp.Request) {
	f, ok := s.page.files[r.URL.Path]
	if !ok {
		s.writeError(w, r, callbridge.Errorf(callbridge.ENotFound, "no such file: %s", r.URL.Path))
		return
	}
	h := w.Header()
	h.Set("Content-Type", f.ctype)
	h.Set("ETag", f.etag)
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Content-Type-Options", "nosniff")
	if strings.HasPrefix(r.URL.Path, "/sdk/") {
		h.Set("Access-Control-Allow-Origin", "*")
		h.Set("Cross-Origin-Resource-Policy", "cross-origin")
	}
	if etagMatch(r.Header.Get("If-None-Match"), f.etag) {
		w.WriteHeader(nethttp.StatusNotModified)
		return
	}
	w.WriteHeader(nethttp.StatusOK)
	if r.Method != nethttp.MethodHead {
		_, _ = w.Write(f.body)
	}
}

// etagMatch reports whether an If-None-Match header lists etag (or is "*").
func etagMatch(header, etag string) bool {
	for _, t := range strings.Split(header, ",") {
		t = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(t), "W/"))
		if t == etag || t == "*" {
			return true
		}
	}
	return false
}
