package http

import (
	"context"
	nethttp "net/http"
	"strings"

	"github.com/danielgtaylor/huma/v2"
	"github.com/danielgtaylor/huma/v2/adapters/humago"

	"github.com/callbridge/callbridge"
	"github.com/callbridge/callbridge/webhook"
)

// CRMConfig gives the gateway the stores behind the REST API for CRMs: call records and
// agent states (rest_records.go), webhooks (rest_webhooks.go), API keys (apikeys.go). Call
// control (rest_calls.go) needs only the Commander. An endpoint whose store is nil answers
// 503 unavailable; without APIKeys only login tokens are accepted.
type CRMConfig struct {
	Records  callbridge.RecordStore
	Webhooks callbridge.WebhookStore
	APIKeys  callbridge.APIKeyStore
	// NotifyWebhooks, if set, wakes the webhook dispatcher after a redeliver.
	NotifyWebhooks func()
	// WebhookDestinations is the dispatcher's guard: a webhook whose URL names a refused
	// address, or a host that resolves to one, is refused at creation (400) too.
	WebhookDestinations webhook.Destinations
	// Resolver looks up webhook hosts at creation; nil means net.DefaultResolver.
	Resolver webhook.Resolver
}

// caller is who calls a REST endpoint: a supervisor or admin logged in, or an API key.
type caller struct {
	Tenant   callbridge.TenantID
	Role     callbridge.Role // RoleSupervisor for API keys (they act like one)
	Username string          // the logged-in user; "" for an API key
	APIKey   string          // the API key's id; "" for a login token
}

// who names the caller in logs and in created_by.
func (c caller) who() string {
	if c.APIKey != "" {
		return "apikey:" + c.APIKey
	}
	return c.Username
}

type callerKey struct{}

// callerOf returns the caller that the auth middleware stored in ctx.
func callerOf(ctx context.Context) caller {
	c, _ := ctx.Value(callerKey{}).(caller)
	return c
}

// access is what an operation requires besides a supervisor/admin login: the scope an API
// key needs, or loginOnly to refuse API keys altogether.
type access struct {
	scope     callbridge.APIScope
	loginOnly bool
}

// restRoutes registers the REST API for CRMs, the OpenAPI document and /docs on m.
func (s *Server) restRoutes(m *nethttp.ServeMux) {
	api := newAPI(m)
	s.recordRoutes(api)
	s.webhookRoutes(api)
	s.apiKeyRoutes(api)
	s.callRoutes(api)
	documentPlainRoutes(api)
	// huma documents 422 for its validation errors; this API answers them 400 invalid.
	for _, item := range api.OpenAPI().Paths {
		for _, op := range []*huma.Operation{item.Get, item.Post, item.Put, item.Patch, item.Delete} {
			if op != nil {
				delete(op.Responses, "422")
			}
		}
	}
}

// register adds an operation that needs a bearer token with access a. Agents are refused.
func register[I, O any](s *Server, api huma.API, a access, op huma.Operation, h func(context.Context, *I) (*O, error)) {
	op.Security = []map[string][]string{{securityBearer: {}}}
	op.Middlewares = append(op.Middlewares, s.restAuth(a))
	if op.MaxBodyBytes == 0 {
		op.MaxBodyBytes = maxBodyBytes
	}
	if a.scope != "" {
		op.Description = strings.TrimSpace(op.Description + "\n\nAPI keys need the scope `" + string(a.scope) + "`.")
	} else if a.loginOnly {
		op.Description = strings.TrimSpace(op.Description + "\n\nOnly with a supervisor's or admin's login token; API keys are refused.")
	}
	op.Errors = append(op.Errors, nethttp.StatusBadRequest, nethttp.StatusUnauthorized, nethttp.StatusForbidden,
		nethttp.StatusInternalServerError, nethttp.StatusServiceUnavailable)
	if strings.Contains(op.Path, "{") {
		op.Errors = append(op.Errors, nethttp.StatusNotFound)
	}
	huma.Register(api, op, h)
}

// restAuth is the middleware of every REST operation: it authenticates the bearer token (a
// login token or an API key), refuses agents, checks the API key's scope, and puts the
// caller in the request context. Failures are answered in the gateway's error format.
func (s *Server) restAuth(a access) func(huma.Context, func(huma.Context)) {
	return func(hctx huma.Context, next func(huma.Context)) {
		r, w := humago.Unwrap(hctx)
		c, err := s.restCaller(r, a)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		next(huma.WithValue(hctx, callerKey{}, c))
	}
}

// restCaller authenticates r for an operation that requires a. Errors: EUnauthorized (no,
// bad, expired or revoked credentials), EForbidden (an agent; an API key without the scope,
// or on a login-only operation).
func (s *Server) restCaller(r *nethttp.Request, a access) (caller, error) {
	tok, err := bearerToken(r)
	if err != nil {
		return caller{}, err
	}
	if strings.HasPrefix(tok, apiKeyPrefix) {
		k, err := s.apiKey(r.Context(), tok)
		if err != nil {
			return caller{}, err
		}
		switch {
		case a.loginOnly:
			return caller{}, callbridge.Errorf(callbridge.EForbidden, "API keys cannot do this; use a supervisor's or admin's login token")
		case !k.Allows(a.scope):
			return caller{}, callbridge.Errorf(callbridge.EForbidden, "this API key lacks the scope %s", a.scope)
		}
		return caller{Tenant: k.Tenant, Role: callbridge.RoleSupervisor, APIKey: k.ID}, nil
	}
	id, err := s.parseToken(r.Context(), tok)
	if err != nil {
		return caller{}, err
	}
	if id.Role != callbridge.RoleSupervisor && id.Role != callbridge.RoleAdmin {
		return caller{}, callbridge.Errorf(callbridge.EForbidden, "this API is for supervisors, admins and API keys; agents use the WebSocket")
	}
	return caller{Tenant: id.Tenant, Role: id.Role, Username: id.Username}, nil
}

// bearerToken returns the token of "Authorization: Bearer <token>". Errors: EUnauthorized.
func bearerToken(r *nethttp.Request) (string, error) {
	h := r.Header.Get("Authorization")
	if h == "" {
		return "", callbridge.Errorf(callbridge.EUnauthorized, "a bearer token is required: a login token (POST /v1/login) or an API key")
	}
	scheme, rest, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(rest) == "" {
		return "", callbridge.Errorf(callbridge.EUnauthorized, "the Authorization header must be \"Bearer <token>\"")
	}
	return strings.TrimSpace(rest), nil
}

// unavailable is the error of an endpoint whose store is not configured.
func unavailable(what string) error {
	return callbridge.Errorf(callbridge.EUnavailable, "%s are not available on this node", what)
}
