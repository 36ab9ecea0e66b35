package engine

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/callbridge/callbridge"
)

// Availability explains whether agent can be routed a call now: routable = desktop state
// ready ∧ device registered and idle ∧ free capacity (no call, no wrap-up). When not, Reasons
// lists every factor that keeps the agent from it, each with the event that caused it, in
// this order: logged_out; not_ready (the pause reason: set_agent_state from a desktop or a
// supervisor, a pause on the phone, desktop_lost …); device_unavailable (the switch's
// device_state); busy (one reason per active call of the device: the call event that put the
// device there); working_after_call (the call whose end started it). Errors: ENotFound for an
// unknown tenant or agent.
func (e *Engine) Availability(tenant callbridge.TenantID, agentID callbridge.AgentID) (callbridge.Availability, error) {
	if e.dir.tenants[tenant] == nil {
		return callbridge.Availability{}, callbridge.Errorf(callbridge.ENotFound, "tenant %q not found", tenant)
	}
	a := e.agents[callbridge.AgentKey{Tenant: tenant, Agent: agentID}]
	if a == nil {
		return callbridge.Availability{}, callbridge.Errorf(callbridge.ENotFound, "agent %q not found", agentID)
	}
	av := callbridge.Availability{
		Tenant: tenant, Agent: agentID, Device: a.user.Device,
		State: a.state, Reason: a.reason, DeviceStatus: a.devStatus, Desktops: len(a.desks),
		Reasons: []callbridge.AvailabilityReason{},
	}
	if a.hadDesk && len(a.desks) == 0 {
		av.DesktopLostAt = a.deskGoneAt
		if e.grace > 0 {
			av.DesktopLostAfter = a.deskGoneAt.Add(e.grace)
		}
	}
	add := func(code, reason, msg string, cause callbridge.AvailabilityCause) {
		av.Reasons = append(av.Reasons, callbridge.AvailabilityReason{Code: code, Reason: reason, Message: msg, Cause: cause})
	}
	if len(a.members) == 0 {
		add(callbridge.UnavailLoggedOut, "", "the agent is not logged on to any queue", a.cause)
	} else if st, reason := a.baseState(); st == callbridge.AgentNotReady {
		add(callbridge.UnavailNotReady, reason, notReadyMessage(reason, a.cause), a.cause)
	}
	if a.devStatus == callbridge.DeviceUnavailable {
		add(callbridge.UnavailDeviceUnavailable, callbridge.ReasonDeviceUnavailable,
			fmt.Sprintf("the switch reports device %s unregistered or unreachable", a.user.Device),
			callbridge.AvailabilityCause{Source: "switch", Event: "device_state", Time: a.devAt})
	}
	var calls []*call
	for pbx := range e.devCalls[a.user.Device] {
		if c := e.calls[pbx]; c != nil && c.state(a.user.Device).Active() {
			calls = append(calls, c)
		}
	}
	slices.SortFunc(calls, func(x, y *call) int {
		if c := x.m.StartedAt.Compare(y.m.StartedAt); c != 0 {
			return c
		}
		return strings.Compare(string(x.m.ID), string(y.m.ID))
	})
	for _, c := range calls {
		st := c.state(a.user.Device)
		add(callbridge.UnavailBusy, "", fmt.Sprintf("device %s is %s on call %s", a.user.Device, connWord(st), c.m.ID),
			callbridge.AvailabilityCause{Source: "switch", Event: string(connEvent(st)), CallID: c.m.ID, Time: c.since[a.user.Device]})
	}
	if !a.wrapUntil.IsZero() {
		add(callbridge.UnavailWrapUp, "", fmt.Sprintf("after-call work until %s", a.wrapUntil.Format(time.RFC3339)),
			callbridge.AvailabilityCause{Source: "callbridge", Event: string(callbridge.EventCallConnectionCleared), CallID: a.wrapCall, Time: a.wrapAt})
	}
	av.Routable = len(av.Reasons) == 0
	return av, nil
}

func notReadyMessage(reason string, c callbridge.AvailabilityCause) string {
	switch {
	case reason == callbridge.ReasonDesktopLost:
		return "not ready: the agent's desktop was gone for longer than the grace time"
	case c.Source == "switch" && c.Event == "member_state":
		return fmt.Sprintf("not ready (%s): paused on the phone or on the switch", reason)
	case c.Source == "supervisor":
		return fmt.Sprintf("not ready (%s): set by a supervisor", reason)
	}
	return fmt.Sprintf("not ready (%s)", reason)
}

// connWord says a connection state in words.
func connWord(s callbridge.ConnectionState) string {
	switch s {
	case callbridge.ConnAlerting:
		return "ringing"
	case callbridge.ConnConnected:
		return "talking"
	case callbridge.ConnHeld:
		return "holding"
	case callbridge.ConnInitiated:
		return "dialling"
	}
	return string(s)
}

// connEvent is the call event that puts a connection in state s.
func connEvent(s callbridge.ConnectionState) callbridge.EventType {
	switch s {
	case callbridge.ConnAlerting:
		return callbridge.EventCallDelivered
	case callbridge.ConnConnected:
		return callbridge.EventCallEstablished
	case callbridge.ConnHeld:
		return callbridge.EventCallHeld
	}
	return callbridge.EventCallOriginated
}
