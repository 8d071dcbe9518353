-- smartregion SQLite schema, version 6: the change feed behind live streams (api/live.py).
-- One row per committed entity transaction (not per entity): which entities of which tenant it
-- wrote. Readers in any process poll it by `seq`; rows older than a few minutes are pruned.
CREATE TABLE change_feed (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,   -- never reused: a reader's position stays valid
    tenant      TEXT NOT NULL,
    entity_ids  TEXT NOT NULL,                       -- JSON array
    at          REAL NOT NULL                        -- seconds since the epoch
);
