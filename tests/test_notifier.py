"""The notifier's bookkeeping: one transaction per claimed batch, rows removed only once the
receiver acknowledged them, at-least-once when the process dies before that transaction."""

from __future__ import annotations

import asyncio
import http.server
import json
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from smartregion.broker.contexts import ContextResolver
from smartregion.broker.notifier import Notifier
from smartregion.broker.subscriptions import SubscriptionService
from smartregion.storage import Store, open_store
from smartregion.storage.subscriptions import OutboxRow, Settled, SubscriptionStore, epoch_now

pytestmark = pytest.mark.anyio

A, B = "urn:ngsi-ld:Subscription:a", "urn:ngsi-ld:Subscription:b"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@dataclass
class Receiver:
    """A real HTTP endpoint: records (subscription, n) of every body it acknowledges."""

    url: str = ""
    got: list[tuple[str, int]] = field(default_factory=list)
    status: int = 200
    delay: float = 0.0


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    rec = Receiver()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))))
            time.sleep(rec.delay)
            if rec.status == 200:
                rec.got.append((body["subscriptionId"], body["n"]))
            self.send_response(rec.status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            return

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    rec.url = f"http://127.0.0.1:{server.server_address[1]}/notify"
    try:
        yield rec
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'notifier.db'}"
    else:
        url = str(request.getfixturevalue("postgres_url"))
    s = open_store(url)
    await s.open()
    await s.migrate()
    try:
        yield s
    finally:
        await s.close()


@pytest.fixture
async def tenant(store: Store) -> AsyncIterator[str]:
    """A tenant of the test's own; its subscriptions and queue are dropped afterwards (the
    PostgreSQL database is shared by the session)."""
    name = f"n{time.monotonic_ns()}"
    yield name
    assert isinstance(store, SubscriptionStore)
    for sub in (A, B):
        await store.delete_subscription(name, sub)


async def queue(store: Store, receiver: Receiver, tenant: str, rows: dict[str, int]) -> None:
    """Create the subscriptions and queue `rows[sub]` notifications for each."""
    assert isinstance(store, SubscriptionStore)
    queued: list[OutboxRow] = []
    for sub, count in rows.items():
        await store.create_subscription(tenant, {"id": sub, "type": "Subscription"})
        queued += [
            OutboxRow(
                id=f"{tenant}-{sub}-{n}",
                tenant=tenant,
                subscription_id=sub,
                body={"type": "Notification", "subscriptionId": sub, "n": n},
                target={"uri": receiver.url, "headers": {}},
            )
            for n in range(count)
        ]
    await store.enqueue(queued)


def notifier(store: Store, **options: Any) -> Notifier:
    assert isinstance(store, SubscriptionStore)
    service = SubscriptionService(store, ContextResolver(preload_dir=None, allow_remote=False))
    return Notifier(service, **options)


def counting_settles(store: Store) -> list[list[Settled]]:
    assert isinstance(store, SubscriptionStore)
    calls: list[list[Settled]] = []
    real = store.settle

    async def settle(settled: Any) -> None:
        calls.append(list(settled))
        await real(settled)

    store.settle = settle  # type: ignore[method-assign]
    return calls


async def due(store: Store, tenant: str, at: float) -> list[tuple[str, int]]:
    """The tenant's rows due at `at` (claimed: the database may be shared), with their attempts."""
    assert isinstance(store, SubscriptionStore)
    rows = await store.claim(at, limit=1000, lease=1)
    return sorted((r.id, r.attempts) for r in rows if r.tenant == tenant)


async def counters(store: Store, tenant: str, sub: str) -> tuple[int, int]:
    assert isinstance(store, SubscriptionStore)
    found = await store.get_subscription(tenant, sub)
    assert found is not None
    return found.state.times_sent, found.state.times_failed


async def test_a_batch_is_sent_in_order_and_settled_in_one_transaction(
    store: Store, receiver: Receiver, tenant: str
) -> None:
    await queue(store, receiver, tenant, {A: 6, B: 3})
    sender = notifier(store)
    settles = counting_settles(store)
    try:
        await sender.deliver_due()
    finally:
        await sender.stop()
    assert len(settles) == 1 and len([x for x in settles[0] if x.tenant == tenant]) == 9
    assert [n for sub, n in receiver.got if sub == A] == list(range(6))  # queueing order
    assert [n for sub, n in receiver.got if sub == B] == list(range(3))
    assert await counters(store, tenant, A) == (6, 0)
    assert await counters(store, tenant, B) == (3, 0)
    assert isinstance(store, SubscriptionStore)
    found = await store.get_subscription(tenant, A)
    assert found is not None and found.state.last_success == found.state.last_notification
    assert await due(store, tenant, epoch_now() + 3600) == []  # all removed


async def test_failed_sends_are_counted_and_rescheduled_in_the_same_transaction(
    store: Store, receiver: Receiver, tenant: str
) -> None:
    await queue(store, receiver, tenant, {A: 2})
    receiver.status = 503
    sender = notifier(store, base_delay=60.0)
    settles = counting_settles(store)
    try:
        await sender.deliver_due()
    finally:
        await sender.stop()
    assert len(settles) == 1
    assert await counters(store, tenant, A) == (2, 2)
    assert await due(store, tenant, epoch_now() + 1) == []  # back-off
    assert await due(store, tenant, epoch_now() + 61) == [
        (f"{tenant}-{A}-0", 1),
        (f"{tenant}-{A}-1", 1),
    ]


async def test_dying_before_the_bookkeeping_commits_sends_again_after_the_lease(
    store: Store, receiver: Receiver, tenant: str
) -> None:
    await queue(store, receiver, tenant, {A: 3})
    assert isinstance(store, SubscriptionStore)
    real = store.settle

    async def crash(settled: Any) -> None:
        raise OSError("the process died here")

    store.settle = crash  # type: ignore[method-assign]
    first = notifier(store, lease=1.0)
    try:
        with pytest.raises(OSError):
            await first.deliver_due()
    finally:
        await first.stop()
    assert [n for _, n in receiver.got] == [0, 1, 2]  # sent, acknowledged, but not recorded
    assert await counters(store, tenant, A) == (0, 0)
    store.settle = real  # type: ignore[method-assign]
    second = notifier(store, lease=1.0)
    try:
        await second.deliver_due()
        assert len(receiver.got) == 3  # still leased by the one that died
        await asyncio.sleep(1.1)
        await second.deliver_due()
    finally:
        await second.stop()
    # at-least-once: every notification again, in order, and counted once
    assert [n for _, n in receiver.got] == [0, 1, 2, 0, 1, 2]
    assert await counters(store, tenant, A) == (3, 0)
    assert await due(store, tenant, epoch_now() + 3600) == []


async def test_rows_not_sent_by_half_the_lease_go_back_uncounted(
    store: Store, receiver: Receiver, tenant: str
) -> None:
    await queue(store, receiver, tenant, {A: 3})
    receiver.delay = 1.5  # the first send outlasts half the lease
    sender = notifier(store, lease=2.0)
    try:
        await sender.deliver_due()
    finally:
        await sender.stop()
    assert [n for _, n in receiver.got] == [0]
    assert await counters(store, tenant, A) == (1, 0)
    # due at once, not leased, attempts unchanged
    assert await due(store, tenant, epoch_now()) == [(f"{tenant}-{A}-1", 0), (f"{tenant}-{A}-2", 0)]
