package engine

import (
	"cmp"
	"fmt"
	"maps"
	"slices"

	"github.com/callbridge/callbridge"
)

// onSnapshot reconciles the model with the switch's complete state (see the package
// documentation). A nil snapshot changes nothing.
func (e *Engine) onSnapshot(s *callbridge.Snapshot) {
	if s == nil {
		return
	}
	e.resync = true
	defer func() { e.resync = false }()
	present := map[string]bool{}
	for _, sc := range s.Calls {
		if sc.PBXCallID != "" {
			present[sc.PBXCallID] = true
		}
	}
	var stale []*call
	for pbx, c := range e.calls {
		if !present[pbx] {
			stale = append(stale, c)
		}
	}
	slices.SortFunc(stale, func(a, b *call) int {
		if c := a.m.StartedAt.Compare(b.m.StartedAt); c != 0 {
			return c
		}
		return cmp.Compare(a.m.ID, b.m.ID)
	})
	for _, c := range stale {
		e.clearCall(c, callbridge.CauseResync)
	}
	// Consulted calls first, so that a new consultation finds its call.
	ordered := slices.Clone(s.Calls)
	slices.SortStableFunc(ordered, func(a, b callbridge.SnapshotCall) int {
		return cmp.Compare(btoi(a.ConsultOf != ""), btoi(b.ConsultOf != ""))
	})
	for _, sc := range ordered {
		if sc.PBXCallID != "" {
			e.syncCall(sc)
		}
	}
	e.syncMembers(s.Members)
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// syncCall creates or updates one call from a snapshot.
func (e *Engine) syncCall(sc callbridge.SnapshotCall) {
	want := map[callbridge.DeviceID]bool{}
	var devices []callbridge.DeviceID
	var queued callbridge.DeviceID
	for _, p := range sc.Parties {
		switch {
		case p.State == callbridge.ConnQueued && p.Device != "" && !p.External:
			queued = p.Device
		case p.State.Active() && p.Device != "":
			want[p.Device] = true
			if !p.External {
				devices = append(devices, p.Device)
			}
		}
	}
	// The queue the call waits in is its queued party; SnapshotCall.Queue is only the queue
	// the call came through.
	c := e.calls[sc.PBXCallID]
	if c == nil {
		var consult *call
		if sc.ConsultOf != "" && sc.ConsultOf != sc.PBXCallID {
			consult = e.calls[sc.ConsultOf]
		}
		t, no := e.resolveTenant(sc.Tenant, sc.DNIS, devices, consult, nil)
		dir := sc.Direction
		if dir == "" {
			dir = callbridge.DirInbound
		}
		c = e.newCall(sc.PBXCallID, e.uniqueID(), t, no, dir)
		c.m.ANI, c.m.ANIName, c.m.DNIS = sc.ANI, sc.ANIName, sc.DNIS
		if consult != nil {
			c.m.ConsultOf = consult.m.ID
			maps.Copy(c.m.AttachedData, consult.m.AttachedData)
		}
		e.mergeSwitchData(c, sc.Data, false)
		if sc.Queue != "" {
			c.m.Queue, c.m.QueuedAt, c.customer = sc.Queue, e.now, true
		}
	} else {
		c.unrung = nil
		if sc.Tenant != "" {
			e.adoptFrom(c, sc.Tenant, "")
		}
		for _, d := range devices {
			e.adoptFrom(c, "", d)
		}
		if sc.Queue != "" && c.m.Queue == "" {
			c.m.Queue, c.customer = sc.Queue, true
		}
		if e.mergeSwitchData(c, sc.Data, false) {
			e.emit(c, callbridge.EventCallDataUpdated, callbridge.CallEvent{})
		}
		if q := c.queue(); q != "" && q != queued {
			e.dropQueue(c)
			e.emit(c, callbridge.EventCallConnectionCleared, callbridge.CallEvent{Device: q, Cause: callbridge.CauseResync})
		}
		for _, cn := range slices.Clone(c.m.Connections) {
			if cn.State != callbridge.ConnQueued && !want[cn.Device] {
				e.removeConn(c, cn.Device)
				e.emit(c, callbridge.EventCallConnectionCleared, callbridge.CallEvent{
					Device: cn.Device, Agent: cn.Agent, Cause: callbridge.CauseResync,
				})
			}
		}
	}
	// Outside parties first (silent in a resync), then the queue, then the devices.
	for _, ext := range []bool{true, false} {
		if !ext && queued != "" && c.queue() != queued {
			e.enqueue(c, callbridge.QueueName(queued))
		}
		for _, p := range sc.Parties {
			if p.State.Active() && p.Device != "" && p.External == ext {
				e.transition(c, p.Device, p.External, p.State, true)
			}
		}
	}
}

// syncMembers replaces every agent's memberships with the snapshot's.
func (e *Engine) syncMembers(ms []callbridge.SnapshotMember) {
	byDevice := map[callbridge.DeviceID]map[callbridge.QueueName]member{}
	for _, m := range ms {
		if m.Queue == "" {
			continue
		}
		if _, ok := e.dir.devices[m.Device]; !ok {
			continue
		}
		set := byDevice[m.Device]
		if set == nil {
			set = map[callbridge.QueueName]member{}
			byDevice[m.Device] = set
		}
		mm := member{paused: m.Paused}
		if m.Paused {
			mm.reason = m.Reason
		}
		if _, ok := set[m.Queue]; !ok && len(set) >= e.lim.memberships {
			e.warn(nil, fmt.Sprintf("snapshot: device %s is a member of more than %d queues, the limit: queue %s is ignored", m.Device, e.lim.memberships, m.Queue))
			continue
		}
		set[m.Queue] = mm
		if key, ok := e.dir.devices[m.Device]; ok && m.Status != "" && m.Status != callbridge.DeviceUnknown {
			if a := e.agents[key]; a != nil {
				e.setDeviceStatus(a, m.Status)
			}
		}
	}
	for _, key := range sortedKeys(e.agents, compareAgentKey) {
		a := e.agents[key]
		set := byDevice[a.user.Device]
		if set == nil {
			set = map[callbridge.QueueName]member{}
		}
		if !maps.Equal(a.members, set) {
			a.members = set
			a.cause = callbridge.AvailabilityCause{Source: "switch", Event: "snapshot", Time: e.now}
			e.touched[key] = true
		}
		e.healWrapPauses(a)
	}
}
