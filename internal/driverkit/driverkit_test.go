package driverkit_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"testing"

	"github.com/callbridge/callbridge"
	"github.com/callbridge/callbridge/internal/driverkit"
)

var (
	errNotConnected = errors.New("not connected")
	errClosed       = errors.New("closed")
)

func TestSync(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name  string
		up    bool
		pings []error // ping's answers in turn
		code  string  // "" for success
	}{
		{"down is unavailable", false, nil, callbridge.EUnavailable},
		{"answered ping", true, []error{nil}, ""},
		{"not yet delivered is retried", true, []error{errNotConnected, errNotConnected, nil}, ""},
		{"closed is unavailable", true, []error{fmt.Errorf("%w: %w", errNotConnected, errClosed)}, callbridge.EUnavailable},
		{"other failure is unavailable", true, []error{errors.New("boom")}, callbridge.EUnavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := 0
			ping := func(context.Context) error { n++; return tt.pings[n-1] }
			err := driverkit.Sync(ctx, "PBX", func() bool { return tt.up }, ping, errNotConnected, errClosed)
			if got := callbridge.ErrorCode(err); err != nil && got != tt.code || err == nil && tt.code != "" {
				t.Fatalf("Sync = %v, want code %q", err, tt.code)
			}
			if n != len(tt.pings) {
				t.Fatalf("%d pings, want %d", n, len(tt.pings))
			}
		})
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	err := driverkit.Sync(cctx, "PBX", func() bool { return true }, func(context.Context) error { return errors.New("x") }, errNotConnected, errClosed)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Sync after cancel = %v", err)
	}
}

func TestCommandErr(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	ctx := context.Background()
	if err := driverkit.CommandErr(ctx, log, "p", "PBX", "action", "Ping", nil); err != nil {
		t.Fatalf("nil: %v", err)
	}
	inv := callbridge.Errorf(callbridge.EInvalid, "bad value")
	if err := driverkit.CommandErr(ctx, log, "p", "PBX", "action", "Ping", inv); err != error(inv) {
		t.Fatalf("invalid: %v", err)
	}
	err := driverkit.CommandErr(ctx, log, "p", "PBX", "action", "Ping", errClosed)
	if callbridge.ErrorCode(err) != callbridge.EUnavailable || callbridge.ErrorMessage(err) != "PBX link lost during Ping" {
		t.Fatalf("closed: %v", err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := driverkit.CommandErr(cctx, log, "p", "PBX", "action", "Ping", errClosed); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled: %v", err)
	}
}

func TestRejectedAndLinkDown(t *testing.T) {
	if err := driverkit.Rejected("PBX", "Hangup", ""); callbridge.ErrorCode(err) != callbridge.ESwitchRejected || callbridge.ErrorMessage(err) != "PBX refused Hangup: refused" {
		t.Fatalf("Rejected = %v", err)
	}
	if ev := driverkit.LinkDown(nil); ev.Type != callbridge.SwitchLinkDown || ev.Reason != "connection closed" {
		t.Fatalf("LinkDown(nil) = %+v", ev)
	}
	if ev := driverkit.LinkDown(errClosed); ev.Reason != "closed" {
		t.Fatalf("LinkDown = %+v", ev)
	}
}
