// Package ids makes the ids of callbridge's stored objects: a short type prefix and a ULID
// (26 characters, Crockford base32, time-ordered), e.g. "wh_01JD5Z…" for a webhook.
package ids

import (
	"crypto/rand"
	"sync"
	"time"

	"github.com/oklog/ulid/v2"
)

var (
	mu      sync.Mutex
	entropy = ulid.Monotonic(rand.Reader, 0)
)

// New returns prefix followed by a new ULID of t. Ids made in the same millisecond by this
// process sort in the order they were made.
func New(prefix string, t time.Time) string {
	mu.Lock()
	defer mu.Unlock()
	id, err := ulid.New(ulid.Timestamp(t), entropy)
	if err != nil {
		// The monotonic entropy of this millisecond ran out (2^80 ids) or t is out of
		// ULID range: fall back to fresh randomness.
		id = ulid.MustNew(ulid.Timestamp(t), rand.Reader)
	}
	return prefix + id.String()
}
