package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/callbridge/callbridge"
	"github.com/callbridge/callbridge/internal/loadtest"
	"github.com/callbridge/callbridge/internal/testenv"
	cbnats "github.com/callbridge/callbridge/nats"
	"github.com/callbridge/callbridge/sim"
)

// The scale harness (issue 9 item 8): one callbridge node in this process — the load site of
// load_test.go, robot agents answering on the simulated PBX — and, in the same run, the bare
// NATS → WebSocket relay of internal/loadtest fed the same messages, each measured by real
// WebSocket desktops in separate load client processes (internal/loadtest/cbload, at most
// perProc desktops each, each process from its own source address 127.0.k.1). Numbers are
// written to docs/benchmarks.md, never asserted:
//
//	CALLBRIDGE_SCALE_DESKTOPS=19800 go test -run='^TestScale$' -timeout=2h -v ./cmd/callbridge/
//
// Environment: CALLBRIDGE_SCALE_DESKTOPS (desktops, one agent each; the test runs only when
// it is set), CALLBRIDGE_SCALE_RATES (offered calls/s, default "100,500"),
// CALLBRIDGE_SCALE_WARMUP and CALLBRIDGE_SCALE_WINDOW (seconds, default 10 and 30),
// CALLBRIDGE_SCALE_PER_PROC (desktops per client process, default 9900),
// CALLBRIDGE_SCALE_OUT (a file for the results as JSON), CALLBRIDGE_SCALE_PROFILE (a
// directory for a CPU profile of each callbridge measurement window),
// CALLBRIDGE_SCALE_RELAY=0 (callbridge only).

// scaleConfig is one run of the scale harness.
type scaleConfig struct {
	desktops int
	perProc  int
	rates    []float64 // offered calls/s
	warmUp   time.Duration
	window   time.Duration
	restart  bool
	relay    bool
	profile  string // directory for CPU profiles, "" for none
	// smoke: the windows last until they hold a pop; the seq check must pass (the smoke
	// test asserts it).
	smoke bool
}

// scaleResult is what one run measured.
type scaleResult struct {
	Desktops   int        `json:"desktops"`
	Processes  int        `json:"client_processes"`
	Started    time.Time  `json:"started"`
	Machine    string     `json:"machine"`
	Callbridge sideResult `json:"callbridge"`
	Relay      sideResult `json:"relay"`
}

// sideResult is one server's part of a run (callbridge or the relay).
type sideResult struct {
	LoadBefore string `json:"loadavg_before"`
	LoadAfter  string `json:"loadavg_after"`
	LoginMS    int64  `json:"login_ms"`
	// ColdConnectMS is from asking every client to connect until every desktop is up (has
	// its first message: the snapshot).
	ColdConnectMS int64 `json:"cold_connect_ms"`
	Connected     int   `json:"connected"`
	// Idle memory: the server process's RSS and goroutines after GC, before and after the
	// desktops connected, per desktop.
	IdleRSSBefore        uint64         `json:"idle_rss_before"`
	IdleRSSAfter         uint64         `json:"idle_rss_after"`
	IdleBytesPerDesktop  float64        `json:"idle_bytes_per_desktop"`
	HeapBytesPerDesktop  float64        `json:"heap_bytes_per_desktop"`
	GoroutinesPerDesktop float64        `json:"goroutines_per_desktop"`
	Rates                []rateResult   `json:"rates"`
	Restart              *restartResult `json:"restart,omitempty"`
	// SeqCheck compares what every desktop received with the log over the whole run (from
	// when all were connected to the end, across the restart).
	SeqCheck *seqCheck        `json:"seq_check,omitempty"`
	Final    *loadtest.Stats  `json:"final_client_stats,omitempty"`
	Problems uint64           `json:"server_warnings"`
	First    []string         `json:"server_first_warnings,omitempty"`
	Hub      string           `json:"hub,omitempty"`
	Extra    map[string]int64 `json:"extra,omitempty"`
}

// rateResult is one measurement window at an offered call rate.
type rateResult struct {
	Offered   float64          `json:"offered_calls_s"` // calls the switch started per second
	WindowMS  int64            `json:"window_ms"`
	Pops      float64          `json:"pops_s"`     // own screen pops received per second, all desktops
	Messages  float64          `json:"messages_s"` // messages received per second, all desktops
	BytesS    float64          `json:"bytes_s"`
	Latency   loadtest.Latency `json:"pop_latency"`
	Append    loadtest.Latency `json:"append_latency,omitempty"` // callbridge: switch event → stored
	ServerCPU float64          `json:"server_cpu"`               // share of the machine's cores
	ClientCPU float64          `json:"client_cpu"`
	Published uint64           `json:"published_messages,omitempty"` // relay: messages replayed
}

// restartResult is the reconnect storm: the server restarts with every desktop connected.
type restartResult struct {
	StopMS     int64 `json:"stop_ms"`     // closing the server
	OpenMS     int64 `json:"open_ms"`     // from the start of the stop until the new server listens
	ReadyMS    int64 `json:"ready_ms"`    // … and every agent was set ready again (callbridge)
	ResumedMS  int64 `json:"resumed_ms"`  // from the start of the stop until the last desktop is up again
	Dropped    int   `json:"dropped"`     // desktops whose socket ended
	Up         int   `json:"up"`          // desktops up at the end of the wait
	NotResumed int   `json:"not_resumed"` // desktops not up when the wait ended
}

// seqCheck is the comparison of every desktop's events with the log.
type seqCheck struct {
	From           uint64 `json:"from"`
	To             uint64 `json:"to"`
	Expected       int    `json:"expected_events"`
	Received       int    `json:"received_events"`
	AgentsMismatch int    `json:"agents_mismatch"`
	Missing        int    `json:"missing_events"`
	Extra          int    `json:"extra_events"`
	Dups           int    `json:"duplicates"`
	Examples       string `json:"examples,omitempty"`
	WaitedMS       int64  `json:"waited_ms"`
}

func (c *seqCheck) ok() bool { return c.AgentsMismatch == 0 && c.Dups == 0 }

func TestScale(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("CALLBRIDGE_SCALE_DESKTOPS"))
	if n <= 0 {
		t.Skip("the scale harness runs when CALLBRIDGE_SCALE_DESKTOPS is set (docs/benchmarks.md)")
	}
	cfg := scaleConfig{desktops: n, perProc: 9900, rates: []float64{100, 500}, warmUp: 10 * time.Second,
		window: 30 * time.Second, restart: true, relay: os.Getenv("CALLBRIDGE_SCALE_RELAY") != "0",
		profile: os.Getenv("CALLBRIDGE_SCALE_PROFILE")}
	if v, _ := strconv.Atoi(os.Getenv("CALLBRIDGE_SCALE_PER_PROC")); v > 0 {
		cfg.perProc = v
	}
	if v := os.Getenv("CALLBRIDGE_SCALE_RATES"); v != "" {
		cfg.rates = nil
		for _, s := range strings.Split(v, ",") {
			r, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
			if err != nil || r <= 0 {
				t.Fatalf("CALLBRIDGE_SCALE_RATES: %q is not a positive rate", s)
			}
			cfg.rates = append(cfg.rates, r)
		}
	}
	if v, _ := strconv.Atoi(os.Getenv("CALLBRIDGE_SCALE_WARMUP")); v > 0 {
		cfg.warmUp = time.Duration(v) * time.Second
	}
	if v, _ := strconv.Atoi(os.Getenv("CALLBRIDGE_SCALE_WINDOW")); v > 0 {
		cfg.window = time.Duration(v) * time.Second
	}
	res := runScale(t, cfg)
	b, _ := json.MarshalIndent(res, "", "  ")
	if out := os.Getenv("CALLBRIDGE_SCALE_OUT"); out != "" {
		if err := os.WriteFile(out, b, 0o644); err != nil {
			t.Error(err)
		}
	}
	t.Logf("results:\n%s", b)
}

// TestScaleHarnessSmoke runs the scale harness at a tiny size so that it keeps working:
// two client processes, a restart of each server, and the check that every desktop got
// exactly its agent's events from callbridge's log across the restart.
func TestScaleHarnessSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("scale harness smoke run")
	}
	res := runScale(t, scaleConfig{desktops: 40, perProc: 20, rates: []float64{20}, warmUp: time.Second,
		window: time.Second, restart: true, relay: true, smoke: true})
	for _, side := range []struct {
		name string
		r    sideResult
	}{{"callbridge", res.Callbridge}, {"relay", res.Relay}} {
		r := side.r
		if r.Connected != res.Desktops {
			t.Errorf("%s: %d of %d desktops connected", side.name, r.Connected, res.Desktops)
		}
		if len(r.Rates) != 1 || r.Rates[0].Latency.N == 0 {
			t.Errorf("%s: no pop measured: %+v", side.name, r.Rates)
		}
		if r.Restart == nil || r.Restart.NotResumed != 0 || r.Restart.Dropped != res.Desktops {
			t.Errorf("%s: restart: %+v", side.name, r.Restart)
		}
		if r.Final == nil || r.Final.Wrong != 0 {
			t.Errorf("%s: desktops got events of other agents: %+v", side.name, r.Final)
		}
	}
	if c := res.Callbridge.SeqCheck; c == nil || !c.ok() || c.Expected == 0 {
		t.Errorf("callbridge: desktops' events differ from the log: %+v", c)
	}
}

// runScale runs callbridge, then the relay, as cfg says.
func runScale(t *testing.T, cfg scaleConfig) *scaleResult {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	bin, err := loadtest.Build(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	res := &scaleResult{Desktops: cfg.desktops, Processes: (cfg.desktops + cfg.perProc - 1) / cfg.perProc,
		Started: time.Now().UTC(), Machine: machine()}
	clientLog := &capWriter{max: 64 << 10}
	defer func() {
		if s := clientLog.String(); s != "" {
			t.Logf("load clients' stderr:\n%s", s)
		}
	}()
	replays := scaleCallbridge(ctx, t, cfg, bin, clientLog, &res.Callbridge)
	if cfg.relay && !t.Failed() {
		scaleRelay(ctx, t, cfg, bin, clientLog, replays, &res.Relay)
	}
	return res
}

// relayFeed is what the callbridge side stored while one rate ran, for the relay to replay:
// each event's time offset from the start, its audience and frame, and where the
// measurement window starts and ends.
type relayFeed struct {
	rate           float64
	start          time.Time // the start of the warm-up
	seq            uint64    // the log's last sequence then
	recs           []replayRec
	winFrom, winTo time.Duration
}

type replayRec struct {
	at     time.Duration
	agents []string
	frame  []byte
}

// scaleSite is a callbridge node of the scale harness: the load site, with its data dir
// kept across a restart.
type scaleSite struct {
	m        *Main
	drv      *sim.Driver
	rec      *loadRecorder
	problems *problemHandler
	opened   time.Time // when Open returned: the gateway listens
}

// openScaleSite opens (or, with the same dir and addr, reopens) the load site of agents
// agents and sets every agent ready.
func openScaleSite(ctx context.Context, tb testing.TB, dir, addr string, agents int, rec *loadRecorder, problems *problemHandler) *scaleSite {
	tb.Helper()
	prov := filepath.Join(dir, "load.yaml")
	if _, err := os.Stat(prov); err != nil {
		if err := writeLoadProvisioning(prov, agents); err != nil {
			tb.Fatal(err)
		}
	}
	s := &scaleSite{rec: rec, problems: problems}
	m := NewMain(io.Discard, io.Discard)
	m.HTTPAddr = addr
	m.DataDir = filepath.Join(dir, "data")
	m.ProvisionFile = prov
	m.bcryptCost = bcrypt.MinCost // the provisioning's hashes (writeLoadProvisioning)
	m.SimInterval = 0             // no calls until every agent is ready
	m.Logger = slog.New(problems)
	m.newSim = func(cfg sim.Config, lg *slog.Logger) callbridge.Driver {
		cfg.MembersLoggedIn = true
		cfg.AgentAnswer = loadAnswer
		cfg.IVRTime = loadIVR
		cfg.TalkTimeMin, cfg.TalkTimeMax = loadTalkMin, loadTalkMax
		s.drv = sim.New(cfg, lg)
		return &stampDriver{Driver: s.drv, rec: rec}
	}
	m.onEvent = rec.appended
	if err := m.Open(ctx); err != nil {
		m.Close()
		tb.Fatal(err)
	}
	s.m, s.opened = m, time.Now()
	testenv.Eventually(tb, "the node to be ready", func() bool { return m.Node.Ready() == nil })
	if err := setAllReady(ctx, m, agents); err != nil {
		tb.Logf("setting the agents ready: %v", err)
	}
	return s
}

func (s *scaleSite) setRate(agents int, rate float64) {
	if rate <= 0 {
		s.drv.SetCallInterval(0)
		return
	}
	tenants := (agents + loadAgentsPerTenant - 1) / loadAgentsPerTenant
	s.drv.SetCallInterval(time.Duration(float64(tenants) / rate * float64(time.Second)))
}

// scaleCallbridge measures callbridge and returns what the relay replays.
func scaleCallbridge(ctx context.Context, t *testing.T, cfg scaleConfig, bin string, clientLog io.Writer, r *sideResult) []relayFeed {
	r.LoadBefore = loadavg()
	dir := t.TempDir()
	rec, problems := newLoadRecorder(), &problemHandler{}
	site := openScaleSite(ctx, t, dir, "127.0.0.1:0", cfg.desktops, rec, problems)
	defer func() { site.m.Close() }()
	addr := site.m.HTTP.Addr()
	procs, err := loadtest.StartProcs(bin, loadtest.ModeCallbridge, "http://"+addr, cfg.desktops, cfg.perProc, clientLog)
	if err != nil {
		t.Fatal(err)
	}
	defer procs.Quit()

	connect(t, procs, cfg, r, func() int { return runtime.NumGoroutine() })
	from := lastSeq(ctx, site.m)
	st := site.m.Hub.Stats()
	r.Hub = fmt.Sprintf("after connect: %d audiences, %d subscriptions", st.Audiences, st.Subscriptions)

	var replays []relayFeed
	for _, rate := range cfg.rates {
		rr, rp := site.measureRate(ctx, t, cfg, procs, rate)
		r.Rates = append(r.Rates, rr)
		replays = append(replays, rp)
		t.Logf("callbridge %.0f calls/s: %.0f offered, pops %.0f/s, %s, append %s, cpu %.0f %%", rate, rr.Offered, rr.Pops, rr.Latency, rr.Append, 100*rr.ServerCPU)
	}
	site.setRate(cfg.desktops, 0)
	readFeeds(ctx, t, site.m, replays)

	if cfg.restart {
		// The storm: calls keep coming at the first rate; the node stops (every socket gets
		// 1001) and starts again on the same data and address.
		site.setRate(cfg.desktops, cfg.rates[0])
		time.Sleep(cfg.warmUp) // load before the restart (a benchmark's pace, not a synchronisation)
		rs := &restartResult{}
		since := time.Now()
		site.m.Close()
		rs.StopMS = time.Since(since).Milliseconds()
		site = openScaleSite(ctx, t, dir, addr, cfg.desktops, rec, problems)
		site.setRate(cfg.desktops, cfg.rates[0])
		rs.OpenMS = site.opened.Sub(since).Milliseconds()
		rs.ReadyMS = time.Since(since).Milliseconds()
		waitResumed(t, procs, since, rs)
		r.Restart = rs
		t.Logf("callbridge restart: stop %d ms, listening after %d ms, agents ready after %d ms, every desktop resumed after %d ms (%d dropped, %d not resumed)",
			rs.StopMS, rs.OpenMS, rs.ReadyMS, rs.ResumedMS, rs.Dropped, rs.NotResumed)
		time.Sleep(cfg.warmUp) // load after the restart
	}
	site.setRate(cfg.desktops, 0)
	to := lastSeq(ctx, site.m)
	r.SeqCheck = checkSeqs(ctx, t, site.m, procs, from, to)
	t.Logf("callbridge seq check (%d, %d]: %+v", from, to, *r.SeqCheck)
	if fin, err := procs.Stats(); err == nil {
		fin.PopLatUS = nil
		r.Final = fin
	}
	r.Problems, r.First = problems.report()
	r.LoadAfter = loadavg()
	return replays
}

// connect logs every desktop in, measures the server's idle memory before and after the
// desktops connect, and the cold connect.
func connect(t *testing.T, procs loadtest.Procs, cfg scaleConfig, r *sideResult, goroutines func() int) {
	t.Helper()
	start := time.Now()
	rs, err := procs.Do(loadtest.Command{Cmd: "login"})
	if err != nil {
		t.Fatal(err)
	}
	r.LoginMS = time.Since(start).Milliseconds()
	for _, x := range rs {
		if x.Failed > 0 {
			t.Fatalf("%d logins failed: %s", x.Failed, x.First)
		}
	}
	rss0, heap0 := memSample()
	g0 := goroutines()
	start = time.Now()
	rs, err = procs.Do(loadtest.Command{Cmd: "connect", TimeoutMS: (10 * time.Minute).Milliseconds()})
	if err != nil {
		t.Fatal(err)
	}
	r.ColdConnectMS = time.Since(start).Milliseconds()
	for _, x := range rs {
		r.Connected += x.Done
		if x.Failed > 0 {
			t.Errorf("%d desktops did not connect: %s", x.Failed, x.First)
		}
	}
	time.Sleep(min(5*time.Second, cfg.warmUp)) // let the connections' follow-ups (presence reports) settle
	rss1, heap1 := memSample()
	g1 := goroutines()
	n := float64(max(r.Connected, 1))
	r.IdleRSSBefore, r.IdleRSSAfter = rss0, rss1
	r.IdleBytesPerDesktop = (float64(rss1) - float64(rss0)) / n
	r.HeapBytesPerDesktop = (float64(heap1) - float64(heap0)) / n
	r.GoroutinesPerDesktop = float64(g1-g0) / n
	t.Logf("login %d ms, cold connect of %d desktops %d ms; idle RSS %d → %d MiB: %.1f KiB and %.2f goroutines per desktop (heap %.1f KiB)",
		r.LoginMS, r.Connected, r.ColdConnectMS, rss0>>20, rss1>>20, r.IdleBytesPerDesktop/1024, r.GoroutinesPerDesktop, r.HeapBytesPerDesktop/1024)
}

// measureRate offers rate calls/s, warms up, measures a window and reads back what the log
// stored meanwhile, for the relay.
func (s *scaleSite) measureRate(ctx context.Context, t *testing.T, cfg scaleConfig, procs loadtest.Procs, rate float64) (rateResult, relayFeed) {
	t.Helper()
	seqStart := lastSeq(ctx, s.m)
	start := time.Now()
	s.setRate(cfg.desktops, rate)
	time.Sleep(cfg.warmUp) // a benchmark's warm-up
	winFrom := time.Since(start)
	if _, err := procs.Do(loadtest.Command{Cmd: "measure", On: true}); err != nil {
		t.Fatal(err)
	}
	st0 := s.drv.Stats()
	cl0, err := procs.Stats()
	if err != nil {
		t.Fatal(err)
	}
	cpu0 := cpuSample()
	s.rec.measure(true)
	var prof *os.File
	if cfg.profile != "" {
		f, err := os.Create(filepath.Join(cfg.profile, fmt.Sprintf("cpu-callbridge-%.0f.pprof", rate)))
		if err == nil && pprof.StartCPUProfile(f) == nil {
			prof = f
		}
	}
	time.Sleep(cfg.window) // the measurement window
	if cfg.smoke {
		testenv.Eventually(t, "a screen pop in the window", func() bool {
			st, err := procs.Stats()
			return err == nil && st.WinPops > 0
		})
	}
	if prof != nil {
		pprof.StopCPUProfile()
		prof.Close()
	}
	s.rec.measure(false)
	if _, err := procs.Do(loadtest.Command{Cmd: "measure", On: false}); err != nil {
		t.Fatal(err)
	}
	cpu1, st1 := cpuSample(), s.drv.Stats()
	winTo := time.Since(start)
	cl1, err := procs.Stats()
	if err != nil {
		t.Fatal(err)
	}
	win := time.Duration(cl1.WindowMS) * time.Millisecond
	lat, _ := s.rec.samples()
	s.rec.reset()
	rr := rateResult{
		Offered:   float64(st1.CallsStarted-st0.CallsStarted) / (winTo - winFrom).Seconds(),
		WindowMS:  cl1.WindowMS,
		Pops:      float64(cl1.WinPops) / win.Seconds(),
		Messages:  float64(cl1.WinMsgs) / win.Seconds(),
		BytesS:    float64(cl1.WinBytes) / win.Seconds(),
		Latency:   loadtest.Summarise(cl1.PopLatUS),
		Append:    summariseDurations(lat),
		ServerCPU: cpu1.busyFraction(cpu0),
		ClientCPU: (cl1.ClientCPU - cl0.ClientCPU) / (winTo - winFrom).Seconds() / float64(runtime.GOMAXPROCS(0)),
	}
	return rr, relayFeed{rate: rate, start: start, seq: seqStart, winFrom: winFrom, winTo: winTo}
}

// quiet waits until the log's last sequence has not moved for a second (at most a
// minute: the calls in progress end, the node stores what it holds) and returns it.
func quiet(ctx context.Context, m *Main) uint64 {
	last, since := lastSeq(ctx, m), time.Now()
	for start := time.Now(); time.Since(start) < time.Minute; {
		time.Sleep(100 * time.Millisecond) // polling the log
		if seq := lastSeq(ctx, m); seq != last {
			last, since = seq, time.Now()
		} else if time.Since(since) >= time.Second {
			break
		}
	}
	return last
}

// readFeeds fills each feed with the events the log stored whose time (the switch's) falls
// between the start of its warm-up and the end of its window — read once the node has
// stored them all, so that a node that fell behind still hands the relay the offered load.
func readFeeds(ctx context.Context, t *testing.T, m *Main, feeds []relayFeed) {
	t.Helper()
	to := quiet(ctx, m)
	for i := range feeds {
		f := &feeds[i]
		if _, err := m.evlog.Read(ctx, f.seq, to, func(rec cbnats.Record) error {
			var ev struct {
				Time time.Time `json:"time"`
			}
			if json.Unmarshal(rec.Frame, &ev) != nil || ev.Time.Before(f.start) {
				return nil
			}
			at := ev.Time.Sub(f.start)
			if at > f.winTo {
				return nil
			}
			agents := make([]string, len(rec.Agents))
			for i, a := range rec.Agents {
				agents[i] = string(a)
			}
			f.recs = append(f.recs, replayRec{at: at, agents: agents, frame: rec.Frame})
			return nil
		}); err != nil {
			t.Errorf("read the log for the relay's replay: %v", err)
		}
		slices.SortStableFunc(f.recs, func(a, b replayRec) int { return int(a.at - b.at) })
	}
}

// waitResumed waits until every desktop dropped after since and is up again.
func waitResumed(t *testing.T, procs loadtest.Procs, since time.Time, rs *restartResult) {
	t.Helper()
	replies, err := procs.Do(loadtest.Command{Cmd: "wait_up", SinceNS: since.UnixNano(), On: true,
		TimeoutMS: (5 * time.Minute).Milliseconds()})
	if err != nil {
		t.Fatal(err)
	}
	var last int64
	for _, x := range replies {
		rs.Dropped += x.Dropped
		rs.Up += x.Done
		rs.NotResumed += x.Failed
		last = max(last, x.LastUpNS)
	}
	if last > 0 {
		rs.ResumedMS = time.Duration(last - since.UnixNano()).Milliseconds()
	}
}

// checkSeqs compares, per agent, the events the desktops received in (from, to] with the
// log's, waiting (at most a minute) for the last ones to arrive.
func checkSeqs(ctx context.Context, t *testing.T, m *Main, procs loadtest.Procs, from, to uint64) *seqCheck {
	t.Helper()
	want := map[string]loadtest.SeqCount{}
	types := map[uint64]string{}
	c := &seqCheck{From: from, To: to}
	if _, err := m.evlog.Read(ctx, from, to, func(rec cbnats.Record) error {
		seen := map[callbridge.AgentID]bool{}
		for _, a := range rec.Agents {
			if seen[a] {
				continue
			}
			seen[a] = true
			w := want[string(a)]
			w.N++
			w.Sum += rec.Seq
			want[string(a)] = w
			c.Expected++
		}
		types[rec.Seq] = string(rec.Type)
		return nil
	}); err != nil {
		t.Errorf("read the log: %v", err)
		return c
	}
	start := time.Now()
	var got map[string]loadtest.SeqCount
	for {
		var err error
		if got, err = procs.Seqs(from, to); err != nil {
			t.Error(err)
			return c
		}
		same := true
		for a, w := range want {
			if g := got[a]; g.N != w.N || g.Sum != w.Sum {
				same = false
				break
			}
		}
		if same || time.Since(start) > time.Minute {
			break
		}
		time.Sleep(500 * time.Millisecond) // polling the clients for the last events
	}
	c.WaitedMS = time.Since(start).Milliseconds()
	var bad []string
	for a, g := range got {
		w := want[a]
		c.Received += g.N
		c.Dups += g.Dups
		if g.N != w.N || g.Sum != w.Sum {
			c.AgentsMismatch++
			c.Missing += max(0, w.N-g.N)
			c.Extra += max(0, g.N-w.N)
			bad = append(bad, a)
		}
	}
	slices.Sort(bad)
	for _, a := range bad[:min(3, len(bad))] {
		list, _ := procs.SeqList(a, from, to)
		have := map[uint64]bool{}
		for _, s := range list {
			have[s] = true
		}
		var missing []string
		if _, err := m.evlog.Read(ctx, from, to, func(rec cbnats.Record) error {
			if slices.Contains(rec.Agents, callbridge.AgentID(a)) && !have[rec.Seq] && len(missing) < 10 {
				missing = append(missing, fmt.Sprintf("%d %s", rec.Seq, rec.Type))
			}
			return nil
		}); err == nil {
			c.Examples += fmt.Sprintf("%s: got %d, missing %v; ", a, len(list), missing)
		}
	}
	return c
}

// scaleRelay measures the relay with the same clients' code and replays what callbridge
// stored.
func scaleRelay(ctx context.Context, t *testing.T, cfg scaleConfig, bin string, clientLog io.Writer, replays []relayFeed, r *sideResult) {
	r.LoadBefore = loadavg()
	hello, _ := json.Marshal(map[string]any{"type": "snapshot", "seq": 0, "data": map[string]any{
		"agent": map[string]any{"agent": "a00000", "tenant": "t000", "name": "a00000", "device": "100000", "state": "ready",
			"queues": []string{"t000-q"}, "since": time.Now().UTC()},
		"calls": []any{}, "reason_codes": []string{"break", "lunch", "meeting", "training"}}})
	rl, err := loadtest.StartRelay("127.0.0.1:0", hello)
	if err != nil {
		t.Fatal(err)
	}
	defer rl.Close()
	procs, err := loadtest.StartProcs(bin, loadtest.ModeRelay, "http://"+rl.Addr(), cfg.desktops, cfg.perProc, clientLog)
	if err != nil {
		t.Fatal(err)
	}
	defer procs.Quit()
	connect(t, procs, cfg, r, func() int { return runtime.NumGoroutine() })

	for _, rp := range replays {
		rr := rateResult{}
		var cl0 *loadtest.Stats
		var cpu0 cpuStats
		start := time.Now()
		marked := false
		for _, rec := range rp.recs {
			if !marked && rec.at >= rp.winFrom {
				marked = true
				procs.Do(loadtest.Command{Cmd: "measure", On: true})
				cl0, _ = procs.Stats()
				cpu0 = cpuSample()
			}
			if rec.at >= rp.winTo {
				break
			}
			if d := time.Until(start.Add(rec.at)); d > 0 {
				time.Sleep(d) // the replay's pace
			}
			if err := rl.Publish(rec.agents, loadtest.Restamp(rec.frame, time.Now())); err != nil {
				t.Fatal(err)
			}
			rr.Published += uint64(len(rec.agents))
		}
		if d := time.Until(start.Add(rp.winTo)); d > 0 {
			time.Sleep(d)
		}
		rl.Flush()
		if cfg.smoke {
			testenv.Eventually(t, "a screen pop in the relay's window", func() bool {
				st, err := procs.Stats()
				return err == nil && st.WinPops > 0
			})
		}
		procs.Do(loadtest.Command{Cmd: "measure", On: false})
		cpu1 := cpuSample()
		cl1, err := procs.Stats()
		if err != nil || cl0 == nil {
			t.Fatalf("relay stats: %v", err)
		}
		win := time.Duration(cl1.WindowMS) * time.Millisecond
		rr.Offered = rp.rate
		rr.WindowMS = cl1.WindowMS
		rr.Pops = float64(cl1.WinPops) / win.Seconds()
		rr.Messages = float64(cl1.WinMsgs) / win.Seconds()
		rr.BytesS = float64(cl1.WinBytes) / win.Seconds()
		rr.Latency = loadtest.Summarise(cl1.PopLatUS)
		rr.ServerCPU = cpu1.busyFraction(cpu0)
		rr.ClientCPU = (cl1.ClientCPU - cl0.ClientCPU) / win.Seconds() / float64(runtime.GOMAXPROCS(0))
		r.Rates = append(r.Rates, rr)
		t.Logf("relay %.0f calls/s (replayed): pops %.0f/s, %s, cpu %.0f %%", rp.rate, rr.Pops, rr.Latency, 100*rr.ServerCPU)
	}

	if cfg.restart {
		rs := &restartResult{}
		since := time.Now()
		if err := rl.Restart(); err != nil {
			t.Fatal(err)
		}
		rs.StopMS = time.Since(since).Milliseconds()
		rs.OpenMS = rs.StopMS
		waitResumed(t, procs, since, rs)
		r.Restart = rs
		t.Logf("relay restart: every desktop back after %d ms (%d dropped, %d not back)", rs.ResumedMS, rs.Dropped, rs.NotResumed)
	}
	if fin, err := procs.Stats(); err == nil {
		fin.PopLatUS = nil
		r.Final = fin
	}
	r.LoadAfter = loadavg()
}

// memSample returns the process's resident memory (VmRSS) and heap in use after a full
// collection that returns freed memory to the system.
func memSample() (rss, heap uint64) {
	runtime.GC()
	debug.FreeOSMemory()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	b, _ := os.ReadFile("/proc/self/status")
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseUint(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			rss = kb << 10
		}
	}
	return rss, ms.HeapInuse
}

func loadavg() string {
	b, _ := os.ReadFile("/proc/loadavg")
	return strings.TrimSpace(string(b))
}

func machine() string {
	model := ""
	b, _ := os.ReadFile("/proc/cpuinfo")
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "model name"); ok {
			model = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
			break
		}
	}
	return fmt.Sprintf("%d cores (%s), %s, GOMAXPROCS %d", runtime.NumCPU(), model, runtime.Version(), runtime.GOMAXPROCS(0))
}

func summariseDurations(d []time.Duration) loadtest.Latency {
	us := make([]int64, len(d))
	for i, x := range d {
		us[i] = x.Microseconds()
	}
	return loadtest.Summarise(us)
}

// capWriter keeps the first max bytes written to it (the load clients' stderr).
type capWriter struct {
	mu  sync.Mutex
	max int
	buf bytes.Buffer
}

func (w *capWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if room := w.max - w.buf.Len(); room > 0 {
		w.buf.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

func (w *capWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

// reset forgets the latency samples.
func (r *loadRecorder) reset() {
	r.mu.Lock()
	r.lat, r.deskLat = nil, nil
	r.mu.Unlock()
}
