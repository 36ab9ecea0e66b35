package http_test

import (
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	cbhttp "github.com/callbridge/callbridge/http"
)

// countingCompare is a password check that adds the work of every bcrypt check it runs
// (2^cost rounds of the key schedule) to work.
func countingCompare(work *atomic.Int64) func(hash, pw []byte) error {
	return func(hash, pw []byte) error {
		if cost, err := bcrypt.Cost(hash); err == nil {
			work.Add(1 << cost)
		}
		return bcrypt.CompareHashAndPassword(hash, pw)
	}
}

func loginBody(user, pw string) string {
	return fmt.Sprintf(`{"username":%q,"password":%q}`, user, pw)
}

// TestLoginIsRateLimitedPerUserWithBackoff (issue 10, item 2): after Burst failed logins for
// one user name, further attempts, even with the right password, get 429 rate_limited with
// Retry-After and no password check; the wait doubles with each further failure; an unknown
// user name is limited exactly like a real one; a success clears the count.
func TestLoginIsRateLimitedPerUserWithBackoff(t *testing.T) {
	t.Parallel()
	var work atomic.Int64
	h := newServer(t, func(c *cbhttp.Config) {
		c.LoginLimits.PerUser = cbhttp.BackoffLimit{Burst: 3, Base: time.Second, Max: time.Minute}
		c.LoginLimits.PerAddress = cbhttp.BackoffLimit{Burst: -1}
		cbhttp.SetCompare(c, countingCompare(&work))
	})
	for _, user := range []string{"alice", "mallory"} {
		for i := range 3 {
			h.postLogin(t, loginBody(user, "guess")).wantError(t, http.StatusUnauthorized, "unauthorized", "invalid username or password")
			if i == 2 && work.Load() == 0 {
				t.Fatal("no password was checked")
			}
		}
		before := work.Load()
		res := h.postLogin(t, loginBody(user, user+"-pw"))
		res.wantError(t, http.StatusTooManyRequests, "rate_limited", "too many failed logins")
		if got := res.header.Get("Retry-After"); got != "1" {
			t.Errorf("%s: Retry-After = %q, want 1", user, got)
		}
		if work.Load() != before {
			t.Errorf("%s: a limited login checked a password", user)
		}
	}
	// Another user from the same address is not affected.
	if res := h.postLogin(t, loginBody("bob", "bob-pw")); res.status != 200 {
		t.Fatalf("bob: %d %s", res.status, res.body)
	}

	// Backoff: one more try after a second; failing it doubles the wait.
	h.clock.Advance(time.Second)
	h.postLogin(t, loginBody("alice", "guess")).wantError(t, http.StatusUnauthorized, "unauthorized", "invalid")
	res := h.postLogin(t, loginBody("alice", "alice-pw"))
	res.wantError(t, http.StatusTooManyRequests, "rate_limited", "")
	if got := res.header.Get("Retry-After"); got != "2" {
		t.Errorf("after a failure past the burst: Retry-After = %q, want 2", got)
	}
	h.clock.Advance(time.Second)
	h.postLogin(t, loginBody("alice", "alice-pw")).wantError(t, http.StatusTooManyRequests, "rate_limited", "")
	h.clock.Advance(time.Second)
	if res := h.postLogin(t, loginBody("alice", "alice-pw")); res.status != 200 {
		t.Fatalf("after the wait: %d %s", res.status, res.body)
	}
	// The success cleared alice's count: the full burst again.
	for range 3 {
		h.postLogin(t, loginBody("alice", "guess")).wantError(t, http.StatusUnauthorized, "unauthorized", "invalid")
	}
	h.postLogin(t, loginBody("alice", "guess")).wantError(t, http.StatusTooManyRequests, "rate_limited", "")

	// A key with no failure for Max starts over.
	h.clock.Advance(time.Minute)
	h.postLogin(t, loginBody("mallory", "guess")).wantError(t, http.StatusUnauthorized, "unauthorized", "invalid")
}

// TestLoginIsRateLimitedPerAddress (issue 10, item 2): failures from one address count across
// user names (password spraying), and successes do not count.
func TestLoginIsRateLimitedPerAddress(t *testing.T) {
	t.Parallel()
	h := newServer(t, func(c *cbhttp.Config) {
		c.LoginLimits.PerUser = cbhttp.BackoffLimit{Burst: -1}
		c.LoginLimits.PerAddress = cbhttp.BackoffLimit{Burst: 4, Base: 10 * time.Second, Max: time.Hour}
	})
	for range 5 {
		if res := h.postLogin(t, loginBody("bob", "bob-pw")); res.status != 200 {
			t.Fatalf("bob: %d %s", res.status, res.body)
		}
	}
	for i := range 4 {
		h.postLogin(t, loginBody(fmt.Sprintf("user%d", i), "Winter2026!")).wantError(t, http.StatusUnauthorized, "unauthorized", "invalid")
	}
	res := h.postLogin(t, loginBody("alice", "alice-pw"))
	res.wantError(t, http.StatusTooManyRequests, "rate_limited", "")
	if got := res.header.Get("Retry-After"); got != "10" {
		t.Errorf("Retry-After = %q, want 10", got)
	}
}

// TestLoginChecksEveryPasswordAtTheSameCost (issue 10, item 2): an unknown user costs exactly
// one bcrypt check at the configured cost, like a user whose hash has that cost; a stored hash
// of a lower cost is never cheaper, and is re-hashed at the configured cost when its user
// logs in.
func TestLoginChecksEveryPasswordAtTheSameCost(t *testing.T) {
	t.Parallel()
	const cost = testBcryptCost + 1
	var work atomic.Int64
	h := newServer(t, func(c *cbhttp.Config) {
		c.BcryptCost = cost
		cbhttp.SetCompare(c, countingCompare(&work))
	})
	// alice has a hash of the configured cost; bob keeps the fake store's cheaper one.
	aliceHash, err := bcrypt.GenerateFromPassword([]byte("alice-pw"), cost)
	if err != nil {
		t.Fatal(err)
	}
	h.store.mu.Lock()
	for i := range h.store.users {
		if h.store.users[i].Username == "alice" {
			h.store.users[i].PasswordHash = string(aliceHash)
		}
	}
	h.store.mu.Unlock()

	workOf := func(user, pw string, status int) int64 {
		t.Helper()
		before := work.Load()
		if res := h.postLogin(t, loginBody(user, pw)); res.status != status {
			t.Fatalf("login %s: %d %s, want %d", user, res.status, res.body, status)
		}
		return work.Load() - before
	}
	unknown := workOf("mallory", "guess", 401)
	if unknown != 1<<cost {
		t.Fatalf("unknown user: work %d, want one cost-%d check (%d)", unknown, cost, 1<<cost)
	}
	if got := workOf("alice", "guess", 401); got != unknown {
		t.Errorf("wrong password: work %d, unknown user %d", got, unknown)
	}
	if got := workOf("bob", "guess", 401); got < unknown {
		t.Errorf("a cheaper stored hash: work %d, less than an unknown user's %d", got, unknown)
	}
	workOf("bob", "bob-pw", 200)
	users, _ := h.store.FindUsers(t.Context(), "bob")
	if c, _ := bcrypt.Cost([]byte(users[0].PasswordHash)); c != cost || bcrypt.CompareHashAndPassword([]byte(users[0].PasswordHash), []byte("bob-pw")) != nil {
		t.Fatalf("bob's hash after login: cost %d, want a cost-%d hash of his password", c, cost)
	}
	if got := workOf("bob", "guess", 401); got != unknown {
		t.Errorf("re-hashed user, wrong password: work %d, unknown user %d", got, unknown)
	}
}

// TestLoginHashingPoolAnswers503WhenFull (issue 10, item 2): password checks run on a bounded
// pool; while its worker and queue are taken, another login is answered 503 unavailable with
// Retry-After at once instead of waiting.
func TestLoginHashingPoolAnswers503WhenFull(t *testing.T) {
	t.Parallel()
	entered := make(chan struct{})
	release := make(chan struct{})
	var first atomic.Bool
	h := newServer(t, func(c *cbhttp.Config) {
		c.LoginWorkers, c.LoginQueue = 1, 1
		cbhttp.SetCompare(c, func(hash, pw []byte) error {
			if first.CompareAndSwap(false, true) {
				close(entered)
				<-release
			}
			return bcrypt.CompareHashAndPassword(hash, pw)
		})
	})
	type result struct {
		user string
		res  response
	}
	results := make(chan result, 3)
	login := func(user string) {
		results <- result{user, h.postLogin(t, loginBody(user, user+"-pw"))}
	}
	var wg sync.WaitGroup
	wg.Go(func() { login("alice") })
	<-entered // alice's check holds the only worker
	wg.Go(func() { login("bob") })
	wg.Go(func() { login("sam") })

	// One of bob and sam is queued, the other is refused while alice's check still holds the
	// worker (it cannot have returned: release is not closed yet).
	refused := <-results
	if refused.user == "alice" {
		t.Fatal("alice's login returned while her password check was held")
	}
	refused.res.wantError(t, http.StatusServiceUnavailable, "unavailable", "too many logins at once")
	if got := refused.res.header.Get("Retry-After"); got != "1" {
		t.Errorf("Retry-After = %q, want 1", got)
	}
	close(release)
	wg.Wait()
	close(results)
	for r := range results {
		if r.res.status != 200 {
			t.Errorf("%s: %d %s, want 200 once the pool was free", r.user, r.res.status, r.res.body)
		}
	}
}
