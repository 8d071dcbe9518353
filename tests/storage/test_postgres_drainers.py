"""PostgreSQL's group commit: the drainer tasks that write the queued `transact` calls."""

from __future__ import annotations

import asyncio

import pytest
from storage_docs import entity

from smartregion.storage import Put, Store
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
