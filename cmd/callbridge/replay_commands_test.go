package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/callbridge/callbridge"
	"github.com/callbridge/callbridge/asterisk"
	"github.com/callbridge/callbridge/capture"
	"github.com/callbridge/callbridge/engine"
	"github.com/callbridge/callbridge/internal/fixtures"
	"github.com/callbridge/callbridge/internal/replay"
	"github.com/callbridge/callbridge/internal/testenv"
	"github.com/callbridge/callbridge/node"
	"github.com/callbridge/callbridge/pbxtest"
)

// The tests in this file run desktop commands through the Commander (as the WebSocket
// gateway does) while a recording of a real Asterisk 22 plays, at the recorded pace, through
// the replay server, the real AMI client, the Asterisk driver and the engine. They check the
// AMI action each command sends (the one the recording client sent at that point, or the
// documented refusal) and that the recorded switch events, now correlated with the command,
// give the CSTA story: the transfer's attached data and notes in the receiver's
// call.delivered, the consultation's call_id in the reply, and so on.

// amiTap is a TCP proxy between the driver and the replay server that keeps every byte the
// driver sends.
type amiTap struct {
	ln   net.Listener
	mu   sync.Mutex
	sent bytes.Buffer
}

func newAMITap(t *testing.T, upstream string) *amiTap {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tap := &amiTap{ln: ln}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			u, err := net.Dial("tcp", upstream)
			if err != nil {
				c.Close()
				continue
			}
			go func() { io.Copy(c, u); c.Close() }()
			// Record before forwarding: once the switch answers, the action is already in sent.
			go func() { io.Copy(io.MultiWriter(tapWriter{tap}, u), c); u.Close() }()
		}
	}()
	return tap
}

type tapWriter struct{ t *amiTap }

func (w tapWriter) Write(p []byte) (int, error) {
	w.t.mu.Lock()
	defer w.t.mu.Unlock()
	return w.t.sent.Write(p)
}

// actions returns the driver's actions named name, each as its "Key: value" lines.
func (tap *amiTap) actions(name string) []string {
	tap.mu.Lock()
	defer tap.mu.Unlock()
	var out []string
	for _, a := range strings.Split(tap.sent.String(), "\r\n\r\n") {
		if strings.HasPrefix(a, "Action: "+name+"\r\n") {
			out = append(out, a+"\r\n")
		}
	}
	return out
}

// wantAction checks that the driver sent action name with every one of the lines.
func (tap *amiTap) wantAction(t *testing.T, name string, lines ...string) {
	t.Helper()
	for _, a := range tap.actions(name) {
		ok := true
		for _, l := range lines {
			ok = ok && strings.Contains(a, "\r\n"+l+"\r\n")
		}
		if ok {
			return
		}
	}
	tap.mu.Lock()
	all := tap.sent.String()
	tap.mu.Unlock()
	t.Fatalf("no %s action with %q; sent %q", name, lines, all)
}

// liveReplay is a node on the Asterisk driver, connected (through an amiTap) to a replay
// server playing one recording at the recorded pace.
type liveReplay struct {
	t    *testing.T
	n    *node.Node
	tap  *amiTap
	srv  *capture.AMIServer
	mu   sync.Mutex
	evs  []callbridge.Event
	wake chan struct{}
	i    int // events consumed by next
}

func startLiveReplay(t *testing.T, name string) *liveReplay {
	t.Helper()
	recs, err := capture.ReadFile(filepath.Join(fixtures.Dir(t, "asterisk-22"), name+".ami.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	p, err := loadReplayProvisioning("")
	if err != nil {
		t.Fatal(err)
	}
	srv := capture.NewAMIServer([]capture.Script{{Records: recs}}, capture.ServerOptions{Speed: 1})
	if err := srv.Listen("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	tap := newAMITap(t, srv.Addr())
	drv := asterisk.New(asterisk.Config{Addr: tap.ln.Addr().String(), Username: "cti", Secret: "cti-secret"})
	eng, err := engine.New(engine.Config{
		Directory: callbridge.Directory{Tenants: p.Tenants}, Capabilities: drv.Capabilities(),
		NewCallID: newCallID, Now: replay.AMIStart(recs),
	})
	if err != nil {
		t.Fatal(err)
	}
	r := &liveReplay{t: t, tap: tap, srv: srv, wake: make(chan struct{}, 1)}
	r.n = node.New(node.Config{Driver: drv, Engine: eng, Log: node.Synchronous(&replay.Log{}), Logger: slog.New(slog.DiscardHandler),
		OnEvent: func(ev callbridge.Event) {
			r.mu.Lock()
			r.evs = append(r.evs, ev)
			r.mu.Unlock()
			select {
			case r.wake <- struct{}{}:
			default:
			}
		}})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { r.n.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	deadline := time.Now().Add(testenv.Patience)
	for r.n.Ready() != nil {
		if time.Now().After(deadline) {
			t.Fatal("the driver never became ready")
		}
		time.Sleep(5 * time.Millisecond)
	}
	return r
}

// next waits for the next event (after the last one next returned) that matches s.
func (r *liveReplay) next(s step) callbridge.Event {
	r.t.Helper()
	deadline := time.After(testenv.Patience)
	for {
		r.mu.Lock()
		for ; r.i < len(r.evs); r.i++ {
			if s.Matches(r.evs[r.i]) {
				ev := r.evs[r.i]
				r.i++
				r.mu.Unlock()
				return ev
			}
		}
		r.mu.Unlock()
		select {
		case <-r.wake:
		case <-deadline:
			r.mu.Lock()
			defer r.mu.Unlock()
			r.t.Fatalf("event not seen: %s\nevents:\n%s", s, pbxtest.Dump(r.evs))
		}
	}
}

// do runs a command of agent (role agent) in tenant.
func (r *liveReplay) do(tenant callbridge.TenantID, agent callbridge.AgentID, c callbridge.Command) (callbridge.CommandResult, error) {
	c.Tenant, c.Agent, c.Role = tenant, agent, callbridge.RoleAgent
	ctx, cancel := context.WithTimeout(context.Background(), testenv.Patience)
	defer cancel()
	return r.n.Do(ctx, c)
}

func (r *liveReplay) mustDo(tenant callbridge.TenantID, agent callbridge.AgentID, c callbridge.Command) callbridge.CommandResult {
	r.t.Helper()
	res, err := r.do(tenant, agent, c)
	if err != nil {
		r.t.Fatalf("%s: %v", c.Name, err)
	}
	return res
}

func callData(ev callbridge.Event) *callbridge.CallEvent { return ev.Data.(*callbridge.CallEvent) }

// TestReplayCommands runs the commands of the recordings through the Commander while the
// recordings play. Asterisk features each needs: BlindTransfer and Atxfer (transfers,
// consultations; features.conf atxfer, TRANSFER_CONTEXT), PlayDTMF into the channel with the
// atxferthreeway code (conference), Originate (make_call), Hangup (clear_connection,
// clear_call), QueueAdd/QueuePause/QueueRemove (agent state). hold_call, retrieve_call and
// answer_call are refused with not_supported: AMI has no action for them on a PJSIP phone.
func TestReplayCommands(t *testing.T) {
	t.Run("blind-transfer", func(t *testing.T) {
		t.Parallel()
		r := startLiveReplay(t, "blind-transfer")
		est := r.next(step{Type: callbridge.EventCallEstablished, Device: "1001"})
		r.mustDo("acme", "1001", callbridge.Command{Name: callbridge.CmdUpdateCallData, CallID: est.CallID,
			AttachedData: map[string]string{"crm_case": "C-1"}})
		r.mustDo("acme", "1001", callbridge.Command{Name: callbridge.CmdSingleStepTransfer, CallID: est.CallID, To: "1002",
			Notes: "VIP caller", AttachedData: map[string]string{"tier": "gold"}})
		r.tap.wantAction(t, "BlindTransfer", "Channel: PJSIP/1001-00000006", "Context: transfer-targets", "Exten: 1002")
		r.next(step{Type: callbridge.EventCallTransferred, From: "1001"})
		del := r.next(step{Type: callbridge.EventCallDelivered, Device: "1002"})
		if d := callData(del); del.CallID != est.CallID || d.AttachedData["notes"] != "VIP caller" || d.AttachedData["tier"] != "gold" ||
			d.AttachedData["crm_case"] != "C-1" || d.AttachedData["IVR_ACCOUNT"] != "24680" {
			t.Fatalf("receiver's pop = %+v", d)
		}
		r.next(step{Type: callbridge.EventCallCleared})
		// The first agent saves the disposition after the call.
		r.mustDo("acme", "1001", callbridge.Command{Name: callbridge.CmdSetDisposition, CallID: est.CallID, Disposition: "transferred", Notes: "to Bob"})
		if d := callData(r.next(step{Type: callbridge.EventCallDispositionSet})); d.Disposition != "transferred" || d.Agent != "1001" {
			t.Fatalf("disposition = %+v", d)
		}
	})

	t.Run("attended-transfer-b", func(t *testing.T) {
		t.Parallel()
		r := startLiveReplay(t, "attended-transfer-b")
		est := r.next(step{Type: callbridge.EventCallEstablished, Device: "1003"})
		res := r.mustDo("acme", "1003", callbridge.Command{Name: callbridge.CmdConsultationCall, CallID: est.CallID, To: "1004", Notes: "wants a refund"})
		if res.CallID == "" || res.CallID == est.CallID {
			t.Fatalf("consultation_call result = %+v", res)
		}
		r.tap.wantAction(t, "Atxfer", "Channel: PJSIP/1003-00000001", "Context: transfer-targets", "Exten: 1004")
		del := r.next(step{Type: callbridge.EventCallDelivered, Device: "1004"})
		if d := callData(del); del.CallID != res.CallID || d.ConsultOf != est.CallID || d.AttachedData["notes"] != "wants a refund" || d.AttachedData["IVR_ACCOUNT"] != "11223" {
			t.Fatalf("consulted agent's pop = %+v (call %s, want %s)", d, del.CallID, res.CallID)
		}
		x := r.next(step{Type: callbridge.EventCallTransferred, From: "1003", To: "1004"})
		if x.CallID != est.CallID || callData(x).ConsultCallID != res.CallID || callData(x).AttachedData["notes"] != "wants a refund" {
			t.Fatalf("transferred = %+v", callData(x))
		}
	})

	t.Run("conference-threeway", func(t *testing.T) {
		t.Parallel()
		r := startLiveReplay(t, "conference-threeway")
		est := r.next(step{Type: callbridge.EventCallEstablished, Device: "1001"})
		res := r.mustDo("acme", "1001", callbridge.Command{Name: callbridge.CmdConsultationCall, CallID: est.CallID, To: "1002"})
		r.next(step{Type: callbridge.EventCallEstablished, Device: "1002"})
		r.mustDo("acme", "1001", callbridge.Command{Name: callbridge.CmdConferenceCall, CallID: est.CallID, ConsultCallID: res.CallID})
		r.tap.wantAction(t, "PlayDTMF", "Channel: PJSIP/1001-00000008", "Digit: *", "Receive: true")
		r.tap.wantAction(t, "PlayDTMF", "Channel: PJSIP/1001-00000008", "Digit: 3", "Receive: true")
		if c := r.next(step{Type: callbridge.EventCallConferenced}); c.CallID != est.CallID || callData(c).ConsultCallID != res.CallID {
			t.Fatalf("conferenced = %+v", callData(c))
		}
	})

	t.Run("click-to-call", func(t *testing.T) {
		t.Parallel()
		r := startLiveReplay(t, "click-to-call")
		res := r.mustDo("acme", "1003", callbridge.Command{Name: callbridge.CmdMakeCall, To: "15557654321",
			AttachedData: map[string]string{"crm_contact": "K-7"}, IdempotencyKey: "dial-1"})
		again := r.mustDo("acme", "1003", callbridge.Command{Name: callbridge.CmdMakeCall, To: "15557654321",
			AttachedData: map[string]string{"crm_contact": "K-7"}, IdempotencyKey: "dial-1"})
		if again != res || len(r.tap.actions("Originate")) != 1 {
			t.Fatalf("retry = %+v (first %+v), %d Originate actions", again, res, len(r.tap.actions("Originate")))
		}
		r.tap.wantAction(t, "Originate", "Channel: PJSIP/1003", "Context: outbound-acme", "Exten: 15557654321", "Variable: __CTI_TENANT=acme")
		o := r.next(step{Type: callbridge.EventCallOriginated, Device: "1003"})
		if o.CallID != res.CallID || callData(o).AttachedData["crm_contact"] != "K-7" {
			t.Fatalf("originated = %s %+v, want call %s", o.CallID, callData(o), res.CallID)
		}
		r.next(step{Type: callbridge.EventCallEstablished, Device: "15557654321"})
	})

	t.Run("click-to-call-busy", func(t *testing.T) {
		t.Parallel()
		r := startLiveReplay(t, "click-to-call-busy")
		res := r.mustDo("acme", "1003", callbridge.Command{Name: callbridge.CmdMakeCall, To: "15559990486"})
		if f := r.next(step{Type: callbridge.EventCallFailed, Cause: callbridge.CauseBusy}); f.CallID != res.CallID {
			t.Fatalf("failed call %s, want %s", f.CallID, res.CallID)
		}
		r.next(step{Type: callbridge.EventCallCleared, Cause: callbridge.CauseBusy})
	})

	t.Run("hold-retrieve-b", func(t *testing.T) {
		t.Parallel()
		r := startLiveReplay(t, "hold-retrieve-b")
		est := r.next(step{Type: callbridge.EventCallEstablished, Device: "1002"})
		for _, name := range []callbridge.CommandName{callbridge.CmdHoldCall, callbridge.CmdAnswerCall} {
			_, err := r.do("acme", "1002", callbridge.Command{Name: name, CallID: est.CallID})
			if callbridge.ErrorCode(err) != callbridge.ENotSupported || !strings.Contains(callbridge.ErrorMessage(err), "phone") {
				t.Fatalf("%s on Asterisk: %v, want not_supported telling to use the phone", name, err)
			}
		}
		// The phone's own hold is followed.
		r.next(step{Type: callbridge.EventCallHeld, Device: "1002"})
		_, err := r.do("acme", "1002", callbridge.Command{Name: callbridge.CmdRetrieveCall, CallID: est.CallID})
		if callbridge.ErrorCode(err) != callbridge.ENotSupported {
			t.Fatalf("retrieve_call on Asterisk: %v", err)
		}
		r.next(step{Type: callbridge.EventCallRetrieved, Device: "1002"})
	})

	t.Run("inbound-agent-hangup: clear_connection", func(t *testing.T) {
		t.Parallel()
		r := startLiveReplay(t, "inbound-agent-hangup")
		est := r.next(step{Type: callbridge.EventCallEstablished, Device: "2001"})
		_, err := r.do("globex", "2002", callbridge.Command{Name: callbridge.CmdClearConnection, CallID: est.CallID})
		if callbridge.ErrorCode(err) != callbridge.EForbidden {
			t.Fatalf("another agent hanging up: %v", err)
		}
		r.mustDo("globex", "2001", callbridge.Command{Name: callbridge.CmdClearConnection, CallID: est.CallID})
		r.tap.wantAction(t, "Hangup", "Cause: 16")
		if !strings.Contains(r.tap.actions("Hangup")[0], "Channel: PJSIP/2001-") {
			t.Fatalf("Hangup of the wrong channel: %q", r.tap.actions("Hangup"))
		}
		r.next(step{Type: callbridge.EventCallConnectionCleared, Device: "2001"})
	})

	t.Run("inbound-answered: clear_call", func(t *testing.T) {
		t.Parallel()
		r := startLiveReplay(t, "inbound-answered")
		est := r.next(step{Type: callbridge.EventCallEstablished, Device: "1001"})
		_, err := r.do("acme", "1001", callbridge.Command{Name: callbridge.CmdSingleStepTransfer, CallID: est.CallID, To: "1002;PJSIP/9"})
		if callbridge.ErrorCode(err) != callbridge.EInvalid || len(r.tap.actions("BlindTransfer")) != 0 {
			t.Fatalf("dial-string metacharacters: %v", err)
		}
		r.mustDo("acme", "1001", callbridge.Command{Name: callbridge.CmdClearCall, CallID: est.CallID})
		if n := len(r.tap.actions("Hangup")); n < 2 {
			t.Fatalf("clear_call sent %d Hangup actions, want one per party", n)
		}
		r.next(step{Type: callbridge.EventCallCleared})
	})

	t.Run("agent-state", func(t *testing.T) {
		t.Parallel()
		r := startLiveReplay(t, "agent-state")
		_, err := r.do("acme", "1010", callbridge.Command{Name: callbridge.CmdSetAgentState, State: callbridge.AgentNotReady, Reason: "nap"})
		if callbridge.ErrorCode(err) != callbridge.EInvalid {
			t.Fatalf("unknown reason code: %v", err)
		}
		// The resync found 1010 a paused member of acme-support (the recording's QueueStatus):
		// ready unpauses it.
		r.mustDo("acme", "1010", callbridge.Command{Name: callbridge.CmdSetAgentState, State: callbridge.AgentReady})
		r.tap.wantAction(t, "QueuePause", "Interface: PJSIP/1010", "Paused: false")
		r.next(step{Type: callbridge.EventAgentStateChanged, Agent: "1010", State: callbridge.AgentReady})
		r.mustDo("acme", "1010", callbridge.Command{Name: callbridge.CmdSetAgentState, State: callbridge.AgentNotReady, Reason: "lunch"})
		r.tap.wantAction(t, "QueuePause", "Interface: PJSIP/1010", "Paused: true", "Reason: lunch")
		r.next(step{Type: callbridge.EventAgentStateChanged, Agent: "1010", State: callbridge.AgentNotReady, Reason: "lunch"})
		r.mustDo("acme", "1010", callbridge.Command{Name: callbridge.CmdSetAgentState, State: callbridge.AgentLoggedOut})
		r.tap.wantAction(t, "QueueRemove", "Queue: acme-support", "Interface: PJSIP/1010")
		r.next(step{Type: callbridge.EventAgentStateChanged, Agent: "1010", State: callbridge.AgentLoggedOut})
		// Logging on again adds the agent to their configured queues.
		r.mustDo("acme", "1010", callbridge.Command{Name: callbridge.CmdSetAgentState, State: callbridge.AgentReady})
		r.tap.wantAction(t, "QueueAdd", "Queue: acme-load", "Interface: PJSIP/1010", "MemberName: Judy Acme", "StateInterface: PJSIP/1010", "Paused: false")
		r.next(step{Type: callbridge.EventAgentLoggedOn, Agent: "1010"})
	})
}
