-- smartregion SQLite schema, version 9: the event streams (storage/streams.py) read members by
-- the time they were recorded (modifiedAt = t + dm). Rows recorded close to their observation
-- time are found in each series' clustered (series_key, t) range; this partial index holds
-- only the others (recorded more than 15 minutes after their observedAt, or more than a
-- minute before it), so ordinary sensor writes do not pay for it. The constants are
-- storage/streams.py LATE and EARLY.
CREATE INDEX instance_unprompt ON instance (series_key, (t + dm))
    WHERE dm > 900000000 OR dm < -60000000;
