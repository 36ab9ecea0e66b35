package ami

import (
	"fmt"
	"strings"

	"github.com/callbridge/callbridge"
)

// Action is an AMI request: "Action: Name", then the ActionID the Conn assigns, then Fields in
// order. Keys may repeat (Originate takes one "Variable: NAME=value" per variable).
type Action struct {
	Name   string
	Fields []Field
}

// Encode returns the wire form of a:
//
//	"Action: Name\r\nActionID: id\r\nKey: Value\r\n…\r\n"
//
// followed by the empty line "\r\n". An empty actionID leaves the ActionID line out.
//
// Everything is checked before anything is built, so a refused action never reaches the
// switch. The error wraps a *callbridge.Error with code invalid (callbridge.ErrorCode) when
// the name, the ActionID, a key or a value contains CR, LF or NUL (callbridge.CheckSwitchValue:
// such a value would end its line and inject fields or a whole action), when the name or a
// key is empty or contains ':', or when a key is "Action" or "ActionID" (those are set here).
func (a Action) Encode(actionID string) ([]byte, error) {
	if err := a.check(actionID); err != nil {
		return nil, fmt.Errorf("ami: action %q: %w", a.Name, err)
	}
	n := len("Action: \r\n") + len(a.Name) + 2
	if actionID != "" {
		n += len("ActionID: \r\n") + len(actionID)
	}
	for _, f := range a.Fields {
		n += len(f.Key) + len(f.Value) + 4
	}
	b := make([]byte, 0, n)
	b = append(b, "Action: "...)
	b = append(b, a.Name...)
	b = append(b, "\r\n"...)
	if actionID != "" {
		b = append(b, "ActionID: "...)
		b = append(b, actionID...)
		b = append(b, "\r\n"...)
	}
	for _, f := range a.Fields {
		b = append(b, f.Key...)
		b = append(b, ": "...)
		b = append(b, f.Value...)
		b = append(b, "\r\n"...)
	}
	b = append(b, "\r\n"...)
	return b, nil
}

func (a Action) check(actionID string) error {
	if err := checkKey("action name", a.Name); err != nil {
		return err
	}
	if err := callbridge.CheckSwitchValue("ActionID", actionID); err != nil {
		return err
	}
	for _, f := range a.Fields {
		if err := checkKey("field name", f.Key); err != nil {
			return err
		}
		if strings.EqualFold(f.Key, "Action") || strings.EqualFold(f.Key, "ActionID") {
			return callbridge.Errorf(callbridge.EInvalid, "field %s is set by the client, not by the action", f.Key)
		}
		if err := callbridge.CheckSwitchValue("field "+f.Key, f.Value); err != nil {
			return err
		}
	}
	return nil
}

func checkKey(what, k string) error {
	if err := callbridge.CheckSwitchValue(what, k); err != nil {
		return err
	}
	if k == "" {
		return callbridge.Errorf(callbridge.EInvalid, "%s is empty", what)
	}
	if strings.ContainsRune(k, ':') {
		return callbridge.Errorf(callbridge.EInvalid, "%s %q contains ':'", what, k)
	}
	return nil
}

// Response is the answer to one action: the response message itself and, for an event-list
// action (a response with "EventList: start", e.g. CoreShowChannels, QueueStatus, Status),
// the list.
//
// Items holds the list items in wire order (each carries the request's ActionID, e.g. the
// QueueParams/QueueMember/QueueEntry events of QueueStatus). Complete is the event that ended
// the list ("EventList: Complete", e.g. QueueStatusComplete with "ListItems: 21"); it is not
// in Items. Both are empty for an ordinary action. (An event carrying the ActionID that
// arrives while the response is still awaited is kept in Items too; Asterisk 22 always sends
// the response first.)
type Response struct {
	Message
	Items    []Message
	Complete Message

	action string // the action's name, for ResponseError
}

// IsList reports whether the response started an event list ("EventList: start").
func (r Response) IsList() bool { return strings.EqualFold(r.Get("EventList"), "start") }

// Err returns nil when the switch accepted the action (Response: Success, Goodbye for Logoff,
// or the legacy Follows of Command) and otherwise a *ResponseError carrying the switch's
// message, e.g. "Unable to add interface: Already there" (agent-state.ami.jsonl).
func (r Response) Err() error {
	switch strings.ToLower(r.Response()) {
	case "success", "goodbye", "follows":
		return nil
	}
	return &ResponseError{Action: r.action, Message: r.Get("Message")}
}

// ResponseError is an action the switch refused ("Response: Error"). Message is the
// switch's text; Action the name of the action.
type ResponseError struct {
	Action  string
	Message string
}

func (e *ResponseError) Error() string {
	switch {
	case e.Action == "":
		return "ami: action refused: " + e.Message
	case e.Message == "":
		return fmt.Sprintf("ami: %s refused", e.Action)
	}
	return fmt.Sprintf("ami: %s: %s", e.Action, e.Message)
}
