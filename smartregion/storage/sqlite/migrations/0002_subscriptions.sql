-- smartregion SQLite schema, version 2: NGSI-LD subscriptions and the notification outbox.

CREATE TABLE subscription (
    sub_key            INTEGER PRIMARY KEY,     -- creation order (query pages)
    tenant             TEXT NOT NULL,           -- tenant name ('' = default)
    sub_id             TEXT NOT NULL,
    doc                TEXT NOT NULL,           -- the internal subscription document, JSON
    times_sent         INTEGER NOT NULL DEFAULT 0,
    times_failed       INTEGER NOT NULL DEFAULT 0,
    last_notification  TEXT,
    last_success       TEXT,
    last_failure       TEXT,
    UNIQUE (tenant, sub_id)
);

-- bumped by every subscription change: workers notice other workers' changes cheaply
CREATE TABLE subscription_version (
    one      INTEGER PRIMARY KEY CHECK (one = 1),
    version  INTEGER NOT NULL
);
INSERT INTO subscription_version (one, version) VALUES (1, 0);

-- notifications to send; written in the same transaction as the entity write causing them
CREATE TABLE outbox (
    seq       INTEGER PRIMARY KEY,              -- queueing order
    row_id    TEXT NOT NULL UNIQUE,
    tenant    TEXT NOT NULL,
    sub_id    TEXT NOT NULL,
    body      TEXT NOT NULL,                    -- the Notification (without notifiedAt), JSON
    target    TEXT NOT NULL,                    -- endpoint URI, headers, … JSON
    attempts  INTEGER NOT NULL DEFAULT 0,
    due_at    REAL NOT NULL                     -- epoch seconds
);
CREATE INDEX outbox_due ON outbox (due_at);
CREATE INDEX outbox_subscription ON outbox (tenant, sub_id);
