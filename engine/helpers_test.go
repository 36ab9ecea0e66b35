package engine_test

import (
	"fmt"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/callbridge/callbridge"
	"github.com/callbridge/callbridge/engine"
)

// t0 is the start of every test's fake clock.
var t0 = time.Date(2026, 11, 21, 9, 0, 0, 0, time.UTC)

const (
	acme    callbridge.TenantID = "acme"
	globex  callbridge.TenantID = "globex"
	didAcme                     = "18005550100"
	didGlob                     = "18005550200"
	caller                      = "+15551230001"
)

func intp(n int) *int { return &n }

// testDirectory: acme (wrap-up 10 s; acme-vip 30 s; acme-load none) with alice 1001 (two
// queues), bob 1002, carol 1003, dave 1004, judy 1010 (no queues), a supervisor without a
// device; globex (no wrap-up, attached data limited to IVR_ACCOUNT and IVR_REASON) with gina
// 2001 (Local interface) and hank 2002.
func testDirectory() callbridge.Directory {
	return callbridge.Directory{Tenants: []callbridge.TenantConfig{
		{
			ID: acme, Name: "ACME", DIDs: []string{didAcme, "+18005550300"},
			WrapUpSeconds: 10,
			ReasonCodes:   []string{"lunch", "meeting", "training"},
			Queues: []callbridge.QueueConfig{
				{Name: "acme-support"},
				{Name: "acme-load", WrapUpSeconds: intp(0)},
				{Name: "acme-vip", WrapUpSeconds: intp(30)},
			},
			Users: []callbridge.UserConfig{
				{Username: "alice", Role: callbridge.RoleAgent, Name: "Alice Acme", Device: "1001", Interface: "PJSIP/1001", Queues: []callbridge.QueueName{"acme-support", "acme-load"}},
				{Username: "bob", Role: callbridge.RoleAgent, Name: "Bob Acme", Device: "1002", Queues: []callbridge.QueueName{"acme-support"}},
				{Username: "carol", Role: callbridge.RoleAgent, Name: "Carol Acme", Device: "1003", Queues: []callbridge.QueueName{"acme-support"}},
				{Username: "dave", Role: callbridge.RoleAgent, Name: "Dave Acme", Device: "1004", Queues: []callbridge.QueueName{"acme-support", "acme-vip"}},
				{Username: "judy", Role: callbridge.RoleAgent, Name: "Judy Acme", Device: "1010"},
				{Username: "sue", Role: callbridge.RoleSupervisor, Name: "Sue Boss"},
			},
		},
		{
			ID: globex, Name: "Globex", DIDs: []string{didGlob},
			AttachedData: []string{"IVR_ACCOUNT", "IVR_REASON"},
			ReasonCodes:  []string{"break"},
			Queues:       []callbridge.QueueConfig{{Name: "globex-sales"}},
			Users: []callbridge.UserConfig{
				{Username: "gina", Role: callbridge.RoleAgent, Name: "Gina Globex", Device: "2001", Interface: "Local/2001@globex-agents/n", Queues: []callbridge.QueueName{"globex-sales"}},
				{Username: "hank", Role: callbridge.RoleAgent, Name: "Hank Globex", Device: "2002", Queues: []callbridge.QueueName{"globex-sales"}},
			},
		},
	}}
}

// allCaps is a driver that can do everything.
func allCaps() callbridge.Capabilities {
	c := callbridge.Capabilities{}
	for _, t := range []callbridge.SwitchCommandType{
		callbridge.SwitchMakeCall, callbridge.SwitchAnswerCall, callbridge.SwitchClearConnection,
		callbridge.SwitchClearCall, callbridge.SwitchHoldCall, callbridge.SwitchRetrieveCall,
		callbridge.SwitchSingleStepTransfer, callbridge.SwitchConsultationCall,
		callbridge.SwitchTransferCall, callbridge.SwitchConferenceCall, callbridge.SwitchSetMemberState,
	} {
		c[t] = true
	}
	return c
}

// idGen returns a deterministic CallID generator: 01J000…001, 01J000…002, … (ULID-shaped).
func idGen() func(time.Time) callbridge.CallID {
	n := 0
	return func(time.Time) callbridge.CallID {
		n++
		return callbridge.CallID(fmt.Sprintf("01J%023d", n))
	}
}

// fixture is an engine with a fake clock.
type fixture struct {
	t   testing.TB
	e   *engine.Engine
	now time.Time
}

func newFixture(t testing.TB) *fixture { return newFixtureCaps(t, allCaps()) }

func newFixtureCaps(t testing.TB, caps callbridge.Capabilities) *fixture {
	t.Helper()
	e, err := engine.New(engine.Config{Directory: testDirectory(), Capabilities: caps, NewCallID: idGen(), Now: t0})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return &fixture{t: t, e: e, now: t0}
}

// wait advances the fake clock.
func (f *fixture) wait(d time.Duration) { f.now = f.now.Add(d) }

// ev feeds a switch event at the fake clock's time and checks the output's basic shape.
func (f *fixture) ev(ev callbridge.SwitchEvent) engine.Output {
	f.t.Helper()
	if ev.Time.IsZero() {
		ev.Time = f.now
	}
	out := f.e.HandleSwitchEvent(ev)
	checkOutput(f.t, out)
	return out
}

// evs feeds several events and returns the concatenated output.
func (f *fixture) evs(evs ...callbridge.SwitchEvent) engine.Output {
	f.t.Helper()
	var all engine.Output
	for _, ev := range evs {
		out := f.ev(ev)
		all.Events = append(all.Events, out.Events...)
		all.Commands = append(all.Commands, out.Commands...)
	}
	return all
}

func (f *fixture) tick() engine.Output {
	f.t.Helper()
	out := f.e.Tick(f.now)
	checkOutput(f.t, out)
	return out
}

// do plans and, when that succeeds, applies cmd (as the runtime does after the switch
// accepted the commands).
func (f *fixture) do(cmd callbridge.Command) (engine.Plan, engine.Output, error) {
	f.t.Helper()
	if cmd.Time.IsZero() {
		cmd.Time = f.now
	}
	p, err := f.e.Plan(cmd)
	if err != nil {
		return p, engine.Output{}, err
	}
	out := f.e.Apply(cmd, p)
	checkOutput(f.t, out)
	return p, out, nil
}

// mustDo is do that fails the test on an error.
func (f *fixture) mustDo(cmd callbridge.Command) (engine.Plan, engine.Output) {
	f.t.Helper()
	p, out, err := f.do(cmd)
	if err != nil {
		f.t.Fatalf("%s: %v", cmd.Name, err)
	}
	return p, out
}

// call returns the active call of tenant with PBX id pbx.
func (f *fixture) call(tenant callbridge.TenantID, pbx string) callbridge.Call {
	f.t.Helper()
	for _, c := range f.e.Calls(tenant) {
		if c.PBXCallID == pbx {
			return c
		}
	}
	f.t.Fatalf("no active call %s in tenant %s", pbx, tenant)
	return callbridge.Call{}
}

func (f *fixture) hasCall(tenant callbridge.TenantID, pbx string) bool {
	for _, c := range f.e.Calls(tenant) {
		if c.PBXCallID == pbx {
			return true
		}
	}
	return false
}

// agent returns one agent's view.
func (f *fixture) agent(tenant callbridge.TenantID, id callbridge.AgentID) callbridge.Agent {
	f.t.Helper()
	s, err := f.e.Snapshot(tenant, id)
	if err != nil {
		f.t.Fatalf("Snapshot(%s, %s): %v", tenant, id, err)
	}
	return s.Agent
}

// logOn makes device a member of queues, unpaused (as the switch reports it).
func (f *fixture) logOn(device callbridge.DeviceID, queues ...callbridge.QueueName) {
	f.t.Helper()
	for _, q := range queues {
		f.ev(callbridge.SwitchEvent{Type: callbridge.SwitchMemberState, Device: device, Queue: q, LoggedOn: true})
	}
}

// checkOutput checks what every output must satisfy: tenant and type on every event, the
// right data shape, call ids on call events, audience and agent on agent events.
func checkOutput(t testing.TB, out engine.Output) {
	t.Helper()
	for _, ev := range out.Events {
		if ev.Tenant == "" || ev.Type == "" {
			t.Fatalf("event without tenant or type: %+v", ev)
		}
		if ev.Time.IsZero() || ev.Seq != 0 {
			t.Fatalf("event %s: time %v seq %d", ev.Type, ev.Time, ev.Seq)
		}
		if ev.Type.IsCall() {
			ce, ok := ev.Data.(*callbridge.CallEvent)
			if !ok || ev.CallID == "" || ce.ID != ev.CallID || ce.Tenant != ev.Tenant {
				t.Fatalf("call event %s: bad data or call id: %+v", ev.Type, ev)
			}
			if ce.AttachedData == nil || ce.Connections == nil {
				t.Fatalf("call event %s: nil attached data or connections", ev.Type)
			}
			if ev.Type == callbridge.EventCallDelivered && (ce.Device == "" || ce.DNIS == "" && ce.Direction == callbridge.DirInbound) {
				t.Fatalf("call.delivered without device or DNIS: %+v", ce)
			}
		} else {
			a, ok := ev.Data.(*callbridge.Agent)
			if !ok || ev.Agent == "" || a.ID != ev.Agent || a.Tenant != ev.Tenant || !slices.Equal(ev.Audience, []callbridge.AgentID{ev.Agent}) {
				t.Fatalf("agent event %s: bad data, agent or audience: %+v", ev.Type, ev)
			}
		}
	}
}

// types lists the event types of out.
func types(out engine.Output) []callbridge.EventType {
	var ts []callbridge.EventType
	for _, ev := range out.Events {
		ts = append(ts, ev.Type)
	}
	return ts
}

// only returns the single event of type typ in out.
func only(t testing.TB, out engine.Output, typ callbridge.EventType) callbridge.Event {
	t.Helper()
	var found []callbridge.Event
	for _, ev := range out.Events {
		if ev.Type == typ {
			found = append(found, ev)
		}
	}
	if len(found) != 1 {
		t.Fatalf("want one %s, got %d in %v", typ, len(found), types(out))
	}
	return found[0]
}

func callData(ev callbridge.Event) *callbridge.CallEvent { return ev.Data.(*callbridge.CallEvent) }
func agentData(ev callbridge.Event) *callbridge.Agent    { return ev.Data.(*callbridge.Agent) }

func wantTypes(t testing.TB, out engine.Output, want ...callbridge.EventType) {
	t.Helper()
	if got := types(out); !slices.Equal(got, want) {
		t.Fatalf("events = %v, want %v", got, want)
	}
}

func wantCode(t testing.TB, err error, code string) {
	t.Helper()
	if got := callbridge.ErrorCode(err); got != code {
		t.Fatalf("error = %v (code %q), want code %q", err, got, code)
	}
}

// state is a comparable picture of everything the engine shows, to prove that a call
// changed nothing.
func state(e *engine.Engine) any {
	type pic struct {
		Calls  map[callbridge.TenantID][]callbridge.Call
		Agents map[callbridge.TenantID][]callbridge.Agent
	}
	p := pic{Calls: map[callbridge.TenantID][]callbridge.Call{}, Agents: map[callbridge.TenantID][]callbridge.Agent{}}
	for _, t := range []callbridge.TenantID{acme, globex} {
		p.Calls[t] = e.Calls(t)
		p.Agents[t] = e.Agents(t)
	}
	return p
}

func sameState(t testing.TB, before, after any) {
	t.Helper()
	if !reflect.DeepEqual(before, after) {
		t.Fatalf("state changed:\nbefore %+v\nafter  %+v", before, after)
	}
}

// Switch event builders.

func inbound(pbx, dnis string, data map[string]string) callbridge.SwitchEvent {
	return callbridge.SwitchEvent{Type: callbridge.SwitchCallStarted, PBXCallID: pbx, Direction: callbridge.DirInbound,
		ANI: caller, ANIName: "John Smith", DNIS: dnis, Device: caller, External: true, Data: data}
}

func sev(typ callbridge.SwitchEventType, pbx string, dev callbridge.DeviceID) callbridge.SwitchEvent {
	return callbridge.SwitchEvent{Type: typ, PBXCallID: pbx, Device: dev}
}

func queued(pbx string, q callbridge.QueueName) callbridge.SwitchEvent {
	return callbridge.SwitchEvent{Type: callbridge.SwitchQueued, PBXCallID: pbx, Queue: q}
}

func alerting(pbx string, dev callbridge.DeviceID) callbridge.SwitchEvent {
	return sev(callbridge.SwitchAlerting, pbx, dev)
}

func connected(pbx string, dev callbridge.DeviceID) callbridge.SwitchEvent {
	return sev(callbridge.SwitchConnected, pbx, dev)
}

func cleared(pbx string) callbridge.SwitchEvent {
	return callbridge.SwitchEvent{Type: callbridge.SwitchCallCleared, PBXCallID: pbx, Cause: callbridge.CauseNormal}
}

func member(dev callbridge.DeviceID, q callbridge.QueueName, on, paused bool, reason string) callbridge.SwitchEvent {
	return callbridge.SwitchEvent{Type: callbridge.SwitchMemberState, Device: dev, Queue: q, LoggedOn: on, Paused: paused, Reason: reason}
}

// ivr is the attached data an Asterisk IVR leaves on an acme call.
func ivr() map[string]string {
	return map[string]string{"IVR_ACCOUNT": "12345", "IVR_REASON": "billing", "IVR_LANG": "", "CTI_TENANT": "acme", "CTI_DNIS": didAcme}
}

// answeredCall starts an inbound acme call pbx queued in acme-support and answered by dev.
func (f *fixture) answeredCall(pbx string, dev callbridge.DeviceID) callbridge.Call {
	f.t.Helper()
	f.evs(inbound(pbx, didAcme, ivr()), queued(pbx, "acme-support"), alerting(pbx, dev), connected(pbx, dev))
	return f.call(acme, pbx)
}

// cmd builds an agent's command.
func cmd(name callbridge.CommandName, agent callbridge.AgentID) callbridge.Command {
	return callbridge.Command{Name: name, Tenant: acme, Agent: agent, Role: callbridge.RoleAgent}
}

func sortedQueues(qs ...callbridge.QueueName) []callbridge.QueueName {
	return slices.Sorted(slices.Values(qs))
}
