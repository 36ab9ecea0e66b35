package http

import (
	"time"

	"github.com/callbridge/callbridge"
)

// Desktop presence: every WebSocket connection of an agent is one desktop of that agent. The
// gateway reports the agent's desktops to the Commander when it also implements
// callbridge.Presence (the node does), aggregated per agent (desktopSet in wsengine.go):
// DesktopAttached when the agent's first connection is up, DesktopHeartbeat for every agent
// with a connection every heartbeatEvery, and DesktopDetached when the last one ends.
// Supervisors' and admins' connections are not desktops. The engine turns the absence of
// every desktop into not_ready desktop_lost after its grace time.

// heartbeatEvery is the interval of the desktops' heartbeats (a variable for tests).
var heartbeatEvery = 10 * time.Second

// presenceTimeout bounds one report to the Commander.
const presenceTimeout = 5 * time.Second

// presence returns the Commander as a callbridge.Presence, or nil.
func (s *Server) presence() callbridge.Presence {
	p, _ := s.cfg.Commander.(callbridge.Presence)
	return p
}
