package capture_test

import (
	"bufio"
	"errors"
	"io"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/callbridge/callbridge/capture"
	"github.com/callbridge/callbridge/freeswitch/esl"
	"github.com/callbridge/callbridge/internal/fixtures"
	"github.com/callbridge/callbridge/internal/testenv"
)

func eslRecording(t testing.TB, name string) []capture.Record {
	t.Helper()
	recs, err := capture.ReadFile(filepath.Join(fixtures.Dir(t, "freeswitch-1.10"), name+".esl.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	return recs
}

func startESL(t *testing.T, scripts []capture.Script, opts capture.ServerOptions) *capture.ESLServer {
	t.Helper()
	s := capture.NewESLServer(scripts, opts)
	if err := s.Listen("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// eslClient is a plain TCP client that reads ESL frames.
type eslClient struct {
	t  *testing.T
	nc net.Conn
	rd *esl.Reader
}

func dialESL(t *testing.T, addr string) *eslClient {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	_ = nc.SetDeadline(time.Now().Add(testenv.Patience))
	return &eslClient{t: t, nc: nc, rd: esl.NewReader(nc)}
}

func (c *eslClient) send(cmd string) {
	c.t.Helper()
	if _, err := io.WriteString(c.nc, cmd+"\n\n"); err != nil {
		c.t.Fatal(err)
	}
}

func (c *eslClient) frame() esl.Frame {
	c.t.Helper()
	f, err := c.rd.ReadFrame()
	if err != nil {
		c.t.Fatalf("read frame: %v", err)
	}
	return f
}

func (c *eslClient) reply(cmd string) esl.Reply {
	c.t.Helper()
	c.send(cmd)
	for {
		f := c.frame()
		if f.IsReply() {
			return esl.Reply{Frame: f}
		}
	}
}

func (c *eslClient) expectEOF() {
	c.t.Helper()
	for {
		f, err := c.rd.ReadFrame()
		if errors.Is(err, io.EOF) {
			return
		}
		if err != nil {
			c.t.Fatalf("got %v; want the connection closed", err)
		}
		if f.ContentType() != esl.TypeDisconnectNotice {
			c.t.Fatalf("got %q; want the connection closed", f.ContentType())
		}
	}
}

// TestESLReplayEventStream: the greeting, auth and event subscription are answered, then
// exactly the recorded events are played in order, and no recorded reply is played in
// place.
func TestESLReplayEventStream(t *testing.T) {
	recs := eslRecording(t, "fs-hold")
	srv := startESL(t, []capture.Script{{Records: recs}}, capture.ServerOptions{})
	c := dialESL(t, srv.Addr())
	if f := c.frame(); f.ContentType() != esl.TypeAuthRequest {
		t.Fatalf("greeting %q", f.ContentType())
	}
	if r := c.reply("auth ClueCon"); r.Text() != "+OK accepted" {
		t.Fatalf("auth reply %q", r.Text())
	}
	if r := c.reply("event plain ALL"); r.Text() != "+OK event listener enabled plain" {
		t.Fatalf("event reply %q", r.Text())
	}
	var want []string
	for _, r := range recs {
		if r.Dir == capture.DirIn && strings.Contains(r.Raw, "Content-Type: text/event-plain") {
			want = append(want, r.Raw)
		}
	}
	if len(want) != 136 {
		t.Fatalf("%d recorded events, want 136 (README table)", len(want))
	}
	for i, w := range want {
		f := c.frame()
		if f.Raw != w {
			t.Fatalf("event %d differs: %s", i, firstDiff(f.Raw, w))
		}
	}
	waitClosed(t, srv.Played(0), "played")
	// The connection stays open after the recording client's exit was reached; exit ends it.
	if r := c.reply("exit"); r.Text() != "+OK bye" {
		t.Fatalf("exit reply %q", r.Text())
	}
	c.expectEOF()
}

// TestESLReplayNoEventsBeforeSubscription: until the client subscribes, only replies come.
// The server plays as fast as it can (speed 0), so events played too early would be on the
// wire before the reply to a later command: every frame up to that reply is a reply.
func TestESLReplayNoEventsBeforeSubscription(t *testing.T) {
	srv := startESL(t, []capture.Script{{Records: eslRecording(t, "fs-hold")}}, capture.ServerOptions{})
	c := dialESL(t, srv.Addr())
	c.frame()
	onlyReply := func(cmd string) esl.Reply {
		t.Helper()
		c.send(cmd)
		f := c.frame()
		if !f.IsReply() {
			t.Fatalf("%q before the client subscribed, waiting for the reply to %q", f.ContentType(), cmd)
		}
		return esl.Reply{Frame: f}
	}
	onlyReply("auth ClueCon")
	r := onlyReply("api show channels as json")
	if r.Text() != `{"row_count":0}`+"\n" {
		t.Fatalf("empty show channels %q", r.Text())
	}
	onlyReply("api status")
	select {
	case <-srv.Played(0):
		t.Fatal("played before the client subscribed")
	default:
	}
}

// TestESLReplayBeforeAuth: FreeSWITCH answers commands before auth with "-ERR command not
// found" (fs-bad-auth).
func TestESLReplayBeforeAuth(t *testing.T) {
	srv := startESL(t, []capture.Script{{Records: eslRecording(t, "fs-hold")}}, capture.ServerOptions{})
	c := dialESL(t, srv.Addr())
	c.frame()
	if r := c.reply("api status"); r.Text() != "-ERR command not found" {
		t.Fatalf("reply %q", r.Text())
	}
	if r := c.reply("exit"); r.Text() != "+OK bye" {
		t.Fatalf("exit reply %q", r.Text())
	}
	c.expectEOF()
}

// TestESLReplayBadAuth: the recorded refusal, the disconnect notice and the close.
func TestESLReplayBadAuth(t *testing.T) {
	srv := startESL(t, []capture.Script{{Records: eslRecording(t, "fs-bad-auth")}}, capture.ServerOptions{})
	c := dialESL(t, srv.Addr())
	c.frame()
	if r := c.reply("auth anything"); r.Text() != "-ERR invalid" {
		t.Fatalf("auth reply %q", r.Text())
	}
	if f := c.frame(); f.ContentType() != esl.TypeDisconnectNotice {
		t.Fatalf("after the refusal: %q", f.ContentType())
	}
	c.expectEOF()
	waitClosed(t, srv.Played(0), "played")
}

// TestESLReplayRecordedReplies: recorded replies are reused once per connection for the same
// command line; bgapi falls back to the same application; everything else gets a made-up
// success.
func TestESLReplayRecordedReplies(t *testing.T) {
	srv := startESL(t, []capture.Script{{Records: eslRecording(t, "fs-agent-state")}, {Records: eslRecording(t, "fs-click-to-call")}}, capture.ServerOptions{})
	c := dialESL(t, srv.Addr())
	c.frame()
	c.reply("auth ClueCon")
	if r := c.reply("api callcenter_config agent get status 1001@default"); r.Text() != "Available" {
		t.Fatalf("recorded reply %q", r.Text())
	}
	if r := c.reply("api callcenter_config agent get status 1001@default"); r.Text() != "+OK\n" {
		t.Fatalf("second time %q, want the made-up +OK", r.Text())
	}
	if r := c.reply("api callcenter_config agent set status 1001@default Lunch"); r.Text() != "-ERR Invalid Agent Status!\n" {
		t.Fatalf("recorded error %q", r.Text())
	}
	if r := c.reply("nonsense"); r.Text() != "-ERR command not found" {
		t.Fatalf("unknown command %q", r.Text())
	}
	c.reply("event json ALL")
	r := c.reply("bgapi originate user/1003 15557654321 XML default")
	id := r.JobUUID()
	if id == "" {
		t.Fatalf("bgapi reply %q", r.Text())
	}
	for {
		f := c.frame()
		if !f.IsEvent() {
			continue
		}
		ev, err := f.Event()
		if err != nil {
			t.Fatal(err)
		}
		if ev.Name() == "BACKGROUND_JOB" {
			if ev.Get("Job-UUID") != id || ev.Body != "+OK\n" || f.ContentType() != esl.TypeEventJSON {
				t.Fatalf("job event %+v", ev)
			}
			break
		}
	}

	// Connection 1 plays fs-click-to-call: its bgapi originate is matched by application.
	c2 := dialESL(t, srv.Addr())
	c2.frame()
	c2.reply("auth ClueCon")
	r = c2.reply("bgapi originate {origination_uuid=11111111-2222-4333-8444-555555555555}user/1003 15557654321 XML default")
	if r.JobUUID() != "70507f10-f8e3-496e-9bab-5119fd29a866" {
		t.Fatalf("bgapi reply %q, want the recorded job", r.Text())
	}
}

// TestESLReplayJSONClient: a JSON subscription to a plain recording gets the same events as
// text/event-json frames.
func TestESLReplayJSONClient(t *testing.T) {
	recs := eslRecording(t, "fs-inbound-answered")
	srv := startESL(t, []capture.Script{{Records: recs}}, capture.ServerOptions{})
	c := dialESL(t, srv.Addr())
	c.frame()
	c.reply("auth ClueCon")
	c.reply("event json ALL")
	var plain []*esl.Event
	for _, r := range recs {
		if r.Dir != capture.DirIn {
			continue
		}
		if f, _ := esl.ParseFrame(r.Raw); f.IsEvent() {
			e, _ := f.Event()
			plain = append(plain, e)
		}
	}
	for i, p := range plain {
		f := c.frame()
		if f.ContentType() != esl.TypeEventJSON {
			t.Fatalf("event %d is %q", i, f.ContentType())
		}
		j, err := f.Event()
		if err != nil {
			t.Fatal(err)
		}
		if len(j.Headers) != len(p.Headers) || j.Name() != p.Name() || j.Get("Unique-ID") != p.Get("Unique-ID") {
			t.Fatalf("event %d: %s/%d headers, want %s/%d", i, j.Name(), len(j.Headers), p.Name(), len(p.Headers))
		}
	}
}

// TestESLReplayDropAfter: the connection closes after DropAfter recorded frames (the auth
// reply counts); the next connection plays the next script.
func TestESLReplayDropAfter(t *testing.T) {
	recs := eslRecording(t, "fs-inbound-abandon")
	srv := startESL(t, []capture.Script{{Records: recs, DropAfter: 4}, {Records: recs}}, capture.ServerOptions{})
	c := dialESL(t, srv.Addr())
	c.frame()
	c.reply("auth ClueCon")
	c.reply("event plain ALL")
	for i := 0; i < 3; i++ {
		if f := c.frame(); !f.IsEvent() {
			t.Fatalf("frame %d is %q", i, f.ContentType())
		}
	}
	c.expectEOF()
	waitClosed(t, srv.Played(0), "played 0")
	if srv.Connections() != 1 {
		t.Fatalf("%d connections", srv.Connections())
	}
}

// TestESLReplayListenErrors: scripts are checked by Listen.
func TestESLReplayListenErrors(t *testing.T) {
	for name, scripts := range map[string][]capture.Script{
		"no script":     nil,
		"no in record":  {{Records: []capture.Record{{Dir: capture.DirOut, Raw: "auth x\n\n"}}}},
		"AMI recording": {{Records: []capture.Record{{Dir: capture.DirIn, Raw: "Asterisk Call Manager/11.0.0\r\n"}}}},
		"broken frame":  {{Records: []capture.Record{{Dir: capture.DirIn, Raw: "Content-Type: auth/request\n\n"}, {Dir: capture.DirIn, Raw: "Content-Length: 99\n\nshort"}}}},
	} {
		s := capture.NewESLServer(scripts, capture.ServerOptions{})
		if err := s.Listen("127.0.0.1:0"); err == nil {
			s.Close()
			t.Errorf("%s: Listen accepted it", name)
		}
	}
	s := capture.NewESLServer([]capture.Script{{Records: eslRecording(t, "fs-hold")}}, capture.ServerOptions{Speed: -1})
	if err := s.Listen("127.0.0.1:0"); err == nil {
		s.Close()
		t.Error("negative speed accepted")
	}
}

// TestESLReplayPaced: at the recorded pace the events of fs-inbound-abandon (the caller
// hangs up about 14.5 s after the start) are spread out: at Speed 10 the stream takes more
// than 1 s.
func TestESLReplayPaced(t *testing.T) {
	if testing.Short() {
		t.Skip("paced replay takes about 2 s")
	}
	srv := startESL(t, []capture.Script{{Records: eslRecording(t, "fs-inbound-abandon")}}, capture.ServerOptions{Speed: 10})
	c := dialESL(t, srv.Addr())
	_ = c.nc.SetDeadline(time.Now().Add(20 * time.Second))
	c.frame()
	c.reply("auth ClueCon")
	start := time.Now()
	c.reply("event plain ALL")
	waitClosed(t, srv.Played(0), "played")
	if d := time.Since(start); d < time.Second {
		t.Fatalf("played in %s, want the recorded pace / 10 (about 1.4 s)", d)
	}
}

// FuzzReadESLCommand: whatever a client sends, the replay server's command reader returns
// command lines without line feeds, consumes its input, and ends.
func FuzzReadESLCommand(f *testing.F) {
	for _, name := range []string{"fs-agent-state", "fs-resync", "fs-bad-auth", "fs-click-to-call"} {
		var b strings.Builder
		for _, r := range eslRecording(f, name) {
			if r.Dir == capture.DirOut {
				b.WriteString(r.Raw)
			}
		}
		f.Add(b.String())
	}
	f.Add("sendmsg x\ncall-command: execute\nContent-Length: 3\n\nabc\n\napi status\n\n")
	f.Add("\n\n\r\nevent plain ALL\r\n\r\n")
	f.Fuzz(func(t *testing.T, stream string) {
		br := bufio.NewReaderSize(strings.NewReader(stream), 16)
		for i := 0; i <= len(stream); i++ {
			line, err := capture.ReadESLCommand(br)
			if err != nil {
				return
			}
			if line == "" || strings.Contains(line, "\n") {
				t.Fatalf("command %q", line)
			}
		}
		t.Fatalf("more commands than bytes in %q", stream)
	})
}
