package http_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	cbhttp "github.com/callbridge/callbridge/http"
)

// tokens is a login or refresh answer.
type tokens struct {
	Token, RefreshToken string
	ExpiresAt           time.Time
	ExpiresIn           float64
	RefreshExpiresAt    time.Time
}

func tokensOf(t *testing.T, res response) tokens {
	t.Helper()
	if res.status != 200 {
		t.Fatalf("status %d: %s", res.status, res.body)
	}
	m := res.json(t)
	var out tokens
	out.Token, _ = m["token"].(string)
	out.RefreshToken, _ = m["refresh_token"].(string)
	out.ExpiresIn, _ = m["expires_in"].(float64)
	for k, dst := range map[string]*time.Time{"expires_at": &out.ExpiresAt, "refresh_expires_at": &out.RefreshExpiresAt} {
		s, _ := m[k].(string)
		ts, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatalf("%s = %v: %v", k, m[k], err)
		}
		*dst = ts
	}
	if out.Token == "" || out.RefreshToken == "" {
		t.Fatalf("tokens missing in %s", res.body)
	}
	return out
}

func (h *harness) login(t *testing.T, user string) tokens {
	t.Helper()
	return tokensOf(t, h.postLogin(t, loginBody(user, user+"-pw")))
}

func (h *harness) refresh(t *testing.T, refreshToken string) response {
	t.Helper()
	return h.do(t, "POST", "/v1/refresh", "", strings.NewReader(`{"refresh_token":"`+refreshToken+`"}`))
}

// TestAccessTokensAreShortLivedAndRefreshRotates (issue 10, item 3): an access token lasts
// 15 minutes; the refresh token gets a new access token and a new refresh token, keeps the
// session going past the access token's expiry, and slides the session's end.
func TestAccessTokensAreShortLivedAndRefreshRotates(t *testing.T) {
	t.Parallel()
	h := newServer(t)
	first := h.login(t, "alice")
	if !first.ExpiresAt.Equal(t0.Add(15*time.Minute)) || first.ExpiresIn != 900 {
		t.Errorf("access token expires at %v (in %v s), want %v (900 s)", first.ExpiresAt, first.ExpiresIn, t0.Add(15*time.Minute))
	}
	if !first.RefreshExpiresAt.Equal(t0.Add(cbhttp.DefaultRefreshTTL)) {
		t.Errorf("session ends at %v, want %v", first.RefreshExpiresAt, t0.Add(cbhttp.DefaultRefreshTTL))
	}

	// A shift: refresh every 12 minutes for 14 hours, longer than one refresh TTL.
	cur := first
	for i := range 70 {
		h.clock.Advance(12 * time.Minute)
		next := tokensOf(t, h.refresh(t, cur.RefreshToken))
		if next.RefreshToken == cur.RefreshToken || next.Token == cur.Token {
			t.Fatalf("refresh %d did not rotate the tokens", i)
		}
		if res := h.do(t, "GET", "/v1/me", next.Token, nil); res.status != 200 {
			t.Fatalf("refresh %d: new token refused: %d %s", i, res.status, res.body)
		}
		cur = next
	}
	if res := h.do(t, "GET", "/v1/me", first.Token, nil); res.status != 401 {
		t.Errorf("the first access token still works after 14 h: %d", res.status)
	}

	// Without refreshes the session ends after the refresh TTL.
	h.clock.Advance(cbhttp.DefaultRefreshTTL)
	h.refresh(t, cur.RefreshToken).wantError(t, http.StatusUnauthorized, "unauthorized", "session ended")
}

// TestRefreshTokenReuseRevokesTheSession (issue 10, item 3): a replaced refresh token is
// refused; shortly after its replacement (another tab refreshed first) that is all, later it
// means the token was copied, and the session is revoked.
func TestRefreshTokenReuseRevokesTheSession(t *testing.T) {
	t.Parallel()
	h := newServer(t)
	old := h.login(t, "alice")
	cur := tokensOf(t, h.refresh(t, old.RefreshToken))
	h.refresh(t, old.RefreshToken).wantError(t, http.StatusUnauthorized, "unauthorized", "use the newest one")
	if res := h.do(t, "GET", "/v1/me", cur.Token, nil); res.status != 200 {
		t.Fatalf("the session ended on a stale refresh within the grace: %d %s", res.status, res.body)
	}
	h.refresh(t, "garbage").wantError(t, http.StatusUnauthorized, "unauthorized", "refresh token is not valid")
	sid, _, _ := strings.Cut(cur.RefreshToken, ".")
	h.refresh(t, sid+".guessed").wantError(t, http.StatusUnauthorized, "unauthorized", "refresh token is not valid")

	c := h.connect(t, cur.Token, "")
	c.next()
	h.clock.Advance(2 * time.Minute)
	h.refresh(t, old.RefreshToken).wantError(t, http.StatusUnauthorized, "unauthorized", "session ended")
	wantClosed(t, c, cbhttp.CloseSessionEnded)
	h.do(t, "GET", "/v1/me", cur.Token, nil).wantError(t, http.StatusUnauthorized, "unauthorized", "session ended")
	h.refresh(t, cur.RefreshToken).wantError(t, http.StatusUnauthorized, "unauthorized", "session ended")
}

func wantClosed(t *testing.T, c *wsClient, code websocket.StatusCode) {
	t.Helper()
	var ce websocket.CloseError
	if err := c.closeStatus(); !errors.As(err, &ce) || ce.Code != code {
		t.Fatalf("connection ended with %v, want close %d", err, code)
	}
}

// TestLogoutRevokesTheSessionAndClosesItsSockets (issue 10, item 3): POST /v1/logout revokes
// the session server-side: its access and refresh tokens stop working, its WebSockets close
// with 4002, and another session of the same user goes on.
func TestLogoutRevokesTheSessionAndClosesItsSockets(t *testing.T) {
	t.Parallel()
	h := newServer(t)
	a, b := h.login(t, "alice"), h.login(t, "alice")
	a1, a2, b1 := h.connect(t, a.Token, ""), h.connect(t, a.Token, ""), h.connect(t, b.Token, "")
	for _, c := range []*wsClient{a1, a2, b1} {
		c.next() // the snapshot
	}

	if res := h.do(t, "POST", "/v1/logout", a.Token, nil); res.status != http.StatusNoContent {
		t.Fatalf("logout: %d %s", res.status, res.body)
	}
	wantClosed(t, a1, cbhttp.CloseSessionEnded)
	wantClosed(t, a2, cbhttp.CloseSessionEnded)
	b1.drain() // a round trip on the other session's socket: it is still open
	h.do(t, "GET", "/v1/me", a.Token, nil).wantError(t, http.StatusUnauthorized, "unauthorized", "session ended")
	h.refresh(t, a.RefreshToken).wantError(t, http.StatusUnauthorized, "unauthorized", "session ended")
	if _, res, err := h.dialWS(t, a.Token, "", nil); err == nil || res == nil || res.StatusCode != http.StatusUnauthorized {
		t.Fatalf("dial with a logged-out token: %v %v, want 401", err, res)
	}
	if res := h.do(t, "GET", "/v1/me", b.Token, nil); res.status != 200 {
		t.Fatalf("the other session: %d %s", res.status, res.body)
	}
	// A second logout of the same session is no error.
	if res := h.do(t, "POST", "/v1/logout", a.Token, nil); res.status != http.StatusNoContent {
		t.Errorf("second logout: %d %s", res.status, res.body)
	}

	// After its access token expired, a session is ended with its refresh token.
	h.clock.Advance(time.Hour)
	h.do(t, "POST", "/v1/logout", b.Token, nil).wantError(t, http.StatusUnauthorized, "unauthorized", "token expired")
	res := h.do(t, "POST", "/v1/logout", "", strings.NewReader(`{"refresh_token":"`+b.RefreshToken+`"}`))
	if res.status != http.StatusNoContent {
		t.Fatalf("logout with the refresh token: %d %s", res.status, res.body)
	}
	h.refresh(t, b.RefreshToken).wantError(t, http.StatusUnauthorized, "unauthorized", "session ended")
	h.do(t, "POST", "/v1/logout", "", strings.NewReader(`{"refresh_token":"nope.nope"}`)).
		wantError(t, http.StatusUnauthorized, "unauthorized", "refresh token is not valid")
	if n := h.store.liveSessions(h.clock.Now()); n != 0 {
		t.Errorf("%d sessions still live", n)
	}
}

// TestLogoutSurvivesARestart (issue 10, item 3): revocation is kept in the session store, so
// a new server on the same store refuses a logged-out token and honours the others.
func TestLogoutSurvivesARestart(t *testing.T) {
	t.Parallel()
	h := newServer(t)
	out, in := h.login(t, "alice"), h.login(t, "bob")
	if res := h.do(t, "POST", "/v1/logout", out.Token, nil); res.status != http.StatusNoContent {
		t.Fatalf("logout: %d %s", res.status, res.body)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := h.srv.Close(ctx); err != nil {
		t.Fatal(err)
	}
	h2 := newServer(t, func(c *cbhttp.Config) { c.Store, c.Sessions, c.Now = h.store, h.store, h.clock.Now })
	h2.do(t, "GET", "/v1/me", out.Token, nil).wantError(t, http.StatusUnauthorized, "unauthorized", "session ended")
	if res := h2.do(t, "GET", "/v1/me", in.Token, nil); res.status != 200 {
		t.Fatalf("a live session after the restart: %d %s", res.status, res.body)
	}
	if res := h2.refresh(t, in.RefreshToken); res.status != 200 {
		t.Fatalf("refresh after the restart: %d %s", res.status, res.body)
	}
}

// TestRemovedUserLosesLoginAndTokens (issue 10, item 3): once a re-provisioning removes a
// user (and the store their sessions), their password, access token and refresh token are
// refused.
func TestRemovedUserLosesLoginAndTokens(t *testing.T) {
	t.Parallel()
	h := newServer(t)
	tok := h.login(t, "alice")
	h.store.removeUser("acme", "alice")
	h.do(t, "GET", "/v1/me", tok.Token, nil).wantError(t, http.StatusUnauthorized, "unauthorized", "session ended")
	h.refresh(t, tok.RefreshToken).wantError(t, http.StatusUnauthorized, "unauthorized", "refresh token is not valid")
	h.postLogin(t, loginBody("alice", "alice-pw")).wantError(t, http.StatusUnauthorized, "unauthorized", "invalid username or password")
	if _, res, err := h.dialWS(t, tok.Token, "", nil); err == nil || res == nil || res.StatusCode != http.StatusUnauthorized {
		t.Fatalf("dial for a removed user: %v %v, want 401", err, res)
	}
}
