// Package esl is a FreeSWITCH Event Socket (mod_event_socket) client in inbound mode: the
// framing of Content-Length bodies, plain and JSON events, auth, api and bgapi commands with
// Job-UUID correlation, reconnect with backoff and a resynchronisation hook after every
// connect. Protocol facts follow the recordings of a real FreeSWITCH 1.10.12 in
// shared/fixtures/freeswitch-1.10 (README "ESL framing") unless a comment names another source.
//
// The layers, bottom up:
//
//   - Header, Frame, Reader: one frame of the socket (a header block, then Content-Length bytes).
//   - Event, ParsePlain, ParseJSON: the event inside a text/event-plain or text/event-json frame.
//   - Reply, CheckCommand: what a command gets back and what may be written.
//   - Conn: one authenticated connection; commands are answered strictly in order.
//   - Client: a Conn that reconnects with backoff and resynchronises through OnConnect.
package esl

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Header is one "Name: value" line, its value decoded.
type Header struct {
	Name  string
	Value string
}

// Event is one FreeSWITCH event: its headers in the order sent and, for the few events that
// have one (BACKGROUND_JOB), a body. Values are decoded: the URL-encoding of plain events
// ("%20", "%3A") is undone, and a JSON array (a multi-value variable such as
// variable_DP_MATCH) becomes the "ARRAY::a|:b" string that plain events carry, so a plain and
// a JSON event of the same data read the same (fs-inbound-answered and
// fs-inbound-answered-json).
type Event struct {
	Headers []Header
	Body    string

	index map[string]int // Name → first index in Headers
}

// NewEvent returns an event with the given headers (name, value pairs) and body; an odd last
// name gets an empty value. It is meant for tests and for building synthetic events.
func NewEvent(body string, pairs ...string) *Event {
	e := &Event{Body: body, Headers: make([]Header, 0, (len(pairs)+1)/2)}
	for i := 0; i < len(pairs); i += 2 {
		h := Header{Name: pairs[i]}
		if i+1 < len(pairs) {
			h.Value = pairs[i+1]
		}
		e.Headers = append(e.Headers, h)
	}
	e.reindex()
	return e
}

func (e *Event) reindex() {
	e.index = make(map[string]int, len(e.Headers))
	for i, h := range e.Headers {
		if _, ok := e.index[h.Name]; !ok {
			e.index[h.Name] = i
		}
	}
}

// Lookup returns the value of the first header called name and whether there is one.
// FreeSWITCH compares header names without regard to case (esl_event_get_header); an exact
// match is tried first.
func (e *Event) Lookup(name string) (string, bool) {
	if e == nil {
		return "", false
	}
	if e.index == nil {
		e.reindex()
	}
	if i, ok := e.index[name]; ok {
		return e.Headers[i].Value, true
	}
	for _, h := range e.Headers {
		if strings.EqualFold(h.Name, name) {
			return h.Value, true
		}
	}
	return "", false
}

// Get returns the value of the header called name, or "".
func (e *Event) Get(name string) string {
	v, _ := e.Lookup(name)
	return v
}

// Name returns Event-Name ("CHANNEL_CREATE", "CUSTOM", …). When the header repeats, the last
// one is the event's own: FreeSWITCH 1.10 sends PRIVATE_COMMAND events that start with the
// "Event-Name: COMMAND" of the message that caused them and carry "Event-Name:
// PRIVATE_COMMAND" further down (fs-hold).
func (e *Event) Name() string {
	if e == nil {
		return ""
	}
	for i := len(e.Headers) - 1; i >= 0; i-- {
		if e.Headers[i].Name == "Event-Name" {
			return e.Headers[i].Value
		}
	}
	return e.Get("Event-Name")
}

// Subclass returns Event-Subclass, decoded ("callcenter::info" for mod_callcenter; the plain
// form is URL-encoded as callcenter%3A%3Ainfo, README "ESL framing").
func (e *Event) Subclass() string { return e.Get("Event-Subclass") }

// Var returns the channel variable name (the header "variable_<name>").
func (e *Event) Var(name string) string { return e.Get("variable_" + name) }

// Time returns Event-Date-Timestamp (microseconds since the epoch) as a UTC time, or the zero
// time when the header is missing or not a number.
func (e *Event) Time() time.Time {
	us, err := strconv.ParseInt(e.Get("Event-Date-Timestamp"), 10, 64)
	if err != nil || us <= 0 {
		return time.Time{}
	}
	return time.UnixMicro(us).UTC()
}

// ArrayValues splits a multi-value variable ("ARRAY::a|:b") into its values; a plain value is
// returned as one value, an empty one as none.
func ArrayValues(v string) []string {
	if v == "" {
		return nil
	}
	rest, ok := strings.CutPrefix(v, "ARRAY::")
	if !ok {
		return []string{v}
	}
	return strings.Split(rest, "|:")
}

// ErrMalformedEvent is returned (wrapped) by ParsePlain and ParseJSON for a body that is not
// an event.
var ErrMalformedEvent = errors.New("esl: malformed event")

// ParsePlain parses the body of a text/event-plain frame: "Name: value" lines with
// URL-encoded values (header names are not encoded), ended by an empty line. When the event
// has a body (BACKGROUND_JOB), its last header is "Content-Length: n", then the empty line,
// then n bytes of body. A line without ": " is ignored. It fails only when there is no header
// at all.
func ParsePlain(body string) (*Event, error) {
	e := &Event{Headers: make([]Header, 0, strings.Count(body, "\n")+1)}
	rest := body
	for rest != "" {
		var line string
		i := strings.IndexByte(rest, '\n')
		if i < 0 {
			line, rest = rest, ""
		} else {
			line, rest = rest[:i], rest[i+1:]
		}
		if line == "" {
			break
		}
		name, value, ok := strings.Cut(line, ": ")
		if !ok {
			if name, ok = strings.CutSuffix(line, ":"); !ok {
				continue
			}
		}
		if name == "" {
			continue
		}
		e.Headers = append(e.Headers, Header{Name: name, Value: URLDecode(value)})
	}
	if len(e.Headers) == 0 {
		return nil, fmt.Errorf("%w: no header", ErrMalformedEvent)
	}
	e.reindex()
	if cl, ok := e.Lookup("Content-Length"); ok {
		if n, err := strconv.Atoi(cl); err == nil && n >= 0 {
			e.Body = rest[:min(n, len(rest))]
		}
	}
	return e, nil
}

// EncodePlain returns e as the body of a text/event-plain frame, the inverse of ParsePlain:
// values URL-encoded, an empty line after the headers, and the body after a Content-Length
// header when there is one. A Content-Length header of e is replaced by the body's length.
func (e *Event) EncodePlain() string {
	var b strings.Builder
	for _, h := range e.Headers {
		if strings.EqualFold(h.Name, "Content-Length") {
			continue
		}
		b.WriteString(h.Name)
		b.WriteString(": ")
		b.WriteString(URLEncode(h.Value))
		b.WriteByte('\n')
	}
	if e.Body != "" {
		b.WriteString("Content-Length: ")
		b.WriteString(strconv.Itoa(len(e.Body)))
		b.WriteString("\n\n")
		b.WriteString(e.Body)
		return b.String()
	}
	b.WriteByte('\n')
	return b.String()
}

// EncodeJSON returns e as the body of a text/event-json frame, the inverse of ParseJSON:
// members in header order, "ARRAY::" values as arrays, the body under "_body", no trailing
// newline (as FreeSWITCH sends it).
func (e *Event) EncodeJSON() string {
	var b strings.Builder
	b.WriteByte('{')
	first := true
	member := func(name string, value []byte) {
		if !first {
			b.WriteByte(',')
		}
		first = false
		k, _ := json.Marshal(name)
		b.Write(k)
		b.WriteByte(':')
		b.Write(value)
	}
	for _, h := range e.Headers {
		if strings.EqualFold(h.Name, "Content-Length") && e.Body != "" {
			continue
		}
		var v []byte
		if strings.HasPrefix(h.Value, "ARRAY::") {
			v, _ = json.Marshal(ArrayValues(h.Value))
		} else {
			v, _ = json.Marshal(h.Value)
		}
		member(h.Name, v)
	}
	if e.Body != "" {
		v, _ := json.Marshal(e.Body)
		member("_body", v)
	}
	b.WriteByte('}')
	return b.String()
}

// URLDecode undoes FreeSWITCH's switch_url_encode the way switch_url_decode does: every
// "%XX" with two hex digits becomes that byte; everything else, '+' included, stays as it is.
func URLDecode(s string) string {
	i := strings.IndexByte(s, '%')
	if i < 0 {
		return s
	}
	b := make([]byte, 0, len(s))
	b = append(b, s[:i]...)
	for ; i < len(s); i++ {
		c := s[i]
		if c == '%' && i+2 < len(s) && isHex(s[i+1]) && isHex(s[i+2]) {
			b = append(b, unhex(s[i+1])<<4|unhex(s[i+2]))
			i += 2
			continue
		}
		b = append(b, c)
	}
	return string(b)
}

// URLEncode encodes s for a plain event value: control characters, space, non-ASCII bytes
// and the characters FreeSWITCH escapes (%, +, :, @, =, &, ?, #, {, }, [, ], |, ", <, >, \,
// ^, `, ;, $) become "%XX"; the recordings show "/", "," and "." left alone.
func URLEncode(s string) string {
	n := 0
	for i := 0; i < len(s); i++ {
		if needsEscape(s[i]) {
			n++
		}
	}
	if n == 0 {
		return s
	}
	const hexdig = "0123456789ABCDEF"
	b := make([]byte, 0, len(s)+2*n)
	for i := 0; i < len(s); i++ {
		c := s[i]
		if needsEscape(c) {
			b = append(b, '%', hexdig[c>>4], hexdig[c&15])
			continue
		}
		b = append(b, c)
	}
	return string(b)
}

func needsEscape(c byte) bool {
	if c <= ' ' || c >= 0x7f {
		return true
	}
	return strings.IndexByte("%+:@=&?#{}[]|\"<>\\^`;$'", c) >= 0
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c >= '0' && c <= '9':
		return c - '0'
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10
	}
	return c - 'A' + 10
}
