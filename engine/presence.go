package engine

import (
	"time"

	"github.com/callbridge/callbridge"
)

// Desktop presence and heartbeats.
//
// Every desktop (WebSocket connection) of an agent is attached with DesktopAttached, shows
// life with DesktopHeartbeat and leaves with DesktopDetached; the runtime passes its clock.
// Presence produces no events by itself. The rules, for an agent who had at least one desktop
// since the engine started (agents who only use their phone are never touched):
//
//   - With Config.HeartbeatTimeout > 0, Tick counts a desktop as gone once it has not been
//     heard from for that long (a connection that died without a close).
//   - When the last desktop is gone, DesktopGrace starts. When it has passed (Tick), and the
//     agent is logged on and routable on the switch (some membership not paused, or paused
//     only for wrap-up), every membership is paused with reason desktop_lost (one
//     SwitchSetMemberState command, applied to the model at once): the agent shows not_ready
//     desktop_lost (or busy with next_state not_ready desktop_lost), and a wrap-up in progress
//     ends. An agent already paused for a reason of their own is left as they are.
//   - An agent without a desktop whose device rings (a call alerting there) is paused the
//     same way at once, without waiting for the grace time: the ringing call goes unanswered
//     at an empty seat, and the switch must not offer more.
//   - A desktop that attaches again cancels the grace time. The agent stays not_ready
//     desktop_lost until they choose another state.
//
// Errors (*callbridge.Error): ENotFound for an unknown tenant or agent, EInvalid for a
// desktop id that is empty, longer than 128 bytes or has CR/LF/NUL.

// presenceAgent returns the agent a presence input is about.
func (e *Engine) presenceAgent(tenant callbridge.TenantID, agent callbridge.AgentID, desk string) (*agent, error) {
	if desk == "" || len(desk) > 128 || callbridge.CheckSwitchValue("desktop", desk) != nil {
		return nil, callbridge.Errorf(callbridge.EInvalid, "desktop id must be 1-128 characters without CR, LF or NUL")
	}
	if e.dir.tenants[tenant] == nil {
		return nil, callbridge.Errorf(callbridge.ENotFound, "tenant %q not found", tenant)
	}
	a := e.agents[callbridge.AgentKey{Tenant: tenant, Agent: agent}]
	if a == nil {
		return nil, callbridge.Errorf(callbridge.ENotFound, "agent %q not found", agent)
	}
	return a, nil
}

// DesktopAttached records that desktop desk of agent connected at now.
func (e *Engine) DesktopAttached(tenant callbridge.TenantID, agent callbridge.AgentID, desk string, now time.Time) (Output, error) {
	a, err := e.presenceAgent(tenant, agent, desk)
	if err != nil {
		return Output{}, err
	}
	e.begin(now)
	a.desks[desk] = e.now
	a.hadDesk, a.deskGoneAt, a.deskLost = true, time.Time{}, false
	return e.end(), nil
}

// DesktopHeartbeat records that desktop desk of agent showed life at now. A desktop the
// engine does not know (for example after a restart of the engine) is attached.
func (e *Engine) DesktopHeartbeat(tenant callbridge.TenantID, agent callbridge.AgentID, desk string, now time.Time) (Output, error) {
	a, err := e.presenceAgent(tenant, agent, desk)
	if err != nil {
		return Output{}, err
	}
	if _, ok := a.desks[desk]; !ok {
		return e.DesktopAttached(tenant, agent, desk, now)
	}
	e.begin(now)
	a.desks[desk] = e.now
	return e.end(), nil
}

// DesktopDetached records that desktop desk of agent went away at now. Detaching a desktop
// that is not attached changes nothing.
func (e *Engine) DesktopDetached(tenant callbridge.TenantID, agent callbridge.AgentID, desk string, now time.Time) (Output, error) {
	a, err := e.presenceAgent(tenant, agent, desk)
	if err != nil {
		return Output{}, err
	}
	e.begin(now)
	if _, ok := a.desks[desk]; ok {
		delete(a.desks, desk)
		if len(a.desks) == 0 {
			a.deskGoneAt = e.now
		}
		e.touched[a.key] = true // deskCheck at the end of the step: a ringing call
	}
	return e.end(), nil
}

// expireDesktops drops a's desktops not heard from for HeartbeatTimeout.
func (e *Engine) expireDesktops(a *agent) {
	if e.heartbeat <= 0 || len(a.desks) == 0 {
		return
	}
	var gone time.Time
	for d, last := range a.desks {
		if until := last.Add(e.heartbeat); !until.After(e.now) {
			delete(a.desks, d)
			if until.After(gone) {
				gone = until
			}
		}
	}
	if len(a.desks) == 0 && !gone.IsZero() {
		a.deskGoneAt = gone
	}
}

// deskCheck applies desktop_lost to a when its rule holds (see above).
func (e *Engine) deskCheck(a *agent) {
	if e.grace <= 0 || !a.hadDesk || len(a.desks) > 0 || a.deskLost || len(a.members) == 0 {
		return
	}
	if e.now.Sub(a.deskGoneAt) < e.grace && !e.deviceRinging(a.user.Device) {
		return
	}
	a.deskLost = true
	if !e.caps[callbridge.SwitchSetMemberState] {
		return
	}
	if !a.routableOnSwitch() {
		return // paused for a reason of their own already: nothing to add
	}
	sc := e.pauseCommand(a, nil, true, callbridge.ReasonDesktopLost)
	e.command(sc)
	e.applyMemberCommand(a, sc)
	a.wrapUntil, a.wrapPaused = time.Time{}, false
	a.cause = callbridge.AvailabilityCause{Source: "callbridge", Event: "desktop_lost", Time: e.now}
	e.touched[a.key] = true
}

// routableOnSwitch reports whether some membership of a would take calls: not paused, or
// paused only by callbridge for wrap-up.
func (a *agent) routableOnSwitch() bool {
	for _, m := range a.members {
		if !m.paused || m.reason == callbridge.ReasonWrapUp {
			return true
		}
	}
	return false
}

// deviceRinging reports whether a call is alerting at device d.
func (e *Engine) deviceRinging(d callbridge.DeviceID) bool {
	for pbx := range e.devCalls[d] {
		if c := e.calls[pbx]; c != nil && c.state(d) == callbridge.ConnAlerting {
			return true
		}
	}
	return false
}

// onDeviceState follows a device_state event of an agent's device: unavailable makes the
// agent not_ready device_unavailable (derived, nothing is paused on the switch, which does
// not offer calls to an unavailable device anyway); any other status ends that.
func (e *Engine) onDeviceState(ev callbridge.SwitchEvent) {
	key, ok := e.dir.devices[ev.Device]
	if !ok || (ev.Tenant != "" && ev.Tenant != key.Tenant) || ev.DeviceStatus == "" {
		return
	}
	a := e.agents[key]
	if a == nil {
		return
	}
	e.setDeviceStatus(a, ev.DeviceStatus)
}

func (e *Engine) setDeviceStatus(a *agent, st callbridge.DeviceStatus) {
	if a.devStatus == st {
		return
	}
	wasUnavailable := a.devStatus == callbridge.DeviceUnavailable
	a.devStatus = st
	if wasUnavailable || st == callbridge.DeviceUnavailable || a.devAt.IsZero() {
		a.devAt = e.now
	}
	e.touched[a.key] = true
}
