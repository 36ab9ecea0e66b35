package callbridge

import (
	"context"
	"time"
)

// Session is one login of a user: POST /v1/login creates it, POST /v1/refresh extends it and
// rotates its refresh token, POST /v1/logout revokes it. Every access token names its session
// (claim "sid"), and a token is honoured only while its session is live: stored, not revoked,
// not expired. The store keeps only SHA-256 hashes of refresh tokens.
type Session struct {
	// ID is the session id (the tokens' "sid" claim): 22 characters of base64url.
	ID       string
	Tenant   TenantID
	Username string
	// RefreshHash is the hex SHA-256 of the current refresh token's secret.
	RefreshHash string
	// PreviousHash is the hex SHA-256 of the refresh secret RefreshHash replaced ("" before the
	// first rotation); it lets the gateway tell a stale copy from a guess.
	PreviousHash string
	CreatedAt    time.Time
	// RotatedAt is when RefreshHash was set.
	RotatedAt time.Time
	// ExpiresAt is when the refresh token, and so the session, ends unless refreshed.
	ExpiresAt time.Time
	// RevokedAt is set once the session was revoked (logout, refresh token reuse).
	RevokedAt time.Time
}

// Live reports whether s is neither revoked nor expired at now.
func (s Session) Live(now time.Time) bool {
	return s.RevokedAt.IsZero() && now.Before(s.ExpiresAt)
}

// SessionStore keeps login sessions. Removing a user (a re-provisioning that drops them)
// removes their sessions with them.
type SessionStore interface {
	// CreateSession stores s. Errors: EConflict when the id exists; ENotFound when the user
	// does not exist.
	CreateSession(ctx context.Context, s Session) error
	// Session returns the session with id, live or not. Errors: ENotFound.
	Session(ctx context.Context, id string) (Session, error)
	// RotateSession replaces the refresh hash of a live session whose current hash is oldHash:
	// PreviousHash becomes oldHash, RefreshHash newHash, RotatedAt at, ExpiresAt expires.
	// Errors: EConflict when the session is not live at at or its hash is no longer oldHash
	// (another refresh won); ENotFound.
	RotateSession(ctx context.Context, id, oldHash, newHash string, at, expires time.Time) error
	// RevokeSession marks the session revoked at at (a second revoke keeps the first time).
	// Errors: ENotFound.
	RevokeSession(ctx context.Context, id string, at time.Time) error
	// PruneSessions deletes the sessions that expired before before and returns how many.
	PruneSessions(ctx context.Context, before time.Time) (int, error)
	// RehashPassword replaces the password hash of a user whose hash is still oldHash (a login
	// upgrading a hash of another bcrypt cost); nothing happens when it changed meanwhile.
	RehashPassword(ctx context.Context, tenant TenantID, username, oldHash, newHash string) error
}
