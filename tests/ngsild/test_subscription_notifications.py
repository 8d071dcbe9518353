"""Notifications through the whole app (lifespan run, real HTTP receiver): periodic
(timeInterval) subscriptions notify, and a subscription read right after a notification was
acknowledged shows it counted. Both were failures of the ETSI suite (046_02, 046_11, 046_12)."""

from __future__ import annotations

import asyncio
import http.server
import json
import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from smartregion.app import create_app
from smartregion.settings import Settings

pytestmark = pytest.mark.anyio

SUB = "urn:ngsi-ld:Subscription:conformance"
BUILDING = "urn:ngsi-ld:Building:conformance"


@dataclass
class Receiver:
    """An HTTP endpoint that acknowledges every notification; `answered` is set after each reply
    has been written to the socket."""

    url: str = ""
    bodies: list[dict[str, Any]] = field(default_factory=list)
    answered: threading.Event = field(default_factory=threading.Event)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    rec = Receiver()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            rec.bodies.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()
            self.wfile.flush()
            rec.answered.set()

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


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[Any]:
    """The real app on a fresh SQLite file, its lifespan (and so its notifier) running."""
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def client(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


async def create(client: httpx.AsyncClient, receiver: Receiver, **members: Any) -> None:
    building = {
        "id": BUILDING,
        "type": "Building",
        "name": {"type": "Property", "value": "Atomium"},
    }
    assert (await client.post("/ngsi-ld/v1/entities", json=building)).status_code == 201
    subscription = {
        "id": SUB,
        "type": "Subscription",
        "entities": [{"type": "Building", "id": BUILDING}],
        "notification": {"endpoint": {"uri": receiver.url, "accept": "application/json"}},
        **members,
    }
    assert (await client.post("/ngsi-ld/v1/subscriptions", json=subscription)).status_code == 201


async def wait_for(condition: Any, timeout: float = 15.0) -> None:
    """Poll `condition()` until it holds; fail after `timeout` seconds (not a speed claim)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        assert loop.time() < deadline, "timed out waiting"
        await asyncio.sleep(0.05)


async def test_a_periodic_subscription_notifies_every_time_interval(
    client: httpx.AsyncClient, receiver: Receiver
) -> None:
    # NGSI-LD 1.8 §5.8.1/§5.11: with timeInterval, a notification is sent periodically,
    # regardless of changes — the entity's current state each time
    await create(client, receiver, timeInterval=1)
    await wait_for(lambda: len(receiver.bodies) >= 2)
    for body in receiver.bodies[:2]:
        assert body["subscriptionId"] == SUB
        assert body["triggerReason"] == "timeInterval"
        assert [(e["id"], e["name"]["value"]) for e in body["data"]] == [(BUILDING, "Atomium")]


async def test_a_subscription_read_after_an_acknowledged_notification_counts_it(
    app: Any, client: httpx.AsyncClient, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the batch's outcome is recorded in a transaction after the receiver answered; make that
    # transaction slow, so that a read right after the answer comes before its commit
    subs = app.state.broker.subscriptions.subs
    settle = subs.settle

    async def slow_settle(settled: Any) -> None:
        await asyncio.sleep(0.5)
        await settle(settled)

    monkeypatch.setattr(subs, "settle", slow_settle)
    await create(client, receiver)
    patch = {"airQualityLevel": {"type": "Property", "value": 4}}
    response = await client.post(f"/ngsi-ld/v1/entities/{BUILDING}/attrs", json=patch)
    assert response.status_code == 204
    assert await asyncio.to_thread(receiver.answered.wait, 15.0)
    # §5.2.14: timesSent, status, lastNotification and lastSuccess describe that notification
    body = (await client.get(f"/ngsi-ld/v1/subscriptions/{SUB}")).json()
    status = body["notification"]
    assert status["timesSent"] == 1
    assert status["status"] == "ok"
    assert status["lastNotification"] == status["lastSuccess"]
    listed = (await client.get("/ngsi-ld/v1/subscriptions")).json()
    assert [s["notification"]["timesSent"] for s in listed] == [1]


async def test_a_read_does_not_wait_long_for_a_record_that_is_stuck(
    app: Any, client: httpx.AsyncClient, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the wait for a pending record is bounded: a stuck recording delays a read, never blocks it
    subs = app.state.broker.subscriptions.subs
    release = asyncio.Event()
    settle = subs.settle

    async def stuck_settle(settled: Any) -> None:
        await release.wait()
        await settle(settled)

    monkeypatch.setattr(subs, "settle", stuck_settle)
    await create(client, receiver)
    patch = {"airQualityLevel": {"type": "Property", "value": 4}}
    await client.post(f"/ngsi-ld/v1/entities/{BUILDING}/attrs", json=patch)
    assert await asyncio.to_thread(receiver.answered.wait, 15.0)
    try:
        response = await asyncio.wait_for(client.get(f"/ngsi-ld/v1/subscriptions/{SUB}"), 30)
        assert response.status_code == 200
        assert "timesSent" not in response.json()["notification"]  # not recorded yet
    finally:
        release.set()
