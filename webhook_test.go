package callbridge_test

import (
	"strings"
	"testing"

	"github.com/callbridge/callbridge"
)

func TestWebhookSubscribes(t *testing.T) {
	w := callbridge.Webhook{Events: []string{"call.*", "agent.state_changed", "call_record.completed"}}
	for typ, want := range map[callbridge.EventType]bool{
		callbridge.EventCallDelivered: true, callbridge.EventCallDispositionSet: true,
		callbridge.EventAgentStateChanged: true, callbridge.EventAgentLoggedOn: false,
		callbridge.EventCallRecordCompleted: true, callbridge.EventCallRecordUpdated: false,
	} {
		if got := w.Subscribes(typ); got != want {
			t.Errorf("Subscribes(%s) = %v, want %v", typ, got, want)
		}
	}
	if all := (callbridge.Webhook{Events: []string{"*"}}); !all.Subscribes(callbridge.EventCallRecordUpdated) {
		t.Error(`"*" does not match everything`)
	}
	if (&callbridge.Webhook{Events: []string{"call"}}).Subscribes(callbridge.EventCallCleared) {
		t.Error(`"call" matches call.cleared`)
	}
}

func TestCheckWebhook(t *testing.T) {
	ok := callbridge.Webhook{URL: "https://crm.example.com/hooks?t=1", Events: []string{"call.*"}}
	if err := callbridge.CheckWebhook(ok); err != nil {
		t.Fatal(err)
	}
	for name, w := range map[string]callbridge.Webhook{
		"relative url":   {URL: "/hooks", Events: []string{"*"}},
		"ftp":            {URL: "ftp://x/", Events: []string{"*"}},
		"user info":      {URL: "https://u:p@x/", Events: []string{"*"}},
		"fragment":       {URL: "https://x/#f", Events: []string{"*"}},
		"no events":      {URL: "https://x/"},
		"unknown event":  {URL: "https://x/", Events: []string{"call.exploded"}},
		"unknown family": {URL: "https://x/", Events: []string{"queue.*"}},
		"long url":       {URL: "https://x/" + strings.Repeat("a", 2048), Events: []string{"*"}},
	} {
		if err := callbridge.CheckWebhook(w); callbridge.ErrorCode(err) != callbridge.EInvalid {
			t.Errorf("%s: %v, want invalid", name, err)
		}
	}
}

func TestAPIKeyAllows(t *testing.T) {
	k := callbridge.APIKey{Scopes: []callbridge.APIScope{callbridge.ScopeRecordsRead}}
	if !k.Allows(callbridge.ScopeRecordsRead) || k.Allows(callbridge.ScopeCallsWrite) {
		t.Fatal("scopes not respected")
	}
	k.RevokedAt = k.CreatedAt.AddDate(2026, 0, 0)
	if k.Allows(callbridge.ScopeRecordsRead) {
		t.Fatal("a revoked key allows")
	}
}
