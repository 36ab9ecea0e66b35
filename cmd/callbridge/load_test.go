package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"golang.org/x/crypto/bcrypt"
	"gopkg.in/yaml.v3"

	"github.com/callbridge/callbridge"
	"github.com/callbridge/callbridge/internal/testenv"
	"github.com/callbridge/callbridge/sim"
)

// The load harness runs one whole site as `callbridge serve` runs it — the simulated PBX
// with robot agents, the engine in the node's loop, the embedded NATS JetStream event log
// and SQLite in a temp dir, the CRM consumer and the HTTP gateway — under a steady stream of
// inbound calls, and reports what the site carried. Numbers are measured and written down
// (docs/benchmarks.md), never asserted:
//
//	go test -run=NONE -bench=Load -benchtime=1x ./cmd/callbridge/
//
// Each sub-benchmark is one bounded run (setup, warm-up, measurement window, shutdown),
// whatever b.N is; its name gives the agents and the offered inbound calls per second.
// CALLBRIDGE_LOAD_RATE overrides the offered calls per agent per second of every case,
// CALLBRIDGE_LOAD_SECONDS the measurement window (seconds).

// Shape of the simulated traffic: short IVR, robot agents that answer after loadAnswer,
// talk times of 1-2 s and one second of wrap-up, so a call holds an agent for about 2.7 s
// (ring, talk, wrap-up until the engine's next 250 ms tick).
const (
	loadAgentsPerTenant = 100 // one tenant (one DID, one queue) per 100 agents
	loadIVR             = 200 * time.Millisecond
	loadAnswer          = 100 * time.Millisecond
	loadTalkMin         = 1 * time.Second
	loadTalkMax         = 2 * time.Second
	loadWrapUpSeconds   = 1
	loadPerAgent        = 0.25 // offered calls per agent per second: about 70 % occupancy
	loadWarmUp          = 2 * time.Second
	loadWindow          = 3 * time.Second
	loadPassword        = "load"
)

// loadCase is one run: agents robot agents, offered perAgent calls per agent per second,
// with desktops real WebSocket desktops (agents a00000… logged in through the gateway).
type loadCase struct {
	agents   int
	perAgent float64
	desktops int
	warmUp   time.Duration
	window   time.Duration
	// untilMeasured makes the window last, beyond window, until it holds a completed call, a
	// latency sample and a desktop message (at most testenv.Patience): the smoke run checks
	// that each is measured, which a fixed window on a loaded machine may not show.
	untilMeasured bool
}

// loadResult is what one run measured over its window.
type loadResult struct {
	window         time.Duration
	offered        float64 // inbound calls the switch started per second
	completed      float64 // call.cleared events per second
	answered       float64 // queue offers answered per second (switch's count)
	abandoned      uint64  // callers who gave up in a queue during the window
	events         float64 // domain events appended per second
	messages       float64 // JetStream messages stored per second (an event plus a copy per agent)
	latency        []time.Duration
	desktopMsgs    float64 // WebSocket messages received per second by all desktops
	desktopLatency []time.Duration
	desktopsCut    int    // desktops the gateway closed during the run (slow consumer …)
	heapBytes      uint64 // heap in use after GC at the end of the window, minus before the site opened
	cpuBusy        float64
	logProblems    uint64
	firstProblems  []string
}

func BenchmarkLoad(b *testing.B) {
	perAgent := loadPerAgent
	if v, err := strconv.ParseFloat(os.Getenv("CALLBRIDGE_LOAD_RATE"), 64); err == nil && v > 0 {
		perAgent = v
	}
	window := loadWindow
	if v, err := time.ParseDuration(os.Getenv("CALLBRIDGE_LOAD_SECONDS") + "s"); err == nil && v > 0 {
		window = v
	}
	// perAgent 0: the default (or CALLBRIDGE_LOAD_RATE). The 5000-agent site is run twice:
	// at the default rate, which is past what two cores carry (its numbers are the ceiling),
	// and at a rate it carries.
	for _, lc := range []loadCase{
		{agents: 100},
		{agents: 1000},
		{agents: 5000},
		{agents: 5000, perAgent: 0.1},
		{agents: 1000, desktops: 200},
	} {
		if lc.perAgent == 0 || os.Getenv("CALLBRIDGE_LOAD_RATE") != "" {
			lc.perAgent = perAgent
		}
		lc.warmUp, lc.window = loadWarmUp, window
		name := fmt.Sprintf("agents=%d/rate=%.0f", lc.agents, lc.perAgent*float64(lc.agents))
		if lc.desktops > 0 {
			name += fmt.Sprintf("/desktops=%d", lc.desktops)
		}
		b.Run(name, func(b *testing.B) {
			r := runLoad(b, lc)
			b.ReportMetric(0, "ns/op") // one bounded run, not a per-op time
			b.ReportMetric(r.offered, "offered-calls/s")
			b.ReportMetric(r.completed, "calls/s")
			b.ReportMetric(r.events, "events/s")
			b.ReportMetric(r.messages, "msgs/s")
			b.ReportMetric(ms(percentile(r.latency, 50)), "p50-ms")
			b.ReportMetric(ms(percentile(r.latency, 99)), "p99-ms")
			b.ReportMetric(float64(r.heapBytes)/float64(lc.agents)/1024, "heap-KiB/agent")
			b.ReportMetric(float64(r.heapBytes)/(1<<20), "heap-MiB")
			b.ReportMetric(100*r.cpuBusy, "cpu-%")
			if lc.desktops > 0 {
				b.ReportMetric(r.desktopMsgs, "ws-msgs/s")
				b.ReportMetric(ms(percentile(r.desktopLatency, 99)), "ws-p99-ms")
			}
			b.Logf("answered %.0f/s, abandoned %d, %d latency samples, %d log warnings/errors %q, %d desktops cut",
				r.answered, r.abandoned, len(r.latency), r.logProblems, r.firstProblems, r.desktopsCut)
		})
	}
}

// TestLoadHarnessSmoke runs the harness briefly so that it keeps working; it checks that
// calls flowed and were measured, never how fast.
func TestLoadHarnessSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("load harness smoke run")
	}
	r := runLoad(t, loadCase{agents: 20, perAgent: 0.5, desktops: 2, warmUp: 1500 * time.Millisecond, window: time.Second, untilMeasured: true})
	if r.completed == 0 || len(r.latency) == 0 || r.events == 0 || r.desktopMsgs == 0 {
		t.Fatalf("nothing measured: %+v", r)
	}
	if r.logProblems > 0 {
		t.Fatalf("the site logged %d warnings or errors: %q", r.logProblems, r.firstProblems)
	}
}

// runLoad opens a site for lc, sets every agent ready, offers calls for warm-up plus window
// and measures the window.
func runLoad(tb testing.TB, lc loadCase) loadResult {
	tb.Helper()
	rec := newLoadRecorder()
	problems := &problemHandler{}
	heapBefore := heapInUse()
	ctx, cancel := context.WithTimeout(context.Background(), 2*testenv.Patience+lc.warmUp+lc.window) // the whole run
	defer cancel()
	m, drv := startLoadSite(ctx, tb, lc.agents, rec, problems)
	defer m.Close()
	desks, err := openLoadDesktops(ctx, m, lc.desktops, rec)
	if err != nil {
		tb.Fatal(err)
	}
	defer desks.close()

	tenants := (lc.agents + loadAgentsPerTenant - 1) / loadAgentsPerTenant
	rate := lc.perAgent * float64(lc.agents) // calls/s for the site
	drv.SetCallInterval(time.Duration(float64(tenants) / rate * float64(time.Second)))
	time.Sleep(lc.warmUp)

	// The window.
	st0, seq0, cpu0 := drv.Stats(), lastSeq(ctx, m), cpuSample()
	ev0, cl0, dm0 := rec.events.Load(), rec.cleared.Load(), rec.desktopMsgs.Load()
	rec.measure(true)
	start := time.Now()
	time.Sleep(lc.window) // the measurement window (a benchmark's, not a synchronisation)
	if lc.untilMeasured {
		testenv.Eventually(tb, "a completed call, a latency sample and a desktop message in the window", func() bool {
			lat, _ := rec.samples()
			return rec.cleared.Load() > cl0 && rec.desktopMsgs.Load() > dm0 && len(lat) > 0
		})
	}
	rec.measure(false)
	elapsed := time.Since(start)
	st1, seq1, cpu1 := drv.Stats(), lastSeq(ctx, m), cpuSample()
	ev1, cl1, dm1 := rec.events.Load(), rec.cleared.Load(), rec.desktopMsgs.Load()
	heap := heapInUse() // with the load still running: calls in progress are part of it
	drv.SetCallInterval(0)

	per := func(n uint64) float64 { return float64(n) / elapsed.Seconds() }
	r := loadResult{
		window:    elapsed,
		offered:   per(st1.CallsStarted - st0.CallsStarted),
		completed: per(cl1 - cl0),
		answered:  per(st1.CallsAnswered - st0.CallsAnswered),
		abandoned: st1.CallsAbandoned - st0.CallsAbandoned,
		events:    per(ev1 - ev0),
		messages:  per(seq1 - seq0),
		cpuBusy:   cpu1.busyFraction(cpu0),
	}
	r.latency, r.desktopLatency = rec.samples()
	r.desktopMsgs = per(dm1 - dm0)
	r.desktopsCut = int(desks.cut.Load())
	if heap > heapBefore {
		r.heapBytes = heap - heapBefore
	}
	r.logProblems, r.firstProblems = problems.report()
	return r
}

// startLoadSite opens a site of agents robot agents as the load harness runs it (provisioned
// by writeLoadProvisioning, the simulated PBX's robots answering, no calls yet) with every
// agent ready. The caller closes the Main.
func startLoadSite(ctx context.Context, tb testing.TB, agents int, rec *loadRecorder, problems *problemHandler) (*Main, *sim.Driver) {
	tb.Helper()
	dir := tb.TempDir()
	prov := filepath.Join(dir, "load.yaml")
	if err := writeLoadProvisioning(prov, agents); err != nil {
		tb.Fatal(err)
	}
	var drv *sim.Driver
	m := NewMain(io.Discard, io.Discard)
	m.HTTPAddr = "127.0.0.1:0"
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
		drv = sim.New(cfg, lg)
		return &stampDriver{Driver: drv, rec: rec}
	}
	m.onEvent = rec.appended
	if err := m.Open(ctx); err != nil {
		m.Close()
		tb.Fatal(err)
	}
	testenv.Eventually(tb, "the node to be ready", func() bool { return m.Node.Ready() == nil })
	if err := setAllReady(ctx, m, agents); err != nil {
		m.Close()
		tb.Fatal(err)
	}
	return m, drv
}

// writeLoadProvisioning writes a provisioning file for agents robot agents: tenants t000…
// of loadAgentsPerTenant agents each (one DID, one queue, one second of wrap-up), users
// a00000… on devices 100000… with a cheap bcrypt hash (cost 4) of loadPassword, so that
// desktops log in quickly.
func writeLoadProvisioning(path string, agents int) error {
	hash, err := bcrypt.GenerateFromPassword([]byte(loadPassword), bcrypt.MinCost)
	if err != nil {
		return err
	}
	var p callbridge.Provisioning
	for i := range agents {
		if i%loadAgentsPerTenant == 0 {
			t := len(p.Tenants)
			q := callbridge.QueueName(fmt.Sprintf("t%03d-q", t))
			p.Tenants = append(p.Tenants, callbridge.TenantConfig{
				ID: callbridge.TenantID(fmt.Sprintf("t%03d", t)), Name: fmt.Sprintf("Load %d", t),
				DIDs: []string{fmt.Sprintf("1800%07d", t)}, WrapUpSeconds: loadWrapUpSeconds,
				Queues: []callbridge.QueueConfig{{Name: q}},
			})
		}
		t := &p.Tenants[len(p.Tenants)-1]
		t.Users = append(t.Users, callbridge.UserConfig{
			Username: loadAgent(i), PasswordHash: string(hash), Role: callbridge.RoleAgent,
			Device: callbridge.DeviceID(strconv.Itoa(100000 + i)), Queues: []callbridge.QueueName{t.Queues[0].Name},
		})
	}
	b, err := yaml.Marshal(p)
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o600)
}

func loadAgent(i int) string { return fmt.Sprintf("a%05d", i) }

func loadTenant(i int) callbridge.TenantID {
	return callbridge.TenantID(fmt.Sprintf("t%03d", i/loadAgentsPerTenant))
}

// setAllReady makes every agent ready through the node, as their desktops would, from a few
// goroutines at once.
func setAllReady(ctx context.Context, m *Main, agents int) error {
	var next atomic.Int64
	errs := make(chan error, 8)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for i := int(next.Add(1) - 1); i < agents; i = int(next.Add(1) - 1) {
				_, err := m.Node.Do(ctx, callbridge.Command{
					Name: callbridge.CmdSetAgentState, Tenant: loadTenant(i), Agent: callbridge.AgentID(loadAgent(i)),
					Role: callbridge.RoleAgent, State: callbridge.AgentReady,
				})
				if err != nil {
					errs <- fmt.Errorf("set %s ready: %w", loadAgent(i), err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	return <-errs
}

func lastSeq(ctx context.Context, m *Main) uint64 {
	seq, _ := m.evlog.LastSeq(ctx)
	return seq
}

// stampDriver is the simulated PBX's driver that records when each call event reaches the
// node, so that the domain event it causes can be timed.
type stampDriver struct {
	*sim.Driver
	rec *loadRecorder
}

func (d *stampDriver) Run(ctx context.Context, emit func(callbridge.SwitchEvent)) error {
	return d.Driver.Run(ctx, func(ev callbridge.SwitchEvent) {
		d.rec.arrived(ev)
		emit(ev)
	})
}

// loadCauses maps the call events that are timed to the switch event that causes them.
var loadCauses = map[callbridge.EventType]callbridge.SwitchEventType{
	callbridge.EventCallQueued:            callbridge.SwitchQueued,
	callbridge.EventCallDelivered:         callbridge.SwitchAlerting,
	callbridge.EventCallEstablished:       callbridge.SwitchConnected,
	callbridge.EventCallConnectionCleared: callbridge.SwitchConnectionCleared,
	callbridge.EventCallCleared:           callbridge.SwitchCallCleared,
}

// loadRecorder counts the domain events the node appends and times them: the latency of a
// call event is from its causing switch event's arrival at the node (the driver's emit) to
// the return of its Append to the event log (node.Config.OnEvent).
type loadRecorder struct {
	events, cleared, desktopMsgs atomic.Uint64
	on                           atomic.Bool

	mu      sync.Mutex
	pending map[string][]loadArrival // PBXCallID → timed switch events not matched yet, oldest first
	lat     []time.Duration
	deskLat []time.Duration
}

type loadArrival struct {
	typ callbridge.SwitchEventType
	at  time.Time
}

func newLoadRecorder() *loadRecorder {
	return &loadRecorder{pending: map[string][]loadArrival{}}
}

func (r *loadRecorder) measure(on bool) { r.on.Store(on) }

func (r *loadRecorder) arrived(ev callbridge.SwitchEvent) {
	if ev.PBXCallID == "" {
		return
	}
	switch ev.Type {
	case callbridge.SwitchQueued, callbridge.SwitchAlerting, callbridge.SwitchConnected,
		callbridge.SwitchConnectionCleared, callbridge.SwitchCallCleared:
	default:
		return
	}
	now := time.Now()
	r.mu.Lock()
	r.pending[ev.PBXCallID] = append(r.pending[ev.PBXCallID], loadArrival{ev.Type, now})
	r.mu.Unlock()
}

// appended is node.Config.OnEvent: it runs in the node's loop right after the Append.
func (r *loadRecorder) appended(ev callbridge.Event) {
	now := time.Now()
	r.events.Add(1)
	ce, ok := ev.Data.(*callbridge.CallEvent)
	if !ok {
		return
	}
	if ev.Type == callbridge.EventCallCleared {
		r.cleared.Add(1)
	}
	cause, timed := loadCauses[ev.Type]
	r.mu.Lock()
	defer r.mu.Unlock()
	if timed {
		arr := r.pending[ce.PBXCallID]
		if i := slices.IndexFunc(arr, func(a loadArrival) bool { return a.typ == cause }); i >= 0 {
			if r.on.Load() {
				r.lat = append(r.lat, now.Sub(arr[i].at))
			}
			r.pending[ce.PBXCallID] = arr[i+1:]
		}
	}
	if ev.Type == callbridge.EventCallCleared {
		delete(r.pending, ce.PBXCallID)
	}
}

// delivered records one message a desktop received; evTime is its event's time (zero for
// other messages).
func (r *loadRecorder) delivered(evTime time.Time) {
	if !r.on.Load() {
		return
	}
	r.desktopMsgs.Add(1)
	if evTime.IsZero() {
		return
	}
	d := time.Since(evTime)
	r.mu.Lock()
	r.deskLat = append(r.deskLat, d)
	r.mu.Unlock()
}

func (r *loadRecorder) samples() (lat, desk []time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.lat), slices.Clone(r.deskLat)
}

// loadDesktops are WebSocket desktops of the first agents, each with a reader goroutine.
type loadDesktops struct {
	conns []*websocket.Conn
	wg    sync.WaitGroup
	cut   atomic.Int64 // connections that ended before close
	done  atomic.Bool
}

// openLoadDesktops logs in n agents through the gateway (POST /v1/login) and connects a
// desktop for each (GET /v1/ws), reading every message.
func openLoadDesktops(ctx context.Context, m *Main, n int, rec *loadRecorder) (*loadDesktops, error) {
	d := &loadDesktops{}
	base := "http://" + m.HTTP.Addr()
	for i := range n {
		body, _ := json.Marshal(map[string]string{"username": loadAgent(i), "password": loadPassword})
		resp, err := http.Post(base+"/v1/login", "application/json", bytes.NewReader(body))
		if err != nil {
			return d, err
		}
		var out struct {
			Token string `json:"token"`
		}
		err = json.NewDecoder(resp.Body).Decode(&out)
		resp.Body.Close()
		if err != nil || out.Token == "" {
			return d, fmt.Errorf("login %s: %s %v", loadAgent(i), resp.Status, err)
		}
		c, _, err := websocket.Dial(ctx, "ws://"+m.HTTP.Addr()+"/v1/ws?access_token="+out.Token, nil)
		if err != nil {
			return d, fmt.Errorf("desktop %s: %w", loadAgent(i), err)
		}
		c.SetReadLimit(1 << 20)
		d.conns = append(d.conns, c)
		d.wg.Go(func() {
			for {
				_, b, err := c.Read(context.Background())
				if err != nil {
					if !d.done.Load() {
						d.cut.Add(1)
					}
					return
				}
				var msg struct {
					Seq  uint64    `json:"seq"`
					Time time.Time `json:"time"`
				}
				if json.Unmarshal(b, &msg) == nil && msg.Seq > 0 {
					rec.delivered(msg.Time)
				} else {
					rec.delivered(time.Time{})
				}
			}
		})
	}
	return d, nil
}

func (d *loadDesktops) close() {
	d.done.Store(true)
	for _, c := range d.conns {
		c.CloseNow()
	}
	d.wg.Wait()
}

// problemHandler is a slog.Handler that counts the site's warnings and errors and keeps the
// first few; everything below Warn is dropped.
type problemHandler struct {
	mu    sync.Mutex
	n     uint64
	first []string
	attrs []slog.Attr
}

func (h *problemHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelWarn }

func (h *problemHandler) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.n++
	if len(h.first) < 5 {
		s := r.Message
		r.Attrs(func(a slog.Attr) bool { s += " " + a.String(); return true })
		h.first = append(h.first, s)
	}
	return nil
}

func (h *problemHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *problemHandler) WithGroup(string) slog.Handler      { return h }

func (h *problemHandler) report() (uint64, []string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.n, slices.Clone(h.first)
}

// heapInUse returns the bytes in in-use heap spans after a full collection.
func heapInUse() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse
}

func percentile(d []time.Duration, p int) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	return s[min(len(s)-1, len(s)*p/100)]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// busyFraction is the share of the machine's cores (GOMAXPROCS) the process used between
// before and c (0…1).
func (c cpuStats) busyFraction(before cpuStats) float64 {
	wall := c.wall.Sub(before.wall)
	if wall <= 0 {
		return 0
	}
	return float64(c.cpu-before.cpu) / float64(wall) / float64(runtime.GOMAXPROCS(0))
}
