package http_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/callbridge/callbridge"
	cbhttp "github.com/callbridge/callbridge/http"
	"github.com/callbridge/callbridge/hub"
	"github.com/callbridge/callbridge/internal/testenv"
	"github.com/coder/websocket"
)

func TestWSSendsSnapshotThenEventsAfterIt(t *testing.T) {
	t.Parallel()
	h := newServer(t)
	// Events 1-3 happened before the snapshot; the snapshot says so with seq 3.
	h.log.append(t,
		callEvent("acme", "alice", "CALL1", callbridge.EventCallDelivered),
		callEvent("acme", "bob", "CALL2", callbridge.EventCallDelivered),
		callEvent("acme", "alice", "CALL1", callbridge.EventCallEstablished),
	)
	ringing := callEvent("acme", "alice", "CALL1", callbridge.EventCallEstablished).Data.(*callbridge.CallEvent).Call
	h.cmd.setSnapshot(callbridge.AgentSnapshot{
		Agent:       callbridge.Agent{ID: "alice", Tenant: "acme", Device: "1001", State: callbridge.AgentBusy, Since: t0},
		Calls:       []callbridge.Call{ringing},
		Seq:         3,
		ReasonCodes: []string{"break", "lunch"},
	})

	c := h.connect(t, h.token(t, "alice"), "")
	snap := c.next()
	if snap["type"] != "snapshot" || snap["seq"] != float64(3) {
		t.Fatalf("first message = %v, want a snapshot at seq 3", snap)
	}
	data := snap["data"].(map[string]any)
	calls := data["calls"].([]any)
	if len(calls) != 1 || calls[0].(map[string]any)["attached_data"].(map[string]any)["account"] != "42" {
		t.Errorf("snapshot calls = %v, want CALL1 with its attached data", calls)
	}
	if !reflect.DeepEqual(data["reason_codes"], []any{"break", "lunch"}) {
		t.Errorf("reason_codes = %v", data["reason_codes"])
	}

	h.log.append(t,
		callEvent("acme", "alice", "CALL3", callbridge.EventCallDelivered),   // 4
		callEvent("acme", "bob", "CALL4", callbridge.EventCallDelivered),     // 5: bob's
		callEvent("globex", "alice", "CALL5", callbridge.EventCallDelivered), // 6: another tenant
		callEvent("acme", "alice", "CALL3", callbridge.EventCallEstablished), // 7
	)
	got := c.drain()
	if s := seqs(got); !reflect.DeepEqual(s, []uint64{4, 7}) {
		t.Fatalf("event seqs = %v, want [4 7] (only alice's, after the snapshot)", s)
	}
	ev := got[0]
	for _, k := range []string{"seq", "type", "time", "tenant", "data"} {
		if _, ok := ev[k]; !ok {
			t.Errorf("event %v lacks %q", ev, k)
		}
	}
	if ev["type"] != "call.delivered" || ev["tenant"] != "acme" || ev["data"].(map[string]any)["call_id"] != "CALL3" {
		t.Errorf("event = %v", ev)
	}
}

func TestWSSupervisorGetsTheWholeTenantWithoutSnapshot(t *testing.T) {
	t.Parallel()
	h := newServer(t)
	h.log.append(t, callEvent("acme", "alice", "OLD", callbridge.EventCallDelivered))
	c := h.connect(t, h.token(t, "sam"), "")
	h.log.append(t,
		callEvent("acme", "alice", "CALL1", callbridge.EventCallDelivered),  // 2
		callEvent("globex", "gina", "CALL2", callbridge.EventCallDelivered), // 3
		callEvent("acme", "bob", "CALL3", callbridge.EventCallDelivered),    // 4
	)
	got := c.drain()
	if s := seqs(got); !reflect.DeepEqual(s, []uint64{2, 4}) || len(got) != 2 {
		t.Fatalf("messages = %v, want events 2 and 4 only", got)
	}
}

func TestWSCommandReplies(t *testing.T) {
	t.Parallel()
	h := newServer(t)
	h.cmd.setDo(func(_ context.Context, cmd callbridge.Command) (callbridge.CommandResult, error) {
		switch cmd.Name {
		case callbridge.CmdMakeCall:
			return callbridge.CommandResult{CallID: "NEWCALL"}, nil
		case callbridge.CmdClearCall:
			return callbridge.CommandResult{}, callbridge.Errorf(callbridge.EForbidden, "not your call")
		case callbridge.CmdHoldCall:
			return callbridge.CommandResult{}, errBoom
		}
		return callbridge.CommandResult{}, nil
	})
	c := h.connect(t, h.token(t, "alice"), "")
	c.next() // snapshot

	c.send("c1", "answer_call", map[string]any{"call_id": "CALL1"})
	if r := c.reply("c1"); r["ok"] != true || r["error"] != nil {
		t.Errorf("answer_call reply = %v, want ok", r)
	}
	c.send("c2", "make_call", map[string]any{"to": "+15551230002", "attached_data": map[string]string{"ticket": "T-9"}, "idempotency_key": "k1"})
	if r := c.reply("c2"); r["ok"] != true || r["data"].(map[string]any)["call_id"] != "NEWCALL" {
		t.Errorf("make_call reply = %v, want ok with call_id NEWCALL", r)
	}
	c.send("c3", "clear_call", map[string]any{"call_id": "CALL9"})
	if code, msg := errorOf(t, c.reply("c3")); code != "forbidden" || msg != "not your call" {
		t.Errorf("clear_call error = %s %q, want forbidden \"not your call\"", code, msg)
	}
	c.send("c4", "hold_call", map[string]any{"call_id": "CALL1"})
	if code, msg := errorOf(t, c.reply("c4")); code != "internal" || msg != "internal error" {
		t.Errorf("hold_call error = %s %q, want internal \"internal error\"", code, msg)
	}

	answer := h.cmd.nextCommand(t)
	want := callbridge.Command{Name: callbridge.CmdAnswerCall, Tenant: "acme", Agent: "alice", Role: callbridge.RoleAgent, CallID: "CALL1", Time: t0}
	if !reflect.DeepEqual(answer, want) {
		t.Errorf("Commander got %+v\nwant %+v", answer, want)
	}
	mk := h.cmd.nextCommand(t)
	if mk.To != "+15551230002" || mk.AttachedData["ticket"] != "T-9" || mk.IdempotencyKey != "k1" {
		t.Errorf("make_call command = %+v", mk)
	}
}

func TestWSBadMessagesGetClearErrorsAndTheConnectionSurvives(t *testing.T) {
	t.Parallel()
	h := newServer(t)
	c := h.connect(t, h.token(t, "alice"), "")
	c.next() // snapshot

	tests := []struct {
		name, msg string
		re        any // nil: the reply must have no "re"
		want      string
	}{
		{"malformed JSON", `{"id":"x1","cmd":`, nil, "not valid JSON"},
		{"not an object", `[1,2]`, nil, "JSON object"},
		{"missing id", `{"cmd":"answer_call","params":{"call_id":"C"}}`, nil, `"id" is required`},
		{"id not a string", `{"id":5,"cmd":"ping"}`, nil, `"id" must be a string`},
		{"empty id", `{"id":"","cmd":"ping"}`, nil, `"id" must not be empty`},
		{"missing cmd", `{"id":"b1"}`, "b1", `"cmd" is required`},
		{"unknown cmd", `{"id":"b2","cmd":"dance"}`, "b2", `unknown cmd "dance"`},
		{"unknown param", `{"id":"b3","cmd":"answer_call","params":{"call_id":"C","speed":9}}`, "b3", `unknown field "speed"`},
		{"wrong param type", `{"id":"b4","cmd":"answer_call","params":{"call_id":7}}`, "b4", `"call_id" must be a string`},
		{"attached_data not strings", `{"id":"b5","cmd":"update_call_data","params":{"call_id":"C","attached_data":{"k":1}}}`, "b5", "must be a string"},
		{"params not an object", `{"id":"b6","cmd":"answer_call","params":["C"]}`, "b6", `"params" must be an object`},
		{"unknown top-level field", `{"id":"b7","cmd":"ping","extra":1}`, "b7", `unknown field "extra"`},
		{"ping with params", `{"id":"b8","cmd":"ping","params":{"x":1}}`, "b8", "ping takes no params"},
		{"resume without after_seq", `{"id":"b9","cmd":"resume","params":{}}`, "b9", `"after_seq"`},
		{"resume with negative seq", `{"id":"b10","cmd":"resume","params":{"after_seq":-1}}`, "b10", "non-negative integer"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c.sendRaw(tt.msg)
			r := c.next()
			if r["re"] != tt.re {
				t.Errorf("re = %v, want %v (reply %v)", r["re"], tt.re, r)
			}
			code, msg := errorOf(t, r)
			if code != "invalid" || !strings.Contains(msg, tt.want) {
				t.Errorf("error = %s %q, want invalid containing %q", code, msg, tt.want)
			}
		})
	}
	t.Run("binary message", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := c.conn.Write(ctx, websocket.MessageBinary, []byte(`{"id":"bin","cmd":"ping"}`)); err != nil {
			t.Fatal(err)
		}
		if code, msg := errorOf(t, c.next()); code != "invalid" || !strings.Contains(msg, "binary") {
			t.Errorf("error = %s %q", code, msg)
		}
	})

	h.cmd.noCommand(t)
	c.send("alive", "ping", nil)
	if r := c.reply("alive"); r["ok"] != true {
		t.Fatalf("ping after bad messages = %v", r)
	}
	c.send("ok1", "answer_call", map[string]any{"call_id": "C1"})
	if r := c.reply("ok1"); r["ok"] != true {
		t.Fatalf("answer_call after bad messages = %v", r)
	}
}

func TestWSParamsCannotOverrideTenantOrAgent(t *testing.T) {
	t.Parallel()
	h := newServer(t)
	c := h.connect(t, h.token(t, "alice"), "")
	c.next() // snapshot

	c.send("t1", "answer_call", map[string]any{"call_id": "C1", "tenant": "globex"})
	if code, msg := errorOf(t, c.reply("t1")); code != "invalid" || !strings.Contains(msg, `unknown field "tenant"`) {
		t.Errorf("tenant param: %s %q", code, msg)
	}
	c.send("t2", "set_agent_state", map[string]any{"state": "ready", "role": "admin"})
	if code, _ := errorOf(t, c.reply("t2")); code != "invalid" {
		t.Errorf("role param: code %s, want invalid", code)
	}
	c.send("t3", "set_agent_state", map[string]any{"state": "ready", "agent": "bob"})
	if code, _ := errorOf(t, c.reply("t3")); code != "forbidden" {
		t.Errorf("agent param naming another agent: code %s, want forbidden", code)
	}
	h.cmd.noCommand(t)

	c.send("t4", "set_agent_state", map[string]any{"state": "ready", "agent": "alice"})
	if r := c.reply("t4"); r["ok"] != true {
		t.Fatalf("agent naming themself: %v", r)
	}
	if cmd := h.cmd.nextCommand(t); cmd.Tenant != "acme" || cmd.Agent != "alice" || cmd.Role != callbridge.RoleAgent {
		t.Errorf("command = %+v, want tenant acme, agent alice, role agent", cmd)
	}

	sup := h.connect(t, h.token(t, "sam"), "")
	sup.send("s1", "set_agent_state", map[string]any{"state": "not_ready", "reason": "break", "agent": "bob"})
	if r := sup.reply("s1"); r["ok"] != true {
		t.Fatalf("supervisor on behalf of bob: %v", r)
	}
	want := callbridge.Command{Name: callbridge.CmdSetAgentState, Tenant: "acme", Agent: "bob", Role: callbridge.RoleSupervisor,
		State: callbridge.AgentNotReady, Reason: "break", Time: t0}
	if cmd := h.cmd.nextCommand(t); !reflect.DeepEqual(cmd, want) {
		t.Errorf("command = %+v\nwant %+v", cmd, want)
	}
}

func TestWSAfterSeqDeliversExactlyTheMissedEvents(t *testing.T) {
	t.Parallel()
	h := newServer(t)
	h.log.append(t,
		callEvent("acme", "alice", "C1", callbridge.EventCallDelivered),   // 1
		callEvent("acme", "alice", "C1", callbridge.EventCallEstablished), // 2
		callEvent("acme", "bob", "C2", callbridge.EventCallDelivered),     // 3
		callEvent("acme", "alice", "C3", callbridge.EventCallDelivered),   // 4
		callEvent("acme", "alice", "C3", callbridge.EventCallEstablished), // 5
	)
	c := h.connect(t, h.token(t, "alice"), "after_seq=2")
	h.log.append(t, callEvent("acme", "alice", "C4", callbridge.EventCallDelivered)) // 6, live
	got := c.drain()
	if len(got) > 0 && got[0]["type"] == "snapshot" {
		t.Fatal("a resuming client got a snapshot")
	}
	if s := seqs(got); !reflect.DeepEqual(s, []uint64{4, 5, 6}) || len(got) != 3 {
		t.Fatalf("messages = %v, want events 4, 5, 6", seqs(got))
	}
	types := []any{got[0]["type"], got[1]["type"], got[2]["type"]}
	if !reflect.DeepEqual(types, []any{"call.delivered", "call.established", "call.delivered"}) {
		t.Errorf("types = %v", types)
	}
}

func TestWSResumeCommandRestartsTheStreamWithoutDuplicates(t *testing.T) {
	t.Parallel()
	h := newServer(t)
	c := h.connect(t, h.token(t, "alice"), "")
	c.next() // snapshot (seq 0)
	for i := 0; i < 5; i++ {
		h.log.append(t, callEvent("acme", "alice", "C1", callbridge.EventCallDelivered)) // 1-5
	}
	if s := seqs(c.drain()); !reflect.DeepEqual(s, []uint64{1, 2, 3, 4, 5}) {
		t.Fatalf("live events = %v", s)
	}

	c.send("r1", "resume", map[string]any{"after_seq": 3})
	if r := c.reply("r1"); r["ok"] != true || r["data"] != nil {
		t.Fatalf("resume reply = %v, want {re, ok:true}", r)
	}
	h.log.append(t, callEvent("acme", "alice", "C1", callbridge.EventCallEstablished)) // 6
	if s := seqs(c.drain()); !reflect.DeepEqual(s, []uint64{4, 5, 6}) {
		t.Fatalf("after resume from 3: %v, want [4 5 6]", s)
	}
	if n := h.log.subscribers(); n != 1 {
		t.Errorf("subscriptions = %d, want 1 (the old one stopped)", n)
	}

	// DESIGN.md §4's form, without an id: the reply has no "re", the stream restarts.
	c.sendRaw(`{"cmd":"resume","params":{"after_seq":5}}`)
	if r := c.next(); r["ok"] != true || r["re"] != nil {
		t.Fatalf("resume without id: reply %v, want ok without re", r)
	}
	if s := seqs(c.drain()); !reflect.DeepEqual(s, []uint64{6}) {
		t.Fatalf("after resume from 5 without id: %v, want [6]", s)
	}
}

func TestWSEveryConnectionOfAnAgentGetsEveryEvent(t *testing.T) {
	t.Parallel()
	h := newServer(t)
	tok := h.token(t, "alice")
	a := h.connect(t, tok, "")
	b := h.connect(t, tok, "")
	a.next()
	b.next()
	h.log.append(t, callEvent("acme", "alice", "C1", callbridge.EventCallDelivered))
	if sa, sb := seqs(a.drain()), seqs(b.drain()); !reflect.DeepEqual(sa, []uint64{1}) || !reflect.DeepEqual(sb, []uint64{1}) {
		t.Fatalf("tab a got %v, tab b got %v; want [1] each", sa, sb)
	}
	if err := a.conn.Close(websocket.StatusNormalClosure, "tab closed"); err != nil {
		t.Fatal(err)
	}
	h.log.append(t, callEvent("acme", "alice", "C1", callbridge.EventCallEstablished))
	if sb := seqs(b.drain()); !reflect.DeepEqual(sb, []uint64{2}) {
		t.Fatalf("after closing tab a, tab b got %v, want [2]", sb)
	}
	b.send("cmd", "answer_call", map[string]any{"call_id": "C1"})
	if r := b.reply("cmd"); r["ok"] != true {
		t.Fatalf("command from the remaining tab: %v", r)
	}
	waitFor(t, "tab a's subscription to stop", func() bool { return h.log.subscribers() == 1 })
}

func TestWSSlowCommandDoesNotDelayEvents(t *testing.T) {
	t.Parallel()
	h := newServer(t)
	release := make(chan struct{})
	h.cmd.setDo(func(ctx context.Context, cmd callbridge.Command) (callbridge.CommandResult, error) {
		if cmd.Name == callbridge.CmdMakeCall {
			select {
			case <-release:
			case <-ctx.Done():
			}
		}
		return callbridge.CommandResult{}, nil
	})
	c := h.connect(t, h.token(t, "alice"), "")
	c.next()
	c.send("slow", "make_call", map[string]any{"to": "2000"})
	c.send("next", "answer_call", map[string]any{"call_id": "C1"})
	if cmd := h.cmd.nextCommand(t); cmd.Name != callbridge.CmdMakeCall {
		t.Fatalf("first command = %s", cmd.Name)
	}

	h.log.append(t, callEvent("acme", "alice", "C1", callbridge.EventCallDelivered))
	if s := seqs(c.drain()); !reflect.DeepEqual(s, []uint64{1}) {
		t.Fatalf("while a command is pending, events = %v, want [1]", s)
	}
	h.cmd.noCommand(t) // "next" waits for "slow": commands run in order

	close(release)
	if r := c.reply("slow"); r["ok"] != true {
		t.Fatalf("slow reply = %v", r)
	}
	if r := c.reply("next"); r["ok"] != true {
		t.Fatalf("next reply = %v", r)
	}
	if cmd := h.cmd.nextCommand(t); cmd.Name != callbridge.CmdAnswerCall {
		t.Fatalf("second command = %s", cmd.Name)
	}
}

func TestWSSlowConsumerIsCutOffWithoutBlockingThePublisher(t *testing.T) {
	t.Parallel()
	// The client reads nothing until every event is published, which can take long under load:
	// the close handshake waits that long for it.
	h := newServer(t, func(c *cbhttp.Config) { c.SendQueueBytes, c.WriteTimeout = 64<<10, testenv.Patience })
	conn, _, err := h.dialWS(t, h.token(t, "alice"), "", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.CloseNow()
	conn.SetReadLimit(1 << 20)
	// The client reads nothing while ~40 MB of events are published: far more than the
	// socket buffers and the 64 KiB queue hold.
	big := callEvent("acme", "alice", "C1", callbridge.EventCallDataUpdated)
	big.Data.(*callbridge.CallEvent).AttachedData["notes"] = strings.Repeat("n", 8<<10)
	published := make(chan time.Duration, 1)
	go func() {
		start := time.Now()
		for i := 0; i < 5000; i++ {
			if _, err := h.log.Append(context.Background(), big); err != nil {
				t.Error(err)
				break
			}
		}
		published <- time.Since(start)
	}()
	select {
	case d := <-published:
		t.Logf("published 5000 events in %v", d)
	case <-time.After(testenv.Patience):
		t.Fatal("the publisher is blocked by a client that does not read")
	}

	// Now read: whatever was already on the wire, then the close frame.
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	n := 0
	for {
		_, _, err = conn.Read(ctx)
		if err != nil {
			break
		}
		n++
	}
	var ce websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != cbhttp.CloseSlowConsumer || ce.Reason != "slow consumer" {
		t.Fatalf("after %d messages the connection ended with %v; want close %d \"slow consumer\"", n, err, cbhttp.CloseSlowConsumer)
	}
	if n >= 5000 {
		t.Errorf("got all %d messages; the client was not cut off", n)
	}

	// The agent's other and later connections are unaffected.
	c := h.connect(t, h.token(t, "alice"), "after_seq=5000")
	h.log.append(t, callEvent("acme", "alice", "C1", callbridge.EventCallCleared))
	if s := seqs(c.drain()); !reflect.DeepEqual(s, []uint64{5001}) {
		t.Fatalf("a new connection got %v, want [5001]", s)
	}
}

func TestWSOriginCheck(t *testing.T) {
	t.Parallel()
	h := newServer(t, func(c *cbhttp.Config) { c.AllowedOrigins = []string{"https://crm.example.com"} })
	tok := h.token(t, "alice")
	tests := []struct {
		origin string
		ok     bool
	}{
		{"", true}, // not a browser
		{h.url, true},
		{"https://crm.example.com", true},
		{"HTTPS://CRM.EXAMPLE.COM", true},
		{"https://evil.example.com", false},
		{"https://crm.example.com.evil.net", false},
		{"null", false},
	}
	for _, tt := range tests {
		t.Run("origin "+tt.origin, func(t *testing.T) {
			hdr := http.Header{}
			if tt.origin != "" {
				hdr.Set("Origin", tt.origin)
			}
			conn, res, err := h.dialWS(t, tok, "", hdr)
			if tt.ok {
				if err != nil {
					t.Fatalf("dial: %v", err)
				}
				conn.CloseNow()
				return
			}
			if err == nil {
				conn.CloseNow()
				t.Fatal("dial succeeded, want 403")
			}
			if res == nil || res.StatusCode != http.StatusForbidden {
				t.Fatalf("dial: %v, response %v; want 403", err, res)
			}
		})
	}
}

func TestWSNeedsAnUpgradeAndAValidAfterSeq(t *testing.T) {
	t.Parallel()
	h := newServer(t)
	tok := h.token(t, "alice")
	h.do(t, "GET", "/v1/ws", tok, nil).wantError(t, http.StatusBadRequest, "invalid", "WebSocket upgrade")
	_, res, err := h.dialWS(t, tok, "after_seq=abc", nil)
	if err == nil || res == nil || res.StatusCode != http.StatusBadRequest {
		t.Fatalf("after_seq=abc: %v %v, want 400", err, res)
	}
}

func TestWSCommanderErrorBeforeUpgradeIsAnHTTPError(t *testing.T) {
	t.Parallel()
	h := newServer(t, func(c *cbhttp.Config) {
		c.Commander = snapshotFails{}
	})
	_, res, err := h.dialWS(t, h.token(t, "alice"), "", nil)
	if err == nil || res == nil || res.StatusCode != http.StatusNotFound {
		t.Fatalf("dial for an agent unknown to the engine: %v %v, want 404", err, res)
	}
}

// snapshotFails is a Commander whose Snapshot says the agent is unknown.
type snapshotFails struct{}

func (snapshotFails) Do(context.Context, callbridge.Command) (callbridge.CommandResult, error) {
	return callbridge.CommandResult{}, nil
}
func (snapshotFails) Snapshot(context.Context, callbridge.TenantID, callbridge.AgentID) (callbridge.AgentSnapshot, error) {
	return callbridge.AgentSnapshot{}, callbridge.Errorf(callbridge.ENotFound, "no such agent")
}
func (snapshotFails) Ready() error { return nil }

func TestWSTokenExpiryClosesTheConnection(t *testing.T) {
	t.Parallel()
	h := newServer(t, func(c *cbhttp.Config) { c.TokenTTL = 2 * time.Second })
	c := h.connect(t, h.token(t, "alice"), "")
	c.next()
	err := c.closeStatus()
	var ce websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != cbhttp.CloseTokenExpired || ce.Reason != "token expired" {
		t.Fatalf("connection ended with %v, want close %d \"token expired\"", err, cbhttp.CloseTokenExpired)
	}
}

func TestWSEventsAreTheLogsJSON(t *testing.T) {
	t.Parallel()
	h := newServer(t)
	c := h.connect(t, h.token(t, "alice"), "")
	c.next()
	ev := callEvent("acme", "alice", "C1", callbridge.EventCallDelivered)
	h.log.append(t, ev)
	select {
	case b := <-c.msgs:
		var got callbridge.WireEvent
		if err := json.Unmarshal(b, &got); err != nil {
			t.Fatal(err)
		}
		want, _ := json.Marshal(ev.Data)
		if got.Seq != 1 || got.Type != ev.Type || !got.Time.Equal(t0) || got.Tenant != "acme" || string(got.Data) != string(want) {
			t.Errorf("event = %s\nwant data %s", b, want)
		}
	case <-time.After(testenv.Patience):
		t.Fatal("no event")
	}
}

func TestWSSocketCapPerUserClosesTheExtraWithACode(t *testing.T) {
	t.Parallel()
	h := newServer(t, func(c *cbhttp.Config) { c.MaxSocketsPerUser = 2 })
	tok := h.token(t, "alice")
	a := h.connect(t, tok, "")
	a.next()
	b := h.connect(t, tok, "")
	b.next()
	c := h.connect(t, tok, "")
	var ce websocket.CloseError
	if err := c.closeStatus(); !errors.As(err, &ce) || ce.Code != cbhttp.CloseTooManyConnections || ce.Reason != "too many connections" {
		t.Fatalf("the third socket ended with %v, want close %d \"too many connections\"", err, cbhttp.CloseTooManyConnections)
	}
	// Other users are not limited by alice's sockets, and alice's first two still work.
	bob := h.connect(t, h.token(t, "bob"), "")
	bob.next()
	h.log.append(t, callEvent("acme", "alice", "C1", callbridge.EventCallDelivered))
	if s := seqs(a.drain()); !reflect.DeepEqual(s, []uint64{1}) {
		t.Fatalf("first socket got %v", s)
	}
	// Once one closes, a new one is accepted.
	_ = b.conn.CloseNow()
	waitFor(t, "the second socket to close", func() bool { return h.srv.Sockets() == 2 })
	d := h.connect(t, tok, "after_seq=1")
	h.log.append(t, callEvent("acme", "alice", "C1", callbridge.EventCallCleared))
	if s := seqs(d.drain()); !reflect.DeepEqual(s, []uint64{2}) {
		t.Fatalf("the replacement socket got %v", s)
	}
}

func TestWSResumeFromAnotherLogGetsAResyncWithASnapshot(t *testing.T) {
	t.Parallel()
	h := newServer(t)
	h.log.append(t, callEvent("acme", "alice", "C1", callbridge.EventCallDelivered)) // 1
	h.cmd.setSnapshot(callbridge.AgentSnapshot{
		Agent: callbridge.Agent{ID: "alice", Tenant: "acme", State: callbridge.AgentReady, Since: t0}, Seq: 1,
	})
	// after_seq 500 came from a log that is gone (the data directory was reset).
	c := h.connect(t, h.token(t, "alice"), "after_seq=500")
	m := c.next()
	if m["type"] != "resync" || m["reason"] != "ahead" || m["seq"] != float64(1) {
		t.Fatalf("first message = %v, want a resync (ahead) at seq 1", m)
	}
	if agent := m["data"].(map[string]any)["agent"].(map[string]any); agent["state"] != "ready" {
		t.Fatalf("resync snapshot = %v", m["data"])
	}
	h.log.append(t, callEvent("acme", "alice", "C1", callbridge.EventCallCleared)) // 2
	if s := seqs(c.drain()); !reflect.DeepEqual(s, []uint64{2}) {
		t.Fatalf("after the resync got %v, want [2]", s)
	}
	// A supervisor's resync has no snapshot.
	s := h.connect(t, h.token(t, "sam"), "after_seq=900")
	if m := s.next(); m["type"] != "resync" || m["reason"] != "ahead" || m["seq"] != float64(2) || m["data"] != nil {
		t.Fatalf("supervisor's first message = %v", m)
	}
}

func TestWSResumeOlderThanTheWindowIsReadFromTheLog(t *testing.T) {
	t.Parallel()
	h := newServerHub(t, hub.Config{AgentWindow: 2})
	for i := 0; i < 10; i++ {
		h.log.append(t, callEvent("acme", "alice", "C1", callbridge.EventCallDataUpdated)) // 1-10
	}
	c := h.connect(t, h.token(t, "alice"), "after_seq=3")
	if s := seqs(c.drain()); !reflect.DeepEqual(s, []uint64{4, 5, 6, 7, 8, 9, 10}) {
		t.Fatalf("resumed with %v, want 4…10", s)
	}
	if n := h.log.readCount(); n != 1 {
		t.Errorf("%d log reads, want 1", n)
	}
	// Aged out: the log no longer has 2-5.
	h.log.trim(6)
	c2 := h.connect(t, h.token(t, "alice"), "after_seq=1")
	if m := c2.next(); m["type"] != "resync" || m["reason"] != "aged_out" {
		t.Fatalf("first message = %v, want a resync (aged_out)", m)
	}
}

// TestWSSnapshotLargerThanTheSendQueueDoesNotCutTheDesktop: an agent's snapshot may be larger
// than the send queue's cap (many calls with much attached data); the events after it still
// go out, and the desktop is not closed as a slow consumer. The client's receive buffer is
// small, so that most of the snapshot waits in the server while the events come.
func TestWSSnapshotLargerThanTheSendQueueDoesNotCutTheDesktop(t *testing.T) {
	t.Parallel()
	h := newServer(t, func(c *cbhttp.Config) { c.SendQueueBytes = 512 << 10 })
	var calls []callbridge.Call
	for i := 0; i < 100; i++ { // ~6 MB: more than the kernel's send buffer takes at once
		c := callEvent("acme", "alice", callbridge.CallID(fmt.Sprintf("C%d", i)), callbridge.EventCallEstablished).Data.(*callbridge.CallEvent).Call
		c.AttachedData["notes"] = strings.Repeat("n", 60<<10)
		calls = append(calls, c)
	}
	h.log.append(t, callEvent("acme", "bob", "B1", callbridge.EventCallDelivered)) // 1, before the snapshot
	h.cmd.setSnapshot(callbridge.AgentSnapshot{Agent: callbridge.Agent{ID: "alice", Tenant: "acme", State: callbridge.AgentBusy, Since: t0},
		Calls: calls, Seq: 1})
	dialer := &net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		if err := rc.Control(func(fd uintptr) { serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) }); err != nil {
			return err
		}
		return serr
	}}
	ctx, cancel := context.WithTimeout(context.Background(), testenv.Patience)
	defer cancel()
	conn, _, err := websocket.Dial(ctx, h.wsURL(""), &websocket.DialOptions{
		HTTPHeader: http.Header{"Authorization": []string{"Bearer " + h.token(t, "alice")}},
		HTTPClient: &http.Client{Transport: &http.Transport{DialContext: dialer.DialContext}},
	})
	if err != nil {
		t.Fatal(err)
	}
	conn.SetReadLimit(16 << 20)
	// The events come while the client has not read the snapshot yet.
	for i := 0; i < 5; i++ {
		h.log.append(t, callEvent("acme", "alice", "C0", callbridge.EventCallDataUpdated))
	}
	c := startClient(t, conn)
	if m := c.next(); m["type"] != "snapshot" {
		t.Fatalf("first message %v", m["type"])
	}
	if s := seqs(c.drain()); !reflect.DeepEqual(s, []uint64{2, 3, 4, 5, 6}) {
		t.Fatalf("after the snapshot got %v, want 2…6", s)
	}
}
