package http

import (
	"context"
	"errors"
	"fmt"
	nethttp "net/http"
	"slices"
	"strings"
	"time"

	"github.com/callbridge/callbridge"
	"github.com/golang-jwt/jwt/v5"
)

// tokenIssuer is the "iss" claim of every token this gateway signs.
const tokenIssuer = "callbridge"

// identity is the authenticated caller, taken from an access token.
type identity struct {
	Tenant   callbridge.TenantID
	Username string
	Role     callbridge.Role
	// Expires is when the token stops being valid.
	Expires time.Time
	// Session is the id of the login session the token belongs to (claim "sid").
	Session string
	// TokenID is the token's own id (claim "jti").
	TokenID string
}

// tokenClaims are the access token's JWT claims: {"tenant","role","sub","sid","jti","iss",
// "iat","exp"}; exp and iat are seconds since the Unix epoch, sid names the session (see
// callbridge.Session), jti the token.
type tokenClaims struct {
	Tenant  string `json:"tenant"`
	Role    string `json:"role"`
	Session string `json:"sid"`
	jwt.RegisteredClaims
}

// issueToken signs an HS256 access token for id in session sid, valid for Config.TokenTTL
// from now but not past sessionEnd, and returns it with its expiry (whole seconds, UTC).
func (s *Server) issueToken(id identity, sid string, sessionEnd time.Time) (string, time.Time, error) {
	now := s.now().UTC()
	exp := now.Add(s.cfg.TokenTTL)
	if !sessionEnd.IsZero() && sessionEnd.Before(exp) {
		exp = sessionEnd
	}
	exp = exp.Truncate(time.Second)
	claims := tokenClaims{
		Tenant:  string(id.Tenant),
		Role:    string(id.Role),
		Session: sid,
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    tokenIssuer,
			Subject:   id.Username,
			ID:        randomID(16),
			IssuedAt:  jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(exp),
		},
	}
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(s.cfg.Secret)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("sign token: %w", err)
	}
	return tok, exp, nil
}

// parseToken checks tok (HS256 only, signed with Config.Secret, issued by callbridge, not
// expired by Config.Now) and that its session is live in Config.Sessions (not logged out,
// not revoked, its user not removed), and returns its identity. Errors: *callbridge.Error
// with code EUnauthorized ("token expired", "invalid token", "session ended"), or
// EUnavailable when the session store does not answer.
func (s *Server) parseToken(ctx context.Context, tok string) (identity, error) {
	id, err := s.verifyToken(tok)
	if err != nil {
		return identity{}, err
	}
	if err := s.sessionLive(ctx, id); err != nil {
		return identity{}, err
	}
	return id, nil
}

// verifyToken checks tok's signature, issuer, expiry and claims, without the session.
func (s *Server) verifyToken(tok string) (identity, error) {
	var claims tokenClaims
	_, err := jwt.ParseWithClaims(tok, &claims,
		func(*jwt.Token) (any, error) { return s.cfg.Secret, nil },
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
		jwt.WithExpirationRequired(),
		jwt.WithIssuer(tokenIssuer),
		jwt.WithTimeFunc(s.now),
	)
	if errors.Is(err, jwt.ErrTokenExpired) {
		return identity{}, callbridge.Errorf(callbridge.EUnauthorized, "token expired")
	}
	if err != nil {
		return identity{}, callbridge.Errorf(callbridge.EUnauthorized, "invalid token")
	}
	id := identity{
		Tenant:   callbridge.TenantID(claims.Tenant),
		Username: claims.Subject,
		Role:     callbridge.Role(claims.Role),
		Expires:  claims.ExpiresAt.Time,
		Session:  claims.Session,
		TokenID:  claims.ID,
	}
	if !callbridge.ValidToken(string(id.Tenant)) || id.Username == "" || !validRole(id.Role) || id.Session == "" {
		return identity{}, callbridge.Errorf(callbridge.EUnauthorized, "invalid token")
	}
	return id, nil
}

// sessionLive checks that id's session is stored, live at Config.Now and belongs to id's
// user. Errors: EUnauthorized "session ended: log in again"; EUnavailable when the store fails
// (the cause is logged).
func (s *Server) sessionLive(ctx context.Context, id identity) error {
	sess, err := s.cfg.Sessions.Session(ctx, id.Session)
	switch {
	case callbridge.ErrorCode(err) == callbridge.ENotFound:
		return errSessionEnded
	case err != nil:
		s.log.Error("cannot check a session", "tenant", id.Tenant, "user", id.Username, "err", err)
		return callbridge.Errorf(callbridge.EUnavailable, "sessions cannot be checked right now; try again")
	case !sess.Live(s.now()) || sess.Tenant != id.Tenant || sess.Username != id.Username:
		return errSessionEnded
	}
	return nil
}

// errSessionEnded is the answer for a token whose session was logged out, revoked, expired or
// whose user was removed.
var errSessionEnded = callbridge.Errorf(callbridge.EUnauthorized, "session ended: log in again")

func validRole(r callbridge.Role) bool {
	switch r {
	case callbridge.RoleAgent, callbridge.RoleSupervisor, callbridge.RoleAdmin:
		return true
	}
	return false
}

// authenticate returns the caller of r from "Authorization: Bearer <token>", or, when
// allowQuery is set (WebSockets, which browsers cannot give headers), from the access_token
// query parameter. Errors: EUnauthorized.
func (s *Server) authenticate(r *nethttp.Request, allowQuery bool) (identity, error) {
	tok := ""
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, rest, ok := strings.Cut(h, " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(rest) == "" {
			return identity{}, callbridge.Errorf(callbridge.EUnauthorized, "the Authorization header must be \"Bearer <token>\"")
		}
		tok = strings.TrimSpace(rest)
	} else if allowQuery {
		tok = r.URL.Query().Get("access_token")
	}
	if tok == "" {
		return identity{}, callbridge.Errorf(callbridge.EUnauthorized, "a token is required (POST /v1/login)")
	}
	return s.parseToken(r.Context(), tok)
}

// requireAuth wraps h so that it runs only for an authenticated caller; others get 401.
func (s *Server) requireAuth(allowQuery bool, h func(nethttp.ResponseWriter, *nethttp.Request, identity)) nethttp.Handler {
	return nethttp.HandlerFunc(func(w nethttp.ResponseWriter, r *nethttp.Request) {
		id, err := s.authenticate(r, allowQuery)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		h(w, r, id)
	})
}

// meResponse is GET /v1/me for supervisors and admins.
type meResponse struct {
	Tenant    callbridge.TenantID `json:"tenant"`
	Username  string              `json:"username"`
	Role      callbridge.Role     `json:"role"`
	ExpiresAt time.Time           `json:"expires_at"`
}

// handleMe serves GET /v1/me: an agent gets their AgentSnapshot (Commander.Snapshot; its
// errors pass through, e.g. 404 for an agent the engine does not know), others get
// {"tenant","username","role","expires_at"}.
func (s *Server) handleMe(w nethttp.ResponseWriter, r *nethttp.Request, id identity) {
	if id.Role == callbridge.RoleAgent {
		snap, err := s.cfg.Commander.Snapshot(r.Context(), id.Tenant, callbridge.AgentID(id.Username))
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		writeJSON(w, nethttp.StatusOK, normSnapshot(snap))
		return
	}
	writeJSON(w, nethttp.StatusOK, meResponse{Tenant: id.Tenant, Username: id.Username, Role: id.Role, ExpiresAt: id.Expires.UTC()})
}

// normSnapshot makes the nil slices of snap empty, so that clients always get arrays.
func normSnapshot(snap callbridge.AgentSnapshot) callbridge.AgentSnapshot {
	if snap.Calls == nil {
		snap.Calls = []callbridge.Call{}
	}
	snap.Calls = slices.Clone(snap.Calls) // the Commander may keep its slice
	for i := range snap.Calls {
		if snap.Calls[i].AttachedData == nil {
			snap.Calls[i].AttachedData = map[string]string{}
		}
		if snap.Calls[i].Connections == nil {
			snap.Calls[i].Connections = []callbridge.Connection{}
		}
	}
	return snap
}
