package callbridge

import (
	"context"
	"time"
)

// SwitchEventType names a normalised switch event: what every Driver emits, whatever the
// switch. Drivers own protocol correlation (which legs form one conversation); the engine owns
// identity (CallID), agents and routing.
type SwitchEventType string

// Switch event types. "Call" below is the driver's conversation, named by PBXCallID.
const (
	// SwitchCallStarted: a new conversation appeared on the switch. Required: PBXCallID,
	// Direction. Inbound: ANI, ANIName, DNIS, Device = the outside number (External) with Leg.
	// Outbound (originate): Device = the agent's device, CorrelationID when the driver can tie it
	// to a make_call. Consultation: ConsultOf = the PBXCallID consulted about, Device = the
	// consulting device. Tenant when the switch says it (Asterisk CTI_TENANT, FreeSWITCH
	// cti_tenant), else the engine finds it from DNIS or the device. Data: attached data
	// known so far.
	SwitchCallStarted SwitchEventType = "call_started"
	// SwitchDataUpdated: attached data of the call changed (IVR variables). Data holds the
	// changed keys; an empty value deletes a key.
	SwitchDataUpdated SwitchEventType = "data_updated"
	// SwitchQueued: the call joined Queue.
	SwitchQueued SwitchEventType = "queued"
	// SwitchDequeued: the call left Queue; Cause is CauseAbandoned when the caller gave up, empty
	// when it left to be answered.
	SwitchDequeued SwitchEventType = "dequeued"
	// SwitchAlerting: Device rings for the call (Leg is the device's leg). Queue is set when the
	// queue offered it.
	SwitchAlerting SwitchEventType = "alerting"
	// SwitchConnected: Device is connected (answered, or the outside party answered).
	SwitchConnected SwitchEventType = "connected"
	// SwitchHeld: Device put the call on hold (CSTA: the holding device's connection is held).
	SwitchHeld SwitchEventType = "held"
	// SwitchRetrieved: Device took the call off hold.
	SwitchRetrieved SwitchEventType = "retrieved"
	// SwitchConnectionCleared: Device left the call; the call may go on. Cause says why.
	SwitchConnectionCleared SwitchEventType = "connection_cleared"
	// SwitchFailed: Device could not be reached for the call (busy, rejected, no answer). Cause.
	SwitchFailed SwitchEventType = "failed"
	// SwitchTransferred: the call was transferred. TransferringDevice left (or is leaving),
	// TransferredTo is the new party (a device, or for a blind transfer the dialled target).
	// ConsultPBXCallID names the consultation call for a consultative transfer; its
	// parties move into this call and it clears with CauseTransferred.
	SwitchTransferred SwitchEventType = "transferred"
	// SwitchConferenced: the consultation ConsultPBXCallID was joined into the call; Device is
	// the device that conferenced, TransferredTo the party added.
	SwitchConferenced SwitchEventType = "conferenced"
	// SwitchCallCleared: the whole conversation is over. Cause.
	SwitchCallCleared SwitchEventType = "call_cleared"
	// SwitchMemberState: queue membership of Device changed: LoggedOn (member of Queue), Paused
	// and Reason. Queue empty means "every queue" (a pause without queue).
	SwitchMemberState SwitchEventType = "member_state"
	// SwitchDeviceState: Device's registration/usage changed: DeviceStatus.
	SwitchDeviceState SwitchEventType = "device_state"
	// SwitchSnapshot: the complete state of the switch after a (re)connect; Snapshot is set.
	// The engine reconciles: calls it has that are missing clear with CauseResync, calls it
	// lacks are created, agents take the member states.
	SwitchSnapshot SwitchEventType = "snapshot"
	// SwitchLinkUp / SwitchLinkDown: the switch link is established (and resynchronised, which a
	// Snapshot follows or precedes) or lost. Reason says why on LinkDown.
	SwitchLinkUp   SwitchEventType = "link_up"
	SwitchLinkDown SwitchEventType = "link_down"
)

// DeviceStatus is a device's state as the switch reports it.
type DeviceStatus string

// Device statuses (Asterisk device states map onto these).
const (
	DeviceIdle        DeviceStatus = "idle"   // registered, not in use
	DeviceInUse       DeviceStatus = "in_use" // in use or on hold
	DeviceRinging     DeviceStatus = "ringing"
	DeviceUnavailable DeviceStatus = "unavailable" // unregistered or unreachable
	DeviceUnknown     DeviceStatus = "unknown"
)

// SwitchEvent is one normalised event from a driver. Which fields are set depends on Type
// (see the constants). Time is the switch's time of the event when it gives one (Asterisk
// Timestamp), else the time the driver read it.
type SwitchEvent struct {
	Type      SwitchEventType   `json:"type"`
	Time      time.Time         `json:"time"`
	Tenant    TenantID          `json:"tenant,omitempty"`
	PBXCallID string            `json:"pbx_call_id,omitempty"`
	Leg       string            `json:"leg,omitempty"` // the switch's leg id (Asterisk Uniqueid, FreeSWITCH Unique-ID)
	Device    DeviceID          `json:"device,omitempty"`
	External  bool              `json:"external,omitempty"` // Device is an outside party
	Direction Direction         `json:"direction,omitempty"`
	ANI       string            `json:"ani,omitempty"`
	ANIName   string            `json:"ani_name,omitempty"`
	DNIS      string            `json:"dnis,omitempty"`
	Queue     QueueName         `json:"queue,omitempty"`
	Data      map[string]string `json:"data,omitempty"`
	Cause     Cause             `json:"cause,omitempty"`

	// CorrelationID ties a call_started to the make_call that caused it (SwitchCommand.CorrelationID).
	CorrelationID string `json:"correlation_id,omitempty"`
	// ConsultOf, on call_started of a consultation: the PBXCallID consulted about.
	ConsultOf string `json:"consult_of,omitempty"`
	// ConsultPBXCallID, on transferred/conferenced: the consultation call completed.
	ConsultPBXCallID   string   `json:"consult_pbx_call_id,omitempty"`
	TransferringDevice DeviceID `json:"transferring_device,omitempty"`
	TransferredTo      DeviceID `json:"transferred_to,omitempty"`

	// Member and device state.
	LoggedOn     bool         `json:"logged_on,omitempty"`
	Paused       bool         `json:"paused,omitempty"`
	Reason       string       `json:"reason,omitempty"`
	DeviceStatus DeviceStatus `json:"device_status,omitempty"`

	Snapshot *Snapshot `json:"snapshot,omitempty"`
}

// Snapshot is the whole switch state a driver reads after a (re)connect (Asterisk:
// CoreShowChannels, QueueStatus; FreeSWITCH: show channels, callcenter_config).
type Snapshot struct {
	Calls   []SnapshotCall   `json:"calls"`
	Members []SnapshotMember `json:"members"`
}

// SnapshotCall is one conversation in a Snapshot.
type SnapshotCall struct {
	PBXCallID string            `json:"pbx_call_id"`
	Tenant    TenantID          `json:"tenant,omitempty"`
	Direction Direction         `json:"direction"`
	ANI       string            `json:"ani,omitempty"`
	ANIName   string            `json:"ani_name,omitempty"`
	DNIS      string            `json:"dnis,omitempty"`
	Queue     QueueName         `json:"queue,omitempty"`
	Data      map[string]string `json:"data,omitempty"`
	ConsultOf string            `json:"consult_of,omitempty"`
	Parties   []SnapshotParty   `json:"parties"`
}

// SnapshotParty is one device's connection in a SnapshotCall. A call waiting in a queue has
// a party at the queue's device (Device = the queue's name) in state queued.
type SnapshotParty struct {
	Device   DeviceID        `json:"device"`
	Leg      string          `json:"leg,omitempty"`
	State    ConnectionState `json:"state"`
	External bool            `json:"external,omitempty"`
}

// SnapshotMember is one queue membership in a Snapshot.
type SnapshotMember struct {
	Device DeviceID     `json:"device"`
	Queue  QueueName    `json:"queue"`
	Paused bool         `json:"paused"`
	Reason string       `json:"reason,omitempty"`
	Status DeviceStatus `json:"status,omitempty"`
}

// SwitchCommandType names a command for the switch (CSTA service names).
type SwitchCommandType string

// Switch commands.
const (
	SwitchMakeCall           SwitchCommandType = "make_call"            // Device = agent's device, To = number; agent-first
	SwitchAnswerCall         SwitchCommandType = "answer_call"          // Device answers PBXCallID
	SwitchClearConnection    SwitchCommandType = "clear_connection"     // Device leaves PBXCallID
	SwitchClearCall          SwitchCommandType = "clear_call"           // every party of PBXCallID is hung up
	SwitchHoldCall           SwitchCommandType = "hold_call"            // Device holds PBXCallID
	SwitchRetrieveCall       SwitchCommandType = "retrieve_call"        // Device retrieves PBXCallID
	SwitchSingleStepTransfer SwitchCommandType = "single_step_transfer" // Device's partner goes to To
	SwitchConsultationCall   SwitchCommandType = "consultation_call"    // Device holds PBXCallID and calls To
	SwitchTransferCall       SwitchCommandType = "transfer_call"        // complete: held PBXCallID joins ConsultPBXCallID
	SwitchConferenceCall     SwitchCommandType = "conference_call"      // join PBXCallID and ConsultPBXCallID
	SwitchSetMemberState     SwitchCommandType = "set_member_state"     // queue membership of Device
)

// MemberAction says what SwitchSetMemberState does.
type MemberAction string

// Member actions (Asterisk QueueAdd, QueueRemove, QueuePause; FreeSWITCH mod_callcenter keeps
// one status per agent, not per queue, so its driver maps them onto agent statuses:
// Available, Logged Out, On Break).
const (
	MemberAdd    MemberAction = "add"
	MemberRemove MemberAction = "remove"
	MemberPause  MemberAction = "pause" // Paused and Reason say how
)

// SwitchCommand is one command for a driver. Values are validated by the engine; drivers
// check them again with CheckSwitchValue before writing them to the wire.
type SwitchCommand struct {
	Type      SwitchCommandType `json:"type"`
	Tenant    TenantID          `json:"tenant"`
	PBXCallID string            `json:"pbx_call_id,omitempty"`
	// ConsultPBXCallID is the consultation call for transfer_call and conference_call.
	ConsultPBXCallID string `json:"consult_pbx_call_id,omitempty"`
	// Device is the acting device (the agent's device).
	Device DeviceID `json:"device,omitempty"`
	// Interface is the switch's name for Device as a queue member (e.g. "PJSIP/1001" or
	// "Local/2001@globex-agents/n" on Asterisk, the mod_callcenter agent "1001@default" on
	// FreeSWITCH), from provisioning; drivers fall back to their default.
	Interface string `json:"interface,omitempty"`
	// To is the target: extension, queue or outside number.
	To string `json:"to,omitempty"`
	// Data is attached data to carry with the call (make_call, transfers).
	Data map[string]string `json:"data,omitempty"`
	// CorrelationID (make_call) is echoed in the call_started the command causes.
	CorrelationID string `json:"correlation_id,omitempty"`

	// SwitchSetMemberState fields.
	Action     MemberAction `json:"action,omitempty"`
	Queues     []QueueName  `json:"queues,omitempty"` // empty with MemberPause = every queue
	Paused     bool         `json:"paused,omitempty"`
	Reason     string       `json:"reason,omitempty"`
	MemberName string       `json:"member_name,omitempty"`
}

// Capabilities says which switch commands a driver can carry out.
type Capabilities map[SwitchCommandType]bool

// Driver connects callbridge to one switch. Implementations: asterisk (AMI), freeswitch
// (ESL), sim (the simulated PBX). Every driver passes the conformance kit in pbxtest.
type Driver interface {
	// Run connects to the switch and calls emit for every normalised event, in switch order,
	// from one goroutine, until ctx is done. It reconnects by itself (backoff with jitter) and,
	// after every connect, emits a SwitchSnapshot and SwitchLinkUp; on a loss, SwitchLinkDown.
	// It returns ctx.Err() when ctx ends, or an error it cannot recover from (for example an
	// authentication failure on the first connect).
	Run(ctx context.Context, emit func(SwitchEvent)) error
	// Execute carries out cmd. It returns nil once the switch accepted it (its effects arrive
	// as events), an *Error with ENotSupported when the switch cannot do it, EInvalid for a bad
	// value, EUnavailable when the link is down, or ESwitchRejected with the switch's message.
	Execute(ctx context.Context, cmd SwitchCommand) error
	// Capabilities lists the commands Execute supports.
	Capabilities() Capabilities
}
