"""Attribute history and roll-ups on PostgreSQL (`HistoryStore`, migration 0006).

Mixed into `PostgresStore`. Concurrency: every history write takes the same transaction-level
advisory lock per (tenant, entity id) as `transact` (instances recorded by an entity write come
through `_take_history` inside `transact`'s group transaction, which holds them already), so the
writes of one series are serialised and a roll-up recomputation never races an insert into the
buckets it rewrites. Roll-up upserts are sorted by key, so two writers never deadlock on them.

Partitions: `instance` is range-partitioned by month of `t` (UTC). The store creates the
partition of a month (and of the month after it) the first time rows for it arrive, on a
separate pooled connection and BEFORE the writing transaction touches `instance`: creating a
partition takes an ACCESS EXCLUSIVE lock on the parent for a moment, which a transaction that
already inserted into `instance` would otherwise hold against its own helper. Several processes
creating the same month are serialised by an advisory lock and `IF NOT EXISTS`. A lock wait
longer than `_LOCK_TIMEOUT` fails the write (retryable) instead of hanging. Purges drop whole
partitions that are entirely older than the cutoff (`DETACH … CONCURRENTLY`, then `DROP`), so
retention never deletes row by row what it can unlink.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from collections.abc import Set as AbstractSet
from datetime import UTC, datetime
from itertools import repeat
from typing import TYPE_CHECKING, Any

import numpy as np
import psycopg
from psycopg import sql

from smartregion.errors import BadRequestData
from smartregion.storage.history import (
    BulkColumns,
    BulkPlan,
    BulkRow,
    CoverRow,
    DropHistory,
    HistoryQuery,
    HistoryStore,
    InstanceRow,
    LoadInstances,
    Observation,
    Rollup,
    Series,
    SeriesHistory,
    SeriesSpan,
    Shapes,
    format_instance_id,
    now_micros,
    page_plan,
    parse_instance_id,
    plan_bulk,
    shared_docs,
    stored_at,
    stored_instance,
    take_history_rows,
)
from smartregion.storage.rollups import (
    DAY,
    FINEST,
    LEVELS,
    Summary,
    assemble,
    encode_instance,
    merge_spans,
    micros,
    partial_columns,
    partial_rows,
    shape_ref,
    split_window,
    summarise_points,
)

if TYPE_CHECKING:
    from psycopg_pool import AsyncConnectionPool

Conn = psycopg.AsyncConnection[Any]

#: advisory lock key serialising partition creation across processes (arbitrary constant)
_PARTITION_LOCK = 0x5EA7_0006
#: the instances stored at (series, t) pairs (`_stored_at`)
_STORED_AT = (
    "SELECT i.series_key, i.t, i.seq, i.dm, i.num, i.doc FROM unnest(%b::bigint[], %b::bigint[])"
    " AS u(s, t) CROSS JOIN LATERAL (SELECT i.series_key, i.t, i.seq, i.dm, i.num, i.doc"
    " FROM instance i WHERE i.series_key = u.s AND i.t = u.t OFFSET 0) AS i"
)
_LOCK_TIMEOUT = "10s"
_ROLLUP_COLUMNS = "n, total, sumsq, vmin, vmax, first_t, first_v, last_t, last_v"
#: raw edges read with constant bounds each (partition pruning at plan time) up to this many
_EDGES_AS_CONSTANTS = 16
_INSERT = (
    "INSERT INTO instance (series_key, t, seq, dm, dc, num, doc)"
    " SELECT u.s, u.t, u.k + coalesce((SELECT max(i.seq) + 1 FROM instance i"
    " WHERE i.series_key = u.s AND i.t = u.t), 0), u.dm, u.dc, u.num, u.doc"
    " FROM unnest(%b::bigint[], %b::bigint[], %b::int[], %b::bigint[], %b::bigint[],"
    " %b::float8[], %b::bytea[]) AS u(s, t, k, dm, dc, num, doc)"
)
#: rows whose sequence numbers are computed beforehand (an entity write's, `_stored_at`)
_INSERT_PLAIN = (
    "INSERT INTO instance (series_key, t, seq, dm, dc, num, doc)"
    " SELECT * FROM unnest(%b::bigint[], %b::bigint[], %b::int[], %b::bigint[], %b::bigint[],"
    " %b::float8[], %b::bytea[])"
)
#: the roll-up rows of series that have none yet (`_fold`)
_FOLD_NEW = (
    f"INSERT INTO rollup (series_key, level, bucket, {_ROLLUP_COLUMNS})"
    " SELECT * FROM unnest(%b::bigint[], %b::smallint[], %b::bigint[], %b::bigint[],"
    " %b::float8[], %b::float8[], %b::float8[], %b::float8[], %b::bigint[], %b::float8[],"
    " %b::bigint[], %b::float8[])"
)
_FOLD = (
    f"INSERT INTO rollup AS r (series_key, level, bucket, {_ROLLUP_COLUMNS})"
    " SELECT * FROM unnest(%b::bigint[], %b::smallint[], %b::bigint[], %b::bigint[],"
    " %b::float8[], %b::float8[], %b::float8[], %b::float8[], %b::bigint[], %b::float8[],"
    " %b::bigint[], %b::float8[])"
    " ON CONFLICT (series_key, level, bucket) DO UPDATE SET"
    " n = r.n + excluded.n, total = r.total + excluded.total,"
    " sumsq = r.sumsq + excluded.sumsq,"
    " vmin = least(r.vmin, excluded.vmin), vmax = greatest(r.vmax, excluded.vmax),"
    " first_v = CASE WHEN excluded.first_t < r.first_t THEN excluded.first_v ELSE r.first_v END,"
    " first_t = least(r.first_t, excluded.first_t),"
    " last_v = CASE WHEN excluded.last_t >= r.last_t THEN excluded.last_v ELSE r.last_v END,"
    " last_t = greatest(r.last_t, excluded.last_t)"
)
_REPLACE = (
    f"INSERT INTO rollup AS r (series_key, level, bucket, {_ROLLUP_COLUMNS})"
    " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
    " ON CONFLICT (series_key, level, bucket) DO UPDATE SET"
    " n = excluded.n, total = excluded.total, sumsq = excluded.sumsq, vmin = excluded.vmin,"
    " vmax = excluded.vmax, first_t = excluded.first_t, first_v = excluded.first_v,"
    " last_t = excluded.last_t, last_v = excluded.last_v"
)
_TIME_EXPR = {
    "observedAt": "t",
    "modifiedAt": "(t + coalesce(dm, 0))",
    "createdAt": "(t + coalesce(dm, 0) + coalesce(dc, 0))",
}
_COPY = "COPY instance (series_key, t, seq, dm, dc, num, doc) FROM STDIN (FORMAT BINARY)"
_COPY_TYPES = ["int8", "int8", "int4", "int8", "int8", "float8", "bytea"]
# binary COPY (PostgreSQL docs, "COPY", Binary Format): signature, flags, header extension
_COPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + bytes(8)
_COPY_TRAILER = b"\xff\xff"
#: (field, big-endian type, constant) of an instance row in binary COPY up to its document:
#: a field count, then each field's length (-1: NULL) and value; `dc` is always NULL here
_COPY_ROW = [
    ("fields", ">i2", 7),
    ("l_key", ">i4", 8), ("key", ">i8", None),
    ("l_t", ">i4", 8), ("t", ">i8", None),
    ("l_seq", ">i4", 4), ("seq", ">i4", None),
    ("l_dm", ">i4", 8), ("dm", ">i8", None),
    ("l_dc", ">i4", -1),
    ("l_num", ">i4", 8), ("num", ">f8", None),
    ("l_doc", ">i4", None),
]  # fmt: skip
#: a batch with more distinct documents than this is formatted row by row
_COPY_DOCS = 16


def copy_data(plan: BulkPlan) -> bytes | None:
    """The whole binary COPY data of a bulk plan's rows, formatted column-wise with numpy, in
    the plan's row order (the time order of each series: the history stays clustered and its
    key index grows by appending); None when a row has no number or the documents are many.

    Every row is laid out in a fixed-size record with room for the longest document; the
    records are then cut to each row's own length (a byte mask), which keeps their order."""
    if None in plan.nums:
        return None
    distinct = list(dict.fromkeys(plan.docs))
    if len(distinct) > _COPY_DOCS:
        return None
    n = len(plan.keys)
    widest = max((len(doc) for doc in distinct if doc is not None), default=0)
    fields = [(name, kind) for name, kind, _ in _COPY_ROW]
    if widest:
        fields.append(("doc", f"S{widest}"))
    records = np.empty(n, dtype=np.dtype(fields))
    columns: dict[str, Any] = {
        "key": plan.keys, "t": plan.times, "seq": plan.seq_column(), "dm": plan.dms,
        "num": plan.nums,
    }  # fmt: skip
    for name, _, constant in _COPY_ROW:
        if name != "l_doc":
            records[name] = constant if constant is not None else columns[name]
    if len(distinct) == 1:
        doc = distinct[0]
        records["l_doc"] = -1 if doc is None else len(doc)
        if doc is not None:
            records["doc"] = doc
        return b"".join((_COPY_HEADER, records.tobytes(), _COPY_TRAILER))
    lengths = np.asarray([-1 if doc is None else len(doc) for doc in plan.docs], dtype=np.int32)
    records["l_doc"] = lengths
    records["doc"] = [b"" if doc is None else doc for doc in plan.docs]
    fixed = records.dtype.itemsize - widest
    keep = np.arange(records.dtype.itemsize) < (fixed + np.maximum(lengths, 0))[:, None]
    body = records.view(np.uint8).reshape(n, records.dtype.itemsize)[keep]
    return b"".join((_COPY_HEADER, body.tobytes(), _COPY_TRAILER))


def month_of(t: int) -> tuple[int, int]:
    """The (year, month) of a time in µs, UTC."""
    when = datetime.fromtimestamp(t // 1_000_000, UTC)
    return when.year, when.month


def month_bounds(year: int, month: int) -> tuple[int, int]:
    """`[start, end)` of a month in µs."""
    nxt = (year + 1, 1) if month == 12 else (year, month + 1)
    return (
        micros(datetime(year, month, 1, tzinfo=UTC)),
        micros(datetime(nxt[0], nxt[1], 1, tzinfo=UTC)),
    )


def partition_name(year: int, month: int) -> str:
    """The table name of a month's partition."""
    return f"instance_y{year:04d}m{month:02d}"


def _entity_lock(tenant: str, entity_id: str) -> int:
    # the same key as `PostgresStore.transact` (imported late: that module imports this one)
    from smartregion.storage.postgres.store import _lock_key

    return _lock_key(tenant, entity_id)


class PostgresHistory(HistoryStore):
    """The `HistoryStore` part of `PostgresStore`."""

    _partitions: set[tuple[int, int]] | None = None

    @property
    def pool(self) -> AsyncConnectionPool:
        raise NotImplementedError  # provided by PostgresStore

    # --- partitions ----------------------------------------------------------------------

    async def _known_partitions(self, conn: Conn) -> set[tuple[int, int]]:
        cur = await conn.execute(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
            " WHERE i.inhparent = 'instance'::regclass"
        )
        found = set()
        for (name,) in await cur.fetchall():
            if name.startswith("instance_y"):
                found.add((int(name[10:14]), int(name[15:17])))
        return found

    async def _ensure_partitions(self, times: Iterable[int]) -> None:
        """Create the monthly partitions these times fall in (and each next month's)."""
        days = {t // DAY for t in times}
        months: set[tuple[int, int]] = set()
        for day in days:
            year, month = month_of(day * DAY)
            months.add((year, month))
            months.add((year + 1, 1) if month == 12 else (year, month + 1))
        if self._partitions is not None and months <= self._partitions:
            return
        async with self.pool.connection() as conn:
            if self._partitions is None:
                self._partitions = await self._known_partitions(conn)
            missing = sorted(months - self._partitions)
            if not missing:
                return
            async with conn.transaction():
                await conn.execute(f"SET LOCAL lock_timeout = '{_LOCK_TIMEOUT}'")
                await conn.execute("SELECT pg_advisory_xact_lock(%s)", (_PARTITION_LOCK,))
                for year, month in missing:
                    lo, hi = month_bounds(year, month)
                    await conn.execute(
                        sql.SQL(
                            "CREATE TABLE IF NOT EXISTS {} PARTITION OF instance"
                            " FOR VALUES FROM ({}) TO ({})"
                        ).format(sql.Identifier(partition_name(year, month)), lo, hi)
                    )
            self._partitions.update(missing)

    async def partitions(self) -> list[str]:
        """The names of the history partitions, oldest first (for operators and tests)."""
        async with self.pool.connection() as conn:
            found = await self._known_partitions(conn)
        return [partition_name(y, m) for y, m in sorted(found)]

    # --- keys ----------------------------------------------------------------------------

    def _name_cache(self) -> dict[tuple[str, str], int]:
        cache: dict[tuple[str, str], int] | None = getattr(self, "_history_names", None)
        if cache is None:
            cache = {}
            self._history_names = cache
        return cache

    async def _shape_refs(
        self, conn: Conn, docs: Iterable[bytes | None], new_shapes: dict[int, bytes] | None = None
    ) -> dict[bytes, bytes]:
        """References to the shared documents among `docs` (shapes made when missing).

        Committed shapes come from the cache; those looked up or made here go into
        `new_shapes`, which the caller publishes to the cache once its transaction commits: a
        look-up also finds the shapes an earlier statement of the same transaction made, and
        those are not there if the transaction fails.
        """
        wanted = sorted(shared_docs(docs))
        if not wanted:
            return {}
        known = self.shape_cache().keys_by_doc()
        refs = {d: shape_ref(known[d]) for d in wanted if d in known}
        unknown = [d for d in wanted if d not in refs]
        if unknown:
            query = "SELECT doc, shape_key FROM shape WHERE doc = ANY(%b)"
            found: list[tuple[bytes, int]] = []
            cur = await conn.execute(query, (unknown,))
            found.extend((bytes(doc), int(key)) for doc, key in await cur.fetchall())
            missing = sorted(set(unknown) - {doc for doc, _ in found})
            if missing:
                await conn.execute(
                    "INSERT INTO shape (doc) SELECT d FROM unnest(%b::bytea[]) AS d"
                    " ON CONFLICT (doc) DO NOTHING",
                    (missing,),
                )
                cur = await conn.execute(query, (missing,))
                found.extend((bytes(doc), int(key)) for doc, key in await cur.fetchall())
            for doc, key in found:
                refs[doc] = shape_ref(key)
                if new_shapes is not None:
                    new_shapes[key] = doc
        return refs

    async def _shapes(self, conn: Conn, docs: Iterable[bytes | None]) -> Shapes:
        """The shape cache, holding every shape these (committed) row docs refer to."""
        shapes = self.shape_cache()
        missing = shapes.missing(docs)
        if missing:
            cur = await conn.execute(
                "SELECT shape_key, doc FROM shape WHERE shape_key = ANY(%b)", (sorted(missing),)
            )
            for key, doc in await cur.fetchall():
                shapes.docs[int(key)] = bytes(doc)
        return shapes

    @staticmethod
    async def _lock(conn: Conn, tenant: str, entity_ids: Iterable[str]) -> None:
        keys = sorted({_entity_lock(tenant, eid) for eid in entity_ids})
        if keys:
            await conn.execute(
                "SELECT count(pg_advisory_xact_lock(k)) FROM unnest(%b::bigint[]) AS k", (keys,)
            )

    @staticmethod
    async def _names(
        conn: Conn, table: str, key: str, column: str, names: list[str]
    ) -> dict[str, int]:
        query = f"SELECT {column}, {key} FROM {table} WHERE {column} = ANY(%b)"
        cur = await conn.execute(query, (names,))
        found = {n: int(k) for n, k in await cur.fetchall()}
        missing = sorted(set(names) - found.keys())
        if missing:
            await conn.execute(
                f"INSERT INTO {table} ({column}) SELECT n FROM unnest(%b::text[]) AS n"
                f" ON CONFLICT ({column}) DO NOTHING",
                (missing,),
            )
            cur = await conn.execute(query, (missing,))
            found.update({n: int(k) for n, k in await cur.fetchall()})
        return found

    async def _series_keys(
        self,
        conn: Conn,
        tenant: str,
        wanted: Iterable[tuple[str, str, str]],
        created: set[int] | None = None,
    ) -> dict[tuple[str, str, str], int]:
        """Keys of the series (entity id, attribute IRI, datasetId), created when missing
        (their keys also go into `created`).

        The caller holds the entities' advisory locks, which every writer of series and
        instances takes first: a series missing here cannot be made by anyone else before
        this transaction ends, so it is inserted plainly — `ON CONFLICT DO NOTHING` (a
        speculative insertion per row) made this insert twice as costly — and has no
        instances yet."""
        wanted = set(wanted)
        # committed dictionary keys are cached by the store (rows never deleted): no look-up
        tenants: dict[str, int] = getattr(self, "_tenants", {})
        iris: dict[str, int] = getattr(self, "_iris", {})
        tenant_key = (
            tenants.get(tenant)
            or (await self._names(conn, "tenant", "tenant_key", "name", [tenant]))[tenant]
        )
        names_wanted = sorted({w[1] for w in wanted})
        attrs = {a: k for a in names_wanted if (k := iris.get(a)) is not None}
        unknown = [a for a in names_wanted if a not in attrs]
        if unknown:
            attrs.update(await self._names(conn, "iri", "iri_key", "iri", unknown))
        names = {v: k for k, v in attrs.items()}
        found: dict[tuple[str, str, str], int] = {}
        cur = await conn.execute(
            "SELECT series_key, entity_id, attr_key, dataset_id FROM series"
            " WHERE tenant_key = %s AND entity_id = ANY(%b)",
            (tenant_key, sorted({w[0] for w in wanted})),
        )
        for key, eid, attr_key, ds in await cur.fetchall():
            name = (eid, names.get(attr_key, ""), ds)
            if name in wanted:
                found[name] = int(key)
        missing = sorted(wanted - found.keys())
        if missing:
            cur = await conn.execute(
                "INSERT INTO series (tenant_key, entity_id, attr_key, dataset_id)"
                " SELECT %s, e, a, d FROM unnest(%b::text[], %b::int[], %b::text[]) AS u(e, a, d)"
                " RETURNING series_key, entity_id, attr_key, dataset_id",
                (
                    tenant_key,
                    [m[0] for m in missing],
                    [attrs[m[1]] for m in missing],
                    [m[2] for m in missing],
                ),
            )
            made = {
                (eid, names[attr_key], ds): int(key)
                for key, eid, attr_key, ds in await cur.fetchall()
            }
            found.update(made)
            if created is not None:
                created.update(made.values())
        return found

    @staticmethod
    async def _select_series(
        conn: Conn,
        tenant: str,
        entity_ids: Sequence[str] | None,
        attrs: Iterable[str] | None,
        dataset_ids: Iterable[str] | None,
    ) -> list[Series]:
        query = (
            "SELECT s.series_key, s.entity_id, i.iri, s.dataset_id FROM series s"
            " JOIN tenant n ON n.tenant_key = s.tenant_key JOIN iri i ON i.iri_key = s.attr_key"
            " WHERE n.name = %s"
        )
        params: list[Any] = [tenant]
        if entity_ids is not None:
            query += " AND s.entity_id = ANY(%b)"
            params.append(list(entity_ids))
        if attrs is not None:
            query += " AND i.iri = ANY(%b)"
            params.append(list(attrs))
        if dataset_ids is not None:
            query += " AND s.dataset_id = ANY(%b)"
            params.append(list(dataset_ids))
        cur = await conn.execute(query + " ORDER BY 1", params)
        return [Series(int(k), e, a, d) for k, e, a, d in await cur.fetchall()]

    # --- writes --------------------------------------------------------------------------

    async def _take_history(
        self, conn: Conn, tenant: str, ops: list[Any], new_shapes: dict[int, bytes] | None = None
    ) -> list[Any]:
        """Apply the `DropHistory`, `RecordInstances` and `LoadInstances` ops of an entity
        transaction; return the other ops. The shapes it looks up or makes go into
        `new_shapes`, for the caller to cache once the transaction commits."""
        rows, drops, loads, rest = take_history_rows(ops)
        for drop in drops:
            await self._drop(conn, tenant, drop)
        if rows:
            await self._record(conn, tenant, rows, locked=True)
        for load in loads:
            await self._load(conn, tenant, load, new_shapes)
        return rest

    async def _record(
        self, conn: Conn, tenant: str, rows: Sequence[InstanceRow], *, locked: bool
    ) -> int:
        now = now_micros()
        encoded = [(row, encode_instance(row.instance, now)) for row in rows]
        # before anything of this transaction touches `instance` (module docstring)
        await self._ensure_partitions(e.t for _, e in encoded)
        if not locked:
            await self._lock(conn, tenant, (r.entity_id for r in rows))
        created: set[int] = set()
        keys = await self._series_keys(
            conn, tenant, {(r.entity_id, r.attr, e.dataset_id) for r, e in encoded}, created
        )
        columns: list[list[Any]] = [[] for _ in range(7)]
        # what is stored at the rows' (series, t) — nothing in a series made just now: the
        # next sequence number at each, and the observations there (redeliveries are skipped)
        seqs, recorded = await self._stored_at(
            conn,
            [
                (key, e.t)
                for r, e in encoded
                if (key := keys[(r.entity_id, r.attr, e.dataset_id)]) not in created
            ],
        )
        points = []
        for row, e in encoded:
            key = keys[(row.entity_id, row.attr, e.dataset_id)]
            if e.dm is not None:
                if (key, e.t, e.num, e.doc) in recorded:
                    continue  # this observation is recorded already (storage/history.py)
                recorded.add((key, e.t, e.num, e.doc))
            seq = seqs.get((key, e.t), 0)
            seqs[(key, e.t)] = seq + 1
            for column, value in zip(
                columns, (key, e.t, seq, e.dm, e.dc, e.num, e.doc), strict=True
            ):
                column.append(value)
            if e.num is not None:
                points.append((key, e.t, e.num))
        if columns[0]:
            await conn.execute(_INSERT_PLAIN, columns)
        await self._fold(conn, points, created)
        return len(columns[0])

    @staticmethod
    async def _stored_at(
        conn: Conn, at: list[tuple[int, int]]
    ) -> tuple[dict[tuple[int, int], int], set[Observation]]:
        """`stored_at` of those (series, t): one statement, an index probe each.

        The probes are a LATERAL subquery behind `OFFSET 0`, which the planner cannot turn
        into a join of its choice: a plain join of the pairs with `instance` was planned, for
        2,000 pairs at 123,000 instances without statistics, as a scan of every partition
        (58 ms against 12), and would be again wherever it guessed the scan cheaper."""
        if not at:
            return {}, set()
        unique = list(dict.fromkeys(at))
        cur = await conn.execute(
            _STORED_AT,
            ([s for s, _ in unique], [t for _, t in unique]),
        )
        return stored_at(
            (s, t, seq, dm, num, bytes(doc) if doc is not None else None)
            for s, t, seq, dm, num, doc in await cur.fetchall()
        )

    @staticmethod
    async def _fold(
        conn: Conn, points: Sequence[tuple[int, int, float]], fresh: AbstractSet[int] = frozenset()
    ) -> None:
        """Fold new points into the roll-ups. Those of `fresh` series (made by this
        transaction, under their entities' locks) have none yet: their buckets are inserted
        plainly, without the upsert's speculative insertion per row."""
        rows = partial_rows(points)
        if fresh:
            new = [row for row in rows if row[0] in fresh]
            if new:
                rows = [row for row in rows if row[0] not in fresh]
                await conn.execute(_FOLD_NEW, [list(column) for column in zip(*new, strict=True)])
        if rows:
            await conn.execute(_FOLD, [list(column) for column in zip(*rows, strict=True)])

    @staticmethod
    async def _recompute(conn: Conn, buckets: set[tuple[int, int]]) -> None:
        """Recompute roll-up buckets from raw rows: the finest ones, then those containing them."""
        touched = buckets
        for index, (level, width) in enumerate(LEVELS):
            parents: set[tuple[int, int]] = set()
            for series, bucket in sorted(touched):
                lo, hi = bucket * width, (bucket + 1) * width
                if index == 0:
                    cur = await conn.execute(
                        "SELECT t, num FROM instance WHERE series_key = %s AND t >= %s"
                        " AND t < %s AND num IS NOT NULL ORDER BY t, seq",
                        (series, lo, hi),
                    )
                    summary = summarise_points(await cur.fetchall())
                else:
                    finer, finer_width = LEVELS[index - 1]
                    cur = await conn.execute(
                        f"SELECT {_ROLLUP_COLUMNS} FROM rollup WHERE series_key = %s"
                        " AND level = %s AND bucket >= %s AND bucket < %s ORDER BY bucket",
                        (series, finer, lo // finer_width, hi // finer_width),
                    )
                    summary = None
                    for row in await cur.fetchall():
                        part = Summary(*row)
                        if summary is None:
                            summary = part
                        else:
                            summary.merge(part)
                if summary is None:
                    await conn.execute(
                        "DELETE FROM rollup WHERE series_key = %s AND level = %s AND bucket = %s",
                        (series, level, bucket),
                    )
                else:
                    await conn.execute(_REPLACE, (series, level, bucket, *summary.astuple()))
                if index + 1 < len(LEVELS):
                    parents.add((series, lo // LEVELS[index + 1][1]))
            touched = parents

    async def append_instances(self, tenant: str, rows: Sequence[InstanceRow]) -> int:
        """Record instances in their own transaction."""
        if not rows:
            return 0
        async with self.pool.connection() as conn, conn.transaction():
            return await self._record(conn, tenant, rows, locked=False)

    async def prepare_load(self, rows: Sequence[BulkRow] | BulkColumns) -> LoadInstances:
        """Check and prepare bulk rows; the monthly partitions they need are made now, before
        the transaction that loads them touches `instance` (module docstring)."""
        load = await super().prepare_load(rows)
        await self._ensure_partitions({t // DAY * DAY for t in load.prepared.times})
        return load

    async def bulk_load(
        self, tenant: str, rows: Sequence[BulkRow] | BulkColumns | LoadInstances
    ) -> int:
        """Load rows with COPY in one transaction, all or nothing."""
        if not len(rows):
            return 0
        load = rows if isinstance(rows, LoadInstances) else await self.prepare_load(rows)
        new_shapes: dict[int, bytes] = {}
        async with self.pool.connection() as conn, conn.transaction():
            await self._lock(conn, tenant, set(load.prepared.entity_ids))
            loaded = await self._load(conn, tenant, load, new_shapes)
        self.shape_cache().docs.update(new_shapes)  # committed now
        return loaded

    async def _load(
        self, conn: Conn, tenant: str, load: LoadInstances, new_shapes: dict[int, bytes] | None
    ) -> int:
        """Load prepared rows in the transaction of `conn` (their entities locked by it)."""
        prepared, now = load.prepared, load.now
        times = prepared.times
        keys = await self._series_keys(conn, tenant, prepared.series())
        refs = await self._shape_refs(conn, set(prepared.docs), new_shapes)
        plan = plan_bulk(prepared, keys, refs, now)
        cur = await conn.execute(
            "SELECT EXISTS (SELECT 1 FROM instance WHERE series_key = ANY(%b)"
            " AND t BETWEEN %s AND %s)",
            (sorted(set(keys.values())), min(times), max(times)),
        )
        taken = await cur.fetchone()
        seqs = plan.seq_column()
        if taken and taken[0]:
            # stored instances in the range: number new rows after those at the same time
            nulls = [None] * len(times)
            await conn.execute(
                _INSERT, [plan.keys, times, seqs, plan.dms, nulls, plan.nums, plan.docs]
            )
        elif (data := copy_data(plan)) is not None:
            async with conn.cursor() as cur, cur.copy(_COPY) as copy:
                await copy.write(data)
        else:
            async with conn.cursor() as cur, cur.copy(_COPY) as copy:
                copy.set_types(_COPY_TYPES)
                # rows formatted by the copy's own (C) formatter; its buffer is sent as it
                # fills, without a coroutine per row
                format_row = copy.formatter.write_row
                for value_row in zip(
                    plan.keys, times, seqs, plan.dms, repeat(None), plan.nums, plan.docs
                ):
                    if chunk := format_row(value_row):
                        await copy.write(chunk)
        partials = partial_columns(plan.keys, times, plan.nums)
        if partials[0]:
            await conn.execute(_FOLD, partials)
        return len(times)

    async def delete_history(
        self, tenant: str, entity_id: str, attr: str | None = None, dataset_id: str | None = None
    ) -> int:
        """Delete an entity's or an attribute's history; how many instances."""
        async with self.pool.connection() as conn, conn.transaction():
            await self._lock(conn, tenant, [entity_id])
            return await self._drop(conn, tenant, DropHistory(entity_id, attr, dataset_id))

    async def _drop(self, conn: Conn, tenant: str, drop: DropHistory) -> int:
        found = await self._select_series(
            conn,
            tenant,
            [drop.entity_id],
            None if drop.attr is None else [drop.attr],
            None if drop.dataset_id is None else [drop.dataset_id],
        )
        keys = [s.key for s in found]
        if not keys:
            return 0
        cur = await conn.execute("DELETE FROM instance WHERE series_key = ANY(%b)", (keys,))
        gone = cur.rowcount
        await conn.execute("DELETE FROM rollup WHERE series_key = ANY(%b)", (keys,))
        await conn.execute("DELETE FROM series WHERE series_key = ANY(%b)", (keys,))
        return gone

    async def _locate(
        self, conn: Conn, tenant: str, entity_id: str, attr: str, instance_id: str
    ) -> tuple[int, int, int, float | None] | None:
        key = parse_instance_id(instance_id)
        if key is None:
            return None
        series = await self._select_series(conn, tenant, [entity_id], [attr], None)
        if key[0] not in {s.key for s in series}:
            return None
        cur = await conn.execute(
            "SELECT num FROM instance WHERE series_key = %s AND t = %s AND seq = %s", key
        )
        row = await cur.fetchone()
        return None if row is None else (*key, row[0])

    async def delete_instance(
        self, tenant: str, entity_id: str, attr: str, instance_id: str
    ) -> bool:
        """Delete one instance (its roll-up buckets are recomputed)."""
        async with self.pool.connection() as conn, conn.transaction():
            await self._lock(conn, tenant, [entity_id])
            found = await self._locate(conn, tenant, entity_id, attr, instance_id)
            if found is None:
                return False
            series, t, seq, num = found
            await conn.execute(
                "DELETE FROM instance WHERE series_key = %s AND t = %s AND seq = %s",
                (series, t, seq),
            )
            if num is not None:
                await self._recompute(conn, {(series, t // FINEST)})
            return True

    async def replace_instance(
        self, tenant: str, entity_id: str, attr: str, instance_id: str, instance: dict[str, Any]
    ) -> str | None:
        """Replace one instance's document; its instanceId (new if its time changed)."""
        doc = dict(instance)
        doc.pop("datasetId", None)
        e = encode_instance(doc, now_micros())
        await self._ensure_partitions([e.t])
        async with self.pool.connection() as conn, conn.transaction():
            await self._lock(conn, tenant, [entity_id])
            found = await self._locate(conn, tenant, entity_id, attr, instance_id)
            if found is None:
                return None
            series, t, seq, num = found
            e = e._replace(doc=(await self._shape_refs(conn, [e.doc])).get(e.doc or b"", e.doc))
            if e.t == t:
                await conn.execute(
                    "UPDATE instance SET dm = %s, dc = %s, num = %s, doc = %s"
                    " WHERE series_key = %s AND t = %s AND seq = %s",
                    (e.dm, e.dc, e.num, e.doc, series, t, seq),
                )
                new_seq = seq
            else:
                await conn.execute(
                    "DELETE FROM instance WHERE series_key = %s AND t = %s AND seq = %s",
                    (series, t, seq),
                )
                await conn.execute(
                    _INSERT, ([series], [e.t], [0], [e.dm], [e.dc], [e.num], [e.doc])
                )
                cur = await conn.execute(
                    "SELECT max(seq) FROM instance WHERE series_key = %s AND t = %s",
                    (series, e.t),
                )
                row = await cur.fetchone()
                new_seq = int(row[0]) if row else 0
            minutes = set()
            if num is not None:
                minutes.add((series, t // FINEST))
            if e.num is not None:
                minutes.add((series, e.t // FINEST))
            await self._recompute(conn, minutes)
            return format_instance_id(series, e.t, new_seq)

    async def purge_history(
        self,
        cutoff: int,
        *,
        series_keys: Sequence[int] | None = None,
        keep_rollups: bool = True,
        batch: int = 10_000,
    ) -> int:
        """Delete instances older than the day of `cutoff`: whole partitions when every series
        goes and a month is entirely older, else a batch per transaction."""
        limit = cutoff // DAY * DAY
        total = 0
        if series_keys is None:
            async with self.pool.connection() as conn:
                found = await self._known_partitions(conn)
                for year, month in sorted(found):
                    if month_bounds(year, month)[1] > limit:
                        continue
                    name = sql.Identifier(partition_name(year, month))
                    cur = await conn.execute(sql.SQL("SELECT count(*) FROM {}").format(name))
                    row = await cur.fetchone()
                    # not in a transaction block: readers and writers of other months go on
                    await conn.execute(
                        sql.SQL("ALTER TABLE instance DETACH PARTITION {} CONCURRENTLY").format(
                            name
                        )
                    )
                    await conn.execute(sql.SQL("DROP TABLE {}").format(name))
                    total += int(row[0]) if row else 0
                    if self._partitions is not None:
                        self._partitions.discard((year, month))
                cur = await conn.execute("SELECT series_key FROM series")
                keys = [int(k) for (k,) in await cur.fetchall()]
        else:
            keys = list(series_keys)
        pending = list(keys)
        while pending:
            async with self.pool.connection() as conn, conn.transaction():
                gone = 0
                while pending and gone < batch:
                    key = pending[0]
                    room = batch - gone
                    cur = await conn.execute(
                        "DELETE FROM instance WHERE (series_key, t, seq) IN"
                        " (SELECT series_key, t, seq FROM instance WHERE series_key = %s"
                        " AND t < %s ORDER BY t LIMIT %s)",
                        (key, limit, room),
                    )
                    gone += cur.rowcount
                    if cur.rowcount < room:
                        pending.pop(0)
                        if not keep_rollups:
                            for level, width in LEVELS:
                                await conn.execute(
                                    "DELETE FROM rollup WHERE series_key = %s AND level = %s"
                                    " AND bucket < %s",
                                    (key, level, limit // width),
                                )
                total += gone
        return total

    # --- reads ---------------------------------------------------------------------------

    async def find_series(
        self,
        tenant: str,
        entity_ids: Sequence[str] | None = None,
        attrs: Sequence[str] | None = None,
        dataset_ids: Sequence[str] | None = None,
    ) -> list[Series]:
        """The series of a tenant narrowed by the criteria given, in key order."""
        async with self.pool.connection() as conn:
            return await self._select_series(conn, tenant, entity_ids, attrs, dataset_ids)

    async def query_instances(self, tenant: str, query: HistoryQuery) -> list[SeriesHistory]:
        """The selected instances per series (see `HistoryStore.query_instances`)."""
        expr = _TIME_EXPR.get(query.timeproperty)
        if expr is None:
            raise BadRequestData(f"timeproperty {query.timeproperty!r} is not supported")
        where = "series_key = %s"
        bounds: list[int] = []
        if query.start is not None:
            where += f" AND {expr} >= %s"
            bounds.append(query.start)
        if query.end is not None:
            where += f" AND {expr} < %s"
            bounds.append(query.end)
        take, extra, newest = page_plan(query)
        direction = "DESC" if newest else "ASC"
        select = (
            f"SELECT t, seq, dm, dc, num, doc FROM instance WHERE {where}"
            f" ORDER BY {expr} {direction}, t {direction}, seq {direction} LIMIT %s"
        )
        async with self.pool.connection() as conn, conn.transaction():
            found = await self._select_series(
                conn, tenant, query.entity_ids, query.attrs, query.dataset_ids
            )
            order = {eid: i for i, eid in enumerate(query.entity_ids)}
            found.sort(key=lambda s: (order.get(s.entity_id, 0), s.attr, s.dataset_id))
            out = []
            for series in found:
                cur = await conn.execute(select, (series.key, *bounds, min(take + extra, 2**62)))
                rows = await cur.fetchall()
                truncated = len(rows) > take
                rows = rows[:take]
                if newest:
                    rows.reverse()
                shapes = await self._shapes(conn, (r[5] for r in rows))
                instances = [
                    stored_instance(series, t, seq, dm, dc, num, shapes.resolve(doc))
                    for t, seq, dm, dc, num, doc in rows
                ]
                out.append(SeriesHistory(series, instances, truncated))
            return out

    async def read_rollups(
        self, series_key: int, level: int, first: int, last: int
    ) -> list[Rollup]:
        """Roll-up rows of buckets `first ≤ bucket < last`, in bucket order."""
        async with self.pool.connection() as conn:
            cur = await conn.execute(
                f"SELECT bucket, {_ROLLUP_COLUMNS} FROM rollup WHERE series_key = %s"
                " AND level = %s AND bucket >= %s AND bucket < %s ORDER BY bucket",
                (series_key, level, first, last),
            )
            rows = await cur.fetchall()
        return [Rollup(series_key, level, int(r[0]), Summary(*r[1:])) for r in rows]

    async def read_points(self, series_key: int, start: int, end: int) -> list[tuple[int, float]]:
        """Numeric points of a series in `[start, end)`."""
        async with self.pool.connection() as conn:
            cur = await conn.execute(
                "SELECT t, num FROM instance WHERE series_key = %s AND t >= %s AND t < %s"
                " AND num IS NOT NULL ORDER BY t, seq",
                (series_key, start, end),
            )
            return [(int(t), float(v)) for t, v in await cur.fetchall()]

    async def series_spans(
        self, series_keys: Sequence[int], start: int | None, end: int | None
    ) -> list[SeriesSpan]:
        """First and last time of each series in the window, and whether it is plain there."""
        lo = -(2**63) if start is None else start
        hi = 2**63 - 1 if end is None else end
        inside = "series_key = s.key AND t >= %(lo)s AND t < %(hi)s"
        # the last term matches the partial index `instance_irregular` (migration 0007); each
        # sub-select is an ordered index probe across the time partitions
        select = (
            f"SELECT (SELECT t FROM instance WHERE {inside} ORDER BY t LIMIT 1),"
            f" (SELECT t FROM instance WHERE {inside} ORDER BY t DESC LIMIT 1),"
            f" EXISTS (SELECT 1 FROM instance WHERE {inside} AND (num IS NULL OR dm IS NULL))"
            " FROM unnest(%(keys)s::bigint[]) WITH ORDINALITY AS s(key, i) ORDER BY s.i"
        )
        async with self.pool.connection() as conn:
            cur = await conn.execute(select, {"keys": list(series_keys), "lo": lo, "hi": hi})
            rows = await cur.fetchall()
        return [SeriesSpan(first, last, not irregular) for first, last, irregular in rows]

    async def read_cover(
        self,
        series_key: int,
        buckets: Sequence[tuple[int, int, int]],
        raw: Sequence[tuple[int, int]],
    ) -> tuple[list[CoverRow], list[tuple[int, float]]]:
        """Roll-up rows of the bucket ranges and numeric points of the raw ranges, one read."""
        ordered = sorted(buckets)
        edges = merge_spans(raw)
        # results in binary: a year of hourly roll-ups (8,760 rows) loads about 3x faster than
        # parsed from text, and every column here is a number
        async with self.pool.connection() as conn, conn.transaction():
            rows: list[CoverRow] = []
            if ordered:
                cur = await conn.execute(
                    "SELECT r.level, r.bucket, r.n, r.total, r.sumsq, r.vmin, r.vmax"
                    " FROM unnest(%b::smallint[], %b::bigint[], %b::bigint[])"
                    " WITH ORDINALITY AS j(level, lo, hi, i)"
                    " JOIN rollup r ON r.series_key = %b AND r.level = j.level"
                    " AND r.bucket >= j.lo AND r.bucket < j.hi ORDER BY j.i, r.bucket",
                    (
                        [b[0] for b in ordered],
                        [b[1] for b in ordered],
                        [b[2] for b in ordered],
                        series_key,
                    ),
                    binary=True,
                )
                rows = await cur.fetchall()
            points: list[tuple[int, float]] = []
            if edges and len(edges) <= _EDGES_AS_CONSTANTS:
                # each edge with constant bounds: the planner prunes to its time partition (a
                # join on bounds from an array plans against every partition: 30 ms at 120)
                cur = await conn.execute(
                    " UNION ALL ".join(
                        f"(SELECT {k} AS k, t, seq, num FROM instance WHERE series_key = %s"
                        " AND t >= %s AND t < %s AND num IS NOT NULL)"
                        for k in range(len(edges))
                    )
                    + " ORDER BY 1, 2, 3",
                    [v for lo, hi in edges for v in (series_key, lo, hi)],
                    binary=True,
                )
                points = [(t, num) for _, t, _, num in await cur.fetchall()]
            elif edges:
                cur = await conn.execute(
                    "SELECT i.t, i.num FROM unnest(%b::bigint[], %b::bigint[])"
                    " WITH ORDINALITY AS j(lo, hi, k) JOIN instance i ON i.series_key = %b"
                    " AND i.t >= j.lo AND i.t < j.hi AND i.t >= %b AND i.t < %b"
                    " WHERE i.num IS NOT NULL ORDER BY j.k, i.t, i.seq",
                    (
                        [e[0] for e in edges],
                        [e[1] for e in edges],
                        series_key,
                        min(e[0] for e in edges),
                        max(e[1] for e in edges),
                    ),
                    binary=True,
                )
                points = await cur.fetchall()
        return rows, points

    async def summarise(
        self, series_key: int, windows: Sequence[tuple[int, int]]
    ) -> list[Summary | None]:
        """Each window's summary from roll-ups plus raw sub-hour edges."""
        plans = [split_window(lo, hi) for lo, hi in windows]
        ranges: dict[int, list[tuple[int, int]]] = {}
        raw: list[tuple[int, int]] = []
        for edges, buckets in plans:
            raw.extend(edges)
            for level, first, last in buckets:
                ranges.setdefault(level, []).append((first, last))
        stored: dict[tuple[int, int], Summary] = {}
        points: list[tuple[int, int, float]] = []
        columns = ", ".join("r." + c for c in _ROLLUP_COLUMNS.split(", "))
        async with self.pool.connection() as conn, conn.transaction():
            for level, unmerged in ranges.items():
                spans = merge_spans(unmerged)
                cur = await conn.execute(
                    f"SELECT r.bucket, {columns} FROM unnest(%b::bigint[], %b::bigint[])"
                    " AS j(lo, hi) JOIN rollup r ON r.series_key = %s AND r.level = %s"
                    " AND r.bucket >= j.lo AND r.bucket < j.hi",
                    ([s[0] for s in spans], [s[1] for s in spans], series_key, level),
                    binary=True,
                )
                for row in await cur.fetchall():
                    stored[(level, int(row[0]))] = Summary(*row[1:])
            if raw:
                edges = merge_spans(raw)  # overlapping windows must not count a point twice
                cur = await conn.execute(
                    "SELECT i.t, i.seq, i.num FROM unnest(%b::bigint[], %b::bigint[]) AS j(lo, hi)"
                    " JOIN instance i ON i.series_key = %s AND i.t >= j.lo AND i.t < j.hi"
                    " WHERE i.num IS NOT NULL",
                    ([r[0] for r in edges], [r[1] for r in edges], series_key),
                    binary=True,
                )
                points = sorted(await cur.fetchall())
        return [assemble(plan, stored, points) for plan in plans]
