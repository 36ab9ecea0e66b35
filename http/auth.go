package http

import (
	"errors"
	"fmt"
	nethttp "net/http"
	"slices"
	"strings"
	"time"

	"github.com/callbridge/callbridge"
	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/crypto/bcrypt"
)

// tokenIssuer is the "iss" claim of every token this gateway signs.
const tokenIssuer = "callbridge"

// msgBadLogin is the one message for a wrong password and an unknown user, so that a login
// attempt does not tell which user names exist.
const msgBadLogin = "invalid username or password"

// dummyHash is a bcrypt hash (cost 10, bcrypt.DefaultCost, like stored hashes) of a random
// password nobody knows. Login checks the password against it when no user matches, so an
// unknown user name costs as much time as a wrong password.
const dummyHash = "$2a$10$cjzFqs2RQ632TQPVFCm5QOtQ5qhFyJ6NXYEnDJ9leYOl34X4aB992"

// identity is the authenticated caller, taken from a token.
type identity struct {
	Tenant   callbridge.TenantID
	Username string
	Role     callbridge.Role
	// Expires is when the token stops being valid.
	Expires time.Time
}

// tokenClaims are the JWT claims: {"tenant","role","sub","iss","iat","exp"}; exp and iat are
// seconds since the Unix epoch.
type tokenClaims struct {
	Tenant string `json:"tenant"`
	Role   string `json:"role"`
	jwt.RegisteredClaims
}

// issueToken signs an HS256 token for id valid for Config.TokenTTL from now, and returns it
// with its expiry (whole seconds, UTC).
func (s *Server) issueToken(id identity) (string, time.Time, error) {
	now := s.now().UTC()
	exp := now.Add(s.cfg.TokenTTL).Truncate(time.Second)
	claims := tokenClaims{
		Tenant: string(id.Tenant),
		Role:   string(id.Role),
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    tokenIssuer,
			Subject:   id.Username,
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
// expired by Config.Now) and returns its identity. Errors are *callbridge.Error with code
// EUnauthorized: "token expired" or "invalid token".
func (s *Server) parseToken(tok string) (identity, error) {
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
	}
	if !callbridge.ValidToken(string(id.Tenant)) || id.Username == "" || !validRole(id.Role) {
		return identity{}, callbridge.Errorf(callbridge.EUnauthorized, "invalid token")
	}
	return id, nil
}

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
	return s.parseToken(tok)
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

// loginRequest is the body of POST /v1/login.
type loginRequest struct {
	Username string `json:"username"`
	Password string `json:"password"`
	// Tenant chooses among users of the same name in several tenants.
	Tenant string `json:"tenant,omitempty"`
}

// loginResponse is the answer to a successful login; ExpiresAt is RFC 3339, UTC.
type loginResponse struct {
	Token     string              `json:"token"`
	ExpiresAt time.Time           `json:"expires_at"`
	Tenant    callbridge.TenantID `json:"tenant"`
	Username  string              `json:"username"`
	Role      callbridge.Role     `json:"role"`
}

// handleLogin serves POST /v1/login: it checks the password with bcrypt and returns a token.
//
//   - missing username or password, bad JSON: 400 invalid
//   - unknown user, wrong password, or a tenant without that user: 401 unauthorized with the
//     same message, after the same bcrypt work (a dummy hash stands in for a missing user)
//   - the user name exists in several tenants, the password fits, and no tenant is given:
//     400 invalid asking for "tenant" (the password is checked first so that this answer does
//     not reveal user names)
func (s *Server) handleLogin(w nethttp.ResponseWriter, r *nethttp.Request) {
	var req loginRequest
	if err := decodeJSON(w, r, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	if req.Username == "" || req.Password == "" {
		s.writeError(w, r, callbridge.Errorf(callbridge.EInvalid, "username and password are required"))
		return
	}
	if len(req.Username) > 256 || len(req.Password) > 1024 {
		s.writeError(w, r, callbridge.Errorf(callbridge.EInvalid, "username or password is too long"))
		return
	}
	users, err := s.cfg.Store.FindUsers(r.Context(), req.Username)
	if err != nil {
		s.writeError(w, r, fmt.Errorf("find users %q: %w", req.Username, err))
		return
	}
	if req.Tenant != "" {
		kept := users[:0:0]
		for _, u := range users {
			if string(u.Tenant) == req.Tenant {
				kept = append(kept, u)
			}
		}
		users = kept
	}

	var matched []callbridge.User
	if len(users) == 0 {
		_ = bcrypt.CompareHashAndPassword(s.dummyHash, []byte(req.Password))
	}
	for _, u := range users {
		hash := []byte(u.PasswordHash)
		if len(hash) == 0 {
			hash = s.dummyHash // a user without a password cannot log in, but costs the same
		}
		if bcrypt.CompareHashAndPassword(hash, []byte(req.Password)) == nil && len(u.PasswordHash) > 0 {
			matched = append(matched, u)
		}
	}
	switch {
	case len(matched) == 0:
		s.log.Info("login failed", "username", req.Username, "tenant", req.Tenant, "remote", r.RemoteAddr)
		s.writeError(w, r, callbridge.Errorf(callbridge.EUnauthorized, msgBadLogin))
		return
	case len(users) > 1:
		s.writeError(w, r, callbridge.Errorf(callbridge.EInvalid,
			"user %q exists in several tenants; give \"tenant\" to choose one", req.Username))
		return
	}
	u := matched[0]
	if !validRole(u.Role) {
		s.log.Warn("login refused: user has no valid role", "tenant", u.Tenant, "username", u.Username, "role", u.Role)
		s.writeError(w, r, callbridge.Errorf(callbridge.EForbidden, "this account has no role that may log in"))
		return
	}
	id := identity{Tenant: u.Tenant, Username: u.Username, Role: u.Role}
	tok, exp, err := s.issueToken(id)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.log.Info("login", "tenant", u.Tenant, "username", u.Username, "role", u.Role)
	writeJSON(w, nethttp.StatusOK, loginResponse{
		Token: tok, ExpiresAt: exp, Tenant: u.Tenant, Username: u.Username, Role: u.Role,
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
