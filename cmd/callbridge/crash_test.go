package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/callbridge/callbridge/asterisk/ami"
	"github.com/callbridge/callbridge/capture"
	"github.com/callbridge/callbridge/internal/fixtures"
	"github.com/callbridge/callbridge/internal/testenv"
)

// fakeAMI is an Asterisk manager interface over TCP whose events the test hands out: the
// frames of a real recording, fed in steps. A client that (re)connects logs in and is
// answered its resync with what Asterisk would list after the frames fed so far
// (capture.AMIChannelsAt, capture.AMIQueueEntriesAt) and the queue members of the resync
// recording; so the switch keeps its calls while the client is away.
type fakeAMI struct {
	t       *testing.T
	ln      net.Listener
	members []ami.Message // QueueMember items

	mu     sync.Mutex
	fed    []ami.Message
	conn   net.Conn
	synced chan struct{} // closed once the current connection's resync was answered
}

func newFakeAMI(t *testing.T) *fakeAMI {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	recs, err := capture.ReadFile(filepath.Join(fixtures.Dir(t, "asterisk-22"), "resync.ami.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeAMI{t: t, ln: ln, synced: make(chan struct{})}
	for _, r := range recs {
		if r.Dir == capture.DirIn && strings.HasPrefix(r.Raw, "Event: QueueMember\r\n") {
			f.members = append(f.members, ami.ParseMessage(r.Raw))
		}
	}
	go f.accept()
	t.Cleanup(func() {
		ln.Close()
		f.mu.Lock()
		if f.conn != nil {
			f.conn.Close()
		}
		f.mu.Unlock()
	})
	return f
}

func (f *fakeAMI) addr() string { return f.ln.Addr().String() }

func (f *fakeAMI) accept() {
	for {
		c, err := f.ln.Accept()
		if err != nil {
			return
		}
		f.mu.Lock()
		if f.conn != nil {
			f.conn.Close()
		}
		f.conn = c
		synced := make(chan struct{})
		f.synced = synced
		f.mu.Unlock()
		go f.serve(c, synced)
	}
}

// frame is one AMI frame: the fields of m (its ActionID replaced when id is set).
func frame(m ami.Message, id string) string {
	var b strings.Builder
	for _, fl := range m.Fields {
		if fl.Key == "ActionID" {
			continue
		}
		fmt.Fprintf(&b, "%s: %s\r\n", fl.Key, fl.Value)
	}
	if id != "" {
		fmt.Fprintf(&b, "ActionID: %s\r\n", id)
	}
	b.WriteString("\r\n")
	return b.String()
}

func (f *fakeAMI) write(c net.Conn, s string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	_, _ = io.WriteString(c, s)
}

func (f *fakeAMI) serve(c net.Conn, synced chan struct{}) {
	f.write(c, "Asterisk Call Manager/11.0.0\r\n")
	rd := ami.NewReader(c)
	answered := map[string]bool{}
	for {
		m, err := rd.ReadMessage()
		if err != nil {
			return
		}
		id := m.Get("ActionID")
		name := m.Get("Action")
		list := func(items []ami.Message, complete string) {
			var b strings.Builder
			fmt.Fprintf(&b, "Response: Success\r\nActionID: %s\r\nEventList: start\r\nMessage: will follow\r\n\r\n", id)
			for _, it := range items {
				b.WriteString(frame(it, id))
			}
			fmt.Fprintf(&b, "Event: %s\r\nActionID: %s\r\nEventList: Complete\r\nListItems: %d\r\n\r\n", complete, id, len(items))
			f.write(c, b.String())
		}
		f.mu.Lock()
		fed := append([]ami.Message(nil), f.fed...)
		f.mu.Unlock()
		switch name {
		case "Login":
			f.write(c, fmt.Sprintf("Response: Success\r\nActionID: %s\r\nMessage: Authentication accepted\r\n\r\n", id)+
				"Event: FullyBooted\r\nPrivilege: system,all\r\nUptime: 4\r\nLastReload: 4\r\nStatus: Fully Booted\r\n\r\n")
		case "CoreShowChannels":
			list(capture.AMIChannelsAt(fed), "CoreShowChannelsComplete")
		case "QueueStatus":
			list(append(append([]ami.Message(nil), f.members...), capture.AMIQueueEntriesAt(fed)...), "QueueStatusComplete")
		case "DeviceStateList":
			list(nil, "DeviceStateListComplete")
		case "Ping":
			f.write(c, fmt.Sprintf("Response: Success\r\nActionID: %s\r\nPing: Pong\r\n\r\n", id))
		default:
			f.write(c, fmt.Sprintf("Response: Success\r\nActionID: %s\r\n\r\n", id))
		}
		answered[name] = true
		if answered["CoreShowChannels"] && answered["QueueStatus"] && answered["DeviceStateList"] {
			select {
			case <-synced:
			default:
				close(synced)
			}
		}
	}
}

// waitSynced waits until a connection's resync has been answered.
func (f *fakeAMI) waitSynced(t *testing.T) {
	t.Helper()
	f.mu.Lock()
	ch := f.synced
	f.mu.Unlock()
	select {
	case <-ch:
	case <-time.After(testenv.Patience):
		t.Fatal("no client resynchronised with the switch")
	}
}

// feed sends frames to the connected client, as the switch would.
func (f *fakeAMI) feed(msgs []ami.Message) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fed = append(f.fed, msgs...)
	if f.conn == nil {
		return
	}
	for _, m := range msgs {
		_, _ = io.WriteString(f.conn, frame(m, ""))
	}
}

// TestKillDashNineLosesNoCallNoEventAndNoRecord runs `callbridge serve` as a real process on
// a switch (the inbound-answered recording fed by the test), kills it with SIGKILL in the
// middle of the call, and starts it again on the same data directory while the switch keeps
// the call. The call keeps its call_id, the agent's desktop resumes with after_seq and gets
// every event it missed, then the caller hangs up and the call clears normally, and its
// record completes: no stuck call, no stuck agent, no record left in progress.
func TestKillDashNineLosesNoCallNoEventAndNoRecord(t *testing.T) {
	recs, err := capture.ReadFile(filepath.Join(fixtures.Dir(t, "asterisk-22"), "inbound-answered.ami.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	var frames []ami.Message
	for _, r := range recs {
		if r.Dir == capture.DirIn && strings.HasPrefix(r.Raw, "Event: ") {
			m := ami.ParseMessage(r.Raw)
			if ev := m.Event(); ev != "FullyBooted" && ev != "SuccessfulAuth" {
				frames = append(frames, m)
			}
		}
	}
	// Cut once the agent's phone is bridged with the caller: the call is established.
	cut := -1
	for i, m := range frames {
		if m.Event() == "BridgeEnter" && strings.HasPrefix(m.Get("Channel"), "PJSIP/1001-") {
			cut = i + 1
		}
	}
	if cut < 0 {
		t.Fatal("the recording has no BridgeEnter of PJSIP/1001")
	}

	sw := newFakeAMI(t)
	data := t.TempDir()
	port := testenv.FreePort(t)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	args := []string{"--data", data, "--http", addr, "--log-level", "error",
		"--pbx", "ami://cti:cti-secret@" + sw.addr(), "--provision", filepath.Join("..", "..", "examples", "asterisk-22.yaml")}
	child := startChild(t, args...)
	sw.waitSynced(t)
	waitReadyz(t, addr)

	tok := loginAt(t, addr, "1001", "demo")
	d := dialAt(t, addr, tok, "")
	d.next("snapshot", func(m map[string]any) bool { return m["type"] == "snapshot" })
	sw.feed(frames[:cut])
	est := d.next("call.established at 1001", isEvent("call.established", func(c map[string]any) bool { return c["device"] == "1001" }))
	callID := est["data"].(map[string]any)["call_id"].(string)
	seen := seqOf(est)

	// kill -9: no clean stop, no final save of the engine's state.
	if err := child.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	child.Wait()
	d.c.CloseNow()

	startChild(t, args...)
	sw.waitSynced(t)
	waitReadyz(t, addr)
	d2 := dialAt(t, addr, tok, fmt.Sprintf("&after_seq=%d", seen))
	sw.feed(frames[cut:]) // the caller hangs up
	// The agent's part ends with their own connection_cleared (call.cleared goes only to
	// those still on the call when it ends; here the caller hung up first).
	gone := d2.next("the end of 1001's part of the call that outlived the crash", func(m map[string]any) bool {
		data, _ := m["data"].(map[string]any)
		return data["call_id"] == callID && (m["type"] == "call.cleared" ||
			(m["type"] == "call.connection_cleared" && data["device"] == "1001"))
	})
	if cause := gone["data"].(map[string]any)["cause"]; cause != "normal_clearing" {
		t.Errorf("1001 left the call with cause %v, want normal_clearing (it was still up on the switch)", cause)
	}
	cleared := gone
	prev := seen
	for _, m := range append(d2.pending, cleared) {
		if m["type"] == "snapshot" || m["type"] == "resync" {
			t.Fatalf("the resume was answered with a %v", m["type"])
		}
		if s := seqOf(m); s <= prev {
			t.Fatalf("resumed events out of order or repeated: %d after %d", s, prev)
		}
		prev = seqOf(m)
		if data, _ := m["data"].(map[string]any); m["type"] != "agent.state_changed" && data["call_id"] != callID {
			t.Errorf("an event of another call %v: the switch had one call", data["call_id"])
		}
	}
	// Nothing stuck: the call is gone from the agent's desk, and the record is complete.
	snap := dialAt(t, addr, tok, "").next("snapshot", func(m map[string]any) bool { return m["type"] == "snapshot" })
	if calls := snap["data"].(map[string]any)["calls"].([]any); len(calls) != 0 {
		t.Errorf("calls left on the agent's desk: %v", calls)
	}
	sup := loginAt(t, addr, "acme-supervisor", "demo")
	testenv.Eventually(t, "the call record to complete", func() bool {
		req, _ := http.NewRequest("GET", "http://"+addr+"/v1/call-records/"+callID, nil)
		req.Header.Set("Authorization", "Bearer "+sup)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			return false
		}
		defer res.Body.Close()
		var rec struct {
			EndedAt string `json:"ended_at"`
		}
		return res.StatusCode == 200 && json.NewDecoder(res.Body).Decode(&rec) == nil && rec.EndedAt != ""
	})
}

// waitReadyz waits until GET /readyz answers 200.
func waitReadyz(t *testing.T, addr string) {
	t.Helper()
	testenv.Eventually(t, "/readyz to answer 200", func() bool {
		res, err := http.Get("http://" + addr + "/readyz")
		if err != nil {
			return false
		}
		res.Body.Close()
		return res.StatusCode == 200
	})
}

// loginAt logs user in at the node listening on addr and returns the access token.
func loginAt(t *testing.T, addr, user, pass string) string {
	t.Helper()
	body, _ := json.Marshal(map[string]string{"username": user, "password": pass})
	res, err := http.Post("http://"+addr+"/v1/login", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var out struct {
		Token string `json:"token"`
	}
	if err := json.NewDecoder(res.Body).Decode(&out); err != nil || out.Token == "" {
		t.Fatalf("login %s: %s %v", user, res.Status, err)
	}
	return out.Token
}
