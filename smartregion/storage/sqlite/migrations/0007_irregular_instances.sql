-- smartregion SQLite schema, version 7: a partial index of the instance rows that are not a
-- plain number with an observedAt (no `num`, or no `dm`). A sensor series has none, so asking
-- whether a window of it holds any is one index probe: an aggregation over the window can then
-- be answered from roll-ups exactly (broker/aggregates.py) without reading its rows.
CREATE INDEX instance_irregular ON instance (series_key, t) WHERE num IS NULL OR dm IS NULL;
