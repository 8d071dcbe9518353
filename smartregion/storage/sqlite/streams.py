"""The `StreamStore` part of `SQLiteStore`: event-stream members read from the history rows."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import orjson

from smartregion.core.temporal import SCOPE_HISTORY
from smartregion.storage.history import Series, Shapes, stored_instance
from smartregion.storage.streams import EARLY, LATE, StreamKey, StreamMember, StreamStore

R = TypeVar("R")

_PROMPT = f"(i.dm IS NULL OR (i.dm <= {LATE} AND i.dm >= -{EARLY}))"
# the partial index instance_unprompt's predicate, verbatim (SQLite matches it by its terms)
_UNPROMPT = f"(i.dm > {LATE} OR i.dm < -{EARLY})"

# a scoped data set: an entity scope within it (planning.Dialect.scope_within); NULL: any
_SCOPE = (
    "(? IS NULL OR EXISTS (SELECT 1 FROM json_each(e.doc, '$.scope') sc"
    " WHERE sc.type = 'text' AND ('/' || ltrim(sc.value, '/') = ?"
    " OR substr('/' || ltrim(sc.value, '/'), 1, ?) = ?)))"
)

_SERIES = (
    "SELECT s.series_key, s.entity_id, a.iri, s.dataset_id FROM series s"
    " JOIN iri a ON a.iri_key = s.attr_key"
    # an entity's scope history is no attribute: not published (core.temporal.SCOPE_HISTORY)
    f" AND a.iri <> '{SCOPE_HISTORY}'"
    " JOIN entity e ON e.tenant_key = s.tenant_key AND e.entity_id = s.entity_id"
    " WHERE s.tenant_key = (SELECT tenant_key FROM tenant WHERE name = ?)"
    " AND e.owner_key = (SELECT org_key FROM organisation WHERE name = ?)"
    " AND EXISTS (SELECT 1 FROM entity_type r WHERE r.entity_key = e.entity_key"
    " AND r.type_key IN (SELECT iri_key FROM iri WHERE iri IN (SELECT value FROM json_each(?))))"
    f" AND {_SCOPE}"
)


def _args(tenant: str, owner: str, types: Sequence[str], scope: str | None) -> tuple[Any, ...]:
    """The parameters of `_SERIES`."""
    below = None if scope is None else scope + "/"
    return (tenant, owner, orjson.dumps(list(types)).decode(), scope, scope,
            None if below is None else len(below), below)  # fmt: skip


# one series' latest member in [lo, hi): the prompt rows near its last prompt row by t (their p
# is within LATE + EARLY of their t), and its last unprompt row by p (the partial index)
_LATEST = (
    "SELECT p, series_key, t, seq, dm, dc, num, doc FROM ("
    " SELECT i.t + coalesce(i.dm, 0) AS p, i.series_key, i.t, i.seq, i.dm, i.dc, i.num, i.doc"
    " FROM instance i WHERE i.series_key = :s"
    f" AND i.t >= (SELECT j.t FROM instance j WHERE j.series_key = :s AND j.t < :hi + {EARLY}"
    f" AND j.t + coalesce(j.dm, 0) < :hi AND j.t + coalesce(j.dm, 0) >= :lo"
    f" AND (j.dm IS NULL OR (j.dm <= {LATE} AND j.dm >= -{EARLY}))"
    f" ORDER BY j.t DESC LIMIT 1) - {LATE + EARLY}"
    f" AND i.t < :hi + {EARLY} AND {_PROMPT}"
    " AND i.t + coalesce(i.dm, 0) < :hi AND i.t + coalesce(i.dm, 0) >= :lo"
    " UNION ALL SELECT * FROM ("
    " SELECT i.t + i.dm AS p, i.series_key, i.t, i.seq, i.dm, i.dc, i.num, i.doc FROM instance i"
    f" WHERE i.series_key = :s AND {_UNPROMPT} AND i.t + i.dm < :hi AND i.t + i.dm >= :lo"
    " ORDER BY i.t + i.dm DESC LIMIT 1)"
    ") ORDER BY p DESC, t DESC, seq DESC LIMIT 1"
)


class SQLiteStreams(StreamStore):
    """Reads a data set's members in stream order (see `storage.streams`)."""

    async def _read(self, fn: Callable[[sqlite3.Connection], R]) -> R:
        raise NotImplementedError  # provided by SQLiteStore

    def _shapes(self, conn: sqlite3.Connection, docs: Any) -> Shapes:
        raise NotImplementedError  # provided by SQLiteHistory

    async def stream_members(
        self,
        tenant: str,
        owner: str,
        types: Sequence[str],
        lo: int,
        hi: int,
        *,
        after: StreamKey | None = None,
        limit: int = 1000,
        scope: str | None = None,
    ) -> list[StreamMember]:
        """See `StreamStore.stream_members`."""
        if limit <= 0 or hi <= lo or not types:
            return []
        start: StreamKey = after if after is not None else (lo, -(2**62), -(2**62), -1)

        def run(conn: sqlite3.Connection) -> list[StreamMember]:
            series = {
                int(k): Series(int(k), e, a, d)
                for k, e, a, d in conn.execute(_SERIES, _args(tenant, owner, types, scope))
            }
            if not series:
                return []
            keys = orjson.dumps(sorted(series)).decode()
            sql = (
                "SELECT p, series_key, t, seq, dm, dc, num, doc FROM ("
                " SELECT i.t + coalesce(i.dm, 0) AS p, i.series_key, i.t, i.seq, i.dm, i.dc,"
                " i.num, i.doc FROM instance i"
                " WHERE i.series_key IN (SELECT value FROM json_each(?1))"
                f" AND i.t >= ?2 - {LATE} AND i.t < ?3 + {EARLY} AND {_PROMPT}"
                " UNION ALL"
                " SELECT i.t + i.dm AS p, i.series_key, i.t, i.seq, i.dm, i.dc, i.num, i.doc"
                f" FROM instance i WHERE i.t + i.dm >= ?2 AND i.t + i.dm < ?3 AND {_UNPROMPT}"
                " AND i.series_key IN (SELECT value FROM json_each(?1))"
                ") WHERE p >= ?2 AND p < ?3 AND (p, series_key, t, seq) > (?4, ?5, ?6, ?7)"
                " ORDER BY p, series_key, t, seq LIMIT ?8"
            )
            rows = conn.execute(sql, (keys, lo, hi, *start, limit)).fetchall()
            shapes = self._shapes(conn, (r[7] for r in rows))
            return [
                StreamMember(
                    int(p),
                    series[int(k)],
                    stored_instance(series[int(k)], t, seq, dm, dc, num, shapes.resolve(doc)),
                )
                for p, k, t, seq, dm, dc, num, doc in rows
            ]

        return await self._read(run)

    async def stream_extent(
        self,
        tenant: str,
        owner: str,
        types: Sequence[str],
        without: Sequence[str] = (),
        *,
        scope: str | None = None,
    ) -> tuple[float, float, float, float] | None:
        """See `StreamStore.stream_extent`."""
        if not types:
            return None
        sql = (
            # a Point's exact coordinates; other shapes' R*Tree boxes (32-bit floats, rounded
            # outward: within a metre)
            "SELECT min(coalesce(g.x, r.min_x)), min(coalesce(g.y, r.min_y)),"
            " max(coalesce(g.x, r.max_x)), max(coalesce(g.y, r.max_y)) FROM entity e"
            " JOIN geo_item g ON g.entity_key = e.entity_key"
            " JOIN geo_rtree r ON r.geo_key = g.geo_key"
            " WHERE e.tenant_key = (SELECT tenant_key FROM tenant WHERE name = ?)"
            " AND e.owner_key = (SELECT org_key FROM organisation WHERE name = ?)"
            " AND EXISTS (SELECT 1 FROM entity_type t WHERE t.entity_key = e.entity_key"
            " AND t.type_key IN (SELECT iri_key FROM iri WHERE iri IN (SELECT value FROM json_each(?))))"
            " AND g.attr_key NOT IN (SELECT iri_key FROM iri WHERE iri IN (SELECT value FROM json_each(?)))"
            f" AND {_SCOPE}"
        )
        tenant_, owner_, types_, *in_scope = _args(tenant, owner, types, scope)
        params = (tenant_, owner_, types_, orjson.dumps(list(without)).decode(), *in_scope)

        def run(conn: sqlite3.Connection) -> tuple[float, float, float, float] | None:
            row = conn.execute(sql, params).fetchone()
            if row is None or row[0] is None:
                return None
            return float(row[0]), float(row[1]), float(row[2]), float(row[3])

        return await self._read(run)

    async def stream_nonempty(
        self,
        tenant: str,
        owner: str,
        types: Sequence[str],
        windows: Sequence[tuple[int, int]],
        *,
        scope: str | None = None,
    ) -> list[bool]:
        """See `StreamStore.stream_nonempty`."""
        if not types or not windows:
            return [False] * len(windows)

        def run(conn: sqlite3.Connection) -> list[bool]:
            keys = [int(r[0]) for r in conn.execute(_SERIES, _args(tenant, owner, types, scope))]
            if not keys:
                return [False] * len(windows)
            series = orjson.dumps(keys).decode()
            sql = (
                "SELECT EXISTS (SELECT 1 FROM instance i"
                " WHERE i.series_key IN (SELECT value FROM json_each(?1))"
                f" AND i.t >= ?2 - {LATE} AND i.t < ?3 + {EARLY} AND {_PROMPT}"
                " AND i.t + coalesce(i.dm, 0) >= ?2 AND i.t + coalesce(i.dm, 0) < ?3)"
                " OR EXISTS (SELECT 1 FROM instance i"
                " WHERE i.series_key IN (SELECT value FROM json_each(?1))"
                f" AND i.t + i.dm >= ?2 AND i.t + i.dm < ?3 AND {_UNPROMPT})"
            )
            return [bool(conn.execute(sql, (series, lo, hi)).fetchone()[0]) for lo, hi in windows]

        return await self._read(run)

    async def stream_latest(
        self,
        tenant: str,
        owner: str,
        types: Sequence[str],
        lo: int,
        hi: int,
        *,
        after: str | None = None,
        limit: int = 1000,
        scope: str | None = None,
    ) -> list[StreamMember]:
        """See `StreamStore.stream_latest`."""
        if limit <= 0 or hi <= lo or not types:
            return []

        def run(conn: sqlite3.Connection) -> list[StreamMember]:
            series = sorted(
                (
                    Series(int(k), e, a, d)
                    for k, e, a, d in conn.execute(_SERIES, _args(tenant, owner, types, scope))
                ),
                key=lambda x: str(x.key),
            )
            rows = []
            for item in series:
                if after is not None and str(item.key) <= after:
                    continue
                row = conn.execute(_LATEST, {"s": item.key, "lo": lo, "hi": hi}).fetchone()
                if row is not None:
                    rows.append((item, row))
                    if len(rows) == limit:
                        break
            shapes = self._shapes(conn, (r[7] for _, r in rows))
            return [
                StreamMember(
                    int(p),
                    item,
                    stored_instance(item, t, seq, dm, dc, num, shapes.resolve(doc)),
                )
                for item, (p, _, t, seq, dm, dc, num, doc) in rows
            ]

        return await self._read(run)

    async def stream_member(
        self,
        tenant: str,
        owner: str,
        types: Sequence[str],
        series_key: int,
        t: int,
        seq: int,
        *,
        scope: str | None = None,
    ) -> StreamMember | None:
        """See `StreamStore.stream_member`."""
        if not types:
            return None

        def run(conn: sqlite3.Connection) -> StreamMember | None:
            found = conn.execute(
                f"SELECT * FROM ({_SERIES}) WHERE series_key = ?",
                (*_args(tenant, owner, types, scope), series_key),
            ).fetchone()
            if found is None:
                return None
            series = Series(int(found[0]), found[1], found[2], found[3])
            row = conn.execute(
                "SELECT dm, dc, num, doc FROM instance WHERE series_key = ? AND t = ? AND seq = ?",
                (series_key, t, seq),
            ).fetchone()
            if row is None:
                return None
            dm, dc, num, doc = row
            shapes = self._shapes(conn, [doc])
            instance = stored_instance(series, t, seq, dm, dc, num, shapes.resolve(doc))
            return StreamMember(t + (dm or 0), series, instance)

        return await self._read(run)

    async def stream_start(
        self, tenant: str, owner: str, types: Sequence[str], *, scope: str | None = None
    ) -> int | None:
        """See `StreamStore.stream_start`."""
        if not types:
            return None

        def run(conn: sqlite3.Connection) -> int | None:
            row = conn.execute(
                f"SELECT min(m) FROM (SELECT min((SELECT min(t) FROM instance"
                f" WHERE series_key = s.series_key)) - {EARLY} AS m FROM ({_SERIES}) s"
                f" UNION ALL SELECT min((SELECT min(i.t + i.dm) FROM instance i"
                f" WHERE i.series_key = s.series_key AND {_UNPROMPT})) FROM ({_SERIES}) s)",
                _args(tenant, owner, types, scope) * 2,
            ).fetchone()
            return None if row is None or row[0] is None else int(row[0])

        return await self._read(run)
