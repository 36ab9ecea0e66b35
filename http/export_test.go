package http

// BeatDesktops queues a heartbeat for every agent with a desktop now, as the sweeper does
// every heartbeatEvery (tests trigger it to get a deterministic barrier).
func (s *Server) BeatDesktops() { s.desktops.heartbeat() }

// OpenSockets counts the server's open WebSockets.
func (s *Server) OpenSockets() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

// SetCompare makes a server built from c check passwords with f instead of
// bcrypt.CompareHashAndPassword, so that a test can count and hold the hashing work.
func SetCompare(c *Config, f func(hash, password []byte) error) { c.compare = f }
