package callbridge

import "time"

// AgentState is the CSTA agent state (ECMA-269 §6.9): agentNull, NotReady, Ready, Busy,
// WorkingAfterCall, in lower snake case.
type AgentState string

// Agent states. AgentBusy is derived: an agent whose device has an active connection is
// busy whatever their desktop state.
const (
	AgentLoggedOut        AgentState = "logged_out"
	AgentNotReady         AgentState = "not_ready"
	AgentReady            AgentState = "ready"
	AgentBusy             AgentState = "busy"
	AgentWorkingAfterCall AgentState = "working_after_call"
)

// Valid reports whether s is one of the agent states.
func (s AgentState) Valid() bool {
	switch s {
	case AgentLoggedOut, AgentNotReady, AgentReady, AgentBusy, AgentWorkingAfterCall:
		return true
	}
	return false
}

// Reason codes set by callbridge itself (tenants configure their own on top).
const (
	ReasonDesktopLost       = "desktop_lost"       // the last desktop of the agent stopped heartbeating
	ReasonDeviceUnavailable = "device_unavailable" // the telset unregistered or is unreachable
	ReasonWrapUp            = "wrap_up"            // pause reason callbridge uses on the switch during wrap-up
)

// Agent is the engine's view of one agent, and the data of agent events.
type Agent struct {
	ID     AgentID    `json:"agent"`
	Tenant TenantID   `json:"tenant"`
	Name   string     `json:"name,omitempty"`
	Device DeviceID   `json:"device,omitempty"`
	State  AgentState `json:"state"`
	Reason string     `json:"reason,omitempty"` // reason code when not_ready
	// PreviousState is the state before this change (only in agent.state_changed).
	PreviousState AgentState `json:"previous_state,omitempty"`
	// Queues the agent is logged on to (queue member on the switch).
	Queues []QueueName `json:"queues,omitempty"`
	// Since is when the agent entered State.
	Since time.Time `json:"since"`
	// WrapUpUntil is when working_after_call ends by timer (zero when not in wrap-up).
	WrapUpUntil time.Time `json:"wrap_up_until,omitzero"`
	// NextState and NextReason, while the agent is busy or working_after_call, are the state
	// (and not_ready reason) the agent goes to once the call and its wrap-up are over: ready,
	// not_ready (e.g. "not ready after this call") or logged_out. Empty otherwise.
	NextState  AgentState `json:"next_state,omitempty"`
	NextReason string     `json:"next_reason,omitempty"`
}
