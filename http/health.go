package http

import (
	"errors"
	nethttp "net/http"

	"github.com/callbridge/callbridge"
)

// handleHealthz answers 200 {"status":"ok"} as long as the process serves requests.
func (s *Server) handleHealthz(w nethttp.ResponseWriter, r *nethttp.Request) {
	writeJSON(w, nethttp.StatusOK, map[string]string{"status": "ok"})
}

// handleReadyz answers 200 {"status":"ready"} when the node can take traffic: the switch is
// connected and resynchronised (Commander.Ready) and Config.Ready passes. Otherwise it answers
// 503 {"error":{"code":"unavailable","message":<reason>}}; the reason is the check's error text,
// since readiness is for operators and load balancers.
func (s *Server) handleReadyz(w nethttp.ResponseWriter, r *nethttp.Request) {
	if err := s.readiness(); err != nil {
		writeJSON(w, nethttp.StatusServiceUnavailable, errorResponse{Error: errorBody{
			Code:    callbridge.EUnavailable,
			Message: err.Error(),
		}})
		return
	}
	writeJSON(w, nethttp.StatusOK, map[string]string{"status": "ready"})
}

// readiness returns why the node is not ready, or nil.
func (s *Server) readiness() error {
	if s.isClosing() {
		return errors.New("shutting down")
	}
	if err := s.cfg.Commander.Ready(); err != nil {
		return reason("switch", err)
	}
	if s.cfg.Ready != nil {
		if err := s.cfg.Ready(); err != nil {
			return reason("", err)
		}
	}
	return nil
}

// reason is err's text, prefixed with "what: " when what is set; a *callbridge.Error shows its
// message without the code.
func reason(what string, err error) error {
	msg := err.Error()
	var e *callbridge.Error
	if errors.As(err, &e) {
		msg = e.Message
	}
	if what != "" {
		msg = what + ": " + msg
	}
	return errors.New(msg)
}
