// Package metrics holds callbridge's Prometheus metrics, served at GET /metrics (DESIGN.md
// §4, beside /healthz and /readyz) in the Prometheus text exposition format.
//
// A *Metrics is made once per process by New and handed to the parts that count (the node,
// the gateway, the webhook dispatcher); every method is safe on a nil *Metrics, which counts
// nothing, so those parts need no metrics to work. No label carries a tenant, agent, call or
// number: the metrics reveal volumes, not who.
//
// Metrics (all prefixed callbridge_):
//
//	events_total{type}                 counter  domain events appended to the event log
//	event_log_errors_total             counter  events the event log refused (each one logged)
//	commands_total{command,result}     counter  commands carried out by the node; result is
//	                                            "ok" or the error code (docs/api.md)
//	websocket_connections              gauge    open desktop WebSocket connections
//	webhook_deliveries_total{result}   counter  webhook delivery attempts: "delivered",
//	                                            "retry" (failed, will be retried) or "dead_letter"
//	switch_up                          gauge    1 when the switch link is up and resynchronised
//	calls_active                       gauge    calls in the model (all tenants)
//	agents{state}                      gauge    agents per CSTA agent state (all tenants)
//
// plus the Go runtime (go_*) and process (process_*) collectors.
package metrics

import (
	"context"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/callbridge/callbridge"
)

const namespace = "callbridge"

// Metrics is the process's registry and the collectors callbridge updates.
type Metrics struct {
	reg        *prometheus.Registry
	events     *prometheus.CounterVec
	logErrors  prometheus.Counter
	commands   *prometheus.CounterVec
	websockets prometheus.Gauge
	deliveries *prometheus.CounterVec
	refused    prometheus.Counter
	slow       prometheus.Counter
	resyncs    *prometheus.CounterVec
}

// New returns Metrics with a registry of its own (no global state) holding callbridge's
// collectors and the Go runtime and process collectors.
func New() *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Name: "events_total",
			Help: "Domain events appended to the event log, by type."}, []string{"type"}),
		logErrors: prometheus.NewCounter(prometheus.CounterOpts{Namespace: namespace, Name: "event_log_errors_total",
			Help: "Domain events the event log failed to append."}),
		commands: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Name: "commands_total",
			Help: "Commands carried out by the node, by command and result (ok or the error code)."}, []string{"command", "result"}),
		websockets: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: namespace, Name: "websocket_connections",
			Help: "Open desktop WebSocket connections."}),
		deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Name: "webhook_deliveries_total",
			Help: "Webhook delivery attempts, by result (delivered, retry, dead_letter)."}, []string{"result"}),
		refused: prometheus.NewCounter(prometheus.CounterOpts{Namespace: namespace, Name: "node_busy_refusals_total",
			Help: "Requests (commands, presence, snapshots) refused with unavailable because the node's loop had too many waiting."}),
		slow: prometheus.NewCounter(prometheus.CounterOpts{Namespace: namespace, Name: "websocket_slow_consumers_total",
			Help: "WebSocket connections cut off because their send queue passed its byte cap."}),
		resyncs: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Name: "websocket_resyncs_total",
			Help: "Resumes that could not be served from the window or the log and were answered with a resync, by reason."}, []string{"reason"}),
	}
	m.reg.MustRegister(m.events, m.logErrors, m.commands, m.websockets, m.deliveries, m.refused, m.slow, m.resyncs,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Handler serves the registry in the Prometheus exposition format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
}

// Event counts one domain event appended to the event log.
func (m *Metrics) Event(t callbridge.EventType) {
	if m != nil {
		m.events.WithLabelValues(string(t)).Inc()
	}
}

// EventLogError counts one event the event log did not take.
func (m *Metrics) EventLogError() {
	if m != nil {
		m.logErrors.Inc()
	}
}

// Refused counts one request the node refused because its loop had too many waiting.
func (m *Metrics) Refused() {
	if m != nil {
		m.refused.Inc()
	}
}

// SlowConsumer counts one WebSocket cut off for a full send queue.
func (m *Metrics) SlowConsumer() {
	if m != nil {
		m.slow.Inc()
	}
}

// Resync counts one resume answered with a resync, by reason.
func (m *Metrics) Resync(reason string) {
	if m != nil {
		m.resyncs.WithLabelValues(reason).Inc()
	}
}

// WatchEventLog exposes the node's event log backlog: callbridge_event_log_held_events
// (events produced and not yet stored) and callbridge_event_log_refusing (1 while the log
// refuses appends and the node holds events and pauses the switch's reader).
func (m *Metrics) WatchEventLog(status func() (held int, err error)) {
	if m == nil {
		return
	}
	m.reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: namespace, Name: "event_log_held_events",
			Help: "Domain events produced and not yet stored in the event log."}, func() float64 {
			held, _ := status()
			return float64(held)
		}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: namespace, Name: "event_log_refusing",
			Help: "1 while the event log refuses appends (events are held and the switch's reader is paused)."}, func() float64 {
			if _, err := status(); err != nil {
				return 1
			}
			return 0
		}))
}

// Command counts one command with its outcome: err nil is "ok", else its error code.
func (m *Metrics) Command(name callbridge.CommandName, err error) {
	if m == nil {
		return
	}
	result := "ok"
	if err != nil {
		result = callbridge.ErrorCode(err)
	}
	m.commands.WithLabelValues(string(name), result).Inc()
}

// WebSocketOpened and WebSocketClosed track the open desktop connections.
func (m *Metrics) WebSocketOpened() {
	if m != nil {
		m.websockets.Inc()
	}
}

// WebSocketClosed: see WebSocketOpened.
func (m *Metrics) WebSocketClosed() {
	if m != nil {
		m.websockets.Dec()
	}
}

// WebhookDelivery counts one delivery attempt by its result: "delivered", "retry" or
// "dead_letter".
func (m *Metrics) WebhookDelivery(result string) {
	if m != nil {
		m.deliveries.WithLabelValues(result).Inc()
	}
}

// Model is what the model gauges are read from at each scrape.
type Model interface {
	// Ready is nil when the switch link is up and resynchronised.
	Ready() error
	// Counts returns the number of active calls and of agents per state, over all tenants.
	Counts(ctx context.Context) (calls int, agents map[callbridge.AgentState]int, err error)
}

// WatchModel adds the switch_up, calls_active and agents gauges, read from src at each
// scrape (with a timeout of 2 s; a model that does not answer in time leaves them out of
// that scrape). Call it once.
func (m *Metrics) WatchModel(src Model) {
	if m != nil {
		m.reg.MustRegister(&modelCollector{src: src,
			switchUp: prometheus.NewDesc(namespace+"_switch_up", "1 when the switch link is up and resynchronised, else 0.", nil, nil),
			calls:    prometheus.NewDesc(namespace+"_calls_active", "Calls in the model, over all tenants.", nil, nil),
			agents:   prometheus.NewDesc(namespace+"_agents", "Agents per CSTA agent state, over all tenants.", []string{"state"}, nil),
		})
	}
}

// modelCollector reads the model gauges at each scrape.
type modelCollector struct {
	src                     Model
	switchUp, calls, agents *prometheus.Desc
}

func (c *modelCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.switchUp
	ch <- c.calls
	ch <- c.agents
}

func (c *modelCollector) Collect(ch chan<- prometheus.Metric) {
	up := 0.0
	if c.src.Ready() == nil {
		up = 1
	}
	ch <- prometheus.MustNewConstMetric(c.switchUp, prometheus.GaugeValue, up)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	calls, agents, err := c.src.Counts(ctx)
	if err != nil {
		return
	}
	ch <- prometheus.MustNewConstMetric(c.calls, prometheus.GaugeValue, float64(calls))
	// Every state is reported, even with no agent in it, so that sums and rates work.
	for _, s := range []callbridge.AgentState{callbridge.AgentLoggedOut, callbridge.AgentNotReady, callbridge.AgentReady,
		callbridge.AgentBusy, callbridge.AgentWorkingAfterCall} {
		ch <- prometheus.MustNewConstMetric(c.agents, prometheus.GaugeValue, float64(agents[s]), string(s))
	}
}
