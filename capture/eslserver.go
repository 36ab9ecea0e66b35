package capture

import (
	"bufio"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/callbridge/callbridge/freeswitch/esl"
)

// eslDisconnectNotice is what FreeSWITCH 1.10 sends before it closes a connection (after
// exit, after a failed auth; every recording).
const eslDisconnectNotice = "Content-Type: text/disconnect-notice\nContent-Length: 67\n\nDisconnected, goodbye.\nSee you at ClueCon! http://www.cluecon.com/\n"

// ESLServer plays FreeSWITCH event socket recordings (.esl.jsonl) over TCP as FreeSWITCH 1.10
// would, so the real ESL client and driver code can be tested against recorded traffic. It
// has the Script, ServerOptions and Played semantics of AMIServer.
//
// Connection k (0-based) plays scripts[min(k, len(scripts)-1)]:
//
//  1. It sends the recorded greeting (Content-Type: auth/request).
//  2. Before auth every command gets "-ERR command not found" (command/reply), as FreeSWITCH
//     answers (fs-bad-auth); exit gets "+OK bye", the disconnect notice and the close. The
//     client's auth is answered with the recorded answer to the recording client's auth, after
//     the recorded delay (scaled by Speed), whatever the password. If the recorded auth failed,
//     that answer and the recorded disconnect notice are sent and the connection is closed.
//  3. Once the client subscribes ("event plain …" or "event json …"), the recorded events are
//     played in file order, paced by t_ms and Speed, up to the recording client's exit (its
//     reply, notice and close are not played; the connection stays open). Events are sent in
//     the format the client asked for: a plain recording is re-encoded for a JSON client and
//     the other way round. A recorded "eof" before any exit closes the connection.
//     Recorded replies are never played in place (see eslPlan.stream).
//  4. Every command the client sends is answered at once, between two events, never inside
//     one: with the recorded reply of the first not yet used recorded command with the same
//     line (for bgapi: the same line, else the same application, e.g. "bgapi originate");
//     otherwise with a made-up empty success (see eslEmptyReply). exit gets "+OK bye", the
//     disconnect notice and the close.
//
// Script.DropAfter closes the connection early: the recorded auth answer and each event
// played count. Played(k) is closed once connection k has sent every frame of its script (up
// to DropAfter, or the failed auth's answer).
type ESLServer struct {
	r *replayer[*eslPlan]
}

// NewESLServer returns a server for scripts; Listen checks them and starts it.
func NewESLServer(scripts []Script, opts ServerOptions) *ESLServer {
	s := &ESLServer{r: newReplayer("ESL", scripts, opts, compileESL)}
	s.r.srv = newReplayServer(s.r.log, s.serve)
	return s
}

// Listen compiles the scripts and listens on addr ("127.0.0.1:0" in tests); connections are
// served in the background. It fails when there is no script, a script does not start with
// auth/request or has a record that is not one ESL frame, Speed is invalid, or the address
// cannot be bound.
func (s *ESLServer) Listen(addr string) error { return s.r.listen(addr) }

// Addr returns the address the server listens on ("" before Listen).
func (s *ESLServer) Addr() string { return s.r.srv.addr() }

// Close stops listening, closes every connection and waits for them to end.
func (s *ESLServer) Close() error { return s.r.srv.close() }

// Played returns a channel that is closed when connection n (0-based, in accept order) has
// sent every frame of its script. It may be called before that connection exists.
func (s *ESLServer) Played(n int) <-chan struct{} { return s.r.srv.playedChan(n) }

// Connections returns how many connections the server has accepted so far.
func (s *ESLServer) Connections() int { return s.r.srv.connections() }

func (s *ESLServer) serve(ctx context.Context, nc net.Conn, k int, played func()) {
	plan, script := s.r.script(k)
	ss := &eslSession{
		session: newSession[string](nc, s.r.log.With("conn", k), s.r.opts.Speed, script.DropAfter, played),
		plan:    plan,
		used:    make([]bool, len(plan.commands)),
	}
	ss.handle = ss.answer
	br := bufio.NewReaderSize(nc, 64<<10)
	ss.play(ctx, func() (string, error) { return readESLCommand(br) }, ss.run)
}

// eslSession is the playback of one connection. Only run's goroutine writes to nc.
type eslSession struct {
	session[string] // the client's command lines; sent counts the auth answer and events

	plan       *eslPlan
	used       []bool // plan.commands already reused
	format     string // the client's event format once subscribed ("" before)
	subscribed bool
}

// maxESLCommandLine bounds a command line or header line from a client.
const maxESLCommandLine = 1 << 20

// readESLCommand reads one client command as mod_event_socket does: a command line, then
// header lines up to an empty line (sendmsg, sendevent), then Content-Length bytes of body.
// Blank lines before the command are skipped. Only the command line is returned. A line
// longer than 1 MiB or a body longer than 1 MiB ends the stream with an error.
func readESLCommand(br *bufio.Reader) (string, error) {
	var line string
	bodyLen := 0
	for {
		var b []byte
		for {
			chunk, err := br.ReadSlice('\n')
			b = append(b, chunk...)
			if len(b) > maxESLCommandLine {
				return "", errors.New("capture: ESL command line too long")
			}
			if err == nil {
				break
			}
			if !errors.Is(err, bufio.ErrBufferFull) {
				return "", err
			}
		}
		l := strings.TrimRight(string(b), "\r\n")
		if l == "" {
			if line == "" {
				continue // blank lines between commands
			}
			break
		}
		if line == "" {
			line = l
			continue
		}
		if k, v, ok := strings.Cut(l, ":"); ok && strings.EqualFold(strings.TrimSpace(k), "Content-Length") {
			bodyLen, _ = strconv.Atoi(strings.TrimSpace(v))
		}
	}
	if bodyLen > maxESLCommandLine {
		return "", errors.New("capture: ESL command body too long")
	}
	if bodyLen > 0 {
		if _, err := io.CopyN(io.Discard, br, int64(bodyLen)); err != nil {
			return "", err
		}
	}
	return line, nil
}

func (ss *eslSession) run(ctx context.Context) {
	if ss.write(ss.plan.greeting) != nil {
		return
	}
	if err := ss.awaitAuth(ctx); err != nil {
		return
	}
	// Commands are answered until the client subscribes to events.
	for !ss.subscribed {
		req, ok := ss.next(ctx)
		if !ok || ss.answer(req) != nil {
			return
		}
	}
	p := pacer{speed: ss.speed, start: time.Now(), origin: ss.plan.origin}
	for _, f := range ss.plan.stream {
		if err := ss.serveUntil(ctx, p.at(f.tms)); err != nil {
			return
		}
		if err := ss.writeEvent(f); err != nil {
			return
		}
	}
	ss.played()
	if ss.plan.closeAtEnd {
		return
	}
	ss.serveRest(ctx)
}

// awaitAuth answers commands until the client's auth, and answers that.
func (ss *eslSession) awaitAuth(ctx context.Context) error {
	for {
		req, ok := ss.next(ctx)
		if !ok {
			return errStop
		}
		switch verb(req) {
		case "auth":
			return ss.auth(ctx)
		case "exit":
			_ = ss.write(eslReply("+OK bye"))
			_ = ss.write(eslDisconnectNotice)
			return errStop
		default:
			if err := ss.write(eslReply("-ERR command not found")); err != nil {
				return err
			}
		}
	}
}

func (ss *eslSession) auth(ctx context.Context) error {
	pl := ss.plan
	if pl.auth == nil {
		return ss.write(eslReply("+OK accepted"))
	}
	if !ss.delay(ctx, pl.authDelay) {
		return errStop
	}
	if err := ss.writeRecorded(pl.auth.raw); err != nil {
		return err
	}
	if pl.authFailed {
		for _, raw := range pl.authAfter {
			if err := ss.write(raw); err != nil {
				return err
			}
		}
		ss.played()
		return errStop // FreeSWITCH closes the connection after a failed auth
	}
	return nil
}

// answer replies to one command after auth.
func (ss *eslSession) answer(line string) error {
	switch v := verb(line); v {
	case "exit":
		_ = ss.write(eslReply("+OK bye"))
		_ = ss.write(eslDisconnectNotice)
		return errStop
	case "auth":
		return ss.write(eslReply("+OK accepted"))
	case "event":
		f := strings.Fields(line)
		format := esl.FormatPlain
		if len(f) > 1 {
			format = f[1]
		}
		if format != esl.FormatPlain && format != esl.FormatJSON {
			return ss.write(eslReply("-ERR the replay server plays plain and json events only"))
		}
		ss.format, ss.subscribed = format, true
		return ss.write(eslReply("+OK event listener enabled " + format))
	case "myevents":
		if ss.format == "" {
			ss.format = esl.FormatPlain
		}
		ss.subscribed = true
		return ss.write(eslReply("+OK Events Enabled"))
	case "api", "bgapi":
		if raw, ok := ss.recorded(line); ok {
			ss.log.Debug("replay: recorded answer", "command", commandWords(line))
			return ss.write(raw)
		}
		return ss.emptyReply(v, line)
	}
	return ss.emptyReply(verb(line), line)
}

// recorded returns the recorded reply to line (see ESLServer, rule 4) and marks it used.
func (ss *eslSession) recorded(line string) (string, bool) {
	line = strings.TrimSpace(line)
	for i, rc := range ss.plan.commands {
		if !ss.used[i] && strings.TrimSpace(rc.line) == line {
			ss.used[i] = true
			return rc.reply, true
		}
	}
	if verb(line) != "bgapi" {
		return "", false
	}
	want := commandWords(line)
	for i, rc := range ss.plan.commands {
		if !ss.used[i] && commandWords(rc.line) == want {
			ss.used[i] = true
			return rc.reply, true
		}
	}
	return "", false
}

// commandWords is "bgapi originate" for "bgapi originate {…}user/1003 …": the verb and the
// command, without arguments.
func commandWords(line string) string {
	f := strings.Fields(line)
	if len(f) > 2 {
		f = f[:2]
	}
	return strings.Join(f, " ")
}

// emptyReply makes up the answer to a command the recording has no (more) answers for.
//
//   - api: an api/response. "show … as json" answers {"row_count":0} (what FreeSWITCH prints
//     for an empty listing); anything else "+OK\n".
//   - bgapi: "+OK Job-UUID: <new uuid>" with a Job-UUID header, then, to a subscribed client,
//     a BACKGROUND_JOB event with the body "+OK\n".
//   - noevents, nixevent, filter, linger, nolinger, log, nolog, sendmsg, sendevent,
//     divert_events, resume: their "+OK" command/reply.
//   - anything else: "-ERR command not found".
func (ss *eslSession) emptyReply(v, line string) error {
	switch v {
	case "api":
		body := "+OK\n"
		f := strings.Fields(line)
		if len(f) >= 2 && f[1] == "show" && strings.HasSuffix(strings.TrimSpace(line), "as json") {
			body = `{"row_count":0}` + "\n"
		}
		return ss.write("Content-Type: api/response\nContent-Length: " + strconv.Itoa(len(body)) + "\n\n" + body)
	case "bgapi":
		id := newJobUUID()
		r := "Content-Type: command/reply\nReply-Text: +OK Job-UUID: " + id + "\nJob-UUID: " + id + "\n\n"
		if err := ss.write(r); err != nil {
			return err
		}
		if !ss.subscribed {
			return nil
		}
		f := strings.Fields(line)
		cmd, arg := "", ""
		if len(f) > 1 {
			cmd = f[1]
		}
		if len(f) > 2 {
			arg = strings.Join(f[2:], " ")
		}
		ev := esl.NewEvent("+OK\n", "Event-Name", "BACKGROUND_JOB",
			"Event-Date-Timestamp", strconv.FormatInt(time.Now().UnixMicro(), 10),
			"Job-UUID", id, "Job-Command", cmd, "Job-Command-Arg", arg)
		return ss.write(eventFrame(ev, ss.format))
	case "noevents":
		ss.subscribed = false
		return ss.write(eslReply("+OK no longer listening for events"))
	case "nixevent":
		return ss.write(eslReply("+OK events nixed"))
	case "filter":
		return ss.write(eslReply("+OK filter added"))
	case "linger":
		return ss.write(eslReply("+OK will linger"))
	case "nolinger":
		return ss.write(eslReply("+OK will not linger"))
	case "log":
		return ss.write(eslReply("+OK log level set"))
	case "nolog":
		return ss.write(eslReply("+OK no longer logging"))
	case "sendmsg", "sendevent", "divert_events", "resume":
		return ss.write(eslReply("+OK"))
	}
	return ss.write(eslReply("-ERR command not found"))
}

// writeEvent plays one recorded event in the client's format and applies DropAfter.
func (ss *eslSession) writeEvent(f eslFrame) error {
	raw := f.raw
	if ss.format != "" && ss.format != formatOf(f.frame) {
		ev, err := f.frame.Event()
		if err != nil {
			ss.log.Warn("replay: recorded event not re-encoded; sent as recorded", "err", err)
		} else {
			raw = eventFrame(ev, ss.format)
		}
	}
	if !ss.subscribed {
		ss.sent++ // not listening: the event is skipped, as FreeSWITCH would
		return nil
	}
	return ss.writeRecorded(raw)
}

func formatOf(f esl.Frame) string {
	if f.ContentType() == esl.TypeEventJSON {
		return esl.FormatJSON
	}
	return esl.FormatPlain
}

// eventFrame wraps ev in a text/event-plain or text/event-json frame, with the header order
// FreeSWITCH uses for events (Content-Length first).
func eventFrame(ev *esl.Event, format string) string {
	body, ct := ev.EncodePlain(), esl.TypeEventPlain
	if format == esl.FormatJSON {
		body, ct = ev.EncodeJSON(), esl.TypeEventJSON
	}
	return "Content-Length: " + strconv.Itoa(len(body)) + "\nContent-Type: " + ct + "\n\n" + body
}

// eslReply is a command/reply frame with Reply-Text text.
func eslReply(text string) string {
	return "Content-Type: command/reply\nReply-Text: " + text + "\n\n"
}

// newJobUUID returns a random version 4 UUID in FreeSWITCH's lower-case form.
func newJobUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
