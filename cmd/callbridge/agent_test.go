package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/callbridge/callbridge"
)

// availability reads GET /v1/agents/{agent}/availability with token; it returns the status
// and the decoded body.
func availability(t *testing.T, m *Main, token, agent string) (int, callbridge.Availability) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, "http://"+m.HTTP.Addr()+"/v1/agents/"+agent+"/availability", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var av callbridge.Availability
	if resp.StatusCode == http.StatusOK {
		if err := json.Unmarshal(b, &av); err != nil {
			t.Fatalf("availability body %s: %v", b, err)
		}
	}
	return resp.StatusCode, av
}

func reasonCodes(av callbridge.Availability) map[string]callbridge.AvailabilityReason {
	out := map[string]callbridge.AvailabilityReason{}
	for _, r := range av.Reasons {
		out[r.Code] = r
	}
	return out
}

// TestServeAgentAvailability: log on and off from the web, the availability endpoint and
// its access rules, a phone that unregisters, a desktop lost for the grace time, and a
// ringing call at an empty seat.
func TestServeAgentAvailability(t *testing.T) {
	m, drv := runQuietMain(t, time.Second)
	ctx := context.Background()
	supTok := login(t, m, "supervisor1", "demo")
	sup := dial(t, m, supTok, "")
	tok1 := login(t, m, "agent1", "demo")
	a1 := dial(t, m, tok1, "")
	a1.next("snapshot", func(m map[string]any) bool { return m["type"] == "snapshot" })

	// Logged out at start: not routable, explained.
	if st, av := availability(t, m, tok1, "agent1"); st != http.StatusOK || av.Routable || reasonCodes(av)[callbridge.UnavailLoggedOut].Cause.Event != "start" || av.Desktops != 1 {
		t.Fatalf("agent1 at start: %d %+v", st, av)
	}
	// Logging on from the web puts the agent in their queues.
	a1.ok("set_agent_state", map[string]any{"state": "ready"})
	on := a1.next("logged_on", isEvent("agent.logged_on", nil))["data"].(map[string]any)
	if qs, _ := on["queues"].([]any); len(qs) != 1 || qs[0] != "support" {
		t.Fatalf("agent.logged_on = %v", on)
	}
	a1.agentState("ready", "")
	if st, av := availability(t, m, tok1, "agent1"); st != http.StatusOK || !av.Routable || len(av.Reasons) != 0 || av.State != callbridge.AgentReady {
		t.Fatalf("agent1 ready: %d %+v", st, av)
	}
	// Agents read only their own; supervisors their tenant's.
	if st, _ := availability(t, m, tok1, "agent2"); st != http.StatusForbidden {
		t.Fatalf("agent1 reading agent2: %d", st)
	}
	if st, av := availability(t, m, supTok, "agent1"); st != http.StatusOK || !av.Routable {
		t.Fatalf("supervisor reading agent1: %d %+v", st, av)
	}
	if st, _ := availability(t, m, supTok, "nobody"); st != http.StatusNotFound {
		t.Fatalf("unknown agent: %d", st)
	}
	if st, _ := availability(t, m, "bad-token", "agent1"); st != http.StatusUnauthorized {
		t.Fatalf("bad token: %d", st)
	}

	// The phone unregisters: not routable, device_unavailable, shown to the agent.
	if err := drv.SetRegistered(ctx, "1001", false); err != nil {
		t.Fatal(err)
	}
	a1.agentState("not_ready", callbridge.ReasonDeviceUnavailable)
	_, av := availability(t, m, tok1, "agent1")
	if r, ok := reasonCodes(av)[callbridge.UnavailDeviceUnavailable]; av.Routable || !ok || r.Cause.Event != "device_state" || r.Cause.Source != "switch" {
		t.Fatalf("unregistered: %+v", av)
	}
	if err := drv.SetRegistered(ctx, "1001", true); err != nil {
		t.Fatal(err)
	}
	a1.agentState("ready", "")

	// A call rings and the only desktop closes: the seat is empty with a ringing call, so the
	// agent is paused at once, before the grace time, and offered no more calls. "At once" is
	// read on the engine's clock, not the test's: the pause's time is before the end of the
	// grace time that the same answer reports (the grace timer cannot fire before that end;
	// engine TestDesktopLost checks both with a fake clock).
	inject(t, drv, "+15551110004")
	a1.callEvent("call.delivered", "", "1001")
	a1.c.CloseNow()
	sup.next("agent1 busy, next desktop_lost", isEvent("agent.state_changed", func(a map[string]any) bool {
		return a["agent"] == "agent1" && a["state"] == "busy" && a["next_state"] == "not_ready" && a["next_reason"] == callbridge.ReasonDesktopLost
	}))
	_, av = availability(t, m, supTok, "agent1")
	rs := reasonCodes(av)
	if av.Desktops != 0 || rs[callbridge.UnavailBusy].Cause.Event != "call.delivered" ||
		rs[callbridge.UnavailNotReady].Reason != callbridge.ReasonDesktopLost || rs[callbridge.UnavailNotReady].Cause.Event != "desktop_lost" {
		t.Fatalf("ringing at an empty seat: %+v", av)
	}
	if paused := rs[callbridge.UnavailNotReady].Cause.Time; av.DesktopLostAt.IsZero() || paused.Before(av.DesktopLostAt) || !paused.Before(av.DesktopLostAfter) {
		t.Fatalf("paused at %s; the desktop went at %s, its grace time ends at %s: the pause must come from the ringing call, at once",
			paused, av.DesktopLostAt, av.DesktopLostAfter)
	}

	// A desktop gone for the grace time: not_ready desktop_lost.
	tok2 := login(t, m, "agent2", "demo")
	a2 := dial(t, m, tok2, "")
	a2.next("snapshot", func(m map[string]any) bool { return m["type"] == "snapshot" })
	a2.ok("set_agent_state", map[string]any{"state": "not_ready", "reason": "lunch"})
	a2.ok("set_agent_state", map[string]any{"state": "ready"})
	a2.agentState("ready", "")
	a2.ok("ping", nil)
	a2.c.CloseNow()
	sup.next("agent2 desktop_lost", isEvent("agent.state_changed", func(a map[string]any) bool {
		return a["agent"] == "agent2" && a["state"] == "not_ready" && a["reason"] == callbridge.ReasonDesktopLost
	}))
	// On the engine's clock: lost once the grace time after the desktop went had passed.
	_, av = availability(t, m, supTok, "agent2")
	if lost := reasonCodes(av)[callbridge.UnavailNotReady].Cause.Time; av.DesktopLostAfter.Sub(av.DesktopLostAt) != time.Second || lost.Before(av.DesktopLostAfter) {
		t.Fatalf("desktop_lost at %s; the desktop went at %s, the 1 s grace time ends at %s", lost, av.DesktopLostAt, av.DesktopLostAfter)
	}
	// Back on the desktop: still not_ready desktop_lost until the agent chooses.
	a2 = dial(t, m, tok2, "")
	snap := a2.next("snapshot", func(m map[string]any) bool { return m["type"] == "snapshot" })
	if ag := snap["data"].(map[string]any)["agent"].(map[string]any); ag["reason"] != callbridge.ReasonDesktopLost {
		t.Fatalf("agent2 snapshot = %v", ag)
	}
	// Logging off from the web removes the agent from the queues.
	a2.ok("set_agent_state", map[string]any{"state": "logged_out"})
	off := a2.next("logged_off", isEvent("agent.logged_off", nil))["data"].(map[string]any)
	if off["state"] != "logged_out" || off["queues"] != nil {
		t.Fatalf("agent.logged_off = %v", off)
	}
	_, av = availability(t, m, tok2, "agent2")
	if r := reasonCodes(av)[callbridge.UnavailLoggedOut]; r.Cause.Event != "set_agent_state" || r.Cause.By != "agent2" {
		t.Fatalf("agent2 after log-off: %+v", av)
	}
}
