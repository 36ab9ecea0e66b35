package http

import (
	"errors"
	"fmt"
	"io"
	nethttp "net/http"
	"reflect"
	"strings"

	"github.com/danielgtaylor/huma/v2"
	"github.com/danielgtaylor/huma/v2/adapters/humago"

	"github.com/callbridge/callbridge"
)

// The REST API for CRMs (rest_*.go, apikeys.go) is declared with huma
// (github.com/danielgtaylor/huma/v2) on the gateway's own ServeMux: each operation's Go
// input and output types are its documentation, so the OpenAPI 3.1 document served at
// /v1/openapi.json (and .yaml) is generated from the code and cannot drift. /docs renders
// it (Swagger UI, embedded: see handleDocs). The endpoints written
// without huma (login, me, WebSocket, health, availability) are added to the same
// document by documentPlainRoutes, with schemas generated from their Go types.
const (
	openAPIPath = "/v1/openapi"
	// csvContentType is what CSV answers carry. It is registered as a huma format under this
	// exact key, which Accept negotiation never picks by itself (names are compared without
	// parameters): only handlers that offer CSV set it.
	csvContentType = "text/csv; charset=utf-8"
	securityBearer = "bearer"
)

// restError is an error of the REST API in the gateway's format,
// {"error":{"code":"…","message":"…"}}, as a huma.StatusError.
type restError struct {
	status int
	Err    errorBody `json:"error"`
}

func (e *restError) Error() string             { return e.Err.Code + ": " + e.Err.Message }
func (e *restError) GetStatus() int            { return e.status }
func (e *restError) ContentType(string) string { return "application/json" }

// init makes huma's own errors (validation, unknown content type, body too large …) use the
// gateway's format. huma.NewError is huma's documented hook and a package variable; this is
// the only huma API in the process.
func init() {
	huma.NewError = newHumaError
}

// newHumaError maps a huma error to a callbridge code: 4xx (422 validation included) are
// invalid with status 400 unless the status has its own code (401, 403, 404, 409); 5xx are
// internal. The message lists the details ("limit (query): expected number <= 1000").
func newHumaError(status int, msg string, errs ...error) huma.StatusError {
	code := callbridge.EInternal
	switch {
	case status == nethttp.StatusUnauthorized:
		code = callbridge.EUnauthorized
	case status == nethttp.StatusForbidden:
		code = callbridge.EForbidden
	case status == nethttp.StatusNotFound:
		code = callbridge.ENotFound
	case status == nethttp.StatusConflict:
		code = callbridge.EConflict
	case status >= 400 && status < 500:
		code = callbridge.EInvalid
	}
	var details []string
	for _, err := range errs {
		if err == nil {
			continue
		}
		var d *huma.ErrorDetail
		if errors.As(err, &d) {
			where := strings.TrimPrefix(d.Location, "body.")
			if where != "" {
				details = append(details, where+": "+d.Message)
			} else {
				details = append(details, d.Message)
			}
			continue
		}
		if code != callbridge.EInternal {
			details = append(details, err.Error())
		}
	}
	if msg == "" {
		msg = strings.ToLower(nethttp.StatusText(status))
	}
	if code == callbridge.EInternal {
		msg = "internal error"
	} else if len(details) > 0 {
		msg += ": " + strings.Join(details, "; ")
	}
	return &restError{status: statusOf(code), Err: errorBody{Code: code, Message: msg}}
}

// restErr turns an error of a REST handler into its response, logging internal errors.
func (s *Server) restErr(err error, attrs ...any) error {
	var re *restError
	if errors.As(err, &re) {
		return re
	}
	body := publicError(s.log, err, attrs...)
	return &restError{status: statusOf(body.Code), Err: body}
}

// newAPI builds the huma API on mux with the OpenAPI document's metadata and formats.
func newAPI(mux *nethttp.ServeMux) huma.API {
	cfg := huma.DefaultConfig("callbridge API", "v1")
	cfg.Info.Description = "REST API of callbridge, the CTI bridge: call records, agent state history, " +
		"webhooks, API keys and call control for CRMs. Errors are " +
		"`{\"error\":{\"code\":\"…\",\"message\":\"…\"}}` with the status of their code. " +
		"Authenticate with `Authorization: Bearer <token>`: the token of a supervisor's or admin's " +
		"login (`POST /v1/login`), or a tenant's API key (`cbk_…`) with the scopes the operation " +
		"needs. Agents use the WebSocket (`/v1/ws`) instead and are refused here."
	cfg.OpenAPIPath = openAPIPath
	cfg.DocsPath = "" // /docs is served from the embedded build (handleDocs), not a CDN
	cfg.SchemasPath = ""
	cfg.CreateHooks = nil // no $schema links in responses
	cfg.RejectUnknownQueryParameters = true
	cfg.Formats = map[string]huma.Format{
		"application/json": huma.DefaultJSONFormat,
		"json":             huma.DefaultJSONFormat,
		csvContentType:     {Marshal: marshalCSV, Unmarshal: func([]byte, any) error { return errors.New("CSV request bodies are not accepted") }},
	}
	cfg.Components.SecuritySchemes = map[string]*huma.SecurityScheme{
		securityBearer: {
			Type: "http", Scheme: "bearer",
			Description: "A supervisor's or admin's login token (POST /v1/login), or an API key (cbk_…).",
		},
	}
	return humago.New(mux, cfg)
}

// csvWriter is implemented by response bodies that can be written as CSV.
type csvWriter interface {
	writeCSV(w io.Writer) error
}

func marshalCSV(w io.Writer, v any) error {
	cw, ok := v.(csvWriter)
	if !ok {
		return fmt.Errorf("%T has no CSV form", v)
	}
	return cw.writeCSV(w)
}

// documentPlainRoutes adds the endpoints served without huma to the OpenAPI document, with
// schemas generated from their Go types.
func documentPlainRoutes(api huma.API) {
	oapi := api.OpenAPI()
	reg := oapi.Components.Schemas
	schema := func(v any) *huma.Schema { return reg.Schema(reflect.TypeOf(v), true, "") }
	errSchema := schema(restError{})
	jsonContent := func(s *huma.Schema) map[string]*huma.MediaType {
		return map[string]*huma.MediaType{"application/json": {Schema: s}}
	}
	errResp := func(desc string) *huma.Response {
		return &huma.Response{Description: desc, Content: jsonContent(errSchema)}
	}
	bearer := []map[string][]string{{securityBearer: {}}}
	statusSchema := &huma.Schema{Type: "object", Properties: map[string]*huma.Schema{"status": {Type: "string"}}}

	oapi.AddOperation(&huma.Operation{
		OperationID: "login", Method: nethttp.MethodPost, Path: "/v1/login", Tags: []string{"Authentication"},
		Summary: "Log in",
		Description: "Checks the user's password and starts a session: a short-lived access token (the bearer token) " +
			"and a refresh token for POST /v1/refresh. Give `tenant` when the user name exists in several tenants. " +
			"Failed logins are limited per user name and per client address.",
		RequestBody: &huma.RequestBody{Required: true, Content: jsonContent(schema(loginRequest{}))},
		Responses: map[string]*huma.Response{
			"200": {Description: "The session's tokens.", Content: jsonContent(schema(loginResponse{}))},
			"400": errResp("Missing or malformed fields."),
			"401": errResp("Wrong user name or password."),
			"429": errResp("Too many failed logins (rate_limited); Retry-After gives the seconds to wait."),
			"503": errResp("Too many logins at once; Retry-After: 1."),
		},
	})
	oapi.AddOperation(&huma.Operation{
		OperationID: "refresh", Method: nethttp.MethodPost, Path: "/v1/refresh", Tags: []string{"Authentication"},
		Summary: "Refresh the access token",
		Description: "Trades the session's refresh token for a new access token and a new refresh token (the one sent " +
			"stops working) and extends the session. A refresh token used again after its replacement revokes the session.",
		RequestBody: &huma.RequestBody{Required: true, Content: jsonContent(schema(refreshRequest{}))},
		Responses: map[string]*huma.Response{
			"200": {Description: "The session's new tokens.", Content: jsonContent(schema(loginResponse{}))},
			"400": errResp("Malformed body."),
			"401": errResp("The refresh token is not valid, was replaced, or its session ended."),
		},
	})
	oapi.AddOperation(&huma.Operation{
		OperationID: "logout", Method: nethttp.MethodPost, Path: "/v1/logout", Tags: []string{"Authentication"},
		Summary: "Log out",
		Description: "Ends the session of the bearer access token, or of the refresh token in the optional body: its tokens " +
			"stop working and its WebSockets close with 4002.",
		Security:    bearer,
		RequestBody: &huma.RequestBody{Required: false, Content: jsonContent(schema(refreshRequest{}))},
		Responses: map[string]*huma.Response{
			"204": {Description: "The session ended (or had already)."},
			"401": errResp("Neither token is valid."),
		},
	})
	oapi.AddOperation(&huma.Operation{
		OperationID: "me", Method: nethttp.MethodGet, Path: "/v1/me", Tags: []string{"Authentication"},
		Summary:     "Who am I",
		Description: "An agent gets their snapshot (agent state and calls); supervisors and admins get their identity.",
		Security:    bearer,
		Responses: map[string]*huma.Response{
			"200": {Description: "The agent's snapshot, or the identity of a supervisor or admin.", Content: jsonContent(&huma.Schema{
				OneOf: []*huma.Schema{schema(callbridge.AgentSnapshot{}), schema(meResponse{})},
			})},
			"401": errResp("No or bad token."),
		},
	})
	oapi.AddOperation(&huma.Operation{
		OperationID: "websocket", Method: nethttp.MethodGet, Path: "/v1/ws", Tags: []string{"Events"},
		Summary: "WebSocket: events and commands",
		Description: "Upgrade to the v1 WebSocket protocol (see docs/api.md): events " +
			"`{\"seq\",\"type\",\"time\",\"tenant\",\"data\"}` from the server, commands " +
			"`{\"id\",\"cmd\",\"params\"}` from the client. The token is a bearer header or the `access_token` query parameter; " +
			"`after_seq` resumes after the last event seen.",
		Security: bearer,
		Parameters: []*huma.Param{
			{Name: "access_token", In: "query", Description: "The login token, for browsers.", Schema: &huma.Schema{Type: "string"}},
			{Name: "after_seq", In: "query", Description: "Resume after this event sequence.", Schema: &huma.Schema{Type: "integer", Minimum: ptr(0.0)}},
		},
		Responses: map[string]*huma.Response{
			"101": {Description: "Switching to the WebSocket protocol."},
			"400": errResp("Not a WebSocket upgrade, or a bad after_seq."),
			"401": errResp("No or bad token."),
			"403": errResp("Origin not allowed."),
		},
	})
	oapi.AddOperation(&huma.Operation{
		OperationID: "agent-availability", Method: nethttp.MethodGet, Path: "/v1/agents/{id}/availability", Tags: []string{"Agents"},
		Summary:     "Why an agent is (not) routable",
		Description: "Whether the switch can route a call to the agent now and, if not, every reason. Agents may read only their own.",
		Security:    bearer,
		Parameters:  []*huma.Param{{Name: "id", In: "path", Required: true, Schema: &huma.Schema{Type: "string"}}},
		Responses: map[string]*huma.Response{
			"200": {Description: "The availability.", Content: jsonContent(schema(callbridge.Availability{}))},
			"403": errResp("Another agent's availability."),
			"404": errResp("Unknown agent."),
		},
	})
	oapi.AddOperation(&huma.Operation{
		OperationID: "healthz", Method: nethttp.MethodGet, Path: "/healthz", Tags: []string{"Operations"},
		Summary:   "Liveness",
		Responses: map[string]*huma.Response{"200": {Description: `{"status":"ok"} while the process serves.`, Content: jsonContent(statusSchema)}},
	})
	oapi.AddOperation(&huma.Operation{
		OperationID: "readyz", Method: nethttp.MethodGet, Path: "/readyz", Tags: []string{"Operations"},
		Summary: "Readiness",
		Responses: map[string]*huma.Response{
			"200": {Description: `{"status":"ready"}: switch connected and resynchronised, store and bus up.`, Content: jsonContent(statusSchema)},
			"503": errResp("Not ready; the message says why."),
		},
	})
	oapi.AddOperation(&huma.Operation{
		OperationID: "metrics", Method: nethttp.MethodGet, Path: "/metrics", Tags: []string{"Operations"},
		Summary:     "Prometheus metrics",
		Description: "Prometheus text exposition format; the metrics are listed in docs/api.md. No authentication: volumes only, no tenant, agent or call names.",
		Responses: map[string]*huma.Response{
			"200": {Description: "The metrics.", Content: map[string]*huma.MediaType{"text/plain; version=0.0.4": {Schema: &huma.Schema{Type: "string"}}}},
		},
	})
}

func ptr[T any](v T) *T { return &v }
