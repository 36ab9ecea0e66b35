// Command callbridge is the callbridge CTI bridge server.
//
//	callbridge serve    run a node (embedded default: simulated PBX, embedded NATS, SQLite)
//	callbridge replay   feed a recorded switch session through the real driver and engine
//	callbridge capture  record a live switch session in the JSONL capture format
//	callbridge version  print the version
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// Version is set at build time with -ldflags "-X main.Version=…".
var Version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// A second signal forces exit.
	go func() {
		<-ctx.Done()
		stop()
		ch := make(chan os.Signal, 1)
		signal.Notify(ch, os.Interrupt, syscall.SIGTERM)
		<-ch
		fmt.Fprintln(os.Stderr, "callbridge: forced exit")
		os.Exit(2)
	}()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "callbridge:", err)
		}
		os.Exit(1)
	}
}

const usage = `usage: callbridge <command> [flags]

commands:
  serve     run a callbridge node (default: embedded simulated PBX, NATS and SQLite)
  replay    replay a recorded switch session (.ami.jsonl, .esl.jsonl) and print the domain events
  capture   record a live switch session in the JSONL capture format
  version   print the version

Run "callbridge <command> -h" for the flags of a command.
`

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errors.New("no command")
	}
	switch args[0] {
	case "serve":
		m := NewMain(stdout, stderr)
		if err := m.ParseFlags(args[1:]); err != nil {
			return err
		}
		if err := m.Open(ctx); err != nil {
			m.Close()
			return err
		}
		m.PrintBanner()
		err := m.Wait(ctx)
		if cerr := m.Close(); err == nil {
			err = cerr
		}
		return err
	case "replay":
		return runReplay(ctx, args[1:], stdout, stderr)
	case "capture":
		return runCapture(ctx, args[1:], stdout, stderr)
	case "version", "-version", "--version":
		fmt.Fprintln(stdout, "callbridge", Version)
		return nil
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	default:
		fmt.Fprint(stderr, usage)
		return fmt.Errorf("unknown command %q", args[0])
	}
}
