package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/callbridge/callbridge/internal/testenv"
)

// runMain starts `callbridge serve` on the embedded default (simulated PBX, embedded NATS,
// SQLite) with HTTP on a free loopback port and data in a temp dir.
func runMain(t *testing.T) *Main { t.Helper(); return runMainWith(t, nil) }

// runMainWith is runMain with changes to the Main before it opens (nil: none). It returns
// once the simulated switch is connected and resynchronised.
func runMainWith(t *testing.T, change func(*Main)) *Main {
	t.Helper()
	m := NewMain(io.Discard, os.Stderr)
	m.HTTPAddr = "127.0.0.1:0"
	m.DataDir = t.TempDir()
	m.SimInterval = 300 * time.Millisecond
	m.LogLevel = "error"
	m.WebhookAllowLoopback = true // the tests' CRM receivers listen on 127.0.0.1
	if change != nil {
		change(m)
	}
	if err := m.Open(testenv.Context(t)); err != nil {
		m.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	testenv.Eventually(t, "the node to be ready", func() bool { return m.Node.Ready() == nil })
	return m
}

func login(t *testing.T, m *Main, user, pass string) string {
	t.Helper()
	return loginAt(t, m.HTTP.Addr(), user, pass)
}

// desk is one agent desktop connection speaking the v1 WebSocket protocol.
type desk struct {
	t    *testing.T
	c    *websocket.Conn
	n    int
	msgs chan map[string]any
	// pending holds messages read while waiting for something else, oldest first.
	pending []map[string]any
}

func dial(t *testing.T, m *Main, token, query string) *desk {
	t.Helper()
	return dialAt(t, m.HTTP.Addr(), token, query)
}

// dialAt opens a desktop on the node listening on addr.
func dialAt(t *testing.T, addr, token, query string) *desk {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testenv.Patience)
	defer cancel()
	c, _, err := websocket.Dial(ctx, "ws://"+addr+"/v1/ws?access_token="+token+query, nil)
	if err != nil {
		t.Fatal(err)
	}
	c.SetReadLimit(1 << 20)
	d := &desk{t: t, c: c, msgs: make(chan map[string]any, 1024)}
	go func() {
		defer close(d.msgs)
		for {
			_, b, err := c.Read(context.Background())
			if err != nil {
				return
			}
			var msg map[string]any
			if json.Unmarshal(b, &msg) == nil {
				d.msgs <- msg
			}
		}
	}()
	t.Cleanup(func() { c.CloseNow() })
	return d
}

// next returns (and consumes) the oldest message for which match is true, failing after
// testenv.Patience. Messages that do not match stay for later calls.
func (d *desk) next(what string, match func(map[string]any) bool) map[string]any {
	d.t.Helper()
	for i, msg := range d.pending {
		if match(msg) {
			d.pending = append(d.pending[:i], d.pending[i+1:]...)
			return msg
		}
	}
	deadline := time.After(testenv.Patience)
	for {
		select {
		case msg, ok := <-d.msgs:
			if !ok {
				d.t.Fatalf("connection closed while waiting for %s", what)
			}
			if match(msg) {
				return msg
			}
			d.pending = append(d.pending, msg)
		case <-deadline:
			d.t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// cmd sends a command and returns its reply.
func (d *desk) cmd(name string, params map[string]any) map[string]any {
	d.t.Helper()
	d.n++
	id := fmt.Sprintf("c%d", d.n)
	b, _ := json.Marshal(map[string]any{"id": id, "cmd": name, "params": params})
	if err := d.c.Write(context.Background(), websocket.MessageText, b); err != nil {
		d.t.Fatal(err)
	}
	return d.next("reply to "+name, func(m map[string]any) bool { return m["re"] == id })
}

func isEvent(typ string, f func(data map[string]any) bool) func(map[string]any) bool {
	return func(m map[string]any) bool {
		if m["type"] != typ {
			return false
		}
		data, _ := m["data"].(map[string]any)
		return f == nil || f(data)
	}
}

func errCode(reply map[string]any) string {
	e, _ := reply["error"].(map[string]any)
	s, _ := e["code"].(string)
	return s
}

// TestServeAgentPath drives the newcomer's path over the WebSocket against the embedded
// default: log in as agent1, go ready, get a call with ANI and IVR data, answer, hang up, wrap
// up, and be ready again — plus the refusals of bad input on the way.
func TestServeAgentPath(t *testing.T) {
	m := runMain(t)
	d := dial(t, m, login(t, m, "agent1", "demo"), "")
	snap := d.next("snapshot", func(m map[string]any) bool { return m["type"] == "snapshot" })
	if agent, _ := snap["data"].(map[string]any)["agent"].(map[string]any); agent["agent"] != "agent1" {
		t.Fatalf("snapshot agent = %v", snap["data"])
	}

	// Bad input first: nothing may change.
	if r := d.cmd("no_such_command", nil); r["ok"] != false || errCode(r) != "invalid" {
		t.Errorf("unknown command reply = %v", r)
	}
	if r := d.cmd("set_agent_state", map[string]any{"state": "ready", "tenant": "other"}); r["ok"] != false || errCode(r) != "invalid" {
		t.Errorf("unknown param reply = %v", r)
	}
	if r := d.cmd("set_agent_state", map[string]any{"state": "not_ready", "reason": "no-such-reason"}); r["ok"] != false {
		t.Errorf("unknown reason code accepted: %v", r)
	}

	if r := d.cmd("set_agent_state", map[string]any{"state": "ready"}); r["ok"] != true {
		t.Fatalf("set ready: %v", r)
	}
	d.next("agent ready", isEvent("agent.state_changed", func(a map[string]any) bool { return a["state"] == "ready" }))

	// A call arrives with its screen pop.
	ev := d.next("call.delivered", isEvent("call.delivered", nil))
	call := ev["data"].(map[string]any)
	callID, _ := call["call_id"].(string)
	ad, _ := call["attached_data"].(map[string]any)
	if callID == "" || call["ani"] == "" || call["dnis"] == "" || call["queue"] == "" || ad["IVR_ACCOUNT"] == nil || ad["IVR_REASON"] == nil {
		t.Fatalf("call.delivered lacks the screen pop: %v", call)
	}
	if call["device"] != "1001" || call["agent"] != "agent1" {
		t.Errorf("delivered to device %v agent %v, want 1001/agent1", call["device"], call["agent"])
	}

	// Another agent cannot touch it; a CR/LF target is refused.
	d2 := dial(t, m, login(t, m, "agent2", "demo"), "")
	if r := d2.cmd("clear_connection", map[string]any{"call_id": callID}); r["ok"] != false || errCode(r) != "forbidden" {
		t.Errorf("agent2 clearing agent1's call: %v", r)
	}
	if r := d.cmd("single_step_transfer", map[string]any{"call_id": callID, "to": "1002\r\nAction: Hangup"}); r["ok"] != false || errCode(r) != "invalid" {
		t.Errorf("CR/LF transfer target: %v", r)
	}

	if r := d.cmd("answer_call", map[string]any{"call_id": callID}); r["ok"] != true {
		t.Fatalf("answer: %v", r)
	}
	d.next("call.established", isEvent("call.established", func(c map[string]any) bool {
		return c["call_id"] == callID && c["device"] == "1001"
	}))
	d.next("agent busy", isEvent("agent.state_changed", func(a map[string]any) bool { return a["state"] == "busy" }))

	if r := d.cmd("clear_connection", map[string]any{"call_id": callID}); r["ok"] != true {
		t.Fatalf("hang up: %v", r)
	}
	// The agent's own connection_cleared is their last event of the call (no call.cleared
	// follows for an agent who left).
	d.next("call.connection_cleared", isEvent("call.connection_cleared", func(c map[string]any) bool {
		return c["call_id"] == callID && c["device"] == "1001"
	}))
	d.next("wrap-up", isEvent("agent.state_changed", func(a map[string]any) bool { return a["state"] == "working_after_call" }))
	d.next("ready after wrap-up", isEvent("agent.state_changed", func(a map[string]any) bool { return a["state"] == "ready" }))

	// /metrics counted all of it.
	mt := scrapeMetrics(t, m)
	for name, min := range map[string]float64{
		`callbridge_switch_up`:                                                  1,
		`callbridge_events_total{type="call.delivered"}`:                        1,
		`callbridge_events_total{type="call.cleared"}`:                          1,
		`callbridge_commands_total{command="answer_call",result="ok"}`:          1,
		`callbridge_commands_total{command="set_agent_state",result="ok"}`:      1,
		`callbridge_commands_total{command="clear_connection",result="ok"}`:     1,
		`callbridge_commands_total{command="set_agent_state",result="invalid"}`: 1, // the unknown reason
		`go_goroutines`: 1,
	} {
		if v, ok := mt[name]; !ok || v < min {
			t.Errorf("metric %s = %v (present %v), want at least %v", name, v, ok, min)
		}
	}
	// The demo tenant's five agents, each in one state; agent1 ready, or already busy with the
	// next call.
	total := 0.0
	for _, st := range []string{"logged_out", "not_ready", "ready", "busy", "working_after_call"} {
		total += mt[`callbridge_agents{state="`+st+`"}`]
	}
	if total != 5 || mt[`callbridge_agents{state="ready"}`]+mt[`callbridge_agents{state="busy"}`] < 1 {
		t.Errorf("callbridge_agents: %v in all, %v ready, %v busy; want 5, agent1 ready or busy", total,
			mt[`callbridge_agents{state="ready"}`], mt[`callbridge_agents{state="busy"}`])
	}
	if _, ok := mt["callbridge_calls_active"]; !ok {
		t.Error("metric callbridge_calls_active missing")
	}
	if v := mt["callbridge_websocket_connections"]; v != 2 {
		t.Errorf("callbridge_websocket_connections = %v, want 2 (agent1 and agent2)", v)
	}
}

// scrapeMetrics GETs /metrics and returns its samples by name with labels, as written.
func scrapeMetrics(t *testing.T, m *Main) map[string]float64 {
	t.Helper()
	res, err := http.Get("http://" + m.HTTP.Addr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	if res.StatusCode != 200 || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/plain") {
		t.Fatalf("GET /metrics: %d %s", res.StatusCode, res.Header.Get("Content-Type"))
	}
	out := map[string]float64{}
	for _, line := range strings.Split(string(body), "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if i < 0 || err != nil {
			t.Fatalf("metrics line %q", line)
		}
		out[line[:i]] = v
	}
	return out
}

// TestServeHealth checks /healthz, /readyz and the agent page.
func TestServeHealth(t *testing.T) {
	m := runMain(t)
	for _, tc := range []struct{ path, want string }{
		{"/healthz", "ok"}, {"/readyz", ""}, {"/", "<html"},
	} {
		resp, err := http.Get("http://" + m.HTTP.Addr() + tc.path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !strings.Contains(strings.ToLower(string(b)), tc.want) {
			t.Errorf("GET %s: %s %.100s", tc.path, resp.Status, b)
		}
	}

	// /readyz covers the store and the bus too: with the store gone the node is not ready.
	m.store.Close()
	resp, err := http.Get("http://" + m.HTTP.Addr() + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(b), "store") {
		t.Errorf("GET /readyz with the store closed: %s %.200s", resp.Status, b)
	}
}
