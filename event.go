package callbridge

import (
	"encoding/json"
	"time"
)

// EventType is the JSON "type" of a domain event (DESIGN.md §2): CSTA event names in dotted
// lower case.
type EventType string

// Call events.
const (
	EventCallOriginated        EventType = "call.originated"
	EventCallDelivered         EventType = "call.delivered"
	EventCallEstablished       EventType = "call.established"
	EventCallHeld              EventType = "call.held"
	EventCallRetrieved         EventType = "call.retrieved"
	EventCallTransferred       EventType = "call.transferred"
	EventCallConferenced       EventType = "call.conferenced"
	EventCallDiverted          EventType = "call.diverted"
	EventCallQueued            EventType = "call.queued"
	EventCallFailed            EventType = "call.failed"
	EventCallConnectionCleared EventType = "call.connection_cleared"
	EventCallCleared           EventType = "call.cleared"
	EventCallDataUpdated       EventType = "call.data_updated"
	// EventCallDispositionSet: the agent saved the wrap-up of a call they handled
	// (CallEvent.Disposition and Notes); it may come after call.cleared.
	EventCallDispositionSet EventType = "call.disposition_set"
)

// Agent events.
const (
	EventAgentStateChanged EventType = "agent.state_changed"
	EventAgentLoggedOn     EventType = "agent.logged_on"
	EventAgentLoggedOff    EventType = "agent.logged_off"
)

// IsCall reports whether t is a call event.
func (t EventType) IsCall() bool { return len(t) > 5 && t[:5] == "call." }

// Event is one domain event produced by the engine.
//
// The JSON form (what WebSocket clients and webhooks see) is
// {"seq":42,"type":"call.delivered","time":"RFC 3339","tenant":"acme","data":{…}}.
// Seq is assigned by the event log and is increasing for every subscriber; the engine leaves
// it 0. Call, Agent and Audience are routing fields that the event log uses to choose subjects;
// they are not serialised.
type Event struct {
	Seq    uint64    `json:"seq"`
	Type   EventType `json:"type"`
	Time   time.Time `json:"time"`
	Tenant TenantID  `json:"tenant"`
	// Site is the site whose engine produced the event (an engine runs one site); empty on
	// a node that runs the one implicit site (DefaultSite). Call records take their site and
	// time zone from it.
	Site SiteID `json:"site,omitempty"`
	// Data is *CallEvent for call events and *Agent for agent events.
	Data any `json:"data"`

	// CallID is the call of a call event.
	CallID CallID `json:"-"`
	// Agent is the agent of an agent event.
	Agent AgentID `json:"-"`
	// Audience lists the agents who receive this event on their own subject: the agent of an
	// agent event; for a call event, the agents who have a connection to the call after the
	// change and those whose part of the call this event ends (their connection_cleared,
	// failed, diverted or transferred event, or call.cleared); for call.disposition_set, the
	// agent who set it. An agent who left a call receives none of its later events.
	Audience []AgentID `json:"-"`
}

// CallEvent is the data of a call event: the whole call after the change, plus what the
// event is about. Embedded Call fields are flattened into the JSON object.
type CallEvent struct {
	Call
	// Device is the device the event is about (the alerting device for call.delivered, the
	// answering device for call.established, the leaving device for connection_cleared …).
	Device DeviceID `json:"device,omitempty"`
	// Agent is the agent on Device, if any.
	Agent AgentID `json:"agent,omitempty"`
	Cause Cause   `json:"cause,omitempty"`
	// TransferringDevice left the call in call.transferred; TransferredTo now has the party.
	TransferringDevice DeviceID `json:"transferring_device,omitempty"`
	TransferredTo      DeviceID `json:"transferred_to,omitempty"`
	// DivertedTo is where the call went in call.diverted (CSTA Diverted: newDestination): the
	// queue (ACD group) device a queue offer that was not answered returns the call to, or the
	// next device that rings for it. Device (and Agent) is the device the call left.
	DivertedTo DeviceID `json:"diverted_to,omitempty"`
	// ConsultCallID is the consultation call that a transfer or conference completed.
	ConsultCallID CallID `json:"consult_call_id,omitempty"`
	// Disposition code and Notes, in call.disposition_set.
	Disposition string `json:"disposition,omitempty"`
	Notes       string `json:"notes,omitempty"`
}

// WireEvent is an event as read back from the event log or a WebSocket: data stays raw JSON.
type WireEvent struct {
	Seq    uint64          `json:"seq"`
	Type   EventType       `json:"type"`
	Time   time.Time       `json:"time"`
	Tenant TenantID        `json:"tenant"`
	Site   SiteID          `json:"site,omitempty"` // see Event.Site
	Data   json.RawMessage `json:"data"`
}
