-- smartregion PostgreSQL schema, version 4: the MQTT ingestion bridge's dead letters.

-- a message the bridge could not turn into entities (bad JSON, no mapping, invalid entity);
-- kept for the data owner (org) to inspect; the message itself was acknowledged
CREATE TABLE ingest_dead_letter (
    letter_key   bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,  -- arrival order
    tenant       text NOT NULL,                 -- tenant name ('' = default)
    org          text NOT NULL,                 -- the organisation the bridge writes as
    topic        text NOT NULL,
    payload      text NOT NULL,                 -- the payload as text, truncated
    reason       text NOT NULL,
    received_at  text NOT NULL                  -- ISO 8601 UTC
);
CREATE INDEX ingest_dead_letter_org ON ingest_dead_letter (org, tenant, letter_key);
