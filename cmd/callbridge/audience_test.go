package main

import (
	"testing"
	"time"

	"github.com/callbridge/callbridge/internal/testenv"
)

// drainUntil consumes every message up to and including the first that matches and returns
// the ones before it, failing after testenv.Patience.
func (d *desk) drainUntil(what string, match func(map[string]any) bool) []map[string]any {
	d.t.Helper()
	var before []map[string]any
	for i, msg := range d.pending {
		if match(msg) {
			before = append(before, d.pending[:i]...)
			d.pending = append([]map[string]any(nil), d.pending[i+1:]...)
			return before
		}
	}
	before, d.pending = append(before, d.pending...), nil
	deadline := time.After(testenv.Patience)
	for {
		select {
		case msg, ok := <-d.msgs:
			if !ok {
				d.t.Fatalf("connection closed while waiting for %s", what)
			}
			if match(msg) {
				return before
			}
			before = append(before, msg)
		case <-deadline:
			d.t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// secondAgentsPart plays what agent2 does with call id once it rings at their desk: answer,
// private notes and CRM data, hold, retrieve, hang up (the call then clears), wrap-up notes;
// it returns once agent2 has seen their call.disposition_set.
func secondAgentsPart(t *testing.T, a2 *desk, id string) {
	t.Helper()
	a2.callEvent("call.delivered", id, "1002")
	a2.ok("answer_call", map[string]any{"call_id": id})
	a2.callEvent("call.established", id, "1002")
	a2.ok("update_call_data", map[string]any{"call_id": id, "notes": "agent2's private note", "attached_data": map[string]any{"crm_case": "C-42"}})
	a2.callEvent("call.data_updated", id, "")
	a2.ok("hold_call", map[string]any{"call_id": id})
	a2.callEvent("call.held", id, "1002")
	a2.ok("retrieve_call", map[string]any{"call_id": id})
	a2.callEvent("call.retrieved", id, "1002")
	a2.ok("clear_connection", map[string]any{"call_id": id})
	a2.callEvent("call.connection_cleared", id, "1002") // agent2's last event of the call
	a2.ok("set_disposition", map[string]any{"call_id": id, "disposition": "resolved", "notes": "agent2's wrap-up notes"})
	a2.callEvent("call.disposition_set", id, "1002")
}

// ending waits for the event of typ about call id and device dev that ends agent1's part and
// returns its data and seq.
func ending(t *testing.T, a1 *desk, typ, id, dev string) (map[string]any, float64) {
	t.Helper()
	msg := a1.next(typ+" "+id, isEvent(typ, func(c map[string]any) bool { return c["call_id"] == id && (dev == "" || c["device"] == dev) }))
	seq, _ := msg["seq"].(float64)
	if seq == 0 {
		t.Fatalf("%s without seq: %v", typ, msg)
	}
	return msg["data"].(map[string]any), seq
}

// nothingAfter goes through agent1's desk up to a barrier (agent1's own not_ready, asked
// for after agent2's part was over, so every event of agent2's part has a lower seq) and
// fails when any event of call id with a seq above end (agent1's last event of the call)
// reached it.
func nothingAfter(t *testing.T, a1 *desk, id string, end float64) {
	t.Helper()
	a1.ok("set_agent_state", map[string]any{"state": "not_ready", "reason": "break"})
	seen := a1.drainUntil("agent1's not_ready (the barrier)", isEvent("agent.state_changed", func(a map[string]any) bool {
		return a["state"] == "not_ready" && a["reason"] == "break"
	}))
	for _, msg := range seen {
		if seq, _ := msg["seq"].(float64); seq <= end {
			continue
		}
		if data, _ := msg["data"].(map[string]any); data != nil && data["call_id"] == id {
			t.Errorf("agent1 received %v about %v of the call after their part ended (notes %v, disposition %v)",
				msg["type"], data["device"], data["notes"], data["disposition"])
		}
	}
}

// TestServeAgentSeesOnlyTheirPartOfACall: over the WebSocket, as agents use it, an agent
// receives a call's events only while a connection of theirs is on it, plus the event that
// ends their part: after agent1 transfers the call to agent2, or the call rings agent1 in
// vain and moves on to agent2, agent1 receives none of agent2's data, hold, hang-up or
// wrap-up notes.
func TestServeAgentSeesOnlyTheirPartOfACall(t *testing.T) {
	t.Run("single-step transfer", func(t *testing.T) {
		m, drv := runQuietMain(t, 0)
		a1, a2 := agentDesk(t, m, "agent1"), agentDesk(t, m, "agent2")
		a1.ok("set_agent_state", map[string]any{"state": "ready"})
		a1.agentState("ready", "")
		inject(t, drv, "+15551110011")
		id, _ := a1.callEvent("call.delivered", "", "1001")["call_id"].(string)
		a1.ok("answer_call", map[string]any{"call_id": id})
		a1.callEvent("call.established", id, "1001")
		a1.ok("single_step_transfer", map[string]any{"call_id": id, "to": "agent2", "notes": "for agent2"})
		x, end := ending(t, a1, "call.transferred", id, "")
		if x["transferring_device"] != "1001" {
			t.Fatalf("transferred = %v", x)
		}
		secondAgentsPart(t, a2, id)
		nothingAfter(t, a1, id, end)
	})

	t.Run("ring-no-answer moves the call on", func(t *testing.T) {
		m, drv := runQuietMain(t, 0)
		a1, a2 := agentDesk(t, m, "agent1"), agentDesk(t, m, "agent2")
		a2.ok("set_agent_state", map[string]any{"state": "not_ready", "reason": "break"})
		a2.agentState("not_ready", "break")
		a1.ok("set_agent_state", map[string]any{"state": "ready"})
		a1.agentState("ready", "")
		inject(t, drv, "+15551110012")
		id, _ := a1.callEvent("call.delivered", "", "1001")["call_id"].(string)
		// agent2 becomes free while the call rings at agent1, who rejects it: the queue
		// offers it to agent2.
		a2.ok("set_agent_state", map[string]any{"state": "ready"})
		a2.agentState("ready", "")
		a1.ok("clear_connection", map[string]any{"call_id": id})
		div, end := ending(t, a1, "call.diverted", id, "1001")
		if div["diverted_to"] != "support" || div["cause"] != "call_rejected" || div["agent"] != "agent1" {
			t.Fatalf("diverted = %v", div)
		}
		secondAgentsPart(t, a2, id)
		nothingAfter(t, a1, id, end)
	})
}
