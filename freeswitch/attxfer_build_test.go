package freeswitch_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/callbridge/callbridge/capture"
	"github.com/callbridge/callbridge/freeswitch/esl"
	"github.com/callbridge/callbridge/internal/fixtures"
)

// The att_xfer recordings in testdata are built, not captured: no public FreeSWITCH recording
// shows an attended transfer (shared/fixtures/freeswitch-1.10/README.md names an
// "attended-transfer" run but publishes no file). This file builds them and checks that the
// committed files are exactly what it builds; `go test ./freeswitch/ -run
// TestAttXferRecordingsAreBuilt -update-attxfer` rewrites them.
//
// How: the first part of every file is fs-blind-transfer.esl.jsonl verbatim, up to the
// moment its recording client sent uuid_transfer (t_ms 11506): caller A (+15551230004) went
// through the IVR (ivr_reason=support, ivr_account=24680) into support@default and agent
// 1001 (leg B) answered. From there the recording client instead sends
//
//	api uuid_broadcast <B> att_xfer::user/1002
//
// (no leg argument, so uuid_broadcast uses aleg|holdb: att_xfer runs on B and A hears the
// hold music), which is what a phone's transfer key bound to att_xfer does too. The events
// that follow are built in the fixtures' format from the channel data of the same legs as
// recorded (and, for the new 1002 leg C, from the recorded 1002 leg of the blind transfer),
// in the order FreeSWITCH 1.10.12's source gives (mod_dptools.c att_xfer_function and
// att_thread_run, switch_ivr_async.c switch_ivr_broadcast, switch_ivr.c hold-bleg,
// switch_ivr_bridge.c switch_ivr_multi_threaded_bridge and switch_ivr_uuid_bridge,
// switch_ivr_originate.c):
//
//   - the broadcast is parsed inside B's bridge with A (suspended, not unbridged: no
//     CHANNEL_UNBRIDGE, no CHANNEL_HOLD): A gets CHANNEL_EXECUTE playback of the hold music
//     and PLAYBACK_START, then B gets CHANNEL_EXECUTE att_xfer (Application-Data user/1002);
//   - att_xfer's thread sets variable_soft_holding_uuid = A on B and originates C from B: C
//     has variable_originating_leg_uuid = B and Other-Leg-* = B, variable_dialed_user 1002,
//     and none of the caller's variables (B has no export_vars; README "Attached data");
//   - C answers: CHANNEL_ANSWER C, then CHANNEL_BRIDGE with Unique-ID = B (Bridge-A B,
//     Bridge-B C): the consultation;
//   - completed (fs-att-xfer): phone 1001 hangs up: CHANNEL_HANGUP B, CHANNEL_UNBRIDGE B (from
//     C); att_xfer bridges C to A with uuid_bridge (which stops A's music: PLAYBACK_STOP A),
//     A's suspended bridge with B ends (CHANNEL_UNBRIDGE A, Bridge-B B), CHANNEL_EXECUTE
//     uuid_bridge on C and A, CHANNEL_BRIDGE with Unique-ID = C (Bridge-B A,
//     variable_att_xfer_result success); B's att_xfer returns (CHANNEL_EXECUTE_COMPLETE, up to
//     100 ms after the hangup: here after the bridge), then B's HANGUP_COMPLETE, mod_callcenter's
//     bridge-agent-end and member-queue-end (Terminated), CHANNEL_DESTROY B. The caller hangs
//     up 3 s later;
//   - cancelled (fs-att-xfer-cancel): phone 1002 hangs up during the consultation:
//     CHANNEL_HANGUP C, CHANNEL_UNBRIDGE B (from C), C's end; att_xfer puts B back with
//     uuid_bridge(B, A) (PLAYBACK_STOP A, CHANNEL_UNBRIDGE A, CHANNEL_EXECUTE_COMPLETE att_xfer
//     with variable_att_xfer_result success, CHANNEL_EXECUTE uuid_bridge, CHANNEL_BRIDGE with
//     Unique-ID = B, Bridge-B A); the caller hangs up 3 s later. The agent's cancel key (#,
//     attxfer_cancel_key) gives the same events with C's disposition send_bye;
//   - no answer (fs-att-xfer-no-answer, att_xfer::{leg_timeout=5}user/1002): C rings until
//     leg_timeout: CHANNEL_HANGUP C with ALLOTTED_TIMEOUT (send_cancel); att_xfer returns
//     without any bridge (CHANNEL_EXECUTE_COMPLETE att_xfer, no att_xfer_result), A's music
//     stops and B's suspended bridge with A simply resumes (no event); the caller hangs up
//     3 s later.

var updateAttXfer = flag.Bool("update-attxfer", false, "rewrite freeswitch/testdata/fs-att-xfer*.jsonl from their build")

// Legs of fs-blind-transfer, and the consultation leg the build adds.
const (
	xferA   = "8b2a7749-0a14-405d-9bb6-ccab1ff95b6a" // caller +15551230004
	xferB   = "5d53aea8-2dda-4d66-a756-d4c2367092a8" // agent 1001 (mod_callcenter leg)
	xferC0  = "0a90fb4f-b287-4343-875b-0ec4f75ee9c5" // the blind transfer's 1002 leg: template of C
	xferC   = "6c3e9a1f-42d7-4b85-9e10-7f5a2d8c3b64" // the consultation leg to 1002
	xferApp = "d2b7f0c4-8e35-4a19-b6d2-3c9e5f1a7b80" // Application-UUID of att_xfer
	xferMoh = "a41c6e2d-7b93-4f05-8d1e-92f3b5c07d16" // Application-UUID of the hold music on A
	xferCut = 11506                                  // t_ms of fs-blind-transfer's uuid_transfer
	holdMoh = "tone_stream://%(300,2700,440);loops=-1"
)

// attXferVariant is one built recording.
type attXferVariant struct {
	name string // file name without .esl.jsonl
	dial string // att_xfer's argument
	end  string // "complete", "cancel" or "noanswer"
}

var attXferVariants = []attXferVariant{
	{name: "fs-att-xfer", dial: "user/1002", end: "complete"},
	{name: "fs-att-xfer-cancel", dial: "user/1002", end: "cancel"},
	{name: "fs-att-xfer-no-answer", dial: "{leg_timeout=5}user/1002", end: "noanswer"},
}

// TestAttXferRecordingsAreBuilt: the committed att_xfer recordings are exactly what the build
// above gives.
func TestAttXferRecordingsAreBuilt(t *testing.T) {
	for _, v := range attXferVariants {
		esl, sim := buildAttXfer(t, v)
		for _, f := range []struct {
			path string
			data []byte
		}{
			{filepath.Join("testdata", v.name+".esl.jsonl"), esl},
			{filepath.Join("testdata", v.name+".sim.jsonl"), sim},
		} {
			if *updateAttXfer {
				if err := os.WriteFile(f.path, f.data, 0o644); err != nil {
					t.Fatal(err)
				}
				continue
			}
			got, err := os.ReadFile(f.path)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, f.data) {
				t.Errorf("%s differs from its build; run go test ./freeswitch/ -run TestAttXferRecordingsAreBuilt -update-attxfer", f.path)
			}
		}
	}
}

// hdrs is an event's headers being edited.
type hdrs []esl.Header

func (h hdrs) clone() hdrs { return append(hdrs(nil), h...) }

func (h hdrs) index(name string) int {
	for i, x := range h {
		if x.Name == name {
			return i
		}
	}
	return -1
}

func (h hdrs) get(name string) string {
	if i := h.index(name); i >= 0 {
		return h[i].Value
	}
	return ""
}

// set replaces the first header name, or appends it.
func (h hdrs) set(name, v string) hdrs {
	h = h.clone()
	if i := h.index(name); i >= 0 {
		h[i].Value = v
		return h
	}
	return append(h, esl.Header{Name: name, Value: v})
}

// setAfter replaces the first header name, or inserts it after anchor.
func (h hdrs) setAfter(anchor, name, v string) hdrs {
	h = h.clone()
	if i := h.index(name); i >= 0 {
		h[i].Value = v
		return h
	}
	i := h.index(anchor)
	if i < 0 {
		return append(h, esl.Header{Name: name, Value: v})
	}
	h = append(h, esl.Header{})
	copy(h[i+2:], h[i+1:])
	h[i+1] = esl.Header{Name: name, Value: v}
	return h
}

func (h hdrs) del(names ...string) hdrs {
	out := hdrs{}
	for _, x := range h {
		keep := true
		for _, n := range names {
			keep = keep && x.Name != n
		}
		if keep {
			out = append(out, x)
		}
	}
	return out
}

// setVar replaces variable_name, or adds it after the last variable.
func (h hdrs) setVar(name, v string) hdrs {
	h = h.clone()
	if i := h.index("variable_" + name); i >= 0 {
		h[i].Value = v
		return h
	}
	last := -1
	for i, x := range h {
		if strings.HasPrefix(x.Name, "variable_") {
			last = i
		}
	}
	if last < 0 {
		return append(h, esl.Header{Name: "variable_" + name, Value: v})
	}
	return h.setAfter(h[last].Name, "variable_"+name, v)
}

func (h hdrs) delVar(names ...string) hdrs {
	for _, n := range names {
		h = h.del("variable_" + n)
	}
	return h
}

// subst replaces old by new in every value.
func (h hdrs) subst(old, new string) hdrs {
	h = h.clone()
	for i := range h {
		h[i].Value = strings.ReplaceAll(h[i].Value, old, new)
	}
	return h
}

// otherLeg replaces the Other-Type and Other-Leg-* headers with typ and partner's caller
// profile (its Caller-* headers), after the Caller-* block, as switch_channel_event_set_data
// writes them.
func (h hdrs) otherLeg(typ string, partner hdrs) hdrs {
	out := hdrs{}
	for _, x := range h {
		if x.Name != "Other-Type" && !strings.HasPrefix(x.Name, "Other-Leg-") {
			out = append(out, x)
		}
	}
	last := -1
	for i, x := range out {
		if strings.HasPrefix(x.Name, "Caller-") {
			last = i
		}
	}
	block := hdrs{{Name: "Other-Type", Value: typ}}
	for _, x := range partner {
		n, ok := strings.CutPrefix(x.Name, "Caller-")
		if !ok || n == "Profile-Index" || n == "Transfer-Source" {
			continue
		}
		block = append(block, esl.Header{Name: "Other-Leg-" + n, Value: x.Value})
	}
	res := append(hdrs{}, out[:last+1]...)
	res = append(res, block...)
	return append(res, out[last+1:]...)
}

// data returns the channel data of h: from Channel-State to its last variable.
func (h hdrs) data() hdrs {
	start, end := h.index("Channel-State"), -1
	for i, x := range h {
		if strings.HasPrefix(x.Name, "variable_") {
			end = i
		}
	}
	if start < 0 || end < start {
		panic("no channel data in event " + h.get("Event-Name"))
	}
	return h[start : end+1].clone()
}

// hangup marks channel data as hung up with cause.
func (h hdrs) hangup(cause, q850, disposition string) hdrs {
	h = h.set("Answer-State", "hangup").setAfter("Answer-State", "Hangup-Cause", cause)
	h = h.setVar("hangup_cause", cause).setVar("hangup_cause_q850", q850)
	if disposition != "" {
		h = h.setVar("sip_hangup_disposition", disposition)
	}
	return h
}

// xferBuild builds one recording.
type xferBuild struct {
	t         testing.TB
	dir       string // shared/fixtures/freeswitch-1.10
	base      []capture.Record
	prefix    []byte // verbatim lines of the base recording
	simPrefix []byte
	evs       map[int]hdrs // base events by record index
	out       []capture.Record
	sim       []capture.Record
	seq       int   // last Event-Sequence used
	origin    int64 // Event-Date-Timestamp (µs) at t_ms 0
	k         kinds
}

func newXferBuild(t testing.TB) *xferBuild {
	b := &xferBuild{t: t, dir: fixtures.Dir(t, "freeswitch-1.10"), base: records(t, "fs-blind-transfer"), evs: map[int]hdrs{}}
	for i, r := range b.base {
		if r.Dir != capture.DirIn {
			continue
		}
		f, err := esl.ParseFrame(r.Raw)
		if err != nil {
			t.Fatal(err)
		}
		if !f.IsEvent() || f.ContentType() != "text/event-plain" {
			continue
		}
		ev, err := f.Event()
		if err != nil {
			t.Fatal(err)
		}
		// The build writes events with EncodePlain: it must give back the recorded bytes.
		if got := "Content-Length: " + strconv.Itoa(len(ev.EncodePlain())) + "\nContent-Type: text/event-plain\n\n" + ev.EncodePlain(); got != r.Raw {
			t.Fatalf("record %d does not re-encode to its recorded bytes", i)
		}
		b.evs[i] = hdrs(ev.Headers).clone()
	}
	return b
}

// ev returns a copy of the base event of kind name on leg uid (the nth, from 1).
func (b *xferBuild) ev(name, uid string, nth int) hdrs {
	b.t.Helper()
	for i := range b.base {
		h, ok := b.evs[i]
		if !ok || h.get("Event-Name") != name || h.get("Unique-ID") != uid {
			continue
		}
		if nth--; nth == 0 {
			return h.clone()
		}
	}
	b.t.Fatalf("fs-blind-transfer has no %s #%d for %s", name, nth, uid)
	return nil
}

// envelope returns the headers of kind up to Event-Sequence, and its Event-Subclass.
func envelope(kind hdrs) hdrs {
	i := kind.index("Event-Sequence")
	return kind[:i+1].clone()
}

// compose is an event with kind's envelope, then pre, the channel data, then post.
func compose(kind hdrs, pre hdrs, data hdrs, post hdrs) hdrs {
	h := envelope(kind)
	h = append(h, pre...)
	h = append(h, data...)
	return append(h, post...)
}

// keep takes the base recording's lines verbatim up to its first command at or after upTo,
// and its simulator notes before upTo.
func (b *xferBuild) keep(upTo int64) {
	b.t.Helper()
	lines := bytes.SplitAfter(readFile(b.t, filepath.Join(b.dir, "fs-blind-transfer.esl.jsonl")), []byte("\n"))
	for i, r := range b.base {
		if r.TMs >= upTo && r.Dir == capture.DirOut {
			break
		}
		b.prefix = append(b.prefix, lines[i]...)
		if h, ok := b.evs[i]; ok {
			if n, err := strconv.Atoi(h.get("Event-Sequence")); err == nil && n > b.seq {
				b.seq = n
			}
		}
	}
	// The clock: the Event-Date-Timestamp of the first event after the cut, less its t_ms.
	for i, r := range b.base {
		if h, ok := b.evs[i]; ok && r.TMs >= upTo {
			ts, err := strconv.ParseInt(h.get("Event-Date-Timestamp"), 10, 64)
			if err != nil {
				b.t.Fatal(err)
			}
			b.origin = ts - r.TMs*1000
			break
		}
	}
	for _, line := range bytes.SplitAfter(readFile(b.t, filepath.Join(b.dir, "fs-blind-transfer.sim.jsonl")), []byte("\n")) {
		var r capture.Record
		if len(bytes.TrimSpace(line)) == 0 || json.Unmarshal(line, &r) != nil {
			continue
		}
		if r.TMs < upTo {
			b.simPrefix = append(b.simPrefix, line...)
		}
	}
}

func readFile(t testing.TB, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// emit appends event h at t_ms at, with its date and the next Event-Sequence.
func (b *xferBuild) emit(at int64, h hdrs) {
	b.seq++
	us := b.origin + at*1000
	tm := time.UnixMicro(us).UTC()
	h = h.set("Event-Date-Local", tm.Format("2006-01-02 15:04:05")).
		set("Event-Date-GMT", tm.Format("Mon, 02 Jan 2006 15:04:05 GMT")).
		set("Event-Date-Timestamp", strconv.FormatInt(us, 10)).
		set("Event-Sequence", strconv.Itoa(b.seq))
	body := esl.NewEvent("", flat(h)...).EncodePlain()
	b.out = append(b.out, capture.Record{TMs: at, Dir: capture.DirIn,
		Raw: "Content-Length: " + strconv.Itoa(len(body)) + "\nContent-Type: text/event-plain\n\n" + body})
}

func flat(h hdrs) []string {
	out := make([]string, 0, 2*len(h))
	for _, x := range h {
		out = append(out, x.Name, x.Value)
	}
	return out
}

func (b *xferBuild) note(at int64, kind, detail string) {
	b.sim = append(b.sim, capture.Record{TMs: at, Sim: kind, Detail: detail})
}

// api appends a command of the recording client and its api/response.
func (b *xferBuild) api(at int64, cmd, reply string) {
	b.out = append(b.out,
		capture.Record{TMs: at, Dir: capture.DirOut, Raw: "api " + cmd + "\n\n"},
		capture.Record{TMs: at + 1, Dir: capture.DirIn, Raw: "Content-Type: api/response\nContent-Length: " + strconv.Itoa(len(reply)) + "\n\n" + reply})
	verb, arg, _ := strings.Cut(cmd, " ")
	b.emit(at+1, b.ev("API", "", 1).set("API-Command", verb).set("API-Command-Argument", arg))
}

// exit appends the recording client's exit, as every recording ends.
func (b *xferBuild) exit(at int64) {
	b.out = append(b.out,
		capture.Record{TMs: at, Dir: capture.DirOut, Raw: "exit\n\n"},
		capture.Record{TMs: at, Dir: capture.DirIn, Raw: "Content-Type: command/reply\nReply-Text: +OK bye\n\n"},
		capture.Record{TMs: at, Dir: capture.DirIn, Raw: "Content-Type: text/disconnect-notice\nContent-Length: 67\n\nDisconnected, goodbye.\nSee you at ClueCon! http://www.cluecon.com/\n"},
		capture.Record{TMs: at, Dir: capture.DirEOF})
}

// files returns the built .esl.jsonl and .sim.jsonl contents.
func (b *xferBuild) files() (eslFile, simFile []byte) {
	sort.SliceStable(b.sim, func(i, j int) bool { return b.sim[i].TMs < b.sim[j].TMs })
	return append(slices.Clone(b.prefix), marshalRecords(b.t, b.out)...), append(slices.Clone(b.simPrefix), marshalRecords(b.t, b.sim)...)
}

func marshalRecords(t testing.TB, recs []capture.Record) []byte {
	var buf bytes.Buffer
	for _, r := range recs {
		var line bytes.Buffer
		enc := json.NewEncoder(&line)
		enc.SetEscapeHTML(false)
		var err error
		if r.Sim != "" {
			err = enc.Encode(struct {
				TMs    int64  `json:"t_ms"`
				Sim    string `json:"sim"`
				Detail string `json:"detail"`
			}{r.TMs, r.Sim, r.Detail})
		} else {
			err = enc.Encode(struct {
				TMs int64  `json:"t_ms"`
				Dir string `json:"dir"`
				Raw string `json:"raw"`
			}{r.TMs, r.Dir, r.Raw})
		}
		if err != nil {
			t.Fatal(err)
		}
		buf.Write(line.Bytes())
	}
	return buf.Bytes()
}

// kinds are base events whose envelope (Event-Name, Event-Calling-*) the build reuses.
type kinds struct {
	exec, execDone, bridge, unbridge, hangup, hangupComplete, destroy, update, uuidBridge, playStart, playStop hdrs
	agentEnd, memberEnd, waiting                                                                               hdrs
}

func (b *xferBuild) kinds() kinds {
	find := func(name, uid, key, value string) hdrs {
		for i := 1; ; i++ {
			if h := b.ev(name, uid, i); key == "" || h.get(key) == value {
				return h
			}
		}
	}
	k := kinds{
		exec:           b.ev("CHANNEL_EXECUTE", xferA, 1),
		execDone:       b.ev("CHANNEL_EXECUTE_COMPLETE", xferA, 1),
		bridge:         b.ev("CHANNEL_BRIDGE", xferA, 1),
		unbridge:       b.ev("CHANNEL_UNBRIDGE", xferA, 1),
		hangup:         b.ev("CHANNEL_HANGUP", xferB, 1),
		hangupComplete: b.ev("CHANNEL_HANGUP_COMPLETE", xferB, 1),
		destroy:        b.ev("CHANNEL_DESTROY", xferB, 1),
		update:         b.ev("CALL_UPDATE", xferA, 1),
		uuidBridge:     find("CHANNEL_EXECUTE", xferA, "Application", "uuid_bridge"),
		playStart:      b.ev("PLAYBACK_START", xferA, 1),
		playStop:       b.ev("PLAYBACK_STOP", xferA, 1),
		agentEnd:       find("CUSTOM", xferB, "CC-Action", "bridge-agent-end"),
		memberEnd:      find("CUSTOM", xferA, "CC-Action", "member-queue-end"),
		waiting:        find("CUSTOM", "", "CC-Agent-State", "Waiting"),
	}
	return k
}

func (b *xferBuild) bridgeEv(at int64, kind, data hdrs, aleg, bleg string) {
	b.emit(at, compose(kind, hdrs{{Name: "Bridge-A-Unique-ID", Value: aleg}, {Name: "Bridge-B-Unique-ID", Value: bleg}}, data, nil))
}

func (b *xferBuild) execEv(at int64, data hdrs, app, arg, id string) {
	b.emit(at, compose(b.k.exec, nil, data, hdrs{{Name: "Application", Value: app}, {Name: "Application-Data", Value: arg}, {Name: "Application-UUID", Value: id}}))
}

func (b *xferBuild) execDoneEv(at int64, data hdrs, app, arg, resp, id string) {
	b.emit(at, compose(b.k.execDone, nil, data, hdrs{{Name: "Application", Value: app}, {Name: "Application-Data", Value: arg},
		{Name: "Application-Response", Value: resp}, {Name: "Application-UUID", Value: id}}))
}

// music emits the start (status "") or stop of A's hold music.
func (b *xferBuild) music(at int64, a hdrs, status string) {
	post := hdrs{{Name: "Playback-File-Type", Value: "tone_stream"}, {Name: "Playback-File-Path", Value: holdMoh}}
	if status == "" {
		b.execEv(at, a, "playback", holdMoh, xferMoh)
		b.emit(at, compose(b.k.playStart, nil, a, post))
		return
	}
	b.emit(at, compose(b.k.playStop, nil, a, append(post, esl.Header{Name: "Playback-Status", Value: status})))
	b.execDoneEv(at, a, "playback", holdMoh, "FILE PLAYED", xferMoh)
}

func (b *xferBuild) callUpdate(at int64, data, to hdrs, name, num string) {
	pre := hdrs{{Name: "Direction", Value: "SEND"}, {Name: "Sent-Callee-ID-Name", Value: name},
		{Name: "Sent-Callee-ID-Number", Value: num}, {Name: "Bridged-To", Value: to.get("Unique-ID")}}
	b.emit(at, compose(b.k.update, pre, data, nil))
}

// ended emits the CHANNEL_HANGUP_COMPLETE or CHANNEL_DESTROY of hung-up data.
func (b *xferBuild) ended(at int64, kind, data hdrs) {
	var pre hdrs
	if kind.get("Event-Name") == "CHANNEL_HANGUP_COMPLETE" {
		pre = hdrs{{Name: "Hangup-Cause", Value: data.get("Hangup-Cause")}}
	}
	b.emit(at, compose(kind, pre, data.set("Channel-State", "CS_REPORTING"), nil))
}

// uuidBridge is att_xfer's call of switch_ivr_uuid_bridge(orig, dest) at t_ms at: it sets
// both legs' transfer source and bridge variables at once (returned); the bridge itself
// follows once both legs are free (uuidBridged).
func (b *xferBuild) uuidBridge(at int64, orig, dest hdrs) (hdrs, hdrs) {
	o, d := orig.get("Unique-ID"), dest.get("Unique-ID")
	src := strconv.FormatInt((b.origin+at*1000)/1e6, 10) + ":"
	orig = orig.set("Caller-Transfer-Source", src+o+":uuid_br:"+d).setVar("transfer_source", src+o+":uuid_br:"+d).
		otherLeg("originatee", dest).set("Channel-Call-UUID", o).setVar("call_uuid", o).
		setVar("signal_bond", d).setVar("bridge_uuid", d).setVar("last_bridge_to", d)
	dest = dest.set("Caller-Transfer-Source", src+d+":uuid_br:"+o).setVar("transfer_source", src+d+":uuid_br:"+o).
		otherLeg("originator", orig).set("Channel-Call-UUID", o).setVar("call_uuid", o).
		setVar("signal_bond", o).setVar("bridge_uuid", o).setVar("last_bridge_to", o)
	return orig, dest
}

// uuidBridged emits the bridge of uuidBridge's legs: CHANNEL_EXECUTE uuid_bridge on both,
// CHANNEL_BRIDGE with Unique-ID = orig, then the CALL_UPDATEs, as mod_callcenter's uuid_bridge
// in fs-blind-transfer.
func (b *xferBuild) uuidBridged(at int64, orig, dest hdrs, origName, origNum, destName, destNum string) {
	o, d := orig.get("Unique-ID"), dest.get("Unique-ID")
	b.emit(at, compose(b.k.uuidBridge, nil, orig, hdrs{{Name: "Application", Value: "uuid_bridge"}, {Name: "Application-Data", Value: d}}))
	b.emit(at, compose(b.k.uuidBridge, nil, dest, hdrs{{Name: "Application", Value: "uuid_bridge"}, {Name: "Application-Data", Value: o}}))
	b.bridgeEv(at+1, b.k.bridge, orig, o, d)
	b.callUpdate(at+21, orig, dest, destName, destNum)
	b.callUpdate(at+21, dest, orig, origName, origNum)
}

// callerHangsUp: the caller A hangs up while bridged to x, the A side of the bridge; x
// follows (no dialplan left after the bridge), and the phone's leg ends.
func (b *xferBuild) callerHangsUp(e int64, a, x hdrs, phone string, cc bool) {
	b.note(e-20, "caller-hangs-up", "the caller hangs up (simulator sends BYE)")
	a = a.hangup("NORMAL_CLEARING", "16", "recv_bye")
	x = x.hangup("NORMAL_CLEARING", "16", "send_bye")
	b.emit(e, compose(b.k.hangup, nil, a, nil))
	b.bridgeEv(e+20, b.k.unbridge, x.setVar("bridge_hangup_cause", "NORMAL_CLEARING"), x.get("Unique-ID"), xferA)
	b.emit(e+20, compose(b.k.hangup, nil, x, nil))
	b.ended(e+20, b.k.hangupComplete, x)
	b.ended(e+21, b.k.hangupComplete, a)
	if cc {
		b.ccEnd(e+40, x, a)
	}
	b.ended(e+41, b.k.destroy, x)
	b.ended(e+41, b.k.destroy, a)
	b.note(e+1, "leg-ended", "caller +15551230004 leg ended: NORMAL_CLEARING, sip_hangup_disposition=send_bye")
	b.note(e+41, "leg-ended", "phone "+phone+" leg ended: NORMAL_CLEARING, sip_hangup_disposition=recv_bye")
}

// ccEnd: mod_callcenter closes the queue call after the agent's leg ended (bridge-agent-end
// with B's channel data, member-queue-end with A's, agent 1001 Waiting), as recorded.
func (b *xferBuild) ccEnd(at int64, bd, a hdrs) {
	post := func(h hdrs) hdrs { return h[h.index("CC-Queue"):].clone() }
	secs := strconv.FormatInt((b.origin+at*1000)/1e6, 10)
	b.emit(at, compose(b.k.agentEnd, nil, bd.set("Channel-State", "CS_REPORTING"), post(b.k.agentEnd).set("CC-Bridge-Terminated-Time", secs)))
	b.emit(at, compose(b.k.memberEnd, nil, a, post(b.k.memberEnd).set("CC-Member-Leaving-Time", secs)))
	b.emit(at, b.k.waiting.clone())
}

// buildAttXfer builds variant v: the .esl.jsonl and .sim.jsonl contents.
func buildAttXfer(t testing.TB, v attXferVariant) (eslFile, simFile []byte) {
	b := newXferBuild(t)
	b.keep(xferCut)
	b.k = b.kinds()

	// Channel data of A and B as last recorded before the cut (their CALL_UPDATE after
	// mod_callcenter's uuid_bridge), and of C from the blind transfer's 1002 leg, which c
	// turns into the consultation leg: its originator is B, not A, and it has none of the
	// caller's exported variables.
	a := b.ev("CALL_UPDATE", xferA, 1).data()
	bd := b.ev("CALL_UPDATE", xferB, 1).data()
	c := func(name string, nth int) hdrs {
		h := b.ev(name, xferC0, nth).subst(xferC0, xferC).subst(xferA, xferB)
		if h.index("Other-Type") >= 0 {
			h = h.otherLeg("originator", bd)
		}
		return h.del("Caller-RDNIS").delVar("export_vars", "cti_tenant", "cti_dnis", "ivr_lang", "ivr_reason", "ivr_account")
	}

	// 1. The recording client starts att_xfer on the agent's leg. switch_ivr_parse_event on B
	// reads 5 lead frames (100 ms), then hold-bleg: A plays the hold music (as uuid_hold
	// does in fs-hold), then B runs att_xfer.
	t0 := int64(xferCut)
	b.note(t0, "cti-action", "uuid_broadcast <agent 1001 leg> att_xfer::"+v.dial+" (no leg argument: aleg|holdb)")
	b.api(t0, "uuid_broadcast "+xferB+" att_xfer::"+v.dial, "+OK Message sent\n")
	b.music(t0+103, a, "")
	b.execEv(t0+104, bd, "att_xfer", v.dial, xferApp)
	bd = bd.setVar("soft_holding_uuid", xferA)

	// 2. att_xfer's thread originates C from B; 1002 rings.
	b.emit(t0+105, c("CHANNEL_OUTGOING", 1))
	b.emit(t0+105, c("CHANNEL_STATE", 1))
	create := c("CHANNEL_CREATE", 1)
	b.emit(t0+120, create)
	b.emit(t0+120, c("CHANNEL_ORIGINATE", 1))
	b.emit(t0+120, c("CHANNEL_STATE", 2))
	b.emit(t0+121, c("PRESENCE_IN", 1))
	b.emit(t0+121, c("CHANNEL_STATE", 3))
	b.emit(t0+121, c("CHANNEL_PROGRESS", 1))
	b.emit(t0+121, c("CHANNEL_CALLSTATE", 1))
	b.note(t0+115, "phone-ringing", "phone 1002 rings (180 Ringing sent to the PBX)")

	if v.end == "noanswer" {
		// 3n. leg_timeout (5 s, checked once a second) ends C; the originate fails, att_xfer
		// returns within 100 ms; B's hold-bleg stops A's music; the suspended bridge of A and
		// B resumes without an event.
		h := t0 + 6121
		cd := create.data().set("Channel-State", "CS_CONSUME_MEDIA").set("Channel-Call-State", "RINGING").
			hangup("ALLOTTED_TIMEOUT", "602", "send_cancel")
		b.emit(h, compose(b.k.hangup, nil, cd, nil))
		b.ended(h+1, b.k.hangupComplete, cd)
		b.ended(h+1, b.k.destroy, cd)
		b.note(h+2, "leg-ended", "phone 1002 leg ended: ORIGINATOR_CANCEL (the PBX sent CANCEL)")
		bd = bd.delVar("soft_holding_uuid").setVar("signal_bond", xferA).
			setVar("originate_disposition", "ALLOTTED_TIMEOUT").setVar("originate_failed_cause", "ALLOTTED_TIMEOUT")
		b.execDoneEv(h+64, bd, "att_xfer", v.dial, "_none_", xferApp)
		b.music(h+65, a, "break")
		b.callerHangsUpFromB(h+3000, a, bd)
		b.exit(h + 6000)
		return b.files()
	}

	// 3. 1002 answers: the consultation bridge, B (A side) to C.
	ans := t0 + 2131
	b.note(ans-2, "agent-answered", "phone 1002 answered (200 OK)")
	b.emit(ans, c("CODEC", 1))
	b.emit(ans, c("CODEC", 2))
	answer := c("CHANNEL_ANSWER", 1)
	b.emit(ans, answer)
	b.emit(ans, c("PRESENCE_IN", 2))
	b.emit(ans, c("CHANNEL_CALLSTATE", 2))
	b.emit(ans, c("CHANNEL_OUTGOING", 2))
	cd := answer.data().set("Channel-State", "CS_EXCHANGE_MEDIA").set("Channel-Call-State", "ACTIVE")
	bd = bd.otherLeg("originatee", cd).setVar("last_bridge_to", xferC).setVar("bridge_uuid", xferC)
	b.bridgeEv(ans, b.k.bridge, bd.set("Channel-Call-UUID", xferB), xferB, xferC)
	b.emit(ans+1, c("CHANNEL_STATE", 4))
	cd = cd.set("Channel-Call-UUID", xferB).setVar("call_uuid", xferB).setVar("signal_bond", xferB).setVar("bridge_uuid", xferB)
	b.callUpdate(ans+20, cd, bd, "Outbound Call", "1001")
	b.callUpdate(ans+20, bd, cd, "Outbound Call", "1002")

	h := ans + 3020 // three seconds of consultation
	if v.end == "cancel" {
		// 4c. Phone 1002 hangs up: att_xfer bridges B back to A with uuid_bridge(B, A),
		// which stops A's music and ends A's suspended bridge with B; att_xfer returns.
		b.note(h-20, "agent-hangs-up", "phone 1002 hangs up (simulator sends BYE)")
		cd = cd.hangup("NORMAL_CLEARING", "16", "recv_bye")
		b.emit(h, compose(b.k.hangup, nil, cd, nil))
		b.bridgeEv(h+1, b.k.unbridge, bd.setVar("bridge_hangup_cause", "NORMAL_CLEARING"), xferB, xferC)
		b.ended(h+1, b.k.hangupComplete, cd)
		b.ended(h+1, b.k.destroy, cd)
		b.note(h+2, "leg-ended", "phone 1002 leg ended: NORMAL_CLEARING, sip_hangup_disposition=send_bye")
		bd, a = b.uuidBridge(h+19, bd.delVar("soft_holding_uuid").setVar("att_xfer_result", "success"), a)
		b.music(h+20, a, "break")
		b.bridgeEv(h+21, b.k.unbridge, a, xferA, xferB)
		b.execDoneEv(h+64, bd, "att_xfer", v.dial, "_none_", xferApp)
		b.uuidBridged(h+81, bd, a, "1001", "1001", "Alice Brown", "+15551230004")
		// 5c. The caller hangs up; B (now the A side of the bridge) follows.
		b.callerHangsUp(h+3000, a, bd, "1001", true)
		b.exit(h + 6000)
		return b.files()
	}

	// 4. Phone 1001 hangs up: att_xfer bridges C to A with uuid_bridge(C, A), which stops
	// A's music and ends A's suspended bridge with B.
	b.note(h-20, "agent-hangs-up", "phone 1001 hangs up (simulator sends BYE)")
	bd = bd.hangup("NORMAL_CLEARING", "16", "recv_bye")
	b.emit(h, compose(b.k.hangup, nil, bd, nil))
	b.bridgeEv(h+1, b.k.unbridge, bd.setVar("bridge_hangup_cause", "NORMAL_CLEARING"), xferB, xferC)
	cd, a = b.uuidBridge(h+19, cd.setVar("att_xfer_result", "success"), a)
	b.music(h+20, a, "break")
	b.bridgeEv(h+21, b.k.unbridge, a.setVar("last_bridge_hangup_cause", "NORMAL_CLEARING"), xferA, xferB)
	b.uuidBridged(h+61, cd, a, "1002", "1002", "Alice Brown", "+15551230004")
	// B's att_xfer notices the hangup (it polls every 100 ms), then B's state machine ends it;
	// mod_callcenter closes the queue call as after the blind transfer.
	bd = bd.delVar("soft_holding_uuid")
	b.execDoneEv(h+90, bd, "att_xfer", v.dial, "_none_", xferApp)
	b.ended(h+91, b.k.hangupComplete, bd)
	b.ccEnd(h+108, bd, a)
	b.ended(h+108, b.k.destroy, bd)
	b.note(h+92, "leg-ended", "phone 1001 leg ended: NORMAL_CLEARING, sip_hangup_disposition=send_bye")
	// 5. The caller hangs up; C (the A side of the new bridge) follows.
	b.callerHangsUp(h+3000, a, cd, "1002", false)
	b.exit(h + 6000)
	return b.files()
}

// callerHangsUpFromB: the caller hangs up while bridged to B by mod_callcenter's uuid_bridge
// (A the A side), as at the end of fs-inbound-answered.
func (b *xferBuild) callerHangsUpFromB(e int64, a, bd hdrs) {
	b.note(e-20, "caller-hangs-up", "the caller hangs up (simulator sends BYE)")
	a = a.hangup("NORMAL_CLEARING", "16", "recv_bye")
	bd = bd.hangup("NORMAL_CLEARING", "16", "send_bye")
	b.emit(e, compose(b.k.hangup, nil, a, nil))
	b.emit(e, compose(b.k.hangup, nil, bd, nil))
	b.bridgeEv(e+1, b.k.unbridge, a, xferA, xferB)
	b.ended(e+1, b.k.hangupComplete, bd)
	b.ended(e+1, b.k.hangupComplete, a)
	b.ccEnd(e+100, bd, a)
	b.ended(e+101, b.k.destroy, bd)
	b.ended(e+101, b.k.destroy, a)
	b.note(e+1, "leg-ended", "caller +15551230004 leg ended: NORMAL_CLEARING, sip_hangup_disposition=send_bye")
	b.note(e+41, "leg-ended", "phone 1001 leg ended: NORMAL_CLEARING, sip_hangup_disposition=recv_bye")
}
