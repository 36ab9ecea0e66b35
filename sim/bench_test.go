package sim_test

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/callbridge/callbridge"
	"github.com/callbridge/callbridge/sim"
)

// loadDirectory is tenants × agents robot agents, each tenant with one queue and one DID.
func loadDirectory(tenants, agents int) callbridge.Directory {
	var dir callbridge.Directory
	for t := range tenants {
		tc := callbridge.TenantConfig{
			ID:     callbridge.TenantID(fmt.Sprintf("t%d", t)),
			DIDs:   []string{fmt.Sprintf("1800%07d", t)},
			Queues: []callbridge.QueueConfig{{Name: callbridge.QueueName(fmt.Sprintf("t%d-q", t))}},
		}
		for a := range agents {
			tc.Users = append(tc.Users, callbridge.UserConfig{
				Username: fmt.Sprintf("a%d", a), Device: callbridge.DeviceID(fmt.Sprintf("%d%04d", t+1, a)),
			})
		}
		dir.Tenants = append(dir.Tenants, tc)
	}
	return dir
}

// BenchmarkPBX measures the core: one op is one inbound call simulated from arrival to
// call_cleared (IVR, queue, offer, robot answer, talk, hang-up, or abandon). The calls/s
// metric is simulated calls per second of CPU.
func BenchmarkPBX(b *testing.B) {
	for _, bc := range []struct {
		name     string
		tenants  int
		agents   int
		interval time.Duration
	}{
		{"balanced/1x100", 1, 100, time.Second},            // about 75 % occupancy
		{"overload/1x100", 1, 100, 200 * time.Millisecond}, // hundreds of callers waiting
		{"tenants/20x10", 20, 10, 10 * time.Second},
	} {
		b.Run(bc.name, func(b *testing.B) {
			p := sim.NewPBX(sim.Config{
				Directory: loadDirectory(bc.tenants, bc.agents), Rand: rand.New(rand.NewPCG(1, 1)),
				Start: t0, CallInterval: bc.interval, AgentAnswer: 2 * time.Second,
			})
			for t := range bc.tenants {
				for a := range bc.agents {
					_, err := p.Execute(t0, callbridge.SwitchCommand{
						Type: callbridge.SwitchSetMemberState, Tenant: callbridge.TenantID(fmt.Sprintf("t%d", t)),
						Device: callbridge.DeviceID(fmt.Sprintf("%d%04d", t+1, a)), Action: callbridge.MemberAdd,
						Queues: []callbridge.QueueName{callbridge.QueueName(fmt.Sprintf("t%d-q", t))},
					})
					if err != nil {
						b.Fatal(err)
					}
				}
			}
			// Warm up to a steady state (ten simulated minutes).
			for p.NextDeadline().Before(t0.Add(10 * time.Minute)) {
				p.Advance(p.NextDeadline())
			}
			start := p.Stats()
			b.ReportAllocs()
			b.ResetTimer()
			events := 0
			for p.Stats().CallsCleared-start.CallsCleared < uint64(b.N) {
				events += len(p.Advance(p.NextDeadline()))
			}
			b.StopTimer()
			st := p.Stats()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "calls/s")
			b.ReportMetric(float64(events)/float64(b.N), "events/call")
			b.ReportMetric(float64(st.ActiveCalls), "active")
		})
	}
}
