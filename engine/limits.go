package engine

import (
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/callbridge/callbridge"
)

// Limits that keep every event storable (issue 9 item 6): an event holds a whole call, so a
// call that grows without bound would at last make an event larger than the bus takes (NATS:
// 1 MiB by default), after which its events are lost. The engine therefore bounds what a call
// and an agent can hold, and MaxEventBytes computes the largest event under those bounds so
// that the node can check at start that it fits the bus.
//
// Attached data of one call (Config.MaxDataKeys, MaxDataKeyBytes, MaxDataValueBytes,
// MaxDataBytes; the key TruncatedKey is not counted):
//
//   - a command (update_call_data, make_call, single_step_transfer, consultation_call, from a
//     desktop or REST) whose data would pass a limit is refused with an invalid error that
//     names the limit, and nothing of it is applied;
//   - switch variables (IVR data) cannot be refused: they are applied in key order, a key
//     longer than MaxDataKeyBytes is dropped, a value longer than MaxDataValueBytes is cut
//     (at a UTF-8 boundary), a key that would pass MaxDataKeys or MaxDataBytes is dropped;
//     the call then carries TruncatedKey = "true" (so call.data_updated, or the next event of
//     the call, shows it) and the step's Output has one Warning. Data merged into a call by
//     the engine itself (a transfer's data at Apply, a consultation's keys coming back with a
//     completed transfer) is capped the same way.
//
// Parties of one call (Config.MaxConnections): a device that would join a call that has that
// many already is not modelled (Warning); a queue's connection comes on top.
//
// Queue memberships of one agent (Config.MaxMemberships): a membership beyond it is ignored
// (Warning).
//
// Text from the switch (MaxFieldBytes): an event whose call, leg, device, queue or
// correlation id, tenant or transferring device is longer is dropped (Warning); a longer ANI,
// caller name, DNIS, direction, cause, pause reason, device status or transfer target is cut.
// The same holds for every call, party and membership of a snapshot.

// Defaults of the limits (Config fields left 0).
const (
	DefaultMaxDataKeys       = 64
	DefaultMaxDataKeyBytes   = 64
	DefaultMaxDataValueBytes = 4096
	DefaultMaxDataBytes      = 32 << 10
	DefaultMaxConnections    = 64
	DefaultMaxMemberships    = 128
)

// MaxFieldBytes bounds every text of a switch event (see above).
const MaxFieldBytes = 256

// TruncatedKey is the attached-data key the engine sets to "true" on a call whose switch
// variables it cut to the limits. Commands may not set it; switch variables of that name are
// ignored.
const TruncatedKey = "cb_truncated"

// maxCallIDBytes bounds a CallID: the event log takes tokens of at most 64 characters, and
// reserveID may add "-" and a counter to an id the generator repeated.
const maxCallIDBytes = 64 + 1 + 19

// Warning is something an input brought that the engine could not take whole because of a
// limit (see limits.go). The runtime logs each one; warnings change nothing by themselves.
type Warning struct {
	Tenant    callbridge.TenantID
	CallID    callbridge.CallID // the call concerned, if any
	PBXCallID string
	Message   string
}

// limits are the effective limits of an engine.
type limits struct {
	keys, keyBytes, valueBytes, total int
	conns, memberships                int
}

func limitsOf(cfg Config) limits {
	def := func(v, d int) int {
		if v <= 0 {
			return d
		}
		return v
	}
	return limits{
		keys:        def(cfg.MaxDataKeys, DefaultMaxDataKeys),
		keyBytes:    def(cfg.MaxDataKeyBytes, DefaultMaxDataKeyBytes),
		valueBytes:  def(cfg.MaxDataValueBytes, DefaultMaxDataValueBytes),
		total:       def(cfg.MaxDataBytes, DefaultMaxDataBytes),
		conns:       def(cfg.MaxConnections, DefaultMaxConnections),
		memberships: def(cfg.MaxMemberships, DefaultMaxMemberships),
	}
}

// dataSize returns the number of keys and the bytes of keys and values of m, without
// TruncatedKey.
func dataSize(m map[string]string) (keys, bytes int) {
	for k, v := range m {
		if k != TruncatedKey {
			keys++
			bytes += len(k) + len(v)
		}
	}
	return keys, bytes
}

// checkCallData returns an invalid error naming the limit when merging data (an empty value
// deletes a key) into have (nil: a new call) would pass a limit of call id's attached data
// ("the new call" when id is empty); nil when it fits.
func (l limits) checkCallData(id callbridge.CallID, have, data map[string]string) error {
	what := "the new call"
	if id != "" {
		what = "call " + string(id)
	}
	keys, size := dataSize(have)
	for _, k := range sortedKeys(data, compareString) {
		v := data[k]
		switch {
		case len(k) > l.keyBytes:
			return callbridge.Errorf(callbridge.EInvalid, "attached_data key %q is longer than %d bytes, the limit per key", k, l.keyBytes)
		case len(v) > l.valueBytes:
			return callbridge.Errorf(callbridge.EInvalid, "attached_data %s is longer than %d bytes, the limit per value", k, l.valueBytes)
		}
		old, ok := have[k]
		if ok {
			keys--
			size -= len(k) + len(old)
		}
		if v != "" {
			keys++
			size += len(k) + len(v)
		}
	}
	switch {
	case keys > l.keys:
		return callbridge.Errorf(callbridge.EInvalid, "attached_data: %s would have %d keys, over the limit of %d keys per call", what, keys, l.keys)
	case size > l.total:
		return callbridge.Errorf(callbridge.EInvalid, "attached_data: %s would hold %d bytes of keys and values, over the limit of %d bytes per call", what, size, l.total)
	}
	return nil
}

// fit decides one change k=v (v not empty) of attached data have: the value to set (cut to
// valueBytes), whether anything was cut, and whether it may be set at all.
func (l limits) fit(have map[string]string, k, v string) (string, bool, bool) {
	if len(k) > l.keyBytes {
		return "", true, false
	}
	cut := false
	if len(v) > l.valueBytes {
		v, cut = cutUTF8(v, l.valueBytes), true
	}
	keys, size := dataSize(have)
	if old, ok := have[k]; ok {
		keys--
		size -= len(k) + len(old)
	}
	if keys+1 > l.keys || size+len(k)+len(v) > l.total {
		return "", true, false
	}
	return v, cut, true
}

// cutUTF8 returns s cut to at most n bytes, not inside a UTF-8 sequence.
func cutUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	i := n
	for i > 0 && i > n-utf8.UTFMax && !utf8.RuneStart(s[i]) {
		i--
	}
	if !utf8.RuneStart(s[i]) {
		i = n // not UTF-8 anyway
	}
	return s[:i]
}

// mergeCapped applies data to c's attached data in key order within the limits: apply sets
// (or, for an empty value, deletes) one key and reports whether the data changed. What does
// not fit is dropped or cut; then c gets TruncatedKey and the step a Warning naming source.
// It reports whether the data changed.
func (e *Engine) mergeCapped(c *call, data map[string]string, source string, apply func(k, v string) bool) bool {
	changed, cut := false, 0
	for _, k := range sortedKeys(data, compareString) {
		v := data[k]
		if k == TruncatedKey {
			continue
		}
		if v != "" {
			var shortened, ok bool
			if v, shortened, ok = e.lim.fit(c.m.AttachedData, k, v); shortened {
				cut++
			}
			if !ok {
				continue
			}
		}
		changed = apply(k, v) || changed
	}
	if cut == 0 {
		return changed
	}
	if c.m.AttachedData[TruncatedKey] != "true" {
		c.setData(TruncatedKey, "true", false)
		changed = true
	}
	e.warn(c, fmt.Sprintf("%s: %d attached-data keys or values of call %s dropped or cut to the limits (%d keys, %d bytes per key, %d per value, %d per call)",
		source, cut, c.m.ID, e.lim.keys, e.lim.keyBytes, e.lim.valueBytes, e.lim.total))
	return changed
}

// warn adds a Warning about call c (nil: none) to the step's output.
func (e *Engine) warn(c *call, msg string) {
	w := Warning{Message: msg}
	if c != nil {
		w.Tenant, w.CallID, w.PBXCallID = c.m.Tenant, c.m.ID, c.m.PBXCallID
	}
	e.out.Warnings = append(e.out.Warnings, w)
}

// roomFor reports whether device d may have a connection to c: it has one already, or c has
// fewer than MaxConnections. When not, the step gets a Warning.
func (e *Engine) roomFor(c *call, d callbridge.DeviceID) bool {
	if c.idx(d) >= 0 || len(c.m.Connections) < e.lim.conns {
		return true
	}
	e.warn(c, fmt.Sprintf("call %s has %d parties, the limit: device %s is not added", c.m.ID, e.lim.conns, d))
	return false
}

// roomForMember reports whether a may be a member of queue q: it is already, or has fewer
// than MaxMemberships memberships. When not, the step gets a Warning.
func (e *Engine) roomForMember(a *agent, q callbridge.QueueName) bool {
	if _, ok := a.members[q]; ok || len(a.members) < e.lim.memberships {
		return true
	}
	e.warn(nil, fmt.Sprintf("agent %s is a member of %d queues, the limit: queue %s is ignored", a.key, e.lim.memberships, q))
	return false
}

// admit applies MaxFieldBytes to a switch event (see the top of limits.go): it reports
// false, with a Warning, for an event to drop, and cuts descriptive texts. The snapshot is
// copied before anything in it changes.
func (e *Engine) admit(ev *callbridge.SwitchEvent) bool {
	if f := longID(ev.PBXCallID, ev.Leg, string(ev.Device), string(ev.Queue), ev.CorrelationID, ev.ConsultOf,
		ev.ConsultPBXCallID, string(ev.TransferringDevice), string(ev.Tenant)); f != "" {
		e.warn(nil, fmt.Sprintf("switch event %s dropped: an id is longer than %d bytes (%.40q…)", ev.Type, MaxFieldBytes, f))
		return false
	}
	ev.ANI, ev.ANIName, ev.DNIS = cutUTF8(ev.ANI, MaxFieldBytes), cutUTF8(ev.ANIName, MaxFieldBytes), cutUTF8(ev.DNIS, MaxFieldBytes)
	ev.Direction = callbridge.Direction(cutUTF8(string(ev.Direction), MaxFieldBytes))
	ev.Cause = callbridge.Cause(cutUTF8(string(ev.Cause), MaxFieldBytes))
	ev.Reason = cutUTF8(ev.Reason, MaxFieldBytes)
	ev.DeviceStatus = callbridge.DeviceStatus(cutUTF8(string(ev.DeviceStatus), MaxFieldBytes))
	ev.TransferredTo = callbridge.DeviceID(cutUTF8(string(ev.TransferredTo), MaxFieldBytes))
	if ev.Snapshot != nil {
		ev.Snapshot = e.admitSnapshot(ev.Snapshot)
	}
	return true
}

// admitSnapshot returns s without the calls, parties and memberships whose ids are too long
// and with descriptive texts cut (s itself when nothing changes).
func (e *Engine) admitSnapshot(s *callbridge.Snapshot) *callbridge.Snapshot {
	out := &callbridge.Snapshot{Calls: make([]callbridge.SnapshotCall, 0, len(s.Calls)), Members: make([]callbridge.SnapshotMember, 0, len(s.Members))}
	changed := false
	for _, sc := range s.Calls {
		if f := longID(sc.PBXCallID, string(sc.Tenant), string(sc.Queue), sc.ConsultOf); f != "" {
			e.warn(nil, fmt.Sprintf("snapshot: call dropped: an id is longer than %d bytes (%.40q…)", MaxFieldBytes, f))
			changed = true
			continue
		}
		c := sc
		c.ANI, c.ANIName, c.DNIS = cutUTF8(c.ANI, MaxFieldBytes), cutUTF8(c.ANIName, MaxFieldBytes), cutUTF8(c.DNIS, MaxFieldBytes)
		c.Direction = callbridge.Direction(cutUTF8(string(c.Direction), MaxFieldBytes))
		c.Parties = make([]callbridge.SnapshotParty, 0, len(sc.Parties))
		for _, p := range sc.Parties {
			if f := longID(string(p.Device), p.Leg); f != "" {
				e.warn(nil, fmt.Sprintf("snapshot: party of call %s dropped: an id is longer than %d bytes (%.40q…)", sc.PBXCallID, MaxFieldBytes, f))
				changed = true
				continue
			}
			c.Parties = append(c.Parties, p)
		}
		changed = changed || c.ANI != sc.ANI || c.ANIName != sc.ANIName || c.DNIS != sc.DNIS || c.Direction != sc.Direction
		out.Calls = append(out.Calls, c)
	}
	for _, m := range s.Members {
		if f := longID(string(m.Device), string(m.Queue)); f != "" {
			e.warn(nil, fmt.Sprintf("snapshot: membership dropped: an id is longer than %d bytes (%.40q…)", MaxFieldBytes, f))
			changed = true
			continue
		}
		mm := m
		mm.Reason, mm.Status = cutUTF8(m.Reason, MaxFieldBytes), callbridge.DeviceStatus(cutUTF8(string(m.Status), MaxFieldBytes))
		changed = changed || mm != m
		out.Members = append(out.Members, mm)
	}
	if !changed {
		return s
	}
	return out
}

// longID returns the first of ids longer than MaxFieldBytes, or "".
func longID(ids ...string) string {
	for _, id := range ids {
		if len(id) > MaxFieldBytes {
			return id
		}
	}
	return ""
}

// MaxEventBytes returns the largest JSON encoding (encoding/json, as the event log writes a
// callbridge.Event) that an event of an engine configured with cfg can have: a call event
// holding a call at every limit (attached data, parties, texts from the switch at
// MaxFieldBytes, disposition notes at their limit) or an agent event at MaxMemberships with
// the longest name, device, queue and reason of cfg.Directory. Every string is counted at six
// bytes per byte (encoding/json writes a control character, an invalid UTF-8 byte, <, > and
// & as \u00XX or \ufffd). The event log's own envelope (headers, subject) is not included.
// The node checks at start that this fits the bus's maximum payload (NATS: 1 MiB by
// default); after Reload the directory's part may change.
func MaxEventBytes(cfg Config) int {
	l := limitsOf(cfg)
	return max(encodedLen(worstCallEvent(l)), encodedLen(worstAgentEvent(l, cfg.Directory)))
}

// worstCallEvent is a call event at every limit (see MaxEventBytes).
func worstCallEvent(l limits) callbridge.Event {
	ce := &callbridge.CallEvent{}
	worstFill(reflect.ValueOf(ce).Elem(), MaxFieldBytes)
	ce.ID, ce.ConsultOf, ce.ConsultCallID = worstID(), worstID(), worstID()
	ce.Tenant, ce.Agent = callbridge.TenantID(token()), callbridge.AgentID(token())
	ce.Disposition = token()
	ce.Notes = strings.Repeat("<", maxDispositionNotes)
	ce.AttachedData = worstData(l)
	ce.Connections = make([]callbridge.Connection, l.conns+1) // and a queue's connection
	for i := range ce.Connections {
		cn := &ce.Connections[i]
		worstFill(reflect.ValueOf(cn).Elem(), MaxFieldBytes)
		cn.Agent, cn.State = callbridge.AgentID(token()), callbridge.ConnectionState(escaping(longestConst))
	}
	ce.Direction = callbridge.Direction(escaping(MaxFieldBytes))
	return callbridge.Event{Seq: math.MaxUint64, Type: callbridge.EventType(escaping(longestConst)), Time: maxTime(), Tenant: ce.Tenant, Data: ce}
}

// worstAgentEvent is an agent event at every limit of l and d (see MaxEventBytes).
func worstAgentEvent(l limits, d callbridge.Directory) callbridge.Event {
	name, device, queue, reason := 0, 0, MaxFieldBytes, MaxFieldBytes
	for _, t := range d.Tenants {
		for _, u := range t.Users {
			name, device = max(name, len(u.Name)), max(device, len(u.Device))
		}
		for _, q := range t.Queues {
			queue = max(queue, len(q.Name))
		}
		for _, r := range t.ReasonCodes {
			reason = max(reason, len(r))
		}
	}
	a := &callbridge.Agent{}
	worstFill(reflect.ValueOf(a).Elem(), MaxFieldBytes)
	a.ID, a.Tenant = callbridge.AgentID(token()), callbridge.TenantID(token())
	a.Name, a.Device = escaping(name), callbridge.DeviceID(escaping(device))
	a.Reason, a.NextReason = escaping(reason), escaping(reason)
	st := callbridge.AgentState(escaping(longestConst))
	a.State, a.PreviousState, a.NextState = st, st, st
	a.Queues = make([]callbridge.QueueName, l.memberships)
	for i := range a.Queues {
		a.Queues[i] = callbridge.QueueName(escaping(queue))
	}
	return callbridge.Event{Seq: math.MaxUint64, Type: callbridge.EventType(escaping(longestConst)), Time: maxTime(), Tenant: a.Tenant, Data: a}
}

// worstData is attached data at the limits of l, every byte one that JSON escapes, plus
// TruncatedKey: as many keys as allowed (each costs quotes, a colon and a comma), sharing
// the total bytes evenly.
func worstData(l limits) map[string]string {
	data := map[string]string{TruncatedKey: "true"}
	n := min(l.keys, l.total/2)
	need := 1 // key bytes that tell n keys apart
	for p := 31; p < n; p *= 31 {
		need++
	}
	for i := range n {
		size := min(l.total/n+btoi(i < l.total%n), l.keyBytes+l.valueBytes)
		kn := max(min(l.keyBytes, size-1), min(need, l.keyBytes))
		data[distinctKey(i, kn)] = escaping(min(l.valueBytes, size-kn))
	}
	return data
}

// distinctKey is the i-th of distinct keys of n bytes (n ≥ 1) that JSON escapes.
func distinctKey(i, n int) string {
	b := []byte(escaping(n))
	for j := 0; j < len(b) && i > 0; j++ {
		b[j] = byte(1 + i%31)
		i /= 31
	}
	return string(b)
}

// longestConst bounds the constant names in events (event types, states).
const longestConst = 32

// escaping is n bytes that encoding/json writes as six each.
func escaping(n int) string { return strings.Repeat("\x01", max(n, 0)) }

// token is the longest token (tenant, agent, disposition).
func token() string { return strings.Repeat("x", 64) }

func worstID() callbridge.CallID { return callbridge.CallID(escaping(maxCallIDBytes)) }

// maxTime is the latest time with the longest RFC 3339 form the engine writes (UTC).
func maxTime() time.Time { return time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC) }

// worstFill sets every string of v to n escaping bytes, every bool to true and every time to
// maxTime (fields a new version of the call or agent adds are then counted too).
func worstFill(v reflect.Value, n int) {
	if v.Type() == reflect.TypeFor[time.Time]() {
		v.Set(reflect.ValueOf(maxTime()))
		return
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString(escaping(n))
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int, reflect.Int64:
		v.SetInt(math.MinInt64)
	case reflect.Int32:
		v.SetInt(math.MinInt32)
	case reflect.Uint, reflect.Uint64:
		v.SetUint(math.MaxUint64)
	case reflect.Struct:
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				worstFill(v.Field(i), n)
			}
		}
	}
}

func encodedLen(ev callbridge.Event) int {
	b, err := json.Marshal(ev)
	if err != nil {
		panic("engine: MaxEventBytes: " + err.Error()) // only strings, times and numbers
	}
	return len(b)
}

// MaxAudience returns the most agents one event of an engine configured with cfg can name in
// callbridge.Event.Audience, and the bytes of their ids. A call event's audience is the agents
// on the call after the change and those who left it during the same input: agents of its
// tenant, at most MaxConnections on it and MaxConnections that were on it when the input
// came. So the bound is the smaller of the largest tenant of cfg.Directory (by agents, and by
// the bytes of their user names) and twice MaxConnections agents of 64 bytes. An event log
// that carries the audience beside the event (a header listing the ids) adds at most bytes
// plus one separator per agent to MaxEventBytes. After Reload the directory's bound may
// change.
func MaxAudience(cfg Config) (agents, bytes int) {
	for _, t := range cfg.Directory.Tenants {
		n, b := 0, 0
		for _, u := range t.Users {
			if u.Device != "" {
				n++
				b += len(u.Username)
			}
		}
		agents, bytes = max(agents, n), max(bytes, b)
	}
	conns := 2 * limitsOf(cfg).conns
	return min(agents, conns), min(bytes, conns*64)
}
