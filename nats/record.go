package nats

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	natsgo "github.com/nats-io/nats.go"

	"github.com/callbridge/callbridge"
)

// AudienceHeader is the header of a stored call event that lists the agents who receive it
// (callbridge.Event.Audience, deduplicated, in order), separated by single spaces. Agent
// events carry no such header: their agent is in the subject. The per-node fan-out hub and
// the shared log reader route by it, so one stored message serves every audience.
const AudienceHeader = "Cb-Audience"

// Entry is one domain event encoded once for the log: its subject, audience and payload.
// The payload is the event's JSON without "seq", which the stream assigns on append:
//
//	{"type":"call.delivered","time":"RFC 3339","tenant":"acme","data":{…}}
//
// Frame turns it into the desktops' form by putting the sequence first.
type Entry struct {
	Type    callbridge.EventType
	Tenant  callbridge.TenantID
	Subject string
	// Agents are the agents who receive the event on their desktops: the audience of a
	// call event, the agent of an agent event.
	Agents  []callbridge.AgentID
	Payload []byte
}

// payload is the stored JSON of an event (callbridge.Event without Seq).
type payload struct {
	Type   callbridge.EventType `json:"type"`
	Time   time.Time            `json:"time"`
	Tenant callbridge.TenantID  `json:"tenant"`
	Data   any                  `json:"data"`
}

// Encode validates ev's routing fields and encodes it once. A call event (Type "call.*")
// needs CallID and goes to cb.<tenant>.call.<call_id> with its Audience in AudienceHeader;
// an agent event ("agent.*") needs Agent and goes to cb.<tenant>.agent.<agent>.state. Every
// id must pass callbridge.ValidToken; otherwise, and for any other Type, the error is an
// EInvalid *callbridge.Error.
func Encode(ev callbridge.Event) (*Entry, error) {
	subject, agents, err := route(&ev)
	if err != nil {
		return nil, err
	}
	data, err := json.Marshal(payload{Type: ev.Type, Time: ev.Time, Tenant: ev.Tenant, Data: ev.Data})
	if err != nil {
		return nil, fmt.Errorf("nats: encode %s: %w", ev.Type, err)
	}
	return &Entry{Type: ev.Type, Tenant: ev.Tenant, Subject: subject, Agents: agents, Payload: data}, nil
}

// Frame returns the event as desktops receive it, {"seq":seq,"type":…}, in a new slice.
func (e *Entry) Frame(seq uint64) []byte { return frame(seq, e.Payload) }

// frame puts "seq" in front of a stored payload (a JSON object). A payload that still
// carries "seq":0 first (written before events were stored without it) loses it.
func frame(seq uint64, payload []byte) []byte {
	payload = bytes.TrimPrefix(payload, []byte(`{"seq":0,`))
	if len(payload) > 0 && payload[0] != '{' {
		payload = append([]byte{'{'}, payload...)
	}
	if len(payload) < 2 || payload[0] != '{' {
		return nil
	}
	b := make([]byte, 0, len(payload)+28)
	b = append(b, `{"seq":`...)
	b = strconv.AppendUint(b, seq, 10)
	if payload[1] != '}' {
		b = append(b, ',')
	}
	return append(b, payload[1:]...)
}

// header returns the NATS header of e with its message id.
func (e *Entry) header(id string) natsgo.Header {
	h := natsgo.Header{natsgo.MsgIdHdr: []string{id}}
	if e.Type.IsCall() && len(e.Agents) > 0 {
		h[AudienceHeader] = []string{joinAgents(e.Agents)}
	}
	return h
}

func joinAgents(as []callbridge.AgentID) string {
	var b strings.Builder
	for i, a := range as {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(string(a))
	}
	return b.String()
}

// Record is one stored event read back for desktops: its sequence, tenant, the agents who
// receive it, and its frame ({"seq":Seq,…}).
type Record struct {
	Seq    uint64
	Type   callbridge.EventType
	Tenant callbridge.TenantID
	Agents []callbridge.AgentID
	Frame  []byte
}

// decodeRecord reads a stored message. ok is false for messages that are not events of
// this scheme (the opened marker, copies written by callbridge before version 0.9 on
// cb.<t>.agent.<a>.call, anything malformed); they are skipped by readers.
func decodeRecord(seq uint64, subject string, hdr natsgo.Header, data []byte) (Record, bool) {
	toks := strings.Split(subject, ".")
	if len(toks) < 4 || toks[0] != subjectRoot || !callbridge.ValidToken(toks[1]) {
		return Record{}, false
	}
	var typ struct {
		Type callbridge.EventType `json:"type"`
	}
	r := Record{Seq: seq, Tenant: callbridge.TenantID(toks[1])}
	switch {
	case len(toks) == 4 && toks[2] == "call":
		for _, a := range strings.Fields(hdr.Get(AudienceHeader)) {
			if callbridge.ValidToken(a) {
				r.Agents = append(r.Agents, callbridge.AgentID(a))
			}
		}
	case len(toks) == 5 && toks[2] == "agent" && toks[4] == "state" && callbridge.ValidToken(toks[3]):
		r.Agents = []callbridge.AgentID{callbridge.AgentID(toks[3])}
	default:
		return Record{}, false
	}
	if err := json.Unmarshal(data, &typ); err != nil || typ.Type == "" {
		return Record{}, false
	}
	r.Type = typ.Type
	if r.Frame = frame(seq, data); r.Frame == nil {
		return Record{}, false
	}
	return r, true
}
