package callbridge

import (
	"context"
	"time"
)

// CommandName is the JSON "cmd" of a desktop or CRM command (CSTA service names, snake case).
type CommandName string

// Commands.
const (
	CmdMakeCall           CommandName = "make_call"
	CmdAnswerCall         CommandName = "answer_call"
	CmdClearConnection    CommandName = "clear_connection"
	CmdClearCall          CommandName = "clear_call"
	CmdHoldCall           CommandName = "hold_call"
	CmdRetrieveCall       CommandName = "retrieve_call"
	CmdSingleStepTransfer CommandName = "single_step_transfer"
	CmdConsultationCall   CommandName = "consultation_call"
	CmdTransferCall       CommandName = "transfer_call"
	CmdConferenceCall     CommandName = "conference_call"
	CmdUpdateCallData     CommandName = "update_call_data"
	CmdSetAgentState      CommandName = "set_agent_state"
	// CmdSetDisposition saves the wrap-up of a call the agent handled: params call_id,
	// disposition (a code), notes. It emits call.disposition_set.
	CmdSetDisposition CommandName = "set_disposition"
)

// Command is a command from a desktop or a CRM, after authentication: Tenant, Agent and Role
// come from the caller's token, never from the request body.
type Command struct {
	Name   CommandName `json:"cmd"`
	Tenant TenantID    `json:"tenant"`
	// Agent is the agent who issued it (for agents) or on whose behalf it acts (supervisor,
	// API key: the "agent" parameter).
	Agent AgentID `json:"agent,omitempty"`
	Role  Role    `json:"role"`
	// Params.
	CallID        CallID            `json:"call_id,omitempty"`
	ConsultCallID CallID            `json:"consult_call_id,omitempty"`
	To            string            `json:"to,omitempty"`
	State         AgentState        `json:"state,omitempty"`
	Reason        string            `json:"reason,omitempty"`
	AttachedData  map[string]string `json:"attached_data,omitempty"`
	Disposition   string            `json:"disposition,omitempty"`
	Notes         string            `json:"notes,omitempty"`
	// IdempotencyKey makes a retried command a no-op that returns the first result.
	IdempotencyKey string `json:"idempotency_key,omitempty"`
	// Time is when the command was received; set by the node, not the client.
	Time time.Time `json:"-"`
}

// CommandResult is the reply to an accepted command; the outcome itself arrives as events.
type CommandResult struct {
	// CallID is the call a make_call or consultation_call created.
	CallID CallID `json:"call_id,omitempty"`
}

// AgentSnapshot is what a desktop needs to draw itself from scratch: the agent, their active
// calls, and the event-log position the snapshot corresponds to (resume after it).
type AgentSnapshot struct {
	Agent Agent  `json:"agent"`
	Calls []Call `json:"calls"`
	// Seq is the last event-log sequence included in this snapshot.
	Seq uint64 `json:"seq"`
	// ReasonCodes the tenant allows for not_ready.
	ReasonCodes []string `json:"reason_codes,omitempty"`
}

// Commander runs commands against the engine of the site that owns the tenant's switch.
type Commander interface {
	// Do validates cmd and carries it out. Errors are *Error: EInvalid, EForbidden (not the
	// agent's call), ENotFound, EConflict, ENotSupported, EUnavailable, ESwitchRejected.
	Do(ctx context.Context, cmd Command) (CommandResult, error)
	// Snapshot returns the agent's current state and calls. ENotFound for an unknown agent.
	Snapshot(ctx context.Context, tenant TenantID, agent AgentID) (AgentSnapshot, error)
	// Ready returns nil when the switch is connected and resynchronised.
	Ready() error
}
