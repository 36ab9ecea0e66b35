package capture

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/callbridge/callbridge/asterisk/ami"
)

// AMIServer plays AMI recordings over TCP as an Asterisk 22 manager interface would, so the
// real client and driver code can be tested against recorded traffic.
//
// Connection k (0-based) plays scripts[min(k, len(scripts)-1)]:
//
//  1. It sends the banner (the first "in" record).
//  2. It waits for the client's Login and answers it with the recorded Login response, its
//     ActionID set to the client's, after the recorded delay (scaled by Speed). Before login
//     every other action gets "Response: Error / Message: Permission denied", as Asterisk 22
//     answers (bad-login.ami.jsonl); Logoff gets Goodbye and a close. If the recorded login
//     failed, the Error is sent and the connection closed, as recorded.
//  3. It plays the remaining "in" frames in file order, paced by t_ms and Speed, up to the
//     recording client's Logoff (its Goodbye and the close are not played; the connection
//     stays open). Recorded responses and list items for the recording client's actions are
//     played in place unchanged: a client ignores ActionIDs it never used. A recorded "eof"
//     before any Logoff (the switch closed the connection) closes the connection.
//  4. Every action the client sends is answered at once, between two frames, never inside
//     one: with the recorded answer of the first not yet used action of the same name from
//     the recording (its response, then its list items and Complete event), with the ActionID
//     set to the client's; otherwise with a made-up empty success (see amiEmptyReply). An
//     event the recording plays later with the ActionID of a reused non-list action (the
//     OriginateResponse of an Async Originate) is played with the client's ActionID too.
//     Logoff gets "Response: Goodbye" and the connection is closed.
//
// Script.DropAfter closes the connection early. Played(k) is closed once connection k has
// sent every frame of its script (up to DropAfter, or the failed login's Error).
type AMIServer struct {
	r *replayer[*amiPlan]
}

// NewAMIServer returns a server for scripts; Listen checks them and starts it.
func NewAMIServer(scripts []Script, opts ServerOptions) *AMIServer {
	s := &AMIServer{r: newReplayer("AMI", scripts, opts, compileAMI)}
	s.r.srv = newReplayServer(s.r.log, s.serve)
	return s
}

// Listen compiles the scripts and listens on addr ("127.0.0.1:0" in tests); connections are
// served in the background. It fails when there is no script, a script has no AMI banner,
// Speed is invalid, or the address cannot be bound.
func (s *AMIServer) Listen(addr string) error { return s.r.listen(addr) }

// Addr returns the address the server listens on, e.g. "127.0.0.1:40123" ("" before Listen).
func (s *AMIServer) Addr() string { return s.r.srv.addr() }

// Close stops listening, closes every connection and waits for them to end.
func (s *AMIServer) Close() error { return s.r.srv.close() }

// Played returns a channel that is closed when connection n (0-based, in accept order) has
// sent every frame of its script. It may be called before that connection exists.
func (s *AMIServer) Played(n int) <-chan struct{} { return s.r.srv.playedChan(n) }

// Connections returns how many connections the server has accepted so far.
func (s *AMIServer) Connections() int { return s.r.srv.connections() }

func (s *AMIServer) serve(ctx context.Context, nc net.Conn, k int, played func()) {
	plan, script := s.r.script(k)
	ss := &amiSession{
		session: newSession[ami.Message](nc, s.r.log.With("conn", k), s.r.opts.Speed, script.DropAfter, played),
		plan:    plan,
		used:    make([]bool, len(plan.actions)),
		rewrite: map[string]string{},
	}
	ss.handle = ss.answer
	rd := ami.NewReader(nc)
	ss.play(ctx, func() (ami.Message, error) {
		for {
			m, err := rd.ReadMessage()
			if errors.Is(err, ami.ErrFrameTooLarge) {
				ss.log.Warn("replay: client frame too large, dropped")
				continue
			}
			return m, err
		}
	}, ss.run)
}

// amiSession is the playback of one connection. Only run's goroutine writes to nc.
type amiSession struct {
	session[ami.Message] // sent counts the recorded frames after the banner

	plan    *amiPlan
	used    []bool            // plan.actions already reused
	rewrite map[string]string // recorded ActionID → the client's, for later async events
}

func (ss *amiSession) run(ctx context.Context) {
	if ss.write(ss.plan.banner) != nil {
		return
	}
	if err := ss.awaitLogin(ctx); err != nil {
		return
	}
	p := pacer{speed: ss.speed, start: time.Now()}
	if ss.plan.login != nil {
		p.origin = ss.plan.login.tms
	} else if len(ss.plan.stream) > 0 {
		p.origin = ss.plan.stream[0].tms
	}
	for _, f := range ss.plan.stream {
		if err := ss.serveUntil(ctx, p.at(f.tms)); err != nil {
			return
		}
		raw := f.raw
		if id := f.msg.ActionID(); id != "" && f.msg.Event() != "" {
			if client, ok := ss.rewrite[id]; ok {
				raw = setActionID(raw, client, false)
			}
		}
		if err := ss.writeRecorded(raw); err != nil {
			return
		}
	}
	ss.played()
	if ss.plan.closeAtEnd {
		return
	}
	ss.serveRest(ctx)
}

// awaitLogin answers actions until the client's Login, and answers that.
func (ss *amiSession) awaitLogin(ctx context.Context) error {
	for {
		req, ok := ss.next(ctx)
		if !ok {
			return errStop
		}
		id, hasID := req.Lookup("ActionID")
		switch name := req.Get("Action"); {
		case strings.EqualFold(name, "Login"):
			return ss.login(ctx, id, hasID)
		case strings.EqualFold(name, "Logoff"):
			_ = ss.write(amiGoodbye(id, hasID))
			return errStop
		case name == "":
			if err := ss.write(amiError(id, hasID, "Missing action in request")); err != nil {
				return err
			}
		default:
			if err := ss.write(amiError(id, hasID, "Permission denied")); err != nil {
				return err
			}
		}
	}
}

func (ss *amiSession) login(ctx context.Context, id string, hasID bool) error {
	pl := ss.plan
	if pl.login == nil {
		return ss.write(amiReply(id, hasID, "Message: Authentication accepted\r\n"))
	}
	if !ss.delay(ctx, pl.loginDelay) {
		return errStop
	}
	if err := ss.writeRecorded(setActionID(pl.login.raw, id, !hasID)); err != nil {
		return err
	}
	if pl.loginFailed {
		ss.played()
		return errStop // Asterisk closes the connection after a failed login
	}
	return nil
}

// answer replies to one action after login.
func (ss *amiSession) answer(req ami.Message) error {
	id, hasID := req.Lookup("ActionID")
	name := req.Get("Action")
	switch {
	case name == "":
		return ss.write(amiError(id, hasID, "Missing action in request"))
	case strings.EqualFold(name, "Logoff"):
		_ = ss.write(amiGoodbye(id, hasID))
		return errStop
	case strings.EqualFold(name, "Login"):
		return ss.write(amiReply(id, hasID, "Message: Authentication accepted\r\n"))
	}
	for i, ra := range ss.plan.actions {
		if ss.used[i] || !strings.EqualFold(ra.name, name) {
			continue
		}
		ss.used[i] = true
		if !ra.list && hasID {
			ss.rewrite[ra.id] = id
		}
		for _, raw := range ra.reply {
			if err := ss.write(setActionID(raw, id, !hasID)); err != nil {
				return err
			}
		}
		ss.log.Debug("replay: recorded answer", "action", name, "recorded_id", ra.id, "frames", len(ra.reply))
		return nil
	}
	for _, raw := range amiEmptyReply(name, id, hasID, time.Now()) {
		if err := ss.write(raw); err != nil {
			return err
		}
	}
	return nil
}

// amiListAction is how Asterisk 22 acknowledges an event-list action and names the event that
// ends it (astman_send_listack and astman_send_list_complete_start in manager.c and the
// modules). The first five are in resync.ami.jsonl and agent-state.ami.jsonl.
type amiListAction struct {
	message  string // the Message of the "EventList: start" response
	complete string // the Event that ends the list
	extra    string // extra fields of the Complete event
}

var amiListActions = map[string]amiListAction{
	"coreshowchannels":   {"Channels will follow", "CoreShowChannelsComplete", ""},
	"queuestatus":        {"Queue status will follow", "QueueStatusComplete", ""},
	"queuesummary":       {"Queue summary will follow", "QueueSummaryComplete", ""},
	"bridgelist":         {"Bridge listing will follow", "BridgeListComplete", ""},
	"status":             {"Channel status will follow", "StatusComplete", "Items: 0\r\n"},
	"devicestatelist":    {"Device State Changes will follow", "DeviceStateListComplete", ""},
	"pjsipshowendpoints": {"Following are Events for each Endpoint", "EndpointListComplete", ""},
	// QueueRule is not a list: app_queue.c answers it with one "Response: Success" frame of
	// RuleList/Rule fields, so the plain empty success is already right.
}

// amiEmptyReply makes up the answer to an action the recording has no (more) answers for:
// "Response: Success" (Ping adds "Ping: Pong" and a Timestamp, as manager.c action_ping); a
// list action gets "EventList: start" and an empty Complete event with "ListItems: 0".
func amiEmptyReply(name, id string, hasID bool, now time.Time) []string {
	if strings.EqualFold(name, "Ping") {
		ts := strconv.FormatInt(now.Unix(), 10) + "." + fmt.Sprintf("%06d", now.Nanosecond()/1000)
		return []string{amiReply(id, hasID, "Ping: Pong\r\nTimestamp: "+ts+"\r\n")}
	}
	la, ok := amiListActions[strings.ToLower(name)]
	if !ok {
		return []string{amiReply(id, hasID, "")}
	}
	complete := "Event: " + la.complete + "\r\n" + actionIDLine(id, hasID) +
		"EventList: Complete\r\nListItems: 0\r\n" + la.extra + "\r\n"
	return []string{amiReply(id, hasID, "EventList: start\r\nMessage: "+la.message+"\r\n"), complete}
}

func actionIDLine(id string, hasID bool) string {
	if !hasID {
		return ""
	}
	return "ActionID: " + id + "\r\n"
}

// amiReply is "Response: Success", the ActionID, then fields (CRLF-terminated lines).
func amiReply(id string, hasID bool, fields string) string {
	return "Response: Success\r\n" + actionIDLine(id, hasID) + fields + "\r\n"
}

func amiError(id string, hasID bool, msg string) string {
	return "Response: Error\r\n" + actionIDLine(id, hasID) + "Message: " + msg + "\r\n\r\n"
}

// amiGoodbye is Asterisk's answer to Logoff (every recording ends with it).
func amiGoodbye(id string, hasID bool) string {
	return "Response: Goodbye\r\n" + actionIDLine(id, hasID) + "Message: Thanks for all the fish.\r\n\r\n"
}
