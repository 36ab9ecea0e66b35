package nats_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/callbridge/callbridge"
	"github.com/callbridge/callbridge/internal/testenv"
	cbnats "github.com/callbridge/callbridge/nats"
)

// storedLog records what an Appender reports stored, in order.
type storedLog struct {
	mu     sync.Mutex
	labels []string
	seqs   []uint64
	frames [][]byte
	notify chan struct{}
}

func newStoredLog() *storedLog { return &storedLog{notify: make(chan struct{}, 1)} }

func (s *storedLog) fn(lbl string) func(uint64, []byte) {
	return func(seq uint64, frame []byte) {
		s.mu.Lock()
		s.labels = append(s.labels, lbl)
		s.seqs = append(s.seqs, seq)
		s.frames = append(s.frames, frame)
		s.mu.Unlock()
		select {
		case s.notify <- struct{}{}:
		default:
		}
	}
}

func (s *storedLog) waitN(t *testing.T, n int) {
	t.Helper()
	deadline := time.After(60 * time.Second)
	for {
		s.mu.Lock()
		got := len(s.labels)
		s.mu.Unlock()
		if got >= n {
			return
		}
		select {
		case <-s.notify:
		case <-deadline:
			t.Fatalf("%d of %d events stored", got, n)
		}
	}
}

// streamLabels reads the event labels stored in the stream, in stream order.
func streamLabels(t *testing.T, nc *natsgo.Conn) ([]string, []uint64) {
	t.Helper()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	cons, err := js.OrderedConsumer(context.Background(), cbnats.DefaultStream, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{"cb.*.call.>"},
	})
	if err != nil {
		t.Fatal(err)
	}
	var labels []string
	var seqs []uint64
	for {
		batch, err := cons.Fetch(500, jetstream.FetchMaxWait(500*time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for m := range batch.Messages() {
			n++
			meta, _ := m.Metadata()
			var p struct {
				Data struct {
					Device string `json:"device"`
				} `json:"data"`
			}
			if err := json.Unmarshal(m.Data(), &p); err != nil {
				t.Fatal(err)
			}
			labels = append(labels, p.Data.Device)
			seqs = append(seqs, meta.Sequence.Stream)
			if meta.NumPending == 0 {
				return labels, seqs
			}
		}
		if n == 0 {
			return labels, seqs
		}
	}
}

func runAppender(t *testing.T, l *cbnats.EventLog, cfg cbnats.AppenderConfig) *cbnats.Appender {
	t.Helper()
	a, err := l.NewAppender(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = a.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return a
}

func TestAppenderStoresInOrderAndReportsFrames(t *testing.T) {
	_, nc, l := newLog(t)
	a := runAppender(t, l, cbnats.AppenderConfig{Window: 8})
	st := newStoredLog()
	const n = 300
	var want []string
	for i := 0; i < n; i++ {
		lbl := fmt.Sprintf("e%03d", i)
		want = append(want, lbl)
		if err := a.Append(context.Background(), callEv("acme", "C1", lbl, "alice"), st.fn(lbl)); err != nil {
			t.Fatal(err)
		}
	}
	done := make(chan struct{})
	if err := a.Barrier(context.Background(), func() { close(done) }); err != nil {
		t.Fatal(err)
	}
	<-done // the barrier runs after every earlier event is stored
	st.mu.Lock()
	defer st.mu.Unlock()
	if !slices.Equal(st.labels, want) {
		t.Fatalf("stored in the order %v", st.labels)
	}
	for i := 1; i < n; i++ {
		if st.seqs[i] <= st.seqs[i-1] {
			t.Fatalf("seq %d after %d", st.seqs[i], st.seqs[i-1])
		}
	}
	var f struct {
		Seq  uint64 `json:"seq"`
		Type string `json:"type"`
	}
	if err := json.Unmarshal(st.frames[7], &f); err != nil || f.Seq != st.seqs[7] || f.Type != "call.delivered" {
		t.Fatalf("frame %s: %v", st.frames[7], err)
	}
	labels, seqs := streamLabels(t, nc)
	if !slices.Equal(labels, want) || !slices.Equal(seqs, st.seqs) {
		t.Fatalf("the stream holds %v at %v", labels, seqs)
	}
	if held, err := a.Status(); held != 0 || err != nil {
		t.Errorf("Status = %d, %v after everything was stored", held, err)
	}
	// An event the log cannot represent is refused and queues nothing.
	if err := a.Append(context.Background(), callEv("", "C1", "bad", "alice"), nil); callbridge.ErrorCode(err) != callbridge.EInvalid {
		t.Errorf("Append of an event without tenant: %v, want invalid", err)
	}
}

// TestAppenderHoldsEventsWhileTheServerIsDownAndStoresThemInOrderWhenItIsBack stops the NATS
// server under a stream of appends and restarts it on the same store: the appender holds
// what it cannot store (and Append blocks once the window is full: push back), then stores
// every event exactly once, in order.
func TestAppenderHoldsEventsWhileTheServerIsDownAndStoresThemInOrderWhenItIsBack(t *testing.T) {
	dir := t.TempDir()
	port := testenv.FreePort(t)
	listen := fmt.Sprintf("127.0.0.1:%d", port)
	start := func() *cbnats.Server {
		ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
		defer cancel()
		s, err := cbnats.StartServer(ctx, cbnats.ServerConfig{DataDir: dir, Listen: listen, Logger: testLogger(t)})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	s1 := start()
	// No reconnect buffer: while the server is away a publish fails at once, the hard case.
	nc, err := cbnats.Connect(s1.ClientURL(), t.Name(), natsgo.ReconnectWait(50*time.Millisecond), natsgo.ReconnectBufSize(-1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	l := openLog(t, nc, cbnats.LogConfig{})
	const window = 4
	a := runAppender(t, l, cbnats.AppenderConfig{Window: window, Logger: testLogger(t)})
	st := newStoredLog()

	const n = 60
	var want []string
	for i := 0; i < n; i++ {
		want = append(want, fmt.Sprintf("e%03d", i))
	}
	appendOne := func(i int) error {
		return a.Append(context.Background(), callEv("acme", "C1", want[i], "alice"), st.fn(want[i]))
	}
	for i := 0; i < 10; i++ {
		if err := appendOne(i); err != nil {
			t.Fatal(err)
		}
	}
	st.waitN(t, 10)
	s1.Shutdown()

	// The rest is appended while the server is down.
	appended := make(chan int, n)
	go func() {
		for i := 10; i < n; i++ {
			if err := appendOne(i); err != nil {
				t.Error(err)
				return
			}
			appended <- i
		}
	}()
	// The appender says why it holds events, and the appending goroutine is held back:
	// at most 2 × window events wait in the appender.
	testenv.Eventually(t, "the appender to report the log down", func() bool { _, err := a.Status(); return err != nil })
	testenv.Eventually(t, "the appender's window to fill", func() bool {
		held, _ := a.Status()
		return held >= window
	})
	held, _ := a.Status()
	if held > 2*window+1 {
		t.Errorf("%d events held, more than the window allows", held)
	}
	st.mu.Lock()
	storedWhileDown := len(st.labels)
	st.mu.Unlock()
	if storedWhileDown != 10 {
		t.Errorf("%d events stored while the server was down, want the 10 from before", storedWhileDown)
	}
	if len(appended) >= n-10 {
		t.Error("every Append returned while the log was down: nothing pushed back")
	}

	s2 := start()
	defer s2.Shutdown()
	st.waitN(t, n)
	testenv.Eventually(t, "the appender to report the log up", func() bool { h, err := a.Status(); return err == nil && h == 0 })
	st.mu.Lock()
	labels := slices.Clone(st.labels)
	seqs := slices.Clone(st.seqs)
	st.mu.Unlock()
	if !slices.Equal(labels, want) {
		t.Fatalf("stored in the order %v", labels)
	}
	stream, streamSeqs := streamLabels(t, nc)
	if !slices.Equal(stream, want) {
		t.Fatalf("the stream holds %v, want every event once, in order", stream)
	}
	if !slices.Equal(streamSeqs, seqs) {
		t.Fatalf("stored at %v, the appender reported %v", streamSeqs, seqs)
	}
}
