package callbridge

import (
	"context"
	"time"
)

// Presence receives the liveness of agent desktops from the gateway: every WebSocket
// connection of an agent is one desktop. The engine uses it for heartbeats: when the last
// desktop of an agent has been gone for the site's grace time, the agent becomes not_ready
// with reason ReasonDesktopLost (DESIGN.md §1, "Heartbeats").
//
// desktop is an opaque id the gateway gives each connection, unique while it lives. Every
// method returns ENotFound for an unknown tenant or agent, EUnavailable when the node is not
// running.
type Presence interface {
	// DesktopAttached: a desktop of the agent connected.
	DesktopAttached(ctx context.Context, tenant TenantID, agent AgentID, desktop string) error
	// DesktopDetached: the desktop disconnected (closed, failed, or stopped answering pings).
	DesktopDetached(ctx context.Context, tenant TenantID, agent AgentID, desktop string) error
	// DesktopHeartbeat: the desktop showed life (any message, a ping command, a WebSocket pong).
	DesktopHeartbeat(ctx context.Context, tenant TenantID, agent AgentID, desktop string) error
}

// AvailabilityService explains whether agents are routable.
type AvailabilityService interface {
	// Availability returns the agent's routability and the reasons it is not routable.
	// Errors: ENotFound for an unknown tenant or agent.
	Availability(ctx context.Context, tenant TenantID, agent AgentID) (Availability, error)
}

// Availability answers "can the switch route a call to this agent now, and if not, why?":
// an agent is routable when their desktop state is ready, their device is registered and
// idle, and they have free capacity (no call, no wrap-up). Reasons is empty when Routable.
type Availability struct {
	Tenant   TenantID   `json:"tenant"`
	Agent    AgentID    `json:"agent"`
	Device   DeviceID   `json:"device,omitempty"`
	State    AgentState `json:"state"`
	Reason   string     `json:"reason,omitempty"`
	Routable bool       `json:"routable"`
	// Reasons lists every factor that keeps the agent from being routable, each with the
	// event that caused it.
	Reasons []AvailabilityReason `json:"reasons"`
	// DeviceStatus is the last status the switch reported for the device ("" if none yet).
	DeviceStatus DeviceStatus `json:"device_status,omitempty"`
	// Desktops is the number of the agent's desktops connected now.
	Desktops int `json:"desktops"`
	// DesktopLostAt is when the agent's last desktop went away (zero while one is connected,
	// or when the agent never had one); DesktopLostAfter is when the grace time ends.
	DesktopLostAt    time.Time `json:"desktop_lost_at,omitzero"`
	DesktopLostAfter time.Time `json:"desktop_lost_after,omitzero"`
}

// Availability reason codes.
const (
	UnavailLoggedOut         = "logged_out"         // not a member of any queue
	UnavailNotReady          = "not_ready"          // every membership paused (Reason says why)
	UnavailBusy              = "busy"               // the device is on a call (no free capacity)
	UnavailWrapUp            = "working_after_call" // after-call work
	UnavailDeviceUnavailable = "device_unavailable" // the switch reports the device unregistered/unreachable
)

// AvailabilityReason is one factor that keeps an agent from being routable.
type AvailabilityReason struct {
	// Code is one of the Unavail* codes.
	Code string `json:"code"`
	// Reason is the not_ready reason code (for not_ready).
	Reason string `json:"reason,omitempty"`
	// Message says it in words.
	Message string            `json:"message"`
	Cause   AvailabilityCause `json:"cause"`
}

// AvailabilityCause is the event that put an agent in a state.
type AvailabilityCause struct {
	// Source is who caused it: "desktop" (the agent's own command), "supervisor" (a command
	// on the agent's behalf), "switch" (the phone or the switch: a telset pause, a call, a
	// device state), or "callbridge" (wrap-up timer, desktop_lost, start-up).
	Source string `json:"source"`
	// Event names it: a command ("set_agent_state", "set_disposition"), a switch event
	// ("member_state", "device_state", "snapshot"), a call event ("call.delivered",
	// "call.established", "call.held", "call.originated", "call.cleared"), or callbridge's own
	// ("desktop_lost", "start").
	Event string `json:"event"`
	// By is the user who issued the command (Source desktop or supervisor).
	By string `json:"by,omitempty"`
	// CallID is the call concerned (busy, wrap-up).
	CallID CallID `json:"call_id,omitempty"`
	// Time is when it happened.
	Time time.Time `json:"time"`
}
