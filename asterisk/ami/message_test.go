package ami_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/callbridge/callbridge"
	"github.com/callbridge/callbridge/asterisk/ami"
)

func TestParseMessageFields(t *testing.T) {
	m := ami.ParseMessage("Event: Newchannel\r\nAccountCode: \r\nKey:nospace\r\nAppData: tenant-acme,1800: x\r\n" +
		"ChanVariable: CTI_TENANT=acme\r\nChanVariable: IVR_ACCOUNT=\r\nDestChanVariable: IVR_ACCOUNT=12345\r\n" +
		"a line without colon\r\n\r\n")
	want := []ami.Field{
		{"Event", "Newchannel"}, {"AccountCode", ""}, {"Key", "nospace"}, {"AppData", "tenant-acme,1800: x"},
		{"ChanVariable", "CTI_TENANT=acme"}, {"ChanVariable", "IVR_ACCOUNT="}, {"DestChanVariable", "IVR_ACCOUNT=12345"},
		{"", "a line without colon"},
	}
	if len(m.Fields) != len(want) {
		t.Fatalf("fields = %q", m.Fields)
	}
	for i := range want {
		if m.Fields[i] != want[i] {
			t.Errorf("field %d = %q, want %q", i, m.Fields[i], want[i])
		}
	}
	if m.Get("event") != "Newchannel" || m.Event() != "Newchannel" || m.Response() != "" {
		t.Errorf("Get is not case-insensitive: %q", m.Get("event"))
	}
	if v, ok := m.Lookup("AccountCode"); !ok || v != "" {
		t.Errorf("Lookup(AccountCode) = %q, %v", v, ok)
	}
	if _, ok := m.Lookup("Missing"); ok {
		t.Error("Lookup(Missing) found something")
	}
	if got := m.Values("ChanVariable"); len(got) != 2 || got[1] != "IVR_ACCOUNT=" {
		t.Errorf("Values = %q", got)
	}
	if cv := m.ChanVariables(""); len(cv) != 2 || cv["CTI_TENANT"] != "acme" || cv["IVR_ACCOUNT"] != "" {
		t.Errorf("ChanVariables(\"\") = %v", cv)
	}
	if cv := m.ChanVariables("Dest"); len(cv) != 1 || cv["IVR_ACCOUNT"] != "12345" {
		t.Errorf("ChanVariables(Dest) = %v", cv)
	}
}

// OriginateResponse writes channel variables as "ChanVariable(PJSIP/1003-0000000d): NAME=value"
// (click-to-call.ami.jsonl).
func TestChanVariablesOriginateResponseForm(t *testing.T) {
	var found bool
	for _, raw := range inFrames(loadFixture(t, "click-to-call.ami.jsonl")) {
		m := ami.ParseMessage(raw)
		if m.Event() != "OriginateResponse" {
			continue
		}
		found = true
		cv := m.ChanVariables("")
		if cv["CTI_TENANT"] != "acme" || len(cv) != 5 {
			t.Fatalf("ChanVariables = %v", cv)
		}
		if m.Response() != "Success" || m.ActionID() != "cti-2" {
			t.Fatalf("OriginateResponse fields: %+v", m.Fields)
		}
	}
	if !found {
		t.Fatal("no OriginateResponse in click-to-call.ami.jsonl")
	}
}

func TestMessageStringRoundTrips(t *testing.T) {
	for _, raw := range inFrames(loadFixture(t, "agent-state.ami.jsonl"))[1:] {
		if got := ami.ParseMessage(raw).String(); got != raw {
			t.Fatalf("String() = %q, want %q", got, raw)
		}
	}
}

func TestActionEncode(t *testing.T) {
	a := ami.Action{Name: "Originate", Fields: []ami.Field{
		{"Channel", "PJSIP/1003"}, {"CallerID", `"Call: 15557654321" <15557654321>`},
		{"Variable", "__CTI_TENANT=acme"}, {"Variable", "CTI_CLICK2CALL_ID=c2c-0001"}, {"Account", ""},
	}}
	b, err := a.Encode("cti-2")
	if err != nil {
		t.Fatal(err)
	}
	want := "Action: Originate\r\nActionID: cti-2\r\nChannel: PJSIP/1003\r\nCallerID: \"Call: 15557654321\" <15557654321>\r\n" +
		"Variable: __CTI_TENANT=acme\r\nVariable: CTI_CLICK2CALL_ID=c2c-0001\r\nAccount: \r\n\r\n"
	if string(b) != want {
		t.Fatalf("Encode = %q, want %q", b, want)
	}
	b, err = ami.Action{Name: "Ping"}.Encode("")
	if err != nil || string(b) != "Action: Ping\r\n\r\n" {
		t.Fatalf("Encode without ActionID = %q, %v", b, err)
	}
}

// The recorded QueueAdd frame is exactly what Encode produces.
func TestActionEncodeMatchesRecording(t *testing.T) {
	b, err := ami.Action{Name: "QueueAdd", Fields: []ami.Field{
		{"Queue", "acme-support"}, {"Interface", "PJSIP/1010"}, {"MemberName", "Judy Acme"},
		{"StateInterface", "PJSIP/1010"}, {"Penalty", "0"}, {"Paused", "false"},
	}}.Encode("cti-2")
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range loadFixture(t, "agent-state.ami.jsonl") {
		if r.Dir == "out" && strings.Contains(r.Raw, "ActionID: cti-2\r\n") {
			if string(b) != r.Raw {
				t.Fatalf("Encode = %q, recorded %q", b, r.Raw)
			}
			return
		}
	}
	t.Fatal("QueueAdd cti-2 not found in agent-state.ami.jsonl")
}

func TestActionEncodeRefusesInjection(t *testing.T) {
	ok := ami.Action{Name: "Redirect", Fields: []ami.Field{{"Channel", "PJSIP/1001-00000001"}}}
	cases := map[string]struct {
		a  ami.Action
		id string
	}{
		"CRLF in value":     {ami.Action{Name: "Redirect", Fields: []ami.Field{{"Exten", "1002\r\nAction: Hangup"}}}, "a1"},
		"LF in value":       {ami.Action{Name: "Redirect", Fields: []ami.Field{{"Exten", "1002\nX: y"}}}, "a1"},
		"CR in value":       {ami.Action{Name: "Redirect", Fields: []ami.Field{{"Exten", "1002\r"}}}, "a1"},
		"NUL in value":      {ami.Action{Name: "Redirect", Fields: []ami.Field{{"Exten", "10\x0002"}}}, "a1"},
		"CRLF in name":      {ami.Action{Name: "Ping\r\nAction: Hangup"}, "a1"},
		"colon in name":     {ami.Action{Name: "Ping: x"}, "a1"},
		"empty name":        {ami.Action{}, "a1"},
		"LF in key":         {ami.Action{Name: "Ping", Fields: []ami.Field{{"A\nB", "v"}}}, "a1"},
		"colon in key":      {ami.Action{Name: "Ping", Fields: []ami.Field{{"Channel: x", "v"}}}, "a1"},
		"empty key":         {ami.Action{Name: "Ping", Fields: []ami.Field{{"", "v"}}}, "a1"},
		"ActionID as field": {ami.Action{Name: "Ping", Fields: []ami.Field{{"ActionID", "v"}}}, "a1"},
		"CRLF in ActionID":  {ok, "a1\r\nAction: Hangup"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			b, err := c.a.Encode(c.id)
			if err == nil {
				t.Fatalf("Encode = %q, want an error", b)
			}
			if b != nil {
				t.Errorf("bytes returned with the error: %q", b)
			}
			var ce *callbridge.Error
			if !errors.As(err, &ce) || callbridge.ErrorCode(err) != callbridge.EInvalid {
				t.Errorf("err = %v (%T), want a wrapped *callbridge.Error with code invalid", err, err)
			}
		})
	}
}

func TestResponseErr(t *testing.T) {
	for _, s := range []string{"Success", "success", "Goodbye", "Follows"} {
		r := ami.Response{Message: ami.ParseMessage("Response: " + s + "\r\n\r\n")}
		if err := r.Err(); err != nil {
			t.Errorf("Response %s: Err = %v", s, err)
		}
	}
	r := ami.Response{Message: ami.ParseMessage("Response: Error\r\nActionID: cti-3\r\nMessage: Unable to add interface: Already there\r\n\r\n")}
	err := r.Err()
	var re *ami.ResponseError
	if !errors.As(err, &re) || re.Message != "Unable to add interface: Already there" {
		t.Fatalf("Err = %v, want *ResponseError with the switch's message", err)
	}
	if !strings.Contains(err.Error(), "Unable to add interface: Already there") {
		t.Errorf("Error() = %q", err.Error())
	}
}
