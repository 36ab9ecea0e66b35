package esl_test

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/callbridge/callbridge"
	"github.com/callbridge/callbridge/capture"
	"github.com/callbridge/callbridge/freeswitch/esl"
	"github.com/callbridge/callbridge/internal/testenv"
)

// replay starts an ESL replay server for the named recordings (one per connection).
func replay(t testing.TB, names ...string) *capture.ESLServer {
	t.Helper()
	var scripts []capture.Script
	for _, n := range names {
		scripts = append(scripts, capture.Script{Records: recording(t, n)})
	}
	return replayScripts(t, scripts...)
}

func replayScripts(t testing.TB, scripts ...capture.Script) *capture.ESLServer {
	t.Helper()
	srv := capture.NewESLServer(scripts, capture.ServerOptions{})
	if err := srv.Listen("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return srv
}

// sink collects events and tapped frames.
type sink struct {
	mu  sync.Mutex
	evs []*esl.Event
	in  []string
	out []string
}

func (s *sink) event(e *esl.Event) {
	s.mu.Lock()
	s.evs = append(s.evs, e)
	s.mu.Unlock()
}

func (s *sink) tap(dir, raw string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if dir == "in" {
		s.in = append(s.in, raw)
	} else {
		s.out = append(s.out, raw)
	}
}

func (s *sink) events() []*esl.Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*esl.Event(nil), s.evs...)
}

func ctxT(t testing.TB) context.Context { return testenv.Context(t) }

// drain waits until the server has played its script and every event has been read: the
// reply to a command sent afterwards comes after every event (one reader, wire order).
func drain(t testing.TB, srv *capture.ESLServer, c *esl.Conn) {
	t.Helper()
	select {
	case <-srv.Played(0):
	case <-time.After(testenv.Patience):
		t.Fatal("recording not played")
	}
	if _, err := c.API(ctxT(t), "version"); err != nil {
		t.Fatal(err)
	}
}

// TestDialReceivesRecordedEvents: auth, "event plain ALL", then every recorded event of
// fs-inbound-answered (113, README table) arrives in order, and the tap sees the same frames
// the recording client received.
func TestDialReceivesRecordedEvents(t *testing.T) {
	srv := replay(t, "fs-inbound-answered")
	s := &sink{}
	c, err := esl.Dial(ctxT(t), esl.Config{Addr: srv.Addr(), Password: "ClueCon", OnEvent: s.event, Tap: s.tap, KeepAlive: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	drain(t, srv, c)
	evs := s.events()
	if len(evs) != 113 {
		t.Fatalf("%d events, want 113", len(evs))
	}
	if evs[0].Name() != "CHANNEL_STATE" || evs[0].Get("Channel-State") != "CS_NEW" {
		t.Fatalf("first event %s %s, want CHANNEL_STATE CS_NEW", evs[0].Name(), evs[0].Get("Channel-State"))
	}
	want := received(recording(t, "fs-inbound-answered"))
	s.mu.Lock()
	defer s.mu.Unlock()
	// greeting, auth reply, event reply, 113 events, then our version reply.
	for i := 0; i < 3+113; i++ {
		if s.in[i] != want[i] {
			t.Fatalf("tapped frame %d differs from the recording:\n%q\n%q", i, truncate(s.in[i]), truncate(want[i]))
		}
	}
	if s.out[0] != "auth ********\n\n" || s.out[1] != "event plain ALL\n\n" {
		t.Fatalf("tapped commands %q; the password must be redacted", s.out[:2])
	}
}

// TestDialJSON: a JSON subscription to a plain recording gets the same events, re-encoded by
// the replay server, and they decode to the same values.
func TestDialJSON(t *testing.T) {
	srv := replay(t, "fs-inbound-answered")
	s := &sink{}
	c, err := esl.Dial(ctxT(t), esl.Config{Addr: srv.Addr(), Password: "x", Format: esl.FormatJSON, OnEvent: s.event, Tap: s.tap, KeepAlive: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	drain(t, srv, c)
	evs := s.events()
	if len(evs) != 113 {
		t.Fatalf("%d events, want 113", len(evs))
	}
	s.mu.Lock()
	if !strings.Contains(s.in[3], "Content-Type: text/event-json") {
		t.Fatalf("frame not JSON: %q", truncate(s.in[3]))
	}
	s.mu.Unlock()
	for _, e := range evs {
		if e.Name() == "CUSTOM" && e.Subclass() != "callcenter::info" {
			t.Fatalf("subclass %q", e.Subclass())
		}
		if e.Name() == "CHANNEL_CREATE" && e.Get("Caller-Caller-ID-Name") == "John Smith" {
			return
		}
	}
	t.Fatal("no CHANNEL_CREATE from John Smith")
}

// TestBadAuth: fs-bad-auth answers the wrong password with "-ERR invalid" and a disconnect
// notice.
func TestBadAuth(t *testing.T) {
	srv := replay(t, "fs-bad-auth")
	_, err := esl.Dial(ctxT(t), esl.Config{Addr: srv.Addr(), Password: "WrongPassword"})
	if !errors.Is(err, esl.ErrAuthFailed) {
		t.Fatalf("err = %v, want ErrAuthFailed", err)
	}
}

// TestAPIReplies: the commands of fs-agent-state get their recorded replies, matched by
// order; "-ERR …" bodies are ReplyErrors; a body without a final newline is kept as it is.
func TestAPIReplies(t *testing.T) {
	srv := replay(t, "fs-agent-state")
	c, err := esl.Dial(ctxT(t), esl.Config{Addr: srv.Addr(), Password: "ClueCon", KeepAlive: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := ctxT(t)
	cases := []struct {
		cmd, text, errText string
	}{
		{cmd: "callcenter_config agent set status 1001@default 'On Break'", text: "+OK\n"},
		{cmd: "callcenter_config agent set status 1001@default Lunch", text: "-ERR Invalid Agent Status!\n", errText: "Invalid Agent Status!"},
		{cmd: "callcenter_config agent get status 1001@default", text: "Available"},
		{cmd: "callcenter_config agent set state 1001@default Busy", text: "-ERR Invalid Agent State!\n", errText: "Invalid Agent State!"},
		{cmd: "no_such_command_in_the_recording", text: "+OK\n"},
	}
	for _, tc := range cases {
		r, err := c.API(ctx, tc.cmd)
		if err != nil {
			t.Fatal(err)
		}
		if r.Text() != tc.text {
			t.Errorf("%s: text %q, want %q", tc.cmd, r.Text(), tc.text)
		}
		var re *esl.ReplyError
		if tc.errText == "" && r.Err() != nil || tc.errText != "" && (!errors.As(r.Err(), &re) || re.Message() != tc.errText) {
			t.Errorf("%s: Err = %v, want %q", tc.cmd, r.Err(), tc.errText)
		}
	}
}

// TestConcurrentCommands: replies are matched to commands by order even when many
// goroutines send at once.
func TestConcurrentCommands(t *testing.T) {
	srv := replay(t, "fs-agent-state")
	c, err := esl.Dial(ctxT(t), esl.Config{Addr: srv.Addr(), Password: "ClueCon", KeepAlive: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := ctxT(t)
	var wg sync.WaitGroup
	errs := make(chan error, 50)
	for i := 0; i < 50; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			cmd := "show channels as json"
			want := `{"row_count":0}` + "\n"
			if i%2 == 1 {
				cmd, want = "uptime", "+OK\n"
			}
			r, err := c.API(ctx, cmd)
			if err != nil {
				errs <- err
				return
			}
			if r.Text() != want || r.Command != "api "+cmd {
				errs <- errors.New("reply " + r.Text() + " for " + r.Command)
			}
		}(i)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// TestBGAPIJob: the click-to-call originate of fs-click-to-call: the reply carries the
// Job-UUID, and the job completes with the body of the recorded BACKGROUND_JOB.
func TestBGAPIJob(t *testing.T) {
	// At ten times the recorded pace the job's BACKGROUND_JOB (3 s after the command in the
	// recording) comes after the reply, as on the switch.
	srv := capture.NewESLServer([]capture.Script{{Records: recording(t, "fs-click-to-call")}}, capture.ServerOptions{Speed: 10})
	if err := srv.Listen("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	c, err := esl.Dial(ctxT(t), esl.Config{Addr: srv.Addr(), Password: "ClueCon", KeepAlive: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	j, err := c.BGAPI(ctxT(t), "originate {origination_uuid=0d6f3a3e-0000-4000-8000-000000000001}user/1003 15557654321 XML default")
	if err != nil {
		t.Fatal(err)
	}
	if j.UUID != "70507f10-f8e3-496e-9bab-5119fd29a866" {
		t.Fatalf("job %q, want the recorded Job-UUID", j.UUID)
	}
	res, err := j.Wait(ctxT(t))
	if err != nil || res != "+OK af1ad743-8ea0-4f53-bd88-dd628245d045\n" {
		t.Fatalf("job result %q, %v", res, err)
	}
	// A second originate is not in the recording: a made-up job, completed at once.
	j2, err := c.BGAPI(ctxT(t), "originate user/1004 15557654321 XML default")
	if err != nil {
		t.Fatal(err)
	}
	if res, err := j2.Wait(ctxT(t)); err != nil || res != "+OK\n" {
		t.Fatalf("made-up job %q, %v", res, err)
	}
}

// TestCommandRefusesLineBreaks: a command with CR, LF or NUL is refused before anything is
// written, with callbridge's invalid code.
func TestCommandRefusesLineBreaks(t *testing.T) {
	srv := replay(t, "fs-agent-state")
	s := &sink{}
	c, err := esl.Dial(ctxT(t), esl.Config{Addr: srv.Addr(), Password: "ClueCon", Tap: s.tap, KeepAlive: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, bad := range []string{"uuid_kill x\n\napi status", "status\r", "status\x00", ""} {
		_, err := c.API(ctxT(t), bad)
		if callbridge.ErrorCode(err) != callbridge.EInvalid {
			t.Errorf("API(%q) err = %v, want invalid", bad, err)
		}
		if _, err := c.BGAPI(ctxT(t), bad); callbridge.ErrorCode(err) != callbridge.EInvalid {
			t.Errorf("BGAPI(%q) err = %v, want invalid", bad, err)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.out) != 2 { // auth and event only
		t.Fatalf("written: %q", s.out)
	}
	if _, err := esl.Dial(ctxT(t), esl.Config{Addr: srv.Addr(), Password: "Clue\nCon"}); callbridge.ErrorCode(err) != callbridge.EInvalid {
		t.Fatalf("password with LF: %v", err)
	}
}

// fakeSwitch accepts one connection and runs script on it.
func fakeSwitch(t *testing.T, script func(nc net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		nc, err := ln.Accept()
		if err != nil {
			return
		}
		defer nc.Close()
		script(nc)
	}()
	return ln.Addr().String()
}

// readCommand reads one "line\n\n" command.
func readCommand(nc net.Conn) string {
	var b []byte
	one := make([]byte, 1)
	for !strings.HasSuffix(string(b), "\n\n") {
		if _, err := nc.Read(one); err != nil {
			return string(b)
		}
		b = append(b, one[0])
	}
	return strings.TrimSpace(string(b))
}

// TestAccessDenied: an ACL refusal (text/rude-rejection instead of auth/request).
func TestAccessDenied(t *testing.T) {
	addr := fakeSwitch(t, func(nc net.Conn) {
		nc.Write([]byte("Content-Type: text/rude-rejection\nContent-Length: 24\n\nAccess Denied, go away.\n"))
	})
	_, err := esl.Dial(ctxT(t), esl.Config{Addr: addr, Password: "ClueCon"})
	if !errors.Is(err, esl.ErrAccessDenied) {
		t.Fatalf("err = %v, want ErrAccessDenied", err)
	}
}

// TestKeepAliveTimeout: a switch that goes silent and stops answering is dropped.
func TestKeepAliveTimeout(t *testing.T) {
	addr := fakeSwitch(t, func(nc net.Conn) {
		nc.Write([]byte("Content-Type: auth/request\n\n"))
		readCommand(nc)
		nc.Write([]byte("Content-Type: command/reply\nReply-Text: +OK accepted\n\n"))
		readCommand(nc)
		nc.Write([]byte("Content-Type: command/reply\nReply-Text: +OK event listener enabled plain\n\n"))
		io.Copy(io.Discard, nc) // silent, and the probe is never answered, until the client hangs up
	})
	c, err := esl.Dial(ctxT(t), esl.Config{Addr: addr, Password: "ClueCon", KeepAlive: 100 * time.Millisecond, KeepAliveTimeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-c.Done():
	case <-time.After(testenv.Patience):
		t.Fatal("connection not closed")
	}
	if !errors.Is(c.Err(), esl.ErrKeepAliveTimeout) {
		t.Fatalf("Err = %v", c.Err())
	}
}

// TestCloseFailsWaitingCommands: a command waiting for its reply fails with ErrClosed. The
// switch tells the test when it has read the command (so it is surely waiting for its reply)
// and never answers it; only then is the connection closed.
func TestCloseFailsWaitingCommands(t *testing.T) {
	waiting := make(chan string, 1)
	addr := fakeSwitch(t, func(nc net.Conn) {
		nc.Write([]byte("Content-Type: auth/request\n\n"))
		readCommand(nc)
		nc.Write([]byte("Content-Type: command/reply\nReply-Text: +OK accepted\n\n"))
		readCommand(nc)
		nc.Write([]byte("Content-Type: command/reply\nReply-Text: +OK event listener enabled plain\n\n"))
		waiting <- readCommand(nc) // never answered
		io.Copy(io.Discard, nc)    // until the client hangs up
	})
	c, err := esl.Dial(ctxT(t), esl.Config{Addr: addr, Password: "ClueCon", KeepAlive: -1})
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() {
		_, err := c.API(context.Background(), "status")
		errc <- err
	}()
	select {
	case cmd := <-waiting:
		if cmd != "api status" {
			t.Fatalf("the switch read %q, want the waiting command", cmd)
		}
	case err := <-errc:
		t.Fatalf("API returned %v before the switch read it", err)
	case <-time.After(testenv.Patience):
		t.Fatal("the command never reached the switch")
	}
	c.Close()
	select {
	case err := <-errc:
		if !errors.Is(err, esl.ErrClosed) {
			t.Fatalf("err = %v, want ErrClosed", err)
		}
	case <-time.After(testenv.Patience):
		t.Fatal("the waiting command did not end when the connection closed")
	}
}

// TestExitDisconnectNotice: exit gets "+OK bye", the disconnect notice and the close.
func TestExitDisconnectNotice(t *testing.T) {
	srv := replay(t, "fs-agent-state")
	c, err := esl.Dial(ctxT(t), esl.Config{Addr: srv.Addr(), Password: "ClueCon", KeepAlive: -1})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Exit(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	<-c.Done()
}
