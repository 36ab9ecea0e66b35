// Package pbxtest is callbridge's driver conformance kit: one table of switch-independent
// scenarios (inbound answered, abandoned in queue, agent hang-up, blind transfer, attended
// transfer, hold/retrieve, click-to-call, agent state change, a queue member or a routed
// agent that does not answer), each with the CSTA story of
// domain events it must produce, run against every driver's recordings of a real switch (or,
// where none shows a scenario, a recording built for the kit) through the real socket code: a replay server plays the recording over TCP, the driver under test connects
// to it, and the engine turns its switch events into domain events.
//
// A driver binds the kit to its switch with a Binding (how to start its replay server and
// driver, its provisioning, and for each scenario the recording and who plays which role in
// it) and calls Run from a test. A new driver is done when it passes the kit; see
// docs/drivers.md.
package pbxtest

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/callbridge/callbridge"
	"github.com/callbridge/callbridge/capture"
	"github.com/callbridge/callbridge/internal/fixtures"
	"github.com/callbridge/callbridge/internal/replay"
)

// Scenario names.
const (
	InboundAnswered  = "inbound_answered"
	AbandonedInQueue = "abandoned_in_queue"
	AgentHangup      = "agent_hangup"
	BlindTransfer    = "blind_transfer"
	AttendedTransfer = "attended_transfer"
	HoldRetrieve     = "hold_retrieve"
	ClickToCall      = "click_to_call"
	AgentStateChange = "agent_state_change"
	QueueNoAnswer    = "queue_member_no_answer"
	RoutedNoAnswer   = "routed_no_answer"
)

// Role names a party of a scenario; a Binding says which device (and agent) plays it in its
// recording.
type Role string

// Roles.
const (
	RoleNone     Role = ""
	RoleAgent    Role = "agent"    // the agent who gets (or places) the call
	RoleAgent2   Role = "agent2"   // the agent a transfer goes to
	RoleCaller   Role = "caller"   // the outside caller of an inbound call (device = ANI)
	RoleCustomer Role = "customer" // the outside party a click-to-call dials
	RoleQueue    Role = "queue"    // the queue (ACD group) device the call waits at (device = Cast.Queue)
)

// Step is one expected domain event. Zero fields are not checked.
type Step struct {
	Type callbridge.EventType
	// Call names the conversation ("A", "B"): steps with the same name must have the same
	// call_id, different names different ones.
	Call string
	// Party is the device the event is about (CallEvent.Device and, for an agent role,
	// CallEvent.Agent); for agent events, the agent.
	Party Role
	// Queue: the call's queue is the binding's queue.
	Queue bool
	// Screen: tenant, ANI, DNIS and the IVR's attached data are the binding's (the screen
	// pop of call.delivered, carried through transfers).
	Screen bool
	// Data: tenant and the IVR's attached data are the binding's, ANI and DNIS not checked
	// (a consultation carries a copy of the call's data, but its ANI is the consulting
	// device; DESIGN.md §2).
	Data  bool
	Cause callbridge.Cause
	// From and To check call.transferred (TransferringDevice, TransferredTo); with an agent
	// role, From's agent must be the event's Agent (the transferred event names the agent who
	// left). DivertedTo checks call.diverted (CallEvent.DivertedTo; the device the call left
	// is Party).
	From, To   Role
	DivertedTo Role
	// State and Reason check agent.state_changed; Reason: the binding's not_ready reason.
	State  callbridge.AgentState
	Reason bool
}

// Scenario is one switch-independent situation and the CSTA story it must produce.
type Scenario struct {
	Name    string
	Summary string
	Steps   []Step
	// Never are events that must not occur anywhere in a recording of the scenario (Call is
	// not checked).
	Never []Step
	// Open is how many calls are still up at the end of a recording of it (0: every call
	// that appeared must clear exactly once, and no agent may be left busy).
	Open int
}

// Scenarios is the kit's table. The stories follow DESIGN.md §2: call.delivered (ringing,
// with the screen pop) before call.established, call.cleared exactly once, a blind transfer
// keeps the call_id and carries the attached data to the new agent, hold follows the
// holding device, click-to-call is originated by the agent's device first.
var Scenarios = []Scenario{
	{
		Name:    InboundAnswered,
		Summary: "a caller goes through the IVR into a queue; an agent's phone rings, the agent answers, the caller hangs up",
		Steps: []Step{
			// CSTA: the call waits at the queue's device (a queued connection) until the
			// queue hands it to the agent.
			{Type: callbridge.EventCallQueued, Call: "A", Party: RoleQueue, Queue: true, Screen: true},
			{Type: callbridge.EventCallDelivered, Call: "A", Party: RoleAgent, Queue: true, Screen: true},
			{Type: callbridge.EventCallConnectionCleared, Call: "A", Party: RoleQueue, Cause: callbridge.CauseDistributed},
			{Type: callbridge.EventCallEstablished, Call: "A", Party: RoleAgent},
			{Type: callbridge.EventCallCleared, Call: "A", Cause: callbridge.CauseNormal},
		},
	},
	{
		Name:    AbandonedInQueue,
		Summary: "nobody is available; the caller gives up while queued",
		Steps: []Step{
			{Type: callbridge.EventCallQueued, Call: "A", Party: RoleQueue, Queue: true, Screen: true},
			{Type: callbridge.EventCallConnectionCleared, Call: "A", Party: RoleQueue, Cause: callbridge.CauseAbandoned},
			{Type: callbridge.EventCallCleared, Call: "A", Cause: callbridge.CauseAbandoned, Screen: true},
		},
	},
	{
		Name: QueueNoAnswer,
		Summary: "a queue offers the call to a member whose phone does not answer (rings out or rejects it); " +
			"the call is diverted back to the queue, which offers it to the next member, who answers",
		Steps: []Step{
			{Type: callbridge.EventCallQueued, Call: "A", Party: RoleQueue, Queue: true},
			{Type: callbridge.EventCallDelivered, Call: "A", Party: RoleAgent, Queue: true, Screen: true},
			{Type: callbridge.EventCallDiverted, Call: "A", Party: RoleAgent, DivertedTo: RoleQueue},
			{Type: callbridge.EventCallDelivered, Call: "A", Party: RoleAgent2, Queue: true, Screen: true},
			{Type: callbridge.EventCallEstablished, Call: "A", Party: RoleAgent2},
			{Type: callbridge.EventCallCleared, Call: "A"},
		},
	},
	{
		Name: RoutedNoAnswer,
		Summary: "a routing point rings an agent who does not answer, then another agent, who answers: " +
			"the call is diverted from the first agent's device to the second's",
		Steps: []Step{
			{Type: callbridge.EventCallDelivered, Call: "A", Party: RoleAgent, Screen: true},
			{Type: callbridge.EventCallDiverted, Call: "A", Party: RoleAgent, DivertedTo: RoleAgent2, Cause: callbridge.CauseNoAnswer},
			{Type: callbridge.EventCallDelivered, Call: "A", Party: RoleAgent2, Screen: true},
			{Type: callbridge.EventCallEstablished, Call: "A", Party: RoleAgent2},
			{Type: callbridge.EventCallCleared, Call: "A"},
		},
	},
	{
		Name:    AgentHangup,
		Summary: "an agent answers a queued call and hangs up first",
		Steps: []Step{
			{Type: callbridge.EventCallQueued, Call: "A", Queue: true},
			{Type: callbridge.EventCallDelivered, Call: "A", Party: RoleAgent, Screen: true},
			{Type: callbridge.EventCallEstablished, Call: "A", Party: RoleAgent},
			{Type: callbridge.EventCallConnectionCleared, Call: "A", Party: RoleAgent},
			{Type: callbridge.EventCallCleared, Call: "A"},
		},
	},
	{
		Name:    BlindTransfer,
		Summary: "an agent answers and blind-transfers the caller to another agent, who answers",
		Steps: []Step{
			{Type: callbridge.EventCallDelivered, Call: "A", Party: RoleAgent, Screen: true},
			{Type: callbridge.EventCallEstablished, Call: "A", Party: RoleAgent},
			{Type: callbridge.EventCallTransferred, Call: "A", From: RoleAgent, To: RoleAgent2, Screen: true},
			{Type: callbridge.EventCallDelivered, Call: "A", Party: RoleAgent2, Screen: true},
			{Type: callbridge.EventCallEstablished, Call: "A", Party: RoleAgent2},
			{Type: callbridge.EventCallCleared, Call: "A"},
		},
	},
	{
		Name: AttendedTransfer,
		Summary: "an agent answers and consults another agent (a call of its own, with a copy of the " +
			"caller's data), then completes the transfer by hanging up",
		Steps: []Step{
			{Type: callbridge.EventCallEstablished, Call: "A", Party: RoleAgent, Screen: true},
			{Type: callbridge.EventCallHeld, Call: "A", Party: RoleAgent},
			{Type: callbridge.EventCallDelivered, Call: "B", Party: RoleAgent2, Data: true},
			{Type: callbridge.EventCallEstablished, Call: "B", Party: RoleAgent2},
			{Type: callbridge.EventCallTransferred, Call: "A", From: RoleAgent, To: RoleAgent2, Screen: true},
			{Type: callbridge.EventCallCleared, Call: "B", Cause: callbridge.CauseTransferred},
			{Type: callbridge.EventCallCleared, Call: "A"},
		},
		// The transferring agent leaves both calls by the transfer (CSTA Transferred), not by
		// hanging up.
		Never: []Step{{Type: callbridge.EventCallConnectionCleared, Party: RoleAgent}},
	},
	{
		Name:    HoldRetrieve,
		Summary: "an agent on a call puts it on hold and takes it back",
		Steps: []Step{
			{Type: callbridge.EventCallEstablished, Call: "A", Party: RoleAgent, Screen: true},
			{Type: callbridge.EventCallHeld, Call: "A", Party: RoleAgent},
			{Type: callbridge.EventCallRetrieved, Call: "A", Party: RoleAgent},
			{Type: callbridge.EventCallCleared, Call: "A"},
		},
	},
	{
		Name:    ClickToCall,
		Summary: "click-to-call: the agent's phone is called first, then the customer, who answers",
		Steps: []Step{
			{Type: callbridge.EventCallOriginated, Call: "A", Party: RoleAgent},
			{Type: callbridge.EventCallEstablished, Call: "A", Party: RoleAgent},
			{Type: callbridge.EventCallEstablished, Call: "A", Party: RoleCustomer},
			{Type: callbridge.EventCallCleared, Call: "A"},
		},
	},
	{
		Name:    AgentStateChange,
		Summary: "an agent goes not ready with a reason, ready again, then logs out",
		Steps: []Step{
			{Type: callbridge.EventAgentStateChanged, Party: RoleAgent, State: callbridge.AgentNotReady, Reason: true},
			{Type: callbridge.EventAgentStateChanged, Party: RoleAgent, State: callbridge.AgentReady},
			{Type: callbridge.EventAgentStateChanged, Party: RoleAgent, State: callbridge.AgentLoggedOut},
		},
	},
}

// Cast says who plays the roles of a scenario in one recording, and what the screen pop must
// show.
type Cast struct {
	Tenant          callbridge.TenantID
	Agent, Agent2   callbridge.AgentID
	Device, Device2 callbridge.DeviceID
	Customer        callbridge.DeviceID // the number a click-to-call dials
	Queue           callbridge.QueueName
	ANI, DNIS       string
	Data            map[string]string // attached data that must be in the call
	NotReadyReason  string            // reason of the not_ready step ("" = any)
}

// Recording is the recording of one scenario for one driver.
type Recording struct {
	File string // in the binding's fixture set
	// Path, instead of File, names a recording built for the kit rather than captured from a
	// switch (relative to the test's directory), for a scenario no published recording
	// shows; its builder documents what it is made of.
	Path string
	Cast Cast
}

// Server is a replay server (capture.AMIServer, capture.ESLServer).
type Server interface {
	Listen(addr string) error
	Addr() string
	Played(n int) <-chan struct{}
	Close() error
}

// Binding ties the kit to one driver and its recordings.
type Binding struct {
	// Name of the switch ("asterisk-22", "freeswitch-1.10").
	Name string
	// FixtureSet is the folder of shared/fixtures with the recordings.
	FixtureSet string
	// Provisioning is the directory the engine runs with (examples/<switch>.yaml).
	Provisioning callbridge.Provisioning
	// NewServer returns a replay server for one recording.
	NewServer func(recs []capture.Record, logger *slog.Logger) Server
	// NewDriver returns the driver under test, connecting to the replay server at addr.
	NewDriver func(addr string, dir callbridge.Directory, logger *slog.Logger) callbridge.Driver
	// Start returns the engine's start time for a recording (the time of its first event);
	// nil uses the zero time.
	Start func(recs []capture.Record) time.Time
	// Recordings maps scenario names to this switch's recordings.
	Recordings map[string]Recording
	// Missing explains, for a scenario without a recording, why there is none. Run reports
	// such a scenario as skipped with that reason; a scenario neither recorded nor explained
	// fails.
	Missing map[string]string
}

// Run runs every scenario of the kit against b's recordings, each as a subtest named after
// the scenario.
func Run(t *testing.T, b Binding) {
	t.Helper()
	for _, sc := range Scenarios {
		t.Run(sc.Name, func(t *testing.T) {
			rec, ok := b.Recordings[sc.Name]
			if !ok {
				if why, ok := b.Missing[sc.Name]; ok {
					t.Skipf("%s has no recording of %q: %s", b.Name, sc.Name, why)
				}
				t.Fatalf("%s: no recording bound to scenario %q and no reason given", b.Name, sc.Name)
			}
			t.Parallel()
			path := rec.Path
			if path == "" {
				path = filepath.Join(fixtures.Dir(t, b.FixtureSet), rec.File)
			}
			recs, err := capture.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			evs, err := Replay(ctx, b, recs, slog.New(slog.DiscardHandler))
			if err != nil {
				t.Fatalf("replay %s: %v", path, err)
			}
			Expect(t, evs, sc.Steps, rec.Cast)
			ExpectNever(t, evs, sc.Never, rec.Cast)
			CheckNothingStuck(t, evs, sc.Open)
		})
	}
}

// Replay plays recs through b's replay server, driver and a fresh engine, and returns the
// domain events (Seq numbered from 1) once the recording has been played and every event
// has passed through the engine.
func Replay(ctx context.Context, b Binding, recs []capture.Record, logger *slog.Logger) ([]callbridge.Event, error) {
	dir := callbridge.Directory{Tenants: b.Provisioning.Tenants}
	var start time.Time
	if b.Start != nil {
		start = b.Start(recs)
	}
	return replay.Run(ctx, replay.Config{
		Server:    b.NewServer(recs, logger),
		NewDriver: func(addr string) callbridge.Driver { return b.NewDriver(addr, dir, logger) },
		Directory: dir,
		Start:     start,
		Logger:    logger,
	})
}

// device and agent of a role in cast.
func (c Cast) party(r Role) (callbridge.DeviceID, callbridge.AgentID) {
	switch r {
	case RoleAgent:
		return c.Device, c.Agent
	case RoleAgent2:
		return c.Device2, c.Agent2
	case RoleCaller:
		return callbridge.DeviceID(c.ANI), ""
	case RoleCustomer:
		return c.Customer, ""
	case RoleQueue:
		return callbridge.DeviceID(c.Queue), ""
	}
	return "", ""
}

// Matches reports whether ev satisfies s with cast (ignoring Call).
func (s Step) Matches(ev callbridge.Event, cast Cast) bool {
	if ev.Type != s.Type {
		return false
	}
	dev, ag := cast.party(s.Party)
	switch d := ev.Data.(type) {
	case *callbridge.CallEvent:
		if s.Party != RoleNone && (d.Device != dev || ag != "" && d.Agent != ag) {
			return false
		}
		if s.Queue && d.Queue != cast.Queue || s.Cause != "" && d.Cause != s.Cause {
			return false
		}
		if s.From != RoleNone {
			if f, a := cast.party(s.From); d.TransferringDevice != f || a != "" && d.Agent != a {
				return false
			}
		}
		if s.To != RoleNone {
			if to, _ := cast.party(s.To); d.TransferredTo != to {
				return false
			}
		}
		if s.DivertedTo != RoleNone {
			if to, _ := cast.party(s.DivertedTo); d.DivertedTo != to {
				return false
			}
		}
		if s.Screen && (d.ANI != cast.ANI || cast.DNIS != "" && d.DNIS != cast.DNIS) {
			return false
		}
		if s.Screen || s.Data {
			if ev.Tenant != cast.Tenant {
				return false
			}
			for k, v := range cast.Data {
				if d.AttachedData[k] != v {
					return false
				}
			}
		}
	case *callbridge.Agent:
		if s.Party != RoleNone && d.ID != ag || s.State != "" && d.State != s.State {
			return false
		}
		if s.Reason && cast.NotReadyReason != "" && d.Reason != cast.NotReadyReason {
			return false
		}
	default:
		return false
	}
	return true
}

// Expect checks that steps occur in evs in order (other events may come between) and that
// the Call names map one-to-one onto call_ids.
func Expect(t testing.TB, evs []callbridge.Event, steps []Step, cast Cast) {
	t.Helper()
	want := make([]castStep, len(steps))
	for i, s := range steps {
		want[i] = castStep{s, cast}
	}
	ExpectSequence(t, evs, want)
}

// ExpectNever checks that no event of evs matches one of steps (call names aside).
func ExpectNever(t testing.TB, evs []callbridge.Event, steps []Step, cast Cast) {
	t.Helper()
	for _, s := range steps {
		for _, ev := range evs {
			if s.Matches(ev, cast) {
				t.Errorf("unexpected event %s (matches %s)\nevents:\n%s", ev.Type, describe(s), Dump(evs))
				break
			}
		}
	}
}

// Expectation is one expected domain event of a sequence: a Step with its Cast in Expect,
// or a test's own description of an event.
type Expectation interface {
	// Matches reports whether ev is the expected event, call name aside.
	Matches(ev callbridge.Event) bool
	// CallName names the conversation of the event ("A", "B"; "" = not checked):
	// expectations with the same name must have the same call_id, different names different
	// ones.
	CallName() string
}

// ExpectSequence checks that want occurs in evs in order (other events may come between)
// and that the call names map one-to-one onto call_ids. Failure messages show an
// expectation with its String method if it has one, else as JSON.
func ExpectSequence[E Expectation](t testing.TB, evs []callbridge.Event, want []E) {
	t.Helper()
	names := map[string]callbridge.CallID{}
	ids := map[callbridge.CallID]string{}
	i := 0
	for _, s := range want {
		found := false
		for ; i < len(evs); i++ {
			if !s.Matches(evs[i]) {
				continue
			}
			if call := s.CallName(); call != "" {
				id := evs[i].CallID
				if prev, ok := names[call]; ok && prev != id {
					t.Errorf("step %s: call %s has call_id %s, earlier %s", describe(s), call, id, prev)
				}
				if prev, ok := ids[id]; ok && prev != call {
					t.Errorf("step %s: call_id %s already belongs to call %s", describe(s), id, prev)
				}
				names[call], ids[id] = id, call
			}
			found = true
			i++
			break
		}
		if !found {
			t.Fatalf("expected event not found (in order): %s\nevents:\n%s", describe(s), Dump(evs))
		}
	}
}

// castStep is a Step with the cast that plays its roles.
type castStep struct {
	step Step
	cast Cast
}

func (c castStep) Matches(ev callbridge.Event) bool { return c.step.Matches(ev, c.cast) }
func (c castStep) CallName() string                 { return c.step.Call }
func (c castStep) String() string                   { return describe(c.step) }

func describe(v any) string {
	if s, ok := v.(fmt.Stringer); ok {
		return s.String()
	}
	b, _ := json.Marshal(v)
	return string(b)
}

// CheckNothingStuck asserts that every call seen was cleared exactly once (except open calls
// still up at the end), and, when none is open, that no agent's last state is busy.
func CheckNothingStuck(t testing.TB, evs []callbridge.Event, open int) {
	t.Helper()
	seen := map[callbridge.CallID]bool{}
	cleared := map[callbridge.CallID]int{}
	last := map[callbridge.AgentKey]callbridge.AgentState{}
	for _, ev := range evs {
		if ev.Type.IsCall() {
			seen[ev.CallID] = true
			if ev.Type == callbridge.EventCallCleared {
				cleared[ev.CallID]++
			}
		}
		if a, ok := ev.Data.(*callbridge.Agent); ok {
			last[callbridge.AgentKey{Tenant: ev.Tenant, Agent: a.ID}] = a.State
		}
	}
	n := 0
	for id := range seen {
		switch cleared[id] {
		case 0:
			n++
		case 1:
		default:
			t.Errorf("call %s cleared %d times", id, cleared[id])
		}
	}
	if n != open {
		t.Errorf("%d calls left open at the end, want %d\n%s", n, open, Dump(evs))
	}
	if open == 0 {
		for k, st := range last {
			if st == callbridge.AgentBusy {
				t.Errorf("agent %s left busy at the end", k)
			}
		}
	}
}

// Dump renders domain events one per line, for failure messages.
func Dump(evs []callbridge.Event) string {
	var b strings.Builder
	for _, ev := range evs {
		switch d := ev.Data.(type) {
		case *callbridge.CallEvent:
			var conns []string
			for _, c := range d.Connections {
				conns = append(conns, string(c.Device)+":"+string(c.State))
			}
			fmt.Fprintf(&b, "  %3d %-26s %s call=%s dev=%s agent=%s cause=%s q=%s ani=%s dnis=%s from=%s to=%s diverted_to=%s data=%v conns=%v\n",
				ev.Seq, ev.Type, ev.Tenant, ev.CallID, d.Device, d.Agent, d.Cause, d.Queue, d.ANI, d.DNIS,
				d.TransferringDevice, d.TransferredTo, d.DivertedTo, d.AttachedData, conns)
		case *callbridge.Agent:
			fmt.Fprintf(&b, "  %3d %-26s %s agent=%s state=%s reason=%s queues=%v\n", ev.Seq, ev.Type, ev.Tenant, d.ID, d.State, d.Reason, d.Queues)
		}
	}
	return b.String()
}
