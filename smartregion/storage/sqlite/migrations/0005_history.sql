-- smartregion SQLite schema, version 5: attribute history and its roll-ups (storage/history.py).
-- One narrow row per attribute instance, clustered by (series, time): WITHOUT ROWID, so the
-- primary key IS the table and a series' instances in a window are one contiguous range.
-- Times are integers (µs since the epoch, UTC); the system times are deltas, NULL when implied
-- (storage/rollups.py), so a plain numeric sensor value costs the key, `dm` and `num` only.
CREATE TABLE instance (
    series_key  INTEGER NOT NULL,
    t           INTEGER NOT NULL,   -- observedAt, else modifiedAt
    seq         INTEGER NOT NULL,   -- ties at one t, in recording order (0 stores in no bytes)
    dm          INTEGER,            -- modifiedAt - t; NULL: no observedAt (modifiedAt = t)
    dc          INTEGER,            -- createdAt - modifiedAt; NULL: 0
    num         REAL,               -- the numeric value aggregated; NULL: not a number
    doc         BLOB,               -- the rest of the instance document (JSON); NULL: nothing
    PRIMARY KEY (series_key, t, seq)
) WITHOUT ROWID;

-- numeric roll-ups per series, level (0 minute, 1 hour, 2 day) and bucket (t // width)
CREATE TABLE rollup (
    series_key  INTEGER NOT NULL,
    level       INTEGER NOT NULL,
    bucket      INTEGER NOT NULL,
    n           INTEGER NOT NULL,
    total       REAL NOT NULL,
    sumsq       REAL NOT NULL,
    vmin        REAL NOT NULL,
    vmax        REAL NOT NULL,
    first_t     INTEGER NOT NULL,
    first_v     REAL NOT NULL,
    last_t      INTEGER NOT NULL,
    last_v      REAL NOT NULL,
    PRIMARY KEY (series_key, level, bucket)
) WITHOUT ROWID;


-- instance documents that repeat (only a unitCode, a type): kept once, referred to by `doc`
CREATE TABLE shape (
    shape_key  INTEGER PRIMARY KEY,
    doc        BLOB NOT NULL UNIQUE
);
