-- smartregion PostgreSQL schema, version 9: the LDES replication client's state (issue 6).

-- one replication of a source stream (URL) into a data set; `state` is the client's JSON
-- (pages known and their caching state, counters); the lease lets one client run at a time
CREATE TABLE ldes_replication (
    replication_key  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant           text NOT NULL,             -- tenant name ('' = default)
    dataset_id       text NOT NULL,
    source           text NOT NULL,             -- the URL the client was given
    state            text NOT NULL DEFAULT '{}',
    members          bigint NOT NULL DEFAULT 0,
    lease_holder     text,
    lease_until      double precision,          -- epoch seconds
    created_at       text NOT NULL,
    updated_at       text NOT NULL,
    UNIQUE (tenant, dataset_id, source)
);

-- every member written (by member IRI), committed with the entity writes it became
CREATE TABLE ldes_member_seen (
    replication_key  bigint NOT NULL,
    member           text NOT NULL,
    PRIMARY KEY (replication_key, member)
);
