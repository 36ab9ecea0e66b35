package esl

import (
	"fmt"
	"strings"

	"github.com/callbridge/callbridge"
)

// CheckCommand validates one command line before it is written: it must not be empty and
// must not contain CR, LF or NUL (callbridge.CheckSwitchValue), since a line feed would end
// the command and let the rest be read as headers or as a second command. It returns an
// error wrapping a *callbridge.Error with code invalid.
//
// This is the protocol's own check; what a value may contain inside a command (uuids, dial
// strings, agent names) is checked by the driver that builds it.
func CheckCommand(line string) error {
	if strings.TrimSpace(line) == "" {
		return callbridge.Errorf(callbridge.EInvalid, "esl: empty command")
	}
	if err := callbridge.CheckSwitchValue("esl command", line); err != nil {
		return fmt.Errorf("esl: command refused: %w", err)
	}
	return nil
}

// Reply is the answer to one command: a command/reply frame (auth, event, bgapi, exit, …)
// or an api/response frame (api). FreeSWITCH answers commands strictly in the order they
// were sent (README "Commands and replies"), so a reply is matched to its command by
// position alone.
type Reply struct {
	Frame
	// Command is the command line this reply answers (the auth password is not kept).
	Command string
}

// Text returns what the reply says: Reply-Text of a command/reply ("+OK accepted",
// "-ERR invalid", "+OK Job-UUID: …") or the body of an api/response, which may lack a final
// newline ("Available" from callcenter_config agent get status).
func (r Reply) Text() string {
	if r.ContentType() == TypeAPIResponse {
		return r.Body
	}
	return r.Get("Reply-Text")
}

// JobUUID returns the Job-UUID of a bgapi reply, or "".
func (r Reply) JobUUID() string {
	if id := r.Get("Job-UUID"); id != "" {
		return id
	}
	if rest, ok := strings.CutPrefix(r.Get("Reply-Text"), "+OK Job-UUID: "); ok {
		return strings.TrimSpace(rest)
	}
	return ""
}

// Err returns nil when the switch accepted the command, else a *ReplyError with the switch's
// text. A reply is an error when its text starts with "-ERR" or "-USAGE" (api/response bodies
// such as "-ERR Invalid Agent Status!\n" in fs-agent-state, command/reply "-ERR invalid" and
// "-ERR command not found" in fs-bad-auth). Anything else is a success: "+OK", a listing,
// JSON, a bare value.
func (r Reply) Err() error {
	text := strings.TrimSpace(r.Text())
	if strings.HasPrefix(text, "-ERR") || strings.HasPrefix(text, "-USAGE") {
		return &ReplyError{Command: r.Command, Text: text}
	}
	return nil
}

// ReplyError is a command the switch refused. Text is its reply, e.g.
// "-ERR Invalid Agent Status!".
type ReplyError struct {
	Command string
	Text    string
}

func (e *ReplyError) Error() string {
	if e.Command == "" {
		return "esl: " + e.Text
	}
	return fmt.Sprintf("esl: %s: %s", commandName(e.Command), e.Text)
}

// Message returns the switch's text without the "-ERR " prefix.
func (e *ReplyError) Message() string {
	t := strings.TrimPrefix(e.Text, "-ERR")
	t = strings.TrimPrefix(t, "-USAGE")
	return strings.TrimSpace(t)
}

// commandName is the first two words of a command ("api uuid_hold"), for logs and errors, so
// that arguments (uuids, numbers) stay out of them.
func commandName(line string) string {
	f := strings.Fields(line)
	switch {
	case len(f) == 0:
		return ""
	case len(f) == 1 || (f[0] != "api" && f[0] != "bgapi"):
		return f[0]
	}
	return f[0] + " " + f[1]
}
