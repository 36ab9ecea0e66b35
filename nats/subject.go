package nats

import (
	"strings"

	"github.com/callbridge/callbridge"
)

// Subject scheme of the event log (DESIGN.md §3, made precise). Every <token> passes
// callbridge.ValidToken, so it is exactly one subject token with no wildcard.
//
//	cb.<tenant>.call.<call_id>          a call event, once
//	cb.<tenant>.agent.<agent>.call      a copy of a call event for each agent in its Audience
//	cb.<tenant>.agent.<agent>.state     an agent event
//
// An agent subscribes to cb.<tenant>.agent.<agent>.> (their state and their calls); a
// tenant-wide subscriber (supervisor, webhooks) to cb.<tenant>.call.> and
// cb.<tenant>.agent.*.state, so it sees every call event once and never the agent copies.
const subjectRoot = "cb"

// callSubject returns cb.<tenant>.call.<call>.
func callSubject(t callbridge.TenantID, c callbridge.CallID) string {
	return subjectRoot + "." + string(t) + ".call." + string(c)
}

// agentCallSubject returns cb.<tenant>.agent.<agent>.call.
func agentCallSubject(t callbridge.TenantID, a callbridge.AgentID) string {
	return subjectRoot + "." + string(t) + ".agent." + string(a) + ".call"
}

// agentStateSubject returns cb.<tenant>.agent.<agent>.state.
func agentStateSubject(t callbridge.TenantID, a callbridge.AgentID) string {
	return subjectRoot + "." + string(t) + ".agent." + string(a) + ".state"
}

// filterSubjects returns the JetStream filter subjects of f; f must be valid.
func filterSubjects(f callbridge.Filter) []string {
	if f.Agent != "" {
		return []string{subjectRoot + "." + string(f.Tenant) + ".agent." + string(f.Agent) + ".>"}
	}
	return []string{
		subjectRoot + "." + string(f.Tenant) + ".call.>",
		subjectRoot + "." + string(f.Tenant) + ".agent.*.state",
	}
}

// eventSubjects validates the routing fields of ev and returns the subjects it is published
// on, in publishing order: for a call event the call subject, then one copy per distinct
// audience agent (in Audience order); for an agent event the agent's state subject (Audience
// is ignored: an agent event goes to its own agent only). The error is an *callbridge.Error
// with code EInvalid naming the bad field.
func eventSubjects(ev *callbridge.Event) ([]string, error) {
	if !callbridge.ValidToken(string(ev.Tenant)) {
		return nil, invalidToken("tenant", string(ev.Tenant))
	}
	switch {
	case ev.Type.IsCall():
		if !callbridge.ValidToken(string(ev.CallID)) {
			return nil, invalidToken("call_id", string(ev.CallID))
		}
		subjects := make([]string, 1, 1+len(ev.Audience))
		subjects[0] = callSubject(ev.Tenant, ev.CallID)
	audience:
		for i, a := range ev.Audience {
			if !callbridge.ValidToken(string(a)) {
				return nil, invalidToken("audience agent", string(a))
			}
			for _, b := range ev.Audience[:i] {
				if a == b {
					continue audience
				}
			}
			subjects = append(subjects, agentCallSubject(ev.Tenant, a))
		}
		return subjects, nil
	case strings.HasPrefix(string(ev.Type), "agent."):
		if !callbridge.ValidToken(string(ev.Agent)) {
			return nil, invalidToken("agent", string(ev.Agent))
		}
		return []string{agentStateSubject(ev.Tenant, ev.Agent)}, nil
	default:
		return nil, callbridge.Errorf(callbridge.EInvalid, "event type %q is neither a call nor an agent event", ev.Type)
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
