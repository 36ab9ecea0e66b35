package nats

import (
	"strings"

	"github.com/callbridge/callbridge"
)

// Subject scheme of the event log (DESIGN.md §3, made precise). Every <token> passes
// callbridge.ValidToken, so it is exactly one subject token with no wildcard.
//
//	cb.<tenant>.call.<call_id>          a call event, once; its audience in AudienceHeader
//	cb.<tenant>.agent.<agent>.state     an agent event
//
// Each event is stored once. Desktops do not read the stream by subject: the node's hub
// routes each stored event to the sockets of its audience (AudienceHeader) and of the
// tenant's supervisors. A tenant-wide reader (records, webhooks) reads cb.<tenant>.call.>
// and cb.<tenant>.agent.*.state. Logs written before version 0.9 also hold copies of call
// events on cb.<tenant>.agent.<agent>.call; every reader skips them.
const subjectRoot = "cb"

// callSubject returns cb.<tenant>.call.<call>.
func callSubject(t callbridge.TenantID, c callbridge.CallID) string {
	return subjectRoot + "." + string(t) + ".call." + string(c)
}

// agentStateSubject returns cb.<tenant>.agent.<agent>.state.
func agentStateSubject(t callbridge.TenantID, a callbridge.AgentID) string {
	return subjectRoot + "." + string(t) + ".agent." + string(a) + ".state"
}

// filterSubjects returns the JetStream filter subjects of f; f must be valid. An agent's
// filter reads the tenant's call events and the agent's state; the subscription keeps the
// call events whose audience names the agent.
func filterSubjects(f callbridge.Filter) []string {
	if f.Agent != "" {
		return []string{
			subjectRoot + "." + string(f.Tenant) + ".call.>",
			agentStateSubject(f.Tenant, f.Agent),
		}
	}
	return []string{
		subjectRoot + "." + string(f.Tenant) + ".call.>",
		subjectRoot + "." + string(f.Tenant) + ".agent.*.state",
	}
}

// route validates the routing fields of ev and returns its subject and the agents who
// receive it: for a call event the distinct agents of its Audience in order, for an agent
// event its agent (Audience is ignored). The error is an *callbridge.Error with code
// EInvalid naming the bad field.
func route(ev *callbridge.Event) (string, []callbridge.AgentID, error) {
	if !callbridge.ValidToken(string(ev.Tenant)) {
		return "", nil, invalidToken("tenant", string(ev.Tenant))
	}
	switch {
	case ev.Type.IsCall():
		if !callbridge.ValidToken(string(ev.CallID)) {
			return "", nil, invalidToken("call_id", string(ev.CallID))
		}
		agents := make([]callbridge.AgentID, 0, len(ev.Audience))
	audience:
		for i, a := range ev.Audience {
			if !callbridge.ValidToken(string(a)) {
				return "", nil, invalidToken("audience agent", string(a))
			}
			for _, b := range ev.Audience[:i] {
				if a == b {
					continue audience
				}
			}
			agents = append(agents, a)
		}
		return callSubject(ev.Tenant, ev.CallID), agents, nil
	case strings.HasPrefix(string(ev.Type), "agent."):
		if !callbridge.ValidToken(string(ev.Agent)) {
			return "", nil, invalidToken("agent", string(ev.Agent))
		}
		return agentStateSubject(ev.Tenant, ev.Agent), []callbridge.AgentID{ev.Agent}, nil
	default:
		return "", nil, callbridge.Errorf(callbridge.EInvalid, "event type %q is neither a call nor an agent event", ev.Type)
	}
}

// validFilter returns an EInvalid *callbridge.Error when f's tenant or agent is not a token.
func validFilter(f callbridge.Filter) error {
	if !callbridge.ValidToken(string(f.Tenant)) {
		return invalidToken("filter tenant", string(f.Tenant))
	}
	if f.Agent != "" && !callbridge.ValidToken(string(f.Agent)) {
		return invalidToken("filter agent", string(f.Agent))
	}
	return nil
}

func invalidToken(field, v string) error {
	if v == "" {
		return callbridge.Errorf(callbridge.EInvalid, "%s is empty", field)
	}
	return callbridge.Errorf(callbridge.EInvalid, "%s %q is not a valid token (1-64 of [A-Za-z0-9_-])", field, v)
}
