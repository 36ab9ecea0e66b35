package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/callbridge/callbridge"
	"github.com/callbridge/callbridge/capture"
	"github.com/callbridge/callbridge/examples"
	"github.com/callbridge/callbridge/freeswitch"
	"github.com/callbridge/callbridge/freeswitch/esl"
	"github.com/callbridge/callbridge/internal/replay"
	"github.com/callbridge/callbridge/provision"
)

// This file wires FreeSWITCH (the esl:// switch URL and .esl.jsonl recordings) into serve,
// replay and capture.

// isESLRecording reports whether path is a FreeSWITCH event socket recording (.esl.jsonl).
func isESLRecording(path string) bool { return strings.HasSuffix(path, ".esl.jsonl") }

// replayFunc plays a recording through a real driver and the engine (Replay, ReplayESL).
type replayFunc func(ctx context.Context, recs []capture.Record, p callbridge.Provisioning, speed float64, logger *slog.Logger) ([]callbridge.Event, error)

// replayerFor returns the replay of the recording at path and its provisioning: file prov,
// else the embedded example of the recording's switch (examples/freeswitch-1.10.yaml for
// .esl.jsonl, examples/asterisk-22.yaml otherwise).
func replayerFor(path, prov string) (replayFunc, callbridge.Provisioning, error) {
	if !isESLRecording(path) {
		p, err := loadReplayProvisioning(prov)
		return Replay, p, err
	}
	if prov != "" {
		p, err := provision.LoadFile(prov)
		return ReplayESL, p, err
	}
	b, err := examples.FS.ReadFile("freeswitch-1.10.yaml")
	if err != nil {
		return nil, callbridge.Provisioning{}, err
	}
	p, err := provision.Load(bytes.NewReader(b))
	return ReplayESL, p, err
}

// ReplayESL plays a FreeSWITCH recording (.esl.jsonl) through the ESL replay server, the real
// event socket client, the FreeSWITCH driver and the engine, and returns the domain events
// (Seq numbered from 1), like Replay for Asterisk. The driver lists the provisioned queues at
// its resync.
func ReplayESL(ctx context.Context, recs []capture.Record, p callbridge.Provisioning, speed float64, logger *slog.Logger) ([]callbridge.Event, error) {
	dir := callbridge.Directory{Tenants: p.Tenants}
	return replay.Run(ctx, replay.Config{
		Server: capture.NewESLServer([]capture.Script{{Records: recs}}, capture.ServerOptions{Speed: speed, Logger: logger}),
		NewDriver: func(addr string) callbridge.Driver {
			return freeswitch.New(freeswitch.Config{Addr: addr, Password: "ClueCon", Logger: logger, Queues: directoryQueues(dir)})
		},
		Directory: dir,
		Start:     replay.ESLStart(recs),
		Logger:    logger,
	})
}

// directoryQueues returns every queue of every tenant, in directory order.
func directoryQueues(dir callbridge.Directory) []callbridge.QueueName {
	var out []callbridge.QueueName
	for _, t := range dir.Tenants {
		for _, q := range t.Queues {
			out = append(out, q.Name)
		}
	}
	return out
}

// eslDriver builds the FreeSWITCH driver for `serve --pbx esl://…`; the provisioned queues
// are listed at every resync.
func (m *Main) eslDriver(dir callbridge.Directory) (callbridge.Driver, error) {
	cfg, err := freeswitch.ParseURL(m.PBX)
	if err != nil {
		return nil, fmt.Errorf("--pbx: %w", err)
	}
	cfg.Logger = m.Logger.With("component", "freeswitch")
	for _, q := range directoryQueues(dir) {
		if !containsQueue(cfg.Queues, q) {
			cfg.Queues = append(cfg.Queues, q)
		}
	}
	return freeswitch.New(cfg), nil
}

func containsQueue(qs []callbridge.QueueName, q callbridge.QueueName) bool {
	for _, x := range qs {
		if x == q {
			return true
		}
	}
	return false
}

// isESLCapture reports whether the capture arguments (or CALLBRIDGE_PBX) name an esl:// switch.
func isESLCapture(args []string) bool {
	pbx := envDefault("PBX", "")
	for i, a := range args {
		name, val, hasVal := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if !strings.HasPrefix(a, "-") || name != "pbx" {
			continue
		}
		if hasVal {
			pbx = val
		} else if i+1 < len(args) {
			pbx = args[i+1]
		}
	}
	return strings.HasPrefix(pbx, "esl://")
}

// runCaptureESL implements `callbridge capture --pbx esl://:password@host:8021 --out
// FILE.esl.jsonl`: it connects, authenticates, subscribes to every event ("event plain ALL",
// as the recordings were made), optionally asks for the switch's current state (the commands
// of the driver's resync), and writes every frame sent and received to FILE in the JSONL
// capture format until interrupted or --duration has passed; then it sends exit.
func runCaptureESL(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("capture", flag.ContinueOnError)
	fs.SetOutput(stderr)
	pbx := fs.String("pbx", envDefault("PBX", ""), "switch to record: esl://:password@host:8021")
	out := fs.String("out", "", "capture file to write (JSONL, name it *.esl.jsonl)")
	dur := fs.Duration("duration", 0, "stop after this long (0: until interrupted)")
	resync := fs.Bool("resync", true, "ask for the switch's channels and mod_callcenter state right after connecting")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *pbx == "" || *out == "" {
		fs.Usage()
		return errors.New("capture: --pbx and --out are required")
	}
	cfg, err := freeswitch.ParseURL(*pbx)
	if err != nil {
		return fmt.Errorf("--pbx: %w", err)
	}
	f, err := os.OpenFile(*out, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o640)
	if err != nil {
		return err
	}
	defer f.Close()
	w := capture.NewWriter(f, time.Now())
	logger := slog.New(slog.NewTextHandler(stderr, nil))
	if *dur > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, *dur)
		defer cancel()
	}
	conn, err := esl.Dial(ctx, esl.Config{
		Addr: cfg.Addr, Password: cfg.Password, Format: cfg.Format, Logger: logger,
		Tap: func(dir, raw string) { _ = w.Write(dir, raw) },
	})
	if err != nil {
		return err
	}
	defer func() {
		<-conn.Done()
		_ = w.Write(capture.DirEOF, "")
	}()
	defer conn.Close()
	fmt.Fprintf(stdout, "capturing %s to %s (interrupt to stop)\n", cfg.Addr, *out)
	if *resync {
		cmds := []string{"show channels as json", "show calls as json", "callcenter_config queue list"}
		for _, q := range cfg.Queues {
			cmds = append(cmds, "callcenter_config queue list agents "+string(q), "callcenter_config queue list members "+string(q))
		}
		for _, c := range cmds {
			if _, err := conn.API(ctx, c); err != nil {
				if ctx.Err() != nil {
					break // stopped during the resync: what was recorded is kept
				}
				return fmt.Errorf("capture: %s: %w", c, err)
			}
		}
	}
	select {
	case <-ctx.Done():
	case <-conn.Done():
		return fmt.Errorf("capture: connection closed: %v", conn.Err())
	}
	ectx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	_ = conn.Exit(ectx)
	return nil
}
