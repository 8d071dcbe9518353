"""The SQLite backend: stdlib `sqlite3`, WAL, one writer thread and a pool of reader threads.

Durability and isolation (the `Store` contract):

- every write — `transact`, `delete_where`, contexts, migrations — runs on ONE connection, used
  by one thread at a time (`_conn_lock`), inside `BEGIN IMMEDIATE … COMMIT`: on the writer
  thread (a single-worker executor fed by a queue), or, for a small group of `transact` calls,
  on the event loop's own thread (`_drain_here` says when and why);
- `transact` calls are GROUP-COMMITTED: the writer takes every transaction queued while it was
  busy, or within the event loop's next two turns (`_drain_soon`), up to `_GROUP_MAX`, and
  runs them in order, several together where that is the same as one after the other
  (`_run_together`); one that raises is left out — its writes rolled back to a SAVEPOINT — and
  gets its exception; then it COMMITs once and only then resolves the
  callers' futures. Durability per call is unchanged (nobody is acknowledged before the fsync'd
  COMMIT), isolation too (each transaction sees what the earlier ones wrote), and the fsyncs are
  divided by the queue length. If the COMMIT itself fails (or SQLite aborts the whole
  transaction), every call of the group fails and nothing of it is written;
- `synchronous=FULL` in WAL mode: a commit is on disk (the WAL is fsynced) before it returns;
- reads run on a small pool of threads, each with its own connection, each read in one
  transaction, so it sees one committed snapshot;
- `sqlite:///:memory:` keeps the database in memory for tests; a memory database has only the
  writer's connection (reads are queued behind writes on it), because separate connections to a
  shared-cache memory database would need dirty reads or fail with "database table is locked".
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from pathlib import Path
from typing import Any, TypeVar

import orjson

from smartregion.core.qlang import Comparison
from smartregion.core.times import utc_now
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
from smartregion.storage.sqlite.governance import SQLiteGovernance
from smartregion.storage.sqlite.history import SQLiteHistory
from smartregion.storage.sqlite.ingestion import SQLiteIngestion
from smartregion.storage.sqlite.replication import SQLiteReplication
from smartregion.storage.sqlite.streams import SQLiteStreams
from smartregion.storage.sqlite.subscriptions import SQLiteSubscriptions, take_notifications

__all__ = ["SQLiteStore"]

R = TypeVar("R")
T = TypeVar("T")

_DIALECT = Dialect("sqlite")
#: candidate rows fetched per round when Python must filter
_BATCH = 500
#: most transactions committed together by one group commit
_GROUP_MAX = 256
#: a group of at most this many entities is written on the event loop's own thread (see
#: `SQLiteStore._drain_here`), while its COMMITs take less than `_HERE_COMMIT` seconds on
#: average: about what handing the GIL over costs a group of 16 PATCHes (16 × ~270 µs of CPU,
#: docs/benchmarks.md); a WAL checkpoint's COMMIT (~5 ms, one in a hundred) does not tip it
_HERE_IDS = 64
_HERE_COMMIT = 0.004
#: with slow COMMITs, every this many groups one is written on the loop again, to measure
_HERE_PROBE = 64
#: event-loop turns a queued `transact` waits before its group is written on the loop: what
#: arrived on the sockets meanwhile joins the group (`SQLiteStore._drain_soon`)
_GATHER_TURNS = 2
#: how long a write waits for another process's write lock (SQLite's busy timeout), in ms
_BUSY_MS = 30000


@lru_cache(maxsize=256)
def _pattern(text: str) -> re.Pattern[str]:
    return re.compile(text)


def _regexp(pattern: str, value: Any) -> bool:
    # `X REGEXP Y` calls regexp(Y, X); NGSI-LD idPattern / q `~=` use `re.search` semantics.
    return isinstance(value, str) and _pattern(pattern).search(value) is not None


def _json_list(values: Iterable[Any]) -> str:
    return orjson.dumps(list(values)).decode()


def _loads(text: str | bytes) -> dict[str, Any]:
    doc: dict[str, Any] = orjson.loads(text)
    return doc


class SQLiteStore(
    SQLiteGovernance,
    SQLiteSubscriptions,
    SQLiteIngestion,
    SQLiteHistory,
    SQLiteReplication,
    SQLiteStreams,
    HubStore,
    MatchFeedbackStore,
    Store,
):
    """Entities and their indexes in one SQLite database file."""

    backend = "sqlite"

    def __init__(self, path: str, *, readers: int = 4) -> None:
        self.path = path
        self.memory = path == ":memory:"
        self.readers = 0 if self.memory else max(1, readers)
        self._writer: ThreadPoolExecutor | None = None
        self._reader_pool: ThreadPoolExecutor | None = None
        self._writer_conn: sqlite3.Connection | None = None
        self._reader_conns: list[sqlite3.Connection] = []
        self._local = threading.local()
        self._lock = threading.Lock()
        # dictionaries (IRIs, tenants, organisations) only ever grow: committed keys are cached
        self._iris: dict[str, int] = {}
        self._tenants: dict[str, int] = {DEFAULT_TENANT: 1}
        self._orgs: dict[str, int] = {}
        self._typesets: dict[str, int] = {}  # "tenant_key:[type keys]" -> key
        # transactions waiting for the next group commit, and whether a drain is scheduled
        self._group: list[_Job] = []
        self._group_lock = threading.Lock()
        self._draining = False
        # held by whoever uses the writer connection: the writer thread, or the event loop
        # while it writes a small group itself (never waited for there: see `_drain_here`)
        self._conn_lock = threading.Lock()
        # COMMIT time of the groups written on the loop (moving average, seconds), and the
        # groups sent to the writer thread since the last one written on the loop
        self._commit_seconds = 0.0
        self._since_probe = 0

    # --- connections ---------------------------------------------------------------------

    def _connect(self, *, writer: bool) -> sqlite3.Connection:
        if self.memory:
            conn = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
        else:
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(
                self.path, isolation_level=None, check_same_thread=False, timeout=30.0
            )
        conn.create_function("regexp", 2, _regexp, deterministic=True)
        conn.execute(f"PRAGMA busy_timeout = {_BUSY_MS}")
        conn.execute("PRAGMA cache_size = -65536")  # 64 MiB
        conn.execute("PRAGMA temp_store = MEMORY")
        if writer:
            if not self.memory:
                conn.execute("PRAGMA journal_mode = WAL")
            # every acknowledged write is durable (DESIGN.md "Storage principles")
            conn.execute("PRAGMA synchronous = FULL")
        else:
            conn.execute("PRAGMA query_only = 1")
        return conn

    def _init_reader(self) -> None:
        conn = self._connect(writer=False)
        self._local.conn = conn
        with self._lock:
            self._reader_conns.append(conn)

    async def open(self) -> None:
        """Start the writer thread (creating the database) and the reader pool."""
        if self._writer is not None:
            return
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-writer")
        self._writer_conn = await asyncio.get_running_loop().run_in_executor(
            self._writer, lambda: self._connect(writer=True)
        )
        if self.readers:
            self._reader_pool = ThreadPoolExecutor(
                max_workers=self.readers,
                thread_name_prefix="sqlite-reader",
                initializer=self._init_reader,
            )

    async def close(self) -> None:
        """Finish queued work, then close every connection and thread."""
        writer, readers = self._writer, self._reader_pool
        self._writer = self._reader_pool = None
        if readers is not None:
            await asyncio.get_running_loop().run_in_executor(
                None, lambda: readers.shutdown(wait=True)
            )
        if writer is not None:
            conn = self._writer_conn

            def finish() -> None:
                with self._conn_lock:
                    self._drain_all()  # transactions queued behind this call still commit
                    if conn is not None:
                        # keeps the planner's statistics current (SQLite §"PRAGMA optimize")
                        conn.execute("PRAGMA optimize")
                        conn.close()

            await asyncio.get_running_loop().run_in_executor(writer, finish)
            writer.shutdown(wait=True)
        with self._lock:
            for rc in self._reader_conns:
                rc.close()
            self._reader_conns.clear()
        self._writer_conn = None

    async def _write(self, fn: Callable[[sqlite3.Connection], R]) -> R:
        if self._writer is None or self._writer_conn is None:
            raise RuntimeError("the store is not open")
        conn = self._writer_conn

        def locked() -> R:
            with self._conn_lock:
                return fn(conn)

        return await asyncio.get_running_loop().run_in_executor(self._writer, locked)

    async def _read(self, fn: Callable[[sqlite3.Connection], R]) -> R:
        if self._reader_pool is None:
            return await self._write(lambda conn: self._in_read_tx(conn, fn))

        def run() -> R:
            return self._in_read_tx(self._local.conn, fn)

        return await asyncio.get_running_loop().run_in_executor(self._reader_pool, run)

    @staticmethod
    def _in_read_tx(conn: sqlite3.Connection, fn: Callable[[sqlite3.Connection], R]) -> R:
        conn.execute("BEGIN")
        try:
            return fn(conn)
        finally:
            conn.execute("COMMIT")

    async def migrate(self) -> list[str]:
        """Apply pending migrations from `smartregion.storage.sqlite.migrations`."""
        found = migrations.discover("smartregion.storage.sqlite.migrations")
        return await self._write(lambda conn: migrations.migrate_sqlite(conn, found))

    async def health(self) -> None:
        """Raise if the database cannot be read."""
        await self._read(lambda conn: conn.execute("SELECT 1").fetchone())

    # --- the change feed (live streams) --------------------------------------------------

    async def change_feed(self, after: int, *, limit: int = 500) -> list[FeedEntry]:
        """See `Store.change_feed` (one writer at a time: numbers follow commit order)."""
        rows = await self._read(
            lambda conn: conn.execute(
                "SELECT seq, tenant, entity_ids, at FROM change_feed WHERE seq > ?"
                " ORDER BY seq LIMIT ?",
                (after, limit),
            ).fetchall()
        )
        return [FeedEntry(int(q), t, tuple(orjson.loads(ids)), float(at)) for q, t, ids, at in rows]

    async def change_feed_head(self) -> int:
        """See `Store.change_feed_head`."""
        row = await self._read(
            lambda conn: conn.execute("SELECT coalesce(max(seq), 0) FROM change_feed").fetchone()
        )
        return int(row[0])

    async def prune_change_feed(self, before: float) -> int:
        """See `Store.prune_change_feed`."""
        return await self._write(
            lambda conn: int(
                conn.execute("DELETE FROM change_feed WHERE at < ?", (before,)).rowcount
            )
        )

    # --- dictionaries --------------------------------------------------------------------

    def _lookup(
        self, conn: sqlite3.Connection, cache: dict[str, int], sql: str, names: Iterable[str]
    ) -> dict[str, int]:
        """Keys of the committed (or, on the writer, current) names that exist."""
        found: dict[str, int] = {}
        missing: list[str] = []
        for name in names:
            key = cache.get(name)
            if key is None:
                missing.append(name)
            else:
                found[name] = key
        if missing:
            # only a reader sees committed rows alone: the writer may see its own uncommitted ones
            remember = conn is not self._writer_conn
            for name, key in conn.execute(sql, (_json_list(missing),)):
                found[name] = key
                if remember:
                    cache[name] = key
        return found

    def _iri_keys(self, conn: sqlite3.Connection, iris: Iterable[str]) -> dict[str, int]:
        return self._lookup(
            conn,
            self._iris,
            "SELECT iri, iri_key FROM iri WHERE iri IN (SELECT value FROM json_each(?))",
            iris,
        )

    def _org_keys(self, conn: sqlite3.Connection, names: Iterable[str]) -> dict[str, int]:
        return self._lookup(
            conn,
            self._orgs,
            "SELECT name, org_key FROM organisation WHERE name IN (SELECT value FROM json_each(?))",
            names,
        )

    def _readable_sql(
        self, conn: sqlite3.Connection, readable: Readable | None
    ) -> tuple[str, list[Any]] | None:
        """` AND <condition>` over `entity e` for `readable` ("" when unrestricted); None: nothing."""
        if readable is None:
            return "", []
        found = readable_condition(
            _DIALECT,
            readable,
            self._iri_keys(conn, readable_iris(readable)),
            self._org_keys(conn, set(readable.owners) | {s.owner for s in readable.slices}),
        )
        return None if found is None else (f" AND ({found[0]})", found[1])

    def _tenant_key(self, conn: sqlite3.Connection, tenant: str) -> int | None:
        return self._lookup(
            conn,
            self._tenants,
            "SELECT name, tenant_key FROM tenant WHERE name IN (SELECT value FROM json_each(?))",
            [tenant],
        ).get(tenant)

    # --- entities ------------------------------------------------------------------------

    async def get_entity(self, tenant: str, entity_id: str) -> dict[str, Any] | None:
        """The current document of one entity, or None."""
        return (await self.get_entities(tenant, [entity_id])).get(entity_id)

    async def get_entities(self, tenant: str, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        """The current documents of those ids that exist, keyed by id."""
        if not ids:
            return {}

        def run(conn: sqlite3.Connection) -> dict[str, dict[str, Any]]:
            tenant_key = self._tenant_key(conn, tenant)
            if tenant_key is None:
                return {}
            return {eid: _loads(doc) for _, eid, doc, _ in self._select_docs(conn, tenant_key, ids)}

        return await self._read(run)

    async def owners_of(self, tenant: str, ids: Sequence[str]) -> dict[str, str]:
        """The owner organisation of each of those entities that exist, keyed by entity id."""
        if not ids:
            return {}

        def run(conn: sqlite3.Connection) -> dict[str, str]:
            tenant_key = self._tenant_key(conn, tenant)
            if tenant_key is None:
                return {}
            rows = conn.execute(
                "SELECT e.entity_id, o.name FROM entity e JOIN organisation o"
                " ON o.org_key = e.owner_key WHERE e.tenant_key = ?"
                " AND e.entity_id IN (SELECT value FROM json_each(?))",
                (tenant_key, _json_list(list(dict.fromkeys(ids)))),
            ).fetchall()
            return {eid: name for eid, name in rows}

        return await self._read(run)

    @staticmethod
    def _select_docs(
        conn: sqlite3.Connection, tenant_key: int, ids: Iterable[str]
    ) -> list[tuple[int, str, str, str | None]]:
        """(key, id, document, owner organisation) of those ids that exist."""
        unique = list(dict.fromkeys(ids))
        # the owner comes with the row (one B-tree probe): a write checks it without a second query
        select = (
            "SELECT e.entity_key, e.entity_id, e.doc, o.name FROM entity e"
            " LEFT JOIN organisation o ON o.org_key = e.owner_key WHERE e.tenant_key = ?"
        )
        if len(unique) == 1:
            # single-entity writes and reads: a plain key lookup, no JSON array to build and scan
            return conn.execute(select + " AND e.entity_id = ?", (tenant_key, unique[0])).fetchall()
        return conn.execute(
            select + " AND e.entity_id IN (SELECT value FROM json_each(?))",
            (tenant_key, _json_list(unique)),
        ).fetchall()

    async def transact(
        self,
        tenant: str,
        entity_ids: Sequence[str],
        mutate: Callable[[dict[str, dict[str, Any] | None]], tuple[list[WriteOp], T]],
        *,
        owner: str,
        check_owners: OwnersCheck | None = None,
    ) -> T:
        """Read, mutate, write and COMMIT (on the loop or the writer thread); see `Store.transact`.

        The call joins the next group commit (module docstring): it returns after the COMMIT
        that made its writes durable, or raises with nothing of it written.
        """
        if self._writer is None or self._writer_conn is None:
            raise RuntimeError("the store is not open")
        loop = asyncio.get_running_loop()
        job = _Job(tenant, entity_ids, mutate, owner, check_owners, loop, loop.create_future())
        with self._group_lock:
            self._group.append(job)
            schedule = not self._draining
            self._draining = True
        if schedule:
            loop.call_soon(self._drain_soon, loop, _GATHER_TURNS)
        result: T = await job.future
        return result

    def _drain_soon(self, loop: asyncio.AbstractEventLoop, turns: int) -> None:
        """Write the queued group after `turns` more turns of the event loop, if it is small.

        A turn polls the sockets: requests whose bytes arrived meanwhile are read, parsed and
        queue their transactions too, so the group (and its one COMMIT) is shared by more of
        them. With 16 clients PATCHing, groups grew from 4–10 transactions to 14–16, and the
        PATCHes per second by 15 % (docs/benchmarks.md, ninth session); a turn with nothing to
        do costs microseconds. A group of a batch's size is written at once.
        """
        if turns > 0 and self._next_group_ids() < _HERE_IDS:
            loop.call_soon(self._drain_soon, loop, turns - 1)
            return
        self._drain_here(loop)

    def _next_group_ids(self) -> int:
        """How many entity ids the next group commit would write."""
        with self._group_lock:
            return sum(len(job.entity_ids) for job in self._group[:_GROUP_MAX])

    def _drain_here(self, loop: asyncio.AbstractEventLoop) -> None:
        """Group-commit the queued transactions on the event loop's thread, if they are few.

        Handing the GIL back and forth with the writer thread, for each statement of a small
        write, costs more CPU than the write itself: 16 clients PATCHing got 1.6x the requests
        per second with their groups written here (docs/benchmarks.md). So a group of at most
        `_HERE_IDS` entities is written on the loop, and the loop waits for its COMMIT; larger
        groups (batches) go to the writer thread, so that the loop goes on serving requests
        meanwhile, and so does every group while COMMITs are slow (a disk whose fsync takes
        milliseconds: the writer thread overlaps them with the loop's work). The connection
        is only taken if free (the writer thread may be using it for another write), and the
        database's write lock only if no other process holds it (`_Busy`): the loop never
        waits for a lock.
        """
        size = self._next_group_ids()
        slow = self._commit_seconds >= _HERE_COMMIT
        if slow:
            self._since_probe += 1
            slow = self._since_probe < _HERE_PROBE
        if size > _HERE_IDS or slow or not self._conn_lock.acquire(blocking=False):
            self._to_writer()
            return
        self._since_probe = 0
        try:
            with self._group_lock:
                jobs = self._group[:_GROUP_MAX]
                del self._group[:_GROUP_MAX]
            self._commit_group(jobs, here=True)
        except _Busy:
            # another process (a second worker, an import) holds the database's write lock:
            # the writer thread waits for it, not the loop
            with self._group_lock:
                self._group[:0] = jobs
            self._to_writer()
            return
        finally:
            self._conn_lock.release()
        with self._group_lock:
            if not self._group:
                self._draining = False
                return
        loop.call_soon(self._drain_here, loop)  # more queued meanwhile: after other callbacks

    def _to_writer(self) -> None:
        """Drain the queue on the writer thread."""
        writer = self._writer
        if writer is None:  # closed: `close` drains what is queued
            return
        with contextlib.suppress(RuntimeError):  # shutting down: `close` drains the queue
            writer.submit(self._drain, writer)

    def _drain(self, executor: ThreadPoolExecutor) -> None:
        """Group-commit the queued transactions (on the writer thread), one group a call."""
        while True:
            with self._group_lock:
                jobs = self._group[:_GROUP_MAX]
                del self._group[:_GROUP_MAX]
                if not jobs:
                    self._draining = False
                    return
            with self._conn_lock:
                self._commit_group(jobs)
            with self._group_lock:
                if not self._group:
                    self._draining = False
                    return
                loop = self._group[0].loop
            try:
                # more arrived meanwhile: the loop decides where they are written (a batch
                # may be followed by single-entity writes), after the writes waiting there
                loop.call_soon_threadsafe(self._drain_here, loop)
                return
            except RuntimeError:
                pass  # that caller's loop is closed: write them here
            try:
                executor.submit(self._drain, executor)  # behind the other writes waiting
                return
            except RuntimeError:
                continue  # the executor is shutting down: finish the queue here

    def _drain_all(self) -> None:
        while True:
            with self._group_lock:
                jobs = self._group[:_GROUP_MAX]
                del self._group[:_GROUP_MAX]
            if not jobs:
                return
            self._commit_group(jobs)

    def _commit_group(self, jobs: list[_Job], *, here: bool = False) -> None:
        """One transaction for the queued jobs, one COMMIT; then resolve the futures.

        Jobs run in order, several at once where they can (`_run_together`): their reads in
        one statement, their writes in one set of statements. A job that raises is left out
        with its exception; the others commit.
        """
        # a caller that has gone (cancelled) before its turn is skipped; one cancelled later
        # still commits, unacknowledged, as with any write whose caller stops waiting
        live = [job for job in jobs if not job.future.cancelled()]
        conn = self._writer_conn
        if not live:
            return
        if conn is None:
            _settle([(job, None, RuntimeError("the store is closed")) for job in live])
            return
        done: list[tuple[_Job, Any, _Pending]] = []
        failed: list[tuple[_Job, BaseException]] = []
        try:
            # `_conn_lock` is held: no other write of this process can interleave until COMMIT
            if here:
                _begin_at_once(conn)
            else:
                conn.execute("BEGIN IMMEDIATE")
            queue = live
            while queue:
                queue = self._run_together(conn, queue, done, failed)
            started = time.perf_counter()
            conn.execute("COMMIT")
            if here:  # (on the writer thread the time would include waits for the GIL)
                took = time.perf_counter() - started
                self._commit_seconds += (took - self._commit_seconds) / 32
        except _Busy:
            raise  # nothing begun, nothing settled: the caller hands the jobs on
        except BaseException as exc:
            if conn.in_transaction:
                # a broken connection may refuse it too; the original error says why
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
            own = {id(job): error for job, error in failed}
            _settle([(job, None, own.get(id(job), exc)) for job in live])
            if not isinstance(exc, Exception):
                raise
            return
        published: set[int] = set()
        for _, _, pending in done:
            if id(pending) not in published:
                published.add(id(pending))
                pending.publish(self)
        _settle(
            [(job, result, None) for job, result, _ in done]
            + [(job, None, error) for job, error in failed]
        )

    def _run_together(
        self,
        conn: sqlite3.Connection,
        queue: list[_Job],
        done: list[tuple[_Job, Any, _Pending]],
        failed: list[tuple[_Job, BaseException]],
    ) -> list[_Job]:
        """Run the first jobs of `queue` as one write; return the jobs left for the next round.

        Concurrent single-entity writes (16 clients PATCHing) would each cost a dozen statements;
        run together they cost one set. It is the same as running them one after the other:
        a run holds only jobs of one tenant and one owner whose entities no earlier job of the
        run read or wrote, so each job reads exactly what it would have read in its turn, and
        the writes are applied in job order. Should the joint write fail, it is rolled back and
        each job's write is applied on its own, under its own SAVEPOINT, so that only the job at
        fault fails (with the error it would have had alone).
        """
        first = queue[0]
        tenant, owner = first.tenant, first.owner
        run: list[_Job] = []
        seen: set[str] = set()
        for job in queue:
            if job.tenant != tenant or job.owner != owner or not seen.isdisjoint(job.entity_ids):
                break
            seen.update(job.entity_ids)
            run.append(job)
        tenant_key = self._tenant_key(conn, tenant)
        stored: dict[str, tuple[int, str, str | None]] = {}
        if tenant_key is not None and seen:
            stored = {
                eid: (key, doc, owned_by)
                for key, eid, doc, owned_by in self._select_docs(conn, tenant_key, seen)
            }
        parts: list[_Part] = []
        touched: set[str] = set()  # what the run's jobs so far read or wrote
        for index, job in enumerate(run):
            if not touched.isdisjoint(job.entity_ids):
                # an earlier job wrote an entity beyond those it read, and this job reads it:
                # it must see that write, so it starts the next round
                del run[index:]
                break
            part = _Part(job)
            current: dict[str, dict[str, Any] | None] = dict.fromkeys(job.entity_ids)
            owners: dict[str, str] = {}
            for eid in current:
                row = stored.get(eid)
                if row is not None:
                    key, doc, owned_by = row
                    # the stored text, parsed again for the index diff: `mutate` may alter it
                    current[eid] = _loads(doc)
                    part.keys[eid] = key
                    part.olds[eid] = doc
                    if owned_by is not None:
                        owners[eid] = owned_by
            touched.update(current)
            try:
                if job.check_owners is not None:
                    job.check_owners(owners)
                part.ops, part.result = job.mutate(current)
            except Exception as exc:
                failed.append((job, exc))  # nothing of it was written: it reads, then mutates
                continue
            touched.update(_written_ids(part.ops))
            parts.append(part)
        if parts:
            self._write_parts(conn, tenant, tenant_key, owner, parts, done, failed)
        return queue[len(run) :]

    def _write_parts(
        self,
        conn: sqlite3.Connection,
        tenant: str,
        tenant_key: int | None,
        owner: str,
        parts: list[_Part],
        done: list[tuple[_Job, Any, _Pending]],
        failed: list[tuple[_Job, BaseException]],
    ) -> None:
        """The writes of a run's jobs: together, or each alone if together they fail."""
        if len(parts) > 1:
            pending = _Pending()
            keys: dict[str, int] = {}
            olds: dict[str, str] = {}
            ops: list[WriteOp] = []
            for part in parts:
                keys.update(part.keys)
                olds.update(part.olds)
                ops.extend(part.ops)
            conn.execute("SAVEPOINT run")
            try:
                self._apply(conn, tenant, tenant_key, keys, olds, ops, owner, pending)
            except Exception:
                if not conn.in_transaction:
                    raise  # SQLite rolled the whole transaction back: the group fails
                conn.execute("ROLLBACK TO run")
                conn.execute("RELEASE run")
            else:
                conn.execute("RELEASE run")
                done.extend((part.job, part.result, pending) for part in parts)
                return
        for part in parts:
            pending = _Pending()
            conn.execute("SAVEPOINT job")
            try:
                self._apply(
                    conn, tenant, tenant_key, part.keys, part.olds, part.ops, owner, pending
                )
            except Exception as exc:
                if not conn.in_transaction:
                    raise
                conn.execute("ROLLBACK TO job")
                conn.execute("RELEASE job")
                failed.append((part.job, exc))
            else:
                conn.execute("RELEASE job")
                done.append((part.job, part.result, pending))
            if tenant_key is None:  # the first write of a new tenant creates it
                tenant_key = self._tenant_key(conn, tenant)

    def _intern(
        self,
        conn: sqlite3.Connection,
        name: str,
        cache: dict[str, int],
        new: dict[str, int],
        table: str,
        key_col: str,
        name_col: str,
    ) -> int:
        key = cache.get(name)
        if key is None:
            key = new.get(name)
        if key is None:
            row = conn.execute(
                f"SELECT {key_col} FROM {table} WHERE {name_col} = ?", (name,)
            ).fetchone()
            if row is None:
                cur = conn.execute(f"INSERT INTO {table} ({name_col}) VALUES (?)", (name,))
                assert cur.lastrowid is not None
                key = int(cur.lastrowid)
            else:
                key = int(row[0])
            new[name] = key
        return key

    def _apply(
        self,
        conn: sqlite3.Connection,
        tenant: str,
        tenant_key: int | None,
        keys: dict[str, int],
        olds: dict[str, str],
        ops: list[WriteOp],
        owner: str,
        pending: _Pending,
    ) -> None:
        """Write a transaction's ops: what commits with its entities, then the entities."""
        # subscriptions: notifications queued by this write commit with it (§5.11)
        ops = take_notifications(conn, ops)
        # attribute history commits with it too
        ops = self._take_history(conn, tenant, ops, pending.shapes)
        ops = self._take_replication(conn, ops)  # LDES members seen, with their writes
        ops = self._take_dead_letters(conn, ops)  # the MQTT bridge's, with its batch
        if not ops:
            return
        final = last_op_per_entity(ops)
        puts = any(isinstance(op, Put) for op in final.values())
        if tenant_key is None:
            if not puts:
                return
            tenant_key = self._intern(
                conn, tenant, self._tenants, pending.tenants, "tenant", "tenant_key", "name"
            )
        unknown = [eid for eid in final if eid not in keys]
        if unknown:
            for key, eid, _, _ in self._select_docs(conn, tenant_key, unknown):
                keys[eid] = key
        # an entity replaced without its old text at hand (not among entity_ids) is re-indexed
        # from scratch; one whose old document we read gets only its changed rows rewritten
        blind = [
            keys[eid]
            for eid, op in final.items()
            if eid in keys and (isinstance(op, Delete) or eid not in olds)
        ]
        if blind:
            self._clear_index(conn, blind)
        gone = [keys[eid] for eid, op in final.items() if isinstance(op, Delete) and eid in keys]
        if gone:
            conn.execute(
                "DELETE FROM entity WHERE entity_key IN (SELECT value FROM json_each(?))",
                (_json_list(gone),),
            )
        now = utc_now()
        updates: list[tuple[str, str, str, int]] = []
        inserts: list[tuple[int, int, str, int, str, str, str]] = []
        written: list[tuple[int, IndexChange]] = []
        next_key = 0
        owner_key = 0
        for eid, op in final.items():
            if not isinstance(op, Put):
                continue
            doc = op.doc
            text = orjson.dumps(doc).decode()
            created = doc.get("createdAt") or now
            modified = doc.get("modifiedAt") or created
            existing = keys.get(eid)
            if existing is not None:
                key = existing
                updates.append((text, created, modified, key))
                old = olds.get(eid)
                written.append((key, index_change(None if old is None else _loads(old), doc)))
            else:
                if not next_key:
                    # the single writer may hand out keys itself: one executemany, no RETURNING
                    next_key = self._max_key(conn, "entity", "entity_key") + 1
                    owner_key = self._intern(
                        conn, owner, self._orgs, pending.orgs, "organisation", "org_key", "name"
                    )
                key = next_key
                next_key += 1
                inserts.append((key, tenant_key, eid, owner_key, created, modified, text))
                written.append((key, index_change(None, doc)))
        if inserts:
            conn.executemany(
                "INSERT INTO entity (entity_key, tenant_key, entity_id, owner_key, created_at,"
                " modified_at, doc) VALUES (?, ?, ?, ?, ?, ?, ?)",
                inserts,
            )
        if updates:
            conn.executemany(
                "UPDATE entity SET doc = ?, created_at = ?, modified_at = ? WHERE entity_key = ?",
                updates,
            )
        self._index(conn, tenant_key, written, pending)
        # live streams: which entities this transaction wrote, committed with it
        conn.execute(
            "INSERT INTO change_feed (tenant, entity_ids, at) VALUES (?, ?, ?)",
            (tenant, _json_list(final), time.time()),
        )

    def _clear_index(self, conn: sqlite3.Connection, entity_keys: list[int]) -> None:
        param = (_json_list(entity_keys),)
        keyset = "(SELECT value FROM json_each(?))"
        conn.execute(f"DELETE FROM entity_type WHERE entity_key IN {keyset}", param)
        conn.execute(f"DELETE FROM attr_value WHERE entity_key IN {keyset}", param)
        conn.execute(
            "DELETE FROM geo_rtree WHERE geo_key IN"
            f" (SELECT geo_key FROM geo_item WHERE entity_key IN {keyset})",
            param,
        )
        conn.execute(f"DELETE FROM geo_item WHERE entity_key IN {keyset}", param)

    def _index(
        self,
        conn: sqlite3.Connection,
        tenant_key: int,
        written: list[tuple[int, IndexChange]],
        pending: _Pending,
    ) -> None:
        cache = self._iris

        def iri(name: str) -> int:
            key = cache.get(name)
            if key is None:
                key = self._intern(conn, name, cache, pending.iris, "iri", "iri_key", "iri")
            return key

        seen: dict[tuple[int, ...], int] = {}

        def typeset(type_keys: list[int]) -> int:
            ordered = tuple(sorted(type_keys))
            key = seen.get(ordered)  # a batch's entities mostly share one type set
            if key is None:
                key = seen[ordered] = typeset_key(ordered)
            return key

        def typeset_key(type_keys: tuple[int, ...]) -> int:
            text = orjson.dumps(type_keys).decode()
            name = f"{tenant_key}:{text}"
            key = self._typesets.get(name) or pending.typesets.get(name)
            if key is None:
                row = conn.execute(
                    "SELECT typeset_key FROM typeset WHERE tenant_key = ? AND type_keys = ?",
                    (tenant_key, text),
                ).fetchone()
                if row is None:
                    cur = conn.execute(
                        "INSERT INTO typeset (tenant_key, type_keys) VALUES (?, ?)",
                        (tenant_key, text),
                    )
                    key = int(cur.lastrowid or 0)
                else:
                    key = int(row[0])
                pending.typesets[name] = key
            return key

        retyped: list[tuple[int, int]] = []
        types_gone: list[tuple[int, int, int]] = []
        types: list[tuple[int, int, int]] = []
        values_gone: list[tuple[int, int]] = []
        values: list[tuple[int, int, int, int, int, int, float | None, str | None, int]] = []
        geo_gone: list[tuple[int, int]] = []
        items: list[tuple[int, int, int, int, float | None, float | None]] = []
        boxes: list[tuple[int, float, float, float, float]] = []
        geo_key = 0
        for key, change in written:
            ts = typeset([iri(t) for t in change.types])
            if change.replaced and (change.types_removed or change.types_added):
                retyped.append((ts, key))
            types_gone.extend((tenant_key, iri(t), key) for t in change.types_removed)
            types.extend((tenant_key, iri(t), key) for t in change.types_added)
            values_gone.extend((key, iri(a)) for a in change.attrs_cleared)
            for attr, inst, elem, kind, num, txt, opaque in change.values:
                values.append((key, iri(attr), ts, inst, elem, kind, num, txt, opaque))
            geo_gone.extend((key, iri(a)) for a in change.geo_cleared)
            for g in change.geoms:
                if not geo_key:
                    geo_key = self._max_key(conn, "geo_item", "geo_key") + 1
                minx, miny, maxx, maxy = g.bbox
                x, y = g.point or (None, None)
                items.append((geo_key, key, iri(g.attr), g.inst, x, y))
                boxes.append((geo_key, minx, maxx, miny, maxy))
                geo_key += 1
        if retyped:
            conn.executemany("UPDATE attr_value SET typeset_key = ? WHERE entity_key = ?", retyped)
        if types_gone:
            conn.executemany(
                "DELETE FROM entity_type WHERE tenant_key = ? AND type_key = ? AND entity_key = ?",
                types_gone,
            )
        if values_gone:
            conn.executemany(
                "DELETE FROM attr_value WHERE entity_key = ? AND attr_key = ?", values_gone
            )
        if geo_gone:
            conn.executemany(
                "DELETE FROM geo_rtree WHERE geo_key IN (SELECT geo_key FROM geo_item"
                " WHERE entity_key = ? AND attr_key = ?)",
                geo_gone,
            )
            conn.executemany("DELETE FROM geo_item WHERE entity_key = ? AND attr_key = ?", geo_gone)
        # (each executemany costs a statement-cache lookup even with nothing to insert)
        if types:
            conn.executemany("INSERT OR IGNORE INTO entity_type VALUES (?, ?, ?)", types)
        if items:
            conn.executemany("INSERT INTO geo_item VALUES (?, ?, ?, ?, ?, ?)", items)
            conn.executemany("INSERT INTO geo_rtree VALUES (?, ?, ?, ?, ?)", boxes)
        if values:
            conn.executemany(
                "INSERT INTO attr_value (entity_key, attr_key, typeset_key, inst, elem, kind,"
                " num, txt, opaque) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                values,
            )

    @staticmethod
    def _max_key(conn: sqlite3.Connection, table: str, column: str) -> int:
        return int(conn.execute(f"SELECT coalesce(max({column}), 0) FROM {table}").fetchone()[0])

    # --- queries -------------------------------------------------------------------------

    def _plan(self, conn: sqlite3.Connection, tenant: str, query: EntityQuery) -> Plan | None:
        tenant_key = self._tenant_key(conn, tenant)
        if tenant_key is None:
            return None
        keys = self._iri_keys(conn, query_iris(query))
        opaque: set[int] = set()
        multi: set[int] = set()
        if query.q is not None and keys:
            for k, is_opaque, is_multi in conn.execute(
                "SELECT j.value, EXISTS (SELECT 1 FROM attr_value a WHERE a.attr_key = j.value"
                " AND a.opaque = 1), EXISTS (SELECT 1 FROM attr_value a"
                " WHERE a.attr_key = j.value AND (a.inst > 0 OR a.elem > 0)) FROM json_each(?) j",
                (_json_list(keys.values()),),
            ):
                if is_opaque:
                    opaque.add(k)
                if is_multi:
                    multi.add(k)
        typesets: dict[int, frozenset[int]] | None = None
        if query.count and isinstance(query.q, Comparison):
            typesets = {
                k: frozenset(orjson.loads(text))
                for k, text in conn.execute(
                    "SELECT typeset_key, type_keys FROM typeset WHERE tenant_key = ?",
                    (tenant_key,),
                )
            }
        plan = plan_query(
            _DIALECT,
            query,
            tenant_key,
            keys,
            frozenset(opaque),
            typesets,
            frozenset(multi),
            self._org_keys(conn, query_orgs(query)),
        )
        return None if plan.empty else plan

    def _matching(
        self, conn: sqlite3.Connection, plan: Plan, *, limit: int | None, offset: int, count: bool
    ) -> tuple[list[tuple[int, str]], int | None]:
        """(key, doc text) of one page, and the number of matches if `count`."""
        base = f"FROM entity e WHERE {plan.where}"
        if plan.exact:
            rows: list[tuple[int, str]] = []
            if limit is None or limit > 0:
                rows = conn.execute(
                    f"SELECT e.entity_key, e.doc {base} ORDER BY e.entity_key LIMIT ? OFFSET ?",
                    (*plan.params, -1 if limit is None else limit, offset),
                ).fetchall()
            total = None
            if count:
                found = None
                if plan.count_sql is not None:
                    found = conn.execute(*plan.count_sql).fetchone()[0]
                if found is None:  # no fast count, or it does not apply (see plan_query)
                    found = conn.execute(f"SELECT count(*) {base}", plan.params).fetchone()[0]
                total = int(found)
            return rows, total
        if plan.near_attr is not None:
            return self._near_points(conn, plan, limit=limit, offset=offset, count=count)
        page: list[tuple[int, str]] = []
        matched = 0
        last = -1
        while True:
            batch = conn.execute(
                f"SELECT e.entity_key, e.doc {base} AND e.entity_key > ?"
                " ORDER BY e.entity_key LIMIT ?",
                (*plan.params, last, _BATCH),
            ).fetchall()
            for key, text in batch:
                if plan.python_matches(_loads(text)):
                    if matched >= offset and (limit is None or len(page) < limit):
                        page.append((key, text))
                    matched += 1
            if len(batch) < _BATCH or (not count and limit is not None and len(page) >= limit):
                break
            last = batch[-1][0]
        return page, (matched if count else None)

    def _near_points(
        self, conn: sqlite3.Connection, plan: Plan, *, limit: int | None, offset: int, count: bool
    ) -> tuple[list[tuple[int, str]], int | None]:
        cur = conn.execute(
            "SELECT e.entity_key, g.x, g.y FROM entity e JOIN geo_item g"
            f" ON g.entity_key = e.entity_key AND g.attr_key = ? WHERE {plan.where}"
            " ORDER BY e.entity_key",
            (plan.near_attr, *plan.params),
        )
        scan = plan.near_scan(None if count or limit is None else offset + limit)
        scan.feed(cur)  # rows stream from the cursor: an early stop reads no more
        cur.close()
        keys, unsure = scan.result()
        docs: dict[int, str] = {}
        if unsure:
            docs = dict(self._docs_by_key(conn, unsure))
            keys = [k for k in keys if k not in unsure or plan.python_matches(_loads(docs[k]))]
        chosen = keys[offset:] if limit is None else keys[offset : offset + limit]
        missing = [k for k in chosen if k not in docs]
        if missing:
            docs.update(self._docs_by_key(conn, missing))
        return [(k, docs[k]) for k in chosen], (len(keys) if count else None)

    @staticmethod
    def _docs_by_key(conn: sqlite3.Connection, keys: Iterable[int]) -> list[tuple[int, str]]:
        return conn.execute(
            "SELECT entity_key, doc FROM entity WHERE entity_key IN"
            " (SELECT value FROM json_each(?))",
            (_json_list(keys),),
        ).fetchall()

    async def query(self, tenant: str, query: EntityQuery) -> QueryResult:
        """Matching entities in key order, one page, with the count if asked for."""

        def run(conn: sqlite3.Connection) -> QueryResult:
            plan = self._plan(conn, tenant, query)
            if plan is None:
                return QueryResult([], 0 if query.count else None)
            rows, total = self._matching(
                conn, plan, limit=query.limit, offset=query.offset, count=query.count
            )
            return QueryResult([_loads(text) for _, text in rows], total)

        return await self._read(run)

    async def delete_where(self, tenant: str, query: EntityQuery) -> int:
        """Delete every entity matching (ignoring limit/offset); return how many."""

        def run(conn: sqlite3.Connection) -> int:
            conn.execute("BEGIN IMMEDIATE")
            try:
                plan = self._plan(conn, tenant, query)
                gone: list[int] = []
                if plan is not None:
                    rows, _ = self._matching(conn, plan, limit=None, offset=0, count=False)
                    gone = [key for key, _ in rows]
                if gone:
                    self._clear_index(conn, gone)
                    conn.execute(
                        "DELETE FROM entity WHERE entity_key IN (SELECT value FROM json_each(?))",
                        (_json_list(gone),),
                    )
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            return len(gone)

        return await self._write(run)

    # --- tenants and discovery -----------------------------------------------------------

    async def tenant_exists(self, tenant: str) -> bool:
        """Whether the tenant has been written to (the default tenant always exists)."""
        if tenant in self._tenants:
            return True
        return await self._read(lambda conn: self._tenant_key(conn, tenant) is not None)

    async def tenants(self) -> list[str]:
        """Every tenant's name, sorted."""
        rows = await self._read(lambda conn: conn.execute("SELECT name FROM tenant").fetchall())
        return sorted(name for (name,) in rows)

    async def entity_types(self, tenant: str, readable: Readable | None = None) -> list[TypeInfo]:
        """The entity types of a tenant's (readable) entities, sorted by IRI."""

        def run(conn: sqlite3.Connection) -> list[TypeInfo]:
            tenant_key = self._tenant_key(conn, tenant)
            restrict = self._readable_sql(conn, readable)
            if tenant_key is None or restrict is None:
                return []
            only, params = restrict
            if readable is None:
                counts = conn.execute(
                    "SELECT i.iri, count(*) FROM entity_type t JOIN iri i ON i.iri_key = t.type_key"
                    " WHERE t.tenant_key = ? GROUP BY t.type_key",
                    (tenant_key,),
                ).fetchall()
            else:
                counts = conn.execute(
                    "SELECT i.iri, count(*) FROM entity_type t JOIN iri i ON i.iri_key = t.type_key"
                    " JOIN entity e ON e.entity_key = t.entity_key"
                    f" WHERE t.tenant_key = ?{only} GROUP BY t.type_key",
                    (tenant_key, *params),
                ).fetchall()
            attrs: dict[str, list[str]] = {}
            for type_iri, attr_iri in self._type_attrs(conn, tenant_key, only, params):
                attrs.setdefault(type_iri, []).append(attr_iri)
            return sorted(
                (TypeInfo(t, int(n), sorted(attrs.get(t, []))) for t, n in counts),
                key=lambda i: i.type_iri,
            )

        return await self._read(run)

    @staticmethod
    def _type_attrs(
        conn: sqlite3.Connection, tenant_key: int, only: str, params: list[Any]
    ) -> list[tuple[str, str]]:
        """(type IRI, attribute IRI) of the (readable) entities having both."""
        join = " JOIN entity e ON e.entity_key = t.entity_key" if only else ""
        return conn.execute(
            "SELECT ti.iri, ai.iri FROM (SELECT DISTINCT t.type_key, a.attr_key"
            f" FROM entity_type t JOIN attr_value a ON a.entity_key = t.entity_key{join}"
            f" WHERE t.tenant_key = ?{only}) x JOIN iri ti ON ti.iri_key = x.type_key"
            " JOIN iri ai ON ai.iri_key = x.attr_key",
            (tenant_key, *params),
        ).fetchall()

    async def attribute_infos(
        self, tenant: str, readable: Readable | None = None
    ) -> list[AttrInfo]:
        """The attribute names of a tenant's (readable) entities, sorted by IRI."""

        def run(conn: sqlite3.Connection) -> list[AttrInfo]:
            tenant_key = self._tenant_key(conn, tenant)
            restrict = self._readable_sql(conn, readable)
            if tenant_key is None or restrict is None:
                return []
            only, params = restrict
            infos: dict[str, AttrInfo] = {}
            for attr_iri, kind, n in conn.execute(
                "SELECT i.iri, a.kind, count(*) FROM attr_value a"
                " JOIN entity e ON e.entity_key = a.entity_key"
                " JOIN iri i ON i.iri_key = a.attr_key"
                f" WHERE e.tenant_key = ? AND a.elem = 0{only} GROUP BY a.attr_key, a.kind",
                (tenant_key, *params),
            ):
                info = infos.setdefault(attr_iri, AttrInfo(attr_iri, 0))
                info.attribute_count += int(n)
                info.attribute_types.append(KIND_NAMES.get(kind, "Property"))
            for type_iri, attr_iri in self._type_attrs(conn, tenant_key, only, params):
                if attr_iri in infos:
                    infos[attr_iri].type_names.append(type_iri)
            for info in infos.values():
                info.attribute_types = sorted(set(info.attribute_types))
                info.type_names.sort()
            return [infos[k] for k in sorted(infos)]

        return await self._read(run)

    # --- @context documents --------------------------------------------------------------

    async def put_context(self, context_id: str, document: Any, *, kind: str = "hosted") -> None:
        """Store (or replace) an @context document."""
        text = orjson.dumps(document).decode()

        def run(conn: sqlite3.Connection) -> None:
            conn.execute(
                "INSERT INTO jsonld_context (context_id, kind, document) VALUES (?, ?, ?)"
                " ON CONFLICT (context_id) DO UPDATE SET kind = excluded.kind,"
                " document = excluded.document",
                (context_id, kind, text),
            )

        await self._write(run)

    async def get_context(self, context_id: str) -> StoredContext | None:
        """A stored @context document, or None."""
        row = await self._read(
            lambda conn: conn.execute(
                "SELECT context_id, document, kind, created_at FROM jsonld_context"
                " WHERE context_id = ?",
                (context_id,),
            ).fetchone()
        )
        return None if row is None else StoredContext(row[0], orjson.loads(row[1]), row[2], row[3])

    async def delete_context(self, context_id: str) -> bool:
        """Delete a stored @context; whether it existed."""
        return await self._write(
            lambda conn: (
                conn.execute(
                    "DELETE FROM jsonld_context WHERE context_id = ?", (context_id,)
                ).rowcount
                > 0
            )
        )

    async def list_contexts(self) -> list[StoredContext]:
        """Every stored @context, sorted by id."""
        rows = await self._read(
            lambda conn: conn.execute(
                "SELECT context_id, document, kind, created_at FROM jsonld_context"
                " ORDER BY context_id"
            ).fetchall()
        )
        return [StoredContext(r[0], orjson.loads(r[1]), r[2], r[3]) for r in rows]


class _Job:
    """One `transact` call queued for a group commit: its arguments and the future it resolves."""

    __slots__ = ("check_owners", "entity_ids", "future", "loop", "mutate", "owner", "tenant")

    def __init__(
        self,
        tenant: str,
        entity_ids: Sequence[str],
        mutate: Callable[[dict[str, dict[str, Any] | None]], tuple[list[WriteOp], Any]],
        owner: str,
        check_owners: OwnersCheck | None,
        loop: asyncio.AbstractEventLoop,
        future: asyncio.Future[Any],
    ) -> None:
        self.tenant = tenant
        self.entity_ids = entity_ids
        self.mutate = mutate
        self.owner = owner
        self.check_owners = check_owners
        self.loop = loop
        self.future = future


class _Busy(Exception):
    """Another connection holds the database's write lock (SQLITE_BUSY at BEGIN)."""


def _begin_at_once(conn: sqlite3.Connection) -> None:
    """BEGIN IMMEDIATE without waiting for another process's write lock: `_Busy` instead."""
    conn.execute("PRAGMA busy_timeout = 0")
    try:
        conn.execute("BEGIN IMMEDIATE")
    except sqlite3.OperationalError as exc:
        if exc.sqlite_errorcode == sqlite3.SQLITE_BUSY and not conn.in_transaction:
            raise _Busy from exc
        raise
    finally:
        conn.execute(f"PRAGMA busy_timeout = {_BUSY_MS}")


class _Part:
    """A job of a run (`_run_together`) after its mutation: what it read, its ops, its result."""

    __slots__ = ("job", "keys", "olds", "ops", "result")

    def __init__(self, job: _Job) -> None:
        self.job = job
        self.keys: dict[str, int] = {}
        self.olds: dict[str, str] = {}
        self.ops: list[WriteOp] = []
        self.result: Any = None


def _written_ids(ops: Iterable[Any]) -> set[str]:
    """The entities that `Put` and `Delete` ops write."""
    return {
        op.doc["id"] if isinstance(op, Put) else op.entity_id
        for op in ops
        if isinstance(op, (Put, Delete))
    }


def _settle(outcomes: list[tuple[_Job, Any, BaseException | None]]) -> None:
    """Resolve the callers' futures on their event loops: one wake-up per loop, not per job."""
    by_loop: dict[asyncio.AbstractEventLoop, list[tuple[_Job, Any, BaseException | None]]] = {}
    for outcome in outcomes:
        by_loop.setdefault(outcome[0].loop, []).append(outcome)
    for loop, mine in by_loop.items():
        with contextlib.suppress(RuntimeError):  # a closed loop: nobody waits any more
            loop.call_soon_threadsafe(_resolve, mine)


def _resolve(outcomes: list[tuple[_Job, Any, BaseException | None]]) -> None:
    for job, result, error in outcomes:
        if job.future.done():
            continue  # cancelled meanwhile
        if error is None:
            job.future.set_result(result)
        else:
            job.future.set_exception(error)


class _Pending:
    """Dictionary keys created in the running transaction: cached only once it commits."""

    __slots__ = ("iris", "orgs", "shapes", "tenants", "typesets")

    def __init__(self) -> None:
        self.shapes: dict[int, bytes] = {}
        self.iris: dict[str, int] = {}
        self.tenants: dict[str, int] = {}
        self.orgs: dict[str, int] = {}
        self.typesets: dict[str, int] = {}

    def publish(self, store: SQLiteStore) -> None:
        store._typesets.update(self.typesets)
        store._iris.update(self.iris)
        store._tenants.update(self.tenants)
        store._orgs.update(self.orgs)
        if self.shapes:
            store.shape_cache().docs.update(self.shapes)
