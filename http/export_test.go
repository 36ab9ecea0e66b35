package http

import "time"

// SetHeartbeatEvery sets the heartbeat throttle for a test and returns a function that
// restores it.
func SetHeartbeatEvery(d time.Duration) func() {
	old := heartbeatEvery
	heartbeatEvery = d
	return func() { heartbeatEvery = old }
}
