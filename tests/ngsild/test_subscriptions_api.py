"""The /subscriptions API (NGSI-LD 1.8 §6.10–§6.11) and notifications received over a real socket."""

from __future__ import annotations

import asyncio
import http.server
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

pytestmark = pytest.mark.anyio

LD = {"Content-Type": "application/ld+json"}
CTX = {
    "@context": {
        "Building": "https://ex.org/Building",
        "name": "https://ex.org/name",
        "height": "https://ex.org/height",
    }
}


@dataclass
class Receiver:
    """A notification endpoint on 127.0.0.1 that records every POST."""

    url: str
    received: list[tuple[dict[str, str], Any]] = field(default_factory=list)
    status: int = 200
    event: threading.Event = field(default_factory=threading.Event)

    async def wait(self, count: int = 1, timeout: float = 10.0) -> list[tuple[dict[str, str], Any]]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while len(self.received) < count:
            if loop.time() > deadline:
                raise AssertionError(f"expected {count} notification(s), got {len(self.received)}")
            await asyncio.sleep(0.05)
        return self.received


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    rec = Receiver(url="")

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            body = json.loads(self.rfile.read(length))
            rec.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
            self.send_response(rec.status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            return

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    rec.url = f"http://127.0.0.1:{server.server_address[1]}/notify"
    try:
        yield rec
    finally:
        server.shutdown()
        server.server_close()


def subscription(endpoint: str, **members: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": "Subscription",
        "entities": [{"type": "Building"}],
        "notification": {"endpoint": {"uri": endpoint, "accept": "application/json"}},
        **CTX,
    }
    body.update(members)
    return body


async def create_building(client: httpx.AsyncClient, n: int, **attrs: Any) -> str:
    entity = {"id": f"urn:ngsi-ld:Building:{n}", "type": "Building", **CTX}
    for name, value in attrs.items():
        entity[name] = {"type": "Property", "value": value}
    r = await client.post("/entities", json=entity, headers=LD)
    assert r.status_code == 201, r.text
    return str(entity["id"])


# --- the resource -----------------------------------------------------------------------


async def test_create_generates_an_id_and_answers_with_location(client: httpx.AsyncClient) -> None:
    r = await client.post("/subscriptions", json=subscription("http://127.0.0.1:9/n"), headers=LD)
    assert r.status_code == 201, r.text
    location = r.headers["Location"]
    assert location.startswith("/ngsi-ld/v1/subscriptions/urn:ngsi-ld:Subscription:")
    sub_id = location.rsplit("/", 1)[1]
    got = await client.get(f"/subscriptions/{sub_id}", headers={"Accept": "application/ld+json"})
    assert got.status_code == 200
    body = got.json()
    assert body["id"] == sub_id
    assert body["entities"] == [{"type": "https://ex.org/Building"}]
    assert body["status"] == "active"
    assert body["notificationTrigger"] == ["attributeCreated", "attributeUpdated"]


async def test_create_with_taken_id_is_409(client: httpx.AsyncClient) -> None:
    payload = subscription("http://127.0.0.1:9/n", id="urn:ngsi-ld:Subscription:x")
    assert (await client.post("/subscriptions", json=payload, headers=LD)).status_code == 201
    r = await client.post("/subscriptions", json=payload, headers=LD)
    assert r.status_code == 409
    assert r.json()["type"] == "https://uri.etsi.org/ngsi-ld/errors/AlreadyExists"


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ({"id": "not a uri"}, "id"),
        ({"type": "Sub"}, "type"),
        ({"entities": [{"id": "urn:a:b"}]}, "selector without type"),
        ({"notificationTrigger": ["entityMoved"]}, "trigger"),
        ({"q": "name=="}, "q"),
        ({"throttling": -1}, "negative throttling"),
        ({"throttling": 5, "timeInterval": 5}, "throttling with timeInterval"),
        ({"expiresAt": "2001-01-01T00:00:00Z"}, "expiresAt in the past"),
        (
            {"geoQ": {"georel": "near;maxDistance==10", "geometry": "Point"}},
            "geoQ without coordinates",
        ),
        ({"notification": {"endpoint": {"uri": "ftp://x.org/n"}}}, "endpoint scheme"),
        (
            {"notification": {"endpoint": {"uri": "http://x.org/n", "accept": "text/plain"}}},
            "accept",
        ),
        ({"notification": {"format": "compact", "endpoint": {"uri": "http://x.org/n"}}}, "format"),
        (
            {
                "notification": {
                    "attributes": ["name"],
                    "pick": ["id"],
                    "endpoint": {"uri": "http://x.org/n"},
                }
            },
            "attributes with pick",
        ),
        ({"isActive": "yes"}, "isActive"),
    ],
)
async def test_invalid_subscriptions_are_bad_request_data(
    client: httpx.AsyncClient, change: dict[str, Any], why: str
) -> None:
    payload = subscription("http://127.0.0.1:9/n")
    payload.update(change)
    r = await client.post("/subscriptions", json=payload, headers=LD)
    assert r.status_code == 400, why
    assert r.json()["type"] == "https://uri.etsi.org/ngsi-ld/errors/BadRequestData", why


async def test_empty_body_is_bad_request_data_and_broken_json_invalid_request(
    client: httpx.AsyncClient,
) -> None:
    r = await client.post("/subscriptions", content=b"{}", headers=LD)
    assert r.json()["type"].endswith("BadRequestData")
    r = await client.post("/subscriptions", content=b"{", headers=LD)
    assert r.json()["type"].endswith("InvalidRequest")


async def test_query_pages_with_links_and_count(client: httpx.AsyncClient) -> None:
    for i in range(3):
        payload = subscription("http://127.0.0.1:9/n", id=f"urn:ngsi-ld:Subscription:{i}")
        assert (await client.post("/subscriptions", json=payload, headers=LD)).status_code == 201
    r = await client.get(
        "/subscriptions",
        params={"limit": 1, "offset": 1, "count": "true"},
        headers={"Accept": "application/ld+json"},
    )
    assert r.status_code == 200
    assert [s["id"] for s in r.json()] == ["urn:ngsi-ld:Subscription:1"]
    assert r.headers["NGSILD-Results-Count"] == "3"
    links = r.headers["Link"].replace(" ", "").split(",")
    assert (
        '</ngsi-ld/v1/subscriptions?limit=1&offset=0>;rel="prev";type="application/ld+json"'
        in links
    )
    assert (
        '</ngsi-ld/v1/subscriptions?limit=1&offset=2>;rel="next";type="application/ld+json"'
        in links
    )


async def test_patch_replaces_members_and_status_follows_is_active(
    client: httpx.AsyncClient,
) -> None:
    payload = subscription("http://127.0.0.1:9/n", id="urn:ngsi-ld:Subscription:p")
    await client.post("/subscriptions", json=payload, headers=LD)
    url = "/subscriptions/urn:ngsi-ld:Subscription:p"
    r = await client.patch(
        url, json={"isActive": False}, headers={"Content-Type": "application/merge-patch+json"}
    )
    assert r.status_code == 204
    assert (await client.get(url)).json()["status"] == "paused"
    # the notification member is replaced as a whole: without endpoint it is invalid
    r = await client.patch(url, json={"notification": {"format": "keyValues"}})
    assert r.status_code == 400
    r = await client.patch(url, json={"notification": {"format": "keyValues", "endpoint": None}})
    assert r.status_code == 400
    r = await client.patch(url, json={"expiresAt": "2001-01-01T00:00:00Z"})
    assert r.status_code == 400


async def test_names_are_stored_expanded_and_compacted_per_request(
    client: httpx.AsyncClient,
) -> None:
    payload = subscription(
        "http://127.0.0.1:9/n", id="urn:ngsi-ld:Subscription:e", watchedAttributes=["name"]
    )
    await client.post("/subscriptions", json=payload, headers=LD)
    plain = (await client.get("/subscriptions/urn:ngsi-ld:Subscription:e")).json()
    assert plain["entities"] == [{"type": "https://ex.org/Building"}]
    assert plain["watchedAttributes"] == ["https://ex.org/name"]


async def test_retrieve_errors(client: httpx.AsyncClient) -> None:
    assert (await client.get("/subscriptions/notAUri")).status_code == 400
    assert (await client.get("/subscriptions/urn:ngsi-ld:Subscription:none")).status_code == 404
    r = await client.get(
        "/subscriptions/urn:ngsi-ld:Subscription:none", headers={"Accept": "application/geo+json"}
    )
    assert r.status_code == 406
    assert (await client.delete("/subscriptions/urn:ngsi-ld:Subscription:none")).status_code == 404
    assert (await client.delete("/subscriptions/")).status_code == 405


async def test_compound_context_is_reported_as_an_implicitly_created_context(
    client: httpx.AsyncClient,
) -> None:
    payload = subscription("http://127.0.0.1:9/n", id="urn:ngsi-ld:Subscription:c")
    payload["@context"] = [
        CTX["@context"],
        "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.8.jsonld",
    ]
    assert (await client.post("/subscriptions", json=payload, headers=LD)).status_code == 201
    body = (await client.get("/subscriptions/urn:ngsi-ld:Subscription:c")).json()
    assert "implicitContext" not in body
    local_id = body["jsonldContext"].rsplit("/", 1)[1]
    details = (await client.get(f"/jsonldContexts/{local_id}", params={"details": "true"})).json()
    assert details["kind"] == "ImplicitlyCreated"


async def test_subscriptions_are_per_tenant(client: httpx.AsyncClient) -> None:
    payload = subscription("http://127.0.0.1:9/n", id="urn:ngsi-ld:Subscription:t")
    r = await client.post("/subscriptions", json=payload, headers={**LD, "NGSILD-Tenant": "a"})
    assert r.status_code == 201
    assert (await client.get("/subscriptions/urn:ngsi-ld:Subscription:t")).status_code == 404
    r = await client.get(
        "/subscriptions/urn:ngsi-ld:Subscription:t", headers={"NGSILD-Tenant": "a"}
    )
    assert r.status_code == 200


# --- notifications over HTTP --------------------------------------------------------------


async def test_update_is_notified_with_context_link_and_counters(
    client: httpx.AsyncClient, receiver: Receiver
) -> None:
    await create_building(client, 1, name="Tower", height=10)
    payload = subscription(
        receiver.url,
        id="urn:ngsi-ld:Subscription:n1",
        notification={
            "attributes": ["height"],
            "format": "keyValues",
            "endpoint": {"uri": receiver.url},
        },
    )
    assert (await client.post("/subscriptions", json=payload, headers=LD)).status_code == 201
    r = await client.patch(
        "/entities/urn:ngsi-ld:Building:1/attrs",
        json={"height": {"type": "Property", "value": 11}, **CTX},
        headers=LD,
    )
    assert r.status_code == 204
    ((headers, body),) = await receiver.wait(1)
    assert body["type"] == "Notification"
    assert body["subscriptionId"] == "urn:ngsi-ld:Subscription:n1"
    assert body["notifiedAt"].endswith("Z")
    assert body["data"] == [{"id": "urn:ngsi-ld:Building:1", "type": "Building", "height": 11}]
    assert headers["content-type"] == "application/json"
    assert 'rel="http://www.w3.org/ns/json-ld#context"' in headers["link"]
    for _ in range(50):
        sub = (await client.get("/subscriptions/urn:ngsi-ld:Subscription:n1")).json()
        if sub["notification"].get("timesSent") == 1:
            break
        await asyncio.sleep(0.05)
    assert sub["notification"]["timesSent"] == 1
    assert sub["notification"]["status"] == "ok"
    assert "lastSuccess" in sub["notification"]


async def test_ld_json_endpoint_gets_context_in_body_and_watched_attributes_filter(
    client: httpx.AsyncClient, receiver: Receiver
) -> None:
    await create_building(client, 2, name="Tower", height=10)
    payload = subscription(
        receiver.url,
        watchedAttributes=["name"],
        notification={"endpoint": {"uri": receiver.url, "accept": "application/ld+json"}},
    )
    await client.post("/subscriptions", json=payload, headers=LD)
    await client.patch(
        "/entities/urn:ngsi-ld:Building:2/attrs",
        json={"height": {"type": "Property", "value": 12}, **CTX},
        headers=LD,
    )
    await client.patch(
        "/entities/urn:ngsi-ld:Building:2/attrs",
        json={"name": {"type": "Property", "value": "Spire"}, **CTX},
        headers=LD,
    )
    ((headers, body),) = await receiver.wait(1)
    await asyncio.sleep(0.3)
    assert len(receiver.received) == 1  # the height change was not watched
    assert headers["content-type"] == "application/ld+json"
    assert "link" not in headers
    assert body["data"][0]["name"] == {"type": "Property", "value": "Spire"}
    assert "@context" in body["data"][0]


async def test_entity_created_and_deleted_triggers_with_q(
    client: httpx.AsyncClient, receiver: Receiver
) -> None:
    payload = subscription(
        receiver.url, q="height>100", notificationTrigger=["entityCreated", "entityDeleted"]
    )
    await client.post("/subscriptions", json=payload, headers=LD)
    await create_building(client, 3, height=50)  # q does not match
    await create_building(client, 4, height=150)
    await client.delete("/entities/urn:ngsi-ld:Building:4")
    received = await receiver.wait(2)
    first, second = (body for _, body in received)  # one subscription's notifications keep order
    assert first["data"][0]["id"] == "urn:ngsi-ld:Building:4"
    assert first["triggerReason"] == "entityCreated"
    assert second["triggerReason"] == "entityDeleted"
    assert set(second["data"][0]) == {"id", "type", "deletedAt"}


async def test_batch_writes_are_notified(client: httpx.AsyncClient, receiver: Receiver) -> None:
    await client.post("/subscriptions", json=subscription(receiver.url), headers=LD)
    batch = [
        {
            "id": f"urn:ngsi-ld:Building:b{i}",
            "type": "Building",
            "height": {"type": "Property", "value": i},
            **CTX,
        }
        for i in range(3)
    ]
    r = await client.post("/entityOperations/create", json=batch, headers=LD)
    assert r.status_code == 201
    ((_, body),) = await receiver.wait(1)
    assert sorted(e["id"] for e in body["data"]) == [f"urn:ngsi-ld:Building:b{i}" for i in range(3)]


async def test_a_batch_naming_an_entity_twice_notifies_each_entry_in_order(
    client: httpx.AsyncClient, receiver: Receiver
) -> None:
    # the MQTT bridge writes several messages of one sensor in one batch: a subscriber must
    # hear of every reading, as if each had been written on its own
    payload = subscription(
        receiver.url, notification={"format": "keyValues", "endpoint": {"uri": receiver.url}}
    )
    await client.post("/subscriptions", json=payload, headers=LD)
    batch = [
        {
            "id": "urn:ngsi-ld:Building:r",
            "type": "Building",
            "height": {"type": "Property", "value": v},
            **CTX,
        }
        for v in (1, 2, 3)
    ]
    r = await client.post("/entityOperations/upsert?options=update", json=batch, headers=LD)
    assert r.status_code in (201, 204), r.text
    received = await receiver.wait(3)
    await asyncio.sleep(0.3)
    assert [body["data"][0]["height"] for _, body in receiver.received] == [1, 2, 3]
    assert len(received) == 3


async def test_failed_delivery_is_recorded_and_retried(
    client: httpx.AsyncClient, receiver: Receiver
) -> None:
    receiver.status = 500
    await create_building(client, 5, height=1)
    payload = subscription(receiver.url, id="urn:ngsi-ld:Subscription:f")
    await client.post("/subscriptions", json=payload, headers=LD)
    await client.patch(
        "/entities/urn:ngsi-ld:Building:5/attrs",
        json={"height": {"type": "Property", "value": 2}, **CTX},
        headers=LD,
    )
    await receiver.wait(2, timeout=10)  # the first attempt and a retry after back-off
    sub = (await client.get("/subscriptions/urn:ngsi-ld:Subscription:f")).json()
    assert sub["notification"]["status"] == "failed"
    assert sub["notification"]["timesFailed"] >= 1
    assert "lastFailure" in sub["notification"]


async def test_paused_subscription_sends_nothing(
    client: httpx.AsyncClient, receiver: Receiver
) -> None:
    await create_building(client, 6, height=1)
    payload = subscription(receiver.url, isActive=False)
    await client.post("/subscriptions", json=payload, headers=LD)
    await client.patch(
        "/entities/urn:ngsi-ld:Building:6/attrs",
        json={"height": {"type": "Property", "value": 2}, **CTX},
        headers=LD,
    )
    await asyncio.sleep(0.5)
    assert receiver.received == []


async def test_queued_notifications_survive_a_restart(tmp_path: Any, receiver: Receiver) -> None:
    from smartregion.app import create_app
    from smartregion.settings import Settings

    settings = Settings(database_url=f"sqlite:///{tmp_path}/restart.db", anonymous_writes=True)
    receiver.status = 503  # the endpoint is down: the notification stays queued
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t/ngsi-ld/v1") as c:
            await create_building(c, 7, height=1)
            await c.post("/subscriptions", json=subscription(receiver.url), headers=LD)
            await c.patch(
                "/entities/urn:ngsi-ld:Building:7/attrs",
                json={"height": {"type": "Property", "value": 2}, **CTX},
                headers=LD,
            )
            await receiver.wait(1)
    receiver.status = 200
    receiver.received.clear()
    app = create_app(settings)  # a new process on the same database
    async with app.router.lifespan_context(app):
        ((_, body),) = await receiver.wait(1)
    assert body["data"][0]["height"]["value"] == 2


async def test_notifications_carry_only_what_the_subscription_owner_may_read(
    tmp_path: Any, receiver: Receiver
) -> None:
    """Issue 3: B's subscription on a type is not notified of A's entities of that type that B
    may not read; after a grant it is; after the grant is revoked, it no longer is."""
    from smartregion.app import create_app
    from smartregion.governance import Governance, Principal
    from smartregion.settings import Settings

    app = create_app(Settings(database_url=f"sqlite:///{tmp_path}/notify.db"))
    async with app.router.lifespan_context(app):
        gov: Governance = app.state.governance
        op = Principal.cli()
        for org in ("a", "b"):
            await gov.create_organisation(op, org, org, "company")
        await gov.create_dataset(
            Principal("a", "admin"), "a-cams", "a", "Cameras", ["Camera"], policy="restricted"
        )
        keys = {org: (await gov.create_api_key(op, org, role="editor")).key for org in ("a", "b")}
        core = {"@context": "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.9.jsonld"}
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t/ngsi-ld/v1") as c:

            async def as_(org: str, method: str, path: str, body: Any) -> httpx.Response:
                headers = {**LD, "Authorization": f"Bearer {keys[org]}"}
                r = await c.request(method, path, json={**body, **core}, headers=headers)
                assert r.is_success, r.text
                return r

            async def camera(org: str, n: int, value: int, *, new: bool = False) -> None:
                eid = f"urn:ngsi-ld:Camera:{org}{n}"
                prop = {"type": "Property", "value": value}
                if new:
                    await as_(org, "POST", "/entities", {"id": eid, "type": "Camera", "v": prop})
                else:
                    await as_(org, "PATCH", f"/entities/{eid}/attrs", {"v": prop})

            await camera("a", 1, 0, new=True)
            await camera("b", 1, 0, new=True)
            await as_(
                "b",
                "POST",
                "/subscriptions",
                {
                    "type": "Subscription",
                    "entities": [{"type": "Camera"}],
                    "notification": {"endpoint": {"uri": receiver.url}},
                },
            )

            async def notified_ids(count: int) -> list[str]:
                # B's own change comes after A's: notifications of one subscription are sent in
                # order, so once B's arrives, A's was decided before it
                await camera("b", 1, count)
                received = await receiver.wait(count)
                assert len(received) == count
                return sorted(e["id"] for e in received[-1][1]["data"])

            await camera("a", 1, 1)
            assert await notified_ids(1) == ["urn:ngsi-ld:Camera:b1"]
            request = await gov.request_access(Principal("b", "editor"), "a-cams", "research")
            _, grant = await gov.approve_access_request(Principal("a", "admin"), request.id)
            await camera("a", 1, 2)
            ((_, body),) = (await receiver.wait(2))[1:]
            assert [e["id"] for e in body["data"]] == ["urn:ngsi-ld:Camera:a1"]
            assert body["data"][0]["v"]["value"] == 2
            await gov.revoke_grant(Principal("a", "admin"), grant.id)
            await camera("a", 1, 3)
            assert await notified_ids(3) == ["urn:ngsi-ld:Camera:b1"]
            assert all("Camera:a1" not in str(b) for _, b in receiver.received[2:])
            # the dropped notifications were not counted either
            subs = await c.get("/subscriptions", headers={"Authorization": f"Bearer {keys['b']}"})
            assert subs.json()[0]["notification"]["timesSent"] == 3


async def test_notifications_of_a_scoped_data_set_carry_only_entities_within_its_scope(
    tmp_path: Any, receiver: Receiver
) -> None:
    """B may read A's benches of the open data set with the scope /Zone/In: B's subscription
    is notified of A's benches within that scope (or below it), not of A's other benches."""
    from smartregion.app import create_app
    from smartregion.governance import Governance, Principal
    from smartregion.settings import Settings

    app = create_app(Settings(database_url=f"sqlite:///{tmp_path}/notify-scoped.db"))
    async with app.router.lifespan_context(app):
        gov: Governance = app.state.governance
        op = Principal.cli()
        for org in ("a", "b"):
            await gov.create_organisation(op, org, org, "company")
        await gov.create_dataset(
            Principal("a", "admin"),
            "a-benches",
            "a",
            "Benches",
            ["Bench"],
            policy="open",
            scope="/Zone/In",
        )
        keys = {org: (await gov.create_api_key(op, org, role="editor")).key for org in ("a", "b")}
        core = {"@context": "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.9.jsonld"}
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t/ngsi-ld/v1") as c:

            async def bench(org: str, key: str, value: int, scope: str | None = None) -> None:
                body: dict[str, Any] = {
                    "id": f"urn:ngsi-ld:Bench:{key}",
                    "type": "Bench",
                    "v": {"type": "Property", "value": value},
                    **core,
                }
                if scope is not None:
                    body["scope"] = scope
                headers = {
                    "Content-Type": "application/ld+json",
                    "Authorization": f"Bearer {keys[org]}",
                }
                r = await c.post("/entityOperations/upsert", json=[body], headers=headers)
                assert r.is_success, r.text

            await bench("b", "b1", 0)
            r = await c.post(
                "/subscriptions",
                json={
                    "type": "Subscription",
                    "entities": [{"type": "Bench"}],
                    "notification": {"endpoint": {"uri": receiver.url}},
                    **core,
                },
                headers={**LD, "Authorization": f"Bearer {keys['b']}"},
            )
            assert r.status_code == 201, r.text
            for n, (key, scope) in enumerate(
                [
                    ("in", "Zone/In/Sub"),
                    ("out", "/Zone/Inside"),
                    ("top", "/Zone"),
                    ("at", "/Zone/In"),
                ],
                start=1,
            ):
                await bench("a", key, n, scope)
                await bench("b", "b1", n)  # B's own change: sent after A's was decided
            received = await receiver.wait(6)
            ids = [e["id"] for _, body in received for e in body["data"]]
            assert sorted(set(ids) - {"urn:ngsi-ld:Bench:b1"}) == [
                "urn:ngsi-ld:Bench:at",
                "urn:ngsi-ld:Bench:in",
            ]
            assert ids.count("urn:ngsi-ld:Bench:b1") == 4
