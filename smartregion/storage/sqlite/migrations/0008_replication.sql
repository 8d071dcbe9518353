-- smartregion SQLite schema, version 8: the LDES replication client's state (issue 6).

-- one replication of a source stream (URL) into a data set; `state` is the client's JSON
-- (pages known and their caching state, counters); the lease lets one client run at a time
CREATE TABLE ldes_replication (
    replication_key  INTEGER PRIMARY KEY,
    tenant           TEXT NOT NULL,             -- tenant name ('' = default)
    dataset_id       TEXT NOT NULL,
    source           TEXT NOT NULL,             -- the URL the client was given
    state            TEXT NOT NULL DEFAULT '{}',
    members          INTEGER NOT NULL DEFAULT 0,
    lease_holder     TEXT,
    lease_until      REAL,                      -- epoch seconds
    created_at       TEXT NOT NULL,
    updated_at       TEXT NOT NULL,
    UNIQUE (tenant, dataset_id, source)
);

-- every member written (by member IRI), committed with the entity writes it became
CREATE TABLE ldes_member_seen (
    replication_key  INTEGER NOT NULL,
    member           TEXT NOT NULL,
    PRIMARY KEY (replication_key, member)
) WITHOUT ROWID;
