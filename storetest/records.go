package storetest

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/callbridge/callbridge"
)

func testConsumerPosition(t *testing.T, open Open) {
	s := open(t)
	if pos, err := s.ConsumerPosition(t.Context(), "records:acme"); err != nil || pos != 0 {
		t.Fatalf("new consumer position = %d, %v; want 0", pos, err)
	}
	update(t, s, func(tx callbridge.HistoryTx) error {
		pos, err := tx.LockPosition(t.Context(), "records:acme")
		if err != nil || pos != 0 {
			return fmt.Errorf("LockPosition = %d, %v; want 0", pos, err)
		}
		return tx.SetPosition(t.Context(), "records:acme", 1<<40+7)
	})
	if pos, err := s.ConsumerPosition(t.Context(), "records:acme"); err != nil || pos != 1<<40+7 {
		t.Fatalf("position = %d, %v; want %d", pos, err, uint64(1<<40+7))
	}
	if pos, _ := s.ConsumerPosition(t.Context(), "records:globex"); pos != 0 {
		t.Fatalf("another consumer's position = %d", pos)
	}
}

func testUpdateHistoryRollsBack(t *testing.T, open Open) {
	s := open(t)
	boom := errors.New("boom")
	err := s.UpdateHistory(t.Context(), func(tx callbridge.HistoryTx) error {
		if err := tx.SetPosition(t.Context(), "c", 5); err != nil {
			return err
		}
		if err := tx.PutCallRecord(t.Context(), record("acme", "C1", 0, true), nil); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("UpdateHistory returned %v, want fn's error", err)
	}
	if pos, _ := s.ConsumerPosition(t.Context(), "c"); pos != 0 {
		t.Errorf("position %d survived a rollback", pos)
	}
	if _, err := s.CallRecord(t.Context(), "acme", "C1"); callbridge.ErrorCode(err) != callbridge.ENotFound {
		t.Errorf("record survived a rollback: %v", err)
	}
}

// testExactlyOnceUnderConcurrency: several writers apply the same events (sequences 1…n),
// each in a transaction that locks the position and skips what it already covers; every
// event must be applied exactly once.
func testExactlyOnceUnderConcurrency(t *testing.T, open Open) {
	s := open(t)
	const events, writers = 40, 4
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		wg.Go(func() {
			for seq := uint64(1); seq <= events; seq++ {
				err := s.UpdateHistory(context.Background(), func(tx callbridge.HistoryTx) error {
					pos, err := tx.LockPosition(context.Background(), "records:acme")
					if err != nil || seq <= pos {
						return err
					}
					// Count applications in the agent state history: one row per event.
					if err := tx.AddAgentState(context.Background(), callbridge.AgentStateRecord{
						ID: fmt.Sprintf("S%04d", seq), Tenant: "acme", Agent: "alice",
						State: callbridge.AgentReady, StartedAt: at(int(seq)),
					}); err != nil {
						return err
					}
					return tx.SetPosition(context.Background(), "records:acme", seq)
				})
				if err != nil {
					errs <- fmt.Errorf("writer %d seq %d: %w", w, seq, err)
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
	got, _, err := s.AgentStates(t.Context(), "acme", callbridge.AgentStateFilter{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != events {
		t.Fatalf("%d state rows, want %d (each event applied once)", len(got), events)
	}
	if pos, _ := s.ConsumerPosition(t.Context(), "records:acme"); pos != events {
		t.Fatalf("position %d, want %d", pos, events)
	}
}

// record returns an inbound call record started at second sec.
func record(tenant callbridge.TenantID, id callbridge.CallID, sec int, ended bool) callbridge.CallRecord {
	r := callbridge.CallRecord{
		Tenant: tenant, CallID: id, PBXCallID: "pbx-" + string(id), Direction: callbridge.DirInbound,
		ANI: "+15551230001", ANIName: "Pat Caller", DNIS: "18005550100", Queue: "acme-support",
		Agents:    []callbridge.AgentID{"1001", "1002"},
		StartedAt: at(sec), QueuedAt: at(sec + 3), AnsweredAt: at(sec + 10),
		WaitSeconds: 4, RingSeconds: 3, TalkSeconds: 60, HoldSeconds: 5, WrapUpSeconds: 10,
		Result: callbridge.ResultAnswered, Cause: callbridge.CauseNormal,
		Disposition: "sale", Notes: "wants a callback; über-important",
		AttachedData: map[string]string{"IVR_ACCOUNT": "12345", "crm": "x=1&y=2"},
		Complete:     true, UpdatedAt: at(sec + 90),
	}
	if ended {
		r.EndedAt = at(sec + 80)
	} else {
		r.Complete, r.Result, r.Cause = false, "", ""
	}
	return r
}

func testCallRecordRoundTrip(t *testing.T, open Open) {
	s := open(t)
	in := record("acme", "01JCALL0000000000000000001", 0, false)
	update(t, s, func(tx callbridge.HistoryTx) error {
		if _, _, ok, err := tx.CallTracking(t.Context(), "acme", in.CallID); err != nil || ok {
			return fmt.Errorf("CallTracking of a new call: ok %v, %v", ok, err)
		}
		return tx.PutCallRecord(t.Context(), in, []byte(`{"phase":"talk"}`))
	})
	// In progress: not a record yet for readers.
	if _, err := s.CallRecord(t.Context(), "acme", in.CallID); callbridge.ErrorCode(err) != callbridge.ENotFound {
		t.Fatalf("in-progress call: got %v, want not_found", err)
	}
	if recs, _, _ := s.CallRecords(t.Context(), "acme", callbridge.CallRecordFilter{}); len(recs) != 0 {
		t.Fatalf("in-progress call listed: %+v", recs)
	}
	update(t, s, func(tx callbridge.HistoryTx) error {
		got, state, ok, err := tx.CallTracking(t.Context(), "acme", in.CallID)
		if err != nil || !ok || string(state) != `{"phase":"talk"}` || !reflect.DeepEqual(got, in) {
			return fmt.Errorf("CallTracking = %+v, %s, %v, %v\nwant %+v", got, state, ok, err, in)
		}
		done := record("acme", in.CallID, 0, true)
		done.Agents = []callbridge.AgentID{"1002"} // agents are replaced, not merged
		return tx.PutCallRecord(t.Context(), done, []byte(`{}`))
	})
	want := record("acme", in.CallID, 0, true)
	want.Agents = []callbridge.AgentID{"1002"}
	got, err := s.CallRecord(t.Context(), "acme", in.CallID)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("CallRecord\n got %+v\nwant %+v", got, want)
	}
	if recs, _, _ := s.CallRecords(t.Context(), "acme", callbridge.CallRecordFilter{Agent: "1001"}); len(recs) != 0 {
		t.Errorf("agent filter found a replaced agent: %+v", recs)
	}
	// Another tenant does not see it; empty collections come back empty, not nil.
	if _, err := s.CallRecord(t.Context(), "globex", in.CallID); callbridge.ErrorCode(err) != callbridge.ENotFound {
		t.Errorf("other tenant: %v", err)
	}
	bare := callbridge.CallRecord{Tenant: "acme", CallID: "BARE", Direction: callbridge.DirInternal,
		StartedAt: at(5), EndedAt: at(6), UpdatedAt: at(6)}
	update(t, s, func(tx callbridge.HistoryTx) error { return tx.PutCallRecord(t.Context(), bare, nil) })
	got, err = s.CallRecord(t.Context(), "acme", "BARE")
	if err != nil {
		t.Fatal(err)
	}
	if got.Agents == nil || got.AttachedData == nil || len(got.Agents)+len(got.AttachedData) != 0 {
		t.Errorf("bare record: agents %#v, attached data %#v; want empty, non-nil", got.Agents, got.AttachedData)
	}
}

func testCallRecordsFilterAndPage(t *testing.T, open Open) {
	s := open(t)
	// 25 ended calls a minute apart, alternating queues, agents and results, plus another
	// tenant's and one in progress.
	update(t, s, func(tx callbridge.HistoryTx) error {
		for i := range 25 {
			r := record("acme", callbridge.CallID(fmt.Sprintf("C%02d", i)), i*60, true)
			r.Agents = []callbridge.AgentID{callbridge.AgentID(fmt.Sprintf("a%d", i%3))}
			if i%2 == 1 {
				r.Queue, r.ANI, r.Result, r.Direction = "acme-sales", "+15550000000", callbridge.ResultAbandoned, callbridge.DirOutbound
			}
			if err := tx.PutCallRecord(t.Context(), r, nil); err != nil {
				return err
			}
		}
		if err := tx.PutCallRecord(t.Context(), record("globex", "G1", 0, true), nil); err != nil {
			return err
		}
		return tx.PutCallRecord(t.Context(), record("acme", "LIVE", 30, false), nil)
	})
	ids := func(recs []callbridge.CallRecord) []string {
		var out []string
		for _, r := range recs {
			out = append(out, string(r.CallID))
		}
		return out
	}
	list := func(f callbridge.CallRecordFilter) ([]callbridge.CallRecord, string) {
		t.Helper()
		recs, next, err := s.CallRecords(t.Context(), "acme", f)
		if err != nil {
			t.Fatal(err)
		}
		return recs, next
	}

	// Paging: newest first, 10 + 10 + 5, no overlap, no gap.
	var all []string
	cursor := ""
	for page := 0; ; page++ {
		recs, next := list(callbridge.CallRecordFilter{Limit: 10, Cursor: cursor})
		all = append(all, ids(recs)...)
		if next == "" {
			if page != 2 || len(recs) != 5 {
				t.Fatalf("last page %d has %d records", page, len(recs))
			}
			break
		}
		cursor = next
	}
	var want []string
	for i := 24; i >= 0; i-- {
		want = append(want, fmt.Sprintf("C%02d", i))
	}
	if !reflect.DeepEqual(all, want) {
		t.Fatalf("pages gave %v\nwant %v", all, want)
	}

	for _, tc := range []struct {
		name string
		f    callbridge.CallRecordFilter
		want []string
	}{
		{"time window", callbridge.CallRecordFilter{From: at(120), To: at(300)}, []string{"C04", "C03", "C02"}},
		{"agent", callbridge.CallRecordFilter{Agent: "a1", To: at(600)}, []string{"C07", "C04", "C01"}},
		{"queue", callbridge.CallRecordFilter{Queue: "acme-sales", From: at(18 * 60)}, []string{"C23", "C21", "C19"}},
		{"ani", callbridge.CallRecordFilter{ANI: "+15550000000", To: at(4 * 60)}, []string{"C03", "C01"}},
		{"result", callbridge.CallRecordFilter{Result: callbridge.ResultAnswered, From: at(20 * 60)}, []string{"C24", "C22", "C20"}},
		{"direction", callbridge.CallRecordFilter{Direction: callbridge.DirOutbound, From: at(20 * 60)}, []string{"C23", "C21"}},
		{"combined", callbridge.CallRecordFilter{Agent: "a0", Queue: "acme-sales"}, []string{"C21", "C15", "C09", "C03"}},
		{"nothing", callbridge.CallRecordFilter{ANI: "+19999"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			recs, next := list(tc.f)
			if got := ids(recs); !reflect.DeepEqual(got, tc.want) || next != "" {
				t.Fatalf("got %v (next %q), want %v", got, next, tc.want)
			}
		})
	}
}

func testCallRecordsRefuseBadInput(t *testing.T, open Open) {
	s := open(t)
	for _, f := range []callbridge.CallRecordFilter{
		{Limit: -1}, {Limit: callbridge.MaxPageSize + 1}, {Cursor: "not a cursor"}, {Cursor: "bm9jb2xvbg"},
	} {
		_, _, err := s.CallRecords(t.Context(), "acme", f)
		wantCode(t, err, callbridge.EInvalid)
	}
	_, _, err := s.AgentStates(t.Context(), "acme", callbridge.AgentStateFilter{Cursor: "%%%"})
	wantCode(t, err, callbridge.EInvalid)
}

func testAgentStates(t *testing.T, open Open) {
	s := open(t)
	add := func(id string, agent callbridge.AgentID, state callbridge.AgentState, reason string, sec int) {
		t.Helper()
		update(t, s, func(tx callbridge.HistoryTx) error {
			return tx.AddAgentState(t.Context(), callbridge.AgentStateRecord{
				ID: id, Tenant: "acme", Agent: agent, Device: "1001", State: state, Reason: reason,
				StartedAt: at(sec).Add(400 * time.Millisecond),
			})
		})
	}
	add("S1", "alice", callbridge.AgentNotReady, "lunch", 0)
	add("S2", "bob", callbridge.AgentReady, "", 5)
	add("S3", "alice", callbridge.AgentReady, "", 90) // alice: not_ready for 90 s
	add("S4", "alice", callbridge.AgentBusy, "", 100)
	add("S5", "alice", callbridge.AgentWorkingAfterCall, "", 161) // busy for 61 s

	recs, next, err := s.AgentStates(t.Context(), "acme", callbridge.AgentStateFilter{Agent: "alice"})
	if err != nil || next != "" {
		t.Fatal(err, next)
	}
	durations := map[string]int64{}
	for _, r := range recs {
		if r.DurationSeconds == nil {
			if !r.EndedAt.IsZero() {
				t.Errorf("%s: ended at %v without a duration", r.ID, r.EndedAt)
			}
			durations[r.ID] = -1
			continue
		}
		durations[r.ID] = *r.DurationSeconds
	}
	if want := map[string]int64{"S1": 90, "S3": 10, "S4": 61, "S5": -1}; !reflect.DeepEqual(durations, want) {
		t.Fatalf("durations %v, want %v (-1: current state)", durations, want)
	}
	if r := recs[len(recs)-1]; r.ID != "S1" || r.State != callbridge.AgentNotReady || r.Reason != "lunch" ||
		!r.StartedAt.Equal(at(0).Add(400*time.Millisecond)) || !r.EndedAt.Equal(at(90).Add(400*time.Millisecond)) || r.Device != "1001" {
		t.Errorf("oldest alice record = %+v", r)
	}

	recs, next, err = s.AgentStates(t.Context(), "acme", callbridge.AgentStateFilter{Limit: 2})
	if err != nil || len(recs) != 2 || recs[0].ID != "S5" || recs[1].ID != "S4" || next == "" {
		t.Fatalf("first page: %+v next %q err %v", recs, next, err)
	}
	recs, next, err = s.AgentStates(t.Context(), "acme", callbridge.AgentStateFilter{Limit: 2, Cursor: next})
	if err != nil || len(recs) != 2 || recs[0].ID != "S3" || recs[1].ID != "S2" || next == "" {
		t.Fatalf("second page: %+v next %q err %v", recs, next, err)
	}
	recs, _, _ = s.AgentStates(t.Context(), "acme", callbridge.AgentStateFilter{State: callbridge.AgentReady, From: at(1), To: at(95)})
	if len(recs) != 2 || recs[0].ID != "S3" || recs[1].ID != "S2" {
		t.Fatalf("ready between 1 s and 95 s: %+v", recs)
	}
	if recs, _, _ = s.AgentStates(t.Context(), "globex", callbridge.AgentStateFilter{}); len(recs) != 0 {
		t.Fatalf("other tenant sees %+v", recs)
	}
}

func testAgentTracking(t *testing.T, open Open) {
	s := open(t)
	update(t, s, func(tx callbridge.HistoryTx) error {
		if st, err := tx.AgentTracking(t.Context(), "acme", "alice"); err != nil || st != nil {
			return fmt.Errorf("new agent tracking = %q, %v", st, err)
		}
		if err := tx.PutAgentTracking(t.Context(), "acme", "alice", []byte(`{"a":1}`)); err != nil {
			return err
		}
		return tx.PutAgentTracking(t.Context(), "acme", "alice", []byte(`{"a":2}`))
	})
	update(t, s, func(tx callbridge.HistoryTx) error {
		if st, err := tx.AgentTracking(t.Context(), "acme", "alice"); err != nil || string(st) != `{"a":2}` {
			return fmt.Errorf("agent tracking = %q, %v", st, err)
		}
		if st, err := tx.AgentTracking(t.Context(), "globex", "alice"); err != nil || st != nil {
			return fmt.Errorf("other tenant's tracking = %q, %v", st, err)
		}
		return nil
	})
}
