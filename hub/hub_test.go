package hub_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/callbridge/callbridge"
	"github.com/callbridge/callbridge/hub"
)

// sub records what a subscription receives.
type sub struct {
	mu      sync.Mutex
	seqs    []uint64
	frames  [][]byte
	resyncs []string
	notify  chan struct{}
}

func newSub() *sub { return &sub{notify: make(chan struct{}, 1)} }

func (s *sub) Send(seq uint64, frame []byte) {
	s.mu.Lock()
	s.seqs = append(s.seqs, seq)
	s.frames = append(s.frames, frame)
	s.mu.Unlock()
	s.wake()
}

func (s *sub) Resync(reason string) {
	s.mu.Lock()
	s.resyncs = append(s.resyncs, reason)
	s.mu.Unlock()
	s.wake()
}

func (s *sub) wake() {
	select {
	case s.notify <- struct{}{}:
	default:
	}
}

func (s *sub) got() ([]uint64, []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.seqs), slices.Clone(s.resyncs)
}

// waitSeq waits until seq has been received (or a resync).
func (s *sub) waitSeq(t *testing.T, seq uint64) []uint64 {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		seqs, rs := s.got()
		if slices.Contains(seqs, seq) || len(rs) > 0 {
			return seqs
		}
		select {
		case <-s.notify:
		case <-deadline:
			t.Fatalf("seq %d not received; got %v", seq, seqs)
		}
	}
}

func (s *sub) waitResync(t *testing.T) string {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		if _, rs := s.got(); len(rs) > 0 {
			return rs[0]
		}
		select {
		case <-s.notify:
		case <-deadline:
			t.Fatal("no resync")
		}
	}
}

// memLog keeps every message and reads them back as the log would; it counts reads.
type memLog struct {
	mu    sync.Mutex
	msgs  []hub.Message
	first uint64
	reads int
	gate  chan struct{} // when set, Read waits for it
	err   error
}

func (l *memLog) Read(ctx context.Context, after, upto uint64, fn func(hub.Message) error) (uint64, error) {
	l.mu.Lock()
	l.reads++
	gate, err := l.gate, l.err
	l.mu.Unlock()
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}
	if err != nil {
		return 0, err
	}
	l.mu.Lock()
	msgs, first := slices.Clone(l.msgs), max(l.first, 1)
	l.mu.Unlock()
	if n := uint64(len(msgs)); after > n {
		return first, hub.ErrAhead
	}
	for _, m := range msgs {
		if m.Seq > after && m.Seq <= upto && m.Seq >= first {
			if err := fn(m); err != nil {
				return first, err
			}
		}
	}
	return first, nil
}

func (l *memLog) readCount() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.reads
}

// world is a hub over a memLog with a publisher that numbers messages.
type world struct {
	h   *hub.Hub
	log *memLog
	seq uint64
}

func newWorld(t *testing.T, cfg hub.Config) *world {
	t.Helper()
	w := &world{log: &memLog{}}
	cfg.Reader = w.log
	w.h = hub.New(cfg)
	w.h.Start(0)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go w.h.Run(ctx)
	return w
}

// publish appends and publishes one message of tenant for agents; it returns its seq.
func (w *world) publish(tenant string, agents ...string) uint64 {
	w.seq++
	as := make([]callbridge.AgentID, len(agents))
	for i, a := range agents {
		as[i] = callbridge.AgentID(a)
	}
	m := hub.Message{Seq: w.seq, Tenant: callbridge.TenantID(tenant), Agents: as,
		Frame: []byte(fmt.Sprintf(`{"seq":%d,"tenant":%q}`, w.seq, tenant))}
	w.log.mu.Lock()
	w.log.msgs = append(w.log.msgs, m)
	w.log.mu.Unlock()
	w.h.Publish(m)
	return w.seq
}

func agentKey(t, a string) hub.Key {
	return hub.Key{Tenant: callbridge.TenantID(t), Agent: callbridge.AgentID(a)}
}

func TestAudiencesGetTheirOwnEventsAndShareTheBytes(t *testing.T) {
	w := newWorld(t, hub.Config{})
	alice, alice2, bob, acme, globex := newSub(), newSub(), newSub(), newSub(), newSub()
	w.h.Subscribe(agentKey("acme", "alice"), 0, alice)
	w.h.Subscribe(agentKey("acme", "alice"), 0, alice2) // a second tab
	w.h.Subscribe(agentKey("acme", "bob"), 0, bob)
	w.h.Subscribe(hub.Key{Tenant: "acme"}, 0, acme)
	w.h.Subscribe(hub.Key{Tenant: "globex"}, 0, globex)

	w.publish("acme", "alice")          // 1
	w.publish("acme", "bob", "alice")   // 2
	w.publish("globex", "alice")        // 3: another tenant's alice
	w.publish("acme")                   // 4: nobody's desktop
	w.publish("acme", "bob", "bob")     // 5: named twice, sent once
	last := w.publish("globex", "gina") // 6

	globex.waitSeq(t, last)
	for name, c := range map[string]struct {
		s    *sub
		want []uint64
	}{
		"alice": {alice, []uint64{1, 2}}, "alice's second tab": {alice2, []uint64{1, 2}},
		"bob": {bob, []uint64{2, 5}}, "acme's supervisors": {acme, []uint64{1, 2, 4, 5}},
		"globex's supervisors": {globex, []uint64{3, 6}},
	} {
		if got, _ := c.s.got(); !slices.Equal(got, c.want) {
			t.Errorf("%s got %v, want %v", name, got, c.want)
		}
	}
	// Encoded once: every subscriber holds the very same bytes.
	alice.mu.Lock()
	bob.mu.Lock()
	acme.mu.Lock()
	if &alice.frames[1][0] != &bob.frames[0][0] || &alice.frames[1][0] != &acme.frames[1][0] {
		t.Error("subscribers got copies of event 2, not the shared frame")
	}
	acme.mu.Unlock()
	bob.mu.Unlock()
	alice.mu.Unlock()
}

func TestResumeInsideTheWindowNeedsNoRead(t *testing.T) {
	w := newWorld(t, hub.Config{AgentWindow: 8})
	for i := 0; i < 6; i++ {
		w.publish("acme", "alice") // 1-6
	}
	s := newSub()
	w.h.Subscribe(agentKey("acme", "alice"), 3, s)
	if got, _ := s.got(); !slices.Equal(got, []uint64{4, 5, 6}) {
		t.Fatalf("resumed after 3 with %v, want [4 5 6] at once", got)
	}
	w.publish("acme", "alice") // 7, live
	if got := s.waitSeq(t, 7); !slices.Equal(got, []uint64{4, 5, 6, 7}) {
		t.Fatalf("got %v", got)
	}
	if n := w.log.readCount(); n != 0 {
		t.Errorf("the log was read %d times for a position inside the window", n)
	}
}

func TestResumeOlderThanTheWindowReadsTheLogOnceForAStormAndKeepsOrder(t *testing.T) {
	w := newWorld(t, hub.Config{AgentWindow: 4})
	const agents = 500
	for round := 0; round < 10; round++ {
		for a := 0; a < agents; a++ {
			w.publish("acme", fmt.Sprintf("a%d", a))
		}
	}
	// Every agent missed everything after its first event: its window (4) holds only rounds
	// 7-10, so rounds 2-6 come from the log. The reader is held until every subscriber is
	// waiting, as in a reconnect storm.
	gate := make(chan struct{})
	w.log.mu.Lock()
	w.log.gate = gate
	w.log.mu.Unlock()
	subs := make([]*sub, agents)
	for a := range subs {
		subs[a] = newSub()
		w.h.Subscribe(agentKey("acme", fmt.Sprintf("a%d", a)), uint64(a+1), subs[a])
	}
	// Live events while the storm waits are held behind the log's.
	live := w.publish("acme", "a0", "a1")
	close(gate)
	for a, s := range subs {
		want := []uint64{}
		for round := 1; round < 10; round++ {
			want = append(want, uint64(round*agents+a+1))
		}
		if a < 2 {
			want = append(want, live)
		}
		last := want[len(want)-1]
		if got := s.waitSeq(t, last); !slices.Equal(got, want) {
			t.Fatalf("agent a%d got %v, want %v", a, got, want)
		}
	}
	// One read for the first subscriber, one for every other one that queued meanwhile.
	if n := w.log.readCount(); n > 2 {
		t.Errorf("%d reads of the log for %d resuming subscribers, want at most 2", n, agents)
	}
}

func TestPositionsThatCannotBeServedResync(t *testing.T) {
	t.Run("ahead of the log", func(t *testing.T) {
		w := newWorld(t, hub.Config{})
		w.publish("acme", "alice")
		s := newSub()
		w.h.Subscribe(agentKey("acme", "alice"), 40, s)
		if r := s.waitResync(t); r != hub.ReasonAhead {
			t.Fatalf("resync %q, want %q", r, hub.ReasonAhead)
		}
		w.publish("acme", "alice")
		if got, rs := s.got(); len(got) != 0 || len(rs) != 1 {
			t.Fatalf("after a resync the subscription goes on: %v %v", got, rs)
		}
	})
	t.Run("aged out of the log", func(t *testing.T) {
		w := newWorld(t, hub.Config{AgentWindow: 2})
		for i := 0; i < 10; i++ {
			w.publish("acme", "alice")
		}
		w.log.mu.Lock()
		w.log.first = 5 // 1-4 deleted
		w.log.mu.Unlock()
		s := newSub()
		w.h.Subscribe(agentKey("acme", "alice"), 2, s)
		if r := s.waitResync(t); r != hub.ReasonAgedOut {
			t.Fatalf("resync %q, want %q", r, hub.ReasonAgedOut)
		}
		if got, _ := s.got(); len(got) != 0 {
			t.Fatalf("got %v along with the resync", got)
		}
	})
	t.Run("log unavailable", func(t *testing.T) {
		w := newWorld(t, hub.Config{AgentWindow: 2})
		for i := 0; i < 10; i++ {
			w.publish("acme", "alice")
		}
		w.log.mu.Lock()
		w.log.err = errors.New("stream offline")
		w.log.mu.Unlock()
		s := newSub()
		w.h.Subscribe(agentKey("acme", "alice"), 2, s)
		if r := s.waitResync(t); r != hub.ReasonUnavailable {
			t.Fatalf("resync %q, want %q", r, hub.ReasonUnavailable)
		}
	})
	t.Run("too many waiting for the reader", func(t *testing.T) {
		w := newWorld(t, hub.Config{AgentWindow: 1, MaxPendingReads: 3})
		for i := 0; i < 10; i++ {
			w.publish("acme", "alice")
		}
		gate := make(chan struct{})
		w.log.mu.Lock()
		w.log.gate = gate
		w.log.mu.Unlock()
		subs := make([]*sub, 5)
		for i := range subs {
			subs[i] = newSub()
			w.h.Subscribe(agentKey("acme", "alice"), 1, subs[i])
		}
		if r := subs[4].waitResync(t); r != hub.ReasonOverload {
			t.Fatalf("the fifth waiting subscriber: resync %q, want %q", r, hub.ReasonOverload)
		}
		close(gate)
		if got := subs[0].waitSeq(t, 10); len(got) != 9 {
			t.Fatalf("the first waiting subscriber got %v", got)
		}
	})
	t.Run("too much held while catching up", func(t *testing.T) {
		w := newWorld(t, hub.Config{AgentWindow: 1, HoldBytes: 200})
		for i := 0; i < 10; i++ {
			w.publish("acme", "alice")
		}
		gate := make(chan struct{})
		w.log.mu.Lock()
		w.log.gate = gate
		w.log.mu.Unlock()
		s := newSub()
		w.h.Subscribe(agentKey("acme", "alice"), 1, s)
		for i := 0; i < 20; i++ { // ~30 bytes each
			w.publish("acme", "alice")
		}
		if r := s.waitResync(t); r != hub.ReasonOverload {
			t.Fatalf("resync %q, want %q", r, hub.ReasonOverload)
		}
		close(gate)
	})
}

func TestCloseEndsDelivery(t *testing.T) {
	w := newWorld(t, hub.Config{})
	s, other := newSub(), newSub()
	sb := w.h.Subscribe(agentKey("acme", "alice"), 0, s)
	w.h.Subscribe(agentKey("acme", "alice"), 0, other)
	w.publish("acme", "alice")
	sb.Close()
	sb.Close()
	last := w.publish("acme", "alice")
	other.waitSeq(t, last) // barrier: the second event has been fanned out
	if got, _ := s.got(); !slices.Equal(got, []uint64{1}) {
		t.Fatalf("after Close got %v, want [1]", got)
	}
	if st := w.h.Stats(); st.Subscriptions != 1 {
		t.Errorf("Stats = %+v, want 1 subscription", st)
	}
}

// TestConcurrentSubscribersSeeEveryEventOnceInOrder runs subscribers that come and go and
// resume from random positions while a publisher runs, and checks each subscription's
// sequence against the log: exactly the audience's events after its position, in order.
func TestConcurrentSubscribersSeeEveryEventOnceInOrder(t *testing.T) {
	w := newWorld(t, hub.Config{AgentWindow: 8, TenantWindow: 32})
	agents := []string{"a", "b", "c", "d"}
	var pubMu sync.Mutex
	publish := func(r *rand.Rand) {
		pubMu.Lock()
		defer pubMu.Unlock()
		var as []string
		for _, a := range agents {
			if r.IntN(3) == 0 {
				as = append(as, a)
			}
		}
		w.publish("acme", as...)
	}
	w.publish("acme", agents...) // 1: a position every subscriber can take
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		r := rand.New(rand.NewPCG(1, 2))
		for i := 0; i < 3000; i++ {
			publish(r)
		}
		close(done)
	})
	type check struct {
		key   hub.Key
		after uint64
		s     *sub
		b     *hub.Subscription
	}
	var mu sync.Mutex
	var checks []check
	for g := 0; g < 4; g++ {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(g), 7))
			for n := 0; n < 60; n++ {
				select {
				case <-done:
					return
				default:
				}
				k := agentKey("acme", agents[r.IntN(len(agents))])
				if r.IntN(5) == 0 {
					k = hub.Key{Tenant: "acme"}
				}
				after := w.h.LastSeq()
				after -= uint64(r.IntN(int(min(after, 100))))
				s := newSub()
				b := w.h.Subscribe(k, after, s)
				mu.Lock()
				checks = append(checks, check{k, after, s, b})
				mu.Unlock()
				runtimeYield(r)
			}
		})
	}
	wg.Wait()
	last := w.seq
	w.log.mu.Lock()
	msgs := slices.Clone(w.log.msgs)
	w.log.mu.Unlock()
	for _, c := range checks {
		var want []uint64
		for _, m := range msgs {
			if m.Seq > c.after && (c.key.Agent == "" || slices.Contains(m.Agents, c.key.Agent)) {
				want = append(want, m.Seq)
			}
		}
		if len(want) > 0 {
			c.s.waitSeq(t, want[len(want)-1])
		}
		got, rs := c.s.got()
		if len(rs) > 0 {
			t.Fatalf("%v after %d: resync %v", c.key, c.after, rs)
		}
		if !slices.Equal(got, want) {
			t.Fatalf("%v after %d (last %d): got %v, want %v", c.key, c.after, last, got, want)
		}
		c.b.Close()
	}
	if len(checks) < 10 {
		t.Fatalf("only %d subscriptions ran", len(checks))
	}
}

func runtimeYield(r *rand.Rand) {
	if r.IntN(4) == 0 {
		time.Sleep(time.Duration(r.IntN(200)) * time.Microsecond) // vary interleavings; nothing waits on it
	}
}

// TestSubscribingAfterAnAnnouncedSequence: a snapshot put at a sequence that is announced and
// not yet published may be subscribed after; the announced message is then not sent again,
// and what follows is.
func TestSubscribingAfterAnAnnouncedSequence(t *testing.T) {
	w := newWorld(t, hub.Config{})
	w.publish("acme", "alice") // 1
	w.h.Announce(2)
	s := newSub()
	w.h.Subscribe(agentKey("acme", "alice"), 2, s) // a snapshot reflecting 2
	w.publish("acme", "alice")                     // 2, published after the subscription
	last := w.publish("acme", "alice")             // 3
	if got := s.waitSeq(t, last); !slices.Equal(got, []uint64{3}) {
		t.Fatalf("got %v, want [3]", got)
	}
	if _, rs := s.got(); len(rs) != 0 {
		t.Fatalf("resync %v for a position that was only announced", rs)
	}
	// Beyond what is announced it is another log's position.
	s2 := newSub()
	w.h.Subscribe(agentKey("acme", "alice"), 9, s2)
	if r := s2.waitResync(t); r != hub.ReasonAhead {
		t.Fatalf("resync %q, want ahead", r)
	}
}
