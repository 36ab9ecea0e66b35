package engine_test

import (
	"testing"
	"time"

	"github.com/callbridge/callbridge"
	"github.com/callbridge/callbridge/engine"
)

// newPresenceFixture is a fixture whose engine has a 30 s desktop grace and a 60 s heartbeat
// timeout.
func newPresenceFixture(t *testing.T) *fixture {
	t.Helper()
	e, err := engine.New(engine.Config{Directory: testDirectory(), Capabilities: allCaps(), NewCallID: idGen(), Now: t0,
		DesktopGrace: 30 * time.Second, HeartbeatTimeout: 60 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{t: t, e: e, now: t0}
}

func (f *fixture) attach(agent callbridge.AgentID, desk string) engine.Output {
	f.t.Helper()
	out, err := f.e.DesktopAttached(acme, agent, desk, f.now)
	if err != nil {
		f.t.Fatal(err)
	}
	checkOutput(f.t, out)
	return out
}

func (f *fixture) detach(agent callbridge.AgentID, desk string) engine.Output {
	f.t.Helper()
	out, err := f.e.DesktopDetached(acme, agent, desk, f.now)
	if err != nil {
		f.t.Fatal(err)
	}
	checkOutput(f.t, out)
	return out
}

func (f *fixture) heartbeat(agent callbridge.AgentID, desk string) {
	f.t.Helper()
	out, err := f.e.DesktopHeartbeat(acme, agent, desk, f.now)
	if err != nil {
		f.t.Fatal(err)
	}
	checkOutput(f.t, out)
}

// lostPause is the pause the engine outputs for desktop_lost.
func lostPause(dev callbridge.DeviceID, iface, name string) callbridge.SwitchCommand {
	return callbridge.SwitchCommand{Type: callbridge.SwitchSetMemberState, Tenant: acme, Device: dev, Interface: iface,
		Action: callbridge.MemberPause, Paused: true, Reason: callbridge.ReasonDesktopLost, MemberName: name}
}

func TestDesktopLost(t *testing.T) {
	t.Run("the last desktop gone for the grace time makes the agent not_ready desktop_lost", func(t *testing.T) {
		f := newPresenceFixture(t)
		f.logOn("1002", "acme-support")
		f.attach("bob", "tab1")
		f.attach("bob", "tab2")
		f.wait(10 * time.Second)
		f.detach("bob", "tab1")
		f.wait(time.Minute)
		f.heartbeat("bob", "tab2")
		if out := f.tick(); len(out.Events)+len(out.Commands) != 0 {
			t.Fatalf("one tab is left, yet %+v", out)
		}
		wantTypes(t, f.detach("bob", "tab2"))
		f.wait(29 * time.Second)
		if out := f.tick(); len(out.Events)+len(out.Commands) != 0 {
			t.Fatalf("within the grace time: %+v", out)
		}
		av, _ := f.e.Availability(acme, "bob")
		if !av.Routable || av.Desktops != 0 || !av.DesktopLostAfter.Equal(f.now.Add(time.Second)) {
			t.Fatalf("availability during grace = %+v", av)
		}
		f.wait(time.Second)
		out := f.tick()
		if a := agentData(only(t, out, callbridge.EventAgentStateChanged)); a.State != callbridge.AgentNotReady || a.Reason != callbridge.ReasonDesktopLost {
			t.Fatalf("bob = %+v", a)
		}
		if len(out.Commands) != 1 || !cmdEqual(out.Commands[0], lostPause("1002", "", "Bob Acme")) {
			t.Fatalf("commands = %+v", out.Commands)
		}
		// The switch's echo changes nothing; a desktop coming back keeps desktop_lost.
		wantTypes(t, f.ev(member("1002", "acme-support", true, true, callbridge.ReasonDesktopLost)))
		wantTypes(t, f.attach("bob", "tab3"))
		if a := f.agent(acme, "bob"); a.State != callbridge.AgentNotReady || a.Reason != callbridge.ReasonDesktopLost {
			t.Fatalf("bob after reconnect = %+v", a)
		}
		av, _ = f.e.Availability(acme, "bob")
		if av.Routable || len(av.Reasons) != 1 || av.Reasons[0].Reason != callbridge.ReasonDesktopLost ||
			av.Reasons[0].Cause.Event != "desktop_lost" || av.Reasons[0].Cause.Source != "callbridge" {
			t.Fatalf("availability = %+v", av)
		}
		// The agent chooses ready again.
		_, out = f.mustDo(stateCmd("bob", callbridge.AgentReady, ""))
		if a := agentData(only(t, out, callbridge.EventAgentStateChanged)); a.State != callbridge.AgentReady {
			t.Fatalf("bob = %+v", a)
		}
	})

	t.Run("a desktop back within the grace time cancels it", func(t *testing.T) {
		f := newPresenceFixture(t)
		f.logOn("1002", "acme-support")
		f.attach("bob", "tab1")
		f.detach("bob", "tab1")
		f.wait(20 * time.Second)
		f.attach("bob", "tab2")
		f.wait(time.Hour)
		for i := 0; i < 60; i++ {
			f.heartbeat("bob", "tab2")
			f.wait(50 * time.Second)
			if out := f.tick(); len(out.Events)+len(out.Commands) != 0 {
				t.Fatalf("tick %d: %+v", i, out)
			}
		}
	})

	t.Run("a desktop that stops heartbeating counts as gone", func(t *testing.T) {
		f := newPresenceFixture(t)
		f.logOn("1002", "acme-support")
		f.attach("bob", "tab1")
		f.wait(59 * time.Second)
		f.tick()
		f.wait(time.Second) // heartbeat timeout: gone at t0+60s
		f.tick()
		f.wait(29 * time.Second)
		if out := f.tick(); len(out.Commands) != 0 {
			t.Fatalf("lost too early: %+v", out)
		}
		f.wait(time.Second)
		if out := f.tick(); len(out.Commands) != 1 || f.agent(acme, "bob").Reason != callbridge.ReasonDesktopLost {
			t.Fatalf("not lost after timeout + grace: %+v", out)
		}
	})

	t.Run("a ringing call with no desktop pauses at once", func(t *testing.T) {
		f := newPresenceFixture(t)
		f.logOn("1002", "acme-support")
		f.attach("bob", "tab1")
		f.detach("bob", "tab1")
		f.wait(2 * time.Second)
		out := f.evs(inbound("p1", didAcme, ivr()), queued("p1", "acme-support"), alerting("p1", "1002"))
		if len(out.Commands) != 1 || !cmdEqual(out.Commands[0], lostPause("1002", "", "Bob Acme")) {
			t.Fatalf("commands = %+v", out.Commands)
		}
		if a := f.agent(acme, "bob"); a.State != callbridge.AgentBusy || a.NextState != callbridge.AgentNotReady || a.NextReason != callbridge.ReasonDesktopLost {
			t.Fatalf("bob = %+v", a)
		}
		// The call rings out at the empty seat; bob is not offered more.
		out = f.ev(callbridge.SwitchEvent{Type: callbridge.SwitchFailed, PBXCallID: "p1", Device: "1002", Cause: callbridge.CauseNoAnswer})
		if a := f.agent(acme, "bob"); a.State != callbridge.AgentNotReady || a.Reason != callbridge.ReasonDesktopLost || len(out.Commands) != 0 {
			t.Fatalf("bob = %+v, commands %+v", a, out.Commands)
		}
		// Also a ringing call when the last desktop goes.
		f.logOn("1003", "acme-support")
		f.attach("carol", "c1")
		f.evs(alerting("p1", "1003"))
		out = f.detach("carol", "c1")
		if len(out.Commands) != 1 || out.Commands[0].Device != "1003" || out.Commands[0].Reason != callbridge.ReasonDesktopLost {
			t.Fatalf("commands = %+v", out.Commands)
		}
	})

	t.Run("agents who never had a desktop and agents paused by themselves are left alone", func(t *testing.T) {
		f := newPresenceFixture(t)
		f.logOn("1002", "acme-support")                           // phone-only agent
		f.ev(member("1003", "acme-support", true, true, "lunch")) // paused on the phone
		f.attach("carol", "c1")
		f.detach("carol", "c1")
		f.wait(time.Hour)
		if out := f.tick(); len(out.Events)+len(out.Commands) != 0 {
			t.Fatalf("tick: %+v", out)
		}
		if a := f.agent(acme, "carol"); a.Reason != "lunch" {
			t.Fatalf("carol = %+v", a)
		}
	})

	t.Run("desktop_lost during wrap-up ends it", func(t *testing.T) {
		f := newPresenceFixture(t)
		f.logOn("1004", "acme-vip") // 30 s wrap-up
		f.attach("dave", "tab1")
		f.evs(inbound("p1", didAcme, ivr()), queued("p1", "acme-vip"), alerting("p1", "1004"), connected("p1", "1004"))
		f.detach("dave", "tab1")
		f.wait(10 * time.Second)
		out := f.ev(cleared("p1"))
		if a := f.agent(acme, "dave"); a.State != callbridge.AgentWorkingAfterCall || len(out.Commands) != 1 {
			t.Fatalf("dave = %+v, commands %+v", a, out.Commands)
		}
		f.ev(member("1004", "acme-vip", true, true, callbridge.ReasonWrapUp))
		f.wait(20 * time.Second) // grace over, 10 s of wrap-up left
		out = f.tick()
		a := agentData(only(t, out, callbridge.EventAgentStateChanged))
		if a.PreviousState != callbridge.AgentWorkingAfterCall || a.State != callbridge.AgentNotReady || a.Reason != callbridge.ReasonDesktopLost {
			t.Fatalf("dave = %+v", a)
		}
		if len(out.Commands) != 1 || !cmdEqual(out.Commands[0], lostPause("1004", "", "Dave Acme")) {
			t.Fatalf("commands = %+v", out.Commands)
		}
		// The wrap-up timer no longer unpauses anything.
		f.wait(time.Minute)
		if out := f.tick(); len(out.Commands)+len(out.Events) != 0 {
			t.Fatalf("tick after: %+v", out)
		}
	})

	t.Run("bad presence input is refused and changes nothing", func(t *testing.T) {
		f := newPresenceFixture(t)
		before := state(f.e)
		_, err := f.e.DesktopAttached(acme, "nobody", "d", f.now)
		wantCode(t, err, callbridge.ENotFound)
		_, err = f.e.DesktopAttached("nope", "bob", "d", f.now)
		wantCode(t, err, callbridge.ENotFound)
		_, err = f.e.DesktopAttached(acme, "bob", "", f.now)
		wantCode(t, err, callbridge.EInvalid)
		_, err = f.e.DesktopHeartbeat(acme, "bob", "a\r\nb", f.now)
		wantCode(t, err, callbridge.EInvalid)
		out, err := f.e.DesktopDetached(acme, "bob", "never-attached", f.now)
		if err != nil || len(out.Events)+len(out.Commands) != 0 {
			t.Fatalf("detach unknown: %v %+v", err, out)
		}
		sameState(t, before, state(f.e))
	})
}

func TestDeviceUnavailable(t *testing.T) {
	f := newFixture(t)
	f.logOn("1002", "acme-support")
	f.wait(time.Second)
	devState := func(st callbridge.DeviceStatus) callbridge.SwitchEvent {
		return callbridge.SwitchEvent{Type: callbridge.SwitchDeviceState, Device: "1002", DeviceStatus: st}
	}
	wantTypes(t, f.ev(devState(callbridge.DeviceIdle)))
	out := f.ev(devState(callbridge.DeviceUnavailable))
	a := agentData(only(t, out, callbridge.EventAgentStateChanged))
	if a.State != callbridge.AgentNotReady || a.Reason != callbridge.ReasonDeviceUnavailable || len(out.Commands) != 0 {
		t.Fatalf("bob = %+v, commands %+v", a, out.Commands)
	}
	av, err := f.e.Availability(acme, "bob")
	if err != nil || av.Routable || len(av.Reasons) != 1 || av.Reasons[0].Code != callbridge.UnavailDeviceUnavailable ||
		av.Reasons[0].Cause.Event != "device_state" || !av.Reasons[0].Cause.Time.Equal(f.now) || av.DeviceStatus != callbridge.DeviceUnavailable {
		t.Fatalf("availability = %+v, %v", av, err)
	}
	f.wait(time.Minute)
	out = f.ev(devState(callbridge.DeviceIdle))
	if a := agentData(only(t, out, callbridge.EventAgentStateChanged)); a.State != callbridge.AgentReady {
		t.Fatalf("bob = %+v", a)
	}
	// A snapshot's member status counts too.
	f.ev(snapshot(callbridge.Snapshot{Members: []callbridge.SnapshotMember{{Device: "1002", Queue: "acme-support", Status: callbridge.DeviceUnavailable}}}))
	if a := f.agent(acme, "bob"); a.Reason != callbridge.ReasonDeviceUnavailable {
		t.Fatalf("bob after snapshot = %+v", a)
	}
	// Other devices and other tenants' device states change nothing.
	before := state(f.e)
	f.ev(callbridge.SwitchEvent{Type: callbridge.SwitchDeviceState, Device: "9999", DeviceStatus: callbridge.DeviceUnavailable})
	f.ev(callbridge.SwitchEvent{Type: callbridge.SwitchDeviceState, Tenant: globex, Device: "1003", DeviceStatus: callbridge.DeviceUnavailable})
	sameState(t, before, state(f.e))
}
