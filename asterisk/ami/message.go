// Package ami is an Asterisk Manager Interface client: CRLF framing, actions with ActionID
// correlation, event lists, keep-alive and reconnect. Protocol facts follow the recordings in
// shared/fixtures/asterisk-22 (Asterisk 22, banner "Asterisk Call Manager/11.0.0") unless a
// comment names another source.
//
// The layers, bottom up:
//
//   - Message, Field, ParseMessage: one frame as ordered "Key: Value" fields.
//   - Reader: splits a byte stream into frames (banner line, then messages ending in a blank line).
//   - Action, Response: what a client sends and what it gets back.
//   - Conn: one logged-in TCP connection with ActionID correlation, events and keep-alive.
//   - Client: a Conn that reconnects with backoff and resynchronises through OnConnect.
package ami

import (
	"strings"
)

// Field is one "Key: Value" line of an AMI message. Value has the single space after the colon
// removed; any further spaces are part of the value.
type Field struct {
	Key   string
	Value string
}

// Message is one AMI message (response, event or list item) with its fields in wire order.
// Keys may repeat (ChanVariable, Output, Variable). Key comparison is ASCII case-insensitive,
// as in Asterisk's astman_get_header.
type Message struct {
	Fields []Field
}

// Get returns the value of the first field named key (ASCII case-insensitive), or "".
func (m Message) Get(key string) string {
	v, _ := m.Lookup(key)
	return v
}

// Lookup returns the value of the first field named key and whether it exists.
func (m Message) Lookup(key string) (string, bool) {
	for _, f := range m.Fields {
		if strings.EqualFold(f.Key, key) {
			return f.Value, true
		}
	}
	return "", false
}

// Values returns the values of every field named key, in order (nil when there is none).
func (m Message) Values(key string) []string {
	var out []string
	for _, f := range m.Fields {
		if strings.EqualFold(f.Key, key) {
			out = append(out, f.Value)
		}
	}
	return out
}

// Event returns the event name ("Newchannel"), or "" for a response.
// List items are events too (QueueMember, CoreShowChannel …); they carry the ActionID of the
// request. OriginateResponse is an event that carries both Event and Response fields.
func (m Message) Event() string { return m.Get("Event") }

// Response returns the response status ("Success", "Error", "Goodbye", legacy "Follows"), or ""
// for a message without a Response field.
func (m Message) Response() string { return m.Get("Response") }

// ActionID returns the ActionID field, or "".
func (m Message) ActionID() string { return m.Get("ActionID") }

// ChanVariables returns the channel variables of the section with prefix ("" for the first
// channel, "Dest" for DestChanVariable, …) as a map: "ChanVariable: NAME=value" lines.
// The OriginateResponse form "ChanVariable(PJSIP/1003-0000000d): NAME=value" is accepted too.
// A variable that is not set yet is present with an empty value (Asterisk sends "CTI_TENANT=").
func (m Message) ChanVariables(prefix string) map[string]string {
	out := map[string]string{}
	want := prefix + "ChanVariable"
	for _, f := range m.Fields {
		k := f.Key
		if len(k) < len(want) || !strings.EqualFold(k[:len(want)], want) {
			continue
		}
		if rest := k[len(want):]; rest != "" && !(strings.HasPrefix(rest, "(") && strings.HasSuffix(rest, ")")) {
			continue
		}
		name, val, ok := strings.Cut(f.Value, "=")
		if !ok {
			continue
		}
		out[name] = val
	}
	return out
}

// String returns the message in wire form: "Key: Value\r\n" lines and a blank line. A field
// with an empty key (a line that had no colon) is written as its bare value.
func (m Message) String() string {
	var b strings.Builder
	for _, f := range m.Fields {
		if f.Key != "" || f.Value == "" || strings.Contains(f.Value, ":") {
			b.WriteString(f.Key)
			b.WriteString(": ")
		}
		b.WriteString(f.Value)
		b.WriteString("\r\n")
	}
	b.WriteString("\r\n")
	return b.String()
}

// endCommand ends the output of the legacy "Response: Follows" form of the Command action
// (Asterisk ≤ 13; Asterisk 22 sends "Output:" fields instead, see resync.ami.jsonl).
const endCommand = "--END COMMAND--"

// ParseMessage parses one frame: "Key: Value" lines separated by CRLF (a bare LF is
// accepted), up to an optional blank line. The key is everything before the first colon and
// one space after the colon is dropped. A line without a colon is kept whole as a field with
// an empty key. Empty lines are skipped. Keys and values are substrings of frame (no copy).
//
// The legacy Command form ("Response: Follows", then raw output lines, then "--END COMMAND--")
// is returned as its header fields (Response, Privilege, ActionID, Message) followed by one
// "Output" field per output line, the shape Asterisk 22 uses, so Values("Output") works for
// both.
//
// It never fails; the framing Reader decides where frames end.
func ParseMessage(frame string) Message {
	if isFollows(frame) {
		return parseFollows(frame)
	}
	m := Message{Fields: make([]Field, 0, strings.Count(frame, "\n")+1)}
	for len(frame) > 0 {
		var line string
		line, frame = nextLine(frame)
		if line == "" {
			continue
		}
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			m.Fields = append(m.Fields, Field{Value: line})
			continue
		}
		if len(v) > 0 && v[0] == ' ' {
			v = v[1:]
		}
		m.Fields = append(m.Fields, Field{Key: k, Value: v})
	}
	return m
}

// nextLine returns the first line of s without its line ending (LF or CRLF) and the rest.
func nextLine(s string) (line, rest string) {
	i := strings.IndexByte(s, '\n')
	if i < 0 {
		line, rest = s, ""
	} else {
		line, rest = s[:i], s[i+1:]
	}
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	return line, rest
}

// isFollows reports whether frame starts with "Response: Follows" (case-insensitive).
func isFollows(frame string) bool {
	const p = "response: follows"
	frame = strings.TrimLeft(frame, "\r\n")
	if len(frame) < len(p) || !strings.EqualFold(frame[:len(p)], p) {
		return false
	}
	rest := frame[len(p):]
	return rest == "" || rest[0] == '\r' || rest[0] == '\n'
}

// parseFollows parses the legacy Command response (Asterisk 1.8 … 13, manager.c action_command):
// "Response: Follows\r\nPrivilege: Command\r\nActionID: x\r\n<output>--END COMMAND--\r\n\r\n".
// The output lines may end in a bare LF and may be empty.
func parseFollows(frame string) Message {
	if !strings.Contains(frame, endCommand) {
		frame = strings.TrimRight(frame, "\r\n") // malformed: no end marker; drop the final empty line
	}
	m := Message{Fields: make([]Field, 0, strings.Count(frame, "\n")+1)}
	header := true
	for len(frame) > 0 {
		var line string
		line, frame = nextLine(frame)
		if header {
			if line == "" && len(m.Fields) == 0 {
				continue
			}
			if k, v, ok := strings.Cut(line, ":"); ok && isFollowsHeader(k) {
				m.Fields = append(m.Fields, Field{Key: k, Value: strings.TrimPrefix(v, " ")})
				continue
			}
			header = false
		}
		if before, _, found := strings.Cut(line, endCommand); found {
			if before != "" {
				m.Fields = append(m.Fields, Field{Key: "Output", Value: before})
			}
			break
		}
		m.Fields = append(m.Fields, Field{Key: "Output", Value: line})
	}
	return m
}

func isFollowsHeader(k string) bool {
	for _, h := range [...]string{"Response", "Privilege", "ActionID", "Message"} {
		if strings.EqualFold(k, h) {
			return true
		}
	}
	return false
}
