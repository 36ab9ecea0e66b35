package esl

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// Content types of the frames FreeSWITCH 1.10 sends (README "ESL framing"), plus
// text/rude-rejection, which mod_event_socket sends instead of auth/request to a client its
// ACL refuses ("Access Denied, go away.\n", then it closes the socket).
const (
	TypeAuthRequest      = "auth/request"
	TypeCommandReply     = "command/reply"
	TypeAPIResponse      = "api/response"
	TypeEventPlain       = "text/event-plain"
	TypeEventJSON        = "text/event-json"
	TypeEventXML         = "text/event-xml"
	TypeDisconnectNotice = "text/disconnect-notice"
	TypeRudeRejection    = "text/rude-rejection"
	TypeLogData          = "log/data"
)

// Limits of a Reader.
const (
	// MaxHeaderBytes bounds the header block of a frame. The largest in the recordings is a
	// command/reply of about 100 bytes; events keep their headers in the body.
	MaxHeaderBytes = 64 << 10
	// MaxBodyBytes bounds a frame's body. Events are up to about 14 KB in the recordings;
	// "show channels as json" of a busy switch is the largest body to expect.
	MaxBodyBytes = 32 << 20
)

// Errors of Reader.ReadFrame.
var (
	// ErrFrameTooLarge: a body longer than MaxBodyBytes. The body was read and dropped, so
	// the stream is still in step and the next ReadFrame reads the next frame.
	ErrFrameTooLarge = errors.New("esl: frame body larger than 32 MiB")
	// ErrMalformedFrame: a header block longer than MaxHeaderBytes or a Content-Length that
	// is not a number. The stream cannot be followed any more; the connection must close.
	ErrMalformedFrame = errors.New("esl: malformed frame")
)

// Frame is one frame of the event socket: a header block ("Name: value" lines ended by an
// empty line) and, when the headers have Content-Length: N, exactly N bytes of body. Raw is
// the exact bytes read (header block plus body), the "raw" of a capture record.
type Frame struct {
	Headers []Header
	Body    string
	Raw     string
}

// Get returns the value of the frame header called name (ASCII case-insensitive), or "".
func (f Frame) Get(name string) string {
	for _, h := range f.Headers {
		if strings.EqualFold(h.Name, name) {
			return h.Value
		}
	}
	return ""
}

// ContentType returns the Content-Type header.
func (f Frame) ContentType() string { return f.Get("Content-Type") }

// IsEvent reports whether the frame carries an event (plain, JSON or XML).
func (f Frame) IsEvent() bool {
	switch f.ContentType() {
	case TypeEventPlain, TypeEventJSON, TypeEventXML:
		return true
	}
	return false
}

// IsReply reports whether the frame answers a command: command/reply or api/response.
func (f Frame) IsReply() bool {
	switch f.ContentType() {
	case TypeCommandReply, TypeAPIResponse:
		return true
	}
	return false
}

// Event parses the event a text/event-plain or text/event-json frame carries. XML events are
// not supported (callbridge subscribes with "event plain" or "event json").
func (f Frame) Event() (*Event, error) {
	switch f.ContentType() {
	case TypeEventPlain:
		return ParsePlain(f.Body)
	case TypeEventJSON:
		return ParseJSON([]byte(f.Body))
	}
	return nil, fmt.Errorf("%w: content type %q is not a plain or JSON event", ErrMalformedEvent, f.ContentType())
}

// ParseFrame parses raw, the bytes of one whole frame, into a Frame. It fails like
// Reader.ReadFrame; trailing bytes after the body are an error.
func ParseFrame(raw string) (Frame, error) {
	r := NewReader(strings.NewReader(raw))
	f, err := r.ReadFrame()
	if err != nil {
		return Frame{}, err
	}
	if _, err := r.br.Peek(1); err == nil {
		return Frame{}, fmt.Errorf("%w: bytes after the body", ErrMalformedFrame)
	}
	return f, nil
}

// Reader splits an event socket byte stream into frames. Lines end in LF (FreeSWITCH never
// sends CRLF; a CR before the LF is tolerated and kept in Raw). Empty lines between frames are
// skipped. Header values are URL-decoded as the ESL library does (they are never encoded in
// practice). A Reader is not safe for concurrent use.
type Reader struct {
	br      *bufio.Reader
	maxBody int
	buf     []byte
}

// NewReader returns a Reader that reads from r through a 64 KiB buffer.
func NewReader(r io.Reader) *Reader {
	return &Reader{br: bufio.NewReaderSize(r, 64<<10), maxBody: MaxBodyBytes}
}

// ReadFrame returns the next frame. Errors: io.EOF at a frame boundary; io.ErrUnexpectedEOF
// when the stream ends inside a frame; ErrFrameTooLarge (recoverable, see there; the frame's
// headers are returned with it, so a dropped reply can still be told from a dropped event);
// ErrMalformedFrame (not recoverable); or the underlying read error.
func (r *Reader) ReadFrame() (Frame, error) {
	r.buf = r.buf[:0]
	var f Frame
	contentLength := -1
	lineStart := 0
	for {
		chunk, err := r.br.ReadSlice('\n')
		if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
			if errors.Is(err, io.EOF) {
				if len(r.buf) == 0 && len(chunk) == 0 {
					return Frame{}, io.EOF
				}
				return Frame{}, io.ErrUnexpectedEOF
			}
			return Frame{}, err
		}
		if len(r.buf)+len(chunk) > MaxHeaderBytes {
			return Frame{}, fmt.Errorf("%w: header block longer than %d bytes", ErrMalformedFrame, MaxHeaderBytes)
		}
		r.buf = append(r.buf, chunk...)
		if err != nil { // bufio.ErrBufferFull: the line goes on
			continue
		}
		line := strings.TrimSuffix(strings.TrimSuffix(string(r.buf[lineStart:]), "\n"), "\r")
		if line == "" {
			if lineStart == 0 {
				r.buf = r.buf[:0] // an empty line between frames
				continue
			}
			break
		}
		lineStart = len(r.buf)
		name, value, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		value = strings.TrimPrefix(value, " ")
		f.Headers = append(f.Headers, Header{Name: name, Value: URLDecode(value)})
		if strings.EqualFold(name, "Content-Length") {
			n, err := strconv.Atoi(strings.TrimSpace(value))
			if err != nil || n < 0 {
				return Frame{}, fmt.Errorf("%w: Content-Length %q", ErrMalformedFrame, value)
			}
			contentLength = n
		}
	}
	head := string(r.buf)
	if contentLength <= 0 {
		f.Raw = head
		return f, nil
	}
	if contentLength > r.maxBody {
		if _, err := io.CopyN(io.Discard, r.br, int64(contentLength)); err != nil {
			return Frame{}, io.ErrUnexpectedEOF
		}
		f.Raw = head
		return f, fmt.Errorf("%w (%d bytes)", ErrFrameTooLarge, contentLength)
	}
	body := make([]byte, contentLength)
	if _, err := io.ReadFull(r.br, body); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return Frame{}, io.ErrUnexpectedEOF
		}
		return Frame{}, err
	}
	f.Body = string(body)
	f.Raw = head + f.Body
	return f, nil
}
