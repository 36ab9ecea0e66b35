package http

// BeatDesktops queues a heartbeat for every agent with a desktop now, as the sweeper does
// every heartbeatEvery (tests trigger it to get a deterministic barrier).
func (s *Server) BeatDesktops() { s.desktops.heartbeat() }

// SetCompare makes a server built from c check passwords with f instead of
// bcrypt.CompareHashAndPassword, so that a test can count and hold the hashing work.
func SetCompare(c *Config, f func(hash, password []byte) error) { c.compare = f }
