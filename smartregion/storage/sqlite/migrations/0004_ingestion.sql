-- smartregion SQLite schema, version 4: the MQTT ingestion bridge's dead letters.

-- a message the bridge could not turn into entities (bad JSON, no mapping, invalid entity);
-- kept for the data owner (org) to inspect; the message itself was acknowledged
CREATE TABLE ingest_dead_letter (
    letter_key   INTEGER PRIMARY KEY,           -- arrival order
    tenant       TEXT NOT NULL,                 -- tenant name ('' = default)
    org          TEXT NOT NULL,                 -- the organisation the bridge writes as
    topic        TEXT NOT NULL,
    payload      TEXT NOT NULL,                 -- the payload as text, truncated
    reason       TEXT NOT NULL,
    received_at  TEXT NOT NULL                  -- ISO 8601 UTC
);
CREATE INDEX ingest_dead_letter_org ON ingest_dead_letter (org, tenant, letter_key);
