package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/callbridge/callbridge/internal/testenv"
)

// ownDesk is one agent's desktop in TestManyDesktopsGetTheirOwnPopsAndNobodyElses: it reads
// every message and keeps what does not belong to its agent.
type ownDesk struct {
	agent, device string
	conn          *websocket.Conn

	mu     sync.Mutex
	pops   int
	events int
	calls  map[string]bool // calls its device has been on
	wrong  []string        // events of another agent or device
}

func (d *ownDesk) read() {
	for {
		_, b, err := d.conn.Read(context.Background())
		if err != nil {
			return
		}
		var m struct {
			Seq  uint64 `json:"seq"`
			Type string `json:"type"`
			Data struct {
				CallID      string `json:"call_id"`
				Agent       string `json:"agent"`
				Device      string `json:"device"`
				Connections []struct {
					Device string `json:"device"`
				} `json:"connections"`
			} `json:"data"`
		}
		if json.Unmarshal(b, &m) != nil || m.Seq == 0 || m.Type == "snapshot" {
			continue
		}
		mine := false
		switch {
		case len(m.Type) > 6 && m.Type[:6] == "agent.":
			mine = m.Data.Agent == d.agent
		default: // a call event: about my device, or a call my device is (or was) on
			mine = m.Data.Device == d.device
			for _, c := range m.Data.Connections {
				mine = mine || c.Device == d.device
			}
		}
		d.mu.Lock()
		if mine && m.Data.CallID != "" {
			d.calls[m.Data.CallID] = true
		} else if !mine && d.calls[m.Data.CallID] {
			mine = true // the end of a call I was on (call.cleared has no parties left)
		}
		d.events++
		if m.Type == "call.delivered" && m.Data.Agent == d.agent && m.Data.Device == d.device {
			d.pops++
		}
		if !mine {
			d.wrong = append(d.wrong, string(b))
		}
		d.mu.Unlock()
	}
}

// TestManyDesktopsGetTheirOwnPopsAndNobodyElses runs 2,000 agents, each with a real
// WebSocket desktop on one node, under a stream of inbound calls until every agent has had
// at least one screen pop: every desktop receives its own pops and state, and not a single
// event of another agent's calls.
func TestManyDesktopsGetTheirOwnPopsAndNobodyElses(t *testing.T) {
	const agents = 2000
	ctx, cancel := context.WithTimeout(context.Background(), 4*testenv.Patience)
	defer cancel()
	m, drv := startLoadSite(ctx, t, agents, newLoadRecorder(), &problemHandler{})
	defer m.Close()

	desks := make([]*ownDesk, agents)
	var wg sync.WaitGroup
	base := "http://" + m.HTTP.Addr()
	for i := range desks {
		body, _ := json.Marshal(map[string]string{"username": loadAgent(i), "password": loadPassword})
		resp, err := http.Post(base+"/v1/login", "application/json", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		var out struct {
			Token string `json:"token"`
		}
		err = json.NewDecoder(resp.Body).Decode(&out)
		resp.Body.Close()
		if err != nil || out.Token == "" {
			t.Fatalf("login %s: %s %v", loadAgent(i), resp.Status, err)
		}
		c, _, err := websocket.Dial(ctx, "ws://"+m.HTTP.Addr()+"/v1/ws?access_token="+out.Token, nil)
		if err != nil {
			t.Fatalf("desktop %d: %v", i, err)
		}
		c.SetReadLimit(1 << 20)
		d := &ownDesk{agent: loadAgent(i), device: strconv.Itoa(100000 + i), conn: c, calls: map[string]bool{}}
		desks[i] = d
		wg.Go(d.read)
	}
	defer func() {
		for _, d := range desks {
			d.conn.CloseNow()
		}
		wg.Wait()
	}()

	// About 200 calls a second over the 20 tenants' queues.
	tenants := agents / loadAgentsPerTenant
	drv.SetCallInterval(time.Duration(tenants) * time.Second / 200)
	testenv.Eventually(t, "a screen pop on every one of the desktops", func() bool {
		for _, d := range desks {
			d.mu.Lock()
			n := d.pops
			d.mu.Unlock()
			if n == 0 {
				return false
			}
		}
		return true
	})
	drv.SetCallInterval(0)
	total := 0
	for _, d := range desks {
		d.mu.Lock()
		total += d.events
		if len(d.wrong) > 0 {
			t.Errorf("desktop of %s got %d events that are not its agent's, e.g. %s", d.agent, len(d.wrong), d.wrong[0])
		}
		d.mu.Unlock()
	}
	t.Logf("%d desktops, %d events received, %d WebSockets open at the end", agents, total, m.HTTP.Sockets())
	if n := m.HTTP.Sockets(); n != agents {
		t.Errorf("%d sockets open, want %d (none cut)", n, agents)
	}
}
