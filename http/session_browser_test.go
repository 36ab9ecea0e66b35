package http_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/callbridge/callbridge"
	cbhttp "github.com/callbridge/callbridge/http"
	"github.com/callbridge/callbridge/internal/testenv"
)

// pageSeqs returns window.seqs, the seqs of the events the SDK delivered, in order.
func pageSeqs(t *testing.T, b *browser) []uint64 {
	t.Helper()
	var out []uint64
	if err := json.Unmarshal(b.eval(`window.seqs`), &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestSDKRefreshMovesTheSocketWithoutLosingEvents (issue 10, item 3): the browser SDK refreshes
// the access token (by itself at three quarters of its lifetime, or when asked), moves its
// link to a new socket resumed after the last seq while the old one finishes the command it
// carries, and delivers every event once and in order, without the link going down.
func TestSDKRefreshMovesTheSocketWithoutLosingEvents(t *testing.T) {
	bin := testenv.RequireChromium(t)
	t.Parallel()
	const ttl = 16 * time.Second // the SDK refreshes 12 s after login
	h := newServer(t, func(c *cbhttp.Config) { c.TokenTTL = ttl })
	held, release := make(chan struct{}), make(chan struct{})
	h.cmd.setDo(func(ctx context.Context, cmd callbridge.Command) (callbridge.CommandResult, error) {
		close(held)
		<-release
		return callbridge.CommandResult{}, nil
	})
	appendEvent := func(n int) {
		h.log.append(t, callEvent("acme", "alice", callbridge.CallID(fmt.Sprintf("C%d", n)), callbridge.EventCallDelivered))
	}

	b := startBrowser(t, bin)
	b.navigate(h.url + "/")
	b.waitFor(`document.readyState === "complete"`)
	b.eval(`(async () => {
		const m = await import("` + h.url + `/sdk/callbridge.js");
		const s = await m.login({ url: "` + h.url + `", username: "alice", password: "alice-pw" });
		window.first = s;
		window.seqs = []; window.statuses = []; window.sessions = [];
		window.c = m.connect({ url: "` + h.url + `", session: s });
		c.on("event", (ev) => seqs.push(ev.seq));
		c.on("status", (st) => statuses.push(st.status));
		c.on("session", (ns) => sessions.push(ns.token));
		return true;
	})()`)
	b.waitFor(`c.status === "open" && c.snapshot !== null`)
	for i := 1; i <= 3; i++ {
		appendEvent(i)
	}
	b.waitFor(`seqs.length === 3`)

	// A command is in flight on the socket when the token is refreshed.
	b.eval(`window.cmd = c.send("set_agent_state", { state: "ready" }).then(() => "ok", (e) => String(e)); true`)
	<-held
	if ok := b.eval(`c.refreshNow()`); string(ok) != "true" {
		t.Fatalf("refreshNow = %s", ok)
	}
	waitFor(t, "the new socket's subscription", func() bool { return h.log.subscribers() == 2 })
	if afters := h.log.subscribedAfter(); afters[len(afters)-1] != 3 {
		t.Errorf("the new socket subscribed after %v, want after seq 3", afters)
	}
	appendEvent(4) // reaches both sockets
	appendEvent(5)
	b.waitFor(`seqs.length >= 5`)
	close(release) // the reply comes back on the old socket, which then closes
	if got := b.evalString(`window.cmd`); got != "ok" {
		t.Fatalf("the command in flight during the refresh: %s", got)
	}
	waitFor(t, "the old socket to close", func() bool { return h.log.subscribers() == 1 })
	appendEvent(6)
	b.waitFor(`seqs.length >= 6`)
	if got := pageSeqs(t, b); !slices.Equal(got, []uint64{1, 2, 3, 4, 5, 6}) {
		t.Fatalf("events delivered: %v, want 1…6 once each", got)
	}
	if st := b.evalString(`statuses.join(",")`); st != "open" {
		t.Errorf("link statuses %q: the refresh took the link down", st)
	}
	if b.evalString(`sessions[0]`) == b.evalString(`first.token`) {
		t.Error("the refresh did not change the token")
	}
	// The new socket carries commands.
	h.cmd.setDo(nil)
	if got := b.evalString(`c.send("set_agent_state", { state: "ready" }).then(() => "ok", (e) => String(e))`); got != "ok" {
		t.Fatalf("command on the new socket: %s", got)
	}

	// Left alone, the SDK refreshes before the access token expires (the server would close
	// the socket with 4001 at expiry).
	b.waitWithin(ttl+testenv.Patience, `sessions.length >= 2`) // the refresh is due within ttl
	appendEvent(7)
	b.waitFor(`seqs.length >= 7`)
	if got := pageSeqs(t, b); !slices.Equal(got, []uint64{1, 2, 3, 4, 5, 6, 7}) {
		t.Fatalf("events delivered: %v, want 1…7 once each", got)
	}
	if st := b.evalString(`statuses.join(",")`); st != "open" {
		t.Logf("link statuses %q (a late timer fell back to 4001, refresh and resume)", st)
	}
}

// TestSignOutEndsTheSessionOnTheServer (issue 10, item 3): the bar's "Sign out" logs out on the
// server, so the token stops working and every socket of the session closes with 4002.
func TestSignOutEndsTheSessionOnTheServer(t *testing.T) {
	bin := testenv.RequireChromium(t)
	t.Parallel()
	h := newServer(t)
	const sr = `document.querySelector("callbridge-bar").shadowRoot`
	b := startBrowser(t, bin)
	b.navigate(h.url + "/")
	b.waitFor(sr + `.querySelector("form[data-form=login]") !== null`)
	b.eval(`(() => {
		const f = ` + sr + `.querySelector("form[data-form=login]");
		for (const [k, v] of [["username", "alice"], ["password", "alice-pw"]]) {
			const el = f.querySelector("input[name=" + k + "]");
			el.value = v; el.dispatchEvent(new Event("input", {bubbles: true}));
		}
		f.requestSubmit();
	})()`)
	b.waitFor(sr + `.querySelector("[data-link=open]") !== null`)
	token := b.evalString(`document.querySelector("callbridge-bar").session.token`)
	other := h.connect(t, token, "") // another tab of the same session
	other.next()

	b.eval(sr + `.querySelector("button[data-action=signout]").click()`)
	b.waitFor(sr + `.querySelector("form[data-form=login]") !== null`)
	wantClosed(t, other, cbhttp.CloseSessionEnded)
	h.do(t, "GET", "/v1/me", token, nil).wantError(t, http.StatusUnauthorized, "unauthorized", "session ended")
	if n := h.store.liveSessions(h.clock.Now()); n != 0 {
		t.Errorf("%d sessions live after Sign out", n)
	}
}
