package remote

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"

	"github.com/callbridge/callbridge"
)

// TestDecodeRequest: what each endpoint accepts and refuses.
func TestDecodeRequest(t *testing.T) {
	cases := []struct {
		ep, timeout, body string
		want              string // "" for accepted, else a part of the EInvalid message
	}{
		{epDo, "", `{"cmd":"answer_call","tenant":"demo","agent":"a1","role":"agent","call_id":"c1","idempotency_key":"k"}`, ""},
		{epDo, "2500", `{"cmd":"answer_call","tenant":"demo"}`, ""},
		{epDo, "", `{"cmd":"answer_call"}`, "needs cmd and tenant"},
		{epDo, "", `{"cmd":"answer_call","tenant":"demo","sneaky":1}`, "unknown field"},
		{epDo, "", `{"cmd":"answer_call","tenant":"demo"} {}`, "data after"},
		{epDo, "", `{"cmd":`, "malformed do"},
		{epDo, "", `[]`, "malformed do"},
		{epDo, "0", `{"cmd":"answer_call","tenant":"demo"}`, "positive number"},
		{epDo, "-5", `{"cmd":"answer_call","tenant":"demo"}`, "positive number"},
		{epDo, "1s", `{"cmd":"answer_call","tenant":"demo"}`, "positive number"},
		{epSnapshot, "", `{"tenant":"demo","agent":"a1"}`, ""},
		{epSnapshot, "", `{"tenant":"demo"}`, "needs tenant and agent"},
		{epAvailability, "", `{"tenant":"demo","agent":"a1","x":2}`, "unknown field"},
		{epPresence, "", `{"op":"attached","tenant":"demo","agent":"a1","desktop":"gw-1"}`, ""},
		{epPresence, "", `{"op":"heartbeats","agents":[{"tenant":"demo","agent":"a1"}],"desktop":"gw-1"}`, ""},
		{epPresence, "", `{"op":"heartbeats","agents":[],"desktop":"gw-1"}`, ""},
		{epPresence, "", `{"op":"heartbeats","agents":[{"tenant":"demo"}],"desktop":"gw-1"}`, "every agent needs"},
		{epPresence, "", `{"op":"heartbeats","tenant":"demo","agent":"a1","desktop":"gw-1"}`, "takes agents"},
		{epPresence, "", `{"op":"attached","tenant":"demo","agent":"a1","agents":[],"desktop":"gw-1"}`, "no agents"},
		{epPresence, "", `{"op":"attached","tenant":"demo","agent":"a1","desktop":""}`, "desktop id"},
		{epPresence, "", `{"op":"attached","tenant":"demo","agent":"a1","desktop":"gw\n1"}`, "desktop id"},
		{epPresence, "", `{"op":"attached","tenant":"demo","agent":"a1","desktop":"` + strings.Repeat("d", 129) + `"}`, "desktop id"},
		{epPresence, "", `{"op":"dance","tenant":"demo","agent":"a1","desktop":"gw-1"}`, "not one of"},
		{epReady, "", ``, ""},
		{epReady, "", `{}`, "no body"},
		{"shutdown", "", ``, "unknown endpoint"},
		{epDo, "", `"` + strings.Repeat("x", MaxRequestBytes) + `"`, "over the limit"},
	}
	for _, tc := range cases {
		hdr := natsgo.Header{}
		if tc.timeout != "" {
			hdr.Set(TimeoutHeader, tc.timeout)
		}
		r, err := decodeRequest(tc.ep, hdr, []byte(tc.body))
		if tc.want == "" {
			if err != nil {
				t.Errorf("%s %.60s: %v", tc.ep, tc.body, err)
			}
			continue
		}
		if callbridge.ErrorCode(err) != callbridge.EInvalid || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s %.60s: error %v, want invalid with %q (request %+v)", tc.ep, tc.body, err, tc.want, r)
		}
	}
	r, err := decodeRequest(epDo, natsgo.Header{TimeoutHeader: {"999999999"}}, []byte(`{"cmd":"answer_call","tenant":"demo"}`))
	if err != nil || r.timeout != MaxTimeout {
		t.Fatalf("a long timeout = %v, %v; want it capped at %v", r.timeout, err, MaxTimeout)
	}
}

// TestDecodeReply: replies become the value or the *callbridge.Error they carry; anything
// else is an error that is not a *callbridge.Error (the client logs it, says internal).
func TestDecodeReply(t *testing.T) {
	var res callbridge.CommandResult
	if err := decodeReply(&natsgo.Msg{Data: []byte(`{"call_id":"c9"}`)}, &res); err != nil || res.CallID != "c9" {
		t.Fatalf("result %+v, %v", res, err)
	}
	err := decodeReply(&natsgo.Msg{Header: errorHeaders(callbridge.Errorf(callbridge.EForbidden, "call c9 is not yours"))}, &res)
	var e *callbridge.Error
	if !errors.As(err, &e) || e.Code != callbridge.EForbidden || e.Message != "call c9 is not yours" {
		t.Fatalf("forbidden reply = %v", err)
	}
	err = decodeReply(&natsgo.Msg{Header: errorHeaders(errors.New("secret"))}, &res)
	if !errors.As(err, &e) || e.Code != callbridge.EInternal || e.Message != "internal error" {
		t.Fatalf("internal reply = %v", err)
	}
	for _, m := range []*natsgo.Msg{
		{Data: []byte(`{"stream":"CB","seq":7}`)}, // a JetStream ack
		{Header: natsgo.Header{micro.ErrorCodeHeader: {"503"}, micro.ErrorHeader: {"no"}}},
		{Data: []byte(`nope`)},
	} {
		if err := decodeReply(m, &res); err == nil || errors.As(err, &e) {
			t.Errorf("reply %q %v = %v, want an error that is not a *callbridge.Error", m.Data, m.Header, err)
		}
	}
}

// FuzzDecodeRequest: the request decoder never panics; what it refuses is EInvalid; what it
// accepts has the fields its endpoint needs and a timeout in (0, MaxTimeout].
func FuzzDecodeRequest(f *testing.F) {
	eps := []string{epDo, epSnapshot, epAvailability, epPresence, epReady, "other"}
	f.Add(uint8(0), "", []byte(`{"cmd":"make_call","tenant":"demo","agent":"a1","role":"agent","to":"100","attached_data":{"k":"v"}}`))
	f.Add(uint8(1), "10", []byte(`{"tenant":"demo","agent":"a1"}`))
	f.Add(uint8(3), "", []byte(`{"op":"heartbeats","agents":[{"tenant":"t","agent":"a"}],"desktop":"gw-1"}`))
	f.Add(uint8(3), "", []byte(`{"op":"detached","tenant":"t","agent":"a","desktop":"gw-1"}`))
	f.Add(uint8(4), "", []byte(``))
	f.Add(uint8(0), "x", []byte(`{"cmd":"a","tenant":"t"}garbage`))
	f.Fuzz(func(t *testing.T, epi uint8, timeout string, data []byte) {
		ep := eps[int(epi)%len(eps)]
		hdr := natsgo.Header{}
		if timeout != "" {
			hdr.Set(TimeoutHeader, timeout)
		}
		r, err := decodeRequest(ep, hdr, data)
		if err != nil {
			if callbridge.ErrorCode(err) != callbridge.EInvalid {
				t.Fatalf("refusal %v is not invalid", err)
			}
			return
		}
		if r.timeout < 0 || r.timeout > MaxTimeout || (timeout != "" && r.timeout == 0) {
			t.Fatalf("timeout %q decoded as %v", timeout, r.timeout)
		}
		switch ep {
		case epDo:
			if r.cmd.Name == "" || r.cmd.Tenant == "" {
				t.Fatalf("accepted command %+v", r.cmd)
			}
			// What was accepted goes back on the wire as it came.
			again, err := json.Marshal(r.cmd)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := decodeRequest(ep, nil, again); err != nil {
				t.Fatalf("re-encoded command %s refused: %v", again, err)
			}
		case epSnapshot, epAvailability:
			if r.agent.Tenant == "" || r.agent.Agent == "" {
				t.Fatalf("accepted %+v", r.agent)
			}
		case epPresence:
			p := r.presence
			if p.Desktop == "" || strings.ContainsAny(p.Desktop, "\r\n\x00") {
				t.Fatalf("accepted desktop %q", p.Desktop)
			}
			if p.Op != opHeartbeats && (p.Tenant == "" || p.Agent == "") {
				t.Fatalf("accepted %+v", p)
			}
		case "other":
			t.Fatal("an unknown endpoint was accepted")
		}
	})
}

// FuzzDecodeReply: the reply decoder never panics, and every *callbridge.Error it returns
// has a known code (internal ones say only "internal error").
func FuzzDecodeReply(f *testing.F) {
	f.Add("", "", []byte(`{"call_id":"c1"}`))
	f.Add("forbidden", "call c1 is not yours", []byte(nil))
	f.Add("internal", "secret", []byte(nil))
	f.Add("418", "teapot", []byte(`{}`))
	f.Fuzz(func(t *testing.T, code, message string, data []byte) {
		m := &natsgo.Msg{Data: data, Header: natsgo.Header{}}
		if code != "" {
			m.Header.Set(micro.ErrorCodeHeader, code)
			m.Header.Set(micro.ErrorHeader, message)
		}
		var res callbridge.CommandResult
		err := decodeReply(m, &res)
		var e *callbridge.Error
		if errors.As(err, &e) {
			if !knownCodes[e.Code] || (e.Code == callbridge.EInternal && e.Message != "internal error") {
				t.Fatalf("reply error %v", e)
			}
		}
	})
}
