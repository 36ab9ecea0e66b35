package http

// CloseSessionEnded closes the WebSockets of a session that ended on the server: the user
// logged out (POST /v1/logout, from any tab), the session was revoked because its refresh
// token was used twice, or the user was removed. Reason "session ended". The client must not
// reconnect with the same session; it signs in again.
const CloseSessionEnded = 4002

// closeSessions asks every live WebSocket whose identity matches to close with code and
// reason (wsConn.closeWith: the writer does the close handshake; it does not block), and
// returns how many it asked.
func (s *Server) closeSessions(match func(identity) bool, code int, reason string) int {
	s.mu.Lock()
	var hit []*wsConn
	for c := range s.conns {
		if match(c.id) {
			hit = append(hit, c)
		}
	}
	s.mu.Unlock()
	for _, c := range hit {
		c.closeWith(code, reason)
	}
	return len(hit)
}
