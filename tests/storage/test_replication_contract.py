"""The replication-state storage contract (`storage/replication.py`), on every backend."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from smartregion.storage import Put, Store
from smartregion.storage.replication import (
    ReplicationLeaseLost,
    ReplicationProgress,
    ReplicationStore,
)

pytestmark = pytest.mark.anyio
NS = "https://example.org/"


def doc(eid: str) -> dict[str, Any]:
    now = "2026-01-01T00:00:00.000000Z"
    return {"id": eid, "type": [NS + "T"], "createdAt": now, "modifiedAt": now, "attrs": {}}


def repl(store: Store) -> ReplicationStore:
    assert isinstance(store, ReplicationStore)
    return store


async def test_open_is_idempotent_per_tenant_dataset_and_source(store: Store) -> None:
    s = repl(store)
    a = await s.open_replication("", "ds", "http://x/stream")
    again = await s.open_replication("", "ds", "http://x/stream")
    other = await s.open_replication("t2", "ds", "http://x/stream")
    assert a.key == again.key != other.key
    assert a.state == {} and a.members == 0
    assert [r.key for r in await s.replications()] == sorted([a.key, other.key])


async def test_lease_claim_take_over_and_fence(store: Store) -> None:
    s = repl(store)
    r = await s.open_replication("", "ds", "http://x/stream")
    assert await s.claim_replication(r.key, "A", 60)
    assert await s.claim_replication(r.key, "A", 60)  # renewing
    assert not await s.claim_replication(r.key, "B", 60)
    await s.save_replication(r.key, "A", {"pages": {"p": 1}}, 60)
    assert await s.claim_replication(r.key, "B", 60, take_over=True)
    with pytest.raises(ReplicationLeaseLost):
        await s.save_replication(r.key, "A", {"pages": {}}, 60)
    (saved,) = await s.replications()
    assert saved.state == {"pages": {"p": 1}}
    await s.release_replication(r.key, "A")  # not A's any more: no effect
    assert not await s.claim_replication(r.key, "C", 60)
    await s.release_replication(r.key, "B")
    assert await s.claim_replication(r.key, "C", 60)


async def test_an_expired_lease_may_be_claimed(store: Store) -> None:
    s = repl(store)
    r = await s.open_replication("", "ds", "http://x/stream")
    assert await s.claim_replication(r.key, "A", 0.01)
    await asyncio.sleep(0.05)
    # run out but unclaimed: still A's (a slow fetch), and the write renews it
    await s.save_replication(r.key, "A", {"n": 1}, 0.01)
    await asyncio.sleep(0.05)
    assert await s.claim_replication(r.key, "B", 60)
    with pytest.raises(ReplicationLeaseLost):
        await s.save_replication(r.key, "A", {}, 60)


async def test_members_seen_commit_with_the_entity_writes(store: Store) -> None:
    s = repl(store)
    r = await s.open_replication("", "ds", "http://x/stream")
    assert await s.claim_replication(r.key, "A", 60)
    members = ("http://x/m/1", "http://x/m/2")

    def write(current: dict[str, Any]) -> tuple[list[Any], None]:
        progress = ReplicationProgress(r.key, "A", members, {"done": 1}, 60)
        return [Put(doc("urn:e:1")), progress], None

    await store.transact("", ["urn:e:1"], write, owner="org")
    assert await s.seen_members(r.key, [*members, "http://x/m/3"]) == set(members)
    assert await store.get_entity("", "urn:e:1") is not None
    (saved,) = await s.replications()
    assert saved.state == {"done": 1} and saved.members == 2

    # seen again: counted once
    def again(current: dict[str, Any]) -> tuple[list[Any], None]:
        return [ReplicationProgress(r.key, "A", members[:1], {"done": 2}, 60)], None

    await store.transact("", [], again, owner="org")
    (saved,) = await s.replications()
    assert saved.state == {"done": 2} and saved.members == 2


async def test_nothing_is_seen_when_the_write_fails(store: Store) -> None:
    s = repl(store)
    r = await s.open_replication("", "ds", "http://x/stream")
    assert await s.claim_replication(r.key, "A", 60)

    def broken(current: dict[str, Any]) -> tuple[list[Any], None]:
        raise ValueError("mapping failed")

    with pytest.raises(ValueError):
        await store.transact("", ["urn:e:2"], broken, owner="org")
    # a lost lease fails the whole transaction: neither the entity nor the members
    assert await s.claim_replication(r.key, "B", 60, take_over=True)

    def fenced(current: dict[str, Any]) -> tuple[list[Any], None]:
        return [
            Put(doc("urn:e:2")),
            ReplicationProgress(r.key, "A", ("http://x/m/9",), {}, 60),
        ], None

    with pytest.raises(ReplicationLeaseLost):
        await store.transact("", ["urn:e:2"], fenced, owner="org")
    assert await s.seen_members(r.key, ["http://x/m/9"]) == set()
    assert await store.get_entity("", "urn:e:2") is None
