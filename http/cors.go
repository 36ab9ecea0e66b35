package http

import (
	nethttp "net/http"
	"strings"
)

// CORS for the API. Browser pages on the origins of Config.AllowedOrigins (serve
// --allowed-origins; "*" for any) may call /v1/… — log in, read /v1/me, use the REST
// endpoints — from JavaScript; the same list governs the WebSocket origin check (checkOrigin).
// Requests carry a bearer token, never cookies, so credentials are not allowed.
const (
	corsAllowMethods = "GET, HEAD, POST, PUT, PATCH, DELETE"
	corsAllowHeaders = "Authorization, Content-Type, Idempotency-Key"
	corsMaxAge       = "600" // seconds a browser may cache a preflight answer
)

// withCORS wraps next: a request under /v1/ from an allowed origin gets
// Access-Control-Allow-Origin with that origin; a preflight (OPTIONS with
// Access-Control-Request-Method) is answered here, 204 for an allowed origin and 403 forbidden
// for any other. Allowed means what checkOrigin allows: the server's own origin or one of the
// list. Requests without an Origin header and paths outside /v1/ pass through unchanged.
func (s *Server) withCORS(next nethttp.Handler) nethttp.Handler {
	return nethttp.HandlerFunc(func(w nethttp.ResponseWriter, r *nethttp.Request) {
		origin := r.Header.Get("Origin")
		if origin == "" || !strings.HasPrefix(r.URL.Path, "/v1/") {
			next.ServeHTTP(w, r)
			return
		}
		if err := s.checkOrigin(r); err != nil {
			if isPreflight(r) {
				s.writeError(w, r, err)
				return
			}
			next.ServeHTTP(w, r) // the browser withholds the answer from the page
			return
		}
		h := w.Header()
		h.Set("Access-Control-Allow-Origin", origin)
		h.Add("Vary", "Origin")
		h.Set("Access-Control-Expose-Headers", "Retry-After") // 429 and 503 answers to a login
		if isPreflight(r) {
			h.Set("Access-Control-Allow-Methods", corsAllowMethods)
			h.Set("Access-Control-Allow-Headers", corsAllowHeaders)
			h.Set("Access-Control-Max-Age", corsMaxAge)
			w.WriteHeader(nethttp.StatusNoContent)
			return
		}
		next.ServeHTTP(w, r)
	})
}

func isPreflight(r *nethttp.Request) bool {
	return r.Method == nethttp.MethodOptions && r.Header.Get("Access-Control-Request-Method") != ""
}
