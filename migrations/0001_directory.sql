-- 0001: configuration — tenants with their DIDs, attached data keys and reason codes; queues;
-- users (agents are users with a device) and the queues they log on to.
--
-- Portable SQL: only TEXT and INTEGER columns, PRIMARY KEY / UNIQUE / REFERENCES / CHECK
-- constraints, no AUTOINCREMENT, no SQLite-only types or functions, no WITHOUT ROWID, so that
-- the PostgreSQL store can run the same file. Ordering of list entries is kept in a
-- "position" column (0-based, document order).

CREATE TABLE tenants (
    id              TEXT    NOT NULL PRIMARY KEY,
    name            TEXT    NOT NULL DEFAULT '',
    wrap_up_seconds INTEGER NOT NULL DEFAULT 0 CHECK (wrap_up_seconds >= 0)
);

-- A DID (DNIS) belongs to at most one tenant on the shared switch.
CREATE TABLE tenant_dids (
    did      TEXT    NOT NULL PRIMARY KEY,
    tenant   TEXT    NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    position INTEGER NOT NULL
);
CREATE INDEX tenant_dids_tenant ON tenant_dids (tenant, position);

CREATE TABLE tenant_attached_data_keys (
    tenant   TEXT    NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name     TEXT    NOT NULL,
    position INTEGER NOT NULL,
    PRIMARY KEY (tenant, name)
);

CREATE TABLE tenant_reason_codes (
    tenant   TEXT    NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    code     TEXT    NOT NULL,
    position INTEGER NOT NULL,
    PRIMARY KEY (tenant, code)
);

-- wrap_up_seconds NULL: the tenant's default.
CREATE TABLE queues (
    tenant          TEXT    NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name            TEXT    NOT NULL,
    wrap_up_seconds INTEGER CHECK (wrap_up_seconds IS NULL OR wrap_up_seconds >= 0),
    PRIMARY KEY (tenant, name)
);

-- device NULL: not an agent (a supervisor or admin without a telset). Several NULLs do not
-- collide in a UNIQUE index, in SQLite as in PostgreSQL.
CREATE TABLE users (
    tenant        TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    username      TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    role          TEXT NOT NULL CHECK (role IN ('agent', 'supervisor', 'admin')),
    name          TEXT NOT NULL DEFAULT '',
    device        TEXT,
    interface     TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (tenant, username)
);
CREATE INDEX users_username ON users (username);
CREATE UNIQUE INDEX users_device ON users (tenant, device);

CREATE TABLE user_queues (
    tenant   TEXT    NOT NULL,
    username TEXT    NOT NULL,
    queue    TEXT    NOT NULL,
    position INTEGER NOT NULL,
    PRIMARY KEY (tenant, username, queue),
    FOREIGN KEY (tenant, username) REFERENCES users (tenant, username) ON DELETE CASCADE,
    FOREIGN KEY (tenant, queue) REFERENCES queues (tenant, name) ON DELETE CASCADE
);
