"""Large batches are applied in pipelined chunks (broker/batch.py): the answer must be exactly
what one transaction would have answered, and every reported success must be stored."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from smartregion.app import create_app
from smartregion.broker.batch import CHUNK
from smartregion.settings import Settings

pytestmark = pytest.mark.anyio

N = CHUNK * 3 + 17  # four chunks, the last one short


@pytest.fixture(params=["sqlite", "postgresql"])
async def client(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[httpx.AsyncClient]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path}/batch.db"
    else:
        url = request.getfixturevalue("postgres_url")
    app = create_app(Settings(database_url=url, anonymous_writes=True))
    # a tenant of this test's own: the PostgreSQL database is shared by the session
    headers = {"NGSILD-Tenant": f"t{secrets.token_hex(4)}"}
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://testserver/ngsi-ld/v1", headers=headers
        ) as c:
            yield c


def _entity(i: int, value: float) -> dict[str, object]:
    return {
        "id": f"urn:ngsi-ld:Sensor:{i:05d}",
        "type": "Sensor",
        "temperature": {"type": "Property", "value": value},
    }


async def _count(client: httpx.AsyncClient) -> int:
    r = await client.get("/entities", params={"type": "Sensor", "count": "true", "limit": 1})
    assert r.status_code == 200, r.text
    return int(r.headers["NGSILD-Results-Count"])


async def test_a_large_upsert_spanning_chunks_reports_every_entity(
    client: httpx.AsyncClient,
) -> None:
    batch: list[object] = [_entity(i, float(i)) for i in range(N)]
    # invalid entries in the first, a middle and the last chunk
    bad = [3, CHUNK + 5, N - 1]
    for i in bad:
        batch[i] = {
            "id": f"urn:ngsi-ld:Sensor:{i:05d}",
            "type": "Sensor",
            "temperature": {"type": "Nope"},
        }
    r = await client.post("/entityOperations/upsert", json=batch)
    assert r.status_code == 207, r.text
    body = r.json()
    assert len(body["success"]) == N - len(bad)
    assert sorted(e["entityId"] for e in body["errors"]) == [
        f"urn:ngsi-ld:Sensor:{i:05d}" for i in bad
    ]
    assert await _count(client) == N - len(bad)
    # every success is stored with its value, including the last chunk's
    r = await client.get(
        f"/entities/urn:ngsi-ld:Sensor:{N - 2:05d}", params={"options": "keyValues"}
    )
    assert r.json()["temperature"] == float(N - 2)

    # updating all of them again: 204, nothing created twice
    r = await client.post("/entityOperations/upsert", json=[_entity(i, -1.0) for i in range(N)])
    assert r.status_code in (201, 204), r.text
    assert await _count(client) == N
    r = await client.get(
        f"/entities/urn:ngsi-ld:Sensor:{CHUNK * 2:05d}", params={"options": "keyValues"}
    )
    assert r.json()["temperature"] == -1.0


async def test_entries_of_one_id_in_different_chunks_apply_in_order(
    client: httpx.AsyncClient,
) -> None:
    batch = [_entity(i, 1.0) for i in range(N)]
    # the first entity appears again at the very end: the later entry must win
    batch.append(_entity(0, 99.0))
    r = await client.post("/entityOperations/upsert", json=batch)
    assert r.status_code == 201, r.text
    assert len(r.json()) == N
    r = await client.get("/entities/urn:ngsi-ld:Sensor:00000", params={"options": "keyValues"})
    assert r.json()["temperature"] == 99.0


async def test_batch_create_of_existing_ids_fails_per_entity_across_chunks(
    client: httpx.AsyncClient,
) -> None:
    r = await client.post(
        "/entityOperations/create", json=[_entity(i, 1.0) for i in range(0, N, 2)]
    )
    assert r.status_code == 201, r.text
    r = await client.post("/entityOperations/create", json=[_entity(i, 2.0) for i in range(N)])
    assert r.status_code == 207, r.text
    body = r.json()
    assert len(body["errors"]) == len(range(0, N, 2))
    assert len(body["success"]) == N - len(range(0, N, 2))
    assert {e["error"]["type"].rsplit("/", 1)[-1] for e in body["errors"]} == {"AlreadyExists"}
    assert await _count(client) == N
