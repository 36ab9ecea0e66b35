package callbridge

import "time"

// ConnectionState is the CSTA (ECMA-269 §6.1.5) state of one device's connection to a call.
type ConnectionState string

// Connection states.
const (
	ConnNull      ConnectionState = "null"      // no relation (the device has left)
	ConnInitiated ConnectionState = "initiated" // the device is starting a call (off-hook, originate)
	ConnAlerting  ConnectionState = "alerting"  // the device is ringing
	ConnConnected ConnectionState = "connected" // the device is talking (answered)
	ConnHeld      ConnectionState = "held"      // the device put the call on hold
	ConnQueued    ConnectionState = "queued"    // the call waits in a queue for this device
	ConnFailed    ConnectionState = "failed"    // the device could not be reached (busy, rejected)
)

// Active reports whether a connection in state s occupies its device (initiated, alerting,
// connected, held).
func (s ConnectionState) Active() bool {
	switch s {
	case ConnInitiated, ConnAlerting, ConnConnected, ConnHeld:
		return true
	}
	return false
}

// Direction of a call as seen by the contact center.
type Direction string

// Directions.
const (
	DirInbound  Direction = "inbound"  // a customer called in (trunk → agent)
	DirOutbound Direction = "outbound" // an agent called out (make_call, click-to-call)
	DirInternal Direction = "internal" // between devices of the switch, e.g. a consultation
)

// Connection is the relation of one device to one call.
type Connection struct {
	Device   DeviceID        `json:"device"`
	Agent    AgentID         `json:"agent,omitempty"` // the agent logged on to Device, if any
	State    ConnectionState `json:"state"`
	External bool            `json:"external,omitempty"` // an outside party (trunk), Device is its number
}

// Call is the engine's model of one conversation. It is also the shape of a call in the
// data of call events (DESIGN.md §4). Times are UTC; zero times are omitted in JSON. The
// fields DESIGN.md lists (pbx_call_id, ani, dnis, queue …) are always present, "" when unknown.
type Call struct {
	ID           CallID            `json:"call_id"`
	Tenant       TenantID          `json:"tenant"`
	PBXCallID    string            `json:"pbx_call_id"` // the switch's correlation id (Asterisk Linkedid, FreeSWITCH first leg's Unique-ID)
	Direction    Direction         `json:"direction"`
	ANI          string            `json:"ani"`                // calling number
	ANIName      string            `json:"ani_name,omitempty"` // calling name, when the switch gives one
	DNIS         string            `json:"dnis"`               // dialed number (DID)
	Queue        QueueName         `json:"queue"`
	AttachedData map[string]string `json:"attached_data"`
	Connections  []Connection      `json:"connections"`
	// ConsultOf is set on a consultation call: the call it consults about.
	ConsultOf  CallID    `json:"consult_of,omitempty"`
	StartedAt  time.Time `json:"started_at"`
	QueuedAt   time.Time `json:"queued_at,omitzero"`
	AnsweredAt time.Time `json:"answered_at,omitzero"`
	EndedAt    time.Time `json:"ended_at,omitzero"`
}

// Connection returns the connection of device d and true, or a zero Connection and false.
func (c *Call) Connection(d DeviceID) (Connection, bool) {
	for _, cn := range c.Connections {
		if cn.Device == d {
			return cn, true
		}
	}
	return Connection{}, false
}

// Clone returns a deep copy of c, safe to hand to another goroutine.
func (c *Call) Clone() Call {
	out := *c
	out.AttachedData = make(map[string]string, len(c.AttachedData))
	for k, v := range c.AttachedData {
		out.AttachedData[k] = v
	}
	out.Connections = append([]Connection(nil), c.Connections...)
	return out
}

// Cause is the CSTA event cause carried by failed, cleared and transferred events.
type Cause string

// Causes (ECMA-269 §12.2.5 names, lower snake case), except where DESIGN.md §2 names the
// cause itself: a consultation that ends in a completed transfer clears with "transferred" (CSTA
// "transfer"), one that ends in a conference with "conferenced" (CSTA "conference").
const (
	CauseNormal      Cause = "normal_clearing"
	CauseBusy        Cause = "busy"
	CauseNoAnswer    Cause = "no_answer"     // ring timeout, or a device that rejected the call (Asterisk NOANSWER)
	CauseRejected    Cause = "call_rejected" // explicit rejection where the switch tells it apart
	CauseUnavailable Cause = "destination_not_obtainable"
	CauseAbandoned   Cause = "call_abandoned" // the caller hung up while queued or ringing
	CauseTransferred Cause = "transferred"
	CauseConferenced Cause = "conferenced"
	CauseRedirected  Cause = "redirected"
	CauseDistributed Cause = "distributed" // a queue (ACD group) handed the call to a device
	CauseResync      Cause = "resync"      // the call was not on the switch any more after a resync
	CauseNetworkOut  Cause = "network_out_of_order"
)
