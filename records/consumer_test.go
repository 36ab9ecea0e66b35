package records_test

import (
	"context"
	"testing"
	"time"

	"github.com/callbridge/callbridge"
	"github.com/callbridge/callbridge/records"
)

// countStates returns how many agent.state_changed events were appended, and how many state
// rows the store has.
func countStates(t *testing.T, w *world) (events, rows int) {
	t.Helper()
	for _, ev := range w.appended {
		if ev.Type == callbridge.EventAgentStateChanged {
			events++
		}
	}
	recs, _, err := w.store.AgentStates(context.Background(), "acme", callbridge.AgentStateFilter{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	return events, len(recs)
}

func waitStates(t *testing.T, w *world) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for {
		events, rows := countStates(t, w)
		if events == rows {
			return
		}
		if rows > events {
			t.Fatalf("%d state rows for %d events: applied twice", rows, events)
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d state rows for %d events", rows, events)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestConsumerResumesExactlyOnce: a consumer stops halfway through a call; the rest of the
// call happens while none runs; then two consumers (two nodes) start on the same store. The
// record is the same as with one uninterrupted consumer, and no event is applied twice.
func TestConsumerResumesExactlyOnce(t *testing.T) {
	w := newWorld(t)
	start := func() (stop func()) {
		c := records.New(records.Config{
			Log: w.log, Store: w.store, Logger: testLogger(t),
			Tenants: func(context.Context) ([]callbridge.TenantID, error) { return []callbridge.TenantID{"acme"}, nil },
		})
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { defer close(done); c.Run(ctx) }()
		return func() { cancel(); <-done }
	}

	stop := start()
	alice := func(name callbridge.CommandName, f func(*callbridge.Command)) {
		cmd := callbridge.Command{Name: name, Agent: "alice"}
		if f != nil {
			f(&cmd)
		}
		w.do(cmd)
	}
	w.at(0)
	alice(callbridge.CmdSetAgentState, func(c *callbridge.Command) { c.State, c.Reason = callbridge.AgentNotReady, "break" })
	w.at(10)
	id := w.inject("+15551230001", map[string]string{"IVR_ACCOUNT": "12345"})
	w.at(13)
	w.at(20)
	alice(callbridge.CmdSetAgentState, func(c *callbridge.Command) { c.State = callbridge.AgentReady })
	w.at(24)
	alice(callbridge.CmdAnswerCall, func(c *callbridge.Command) { c.CallID = id })
	waitStates(t, w)
	stop()

	w.at(60)
	alice(callbridge.CmdHoldCall, func(c *callbridge.Command) { c.CallID = id })
	w.at(75)
	alice(callbridge.CmdRetrieveCall, func(c *callbridge.Command) { c.CallID = id })
	w.at(100)
	alice(callbridge.CmdClearConnection, func(c *callbridge.Command) { c.CallID = id })
	w.at(110)

	stop1, stop2 := start(), start()
	defer stop1()
	defer stop2()
	rec := w.waitRecord(id, "complete", func(r callbridge.CallRecord) bool { return r.Complete })
	waitStates(t, w)
	if rec.WaitSeconds != 7 || rec.RingSeconds != 4 || rec.TalkSeconds != 61 || rec.HoldSeconds != 15 || rec.WrapUpSeconds != 10 {
		t.Fatalf("record after a restart: %+v", rec)
	}
	if pos, err := w.store.ConsumerPosition(context.Background(), records.ConsumerName("acme")); err != nil || pos == 0 {
		t.Fatalf("position %d, %v", pos, err)
	}
}
