-- 0004: sites (issue 11). A site has a time zone and switches; users (their home site) and
-- queues are at a site; a device is unique per site; call records carry their site, its time zone, and their day in it.
--
-- The implicit site 'default' (UTC, the node's --pbx) of a provisioning without sites is a row
-- too (inserted below): the users, queues and records of a database migrated from 0003 are there.

CREATE TABLE sites (
    id        TEXT NOT NULL PRIMARY KEY,
    name      TEXT NOT NULL DEFAULT '',
    time_zone TEXT NOT NULL DEFAULT 'UTC'
);

-- The switches of a site in document order. pbx and ari hold the switch's credentials, as
-- the provisioning file does.
CREATE TABLE site_switches (
    site     TEXT    NOT NULL REFERENCES sites (id) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    pbx      TEXT    NOT NULL,
    ari      TEXT    NOT NULL DEFAULT '',
    PRIMARY KEY (site, position)
);

-- site '' on a user: no home site (a user without a device in a document of several sites).
ALTER TABLE users ADD COLUMN site TEXT NOT NULL DEFAULT 'default';
ALTER TABLE queues ADD COLUMN site TEXT NOT NULL DEFAULT 'default';

-- A device is unique per tenant and site (the same extension may exist at two sites). That
-- it is unique per site across tenants too (the switch is shared) is checked within a
-- provisioning document, as before; the engine of a site refuses a directory that breaks it.
DROP INDEX users_device;
CREATE UNIQUE INDEX users_device ON users (tenant, site, device);

-- started_date: the day (YYYY-MM-DD) started_at falls on in time_zone, for ?date=; '' on
-- records written before this step, whose zone was UTC (the store falls back to the UTC day).
ALTER TABLE call_records ADD COLUMN site TEXT NOT NULL DEFAULT 'default';
ALTER TABLE call_records ADD COLUMN time_zone TEXT NOT NULL DEFAULT 'UTC';
ALTER TABLE call_records ADD COLUMN started_date TEXT NOT NULL DEFAULT '';
CREATE INDEX call_records_date ON call_records (tenant, started_date, started_at);
CREATE INDEX call_records_site ON call_records (tenant, site, started_at);

-- The implicit site, as a row: where the users and queues of every earlier provisioning are.
INSERT INTO sites (id, name, time_zone) VALUES ('default', '', 'UTC');
