package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/callbridge/callbridge"
)

var _ callbridge.SessionStore = (*DB)(nil)

const sessionColumns = `id, tenant, username, refresh_hash, previous_hash, created_at, rotated_at, expires_at, revoked_at`

func scanSession(row interface{ Scan(...any) error }) (callbridge.Session, error) {
	var (
		s                         callbridge.Session
		tenant                    string
		created, rotated, expires int64
		revoked                   sql.NullInt64
	)
	if err := row.Scan(&s.ID, &tenant, &s.Username, &s.RefreshHash, &s.PreviousHash, &created, &rotated, &expires, &revoked); err != nil {
		return s, err
	}
	s.Tenant = callbridge.TenantID(tenant)
	s.CreatedAt = time.UnixMicro(created).UTC()
	s.RotatedAt = time.UnixMicro(rotated).UTC()
	s.ExpiresAt = time.UnixMicro(expires).UTC()
	s.RevokedAt = fromMicros(revoked)
	return s, nil
}

// CreateSession implements callbridge.SessionStore. Errors: EConflict for an id that exists,
// ENotFound for a user that does not.
func (db *DB) CreateSession(ctx context.Context, s callbridge.Session) error {
	return db.inTx(ctx, func(tx *sql.Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx, db.q("SELECT COUNT(*) FROM users WHERE tenant = ? AND username = ?"),
			string(s.Tenant), s.Username).Scan(&n); err != nil {
			return fmt.Errorf("create session: %w", err)
		}
		if n == 0 {
			return callbridge.Errorf(callbridge.ENotFound, "user %q of tenant %q does not exist", s.Username, s.Tenant)
		}
		_, err := tx.ExecContext(ctx, db.q(`INSERT INTO sessions (`+sessionColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`),
			s.ID, string(s.Tenant), s.Username, s.RefreshHash, s.PreviousHash,
			mustMicros(s.CreatedAt), mustMicros(s.RotatedAt), mustMicros(s.ExpiresAt), micros(s.RevokedAt))
		if db.unique(err) {
			return callbridge.Errorf(callbridge.EConflict, "session %q exists", s.ID)
		}
		if err != nil {
			return fmt.Errorf("create session: %w", err)
		}
		return nil
	})
}

// Session implements callbridge.SessionStore. Errors: ENotFound.
func (db *DB) Session(ctx context.Context, id string) (callbridge.Session, error) {
	s, err := scanSession(db.SQL.QueryRowContext(ctx, db.q("SELECT "+sessionColumns+" FROM sessions WHERE id = ?"), id))
	if err != nil {
		return callbridge.Session{}, notFound(err, "no session %q", id)
	}
	return s, nil
}

// RotateSession implements callbridge.SessionStore: one conditional UPDATE, so that of two
// refreshes with the same token exactly one wins.
func (db *DB) RotateSession(ctx context.Context, id, oldHash, newHash string, at, expires time.Time) error {
	res, err := db.SQL.ExecContext(ctx, db.q(`UPDATE sessions
		SET previous_hash = refresh_hash, refresh_hash = ?, rotated_at = ?, expires_at = ?
		WHERE id = ? AND refresh_hash = ? AND revoked_at IS NULL AND expires_at > ?`),
		newHash, mustMicros(at), mustMicros(expires), id, oldHash, mustMicros(at))
	if err != nil {
		return fmt.Errorf("rotate session: %w", err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("rotate session: %w", err)
	} else if n == 1 {
		return nil
	}
	if _, err := db.Session(ctx, id); err != nil {
		return err
	}
	return callbridge.Errorf(callbridge.EConflict, "session %q was refreshed, revoked or has expired", id)
}

// RevokeSession implements callbridge.SessionStore. Errors: ENotFound.
func (db *DB) RevokeSession(ctx context.Context, id string, at time.Time) error {
	res, err := db.SQL.ExecContext(ctx, db.q(`UPDATE sessions SET revoked_at = COALESCE(revoked_at, ?) WHERE id = ?`),
		mustMicros(at), id)
	if err != nil {
		return fmt.Errorf("revoke session: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("revoke session: %w", err)
	}
	if n == 0 {
		return callbridge.Errorf(callbridge.ENotFound, "no session %q", id)
	}
	return nil
}

// PruneSessions implements callbridge.SessionStore.
func (db *DB) PruneSessions(ctx context.Context, before time.Time) (int, error) {
	res, err := db.SQL.ExecContext(ctx, db.q("DELETE FROM sessions WHERE expires_at < ?"), mustMicros(before))
	if err != nil {
		return 0, fmt.Errorf("prune sessions: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("prune sessions: %w", err)
	}
	return int(n), nil
}

// RehashPassword implements callbridge.SessionStore.
func (db *DB) RehashPassword(ctx context.Context, tenant callbridge.TenantID, username, oldHash, newHash string) error {
	_, err := db.SQL.ExecContext(ctx, db.q("UPDATE users SET password_hash = ? WHERE tenant = ? AND username = ? AND password_hash = ?"),
		newHash, string(tenant), username, oldHash)
	if err != nil {
		return fmt.Errorf("rehash password of %s/%s: %w", tenant, username, err)
	}
	return nil
}

// DropDemo implements callbridge.Store: it deletes the tenants marked demo; their DIDs,
// queues, users, user queues and sessions go with them (ON DELETE CASCADE).
func (db *DB) DropDemo(ctx context.Context) ([]callbridge.TenantID, error) {
	var dropped []callbridge.TenantID
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, "SELECT id FROM tenants WHERE demo = 1 ORDER BY id")
		if err != nil {
			return err
		}
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return err
			}
			dropped = append(dropped, callbridge.TenantID(id))
		}
		if err := errors.Join(rows.Err(), rows.Close()); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, "DELETE FROM tenants WHERE demo = 1")
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("drop demo tenants: %w", err)
	}
	if len(dropped) > 0 {
		db.log().Info("store: demo tenants removed", "tenants", dropped)
	}
	return dropped, nil
}
