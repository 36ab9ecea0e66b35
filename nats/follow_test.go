package nats_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"

	"github.com/callbridge/callbridge"
	"github.com/callbridge/callbridge/internal/testenv"
	cbnats "github.com/callbridge/callbridge/nats"
)

func TestFollowDeliversEveryRecordAfterThePositionThenLiveOnes(t *testing.T) {
	_, _, l := newLog(t)
	var seqs []uint64
	for _, e := range []string{"e1", "e2", "e3"} {
		seqs = append(seqs, mustAppend(t, l, callEv("acme", "C1", e, "alice")))
	}
	ctx, cancel := context.WithCancel(context.Background())
	var mu sync.Mutex
	var got []cbnats.Record
	done := make(chan error, 1)
	go func() {
		done <- l.Follow(ctx, seqs[0], func(r cbnats.Record) {
			mu.Lock()
			got = append(got, r)
			mu.Unlock()
		})
	}()
	seqs = append(seqs, mustAppend(t, l, agentEv("acme", "bob", "a1")))
	testenv.Eventually(t, "the live record", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(got) == 3
	})
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("Follow ended with %v, want the context's error", err)
	}
	mu.Lock()
	defer mu.Unlock()
	var gs []uint64
	for _, r := range got {
		gs = append(gs, r.Seq)
	}
	if !slices.Equal(gs, seqs[1:]) {
		t.Fatalf("followed %v, want %v", gs, seqs[1:])
	}
	if got[2].Type != "agent.state_changed" || !slices.Equal(got[2].Agents, []callbridge.AgentID{"bob"}) || got[0].Tenant != "acme" {
		t.Errorf("records %+v", got)
	}
	if err := l.Follow(context.Background(), seqs[3]+100, func(cbnats.Record) {}); !errors.Is(err, cbnats.ErrAhead) {
		t.Errorf("Follow from beyond the end: %v, want ErrAhead", err)
	}
}
