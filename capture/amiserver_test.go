package capture_test

import (
	"context"
	"errors"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/callbridge/callbridge/asterisk/ami"
	"github.com/callbridge/callbridge/capture"
	"github.com/callbridge/callbridge/internal/fixtures"
	"github.com/callbridge/callbridge/internal/testenv"
)

const goodbye = "Response: Goodbye\r\nActionID: bye-1\r\nMessage: Thanks for all the fish.\r\n\r\n"

// expectedStream returns what the replay server must send to a client that sends the
// recording's own actions up to and including its Login: every "in" frame in file order up to
// the recording client's Logoff (exclusive), and the actions to send first.
func expectedStream(recs []capture.Record) (want string, preLogin []string, closes bool) {
	var b strings.Builder
	loggedIn := false
	for _, r := range recs {
		switch r.Dir {
		case capture.DirOut:
			action := ami.ParseMessage(r.Raw).Get("Action")
			if strings.EqualFold(action, "Logoff") {
				return b.String(), preLogin, false
			}
			if !loggedIn {
				preLogin = append(preLogin, r.Raw)
				loggedIn = strings.EqualFold(action, "Login")
			}
		case capture.DirIn:
			b.WriteString(r.Raw)
		case capture.DirEOF:
			return b.String(), preLogin, true
		}
	}
	return b.String(), preLogin, false
}

// Every recording plays back byte for byte to a client that repeats the recording client's
// login (and, in bad-login, its Ping before login): the banner, the login response, and the
// rest in file order up to the Logoff. Then Logoff gets Goodbye and a close; a failed login
// closes by itself.
func TestAMIServerPlaysEveryRecordingExactly(t *testing.T) {
	for _, path := range fixtures.Files(t, "asterisk-22", "*.ami.jsonl") {
		t.Run(filepath.Base(path), func(t *testing.T) {
			recs := loadFixture(t, path)
			want, preLogin, closes := expectedStream(recs)
			s := startAMI(t, []capture.Script{{Records: recs}}, capture.ServerOptions{})
			c := dialRaw(t, s.Addr())
			for _, a := range preLogin {
				c.send(a)
			}
			if got := c.readN(len(want)); got != want {
				t.Fatalf("stream differs %s", firstDiff(got, want))
			}
			waitClosed(t, s.Played(0), "Played(0)")
			if !closes {
				c.send("Action: Logoff\r\nActionID: bye-1\r\n\r\n")
				if got := c.frame(); got != goodbye {
					t.Fatalf("after Logoff: %q, want %q", got, goodbye)
				}
			}
			c.expectEOF()
			if n := s.Connections(); n != 1 {
				t.Fatalf("Connections = %d", n)
			}
		})
	}
}

// The login response and the reused recorded answers carry the client's ActionID; a client
// without ActionID gets none.
func TestAMIServerRewritesActionIDs(t *testing.T) {
	s := startAMI(t, []capture.Script{{Records: loadFixture(t, "agent-state.ami.jsonl")}}, capture.ServerOptions{})
	c := dialRaw(t, s.Addr())
	c.banner()
	c.send("Action: Login\r\nActionID: my-login\r\nUsername: anyone\r\nSecret: anything\r\nEvents: on\r\n\r\n")
	if got, want := c.frame(), "Response: Success\r\nActionID: my-login\r\nMessage: Authentication accepted\r\n\r\n"; got != want {
		t.Fatalf("login response %q, want %q", got, want)
	}
	waitClosed(t, s.Played(0), "Played(0)")
	// Drain the recorded stream: it ends with the last QueueSummaryComplete (cti-14).
	for !strings.Contains(c.frame(), "ActionID: cti-14\r\nEventList: Complete") {
	}
	c.send("Action: QueueRemove\r\nActionID: q-1\r\nQueue: acme-support\r\nInterface: PJSIP/1010\r\n\r\n")
	if got, want := c.frame(), "Response: Success\r\nActionID: q-1\r\nMessage: Removed interface from queue\r\n\r\n"; got != want {
		t.Fatalf("first QueueRemove: %q, want %q", got, want)
	}
	c.send("Action: QueueRemove\r\nQueue: acme-support\r\nInterface: PJSIP/1010\r\n\r\n")
	if got, want := c.frame(), "Response: Error\r\nMessage: Unable to remove interface: Not there\r\n\r\n"; got != want {
		t.Fatalf("second QueueRemove without ActionID: %q, want %q", got, want)
	}
	c.send("Action: QueueRemove\r\nActionID: q-3\r\n\r\n")
	if got, want := c.frame(), "Response: Success\r\nActionID: q-3\r\n\r\n"; got != want {
		t.Fatalf("third QueueRemove (none recorded left): %q, want %q", got, want)
	}
	c.send("Action: Ping\r\n\r\n")
	if got := c.frame(); !strings.HasPrefix(got, "Response: Success\r\nPing: Pong\r\nTimestamp: ") {
		t.Fatalf("Ping without ActionID: %q", got)
	}
	c.send("Bogus: frame\r\n\r\n")
	if got, want := c.frame(), "Response: Error\r\nMessage: Missing action in request\r\n\r\n"; got != want {
		t.Fatalf("frame without Action: %q, want %q", got, want)
	}
}

// Through the real client: recorded list answers are reused in order (first QueueStatus gets
// the recording's first), then empty lists; recorded in-place list items never reach OnEvent.
func TestAMIServerAnswersTheClientWithRecordedLists(t *testing.T) {
	s := startAMI(t, []capture.Script{{Records: loadFixture(t, "agent-state.ami.jsonl")}}, capture.ServerOptions{})
	var mu sync.Mutex
	var events []ami.Message
	conn, err := ami.Dial(ctxT(t), ami.Config{Addr: s.Addr(), Username: "cti", Secret: "cti-secret", KeepAlive: -1,
		OnEvent: func(m ami.Message) { mu.Lock(); events = append(events, m); mu.Unlock() }})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for i, want := range []struct{ items, listItems string }{{"6", "6"}, {"20", "20"}, {"0", "0"}} {
		resp, err := conn.Action(ctxT(t), ami.Action{Name: "QueueStatus"})
		if err != nil || resp.Err() != nil || !resp.IsList() {
			t.Fatalf("QueueStatus %d: %+v, %v", i, resp.Fields, err)
		}
		if got := strconv.Itoa(len(resp.Items)); got != want.items || resp.Complete.Get("ListItems") != want.listItems ||
			resp.Complete.Event() != "QueueStatusComplete" {
			t.Errorf("QueueStatus %d: %s items, Complete %+v", i, got, resp.Complete.Fields)
		}
	}
	resp, err := conn.Action(ctxT(t), ami.Action{Name: "QueueAdd"})
	if err != nil || resp.Err() != nil || resp.Get("Message") != "Added interface to queue" {
		t.Fatalf("first QueueAdd: %+v, %v", resp.Fields, err)
	}
	resp, err = conn.Action(ctxT(t), ami.Action{Name: "QueueAdd"})
	var re *ami.ResponseError
	if err != nil || !errors.As(resp.Err(), &re) || re.Message != "Unable to add interface: Already there" || re.Action != "QueueAdd" {
		t.Fatalf("second QueueAdd: %+v, %v, Err %v", resp.Fields, err, resp.Err())
	}
	waitClosed(t, s.Played(0), "Played(0)")
	if _, err := conn.Action(ctxT(t), ami.Action{Name: "Ping"}); err != nil { // all frames read by now
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	names := map[string]int{}
	for _, m := range events {
		names[m.Event()]++
		if m.ActionID() != "" {
			t.Errorf("frame with ActionID %s delivered as event %s", m.ActionID(), m.Event())
		}
	}
	if names["QueueMemberPause"] != 6 || names["QueueMemberAdded"] != 1 || names["FullyBooted"] != 1 {
		t.Errorf("events = %v", names)
	}
}

func TestAMIServerEmptyListAnswers(t *testing.T) {
	s := startAMI(t, []capture.Script{{Records: loadFixture(t, "inbound-answered.ami.jsonl")}}, capture.ServerOptions{})
	conn, err := ami.Dial(ctxT(t), ami.Config{Addr: s.Addr(), Username: "cti", Secret: "cti-secret", KeepAlive: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for action, complete := range map[string]string{
		"CoreShowChannels": "CoreShowChannelsComplete", "QueueStatus": "QueueStatusComplete",
		"QueueSummary": "QueueSummaryComplete", "BridgeList": "BridgeListComplete", "Status": "StatusComplete",
		"DeviceStateList": "DeviceStateListComplete", "PJSIPShowEndpoints": "EndpointListComplete",
	} {
		resp, err := conn.Action(ctxT(t), ami.Action{Name: action})
		if err != nil || resp.Err() != nil || !resp.IsList() {
			t.Fatalf("%s: %+v, %v", action, resp.Fields, err)
		}
		if len(resp.Items) != 0 || resp.Complete.Event() != complete || resp.Complete.Get("ListItems") != "0" ||
			resp.Complete.Get("EventList") != "Complete" {
			t.Errorf("%s: %d items, Complete %+v", action, len(resp.Items), resp.Complete.Fields)
		}
	}
	for _, action := range []string{"QueueRule", "Redirect", "Command"} {
		resp, err := conn.Action(ctxT(t), ami.Action{Name: action})
		if err != nil || resp.Err() != nil || resp.IsList() {
			t.Errorf("%s: %+v, %v", action, resp.Fields, err)
		}
	}
	resp, err := conn.Action(ctxT(t), ami.Action{Name: "Ping"})
	if err != nil || resp.Get("Ping") != "Pong" {
		t.Errorf("Ping: %+v, %v", resp.Fields, err)
	}
}

// DropAfter closes connection 0 after that many frames; later connections play the last
// script.
func TestAMIServerDropAfter(t *testing.T) {
	recs := loadFixture(t, "inbound-answered.ami.jsonl")
	s := startAMI(t, []capture.Script{{Records: recs, DropAfter: 5}, {Records: recs, DropAfter: 2}}, capture.ServerOptions{})
	login := "Action: Login\r\nActionID: l\r\nUsername: cti\r\nSecret: cti-secret\r\nEvents: on\r\n\r\n"
	for k, want := range []int{5, 2, 2} {
		c := dialRaw(t, s.Addr())
		c.banner()
		c.send(login)
		var got []string
		for {
			raw, err := c.rd.ReadFrame()
			if err != nil {
				break
			}
			got = append(got, raw)
		}
		if len(got) != want {
			t.Fatalf("connection %d: %d frames before the close, want %d", k, len(got), want)
		}
		if !strings.HasPrefix(got[0], "Response: Success\r\nActionID: l\r\n") {
			t.Errorf("connection %d: first frame %q", k, got[0])
		}
		waitClosed(t, s.Played(k), "Played")
	}
	if n := s.Connections(); n != 3 {
		t.Fatalf("Connections = %d", n)
	}
}

// At 10× the recorded pace the recorded frames keep their order, and an action sent right
// after login is answered at once, before the recording's next frame (recorded 1 s later).
func TestAMIServerPacesAndAnswersBetweenFrames(t *testing.T) {
	recs := loadFixture(t, "inbound-answered.ami.jsonl")
	want, _, _ := expectedStream(recs)
	s := startAMI(t, []capture.Script{{Records: recs}}, capture.ServerOptions{Speed: 10})
	c := dialRaw(t, s.Addr())
	c.banner()
	c.send("Action: Login\r\nActionID: cti-1\r\nUsername: cti\r\nSecret: cti-secret\r\nEvents: on\r\n\r\n")
	c.send("Action: Ping\r\nActionID: p-1\r\n\r\n")
	var got strings.Builder
	got.WriteString("Asterisk Call Manager/11.0.0\r\n")
	pongAt, newchannelAt := -1, -1
	for i := 0; got.Len() < len(want); i++ {
		raw := c.frame()
		m := ami.ParseMessage(raw)
		switch {
		case m.ActionID() == "p-1":
			pongAt = i
			continue
		case m.Event() == "Newchannel" && newchannelAt < 0:
			newchannelAt = i
		}
		got.WriteString(raw)
	}
	if got.String() != want {
		t.Fatalf("recorded frames out of order: %s", firstDiff(got.String(), want))
	}
	if pongAt < 0 || newchannelAt < 0 || pongAt > newchannelAt {
		t.Fatalf("Pong at frame %d, first Newchannel at %d: want the Pong first", pongAt, newchannelAt)
	}
}

// bad-login.ami.jsonl: Permission denied before login, the recorded Error, then the close.
func TestAMIServerBadLogin(t *testing.T) {
	recs := loadFixture(t, "bad-login.ami.jsonl")
	t.Run("raw", func(t *testing.T) {
		s := startAMI(t, []capture.Script{{Records: recs}}, capture.ServerOptions{})
		c := dialRaw(t, s.Addr())
		c.banner()
		c.send("Action: CoreShowChannels\r\nActionID: x-1\r\n\r\n")
		if got, want := c.frame(), "Response: Error\r\nActionID: x-1\r\nMessage: Permission denied\r\n\r\n"; got != want {
			t.Fatalf("before login: %q, want %q", got, want)
		}
		c.send("Action: Login\r\nActionID: x-2\r\nUsername: cti\r\nSecret: cti-secret\r\n\r\n")
		if got, want := c.frame(), "Response: Error\r\nActionID: x-2\r\nMessage: Authentication failed\r\n\r\n"; got != want {
			t.Fatalf("login: %q, want %q", got, want)
		}
		c.expectEOF()
		waitClosed(t, s.Played(0), "Played(0)")
	})
	t.Run("client", func(t *testing.T) {
		s := startAMI(t, []capture.Script{{Records: recs}}, capture.ServerOptions{Speed: 20})
		cfg := ami.Config{Addr: s.Addr(), Username: "cti", Secret: "wrong-secret"}
		if _, err := ami.Dial(ctxT(t), cfg); !errors.Is(err, ami.ErrAuthFailed) {
			t.Fatalf("Dial = %v, want ErrAuthFailed", err)
		}
		if err := ami.NewClient(ami.ClientConfig{Config: cfg}).Run(ctxT(t)); !errors.Is(err, ami.ErrAuthFailed) {
			t.Fatalf("Run = %v, want ErrAuthFailed", err)
		}
	})
}

// The OriginateResponse of a reused Async Originate plays in place with the client's ActionID,
// so the client sees it as the event of its own action.
func TestAMIServerRewritesAsyncEventOfReusedAction(t *testing.T) {
	s := startAMI(t, []capture.Script{{Records: loadFixture(t, "click-to-call.ami.jsonl")}}, capture.ServerOptions{Speed: 10})
	c := dialRaw(t, s.Addr())
	c.banner()
	c.send("Action: Login\r\nActionID: l\r\nUsername: cti\r\nSecret: cti-secret\r\nEvents: on\r\n\r\n")
	c.send("Action: Originate\r\nActionID: mine-7\r\nChannel: PJSIP/1003\r\nAsync: true\r\n\r\n")
	var sawResponse bool
	for {
		m := ami.ParseMessage(c.frame())
		if m.Event() == "" && m.ActionID() == "mine-7" {
			sawResponse = m.Get("Message") == "Originate successfully queued"
		}
		if m.Event() == "OriginateResponse" {
			if !sawResponse || m.ActionID() != "mine-7" || m.Get("Uniqueid") != "9f8984fd-9c27-4827-b3d2-15c44c3c6841" {
				t.Fatalf("OriginateResponse %+v (response seen first: %v)", m.Fields, sawResponse)
			}
			return
		}
	}
}

// Reconnecting client against a server that drops every connection after the login response
// and two events.
func TestAMIServerDropsAndClientReconnects(t *testing.T) {
	s := startAMI(t, []capture.Script{{Records: loadFixture(t, "inbound-answered.ami.jsonl"), DropAfter: 3}}, capture.ServerOptions{})
	var mu sync.Mutex
	var booted, connects, disconnects int
	client := ami.NewClient(ami.ClientConfig{
		Config: ami.Config{Addr: s.Addr(), Username: "cti", Secret: "cti-secret", KeepAlive: -1,
			OnEvent: func(m ami.Message) {
				if m.Event() == "FullyBooted" {
					mu.Lock()
					booted++
					mu.Unlock()
				}
			}},
		MinBackoff: 10 * time.Millisecond, MaxBackoff: 40 * time.Millisecond,
		OnConnect:    func(context.Context, *ami.Conn) error { mu.Lock(); connects++; mu.Unlock(); return nil },
		OnDisconnect: func(error) { mu.Lock(); disconnects++; mu.Unlock() },
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- client.Run(ctx) }()
	waitClosed(t, s.Played(3), "Played(3)")
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Run = %v", err)
	}
	if s.Connections() < 4 {
		t.Fatalf("Connections = %d", s.Connections())
	}
	mu.Lock()
	defer mu.Unlock()
	if connects < 3 || booted < 1 || disconnects != connects {
		t.Fatalf("OnConnect %d, OnDisconnect %d, FullyBooted %d", connects, disconnects, booted)
	}
}

func TestAMIServerListenRefusesBadScripts(t *testing.T) {
	good := loadFixture(t, "bad-login.ami.jsonl")
	esl := []capture.Record{{Dir: capture.DirIn, Raw: "Content-Type: auth/request\n\n"}}
	cases := map[string]struct {
		scripts []capture.Script
		opts    capture.ServerOptions
	}{
		"no scripts":     {nil, capture.ServerOptions{}},
		"no in record":   {[]capture.Script{{Records: []capture.Record{{Dir: capture.DirOut, Raw: "Action: Ping\r\n\r\n"}}}}, capture.ServerOptions{}},
		"not AMI":        {[]capture.Script{{Records: good}, {Records: esl}}, capture.ServerOptions{}},
		"negative speed": {[]capture.Script{{Records: good}}, capture.ServerOptions{Speed: -1}},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			s := capture.NewAMIServer(c.scripts, c.opts)
			defer s.Close()
			if err := s.Listen("127.0.0.1:0"); err == nil {
				t.Fatal("Listen succeeded")
			}
			if s.Addr() != "" {
				t.Fatalf("Addr = %q after a failed Listen", s.Addr())
			}
		})
	}
}

func TestAMIServerCloseEndsConnections(t *testing.T) {
	s := capture.NewAMIServer([]capture.Script{{Records: loadFixture(t, "inbound-answered.ami.jsonl")}}, capture.ServerOptions{Speed: 1})
	if err := s.Listen("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	c := dialRaw(t, s.Addr())
	c.banner()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	c.expectEOF()
	if err := s.Listen("127.0.0.1:0"); err == nil {
		t.Fatal("Listen after Close succeeded")
	}
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), testenv.Patience)
	t.Cleanup(cancel)
	return ctx
}
