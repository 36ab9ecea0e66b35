package remote

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"

	"github.com/callbridge/callbridge"
)

// Protocol constants (see the package documentation for the subject scheme).
const (
	// DefaultPrefix is the first subject token of every endpoint.
	DefaultPrefix = "cbsvc"
	// ServiceName is the micro service's name; its metadata "site" names the site.
	ServiceName = "callbridge-site"
	// ServiceVersion is the version of this protocol (semantic: a new major is incompatible).
	ServiceVersion = "1.0.0"
	// TimeoutHeader carries how long, in milliseconds, the caller waits for the reply.
	TimeoutHeader = "Cb-Timeout-Ms"
	// MaxRequestBytes bounds a request body (a Command is a few KiB at most).
	MaxRequestBytes = 1 << 20
	// MaxTimeout bounds how long the service waits for the engine for one request.
	MaxTimeout = 30 * time.Second
	// DefaultTimeout is the service's wait without TimeoutHeader, and the Client's default
	// deadline per call (shorter than the gateway's 30 s command timeout).
	DefaultTimeout = 10 * time.Second
	// DefaultAttemptTimeout is the Client's default wait for one attempt of a call it may
	// retry.
	DefaultAttemptTimeout = 4 * time.Second
)

// Endpoint names (the last subject token).
const (
	epDo           = "do"
	epSnapshot     = "snapshot"
	epAvailability = "availability"
	epPresence     = "presence"
	epReady        = "ready"
)

// Presence operations ("op" of a presence request).
const (
	opAttached   = "attached"
	opDetached   = "detached"
	opHeartbeat  = "heartbeat"
	opHeartbeats = "heartbeats"
)

// maxDesktopBytes bounds a desktop id (the gateway's are "gateway-" and 16 hex digits).
const maxDesktopBytes = 128

// agentRequest is the body of snapshot and availability requests.
type agentRequest struct {
	Tenant callbridge.TenantID `json:"tenant"`
	Agent  callbridge.AgentID  `json:"agent"`
}

// agentRef is one agent of a heartbeats request.
type agentRef struct {
	Tenant callbridge.TenantID `json:"tenant"`
	Agent  callbridge.AgentID  `json:"agent"`
}

// presenceRequest is the body of a presence request: Tenant and Agent for attached,
// detached and heartbeat; Agents for heartbeats.
type presenceRequest struct {
	Op      string              `json:"op"`
	Tenant  callbridge.TenantID `json:"tenant,omitempty"`
	Agent   callbridge.AgentID  `json:"agent,omitempty"`
	Agents  []agentRef          `json:"agents,omitempty"`
	Desktop string              `json:"desktop"`
}

// request is one decoded request.
type request struct {
	endpoint string
	cmd      callbridge.Command // do
	agent    agentRequest       // snapshot, availability
	presence presenceRequest    // presence
	// timeout is the caller's wait (TimeoutHeader), 0 when absent.
	timeout time.Duration
}

// decodeRequest parses a request to endpoint: its TimeoutHeader (a positive integer of
// milliseconds, when present) and its body. Errors are EInvalid *callbridge.Error naming
// what is wrong: an unknown endpoint, a body over MaxRequestBytes, malformed JSON, an
// unknown field, trailing data, a missing field (a command's cmd and tenant; an agent
// request's tenant and agent; presence's op, tenant, agent or agents, desktop), a desktop
// id over 128 bytes or with CR, LF or NUL, or a body on ready. The values themselves (is the
// tenant known, is the command allowed) are the engine's to judge, so that a remote call
// fails exactly as a local one.
func decodeRequest(endpoint string, hdr natsgo.Header, data []byte) (request, error) {
	r := request{endpoint: endpoint}
	if v := hdr.Get(TimeoutHeader); v != "" {
		ms, err := strconv.ParseInt(v, 10, 64)
		if err != nil || ms <= 0 {
			return r, callbridge.Errorf(callbridge.EInvalid, "header %s must be a positive number of milliseconds, not %q", TimeoutHeader, clip(v))
		}
		if ms > int64(MaxTimeout/time.Millisecond) {
			ms = int64(MaxTimeout / time.Millisecond)
		}
		r.timeout = time.Duration(ms) * time.Millisecond
	}
	if len(data) > MaxRequestBytes {
		return r, callbridge.Errorf(callbridge.EInvalid, "%s request of %d bytes is over the limit of %d", endpoint, len(data), MaxRequestBytes)
	}
	switch endpoint {
	case epDo:
		if err := strictJSON(data, &r.cmd); err != nil {
			return r, invalidBody(endpoint, err)
		}
		if r.cmd.Name == "" || r.cmd.Tenant == "" {
			return r, callbridge.Errorf(callbridge.EInvalid, "do request needs cmd and tenant")
		}
	case epSnapshot, epAvailability:
		if err := strictJSON(data, &r.agent); err != nil {
			return r, invalidBody(endpoint, err)
		}
		if r.agent.Tenant == "" || r.agent.Agent == "" {
			return r, callbridge.Errorf(callbridge.EInvalid, "%s request needs tenant and agent", endpoint)
		}
	case epPresence:
		p := &r.presence
		if err := strictJSON(data, p); err != nil {
			return r, invalidBody(endpoint, err)
		}
		if p.Desktop == "" || len(p.Desktop) > maxDesktopBytes || callbridge.CheckSwitchValue("desktop", p.Desktop) != nil {
			return r, callbridge.Errorf(callbridge.EInvalid, "presence request needs a desktop id of 1-%d bytes without CR, LF or NUL", maxDesktopBytes)
		}
		switch p.Op {
		case opAttached, opDetached, opHeartbeat:
			if p.Tenant == "" || p.Agent == "" || p.Agents != nil {
				return r, callbridge.Errorf(callbridge.EInvalid, "presence %s needs tenant and agent (and no agents)", p.Op)
			}
		case opHeartbeats:
			if p.Tenant != "" || p.Agent != "" {
				return r, callbridge.Errorf(callbridge.EInvalid, "presence heartbeats takes agents, not tenant and agent")
			}
			for _, a := range p.Agents {
				if a.Tenant == "" || a.Agent == "" {
					return r, callbridge.Errorf(callbridge.EInvalid, "presence heartbeats: every agent needs tenant and agent")
				}
			}
		default:
			return r, callbridge.Errorf(callbridge.EInvalid, "presence op %q is not one of attached, detached, heartbeat, heartbeats", clip(p.Op))
		}
	case epReady:
		if len(bytes.TrimSpace(data)) != 0 {
			return r, callbridge.Errorf(callbridge.EInvalid, "ready request takes no body")
		}
	default:
		return r, callbridge.Errorf(callbridge.EInvalid, "unknown endpoint %q", clip(endpoint))
	}
	return r, nil
}

// strictJSON decodes one JSON value from data into v: unknown fields and anything after the
// value are errors.
func strictJSON(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errors.New("data after the JSON value")
	}
	return nil
}

func invalidBody(endpoint string, err error) error {
	return callbridge.Errorf(callbridge.EInvalid, "malformed %s request: %s", endpoint, clip(err.Error()))
}

// clip shortens s for an error message.
func clip(s string) string {
	const max = 80
	if len(s) > max {
		return s[:max] + "…"
	}
	return s
}

// knownCodes are the codes a reply may carry (error.go).
var knownCodes = map[string]bool{
	callbridge.EInvalid: true, callbridge.EUnauthorized: true, callbridge.EForbidden: true,
	callbridge.ENotFound: true, callbridge.EMethod: true, callbridge.EConflict: true,
	callbridge.ENotSupported: true, callbridge.EUnavailable: true, callbridge.ERateLimited: true,
	callbridge.ESwitchRejected: true, callbridge.EInternal: true,
}

// errorHeaders returns the reply headers of err: its code and user-safe message (EInternal
// and "internal error" for anything that is not a *callbridge.Error).
func errorHeaders(err error) natsgo.Header {
	code, msg := callbridge.ErrorCode(err), callbridge.ErrorMessage(err)
	if code == callbridge.EInternal {
		msg = "internal error" // an *Error with code internal may carry details too
	}
	if msg == "" {
		msg = code
	}
	return natsgo.Header{micro.ErrorCodeHeader: {code}, micro.ErrorHeader: {msg}}
}

// decodeReply turns a reply into v or the *callbridge.Error it carries. A reply that is
// neither (an unknown error code, a body that is not v's JSON, for example a JetStream ack
// from a stream that holds the subject) is an error with code EInternal whose message says
// why (the Client logs it and returns "internal error").
func decodeReply(msg *natsgo.Msg, v any) error {
	if code := msg.Header.Get(micro.ErrorCodeHeader); code != "" {
		if !knownCodes[code] {
			return fmt.Errorf("reply with unknown error code %q: %s", clip(code), clip(msg.Header.Get(micro.ErrorHeader)))
		}
		m := msg.Header.Get(micro.ErrorHeader)
		if code == callbridge.EInternal {
			m = "internal error"
		}
		return &callbridge.Error{Code: code, Message: m}
	}
	if v == nil {
		v = &struct{}{}
	}
	if err := strictJSON(msg.Data, v); err != nil {
		return fmt.Errorf("malformed reply: %w", err)
	}
	return nil
}

// subject returns <prefix>.<site>.<endpoint>.
func subject(prefix string, site callbridge.SiteID, endpoint string) string {
	return prefix + "." + string(site) + "." + endpoint
}

// validPrefix reports whether p is one or more dot-separated tokens (callbridge.ValidToken)
// and not under the event log's "cb" root.
func validPrefix(p string) error {
	for _, t := range strings.Split(p, ".") {
		if !callbridge.ValidToken(t) {
			return fmt.Errorf("subject prefix %q: every dot-separated part must be 1-64 of [A-Za-z0-9_-]", p)
		}
	}
	if p == "cb" || strings.HasPrefix(p, "cb.") {
		return fmt.Errorf("subject prefix %q is inside the event log's subjects cb.>", p)
	}
	return nil
}

// validSite returns an error unless site is a token.
func validSite(site callbridge.SiteID) error {
	if !callbridge.ValidToken(string(site)) {
		return fmt.Errorf("site %q is not a valid token (1-64 of [A-Za-z0-9_-])", site)
	}
	return nil
}
