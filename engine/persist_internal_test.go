package engine

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"
	"time"
	"unsafe"

	"github.com/callbridge/callbridge"
)

// engineFields says, for every field of Engine, how persistence treats it. A field added to
// Engine fails TestStateCoversEngineFields until it is listed here, and a "state" field must be
// written by MarshalState and read by Restore.
var engineFields = map[string]string{
	"caps":      "config: Config.Capabilities",
	"newID":     "config: Config.NewCallID",
	"dir":       "config: Config.Directory",
	"grace":     "config: Config.DesktopGrace",
	"heartbeat": "config: Config.HeartbeatTimeout",
	"lim":       "config: Config.MaxData*, MaxConnections, MaxMemberships",
	"now":       "state: now",
	"calls":     "state: calls (TestStateCoversCallFields)",
	"byID":      "index: rebuilt from calls",
	"devCalls":  "index: rebuilt from the calls' connections (checked by TestRestoreContinuesTheRun)",
	"agents":    "state: agents (TestStateCoversAgentFields); the user comes from the directory",
	"resv":      "state: reservations (TestStateCoversOtherFields)",
	"idem":      "state: idempotency (TestStateCoversOtherFields)",
	"inflight":  "not saved: commands staged and not applied die with the runtime (persist.go)",
	"claimed":   "state: claimed",
	"handled":   "state: handled (TestStateCoversOtherFields)",
	"touched":   "state: touched",
	"leaving":   "step: cleared when an input begins",
	"out":       "step: nil between inputs",
	"resync":    "step: false between inputs",
}

func TestStateCoversEngineFields(t *testing.T) {
	typ := reflect.TypeFor[Engine]()
	seen := map[string]bool{}
	for f := range typ.Fields() {
		seen[f.Name] = true
		if _, ok := engineFields[f.Name]; !ok {
			t.Errorf("Engine.%s is new: say in engineFields (persist_internal_test.go) whether MarshalState must save it, and save it", f.Name)
		}
	}
	for name := range engineFields {
		if !seen[name] {
			t.Errorf("engineFields lists %s, which Engine no longer has", name)
		}
	}
}

// fill sets every field of v, exported or not, to a random non-zero value: strings, numbers,
// times (UTC, with nanoseconds), two entries in each map and slice; maps to bool are sets and
// get true. Values are valid UTF-8 so that JSON keeps them.
func fill(t *testing.T, v reflect.Value, r *rand.Rand) {
	t.Helper()
	if v.Type() == reflect.TypeFor[time.Time]() {
		v.Set(reflect.ValueOf(time.Unix(r.Int64N(4e9), r.Int64N(1e9)).UTC()))
		return
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString(fmt.Sprintf("s%d", r.Uint64()))
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		v.SetInt(1 + r.Int64N(100))
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		v.SetUint(1 + r.Uint64N(100))
	case reflect.Struct:
		for i := range v.NumField() {
			f := v.Field(i)
			if !f.CanSet() {
				f = reflect.NewAt(f.Type(), unsafe.Pointer(f.UnsafeAddr())).Elem()
			}
			fill(t, f, r)
		}
	case reflect.Map:
		m := reflect.MakeMap(v.Type())
		for range 2 {
			k := reflect.New(v.Type().Key()).Elem()
			fill(t, k, r)
			e := reflect.New(v.Type().Elem()).Elem()
			fill(t, e, r)
			m.SetMapIndex(k, e)
		}
		v.Set(m)
	case reflect.Slice:
		s := reflect.MakeSlice(v.Type(), 2, 2)
		for i := range 2 {
			fill(t, s.Index(i), r)
		}
		v.Set(s)
	case reflect.Pointer:
		p := reflect.New(v.Type().Elem())
		fill(t, p.Elem(), r)
		v.Set(p)
	default:
		t.Fatalf("fill: a field of kind %s (%s): teach fill and the state codec about it", v.Kind(), v.Type())
	}
}

// viaJSON encodes in as JSON and decodes it into a new *T.
func viaJSON[T any](t *testing.T, in T) *T {
	t.Helper()
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	out := new(T)
	if err := json.Unmarshal(b, out); err != nil {
		t.Fatal(err)
	}
	return out
}

// sameValue fails when got and want differ, naming the first field that differs.
func sameValue(t *testing.T, what string, got, want any) {
	t.Helper()
	if reflect.DeepEqual(got, want) {
		return
	}
	gv, wv := reflect.ValueOf(got).Elem(), reflect.ValueOf(want).Elem()
	for i := range wv.NumField() {
		g := reflect.NewAt(gv.Field(i).Type(), unsafe.Pointer(gv.Field(i).UnsafeAddr())).Elem().Interface()
		w := reflect.NewAt(wv.Field(i).Type(), unsafe.Pointer(wv.Field(i).UnsafeAddr())).Elem().Interface()
		if !reflect.DeepEqual(g, w) {
			t.Fatalf("%s.%s is lost by the state codec (persist.go): got %+v, want %+v", what, wv.Type().Field(i).Name, g, w)
		}
	}
	t.Fatalf("%s differs after the state codec: %+v, want %+v", what, got, want)
}

// TestStateCoversCallFields fills every field of a call (and of the callbridge.Call in it)
// and checks that it survives the state codec through JSON: a field added to call, or to
// callbridge.Call, fails here until persist.go saves it.
func TestStateCoversCallFields(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for range 20 {
		c := &call{}
		fill(t, reflect.ValueOf(c).Elem(), r)
		got, err := decodeCall(viaJSON(t, encodeCall(c)))
		if err != nil {
			t.Fatal(err)
		}
		sameValue(t, "call", got, c)
	}
}

// TestStateCoversAgentFields: the same for agent and member (the user comes from the
// directory).
func TestStateCoversAgentFields(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for range 20 {
		a := &agent{}
		fill(t, reflect.ValueOf(a).Elem(), r)
		st := viaJSON(t, encodeAgent(a))
		got := &agent{key: a.key, user: a.user}
		decodeAgent(st, got)
		sameValue(t, "agent", got, a)
	}
}

// TestStateCoversOtherFields: the same for reservations, idempotency entries and handled
// calls.
func TestStateCoversOtherFields(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for range 20 {
		rv := &reservation{}
		fill(t, reflect.ValueOf(rv).Elem(), r)
		sameValue(t, "reservation", decodeReservation(*viaJSON(t, encodeReservation(rv))), rv)

		var k idemKey
		var v idemEntry
		fill(t, reflect.ValueOf(&k).Elem(), r)
		fill(t, reflect.ValueOf(&v).Elem(), r)
		e := &Engine{idem: map[idemKey]idemEntry{}}
		st := viaJSON(t, encodeIdem(k, v))
		if err := e.load(&stateV2{Idempotency: []idemState{*st}}); err != nil {
			t.Fatal(err)
		}
		if got := e.idem[k]; !reflect.DeepEqual(got, v) || len(e.idem) != 1 {
			t.Fatalf("idempotency entry %+v → %+v: lost by the state codec", v, e.idem)
		}

		h := &handledCall{}
		fill(t, reflect.ValueOf(h).Elem(), r)
		sameValue(t, "handledCall", decodeHandled(viaJSON(t, encodeHandled(h))), h)
	}
}

// TestStateSortsEverything: two engines with the same state give the same bytes whatever
// the maps' iteration order (MarshalState is called many times on one engine).
func TestStateSortsEverything(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	e := &Engine{calls: map[string]*call{}, agents: map[callbridge.AgentKey]*agent{}, resv: map[callbridge.CallID]*reservation{},
		idem: map[idemKey]idemEntry{}, claimed: map[callbridge.CallID]time.Time{}, handled: map[callbridge.CallID]*handledCall{},
		touched: map[callbridge.AgentKey]bool{}}
	for i := range 8 {
		c := &call{}
		fill(t, reflect.ValueOf(c).Elem(), r)
		e.calls[c.m.PBXCallID] = c
		a := &agent{}
		fill(t, reflect.ValueOf(a).Elem(), r)
		e.agents[a.key] = a
		e.touched[a.key] = i%2 == 0
		rv := &reservation{}
		fill(t, reflect.ValueOf(rv).Elem(), r)
		e.resv[rv.id] = rv
		var k idemKey
		var v idemEntry
		fill(t, reflect.ValueOf(&k).Elem(), r)
		fill(t, reflect.ValueOf(&v).Elem(), r)
		e.idem[k] = v
		e.claimed[callbridge.CallID(fmt.Sprint("c", i))] = time.Unix(int64(i), 0).UTC()
		h := &handledCall{}
		fill(t, reflect.ValueOf(h).Elem(), r)
		e.handled[h.call.ID] = h
	}
	first, err := e.MarshalState()
	if err != nil {
		t.Fatal(err)
	}
	for range 20 {
		again, err := e.MarshalState()
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(first, again) {
			t.Fatalf("MarshalState is not deterministic:\n%s\n%s", first, again)
		}
	}
}
