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

	"github.com/callbridge/callbridge"
	"github.com/callbridge/callbridge/asterisk"
	"github.com/callbridge/callbridge/capture"
	"github.com/callbridge/callbridge/examples"
	"github.com/callbridge/callbridge/internal/replay"
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
	return replay.Run(ctx, replay.Config{
		Server:  capture.NewAMIServer(scripts, capture.ServerOptions{Speed: speed, Logger: logger}),
		Scripts: len(scripts),
		NewDriver: func(addr string) callbridge.Driver {
			return asterisk.New(asterisk.Config{Addr: addr, Username: "cti", Secret: "cti-secret", Logger: logger})
		},
		Directory: callbridge.Directory{Tenants: p.Tenants},
		Start:     replay.AMIStart(scripts[0].Records),
		Logger:    logger,
	})
}
