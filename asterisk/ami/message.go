// Package ami is an Asterisk Manager Interface client: CRLF framing, actions with ActionID
// correlation, event lists, keep-alive and reconnect. Protocol facts follow the recordings in
// shared/fixtures/asterisk-22 (Asterisk 22, banner "Asterisk Call Manager/11.0.0").
package ami

import (
	"strings"
)

// Field is one "Key: Value" line of an AMI message.
type Field struct {
	Key   string
	Value string
}

// Message is one AMI message (response, event or list item) with its fields in wire order.
// Keys may repeat (ChanVariable, Output, Variable).
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

// Values returns the values of every field named key, in order.
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
func (m Message) Event() string { return m.Get("Event") }

// Response returns the response status ("Success", "Error", "Goodbye"), or "" for an event.
func (m Message) Response() string { return m.Get("Response") }

// ChanVariables returns the channel variables of the section with prefix ("" for the first
// channel, "Dest" for DestChanVariable, …) as a map: "ChanVariable: NAME=value" lines.
// The OriginateResponse form "ChanVariable(PJSIP/1003-0000000d): NAME=value" is accepted too.
func (m Message) ChanVariables(prefix string) map[string]string {
	out := map[string]string{}
	want := strings.ToLower(prefix + "ChanVariable")
	for _, f := range m.Fields {
		k := strings.ToLower(f.Key)
		if k != want && !(strings.HasPrefix(k, want+"(") && strings.HasSuffix(k, ")")) {
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

// ParseMessage parses one frame: "Key: Value" lines separated by CRLF (a bare LF is
// accepted), up to an optional blank line. A line without ": " is kept whole as a field with
// an empty key. It never fails; the framing reader decides where frames end.
func ParseMessage(frame string) Message {
	frame = strings.TrimRight(frame, "\r\n")
	var m Message
	for len(frame) > 0 {
		line, rest, _ := strings.Cut(frame, "\n")
		frame = rest
		line = strings.TrimSuffix(line, "\r")
		if line == "" {
			continue
		}
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			m.Fields = append(m.Fields, Field{Value: line})
			continue
		}
		m.Fields = append(m.Fields, Field{Key: k, Value: strings.TrimPrefix(v, " ")})
	}
	return m
}
