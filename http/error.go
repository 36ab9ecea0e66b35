package http

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	nethttp "net/http"
	"reflect"
	"strings"

	"github.com/callbridge/callbridge"
)

// maxBodyBytes caps every request body (64 KiB). A larger body is an EInvalid error.
const maxBodyBytes = 64 << 10

// errorBody is the wire form of an error, in HTTP responses and WebSocket replies:
// {"code":"not_found","message":"…"}.
type errorBody struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// errorResponse is an HTTP error response: {"error":{"code":"…","message":"…"}}.
type errorResponse struct {
	Error errorBody `json:"error"`
}

// statusOf maps a callbridge error code to its HTTP status (DESIGN.md §4). Unknown codes are 500.
func statusOf(code string) int {
	switch code {
	case callbridge.EInvalid:
		return nethttp.StatusBadRequest
	case callbridge.EUnauthorized:
		return nethttp.StatusUnauthorized
	case callbridge.EForbidden:
		return nethttp.StatusForbidden
	case callbridge.ENotFound:
		return nethttp.StatusNotFound
	case callbridge.EMethod:
		return nethttp.StatusMethodNotAllowed
	case callbridge.EConflict:
		return nethttp.StatusConflict
	case callbridge.ENotSupported:
		return nethttp.StatusNotImplemented
	case callbridge.EUnavailable:
		return nethttp.StatusServiceUnavailable
	case callbridge.ERateLimited:
		return nethttp.StatusTooManyRequests
	case callbridge.ESwitchRejected:
		return nethttp.StatusBadGateway
	default:
		return nethttp.StatusInternalServerError
	}
}

// publicError turns err into what a client may see. Errors that are not a *callbridge.Error
// (or carry the internal code) are logged with their details and shown as "internal error".
func publicError(log *slog.Logger, err error, attrs ...any) errorBody {
	code := callbridge.ErrorCode(err)
	if code == callbridge.EInternal {
		log.Error("internal error", append(attrs, "err", err)...)
		return errorBody{Code: callbridge.EInternal, Message: "internal error"}
	}
	return errorBody{Code: code, Message: callbridge.ErrorMessage(err)}
}

// writeError writes err as {"error":{"code","message"}} with the status of its code.
func (s *Server) writeError(w nethttp.ResponseWriter, r *nethttp.Request, err error) {
	body := publicError(s.log, err, "method", r.Method, "path", r.URL.Path)
	if body.Code == callbridge.EUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="callbridge"`)
	}
	writeJSON(w, statusOf(body.Code), errorResponse{Error: body})
}

// writeJSON writes v as a JSON response with the given status.
func writeJSON(w nethttp.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		// Only our own response types are written here; they always marshal.
		status = nethttp.StatusInternalServerError
		b = []byte(`{"error":{"code":"internal","message":"internal error"}}`)
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

// decodeJSON reads one JSON object from the request body into v: at most maxBodyBytes, no
// unknown fields, nothing after the object. Every failure is an *callbridge.Error with code
// EInvalid whose message names the problem.
func decodeJSON(w nethttp.ResponseWriter, r *nethttp.Request, v any) error {
	if ct := r.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(strings.ToLower(ct), "application/json") {
		return callbridge.Errorf(callbridge.EInvalid, "content type must be application/json")
	}
	dec := json.NewDecoder(nethttp.MaxBytesReader(w, r.Body, maxBodyBytes))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonError("request body", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return callbridge.Errorf(callbridge.EInvalid, "request body must hold a single JSON object")
	}
	return nil
}

// jsonError describes a JSON decoding error of what as an EInvalid *callbridge.Error.
func jsonError(what string, err error) error {
	if e := (*callbridge.Error)(nil); errors.As(err, &e) {
		return e
	}
	var (
		syntax    *json.SyntaxError
		typeErr   *json.UnmarshalTypeError
		tooLarge  *nethttp.MaxBytesError
		msg       string
		errString = err.Error()
	)
	switch {
	case errors.As(err, &tooLarge):
		msg = fmt.Sprintf("%s is larger than %d bytes", what, tooLarge.Limit)
	case errors.As(err, &syntax):
		msg = fmt.Sprintf("%s is not valid JSON (at byte %d)", what, syntax.Offset)
	case errors.As(err, &typeErr):
		if typeErr.Field != "" {
			msg = fmt.Sprintf("%s: field %q must be %s, not %s", what, typeErr.Field, jsonKind(typeErr.Type), typeErr.Value)
		} else {
			msg = fmt.Sprintf("%s must be %s, not %s", what, jsonKind(typeErr.Type), typeErr.Value)
		}
	case errors.Is(err, io.EOF):
		msg = what + " is empty"
	case errors.Is(err, io.ErrUnexpectedEOF):
		msg = what + " is truncated JSON"
	case strings.HasPrefix(errString, "json: unknown field "):
		msg = fmt.Sprintf("%s: unknown field %s", what, strings.TrimPrefix(errString, "json: unknown field "))
	default:
		msg = fmt.Sprintf("%s is not valid: %s", what, strings.TrimPrefix(errString, "json: "))
	}
	return callbridge.Errorf(callbridge.EInvalid, "%s", msg)
}

// jsonKind names a Go type the way a JSON client thinks of it ("a string", "an object" …).
func jsonKind(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Map, reflect.Struct:
		return "an object"
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.Bool:
		return "a boolean"
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a non-negative integer"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return "an integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	}
	return "of type " + t.String()
}
