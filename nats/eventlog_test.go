package nats_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/callbridge/callbridge"
	cbnats "github.com/callbridge/callbridge/nats"
)

func TestAppendStoresEachEventOnceWithItsAudience(t *testing.T) {
	_, nc, l := newLog(t)
	ev := callEv("acme", "01JCALL1", "c1", "alice", "bob", "alice")
	ev.Seq = 99 // ignored: the log assigns sequences
	seq := mustAppend(t, l, ev)
	aseq := mustAppend(t, l, agentEv("acme", "alice", "a1"))

	// Read the stream raw, as any other NATS client would.
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	cons, err := js.OrderedConsumer(context.Background(), cbnats.DefaultStream, jetstream.OrderedConsumerConfig{
		DeliverPolicy: jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:   2, // after the marker OpenEventLog writes into a new stream
	})
	if err != nil {
		t.Fatal(err)
	}
	batch, err := cons.FetchNoWait(10)
	if err != nil {
		t.Fatal(err)
	}
	type stored struct {
		subject  string
		seq      uint64
		data     string
		msgID    string
		audience string
	}
	var got []stored
	for m := range batch.Messages() {
		meta, err := m.Metadata()
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, stored{m.Subject(), meta.Sequence.Stream, string(m.Data()), m.Headers().Get(jetstream.MsgIDHeader),
			m.Headers().Get(cbnats.AudienceHeader)})
	}
	if len(got) != 2 {
		t.Fatalf("stored %d messages, want 2 (each event once): %+v", len(got), got)
	}
	if got[0].subject != "cb.acme.call.01JCALL1" || got[1].subject != "cb.acme.agent.alice.state" {
		t.Errorf("subjects %q, %q", got[0].subject, got[1].subject)
	}
	if got[0].audience != "alice bob" { // the second "alice" is not repeated
		t.Errorf("%s = %q, want \"alice bob\"", cbnats.AudienceHeader, got[0].audience)
	}
	if got[1].audience != "" {
		t.Errorf("an agent event carries %s %q; its agent is in the subject", cbnats.AudienceHeader, got[1].audience)
	}
	for i, s := range got {
		if s.msgID == "" {
			t.Errorf("message %d has no %s header", i, jetstream.MsgIDHeader)
		}
	}
	if seq != got[0].seq || aseq != got[1].seq {
		t.Errorf("Append returned %d and %d, want %d and %d", seq, aseq, got[0].seq, got[1].seq)
	}
	var payload map[string]json.RawMessage
	if err := json.Unmarshal([]byte(got[0].data), &payload); err != nil {
		t.Fatal(err)
	}
	if _, ok := payload["seq"]; ok || string(payload["type"]) != `"call.delivered"` || string(payload["tenant"]) != `"acme"` {
		t.Errorf("payload %s, want no seq (the stream assigns it), type call.delivered, tenant acme", got[0].data)
	}
	if !strings.HasPrefix(got[0].data, `{"type":`) {
		t.Errorf("payload %s does not start with the type", got[0].data)
	}
	if strings.Contains(got[0].data, "Audience") || strings.Contains(got[0].data, "audience") {
		t.Errorf("routing fields leaked into the payload: %s", got[0].data)
	}
	last, err := l.LastSeq(context.Background())
	if err != nil || last != aseq {
		t.Errorf("LastSeq = %d, %v; want %d", last, err, aseq)
	}
}

func TestOpenEventLogMarksANewStreamOnce(t *testing.T) {
	s, nc, l := newLog(t)
	ctx := context.Background()
	if last, err := l.LastSeq(ctx); err != nil || last != 1 {
		t.Fatalf("LastSeq of a new log = %d, %v; want 1 (the marker)", last, err)
	}
	js, _ := jetstream.New(nc)
	stream, err := js.Stream(ctx, cbnats.DefaultStream)
	if err != nil {
		t.Fatal(err)
	}
	m, err := stream.GetMsg(ctx, 1)
	if err != nil || m.Subject != cbnats.OpenedMarkerSubject {
		t.Fatalf("message 1 = %+v, %v; want the marker on %s", m, err, cbnats.OpenedMarkerSubject)
	}
	// Opening again, from another connection, writes no second marker.
	openLog(t, connect(t, s), cbnats.LogConfig{})
	if last, _ := l.LastSeq(ctx); last != 1 {
		t.Errorf("LastSeq after reopening = %d, want 1", last)
	}
	// Nobody's subscription sees it.
	c := newCollector()
	subscribe(t, l, callbridge.Filter{Tenant: "acme"}, cbnats.SubscribeOptions{FromStart: true}, c)
	mustAppend(t, l, agentEv("acme", "alice", "first"))
	if got := labels(t, c.waitFor(t, "first")); !slices.Equal(got, []string{"first"}) {
		t.Errorf("got %v, want [first]", got)
	}
}

func TestAppendRefusesInvalidTokensAndPublishesNothing(t *testing.T) {
	_, _, l := newLog(t)
	ctx := context.Background()
	before := mustAppend(t, l, agentEv("acme", "alice", "first"))

	long := strings.Repeat("a", 65)
	tests := []struct {
		name string
		ev   callbridge.Event
	}{
		{"empty tenant", callEv("", "C1", "x", "alice")},
		{"tenant with dot", callEv("ac.me", "C1", "x", "alice")},
		{"tenant wildcard *", agentEv("*", "alice", "x")},
		{"tenant wildcard >", agentEv(">", "alice", "x")},
		{"tenant with space", agentEv("ac me", "alice", "x")},
		{"tenant too long", agentEv(long, "alice", "x")},
		{"empty call id", callEv("acme", "", "x", "alice")},
		{"call id with dot", callEv("acme", "C1.x", "x", "alice")},
		{"call id wildcard", callEv("acme", ">", "x", "alice")},
		{"second audience agent invalid", callEv("acme", "C1", "x", "alice", "bo.b")},
		{"empty audience agent", callEv("acme", "C1", "x", "")},
		{"agent event without agent", agentEv("acme", "", "x")},
		{"agent with wildcard", agentEv("acme", "ali*", "x")},
		{"agent with newline", agentEv("acme", "ali\nce", "x")},
		{"unknown event type", func() callbridge.Event {
			ev := agentEv("acme", "alice", "x")
			ev.Type = "queue.changed"
			return ev
		}()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := l.Append(ctx, tt.ev)
			if code := callbridge.ErrorCode(err); code != callbridge.EInvalid {
				t.Fatalf("Append error %v (code %q), want code %q", err, code, callbridge.EInvalid)
			}
			last, err := l.LastSeq(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if last != before {
				t.Errorf("LastSeq moved from %d to %d: something was published", before, last)
			}
		})
	}

	for _, f := range []callbridge.Filter{{}, {Tenant: "ac.me"}, {Tenant: "acme", Agent: ">"}, {Tenant: "acme", Agent: "a b"}} {
		_, err := l.Subscribe(ctx, f, 0, func(callbridge.WireEvent) {})
		if code := callbridge.ErrorCode(err); code != callbridge.EInvalid {
			t.Errorf("Subscribe(%+v) error %v, want code %q", f, err, callbridge.EInvalid)
		}
	}
}

// script is a mixed sequence of events for two tenants, each with agents alice and bob (the
// same names in both tenants, to prove the tenant matters).
func script() []callbridge.Event {
	return []callbridge.Event{
		agentEv("acme", "alice", "a-alice-1"),
		agentEv("acme", "bob", "a-bob-1"),
		agentEv("globex", "alice", "g-alice-1"),
		callEv("acme", "C1", "a-c1-delivered", "alice"),
		callEv("globex", "G1", "g-g1-delivered", "alice", "bob"),
		callEv("acme", "C2", "a-c2-delivered", "bob"),
		callEv("acme", "C1", "a-c1-transferred", "alice", "bob"),
		agentEv("acme", "alice", "a-alice-2"),
		callEv("acme", "C3", "a-c3-queued"), // nobody's call yet
		agentEv("globex", "bob", "g-bob-1"),
		// Sentinels: the last event each subscriber below will see.
		agentEv("acme", "alice", "end-acme-alice"),
		agentEv("acme", "bob", "end-acme-bob"),
		agentEv("globex", "alice", "end-globex-alice"),
		agentEv("globex", "bob", "end-globex"),
	}
}

func TestSubscribersSeeExactlyTheirOwnEventsInOrder(t *testing.T) {
	for _, live := range []bool{true, false} {
		name := map[bool]string{true: "live", false: "replayed"}[live]
		t.Run(name, func(t *testing.T) {
			_, _, l := newLog(t)
			ctx := context.Background()
			base, err := l.LastSeq(ctx)
			if err != nil {
				t.Fatal(err)
			}
			cases := []struct {
				filter   callbridge.Filter
				sentinel string
				want     []string
			}{
				{callbridge.Filter{Tenant: "acme", Agent: "alice"}, "end-acme-alice",
					[]string{"a-alice-1", "a-c1-delivered", "a-c1-transferred", "a-alice-2", "end-acme-alice"}},
				{callbridge.Filter{Tenant: "acme", Agent: "bob"}, "end-acme-bob",
					[]string{"a-bob-1", "a-c2-delivered", "a-c1-transferred", "end-acme-bob"}},
				{callbridge.Filter{Tenant: "globex", Agent: "alice"}, "end-globex-alice",
					[]string{"g-alice-1", "g-g1-delivered", "end-globex-alice"}},
				{callbridge.Filter{Tenant: "acme"}, "end-acme-bob",
					[]string{"a-alice-1", "a-bob-1", "a-c1-delivered", "a-c2-delivered", "a-c1-transferred",
						"a-alice-2", "a-c3-queued", "end-acme-alice", "end-acme-bob"}},
				{callbridge.Filter{Tenant: "globex"}, "end-globex",
					[]string{"g-alice-1", "g-g1-delivered", "g-bob-1", "end-globex-alice", "end-globex"}},
			}
			collectors := make([]*collector, len(cases))
			subscribeAll := func() {
				for i, c := range cases {
					collectors[i] = newCollector()
					// Live: subscribe before appending, from now on. Replayed: after appending,
					// resuming after the sequence the log had before the script.
					subscribe(t, l, c.filter, cbnats.SubscribeOptions{AfterSeq: base}, collectors[i])
				}
			}
			if live {
				subscribeAll()
			}
			seqOf := map[string]uint64{}
			for _, ev := range script() {
				seqOf[labelOf(ev)] = mustAppend(t, l, ev)
			}
			if !live {
				subscribeAll()
			}
			for i, c := range cases {
				got := collectors[i].waitFor(t, c.sentinel)
				who := fmt.Sprintf("%s/%s", c.filter.Tenant, c.filter.Agent)
				if l := labels(t, got); !slices.Equal(l, c.want) {
					t.Errorf("%s got %v\nwant %v", who, l, c.want)
				}
				checkSeqs(t, who, got)
				for _, w := range got {
					if w.Tenant != c.filter.Tenant {
						t.Errorf("%s got an event of tenant %s", who, w.Tenant)
					}
					if !w.Type.IsCall() && w.Seq != seqOf[label(t, w)] {
						t.Errorf("%s: agent event %s has seq %d, Append returned %d", who, label(t, w), w.Seq, seqOf[label(t, w)])
					}
				}
				if collectors[i].concurrent.Load() {
					t.Errorf("%s: fn ran concurrently", who)
				}
			}
		})
	}
}

func labelOf(ev callbridge.Event) string {
	switch d := ev.Data.(type) {
	case *callbridge.CallEvent:
		return string(d.Device)
	case *callbridge.Agent:
		return d.Reason
	}
	return ""
}

func TestSubscribeResumesAfterSeqWithoutLossOrDuplicate(t *testing.T) {
	_, _, l := newLog(t)
	alice := callbridge.Filter{Tenant: "acme", Agent: "alice"}
	seqs := map[string]uint64{}
	for i := 1; i <= 10; i++ {
		seqs[fmt.Sprint("e", i)] = mustAppend(t, l, agentEv("acme", "alice", fmt.Sprint("e", i)))
		mustAppend(t, l, agentEv("acme", "bob", fmt.Sprint("other", i))) // interleaved, filtered out
	}

	t.Run("after a sequence", func(t *testing.T) {
		c := newCollector()
		sub := subscribe(t, l, alice, cbnats.SubscribeOptions{AfterSeq: seqs["e4"]}, c)
		if _, gap := sub.Gap(); gap {
			t.Errorf("unexpected gap")
		}
		got := c.waitFor(t, "e10")
		want := []string{"e5", "e6", "e7", "e8", "e9", "e10"}
		if l := labels(t, got); !slices.Equal(l, want) {
			t.Fatalf("replayed %v, want %v", l, want)
		}
		// Then live ones, with nothing repeated.
		mustAppend(t, l, agentEv("acme", "alice", "live1"))
		mustAppend(t, l, agentEv("acme", "alice", "live2"))
		got = c.waitFor(t, "live2")
		want = append(want, "live1", "live2")
		if l := labels(t, got); !slices.Equal(l, want) {
			t.Fatalf("got %v, want %v", l, want)
		}
		checkSeqs(t, "alice", got)
		if got[0].Seq != seqs["e5"] {
			t.Errorf("first seq %d, want %d", got[0].Seq, seqs["e5"])
		}
	})

	t.Run("after the last sequence", func(t *testing.T) {
		last, err := l.LastSeq(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		c := newCollector()
		subscribe(t, l, alice, cbnats.SubscribeOptions{AfterSeq: last}, c)
		mustAppend(t, l, agentEv("acme", "alice", "next"))
		if got := labels(t, c.waitFor(t, "next")); !slices.Equal(got, []string{"next"}) {
			t.Errorf("got %v, want [next]", got)
		}
	})

	t.Run("zero means from now on", func(t *testing.T) {
		c := newCollector()
		sub, err := l.Subscribe(context.Background(), alice, 0, c.fn)
		if err != nil {
			t.Fatal(err)
		}
		defer sub.Stop()
		mustAppend(t, l, agentEv("acme", "alice", "new"))
		if got := labels(t, c.waitFor(t, "new")); !slices.Equal(got, []string{"new"}) {
			t.Errorf("got %v, want only [new]", got)
		}
	})

	t.Run("from start", func(t *testing.T) {
		c := newCollector()
		subscribe(t, l, alice, cbnats.SubscribeOptions{FromStart: true}, c)
		got := labels(t, c.waitFor(t, "e10"))
		if want := []string{"e1", "e2", "e3", "e4", "e5", "e6", "e7", "e8", "e9", "e10"}; !slices.Equal(got, want) {
			t.Errorf("got %v, want %v", got, want)
		}
	})
}

func TestResumeAcrossServerRestartWithSameDataDir(t *testing.T) {
	dir := t.TempDir()
	alice := callbridge.Filter{Tenant: "acme", Agent: "alice"}

	s1 := startServer(t, dir)
	nc1 := connect(t, s1)
	l1 := openLog(t, nc1, cbnats.LogConfig{})
	seqs := map[string]uint64{}
	for _, e := range []string{"e1", "e2", "e3", "e4", "e5"} {
		seqs[e] = mustAppend(t, l1, callEv("acme", "C1", e, "alice"))
	}
	live := newCollector()
	liveSub := subscribe(t, l1, alice, cbnats.SubscribeOptions{AfterSeq: seqs["e2"]}, live)
	live.waitFor(t, "e5")
	s1.Shutdown()

	// A subscription on the stopped server ends and says why.
	select {
	case <-liveSub.Done():
		if !errors.Is(liveSub.Err(), natsgo.ErrConnectionClosed) {
			t.Errorf("subscription ended with %v, want %v", liveSub.Err(), natsgo.ErrConnectionClosed)
		}
	case <-time.After(waitTimeout):
		t.Fatal("subscription did not end when its server shut down")
	}

	s2 := startServer(t, dir)
	nc2 := connect(t, s2)
	l2 := openLog(t, nc2, cbnats.LogConfig{})
	last, err := l2.LastSeq(context.Background())
	if err != nil || last != seqs["e5"] {
		t.Fatalf("LastSeq after restart = %d, %v; want %d", last, err, seqs["e5"])
	}
	c := newCollector()
	subscribe(t, l2, alice, cbnats.SubscribeOptions{AfterSeq: seqs["e3"]}, c)
	e6 := mustAppend(t, l2, callEv("acme", "C1", "e6", "alice"))
	if e6 <= seqs["e5"] {
		t.Errorf("sequence after restart %d, not after %d", e6, seqs["e5"])
	}
	got := c.waitFor(t, "e6")
	if l := labels(t, got); !slices.Equal(l, []string{"e4", "e5", "e6"}) {
		t.Errorf("resumed %v, want [e4 e5 e6]", l)
	}
	if got[0].Seq != seqs["e4"] || got[2].Seq != e6 {
		t.Errorf("seqs %d..%d, want %d..%d", got[0].Seq, got[2].Seq, seqs["e4"], e6)
	}
}

func TestSubscribeReportsGapWhenHistoryIsGone(t *testing.T) {
	_, nc, l := newLog(t)
	ctx := context.Background()
	alice := callbridge.Filter{Tenant: "acme", Agent: "alice"}
	seqs := map[string]uint64{}
	for _, e := range []string{"e1", "e2", "e3", "e4", "e5", "e6"} {
		seqs[e] = mustAppend(t, l, agentEv("acme", "alice", e))
	}
	// Remove e1..e3 as MaxAge would (TestMaxAgeDeletesOldEvents shows the real thing).
	js, _ := jetstream.New(nc)
	stream, err := js.Stream(ctx, cbnats.DefaultStream)
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Purge(ctx, jetstream.WithPurgeSequence(seqs["e4"])); err != nil {
		t.Fatal(err)
	}

	t.Run("aged out", func(t *testing.T) {
		c := newCollector()
		sub := subscribe(t, l, alice, cbnats.SubscribeOptions{AfterSeq: seqs["e1"]}, c)
		got := labels(t, c.waitFor(t, "e6"))
		if want := []string{"e4", "e5", "e6"}; !slices.Equal(got, want) {
			t.Errorf("got %v, want %v", got, want)
		}
		want := cbnats.Gap{Reason: cbnats.GapAgedOut, AfterSeq: seqs["e1"], StartSeq: seqs["e4"]}
		if g, ok := sub.Gap(); !ok || g != want {
			t.Errorf("Gap() = %+v, %v; want %+v", g, ok, want)
		}
		if len(c.gaps) != 1 || c.gaps[0] != want {
			t.Errorf("OnGap got %+v, want [%+v]", c.gaps, want)
		}
	})

	t.Run("resuming at the oldest retained event is no gap", func(t *testing.T) {
		c := newCollector()
		sub := subscribe(t, l, alice, cbnats.SubscribeOptions{AfterSeq: seqs["e3"]}, c)
		c.waitFor(t, "e6")
		if g, ok := sub.Gap(); ok {
			t.Errorf("unexpected gap %+v", g)
		}
	})

	t.Run("ahead of the log", func(t *testing.T) {
		c := newCollector()
		sub := subscribe(t, l, alice, cbnats.SubscribeOptions{AfterSeq: seqs["e6"] + 100}, c)
		e7 := mustAppend(t, l, agentEv("acme", "alice", "e7"))
		got := c.waitFor(t, "e7")
		if l := labels(t, got); !slices.Equal(l, []string{"e7"}) {
			t.Errorf("got %v, want [e7]", l)
		}
		want := cbnats.Gap{Reason: cbnats.GapAhead, AfterSeq: seqs["e6"] + 100, StartSeq: seqs["e6"] + 1}
		if g, ok := sub.Gap(); !ok || g != want {
			t.Errorf("Gap() = %+v, %v; want %+v", g, ok, want)
		}
		if got[0].Seq != e7 {
			t.Errorf("seq %d, want %d", got[0].Seq, e7)
		}
	})
}

func TestMaxAgeDeletesOldEvents(t *testing.T) {
	s := startServer(t, t.TempDir())
	nc := connect(t, s)
	l := openLog(t, nc, cbnats.LogConfig{Stream: "AGED", MaxAge: time.Second})
	ctx := context.Background()
	old := mustAppend(t, l, agentEv("acme", "alice", "old"))

	js, _ := jetstream.New(nc)
	stream, err := js.Stream(ctx, "AGED")
	if err != nil {
		t.Fatal(err)
	}
	if got := stream.CachedInfo().Config.MaxAge; got != time.Second {
		t.Errorf("stream MaxAge %s, want 1s", got)
	}
	deadline := time.Now().Add(waitTimeout)
	for {
		info, err := stream.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if info.State.FirstSeq > old {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("event older than MaxAge still stored: %+v", info.State)
		}
		time.Sleep(100 * time.Millisecond)
	}
	newer := mustAppend(t, l, agentEv("acme", "alice", "new"))
	c := newCollector()
	sub := subscribe(t, l, callbridge.Filter{Tenant: "acme"}, cbnats.SubscribeOptions{AfterSeq: old - 1}, c)
	if got := labels(t, c.waitFor(t, "new")); !slices.Equal(got, []string{"new"}) {
		t.Errorf("got %v, want [new]", got)
	}
	if g, ok := sub.Gap(); !ok || g.Reason != cbnats.GapAgedOut || g.StartSeq != newer {
		t.Errorf("Gap() = %+v, %v; want aged_out starting at %d", g, ok, newer)
	}
	if last, _ := l.LastSeq(ctx); last != newer {
		t.Errorf("LastSeq %d, want %d", last, newer)
	}
}

func TestConcurrentAppendKeepsPerSubjectOrder(t *testing.T) {
	_, _, l := newLog(t)
	const writers, perWriter = 6, 40
	agents := []string{"alice", "bob", "carol"}

	tenant := newCollector()
	subscribe(t, l, callbridge.Filter{Tenant: "acme"}, cbnats.SubscribeOptions{}, tenant)
	perAgent := map[string]*collector{}
	for _, a := range agents {
		perAgent[a] = newCollector()
		subscribe(t, l, callbridge.Filter{Tenant: "acme", Agent: callbridge.AgentID(a)}, cbnats.SubscribeOptions{}, perAgent[a])
	}

	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		wg.Go(func() {
			agent := agents[w%len(agents)]
			for i := range perWriter {
				var ev callbridge.Event
				if i%4 == 3 {
					ev = agentEv("acme", agent, fmt.Sprintf("w%d-%03d", w, i))
				} else {
					ev = callEv("acme", fmt.Sprintf("CALL%d", w), fmt.Sprintf("w%d-%03d", w, i), agent)
				}
				if _, err := l.Append(context.Background(), ev); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	mustAppend(t, l, agentEv("acme", "alice", "end"))
	mustAppend(t, l, agentEv("acme", "bob", "end"))
	mustAppend(t, l, agentEv("acme", "carol", "end"))

	check := func(who string, c *collector, want int) {
		// "end" was appended after every writer finished, so everything precedes it.
		got := c.waitFor(t, "end")
		checkSeqs(t, who, got)
		next := map[string]int{} // writer → next index expected
		n := 0
		for _, w := range got {
			lbl := label(t, w)
			if lbl == "end" {
				continue
			}
			n++
			writer, idx, _ := strings.Cut(lbl, "-")
			i, err := strconv.Atoi(idx)
			if err != nil {
				t.Fatalf("label %q: %v", lbl, err)
			}
			if i < next[writer] {
				t.Errorf("%s: %s after index %d: out of order or repeated", who, lbl, next[writer]-1)
			}
			next[writer] = i + 1
		}
		if n != want {
			t.Errorf("%s: got %d events, want %d", who, n, want)
		}
		if c.concurrent.Load() {
			t.Errorf("%s: fn ran concurrently", who)
		}
	}
	check("tenant", tenant, writers*perWriter)
	for _, a := range agents {
		check(a, perAgent[a], writers/len(agents)*perWriter)
	}
}

func TestStopWaitsForFnAndEndsDelivery(t *testing.T) {
	_, nc, l := newLog(t)
	alice := callbridge.Filter{Tenant: "acme", Agent: "alice"}

	entered := make(chan struct{})
	release := make(chan struct{})
	var fnDone atomic.Bool
	var calls int
	var got []string
	var mu sync.Mutex
	sub, err := l.Subscribe(context.Background(), alice, 0, func(w callbridge.WireEvent) {
		mu.Lock()
		calls++
		n := calls
		got = append(got, label(t, w))
		mu.Unlock()
		if n == 1 {
			close(entered)
			<-release
			fnDone.Store(true)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	mustAppend(t, l, agentEv("acme", "alice", "e1"))
	mustAppend(t, l, agentEv("acme", "alice", "e2"))
	select {
	case <-entered:
	case <-time.After(waitTimeout):
		t.Fatal("fn not called")
	}
	// Stop waits for the call of fn in progress: when Stop returns, fn has returned. (Had
	// Stop not waited, it would return while fn is still blocked, and fnDone would be false.)
	stopped := make(chan bool)
	go func() {
		sub.Stop()
		stopped <- fnDone.Load()
	}()
	close(release)
	select {
	case done := <-stopped:
		if !done {
			t.Fatal("Stop returned while fn was still running")
		}
	case <-time.After(waitTimeout):
		t.Fatal("Stop did not return")
	}
	mustAppend(t, l, agentEv("acme", "alice", "e3"))
	sub.Stop() // again: no-op

	// The server-side consumer is gone too, and fn was never called after Stop: e3, appended
	// after Stop returned, never came (e2 may have, if Stop started after fn returned).
	waitDone(t, sub.(*cbnats.Subscription))
	mu.Lock()
	if slices.Contains(got, "e3") || calls > 2 {
		t.Errorf("fn got %v after Stop", got)
	}
	mu.Unlock()
	js, _ := jetstream.New(nc)
	stream, err := js.Stream(context.Background(), cbnats.DefaultStream)
	if err != nil {
		t.Fatal(err)
	}
	if n := stream.CachedInfo().State.Consumers; n != 0 {
		t.Errorf("%d consumers left on the stream after Stop", n)
	}
}

func TestSubscriptionEndsWithContextCloseAndConnection(t *testing.T) {
	s, nc, l := newLog(t)
	acme := callbridge.Filter{Tenant: "acme"}

	t.Run("context", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		sub, err := l.SubscribeWith(ctx, acme, cbnats.SubscribeOptions{}, func(callbridge.WireEvent) {})
		if err != nil {
			t.Fatal(err)
		}
		cancel()
		waitDone(t, sub)
		if sub.Err() != nil {
			t.Errorf("Err() = %v after ctx cancel, want nil", sub.Err())
		}
	})

	t.Run("event log close", func(t *testing.T) {
		nc2 := connect(t, s)
		l2 := openLog(t, nc2, cbnats.LogConfig{})
		sub, err := l2.SubscribeWith(context.Background(), acme, cbnats.SubscribeOptions{}, func(callbridge.WireEvent) {})
		if err != nil {
			t.Fatal(err)
		}
		returns(t, "Close", l2.Close)
		waitDone(t, sub)
		if _, err := l2.Subscribe(context.Background(), acme, 0, func(callbridge.WireEvent) {}); err == nil {
			t.Error("Subscribe after Close succeeded")
		}
	})

	t.Run("connection closed", func(t *testing.T) {
		sub, err := l.SubscribeWith(context.Background(), acme, cbnats.SubscribeOptions{}, func(callbridge.WireEvent) {})
		if err != nil {
			t.Fatal(err)
		}
		nc.Close()
		waitDone(t, sub)
		if !errors.Is(sub.Err(), natsgo.ErrConnectionClosed) {
			t.Errorf("Err() = %v, want %v", sub.Err(), natsgo.ErrConnectionClosed)
		}
		returns(t, "Stop after the end", sub.Stop)
	})
}

// returns fails unless f returns within waitTimeout.
func returns(t *testing.T, what string, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() { f(); close(done) }()
	select {
	case <-done:
	case <-time.After(waitTimeout):
		t.Fatalf("%s did not return", what)
	}
}

func waitDone(t *testing.T, sub *cbnats.Subscription) {
	t.Helper()
	select {
	case <-sub.Done():
	case <-time.After(waitTimeout):
		t.Fatal("subscription did not end")
	}
}

func TestStopIsPromptWhileTheServerIsUnreachable(t *testing.T) {
	s, err := cbnats.StartServer(context.Background(), cbnats.ServerConfig{
		DataDir: t.TempDir(), Listen: "127.0.0.1:-1", Logger: testLogger(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	nc, err := cbnats.Connect(s.ClientURL(), t.Name())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	l := openLog(t, nc, cbnats.LogConfig{})
	c := newCollector()
	sub := subscribe(t, l, callbridge.Filter{Tenant: "acme"}, cbnats.SubscribeOptions{}, c)
	mustAppend(t, l, agentEv("acme", "alice", "x"))
	c.waitFor(t, "x")

	s.Shutdown() // the TCP client keeps reconnecting; the connection is not closed
	// Stop does not wait for the server (the client's consumer reset retries for longer than
	// the patience of a test).
	returns(t, "Stop with the server gone", sub.Stop)
	select {
	case <-sub.Done():
	case <-time.After(30 * time.Second):
		t.Fatal("subscription never released")
	}
	if sub.Err() != nil {
		t.Errorf("Err() = %v after Stop, want nil", sub.Err())
	}
}
