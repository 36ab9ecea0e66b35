package ami

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
)

// MaxFrameSize is the largest frame, in bytes including line endings, that a Reader accepts.
// The largest frame in the Asterisk 22 recordings is about 3.6 KB (a Cdr or AttendedTransfer
// event); Command output of a busy switch is the only frame that grows much larger.
const MaxFrameSize = 1 << 20

// ErrFrameTooLarge is returned by Reader.ReadFrame for a frame longer than MaxFrameSize. The
// rest of that frame has been read and dropped, so the next ReadFrame starts at the next frame.
var ErrFrameTooLarge = errors.New("ami: frame larger than 1 MiB")

// bannerPrefix starts the greeting line of every Asterisk manager session
// ("Asterisk Call Manager/11.0.0\r\n" on Asterisk 22, manager.c).
const bannerPrefix = "Asterisk Call Manager"

// Reader splits an AMI byte stream into frames. The stream is a banner line, then messages,
// each a run of "Key: Value" lines ended by an empty line. Lines end in CRLF; a bare LF is
// accepted. Empty lines between messages are skipped (QueueRule, for one, ends its response
// with an extra CRLF, app_queue.c manager_queue_rule_show).
//
// A Reader is not safe for concurrent use.
type Reader struct {
	br  *bufio.Reader
	buf []byte
	max int
}

// NewReader returns a Reader that reads from r through a 64 KiB buffer.
func NewReader(r io.Reader) *Reader {
	return &Reader{br: bufio.NewReaderSize(r, 64<<10), max: MaxFrameSize}
}

// ReadBanner reads the first line of a session and returns it raw, line ending included
// ("Asterisk Call Manager/11.0.0\r\n"; use strings.TrimSpace for the version string).
// A line that does not start with "Asterisk Call Manager" is an error, as is a line longer
// than 1 KiB.
func (r *Reader) ReadBanner() (string, error) {
	var line []byte
	for {
		chunk, err := r.br.ReadSlice('\n')
		line = append(line, chunk...)
		if len(line) > 1024 {
			return "", fmt.Errorf("ami: banner line longer than 1 KiB")
		}
		if err == nil {
			break
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if errors.Is(err, io.EOF) {
			if len(line) == 0 {
				return "", io.EOF
			}
			return "", fmt.Errorf("ami: banner %q: %w", line, io.ErrUnexpectedEOF)
		}
		return "", err
	}
	if !bytes.HasPrefix(line, []byte(bannerPrefix)) {
		return "", fmt.Errorf("ami: unexpected banner %q (want %q…)", truncate(string(line), 64), bannerPrefix)
	}
	return string(line), nil
}

// ReadFrame returns the next complete message raw, up to and including its terminating empty
// line ("…\r\n\r\n"). The legacy "Response: Follows" form of the Command action ends only
// at the empty line after "--END COMMAND--", since its output may contain empty lines.
//
// Errors: io.EOF at a frame boundary; io.ErrUnexpectedEOF when the stream ends inside a frame;
// ErrFrameTooLarge (recoverable: the frame was read to its end and dropped, so the next call
// reads the next frame); or the underlying read error.
func (r *Reader) ReadFrame() (raw string, err error) {
	r.buf = r.buf[:0]
	var (
		size            int  // bytes of this frame so far, dropped ones included
		follows, sawEnd bool // legacy Command output; its "--END COMMAND--" line was seen
		tooLarge        bool // over r.max: read on to the end of the frame, keep nothing
		inLine          bool // the previous chunk ended without LF (a line over 64 KiB)
	)
	for {
		chunk, err := r.br.ReadSlice('\n')
		if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
			if errors.Is(err, io.EOF) {
				if size == 0 && len(chunk) == 0 {
					return "", io.EOF
				}
				return "", io.ErrUnexpectedEOF
			}
			return "", err
		}
		complete := err == nil
		blank := !inLine && complete && isBlankLine(chunk)
		inLine = !complete
		if blank && size == 0 {
			continue // empty line between frames
		}
		if size == 0 {
			follows = isFollowsLine(chunk)
		}
		size += len(chunk)
		if size > r.max && !tooLarge {
			tooLarge = true
			r.buf = r.buf[:0]
		}
		if !tooLarge {
			r.buf = append(r.buf, chunk...)
		}
		if follows && bytes.Contains(chunk, []byte(endCommand)) {
			sawEnd = true
		}
		if blank && (!follows || sawEnd) {
			if tooLarge {
				return "", ErrFrameTooLarge
			}
			return string(r.buf), nil
		}
	}
}

// ReadMessage reads the next frame and parses it with ParseMessage. Errors are those of
// ReadFrame.
func (r *Reader) ReadMessage() (Message, error) {
	raw, err := r.ReadFrame()
	if err != nil {
		return Message{}, err
	}
	return ParseMessage(raw), nil
}

// isFollowsLine reports whether line is "Response: Follows" (any case, CRLF or LF).
func isFollowsLine(line []byte) bool {
	const p = "response: follows"
	if len(line) < len(p) || !bytes.EqualFold(line[:len(p)], []byte(p)) {
		return false
	}
	rest := line[len(p):]
	return len(rest) == 0 || rest[0] == '\r' || rest[0] == '\n'
}

func isBlankLine(line []byte) bool {
	return len(line) == 1 && line[0] == '\n' || len(line) == 2 && line[0] == '\r' && line[1] == '\n'
}

func truncate(s string, n int) string {
	s = strings.TrimRight(s, "\r\n")
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}
