"""SQLite-specific behaviour: durability across processes, URLs, the in-memory database."""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import sys
import textwrap
import threading
from pathlib import Path
from typing import Any

import pytest
from storage_docs import NS, entity

from smartregion.errors import InvalidRequest
from smartregion.storage import Delete, EntityQuery, Put, WriteOp, migrations, open_store
from smartregion.storage.postgres import PostgresStore
from smartregion.storage.sqlite import SQLiteStore

pytestmark = pytest.mark.anyio


async def migrated(path: Path) -> SQLiteStore:
    """An open SQLite store in the file `path`, its migrations applied."""
    s = open_store(f"sqlite:///{path}")
    assert isinstance(s, SQLiteStore)
    await s.open()
    await s.migrate()
    return s


async def test_acknowledged_writes_survive_a_crash(tmp_path: Path) -> None:
    db = tmp_path / "durable.db"
    # The writer process exits hard (no close, no checkpoint) right after the acknowledgement.
    script = textwrap.dedent(
        f"""
        import asyncio, os
        from smartregion.storage import Put, open_store
        async def main():
            s = open_store("sqlite:///{db}")
            await s.open()
            await s.migrate()
            doc = {{"id": "urn:ngsi-ld:T:1", "type": ["urn:T"], "attrs": {{}}}}
            await s.transact("", ["urn:ngsi-ld:T:1"], lambda _: ([Put(doc)], None), owner="o")
            print("acknowledged", flush=True)
            os._exit(0)
        asyncio.run(main())
        """
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "acknowledged"
    s = open_store(f"sqlite:///{db}")
    await s.open()
    try:
        assert await s.migrate() == []
        doc = await s.get_entity("", "urn:ngsi-ld:T:1")
        assert doc is not None and doc["type"] == ["urn:T"]
    finally:
        await s.close()


async def test_close_and_reopen(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'a.db'}"
    s = open_store(url)
    await s.open()
    await s.migrate()
    await s.transact("t1", ["urn:ngsi-ld:T:1"], lambda _: ([Put(entity(1, n=1))], None), owner="o")
    await s.close()
    s = open_store(url)
    await s.open()
    try:
        assert await s.get_entity("t1", "urn:ngsi-ld:T:1") == entity(1, n=1)
        assert await s.tenants() == ["", "t1"]
    finally:
        await s.close()


async def test_memory_database() -> None:
    s = open_store("sqlite:///:memory:")
    assert isinstance(s, SQLiteStore) and s.memory
    await s.open()
    try:
        shipped = migrations.discover("smartregion.storage.sqlite.migrations")
        assert await s.migrate() == [m.name for m in shipped]
        await s.transact(
            "", ["urn:ngsi-ld:T:1"], lambda _: ([Put(entity(1, n=3))], None), owner="o"
        )
        result = await s.query("", EntityQuery(count=True))
        assert result.count == 1 and result.docs[0]["attrs"][NS + "n"][0]["value"] == 3
    finally:
        await s.close()


def test_database_urls(tmp_path: Path) -> None:
    relative = open_store("sqlite:///./smartregion.db")
    assert isinstance(relative, SQLiteStore) and relative.path == "./smartregion.db"
    absolute = open_store("sqlite:////var/lib/sr.db")
    assert isinstance(absolute, SQLiteStore) and absolute.path == "/var/lib/sr.db"
    assert isinstance(open_store("postgresql://u@h/db"), PostgresStore)
    assert open_store("postgresql://u@h/db").backend == "postgresql"
    with pytest.raises(InvalidRequest):
        open_store("mysql://x")


async def test_group_commit_isolates_a_failing_transaction(tmp_path: Path) -> None:
    # Hold the writer thread so that every transaction below queues for ONE group commit.
    s = await migrated(tmp_path / "group.db")
    groups: list[int] = []
    commit_group = s._commit_group

    def spy(jobs: list[Any], **how: Any) -> None:
        groups.append(len(jobs))
        commit_group(jobs, **how)

    s._commit_group = spy  # type: ignore[method-assign]
    try:
        await s.transact(
            "", ["urn:ngsi-ld:T:1"], lambda _: ([Put(entity(1, n=1))], None), owner="o"
        )
        gate = threading.Event()
        blocker = asyncio.ensure_future(s._write(lambda _: gate.wait(10)))
        await asyncio.sleep(0.05)
        groups.clear()
        bad = entity(2, n=2)
        bad["self"] = {1, 2}  # not JSON-serialisable: fails after the Delete and a new tenant
        failing: list[WriteOp] = [Delete("urn:ngsi-ld:T:1"), Put(entity(3)), Put(bad)]

        def create(k: int) -> Any:
            return lambda _: ([Put(entity(k))], k)

        calls = [
            s.transact("", [f"urn:ngsi-ld:T:{k}"], create(k), owner="o") for k in range(10, 20)
        ]
        calls.insert(
            4, s.transact("t-failed", ["urn:ngsi-ld:T:1"], lambda _: (failing, None), owner="o")
        )
        also_bad: list[WriteOp] = [Delete("urn:ngsi-ld:T:1"), Put(bad)]
        calls.insert(7, s.transact("", ["urn:ngsi-ld:T:1"], lambda _: (also_bad, None), owner="o"))
        tasks = [asyncio.ensure_future(c) for c in calls]
        await asyncio.sleep(0.05)
        gate.set()
        outcomes = await asyncio.gather(*tasks, return_exceptions=True)
        await blocker
        assert groups == [12]  # one BEGIN … COMMIT for all twelve
        assert [o for i, o in enumerate(outcomes) if i not in (4, 7)] == list(range(10, 20))
        assert isinstance(outcomes[4], TypeError) and isinstance(outcomes[7], TypeError)
        # the failed ones wrote nothing (not even their new tenant), the others everything
        assert await s.get_entity("", "urn:ngsi-ld:T:1") == entity(1, n=1)
        assert await s.tenants() == [""]
        result = await s.query("", EntityQuery(limit=100, count=True))
        assert result.count == 11
        assert {d["id"] for d in result.docs} == {f"urn:ngsi-ld:T:{k}" for k in (1, *range(10, 20))}
        # the dictionaries the committed ones created are usable afterwards
        page = await s.query("", EntityQuery(types=[frozenset({NS + "T"})], limit=1, count=True))
        assert page.count == 11
    finally:
        await s.close()


async def test_queued_writes_run_together_as_if_one_after_another(tmp_path: Path) -> None:
    # Jobs of one group commit run together (one read, one set of writes) where that gives
    # what running them one by one would: each job must still see every earlier job's writes.
    s = await migrated(tmp_path / "together.db")
    try:
        await s.transact(
            "", [], lambda _: ([Put(entity(k, n=0)) for k in range(1, 6)], None), owner="o"
        )
        statements: list[str] = []
        assert s._writer_conn is not None
        s._writer_conn.set_trace_callback(statements.append)
        gate = threading.Event()
        blocker = asyncio.ensure_future(s._write(lambda _: gate.wait(10)))
        await asyncio.sleep(0.05)

        def bump(k: int, *, also: int | None = None, fail: bool = False) -> Any:
            """Read entity k, write it with n+1 (and entity `also`, unread, with n=100)."""

            def mutate(current: dict[str, Any]) -> tuple[list[WriteOp], Any]:
                seen = current[f"urn:ngsi-ld:T:{k}"]
                if fail:
                    raise ValueError("refused")
                n = 0 if seen is None else seen["attrs"][NS + "n"][0]["value"]
                ops: list[WriteOp] = [Put(entity(k, n=n + 1))]
                if also is not None:
                    ops.append(Put(entity(also, n=100)))
                return ops, n

            return mutate

        def call(k: int, tenant: str = "", **kw: Any) -> Any:
            return s.transact(tenant, [f"urn:ngsi-ld:T:{k}"], bump(k, **kw), owner="o")

        tasks = [
            asyncio.ensure_future(c)
            for c in (
                call(1, also=50),  # writes entity 50 without reading it
                call(2),
                call(50),  # must see the 50 just written: starts a new run
                call(1),  # must see the first job's write
                call(3, fail=True),  # fails alone
                call(4, tenant="other"),  # another tenant: a run of its own
                call(4),
                call(2),  # the second write of entity 2 in this group
            )
        ]
        await asyncio.sleep(0.05)
        statements.clear()
        gate.set()
        outcomes = await asyncio.gather(*tasks, return_exceptions=True)
        await blocker
        assert outcomes[:4] == [0, 0, 100, 1]
        assert isinstance(outcomes[4], ValueError)
        assert outcomes[5:] == [0, 0, 1]
        stored = await s.get_entities("", [f"urn:ngsi-ld:T:{k}" for k in (1, 2, 3, 4, 50)])
        assert {eid: doc["attrs"][NS + "n"][0]["value"] for eid, doc in stored.items()} == {
            "urn:ngsi-ld:T:1": 2,
            "urn:ngsi-ld:T:2": 2,
            "urn:ngsi-ld:T:3": 0,
            "urn:ngsi-ld:T:4": 1,
            "urn:ngsi-ld:T:50": 101,
        }
        other = await s.get_entity("other", "urn:ngsi-ld:T:4")
        assert other is not None and other["attrs"][NS + "n"][0]["value"] == 1
        # seven writes in four runs: [1 (and 50), 2] · [50, 1, 3 failing] · [4 other] · [4, 2]
        # (one change-feed row per run's write, where one per job was written before)
        assert statements.count("BEGIN IMMEDIATE") == 1
        assert statements.count("SAVEPOINT run") == 3 and statements.count("SAVEPOINT job") == 1
        feed = [q for q in statements if q.startswith("INSERT INTO change_feed")]
        assert len(feed) == 4
    finally:
        await s.close()


async def test_a_joint_write_that_fails_is_retried_job_by_job(tmp_path: Path) -> None:
    # When the writes of a run fail together, each job's are applied on its own: only the job
    # at fault fails, with its own error, and the others commit.
    s = await migrated(tmp_path / "retry.db")
    try:
        gate = threading.Event()
        blocker = asyncio.ensure_future(s._write(lambda _: gate.wait(10)))
        await asyncio.sleep(0.05)
        bad = entity(2)
        bad["self"] = {1, 2}  # not JSON-serialisable: fails while the run is being written

        def put(doc: dict[str, Any]) -> Any:
            return s.transact("", [doc["id"]], lambda _: ([Put(doc)], doc["id"]), owner="o")

        tasks = [asyncio.ensure_future(put(doc)) for doc in (entity(1), bad, entity(3))]
        await asyncio.sleep(0.05)
        gate.set()
        outcomes = await asyncio.gather(*tasks, return_exceptions=True)
        await blocker
        assert outcomes[0] == "urn:ngsi-ld:T:1" and outcomes[2] == "urn:ngsi-ld:T:3"
        assert isinstance(outcomes[1], TypeError)
        ids = ["urn:ngsi-ld:T:1", "urn:ngsi-ld:T:2", "urn:ngsi-ld:T:3"]
        assert sorted(await s.get_entities("", ids)) == ["urn:ngsi-ld:T:1", "urn:ngsi-ld:T:3"]
    finally:
        await s.close()


async def test_small_groups_are_written_on_the_event_loop_and_batches_on_the_writer(
    tmp_path: Path,
) -> None:
    # A few entities are written on the loop's own thread (no GIL hand-over per statement);
    # a batch goes to the writer thread, so that the loop serves other requests meanwhile.
    s = await migrated(tmp_path / "where.db")
    try:
        where: list[str] = []

        def put(ids: list[str]) -> Any:
            def mutate(_: dict[str, Any]) -> tuple[list[WriteOp], None]:
                where.append(threading.current_thread().name)
                return [Put(entity(eid.rsplit(":", 1)[1], n=1)) for eid in ids], None

            return s.transact("", ids, mutate, owner="o")

        here = threading.current_thread().name
        await put(["urn:ngsi-ld:T:1"])
        await put([f"urn:ngsi-ld:T:{k}" for k in range(100, 300)])
        assert where[0] == here and where[1].startswith("sqlite-writer")
        # a disk whose COMMITs are slow: small groups go to the writer thread too, and now
        # and then one is written on the loop again, to measure the COMMIT anew
        s._commit_seconds = 10.0
        where.clear()
        for k in range(64):
            await put([f"urn:ngsi-ld:T:{k + 2}"])
        assert where.count(here) == 1 and where[-1] == here
        assert 5.0 < s._commit_seconds < 10.0  # the probe's fast COMMIT moved the average
        assert len(await s.get_entities("", [f"urn:ngsi-ld:T:{k}" for k in range(1, 300)])) == 265
    finally:
        await s.close()


async def test_a_write_lock_held_elsewhere_is_waited_for_off_the_event_loop(
    tmp_path: Path,
) -> None:
    # Another process (a second worker, an import) holds the database's write lock: a small
    # write must not stop the event loop while it waits; the writer thread waits instead.
    db = tmp_path / "locked.db"
    s = await migrated(db)
    other = sqlite3.connect(db, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        where: list[str] = []

        def mutate(_: dict[str, Any]) -> tuple[list[WriteOp], None]:
            where.append(threading.current_thread().name)
            return [Put(entity(1, n=1))], None

        write = asyncio.ensure_future(s.transact("", ["urn:ngsi-ld:T:1"], mutate, owner="o"))
        ticks = 0
        for _ in range(20):  # the loop keeps running while the write waits for the lock
            await asyncio.sleep(0.01)
            ticks += 1
        assert ticks == 20 and not write.done()
        other.execute("COMMIT")
        await asyncio.wait_for(write, 10)
        assert where and where[-1].startswith("sqlite-writer")
        assert await s.get_entity("", "urn:ngsi-ld:T:1") == entity(1, n=1)
    finally:
        other.close()
        await s.close()


async def test_group_committed_writes_survive_a_hard_exit(tmp_path: Path) -> None:
    db = tmp_path / "group-durable.db"
    # 200 concurrent writers; the process dies (no close) right after the 120th acknowledgement,
    # with more transactions queued and running: every acknowledged one must be on disk.
    script = textwrap.dedent(
        f"""
        import asyncio, os
        from smartregion.storage import Put, open_store
        async def main():
            s = open_store("sqlite:///{db}")
            await s.open()
            await s.migrate()
            acked = 0
            async def write(k):
                nonlocal acked
                eid = f"urn:ngsi-ld:T:{{k}}"
                doc = {{"id": eid, "type": ["urn:T"], "attrs": {{}}}}
                await s.transact("", [eid], lambda _: ([Put(doc)], None), owner="o")
                print(eid, flush=True)
                acked += 1
                if acked == 120:
                    os._exit(0)
            await asyncio.gather(*(write(k) for k in range(200)))
        asyncio.run(main())
        """
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    acked = out.stdout.split()
    assert len(acked) == 120
    s = open_store(f"sqlite:///{db}")
    await s.open()
    try:
        stored = await s.get_entities("", acked)
        assert sorted(stored) == sorted(acked)
    finally:
        await s.close()
