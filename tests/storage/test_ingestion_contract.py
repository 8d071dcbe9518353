"""The ingestion storage contract (dead letters), on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from smartregion.storage import Store, open_store
from smartregion.storage.ingestion import DeadLetter, IngestionStore

pytestmark = pytest.mark.anyio


def letter(n: int, *, org: str = "org-a", tenant: str = "") -> DeadLetter:
    return DeadLetter(
        tenant=tenant,
        org=org,
        topic=f"sensors/{n}",
        payload="{not json",
        reason=f"bad {n}",
        received_at=f"2026-01-01T00:00:0{n}.000000Z",
    )


async def test_dead_letters_are_listed_per_org_newest_first(store: Store) -> None:
    assert isinstance(store, IngestionStore)
    for n in range(3):
        await store.add_dead_letter(letter(n))
    await store.add_dead_letter(letter(9, org="org-b"))
    await store.add_dead_letter(letter(8, tenant="t1"))
    mine = await store.dead_letters("org-a")
    assert [d.reason for d in mine] == ["bad 8", "bad 2", "bad 1", "bad 0"]
    assert mine[1].topic == "sensors/2"
    assert mine[1].payload == "{not json"
    assert mine[1].received_at == "2026-01-01T00:00:02.000000Z"
    assert mine[0].key is not None and mine[1].key is not None and mine[0].key > mine[1].key
    assert [d.reason for d in await store.dead_letters("org-a", tenant="")] == [
        "bad 2",
        "bad 1",
        "bad 0",
    ]
    assert [d.reason for d in await store.dead_letters("org-a", tenant="t1")] == ["bad 8"]
    assert [d.reason for d in await store.dead_letters("org-b")] == ["bad 9"]
    assert len(await store.dead_letters("org-a", limit=2)) == 2
    assert await store.dead_letters("nobody") == []


async def test_dead_letters_survive_reopening(store: Store, store_url: str) -> None:
    assert isinstance(store, IngestionStore)
    odd = letter(1)
    odd.payload = "caf\u00e9 \x00 \u2603"
    await store.add_dead_letter(odd)
    other = open_store(store_url)
    await other.open()
    try:
        assert isinstance(other, IngestionStore)
        (found,) = await other.dead_letters("org-a")
        assert found.reason == "bad 1"
        assert found.payload.startswith("caf\u00e9 ")
        assert found.payload.endswith(" \u2603")
    finally:
        await other.close()
