package storetest

import (
	"reflect"
	"testing"

	"github.com/callbridge/callbridge"
)

func testAPIKeys(t *testing.T, open Open) {
	s := open(t)
	k1 := callbridge.APIKey{
		ID: "key_1", Tenant: "acme", Name: "crm-prod", Prefix: "cbk_AbCd1234",
		Scopes:    []callbridge.APIScope{callbridge.ScopeRecordsRead, callbridge.ScopeCallsWrite},
		CreatedBy: "sup", CreatedAt: at(1),
	}
	k2 := callbridge.APIKey{ID: "key_2", Tenant: "acme", Name: "", Prefix: "cbk_zzzz", Scopes: []callbridge.APIScope{}, CreatedAt: at(2)}
	kg := callbridge.APIKey{ID: "key_g", Tenant: "globex", Name: "g", Prefix: "cbk_gggg", Scopes: []callbridge.APIScope{callbridge.ScopeWebhooksWrite}, CreatedAt: at(0)}
	for k, hash := range map[*callbridge.APIKey]string{&k1: "h1", &k2: "h2", &kg: "hg"} {
		if err := s.CreateAPIKey(t.Context(), *k, hash); err != nil {
			t.Fatal(err)
		}
	}
	wantCode(t, s.CreateAPIKey(t.Context(), callbridge.APIKey{ID: "key_3", Tenant: "acme", Prefix: "p", CreatedAt: at(3)}, "h1"), callbridge.EConflict)
	wantCode(t, s.CreateAPIKey(t.Context(), callbridge.APIKey{ID: "key_1", Tenant: "acme", Prefix: "p", CreatedAt: at(3)}, "h9"), callbridge.EConflict)

	keys, err := s.APIKeys(t.Context(), "acme")
	if err != nil {
		t.Fatal(err)
	}
	if want := []callbridge.APIKey{k1, k2}; !reflect.DeepEqual(keys, want) {
		t.Fatalf("APIKeys\n got %+v\nwant %+v", keys, want)
	}
	got, err := s.APIKeyByHash(t.Context(), "h1")
	if err != nil || !reflect.DeepEqual(got, k1) {
		t.Fatalf("APIKeyByHash = %+v, %v", got, err)
	}
	_, err = s.APIKeyByHash(t.Context(), "nope")
	wantCode(t, err, callbridge.ENotFound)

	_, err = s.RevokeAPIKey(t.Context(), "globex", "key_1", at(5))
	wantCode(t, err, callbridge.ENotFound)
	r, err := s.RevokeAPIKey(t.Context(), "acme", "key_1", at(5))
	if err != nil || !r.RevokedAt.Equal(at(5)) {
		t.Fatalf("revoke = %+v, %v", r, err)
	}
	if r, err = s.RevokeAPIKey(t.Context(), "acme", "key_1", at(9)); err != nil || !r.RevokedAt.Equal(at(5)) {
		t.Fatalf("second revoke = %+v, %v; want the first time kept", r, err)
	}
	got, err = s.APIKeyByHash(t.Context(), "h1")
	if err != nil || !got.RevokedAt.Equal(at(5)) || got.Allows(callbridge.ScopeRecordsRead) {
		t.Fatalf("revoked key = %+v, %v", got, err)
	}
}
