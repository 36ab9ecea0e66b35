package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/callbridge/callbridge/asterisk"
	"github.com/callbridge/callbridge/asterisk/ami"
	"github.com/callbridge/callbridge/capture"
)

// runCapture implements `callbridge capture --pbx ami://… --out FILE`: it logs in to the
// switch, optionally asks for its current state (the same actions the driver's resync uses),
// and writes every frame sent and received to FILE in the JSONL capture format until
// interrupted or --duration has passed; then it logs off.
func runCapture(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if isESLCapture(args) {
		return runCaptureESL(ctx, args, stdout, stderr)
	}
	fs := flag.NewFlagSet("capture", flag.ContinueOnError)
	fs.SetOutput(stderr)
	pbx := fs.String("pbx", envDefault("PBX", ""), "switch to record: ami://user:secret@host:5038 or esl://:password@host:8021")
	out := fs.String("out", "", "capture file to write (JSONL)")
	dur := fs.Duration("duration", 0, "stop after this long (0: until interrupted)")
	resync := fs.Bool("resync", true, "ask for the switch's channels and queues right after login")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *pbx == "" || *out == "" {
		fs.Usage()
		return errors.New("capture: --pbx and --out are required")
	}
	if kind, err := pbxKind(*pbx); err != nil {
		return err
	} else if kind != pbxAsterisk {
		return fmt.Errorf("capture: --pbx %s: capture records a real switch: ami://user:secret@host:5038 or esl://:password@host:8021", redactPBX(*pbx))
	}
	cfg, err := asterisk.ParseURL(*pbx)
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
	conn, err := ami.Dial(ctx, ami.Config{
		Addr: cfg.Addr, Username: cfg.Username, Secret: cfg.Secret, Logger: logger,
		OnEvent: func(ami.Message) {},
		Tap:     func(dir, raw string) { _ = w.Write(dir, raw) },
	})
	if err != nil {
		return err
	}
	defer conn.Close()
	fmt.Fprintf(stdout, "capturing %s to %s (interrupt to stop)\n", cfg.Addr, *out)
	if *resync {
		for _, name := range []string{"CoreShowChannels", "QueueStatus", "BridgeList"} {
			if _, err := conn.Action(ctx, ami.Action{Name: name}); err != nil {
				if ctx.Err() != nil {
					break // stopped during the resync: what was recorded is kept
				}
				return fmt.Errorf("capture: %s: %w", name, err)
			}
		}
	}
	select {
	case <-ctx.Done():
	case <-conn.Done():
		return fmt.Errorf("capture: connection closed: %v", conn.Err())
	}
	lctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	_, _ = conn.Action(lctx, ami.Action{Name: "Logoff"})
	return nil
}
