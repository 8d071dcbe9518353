-- smartregion PostgreSQL schema, version 6: attribute history and its roll-ups
-- (storage/history.py). One narrow row per attribute instance, in monthly range partitions on
-- the observation time, created by the store when rows for a new month arrive
-- (storage/postgres/history.py) and dropped whole by retention when entirely older than it.
-- Each partition has the (series, time) primary key and a BRIN index on time (the purge and
-- time-range scans across series). Times are bigint µs since the epoch, UTC; the system times
-- are deltas, NULL when implied (storage/rollups.py). Columns ordered for alignment.
CREATE TABLE instance (
    series_key  bigint NOT NULL,
    t           bigint NOT NULL,            -- observedAt, else modifiedAt
    dm          bigint,                     -- modifiedAt - t; NULL: no observedAt
    dc          bigint,                     -- createdAt - modifiedAt; NULL: 0
    num         double precision,           -- the numeric value aggregated; NULL: not a number
    seq         integer NOT NULL,           -- ties at one t, in recording order
    doc         bytea,                      -- the rest of the instance document (JSON)
    PRIMARY KEY (series_key, t, seq)
) PARTITION BY RANGE (t);
CREATE INDEX instance_t ON instance USING brin (t);

-- numeric roll-ups per series, level (0 minute, 1 hour, 2 day) and bucket (t // width)
CREATE TABLE rollup (
    series_key  bigint NOT NULL,
    bucket      bigint NOT NULL,
    first_t     bigint NOT NULL,
    last_t      bigint NOT NULL,
    n           bigint NOT NULL,
    total       double precision NOT NULL,
    sumsq       double precision NOT NULL,
    vmin        double precision NOT NULL,
    vmax        double precision NOT NULL,
    first_v     double precision NOT NULL,
    last_v      double precision NOT NULL,
    level       smallint NOT NULL,
    PRIMARY KEY (series_key, level, bucket)
);
