package http_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	cbhttp "github.com/callbridge/callbridge/http"
	"github.com/golang-jwt/jwt/v5"
)

func TestLoginGivesAWorkingToken(t *testing.T) {
	t.Parallel()
	h := newServer(t)
	res := h.postLogin(t, `{"username":"alice","password":"alice-pw"}`)
	if res.status != 200 {
		t.Fatalf("status %d: %s", res.status, res.body)
	}
	m := res.json(t)
	if m["tenant"] != "acme" || m["username"] != "alice" || m["role"] != "agent" {
		t.Errorf("login = %v, want tenant acme, username alice, role agent", m)
	}
	if want := t0.Add(cbhttp.DefaultTokenTTL).Format(time.RFC3339); m["expires_at"] != want {
		t.Errorf("expires_at = %v, want %s", m["expires_at"], want)
	}
	tok, _ := m["token"].(string)
	if strings.Count(tok, ".") != 2 {
		t.Fatalf("token %q is not a JWT", tok)
	}
	me := h.do(t, "GET", "/v1/me", tok, nil)
	if me.status != 200 {
		t.Fatalf("GET /v1/me with the token: %d %s", me.status, me.body)
	}
}

func TestLoginRefusesWithoutTellingWhichPartWasWrong(t *testing.T) {
	t.Parallel()
	h := newServer(t)
	wrongPassword := h.postLogin(t, `{"username":"alice","password":"nope"}`)
	unknownUser := h.postLogin(t, `{"username":"mallory","password":"nope"}`)
	wrongTenant := h.postLogin(t, `{"username":"alice","password":"alice-pw","tenant":"globex"}`)
	for name, res := range map[string]response{"wrong password": wrongPassword, "unknown user": unknownUser, "wrong tenant": wrongTenant} {
		t.Run(name, func(t *testing.T) {
			res.wantError(t, http.StatusUnauthorized, "unauthorized", "invalid username or password")
		})
	}
	if string(wrongPassword.body) != string(unknownUser.body) {
		t.Errorf("wrong password body %s differs from unknown user body %s", wrongPassword.body, unknownUser.body)
	}
}

func TestLoginAsksForTheTenantWhenTheNameIsAmbiguous(t *testing.T) {
	t.Parallel()
	h := newServer(t)
	h.postLogin(t, `{"username":"pat","password":"pat-pw"}`).
		wantError(t, http.StatusBadRequest, "invalid", `"tenant"`)
	// A wrong password does not reveal that the name exists twice.
	h.postLogin(t, `{"username":"pat","password":"guess"}`).
		wantError(t, http.StatusUnauthorized, "unauthorized", "invalid username or password")

	res := h.postLogin(t, `{"username":"pat","password":"pat-pw","tenant":"globex"}`)
	if res.status != 200 {
		t.Fatalf("with tenant: %d %s", res.status, res.body)
	}
	if m := res.json(t); m["tenant"] != "globex" {
		t.Errorf("tenant = %v, want globex", m["tenant"])
	}
}

func TestLoginRejectsBadBodies(t *testing.T) {
	t.Parallel()
	h := newServer(t)
	tests := []struct {
		name, body, msg string
	}{
		{"unknown field", `{"username":"alice","password":"alice-pw","admin":true}`, `unknown field "admin"`},
		{"not JSON", `username=alice`, "not valid JSON"},
		{"wrong type", `{"username":"alice","password":42}`, `"password" must be a string`},
		{"missing password", `{"username":"alice"}`, "username and password are required"},
		{"two objects", `{"username":"alice","password":"alice-pw"}{}`, "single JSON object"},
		{"empty", ``, "empty"},
		{"too large", `{"username":"` + strings.Repeat("a", 70<<10) + `","password":"x"}`, "larger than 65536 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h.postLogin(t, tt.body).wantError(t, http.StatusBadRequest, "invalid", tt.msg)
		})
	}
}

func TestLoginStoreFailureIsAnInternalError(t *testing.T) {
	t.Parallel()
	h := newServer(t)
	h.store.setErr(errBoom)
	res := h.postLogin(t, `{"username":"alice","password":"alice-pw"}`)
	res.wantError(t, http.StatusInternalServerError, "internal", "internal error")
	if strings.Contains(string(res.body), "10.0.0.7") {
		t.Errorf("internal details leaked: %s", res.body)
	}
}

func TestTokenIsRequiredAndChecked(t *testing.T) {
	t.Parallel()
	h := newServer(t)
	good := h.token(t, "alice")
	var issued jwt.MapClaims
	if _, _, err := jwt.NewParser().ParseUnverified(good, &issued); err != nil {
		t.Fatal(err)
	}
	claims := jwt.MapClaims{"tenant": "acme", "role": "agent", "sub": "alice", "iss": "callbridge", "exp": t0.Add(time.Hour).Unix(),
		"sid": issued["sid"]}
	sign := func(m jwt.SigningMethod, key any) string {
		s, err := jwt.NewWithClaims(m, claims).SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	// A token made by hand with the right key and alg, in a live session, is accepted: the
	// claims are as documented.
	if res := h.do(t, "GET", "/v1/me", sign(jwt.SigningMethodHS256, testSecret), nil); res.status != 200 {
		t.Fatalf("hand-made HS256 token: %d %s", res.status, res.body)
	}
	if issued["jti"] == "" || issued["jti"] == nil {
		t.Errorf("issued token has no jti: %v", issued)
	}
	withClaims := func(change func(jwt.MapClaims)) string {
		c := jwt.MapClaims{}
		for k, v := range claims {
			c[k] = v
		}
		change(c)
		s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString(testSecret)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}

	tests := []struct {
		name, token, msg string
	}{
		{"no token", "", "token is required"},
		{"garbage", "not-a-token", "invalid token"},
		{"tampered", good[:len(good)-4] + "AAAA", "invalid token"},
		{"other key", sign(jwt.SigningMethodHS256, []byte("another-key-another-key-another-key")), "invalid token"},
		{"HS384", sign(jwt.SigningMethodHS384, testSecret), "invalid token"},
		{"alg none", sign(jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType), "invalid token"},
		{"no session", withClaims(func(c jwt.MapClaims) { delete(c, "sid") }), "invalid token"},
		{"unknown session", withClaims(func(c jwt.MapClaims) { c["sid"] = "made-up" }), "session ended"},
		{"another user's session", withClaims(func(c jwt.MapClaims) { c["sub"] = "bob" }), "session ended"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := h.do(t, "GET", "/v1/me", tt.token, nil)
			res.wantError(t, http.StatusUnauthorized, "unauthorized", tt.msg)
			if !strings.HasPrefix(res.header.Get("WWW-Authenticate"), "Bearer") {
				t.Errorf("WWW-Authenticate = %q", res.header.Get("WWW-Authenticate"))
			}
		})
	}

	t.Run("query token only for the WebSocket", func(t *testing.T) {
		h.do(t, "GET", "/v1/me?access_token="+good, "", nil).wantError(t, http.StatusUnauthorized, "unauthorized", "token is required")
	})
	t.Run("websocket without token", func(t *testing.T) {
		_, res, err := h.dialWS(t, "", "", nil)
		if err == nil || res == nil || res.StatusCode != http.StatusUnauthorized {
			t.Fatalf("dial without token: err %v, response %v; want 401", err, res)
		}
	})
	t.Run("websocket with garbage query token", func(t *testing.T) {
		_, res, err := h.dialWS(t, "", "access_token=garbage", nil)
		if err == nil || res == nil || res.StatusCode != http.StatusUnauthorized {
			t.Fatalf("dial with a bad token: err %v, response %v; want 401", err, res)
		}
	})
}

func TestExpiredTokenIsRefused(t *testing.T) {
	t.Parallel()
	h := newServer(t)
	tok := h.token(t, "alice")
	h.clock.Advance(cbhttp.DefaultTokenTTL + time.Second)
	h.do(t, "GET", "/v1/me", tok, nil).wantError(t, http.StatusUnauthorized, "unauthorized", "token expired")
	_, res, err := h.dialWS(t, "", "access_token="+tok, nil)
	if err == nil || res == nil || res.StatusCode != http.StatusUnauthorized {
		t.Fatalf("dial with an expired token: err %v, response %v; want 401", err, res)
	}
}

func TestMe(t *testing.T) {
	t.Parallel()
	h := newServer(t)
	agent := h.do(t, "GET", "/v1/me", h.token(t, "alice"), nil)
	if agent.status != 200 {
		t.Fatalf("agent: %d %s", agent.status, agent.body)
	}
	m := agent.json(t)
	a, _ := m["agent"].(map[string]any)
	if a["agent"] != "alice" || a["tenant"] != "acme" {
		t.Errorf("agent /v1/me = %s, want alice's snapshot", agent.body)
	}
	if calls, ok := m["calls"].([]any); !ok || len(calls) != 0 {
		t.Errorf("calls = %v, want an empty array", m["calls"])
	}

	sup := h.do(t, "GET", "/v1/me", h.token(t, "sam"), nil)
	if sup.status != 200 {
		t.Fatalf("supervisor: %d %s", sup.status, sup.body)
	}
	if m := sup.json(t); m["username"] != "sam" || m["role"] != "supervisor" || m["tenant"] != "acme" {
		t.Errorf("supervisor /v1/me = %s", sup.body)
	}
}
