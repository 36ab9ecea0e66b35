package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"time"

	"github.com/callbridge/callbridge"
)

const apiKeyColumns = `id, tenant, name, prefix, scopes, created_by, created_at, revoked_at`

func scanAPIKey(row interface{ Scan(...any) error }) (callbridge.APIKey, error) {
	var (
		k       callbridge.APIKey
		tenant  string
		scopes  string
		created int64
		revoked sql.NullInt64
	)
	if err := row.Scan(&k.ID, &tenant, &k.Name, &k.Prefix, &scopes, &k.CreatedBy, &created, &revoked); err != nil {
		return k, err
	}
	k.Tenant = callbridge.TenantID(tenant)
	k.CreatedAt = time.UnixMicro(created).UTC()
	k.RevokedAt = fromMicros(revoked)
	if err := json.Unmarshal([]byte(scopes), &k.Scopes); err != nil {
		return k, fmt.Errorf("api key %s: scopes: %w", k.ID, err)
	}
	if k.Scopes == nil {
		k.Scopes = []callbridge.APIScope{}
	}
	return k, nil
}

// CreateAPIKey implements callbridge.APIKeyStore.
func (db *DB) CreateAPIKey(ctx context.Context, k callbridge.APIKey, hash string) error {
	scopes := k.Scopes
	if scopes == nil {
		scopes = []callbridge.APIScope{}
	}
	scopesJSON, err := jsonText(scopes)
	if err != nil {
		return err
	}
	_, err = db.SQL.ExecContext(ctx, db.q(`INSERT INTO api_keys (id, tenant, name, prefix, key_hash, scopes, created_by, created_at, revoked_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`),
		k.ID, string(k.Tenant), k.Name, k.Prefix, hash, scopesJSON, k.CreatedBy, mustMicros(k.CreatedAt), micros(k.RevokedAt))
	if db.unique(err) {
		return callbridge.Errorf(callbridge.EConflict, "API key %q exists", k.ID)
	}
	if err != nil {
		return fmt.Errorf("create api key: %w", err)
	}
	return nil
}

// APIKeys implements callbridge.APIKeyStore.
func (db *DB) APIKeys(ctx context.Context, tenant callbridge.TenantID) ([]callbridge.APIKey, error) {
	rows, err := db.SQL.QueryContext(ctx, db.q("SELECT "+apiKeyColumns+" FROM api_keys WHERE tenant = ? ORDER BY created_at, id"), string(tenant))
	if err != nil {
		return nil, fmt.Errorf("api keys: %w", err)
	}
	defer rows.Close()
	out := []callbridge.APIKey{}
	for rows.Next() {
		k, err := scanAPIKey(rows)
		if err != nil {
			return nil, fmt.Errorf("api keys: %w", err)
		}
		out = append(out, k)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("api keys: %w", err)
	}
	return out, nil
}

// RevokeAPIKey implements callbridge.APIKeyStore.
func (db *DB) RevokeAPIKey(ctx context.Context, tenant callbridge.TenantID, id string, at time.Time) (callbridge.APIKey, error) {
	var k callbridge.APIKey
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, db.q("UPDATE api_keys SET revoked_at = COALESCE(revoked_at, ?) WHERE tenant = ? AND id = ?"),
			mustMicros(at), string(tenant), id)
		if err != nil {
			return fmt.Errorf("revoke api key: %w", err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return fmt.Errorf("revoke api key: %w", err)
		} else if n == 0 {
			return callbridge.Errorf(callbridge.ENotFound, "API key %q not found", id)
		}
		k, err = scanAPIKey(tx.QueryRowContext(ctx, db.q("SELECT "+apiKeyColumns+" FROM api_keys WHERE id = ?"), id))
		return err
	})
	return k, err
}

// APIKeyByHash implements callbridge.APIKeyStore.
func (db *DB) APIKeyByHash(ctx context.Context, hash string) (callbridge.APIKey, error) {
	k, err := scanAPIKey(db.SQL.QueryRowContext(ctx, db.q("SELECT "+apiKeyColumns+" FROM api_keys WHERE key_hash = ?"), hash))
	if err != nil {
		return callbridge.APIKey{}, notFound(err, "API key not found")
	}
	return k, nil
}
