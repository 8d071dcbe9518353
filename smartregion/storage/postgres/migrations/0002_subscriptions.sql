-- smartregion PostgreSQL schema, version 2: NGSI-LD subscriptions and the notification outbox.

CREATE TABLE subscription (
    sub_key            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,  -- creation order
    tenant             text NOT NULL,           -- tenant name ('' = default)
    sub_id             text NOT NULL,
    doc                jsonb NOT NULL,          -- the internal subscription document
    times_sent         bigint NOT NULL DEFAULT 0,
    times_failed       bigint NOT NULL DEFAULT 0,
    last_notification  text,
    last_success       text,
    last_failure       text,
    UNIQUE (tenant, sub_id)
);

-- bumped by every subscription change: workers notice other workers' changes cheaply
CREATE TABLE subscription_version (
    one      integer PRIMARY KEY CHECK (one = 1),
    version  bigint NOT NULL
);
INSERT INTO subscription_version (one, version) VALUES (1, 0);

-- notifications to send; written in the same transaction as the entity write causing them;
-- deliverers claim rows with SELECT … FOR UPDATE SKIP LOCKED
CREATE TABLE outbox (
    seq       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,  -- queueing order
    row_id    text NOT NULL UNIQUE,
    tenant    text NOT NULL,
    sub_id    text NOT NULL,
    body      jsonb NOT NULL,                   -- the Notification (without notifiedAt)
    target    jsonb NOT NULL,                   -- endpoint URI, headers, …
    attempts  integer NOT NULL DEFAULT 0,
    due_at    double precision NOT NULL         -- epoch seconds
);
CREATE INDEX outbox_due ON outbox (due_at);
CREATE INDEX outbox_subscription ON outbox (tenant, sub_id);
