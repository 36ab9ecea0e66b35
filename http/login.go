package http

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"math"
	nethttp "net/http"
	"strconv"
	"strings"
	"time"

	"github.com/callbridge/callbridge"
	"golang.org/x/crypto/bcrypt"
)

// msgBadLogin is the one message for a wrong password and an unknown user, so that a login
// attempt does not tell which user names exist.
const msgBadLogin = "invalid username or password"

// refreshReuseGrace is how long after a refresh the refresh token it replaced is refused
// without consequence (another tab of the same browser refreshed first; the client should
// take the newest from its storage). Later, presenting a replaced refresh token means that
// two parties hold the token: the session is revoked (OAuth 2.0 Security BCP, RFC 9700
// §4.14.2, refresh token rotation with reuse detection).
const refreshReuseGrace = time.Minute

// pruneEvery is how often a login deletes long-expired sessions from the store.
const pruneEvery = time.Hour

// loginRequest is the body of POST /v1/login.
type loginRequest struct {
	Username string `json:"username"`
	Password string `json:"password"`
	// Tenant chooses among users of the same name in several tenants.
	Tenant string `json:"tenant,omitempty"`
}

// loginResponse is the answer to a successful login or refresh. Times are RFC 3339, UTC;
// ExpiresIn is the access token's lifetime in seconds from now, so that clients need not
// trust their own clock.
type loginResponse struct {
	Token            string              `json:"token" doc:"The access token: Authorization: Bearer …, or ?access_token=… on the WebSocket."`
	ExpiresAt        time.Time           `json:"expires_at" doc:"When the access token expires (Config TokenTTL after it was issued, 15 min by default)."`
	ExpiresIn        int                 `json:"expires_in" doc:"Seconds until the access token expires."`
	RefreshToken     string              `json:"refresh_token" doc:"Gets a new access token from POST /v1/refresh; it is replaced by every refresh."`
	RefreshExpiresAt time.Time           `json:"refresh_expires_at" doc:"When the session ends unless refreshed before."`
	Tenant           callbridge.TenantID `json:"tenant"`
	Username         string              `json:"username"`
	Role             callbridge.Role     `json:"role"`
}

// refreshRequest is the body of POST /v1/refresh and, optionally, of POST /v1/logout.
type refreshRequest struct {
	RefreshToken string `json:"refresh_token"`
}

// handleLogin serves POST /v1/login: it checks the password with bcrypt on the hashing pool
// and starts a session.
//
//   - missing username or password, bad JSON: 400 invalid
//   - too many failed logins for this user name or from this address: 429 rate_limited with
//     Retry-After (seconds), before any password is checked
//   - the hashing pool's queue is full: 503 unavailable with Retry-After: 1
//   - unknown user, wrong password, or a tenant without that user: 401 unauthorized with the
//     same message, after the same bcrypt work (a dummy hash of the same cost stands in for a
//     missing user)
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

	now := s.now()
	addr := clientKey(r.RemoteAddr)
	waitUser, okUser := s.perUser.admit(req.Username, now)
	waitAddr, okAddr := s.perAddr.admit(addr, now)
	if !okUser || !okAddr {
		if okUser {
			s.perUser.done(req.Username, now, false, false)
		}
		if okAddr {
			s.perAddr.done(addr, now, false, false)
		}
		wait := max(waitUser, waitAddr)
		s.log.Info("login rate limited", "username", req.Username, "remote", r.RemoteAddr, "retry_after", wait)
		w.Header().Set("Retry-After", retryAfter(wait))
		s.writeError(w, r, callbridge.Errorf(callbridge.ERateLimited,
			"too many failed logins; try again in %s", retryAfter(wait)+" s"))
		return
	}
	failed := true
	defer func() {
		end := s.now()
		s.perUser.done(req.Username, end, failed, !failed)
		s.perAddr.done(addr, end, failed, false)
	}()

	users, err := s.cfg.Store.FindUsers(r.Context(), req.Username)
	if err != nil {
		failed = false // not the caller's fault
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

	var check passwordCheck
	if err := s.hashes.do(r.Context(), func() { check = s.checkPassword(users, req.Password) }); err != nil {
		failed = false
		if callbridge.ErrorCode(err) == callbridge.EUnavailable {
			w.Header().Set("Retry-After", "1")
		}
		s.writeError(w, r, err)
		return
	}
	switch {
	case len(check.matched) == 0:
		s.log.Info("login failed", "username", req.Username, "tenant", req.Tenant, "remote", r.RemoteAddr)
		s.writeError(w, r, callbridge.Errorf(callbridge.EUnauthorized, msgBadLogin))
		return
	case len(users) > 1:
		failed = false
		s.writeError(w, r, callbridge.Errorf(callbridge.EInvalid,
			"user %q exists in several tenants; give \"tenant\" to choose one", req.Username))
		return
	}
	failed = false
	u := check.matched[0]
	if check.rehash != "" {
		if err := s.cfg.Sessions.RehashPassword(r.Context(), u.Tenant, u.Username, u.PasswordHash, check.rehash); err != nil {
			s.log.Warn("cannot store the re-hashed password", "tenant", u.Tenant, "username", u.Username, "err", err)
		} else {
			s.log.Info("password re-hashed at the store's bcrypt cost", "tenant", u.Tenant, "username", u.Username, "cost", s.cfg.BcryptCost)
		}
	}
	if !validRole(u.Role) {
		s.log.Warn("login refused: user has no valid role", "tenant", u.Tenant, "username", u.Username, "role", u.Role)
		s.writeError(w, r, callbridge.Errorf(callbridge.EForbidden, "this account has no role that may log in"))
		return
	}
	s.pruneSessions(r.Context())
	res, err := s.startSession(r.Context(), identity{Tenant: u.Tenant, Username: u.Username, Role: u.Role})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.log.Info("login", "tenant", u.Tenant, "username", u.Username, "role", u.Role)
	writeJSON(w, nethttp.StatusOK, res)
}

// retryAfter is d in whole seconds, at least 1, for a Retry-After header (RFC 9110 §10.2.3).
func retryAfter(d time.Duration) string {
	return strconv.Itoa(max(1, int(math.Ceil(d.Seconds()))))
}

// passwordCheck is what checkPassword found: the users whose hash the password matches, and
// for a single match whose hash has another cost than Config.BcryptCost, the new hash to store.
type passwordCheck struct {
	matched []callbridge.User
	rehash  string
}

// checkPassword compares password with the hash of every candidate, or with the dummy hash
// when there is none, so that an unknown user costs one bcrypt check at Config.BcryptCost like
// a known one. A stored hash of a lower cost is followed by a check against the dummy hash, so
// that it is never cheaper; a matching hash of another cost is re-hashed at the configured
// cost. Runs on the hashing pool.
func (s *Server) checkPassword(users []callbridge.User, password string) passwordCheck {
	var out passwordCheck
	pw := []byte(password)
	if len(users) == 0 {
		_ = s.compare(s.dummyHash, pw)
		return out
	}
	for _, u := range users {
		hash := []byte(u.PasswordHash)
		cost, err := bcrypt.Cost(hash)
		if err != nil {
			// No usable password (none stored, or not bcrypt): this user cannot log in, but costs the same.
			_ = s.compare(s.dummyHash, pw)
			continue
		}
		ok := s.compare(hash, pw) == nil
		if cost < s.cfg.BcryptCost {
			_ = s.compare(s.dummyHash, pw)
		}
		if ok {
			out.matched = append(out.matched, u)
		}
	}
	if len(out.matched) == 1 {
		if cost, _ := bcrypt.Cost([]byte(out.matched[0].PasswordHash)); cost != s.cfg.BcryptCost {
			if h, err := bcrypt.GenerateFromPassword(pw, s.cfg.BcryptCost); err == nil {
				out.rehash = string(h)
			}
		}
	}
	return out
}

// startSession creates a session for id and returns its first tokens.
func (s *Server) startSession(ctx context.Context, id identity) (loginResponse, error) {
	now := s.now().UTC()
	sid := randomID(16)
	secret := randomID(32)
	sess := callbridge.Session{
		ID: sid, Tenant: id.Tenant, Username: id.Username,
		RefreshHash: hashSecret(secret),
		CreatedAt:   now, RotatedAt: now,
		ExpiresAt: s.sessionEnd(now, now),
	}
	if err := s.cfg.Sessions.CreateSession(ctx, sess); err != nil {
		if callbridge.ErrorCode(err) == callbridge.ENotFound {
			return loginResponse{}, callbridge.Errorf(callbridge.EUnauthorized, msgBadLogin) // removed meanwhile
		}
		return loginResponse{}, fmt.Errorf("create session: %w", err)
	}
	return s.tokens(id, sess, secret)
}

// sessionEnd is when a session created at created and refreshed at now ends: Config.RefreshTTL
// after now, but not later than Config.SessionMaxAge after created. Whole seconds.
func (s *Server) sessionEnd(created, now time.Time) time.Time {
	end := now.Add(s.cfg.RefreshTTL)
	if limit := created.Add(s.cfg.SessionMaxAge); limit.Before(end) {
		end = limit
	}
	return end.Truncate(time.Second)
}

// tokens issues an access token for id in sess and pairs it with the refresh token
// "<sid>.<secret>".
func (s *Server) tokens(id identity, sess callbridge.Session, secret string) (loginResponse, error) {
	tok, exp, err := s.issueToken(id, sess.ID, sess.ExpiresAt)
	if err != nil {
		return loginResponse{}, err
	}
	return loginResponse{
		Token: tok, ExpiresAt: exp, ExpiresIn: int(exp.Sub(s.now()).Round(time.Second).Seconds()),
		RefreshToken: sess.ID + "." + secret, RefreshExpiresAt: sess.ExpiresAt.UTC(),
		Tenant: id.Tenant, Username: id.Username, Role: id.Role,
	}, nil
}

// handleRefresh serves POST /v1/refresh {"refresh_token"}: it rotates the refresh token and
// returns a new access token, with the user's current role. The answer has the shape of
// login's. Errors: 400 invalid (bad body); 401 unauthorized when the refresh token is not
// valid: unknown, expired, revoked, its user removed, or already replaced — a replaced token
// within refreshReuseGrace of its replacement is only refused, a later one revokes the
// session and closes its sockets with CloseSessionEnded.
func (s *Server) handleRefresh(w nethttp.ResponseWriter, r *nethttp.Request) {
	var req refreshRequest
	if err := decodeJSON(w, r, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	sess, hash, err := s.refreshSession(r.Context(), req.RefreshToken)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	now := s.now().UTC()
	switch {
	case constEqual(hash, sess.RefreshHash):
	case constEqual(hash, sess.PreviousHash) && now.Sub(sess.RotatedAt) <= refreshReuseGrace:
		s.writeError(w, r, callbridge.Errorf(callbridge.EUnauthorized,
			"this refresh token was just replaced by another refresh; use the newest one"))
		return
	case constEqual(hash, sess.PreviousHash):
		s.log.Warn("a replaced refresh token was used again; session revoked", "tenant", sess.Tenant, "user", sess.Username, "remote", r.RemoteAddr)
		s.endSession(r.Context(), sess.ID, "refresh token reuse")
		s.writeError(w, r, errSessionEnded)
		return
	default:
		s.writeError(w, r, errBadRefresh)
		return
	}

	users, err := s.cfg.Store.FindUsers(r.Context(), sess.Username)
	if err != nil {
		s.writeError(w, r, fmt.Errorf("find users %q: %w", sess.Username, err))
		return
	}
	var u *callbridge.User
	for i := range users {
		if users[i].Tenant == sess.Tenant {
			u = &users[i]
		}
	}
	if u == nil || !validRole(u.Role) {
		s.writeError(w, r, errSessionEnded)
		return
	}
	secret := randomID(32)
	next := sess
	next.PreviousHash, next.RefreshHash = sess.RefreshHash, hashSecret(secret)
	next.RotatedAt, next.ExpiresAt = now, s.sessionEnd(sess.CreatedAt, now)
	switch err := s.cfg.Sessions.RotateSession(r.Context(), sess.ID, sess.RefreshHash, next.RefreshHash, now, next.ExpiresAt); {
	case callbridge.ErrorCode(err) == callbridge.EConflict:
		s.writeError(w, r, callbridge.Errorf(callbridge.EUnauthorized,
			"this refresh token was just replaced by another refresh; use the newest one"))
		return
	case callbridge.ErrorCode(err) == callbridge.ENotFound:
		s.writeError(w, r, errSessionEnded)
		return
	case err != nil:
		s.writeError(w, r, fmt.Errorf("rotate session: %w", err))
		return
	}
	res, err := s.tokens(identity{Tenant: u.Tenant, Username: u.Username, Role: u.Role}, next, secret)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, nethttp.StatusOK, res)
}

// errBadRefresh is the answer for a refresh token that names no live session or does not
// match it.
var errBadRefresh = callbridge.Errorf(callbridge.EUnauthorized, "refresh token is not valid: log in again")

// refreshSession finds the live session of a refresh token "<sid>.<secret>" and returns it
// with the hex SHA-256 of the secret. Errors: EUnauthorized; EUnavailable when the store fails.
func (s *Server) refreshSession(ctx context.Context, token string) (callbridge.Session, string, error) {
	sid, secret, ok := strings.Cut(token, ".")
	if !ok || sid == "" || secret == "" || len(token) > 200 {
		return callbridge.Session{}, "", errBadRefresh
	}
	sess, err := s.cfg.Sessions.Session(ctx, sid)
	switch {
	case callbridge.ErrorCode(err) == callbridge.ENotFound:
		return callbridge.Session{}, "", errBadRefresh
	case err != nil:
		s.log.Error("cannot read a session", "err", err)
		return callbridge.Session{}, "", callbridge.Errorf(callbridge.EUnavailable, "sessions cannot be checked right now; try again")
	case !sess.Live(s.now()):
		return callbridge.Session{}, "", errSessionEnded
	}
	return sess, hashSecret(secret), nil
}

// handleLogout serves POST /v1/logout: it revokes the session of the bearer access token, or
// of the refresh token in the optional body {"refresh_token"} (which works after the access
// token expired), and closes that session's WebSockets with CloseSessionEnded. 204 on
// success, also for a session already ended. Errors: 401 when neither token is valid.
func (s *Server) handleLogout(w nethttp.ResponseWriter, r *nethttp.Request) {
	var req refreshRequest
	if r.ContentLength != 0 {
		if err := decodeJSON(w, r, &req); err != nil {
			s.writeError(w, r, err)
			return
		}
	}
	var sid string
	if req.RefreshToken != "" {
		sess, hash, err := s.refreshSession(r.Context(), req.RefreshToken)
		switch {
		case err == errSessionEnded:
			w.WriteHeader(nethttp.StatusNoContent)
			return
		case err != nil:
			s.writeError(w, r, err)
			return
		case !constEqual(hash, sess.RefreshHash) && !constEqual(hash, sess.PreviousHash):
			s.writeError(w, r, errBadRefresh)
			return
		}
		sid = sess.ID
	} else {
		id, err := s.authenticate(r, false)
		if err == errSessionEnded {
			w.WriteHeader(nethttp.StatusNoContent)
			return
		}
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		sid = id.Session
	}
	if err := s.endSession(r.Context(), sid, "logged out"); err != nil {
		s.writeError(w, r, err)
		return
	}
	w.WriteHeader(nethttp.StatusNoContent)
}

// endSession revokes session sid in the store, then closes its WebSockets (a socket being
// set up meanwhile checks its session again once registered, see handleWS).
func (s *Server) endSession(ctx context.Context, sid, why string) error {
	if err := s.cfg.Sessions.RevokeSession(ctx, sid, s.now().UTC()); err != nil && callbridge.ErrorCode(err) != callbridge.ENotFound {
		return fmt.Errorf("revoke session: %w", err)
	}
	n := s.closeSessions(func(id identity) bool { return id.Session == sid }, CloseSessionEnded, "session ended")
	s.log.Info("session ended", "why", why, "websockets_closed", n)
	return nil
}

// pruneSessions deletes, at most once per pruneEvery, the sessions that expired a day ago.
func (s *Server) pruneSessions(ctx context.Context) {
	now := s.now()
	last := s.lastPrune.Load()
	if now.UnixNano()-last < int64(pruneEvery) || !s.lastPrune.CompareAndSwap(last, now.UnixNano()) {
		return
	}
	if n, err := s.cfg.Sessions.PruneSessions(ctx, now.Add(-24*time.Hour)); err != nil {
		s.log.Warn("cannot prune expired sessions", "err", err)
	} else if n > 0 {
		s.log.Info("expired sessions pruned", "sessions", n)
	}
}

// randomID returns n random bytes in base64url without padding.
func randomID(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24+)
	return base64.RawURLEncoding.EncodeToString(b)
}

// hashSecret is the hex SHA-256 of a refresh token's secret, as the store keeps it.
func hashSecret(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

func constEqual(a, b string) bool {
	return a != "" && subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}
