// Package callbridge is the domain vocabulary of the callbridge CTI bridge: calls, connections,
// agents and events named after ECMA-269 (CSTA), the normalised switch events that every
// driver produces, the commands desktops and CRMs raise, and the interfaces (Driver, Store,
// EventLog, Commander) that the subpackages implement.
//
// The root package imports no network or database package; see ../shared/DESIGN.md for the
// architecture. Everything here is plain data plus validation.
package callbridge

import (
	"fmt"
	"strings"
)

// TenantID names a tenant (a company sharing the switch), e.g. "acme". It is used as a NATS
// subject token, so it must be a valid Token.
type TenantID string

// CallID is callbridge's stable identity of one customer conversation: a ULID (26 characters,
// Crockford base32) assigned by the engine, stable across queueing, retries and transfers.
type CallID string

// DeviceID is a switch-local device: an extension ("1001"), a queue, a routing point, or, for
// an outside party, the outside number ("+15551230001").
type DeviceID string

// AgentID is an agent's identity inside a tenant. callbridge uses the agent's user name.
type AgentID string

// QueueName is an ACD group on the switch, e.g. Asterisk's app_queue "acme-support".
type QueueName string

// Role is a user's role: RoleAgent, RoleSupervisor or RoleAdmin.
type Role string

// Roles.
const (
	RoleAgent      Role = "agent"
	RoleSupervisor Role = "supervisor"
	RoleAdmin      Role = "admin"
)

// ValidToken reports whether s can be used as one NATS subject token and as an identifier in
// URLs: 1 to 64 characters from [A-Za-z0-9_-]. Tenant ids, agent ids and call ids must be tokens.
func ValidToken(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '_', c == '-':
		default:
			return false
		}
	}
	return true
}

// CheckSwitchValue returns an *Error with code invalid when s contains CR, LF or NUL, which
// would let a value break out of its field in a line-based switch protocol (AMI, ESL).
// Every value written into a switch protocol is checked with it first.
func CheckSwitchValue(field, s string) error {
	if strings.ContainsAny(s, "\r\n\x00") {
		return Errorf(EInvalid, "%s contains CR, LF or NUL", field)
	}
	return nil
}

// CheckDialTarget validates a transfer or dial target typed by a person: an extension, a queue
// name, an agent's user name or an outside number. It must be 1-64 characters of
// [A-Za-z0-9+*#_.@-] and no dial-string metacharacters (Asterisk's & , | / ( ) ^ ; space and
// ${} expressions, FreeSWITCH's , | [ ] { }). The error is an *Error with code invalid.
func CheckDialTarget(field, s string) error {
	if err := CheckSwitchValue(field, s); err != nil {
		return err
	}
	if s == "" {
		return Errorf(EInvalid, "%s is empty", field)
	}
	if len(s) > 64 {
		return Errorf(EInvalid, "%s is longer than 64 characters", field)
	}
	for _, c := range s {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case strings.ContainsRune("+*#_.@-", c):
		default:
			return Errorf(EInvalid, "%s contains %q, which is not allowed in a dial target", field, c)
		}
	}
	return nil
}

// IsOutsideNumber reports whether s has the form of a number outside the switch: 7 to 20
// digits, optionally after a leading '+' (E.164 numbers are at most 15 digits; up to 20 leaves
// room for a national trunk or an international access prefix). Extensions are shorter; a
// dial target of this form that is no device of the tenant is dialled as an outside number.
func IsOutsideNumber(s string) bool {
	digits := strings.TrimPrefix(s, "+")
	if len(digits) < 7 || len(digits) > 20 {
		return false
	}
	for i := 0; i < len(digits); i++ {
		if digits[i] < '0' || digits[i] > '9' {
			return false
		}
	}
	return true
}

// String forms, for logging.
func (t TenantID) String() string  { return string(t) }
func (c CallID) String() string    { return string(c) }
func (d DeviceID) String() string  { return string(d) }
func (a AgentID) String() string   { return string(a) }
func (q QueueName) String() string { return string(q) }

// AgentKey identifies an agent across tenants: "tenant/agent".
type AgentKey struct {
	Tenant TenantID
	Agent  AgentID
}

func (k AgentKey) String() string { return fmt.Sprintf("%s/%s", k.Tenant, k.Agent) }
