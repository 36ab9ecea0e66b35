package pbxtest_test

import (
	"log/slog"
	"testing"

	"github.com/callbridge/callbridge"
	"github.com/callbridge/callbridge/asterisk"
	"github.com/callbridge/callbridge/capture"
	"github.com/callbridge/callbridge/internal/replay"
	"github.com/callbridge/callbridge/pbxtest"
)

// asteriskBinding binds the kit to the Asterisk driver and the recordings of a real Asterisk
// 22 in shared/fixtures/asterisk-22 (casts from its README).
func asteriskBinding(t testing.TB) pbxtest.Binding {
	acme := func(c pbxtest.Cast) pbxtest.Cast {
		c.Tenant = "acme"
		if c.DNIS == "" {
			c.DNIS = "18005550100"
		}
		return c
	}
	return pbxtest.Binding{
		Name:         "asterisk-22",
		FixtureSet:   "asterisk-22",
		Provisioning: example(t, "asterisk-22.yaml"),
		NewServer: func(recs []capture.Record, logger *slog.Logger) pbxtest.Server {
			return capture.NewAMIServer([]capture.Script{{Records: recs}}, capture.ServerOptions{Logger: logger})
		},
		NewDriver: func(addr string, _ callbridge.Directory, logger *slog.Logger) callbridge.Driver {
			return asterisk.New(asterisk.Config{Addr: addr, Username: "cti", Secret: "cti-secret", Logger: logger})
		},
		Start: replay.AMIStart,
		Recordings: map[string]pbxtest.Recording{
			pbxtest.InboundAnswered: {File: "inbound-answered.ami.jsonl", Cast: acme(pbxtest.Cast{
				Agent: "1001", Device: "1001", Queue: "acme-support", ANI: "+15551230001",
				Data: map[string]string{"IVR_REASON": "billing", "IVR_ACCOUNT": "12345", "IVR_LANG": "en"},
			})},
			pbxtest.AbandonedInQueue: {File: "inbound-abandon.ami.jsonl", Cast: pbxtest.Cast{
				Tenant: "globex", Queue: "globex-sales", ANI: "+15551230003", DNIS: "18005550200",
			}},
			pbxtest.AgentHangup: {File: "inbound-agent-hangup.ami.jsonl", Cast: pbxtest.Cast{
				Tenant: "globex", Agent: "2001", Device: "2001", Queue: "globex-sales", ANI: "+15551230002", DNIS: "18005550200",
				Data: map[string]string{"IVR_REASON": "sales", "IVR_ACCOUNT": "67890"},
			}},
			pbxtest.BlindTransfer: {File: "blind-transfer.ami.jsonl", Cast: acme(pbxtest.Cast{
				Agent: "1001", Device: "1001", Agent2: "1002", Device2: "1002", ANI: "+15551230004",
				Data: map[string]string{"IVR_ACCOUNT": "24680", "IVR_REASON": "billing"},
			})},
			pbxtest.AttendedTransfer: {File: "attended-transfer-b.ami.jsonl", Cast: acme(pbxtest.Cast{
				Agent: "1003", Device: "1003", Agent2: "1004", Device2: "1004", ANI: "+15551230021",
				Data: map[string]string{"IVR_ACCOUNT": "11223", "IVR_REASON": "billing"},
			})},
			pbxtest.HoldRetrieve: {File: "hold-retrieve-b.ami.jsonl", Cast: acme(pbxtest.Cast{
				Agent: "1002", Device: "1002", ANI: "+15551230022",
			})},
			pbxtest.ClickToCall: {File: "click-to-call.ami.jsonl", Cast: acme(pbxtest.Cast{
				Agent: "1003", Device: "1003", Customer: "15557654321",
			})},
			pbxtest.AgentStateChange: {File: "agent-state.ami.jsonl", Cast: acme(pbxtest.Cast{
				Agent: "1010", Device: "1010", NotReadyReason: "lunch",
			})},
			// 1001's phone rejects with 480 (NOANSWER, AgentRingNoAnswer RingTime 0); the queue
			// rings 1002 at once.
			pbxtest.QueueNoAnswer: {File: "agent-unreachable.ami.jsonl", Cast: acme(pbxtest.Cast{
				Agent: "1001", Device: "1001", Agent2: "1002", Device2: "1002", Queue: "acme-support", ANI: "+15551230024",
				Data: map[string]string{"IVR_REASON": "support", "IVR_ACCOUNT": "99001"},
			})},
			// The ARI routing app dials 1007 with a 10 s timeout, then 1006 (the AMI view of the
			// call: Stasis, no queue).
			pbxtest.RoutedNoAnswer: {File: "ari-route-noanswer.ami.jsonl", Cast: pbxtest.Cast{
				Tenant: "acme", Agent: "1007", Device: "1007", Agent2: "1006", Device2: "1006", ANI: "+15551230031", DNIS: "18005550300",
			}},
		},
	}
}

// TestAsteriskConformance runs the kit against the Asterisk driver.
func TestAsteriskConformance(t *testing.T) {
	pbxtest.Run(t, asteriskBinding(t))
}
