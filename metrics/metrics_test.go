package metrics_test

import (
	"context"
	"errors"
	"io"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/callbridge/callbridge"
	"github.com/callbridge/callbridge/metrics"
)

type model struct {
	ready  error
	calls  int
	agents map[callbridge.AgentState]int
	err    error
}

func (m *model) Ready() error { return m.ready }
func (m *model) Counts(context.Context) (int, map[callbridge.AgentState]int, error) {
	return m.calls, m.agents, m.err
}

func scrape(t *testing.T, m *metrics.Metrics) string {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != 200 {
		t.Fatalf("scrape: %d", rec.Code)
	}
	b, _ := io.ReadAll(rec.Body)
	return string(b)
}

func wantLines(t *testing.T, text string, lines ...string) {
	t.Helper()
	for _, l := range lines {
		if !strings.Contains("\n"+text, "\n"+l+"\n") {
			t.Errorf("no line %q in:\n%s", l, text)
		}
	}
}

func TestCounters(t *testing.T) {
	m := metrics.New()
	m.Event(callbridge.EventCallDelivered)
	m.Event(callbridge.EventCallDelivered)
	m.EventLogError()
	m.Command(callbridge.CmdAnswerCall, nil)
	m.Command(callbridge.CmdAnswerCall, callbridge.Errorf(callbridge.EConflict, "not ringing"))
	m.Command(callbridge.CmdHoldCall, errors.New("plain error"))
	m.WebSocketOpened()
	m.WebSocketOpened()
	m.WebSocketClosed()
	m.WebhookDelivery("retry")
	m.WebhookDelivery("delivered")
	wantLines(t, scrape(t, m),
		`callbridge_events_total{type="call.delivered"} 2`,
		`callbridge_event_log_errors_total 1`,
		`callbridge_commands_total{command="answer_call",result="ok"} 1`,
		`callbridge_commands_total{command="answer_call",result="conflict"} 1`,
		`callbridge_commands_total{command="hold_call",result="internal"} 1`,
		`callbridge_websocket_connections 1`,
		`callbridge_webhook_deliveries_total{result="retry"} 1`,
		`callbridge_webhook_deliveries_total{result="delivered"} 1`,
	)
}

func TestModelGauges(t *testing.T) {
	m := metrics.New()
	src := &model{calls: 3, agents: map[callbridge.AgentState]int{callbridge.AgentReady: 2, callbridge.AgentBusy: 1}}
	m.WatchModel(src)
	wantLines(t, scrape(t, m),
		`callbridge_switch_up 1`,
		`callbridge_calls_active 3`,
		`callbridge_agents{state="ready"} 2`,
		`callbridge_agents{state="busy"} 1`,
		`callbridge_agents{state="not_ready"} 0`, // every state is there, for sums
	)

	// Link down: switch_up 0. The model not answering: its gauges are left out, not zero.
	src.ready = callbridge.Errorf(callbridge.EUnavailable, "switch link is down")
	src.err = context.DeadlineExceeded
	text := scrape(t, m)
	wantLines(t, text, `callbridge_switch_up 0`)
	if strings.Contains(text, "callbridge_calls_active ") || strings.Contains(text, "callbridge_agents{") {
		t.Errorf("gauges of a model that did not answer:\n%s", text)
	}
}

// TestNilMetricsCountNothing: parts built without metrics call the same methods on a nil
// *Metrics, which counts nothing anywhere: a Metrics made beside it still shows zero, and
// Prometheus's global registry holds nothing of callbridge's (there is no global state to
// fall back to).
func TestNilMetricsCountNothing(t *testing.T) {
	beside := metrics.New()
	var m *metrics.Metrics
	m.Event(callbridge.EventCallDelivered)
	m.EventLogError()
	m.Command(callbridge.CmdAnswerCall, nil)
	m.WebSocketOpened()
	m.WebSocketOpened()
	m.WebSocketClosed()
	m.WebhookDelivery("delivered")
	m.WatchModel(&model{calls: 7, agents: map[callbridge.AgentState]int{callbridge.AgentReady: 3}})

	text := scrape(t, beside)
	wantLines(t, text, `callbridge_event_log_errors_total 0`, `callbridge_websocket_connections 0`)
	for _, counted := range []string{"callbridge_events_total{", "callbridge_commands_total{", "callbridge_webhook_deliveries_total{",
		"callbridge_switch_up", "callbridge_calls_active", "callbridge_agents{"} {
		if strings.Contains(text, counted) {
			t.Errorf("%s… in a Metrics that counted nothing:\n%s", counted, text)
		}
	}
	families, err := prometheus.DefaultGatherer.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if strings.HasPrefix(f.GetName(), "callbridge_") {
			t.Errorf("the global registry holds %s", f.GetName())
		}
	}
}
