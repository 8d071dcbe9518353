"""Privacy by design over the NGSI-LD API (issue 3), on both backends: attribute classes, the
k-threshold and coarsening of open views, queries that cannot test what a view hides, and the
audit of reads of other organisations' non-open data."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from test_read_enforcement import CORE, OP, PrincipalFromHeaders, database_url  # noqa: F401

from smartregion.app import create_app
from smartregion.governance import Governance, Principal, WriteAccess
from smartregion.settings import Settings

pytestmark = pytest.mark.anyio

C1, C2 = "urn:ngsi-ld:Counter:c1", "urn:ngsi-ld:Counter:c2"
CAR = "urn:ngsi-ld:Car:k1"


@dataclass
class World:
    client: httpx.AsyncClient
    gov: Governance
    tenant: str
    owner: str
    reader: str

    def headers(self, org: str | None) -> dict[str, str]:
        h = {
            "NGSILD-Tenant": self.tenant,
            "Link": f'<{CORE}>; rel="http://www.w3.org/ns/json-ld#context"',
        }
        if org is not None:
            h["X-Test-Org"] = org
        return h

    async def get(self, path: str, org: str | None = None, **params: str) -> httpx.Response:
        return await self.client.get(path, params=params, headers=self.headers(org))

    async def reads_audited(self) -> list[dict[str, Any]]:
        # this world's organisations only: the PostgreSQL database is shared by the session
        records = await self.gov.store.audit_records(limit=100_000)
        return [
            {"actor": r.actor, **r.detail}
            for r in records
            if r.action == "data.read"
            and r.actor in (f"org:{self.owner}", f"org:{self.reader}", "anonymous")
        ]


def counter(entity_id: str, people: int, cyclists: int, lon: float) -> dict[str, Any]:
    at = "2026-11-27T10:42:13.000Z"
    return {
        "id": entity_id,
        "type": "Counter",
        "people": {"type": "Property", "value": people, "observedAt": at},
        "cyclists": {"type": "Property", "value": cyclists, "observedAt": at},
        "operator": {"type": "Property", "value": "Jan Janssens"},
        "cameraSerial": {"type": "Property", "value": f"SN-{entity_id[-2:]}"},
        "location": {
            "type": "GeoProperty",
            "value": {"type": "Point", "coordinates": [lon, 51.05432]},
        },
    }


@pytest.fixture
async def world(database_url: str) -> AsyncIterator[World]:  # noqa: F811
    suffix = secrets.token_hex(4)
    owner, reader = f"gent-{suffix}", f"uni-{suffix}"
    app = create_app(Settings(database_url=database_url, default_org=f"trial-{suffix}"))
    async with app.router.lifespan_context(app):
        broker = app.state.broker
        gov: Governance = app.state.governance
        tenant = f"p{suffix}"
        vocab = await broker.contexts.term_map(CORE)
        for payload in (
            counter(C1, 3, 40, 3.72451),
            counter(C2, 120, 2, 3.80000),
            {
                "id": CAR,
                "type": "Car",
                "speed": {"type": "Property", "value": 50},
                "driver": {"type": "Property", "value": "Piet"},
                "plate": {"type": "Property", "value": "1-ABC-123"},
            },
        ):
            await broker.entities.create(tenant, payload, vocab, writer=WriteAccess(owner))
        await gov.create_organisation(OP, owner, owner, "municipality")
        await gov.create_organisation(OP, reader, reader, "knowledge_institution")
        admin = Principal(owner, "admin")
        await gov.create_dataset(
            admin,
            f"{owner}-counters",
            owner,
            "Tellingen",
            ["Counter"],
            policy="open",
            privacy={
                "personal": ["operator"],
                "sensitive": ["cameraSerial"],
                "counts": ["people", "cyclists"],
                "k": 5,
                "coarsenTime": 3600,
                "coarsenPlace": 1000,
            },
        )
        await gov.create_dataset(
            admin,
            f"{owner}-cars",
            owner,
            "Wagens",
            ["Car"],
            policy="restricted",
            privacy={"personal": ["driver"], "sensitive": ["plate"]},
        )
        transport = httpx.ASGITransport(app=PrincipalFromHeaders(app))
        async with httpx.AsyncClient(
            transport=transport, base_url="http://testserver/ngsi-ld/v1"
        ) as client:
            yield World(client, gov, tenant, owner, reader)


async def grant_cars(w: World) -> None:
    request = await w.gov.request_access(
        Principal(w.reader, "editor"), f"{w.owner}-cars", "research"
    )
    await w.gov.approve_access_request(
        Principal(w.owner, "admin"), request.id, expires_at=datetime.now(UTC) + timedelta(days=1)
    )


async def test_an_open_view_hides_classes_suppresses_small_counts_and_coarsens(
    world: World,
) -> None:
    w = world
    for caller in (None, w.reader):  # anonymous and another organisation: the open view
        r = await w.get(f"/entities/{C1}", caller)
        assert r.status_code == 200, r.text
        body = r.json()
        assert "operator" not in body and "cameraSerial" not in body
        # 3 people is small; 40 cyclists is suppressed too, or 3 = total - 40 would give it away
        assert "people" not in body and "cyclists" not in body
        assert body["location"]["value"]["coordinates"] != [3.72451, 51.05432]
        c2 = (await w.get(f"/entities/{C2}", caller)).json()
        # 2 cyclists suppressed, and 120 people with it
        assert "people" not in c2 and "cyclists" not in c2
        listed = (await w.get("/entities", caller, type="Counter", options="sysAttrs")).json()
        assert sorted(e["id"] for e in listed) == [C1, C2]
        assert all(e["modifiedAt"].endswith(":00:00Z") for e in listed)
    # the owner sees everything, as stored
    own = (await w.get(f"/entities/{C1}", w.owner)).json()
    assert own["people"]["value"] == 3 and own["operator"]["value"] == "Jan Janssens"
    assert own["location"]["value"]["coordinates"] == [3.72451, 51.05432]
    assert own["people"]["observedAt"] == "2026-11-27T10:42:13.000Z"


async def test_open_readers_cannot_select_by_what_the_view_hides(world: World) -> None:
    w = world

    async def ids(org: str | None, **params: str) -> list[str]:
        r = await w.get("/entities", org, type="Counter", **params)
        assert r.status_code == 200, r.text
        return sorted(e["id"] for e in r.json())

    # a q on a suppressed count, on a sensitive attribute, on a time, or a geo-query would let
    # repeated queries recover what the view hides: they select nothing of the data set
    for params, owner_sees in (
        ({"q": "people<5"}, [C1]),
        ({"q": 'cameraSerial=="SN-c1"'}, [C1]),
        ({"q": "people.observedAt>2026-11-27T10:40:00Z"}, [C1, C2]),
        (
            {
                "georel": "near;maxDistance==50",
                "geometry": "Point",
                "coordinates": "[3.72451,51.05432]",
            },
            [C1],
        ),
    ):
        assert await ids(w.reader, **params) == [], params
        assert await ids(w.owner, **params) == owner_sees, params  # the owner selects as usual
    assert await ids(w.reader, q="people<5", count="true") == []
    r = await w.get("/entities", w.reader, type="Counter", q="people<5", count="true")
    assert r.headers["NGSILD-Results-Count"] == "0"
    # what the view shows may be tested and projected
    assert await ids(w.reader, attrs="people") == [C1, C2]
    assert await ids(w.reader) == [C1, C2]


async def test_a_grant_shows_sensitive_but_never_personal_attributes(world: World) -> None:
    w = world
    assert (
        await w.get(f"/entities/{CAR}", w.reader)
    ).status_code == 404  # restricted, no grant yet
    await grant_cars(w)
    body = (await w.get(f"/entities/{CAR}", w.reader)).json()
    assert body["plate"]["value"] == "1-ABC-123" and body["speed"]["value"] == 50
    assert "driver" not in body
    # and cannot select by it either
    r = await w.get("/entities", w.reader, type="Car", q='driver=="Piet"')
    assert r.json() == []
    r = await w.get("/entities", w.reader, type="Car", q='plate=="1-ABC-123"')
    assert [e["id"] for e in r.json()] == [CAR]


async def test_reads_of_others_non_open_data_are_audited_and_no_others(world: World) -> None:
    w = world
    await w.get(f"/entities/{CAR}", w.owner)  # own data
    await w.get(f"/entities/{C1}", w.reader)  # open data
    await w.get("/entities", None, type="Counter")
    assert await w.reads_audited() == []
    await grant_cars(w)
    await w.get(f"/entities/{CAR}", w.reader)
    await w.get("/entities", w.reader, type="Car,Counter")
    await w.get("/entities", w.reader, type="Counter")  # open only: not audited
    audited = await w.reads_audited()
    assert audited == [
        {"actor": f"org:{w.reader}", "datasets": [f"{w.owner}-cars"], "entities": 1},
        {"actor": f"org:{w.reader}", "datasets": [f"{w.owner}-cars"], "entities": 1},
    ]
    records = await w.gov.store.audit_records(limit=100_000)
    assert all("Piet" not in str(r.detail) and CAR not in str(r.detail) for r in records)
    count, problems = await w.gov.verify_audit()
    assert problems == [] and count == len(records)


async def test_temporal_open_views_coarsen_and_refuse_aggregates(world: World) -> None:
    w = world
    r = await w.get(f"/temporal/entities/{C2}", w.reader)
    assert r.status_code == 200, r.text
    body = r.json()
    assert "operator" not in body and "cameraSerial" not in body and "cyclists" not in body
    assert [i["observedAt"] for i in body["people"]] == ["2026-11-27T10:00:00Z"]
    # a window on the view's hour grid reads; one off the grid would probe exact times
    on_grid = await w.get(
        f"/temporal/entities/{C2}", w.reader, timerel="after", timeAt="2026-11-27T10:00:00Z"
    )
    assert on_grid.status_code == 200
    off_grid = await w.get(
        f"/temporal/entities/{C2}", w.reader, timerel="after", timeAt="2026-11-27T10:42:00Z"
    )
    assert off_grid.status_code == 404
    aggregated = await w.get(
        f"/temporal/entities/{C2}",
        w.reader,
        options="aggregatedValues",
        aggrMethods="sum",
        aggrPeriodDuration="PT1H",
    )
    assert aggregated.status_code == 404
    owner = await w.get(
        f"/temporal/entities/{C2}",
        w.owner,
        options="aggregatedValues",
        aggrMethods="sum",
        aggrPeriodDuration="PT1H",
    )
    assert owner.status_code == 200
