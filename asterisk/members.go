package asterisk

import (
	"slices"

	"github.com/callbridge/callbridge"
	"github.com/callbridge/callbridge/asterisk/ami"
)

// memberKey is one queue membership.
type memberKey struct {
	device callbridge.DeviceID
	queue  callbridge.QueueName
}

// memberState is what member_state reports about a membership.
type memberState struct {
	paused    bool
	reason    string
	iface     string
	stateFace string
}

// onMember handles QueueMemberStatus, QueueMemberAdded, QueueMemberPause,
// QueueMemberPenalty (present = true) and QueueMemberRemoved (present = false).
//
// Asterisk 22 sends them once per queue the interface is in (agent-state, telset-pause);
// QueueMemberStatus is device state and repeats on every call (README "QueueMemberStatus is
// device state"), so member_state is emitted only when LoggedOn, Paused or Reason of the
// membership changes. PausedReason is empty after an unpause (telset-pause).
func (t *Tracker) onMember(m ami.Message, present bool) {
	queue := callbridge.QueueName(m.Get("Queue"))
	iface := m.Get("Interface")
	if iface == "" {
		iface = m.Get("Location") // QueueStatus list items call it Location
	}
	si := m.Get("StateInterface")
	dev := interfaceDevice(iface, si)
	if dev == "" || queue == "" {
		t.log.Debug("asterisk: queue member event without interface or queue", "event", m.Event())
		return
	}
	key := memberKey{dev, queue}
	if !present {
		delete(t.members, key)
		t.emit(callbridge.SwitchEvent{Type: callbridge.SwitchMemberState, Time: t.ts, Device: dev, Queue: queue})
		return
	}
	st := memberState{paused: truthy(m.Get("Paused")), iface: iface, stateFace: si}
	if st.paused {
		st.reason = m.Get("PausedReason")
		if st.reason == "" {
			st.reason = m.Get("Reason")
		}
	}
	if old, ok := t.members[key]; ok && old.paused == st.paused && old.reason == st.reason {
		t.members[key] = st
		return
	}
	if len(t.members) >= 1<<16 {
		return
	}
	t.members[key] = st
	t.emit(callbridge.SwitchEvent{
		Type: callbridge.SwitchMemberState, Time: t.ts, Device: dev, Queue: queue,
		LoggedOn: true, Paused: st.paused, Reason: st.reason,
	})
}

// onDeviceState maps DeviceStateChange of a telset ("PJSIP/1001") to device_state. Queue
// pseudo-devices ("Queue:acme-support_pause_PJSIP/1002", "Queue:acme-support_avail"),
// Local channels, trunks (PJSIP/carrier, whose ONHOLD only says the caller is on hold) and
// other technologies are ignored.
func (t *Tracker) onDeviceState(m ami.Message) {
	d := m.Get("Device")
	dev := techDevice(d)
	if dev == "" || t.isTrunk(string(dev)) {
		return
	}
	t.emit(callbridge.SwitchEvent{
		Type: callbridge.SwitchDeviceState, Time: t.ts, Device: dev,
		DeviceStatus: deviceStatus(m.Get("State")),
	})
}

// MemberInterface returns the queue-member interface Asterisk last reported for device in
// queue ("" = any queue), e.g. "Local/2001@globex-agents/n", or "".
func (t *Tracker) MemberInterface(device callbridge.DeviceID, queue callbridge.QueueName) string {
	if queue != "" {
		return t.members[memberKey{device, queue}].iface
	}
	best := ""
	for k, st := range t.members {
		if k.device == device && st.iface != "" && (best == "" || st.iface < best) {
			best = st.iface
		}
	}
	return best
}

// MemberQueues returns the queues device is a member of, as last reported.
func (t *Tracker) MemberQueues(device callbridge.DeviceID) []callbridge.QueueName {
	var out []callbridge.QueueName
	for k := range t.members {
		if k.device == device {
			out = append(out, k.queue)
		}
	}
	slices.Sort(out)
	return out
}
