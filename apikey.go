package callbridge

import (
	"context"
	"time"
)

// APIScope is what an API key may do. Supervisors and admins logged in with a token may do
// everything; API keys only what their scopes allow, and never manage API keys.
type APIScope string

// API key scopes.
const (
	// ScopeRecordsRead: read call records and agent state history.
	ScopeRecordsRead APIScope = "records:read"
	// ScopeCallsWrite: click-to-dial, call control (/v1/calls…) and agent state
	// (/v1/agents/{id}/state).
	ScopeCallsWrite APIScope = "calls:write"
	// ScopeWebhooksWrite: create, list and delete webhooks, list and redeliver deliveries.
	ScopeWebhooksWrite APIScope = "webhooks:write"
)

// APIScopes lists every scope.
var APIScopes = []APIScope{ScopeRecordsRead, ScopeCallsWrite, ScopeWebhooksWrite}

// Valid reports whether s is a scope.
func (s APIScope) Valid() bool {
	for _, v := range APIScopes {
		if s == v {
			return true
		}
	}
	return false
}

// APIKey is a tenant's key for servers (a CRM). The key itself is shown once, when created;
// the store keeps only its SHA-256 hash.
type APIKey struct {
	ID     string     `json:"id" doc:"Key id (key_…)."`
	Tenant TenantID   `json:"tenant"`
	Name   string     `json:"name" doc:"What the key is for, e.g. \"crm-prod\"."`
	Scopes []APIScope `json:"scopes"`
	// Prefix is the key's first characters, to recognise it in a list ("cbk_AbCd1234").
	Prefix    string    `json:"prefix"`
	CreatedBy string    `json:"created_by,omitempty" doc:"User name of the supervisor or admin who created it."`
	CreatedAt time.Time `json:"created_at"`
	// RevokedAt is set once the key was revoked; a revoked key is refused.
	RevokedAt time.Time `json:"revoked_at,omitzero"`
}

// Allows reports whether k is not revoked and has scope s.
func (k *APIKey) Allows(s APIScope) bool {
	if !k.RevokedAt.IsZero() {
		return false
	}
	for _, v := range k.Scopes {
		if v == s {
			return true
		}
	}
	return false
}

// APIKeyStore keeps API keys by the hash of the key.
type APIKeyStore interface {
	// CreateAPIKey stores k with hash, the hex SHA-256 of the key. Errors: EConflict when the
	// id or hash exists.
	CreateAPIKey(ctx context.Context, k APIKey, hash string) error
	// APIKeys lists tenant's keys (revoked ones too), oldest first.
	APIKeys(ctx context.Context, tenant TenantID) ([]APIKey, error)
	// RevokeAPIKey marks a key revoked at at (a second revoke keeps the first time).
	// Errors: ENotFound (also for another tenant's).
	RevokeAPIKey(ctx context.Context, tenant TenantID, id string, at time.Time) (APIKey, error)
	// APIKeyByHash returns the key whose hash is hash, revoked or not. Errors: ENotFound.
	APIKeyByHash(ctx context.Context, hash string) (APIKey, error)
}
