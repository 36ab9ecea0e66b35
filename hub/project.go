package hub

import (
	"cmp"
	"encoding/json"
	"fmt"
	"slices"

	"github.com/callbridge/callbridge"
)

// Projector keeps a View from the events themselves, for a node that runs no engine (a
// central node, a site's standby) but serves desktops: each agent's snapshot is their last
// agent event and the calls they are on, as the call events they received show them. An
// agent receives a call's events while, and only while, they are on it, and their own
// leaving event last (the engine's audience rule), so a call stays in an agent's snapshot
// until an event after which no connection of theirs is on it, or call.cleared. Apply is
// called from one goroutine, in sequence order, before the message is published to the hub
// (so that a desktop that saw an event never draws an older snapshot; see Hub.Announce).
type Projector struct {
	v *View
	// reasons returns a tenant's not_ready reason codes (from the directory).
	reasons func(callbridge.TenantID) []string
}

// NewProjector returns a Projector writing into v; reasons may be nil.
func NewProjector(v *View, reasons func(callbridge.TenantID) []string) *Projector {
	if reasons == nil {
		reasons = func(callbridge.TenantID) []string { return nil }
	}
	return &Projector{v: v, reasons: reasons}
}

// Apply folds one message into the view. A frame that is not an event of this shape is an
// error and changes nothing.
func (p *Projector) Apply(m Message) error {
	var ev struct {
		Type   callbridge.EventType `json:"type"`
		Tenant callbridge.TenantID  `json:"tenant"`
		Data   json.RawMessage      `json:"data"`
	}
	if err := json.Unmarshal(m.Frame, &ev); err != nil {
		return fmt.Errorf("hub: project seq %d: %w", m.Seq, err)
	}
	switch {
	case ev.Type.IsCall():
		var ce callbridge.CallEvent
		if err := json.Unmarshal(ev.Data, &ce); err != nil {
			return fmt.Errorf("hub: project seq %d: %w", m.Seq, err)
		}
		for i, a := range m.Agents {
			if a == "" || containsBefore(m.Agents, i) {
				continue
			}
			p.call(m.Seq, ev.Tenant, a, ev.Type, ce.Call)
		}
	case len(ev.Type) > 6 && ev.Type[:6] == "agent.":
		var ag callbridge.Agent
		if err := json.Unmarshal(ev.Data, &ag); err != nil || ag.ID == "" {
			return fmt.Errorf("hub: project seq %d: agent event without agent", m.Seq)
		}
		snap := p.get(ev.Tenant, ag.ID)
		ag.PreviousState = ""
		snap.Agent = ag
		snap.Seq = m.Seq
		p.v.Put(snap)
	default:
		return fmt.Errorf("hub: project seq %d: event type %q", m.Seq, ev.Type)
	}
	return nil
}

// call updates agent a's calls with c after an event of type typ.
func (p *Projector) call(seq uint64, tenant callbridge.TenantID, a callbridge.AgentID, typ callbridge.EventType, c callbridge.Call) {
	snap := p.get(tenant, a)
	on := typ != callbridge.EventCallCleared && slices.ContainsFunc(c.Connections, func(cn callbridge.Connection) bool { return cn.Agent == a })
	calls := slices.DeleteFunc(slices.Clone(snap.Calls), func(x callbridge.Call) bool { return x.ID == c.ID })
	if on {
		calls = append(calls, c)
		slices.SortFunc(calls, func(x, y callbridge.Call) int {
			if d := x.StartedAt.Compare(y.StartedAt); d != 0 {
				return d
			}
			return cmp.Compare(x.ID, y.ID)
		})
	}
	snap.Calls, snap.Seq = calls, seq
	p.v.Put(snap)
}

// get returns a copy of the agent's snapshot, or a new one (state unknown until an agent
// event comes: logged_out).
func (p *Projector) get(tenant callbridge.TenantID, a callbridge.AgentID) callbridge.AgentSnapshot {
	if snap, ok := p.v.Get(Key{Tenant: tenant, Agent: a}); ok {
		return snap
	}
	return callbridge.AgentSnapshot{
		Agent:       callbridge.Agent{ID: a, Tenant: tenant, State: callbridge.AgentLoggedOut},
		Calls:       []callbridge.Call{},
		ReasonCodes: p.reasons(tenant),
	}
}
