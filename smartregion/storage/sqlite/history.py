"""Attribute history and roll-ups on SQLite (`HistoryStore`, migration 0005).

Mixed into `SQLiteStore`: every write runs on its single writer thread, so the roll-up
maintenance (read a bucket, write it back) can never interleave with another write. Instances
recorded by an entity write arrive through `_take_history`, which `SQLiteStore._apply` calls
inside the entity write's SAVEPOINT: they commit (or roll back) with it.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable, Sequence
from itertools import repeat
from typing import Any, TypeVar

import orjson

from smartregion.errors import BadRequestData
from smartregion.storage.history import (
    BulkColumns,
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
    partial_columns,
    partial_rows,
    shape_ref,
    split_window,
    summarise_points,
)
from smartregion.storage.sqlite.transactions import immediate

R = TypeVar("R")

_INSERT = (
    "INSERT INTO instance (series_key, t, seq, dm, dc, num, doc) VALUES (?1, ?2,"
    " coalesce((SELECT max(seq) + 1 FROM instance WHERE series_key = ?1 AND t = ?2), 0),"
    " ?3, ?4, ?5, ?6)"
)
# sequence numbers computed beforehand: an entity write's (from `_stored_at`), the bulk path's
# first try (from the batch alone)
_INSERT_PLAIN = (
    "INSERT INTO instance (series_key, t, seq, dm, dc, num, doc) VALUES (?, ?, ?, ?, ?, ?, ?)"
)
#: probes of up to this many (series, time) pairs bind them as parameters, more as one JSON array
_PROBE_PAIRS = 8
_ROLLUP_COLUMNS = "n, total, sumsq, vmin, vmax, first_t, first_v, last_t, last_v"
_FOLD = (
    f"INSERT INTO rollup (series_key, level, bucket, {_ROLLUP_COLUMNS})"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    " ON CONFLICT (series_key, level, bucket) DO UPDATE SET"
    " n = n + excluded.n, total = total + excluded.total, sumsq = sumsq + excluded.sumsq,"
    " vmin = min(vmin, excluded.vmin), vmax = max(vmax, excluded.vmax),"
    " first_v = CASE WHEN excluded.first_t < first_t THEN excluded.first_v ELSE first_v END,"
    " first_t = min(first_t, excluded.first_t),"
    " last_v = CASE WHEN excluded.last_t >= last_t THEN excluded.last_v ELSE last_v END,"
    " last_t = max(last_t, excluded.last_t)"
)
_REPLACE = (
    f"INSERT OR REPLACE INTO rollup (series_key, level, bucket, {_ROLLUP_COLUMNS})"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_TIME_EXPR = {
    "observedAt": "t",
    "modifiedAt": "(t + coalesce(dm, 0))",
    "createdAt": "(t + coalesce(dm, 0) + coalesce(dc, 0))",
}


def _json(values: Iterable[Any]) -> str:
    return orjson.dumps(list(values)).decode()


class SQLiteHistory(HistoryStore):
    """The `HistoryStore` part of `SQLiteStore`."""

    async def _write(self, fn: Callable[[sqlite3.Connection], R]) -> R:
        raise NotImplementedError  # provided by SQLiteStore

    async def _read(self, fn: Callable[[sqlite3.Connection], R]) -> R:
        raise NotImplementedError  # provided by SQLiteStore

    async def _history_tx(self, fn: Callable[[sqlite3.Connection], R]) -> R:
        return await self._write(lambda conn: immediate(conn, fn))

    # --- keys ----------------------------------------------------------------------------

    @staticmethod
    def _key(conn: sqlite3.Connection, table: str, key: str, column: str, name: str) -> int:
        row = conn.execute(f"SELECT {key} FROM {table} WHERE {column} = ?", (name,)).fetchone()
        if row is None:
            cur = conn.execute(f"INSERT INTO {table} ({column}) VALUES (?)", (name,))
            return int(cur.lastrowid or 0)
        return int(row[0])

    def _series_keys(
        self,
        conn: sqlite3.Connection,
        tenant: str,
        wanted: Iterable[tuple[str, str, str]],
        created: set[int] | None = None,
    ) -> dict[tuple[str, str, str], int]:
        """Keys of the series (entity id, attribute IRI, datasetId), created when missing
        (their keys also go into `created`)."""
        wanted = set(wanted)
        # committed dictionary keys are cached by the store (rows never deleted): no look-up
        tenants: dict[str, int] = getattr(self, "_tenants", {})
        iris: dict[str, int] = getattr(self, "_iris", {})
        tenant_key = tenants.get(tenant) or self._key(conn, "tenant", "tenant_key", "name", tenant)
        attrs = {
            a: iris.get(a) or self._key(conn, "iri", "iri_key", "iri", a)
            for a in sorted({w[1] for w in wanted})
        }
        by_attr_key = {v: k for k, v in attrs.items()}
        found: dict[tuple[str, str, str], int] = {}
        entity_ids = {w[0] for w in wanted}
        select = (
            "SELECT series_key, entity_id, attr_key, dataset_id FROM series WHERE tenant_key = ?"
        )
        if len(entity_ids) == 1:  # a single-entity write: a key lookup, no JSON array to scan
            rows = conn.execute(select + " AND entity_id = ?", (tenant_key, *entity_ids))
        else:
            rows = conn.execute(
                select + " AND entity_id IN (SELECT value FROM json_each(?))",
                (tenant_key, _json(entity_ids)),
            )
        for key, eid, attr_key, ds in rows:
            name = (eid, by_attr_key.get(attr_key, ""), ds)
            if name in wanted:
                found[name] = int(key)
        missing = sorted(wanted - found.keys())
        if missing:
            # the single writer hands out the keys itself: one executemany (a batch creating
            # 1,000 entities makes 2,000 series), not an INSERT and its lastrowid each
            first = int(
                conn.execute("SELECT coalesce(max(series_key), 0) + 1 FROM series").fetchone()[0]
            )
            conn.executemany(
                "INSERT INTO series (series_key, tenant_key, entity_id, attr_key, dataset_id)"
                " VALUES (?, ?, ?, ?, ?)",
                [(first + i, tenant_key, e, attrs[a], d) for i, (e, a, d) in enumerate(missing)],
            )
            found.update((name, first + i) for i, name in enumerate(missing))
            if created is not None:
                created.update(range(first, first + len(missing)))
        return found

    def _shape_refs(
        self,
        conn: sqlite3.Connection,
        docs: Iterable[bytes | None],
        new_shapes: dict[int, bytes] | None = None,
    ) -> dict[bytes, bytes]:
        """References to the shared documents among `docs` (shapes made when missing).

        Committed shapes come from the cache; those looked up or made here go into
        `new_shapes`, which the caller publishes to the cache once its transaction commits.
        """
        wanted = sorted(shared_docs(docs))
        if not wanted:
            return {}
        known = self.shape_cache().keys_by_doc()
        refs: dict[bytes, bytes] = {}
        for doc in wanted:
            key = known.get(doc)
            if key is None:
                row = conn.execute("SELECT shape_key FROM shape WHERE doc = ?", (doc,)).fetchone()
                if row is None:
                    row = (conn.execute("INSERT INTO shape (doc) VALUES (?)", (doc,)).lastrowid,)
                key = int(row[0] or 0)
                if new_shapes is not None:
                    new_shapes[key] = doc
            refs[doc] = shape_ref(key)
        return refs

    def _shapes(self, conn: sqlite3.Connection, docs: Iterable[bytes | None]) -> Shapes:
        """The shape cache, holding every shape these (committed) row docs refer to."""
        shapes = self.shape_cache()
        missing = shapes.missing(docs)
        if missing:
            for key, doc in conn.execute(
                "SELECT shape_key, doc FROM shape WHERE shape_key IN (SELECT value FROM json_each(?))",
                (_json(missing),),
            ):
                shapes.docs[int(key)] = bytes(doc)
        return shapes

    @staticmethod
    def _select_series(
        conn: sqlite3.Connection,
        tenant: str,
        entity_ids: Sequence[str] | None,
        attrs: Sequence[str] | frozenset[str] | None,
        dataset_ids: Sequence[str] | frozenset[str] | None,
    ) -> list[Series]:
        sql = (
            "SELECT s.series_key, s.entity_id, i.iri, s.dataset_id FROM series s"
            " JOIN tenant n ON n.tenant_key = s.tenant_key JOIN iri i ON i.iri_key = s.attr_key"
            " WHERE n.name = ?"
        )
        params: list[Any] = [tenant]
        if entity_ids is not None:
            sql += " AND s.entity_id IN (SELECT value FROM json_each(?))"
            params.append(_json(entity_ids))
        if attrs is not None:
            sql += " AND i.iri IN (SELECT value FROM json_each(?))"
            params.append(_json(attrs))
        if dataset_ids is not None:
            sql += " AND s.dataset_id IN (SELECT value FROM json_each(?))"
            params.append(_json(dataset_ids))
        return [Series(int(k), e, a, d) for k, e, a, d in conn.execute(sql + " ORDER BY 1", params)]

    # --- writes --------------------------------------------------------------------------

    def _take_history(
        self,
        conn: sqlite3.Connection,
        tenant: str,
        ops: list[Any],
        new_shapes: dict[int, bytes] | None = None,
    ) -> list[Any]:
        """Apply the `DropHistory` and `RecordInstances` ops of an entity transaction; return
        the other ops. Shapes it makes or looks up go into `new_shapes` (`_shape_refs`)."""
        rows, drops, loads, rest = take_history_rows(ops)
        for drop in drops:
            self._drop(conn, tenant, drop)
        if rows:
            self._record(conn, tenant, rows, new_shapes)
        for load in loads:
            self._load(conn, tenant, load)
        return rest

    def _record(
        self,
        conn: sqlite3.Connection,
        tenant: str,
        rows: Sequence[InstanceRow],
        new_shapes: dict[int, bytes] | None = None,
    ) -> int:
        now = now_micros()
        encoded = [(row, encode_instance(row.instance, now)) for row in rows]
        created: set[int] = set()
        keys = self._series_keys(
            conn, tenant, {(r.entity_id, r.attr, e.dataset_id) for r, e in encoded}, created
        )
        refs = self._shape_refs(conn, (e.doc for _, e in encoded), new_shapes)
        # what is stored at the rows' (series, t) — nothing in a series made just now: the
        # next sequence number at each, and the observations there (redeliveries are skipped)
        seqs, seen = self._stored_at(
            conn,
            [
                (key, e.t)
                for r, e in encoded
                if (key := keys[(r.entity_id, r.attr, e.dataset_id)]) not in created
            ],
        )
        values = []
        points = []
        for row, e in encoded:
            key = keys[(row.entity_id, row.attr, e.dataset_id)]
            doc = refs.get(e.doc, e.doc) if e.doc is not None else None
            if e.dm is not None:
                if (key, e.t, e.num, doc) in seen:
                    continue  # this observation is recorded already (storage/history.py)
                seen.add((key, e.t, e.num, doc))
            seq = seqs.get((key, e.t), 0)
            seqs[(key, e.t)] = seq + 1
            values.append((key, e.t, seq, e.dm, e.dc, e.num, doc))
            if e.num is not None:
                points.append((key, e.t, e.num))
        conn.executemany(_INSERT_PLAIN, values)
        self._fold(conn, points)
        return len(values)

    @staticmethod
    def _stored_at(
        conn: sqlite3.Connection, at: list[tuple[int, int]]
    ) -> tuple[dict[tuple[int, int], int], set[Observation]]:
        """`stored_at` of those (series, t): one statement, a key lookup each."""
        if not at:
            return {}, set()
        unique = list(dict.fromkeys(at))
        if len(unique) <= _PROBE_PAIRS:
            # a single-entity write's few points: (series, t) pairs as parameters, no JSON (an
            # OR of key lookups: SQLite 3.40 scans the table for a row-value IN (VALUES …))
            pairs = " OR ".join(["(i.series_key = ? AND i.t = ?)"] * len(unique))
            rows = conn.execute(
                f"SELECT i.series_key, i.t, i.seq, i.dm, i.num, i.doc FROM instance i WHERE {pairs}",
                [x for pair in unique for x in pair],
            ).fetchall()
        else:
            rows = conn.execute(
                "SELECT i.series_key, i.t, i.seq, i.dm, i.num, i.doc FROM json_each(?) j"
                " JOIN instance i ON i.series_key = json_extract(j.value, '$[0]')"
                " AND i.t = json_extract(j.value, '$[1]')",
                (_json(unique),),
            ).fetchall()
        return stored_at(rows)

    @staticmethod
    def _fold(conn: sqlite3.Connection, points: Sequence[tuple[int, int, float]]) -> None:
        """Fold new points (of rows just inserted, in recording order) into the roll-ups."""
        rows = partial_rows(points)
        if rows:
            conn.executemany(_FOLD, rows)

    @staticmethod
    def _recompute(conn: sqlite3.Connection, buckets: set[tuple[int, int]]) -> None:
        """Recompute roll-up buckets from raw rows: the finest ones, then those containing them."""
        touched = buckets
        for index, (level, width) in enumerate(LEVELS):
            parents: set[tuple[int, int]] = set()
            for series, bucket in sorted(touched):
                lo, hi = bucket * width, (bucket + 1) * width
                if index == 0:
                    summary = summarise_points(
                        conn.execute(
                            "SELECT t, num FROM instance WHERE series_key = ? AND t >= ?"
                            " AND t < ? AND num IS NOT NULL ORDER BY t, seq",
                            (series, lo, hi),
                        )
                    )
                else:
                    finer, finer_width = LEVELS[index - 1]
                    summary = None
                    for row in conn.execute(
                        f"SELECT {_ROLLUP_COLUMNS} FROM rollup WHERE series_key = ?"
                        " AND level = ? AND bucket >= ? AND bucket < ? ORDER BY bucket",
                        (series, finer, lo // finer_width, hi // finer_width),
                    ):
                        part = Summary(*row)
                        if summary is None:
                            summary = part
                        else:
                            summary.merge(part)
                if summary is None:
                    conn.execute(
                        "DELETE FROM rollup WHERE series_key = ? AND level = ? AND bucket = ?",
                        (series, level, bucket),
                    )
                else:
                    conn.execute(_REPLACE, (series, level, bucket, *summary.astuple()))
                if index + 1 < len(LEVELS):
                    parents.add((series, lo // LEVELS[index + 1][1]))
            touched = parents

    async def append_instances(self, tenant: str, rows: Sequence[InstanceRow]) -> int:
        """Record instances in their own transaction."""
        if not rows:
            return 0
        return await self._history_tx(lambda conn: self._record(conn, tenant, rows))

    async def bulk_load(
        self, tenant: str, rows: Sequence[BulkRow] | BulkColumns | LoadInstances
    ) -> int:
        """Load rows with executemany in one transaction, all or nothing."""
        if not len(rows):
            return 0
        load = rows if isinstance(rows, LoadInstances) else await self.prepare_load(rows)
        return await self._history_tx(lambda conn: self._load(conn, tenant, load))

    def _load(self, conn: sqlite3.Connection, tenant: str, load: LoadInstances) -> int:
        """Load prepared rows in the transaction of `conn` (on the writer thread)."""
        prepared, now = load.prepared, load.now
        keys = self._series_keys(conn, tenant, prepared.series())
        refs = self._shape_refs(conn, set(prepared.docs))
        plan = plan_bulk(prepared, keys, refs, now)
        times = plan.times
        taken = conn.execute(
            "SELECT EXISTS (SELECT 1 FROM instance WHERE series_key IN"
            " (SELECT value FROM json_each(?)) AND t BETWEEN ? AND ?)",
            (_json(set(keys.values())), min(times), max(times)),
        ).fetchone()[0]
        if taken:
            # stored instances in the range: number new rows after those at the same time
            conn.executemany(
                _INSERT, zip(plan.keys, times, plan.dms, repeat(None), plan.nums, plan.docs)
            )
        elif (
            plan.seqs is None
            and None not in plan.nums
            and len(docs := list(dict.fromkeys(plan.docs))) <= 4
        ):
            # the usual batch (numbers, a few documents, no two rows at one time of a series):
            # only what varies is bound, as in a raw three-column insert; `dm` is computed and
            # the document a literal — picked by its number when there are several, so that
            # the rows go in in their (time) order: the key's B-tree grows at its end
            literals = ["NULL" if doc is None else f"X'{doc.hex()}'" for doc in docs]
            rows: Iterable[tuple[Any, ...]] = zip(plan.keys, times, plan.nums, strict=True)
            doc_sql = literals[0]
            if len(docs) > 1:
                number = {doc: i for i, doc in enumerate(docs)}
                numbers = map(number.__getitem__, plan.docs)
                rows = zip(plan.keys, times, plan.nums, numbers, strict=True)
                doc_sql = (
                    "CASE ?4 "
                    + " ".join(f"WHEN {i} THEN {literal}" for i, literal in enumerate(literals))
                    + " END"
                )
            conn.executemany(
                "INSERT INTO instance (series_key, t, seq, dm, num, doc)"
                f" VALUES (?1, ?2, 0, {int(now)} - ?2, ?3, {doc_sql})",
                rows,
            )
        else:
            seqs = plan.seq_column()
            conn.executemany(
                _INSERT_PLAIN,
                zip(plan.keys, times, seqs, plan.dms, repeat(None), plan.nums, plan.docs),
            )
        partials = partial_columns(plan.keys, times, plan.nums)
        conn.executemany(_FOLD, zip(*partials, strict=True))
        return len(times)

    async def delete_history(
        self, tenant: str, entity_id: str, attr: str | None = None, dataset_id: str | None = None
    ) -> int:
        """Delete an entity's or an attribute's history; how many instances."""
        drop = DropHistory(entity_id, attr, dataset_id)
        return await self._history_tx(lambda conn: self._drop(conn, tenant, drop))

    def _drop(self, conn: sqlite3.Connection, tenant: str, drop: DropHistory) -> int:
        found = self._select_series(
            conn,
            tenant,
            [drop.entity_id],
            None if drop.attr is None else [drop.attr],
            None if drop.dataset_id is None else [drop.dataset_id],
        )
        keys = _json(s.key for s in found)
        inside = "series_key IN (SELECT value FROM json_each(?))"
        gone = conn.execute(f"DELETE FROM instance WHERE {inside}", (keys,)).rowcount
        conn.execute(f"DELETE FROM rollup WHERE {inside}", (keys,))
        conn.execute(f"DELETE FROM series WHERE {inside}", (keys,))
        return int(gone)

    def _locate(
        self, conn: sqlite3.Connection, tenant: str, entity_id: str, attr: str, instance_id: str
    ) -> tuple[int, int, int, float | None, str] | None:
        """(series, t, seq, num, datasetId) of an instance of that entity and attribute."""
        key = parse_instance_id(instance_id)
        if key is None:
            return None
        series = self._select_series(conn, tenant, [entity_id], [attr], None)
        mine = {s.key: s for s in series}
        if key[0] not in mine:
            return None
        row = conn.execute(
            "SELECT num FROM instance WHERE series_key = ? AND t = ? AND seq = ?", key
        ).fetchone()
        if row is None:
            return None
        return (*key, row[0], mine[key[0]].dataset_id)

    async def delete_instance(
        self, tenant: str, entity_id: str, attr: str, instance_id: str
    ) -> bool:
        """Delete one instance (its roll-up buckets are recomputed)."""

        def run(conn: sqlite3.Connection) -> bool:
            found = self._locate(conn, tenant, entity_id, attr, instance_id)
            if found is None:
                return False
            series, t, seq, num, _ = found
            conn.execute(
                "DELETE FROM instance WHERE series_key = ? AND t = ? AND seq = ?", (series, t, seq)
            )
            if num is not None:
                self._recompute(conn, {(series, t // FINEST)})
            return True

        return await self._history_tx(run)

    async def replace_instance(
        self, tenant: str, entity_id: str, attr: str, instance_id: str, instance: dict[str, Any]
    ) -> str | None:
        """Replace one instance's document; its instanceId (new if its time changed)."""

        def run(conn: sqlite3.Connection) -> str | None:
            found = self._locate(conn, tenant, entity_id, attr, instance_id)
            if found is None:
                return None
            series, t, seq, num, _ = found
            doc = dict(instance)
            doc.pop("datasetId", None)
            e = encode_instance(doc, now_micros())
            e = e._replace(doc=self._shape_refs(conn, [e.doc]).get(e.doc or b"", e.doc))
            if e.t == t:
                conn.execute(
                    "UPDATE instance SET dm = ?, dc = ?, num = ?, doc = ? WHERE series_key = ?"
                    " AND t = ? AND seq = ?",
                    (e.dm, e.dc, e.num, e.doc, series, t, seq),
                )
                new_seq = seq
            else:
                conn.execute(
                    "DELETE FROM instance WHERE series_key = ? AND t = ? AND seq = ?",
                    (series, t, seq),
                )
                conn.execute(_INSERT, (series, e.t, e.dm, e.dc, e.num, e.doc))
                (new_seq,) = conn.execute(
                    "SELECT max(seq) FROM instance WHERE series_key = ? AND t = ?", (series, e.t)
                ).fetchone()
            minutes = set()
            if num is not None:
                minutes.add((series, t // FINEST))
            if e.num is not None:
                minutes.add((series, e.t // FINEST))
            self._recompute(conn, minutes)
            return format_instance_id(series, e.t, int(new_seq))

        return await self._history_tx(run)

    async def purge_history(
        self,
        cutoff: int,
        *,
        series_keys: Sequence[int] | None = None,
        keep_rollups: bool = True,
        batch: int = 10_000,
    ) -> int:
        """Delete instances older than the day of `cutoff`, a batch per transaction."""
        limit = cutoff // DAY * DAY
        if series_keys is None:
            keys = await self._read(
                lambda conn: [int(k) for (k,) in conn.execute("SELECT series_key FROM series")]
            )
        else:
            keys = list(series_keys)
        total = 0
        pending = list(keys)
        while pending:

            def step(conn: sqlite3.Connection) -> int:
                gone = 0
                while pending and gone < batch:
                    key = pending[0]
                    room = batch - gone
                    deleted = conn.execute(
                        "DELETE FROM instance WHERE series_key = ?1 AND (t, seq) IN"
                        " (SELECT t, seq FROM instance WHERE series_key = ?1 AND t < ?2"
                        " ORDER BY t LIMIT ?3)",
                        (key, limit, room),
                    ).rowcount
                    gone += deleted
                    if deleted < room:
                        pending.pop(0)
                        if not keep_rollups:
                            for level, width in LEVELS:
                                conn.execute(
                                    "DELETE FROM rollup WHERE series_key = ? AND level = ?"
                                    " AND bucket < ?",
                                    (key, level, limit // width),
                                )
                return gone

            total += await self._history_tx(step)
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
        return await self._read(
            lambda conn: self._select_series(conn, tenant, entity_ids, attrs, dataset_ids)
        )

    async def query_instances(self, tenant: str, query: HistoryQuery) -> list[SeriesHistory]:
        """The selected instances per series (see `HistoryStore.query_instances`)."""
        expr = _TIME_EXPR.get(query.timeproperty)
        if expr is None:
            raise BadRequestData(f"timeproperty {query.timeproperty!r} is not supported")

        def run(conn: sqlite3.Connection) -> list[SeriesHistory]:
            found = self._select_series(
                conn, tenant, query.entity_ids, query.attrs, query.dataset_ids
            )
            order = {eid: i for i, eid in enumerate(query.entity_ids)}
            found.sort(key=lambda s: (order.get(s.entity_id, 0), s.attr, s.dataset_id))
            where = "series_key = ?"
            bounds: list[int] = []
            if query.start is not None:
                where += f" AND {expr} >= ?"
                bounds.append(query.start)
            if query.end is not None:
                where += f" AND {expr} < ?"
                bounds.append(query.end)
            take, extra, newest = page_plan(query)
            direction = "DESC" if newest else "ASC"
            sql = (
                f"SELECT t, seq, dm, dc, num, doc FROM instance WHERE {where}"
                f" ORDER BY {expr} {direction}, t {direction}, seq {direction} LIMIT ?"
            )
            out = []
            for series in found:
                rows = conn.execute(sql, (series.key, *bounds, take + extra)).fetchall()
                truncated = len(rows) > take
                rows = rows[:take]
                if newest:
                    rows.reverse()
                shapes = self._shapes(conn, (r[5] for r in rows))
                instances = [
                    stored_instance(series, t, seq, dm, dc, num, shapes.resolve(doc))
                    for t, seq, dm, dc, num, doc in rows
                ]
                out.append(SeriesHistory(series, instances, truncated))
            return out

        return await self._read(run)

    async def read_rollups(
        self, series_key: int, level: int, first: int, last: int
    ) -> list[Rollup]:
        """Roll-up rows of buckets `first ≤ bucket < last`, in bucket order."""
        rows = await self._read(
            lambda conn: conn.execute(
                f"SELECT bucket, {_ROLLUP_COLUMNS} FROM rollup WHERE series_key = ?"
                " AND level = ? AND bucket >= ? AND bucket < ? ORDER BY bucket",
                (series_key, level, first, last),
            ).fetchall()
        )
        return [Rollup(series_key, level, int(r[0]), Summary(*r[1:])) for r in rows]

    async def read_points(self, series_key: int, start: int, end: int) -> list[tuple[int, float]]:
        """Numeric points of a series in `[start, end)`."""
        return await self._read(
            lambda conn: [
                (int(t), float(v))
                for t, v in conn.execute(
                    "SELECT t, num FROM instance WHERE series_key = ? AND t >= ? AND t < ?"
                    " AND num IS NOT NULL ORDER BY t, seq",
                    (series_key, start, end),
                )
            ]
        )

    async def series_spans(
        self, series_keys: Sequence[int], start: int | None, end: int | None
    ) -> list[SeriesSpan]:
        """First and last time of each series in the window, and whether it is plain there."""
        lo = -(2**63) if start is None else start
        hi = 2**63 - 1 if end is None else end
        inside = "series_key = ?1 AND t >= ?2 AND t < ?3"
        # the last term matches the partial index `instance_irregular` (migration 0006)
        sql = (
            f"SELECT (SELECT t FROM instance WHERE {inside} ORDER BY t LIMIT 1),"
            f" (SELECT t FROM instance WHERE {inside} ORDER BY t DESC LIMIT 1),"
            f" EXISTS (SELECT 1 FROM instance WHERE {inside} AND (num IS NULL OR dm IS NULL))"
        )

        def run(conn: sqlite3.Connection) -> list[SeriesSpan]:
            out = []
            for key in series_keys:
                first, last, irregular = conn.execute(sql, (key, lo, hi)).fetchone()
                out.append(SeriesSpan(first, last, not irregular))
            return out

        return await self._read(run)

    async def read_cover(
        self,
        series_key: int,
        buckets: Sequence[tuple[int, int, int]],
        raw: Sequence[tuple[int, int]],
    ) -> tuple[list[CoverRow], list[tuple[int, float]]]:
        """Roll-up rows of the bucket ranges and numeric points of the raw ranges, one read."""

        def run(conn: sqlite3.Connection) -> tuple[list[CoverRow], list[tuple[int, float]]]:
            rows: list[CoverRow] = []
            for level, first, last in sorted(buckets):
                rows.extend(
                    conn.execute(
                        "SELECT level, bucket, n, total, sumsq, vmin, vmax FROM rollup"
                        " WHERE series_key = ? AND level = ? AND bucket >= ? AND bucket < ?"
                        " ORDER BY bucket",
                        (series_key, level, first, last),
                    )
                )
            points: list[tuple[int, float]] = []
            for lo, hi in merge_spans(raw):
                points.extend(
                    conn.execute(
                        "SELECT t, num FROM instance WHERE series_key = ? AND t >= ? AND t < ?"
                        " AND num IS NOT NULL ORDER BY t, seq",
                        (series_key, lo, hi),
                    )
                )
            return rows, points

        return await self._read(run)

    async def summarise(
        self, series_key: int, windows: Sequence[tuple[int, int]]
    ) -> list[Summary | None]:
        """Each window's summary from roll-ups plus raw sub-hour edges."""
        plans = [split_window(lo, hi) for lo, hi in windows]

        def run(conn: sqlite3.Connection) -> list[Summary | None]:
            ranges: dict[int, list[tuple[int, int]]] = {}
            raw: list[tuple[int, int]] = []
            for edges, buckets in plans:
                raw.extend(edges)
                for level, first, last in buckets:
                    ranges.setdefault(level, []).append((first, last))
            stored: dict[tuple[int, int], Summary] = {}
            # CROSS JOIN fixes the loop order (SQLite's rule): one index range per span; as the
            # inner loop the spans' JSON would be parsed again for every roll-up row
            for level, unmerged in ranges.items():
                spans = merge_spans(unmerged)
                for row in conn.execute(
                    f"SELECT r.bucket, {', '.join('r.' + c for c in _ROLLUP_COLUMNS.split(', '))}"
                    " FROM json_each(?) j CROSS JOIN rollup r ON r.series_key = ? AND r.level = ?"
                    " AND r.bucket >= json_extract(j.value, '$[0]') AND r.bucket < json_extract(j.value, '$[1]')",
                    (_json(spans), series_key, level),
                ):
                    stored[(level, int(row[0]))] = Summary(*row[1:])
            points: list[tuple[int, int, float]] = []
            if raw:
                points = conn.execute(
                    "SELECT i.t, i.seq, i.num FROM json_each(?) j CROSS JOIN instance i"
                    " ON i.series_key = ? AND i.t >= json_extract(j.value, '$[0]') AND i.t < json_extract(j.value, '$[1]')"
                    " WHERE i.num IS NOT NULL",
                    (_json(merge_spans(raw)), series_key),
                ).fetchall()
                points.sort()
            return [assemble(plan, stored, points) for plan in plans]

        return await self._read(run)
