// Package loadtest is the load harness's desktops and its baseline. A load client process
// (cbload, this package's Fleet) holds thousands of real WebSocket desktops, each logged in
// through POST /v1/login and connected to GET /v1/ws from its own source address on
// 127.0.0.0/8; it reads every message, times every screen pop, checks that each desktop
// receives only its own agent's events, and answers an orchestrator's commands on stdin
// with JSON lines on stdout (Proc is the orchestrator's side). Relay is the baseline the
// harness compares callbridge with: a bare NATS → WebSocket relay.
//
// The orchestrator is cmd/callbridge's TestScale (docs/benchmarks.md); numbers are measured
// and written down, never asserted.
package loadtest

import (
	"encoding/json"
	"fmt"
	"slices"
	"time"
)

// Mode says what a fleet's desktops talk to.
type Mode string

const (
	// ModeCallbridge: a callbridge node. Desktops start from a snapshot and resume after the
	// last seq they received (?after_seq) when their socket drops, refreshing their token
	// when it expired (close 4001), like the SDK.
	ModeCallbridge Mode = "callbridge"
	// ModeRelay: the baseline Relay. A dropped desktop reconnects afresh (core NATS keeps
	// nothing to resume from).
	ModeRelay Mode = "relay"
)

// Command is one line the orchestrator writes to a load client's stdin. The client answers
// every command with one Reply line on stdout, in order.
type Command struct {
	// Cmd is one of:
	//   login    log every agent in (POST /v1/login)
	//   connect  open every desktop; the reply comes when all are up or TimeoutMS passed
	//   measure  On: start a measurement window (pop latencies and counts start from zero);
	//            off: end it
	//   stats    the counters and, for the last window, its pop latencies
	//   wait_up  wait until every desktop that dropped after SinceNS is up again
	//   seqs     per agent, the events received with From < seq <= To
	//   seqlist  the seqs of Agent received with From < seq <= To, in order of receipt
	//   quit     close every desktop and exit
	Cmd       string `json:"cmd"`
	On        bool   `json:"on,omitempty"`
	TimeoutMS int64  `json:"timeout_ms,omitempty"`
	SinceNS   int64  `json:"since_ns,omitempty"`
	From      uint64 `json:"from,omitempty"`
	To        uint64 `json:"to,omitempty"`
	Agent     string `json:"agent,omitempty"`
}

// Reply is a load client's answer to one Command. Err is set when the command failed.
type Reply struct {
	Err string `json:"err,omitempty"`
	// login, connect, wait_up: desktops done (logged in, up), failed, and how long it took.
	Done   int    `json:"done,omitempty"`
	Failed int    `json:"failed,omitempty"`
	MS     int64  `json:"ms,omitempty"`
	First  string `json:"first_err,omitempty"`
	// wait_up: desktops that dropped after SinceNS, and when the last of them came up
	// (Unix ns).
	Dropped  int   `json:"dropped,omitempty"`
	LastUpNS int64 `json:"last_up_ns,omitempty"`

	Stats *Stats              `json:"stats,omitempty"`
	Seqs  map[string]SeqCount `json:"seqs,omitempty"`
	List  []uint64            `json:"list,omitempty"`
}

// SeqCount sums what one desktop received in a range of seqs: how many events, the sum
// of their seqs and how many it got more than once. An orchestrator compares it with the
// log's events for the agent in that range: equal counts and sums, no duplicates, mean
// nothing was missed.
type SeqCount struct {
	N    int    `json:"n"`
	Sum  uint64 `json:"sum"`
	Dups int    `json:"dups,omitempty"`
}

// Stats are a fleet's counters since it started, and its last measurement window.
type Stats struct {
	Desktops int `json:"desktops"`
	Up       int `json:"up"` // desktops whose socket is open and has received a message
	// Messages and events since start; snapshots and resyncs by reason.
	Messages  uint64            `json:"messages"`
	Events    uint64            `json:"events"`
	Snapshots uint64            `json:"snapshots"`
	Resyncs   map[string]uint64 `json:"resyncs,omitempty"`
	// Closes counts the sockets that ended other than by the client, by close code (0: the
	// connection broke without a close frame); DialErrors the failed connection attempts.
	Closes     map[string]uint64 `json:"closes,omitempty"`
	DialErrors uint64            `json:"dial_errors"`
	FirstDial  string            `json:"first_dial_err,omitempty"`
	Refreshes  uint64            `json:"refreshes"`
	// Wrong counts events a desktop received that are not its agent's; WrongExamples shows
	// a few.
	Wrong         uint64   `json:"wrong"`
	WrongExamples []string `json:"wrong_examples,omitempty"`

	// The last measurement window: its length, the messages and own screen pops
	// (call.delivered of the desktop's agent) received in it, and each pop's latency from
	// the event's time to its receipt, in microseconds.
	WindowMS  int64   `json:"window_ms"`
	WinMsgs   uint64  `json:"win_messages"`
	WinPops   uint64  `json:"win_pops"`
	PopLatUS  []int64 `json:"pop_latency_us,omitempty"`
	WinBytes  uint64  `json:"win_bytes"`
	ClientCPU float64 `json:"client_cpu_s"` // the process's user+system CPU seconds so far
}

// Merge adds o into s (the stats of several client processes).
func (s *Stats) Merge(o *Stats) {
	s.Desktops += o.Desktops
	s.Up += o.Up
	s.Messages += o.Messages
	s.Events += o.Events
	s.Snapshots += o.Snapshots
	s.Resyncs = mergeCounts(s.Resyncs, o.Resyncs)
	s.Closes = mergeCounts(s.Closes, o.Closes)
	s.DialErrors += o.DialErrors
	if s.FirstDial == "" {
		s.FirstDial = o.FirstDial
	}
	s.Refreshes += o.Refreshes
	s.Wrong += o.Wrong
	s.WrongExamples = append(s.WrongExamples, o.WrongExamples...)
	s.WindowMS = max(s.WindowMS, o.WindowMS)
	s.WinMsgs += o.WinMsgs
	s.WinPops += o.WinPops
	s.WinBytes += o.WinBytes
	s.PopLatUS = append(s.PopLatUS, o.PopLatUS...)
	s.ClientCPU += o.ClientCPU
}

func mergeCounts(a, b map[string]uint64) map[string]uint64 {
	if len(b) == 0 {
		return a
	}
	if a == nil {
		a = map[string]uint64{}
	}
	for k, v := range b {
		a[k] += v
	}
	return a
}

// Latency summarises latencies: the number of samples and their p50, p99, p99.9 and max.
type Latency struct {
	N    int           `json:"n"`
	P50  time.Duration `json:"p50"`
	P99  time.Duration `json:"p99"`
	P999 time.Duration `json:"p999"`
	Max  time.Duration `json:"max"`
}

// Summarise returns the Latency of samples given in microseconds.
func Summarise(us []int64) Latency {
	if len(us) == 0 {
		return Latency{}
	}
	s := slices.Clone(us)
	slices.Sort(s)
	at := func(p float64) time.Duration {
		i := min(len(s)-1, int(float64(len(s))*p))
		return time.Duration(s[i]) * time.Microsecond
	}
	return Latency{N: len(s), P50: at(0.50), P99: at(0.99), P999: at(0.999), Max: time.Duration(s[len(s)-1]) * time.Microsecond}
}

func (l Latency) String() string {
	return fmt.Sprintf("n=%d p50=%s p99=%s p99.9=%s max=%s", l.N, round(l.P50), round(l.P99), round(l.P999), round(l.Max))
}

func round(d time.Duration) time.Duration {
	switch {
	case d >= time.Second:
		return d.Round(time.Millisecond)
	case d >= time.Millisecond:
		return d.Round(10 * time.Microsecond)
	default:
		return d.Round(time.Microsecond)
	}
}

// MarshalJSON writes the durations in milliseconds.
func (l Latency) MarshalJSON() ([]byte, error) {
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	return json.Marshal(struct {
		N    int     `json:"n"`
		P50  float64 `json:"p50_ms"`
		P99  float64 `json:"p99_ms"`
		P999 float64 `json:"p999_ms"`
		Max  float64 `json:"max_ms"`
	}{l.N, ms(l.P50), ms(l.P99), ms(l.P999), ms(l.Max)})
}
