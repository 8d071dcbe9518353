"""The NGSI-LD entity API end to end (in-process HTTP, real SQLite store)."""

from __future__ import annotations

import httpx
import pytest

pytestmark = pytest.mark.anyio

LD = {"Content-Type": "application/ld+json"}
CTX = "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.9.jsonld"


def sensor(n: int, temperature: float = 20.0, **extra: object) -> dict[str, object]:
    return {
        "id": f"urn:ngsi-ld:Sensor:{n}",
        "type": "Sensor",
        "temperature": {"type": "Property", "value": temperature, "unitCode": "CEL"},
        "location": {
            "type": "GeoProperty",
            "value": {"type": "Point", "coordinates": [3.72 + n / 1000, 51.05]},
        },
        "@context": CTX,
        **extra,
    }


async def test_create_then_retrieve(client: httpx.AsyncClient) -> None:
    r = await client.post("/entities", json=sensor(1), headers=LD)
    assert r.status_code == 201, r.text
    assert r.headers["location"] == "/ngsi-ld/v1/entities/urn:ngsi-ld:Sensor:1"
    r = await client.get("/entities/urn:ngsi-ld:Sensor:1")
    assert r.status_code == 200
    body = r.json()
    assert body["id"] == "urn:ngsi-ld:Sensor:1"
    assert body["type"] == "Sensor"
    assert body["temperature"] == {"type": "Property", "value": 20.0, "unitCode": "CEL"}
    assert 'rel="http://www.w3.org/ns/json-ld#context"' in r.headers["link"]


async def test_create_twice_is_409_and_changes_nothing(client: httpx.AsyncClient) -> None:
    assert (await client.post("/entities", json=sensor(1), headers=LD)).status_code == 201
    r = await client.post("/entities", json=sensor(1, temperature=99.0), headers=LD)
    assert r.status_code == 409
    assert r.json()["type"] == "https://uri.etsi.org/ngsi-ld/errors/AlreadyExists"
    assert r.headers["content-type"].startswith("application/problem+json")
    r = await client.get("/entities/urn:ngsi-ld:Sensor:1")
    assert r.json()["temperature"]["value"] == 20.0


async def test_unknown_entity_is_404(client: httpx.AsyncClient) -> None:
    r = await client.get("/entities/urn:ngsi-ld:Sensor:404")
    assert r.status_code == 404
    assert r.json()["type"] == "https://uri.etsi.org/ngsi-ld/errors/ResourceNotFound"


@pytest.mark.parametrize(
    ("body", "headers", "status"),
    [
        (b"{not json", {"Content-Type": "application/json"}, 400),
        (b'{"id": "not a uri", "type": "T"}', {"Content-Type": "application/json"}, 400),
        (b'{"id": "urn:a:b", "type": "T"}', {"Content-Type": "text/plain"}, 415),
        (
            b'{"id": "urn:a:b", "type": "T", "p": {"type": "Property"}}',
            {"Content-Type": "application/json"},
            400,
        ),
        (
            b'{"id": "urn:a:b", "type": "T", "location": {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [500, 1]}}}',
            {"Content-Type": "application/json"},
            400,
        ),
        (b'{"id": "urn:a:b", "type": "T"}', {"Content-Type": "application/ld+json"}, 400),
    ],
)
async def test_bad_input_gets_a_precise_4xx_and_writes_nothing(
    client: httpx.AsyncClient, body: bytes, headers: dict[str, str], status: int
) -> None:
    r = await client.post("/entities", content=body, headers=headers)
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    r = await client.get("/entities", params={"type": "T"})
    assert r.json() == []


async def test_deeply_nested_body_is_refused(client: httpx.AsyncClient) -> None:
    value: object = 1
    for _ in range(200):
        value = [value]
    r = await client.post(
        "/entities", json={"id": "urn:a:b", "type": "T", "p": {"type": "Property", "value": value}}
    )
    assert r.status_code == 400


async def test_oversized_body_is_413(client: httpx.AsyncClient) -> None:
    huge = {
        "id": "urn:a:b",
        "type": "T",
        "p": {"type": "Property", "value": "x" * (9 * 1024 * 1024)},
    }
    r = await client.post("/entities", json=huge)
    assert r.status_code == 413


async def test_not_acceptable_is_406(client: httpx.AsyncClient) -> None:
    r = await client.get("/entities?type=Sensor", headers={"Accept": "text/csv"})
    assert r.status_code == 406


async def test_query_by_type_and_q_with_count(client: httpx.AsyncClient) -> None:
    batch = [sensor(i, temperature=float(i)) for i in range(30)]
    r = await client.post("/entityOperations/create", json=batch, headers=LD)
    assert r.status_code == 201, r.text
    assert len(r.json()) == 30
    r = await client.get(
        "/entities", params={"type": "Sensor", "q": "temperature>=25", "count": "true"}
    )
    assert r.status_code == 200
    assert r.headers["ngsild-results-count"] == "5"
    assert sorted(e["id"] for e in r.json()) == [f"urn:ngsi-ld:Sensor:{i}" for i in range(25, 30)]
    r = await client.get("/entities", params={"type": "Sensor", "limit": "10", "count": "true"})
    assert len(r.json()) == 10
    assert r.headers["ngsild-results-count"] == "30"
    assert 'rel="next"' in r.headers["link"]


async def test_key_values_and_sys_attrs(client: httpx.AsyncClient) -> None:
    await client.post("/entities", json=sensor(7, temperature=7.5), headers=LD)
    r = await client.get("/entities/urn:ngsi-ld:Sensor:7", params={"options": "keyValues"})
    assert r.json()["temperature"] == 7.5
    r = await client.get("/entities/urn:ngsi-ld:Sensor:7", params={"options": "sysAttrs"})
    body = r.json()
    assert body["createdAt"].endswith("Z")
    assert "modifiedAt" in body["temperature"]


async def test_attribute_update_and_append(client: httpx.AsyncClient) -> None:
    await client.post("/entities", json=sensor(3), headers=LD)
    r = await client.patch(
        "/entities/urn:ngsi-ld:Sensor:3/attrs",
        json={"temperature": {"type": "Property", "value": 30.5}},
    )
    assert r.status_code == 204, r.text
    r = await client.post(
        "/entities/urn:ngsi-ld:Sensor:3/attrs",
        json={"humidity": {"type": "Property", "value": 80}},
    )
    assert r.status_code == 204, r.text
    body = (await client.get("/entities/urn:ngsi-ld:Sensor:3")).json()
    assert body["temperature"]["value"] == 30.5
    assert body["humidity"]["value"] == 80
    r = await client.delete("/entities/urn:ngsi-ld:Sensor:3/attrs/humidity")
    assert r.status_code == 204
    assert "humidity" not in (await client.get("/entities/urn:ngsi-ld:Sensor:3")).json()


async def test_geo_query_near(client: httpx.AsyncClient) -> None:
    for i in range(5):
        await client.post("/entities", json=sensor(i * 100), headers=LD)
    r = await client.get(
        "/entities",
        params={
            "type": "Sensor",
            "georel": "near;maxDistance==2000",
            "geometry": "Point",
            "coordinates": "[3.72,51.05]",
        },
    )
    assert r.status_code == 200, r.text
    # sensors sit 0.1° of longitude (~7 km) apart: only the first is within 2 km
    assert [e["id"] for e in r.json()] == ["urn:ngsi-ld:Sensor:0"]


async def test_tenants_are_isolated(client: httpx.AsyncClient) -> None:
    r = await client.post("/entities", json=sensor(1), headers={**LD, "NGSILD-Tenant": "gent"})
    assert r.status_code == 201
    assert (await client.get("/entities/urn:ngsi-ld:Sensor:1")).status_code == 404
    r = await client.get("/entities/urn:ngsi-ld:Sensor:1", headers={"NGSILD-Tenant": "gent"})
    assert r.status_code == 200
    r = await client.get(
        "/entities", params={"type": "Sensor"}, headers={"NGSILD-Tenant": "nowhere"}
    )
    assert r.status_code == 404
    assert r.json()["type"] == "https://uri.etsi.org/ngsi-ld/errors/NonExistingTenant"


async def test_delete_entity(client: httpx.AsyncClient) -> None:
    await client.post("/entities", json=sensor(9), headers=LD)
    assert (await client.delete("/entities/urn:ngsi-ld:Sensor:9")).status_code == 204
    assert (await client.get("/entities/urn:ngsi-ld:Sensor:9")).status_code == 404
    assert (await client.delete("/entities/urn:ngsi-ld:Sensor:9")).status_code == 404


async def test_discovery_lists_types_and_attributes(client: httpx.AsyncClient) -> None:
    await client.post("/entities", json=sensor(1), headers=LD)
    r = await client.get("/types")
    assert r.json()["typeList"] == ["Sensor"]
    r = await client.get("/types/Sensor")
    info = r.json()
    assert info["entityCount"] == 1
    assert {d["attributeName"] for d in info["attributeDetails"]} == {"temperature", "location"}
    r = await client.get("/attributes/temperature")
    assert r.json()["attributeCount"] == 1
    assert r.json()["typeNames"] == ["Sensor"]


async def test_writes_need_anonymous_writes_enabled(tmp_path: object) -> None:
    from pathlib import Path

    from smartregion.app import create_app
    from smartregion.settings import Settings

    app = create_app(Settings(database_url=f"sqlite:///{Path(str(tmp_path))}/ro.db"))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t/ngsi-ld/v1") as c:
            r = await c.post("/entities", json=sensor(1), headers=LD)
            assert r.status_code == 401
            assert r.headers["www-authenticate"].startswith("Bearer")
            assert (await c.get("/entities/urn:ngsi-ld:Sensor:1")).status_code == 404


async def test_health(client: httpx.AsyncClient) -> None:
    r = await client.get("http://testserver/healthz")
    assert r.status_code == 200
    assert r.json()["status"] == "ok"


async def test_order_by_sorts_before_paging(client: httpx.AsyncClient) -> None:
    temps = [5.0, 1.0, 9.0, 3.0, 7.0]
    for i, t in enumerate(temps):
        await client.post("/entities", json=sensor(i, temperature=t), headers=LD)
    r = await client.get(
        "/entities",
        params={"type": "Sensor", "orderBy": "temperature;desc", "limit": "2", "count": "true"},
    )
    assert r.status_code == 200, r.text
    assert [e["temperature"]["value"] for e in r.json()] == [9.0, 7.0]
    assert r.headers["ngsild-results-count"] == "5"
    r = await client.get(
        "/entities",
        params={"type": "Sensor", "orderBy": "temperature", "offset": "2", "limit": "2"},
    )
    assert [e["temperature"]["value"] for e in r.json()] == [5.0, 7.0]
    r = await client.get("/entities", params={"type": "Sensor", "orderBy": "temperature;sideways"})
    assert r.status_code == 400


async def test_hosted_contexts_survive_a_restart(settings: object) -> None:
    from smartregion.app import create_app
    from smartregion.settings import Settings

    assert isinstance(settings, Settings)
    document = {"@context": {"brand": "https://example.org/vocab#brand"}}

    app = create_app(settings)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://t/ngsi-ld/v1"
        ) as c,
    ):
        r = await c.post("/jsonldContexts", json=document)
        assert r.status_code == 201, r.text
        location = r.headers["location"]
    app = create_app(settings)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c,
    ):
        r = await c.get(location)
        assert r.status_code == 200
        assert r.json() == document
        # and it still expands terms for entities that reference it
        link = f'<http://t{location}>; rel="http://www.w3.org/ns/json-ld#context"'
        entity = {
            "id": "urn:ngsi-ld:Car:1",
            "type": "Car",
            "brand": {"type": "Property", "value": "X"},
        }
        r = await c.post("/ngsi-ld/v1/entities", json=entity, headers={"Link": link})
        assert r.status_code == 201, r.text
        r = await c.get("/ngsi-ld/v1/entities/urn:ngsi-ld:Car:1")
        assert "https://example.org/vocab#brand" in r.json()
