package freeswitch_test

import (
	"context"
	"errors"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/callbridge/callbridge"
	"github.com/callbridge/callbridge/capture"
	"github.com/callbridge/callbridge/freeswitch"
	"github.com/callbridge/callbridge/freeswitch/esl"
	"github.com/callbridge/callbridge/internal/testenv"
)

// recorder collects what a Driver emits and the commands it writes.
type recorder struct {
	mu     sync.Mutex
	evs    []callbridge.SwitchEvent
	out    []string
	inEmit bool
	t      testing.TB
}

func (r *recorder) emit(e callbridge.SwitchEvent) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.inEmit {
		r.t.Errorf("emit called concurrently")
	}
	r.inEmit = true
	r.evs = append(r.evs, e)
	r.inEmit = false
}

func (r *recorder) tap(dir, raw string) {
	if dir != "out" {
		return
	}
	r.mu.Lock()
	r.out = append(r.out, strings.TrimSuffix(raw, "\n\n"))
	r.mu.Unlock()
}

func (r *recorder) events() []callbridge.SwitchEvent {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.evs)
}

func (r *recorder) written() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.out)
}

// since returns the commands written after the first n.
func (r *recorder) since(n int) []string { return r.written()[n:] }

type running struct {
	drv  *freeswitch.Driver
	rec  *recorder
	srv  *capture.ESLServer
	done chan error
}

// start runs a Driver against a replay of scripts and waits until the first connection has
// played its recording and every event has been emitted.
func start(t *testing.T, cfg freeswitch.Config, scripts ...capture.Script) *running {
	t.Helper()
	srv := capture.NewESLServer(scripts, capture.ServerOptions{})
	if err := srv.Listen("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	rec := &recorder{t: t}
	cfg.Addr, cfg.Password, cfg.Tap = srv.Addr(), "ClueCon", rec.tap
	cfg.MinBackoff, cfg.MaxBackoff = 10*time.Millisecond, 50*time.Millisecond
	drv := freeswitch.New(cfg)
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{drv: drv, rec: rec, srv: srv, done: make(chan error, 1)}
	go func() { r.done <- drv.Run(ctx, rec.emit) }()
	t.Cleanup(func() {
		cancel()
		<-r.done
	})
	return r
}

func (r *running) sync(t *testing.T, conn int) {
	t.Helper()
	select {
	case <-r.srv.Played(conn):
	case err := <-r.done:
		t.Fatalf("driver stopped: %v", err)
	case <-time.After(testenv.Patience):
		t.Fatal("recording not played")
	}
	deadline := time.Now().Add(testenv.Patience)
	for {
		err := r.drv.Sync(context.Background())
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal(err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

var supportQueues = []callbridge.QueueName{"support@default", "sales@default"}

// TestDriverRecordingThroughSocket: fs-inbound-answered through the real socket code gives
// a snapshot, link_up, then the story of the tracker test.
func TestDriverRecordingThroughSocket(t *testing.T) {
	for _, format := range []string{esl.FormatPlain, esl.FormatJSON} {
		t.Run(format, func(t *testing.T) {
			r := start(t, freeswitch.Config{Format: format, Queues: supportQueues}, capture.Script{Records: records(t, "fs-inbound-answered")})
			r.sync(t, 0)
			evs := r.rec.events()
			if len(evs) < 2 || evs[0].Type != callbridge.SwitchSnapshot || evs[1].Type != callbridge.SwitchLinkUp {
				t.Fatalf("first events %v, want snapshot, link_up", evs[:min(2, len(evs))])
			}
			if len(evs[0].Snapshot.Calls) != 0 {
				t.Fatalf("snapshot calls %v, want none (no channel when the recording started)", evs[0].Snapshot.Calls)
			}
			expectStory(t, evs[2:],
				"A call_started +15551230001 ext dir=inbound ani=+15551230001 dnis=18005550100",
				"A queued queue=support@default",
				"A alerting 1001 queue=support@default",
				"A dequeued queue=support@default",
				"A connected 1001 queue=support@default",
				"A connection_cleared +15551230001 ext cause=normal_clearing",
				"A call_cleared cause=normal_clearing",
			)
		})
	}
}

// TestDriverResync: fs-resync has three calls up when the client connects: A (+15551230007)
// answered by 1001, B (+15551230008) answered by 1002, C (+15551230009) waiting in the
// queue; 1003 and 1004 are On Break. The resync commands are the recording client's, and the
// snapshot has the three calls with their parties and the member states.
func TestDriverResync(t *testing.T) {
	r := start(t, freeswitch.Config{Queues: supportQueues}, capture.Script{Records: records(t, "fs-resync")})
	r.sync(t, 0)
	want := []string{
		"auth ********",
		"event plain ALL",
		"api show channels as json",
		"api show calls as json",
		"api callcenter_config queue list",
		"api callcenter_config queue list agents support@default",
		"api callcenter_config queue list members support@default",
		"api callcenter_config queue list agents sales@default",
		"api callcenter_config queue list members sales@default",
		"api uuid_dump fd9a32d6-d5c5-40fe-b604-6b8aaa609a5e json",
		"api uuid_dump 1c22b429-482e-4286-b3cb-98db910f8384 json",
		"api uuid_dump b1b1e4dc-ae51-4471-83ca-f60de7f59eab json",
	}
	got := r.rec.written()[:len(want)]
	if !slices.Equal(got, want) {
		t.Fatalf("resync commands:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	snap := r.rec.events()[0].Snapshot
	if snap == nil || len(snap.Calls) != 3 {
		t.Fatalf("snapshot %+v, want 3 calls", snap)
	}
	calls := map[string]callbridge.SnapshotCall{}
	for _, c := range snap.Calls {
		calls[c.ANI] = c
	}
	a := calls["+15551230007"]
	if a.PBXCallID != "fd9a32d6-d5c5-40fe-b604-6b8aaa609a5e" || a.Tenant != "acme" || a.DNIS != "18005550100" ||
		a.Direction != callbridge.DirInbound || a.Queue != "support@default" || a.Data["ivr_account"] == "" {
		t.Errorf("call A %+v", a)
	}
	parties := func(c callbridge.SnapshotCall) string {
		var s []string
		for _, p := range c.Parties {
			x := string(p.Device) + ":" + string(p.State)
			if p.External {
				x += ":ext"
			}
			s = append(s, x)
		}
		return strings.Join(s, " ")
	}
	for ani, want := range map[string]string{
		"+15551230007": "+15551230007:connected:ext 1001:connected",
		"+15551230008": "+15551230008:connected:ext 1002:connected",
		"+15551230009": "+15551230009:connected:ext support@default:queued", // waiting: a queued party at the queue
	} {
		if got := parties(calls[ani]); got != want {
			t.Errorf("call %s parties %q, want %q", ani, got, want)
		}
	}
	if calls["+15551230009"].Queue != "support@default" {
		t.Errorf("waiting call C has queue %q", calls["+15551230009"].Queue)
	}
	var members []string
	for _, m := range snap.Members {
		s := string(m.Device) + "@" + string(m.Queue)
		if m.Paused {
			s += ":" + m.Reason
		}
		members = append(members, s)
	}
	wantMembers := []string{"1001@support@default", "1002@support@default", "1003@support@default:break", "1004@support@default:break"}
	if !slices.Equal(members, wantMembers) {
		t.Errorf("members %v, want %v", members, wantMembers)
	}
}

// TestDriverReconnect: the connection drops after 10 frames; the driver reports link_down,
// reconnects, resynchronises and goes on.
func TestDriverReconnect(t *testing.T) {
	recs := records(t, "fs-inbound-answered")
	r := start(t, freeswitch.Config{}, capture.Script{Records: recs, DropAfter: 10}, capture.Script{Records: recs})
	r.sync(t, 1)
	var types []callbridge.SwitchEventType
	for _, e := range r.rec.events() {
		switch e.Type {
		case callbridge.SwitchSnapshot, callbridge.SwitchLinkUp, callbridge.SwitchLinkDown:
			types = append(types, e.Type)
		}
	}
	// The first connection may drop during its resync (no link_up then), or after.
	want1 := []callbridge.SwitchEventType{callbridge.SwitchSnapshot, callbridge.SwitchLinkUp, callbridge.SwitchLinkDown, callbridge.SwitchSnapshot, callbridge.SwitchLinkUp}
	want2 := []callbridge.SwitchEventType{callbridge.SwitchSnapshot, callbridge.SwitchLinkUp}
	if !slices.Equal(types, want1) && !slices.Equal(types, want2) {
		t.Fatalf("link events %v", types)
	}
	if r.srv.Connections() != 2 {
		t.Fatalf("%d connections, want 2", r.srv.Connections())
	}
}

// TestDriverBadAuth: a refused password on the first connect ends Run with ErrAuthFailed.
func TestDriverBadAuth(t *testing.T) {
	srv := capture.NewESLServer([]capture.Script{{Records: records(t, "fs-bad-auth")}}, capture.ServerOptions{})
	if err := srv.Listen("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	drv := freeswitch.New(freeswitch.Config{Addr: srv.Addr(), Password: "WrongPassword"})
	ctx, cancel := context.WithTimeout(context.Background(), testenv.Patience)
	defer cancel()
	err := drv.Run(ctx, func(callbridge.SwitchEvent) {})
	if !errors.Is(err, esl.ErrAuthFailed) {
		t.Fatalf("Run = %v, want ErrAuthFailed", err)
	}
}

func TestParseURL(t *testing.T) {
	cfg, err := freeswitch.ParseURL("esl://:ClueCon@127.0.0.1:8021?format=json&queues=support@default,sales@default&context=agents&vars=ivr_*,crm_id")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Addr != "127.0.0.1:8021" || cfg.Password != "ClueCon" || cfg.Format != "json" || cfg.Context != "agents" ||
		len(cfg.Queues) != 2 || len(cfg.DataVariables) != 2 {
		t.Fatalf("cfg %+v", cfg)
	}
	if cfg, err := freeswitch.ParseURL("esl://ClueCon@pbx:9000"); err != nil || cfg.Password != "ClueCon" || cfg.Addr != "pbx:9000" {
		t.Fatalf("password as user: %+v %v", cfg, err)
	}
	for _, bad := range []string{
		"ami://:x@h", "esl://h:8021", "esl://:@h", "esl://:x@", "esl://:x@h?format=xml",
		"esl://:x@h?context=a%20b", "esl://:pw%0Aapi%20shutdown@h", "esl://:x@h?queues=a%20b",
	} {
		if _, err := freeswitch.ParseURL(bad); err == nil {
			t.Errorf("ParseURL(%q) accepted", bad)
		}
	}
	// The port is never assumed; the error says what is missing, and never shows the password.
	for bad, want := range map[string]string{
		"esl://:ClueCon@fs.example":      "freeswitch: URL has no port (the event socket listens on 8021 by default: esl://:PASSWORD@fs.example:8021)",
		"esl://ClueCon@fs.example":       "freeswitch: URL has no port",
		"esl://:ClueCon@fs.example:8o21": `freeswitch: bad URL: invalid port ":8o21" after host`,
		"esl://:ClueCon@fs.example:0":    `freeswitch: URL port "0" is not a number from 1 to 65535`,
	} {
		_, err := freeswitch.ParseURL(bad)
		if err == nil || !strings.Contains(err.Error(), want) || strings.Contains(err.Error(), "ClueCon") {
			t.Errorf("ParseURL(%q) = %v, want an error saying %q", bad, err, want)
		}
	}
}

// fakeSwitch is a minimal event socket that answers every api command with reply(cmd).
func fakeSwitch(t *testing.T, reply func(cmd string) string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer nc.Close()
				nc.Write([]byte("Content-Type: auth/request\n\n"))
				buf := make([]byte, 0, 4096)
				one := make([]byte, 1)
				for {
					if _, err := nc.Read(one); err != nil {
						return
					}
					buf = append(buf, one[0])
					if !strings.HasSuffix(string(buf), "\n\n") {
						continue
					}
					cmd := strings.TrimSpace(string(buf))
					buf = buf[:0]
					switch {
					case strings.HasPrefix(cmd, "auth "):
						nc.Write([]byte("Content-Type: command/reply\nReply-Text: +OK accepted\n\n"))
					case strings.HasPrefix(cmd, "event "):
						nc.Write([]byte("Content-Type: command/reply\nReply-Text: +OK event listener enabled plain\n\n"))
					default:
						body := reply(strings.TrimPrefix(cmd, "api "))
						nc.Write([]byte("Content-Type: api/response\nContent-Length: " + itoa(len(body)) + "\n\n" + body))
					}
				}
			}()
		}
	}()
	return ln.Addr().String()
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var d []byte
	for ; n > 0; n /= 10 {
		d = append([]byte{byte('0' + n%10)}, d...)
	}
	return string(d)
}
