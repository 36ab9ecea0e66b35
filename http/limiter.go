package http

import (
	"math"
	"net"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// BackoffLimit limits failed attempts per key (a user name, a client address): Burst failures
// pass; after them each further failure doubles the wait before the next attempt, from Base
// up to Max. A key with no failure for Max starts over. A Burst below zero turns the limit off.
type BackoffLimit struct {
	Burst int
	Base  time.Duration
	Max   time.Duration
}

// LoginLimits are the limits of POST /v1/login. Only failed logins count; a successful login
// clears its user's count (not its address's).
type LoginLimits struct {
	// PerUser counts failures per user name tried, known or not (so that a limited unknown
	// user looks like a limited real one). Default DefaultPerUserLimit.
	PerUser BackoffLimit
	// PerAddress counts failures per client address (the TCP peer; IPv6 by /64).
	// Default DefaultPerAddressLimit.
	PerAddress BackoffLimit
}

// Defaults of LoginLimits.
var (
	DefaultPerUserLimit    = BackoffLimit{Burst: 5, Base: time.Second, Max: 10 * time.Minute}
	DefaultPerAddressLimit = BackoffLimit{Burst: 50, Base: time.Second, Max: 10 * time.Minute}
)

func (l BackoffLimit) orDefault(def BackoffLimit) BackoffLimit {
	if l.Burst == 0 {
		l.Burst = def.Burst
	}
	if l.Base <= 0 {
		l.Base = def.Base
	}
	if l.Max < l.Base {
		l.Max = max(def.Max, l.Base)
	}
	return l
}

// backoff keeps the failures of each key in a token bucket (golang.org/x/time/rate) of
// Burst tokens that a failure empties by one; the bucket refills at one token per Base, and
// each failure that finds it empty halves that rate, down to one per Max. Attempts in flight
// hold a token until they end, so that parallel attempts cannot overdraw it.
type backoff struct {
	cfg       BackoffLimit
	mu        sync.Mutex
	keys      map[string]*backoffKey
	lastSweep time.Time
}

type backoffKey struct {
	lim      *rate.Limiter
	strikes  int // failures that found the bucket empty
	inflight int
	lastFail time.Time
}

// newBackoff returns the limiter of cfg, or nil (no limit) when cfg.Burst < 0.
func newBackoff(cfg BackoffLimit) *backoff {
	if cfg.Burst < 0 {
		return nil
	}
	return &backoff{cfg: cfg, keys: make(map[string]*backoffKey)}
}

func (b *backoff) fresh() *backoffKey {
	return &backoffKey{lim: rate.NewLimiter(rate.Every(b.cfg.Base), b.cfg.Burst)}
}

// admit lets an attempt for key start at now and returns true, or returns how long to wait
// before the next attempt may start. Every admitted attempt must end with done.
func (b *backoff) admit(key string, now time.Time) (time.Duration, bool) {
	if b == nil {
		return 0, true
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.sweep(now)
	k := b.keys[key]
	switch {
	case k == nil:
		k = b.fresh()
		b.keys[key] = k
	case k.inflight == 0 && !k.lastFail.IsZero() && now.Sub(k.lastFail) >= b.cfg.Max:
		*k = *b.fresh()
	}
	avail := k.lim.TokensAt(now) - float64(k.inflight)
	if avail >= 1 {
		k.inflight++
		return 0, true
	}
	secs := (1 - avail) / float64(k.lim.Limit())
	return time.Duration(math.Ceil(secs * float64(time.Second))), false
}

// done ends an attempt admitted for key. A failure takes a token (and slows the refill when
// the bucket is then empty); forget (a successful login of this user) clears the key.
func (b *backoff) done(key string, now time.Time, failed, forget bool) {
	if b == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	k := b.keys[key]
	if k == nil {
		return
	}
	k.inflight--
	switch {
	case failed:
		k.lim.ReserveN(now, 1) // always granted: it may leave the bucket in debt
		k.lastFail = now
		if k.lim.TokensAt(now) < 1 {
			k.strikes++
			interval := b.cfg.Max
			if k.strikes < 32 {
				interval = min(b.cfg.Max, b.cfg.Base<<(k.strikes-1))
			}
			k.lim.SetLimitAt(now, rate.Every(interval))
		}
	case forget && k.inflight == 0:
		delete(b.keys, key)
	}
}

// sweep drops, at most once per minute, the keys without an attempt in flight whose last
// failure is Max ago (or that never failed): they are as good as new.
func (b *backoff) sweep(now time.Time) {
	if now.Sub(b.lastSweep) < time.Minute {
		return
	}
	b.lastSweep = now
	for key, k := range b.keys {
		if k.inflight == 0 && now.Sub(k.lastFail) >= b.cfg.Max {
			delete(b.keys, key)
		}
	}
}

// clientKey is the per-address key of a request's peer (net/http's RemoteAddr): the IP, or
// for IPv6 its /64, since one host usually holds a whole /64.
func clientKey(remoteAddr string) string {
	host, _, err := net.SplitHostPort(remoteAddr)
	if err != nil {
		host = remoteAddr
	}
	ip := net.ParseIP(host)
	if ip == nil {
		return host
	}
	if ip4 := ip.To4(); ip4 != nil {
		return ip4.String()
	}
	return ip.Mask(net.CIDRMask(64, 128)).String() + "/64"
}
