package capture

import (
	"errors"
	"fmt"
	"strings"

	"github.com/callbridge/callbridge/asterisk/ami"
)

// amiPlan is one Script compiled for AMI playback.
type amiPlan struct {
	banner string
	// login is the recorded response to the recording client's Login (nil when the capture
	// has none; a success is made up then). loginDelay is how long, in recorded ms, the switch
	// took to answer it (about 1000 for a failed login, bad-login.ami.jsonl).
	login       *amiFrame
	loginID     string
	loginDelay  int64
	loginFailed bool
	// stream is every "in" frame after the login response up to the recording client's
	// Logoff (not included, nor what follows it), in file order.
	stream []amiFrame
	// closeAtEnd: the recording ends with the switch closing the connection (an "eof" before
	// any Logoff), so playback closes it too.
	closeAtEnd bool
	// actions are the recording client's actions after its login that got a response, in
	// file order; the client under test may reuse each once per connection.
	actions []amiRecordedAction
}

type amiFrame struct {
	tms int64
	raw string
	msg ami.Message
}

// amiRecordedAction is one action of the recording client and everything the switch sent
// back with its ActionID.
type amiRecordedAction struct {
	name  string
	id    string
	reply []string // the response, then the list items and the Complete event of a list
	list  bool
}

// compileAMI turns the records of one .ami.jsonl session into a plan. It fails when there is
// no "in" record or the first one is not an AMI banner.
func compileAMI(recs []Record) (*amiPlan, error) {
	p := &amiPlan{}
	bannerIdx := -1
	for i, r := range recs {
		if r.Dir == DirIn {
			bannerIdx = i
			break
		}
	}
	if bannerIdx < 0 {
		return nil, errors.New("no \"in\" record (the banner)")
	}
	p.banner = recs[bannerIdx].Raw
	if !strings.HasPrefix(p.banner, "Asterisk Call Manager") {
		return nil, fmt.Errorf("first \"in\" record %q is not an AMI banner", truncate(p.banner, 40))
	}

	// The recording client's Login and the switch's answer to it.
	start := bannerIdx + 1
	loginIdx := -1
	for i := start; i < len(recs); i++ {
		if recs[i].Dir == DirOut && strings.EqualFold(ami.ParseMessage(recs[i].Raw).Get("Action"), "Login") {
			loginIdx = i
			break
		}
	}
	if loginIdx >= 0 {
		out := ami.ParseMessage(recs[loginIdx].Raw)
		p.loginID = out.ActionID()
		start = loginIdx + 1
		if j := findResponse(recs, loginIdx+1, p.loginID); j >= 0 {
			f := frameOf(recs[j])
			p.login = &f
			p.loginDelay = recs[j].TMs - recs[loginIdx].TMs
			p.loginFailed = !strings.EqualFold(f.msg.Response(), "Success")
			start = j + 1
		}
	}
	if p.loginFailed {
		p.closeAtEnd = true
		return p, nil
	}

	// The stream, up to the recording client's Logoff or the switch's close.
	end := len(recs)
	for i := start; i < len(recs); i++ {
		r := recs[i]
		if r.Dir == DirEOF {
			end, p.closeAtEnd = i, true
			break
		}
		if r.Dir == DirOut && strings.EqualFold(ami.ParseMessage(r.Raw).Get("Action"), "Logoff") {
			end = i
			break
		}
		if r.Dir == DirIn {
			p.stream = append(p.stream, frameOf(r))
		}
	}

	// The recording client's actions between login and the end, with their replies.
	from := bannerIdx + 1
	if loginIdx >= 0 {
		from = loginIdx + 1
	}
	for i := from; i < end; i++ {
		if recs[i].Dir != DirOut {
			continue
		}
		m := ami.ParseMessage(recs[i].Raw)
		name, id := m.Get("Action"), m.ActionID()
		if name == "" || id == "" {
			continue
		}
		j := findResponse(recs, i+1, id)
		if j < 0 {
			continue
		}
		ra := amiRecordedAction{name: name, id: id, reply: []string{recs[j].Raw}}
		if resp := ami.ParseMessage(recs[j].Raw); strings.EqualFold(resp.Get("EventList"), "start") {
			ra.list = true
			for k := j + 1; k < len(recs); k++ {
				if recs[k].Dir != DirIn {
					continue
				}
				item := ami.ParseMessage(recs[k].Raw)
				if item.Event() == "" || item.ActionID() != id {
					continue
				}
				ra.reply = append(ra.reply, recs[k].Raw)
				if strings.EqualFold(item.Get("EventList"), "Complete") {
					break
				}
			}
		}
		p.actions = append(p.actions, ra)
	}
	return p, nil
}

// findResponse returns the index of the first "in" response (a message with Response and no
// Event) with ActionID id at or after from, or -1.
func findResponse(recs []Record, from int, id string) int {
	for i := from; i < len(recs); i++ {
		if recs[i].Dir != DirIn {
			continue
		}
		m := ami.ParseMessage(recs[i].Raw)
		if m.Event() == "" && m.Response() != "" && m.ActionID() == id {
			return i
		}
	}
	return -1
}

func frameOf(r Record) amiFrame {
	return amiFrame{tms: r.TMs, raw: r.Raw, msg: ami.ParseMessage(r.Raw)}
}

// setActionID returns raw with the value of its first ActionID line replaced by id, or with
// that line removed when remove is set (Asterisk leaves ActionID out when the request had
// none). Line endings are kept as they are. A frame without ActionID is returned unchanged.
func setActionID(raw, id string, remove bool) string {
	var b strings.Builder
	b.Grow(len(raw) + len(id))
	rest := raw
	done := false
	for rest != "" {
		line := rest
		if i := strings.IndexByte(rest, '\n'); i >= 0 {
			line = rest[:i+1]
		}
		rest = rest[len(line):]
		if !done {
			if k, _, ok := strings.Cut(line, ":"); ok && strings.EqualFold(k, "ActionID") {
				done = true
				if !remove {
					b.WriteString(k)
					b.WriteString(": ")
					b.WriteString(id)
					b.WriteString(lineEnding(line))
				}
				continue
			}
		}
		b.WriteString(line)
	}
	return b.String()
}

func lineEnding(line string) string {
	switch {
	case strings.HasSuffix(line, "\r\n"):
		return "\r\n"
	case strings.HasSuffix(line, "\n"):
		return "\n"
	}
	return ""
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}
