package asterisk_test

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/callbridge/callbridge"
	"github.com/callbridge/callbridge/asterisk"
	"github.com/callbridge/callbridge/asterisk/ami"
	"github.com/callbridge/callbridge/capture"
	"github.com/callbridge/callbridge/internal/testenv"
)

// recorder collects what a Driver emits and the frames it writes.
type recorder struct {
	mu     sync.Mutex
	evs    []callbridge.SwitchEvent
	out    []ami.Message
	wake   chan struct{}
	inEmit bool
	t      testing.TB
}

func newRecorder(t testing.TB) *recorder { return &recorder{wake: make(chan struct{}, 1), t: t} }

func (r *recorder) emit(e callbridge.SwitchEvent) {
	r.mu.Lock()
	if r.inEmit {
		r.t.Errorf("emit called concurrently")
	}
	r.inEmit = true
	r.evs = append(r.evs, e)
	r.inEmit = false
	r.mu.Unlock()
	r.poke()
}

func (r *recorder) tap(dir, raw string) {
	if dir != "out" {
		return
	}
	r.mu.Lock()
	r.out = append(r.out, ami.ParseMessage(raw))
	r.mu.Unlock()
}

func (r *recorder) poke() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

func (r *recorder) events() []callbridge.SwitchEvent {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.evs)
}

// actions returns the frames written for action name (ActionID removed), in order.
func (r *recorder) actions(name string) []ami.Message {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []ami.Message
	for _, m := range r.out {
		if strings.EqualFold(m.Get("Action"), name) {
			out = append(out, withoutID(m))
		}
	}
	return out
}

func withoutID(m ami.Message) ami.Message {
	var out ami.Message
	for _, f := range m.Fields {
		if !strings.EqualFold(f.Key, "ActionID") {
			out.Fields = append(out.Fields, f)
		}
	}
	return out
}

// waitFor waits until ok accepts the events emitted so far.
func (r *recorder) waitFor(t testing.TB, what string, ok func([]callbridge.SwitchEvent) bool) {
	t.Helper()
	deadline := time.After(testenv.Patience)
	for {
		if ok(r.events()) {
			return
		}
		select {
		case <-r.wake:
		case <-time.After(20 * time.Millisecond):
		case <-deadline:
			t.Fatalf("timed out waiting for %s; events:\n%s", what, story(r.events()))
		}
	}
}

// count returns how many events match typ (and dev, when not empty).
func count(evs []callbridge.SwitchEvent, typ callbridge.SwitchEventType, dev string) int {
	n := 0
	for _, e := range evs {
		if e.Type == typ && (dev == "" || string(e.Device) == dev) {
			n++
		}
	}
	return n
}

func has(typ callbridge.SwitchEventType, dev string, n int) func([]callbridge.SwitchEvent) bool {
	return func(evs []callbridge.SwitchEvent) bool { return count(evs, typ, dev) >= n }
}

// harness is a Driver running against a replay server.
type harness struct {
	srv  *capture.AMIServer
	drv  *asterisk.Driver
	rec  *recorder
	done chan error
}

func startDriver(t *testing.T, scripts ...capture.Script) *harness {
	t.Helper()
	return startDriverAt(t, 0, scripts...)
}

// startDriverAt plays the scripts at speed (0: as fast as possible; 10: ten times the
// recorded pace).
func startDriverAt(t *testing.T, speed float64, scripts ...capture.Script) *harness {
	t.Helper()
	logger := slog.New(slog.DiscardHandler)
	if testing.Verbose() && os.Getenv("AMI_DEBUG") != "" {
		logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	srv := capture.NewAMIServer(scripts, capture.ServerOptions{Speed: speed, Logger: logger})
	if err := srv.Listen("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	h := &harness{srv: srv, rec: newRecorder(t), done: make(chan error, 1)}
	h.drv = asterisk.New(asterisk.Config{
		Addr: srv.Addr(), Username: "cti", Secret: "cti-secret", Logger: logger,
		Tap: h.rec.tap, MinBackoff: 10 * time.Millisecond, MaxBackoff: 50 * time.Millisecond, KeepAlive: -1,
	})
	ctx, cancel := context.WithCancel(context.Background())
	go func() { h.done <- h.drv.Run(ctx, h.rec.emit) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-h.done:
			if err != nil && !errors.Is(err, context.Canceled) {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(testenv.Patience):
			t.Errorf("Run did not return")
		}
	})
	return h
}

// played waits until connection n has played its script and every event is emitted.
func (h *harness) played(t *testing.T, n int) {
	t.Helper()
	h.rec.waitFor(t, "link_up", has(callbridge.SwitchLinkUp, "", n+1))
	select {
	case <-h.srv.Played(n):
	case <-time.After(testenv.Patience):
		t.Fatalf("connection %d did not play its script", n)
	}
	ctx, cancel := context.WithTimeout(context.Background(), testenv.Patience)
	defer cancel()
	if err := h.drv.Sync(ctx); err != nil {
		t.Fatalf("Sync: %v", err)
	}
}

func script(t *testing.T, name string) capture.Script {
	t.Helper()
	recs, err := capture.ReadFile(recording(t, name))
	if err != nil {
		t.Fatal(err)
	}
	return capture.Script{Records: recs}
}

// Every recording played through the real AMI socket, client and driver tells the same story
// as the tracker fed the parsed frames.
func TestDriverReplaysEveryRecording(t *testing.T) {
	for _, tc := range storyCases {
		if strings.HasPrefix(tc.name, "bad-login") {
			continue
		}
		t.Run(tc.name, func(t *testing.T) {
			h := startDriver(t, script(t, tc.name))
			h.played(t, 0)
			evs := h.rec.events()
			if evs[0].Type != callbridge.SwitchSnapshot || evs[1].Type != callbridge.SwitchLinkUp {
				t.Fatalf("first events: %s", story(evs[:2]))
			}
			var calls []callbridge.SwitchEvent
			for _, e := range evs[2:] {
				if e.Type == callbridge.SwitchLinkDown || e.Type == callbridge.SwitchLinkUp || e.Type == callbridge.SwitchSnapshot {
					t.Fatalf("unexpected %s", e.Type)
				}
				calls = append(calls, e)
			}
			if got := compact(calls); !slices.Equal(got, tc.story) {
				t.Errorf("story:\n  got  %s\n  want %s", strings.Join(got, "\n       "), strings.Join(tc.story, "\n       "))
			}
			checkInvariants(t, calls)
			if tc.data != nil {
				if got := accumulated(calls, calls[0].PBXCallID); len(got) != len(tc.data) {
					t.Errorf("attached data = %v, want %v", got, tc.data)
				}
			}
		})
	}
}

// The resync recording answers the driver's own CoreShowChannels and QueueStatus: the first
// snapshot holds calls A, B and C.
func TestDriverResyncOverSocket(t *testing.T) {
	h := startDriver(t, script(t, "resync"))
	h.played(t, 0)
	evs := h.rec.events()
	snap := evs[0].Snapshot
	if snap == nil || len(snap.Calls) != 3 || len(snap.Members) != 17 {
		t.Fatalf("snapshot: %+v", evs[0])
	}
	if snap.Calls[1].Parties[1].Device != "2001" {
		t.Errorf("call B's agent is %s, want 2001", snap.Calls[1].Parties[1].Device)
	}
	var names []string
	h.rec.mu.Lock()
	for _, m := range h.rec.out {
		names = append(names, m.Get("Action"))
	}
	h.rec.mu.Unlock()
	if want := []string{"Login", "CoreShowChannels", "QueueStatus", "DeviceStateList", "Ping"}; !slices.Equal(names, want) {
		t.Errorf("actions written %v, want %v", names, want)
	}
}

// A connection dropped mid-call: the driver emits link_down, reconnects, resynchronises
// (here against the resync recording) and emits a snapshot and link_up.
func TestDriverReconnectsAndResyncs(t *testing.T) {
	first := script(t, "inbound-answered")
	// Drop right after AgentConnect: the call is connected to 1001.
	n := 0
	for _, r := range first.Records {
		if r.Dir != capture.DirIn {
			continue
		}
		n++
		if strings.HasPrefix(r.Raw, "Event: AgentConnect") {
			break
		}
	}
	first.DropAfter = n - 1 // the banner is not counted
	// At ten times the recorded pace the first call event comes about 100 ms after login,
	// after the driver's resync (at full speed the drop would hit the resync itself, which the
	// driver survives too, but then there is no call to lose).
	h := startDriverAt(t, 10, first, script(t, "resync"))
	h.played(t, 1)
	var kinds []string
	for _, e := range h.rec.events() {
		switch e.Type {
		case callbridge.SwitchSnapshot:
			kinds = append(kinds, "snapshot:"+string(rune('0'+len(e.Snapshot.Calls))))
		case callbridge.SwitchLinkUp, callbridge.SwitchLinkDown, callbridge.SwitchConnected:
			kinds = append(kinds, string(e.Type))
		}
	}
	want := []string{"snapshot:0", "link_up", "connected", "link_down", "snapshot:3", "link_up"}
	if !slices.Equal(kinds, want) {
		t.Errorf("got %v, want %v\n%s", kinds, want, story(h.rec.events()))
	}
	for _, e := range h.rec.events() {
		if e.Type == callbridge.SwitchLinkDown && e.Reason == "" {
			t.Errorf("link_down without reason")
		}
	}
	if h.srv.Connections() != 2 {
		t.Errorf("%d connections, want 2", h.srv.Connections())
	}
}

// bad-login: Asterisk answers "Authentication failed" and closes; the first failure is final.
func TestDriverBadLogin(t *testing.T) {
	for _, name := range []string{"bad-login", "bad-login-unknown-user"} {
		srv := capture.NewAMIServer([]capture.Script{script(t, name)}, capture.ServerOptions{})
		if err := srv.Listen("127.0.0.1:0"); err != nil {
			t.Fatal(err)
		}
		drv := asterisk.New(asterisk.Config{Addr: srv.Addr(), Username: "cti", Secret: "wrong-secret"})
		ctx, cancel := context.WithTimeout(context.Background(), testenv.Patience)
		var evs []callbridge.SwitchEvent
		err := drv.Run(ctx, func(e callbridge.SwitchEvent) { evs = append(evs, e) })
		cancel()
		srv.Close()
		if !errors.Is(err, ami.ErrAuthFailed) {
			t.Errorf("%s: Run = %v, want ErrAuthFailed", name, err)
		}
		if len(evs) != 0 {
			t.Errorf("%s: emitted %s", name, story(evs))
		}
	}
}

func TestParseURL(t *testing.T) {
	cfg, err := asterisk.ParseURL("ami://cti:cti-secret@127.0.0.1:5038")
	if err != nil || cfg.Addr != "127.0.0.1:5038" || cfg.Username != "cti" || cfg.Secret != "cti-secret" {
		t.Errorf("got %+v, %v", cfg, err)
	}
	cfg, err = asterisk.ParseURL("ami://cti:s%40c@pbx.example:15038?transfer_context=xfer&trunks=carrier,sbc")
	if err != nil || cfg.Addr != "pbx.example:15038" || cfg.Secret != "s@c" || cfg.TransferContext != "xfer" ||
		!slices.Equal(cfg.TrunkEndpoints, []string{"carrier", "sbc"}) {
		t.Errorf("got %+v, %v", cfg, err)
	}
	for _, bad := range []string{"", "http://u:p@h", "ami://h:5038", "ami://u:p@", "ami://u:p%0d%0aAction:%20Originate@h",
		"ami://u:p@h?transfer_context=a%0ab", "ami://u:p@h?transfer_context=a,b"} {
		if _, err := asterisk.ParseURL(bad); err == nil {
			t.Errorf("ParseURL(%q) accepted", bad)
		}
	}
	// The port is never assumed; the error says what is missing, and never shows the secret.
	for bad, want := range map[string]string{
		"ami://cti:cti-secret@pbx.example":       "asterisk: URL has no port (the manager interface listens on 5038 by default: ami://USER:SECRET@pbx.example:5038)",
		"ami://cti:cti-secret@pbx.example:":      "asterisk: URL has no port",
		"ami://cti:cti-secret@[::1]":             "ami://USER:SECRET@[::1]:5038",
		"ami://cti:cti-secret@pbx.example:0":     `asterisk: URL port "0" is not a number from 1 to 65535`,
		"ami://cti:cti-secret@pbx.example:70000": `URL port "70000" is not a number from 1 to 65535`,
		"ami://cti:cti-secret@pbx.example:5o38":  `asterisk: bad URL: invalid port ":5o38" after host`,
	} {
		_, err := asterisk.ParseURL(bad)
		if err == nil || !strings.Contains(err.Error(), want) || strings.Contains(err.Error(), "cti-secret") {
			t.Errorf("ParseURL(%q) = %v, want an error saying %q", bad, err, want)
		}
	}
}
