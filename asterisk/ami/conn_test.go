package ami_test

import (
	"context"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/callbridge/callbridge"
	"github.com/callbridge/callbridge/asterisk/ami"
	"github.com/callbridge/callbridge/internal/testenv"
)

func dial(t *testing.T, cfg ami.Config) *ami.Conn {
	t.Helper()
	c, err := ami.Dial(testenv.Context(t), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func ctxT(t *testing.T) context.Context { return testenv.Context(t) }

// Two actions in flight; the switch answers the second first, and the first only after an
// event it caused. Each caller gets its own response.
func TestConnCorrelatesOutOfOrderResponses(t *testing.T) {
	srv := startFake(t, func(c *fakeConn) {
		if !c.login() {
			return
		}
		got := map[string]ami.Message{}
		for len(got) < 2 {
			_, m, ok := c.recv()
			if !ok {
				return
			}
			got[m.Get("Action")] = m
		}
		add, pause := got["QueueAdd"], got["QueuePause"]
		c.send(
			success(pause, "Message: Interface paused successfully\r\n"),
			event("QueueMemberAdded", "Queue: acme-support", "Interface: PJSIP/1010"),
			"Response: Error\r\nActionID: "+add.ActionID()+"\r\nMessage: Unable to add interface: Already there\r\n\r\n",
		)
		c.serveActions(func(m ami.Message) []string { return []string{success(m, "")} })
	})
	events := newEventLog()
	cfg := testConfig(srv.addr())
	cfg.OnEvent = events.add
	conn := dial(t, cfg)

	var wg sync.WaitGroup
	var addResp, pauseResp ami.Response
	var addErr, pauseErr error
	wg.Add(2)
	go func() {
		defer wg.Done()
		addResp, addErr = conn.Action(ctxT(t), ami.Action{Name: "QueueAdd", Fields: []ami.Field{{"Queue", "acme-support"}, {"Interface", "PJSIP/1010"}}})
	}()
	go func() {
		defer wg.Done()
		pauseResp, pauseErr = conn.Action(ctxT(t), ami.Action{Name: "QueuePause", Fields: []ami.Field{{"Interface", "PJSIP/1010"}, {"Paused", "true"}}})
	}()
	wg.Wait()
	if addErr != nil || pauseErr != nil {
		t.Fatalf("errors: %v, %v", addErr, pauseErr)
	}
	if pauseResp.Err() != nil || pauseResp.Get("Message") != "Interface paused successfully" {
		t.Errorf("QueuePause got %+v", pauseResp.Fields)
	}
	var re *ami.ResponseError
	if err := addResp.Err(); !errors.As(err, &re) || re.Action != "QueueAdd" || re.Message != "Unable to add interface: Already there" {
		t.Errorf("QueueAdd Err = %v", err)
	}
	events.waitFor(t, "QueueMemberAdded")
}

func TestConnEventList(t *testing.T) {
	srv := startFake(t, func(c *fakeConn) {
		if !c.login() {
			return
		}
		c.serveActions(func(m ami.Message) []string {
			id := "ActionID: " + m.ActionID()
			return []string{
				success(m, "EventList: start\r\nMessage: Queue status will follow\r\n"),
				event("QueueParams", "Queue: acme-support", "Calls: 1", id),
				event("Newexten", "Channel: PJSIP/carrier-00000001"), // an unrelated event in between
				event("QueueMember", "Queue: acme-support", "Name: Alice Acme", id),
				event("QueueEntry", "Queue: acme-support", "Position: 1", id),
				event("QueueStatusComplete", id, "EventList: Complete", "ListItems: 3"),
			}
		})
	})
	events := newEventLog()
	cfg := testConfig(srv.addr())
	cfg.OnEvent = events.add
	conn := dial(t, cfg)
	resp, err := conn.Action(ctxT(t), ami.Action{Name: "QueueStatus"})
	if err != nil || resp.Err() != nil {
		t.Fatal(err, resp.Err())
	}
	if !resp.IsList() {
		t.Error("IsList() = false")
	}
	var names []string
	for _, it := range resp.Items {
		names = append(names, it.Event())
	}
	if strings.Join(names, ",") != "QueueParams,QueueMember,QueueEntry" {
		t.Errorf("Items = %v", names)
	}
	if resp.Complete.Event() != "QueueStatusComplete" || resp.Complete.Get("ListItems") != "3" {
		t.Errorf("Complete = %+v", resp.Complete.Fields)
	}
	events.waitFor(t, "Newexten")
	for _, n := range events.names() {
		if n != "Newexten" {
			t.Errorf("list item %s delivered as an event", n)
		}
	}
}

// Frames for ActionIDs the Conn never used (a replayed recording is full of them) are
// dropped; the async OriginateResponse of its own Originate is an event.
func TestConnIgnoresUnknownActionIDs(t *testing.T) {
	srv := startFake(t, func(c *fakeConn) {
		if !c.login() {
			return
		}
		c.send(
			"Response: Success\r\nActionID: cti-5\r\nEventList: start\r\nMessage: Queue status will follow\r\n\r\n",
			event("QueueMember", "Queue: acme-support", "ActionID: cti-5"),
			event("Newchannel", "Channel: PJSIP/carrier-00000000"),
			event("QueueStatusComplete", "ActionID: cti-5", "EventList: Complete", "ListItems: 1"),
			"Response: Error\r\nActionID: cti-6\r\nMessage: Unable to add interface: Already there\r\n\r\n",
			event("OriginateResponse", "ActionID: cti-2", "Response: Success", "Uniqueid: x"),
			"Response: Success\r\nMessage: no ActionID at all\r\n\r\n",
			event("Hangup", "Channel: PJSIP/carrier-00000000"),
		)
		c.serveActions(func(m ami.Message) []string {
			if m.Get("Action") == "Originate" {
				return []string{
					success(m, "Message: Originate successfully queued\r\n"),
					event("OriginateResponse", "ActionID: "+m.ActionID(), "Response: Success", "Uniqueid: mine"),
				}
			}
			return []string{success(m, "")}
		})
	})
	events := newEventLog()
	cfg := testConfig(srv.addr())
	cfg.OnEvent = events.add
	conn := dial(t, cfg)
	events.waitFor(t, "Hangup")
	resp, err := conn.Action(ctxT(t), ami.Action{Name: "Originate", Fields: []ami.Field{{"Channel", "PJSIP/1003"}, {"Async", "true"}}})
	if err != nil || resp.Get("Message") != "Originate successfully queued" {
		t.Fatalf("Originate: %+v, %v", resp.Fields, err)
	}
	events.waitFor(t, "OriginateResponse")
	if got := strings.Join(events.names(), ","); got != "Newchannel,Hangup,OriginateResponse" {
		t.Errorf("events = %s", got)
	}
}

// A refused action writes nothing: the server's next frame after login is the Ping.
func TestConnRefusesInjectionBeforeWriting(t *testing.T) {
	received := make(chan string, 10)
	srv := startFake(t, func(c *fakeConn) {
		if !c.login() {
			return
		}
		for {
			raw, m, ok := c.recv()
			if !ok {
				return
			}
			received <- raw
			c.send(success(m, ""))
		}
	})
	conn := dial(t, testConfig(srv.addr()))
	bad := []ami.Action{
		{Name: "Redirect", Fields: []ami.Field{{"Channel", "PJSIP/1001"}, {"Exten", "1002\r\nAction: Hangup\r\nChannel: PJSIP/1003"}}},
		{Name: "Redirect", Fields: []ami.Field{{"Exten", "10\x0002"}}},
		{Name: "Redirect", Fields: []ami.Field{{"Exten: 1002\r\nX", "y"}}},
		{Name: "Ping\nAction: Hangup"},
	}
	for _, a := range bad {
		if _, err := conn.Action(ctxT(t), a); callbridge.ErrorCode(err) != callbridge.EInvalid {
			t.Errorf("Action(%q) err = %v, want code invalid", a, err)
		}
	}
	if _, err := conn.Action(ctxT(t), ami.Action{Name: "Ping"}); err != nil {
		t.Fatal(err)
	}
	raw := <-received
	if m := ami.ParseMessage(raw); m.Get("Action") != "Ping" || len(m.Fields) != 2 {
		t.Fatalf("first frame after login = %q, want only the Ping", raw)
	}
	select {
	case raw := <-received:
		t.Fatalf("unexpected frame %q", raw)
	default:
	}
}

// A refused Dial makes no connection. The barrier: a good Dial afterwards. The listener
// accepts connections in the order they were made, so had the refused Dial connected, its
// connection would have been accepted before the good one.
func TestDialRefusesCRLFInCredentialsWithoutConnecting(t *testing.T) {
	logins := make(chan int, 2)
	srv := startFake(t, func(c *fakeConn) {
		if c.login() {
			logins <- c.n
		}
		c.recv() // until the client goes
	})
	cfg := testConfig(srv.addr())
	cfg.Secret = "x\r\nAction: Originate"
	_, err := ami.Dial(ctxT(t), cfg)
	if callbridge.ErrorCode(err) != callbridge.EInvalid {
		t.Fatalf("err = %v, want code invalid", err)
	}
	dial(t, testConfig(srv.addr()))
	if n := <-logins; n != 0 {
		t.Fatalf("the good Dial was connection %d: the refused one connected first", n)
	}
	if n := len(srv.acceptTimes()); n != 1 {
		t.Fatalf("%d connections made, want only the good Dial's", n)
	}
}

// bad-login.ami.jsonl: "Response: Error / Message: Authentication failed", then the close.
func TestDialAuthFailed(t *testing.T) {
	srv := startFake(t, func(c *fakeConn) {
		c.send("Asterisk Call Manager/11.0.0\r\n")
		_, m, ok := c.recv()
		if !ok {
			return
		}
		c.send("Response: Error\r\nActionID: " + m.ActionID() + "\r\nMessage: Authentication failed\r\n\r\n")
	})
	_, err := ami.Dial(ctxT(t), testConfig(srv.addr()))
	if !errors.Is(err, ami.ErrAuthFailed) {
		t.Fatalf("err = %v, want ErrAuthFailed", err)
	}
}

func TestDialRefusesNonAMIServer(t *testing.T) {
	srv := startFake(t, func(c *fakeConn) { c.send("Content-Type: auth/request\n\n") })
	if _, err := ami.Dial(ctxT(t), testConfig(srv.addr())); err == nil || !strings.Contains(err.Error(), "banner") {
		t.Fatalf("err = %v, want a banner error", err)
	}
}

func TestDialTimesOutOnSilentServer(t *testing.T) {
	srv := startFake(t, func(c *fakeConn) { c.recv() }) // no banner
	cfg := testConfig(srv.addr())
	cfg.DialTimeout = 100 * time.Millisecond
	if _, err := ami.Dial(context.Background(), cfg); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want DeadlineExceeded", err)
	}
}

func TestConnKeepAlive(t *testing.T) {
	t.Run("unanswered ping closes the connection", func(t *testing.T) {
		srv := startFake(t, func(c *fakeConn) {
			if !c.login() {
				return
			}
			for {
				if _, _, ok := c.recv(); !ok { // never answer
					return
				}
			}
		})
		cfg := testConfig(srv.addr())
		cfg.KeepAlive, cfg.KeepAliveTimeout = 30*time.Millisecond, 60*time.Millisecond
		conn := dial(t, cfg)
		select {
		case <-conn.Done():
		case <-time.After(testenv.Patience):
			t.Fatal("connection still open")
		}
		if !errors.Is(conn.Err(), ami.ErrKeepAliveTimeout) {
			t.Fatalf("Err = %v, want ErrKeepAliveTimeout", conn.Err())
		}
		if _, err := conn.Action(ctxT(t), ami.Action{Name: "Ping"}); !errors.Is(err, ami.ErrClosed) {
			t.Fatalf("Action after close: %v, want ErrClosed", err)
		}
	})
	// A keep-alive that ignored the answers would close the connection one timeout after its
	// first Ping. The barrier: a Ping sent two timeouts after the first one has been answered
	// (the keep-alive sends the next Ping only once the last is answered), so such a closing
	// had its chance; then the connection must still be open.
	t.Run("answered pings keep it open", func(t *testing.T) {
		const timeout = time.Second
		pings := make(chan time.Time, 1000)
		srv := startFake(t, func(c *fakeConn) {
			if !c.login() {
				return
			}
			c.serveActions(func(m ami.Message) []string {
				if m.Get("Action") == "Ping" {
					pings <- time.Now()
				}
				return []string{success(m, "Ping: Pong\r\nTimestamp: 1795305581.567892\r\n")}
			})
		})
		cfg := testConfig(srv.addr())
		cfg.KeepAlive, cfg.KeepAliveTimeout = 20*time.Millisecond, timeout
		conn := dial(t, cfg)
		var first time.Time
		for n := 0; ; n++ {
			var at time.Time
			select {
			case at = <-pings:
			case <-conn.Done():
				t.Fatalf("connection ended after %d answered pings: %v", n, conn.Err())
			case <-time.After(testenv.Patience):
				t.Fatalf("only %d pings", n)
			}
			if first.IsZero() {
				first = at
			} else if at.Sub(first) > 2*timeout {
				break
			}
		}
		// The Ping just seen is being answered; one more shows the connection took it.
		select {
		case <-pings:
		case <-conn.Done():
			t.Fatalf("connection ended: %v", conn.Err())
		case <-time.After(testenv.Patience):
			t.Fatal("no Ping after the answered ones")
		}
	})
}

func TestConnEndsWhenServerCloses(t *testing.T) {
	srv := startFake(t, func(c *fakeConn) {
		if !c.login() {
			return
		}
		_, m, ok := c.recv()
		if ok { // Logoff
			c.send("Response: Goodbye\r\nActionID: " + m.ActionID() + "\r\nMessage: Thanks for all the fish.\r\n\r\n")
		}
	})
	conn := dial(t, testConfig(srv.addr()))
	resp, err := conn.Action(ctxT(t), ami.Action{Name: "Logoff"})
	if err != nil || resp.Response() != "Goodbye" || resp.Err() != nil {
		t.Fatalf("Logoff: %+v, %v", resp.Fields, err)
	}
	<-conn.Done()
	if !errors.Is(conn.Err(), io.EOF) {
		t.Fatalf("Err = %v, want io.EOF", conn.Err())
	}
}

// An abandoned action's late response and list items are consumed, not turned into events.
func TestConnAbandonedActionIsConsumedQuietly(t *testing.T) {
	release := make(chan struct{})
	srv := startFake(t, func(c *fakeConn) {
		if !c.login() {
			return
		}
		_, m, ok := c.recv()
		if !ok {
			return
		}
		<-release
		id := "ActionID: " + m.ActionID()
		c.send(
			success(m, "EventList: start\r\nMessage: Channels will follow\r\n"),
			event("CoreShowChannel", "Channel: PJSIP/1001-00000001", id),
			event("CoreShowChannelsComplete", id, "EventList: Complete", "ListItems: 1"),
			event("Hangup", "Channel: PJSIP/1001-00000001"),
		)
		c.serveActions(func(m ami.Message) []string { return []string{success(m, "")} })
	})
	events := newEventLog()
	cfg := testConfig(srv.addr())
	cfg.OnEvent = events.add
	conn := dial(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := conn.Action(ctx, ami.Action{Name: "CoreShowChannels"}); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want DeadlineExceeded", err)
	}
	close(release)
	events.waitFor(t, "Hangup")
	if got := strings.Join(events.names(), ","); got != "Hangup" {
		t.Fatalf("events = %s", got)
	}
	if _, err := conn.Action(ctxT(t), ami.Action{Name: "Ping"}); err != nil {
		t.Fatalf("connection unusable after an abandoned action: %v", err)
	}
}

func TestConnTapSeesFramesInOrderWithSecretHidden(t *testing.T) {
	srv := startFake(t, func(c *fakeConn) {
		if !c.login() {
			return
		}
		c.send(event("FullyBooted", "Status: Fully Booted"))
		c.serveActions(func(m ami.Message) []string { return []string{success(m, "Ping: Pong\r\n")} })
	})
	var mu sync.Mutex
	var taps []string
	cfg := testConfig(srv.addr())
	events := newEventLog()
	cfg.OnEvent = events.add
	cfg.Tap = func(dir, raw string) {
		mu.Lock()
		taps = append(taps, dir+" "+raw)
		mu.Unlock()
	}
	conn := dial(t, cfg)
	events.waitFor(t, "FullyBooted")
	if _, err := conn.Action(ctxT(t), ami.Action{Name: "Ping"}); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(taps) != 6 {
		t.Fatalf("taps = %q", taps)
	}
	wantPrefix := []string{"in Asterisk Call Manager/11.0.0\r\n", "out Action: Login\r\n", "in Response: Success\r\n",
		"in Event: FullyBooted\r\n", "out Action: Ping\r\n", "in Response: Success\r\n"}
	for i, p := range wantPrefix {
		if !strings.HasPrefix(taps[i], p) {
			t.Errorf("tap %d = %q, want prefix %q", i, taps[i], p)
		}
	}
	if strings.Contains(taps[1], "cti-secret") || !strings.Contains(taps[1], "Secret: ********\r\n") {
		t.Errorf("login tap shows the secret: %q", taps[1])
	}
}
