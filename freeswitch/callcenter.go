package freeswitch

import (
	"slices"
	"strings"

	"github.com/callbridge/callbridge"
	"github.com/callbridge/callbridge/freeswitch/esl"
)

// mod_callcenter agent statuses and states (fs-agent-state; anything else is refused with
// "-ERR Invalid Agent Status!" / "-ERR Invalid Agent State!").
const (
	StatusAvailable         = "Available"
	StatusAvailableOnDemand = "Available (On Demand)"
	StatusOnBreak           = "On Break"
	StatusLoggedOut         = "Logged Out"

	StateWaiting   = "Waiting"
	StateReceiving = "Receiving"
	StateInCall    = "In a queue call"
	StateIdle      = "Idle"
)

// agent is one mod_callcenter agent ("1001@default").
type agent struct {
	name   string
	device callbridge.DeviceID
	status string
	state  string
	queues []callbridge.QueueName // its tiers
	reason string                 // not_ready reason callbridge asked for with its last On Break
	// As last emitted.
	emitted bool
	on      bool
	paused  bool
	why     string
}

// agentDevice returns the device of mod_callcenter agent name: the user of its contact
// ("[leg_timeout=15]user/1001" → 1001, callcenter.conf.xml) when the contact is known, else
// the name before "@" ("1001@default" → 1001).
func (t *Tracker) agentDevice(name string) callbridge.DeviceID {
	if a := t.agents[name]; a != nil && a.device != "" {
		return a.device
	}
	d, _, _ := strings.Cut(name, "@")
	return callbridge.DeviceID(d)
}

// contactUser returns the user a mod_callcenter contact dials ("[leg_timeout=15]user/1001"
// → "1001"), or "".
func contactUser(contact string) string {
	c := strings.TrimSpace(contact)
	for len(c) > 0 && (c[0] == '[' || c[0] == '{') {
		end := byte(']')
		if c[0] == '{' {
			end = '}'
		}
		i := strings.IndexByte(c, end)
		if i < 0 {
			return ""
		}
		c = c[i+1:]
	}
	rest, ok := strings.CutPrefix(c, "user/")
	if !ok {
		return ""
	}
	u, _, _ := strings.Cut(rest, "@")
	return u
}

func (t *Tracker) agentFor(name string) *agent {
	a := t.agents[name]
	if a == nil {
		a = &agent{name: name}
		t.agents[name] = a
	}
	if a.device == "" {
		d, _, _ := strings.Cut(name, "@")
		a.device = callbridge.DeviceID(d)
	}
	return a
}

// AgentName returns the mod_callcenter agent whose device is d, when one is known (from a
// resync listing or an event), else "".
func (t *Tracker) AgentName(d callbridge.DeviceID) string {
	var names []string
	for name, a := range t.agents {
		if a.device == d {
			names = append(names, name)
		}
	}
	if len(names) == 0 {
		return ""
	}
	slices.Sort(names)
	return names[0]
}

// AgentStatus returns the status and state last seen for agent name.
func (t *Tracker) AgentStatus(name string) (status, state string) {
	if a := t.agents[name]; a != nil {
		return a.status, a.state
	}
	return "", ""
}

// SetAgentReason records the not_ready reason of the On Break that callbridge is about to set
// for agent name, so that mod_callcenter's agent-status-change (which has no reason) reports
// it; and the queues the agent is logged on to when no tier listing named them. It returns the
// reason recorded before.
func (t *Tracker) SetAgentReason(name, reason string, queues []callbridge.QueueName) (old string) {
	a := t.agentFor(name)
	old, a.reason = a.reason, reason
	if len(a.queues) == 0 && len(queues) > 0 {
		a.queues = slices.Clone(queues)
	}
	return old
}

// onCallcenter handles mod_callcenter's CUSTOM callcenter::info events (README "Queue
// lifecycle" and "Agent state"), by CC-Action.
func (t *Tracker) onCallcenter(ev *esl.Event) {
	action := ev.Get("CC-Action")
	switch action {
	case "agent-status-change", "agent-status-get":
		t.onAgent(ev.Get("CC-Agent"), ev.Get("CC-Agent-Status"), "")
		return
	case "agent-state-change", "agent-state-get":
		t.onAgent(ev.Get("CC-Agent"), "", ev.Get("CC-Agent-State"))
		return
	case "agent-del":
		if name := ev.Get("CC-Agent"); name != "" {
			t.onAgent(name, StatusLoggedOut, "")
			delete(t.agents, name)
		}
		return
	}
	l := t.legs[ev.Get("CC-Member-Session-UUID")]
	if l == nil || l.conv == nil || l.conv.cleared {
		return
	}
	cv := l.conv
	if u := ev.Get("Unique-ID"); u == l.uuid {
		t.refreshData(l, ev) // member events carry the caller leg's channel data
	}
	switch action {
	case "member-queue-start":
		q := callbridge.QueueName(ev.Get("CC-Queue"))
		if q == "" || (cv.inQueue && cv.queue == q) {
			return
		}
		cv.queue, cv.inQueue = q, true
		t.callEvent(cv, callbridge.SwitchQueued).Queue = q
	case "bridge-agent-start":
		if cv.inQueue {
			t.dequeue(cv, "")
		}
	case "member-queue-end":
		// CC-Cause Terminated after a bridge; Cancel with CC-Cancel-Reason BREAK_OUT when the
		// caller hung up (the abandon, fs-inbound-abandon), TIMEOUT / NO_AGENT_TIMEOUT /
		// EXIT_WITH_KEY when the queue let the caller go on in the dialplan.
		if !cv.inQueue {
			return
		}
		var cause callbridge.Cause
		if ev.Get("CC-Cause") == "Cancel" && ev.Get("CC-Cancel-Reason") == "BREAK_OUT" {
			cause = callbridge.CauseAbandoned
			cv.abandoned = true
		}
		t.dequeue(cv, cause)
	}
}

// onAgent applies a status or state of mod_callcenter agent name and emits member_state when
// what callbridge shows changes. Status and state are per agent, not per queue (README "Agent
// state"): logged on unless "Logged Out"; not routable (paused) when "On Break" or in state
// "Idle"; "Receiving" and "In a queue call" follow the calls, which the engine sees itself.
func (t *Tracker) onAgent(name, status, state string) {
	if name == "" {
		return
	}
	a := t.agentFor(name)
	if status != "" {
		a.status = status
		if status != StatusOnBreak {
			a.reason = ""
		}
	}
	if state != "" {
		a.state = state
	}
	t.agentChanged(a, false)
}

// agentChanged emits the member_state events of a when its presentation changed (always with
// force).
func (t *Tracker) agentChanged(a *agent, force bool) {
	if a.status == "" {
		return // logged on or not is unknown until the status is seen
	}
	on, paused, why := t.present(a)
	if !force && a.emitted && on == a.on && paused == a.paused && why == a.why {
		return
	}
	a.emitted, a.on, a.paused, a.why = true, on, paused, why
	base := callbridge.SwitchEvent{Type: callbridge.SwitchMemberState, Time: t.ts, Device: a.device}
	if !on {
		t.emit(base)
		return
	}
	if len(a.queues) == 0 {
		e := base
		e.LoggedOn, e.Paused, e.Reason = true, paused, why
		t.emit(e)
		return
	}
	for _, q := range a.queues {
		e := base
		e.Queue, e.LoggedOn, e.Paused, e.Reason = q, true, paused, why
		t.emit(e)
	}
}

// present is what callbridge shows of a: logged on, paused, and the pause reason.
func (t *Tracker) present(a *agent) (on, paused bool, why string) {
	on = a.status != "" && !strings.EqualFold(a.status, StatusLoggedOut)
	switch {
	case strings.EqualFold(a.status, StatusOnBreak):
		paused, why = true, a.reason
		if why == "" {
			why = t.breakWhy
		}
	case strings.EqualFold(a.state, StateIdle):
		paused, why = true, t.idleWhy
	}
	if !on {
		paused, why = false, ""
	}
	return on, paused, why
}
