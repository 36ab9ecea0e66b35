package http

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	nethttp "net/http"
	"slices"

	"github.com/danielgtaylor/huma/v2"

	"github.com/callbridge/callbridge"
	"github.com/callbridge/callbridge/internal/ids"
)

// API keys are "cbk_" and 32 random bytes in unpadded base64url (47 characters). The store
// keeps the hex SHA-256 of the whole key — a key has 256 bits of entropy, so a fast hash is
// enough — and the first apiKeyPrefixLen characters to recognise it in a list.
const (
	apiKeyPrefix    = "cbk_"
	apiKeyPrefixLen = 12
	maxAPIKeys      = 100 // per tenant, revoked ones included
)

// newAPIKey returns a new key.
func newAPIKey() string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic("http: crypto/rand failed: " + err.Error())
	}
	return apiKeyPrefix + base64.RawURLEncoding.EncodeToString(b)
}

// hashAPIKey is what the store keeps of a key.
func hashAPIKey(key string) string {
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:])
}

// apiKey returns the stored key for a presented one. Errors: EUnauthorized for an unknown or
// revoked key (one message for both), or the store's error.
func (s *Server) apiKey(ctx context.Context, key string) (callbridge.APIKey, error) {
	bad := callbridge.Errorf(callbridge.EUnauthorized, "invalid or revoked API key")
	store := s.cfg.CRM.APIKeys
	if store == nil || len(key) > 256 {
		return callbridge.APIKey{}, bad
	}
	k, err := store.APIKeyByHash(ctx, hashAPIKey(key))
	switch {
	case callbridge.ErrorCode(err) == callbridge.ENotFound:
		return callbridge.APIKey{}, bad
	case err != nil:
		return callbridge.APIKey{}, err
	case !k.RevokedAt.IsZero():
		s.log.Info("revoked API key used", "tenant", k.Tenant, "key", k.ID)
		return callbridge.APIKey{}, bad
	}
	return k, nil
}

type createAPIKeyInput struct {
	Body struct {
		Name   string                `json:"name" maxLength:"100" doc:"What the key is for, e.g. \"crm-prod\"."`
		Scopes []callbridge.APIScope `json:"scopes" minItems:"1" uniqueItems:"true" doc:"records:read, calls:write, webhooks:write."`
	}
}

// createdAPIKey is the reply to a create: the key itself, shown this once.
type createdAPIKey struct {
	callbridge.APIKey
	Key string `json:"key" doc:"The API key. It is shown only now: store it; callbridge keeps only its hash."`
}

type createAPIKeyOutput struct {
	Body createdAPIKey
}

type apiKeyList struct {
	APIKeys []callbridge.APIKey `json:"api_keys"`
}

type apiKeyIDInput struct {
	ID string `path:"id" maxLength:"64" doc:"The key's id (key_…)."`
}

func (s *Server) apiKeyRoutes(api huma.API) {
	loginOnly := access{loginOnly: true}
	register(s, api, loginOnly, huma.Operation{
		OperationID: "create-api-key", Method: nethttp.MethodPost, Path: "/v1/api-keys", Tags: []string{"API keys"},
		Summary:       "Create an API key",
		Description:   "Creates a key of the caller's tenant with the given scopes. The reply carries the key once; send it as `Authorization: Bearer cbk_…`.",
		DefaultStatus: nethttp.StatusCreated,
	}, s.createAPIKey)
	register(s, api, loginOnly, huma.Operation{
		OperationID: "list-api-keys", Method: nethttp.MethodGet, Path: "/v1/api-keys", Tags: []string{"API keys"},
		Summary: "List API keys", Description: "Every key of the tenant, revoked ones included, oldest first; never the keys themselves.",
	}, s.listAPIKeys)
	register(s, api, loginOnly, huma.Operation{
		OperationID: "revoke-api-key", Method: nethttp.MethodDelete, Path: "/v1/api-keys/{id}", Tags: []string{"API keys"},
		Summary: "Revoke an API key", Description: "The key is refused from now on. It stays in the list with revoked_at.",
		DefaultStatus: nethttp.StatusNoContent,
	}, s.revokeAPIKey)
}

func (s *Server) createAPIKey(ctx context.Context, in *createAPIKeyInput) (*createAPIKeyOutput, error) {
	c := callerOf(ctx)
	store := s.cfg.CRM.APIKeys
	if store == nil {
		return nil, s.restErr(unavailable("API keys"))
	}
	for _, sc := range in.Body.Scopes {
		if !sc.Valid() {
			return nil, s.restErr(callbridge.Errorf(callbridge.EInvalid, "scope %q is not one of %v", sc, callbridge.APIScopes))
		}
	}
	existing, err := store.APIKeys(ctx, c.Tenant)
	if err != nil {
		return nil, s.restErr(err)
	}
	if len(existing) >= maxAPIKeys {
		return nil, s.restErr(callbridge.Errorf(callbridge.EConflict, "the tenant has %d API keys, the most it may have", maxAPIKeys))
	}
	key := newAPIKey()
	now := s.now().UTC()
	k := callbridge.APIKey{
		ID: ids.New("key_", now), Tenant: c.Tenant, Name: in.Body.Name, Scopes: slices.Clone(in.Body.Scopes),
		Prefix: key[:apiKeyPrefixLen], CreatedBy: c.who(), CreatedAt: now,
	}
	if err := store.CreateAPIKey(ctx, k, hashAPIKey(key)); err != nil {
		return nil, s.restErr(err)
	}
	s.log.Info("API key created", "tenant", c.Tenant, "key", k.ID, "scopes", k.Scopes, "by", c.who())
	return &createAPIKeyOutput{Body: createdAPIKey{APIKey: k, Key: key}}, nil
}

func (s *Server) listAPIKeys(ctx context.Context, _ *struct{}) (*struct{ Body apiKeyList }, error) {
	store := s.cfg.CRM.APIKeys
	if store == nil {
		return nil, s.restErr(unavailable("API keys"))
	}
	keys, err := store.APIKeys(ctx, callerOf(ctx).Tenant)
	if err != nil {
		return nil, s.restErr(err)
	}
	return &struct{ Body apiKeyList }{Body: apiKeyList{APIKeys: keys}}, nil
}

func (s *Server) revokeAPIKey(ctx context.Context, in *apiKeyIDInput) (*struct{}, error) {
	c := callerOf(ctx)
	store := s.cfg.CRM.APIKeys
	if store == nil {
		return nil, s.restErr(unavailable("API keys"))
	}
	if _, err := store.RevokeAPIKey(ctx, c.Tenant, in.ID, s.now().UTC()); err != nil {
		return nil, s.restErr(err)
	}
	s.log.Info("API key revoked", "tenant", c.Tenant, "key", in.ID, "by", c.who())
	return &struct{}{}, nil
}
