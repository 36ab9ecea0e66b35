// Package freeswitch is the FreeSWITCH driver of callbridge: it speaks the Event Socket
// (package esl) to a FreeSWITCH 1.10 PBX with mod_callcenter, translates its channel events
// and mod_callcenter's CUSTOM callcenter::info events into the same normalised switch events
// the engine takes from Asterisk (Tracker), resynchronises after every connect ("show
// channels as json" and callcenter_config listings) and carries out switch commands with api
// and bgapi commands.
//
// Every protocol fact used here was read from the recordings of a real FreeSWITCH 1.10.12 in
// shared/fixtures/freeswitch-1.10 and its README; doc comments name the recording. The mapping
// of FreeSWITCH legs onto callbridge's call model:
//
//   - FreeSWITCH has no call id like Asterisk's Linkedid (Channel-Call-UUID changes while a
//     leg is bridged). A conversation is named by the Unique-ID of its first leg (PBXCallID):
//     the inbound caller leg, or the agent leg of a click-to-call (its origination_uuid).
//   - Later legs join the conversation of the leg they come from: mod_callcenter agent legs
//     through variable_cc_member_session_uuid (= CC-Member-Session-UUID, the caller's leg),
//     bridge and transfer targets through variable_originating_leg_uuid, and any leg through
//     Other-Leg-Unique-ID when it names a known leg. A leg keeps its conversation across
//     transfers, so the PBXCallID (and the engine's CallID) is stable.
//   - A party is a telset leg (a leg dialled through the user/ endpoint,
//     variable_dialed_user, or an inbound leg from a user context) whose device is the user,
//     or an outside leg whose device is its number (ANI inbound, destination outbound).
//   - An att_xfer consultation is a call of its own (DESIGN.md §2) named by the att_xfer
//     application's Application-UUID, with ConsultOf = the original conversation.
//
// See docs/freeswitch.md for the FreeSWITCH configuration callbridge needs.
package freeswitch

// Defaults.
const (
	// DefaultContext is the dialplan context of transfer targets and click-to-call numbers
	// (the recordings' dialplan/default.xml).
	DefaultContext = "default"
	// DefaultPort is the port mod_event_socket listens on by default (event_socket.conf.xml
	// "listen-port"); an esl:// URL must name its port all the same.
	DefaultPort = "8021"
	// DefaultBreakReason is the not_ready reason reported for mod_callcenter's "On Break"
	// status when callbridge did not set it itself (mod_callcenter keeps no reason code).
	DefaultBreakReason = "break"
	// DefaultIdleReason is the not_ready reason reported for mod_callcenter's agent state
	// "Idle" ("does nothing, no calls are given"; fs-agent-state).
	DefaultIdleReason = "idle"
	// DefaultTenantVariable and DefaultDNISVariable are the channel variables the dialplan
	// exports with the tenant and the DID (dialplan/public.xml: cti_tenant, cti_dnis).
	DefaultTenantVariable = "cti_tenant"
	DefaultDNISVariable   = "cti_dnis"
	// CorrelationVariable is the channel variable make_call and consultation_call set on the
	// leg they originate, so its events carry the command's correlation id.
	CorrelationVariable = "cti_correlation_id"
)

// DefaultDataVariable is the channel variable pattern reported as attached data when
// TrackerConfig.DataVariables is empty: every ivr_* variable (names exactly as set; the
// dialplan's cc_export_vars copies them to agent legs).
const DefaultDataVariable = "ivr_*"

// DefaultUserContext is the dialplan context of calls placed by the switch's own users
// (directory user_context) when TrackerConfig.UserContexts is empty: an inbound leg in it is a
// telset, not an outside caller (the recordings' carrier calls arrive in context public).
const DefaultUserContext = "default"
