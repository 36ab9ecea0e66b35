package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/callbridge/callbridge"
	"github.com/callbridge/callbridge/asterisk"
	"github.com/callbridge/callbridge/capture"
	"github.com/callbridge/callbridge/engine"
	"github.com/callbridge/callbridge/examples"
	"github.com/callbridge/callbridge/node"
	"github.com/callbridge/callbridge/provision"
)

// runReplay implements `callbridge replay FILE`: the recording is played by a replay server
// on 127.0.0.1, the real AMI client and Asterisk driver connect to it, the engine consumes the
// driver's events, and every domain event is printed as one JSON line.
func runReplay(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("replay", flag.ContinueOnError)
	fs.SetOutput(stderr)
	speed := fs.Float64("speed", 0, "playback speed: 0 = as fast as possible, 1 = recorded pace, 2 = twice as fast")
	prov := fs.String("provision", "", "provisioning YAML (default: the embedded examples/asterisk-22.yaml, or freeswitch-1.10.yaml for .esl.jsonl)")
	verbose := fs.Bool("v", false, "log the driver's and replay server's activity to stderr")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: callbridge replay [flags] FILE.ami.jsonl|FILE.esl.jsonl")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return errors.New("replay: want exactly one capture file")
	}
	logger := slog.New(slog.DiscardHandler)
	if *verbose {
		logger = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	replay, p, err := replayerFor(fs.Arg(0), *prov)
	if err != nil {
		return err
	}
	recs, err := capture.ReadFile(fs.Arg(0))
	if err != nil {
		return err
	}
	events, err := replay(ctx, recs, p, *speed, logger)
	for _, ev := range events {
		b, merr := json.Marshal(ev)
		if merr != nil {
			return merr
		}
		fmt.Fprintf(stdout, "%s\n", b)
	}
	return err
}

func loadReplayProvisioning(path string) (callbridge.Provisioning, error) {
	if path != "" {
		return provision.LoadFile(path)
	}
	b, err := examples.FS.ReadFile("asterisk-22.yaml")
	if err != nil {
		return callbridge.Provisioning{}, err
	}
	return provision.Load(bytes.NewReader(b))
}

// Replay plays recs through the real AMI socket client, Asterisk driver and engine and returns
// the domain events (with Seq numbered from 1). It returns when the recording has been played
// and every event has passed through the engine, or with the driver's error (for example a
// failed login in a bad-login recording).
func Replay(ctx context.Context, recs []capture.Record, p callbridge.Provisioning, speed float64, logger *slog.Logger) ([]callbridge.Event, error) {
	return ReplayScripts(ctx, []capture.Script{{Records: recs}}, p, speed, logger)
}

// ReplayScripts is Replay with one script per TCP connection: the driver's first connection
// plays scripts[0], its reconnection scripts[1], and so on (a script with DropAfter cuts the
// connection there). It returns once the last script has been played and read.
func ReplayScripts(ctx context.Context, scripts []capture.Script, p callbridge.Provisioning, speed float64, logger *slog.Logger) ([]callbridge.Event, error) {
	srv := capture.NewAMIServer(scripts, capture.ServerOptions{Speed: speed, Logger: logger})
	if err := srv.Listen("127.0.0.1:0"); err != nil {
		return nil, err
	}
	defer srv.Close()

	drv := asterisk.New(asterisk.Config{Addr: srv.Addr(), Username: "cti", Secret: "cti-secret", Logger: logger})
	start := firstTimestamp(scripts[0].Records)
	eng, err := engine.New(engine.Config{
		Directory:    callbridge.Directory{Tenants: p.Tenants},
		Capabilities: drv.Capabilities(),
		NewCallID:    sequentialIDs(),
		Now:          start,
	})
	if err != nil {
		return nil, err
	}
	log := &memLog{}
	n := node.New(node.Config{Driver: drv, Engine: eng, Log: log, Logger: logger})
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- n.Run(rctx) }()

	select {
	case <-srv.Played(len(scripts) - 1):
	case err := <-done:
		return log.events(), err
	case <-ctx.Done():
		return log.events(), ctx.Err()
	}
	// Every frame is on the wire. Wait until the driver has read and emitted all of them: a
	// Sync can only go through once the driver's resync after login is done, so retry while
	// the link is not up yet — unless the driver gave up (a refused login).
	sctx, scancel := context.WithTimeout(ctx, 30*time.Second)
	defer scancel()
	for {
		err := n.Sync(sctx)
		if err == nil {
			break
		}
		if callbridge.ErrorCode(err) != callbridge.EUnavailable || sctx.Err() != nil {
			return log.events(), fmt.Errorf("replay: waiting for the driver: %w", err)
		}
		select {
		case err := <-done:
			if err == nil {
				err = errors.New("replay: the driver stopped before the recording was read")
			}
			return log.events(), err
		case <-time.After(10 * time.Millisecond):
		}
	}
	cancel()
	<-done
	return log.events(), nil
}

// firstTimestamp returns the time of the first event with a Timestamp header, so that a
// replay's engine clock starts where the recording did (zero when there is none).
func firstTimestamp(recs []capture.Record) time.Time {
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

// sequentialIDs returns a deterministic CallID generator for replays: the output of a replay
// is the same every time.
func sequentialIDs() func(time.Time) callbridge.CallID {
	n := 0
	return func(time.Time) callbridge.CallID {
		n++
		return callbridge.CallID(fmt.Sprintf("call-%06d", n))
	}
}

// memLog is an in-memory callbridge.EventLog for replays: one sequence for every event.
type memLog struct {
	mu  sync.Mutex
	evs []callbridge.Event
}

func (l *memLog) Append(_ context.Context, ev callbridge.Event) (uint64, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	ev.Seq = uint64(len(l.evs) + 1)
	l.evs = append(l.evs, ev)
	return ev.Seq, nil
}

func (l *memLog) LastSeq(context.Context) (uint64, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return uint64(len(l.evs)), nil
}

func (l *memLog) Subscribe(context.Context, callbridge.Filter, uint64, func(callbridge.WireEvent)) (callbridge.Subscription, error) {
	return nil, callbridge.Errorf(callbridge.ENotSupported, "replay log has no subscriptions")
}

func (l *memLog) events() []callbridge.Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]callbridge.Event(nil), l.evs...)
}
