package sim_test

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/callbridge/callbridge"
	"github.com/callbridge/callbridge/internal/testenv"
	"github.com/callbridge/callbridge/sim"
)

// fastConfig is the simulated switch at about 100× speed, with robot agents.
func fastConfig() sim.Config {
	return sim.Config{
		Directory:    testDirectory(),
		Rand:         rand.New(rand.NewPCG(5, 6)),
		CallInterval: 50 * time.Millisecond, IVRTime: 10 * time.Millisecond,
		RingTimeout: 200 * time.Millisecond, CallerPatience: 2 * time.Second,
		TalkTimeMin: 100 * time.Millisecond, TalkTimeMax: 200 * time.Millisecond,
		AutoAnswerAgentLeg: 10 * time.Millisecond, AgentAnswer: 20 * time.Millisecond,
		CustomerAnswerMin: 10 * time.Millisecond, CustomerAnswerMax: 20 * time.Millisecond,
		MembersLoggedIn: true,
	}
}

// collector is an emit function that checks events with the shadow model and that emit is
// never called concurrently.
type collector struct {
	t      *testing.T
	inEmit atomic.Int32
	mu     sync.Mutex
	shadow *shadow
	events []callbridge.SwitchEvent
	err    error
}

func (c *collector) emit(ev callbridge.SwitchEvent) {
	if c.inEmit.Add(1) != 1 {
		c.fail(errors.New("emit called concurrently"))
	}
	defer c.inEmit.Add(-1)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err == nil {
		if err := c.shadow.apply(ev); err != nil {
			c.err = err
		}
	}
	c.events = append(c.events, ev)
}

func (c *collector) fail(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err == nil {
		c.err = err
	}
}

// wait polls until f matches an event, for up to 5 s.
func (c *collector) wait(f func(callbridge.SwitchEvent) bool) callbridge.SwitchEvent {
	c.t.Helper()
	deadline := time.Now().Add(testenv.Patience)
	for time.Now().Before(deadline) {
		c.mu.Lock()
		for _, ev := range c.events {
			if f(ev) {
				c.mu.Unlock()
				return ev
			}
		}
		err := c.err
		c.mu.Unlock()
		if err != nil {
			c.t.Fatalf("bad event stream: %v", err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	c.t.Fatalf("no matching event within %s", testenv.Patience)
	return callbridge.SwitchEvent{}
}

func (c *collector) has(f func(callbridge.SwitchEvent) bool) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, ev := range c.events {
		if f(ev) {
			return true
		}
	}
	return false
}

func TestDriverRunsInRealTime(t *testing.T) {
	d := sim.New(fastConfig(), nil)
	ctx := context.Background()
	err := d.Execute(ctx, callbridge.SwitchCommand{Type: callbridge.SwitchClearCall, Tenant: "acme", PBXCallID: "sim-000001"})
	wantCode(t, err, callbridge.EUnavailable)

	col := &collector{t: t, shadow: newShadow(testDirectory())}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- d.Run(runCtx, col.emit) }()
	col.wait(isEvent(callbridge.SwitchLinkUp, "", ""))
	col.mu.Lock()
	if len(col.events) < 2 || col.events[0].Type != callbridge.SwitchSnapshot || col.events[1].Type != callbridge.SwitchLinkUp {
		t.Fatalf("Run must start with snapshot and link_up, got %q", types(col.events))
	}
	col.mu.Unlock()
	if err := d.Run(runCtx, col.emit); err == nil {
		t.Fatal("a second concurrent Run was accepted")
	}

	// Agents go ready from several goroutines at once; robot agents then take calls.
	var wg sync.WaitGroup
	for _, dev := range []callbridge.DeviceID{"1001", "1002", "2001"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tenant := callbridge.TenantID("acme")
			if dev[0] == '2' {
				tenant = "globex"
			}
			if err := d.Execute(ctx, callbridge.SwitchCommand{Type: callbridge.SwitchSetMemberState, Tenant: tenant,
				Device: dev, Action: callbridge.MemberPause}); err != nil {
				col.fail(err)
			}
		}()
	}
	wg.Wait()
	ans := col.wait(isEvent(callbridge.SwitchConnected, "", "1001"))
	col.wait(isEvent(callbridge.SwitchCallCleared, ans.PBXCallID, ""))
	col.wait(isEvent(callbridge.SwitchConnected, "", "2001"))

	// Sync: once it returns, the events of a command have been emitted.
	testenv.Eventually(t, "1003 free for another make_call", func() bool {
		err := d.Execute(ctx, callbridge.SwitchCommand{Type: callbridge.SwitchMakeCall, Tenant: "acme", Device: "1003",
			To: "15557654321", CorrelationID: "c2c-sync"})
		if callbridge.ErrorCode(err) == callbridge.EConflict { // 1003 still on the previous call
			return false
		}
		if err != nil {
			t.Fatal(err)
		}
		return true
	})
	if err := d.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if !col.has(func(ev callbridge.SwitchEvent) bool { return ev.CorrelationID == "c2c-sync" }) {
		t.Fatal("after Sync the call_started of make_call is not emitted")
	}
	id, err := d.InjectCall(ctx, "globex", "+15551230002", "", map[string]string{"IVR_REASON": "sales"})
	if err != nil {
		t.Fatal(err)
	}
	col.wait(isEvent(callbridge.SwitchCallCleared, id, ""))
	if err := d.PressButton(ctx, "1002", sim.ButtonPause); err != nil {
		t.Fatal(err)
	}
	if err := d.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if !col.has(func(ev callbridge.SwitchEvent) bool {
		return ev.Type == callbridge.SwitchMemberState && ev.Device == "1002" && ev.Reason == sim.TelsetPauseReason
	}) {
		t.Fatal("telset pause not emitted after Sync")
	}
	if st := d.Stats(); st.CallsAnswered == 0 || st.CallsCleared == 0 {
		t.Fatalf("stats %+v", st)
	}

	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Run returned %v, want context.Canceled", err)
	}
	col.mu.Lock()
	if col.err != nil {
		t.Fatalf("bad event stream: %v", col.err)
	}
	col.mu.Unlock()
	wantCode(t, d.Execute(ctx, callbridge.SwitchCommand{Type: callbridge.SwitchClearCall, Tenant: "acme", PBXCallID: "sim-000001"}),
		callbridge.EUnavailable)

	// A new Run is a reconnect: snapshot and link_up first again.
	col2 := &collector{t: t, shadow: newShadow(testDirectory())}
	ctx2, cancel2 := context.WithCancel(ctx)
	defer cancel2()
	go func() { done <- d.Run(ctx2, col2.emit) }()
	col2.wait(isEvent(callbridge.SwitchLinkUp, "", ""))
	col2.mu.Lock()
	first := col2.events[0]
	col2.mu.Unlock()
	if first.Type != callbridge.SwitchSnapshot {
		t.Fatalf("reconnect starts with %s", first.Type)
	}
	cancel2()
	<-done
}

func TestDriverSyncWithoutRun(t *testing.T) {
	d := sim.New(fastConfig(), nil)
	if err := d.Sync(context.Background()); err != nil {
		t.Fatalf("Sync with nothing to emit: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := d.Execute(ctx, callbridge.SwitchCommand{Type: callbridge.SwitchClearCall, Tenant: "acme"}); !errors.Is(err, context.Canceled) {
		t.Fatalf("Execute with a done context: %v", err)
	}
}
