package http

import (
	"context"
	nethttp "net/http"

	"github.com/danielgtaylor/huma/v2"

	"github.com/callbridge/callbridge"
)

// Call control over REST: each operation is one callbridge.Command carried out by the
// Commander (the node's engine and switch), acting for the agent named in the body, with
// the tenant from the caller's credentials. A reply means the command was accepted; its
// outcome arrives as events (WebSocket, webhooks).

// AgentParam is the agent whose device acts.
type AgentParam struct {
	Agent string `json:"agent" minLength:"1" maxLength:"64" pattern:"^[A-Za-z0-9_-]+$" doc:"The agent (user name) whose phone acts."`
}

// IdempotencyParam makes a retried request a no-op that returns the first result.
type IdempotencyParam struct {
	IdempotencyKey string `json:"idempotency_key,omitempty" maxLength:"128" doc:"A retry with the same key (within 10 minutes) does nothing and returns the first result."`
}

// CallPathParam is the call_id in the path of /v1/calls/{call_id}/….
type CallPathParam struct {
	CallID string `path:"call_id" maxLength:"64" doc:"The call (call_id of its events)."`
}

type makeCallInput struct {
	Body struct {
		AgentParam
		To           string            `json:"to" minLength:"1" maxLength:"64" doc:"The number or extension to dial."`
		AttachedData map[string]string `json:"attached_data,omitempty" doc:"Attached data for the new call (CRM keys, notes): it reaches the agent's screen pop."`
		IdempotencyParam
	}
}

type agentInput struct {
	CallPathParam
	Body struct {
		AgentParam
		IdempotencyParam
	}
}

type clearCallInput struct {
	CallPathParam
	Body *struct {
		IdempotencyParam
	} `required:"false"`
}

type transferInput struct {
	CallPathParam
	Body struct {
		AgentParam
		To           string            `json:"to" minLength:"1" maxLength:"64" doc:"Agent user name, extension, queue or outside number."`
		AttachedData map[string]string `json:"attached_data,omitempty" doc:"Merged into the call's attached data first."`
		IdempotencyParam
	}
}

type joinInput struct {
	CallPathParam
	Body struct {
		AgentParam
		ConsultCallID string `json:"consult_call_id,omitempty" maxLength:"64" doc:"The consultation call; found by itself when omitted."`
		IdempotencyParam
	}
}

type attachedDataInput struct {
	CallPathParam
	Body struct {
		AttachedData map[string]string `json:"attached_data" doc:"Keys to set; an empty value deletes a key."`
		IdempotencyParam
	}
}

type dispositionInput struct {
	CallPathParam
	Body struct {
		AgentParam
		Disposition string `json:"disposition" minLength:"1" maxLength:"64" pattern:"^[A-Za-z0-9_-]+$" doc:"The wrap-up code."`
		Notes       string `json:"notes,omitempty" maxLength:"4096"`
		State       string `json:"state,omitempty" enum:"ready,not_ready,logged_out" doc:"Also set the agent's state (ends wrap-up)."`
		Reason      string `json:"reason,omitempty" maxLength:"64" doc:"Reason code, with state not_ready."`
		IdempotencyParam
	}
}

type agentStateInput struct {
	ID   string `path:"id" minLength:"1" maxLength:"64" pattern:"^[A-Za-z0-9_-]+$" doc:"The agent (user name)."`
	Body struct {
		State  string `json:"state" enum:"ready,not_ready,logged_out" doc:"The state asked for: ready, not_ready (with a reason) or logged_out (off the queues). On a call or in wrap-up it becomes the agent's next state."`
		Reason string `json:"reason,omitempty" maxLength:"64" doc:"Reason code (from the tenant's list), with not_ready."`
		IdempotencyParam
	}
}

// CommandReply is the answer to an accepted command.
type CommandReply struct {
	CallID callbridge.CallID `json:"call_id,omitempty" doc:"The call a make_call or consultation created (its events carry this call_id)."`
}

func (s *Server) callRoutes(api huma.API) {
	calls := access{scope: callbridge.ScopeCallsWrite}
	tags := []string{"Call control"}
	op := func(id, path, summary, desc string) huma.Operation {
		return huma.Operation{
			OperationID: id, Method: nethttp.MethodPost, Path: path, Tags: tags, Summary: summary,
			Description:   desc + " Accepted (202) means the switch took the command; the outcome arrives as events.",
			DefaultStatus: nethttp.StatusAccepted,
			Errors:        []int{nethttp.StatusNotFound, nethttp.StatusConflict, nethttp.StatusNotImplemented, nethttp.StatusBadGateway, nethttp.StatusServiceUnavailable},
		}
	}
	register(s, api, calls, op("make-call", "/v1/calls", "Click-to-dial",
		"Agent-first originate (make_call): the agent's phone rings first (and auto-answers where the switch can), then `to` is dialled and bridged."),
		func(ctx context.Context, in *makeCallInput) (*struct{ Body CommandReply }, error) {
			b := in.Body
			return s.command(ctx, callbridge.Command{Name: callbridge.CmdMakeCall, Agent: callbridge.AgentID(b.Agent), To: b.To,
				AttachedData: b.AttachedData, IdempotencyKey: b.IdempotencyKey})
		})
	for _, c := range []struct {
		id, path, summary, desc string
		cmd                     callbridge.CommandName
	}{
		{"answer-call", "answer", "Answer", "answer_call: the agent's ringing phone answers.", callbridge.CmdAnswerCall},
		{"hang-up", "hangup", "Hang up", "clear_connection: the agent's phone leaves the call; the call goes on if others remain.", callbridge.CmdClearConnection},
		{"hold-call", "hold", "Hold", "hold_call: the agent puts the call on hold.", callbridge.CmdHoldCall},
		{"retrieve-call", "retrieve", "Retrieve", "retrieve_call: the agent takes the call off hold.", callbridge.CmdRetrieveCall},
	} {
		register(s, api, calls, op(c.id, "/v1/calls/{call_id}/"+c.path, c.summary, c.desc),
			func(ctx context.Context, in *agentInput) (*struct{ Body CommandReply }, error) {
				return s.command(ctx, callbridge.Command{Name: c.cmd, Agent: callbridge.AgentID(in.Body.Agent),
					CallID: callbridge.CallID(in.CallID), IdempotencyKey: in.Body.IdempotencyKey})
			})
	}
	register(s, api, calls, op("clear-call", "/v1/calls/{call_id}/clear", "Clear the call", "clear_call: every party is disconnected."),
		func(ctx context.Context, in *clearCallInput) (*struct{ Body CommandReply }, error) {
			cmd := callbridge.Command{Name: callbridge.CmdClearCall, CallID: callbridge.CallID(in.CallID)}
			if in.Body != nil {
				cmd.IdempotencyKey = in.Body.IdempotencyKey
			}
			return s.command(ctx, cmd)
		})
	register(s, api, calls, op("transfer-call", "/v1/calls/{call_id}/transfer", "Blind transfer",
		"single_step_transfer: the call goes to `to` with the attached data, and the agent leaves it."),
		func(ctx context.Context, in *transferInput) (*struct{ Body CommandReply }, error) {
			b := in.Body
			return s.command(ctx, callbridge.Command{Name: callbridge.CmdSingleStepTransfer, Agent: callbridge.AgentID(b.Agent),
				CallID: callbridge.CallID(in.CallID), To: b.To, AttachedData: b.AttachedData, IdempotencyKey: b.IdempotencyKey})
		})
	register(s, api, calls, op("consult-call", "/v1/calls/{call_id}/consult", "Consult",
		"consultation_call: the call is held and the agent calls `to`; the consultation is a call of its own (call_id in the reply) with a copy of the attached data."),
		func(ctx context.Context, in *transferInput) (*struct{ Body CommandReply }, error) {
			b := in.Body
			return s.command(ctx, callbridge.Command{Name: callbridge.CmdConsultationCall, Agent: callbridge.AgentID(b.Agent),
				CallID: callbridge.CallID(in.CallID), To: b.To, AttachedData: b.AttachedData, IdempotencyKey: b.IdempotencyKey})
		})
	register(s, api, calls, op("complete-transfer", "/v1/calls/{call_id}/complete-transfer", "Complete a consultative transfer",
		"transfer_call: the consulted party gets the call, the agent leaves both."),
		func(ctx context.Context, in *joinInput) (*struct{ Body CommandReply }, error) {
			b := in.Body
			return s.command(ctx, callbridge.Command{Name: callbridge.CmdTransferCall, Agent: callbridge.AgentID(b.Agent),
				CallID: callbridge.CallID(in.CallID), ConsultCallID: callbridge.CallID(b.ConsultCallID), IdempotencyKey: b.IdempotencyKey})
		})
	register(s, api, calls, op("conference-call", "/v1/calls/{call_id}/conference", "Conference",
		"conference_call: the consulted party joins the call."),
		func(ctx context.Context, in *joinInput) (*struct{ Body CommandReply }, error) {
			b := in.Body
			return s.command(ctx, callbridge.Command{Name: callbridge.CmdConferenceCall, Agent: callbridge.AgentID(b.Agent),
				CallID: callbridge.CallID(in.CallID), ConsultCallID: callbridge.CallID(b.ConsultCallID), IdempotencyKey: b.IdempotencyKey})
		})
	register(s, api, calls, op("update-call-data", "/v1/calls/{call_id}/attached-data", "Update attached data",
		"update_call_data: merges keys into the call's attached data (call.data_updated)."),
		func(ctx context.Context, in *attachedDataInput) (*struct{ Body CommandReply }, error) {
			return s.command(ctx, callbridge.Command{Name: callbridge.CmdUpdateCallData, CallID: callbridge.CallID(in.CallID),
				AttachedData: in.Body.AttachedData, IdempotencyKey: in.Body.IdempotencyKey})
		})
	agentOp := op("set-agent-state", "/v1/agents/{id}/state", "Set an agent's state",
		"set_agent_state: the agent goes ready, not ready with a reason, or logs off the queues, as from their desktop (agent.state_changed).")
	agentOp.Tags = []string{"Agents"}
	register(s, api, calls, agentOp,
		func(ctx context.Context, in *agentStateInput) (*struct{ Body CommandReply }, error) {
			b := in.Body
			return s.command(ctx, callbridge.Command{Name: callbridge.CmdSetAgentState, Agent: callbridge.AgentID(in.ID),
				State: callbridge.AgentState(b.State), Reason: b.Reason, IdempotencyKey: b.IdempotencyKey})
		})
	register(s, api, calls, op("set-disposition", "/v1/calls/{call_id}/disposition", "Set the disposition",
		"set_disposition: saves the wrap-up (code and notes) of a call the agent answered, during the call or up to an hour after it (call.disposition_set; the call record takes it)."),
		func(ctx context.Context, in *dispositionInput) (*struct{ Body CommandReply }, error) {
			b := in.Body
			return s.command(ctx, callbridge.Command{Name: callbridge.CmdSetDisposition, Agent: callbridge.AgentID(b.Agent),
				CallID: callbridge.CallID(in.CallID), Disposition: b.Disposition, Notes: b.Notes,
				State: callbridge.AgentState(b.State), Reason: b.Reason, IdempotencyKey: b.IdempotencyKey})
		})
}

// command runs cmd for the caller through the Commander.
func (s *Server) command(ctx context.Context, cmd callbridge.Command) (*struct{ Body CommandReply }, error) {
	c := callerOf(ctx)
	cmd.Tenant, cmd.Role, cmd.Time = c.Tenant, c.Role, s.now()
	cctx, cancel := context.WithTimeout(ctx, commandTimeout)
	defer cancel()
	res, err := s.cfg.Commander.Do(cctx, cmd)
	if err != nil {
		s.log.Info("REST command refused", "cmd", cmd.Name, "tenant", cmd.Tenant, "agent", cmd.Agent, "call", cmd.CallID,
			"by", c.who(), "code", callbridge.ErrorCode(err))
		return nil, s.restErr(err, "cmd", cmd.Name)
	}
	s.log.Info("REST command", "cmd", cmd.Name, "tenant", cmd.Tenant, "agent", cmd.Agent, "call", cmd.CallID, "by", c.who())
	return &struct{ Body CommandReply }{Body: CommandReply{CallID: res.CallID}}, nil
}
