package pbxtest_test

import (
	"context"
	"log/slog"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/callbridge/callbridge"
	"github.com/callbridge/callbridge/capture"
	"github.com/callbridge/callbridge/freeswitch"
	"github.com/callbridge/callbridge/freeswitch/esl"
	"github.com/callbridge/callbridge/internal/replay"
	"github.com/callbridge/callbridge/pbxtest"
)

// freeswitchBinding binds the kit to the FreeSWITCH driver and the recordings of a real
// FreeSWITCH 1.10 in shared/fixtures/freeswitch-1.10 (casts from its README), subscribing
// with format ("plain" or "json"; the replay server re-encodes the plain recordings for a
// JSON client).
func freeswitchBinding(t testing.TB, format string) pbxtest.Binding {
	acme := func(c pbxtest.Cast) pbxtest.Cast {
		c.Tenant, c.DNIS = "acme", "18005550100"
		return c
	}
	return pbxtest.Binding{
		Name:         "freeswitch-1.10 (event " + format + ")",
		FixtureSet:   "freeswitch-1.10",
		Provisioning: example(t, "freeswitch-1.10.yaml"),
		NewServer: func(recs []capture.Record, logger *slog.Logger) pbxtest.Server {
			return capture.NewESLServer([]capture.Script{{Records: recs}}, capture.ServerOptions{Logger: logger})
		},
		NewDriver: func(addr string, dir callbridge.Directory, logger *slog.Logger) callbridge.Driver {
			return freeswitch.New(freeswitch.Config{Addr: addr, Password: "ClueCon", Format: format, Logger: logger, Queues: queues(dir)})
		},
		Start: replay.ESLStart,
		Recordings: map[string]pbxtest.Recording{
			pbxtest.InboundAnswered: {File: "fs-inbound-answered.esl.jsonl", Cast: acme(pbxtest.Cast{
				Agent: "1001", Device: "1001", Queue: "support@default", ANI: "+15551230001",
				Data: map[string]string{"ivr_reason": "billing", "ivr_account": "12345", "ivr_lang": "en"},
			})},
			pbxtest.AbandonedInQueue: {File: "fs-inbound-abandon.esl.jsonl", Cast: acme(pbxtest.Cast{
				Queue: "support@default", ANI: "+15551230003",
				Data: map[string]string{"ivr_reason": "sales", "ivr_account": "67890"},
			})},
			pbxtest.BlindTransfer: {File: "fs-blind-transfer.esl.jsonl", Cast: acme(pbxtest.Cast{
				Agent: "1001", Device: "1001", Agent2: "1002", Device2: "1002", ANI: "+15551230004",
				Data: map[string]string{"ivr_account": "24680", "ivr_reason": "support"},
			})},
			// No public recording shows att_xfer: freeswitch/attxfer_build_test.go builds this
			// one from fs-blind-transfer and FreeSWITCH 1.10's documented event order.
			pbxtest.AttendedTransfer: {Path: "../freeswitch/testdata/fs-att-xfer.esl.jsonl", Cast: acme(pbxtest.Cast{
				Agent: "1001", Device: "1001", Agent2: "1002", Device2: "1002", ANI: "+15551230004",
				Data: map[string]string{"ivr_account": "24680", "ivr_reason": "support"},
			})},
			pbxtest.HoldRetrieve: {File: "fs-hold.esl.jsonl", Cast: acme(pbxtest.Cast{
				Agent: "1001", Device: "1001", ANI: "+15551230006",
				Data: map[string]string{"ivr_account": "11223"},
			})},
			pbxtest.ClickToCall: {File: "fs-click-to-call.esl.jsonl", Cast: acme(pbxtest.Cast{
				Agent: "1003", Device: "1003", Customer: "15557654321",
			})},
			pbxtest.AgentStateChange: {File: "fs-agent-state.esl.jsonl", Cast: acme(pbxtest.Cast{
				Agent: "1001", Device: "1001", NotReadyReason: freeswitch.DefaultBreakReason,
			})},
		},
		Missing: map[string]string{
			pbxtest.AgentHangup: "the public FreeSWITCH 1.10 recordings have no call the agent hangs up first " +
				"(README scenarios: in every recorded call the caller or the customer hangs up)",
			pbxtest.QueueNoAnswer: "the public FreeSWITCH 1.10 recordings have no queue offer that is not answered " +
				"(README scenarios: every agent mod_callcenter offers a call to answers it); freeswitch/synthetic_test.go " +
				"plays mod_callcenter's ring-no-answer through the tracker",
			pbxtest.RoutedNoAnswer: "the public FreeSWITCH 1.10 recordings have no routing point (park) call",
		},
	}
}

// TestFreeSWITCHConformance runs the kit against the FreeSWITCH driver, subscribed with
// "event plain ALL" as the recordings were made.
func TestFreeSWITCHConformance(t *testing.T) {
	pbxtest.Run(t, freeswitchBinding(t, esl.FormatPlain))
}

// TestFreeSWITCHConformanceJSON runs the kit again with "event json ALL".
func TestFreeSWITCHConformanceJSON(t *testing.T) {
	pbxtest.Run(t, freeswitchBinding(t, esl.FormatJSON))
}

// TestFreeSWITCHAttXferNotCompleted replays the built att_xfer recordings in which the
// transfer does not happen (freeswitch/attxfer_build_test.go) through the replay server,
// the real event socket client, the driver and the engine: the consulted phone hangs up
// during the consultation (fs-att-xfer-cancel) or never answers (fs-att-xfer-no-answer).
// Either way the consultation clears and the agent has the caller back; nothing is
// transferred.
func TestFreeSWITCHAttXferNotCompleted(t *testing.T) {
	cast := pbxtest.Cast{
		Tenant: "acme", DNIS: "18005550100", Agent: "1001", Device: "1001", Agent2: "1002", Device2: "1002",
		ANI: "+15551230004", Data: map[string]string{"ivr_account": "24680", "ivr_reason": "support"},
	}
	start := []pbxtest.Step{
		{Type: callbridge.EventCallEstablished, Call: "A", Party: pbxtest.RoleAgent, Screen: true},
		{Type: callbridge.EventCallHeld, Call: "A", Party: pbxtest.RoleAgent},
		{Type: callbridge.EventCallDelivered, Call: "B", Party: pbxtest.RoleAgent2, Data: true},
	}
	back := []pbxtest.Step{
		{Type: callbridge.EventCallCleared, Call: "B"},
		{Type: callbridge.EventCallRetrieved, Call: "A", Party: pbxtest.RoleAgent},
		{Type: callbridge.EventCallCleared, Call: "A"},
	}
	for _, tc := range []struct {
		file  string
		steps []pbxtest.Step
	}{
		{"fs-att-xfer-cancel.esl.jsonl", slices.Concat(start, []pbxtest.Step{
			{Type: callbridge.EventCallEstablished, Call: "B", Party: pbxtest.RoleAgent2},
			{Type: callbridge.EventCallConnectionCleared, Call: "B", Party: pbxtest.RoleAgent2},
		}, back)},
		{"fs-att-xfer-no-answer.esl.jsonl", slices.Concat(start, []pbxtest.Step{
			{Type: callbridge.EventCallFailed, Call: "B", Party: pbxtest.RoleAgent2, Cause: callbridge.CauseNoAnswer},
		}, back)},
	} {
		for _, format := range []string{esl.FormatPlain, esl.FormatJSON} {
			t.Run(tc.file+"/"+format, func(t *testing.T) {
				t.Parallel()
				recs, err := capture.ReadFile(filepath.Join("..", "freeswitch", "testdata", tc.file))
				if err != nil {
					t.Fatal(err)
				}
				ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
				defer cancel()
				evs, err := pbxtest.Replay(ctx, freeswitchBinding(t, format), recs, slog.New(slog.DiscardHandler))
				if err != nil {
					t.Fatal(err)
				}
				pbxtest.Expect(t, evs, tc.steps, cast)
				pbxtest.ExpectNever(t, evs, []pbxtest.Step{{Type: callbridge.EventCallTransferred}}, cast)
				pbxtest.CheckNothingStuck(t, evs, 0)
			})
		}
	}
}
