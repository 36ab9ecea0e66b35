package esl

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// ParseJSON parses the body of a text/event-json frame: one JSON object whose members are the
// headers, in order. String values are taken as they are; an array becomes "ARRAY::a|:b"
// (README: multi-value variables are JSON arrays of strings); the member "_body" is the
// event's body; numbers, booleans and nested objects are kept as their JSON text and null
// becomes "". The scanner is hand-written because FreeSWITCH events are flat objects of up to
// about 330 string members, and encoding/json's token API costs allocations per member.
func ParseJSON(body []byte) (*Event, error) {
	sc := jsonScanner{b: body}
	sc.ws()
	if !sc.eat('{') {
		return nil, fmt.Errorf("%w: not a JSON object", ErrMalformedEvent)
	}
	e := &Event{Headers: make([]Header, 0, 64)}
	sc.ws()
	if !sc.eat('}') {
		for {
			sc.ws()
			name, ok := sc.str()
			if !ok {
				return nil, fmt.Errorf("%w: bad member name at byte %d", ErrMalformedEvent, sc.i)
			}
			sc.ws()
			if !sc.eat(':') {
				return nil, fmt.Errorf("%w: no ':' at byte %d", ErrMalformedEvent, sc.i)
			}
			sc.ws()
			value, ok := sc.value(0)
			if !ok {
				return nil, fmt.Errorf("%w: bad value of %q at byte %d", ErrMalformedEvent, name, sc.i)
			}
			if name == "_body" {
				e.Body = value
			} else {
				e.Headers = append(e.Headers, Header{Name: name, Value: value})
			}
			sc.ws()
			if sc.eat(',') {
				continue
			}
			if sc.eat('}') {
				break
			}
			return nil, fmt.Errorf("%w: no ',' or '}' at byte %d", ErrMalformedEvent, sc.i)
		}
	}
	sc.ws()
	if sc.i != len(sc.b) {
		return nil, fmt.Errorf("%w: bytes after the object", ErrMalformedEvent)
	}
	if len(e.Headers) == 0 {
		return nil, fmt.Errorf("%w: no header", ErrMalformedEvent)
	}
	e.reindex()
	return e, nil
}

// jsonScanner reads the flat JSON objects of FreeSWITCH events.
type jsonScanner struct {
	b []byte
	i int
}

func (s *jsonScanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

func (s *jsonScanner) eat(c byte) bool {
	if s.i < len(s.b) && s.b[s.i] == c {
		s.i++
		return true
	}
	return false
}

// str reads a JSON string. A string without escapes is copied once; one with escapes goes
// through encoding/json, which also checks them.
func (s *jsonScanner) str() (string, bool) {
	if !s.eat('"') {
		return "", false
	}
	start, escaped := s.i, false
	for s.i < len(s.b) {
		switch c := s.b[s.i]; {
		case c == '\\':
			escaped = true
			s.i += 2
			continue
		case c == '"':
			raw := s.b[start:s.i]
			s.i++
			if !escaped {
				return string(raw), true
			}
			var out string
			if json.Unmarshal(s.b[start-1:s.i], &out) != nil {
				return "", false
			}
			return out, true
		case c < 0x20:
			return "", false
		}
		s.i++
	}
	return "", false
}

// maxJSONDepth bounds nesting, so a hostile body cannot exhaust the stack.
const maxJSONDepth = 32

// value reads any JSON value and returns the string a plain event would carry.
func (s *jsonScanner) value(depth int) (string, bool) {
	if s.i >= len(s.b) || depth > maxJSONDepth {
		return "", false
	}
	switch s.b[s.i] {
	case '"':
		return s.str()
	case '[':
		s.i++
		var vals []string
		s.ws()
		if s.eat(']') {
			return "ARRAY::", true
		}
		for {
			s.ws()
			v, ok := s.value(depth + 1)
			if !ok {
				return "", false
			}
			vals = append(vals, v)
			s.ws()
			if s.eat(',') {
				continue
			}
			if s.eat(']') {
				return "ARRAY::" + strings.Join(vals, "|:"), true
			}
			return "", false
		}
	case '{':
		start := s.i
		s.i++
		s.ws()
		if s.eat('}') {
			return string(s.b[start:s.i]), true
		}
		for {
			s.ws()
			if _, ok := s.str(); !ok {
				return "", false
			}
			s.ws()
			if !s.eat(':') {
				return "", false
			}
			s.ws()
			if _, ok := s.value(depth + 1); !ok {
				return "", false
			}
			s.ws()
			if s.eat(',') {
				continue
			}
			if s.eat('}') {
				return string(s.b[start:s.i]), true
			}
			return "", false
		}
	}
	start := s.i
	for s.i < len(s.b) && strings.IndexByte(",}] \t\n\r", s.b[s.i]) < 0 {
		s.i++
	}
	switch lit := string(s.b[start:s.i]); lit {
	case "null":
		return "", true
	case "true", "false":
		return lit, true
	default:
		if _, err := strconv.ParseFloat(lit, 64); err != nil {
			return "", false
		}
		return lit, true
	}
}
