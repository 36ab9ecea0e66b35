package ami_test

import (
	"errors"
	"io"
	"net"
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

func loadFixture(t testing.TB, name string) []capture.Record {
	t.Helper()
	path := name
	if !filepath.IsAbs(name) {
		path = filepath.Join(fixtures.Dir(t, "asterisk-22"), name)
	}
	recs, err := capture.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return recs
}

// inFrames returns the raw "in" frames of a recording (banner first).
func inFrames(recs []capture.Record) []string {
	var out []string
	for _, r := range recs {
		if r.Dir == capture.DirIn {
			out = append(out, r.Raw)
		}
	}
	return out
}

// fakeAMI is a scripted AMI server on 127.0.0.1: each accepted connection runs handle in its
// own goroutine. Handlers report problems with t.Errorf.
type fakeAMI struct {
	t      testing.TB
	ln     net.Listener
	handle func(c *fakeConn)

	mu      sync.Mutex
	accepts []time.Time
	wg      sync.WaitGroup
}

func startFake(t testing.TB, handle func(c *fakeConn)) *fakeAMI {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeAMI{t: t, ln: ln, handle: handle}
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			f.mu.Lock()
			f.accepts = append(f.accepts, time.Now())
			n := len(f.accepts) - 1
			f.mu.Unlock()
			f.wg.Add(1)
			go func() {
				defer f.wg.Done()
				defer nc.Close()
				f.handle(&fakeConn{t: t, nc: nc, rd: ami.NewReader(nc), n: n})
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		f.wg.Wait()
	})
	return f
}

func (f *fakeAMI) addr() string { return f.ln.Addr().String() }

func (f *fakeAMI) acceptTimes() []time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]time.Time(nil), f.accepts...)
}

type fakeConn struct {
	t  testing.TB
	nc net.Conn
	rd *ami.Reader
	n  int // connection number, 0-based
}

func (c *fakeConn) send(frames ...string) bool {
	for _, f := range frames {
		if _, err := io.WriteString(c.nc, f); err != nil {
			return false
		}
	}
	return true
}

// recv reads the client's next action; ok is false when the client is gone.
func (c *fakeConn) recv() (raw string, m ami.Message, ok bool) {
	raw, err := c.rd.ReadFrame()
	if err != nil {
		if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) && !strings.Contains(err.Error(), "reset") {
			c.t.Logf("fake server read: %v", err)
		}
		return "", ami.Message{}, false
	}
	return raw, ami.ParseMessage(raw), true
}

// login sends the banner, expects Login with the given credentials and accepts it.
func (c *fakeConn) login() bool {
	c.send("Asterisk Call Manager/11.0.0\r\n")
	_, m, ok := c.recv()
	if !ok {
		return false
	}
	if m.Get("Action") != "Login" || m.Get("Username") != "cti" || m.Get("Secret") != "cti-secret" || m.Get("Events") != "on" {
		c.t.Errorf("login action = %+v", m.Fields)
	}
	return c.send("Response: Success\r\nActionID: " + m.ActionID() + "\r\nMessage: Authentication accepted\r\n\r\n")
}

// serveActions answers every later action with reply(m) until the client goes away.
func (c *fakeConn) serveActions(reply func(m ami.Message) []string) {
	for {
		_, m, ok := c.recv()
		if !ok {
			return
		}
		if !c.send(reply(m)...) {
			return
		}
	}
}

func success(m ami.Message, extra string) string {
	return "Response: Success\r\nActionID: " + m.ActionID() + "\r\n" + extra + "\r\n"
}

func event(name string, fields ...string) string {
	s := "Event: " + name + "\r\n"
	for _, f := range fields {
		s += f + "\r\n"
	}
	return s + "\r\n"
}

func testConfig(addr string) ami.Config {
	return ami.Config{Addr: addr, Username: "cti", Secret: "cti-secret", KeepAlive: -1, DialTimeout: testenv.Patience}
}

// eventLog collects events delivered to OnEvent.
type eventLog struct {
	mu   sync.Mutex
	msgs []ami.Message
	ch   chan struct{}
}

func newEventLog() *eventLog { return &eventLog{ch: make(chan struct{}, 1024)} }

func (l *eventLog) add(m ami.Message) {
	l.mu.Lock()
	l.msgs = append(l.msgs, m)
	l.mu.Unlock()
	select {
	case l.ch <- struct{}{}:
	default:
	}
}

func (l *eventLog) names() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, m := range l.msgs {
		out = append(out, m.Event())
	}
	return out
}

// waitFor waits until the log holds an event named name.
func (l *eventLog) waitFor(t testing.TB, name string) {
	t.Helper()
	deadline := time.After(testenv.Patience)
	for {
		for _, n := range l.names() {
			if n == name {
				return
			}
		}
		select {
		case <-l.ch:
		case <-deadline:
			t.Fatalf("event %s not delivered; got %v", name, l.names())
		}
	}
}
