"""The PostgreSQL backend: psycopg 3 async, a connection pool, JSONB documents, PostGIS.

Concurrency (the `Store` contract): `transact` takes, in one sorted batch, a transaction-level
advisory lock per (tenant, entity id) — which also covers ids that do not exist yet, so two
concurrent creates of one id serialise — then reads the rows `FOR UPDATE` (which makes other
writers such as `delete_where` wait too), calls `mutate`, writes with one set-based statement per
table (`unnest` of arrays), and commits before returning. Connections run with synchronous
commit on (the server default): an acknowledged write is durable.

`transact` calls are GROUP-COMMITTED: calls that arrive while earlier ones are being written
queue, and a few drainer tasks each take the queued calls of one (tenant, owner) and run them in
ONE transaction — one advisory-lock statement for all their ids, one `SELECT … FOR UPDATE`,
each `mutate` in turn on the state the earlier ones left (as if they ran one after the other),
one set-based write of the final documents, one COMMIT — and only then resolve the callers. A
`mutate` that raises (or returns a document that cannot be serialised) fails its call alone and
contributes nothing; an error of the database fails every call of the group, and nothing of it
is written. Per-statement client work in psycopg, not the database, bounded single-entity
writes: sixteen concurrent PATCHes cost about the statements of one.

Dictionary entries (IRIs, tenants, organisations) are inserted inside the writing transaction,
in sorted order (so concurrent transactions cannot deadlock on them), and cached in memory only
after it commits.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

import orjson
import psycopg
from psycopg.types.json import set_json_dumps, set_json_loads
from psycopg_pool import AsyncConnectionPool

from smartregion.core.qlang import Comparison
from smartregion.core.times import format_datetime, utc_now
from smartregion.storage import migrations
from smartregion.storage.base import (
    DEFAULT_TENANT,
    AttrInfo,
    Delete,
    EntityQuery,
    FeedEntry,
    OwnersCheck,
    Put,
    QueryResult,
    Readable,
    Store,
    StoredContext,
    TypeInfo,
    WriteOp,
    last_op_per_entity,
)
from smartregion.storage.hub import HubStore
from smartregion.storage.indexing import KIND_NAMES, IndexChange, index_change
from smartregion.storage.matchfeedback import MatchFeedbackStore
from smartregion.storage.planning import (
    Dialect,
    Plan,
    plan_query,
    query_iris,
    query_orgs,
    readable_condition,
    readable_iris,
)
from smartregion.storage.postgres.arrays import FastListDumper
from smartregion.storage.postgres.governance import PostgresGovernance
from smartregion.storage.postgres.history import PostgresHistory
from smartregion.storage.postgres.ingestion import PostgresIngestion
from smartregion.storage.postgres.replication import PostgresReplication
from smartregion.storage.postgres.streams import PostgresStreams
from smartregion.storage.postgres.subscriptions import PostgresSubscriptions, take_notifications

__all__ = ["PostgresStore"]

T = TypeVar("T")
Conn = psycopg.AsyncConnection[Any]

_DIALECT = Dialect("postgresql")
_BATCH = 500
#: most `transact` calls committed together, and most groups being written at once
_GROUP_MAX = 64
#: most entity ids of one group: a batch's chunks (`broker/batch.py` CHUNK, 250 entities) are
#: not piled into one transaction but written by drainers of their own, each chunk's
#: statements running in the server while the event loop prepares the next chunk's (with two
#: drainers and groups of up to 2,000 ids, a 1,000-entity batch wrote its last 500 entities
#: in one transaction whose statements the loop could only wait for: 12.4k attr/s, not 15.5k)
_GROUP_IDS = 250
_DRAINERS = 4
#: event-loop turns a drainer lets pass before it takes a group that is not full (`_drain`):
#: calls queued meanwhile join it (16 clients PATCHing: 5–6 → 7–9 a group, docs/benchmarks.md)
_GATHER_TURNS = 2
#: the index rows of (entity, type or attribute) pairs a write removes: each pair's rows
#: found by an index probe (a LATERAL subquery behind `OFFSET 0`, which the planner cannot
#: turn into a join of its choice), then deleted by their row ids. A join of the table with the
#: `unnest` of the pairs was planned, for a batch chunk's 750 pairs at 20,000 entities, as a
#: hash join over a scan of the whole table — 43 ms where the probes take 4, and growing with
#: the table (docs/benchmarks.md, eleventh session). Row ids are safe here: the only statement
#: that updates these rows (`_index`'s retyping) runs under the same entities' advisory locks,
#: so no other transaction moves a row between the probe and the delete.
_DELETE_PAIRS = (
    "DELETE FROM {table} WHERE ctid = ANY(ARRAY(SELECT x.ctid"
    " FROM unnest(%b::bigint[], %b::int[]) AS d(k, a) CROSS JOIN LATERAL"
    " (SELECT ctid FROM {table} v WHERE {match} OFFSET 0) AS x))"
)
_DELETE_TYPES = _DELETE_PAIRS.format(
    table="entity_type",
    match="v.tenant_key = %s AND v.type_key = d.a AND v.entity_key = d.k",
)
_DELETE_VALUES = _DELETE_PAIRS.format(
    table="attr_value", match="v.entity_key = d.k AND v.attr_key = d.a"
)
_DELETE_GEOMS = _DELETE_PAIRS.format(
    table="geo_index", match="v.entity_key = d.k AND v.attr_key = d.a"
)


def _dumps(obj: Any) -> str:
    return orjson.dumps(obj).decode()


def _lock_key(tenant: str, entity_id: str) -> int:
    digest = hashlib.blake2b(f"{tenant}\x00{entity_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


class PostgresStore(
    PostgresGovernance,
    PostgresSubscriptions,
    PostgresIngestion,
    PostgresHistory,
    PostgresReplication,
    PostgresStreams,
    HubStore,
    MatchFeedbackStore,
    Store,
):
    """Entities and their indexes in a PostgreSQL 15+ database with PostGIS."""

    backend = "postgresql"

    def __init__(self, url: str, *, min_size: int = 1, max_size: int = 10) -> None:
        self.url = url
        self.min_size = min_size
        self.max_size = max_size
        self._pool: AsyncConnectionPool | None = None
        self._iris: dict[str, int] = {}
        self._tenants: dict[str, int] = {}
        self._orgs: dict[str, int] = {}
        self._typesets: dict[tuple[int, tuple[int, ...]], int] = {}
        # autovacuum analyses a bulk-loaded table only after a delay; until then the planner
        # works without statistics and picks nested loops over 100k rows, so bulk writers
        # trigger ANALYZE themselves
        self._written = 0
        self._analysed = 0
        self._analyse_task: asyncio.Task[None] | None = None
        # transact calls waiting for a group commit, and the tasks writing them
        self._queue: list[_Job] = []
        self._drainers: set[asyncio.Task[None]] = set()

    @staticmethod
    async def _configure(conn: Conn) -> None:
        set_json_loads(orjson.loads, conn)
        set_json_dumps(_dumps, conn)
        # the columns of set-based writes, encoded in bulk (storage/postgres/arrays.py)
        conn.adapters.register_dumper(list, FastListDumper)

    async def open(self) -> None:
        """Open the connection pool (waiting for its first connections)."""
        if self._pool is not None:
            return
        pool = AsyncConnectionPool(
            self.url,
            min_size=self.min_size,
            max_size=self.max_size,
            kwargs={"autocommit": True},
            configure=self._configure,
            open=False,
        )
        await pool.open(wait=True, timeout=10.0)
        self._pool = pool

    async def close(self) -> None:
        """Close the pool (after queued writes and a running ANALYZE finish)."""
        while self._drainers:
            await asyncio.gather(*self._drainers, return_exceptions=True)
        if self._analyse_task is not None:
            await asyncio.gather(self._analyse_task, return_exceptions=True)
        pool, self._pool = self._pool, None
        if pool is not None:
            await pool.close()

    @property
    def pool(self) -> AsyncConnectionPool:
        """The open connection pool."""
        if self._pool is None:
            raise RuntimeError("the store is not open")
        return self._pool

    async def migrate(self) -> list[str]:
        """Apply pending migrations from `smartregion.storage.postgres.migrations`."""
        found = migrations.discover("smartregion.storage.postgres.migrations")
        async with self.pool.connection() as conn:
            return await migrations.migrate_postgres(conn, found)

    async def health(self) -> None:
        """Raise if the database is unreachable."""
        async with self.pool.connection() as conn:
            await conn.execute("SELECT 1")

    # --- the change feed (live streams) --------------------------------------------------

    async def change_feed(self, after: int, *, limit: int = 500) -> list[FeedEntry]:
        """See `Store.change_feed` (numbers are given at insert, commits may come out of order:
        readers re-read behind their position, `api/live.py`)."""
        async with self.pool.connection() as conn:
            cur = await conn.execute(
                "SELECT seq, tenant, entity_ids, at FROM change_feed WHERE seq > %s"
                " ORDER BY seq LIMIT %s",
                (after, limit),
            )
            rows = await cur.fetchall()
        return [FeedEntry(int(q), t, tuple(ids), float(at)) for q, t, ids, at in rows]

    async def change_feed_head(self) -> int:
        """See `Store.change_feed_head`."""
        async with self.pool.connection() as conn:
            cur = await conn.execute("SELECT coalesce(max(seq), 0) FROM change_feed")
            row = await cur.fetchone()
        return int(row[0]) if row else 0

    async def prune_change_feed(self, before: float) -> int:
        """See `Store.prune_change_feed`."""
        async with self.pool.connection() as conn:
            cur = await conn.execute("DELETE FROM change_feed WHERE at < %s", (before,))
            return int(cur.rowcount)

    # --- dictionaries --------------------------------------------------------------------

    async def _lookup(
        self, conn: Conn, cache: dict[str, int], sql: str, names: Iterable[str], remember: bool
    ) -> dict[str, int]:
        found: dict[str, int] = {}
        missing: list[str] = []
        for name in names:
            key = cache.get(name)
            if key is None:
                missing.append(name)
            else:
                found[name] = key
        if missing:
            cur = await conn.execute(sql, (missing,))
            for name, key in await cur.fetchall():
                found[name] = key
                if remember:
                    cache[name] = key
        return found

    async def _iri_keys(
        self, conn: Conn, iris: Iterable[str], *, remember: bool = True
    ) -> dict[str, int]:
        return await self._lookup(
            conn, self._iris, "SELECT iri, iri_key FROM iri WHERE iri = ANY(%b)", iris, remember
        )

    async def _org_keys(self, conn: Conn, names: Iterable[str]) -> dict[str, int]:
        return await self._lookup(
            conn,
            self._orgs,
            "SELECT name, org_key FROM organisation WHERE name = ANY(%b)",
            names,
            True,
        )

    async def _readable_sql(
        self, conn: Conn, readable: Readable | None
    ) -> tuple[str, list[Any]] | None:
        """` AND <condition>` over `entity e` for `readable` ("" when unrestricted); None: nothing."""
        if readable is None:
            return "", []
        found = readable_condition(
            _DIALECT,
            readable,
            await self._iri_keys(conn, readable_iris(readable)),
            await self._org_keys(conn, set(readable.owners) | {s.owner for s in readable.slices}),
        )
        return None if found is None else (_DIALECT.sql(f" AND ({found[0]})"), found[1])

    async def _tenant_key(self, conn: Conn, tenant: str, *, remember: bool = True) -> int | None:
        found = await self._lookup(
            conn,
            self._tenants,
            "SELECT name, tenant_key FROM tenant WHERE name = ANY(%b)",
            [tenant],
            remember,
        )
        return found.get(tenant)

    @staticmethod
    async def _intern(
        conn: Conn, table: str, key_col: str, name_col: str, names: list[str]
    ) -> dict[str, int]:
        """Insert missing names (sorted: no deadlocks between writers) and return all keys."""
        ordered = sorted(set(names))
        await conn.execute(
            f"INSERT INTO {table} ({name_col}) SELECT n FROM unnest(%b::text[]) AS n"
            f" ON CONFLICT ({name_col}) DO NOTHING",
            (ordered,),
        )
        cur = await conn.execute(
            f"SELECT {name_col}, {key_col} FROM {table} WHERE {name_col} = ANY(%b)", (ordered,)
        )
        return {name: key for name, key in await cur.fetchall()}

    # --- entities ------------------------------------------------------------------------

    async def get_entity(self, tenant: str, entity_id: str) -> dict[str, Any] | None:
        """The current document of one entity, or None."""
        return (await self.get_entities(tenant, [entity_id])).get(entity_id)

    async def get_entities(self, tenant: str, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        """The current documents of those ids that exist, keyed by id."""
        if not ids:
            return {}
        async with self.pool.connection() as conn:
            tenant_key = await self._tenant_key(conn, tenant)
            if tenant_key is None:
                return {}
            cur = await conn.execute(
                "SELECT entity_id, doc FROM entity WHERE tenant_key = %s AND entity_id = ANY(%b)",
                (tenant_key, list(dict.fromkeys(ids))),
            )
            return {eid: doc for eid, doc in await cur.fetchall()}

    async def owners_of(self, tenant: str, ids: Sequence[str]) -> dict[str, str]:
        """The owner organisation of each of those entities that exist, keyed by entity id."""
        if not ids:
            return {}
        async with self.pool.connection() as conn:
            tenant_key = await self._tenant_key(conn, tenant)
            if tenant_key is None:
                return {}
            cur = await conn.execute(
                "SELECT e.entity_id, o.name FROM entity e JOIN organisation o"
                " ON o.org_key = e.owner_key WHERE e.tenant_key = %s AND e.entity_id = ANY(%b)",
                (tenant_key, list(dict.fromkeys(ids))),
            )
            return {eid: name for eid, name in await cur.fetchall()}

    async def transact(
        self,
        tenant: str,
        entity_ids: Sequence[str],
        mutate: Callable[[dict[str, dict[str, Any] | None]], tuple[list[WriteOp], T]],
        *,
        owner: str,
        check_owners: OwnersCheck | None = None,
    ) -> T:
        """Lock, read, mutate, write and COMMIT in one transaction; see `Store.transact`.

        The call joins a group commit (module docstring): it returns after the COMMIT that made
        its writes durable, or raises with nothing of it written.
        """
        if self._pool is None:
            raise RuntimeError("the store is not open")
        job = _Job(
            tenant,
            list(dict.fromkeys(entity_ids)),
            mutate,
            owner,
            asyncio.get_running_loop().create_future(),
            check_owners,
        )
        self._queue.append(job)
        # (a drainer that has just returned stays in the set until its done-callback has run)
        if sum(not task.done() for task in self._drainers) < _DRAINERS:
            task = asyncio.get_running_loop().create_task(self._drain())
            self._drainers.add(task)
            task.add_done_callback(self._drainers.discard)
        result: T = await job.future
        return result

    async def _drain(self) -> None:
        while True:
            # while the calls queued would make a small group, let the event loop turn (twice at
            # most): requests read meanwhile queue theirs too, and share the group's statements
            # and COMMIT; a batch's chunk fills a group at once and is not held back
            for _ in range(_GATHER_TURNS):
                if sum(len(job.ids) for job in self._queue[:_GROUP_MAX]) >= _GROUP_IDS:
                    break
                await asyncio.sleep(0)
            # no await between the emptiness check and returning: a call queued meanwhile finds
            # this task done and starts another
            if not self._queue:
                return
            first = self._queue[0]
            group: list[_Job] = []
            size = 0
            for job in self._queue:
                if (job.tenant, job.owner) != (first.tenant, first.owner):
                    continue
                if group and (len(group) >= _GROUP_MAX or size + len(job.ids) > _GROUP_IDS):
                    break  # big batches are not piled into one huge transaction
                group.append(job)
                size += len(job.ids)
            taken = {id(j) for j in group}
            self._queue = [j for j in self._queue if id(j) not in taken]
            await self._commit_group(group)

    async def _commit_group(self, group: list[_Job]) -> None:
        live = [job for job in group if not job.future.done()]  # cancelled callers drop out
        if not live:
            return
        tenant, owner = live[0].tenant, live[0].owner
        alone = len(live) == 1
        pending = _Pending()
        done: list[tuple[_Job, Any]] = []
        ops: list[WriteOp] = []
        try:
            async with self.pool.connection() as conn, conn.transaction():
                ids = list(dict.fromkeys(eid for job in live for eid in job.ids))
                if ids:
                    locks = sorted({_lock_key(tenant, eid) for eid in ids})
                    await conn.execute(
                        "SELECT count(pg_advisory_xact_lock(k)) FROM unnest(%b::bigint[]) AS k",
                        (locks,),
                    )
                # read before this transaction writes anything: a key found is committed, and
                # tenants are never deleted, so it may be cached
                tenant_key = await self._tenant_key(conn, tenant)
                state: dict[str, dict[str, Any] | None] = dict.fromkeys(ids)
                keys: dict[str, int] = {}
                # the stored text, parsed again for the index diff: `mutate` may alter what it got
                olds: dict[str, str] = {}
                # entity id -> owner organisation, for `check_owners`
                owners: dict[str, str] = {}
                if tenant_key is not None and ids:
                    cur = await conn.execute(
                        "SELECT entity_key, entity_id, doc::text, (SELECT name FROM organisation"
                        " WHERE org_key = entity.owner_key) FROM entity"
                        " WHERE tenant_key = %s AND entity_id = ANY(%b) FOR UPDATE",
                        (tenant_key, ids),
                    )
                    for key, eid, text, owned_by in await cur.fetchall():
                        state[eid] = orjson.loads(text)
                        keys[eid] = key
                        olds[eid] = text
                        if owned_by is not None:
                            owners[eid] = owned_by
                for job in live:
                    current = {eid: state[eid] for eid in job.ids}
                    if alone:
                        if job.check_owners is not None:
                            job.check_owners({e: owners[e] for e in job.ids if e in owners})
                        job_ops, result = job.mutate(current)
                    else:
                        try:
                            if job.check_owners is not None:
                                job.check_owners({e: owners[e] for e in job.ids if e in owners})
                            job_ops, result = job.mutate(current)
                            for op in job_ops:
                                if isinstance(op, Put):
                                    _dumps(op.doc)  # fails here, for this call alone
                        except Exception as exc:
                            job.future.set_exception(exc)
                            continue
                    for op in job_ops:
                        if isinstance(op, Put):
                            if state.get(op.doc["id"]) is None:
                                owners[op.doc["id"]] = owner  # created by this group
                            state[op.doc["id"]] = op.doc
                        elif isinstance(op, Delete):
                            state[op.entity_id] = None
                            owners.pop(op.entity_id, None)
                    ops.extend(job_ops)
                    done.append((job, result))
                # subscriptions: notifications queued by these writes commit with them (§5.11)
                ops = await take_notifications(conn, ops)
                ops = await self._take_history(conn, tenant, ops, pending.shapes)  # history too
                ops = await self._take_replication(conn, ops)  # LDES members seen
                ops = await self._take_dead_letters(conn, ops)  # the MQTT bridge's, with its batch
                if ops:
                    # in pipeline mode: the entity rows, the attribute index and the change feed
                    # go to the server together instead of one round trip each (only statements
                    # whose answers it needs wait: new entities' keys, new IRIs and type sets);
                    # an error fails the group as before, when the pipeline syncs
                    # (docs/architecture.md, "Storage")
                    async with conn.pipeline():
                        await self._apply(conn, tenant, tenant_key, keys, olds, ops, owner, pending)
        except BaseException as exc:
            for job in live:
                if not job.future.done():
                    job.future.set_exception(exc)
            if not isinstance(exc, Exception):
                raise
            return
        pending.publish(self)
        if ops:
            self._note_writes(len(ops))
        for job, result in done:
            if not job.future.done():
                job.future.set_result(result)

    def _note_writes(self, n: int) -> None:
        self._written += n
        # again each time the written rows have doubled: the planner scales the row counts
        # of its statistics to the table's current size itself, so what matters is that
        # statistics exist and still describe the distributions; every ANALYZE of the four
        # tables costs the server ~0.1 s of CPU that concurrent writers would otherwise get
        if self._written < max(5000, self._analysed):
            return
        if self._analyse_task is not None and not self._analyse_task.done():
            return
        self._analysed += self._written
        self._written = 0
        self._analyse_task = asyncio.get_running_loop().create_task(self._analyse())

    async def _analyse(self) -> None:
        try:
            async with self.pool.connection() as conn:
                await conn.execute("ANALYZE entity, entity_type, attr_value, geo_index, typeset")
        except (psycopg.Error, RuntimeError):
            pass  # statistics are an optimisation; autovacuum will catch up

    async def _apply(
        self,
        conn: Conn,
        tenant: str,
        tenant_key: int | None,
        keys: dict[str, int],
        olds: dict[str, str],
        ops: list[WriteOp],
        owner: str,
        pending: _Pending,
    ) -> None:
        final = last_op_per_entity(ops)
        if tenant_key is None:
            if not any(isinstance(op, Put) for op in final.values()):
                return
            pending.tenants.update(
                await self._intern(conn, "tenant", "tenant_key", "name", [tenant])
            )
            tenant_key = pending.tenants[tenant]
        unknown = [eid for eid in final if eid not in keys]
        if unknown:
            cur = await conn.execute(
                "SELECT entity_id, entity_key FROM entity"
                " WHERE tenant_key = %s AND entity_id = ANY(%b) FOR UPDATE",
                (tenant_key, unknown),
            )
            keys.update(dict(await cur.fetchall()))
        # an entity replaced without its old text at hand (not among entity_ids) is re-indexed
        # from scratch; one whose old document we read gets only its changed rows rewritten
        blind = [
            keys[eid]
            for eid, op in final.items()
            if eid in keys and (isinstance(op, Delete) or eid not in olds)
        ]
        if blind:
            await self._clear_index(conn, blind)
        gone = [keys[eid] for eid, op in final.items() if isinstance(op, Delete) and eid in keys]
        if gone:
            await conn.execute("DELETE FROM entity WHERE entity_key = ANY(%b)", (gone,))
        now = utc_now()
        upd: tuple[list[int], list[str], list[str], list[str]] = ([], [], [], [])
        ins: tuple[list[str], list[str], list[str], list[str]] = ([], [], [], [])
        puts: list[tuple[str, dict[str, Any]]] = []
        for eid, op in final.items():
            if not isinstance(op, Put):
                continue
            doc = op.doc
            created = doc.get("createdAt") or now
            modified = doc.get("modifiedAt") or created
            key = keys.get(eid)
            columns: tuple[list[Any], ...] = upd if key is not None else ins
            columns[0].append(key if key is not None else eid)
            columns[1].append(_dumps(doc))
            columns[2].append(created)
            columns[3].append(modified)
            puts.append((eid, doc))
        if upd[0]:
            await conn.execute(
                "UPDATE entity e SET doc = u.doc::jsonb, created_at = u.c::timestamptz,"
                " modified_at = u.m::timestamptz FROM unnest(%b::bigint[], %b::text[],"
                " %b::text[], %b::text[]) AS u(k, doc, c, m) WHERE e.entity_key = u.k",
                upd,
            )
        if ins[0]:
            owner_key = self._orgs.get(owner)
            if owner_key is None:
                pending.orgs.update(
                    await self._intern(conn, "organisation", "org_key", "name", [owner])
                )
                owner_key = pending.orgs[owner]
            cur = await conn.execute(
                "INSERT INTO entity (tenant_key, entity_id, owner_key, created_at, modified_at,"
                " doc) SELECT %s, u.id, %s, u.c::timestamptz, u.m::timestamptz, u.doc::jsonb"
                " FROM unnest(%b::text[], %b::text[], %b::text[], %b::text[])"
                " WITH ORDINALITY AS u(id, doc, c, m, n) ORDER BY u.n"
                " RETURNING entity_id, entity_key",
                (tenant_key, owner_key, *ins),
            )
            keys.update(dict(await cur.fetchall()))
        changes = []
        for eid, doc in puts:
            old = olds.get(eid)
            changes.append(
                (keys[eid], index_change(None if old is None else orjson.loads(old), doc))
            )
        await self._index(conn, tenant_key, changes, pending)
        # live streams: which entities this transaction wrote, committed with it
        await conn.execute(
            "INSERT INTO change_feed (tenant, entity_ids, at) VALUES (%s, %s::jsonb, %s)",
            (tenant, _dumps(list(final)), time.time()),
        )

    @staticmethod
    async def _clear_index(conn: Conn, entity_keys: list[int]) -> None:
        for table in ("entity_type", "attr_value", "geo_index"):
            await conn.execute(f"DELETE FROM {table} WHERE entity_key = ANY(%b)", (entity_keys,))

    async def _index(
        self,
        conn: Conn,
        tenant_key: int,
        written: list[tuple[int, IndexChange]],
        pending: _Pending,
    ) -> None:
        names: set[str] = set()
        for _, c in written:
            names.update(c.types, c.types_removed, c.attrs_cleared, c.geo_cleared)
            names.update(v[0] for v in c.values)
            names.update(g.attr for g in c.geoms)
        iris = {n: k for n in names if (k := self._iris.get(n)) is not None}
        missing = [n for n in names if n not in iris]
        if missing:
            new = await self._intern(conn, "iri", "iri_key", "iri", missing)
            pending.iris.update(new)
            iris.update(new)

        sets = {tuple(sorted(iris[t] for t in c.types)) for _, c in written}
        typesets = {ts: k for ts in sets if (k := self._typesets.get((tenant_key, ts)))}
        missing_sets = sorted(ts for ts in sets if ts not in typesets)
        if missing_sets:
            # sorted, in one statement: concurrent writers cannot deadlock on them
            await conn.execute(
                "INSERT INTO typeset (tenant_key, type_keys) SELECT %s, string_to_array(s, ',')::int[]"
                " FROM unnest(%b::text[]) AS s ON CONFLICT DO NOTHING",
                (tenant_key, [",".join(map(str, ts)) for ts in missing_sets]),
            )
            cur = await conn.execute(
                "SELECT type_keys, typeset_key FROM typeset WHERE tenant_key = %s",
                (tenant_key,),
            )
            for type_keys, key in await cur.fetchall():
                ts = tuple(type_keys)
                if ts in sets:
                    typesets[ts] = key
                    pending.typesets[(tenant_key, ts)] = key
        entity_set = {k: typesets[tuple(sorted(iris[t] for t in c.types))] for k, c in written}
        retyped = [
            (entity_set[k], k)
            for k, c in written
            if c.replaced and (c.types_removed or c.types_added)
        ]
        if retyped:
            await conn.execute(
                "UPDATE attr_value a SET typeset_key = u.ts FROM unnest(%b::int[], %b::bigint[])"
                " AS u(ts, k) WHERE a.entity_key = u.k",
                ([r[0] for r in retyped], [r[1] for r in retyped]),
            )

        async def pairs(sql: str, rows: list[tuple[int, int]], *more: int) -> None:
            if rows:
                await conn.execute(sql, ([r[0] for r in rows], [r[1] for r in rows], *more))

        types_removed = [(k, iris[t]) for k, c in written for t in c.types_removed]
        await pairs(_DELETE_TYPES, types_removed, tenant_key)
        await pairs(_DELETE_VALUES, [(k, iris[a]) for k, c in written for a in c.attrs_cleared])
        await pairs(_DELETE_GEOMS, [(k, iris[a]) for k, c in written for a in c.geo_cleared])
        types = [(k, iris[t]) for k, c in written for t in c.types_added]
        if types:
            await conn.execute(
                "INSERT INTO entity_type (tenant_key, type_key, entity_key)"
                " SELECT DISTINCT %s, t, k FROM unnest(%b::int[], %b::bigint[]) AS u(t, k)"
                " ON CONFLICT DO NOTHING",
                (tenant_key, [t for _, t in types], [k for k, _ in types]),
            )
        values = [(k, *v) for k, c in written for v in c.values]
        if values:
            cols = list(zip(*values, strict=True))
            await conn.execute(
                "INSERT INTO attr_value (entity_key, attr_key, typeset_key, inst, elem, kind,"
                " num, txt, opaque) SELECT * FROM unnest(%b::bigint[], %b::int[], %b::int[],"
                " %b::int[], %b::int[], %b::smallint[], %b::float8[], %b::text[], %b::smallint[])",
                (
                    list(cols[0]),
                    [iris[a] for a in cols[1]],
                    [entity_set[k] for k in cols[0]],
                    list(cols[2]),
                    list(cols[3]),
                    list(cols[4]),
                    list(cols[5]),
                    list(cols[6]),
                    list(cols[7]),
                ),
            )
        geoms = [(k, g) for k, c in written for g in c.geoms]
        if geoms:
            await conn.execute(
                "INSERT INTO geo_index (entity_key, attr_key, inst, geom, x, y)"
                " SELECT k, a, i, ST_Force2D(ST_SetSRID(ST_GeomFromGeoJSON(g), 4326)), x, y"
                " FROM unnest(%b::bigint[], %b::int[], %b::int[], %b::text[], %b::float8[],"
                " %b::float8[]) AS u(k, a, i, g, x, y)",
                (
                    [k for k, _ in geoms],
                    [iris[g.attr] for _, g in geoms],
                    [g.inst for _, g in geoms],
                    [_dumps(g.geojson) for _, g in geoms],
                    [g.point[0] if g.point else None for _, g in geoms],
                    [g.point[1] if g.point else None for _, g in geoms],
                ),
            )

    # --- queries -------------------------------------------------------------------------

    async def _plan(self, conn: Conn, tenant: str, query: EntityQuery) -> Plan | None:
        tenant_key = await self._tenant_key(conn, tenant)
        if tenant_key is None:
            return None
        keys = await self._iri_keys(conn, query_iris(query))
        opaque: set[int] = set()
        multi: set[int] = set()
        if query.q is not None and keys:
            cur = await conn.execute(
                "SELECT k, EXISTS (SELECT 1 FROM attr_value a WHERE a.attr_key = k"
                " AND a.opaque = 1), EXISTS (SELECT 1 FROM attr_value a WHERE a.attr_key = k"
                " AND (a.inst > 0 OR a.elem > 0)) FROM unnest(%b::int[]) AS k",
                (list(keys.values()),),
            )
            for k, is_opaque, is_multi in await cur.fetchall():
                if is_opaque:
                    opaque.add(k)
                if is_multi:
                    multi.add(k)
        typesets: dict[int, frozenset[int]] | None = None
        if query.count and isinstance(query.q, Comparison):
            cur = await conn.execute(
                "SELECT typeset_key, type_keys FROM typeset WHERE tenant_key = %s", (tenant_key,)
            )
            typesets = {k: frozenset(types) for k, types in await cur.fetchall()}
        plan = plan_query(
            _DIALECT,
            query,
            tenant_key,
            keys,
            frozenset(opaque),
            typesets,
            frozenset(multi),
            await self._org_keys(conn, query_orgs(query)),
        )
        return None if plan.empty else plan

    async def _matching(
        self, conn: Conn, plan: Plan, *, limit: int | None, offset: int, count: bool
    ) -> tuple[list[tuple[int, dict[str, Any]]], int | None]:
        base = f"FROM entity e WHERE {plan.where}"
        if plan.exact:
            rows: list[tuple[int, dict[str, Any]]] = []
            if limit is None or limit > 0:
                cur = await conn.execute(
                    _DIALECT.sql(f"SELECT e.entity_key, e.doc {base} ORDER BY e.entity_key")
                    + " LIMIT %s OFFSET %s",
                    (*plan.params, limit, offset),
                )
                rows = await cur.fetchall()
            total = None
            if count:
                row = None
                if plan.count_sql is not None:
                    sql, params = plan.count_sql
                    cur = await conn.execute(_DIALECT.sql(sql), params)
                    row = await cur.fetchone()
                if row is None or row[0] is None:  # no fast count, or it does not apply
                    cur = await conn.execute(_DIALECT.sql(f"SELECT count(*) {base}"), plan.params)
                    row = await cur.fetchone()
                total = int(row[0]) if row else 0
            return rows, total
        if plan.near_attr is not None:
            return await self._near_points(conn, plan, limit=limit, offset=offset, count=count)
        page: list[tuple[int, dict[str, Any]]] = []
        matched = 0
        last = -1
        sql = _DIALECT.sql(f"SELECT e.entity_key, e.doc {base} AND e.entity_key > ?")
        sql += " ORDER BY e.entity_key LIMIT %s"
        while True:
            cur = await conn.execute(sql, (*plan.params, last, _BATCH))
            batch = await cur.fetchall()
            for key, doc in batch:
                if plan.python_matches(doc):
                    if matched >= offset and (limit is None or len(page) < limit):
                        page.append((key, doc))
                    matched += 1
            if len(batch) < _BATCH or (not count and limit is not None and len(page) >= limit):
                break
            last = batch[-1][0]
        return page, (matched if count else None)

    async def _near_points(
        self, conn: Conn, plan: Plan, *, limit: int | None, offset: int, count: bool
    ) -> tuple[list[tuple[int, dict[str, Any]]], int | None]:
        scan = plan.near_scan(None if count or limit is None else offset + limit)
        # a server-side cursor: an early stop fetches no more rows; planned for all its rows
        # (the default 0.1 favours plans that walk every entity in key order)
        await conn.execute("SET LOCAL cursor_tuple_fraction = 1.0")
        async with conn.cursor(name="near_points") as cur:
            await cur.execute(
                _DIALECT.sql(
                    "SELECT e.entity_key, g.x, g.y FROM entity e JOIN geo_index g"
                    f" ON g.entity_key = e.entity_key AND g.attr_key = ? WHERE {plan.where}"
                    " ORDER BY e.entity_key"
                ),
                (plan.near_attr, *plan.params),
            )
            while rows := await cur.fetchmany(1000):
                if scan.feed(rows):
                    break
        keys, unsure = scan.result()
        docs: dict[int, dict[str, Any]] = {}
        if unsure:
            docs = await self._docs_by_key(conn, unsure)
            keys = [k for k in keys if k not in unsure or plan.python_matches(docs[k])]
        chosen = keys[offset:] if limit is None else keys[offset : offset + limit]
        missing = [k for k in chosen if k not in docs]
        if missing:
            docs.update(await self._docs_by_key(conn, missing))
        return [(k, docs[k]) for k in chosen], (len(keys) if count else None)

    @staticmethod
    async def _docs_by_key(conn: Conn, keys: Iterable[int]) -> dict[int, dict[str, Any]]:
        cur = await conn.execute(
            "SELECT entity_key, doc FROM entity WHERE entity_key = ANY(%b)", (list(keys),)
        )
        return {k: doc for k, doc in await cur.fetchall()}

    async def query(self, tenant: str, query: EntityQuery) -> QueryResult:
        """Matching entities in key order, one page, with the count if asked for."""
        async with self.pool.connection() as conn, conn.transaction():
            plan = await self._plan(conn, tenant, query)
            if plan is None:
                return QueryResult([], 0 if query.count else None)
            rows, total = await self._matching(
                conn, plan, limit=query.limit, offset=query.offset, count=query.count
            )
            return QueryResult([doc for _, doc in rows], total)

    async def delete_where(self, tenant: str, query: EntityQuery) -> int:
        """Delete every entity matching (ignoring limit/offset); return how many."""
        async with self.pool.connection() as conn, conn.transaction():
            plan = await self._plan(conn, tenant, query)
            if plan is None:
                return 0
            rows, _ = await self._matching(conn, plan, limit=None, offset=0, count=False)
            gone = [key for key, _ in rows]
            if gone:
                await self._clear_index(conn, gone)
                await conn.execute("DELETE FROM entity WHERE entity_key = ANY(%b)", (gone,))
            return len(gone)

    # --- tenants and discovery -----------------------------------------------------------

    async def tenant_exists(self, tenant: str) -> bool:
        """Whether the tenant has been written to (the default tenant always exists)."""
        if tenant == DEFAULT_TENANT or tenant in self._tenants:
            return True
        async with self.pool.connection() as conn:
            return await self._tenant_key(conn, tenant) is not None

    async def tenants(self) -> list[str]:
        """Every tenant's name, sorted."""
        async with self.pool.connection() as conn:
            cur = await conn.execute("SELECT name FROM tenant")
            return sorted(name for (name,) in await cur.fetchall())

    async def entity_types(self, tenant: str, readable: Readable | None = None) -> list[TypeInfo]:
        """The entity types of a tenant's (readable) entities, sorted by IRI."""
        async with self.pool.connection() as conn:
            tenant_key = await self._tenant_key(conn, tenant)
            restrict = await self._readable_sql(conn, readable)
            if tenant_key is None or restrict is None:
                return []
            only, params = restrict
            join = " JOIN entity e ON e.entity_key = t.entity_key" if only else ""
            cur = await conn.execute(
                "SELECT i.iri, count(*) FROM entity_type t JOIN iri i ON i.iri_key = t.type_key"
                f"{join} WHERE t.tenant_key = %s{only} GROUP BY i.iri",
                (tenant_key, *params),
            )
            counts = await cur.fetchall()
            attrs: dict[str, list[str]] = {}
            for type_iri, attr_iri in await self._type_attrs(conn, tenant_key, only, params):
                attrs.setdefault(type_iri, []).append(attr_iri)
        return sorted(
            (TypeInfo(t, int(n), sorted(attrs.get(t, []))) for t, n in counts),
            key=lambda i: i.type_iri,
        )

    @staticmethod
    async def _type_attrs(
        conn: Conn, tenant_key: int, only: str, params: list[Any]
    ) -> list[tuple[str, str]]:
        """(type IRI, attribute IRI) of the (readable) entities having both."""
        join = " JOIN entity e ON e.entity_key = t.entity_key" if only else ""
        cur = await conn.execute(
            "SELECT ti.iri, ai.iri FROM (SELECT DISTINCT t.type_key, a.attr_key"
            f" FROM entity_type t JOIN attr_value a ON a.entity_key = t.entity_key{join}"
            f" WHERE t.tenant_key = %s{only}) x JOIN iri ti ON ti.iri_key = x.type_key"
            " JOIN iri ai ON ai.iri_key = x.attr_key",
            (tenant_key, *params),
        )
        return await cur.fetchall()

    async def attribute_infos(
        self, tenant: str, readable: Readable | None = None
    ) -> list[AttrInfo]:
        """The attribute names of a tenant's (readable) entities, sorted by IRI."""
        async with self.pool.connection() as conn:
            tenant_key = await self._tenant_key(conn, tenant)
            restrict = await self._readable_sql(conn, readable)
            if tenant_key is None or restrict is None:
                return []
            only, params = restrict
            cur = await conn.execute(
                "SELECT i.iri, a.kind, count(*) FROM attr_value a"
                " JOIN entity e ON e.entity_key = a.entity_key"
                " JOIN iri i ON i.iri_key = a.attr_key"
                f" WHERE e.tenant_key = %s AND a.elem = 0{only} GROUP BY i.iri, a.kind",
                (tenant_key, *params),
            )
            infos: dict[str, AttrInfo] = {}
            for attr_iri, kind, n in await cur.fetchall():
                info = infos.setdefault(attr_iri, AttrInfo(attr_iri, 0))
                info.attribute_count += int(n)
                info.attribute_types.append(KIND_NAMES.get(kind, "Property"))
            for type_iri, attr_iri in await self._type_attrs(conn, tenant_key, only, params):
                if attr_iri in infos:
                    infos[attr_iri].type_names.append(type_iri)
        for info in infos.values():
            info.attribute_types = sorted(set(info.attribute_types))
            info.type_names.sort()
        return [infos[k] for k in sorted(infos)]

    # --- @context documents --------------------------------------------------------------

    async def put_context(self, context_id: str, document: Any, *, kind: str = "hosted") -> None:
        """Store (or replace) an @context document."""
        async with self.pool.connection() as conn:
            await conn.execute(
                "INSERT INTO jsonld_context (context_id, kind, document) VALUES (%s, %s, %s)"
                " ON CONFLICT (context_id) DO UPDATE SET kind = excluded.kind,"
                " document = excluded.document",
                (context_id, kind, _dumps(document)),
            )

    async def get_context(self, context_id: str) -> StoredContext | None:
        """A stored @context document, or None."""
        async with self.pool.connection() as conn:
            cur = await conn.execute(
                "SELECT context_id, document, kind, created_at FROM jsonld_context"
                " WHERE context_id = %s",
                (context_id,),
            )
            row = await cur.fetchone()
        return None if row is None else _context(row)

    async def delete_context(self, context_id: str) -> bool:
        """Delete a stored @context; whether it existed."""
        async with self.pool.connection() as conn:
            cur = await conn.execute(
                "DELETE FROM jsonld_context WHERE context_id = %s", (context_id,)
            )
            return cur.rowcount > 0

    async def list_contexts(self) -> list[StoredContext]:
        """Every stored @context, sorted by id."""
        async with self.pool.connection() as conn:
            cur = await conn.execute(
                "SELECT context_id, document, kind, created_at FROM jsonld_context"
                " ORDER BY context_id"
            )
            return [_context(row) for row in await cur.fetchall()]


def _context(row: tuple[Any, ...]) -> StoredContext:
    created = row[3]
    stamp = created if isinstance(created, str) else format_datetime(created)
    return StoredContext(row[0], orjson.loads(row[1]), row[2], stamp)


class _Job:
    """One `transact` call waiting for a group commit."""

    __slots__ = ("check_owners", "future", "ids", "mutate", "owner", "tenant")

    def __init__(
        self,
        tenant: str,
        ids: list[str],
        mutate: Callable[[dict[str, dict[str, Any] | None]], tuple[list[WriteOp], Any]],
        owner: str,
        future: asyncio.Future[Any],
        check_owners: OwnersCheck | None = None,
    ) -> None:
        self.tenant = tenant
        self.ids = ids
        self.mutate = mutate
        self.owner = owner
        self.future = future
        self.check_owners = check_owners


class _Pending:
    """Dictionary keys written by the running transaction: cached once it commits."""

    __slots__ = ("iris", "orgs", "shapes", "tenants", "typesets")

    def __init__(self) -> None:
        self.shapes: dict[int, bytes] = {}
        self.iris: dict[str, int] = {}
        self.tenants: dict[str, int] = {}
        self.orgs: dict[str, int] = {}
        self.typesets: dict[tuple[int, tuple[int, ...]], int] = {}

    def publish(self, store: PostgresStore) -> None:
        store._typesets.update(self.typesets)
        store._iris.update(self.iris)
        store._tenants.update(self.tenants)
        store._orgs.update(self.orgs)
        if self.shapes:
            store.shape_cache().docs.update(self.shapes)
