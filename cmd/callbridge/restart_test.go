package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/callbridge/callbridge"
	"github.com/callbridge/callbridge/engine"
	"github.com/callbridge/callbridge/internal/testenv"
	"github.com/callbridge/callbridge/provision"
)

// seqOf returns a message's "seq".
func seqOf(m map[string]any) uint64 {
	s, _ := m["seq"].(float64)
	return uint64(s)
}

// TestRestartRestoresTheModelAndDesktopsResume stops a node in the middle of a call and
// starts it again on the same data directory. The simulated switch lives in the process, so
// its calls are gone after the restart: the restored engine still knows the call by its
// call_id, the switch's resync clears it (cause resync) under that id, the call record
// completes, and a desktop that resumes with after_seq gets exactly the events it missed,
// in order, across the restart.
func TestRestartRestoresTheModelAndDesktopsResume(t *testing.T) {
	dir := t.TempDir()
	m1 := runMainWith(t, func(m *Main) { m.DataDir = dir })
	d := dial(t, m1, login(t, m1, "agent1", "demo"), "")
	d.next("snapshot", func(m map[string]any) bool { return m["type"] == "snapshot" })
	if r := d.cmd("set_agent_state", map[string]any{"state": "ready"}); r["ok"] != true {
		t.Fatalf("ready: %v", r)
	}
	pop := d.next("call.delivered", isEvent("call.delivered", nil))
	callID := pop["data"].(map[string]any)["call_id"].(string)
	if r := d.cmd("answer_call", map[string]any{"call_id": callID}); r["ok"] != true {
		t.Fatalf("answer: %v", r)
	}
	est := d.next("call.established", isEvent("call.established", func(c map[string]any) bool { return c["call_id"] == callID }))
	seen := seqOf(est)
	d.c.CloseNow()
	if err := m1.Close(); err != nil {
		t.Fatal(err)
	}

	m2 := runMainWith(t, func(m *Main) { m.DataDir = dir })
	d2 := dial(t, m2, login(t, m2, "agent1", "demo"), fmt.Sprintf("&after_seq=%d", seen))
	cleared := d2.next("call.cleared of the call from before the restart", isEvent("call.cleared", func(c map[string]any) bool {
		return c["call_id"] == callID
	}))
	if cause := cleared["data"].(map[string]any)["cause"]; cause != string(callbridge.CauseResync) {
		t.Errorf("the call cleared with cause %v, want %s", cause, callbridge.CauseResync)
	}
	// Everything after seen arrived once, in order, with nothing in between missing: the
	// resumed stream starts right after seen (no snapshot, no resync).
	var seqs []uint64
	for _, m := range d2.pending {
		if m["type"] == "snapshot" || m["type"] == "resync" {
			t.Fatalf("the resume was answered with %v", m["type"])
		}
		seqs = append(seqs, seqOf(m))
	}
	seqs = append(seqs, seqOf(cleared))
	for i, s := range seqs {
		if s <= seen || (i > 0 && s <= seqs[i-1]) {
			t.Fatalf("resumed seqs %v after %d: not increasing", seqs, seen)
		}
	}
	// The record of the call completes.
	var rec callbridge.CallRecord
	testenv.Eventually(t, "the call record to complete", func() bool {
		var err error
		rec, err = m2.store.CallRecord(context.Background(), "demo", callbridge.CallID(callID))
		return err == nil
	})
	if rec.EndedAt.IsZero() {
		t.Errorf("record %+v has no end", rec)
	}
	// The engine state was saved at the clean stop.
	if _, err := os.Stat(filepath.Join(dir, "nats")); err != nil {
		t.Fatal(err)
	}
}

func TestStartRefusesLimitsWhoseLargestEventDoesNotFitTheBus(t *testing.T) {
	cfg := engine.Config{Directory: callbridge.Directory{Tenants: provision.Demo().Tenants}}
	if err := checkEventSize(cfg, 1<<20); err != nil {
		t.Fatalf("the default limits do not fit NATS's default 1 MiB: %v", err)
	}
	cfg.MaxDataBytes = 4 << 20
	cfg.MaxDataValueBytes = 4 << 20
	err := checkEventSize(cfg, 1<<20)
	if err == nil || !strings.Contains(err.Error(), "max_payload") {
		t.Fatalf("4 MiB of attached data per call against a 1 MiB bus: %v, want a refusal naming max_payload", err)
	}
}
