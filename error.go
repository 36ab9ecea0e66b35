package callbridge

import (
	"errors"
	"fmt"
)

// Error codes. They appear in API errors as {"error":{"code":"…","message":"…"}} and map to
// HTTP statuses in package http.
const (
	EInvalid        = "invalid"            // bad input: malformed field, CR/LF, unknown command (400)
	EUnauthorized   = "unauthorized"       // no or bad credentials (401)
	EForbidden      = "forbidden"          // authenticated but not allowed, e.g. another agent's call (403)
	ENotFound       = "not_found"          // unknown call, agent, user (404)
	EMethod         = "method_not_allowed" // the path exists, but not for this HTTP method (405)
	EConflict       = "conflict"           // the call or agent is not in a state that allows it (409)
	ENotSupported   = "not_supported"      // the switch cannot do this (501)
	EUnavailable    = "unavailable"        // the switch link is down or the node is not ready (503)
	ERateLimited    = "rate_limited"       // too many attempts (failed logins); retry after Retry-After (429)
	ESwitchRejected = "switch_rejected"    // the switch answered the command with an error (502)
	EInternal       = "internal"           // anything else; details are logged, never shown (500)
)

// Error is callbridge's application error: a code from the list above and a message that is
// safe to show to the user.
type Error struct {
	Code    string
	Message string
}

func (e *Error) Error() string { return fmt.Sprintf("%s: %s", e.Code, e.Message) }

// Errorf returns an *Error with the given code and formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// ErrorCode returns the code of err if it is (or wraps) an *Error, and EInternal otherwise.
// A nil error has code "".
func ErrorCode(err error) string {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return EInternal
}

// ErrorMessage returns the user-safe message of err: the *Error's message, or
// "internal error" for anything else.
func ErrorMessage(err error) string {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Message
	}
	return "internal error"
}
