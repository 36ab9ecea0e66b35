package engine_test

import (
	"cmp"
	"encoding/json"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/callbridge/callbridge"
	"github.com/callbridge/callbridge/engine"
)

// dataBytes is the size the limits count: keys and values, without engine.TruncatedKey.
func dataBytes(m map[string]string) (keys, bytes int) {
	for k, v := range m {
		if k != engine.TruncatedKey {
			keys++
			bytes += len(k) + len(v)
		}
	}
	return keys, bytes
}

// paddedKey is a key of n bytes ending in i.
func paddedKey(i, n int) string {
	s := fmt.Sprintf("k%d_", i)
	return s + strings.Repeat("x", n-len(s))
}

// TestDataCapRefusesTheUpdateThatPassesIt: a call's attached data holds at most
// DefaultMaxDataBytes of keys and values. Thirty updates of 1064 bytes fit, the 31st would
// pass the limit and is refused with an invalid error naming it, changing nothing; the
// call's events keep flowing: a smaller update succeeds, the call is held and clears
// normally.
func TestDataCapRefusesTheUpdateThatPassesIt(t *testing.T) {
	f := newFixture(t)
	f.logOn("1001", "acme-support")
	c := f.answeredCall("p1", "1001")
	_, have := dataBytes(c.AttachedData)
	value := strings.Repeat("v", 1024)
	update := func(i int, v string) callbridge.Command {
		return callbridge.Command{Name: callbridge.CmdUpdateCallData, Tenant: acme, Agent: "alice", Role: callbridge.RoleAgent,
			CallID: c.ID, AttachedData: map[string]string{paddedKey(i, 40): v}, Time: f.now}
	}
	if have+30*1064 > engine.DefaultMaxDataBytes || have+31*1064 <= engine.DefaultMaxDataBytes {
		t.Fatalf("the test's sizes do not straddle the limit: %d bytes already", have)
	}
	for i := 1; i <= 30; i++ {
		_, out := f.mustDo(update(i, value))
		ev := only(t, out, callbridge.EventCallDataUpdated)
		if got := callData(ev).AttachedData[paddedKey(i, 40)]; got != value {
			t.Fatalf("update %d not in call.data_updated", i)
		}
	}
	before := state(f.e)
	_, _, err := f.do(update(31, value))
	wantCode(t, err, callbridge.EInvalid)
	if msg := callbridge.ErrorMessage(err); !strings.Contains(msg, "32768 bytes per call") || !strings.Contains(msg, string(c.ID)) {
		t.Fatalf("refusal does not name the limit: %q", msg)
	}
	sameState(t, before, state(f.e))

	_, out := f.mustDo(update(31, "small"))
	if d := callData(only(t, out, callbridge.EventCallDataUpdated)).AttachedData; d[paddedKey(31, 40)] != "small" || d[engine.TruncatedKey] != "" {
		t.Fatalf("the update within the limit: %v", d)
	}
	out = f.ev(sev(callbridge.SwitchHeld, "p1", "1001"))
	only(t, out, callbridge.EventCallHeld)
	out = f.ev(cleared("p1"))
	cl := callData(only(t, out, callbridge.EventCallCleared))
	if k, b := dataBytes(cl.AttachedData); cl.Cause != callbridge.CauseNormal || k != len(c.AttachedData)+31 || b > engine.DefaultMaxDataBytes {
		t.Fatalf("call.cleared: cause %s, %d keys, %d bytes", cl.Cause, k, b)
	}
}

// TestDataCapCommands: every command that brings data checks the call's limits the same
// way, all or nothing: the key count, a key or value over the configured sizes, the new call
// of make_call, the copy a consultation gets, a transfer's data; the reserved
// engine.TruncatedKey.
func TestDataCapCommands(t *testing.T) {
	e, err := engine.New(engine.Config{Directory: testDirectory(), Capabilities: allCaps(), NewCallID: idGen(), Now: t0,
		MaxDataKeys: 8, MaxDataKeyBytes: 16, MaxDataValueBytes: 100, MaxDataBytes: 400})
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{t: t, e: e, now: t0}
	f.logOn("1001", "acme-support")
	f.logOn("1002", "acme-support")
	c := f.answeredCall("p1", "1001") // IVR_ACCOUNT, IVR_REASON: 2 keys, 33 bytes
	data := func(n, size int) map[string]string {
		m := map[string]string{}
		for i := range n {
			m[fmt.Sprint("d", i)] = strings.Repeat("v", size)
		}
		return m
	}
	cmd := func(name callbridge.CommandName, d map[string]string) callbridge.Command {
		return callbridge.Command{Name: name, Tenant: acme, Agent: "alice", Role: callbridge.RoleAgent, CallID: c.ID, To: "bob", AttachedData: d, Time: f.now}
	}
	cases := []struct {
		name string
		cmd  callbridge.Command
		want string
	}{
		{"keys", cmd(callbridge.CmdUpdateCallData, data(7, 1)), "9 keys, over the limit of 8 keys per call"},
		{"key size", cmd(callbridge.CmdUpdateCallData, map[string]string{strings.Repeat("k", 17): "v"}), "longer than 16 bytes, the limit per key"},
		{"value size", cmd(callbridge.CmdUpdateCallData, map[string]string{"k": strings.Repeat("v", 101)}), "longer than 100 bytes, the limit per value"},
		{"total", cmd(callbridge.CmdUpdateCallData, data(4, 95)), "over the limit of 400 bytes per call"},
		{"transfer", cmd(callbridge.CmdSingleStepTransfer, data(4, 95)), "over the limit of 400 bytes per call"},
		{"consultation", cmd(callbridge.CmdConsultationCall, data(4, 95)), "over the limit of 400 bytes per call"},
		{"make_call", callbridge.Command{Name: callbridge.CmdMakeCall, Tenant: acme, Agent: "bob", Role: callbridge.RoleAgent, To: "15557654321",
			AttachedData: data(5, 90), Time: f.now}, "the new call would hold"},
		{"reserved key", cmd(callbridge.CmdUpdateCallData, map[string]string{engine.TruncatedKey: "false"}), "reserved"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := state(f.e)
			_, err := f.e.Plan(tc.cmd)
			wantCode(t, err, callbridge.EInvalid)
			if !strings.Contains(callbridge.ErrorMessage(err), tc.want) {
				t.Fatalf("error %q does not say %q", callbridge.ErrorMessage(err), tc.want)
			}
			sameState(t, before, state(f.e))
		})
	}
	// Deleting keys makes room: all or nothing counts the result.
	f.mustDo(cmd(callbridge.CmdUpdateCallData, map[string]string{"IVR_ACCOUNT": "", "IVR_REASON": "", "d0": strings.Repeat("v", 95), "d1": strings.Repeat("v", 95),
		"d2": strings.Repeat("v", 95), "d3": strings.Repeat("v", 95)}))
	if k, b := dataBytes(f.call(acme, "p1").AttachedData); k != 4 || b != 4*97 {
		t.Fatalf("after the update: %d keys, %d bytes", k, b)
	}
}

// manyVariables is n switch variables: keys IVR_Vnnn and values of size bytes.
func manyVariables(n, size int) map[string]string {
	m := map[string]string{}
	for i := range n {
		m[fmt.Sprintf("IVR_V%03d", i)] = strings.Repeat("x", size)
	}
	return m
}

// TestSwitchVariablesAreCut: switch variables cannot be refused. A switch sending 200
// variables yields a call capped at the limits, in key order, marked engine.TruncatedKey,
// with one call.data_updated and one warning; a value over the limit is cut, a key over it
// dropped. The same input gives the same call.
func TestSwitchVariablesAreCut(t *testing.T) {
	run := func(size int) (engine.Output, callbridge.Call) {
		f := newFixture(t)
		f.logOn("1001", "acme-support")
		f.answeredCall("p1", "1001")
		vars := manyVariables(200, size)
		vars["IVR_LONG"] = strings.Repeat("é", 3000) // 6000 bytes
		vars[strings.Repeat("K", 65)] = "too long a key"
		out := f.ev(callbridge.SwitchEvent{Type: callbridge.SwitchDataUpdated, PBXCallID: "p1", Data: vars})
		return out, f.call(acme, "p1")
	}
	// Variables of 2000 bytes: the bytes per call bind.
	out, c := run(2000)
	d := callData(only(t, out, callbridge.EventCallDataUpdated)).AttachedData
	if keys, size := dataBytes(d); d[engine.TruncatedKey] != "true" || keys >= engine.DefaultMaxDataKeys ||
		size > engine.DefaultMaxDataBytes || size <= engine.DefaultMaxDataBytes-2010 {
		t.Fatalf("capped data: marker %q, %d keys, %d bytes", d[engine.TruncatedKey], keys, size)
	}
	// Variables of 300 bytes: the keys per call bind.
	out, c = run(300)
	ev := only(t, out, callbridge.EventCallDataUpdated)
	d = callData(ev).AttachedData
	if keys, size := dataBytes(d); d[engine.TruncatedKey] != "true" || keys != engine.DefaultMaxDataKeys || size > engine.DefaultMaxDataBytes {
		t.Fatalf("capped data: marker %q, %d keys, %d bytes", d[engine.TruncatedKey], keys, size)
	}
	if v := d["IVR_LONG"]; len(v) > engine.DefaultMaxDataValueBytes || len(v) < engine.DefaultMaxDataValueBytes-1 || !utf8.ValidString(v) {
		t.Fatalf("IVR_LONG cut to %d bytes (valid UTF-8: %v)", len(v), utf8.ValidString(v))
	}
	if _, ok := d[strings.Repeat("K", 65)]; ok {
		t.Fatal("a key over the limit was kept")
	}
	if d["IVR_V000"] == "" || d["IVR_V199"] != "" {
		t.Fatalf("not cut in key order: IVR_V000 %d bytes, IVR_V199 %d bytes", len(d["IVR_V000"]), len(d["IVR_V199"]))
	}
	if len(out.Warnings) != 1 || out.Warnings[0].CallID != c.ID || !strings.Contains(out.Warnings[0].Message, "dropped or cut") {
		t.Fatalf("warnings = %+v", out.Warnings)
	}
	if !reflect.DeepEqual(c.AttachedData, d) {
		t.Fatal("the model and the event differ")
	}
	if _, again := run(300); !reflect.DeepEqual(again.AttachedData, c.AttachedData) {
		t.Fatal("the same variables were cut differently")
	}

	// A call that starts with too many variables is capped from its first event; the switch
	// can still change a variable it has, and a variable of the reserved name is ignored.
	f := newFixture(t)
	vars := manyVariables(200, 300)
	vars[engine.TruncatedKey] = "spoofed"
	f.ev(inbound("p2", didAcme, vars))
	q := callData(only(t, f.ev(queued("p2", "acme-support")), callbridge.EventCallQueued))
	if k, b := dataBytes(q.AttachedData); q.AttachedData[engine.TruncatedKey] != "true" || k > engine.DefaultMaxDataKeys || b > engine.DefaultMaxDataBytes {
		t.Fatalf("call started with 200 variables: marker %q, %d keys, %d bytes", q.AttachedData[engine.TruncatedKey], k, b)
	}
	out = f.ev(callbridge.SwitchEvent{Type: callbridge.SwitchDataUpdated, PBXCallID: "p2", Data: map[string]string{"IVR_V000": "changed"}})
	if d := callData(only(t, out, callbridge.EventCallDataUpdated)).AttachedData; d["IVR_V000"] != "changed" || len(out.Warnings) != 0 {
		t.Fatalf("a change within the limits: %q, warnings %v", d["IVR_V000"], out.Warnings)
	}
}

// TestConsultationDataComesBackCapped: what a consultation adds travels back into the call on
// a completed transfer within the limits: the call and the consultation each fit, their
// union is cut.
func TestConsultationDataComesBackCapped(t *testing.T) {
	e, err := engine.New(engine.Config{Directory: testDirectory(), Capabilities: allCaps(), NewCallID: idGen(), Now: t0, MaxDataBytes: 500})
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{t: t, e: e, now: t0}
	f.logOn("1001", "acme-support")
	f.logOn("1002", "acme-support")
	f.answeredCall("p1", "1001")
	f.evs(sev(callbridge.SwitchHeld, "p1", "1001"),
		callbridge.SwitchEvent{Type: callbridge.SwitchCallStarted, PBXCallID: "q1", Direction: callbridge.DirInternal, Device: "1001", ConsultOf: "p1"},
		connected("q1", "1001"), alerting("q1", "1002"), connected("q1", "1002"))
	f.ev(callbridge.SwitchEvent{Type: callbridge.SwitchDataUpdated, PBXCallID: "q1", Data: manyVariables(2, 200)})                                // the consultation's own
	f.ev(callbridge.SwitchEvent{Type: callbridge.SwitchDataUpdated, PBXCallID: "p1", Data: map[string]string{"IVR_P": strings.Repeat("p", 200)}}) // the call's own
	out := f.ev(callbridge.SwitchEvent{Type: callbridge.SwitchTransferred, PBXCallID: "p1", ConsultPBXCallID: "q1", TransferringDevice: "1001"})
	d := callData(only(t, out, callbridge.EventCallTransferred)).AttachedData
	if k, b := dataBytes(d); b > 500 || d[engine.TruncatedKey] != "true" || d["IVR_V000"] == "" || d["IVR_P"] == "" {
		t.Fatalf("after the transfer: %d keys, %d bytes: %v", k, b, slices.Sorted(maps.Keys(d)))
	}
	if len(out.Warnings) != 1 {
		t.Fatalf("warnings: %+v", out.Warnings)
	}
}

// TestConnectionsAndMembershipsCapped: a call has at most MaxConnections parties and an agent
// at most MaxMemberships queues; what passes is not modelled, with a warning, and produces
// no event.
func TestConnectionsAndMembershipsCapped(t *testing.T) {
	e, err := engine.New(engine.Config{Directory: testDirectory(), Capabilities: allCaps(), NewCallID: idGen(), Now: t0, MaxConnections: 3, MaxMemberships: 2})
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{t: t, e: e, now: t0}
	f.ev(inbound("p1", didAcme, ivr()))
	f.evs(alerting("p1", "1001"), alerting("p1", "1002"))
	out := f.ev(alerting("p1", "1003"))
	if len(out.Events) != 0 || len(out.Warnings) != 1 || !strings.Contains(out.Warnings[0].Message, "device 1003 is not added") {
		t.Fatalf("fourth party: %v, warnings %+v", types(out), out.Warnings)
	}
	if got := len(f.call(acme, "p1").Connections); got != 3 {
		t.Fatalf("%d connections", got)
	}
	// A party that leaves makes room.
	f.ev(callbridge.SwitchEvent{Type: callbridge.SwitchConnectionCleared, PBXCallID: "p1", Device: "1002"})
	only(t, f.ev(alerting("p1", "1003")), callbridge.EventCallDelivered)

	for _, q := range []callbridge.QueueName{"acme-support", "acme-vip", "acme-load"} {
		out = f.ev(member("1004", q, true, false, ""))
	}
	if len(out.Warnings) != 1 || !strings.Contains(out.Warnings[0].Message, "queue acme-load is ignored") {
		t.Fatalf("third membership: warnings %+v", out.Warnings)
	}
	if a := f.agent(acme, "dave"); len(a.Queues) != 2 {
		t.Fatalf("dave's queues: %v", a.Queues)
	}
	snap := &callbridge.Snapshot{Members: []callbridge.SnapshotMember{{Device: "1004", Queue: "q1"}, {Device: "1004", Queue: "q2"}, {Device: "1004", Queue: "q3"}}}
	out = f.ev(callbridge.SwitchEvent{Type: callbridge.SwitchSnapshot, Snapshot: snap})
	if a := f.agent(acme, "dave"); len(a.Queues) != 2 || len(out.Warnings) != 1 {
		t.Fatalf("after a snapshot with three memberships: %v, warnings %+v", a.Queues, out.Warnings)
	}
}

// TestSwitchTextsAreBounded: an event whose ids pass MaxFieldBytes is dropped with a
// warning; a longer ANI, caller name or cause is cut; a snapshot loses only the call with a
// long id.
func TestSwitchTextsAreBounded(t *testing.T) {
	f := newFixture(t)
	long := strings.Repeat("9", engine.MaxFieldBytes+1)
	out := f.ev(inbound(long, didAcme, ivr()))
	if len(out.Warnings) != 1 || f.hasCall(acme, long) || len(f.e.Calls(acme)) != 0 {
		t.Fatalf("a call id of %d bytes: warnings %+v, calls %v", len(long), out.Warnings, f.e.Calls(acme))
	}
	ev := inbound("p1", didAcme, ivr())
	ev.ANI, ev.ANIName = long, strings.Repeat("é", 200)
	f.ev(ev)
	c := callData(only(t, f.ev(queued("p1", "acme-support")), callbridge.EventCallQueued))
	if len(c.ANI) != engine.MaxFieldBytes || len(c.ANIName) > engine.MaxFieldBytes || !utf8.ValidString(c.ANIName) {
		t.Fatalf("ANI %d bytes, caller name %d bytes", len(c.ANI), len(c.ANIName))
	}
	snap := &callbridge.Snapshot{Calls: []callbridge.SnapshotCall{
		{PBXCallID: "p1", Direction: callbridge.DirInbound, Parties: []callbridge.SnapshotParty{{Device: caller, State: callbridge.ConnConnected, External: true}}},
		{PBXCallID: long, Direction: callbridge.DirInbound, DNIS: didAcme, Parties: []callbridge.SnapshotParty{{Device: "1001", State: callbridge.ConnAlerting}}},
	}}
	out = f.ev(callbridge.SwitchEvent{Type: callbridge.SwitchSnapshot, Snapshot: snap})
	if len(out.Warnings) != 1 || !f.hasCall(acme, "p1") || len(f.e.Calls(acme)) != 1 || len(snap.Calls) != 2 {
		t.Fatalf("snapshot with a long call id: warnings %+v, calls %v (the driver's snapshot must stay as it was)", out.Warnings, f.e.Calls(acme))
	}
}

// TestMaxEventBytes: the largest event an engine emits under adversarial input (switch texts,
// variables and parties at and over every limit, disposition notes at theirs, an agent in
// too many queues with the longest reason) encodes to at most MaxEventBytes, for the
// defaults and for other limits; the defaults fit NATS's default maximum payload (1 MiB).
func TestMaxEventBytes(t *testing.T) {
	if n := engine.MaxEventBytes(engine.Config{Directory: testDirectory()}); n > 1<<20 {
		t.Fatalf("MaxEventBytes with the defaults = %d, over NATS's 1 MiB", n)
	}
	for _, tc := range []engine.Config{
		{},
		{MaxDataKeys: 8, MaxDataKeyBytes: 16, MaxDataValueBytes: 100, MaxDataBytes: 400, MaxConnections: 4, MaxMemberships: 3},
		{MaxDataKeys: 200, MaxDataBytes: 64 << 10, MaxConnections: 100},
	} {
		tc.Directory, tc.Capabilities, tc.NewCallID, tc.Now = testDirectory(), allCaps(), idGen(), t0
		bound := engine.MaxEventBytes(tc)
		largest := adversarialRun(t, tc)
		if largest > bound {
			t.Fatalf("limits %+v: an event of %d bytes, MaxEventBytes %d", tc, largest, bound)
		}
		t.Logf("limits keys %d, bytes %d, parties %d: largest event %d bytes, MaxEventBytes %d (%.0f%%)",
			tc.MaxDataKeys, tc.MaxDataBytes, tc.MaxConnections, largest, bound, 100*float64(largest)/float64(bound))
	}
}

// adversarialRun feeds an engine with cfg the largest inputs it can get and returns the size
// of the largest event JSON it emitted.
func adversarialRun(t *testing.T, cfg engine.Config) int {
	t.Helper()
	e, err := engine.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{t: t, e: e, now: t0}
	largest, queues := 0, 0
	measure := func(out engine.Output) {
		for _, ev := range out.Events {
			b, err := json.Marshal(ev)
			if err != nil {
				t.Fatal(err)
			}
			largest = max(largest, len(b))
			if a, ok := ev.Data.(*callbridge.Agent); ok {
				queues = max(queues, len(a.Queues))
			}
		}
	}
	esc := func(n int) string { return strings.Repeat("\x01<", n/2+1)[:n] }
	over := esc(engine.MaxFieldBytes + 500)
	vars := map[string]string{}
	for i := range 300 {
		vars[fmt.Sprintf("%03d", i)+esc(61)] = esc(5000)
	}
	ev := inbound("p1", didAcme, vars)
	ev.ANI, ev.ANIName, ev.DNIS, ev.Cause = over, over, didAcme, callbridge.Cause(over)
	measure(f.ev(ev))
	measure(f.ev(queued("p1", callbridge.QueueName(esc(engine.MaxFieldBytes)))))
	measure(f.ev(member("1001", "acme-support", true, false, "")))
	measure(f.ev(alerting("p1", "1001")))
	measure(f.ev(connected("p1", "1001")))
	for i := range 300 {
		measure(f.ev(callbridge.SwitchEvent{Type: callbridge.SwitchAlerting, PBXCallID: "p1", External: true,
			Device: callbridge.DeviceID(fmt.Sprintf("%03d", i) + esc(engine.MaxFieldBytes-3))}))
	}
	_, out, err := f.do(callbridge.Command{Name: callbridge.CmdSetDisposition, Tenant: acme, Agent: "alice", Role: callbridge.RoleAgent,
		CallID: f.call(acme, "p1").ID, Disposition: strings.Repeat("d", 64), Notes: strings.Repeat("<", 4096)})
	if err != nil {
		t.Fatal(err)
	}
	measure(out)
	measure(f.ev(callbridge.SwitchEvent{Type: callbridge.SwitchConnectionCleared, PBXCallID: "p1", Device: "1001", Cause: callbridge.Cause(over)}))
	measure(f.ev(callbridge.SwitchEvent{Type: callbridge.SwitchTransferred, PBXCallID: "p1", TransferringDevice: callbridge.DeviceID(esc(engine.MaxFieldBytes)), TransferredTo: callbridge.DeviceID(over)}))
	for i := range 300 {
		measure(f.ev(member("1002", callbridge.QueueName(fmt.Sprintf("%03d", i)+esc(engine.MaxFieldBytes-3)), true, false, "")))
	}
	measure(f.ev(member("1002", "", true, true, over))) // not_ready with the longest reason, in every queue
	measure(f.ev(cleared("p1")))
	if want := cmp.Or(cfg.MaxMemberships, engine.DefaultMaxMemberships); queues != want {
		t.Fatalf("the largest agent event had %d queues, want the limit %d", queues, want)
	}
	return largest
}

// TestMaxAudience: a call that rings every agent of a tenant in turn, and is transferred among
// them, never names more agents (or bytes of agent ids) in an event's audience than
// MaxAudience.
func TestMaxAudience(t *testing.T) {
	cfg := engine.Config{Directory: testDirectory(), Capabilities: allCaps(), NewCallID: idGen(), Now: t0}
	agents, bytes := engine.MaxAudience(cfg)
	if agents != 5 || bytes != len("alice")+len("bob")+len("carol")+len("dave")+len("judy") {
		t.Fatalf("MaxAudience = %d agents, %d bytes; acme has 5 agents", agents, bytes)
	}
	e, err := engine.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{t: t, e: e, now: t0}
	most, mostBytes := 0, 0
	measure := func(out engine.Output) {
		for _, ev := range out.Events {
			b := 0
			for _, a := range ev.Audience {
				b += len(a)
			}
			most, mostBytes = max(most, len(ev.Audience)), max(mostBytes, b)
		}
	}
	measure(f.ev(inbound("p1", didAcme, ivr())))
	for _, d := range simDevices[acme] {
		measure(f.ev(alerting("p1", d)))
	}
	for _, d := range simDevices[acme] {
		measure(f.ev(connected("p1", d)))
	}
	measure(f.ev(cleared("p1")))
	if most == 0 || most > agents || mostBytes > bytes {
		t.Fatalf("an audience of %d agents (%d bytes), MaxAudience %d (%d bytes)", most, mostBytes, agents, bytes)
	}

	// With two parties per call, a resync that swaps both agents of a call names the two who
	// left and the two who came: twice MaxConnections.
	cfg.MaxConnections, cfg.NewCallID = 2, idGen()
	if agents, _ = engine.MaxAudience(cfg); agents != 4 {
		t.Fatalf("MaxAudience with MaxConnections 2 = %d, want 4", agents)
	}
	if e, err = engine.New(cfg); err != nil {
		t.Fatal(err)
	}
	f = &fixture{t: t, e: e, now: t0}
	first := alerting("p2", "1001")
	first.DNIS = didAcme
	f.evs(first, alerting("p2", "1002"))
	out := f.ev(callbridge.SwitchEvent{Type: callbridge.SwitchSnapshot, Snapshot: &callbridge.Snapshot{Calls: []callbridge.SnapshotCall{{
		PBXCallID: "p2", Direction: callbridge.DirInbound, DNIS: didAcme,
		Parties: []callbridge.SnapshotParty{{Device: "1003", State: callbridge.ConnAlerting}, {Device: "1004", State: callbridge.ConnAlerting}},
	}}}})
	most = 0
	for _, ev := range out.Events {
		most = max(most, len(ev.Audience))
	}
	if most != agents {
		t.Fatalf("the resync's largest audience: %d agents, want %d (%v)", most, agents, types(out))
	}
}
