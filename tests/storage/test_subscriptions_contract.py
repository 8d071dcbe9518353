"""The subscription storage contract (`SubscriptionStore`): every test runs on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from smartregion.errors import AlreadyExists
from smartregion.storage import Put, Store, WriteOp, open_store
from smartregion.storage.subscriptions import Notify, OutboxRow, Settled, SubscriptionStore

pytestmark = pytest.mark.anyio


def subs(store: Store) -> SubscriptionStore:
    assert isinstance(store, SubscriptionStore)
    return store


def sub_doc(n: int, **extra: Any) -> dict[str, Any]:
    return {
        "id": f"urn:ngsi-ld:Subscription:{n}",
        "type": "Subscription",
        "notification": {"endpoint": {"uri": "http://x.org/n"}},
        **extra,
    }


def row(n: int, sub: int = 1, tenant: str = "", due: float = 0.0) -> OutboxRow:
    return OutboxRow(
        id=f"row{n}",
        tenant=tenant,
        subscription_id=f"urn:ngsi-ld:Subscription:{sub}",
        body={"type": "Notification", "n": n},
        target={"uri": "http://x.org/n"},
        due_at=due,
    )


async def test_create_get_list_replace_delete(store: Store) -> None:
    s = subs(store)
    version = await s.subscriptions_version()
    assert await s.create_subscription("", sub_doc(1))
    assert not await s.create_subscription("", sub_doc(1))  # the id is taken
    assert await s.create_subscription("other", sub_doc(1))  # tenants are separate
    assert await s.create_subscription("", sub_doc(2))
    assert await s.subscriptions_version() != version
    got = await s.get_subscription("", "urn:ngsi-ld:Subscription:1")
    assert got is not None and got.doc == sub_doc(1) and got.state.times_sent == 0
    page, total = await s.list_subscriptions("", limit=1, offset=1)
    assert total == 2 and [p.doc["id"] for p in page] == ["urn:ngsi-ld:Subscription:2"]
    assert await s.replace_subscription("", sub_doc(1, isActive=False))
    got = await s.get_subscription("", "urn:ngsi-ld:Subscription:1")
    assert got is not None and got.doc["isActive"] is False
    assert not await s.replace_subscription("", sub_doc(9))
    assert [t.doc["id"] for t in await s.tenant_subscriptions("other")] == [
        "urn:ngsi-ld:Subscription:1"
    ]
    assert await s.delete_subscription("", "urn:ngsi-ld:Subscription:1")
    assert not await s.delete_subscription("", "urn:ngsi-ld:Subscription:1")
    assert await s.get_subscription("", "urn:ngsi-ld:Subscription:1") is None


async def test_delivery_counters_survive_document_updates(store: Store) -> None:
    s = subs(store)
    await s.create_subscription("", sub_doc(1))
    sub = "urn:ngsi-ld:Subscription:1"
    await s.settle([Settled("r1", "", sub, True, "2026-01-01T00:00:00.000000Z")])
    await s.settle([Settled("r2", "", sub, False, "2026-01-02T00:00:00.000000Z")])
    await s.replace_subscription("", sub_doc(1, q="a>1"))
    got = await s.get_subscription("", "urn:ngsi-ld:Subscription:1")
    assert got is not None
    assert (got.state.times_sent, got.state.times_failed) == (2, 1)
    assert got.state.last_success == "2026-01-01T00:00:00.000000Z"
    assert got.state.last_failure == got.state.last_notification == "2026-01-02T00:00:00.000000Z"


async def test_outbox_claim_and_settle(store: Store) -> None:
    s = subs(store)
    await s.enqueue([row(1), row(2), row(3, due=100.0)])
    claimed = await s.claim(10.0, limit=10, lease=30.0)
    assert [r.id for r in claimed] == ["row1", "row2"]  # queueing order; row3 is not due
    assert claimed[0].body == {"type": "Notification", "n": 1}
    assert await s.claim(20.0, limit=10, lease=30.0) == []  # leased
    sub = "urn:ngsi-ld:Subscription:1"
    at = "2026-01-01T00:00:00.000000Z"
    await s.settle(
        [
            Settled("row1", "", sub, True, at),
            Settled("row2", "", sub, False, at, retry_at=50.0, attempts=1),
        ]
    )
    again = await s.claim(60.0, limit=10, lease=30.0)
    assert [(r.id, r.attempts) for r in again] == [("row2", 1)]
    later = await s.claim(200.0, limit=10, lease=30.0)
    assert sorted(r.id for r in later) == ["row2", "row3"]  # a lease that ran out is claimed again


async def test_deleting_a_subscription_drops_its_queue(store: Store) -> None:
    s = subs(store)
    await s.create_subscription("", sub_doc(1))
    await s.enqueue([row(1), row(2, sub=2)])
    await s.delete_subscription("", "urn:ngsi-ld:Subscription:1")
    assert [r.id for r in await s.claim(1.0, limit=10, lease=1.0)] == ["row2"]


async def test_notify_ops_commit_with_the_entity_write(store: Store) -> None:
    s = subs(store)
    doc: dict[str, Any] = {"id": "urn:ngsi-ld:T:1", "type": ["https://ex.org/T"], "attrs": {}}

    def write(_: Any) -> tuple[list[WriteOp], None]:
        return [Put(doc), Notify((row(1),))], None  # type: ignore[list-item]

    await store.transact("", [doc["id"]], write, owner="org:a")
    assert await store.get_entity("", doc["id"]) is not None
    assert [r.id for r in await s.claim(1.0, limit=10, lease=1.0)] == ["row1"]
    await s.settle([Settled("row1", "", "urn:ngsi-ld:Subscription:1", True, "x")])

    def failing(_: Any) -> tuple[list[WriteOp], None]:
        raise AlreadyExists("no")

    with pytest.raises(AlreadyExists):
        await store.transact("", ["urn:ngsi-ld:T:2"], failing, owner="org:a")
    assert await s.claim(100.0, limit=10, lease=1.0) == []


async def test_concurrent_claims_never_share_a_row(store: Store, store_url: str) -> None:
    s = subs(store)
    await s.enqueue([row(n) for n in range(40)])
    other = open_store(store_url)
    await other.open()
    try:
        o = subs(other)
        results = await asyncio.gather(
            *(x.claim(1.0, limit=7, lease=60.0) for x in (s, o, s, o, s, o, s, o))
        )
    finally:
        await other.close()
    ids = [r.id for batch in results for r in batch]
    assert len(ids) == len(set(ids)) == 40


async def test_subscriptions_survive_reopening(store_url: str) -> None:
    first = open_store(store_url)
    await first.open()
    await first.migrate()
    await subs(first).create_subscription("", sub_doc(7))
    await subs(first).enqueue([row(1, sub=7)])
    await first.close()
    second = open_store(store_url)
    await second.open()
    try:
        assert await subs(second).get_subscription("", "urn:ngsi-ld:Subscription:7") is not None
        assert [r.id for r in await subs(second).claim(1.0, limit=5, lease=5.0)] == ["row1"]
    finally:
        await second.close()


async def test_settle_records_a_batch_at_once(store: Store) -> None:
    s = subs(store)
    one, two = "urn:ngsi-ld:Subscription:1", "urn:ngsi-ld:Subscription:2"
    await s.create_subscription("", sub_doc(1))
    await s.create_subscription("", sub_doc(2))
    await s.create_subscription("t", sub_doc(1))
    await s.enqueue([row(1), row(2), row(3), row(4, sub=2), row(5, sub=2)])
    assert len(await s.claim(1.0, limit=10, lease=30.0)) == 5

    def t(second: int) -> str:
        return f"2026-03-01T10:00:{second:02d}.000000Z"

    await s.settle(
        [
            Settled("row1", "", one, True, t(1)),
            Settled("row2", "", one, False, t(2), retry_at=5.0, attempts=3),
            Settled("row3", "", one, True, t(3)),
            Settled("row4", "", two, None),  # nothing readable: finished, not counted
            Settled("row5", "", two, None, retry_at=2.0, attempts=0),  # left for later
        ]
    )
    got = await s.get_subscription("", one)
    assert got is not None
    state = got.state
    assert (state.times_sent, state.times_failed) == (3, 1)
    assert (state.last_notification, state.last_success, state.last_failure) == (t(3), t(3), t(2))
    other = await s.get_subscription("", two)
    assert (
        other is not None and other.state.times_sent == 0 and other.state.last_notification is None
    )
    elsewhere = await s.get_subscription("t", one)  # another tenant's subscription of that id
    assert elsewhere is not None and elsewhere.state.times_sent == 0
    due = await s.claim(10.0, limit=10, lease=30.0)
    assert sorted((r.id, r.attempts) for r in due) == [("row2", 3), ("row5", 0)]
    # a deliverer settling late, with older times, adds its counts but moves no time back
    await s.settle([Settled("row2", "", one, False, t(0))])
    got = await s.get_subscription("", one)
    assert got is not None
    assert (got.state.times_sent, got.state.times_failed) == (4, 2)
    assert (got.state.last_notification, got.state.last_failure) == (t(3), t(2))
    assert [r.id for r in await s.claim(100.0, limit=10, lease=30.0)] == ["row5"]
