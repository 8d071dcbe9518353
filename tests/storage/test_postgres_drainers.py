"""PostgreSQL's group commit: the drainer tasks that write the queued `transact` calls, and the
writes of a group that go to the server in pipeline mode."""

from __future__ import annotations

import asyncio
from typing import Any

import psycopg
import pytest
from storage_docs import NS, entity

from smartregion.storage import Put, Store
from smartregion.storage.base import EntityQuery
from smartregion.storage.postgres.store import _DRAINERS, PostgresStore

# the `store` fixture (conftest) on PostgreSQL only: an emptied throwaway database
pytestmark = [
    pytest.mark.postgres,
    pytest.mark.anyio,
    pytest.mark.parametrize("backend", ["postgresql"]),
]


async def test_a_call_queued_as_the_drainers_finish_is_still_written(store: Store) -> None:
    # A drainer that found the queue empty has returned, but it leaves the set of drainers only
    # when its done-callback runs, a turn of the event loop later. A call queued in between,
    # with every drainer in that state, must start a new one: counted as busy, they left the
    # call queued with nobody to write it, and its caller waiting for ever.
    async def finished() -> None:
        return None

    assert isinstance(store, PostgresStore)  # `store` (conftest) on PostgreSQL only
    gone: list[asyncio.Task[None]] = []
    for _ in range(_DRAINERS):
        task = asyncio.get_running_loop().create_task(finished())
        await task
        gone.append(task)
    store._drainers.update(gone)  # done, their discard not run yet
    write = store.transact("", ["urn:ngsi-ld:T:1"], lambda _: ([Put(entity(1))], "ok"), owner="o")
    try:
        assert await asyncio.wait_for(write, 10) == "ok"
    finally:
        store._drainers.difference_update(gone)  # what their done-callbacks would have done
    assert await store.get_entity("", "urn:ngsi-ld:T:1") == entity(1)


async def test_a_statement_failing_in_the_pipelined_writes_fails_the_group_and_writes_nothing(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The entity rows, the attribute index and the change feed of a group are sent in pipeline
    # mode: a statement's error only surfaces when the pipeline syncs, after the statements
    # queued behind it. The group must still fail as a whole, roll back everything (the entity
    # rows written before the failing statement too), and not keep later writes from being
    # written.
    assert isinstance(store, PostgresStore)
    await store.transact(
        "", ["urn:ngsi-ld:T:1"], lambda _: ([Put(entity(1, n=1))], None), owner="o"
    )
    index = PostgresStore._index

    async def failing_index(self: PostgresStore, conn: Any, *args: Any) -> None:
        await index(self, conn, *args)
        await conn.execute("SELECT 1 / 0")  # answered only at the pipeline's sync

    monkeypatch.setattr(PostgresStore, "_index", failing_index)
    update = store.transact(
        "", ["urn:ngsi-ld:T:1"], lambda _: ([Put(entity(1, n=2))], "u"), owner="o"
    )
    create = store.transact("", ["urn:ngsi-ld:T:2"], lambda _: ([Put(entity(2))], "c"), owner="o")
    outcomes = await asyncio.wait_for(asyncio.gather(update, create, return_exceptions=True), 30)
    assert [type(o) for o in outcomes] == [psycopg.errors.DivisionByZero] * 2
    monkeypatch.setattr(PostgresStore, "_index", index)
    assert await store.get_entity("", "urn:ngsi-ld:T:1") == entity(1, n=1)
    assert await store.get_entity("", "urn:ngsi-ld:T:2") is None
    typed = EntityQuery(types=[frozenset({NS + "T"})], count=True)
    assert (await store.query("", typed)).count == 1  # nothing of the group in the index
    # the next writes, through whichever pooled connections, are written
    for n in range(3, 3 + 2 * _DRAINERS):
        eid = f"urn:ngsi-ld:T:{n}"
        assert await store.transact("", [eid], lambda _, n=n: ([Put(entity(n))], n), owner="o") == n
        assert await store.get_entity("", eid) == entity(n)
