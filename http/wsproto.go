package http

import (
	"bytes"
	"encoding/json"

	"github.com/callbridge/callbridge"
)

// The v1 WebSocket protocol (DESIGN.md §4), as JSON text messages, one per frame.
//
// Server → client:
//
//	snapshot  {"type":"snapshot","seq":S,"data":<AgentSnapshot>}   first message for an agent
//	                                                              connecting without after_seq
//	resync    {"type":"resync","reason":R,"seq":S,"data":<AgentSnapshot>?}
//	                                                              the resume position cannot be
//	                                                              served: redraw, events after S follow
//	event     {"seq":42,"type":"call.delivered","time":"…","tenant":"acme","data":{…}}
//	reply     {"re":"c7","ok":true,"data":{…}}                   data: CommandResult for domain
//	                                                              commands, absent for ping/resume
//	          {"re":"c7","ok":false,"error":{"code":"…","message":"…"}}
//	          "re" is absent when the message had no readable "id".
//
// Client → server:
//
//	{"id":"c7","cmd":"answer_call","params":{"call_id":"…"}}
//
// "id" (a non-empty string of at most maxIDLen bytes) is required, except for resume and
// ping; "params" is an object
// (absent or null means none). Commands are every callbridge.CommandName plus:
//
//	ping    {}                   replies ok at once; counts as a heartbeat
//	resume  {"after_seq":41}     restarts the event stream after seq 41
//
// Domain commands and resume run one after another in the order received, each answered
// when done; a slow one delays the next but never the events. Pings and messages that do not
// parse are answered at once by the reader, so their replies may overtake earlier replies.
// The reply to resume comes before the replayed events; then every event of the caller's
// filter after after_seq arrives once, in order, followed by live ones.
const (
	cmdPing   = "ping"
	cmdResume = "resume"
	// maxIDLen caps a command id, in bytes.
	maxIDLen = 128
)

// knownCommands are the domain commands a client may send.
var knownCommands = map[callbridge.CommandName]bool{
	callbridge.CmdMakeCall:           true,
	callbridge.CmdAnswerCall:         true,
	callbridge.CmdClearConnection:    true,
	callbridge.CmdClearCall:          true,
	callbridge.CmdHoldCall:           true,
	callbridge.CmdRetrieveCall:       true,
	callbridge.CmdSingleStepTransfer: true,
	callbridge.CmdConsultationCall:   true,
	callbridge.CmdTransferCall:       true,
	callbridge.CmdConferenceCall:     true,
	callbridge.CmdUpdateCallData:     true,
	callbridge.CmdSetAgentState:      true,
	callbridge.CmdSetDisposition:     true,
}

// clientMessage is the envelope of a client → server message.
type clientMessage struct {
	ID     string          `json:"id"`
	Cmd    string          `json:"cmd"`
	Params json.RawMessage `json:"params"`
}

// commandParams are the params of a domain command. Tenant and role are never params: they
// come from the token. Agent lets a supervisor act on behalf of an agent.
type commandParams struct {
	CallID         callbridge.CallID     `json:"call_id"`
	ConsultCallID  callbridge.CallID     `json:"consult_call_id"`
	To             string                `json:"to"`
	State          callbridge.AgentState `json:"state"`
	Reason         string                `json:"reason"`
	AttachedData   map[string]string     `json:"attached_data"`
	Disposition    string                `json:"disposition"`
	Notes          string                `json:"notes"`
	IdempotencyKey string                `json:"idempotency_key"`
	Agent          callbridge.AgentID    `json:"agent"`
}

// resumeParams are the params of resume; AfterSeq is required.
type resumeParams struct {
	AfterSeq *uint64 `json:"after_seq"`
}

// request is a parsed client message.
type request struct {
	// id is the client's "id"; it may be set even when parsing failed (then the error reply
	// carries it as "re").
	id   string
	name string // the "cmd"
	// cmd holds the params of a domain command; Tenant, Agent, Role and Time are filled in
	// from the connection, never from the message.
	cmd callbridge.Command
	// agent is the "agent" param (act on behalf of), empty when absent.
	agent callbridge.AgentID
	// afterSeq is resume's after_seq.
	afterSeq uint64
}

// parseRequest parses one client message. On error it returns the request with id set when
// an id could be read, and an EInvalid *callbridge.Error that says what is wrong.
func parseRequest(data []byte) (request, *callbridge.Error) {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(data, &top); err != nil || top == nil {
		if json.Valid(data) {
			return request{}, invalid("a message must be a JSON object")
		}
		return request{}, invalid("the message is not valid JSON")
	}
	var req request
	rawID, hasID := top["id"]
	if hasID {
		if err := json.Unmarshal(rawID, &req.id); err != nil {
			return request{}, invalid(`"id" must be a string`)
		}
		switch {
		case req.id == "":
			return request{}, invalid(`"id" must not be empty`)
		case len(req.id) > maxIDLen:
			return request{}, invalid(`"id" is longer than %d bytes`, maxIDLen)
		}
	} else {
		// DESIGN.md §4 sends resume without an id ({"cmd":"resume","params":{"after_seq":41}});
		// resume and ping may omit it (their reply then has no "re"), every command needs one.
		var c struct {
			Cmd string `json:"cmd"`
		}
		_ = json.Unmarshal(data, &c)
		if c.Cmd != cmdResume && c.Cmd != cmdPing {
			return request{}, invalid(`"id" is required`)
		}
	}

	var msg clientMessage
	if err := strictUnmarshal(data, &msg); err != nil {
		return req, asInvalid(jsonError("message", err))
	}
	req.name = msg.Cmd
	switch {
	case msg.Cmd == "":
		return req, invalid(`"cmd" is required`)
	case msg.Cmd == cmdPing:
		if !emptyParams(msg.Params) {
			return req, invalid("ping takes no params")
		}
	case msg.Cmd == cmdResume:
		var p resumeParams
		if err := strictParams(msg.Params, &p); err != nil {
			return req, asInvalid(jsonError("params", err))
		}
		if p.AfterSeq == nil {
			return req, invalid(`resume needs params "after_seq"`)
		}
		req.afterSeq = *p.AfterSeq
	case knownCommands[callbridge.CommandName(msg.Cmd)]:
		var p commandParams
		if err := strictParams(msg.Params, &p); err != nil {
			return req, asInvalid(jsonError("params", err))
		}
		req.agent = p.Agent
		req.cmd = callbridge.Command{
			Name:           callbridge.CommandName(msg.Cmd),
			CallID:         p.CallID,
			ConsultCallID:  p.ConsultCallID,
			To:             p.To,
			State:          p.State,
			Reason:         p.Reason,
			AttachedData:   p.AttachedData,
			Disposition:    p.Disposition,
			Notes:          p.Notes,
			IdempotencyKey: p.IdempotencyKey,
		}
	default:
		return req, invalid("unknown cmd %q", msg.Cmd)
	}
	return req, nil
}

// strictUnmarshal decodes data into v, refusing unknown fields.
func strictUnmarshal(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}

// strictParams decodes params (absent or null means none) into v, refusing unknown fields
// and anything but an object.
func strictParams(params json.RawMessage, v any) error {
	if emptyParams(params) {
		return nil
	}
	if params[0] != '{' {
		return invalid(`"params" must be an object`)
	}
	return strictUnmarshal(params, v)
}

// emptyParams reports whether params is absent, null or {}.
func emptyParams(params json.RawMessage) bool {
	p := bytes.TrimSpace(params)
	if len(p) == 0 || string(p) == "null" {
		return true
	}
	var m map[string]json.RawMessage
	return p[0] == '{' && json.Unmarshal(p, &m) == nil && len(m) == 0
}

func invalid(format string, args ...any) *callbridge.Error {
	return callbridge.Errorf(callbridge.EInvalid, format, args...)
}

// asInvalid returns err (made by jsonError) as a *callbridge.Error.
func asInvalid(err error) *callbridge.Error {
	if e, ok := err.(*callbridge.Error); ok {
		return e
	}
	return invalid("%s", err.Error())
}

// replyMessage is a reply to a client message; see the protocol above.
type replyMessage struct {
	Re    string     `json:"re,omitempty"`
	OK    bool       `json:"ok"`
	Data  any        `json:"data,omitempty"`
	Error *errorBody `json:"error,omitempty"`
}

// snapshotMessage is the first message to an agent connecting without after_seq.
type snapshotMessage struct {
	Type string                   `json:"type"` // always "snapshot"
	Seq  uint64                   `json:"seq"`
	Data callbridge.AgentSnapshot `json:"data"`
}

// resyncMessage tells a client that the position it resumed from cannot be served (see
// hub: aged_out, ahead, overload, unavailable): it redraws from Data (agents: a fresh
// snapshot at Seq; absent for supervisors and admins) and then gets every event after Seq.
type resyncMessage struct {
	Type   string                    `json:"type"` // always "resync"
	Reason string                    `json:"reason"`
	Seq    uint64                    `json:"seq"`
	Data   *callbridge.AgentSnapshot `json:"data,omitempty"`
}
