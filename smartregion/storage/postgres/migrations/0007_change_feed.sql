-- smartregion PostgreSQL schema, version 7: the change feed behind live streams (api/live.py).
-- One row per committed entity transaction (not per entity): which entities of which tenant it
-- wrote. Readers in any process poll it by `seq`; rows older than a few minutes are pruned.
CREATE TABLE change_feed (
    seq         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant      text NOT NULL,
    entity_ids  jsonb NOT NULL,
    at          double precision NOT NULL
);
