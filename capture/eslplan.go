package capture

import (
	"errors"
	"fmt"
	"strings"

	"github.com/callbridge/callbridge/freeswitch/esl"
)

// eslPlan is one Script compiled for ESL playback.
type eslPlan struct {
	greeting string // the auth/request frame
	// auth is the recorded answer to the recording client's auth command (nil when the
	// capture has none; "+OK accepted" is made up then), authDelay the recorded ms it took,
	// and authFailed whether it was "-ERR invalid". authAfter are the frames that followed
	// the answer at once (the text/disconnect-notice of a failed auth, fs-bad-auth).
	auth       *eslFrame
	authDelay  int64
	authFailed bool
	authAfter  []string
	// format is the recording client's event format ("plain" or "json"), origin the t_ms of
	// the answer to its event subscription (where pacing starts).
	format string
	origin int64
	// stream is every event frame received after the subscription, up to the recording
	// client's exit (not included), in file order. Replies are never played in place: an
	// event socket matches replies to commands by order alone, so a recorded reply would be
	// taken as the answer to the client's own next command.
	stream []eslFrame
	// closeAtEnd: the recording ends with the switch closing the connection before any exit
	// (an "eof" record), so playback closes it too.
	closeAtEnd bool
	// commands are the recording client's commands after auth (auth, event and exit left
	// out) with the reply each got, in file order; the client under test may reuse each once
	// per connection.
	commands []eslRecordedCommand
}

type eslFrame struct {
	tms   int64
	raw   string
	frame esl.Frame
}

// eslRecordedCommand is one command of the recording client and the reply it got.
type eslRecordedCommand struct {
	line  string // without the final "\n\n"
	reply string // raw reply frame
}

// compileESL turns the records of one .esl.jsonl session into a plan. Replies are paired with
// commands in order, as FreeSWITCH sends them (README "Commands and replies"). It fails when
// there is no "in" record, the first one is not auth/request, or an "in" record is not one
// whole frame.
func compileESL(recs []Record) (*eslPlan, error) {
	p := &eslPlan{format: esl.FormatPlain, origin: -1}
	first := -1
	for i, r := range recs {
		if r.Dir == DirIn {
			first = i
			break
		}
	}
	if first < 0 {
		return nil, errors.New(`no "in" record (auth/request)`)
	}
	g, err := esl.ParseFrame(recs[first].Raw)
	if err != nil || g.ContentType() != esl.TypeAuthRequest {
		return nil, fmt.Errorf("first \"in\" record %q is not an ESL auth/request", truncate(recs[first].Raw, 40))
	}
	p.greeting = recs[first].Raw

	type out struct {
		line string
		tms  int64
	}
	var fifo []out
	authed, subscribed, ended := false, false, false
	lastReplyTo := ""
	for _, r := range recs[first+1:] {
		switch r.Dir {
		case DirOut:
			line := strings.TrimRight(r.Raw, "\n")
			if i := strings.IndexByte(line, '\n'); i >= 0 {
				line = line[:i] // sendmsg and friends: the command line only
			}
			fifo = append(fifo, out{line: line, tms: r.TMs})
			if verb(line) == "exit" && authed {
				ended = true
			}
		case DirEOF:
			if !ended {
				p.closeAtEnd = true
			}
			ended = true
		case DirIn:
			f, err := esl.ParseFrame(r.Raw)
			if err != nil {
				return nil, fmt.Errorf("t_ms %d: %w", r.TMs, err)
			}
			switch {
			case f.IsReply():
				if len(fifo) == 0 {
					continue
				}
				cmd := fifo[0]
				fifo = fifo[1:]
				lastReplyTo = verb(cmd.line)
				switch lastReplyTo {
				case "auth":
					if authed {
						continue
					}
					fr := eslFrame{tms: r.TMs, raw: r.Raw, frame: f}
					p.auth = &fr
					p.authDelay = r.TMs - cmd.tms
					p.authFailed = (esl.Reply{Frame: f}).Err() != nil
					authed = !p.authFailed
					if p.authFailed {
						p.closeAtEnd = true
					}
				case "event":
					if !subscribed {
						subscribed = true
						p.origin = r.TMs
						if fs := strings.Fields(cmd.line); len(fs) > 1 {
							p.format = fs[1]
						}
					}
				case "exit":
				default:
					if authed && !ended {
						p.commands = append(p.commands, eslRecordedCommand{line: cmd.line, reply: r.Raw})
					}
				}
			case f.ContentType() == esl.TypeDisconnectNotice:
				if p.authFailed && lastReplyTo == "auth" && len(p.stream) == 0 {
					p.authAfter = append(p.authAfter, r.Raw)
				}
			case f.IsEvent():
				if !ended && !p.authFailed {
					p.stream = append(p.stream, eslFrame{tms: r.TMs, raw: r.Raw, frame: f})
					if p.origin < 0 {
						p.origin = r.TMs
					}
				}
			}
		}
	}
	if p.origin < 0 {
		p.origin = 0
	}
	return p, nil
}

// verb returns the first word of a command line ("api", "bgapi", "event", "exit" …).
func verb(line string) string {
	v, _, _ := strings.Cut(strings.TrimSpace(line), " ")
	return v
}
