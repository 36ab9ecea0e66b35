-- 0003: login sessions and the demo mark.
--
-- A session is one login (POST /v1/login): its refresh token is kept as the hex SHA-256 of
-- its secret (refresh_hash; previous_hash is the one it replaced, to tell a stale copy from
-- a guess). A token is honoured only while its session is live: revoked_at NULL and
-- expires_at in the future. Times are BIGINT microseconds since the Unix epoch (UTC).
-- Deleting a user (a re-provisioning that drops them) deletes their sessions.
CREATE TABLE sessions (
    id            TEXT   NOT NULL PRIMARY KEY,
    tenant        TEXT   NOT NULL,
    username      TEXT   NOT NULL,
    refresh_hash  TEXT   NOT NULL,
    previous_hash TEXT   NOT NULL DEFAULT '',
    created_at    BIGINT NOT NULL,
    rotated_at    BIGINT NOT NULL,
    expires_at    BIGINT NOT NULL,
    revoked_at    BIGINT,
    FOREIGN KEY (tenant, username) REFERENCES users (tenant, username) ON DELETE CASCADE
);
CREATE INDEX sessions_user ON sessions (tenant, username);
CREATE INDEX sessions_expires ON sessions (expires_at);

-- demo = 1: the demo tenant of the embedded default, which a run that is not the demo drops.
ALTER TABLE tenants ADD COLUMN demo INTEGER NOT NULL DEFAULT 0 CHECK (demo IN (0, 1));
