-- 0002: history and CRM integration — call records, agent state history, the positions of
-- the event-log consumers that build them, webhook endpoints with their outbox, API keys.
--
-- Portable SQL (see migrations.go): times are BIGINT microseconds since the Unix epoch (UTC),
-- NULL when unset; JSON values are TEXT; booleans are INTEGER 0/1. History rows carry their
-- tenant without a foreign key, so that events of a tenant the store does not know yet are
-- still recorded instead of stopping the consumer.

-- Last event-log sequence each consumer committed ("records:<tenant>").
CREATE TABLE consumer_positions (
    consumer TEXT   NOT NULL PRIMARY KEY,
    position BIGINT NOT NULL CHECK (position >= 0)
);

-- One row per call seen. ended_at NULL: in progress (not listed). tracking: the records
-- consumer's working state (JSON).
CREATE TABLE call_records (
    tenant          TEXT    NOT NULL,
    call_id         TEXT    NOT NULL,
    pbx_call_id     TEXT    NOT NULL DEFAULT '',
    consult_of      TEXT    NOT NULL DEFAULT '',
    direction       TEXT    NOT NULL DEFAULT '',
    ani             TEXT    NOT NULL DEFAULT '',
    ani_name        TEXT    NOT NULL DEFAULT '',
    dnis            TEXT    NOT NULL DEFAULT '',
    queue           TEXT    NOT NULL DEFAULT '',
    agents          TEXT    NOT NULL DEFAULT '[]',
    started_at      BIGINT  NOT NULL,
    queued_at       BIGINT,
    answered_at     BIGINT,
    ended_at        BIGINT,
    wait_seconds    BIGINT  NOT NULL DEFAULT 0,
    ring_seconds    BIGINT  NOT NULL DEFAULT 0,
    talk_seconds    BIGINT  NOT NULL DEFAULT 0,
    hold_seconds    BIGINT  NOT NULL DEFAULT 0,
    wrap_up_seconds BIGINT  NOT NULL DEFAULT 0,
    result          TEXT    NOT NULL DEFAULT '',
    cause           TEXT    NOT NULL DEFAULT '',
    disposition     TEXT    NOT NULL DEFAULT '',
    notes           TEXT    NOT NULL DEFAULT '',
    attached_data   TEXT    NOT NULL DEFAULT '{}',
    complete        INTEGER NOT NULL DEFAULT 0 CHECK (complete IN (0, 1)),
    updated_at      BIGINT  NOT NULL,
    tracking        TEXT    NOT NULL DEFAULT '{}',
    PRIMARY KEY (tenant, call_id)
);
CREATE INDEX call_records_started ON call_records (tenant, started_at, call_id);
CREATE INDEX call_records_ani ON call_records (tenant, ani, started_at);
CREATE INDEX call_records_queue ON call_records (tenant, queue, started_at);

-- The agents of a record (call_records.agents as rows), for the agent filter.
CREATE TABLE call_record_agents (
    tenant   TEXT    NOT NULL,
    call_id  TEXT    NOT NULL,
    agent    TEXT    NOT NULL,
    position INTEGER NOT NULL,
    PRIMARY KEY (tenant, call_id, agent),
    FOREIGN KEY (tenant, call_id) REFERENCES call_records (tenant, call_id) ON DELETE CASCADE
);
CREATE INDEX call_record_agents_agent ON call_record_agents (tenant, agent);

-- One row per agent state period; ended_at and duration_seconds NULL for the current one.
CREATE TABLE agent_states (
    id               TEXT   NOT NULL PRIMARY KEY,
    tenant           TEXT   NOT NULL,
    agent            TEXT   NOT NULL,
    device           TEXT   NOT NULL DEFAULT '',
    state            TEXT   NOT NULL,
    reason           TEXT   NOT NULL DEFAULT '',
    previous_state   TEXT   NOT NULL DEFAULT '',
    started_at       BIGINT NOT NULL,
    ended_at         BIGINT,
    duration_seconds BIGINT
);
CREATE INDEX agent_states_started ON agent_states (tenant, started_at, id);
CREATE INDEX agent_states_agent ON agent_states (tenant, agent, started_at);
CREATE INDEX agent_states_open ON agent_states (tenant, agent) WHERE ended_at IS NULL;

-- The records consumer's working state per agent (JSON): wrap-up attribution.
CREATE TABLE agent_tracking (
    tenant   TEXT NOT NULL,
    agent    TEXT NOT NULL,
    tracking TEXT NOT NULL,
    PRIMARY KEY (tenant, agent)
);

-- Webhook endpoints. events: JSON array of event type patterns. secret: whsec_….
CREATE TABLE webhooks (
    id          TEXT   NOT NULL PRIMARY KEY,
    tenant      TEXT   NOT NULL,
    url         TEXT   NOT NULL,
    events      TEXT   NOT NULL,
    description TEXT   NOT NULL DEFAULT '',
    secret      TEXT   NOT NULL,
    created_at  BIGINT NOT NULL
);
CREATE INDEX webhooks_tenant ON webhooks (tenant, created_at);

-- The outbox: each event's CloudEvents body once, and one delivery per subscribed webhook.
CREATE TABLE webhook_events (
    id         TEXT   NOT NULL PRIMARY KEY,
    tenant     TEXT   NOT NULL,
    type       TEXT   NOT NULL,
    body       TEXT   NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX webhook_events_created ON webhook_events (created_at);

CREATE TABLE webhook_deliveries (
    id               TEXT    NOT NULL PRIMARY KEY,
    webhook_id       TEXT    NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    event_id         TEXT    NOT NULL REFERENCES webhook_events (id) ON DELETE CASCADE,
    tenant           TEXT    NOT NULL,
    event_type       TEXT    NOT NULL,
    status           TEXT    NOT NULL CHECK (status IN ('pending', 'delivered', 'dead_letter')),
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  BIGINT,
    last_attempt_at  BIGINT,
    last_status_code INTEGER NOT NULL DEFAULT 0,
    last_error       TEXT    NOT NULL DEFAULT '',
    created_at       BIGINT  NOT NULL,
    delivered_at     BIGINT
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (status, next_attempt_at);
CREATE INDEX webhook_deliveries_webhook ON webhook_deliveries (webhook_id, created_at, id);
CREATE INDEX webhook_deliveries_event ON webhook_deliveries (event_id);

-- API keys, by the hex SHA-256 of the key. scopes: JSON array.
CREATE TABLE api_keys (
    id         TEXT   NOT NULL PRIMARY KEY,
    tenant     TEXT   NOT NULL,
    name       TEXT   NOT NULL DEFAULT '',
    prefix     TEXT   NOT NULL,
    key_hash   TEXT   NOT NULL UNIQUE,
    scopes     TEXT   NOT NULL,
    created_by TEXT   NOT NULL DEFAULT '',
    created_at BIGINT NOT NULL,
    revoked_at BIGINT
);
CREATE INDEX api_keys_tenant ON api_keys (tenant, created_at);
