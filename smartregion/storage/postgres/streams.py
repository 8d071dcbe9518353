"""The `StreamStore` part of `PostgresStore`: event-stream members read from the history rows."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import psycopg
from psycopg_pool import AsyncConnectionPool

from smartregion.core.temporal import SCOPE_HISTORY
from smartregion.storage.history import Series, Shapes, stored_instance
from smartregion.storage.streams import EARLY, LATE, StreamKey, StreamMember, StreamStore

Conn = psycopg.AsyncConnection[Any]

_PROMPT = f"(i.dm IS NULL OR (i.dm <= {LATE} AND i.dm >= -{EARLY}))"
# the partial index instance_unprompt's predicate, verbatim
_UNPROMPT = f"(i.dm > {LATE} OR i.dm < -{EARLY})"

# a scoped data set: an entity scope within it (planning.Dialect.scope_within); NULL: any
_SCOPE = (
    "(%s::text IS NULL OR EXISTS (SELECT 1 FROM jsonb_array_elements_text(CASE WHEN"
    " jsonb_typeof(e.doc->'scope') = 'array' THEN e.doc->'scope' END) sc(v)"
    " WHERE '/' || ltrim(sc.v, '/') = %s::text OR starts_with('/' || ltrim(sc.v, '/'), %s::text)))"
)

_SERIES = (
    "SELECT s.series_key, s.entity_id, a.iri, s.dataset_id FROM series s"
    " JOIN iri a ON a.iri_key = s.attr_key"
    # an entity's scope history is no attribute: not published (core.temporal.SCOPE_HISTORY)
    f" AND a.iri <> '{SCOPE_HISTORY}'"
    " JOIN entity e ON e.tenant_key = s.tenant_key AND e.entity_id = s.entity_id"
    " WHERE s.tenant_key = (SELECT tenant_key FROM tenant WHERE name = %s)"
    " AND e.owner_key = (SELECT org_key FROM organisation WHERE name = %s)"
    " AND EXISTS (SELECT 1 FROM entity_type r WHERE r.tenant_key = e.tenant_key"
    " AND r.entity_key = e.entity_key"
    " AND r.type_key IN (SELECT iri_key FROM iri WHERE iri = ANY(%s)))"
    f" AND {_SCOPE}"
)


def _args(tenant: str, owner: str, types: Sequence[str], scope: str | None) -> tuple[Any, ...]:
    """The parameters of `_SERIES`."""
    return (tenant, owner, list(types), scope, scope, None if scope is None else scope + "/")


_MEMBERS = (
    "SELECT p, series_key, t, seq, dm, dc, num, doc FROM ("
    " SELECT i.t + coalesce(i.dm, 0) AS p, i.series_key, i.t, i.seq, i.dm, i.dc, i.num, i.doc"
    " FROM instance i WHERE i.series_key = ANY(%(keys)s)"
    f" AND i.t >= %(lo)s - {LATE} AND i.t < %(hi)s + {EARLY} AND {_PROMPT}"
    " UNION ALL"
    " SELECT i.t + i.dm AS p, i.series_key, i.t, i.seq, i.dm, i.dc, i.num, i.doc"
    " FROM instance i WHERE i.t + i.dm >= %(lo)s AND i.t + i.dm < %(hi)s"
    f" AND {_UNPROMPT} AND i.series_key = ANY(%(keys)s)"
    ") m WHERE p >= %(lo)s AND p < %(hi)s"
    " AND (p, series_key, t, seq) > (%(ap)s, %(as)s, %(at)s, %(aq)s)"
    " ORDER BY p, series_key, t, seq LIMIT %(limit)s"
)


# one series' latest member in [lo, hi): the prompt rows near its last prompt row by t (their p
# is within LATE + EARLY of their t), and its last unprompt row by p (the partial index)
_LATEST = (
    "SELECT p, series_key, t, seq, dm, dc, num, doc FROM ("
    " SELECT i.t + coalesce(i.dm, 0) AS p, i.series_key, i.t, i.seq, i.dm, i.dc, i.num, i.doc"
    " FROM instance i WHERE i.series_key = %(s)s"
    f" AND i.t >= (SELECT j.t FROM instance j WHERE j.series_key = %(s)s AND j.t < %(hi)s + {EARLY}"
    " AND j.t + coalesce(j.dm, 0) < %(hi)s AND j.t + coalesce(j.dm, 0) >= %(lo)s"
    f" AND (j.dm IS NULL OR (j.dm <= {LATE} AND j.dm >= -{EARLY}))"
    f" ORDER BY j.t DESC LIMIT 1) - {LATE + EARLY}"
    f" AND i.t < %(hi)s + {EARLY} AND {_PROMPT}"
    " AND i.t + coalesce(i.dm, 0) < %(hi)s AND i.t + coalesce(i.dm, 0) >= %(lo)s"
    " UNION ALL (SELECT i.t + i.dm AS p, i.series_key, i.t, i.seq, i.dm, i.dc, i.num, i.doc"
    f" FROM instance i WHERE i.series_key = %(s)s AND {_UNPROMPT}"
    " AND i.t + i.dm < %(hi)s AND i.t + i.dm >= %(lo)s ORDER BY i.t + i.dm DESC LIMIT 1)"
    ") m ORDER BY p DESC, t DESC, seq DESC LIMIT 1"
)


class PostgresStreams(StreamStore):
    """Reads a data set's members in stream order (see `storage.streams`)."""

    @property
    def pool(self) -> AsyncConnectionPool:
        raise NotImplementedError  # provided by PostgresStore

    async def _shapes(self, conn: Conn, docs: Iterable[bytes | None]) -> Shapes:
        raise NotImplementedError  # provided by PostgresHistory

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
            "SELECT ST_XMin(x), ST_YMin(x), ST_XMax(x), ST_YMax(x) FROM ("
            "SELECT ST_Extent(g.geom) AS x FROM entity e"
            " JOIN geo_index g ON g.entity_key = e.entity_key"
            " WHERE e.tenant_key = (SELECT tenant_key FROM tenant WHERE name = %s)"
            " AND e.owner_key = (SELECT org_key FROM organisation WHERE name = %s)"
            " AND EXISTS (SELECT 1 FROM entity_type t WHERE t.tenant_key = e.tenant_key"
            " AND t.entity_key = e.entity_key"
            " AND t.type_key IN (SELECT iri_key FROM iri WHERE iri = ANY(%s)))"
            " AND g.attr_key NOT IN (SELECT iri_key FROM iri WHERE iri = ANY(%s))"
            f" AND {_SCOPE}) b"
        )
        tenant_, owner_, types_, *in_scope = _args(tenant, owner, types, scope)
        async with self.pool.connection() as conn:
            cur = await conn.execute(sql, (tenant_, owner_, types_, list(without), *in_scope))
            row = await cur.fetchone()
        if row is None or row[0] is None:
            return None
        return float(row[0]), float(row[1]), float(row[2]), float(row[3])

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
        sql = (
            "SELECT EXISTS (SELECT 1 FROM instance i WHERE i.series_key = ANY(%(keys)s)"
            f" AND i.t >= %(lo)s - {LATE} AND i.t < %(hi)s + {EARLY} AND {_PROMPT}"
            " AND i.t + coalesce(i.dm, 0) >= %(lo)s AND i.t + coalesce(i.dm, 0) < %(hi)s)"
            " OR EXISTS (SELECT 1 FROM instance i WHERE i.series_key = ANY(%(keys)s)"
            f" AND i.t + i.dm >= %(lo)s AND i.t + i.dm < %(hi)s AND {_UNPROMPT})"
        )
        out: list[bool] = []
        async with self.pool.connection() as conn, conn.transaction():
            cur = await conn.execute(_SERIES, _args(tenant, owner, types, scope))
            keys = [int(r[0]) for r in await cur.fetchall()]
            if not keys:
                return [False] * len(windows)
            for lo, hi in windows:
                cur = await conn.execute(sql, {"keys": keys, "lo": lo, "hi": hi})
                row = await cur.fetchone()
                out.append(bool(row and row[0]))
        return out

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
        rows = []
        async with self.pool.connection() as conn, conn.transaction():
            cur = await conn.execute(_SERIES, _args(tenant, owner, types, scope))
            series = sorted(
                (Series(int(k), e, a, d) for k, e, a, d in await cur.fetchall()),
                key=lambda x: str(x.key),
            )
            for item in series:
                if after is not None and str(item.key) <= after:
                    continue
                cur = await conn.execute(_LATEST, {"s": item.key, "lo": lo, "hi": hi})
                row = await cur.fetchone()
                if row is not None:
                    rows.append((item, row))
                    if len(rows) == limit:
                        break
            shapes = await self._shapes(conn, (r[7] for _, r in rows))
        return [
            StreamMember(
                int(p),
                item,
                stored_instance(
                    item,
                    int(t),
                    int(seq),
                    dm,
                    dc,
                    num,
                    shapes.resolve(bytes(doc) if doc is not None else None),
                ),
            )
            for item, (p, _, t, seq, dm, dc, num, doc) in rows
        ]

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
        async with self.pool.connection() as conn, conn.transaction():
            cur = await conn.execute(
                f"SELECT * FROM ({_SERIES}) s WHERE series_key = %s",
                (*_args(tenant, owner, types, scope), series_key),
            )
            found = await cur.fetchone()
            if found is None:
                return None
            series = Series(int(found[0]), found[1], found[2], found[3])
            cur = await conn.execute(
                "SELECT dm, dc, num, doc FROM instance WHERE series_key = %s AND t = %s AND seq = %s",
                (series_key, t, seq),
            )
            row = await cur.fetchone()
            if row is None:
                return None
            dm, dc, num, doc = row
            raw = bytes(doc) if doc is not None else None
            shapes = await self._shapes(conn, [raw])
        instance = stored_instance(series, t, seq, dm, dc, num, shapes.resolve(raw))
        return StreamMember(t + (dm or 0), series, instance)

    async def stream_start(
        self, tenant: str, owner: str, types: Sequence[str], *, scope: str | None = None
    ) -> int | None:
        """See `StreamStore.stream_start`."""
        if not types:
            return None
        sql = (
            f"SELECT min(m) FROM (SELECT min((SELECT min(t) FROM instance"
            f" WHERE series_key = s.series_key)) - {EARLY} AS m FROM ({_SERIES}) s"
            f" UNION ALL SELECT min((SELECT min(i.t + i.dm) FROM instance i"
            f" WHERE i.series_key = s.series_key AND {_UNPROMPT})) FROM ({_SERIES}) s) b"
        )
        async with self.pool.connection() as conn:
            cur = await conn.execute(sql, _args(tenant, owner, types, scope) * 2)
            row = await cur.fetchone()
        return None if row is None or row[0] is None else int(row[0])

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
        async with self.pool.connection() as conn, conn.transaction():
            cur = await conn.execute(_SERIES, _args(tenant, owner, types, scope))
            series = {int(k): Series(int(k), e, a, d) for k, e, a, d in await cur.fetchall()}
            if not series:
                return []
            cur = await conn.execute(
                _MEMBERS,
                {
                    "keys": sorted(series),
                    "lo": lo,
                    "hi": hi,
                    "ap": start[0],
                    "as": start[1],
                    "at": start[2],
                    "aq": start[3],
                    "limit": limit,
                },
            )
            rows = await cur.fetchall()
            shapes = await self._shapes(conn, (r[7] for r in rows))
        return [
            StreamMember(
                int(p),
                series[int(k)],
                stored_instance(
                    series[int(k)],
                    int(t),
                    int(seq),
                    dm,
                    dc,
                    num,
                    shapes.resolve(bytes(doc) if doc is not None else None),
                ),
            )
            for p, k, t, seq, dm, dc, num, doc in rows
        ]
