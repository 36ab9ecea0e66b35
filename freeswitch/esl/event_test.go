package esl_test

import (
	"strings"
	"testing"

	"github.com/callbridge/callbridge/freeswitch/esl"
)

// events returns every event of a recording, parsed.
func events(t testing.TB, name string) []*esl.Event {
	t.Helper()
	var out []*esl.Event
	for _, raw := range received(recording(t, name)) {
		f, err := esl.ParseFrame(raw)
		if err != nil {
			t.Fatal(err)
		}
		if !f.IsEvent() {
			continue
		}
		ev, err := f.Event()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		out = append(out, ev)
	}
	return out
}

// TestPlainAndJSONAgree: fs-inbound-answered and fs-inbound-answered-json are the same
// scenario (README); the same kinds of events, decoded, give the same values for the headers
// a driver reads, including the URL-encoded Event-Subclass and multi-value variables.
func TestPlainAndJSONAgree(t *testing.T) {
	plain := events(t, "fs-inbound-answered")
	js := events(t, "fs-inbound-answered-json")
	if len(plain) != 113 || len(js) != 113 {
		t.Fatalf("%d plain and %d JSON events, want 113 each (README table)", len(plain), len(js))
	}
	first := func(evs []*esl.Event, name, action string) *esl.Event {
		for _, e := range evs {
			if e.Name() == name && e.Get("CC-Action") == action {
				return e
			}
		}
		t.Fatalf("no %s %s", name, action)
		return nil
	}
	for _, k := range []struct{ name, action string }{
		{"CHANNEL_CREATE", ""}, {"CHANNEL_BRIDGE", ""}, {"CUSTOM", "member-queue-start"},
		{"CUSTOM", "bridge-agent-start"}, {"CHANNEL_HANGUP_COMPLETE", ""},
	} {
		p, j := first(plain, k.name, k.action), first(js, k.name, k.action)
		for _, h := range []string{"Event-Subclass", "Caller-Caller-ID-Name", "Caller-Caller-ID-Number", "Caller-Destination-Number", "Call-Direction", "CC-Queue", "variable_ivr_reason", "variable_cti_tenant"} {
			pv, pok := p.Lookup(h)
			jv, jok := j.Lookup(h)
			if pok != jok {
				t.Errorf("%s %s %s: present plain=%v json=%v", k.name, k.action, h, pok, jok)
			}
			if h == "Caller-Caller-ID-Name" && pv != "John Smith" {
				t.Errorf("plain %s = %q, want John Smith (decoded)", h, pv)
			}
			if h == "Event-Subclass" && pok && pv != "callcenter::info" {
				t.Errorf("plain Event-Subclass = %q, want callcenter::info (decoded from callcenter%%3A%%3Ainfo)", pv)
			}
			_ = jv
		}
		if dp := j.Get("variable_DP_MATCH"); dp != "" && dp != p.Get("variable_DP_MATCH") {
			t.Errorf("%s: DP_MATCH json %q, plain %q", k.name, dp, p.Get("variable_DP_MATCH"))
		}
	}
	if got := first(plain, "CHANNEL_CREATE", "").Get("variable_DP_MATCH"); got != "" && !strings.HasPrefix(got, "ARRAY::") {
		t.Errorf("plain DP_MATCH = %q", got)
	}
}

// TestBackgroundJobBody: a plain event with its own Content-Length body (fs-click-to-call).
func TestBackgroundJobBody(t *testing.T) {
	for _, e := range events(t, "fs-click-to-call") {
		if e.Name() != "BACKGROUND_JOB" {
			continue
		}
		if e.Body != "+OK af1ad743-8ea0-4f53-bd88-dd628245d045\n" || e.Get("Job-UUID") != "70507f10-f8e3-496e-9bab-5119fd29a866" {
			t.Fatalf("BACKGROUND_JOB body %q job %q", e.Body, e.Get("Job-UUID"))
		}
		if !strings.HasPrefix(e.Get("Job-Command-Arg"), "{origination_uuid=af1ad743") {
			t.Fatalf("Job-Command-Arg not decoded: %q", e.Get("Job-Command-Arg"))
		}
		return
	}
	t.Fatal("no BACKGROUND_JOB in fs-click-to-call")
}

// TestEncodeRoundTrip: every recorded event survives EncodePlain → ParsePlain and
// EncodeJSON → ParseJSON with the same headers and body.
func TestEncodeRoundTrip(t *testing.T) {
	for _, name := range []string{"fs-inbound-answered", "fs-inbound-answered-json", "fs-click-to-call", "fs-hold"} {
		for _, e := range events(t, name) {
			p, err := esl.ParsePlain(e.EncodePlain())
			if err != nil {
				t.Fatal(err)
			}
			j, err := esl.ParseJSON([]byte(e.EncodeJSON()))
			if err != nil {
				t.Fatal(err)
			}
			for _, got := range []*esl.Event{p, j} {
				if got.Body != e.Body {
					t.Fatalf("%s %s: body %q, want %q", name, e.Name(), got.Body, e.Body)
				}
				var want []esl.Header
				for _, h := range e.Headers {
					if h.Name != "Content-Length" {
						want = append(want, h)
					}
				}
				var have []esl.Header
				for _, h := range got.Headers {
					if h.Name != "Content-Length" {
						have = append(have, h)
					}
				}
				if len(have) != len(want) {
					t.Fatalf("%s %s: %d headers, want %d", name, e.Name(), len(have), len(want))
				}
				for i, h := range want {
					if have[i] != h {
						t.Fatalf("%s %s: header %d = %q, want %q", name, e.Name(), i, have[i], h)
					}
				}
				if got.Name() != e.Name() {
					t.Fatalf("%s: name %q, want %q", name, got.Name(), e.Name())
				}
			}
		}
	}
}

func TestURLDecode(t *testing.T) {
	cases := map[string]string{
		"%2B15551230001":       "+15551230001",
		"John%20Smith":         "John Smith",
		"callcenter%3A%3Ainfo": "callcenter::info",
		"a+b":                  "a+b", // switch_url_decode leaves '+' alone
		"100%":                 "100%",
		"%zz%4":                "%zz%4",
		"":                     "",
	}
	for in, want := range cases {
		if got := esl.URLDecode(in); got != want {
			t.Errorf("URLDecode(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestArrayValues(t *testing.T) {
	got := esl.ArrayValues("ARRAY::18005550100|:18005550100")
	if len(got) != 2 || got[0] != "18005550100" || got[1] != "18005550100" {
		t.Fatalf("ArrayValues = %q", got)
	}
	if got := esl.ArrayValues("plain"); len(got) != 1 || got[0] != "plain" {
		t.Fatalf("ArrayValues(plain) = %q", got)
	}
}
