package http

import "time"

// SetHeartbeatEvery sets the heartbeat throttle for a test and returns a function that
// restores it.
func SetHeartbeatEvery(d time.Duration) func() {
	old := heartbeatEvery
	heartbeatEvery = d
	return func() { heartbeatEvery = old }
}

// SetCompare makes a server built from c check passwords with f instead of
// bcrypt.CompareHashAndPassword, so that a test can count and hold the hashing work.
func SetCompare(c *Config, f func(hash, password []byte) error) { c.compare = f }
