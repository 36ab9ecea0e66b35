// Package engine is the deterministic state machine of one callbridge site: every call on the
// site's switch and every agent of every tenant on it. Switch events (from a driver) and
// desktop/CRM commands go in; domain events and switch commands come out.
//
// The engine is pure: no I/O, no goroutines, no clock of its own, no global state, no logging.
// Given the same Config and the same inputs it produces the same outputs. It is not safe for
// concurrent use: one goroutine (package node) owns it.
//
// # Clock
//
// The engine's clock is the latest time among Config.Now, switch event times, command times
// and Tick times; it never goes backwards (an input with an older or zero time is taken to
// happen at the engine's current time). Every event's Time, a call's StartedAt/EndedAt, an
// agent's Since and WrapUpUntil come from it. All times are UTC.
//
// # Identity and tenants
//
// The driver names a conversation by PBXCallID; the engine maps it to a CallID from
// Config.NewCallID, stable for the whole conversation including transfers. A consultation
// (call_started with ConsultOf) is its own call with its own CallID, Call.ConsultOf set, and a
// copy of the consulted call's attached data.
//
// A call's tenant is ev.Tenant when set (a tenant that is not configured makes the call one of
// no known tenant), else the tenant of the consulted call, else the tenant of a make_call or
// consultation_call reservation it claims, else the tenant whose DIDs contain the DNIS (a
// leading "+" is ignored), else the tenant of the agent whose device is on the call, else the
// only tenant when there is exactly one. A call of no known tenant is tracked (so later events
// find it) but produces no events; it adopts a tenant when a later event names one or an
// agent's device joins it.
//
// Attached data: when the tenant lists AttachedData keys only those switch variables are
// kept, else every key except CTI_* names. Empty values are never stored (Asterisk reports
// IVR_ACCOUNT= before the IVR sets it); in data_updated an empty value deletes the key.
//
// # Call events
//
// Call event data is a *callbridge.CallEvent holding the whole call after the change;
// Event.CallID is set. Audience is the agents who have a connection to the call after the
// change, then those whose connection ended during the same input (the events that end their
// part: their connection_cleared, failed, diverted or transferred event, or call.cleared): an
// agent receives nothing of a call after their part of it ended (DESIGN.md §1). Switch events
// map as follows:
//
//   - call_started creates the call. An inbound call gets the caller's connection (connected,
//     External); a call started by an agent's device (outbound, internal, consultation) gets
//     that device's connection (initiated) and emits call.originated to that agent. An
//     inbound start emits nothing. A call_started for a known PBXCallID only fills in missing
//     ANI/DNIS/data.
//   - data_updated → call.data_updated with the merged data (nothing when nothing changed).
//   - queued → Call.Queue and QueuedAt, and a connection at the queue's device (the queue's
//     name, state queued, no agent: CSTA's ACD group device); call.queued names that device.
//     A call already waiting in that queue changes nothing; one waiting in another queue is
//     diverted from it first.
//   - dequeued → the queue connection goes with call.connection_cleared about the queue's
//     device: cause call_abandoned (the caller gave up; it also becomes the cause of
//     call.cleared if the call was never answered), distributed (a device rings or talks for
//     the call), else normal_clearing (the queue let the call go on: the next device to ring
//     gets it by diversion). A device of the switch answering a call that still has a queue
//     connection ends it the same way (distributed) first.
//   - alerting → connection alerting, call.delivered (the screen pop: ANI, DNIS, queue and
//     attached data are in the call).
//   - connected → connection connected, call.established (call.retrieved when the
//     connection was held). AnsweredAt is the first answer by an agent's device; for an
//     outbound call it is the outside party's answer.
//   - held / retrieved → connection held / connected, call.held / call.retrieved.
//   - failed → for a device of the switch that rang (or was being rung) for a call with a
//     queue connection (a queue member that rang out, rejected or was busy), the connection
//     is removed and call.diverted names the queue's device as DivertedTo (the call went
//     back to its queue). Otherwise the connection is shown failed in call.failed, then
//     removed.
//   - connection_cleared → connection removed, call.connection_cleared with Cause.
//   - A device that stopped ringing (failed or cleared) for a call nobody answered and that
//     waits in no queue is where the call came from when the next device rings or the call
//     joins a queue: call.diverted (Device the first, DivertedTo the next; the failure cause,
//     or redirected) comes just before that call.delivered or call.queued. An answer, a
//     transfer, a conference or the end of the call forgets it.
//   - transferred → the transferring device's connection is removed and call.transferred
//     emitted (TransferringDevice, TransferredTo, and ConsultCallID for a consultative
//     transfer). For a consultative transfer the consultation's other parties move into this
//     call first, with the attached data the consultation changed, and the consultation then
//     clears with call.cleared cause transfer.
//   - conferenced → the consultation's parties join the call (the conferencing device is
//     connected again), call.conferenced, and the consultation clears with cause conference.
//   - call_cleared → call.cleared once (EndedAt set, no connections left); the call is then
//     forgotten.
//
// Events for unknown PBXCallIDs are ignored, except alerting and connected, which create the
// call. Repeated events (a state the connection already has) produce nothing.
//
// # Agents
//
// An agent is a user with a Device; AgentID is the user name. The presented state is derived:
//
//   - logged_out when the device is a member of no queue;
//   - busy when the device has an active connection (initiated, alerting, connected, held);
//   - working_after_call during wrap-up;
//   - not_ready device_unavailable while the switch reports the device unavailable
//     (device_state, or a snapshot's member status): derived, nothing is paused, and the
//     state before comes back when the device does;
//   - not_ready (with the pause reason of the first paused queue by name) when every
//     membership is paused with a reason other than callbridge.ReasonWrapUp;
//   - ready otherwise.
//
// While busy or working_after_call, Agent.NextState/NextReason show the state that follows
// (the memberships' state, or logged_out when a log-out was asked for during the call): "not
// ready after this call" is a not_ready asked for while busy, which pauses the switch at once
// (no new offers) and shows once the call and its wrap-up are over. A change of only the next
// state is an agent.state_changed whose state equals previous_state and whose since is
// unchanged. logged_out asked for while busy is carried out (MemberRemove) when the call and
// its wrap-up are over.
//
// member_state events are the truth for membership and pause: the model follows the phone and
// never fights it. A member_state with an empty Queue applies to every queue the device is in.
// A pause with Reason wrap_up is callbridge's own and does not make the agent not_ready; one
// seen while the agent is not in wrap-up is stale and is undone with an unpause command.
// agent.state_changed (Data *callbridge.Agent with PreviousState; Audience and Event.Agent the
// agent) is emitted only when the presented state or reason changes; agent.logged_on and
// agent.logged_off when membership goes from none to some and back.
//
// Wrap-up: when an agent's device leaves a customer call (one that was queued or had an
// outside party) on which it had answered, and the device has no other active connection, and
// the agent is logged on, and the wrap-up time (the call's queue's WrapUpSeconds, else the
// tenant's) is above zero, the agent goes working_after_call until WrapUpUntil and the engine
// outputs a pause (Reason wrap_up) for the memberships that were not paused. Tick at or after
// WrapUpUntil ends it: wrap_up pauses are lifted with an unpause command and the agent shows
// the state the memberships give (ready, or not_ready when the agent paused on the phone
// meanwhile). set_agent_state ready/not_ready/logged_out, or an unpause on the phone, ends
// wrap-up early.
//
// Desktop presence (DesktopAttached, DesktopHeartbeat, DesktopDetached, Config.DesktopGrace,
// Config.HeartbeatTimeout) turns an agent whose desktops are all gone into not_ready
// desktop_lost; see presence.go. Availability explains routability with the cause of each
// factor; see availability.go.
//
// # Commands
//
// Plan validates a command against the current state and returns the switch commands that
// carry it out, changing nothing; the runtime calls Stage (so that switch events that
// overtake the command's reply find its reservation and data), executes the switch commands,
// and then calls Apply, which commits the command, or Abort when the switch refused (other
// inputs may have been handled in between). See Plan for the rules and errors, Stage for
// what is staged, and planSetDisposition for set_disposition. Notes given with make_call,
// single_step_transfer, consultation_call and update_call_data travel as attached data
// NotesKey ("notes").
//
// # Resynchronisation
//
// A snapshot event (after a driver (re)connect) replaces the model: calls the engine has that
// the switch no longer has clear with cause resync; calls the engine lacks are created, with
// call.delivered / call.established (call.originated for an initiated party) for their agent
// parties and call.queued for a waiting call (a party in state queued at the queue's
// device); known calls get their
// connections set, the queue connection included (with the matching events, and
// call.connection_cleared cause resync for parties that left);
// member states replace every agent's memberships. Calls and connections that a snapshot
// clears start no wrap-up (they ended at an unknown time, and the snapshot's member states
// are the truth). Afterwards no agent is busy without a call.
//
// # Persistence
//
// MarshalState writes the dynamic state as versioned JSON and Restore builds an engine from
// a Config and such a state (persist.go); Recover folds the events the log holds after the
// save (recover.go); the switch's resync then reconciles, as after any reconnect. A call
// that outlives a crash keeps its CallID.
package engine
