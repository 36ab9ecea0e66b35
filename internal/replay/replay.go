// Package replay plays recordings of a real switch through a replay server, the real socket
// client and driver, and a fresh engine, and collects the domain events: the machinery of
// `callbridge replay` and of the driver conformance kit (pbxtest).
package replay

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/callbridge/callbridge"
	"github.com/callbridge/callbridge/capture"
	"github.com/callbridge/callbridge/engine"
	"github.com/callbridge/callbridge/freeswitch/esl"
	"github.com/callbridge/callbridge/node"
)

// Server is a replay server (capture.AMIServer, capture.ESLServer).
type Server interface {
	Listen(addr string) error
	Addr() string
	Played(n int) <-chan struct{}
	Close() error
}

// Config is one replay.
type Config struct {
	// Server plays the recording; Run makes it listen on 127.0.0.1 and closes it.
	Server Server
	// Scripts is how many scripts Server plays, one per TCP connection of the driver (0 = 1).
	// Run returns once the last one has been played.
	Scripts int
	// NewDriver returns the driver under test, connecting to the replay server at addr.
	NewDriver func(addr string) callbridge.Driver
	// Directory is what the engine runs with.
	Directory callbridge.Directory
	// Start is the engine's clock at the start (AMIStart, ESLStart of the recording).
	Start  time.Time
	Logger *slog.Logger
}

// Run plays cfg's recording through the driver and a fresh engine with SequentialIDs, and
// returns the domain events (Seq numbered from 1) once the last script has been played and
// every event has passed through the engine, or with the driver's error (for example a
// refused login in a bad-login recording) and the events so far.
func Run(ctx context.Context, cfg Config) ([]callbridge.Event, error) {
	srv := cfg.Server
	if err := srv.Listen("127.0.0.1:0"); err != nil {
		return nil, err
	}
	defer srv.Close()
	drv := cfg.NewDriver(srv.Addr())
	eng, err := engine.New(engine.Config{
		Directory:    cfg.Directory,
		Capabilities: drv.Capabilities(),
		NewCallID:    SequentialIDs(),
		Now:          cfg.Start,
	})
	if err != nil {
		return nil, err
	}
	log := &Log{}
	n := node.New(node.Config{Driver: drv, Engine: eng, Log: node.Synchronous(log), Logger: cfg.Logger})
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- n.Run(rctx) }()

	select {
	case <-srv.Played(max(cfg.Scripts, 1) - 1):
	case err := <-done:
		return log.Events(), err
	case <-ctx.Done():
		return log.Events(), ctx.Err()
	}
	sctx, scancel := context.WithTimeout(ctx, 30*time.Second)
	defer scancel()
	// Every frame is on the wire, but at full speed the recording can be played before the
	// driver has finished its resync; a recording of a refused login has been played once
	// the refusal was sent.
	for n.Ready() != nil {
		select {
		case err := <-done:
			return log.Events(), err
		case <-sctx.Done():
			return log.Events(), fmt.Errorf("replay: the driver did not come up: %w", n.Ready())
		case <-time.After(2 * time.Millisecond):
		}
	}
	if err := n.Sync(sctx); err != nil {
		return log.Events(), fmt.Errorf("replay: waiting for the driver: %w", err)
	}
	cancel()
	<-done
	return log.Events(), nil
}

// SequentialIDs returns a deterministic CallID generator ("call-000001", …): the output of a
// replay is the same every time.
func SequentialIDs() func(time.Time) callbridge.CallID {
	n := 0
	return func(time.Time) callbridge.CallID {
		n++
		return callbridge.CallID(fmt.Sprintf("call-%06d", n))
	}
}

// AMIStart returns the time of the first event of an AMI recording with a Timestamp header,
// so that a replay's engine clock starts where the recording did (zero when there is none).
func AMIStart(recs []capture.Record) time.Time {
	for _, r := range recs {
		if r.Dir != capture.DirIn {
			continue
		}
		var sec, frac int64
		if i := bytes.Index([]byte(r.Raw), []byte("\r\nTimestamp: ")); i >= 0 {
			if _, err := fmt.Sscanf(r.Raw[i+len("\r\nTimestamp: "):], "%d.%d", &sec, &frac); err == nil {
				return time.Unix(sec, 0).UTC()
			}
		}
	}
	return time.Time{}
}

// ESLStart returns the Event-Date-Timestamp of the first event of an ESL recording, to the
// second (zero when there is none).
func ESLStart(recs []capture.Record) time.Time {
	for _, r := range recs {
		if r.Dir != capture.DirIn {
			continue
		}
		f, err := esl.ParseFrame(r.Raw)
		if err != nil || !f.IsEvent() {
			continue
		}
		if ev, err := f.Event(); err == nil {
			if t := ev.Time(); !t.IsZero() {
				return t.Truncate(time.Second)
			}
		}
	}
	return time.Time{}
}

// Log is an in-memory callbridge.EventLog for replays: one sequence for every event, no
// subscriptions.
type Log struct {
	mu  sync.Mutex
	evs []callbridge.Event
}

var _ callbridge.EventLog = (*Log)(nil)

func (l *Log) Append(_ context.Context, ev callbridge.Event) (uint64, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	ev.Seq = uint64(len(l.evs) + 1)
	l.evs = append(l.evs, ev)
	return ev.Seq, nil
}

func (l *Log) LastSeq(context.Context) (uint64, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return uint64(len(l.evs)), nil
}

func (l *Log) Subscribe(context.Context, callbridge.Filter, uint64, func(callbridge.WireEvent)) (callbridge.Subscription, error) {
	return nil, callbridge.Errorf(callbridge.ENotSupported, "replay log has no subscriptions")
}

// Events returns a copy of the events appended so far.
func (l *Log) Events() []callbridge.Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]callbridge.Event(nil), l.evs...)
}
