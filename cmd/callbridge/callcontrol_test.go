package main

import (
	"context"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/callbridge/callbridge"
	"github.com/callbridge/callbridge/internal/testenv"
	"github.com/callbridge/callbridge/sim"
)

// runQuietMain starts `callbridge serve` on the embedded default like runMain, but the
// simulated PBX places no calls by itself: the test injects each call, so routing is
// deterministic. grace is --desktop-grace.
func runQuietMain(t *testing.T, grace time.Duration) (*Main, *sim.Driver) {
	t.Helper()
	m := runMainWith(t, func(m *Main) { m.SimInterval, m.DesktopGrace = 0, grace })
	drv, ok := m.Node.Driver().(*sim.Driver)
	if !ok {
		t.Fatal("the embedded default does not run the simulated PBX")
	}
	return m, drv
}

// runLoggedMain is runQuietMain with a log of every switch command the node has the simulated
// PBX carry out.
func runLoggedMain(t *testing.T, grace time.Duration) (*Main, *sim.Driver, *commandLog) {
	t.Helper()
	log := &commandLog{}
	var drv *sim.Driver
	m := runMainWith(t, func(m *Main) {
		m.SimInterval, m.DesktopGrace = 0, grace
		m.newSim = func(cfg sim.Config, lg *slog.Logger) callbridge.Driver {
			drv = sim.New(cfg, lg)
			return &loggingDriver{Driver: drv, log: log}
		}
	})
	return m, drv, log
}

// loggingDriver is the simulated PBX's driver, logging each command it is given.
type loggingDriver struct {
	*sim.Driver
	log *commandLog
}

func (d *loggingDriver) Execute(ctx context.Context, cmd callbridge.SwitchCommand) error {
	d.log.add(cmd)
	return d.Driver.Execute(ctx, cmd)
}

// commandLog is the switch commands given to a loggingDriver, in order.
type commandLog struct {
	mu   sync.Mutex
	cmds []callbridge.SwitchCommand
}

// len is how many commands the log holds.
func (l *commandLog) len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.cmds)
}

func (l *commandLog) add(cmd callbridge.SwitchCommand) {
	l.mu.Lock()
	l.cmds = append(l.cmds, cmd)
	l.mu.Unlock()
}

// wait waits for a command that match accepts and returns the commands up to it.
func (l *commandLog) wait(t *testing.T, what string, match func(callbridge.SwitchCommand) bool) []callbridge.SwitchCommand {
	t.Helper()
	var upTo []callbridge.SwitchCommand
	testenv.Eventually(t, what, func() bool {
		l.mu.Lock()
		defer l.mu.Unlock()
		if i := slices.IndexFunc(l.cmds, match); i >= 0 {
			upTo = slices.Clone(l.cmds[:i+1])
			return true
		}
		return false
	})
	return upTo
}

// agentDesk logs agent in, connects a desktop and waits for its snapshot.
func agentDesk(t *testing.T, m *Main, agent string) *desk {
	t.Helper()
	d := dial(t, m, login(t, m, agent, "demo"), "")
	d.next("snapshot", func(m map[string]any) bool { return m["type"] == "snapshot" })
	return d
}

// ok sends a command and fails unless it is accepted; it returns the reply's data.
func (d *desk) ok(name string, params map[string]any) map[string]any {
	d.t.Helper()
	r := d.cmd(name, params)
	if r["ok"] != true {
		d.t.Fatalf("%s %v: %v", name, params, r)
	}
	data, _ := r["data"].(map[string]any)
	return data
}

// refused sends a command that must be refused with code.
func (d *desk) refused(code, name string, params map[string]any) {
	d.t.Helper()
	if r := d.cmd(name, params); r["ok"] != false || errCode(r) != code {
		d.t.Fatalf("%s %v: reply %v, want error %s", name, params, r, code)
	}
}

// callEvent waits for a call event of typ about call id (any call when id is ""), and
// device dev when set; it returns the event's data.
func (d *desk) callEvent(typ, id, dev string) map[string]any {
	d.t.Helper()
	ev := d.next(typ+" "+id+" "+dev, isEvent(typ, func(c map[string]any) bool {
		return (id == "" || c["call_id"] == id) && (dev == "" || c["device"] == dev)
	}))
	return ev["data"].(map[string]any)
}

// agentState waits for agent.state_changed with state (and reason when set).
func (d *desk) agentState(state, reason string) map[string]any {
	d.t.Helper()
	ev := d.next("agent "+state+" "+reason, isEvent("agent.state_changed", func(a map[string]any) bool {
		return a["state"] == state && (reason == "" || a["reason"] == reason)
	}))
	return ev["data"].(map[string]any)
}

func attached(c map[string]any) map[string]any {
	ad, _ := c["attached_data"].(map[string]any)
	return ad
}

// inject places a call to the demo DID.
func inject(t *testing.T, drv *sim.Driver, ani string) {
	t.Helper()
	if _, err := drv.InjectCall(context.Background(), "demo", ani, "18005550199",
		map[string]string{"IVR_ACCOUNT": "55501", "IVR_REASON": "billing", "IVR_LANG": "en"}); err != nil {
		t.Fatal(err)
	}
}

// TestServeCallControl drives every call-control command over the WebSocket against the
// simulated PBX: answer, update_call_data, hold/retrieve, consultation_call (the reply carries
// the consultation's call_id) with data and notes in the consulted agent's pop, transfer_call,
// single_step_transfer to an agent with notes, consultation + conference_call,
// clear_connection, clear_call, set_disposition, make_call (agent-first) with idempotency,
// blind transfers to a queue and to an outside number, and the refusals on the way.
func TestServeCallControl(t *testing.T) {
	m, drv := runQuietMain(t, 0)
	a1, a2, a3, a4 := agentDesk(t, m, "agent1"), agentDesk(t, m, "agent2"), agentDesk(t, m, "agent3"), agentDesk(t, m, "agent4")
	a1.ok("set_agent_state", map[string]any{"state": "ready"})
	a1.agentState("ready", "")
	for _, d := range []*desk{a2, a3, a4} {
		d.ok("set_agent_state", map[string]any{"state": "not_ready", "reason": "break"})
		d.agentState("not_ready", "break")
	}

	// An inbound call to agent1, the only ready agent.
	inject(t, drv, "+15551110001")
	pop := a1.callEvent("call.delivered", "", "1001")
	id, _ := pop["call_id"].(string)
	if pop["ani"] != "+15551110001" || attached(pop)["IVR_ACCOUNT"] != "55501" || pop["queue"] != "support" {
		t.Fatalf("screen pop = %v", pop)
	}
	a2.refused("forbidden", "answer_call", map[string]any{"call_id": id})
	a1.refused("conflict", "hold_call", map[string]any{"call_id": id}) // not answered yet
	a1.refused("not_found", "answer_call", map[string]any{"call_id": "01JNOSUCHCALL0000000000000"})
	a1.refused("invalid", "answer_call", map[string]any{})
	a1.ok("answer_call", map[string]any{"call_id": id})
	a1.callEvent("call.established", id, "1001")
	a1.agentState("busy", "")

	a1.ok("update_call_data", map[string]any{"call_id": id, "attached_data": map[string]any{"crm_case": "C-77"}, "notes": "asked about invoice 7"})
	if ad := attached(a1.callEvent("call.data_updated", id, "")); ad["crm_case"] != "C-77" || ad["notes"] != "asked about invoice 7" {
		t.Fatalf("data_updated = %v", ad)
	}
	a1.refused("invalid", "update_call_data", map[string]any{"call_id": id, "attached_data": map[string]any{"CTI_TENANT": "x"}})

	a1.ok("hold_call", map[string]any{"call_id": id})
	a1.callEvent("call.held", id, "1001")
	a1.refused("conflict", "hold_call", map[string]any{"call_id": id})
	a1.ok("retrieve_call", map[string]any{"call_id": id})
	a1.callEvent("call.retrieved", id, "1001")

	// Consultative transfer to agent2: the reply names the consultation; agent2's pop shows
	// the customer's data and the notes before answering.
	a1.refused("invalid", "consultation_call", map[string]any{"call_id": id, "to": "1002\r\nAction: Hangup"})
	a1.refused("invalid", "consultation_call", map[string]any{"call_id": id, "to": "1002&PJSIP/1003"})
	res := a1.ok("consultation_call", map[string]any{"call_id": id, "to": "agent2", "notes": "wants a refund", "idempotency_key": "consult-1"})
	kid, _ := res["call_id"].(string)
	if kid == "" || kid == id {
		t.Fatalf("consultation_call reply data = %v", res)
	}
	if again := a1.ok("consultation_call", map[string]any{"call_id": id, "to": "agent2", "notes": "wants a refund", "idempotency_key": "consult-1"}); again["call_id"] != kid {
		t.Fatalf("retried consultation_call = %v, want %s", again, kid)
	}
	a1.callEvent("call.held", id, "1001")
	kpop := a2.callEvent("call.delivered", kid, "1002")
	if ad := attached(kpop); ad["notes"] != "wants a refund" || ad["crm_case"] != "C-77" || ad["IVR_ACCOUNT"] != "55501" || kpop["consult_of"] != id {
		t.Fatalf("consulted agent's pop = %v", kpop)
	}
	a1.refused("conflict", "conference_call", map[string]any{"call_id": id, "consult_call_id": id}) // not a consultation
	a2.ok("answer_call", map[string]any{"call_id": kid})
	a2.callEvent("call.established", kid, "1002")
	a1.ok("transfer_call", map[string]any{"call_id": id, "consult_call_id": kid})
	xfer := a1.callEvent("call.transferred", id, "")
	if xfer["transferring_device"] != "1001" || xfer["transferred_to"] != "1002" || xfer["consult_call_id"] != kid {
		t.Fatalf("call.transferred = %v", xfer)
	}
	if c := a2.callEvent("call.cleared", kid, ""); c["cause"] != string(callbridge.CauseTransferred) {
		t.Fatalf("consultation cleared = %v", c)
	}
	a2.callEvent("call.transferred", id, "")
	a1.agentState("working_after_call", "")
	// agent1 saves the wrap-up of the call they handled and goes ready at once.
	a1.refused("invalid", "set_disposition", map[string]any{"call_id": id, "disposition": "bad code"})
	a3.refused("forbidden", "set_disposition", map[string]any{"call_id": id, "disposition": "sale"})
	a1.ok("set_disposition", map[string]any{"call_id": id, "disposition": "transferred_to_billing", "notes": "refund\nvia billing", "state": "ready"})
	if d := a1.callEvent("call.disposition_set", id, "1001"); d["disposition"] != "transferred_to_billing" || d["notes"] != "refund\nvia billing" {
		t.Fatalf("disposition_set = %v", d)
	}
	a1.agentState("ready", "")

	// Blind transfer from agent2 to agent3 (not ready: a direct transfer rings anyway) with
	// notes that agent3 sees before answering.
	a2.ok("single_step_transfer", map[string]any{"call_id": id, "to": "agent3", "notes": "VIP, be nice", "attached_data": map[string]any{"tier": "gold"}})
	pop3 := a3.callEvent("call.delivered", id, "1003")
	if ad := attached(pop3); ad["notes"] != "VIP, be nice" || ad["tier"] != "gold" || ad["crm_case"] != "C-77" || pop3["ani"] != "+15551110001" {
		t.Fatalf("agent3's pop = %v", pop3)
	}
	a3.ok("answer_call", map[string]any{"call_id": id})
	a3.callEvent("call.established", id, "1003")

	// Conference: agent3 consults agent4 and joins them in; agent3 leaves, agent4 hangs up.
	res = a3.ok("consultation_call", map[string]any{"call_id": id, "to": "1004"})
	k2, _ := res["call_id"].(string)
	a4.callEvent("call.delivered", k2, "1004")
	a4.ok("answer_call", map[string]any{"call_id": k2})
	a4.callEvent("call.established", k2, "1004")
	a3.ok("conference_call", map[string]any{"call_id": id, "consult_call_id": k2})
	if c := a3.callEvent("call.conferenced", id, ""); c["consult_call_id"] != k2 || len(c["connections"].([]any)) != 3 {
		t.Fatalf("call.conferenced = %v", c)
	}
	a3.ok("clear_connection", map[string]any{"call_id": id})
	a4.callEvent("call.connection_cleared", id, "1003")
	a4.ok("clear_call", map[string]any{"call_id": id})
	a4.callEvent("call.cleared", id, "")

	// make_call (agent-first), idempotent.
	a4.ok("set_agent_state", map[string]any{"state": "not_ready", "reason": "break"})
	res = a4.ok("make_call", map[string]any{"to": "+15557654321", "attached_data": map[string]any{"crm_contact": "K-9"}, "idempotency_key": "dial-1"})
	oid, _ := res["call_id"].(string)
	if again := a4.ok("make_call", map[string]any{"to": "+15557654321", "attached_data": map[string]any{"crm_contact": "K-9"}, "idempotency_key": "dial-1"}); again["call_id"] != oid {
		t.Fatalf("retried make_call = %v, want %s", again, oid)
	}
	a4.refused("conflict", "set_agent_state", map[string]any{"state": "ready", "idempotency_key": "dial-1"}) // key reused for another command
	if o := a4.callEvent("call.originated", oid, "1004"); attached(o)["crm_contact"] != "K-9" || o["direction"] != "outbound" {
		t.Fatalf("call.originated = %v", o)
	}
	a4.callEvent("call.established", oid, "1004")
	a4.callEvent("call.established", oid, "+15557654321")
	a4.refused("conflict", "make_call", map[string]any{"to": "+15557654322"}) // already on a call
	// Blind transfer of the customer to an outside number.
	a4.ok("single_step_transfer", map[string]any{"call_id": oid, "to": "+15550009999"})
	if x := a4.callEvent("call.transferred", oid, ""); x["transferred_to"] != "+15550009999" || x["transferring_device"] != "1004" {
		t.Fatalf("call.transferred = %v", x)
	}

	// Blind transfer to a queue: the call queues and goes to the ready agent1.
	inject(t, drv, "+15551110002")
	id2, _ := a1.callEvent("call.delivered", "", "1001")["call_id"].(string)
	a1.ok("answer_call", map[string]any{"call_id": id2})
	a1.callEvent("call.established", id2, "1001")
	a2.ok("set_agent_state", map[string]any{"state": "ready"})
	a1.ok("single_step_transfer", map[string]any{"call_id": id2, "to": "support", "notes": "second opinion"})
	if c := a2.callEvent("call.delivered", id2, "1002"); attached(c)["notes"] != "second opinion" || c["queue"] != "support" {
		t.Fatalf("queued transfer pop = %v", c)
	}
	a2.ok("clear_connection", map[string]any{"call_id": id2}) // reject: back to the queue, which goes on to the next member
	if d := a2.callEvent("call.diverted", id2, "1002"); d["diverted_to"] != "support" || d["cause"] != "call_rejected" {
		t.Fatalf("rejected queue offer = %v", d)
	}
}

// TestServeTelsetAndTabs: what agents do on the phone is followed and shown in every tab of
// the agent, never reverted; a command from any tab works; closing one tab does not make the
// agent desktop_lost.
func TestServeTelsetAndTabs(t *testing.T) {
	m, drv, cmds := runLoggedMain(t, 500*time.Millisecond)
	tok := login(t, m, "agent1", "demo")
	tab1, tab2 := dial(t, m, tok, ""), dial(t, m, tok, "")
	for _, d := range []*desk{tab1, tab2} {
		d.next("snapshot", func(m map[string]any) bool { return m["type"] == "snapshot" })
	}
	tab2.ok("set_agent_state", map[string]any{"state": "ready"})
	tab1.agentState("ready", "")
	tab2.agentState("ready", "")
	ctx := context.Background()

	// DND on the phone: both tabs see not_ready dnd, and it stays.
	before := cmds.len()
	if err := drv.PressButton(ctx, "1001", sim.ButtonPause); err != nil {
		t.Fatal(err)
	}
	tab1.agentState("not_ready", sim.TelsetPauseReason)
	tab2.agentState("not_ready", sim.TelsetPauseReason)
	// Fighting the phone would be a switch command to unpause 1001, issued when the pause came.
	// The barrier: a later switch command of callbridge's own (agent2's desktop_lost pause)
	// has been carried out — the node carries them out in order — and the switch's events
	// up to now have been through the engine.
	a2 := agentDesk(t, m, "agent2")
	a2.ok("set_agent_state", map[string]any{"state": "ready"})
	a2.agentState("ready", "")
	a2.c.CloseNow()
	upTo := cmds.wait(t, "agent2's desktop_lost pause", func(c callbridge.SwitchCommand) bool {
		return c.Type == callbridge.SwitchSetMemberState && c.Device == "1002" && c.Reason == callbridge.ReasonDesktopLost
	})
	if err := m.Node.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	for _, c := range upTo[before:] {
		if c.Device == "1001" {
			t.Errorf("switch command %+v for 1001 after its phone paused it: callbridge fought the phone", c)
		}
	}
	if snap, err := m.Node.Snapshot(ctx, "demo", "agent1"); err != nil || snap.Agent.Reason != sim.TelsetPauseReason {
		t.Fatalf("agent1 = %+v (%v): the phone's pause was reverted", snap.Agent, err)
	}
	if err := drv.PressButton(ctx, "1001", sim.ButtonUnpause); err != nil {
		t.Fatal(err)
	}
	tab1.agentState("ready", "")

	// A call answered, held and hung up on the phone.
	inject(t, drv, "+15551110003")
	id, _ := tab1.callEvent("call.delivered", "", "1001")["call_id"].(string)
	tab2.callEvent("call.delivered", id, "1001")
	for _, b := range []sim.Button{sim.ButtonAnswer, sim.ButtonHold} {
		if err := drv.PressButton(ctx, "1001", b); err != nil {
			t.Fatal(err)
		}
	}
	tab2.callEvent("call.established", id, "1001")
	tab1.callEvent("call.held", id, "1001")
	tab1.ok("retrieve_call", map[string]any{"call_id": id}) // a command from the other tab
	tab2.callEvent("call.retrieved", id, "1001")
	// A blind transfer on the phone to agent2's extension.
	if err := drv.PhoneTransfer(ctx, "1001", "1002", false); err != nil {
		t.Fatal(err)
	}
	if x := tab2.callEvent("call.transferred", id, ""); x["transferring_device"] != "1001" || x["transferred_to"] != "1002" {
		t.Fatalf("transferred = %v", x)
	}
	tab1.agentState("working_after_call", "")

	// Closing one tab is not losing the desktop: once the engine has seen the tab go (one
	// desktop left), no grace time runs (DesktopLostAt is set only when the last one goes),
	// so desktop_lost cannot follow.
	tab1.c.CloseNow()
	tok2 := login(t, m, "supervisor1", "demo")
	var av callbridge.Availability
	testenv.Eventually(t, "the engine to see one tab close", func() bool {
		_, av = availability(t, m, tok2, "agent1")
		return av.Desktops == 1
	})
	if !av.DesktopLostAt.IsZero() || !av.DesktopLostAfter.IsZero() || av.Reason == callbridge.ReasonDesktopLost {
		t.Fatalf("agent1 with a tab still open: %+v", av)
	}
}
