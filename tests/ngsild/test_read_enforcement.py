"""Every NGSI-LD read path returns only what the caller may read (issue 3), on both backends.

The principal is set on `request.state` by a test-only ASGI middleware (from the `X-Test-Org`,
`X-Test-Role` and `X-Test-Operator` headers), as the authentication layer will. Each test uses
a tenant and organisations of its own, so the session's PostgreSQL database is shared safely.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.types import ASGIApp, Receive, Scope, Send

from smartregion.app import create_app
from smartregion.governance import Governance, Principal, WriteAccess
from smartregion.settings import Settings

pytestmark = pytest.mark.anyio

CORE = "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.9.jsonld"
NOT_FOUND = "https://uri.etsi.org/ngsi-ld/errors/ResourceNotFound"
OP = Principal.cli()


class PrincipalFromHeaders:
    """Test-only: the principal named by request headers, where authentication puts it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
            principal: Principal | None = None
            if headers.get("x-test-operator"):
                principal = OP
            elif "x-test-org" in headers:
                principal = Principal(headers["x-test-org"], headers.get("x-test-role", "reader"))
            # where the authenticator keeps a request's principal (api/auth.py)
            scope = {**scope, "smartregion.principal": principal}
        await self.app(scope, receive, send)


@dataclass
class World:
    """A tenant with entities of two organisations and the data sets describing them."""

    client: httpx.AsyncClient
    gov: Governance
    tenant: str
    a: str  # the caller's organisation
    b: str  # another organisation
    default_org: str

    def headers(self, org: str | None = None, **extra: str) -> dict[str, str]:
        h = {
            "NGSILD-Tenant": self.tenant,
            "Link": f'<{CORE}>; rel="http://www.w3.org/ns/json-ld#context"',
        }
        if org is not None:
            h["X-Test-Org"] = org
        return {**h, **extra}

    async def get(self, path: str, org: str | None = None, **params: str) -> httpx.Response:
        return await self.client.get(path, params=params, headers=self.headers(org))


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/read.db"
    url: str = request.getfixturevalue("postgres_url")
    return url


def entity(entity_id: str, entity_type: str, **attrs: Any) -> dict[str, Any]:
    return {"id": entity_id, "type": entity_type, **attrs}


A1, A2 = "urn:ngsi-ld:Sensor:a1", "urn:ngsi-ld:Camera:a2"
B1, B2, B3 = "urn:ngsi-ld:Building:b1", "urn:ngsi-ld:Camera:b2", "urn:ngsi-ld:Park:b3"
D1 = "urn:ngsi-ld:Sensor:d1"


async def build_world(database_url: str, *, anonymous_writes: bool) -> AsyncIterator[World]:
    suffix = secrets.token_hex(4)
    a, b, default_org = f"a-{suffix}", f"b-{suffix}", f"trial-{suffix}"
    settings = Settings(
        database_url=database_url, anonymous_writes=anonymous_writes, default_org=default_org
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        tenant = f"t{suffix}"
        broker = app.state.broker
        gov: Governance = app.state.governance
        vocab = await broker.contexts.term_map(CORE)
        point = {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [3.72, 51.05]}}
        owned = {
            a: [
                entity(
                    A1,
                    "Sensor",
                    temperature={"type": "Property", "value": 20},
                    locatedIn={"type": "Relationship", "object": B1},
                    location=point,
                ),
                entity(A2, "Camera", temperature={"type": "Property", "value": 21}, location=point),
            ],
            b: [
                entity(
                    B1,
                    "Building",
                    height={"type": "Property", "value": 99},
                    temperature={"type": "Property", "value": 22},
                ),
                entity(B2, "Camera", temperature={"type": "Property", "value": 23}, location=point),
                entity(B3, "Park", area={"type": "Property", "value": 5}),
            ],
            default_org: [entity(D1, "Sensor", temperature={"type": "Property", "value": 24})],
        }
        for owner, payloads in owned.items():
            for payload in payloads:
                await broker.entities.create(tenant, payload, vocab, writer=WriteAccess(owner))
        for org in (a, b):
            await gov.create_organisation(OP, org, org, "company")
        admin_b = Principal(b, "admin")
        await gov.create_dataset(admin_b, f"{b}-parks", b, "Parks", ["Park"], policy="open")
        await gov.create_dataset(
            admin_b, f"{b}-buildings", b, "Buildings", ["Building"], policy="restricted"
        )
        await gov.create_dataset(admin_b, f"{b}-cams", b, "Cameras", ["Camera"], policy="private")
        transport = httpx.ASGITransport(app=PrincipalFromHeaders(app))
        async with httpx.AsyncClient(
            transport=transport, base_url="http://testserver/ngsi-ld/v1"
        ) as client:
            yield World(client, gov, tenant, a, b, default_org)


@pytest.fixture
async def world(database_url: str) -> AsyncIterator[World]:
    async for w in build_world(database_url, anonymous_writes=False):
        yield w


@pytest.fixture
async def trial(database_url: str) -> AsyncIterator[World]:
    async for w in build_world(database_url, anonymous_writes=True):
        yield w


def ids(r: httpx.Response) -> list[str]:
    assert r.status_code == 200, r.text
    return sorted(e["id"] for e in r.json())


async def grant(w: World, dataset: str) -> str:
    """Org a asks for and gets access to one of b's data sets; returns the grant id."""
    request = await w.gov.request_access(Principal(w.a, "editor"), dataset, "research")
    _, g = await w.gov.approve_access_request(
        Principal(w.b, "admin"),
        request.id,
        expires_at=datetime.now(UTC) + timedelta(days=1),
    )
    return g.id


async def test_a_foreign_entity_answers_404_exactly_like_a_missing_one(world: World) -> None:
    missing = await world.get("/entities/urn:ngsi-ld:Building:none", world.a)
    assert missing.status_code == 404
    for foreign in (B1, B2):
        r = await world.get(f"/entities/{foreign}", world.a)
        assert r.status_code == 404
        assert r.json()["type"] == missing.json()["type"] == NOT_FOUND
        assert r.headers["content-type"] == missing.headers["content-type"]
    assert (await world.get(f"/entities/{A1}", world.a)).status_code == 200
    assert (await world.get(f"/entities/{B3}", world.a)).status_code == 200  # open data
    # the owner reads its own; the operator reads everything
    assert (await world.get(f"/entities/{B1}", world.b)).status_code == 200
    r = await world.client.get(f"/entities/{B2}", headers=world.headers(**{"X-Test-Operator": "1"}))
    assert r.status_code == 200


async def test_lists_and_counts_leave_foreign_entities_out(world: World) -> None:
    w = world
    r = await w.get("/entities", w.a, type="Camera", count="true")
    assert ids(r) == [A2] and r.headers["NGSILD-Results-Count"] == "1"
    # an exact q count (taken from the value index alone when unrestricted)
    r = await w.get("/entities", w.a, type="Camera", q="temperature>0", count="true", limit="0")
    assert r.headers["NGSILD-Results-Count"] == "1"
    r = await w.get("/entities", w.a, q="temperature>0", count="true")
    assert ids(r) == sorted([A1, A2]) and r.headers["NGSILD-Results-Count"] == "2"
    assert ids(await w.get("/entities", w.a, type="Building")) == []
    assert ids(await w.get("/entities", w.a, id=f"{B1},{B2},{A1}", local="true")) == [A1]
    assert ids(await w.get("/entities", w.a, idPattern="urn:ngsi-ld:.*", local="true")) == sorted(
        [A1, A2, B3]
    )
    # a geo-query, and the GeoJSON representation
    r = await w.client.get(
        "/entities",
        params={
            "georel": "near;maxDistance==1000",
            "geometry": "Point",
            "coordinates": "[3.72,51.05]",
            "count": "true",
        },
        headers=w.headers(w.a, Accept="application/geo+json"),
    )
    assert r.status_code == 200, r.text
    assert sorted(f["id"] for f in r.json()["features"]) == sorted([A1, A2])
    assert r.headers["NGSILD-Results-Count"] == "2"
    # POST /entityOperations/query and ordered queries
    r = await w.client.post(
        "/entityOperations/query",
        json={"type": "Query", "entities": [{"type": "Camera"}]},
        headers=w.headers(w.a),
    )
    assert ids(r) == [A2]
    r = await w.get("/entities", w.a, type="Camera,Building", orderBy="temperature", count="true")
    assert ids(r) == [A2] and r.headers["NGSILD-Results-Count"] == "1"
    # b sees its own and nothing of a's
    assert ids(await w.get("/entities", w.b, type="Camera")) == [B2]


async def test_anonymous_callers_read_open_data_only(world: World) -> None:
    w = world
    assert ids(await w.get("/entities", None, idPattern=".*", local="true")) == [B3]
    assert (await w.get(f"/entities/{D1}")).status_code == 404
    assert (await w.get(f"/entities/{A1}")).status_code == 404
    types = (await w.get("/types")).json()["typeList"]
    assert types == ["Park"]


async def test_trial_mode_anonymous_reads_as_the_default_organisation(trial: World) -> None:
    w = trial
    assert ids(await w.get("/entities", None, idPattern=".*", local="true")) == [B3, D1]
    assert (await w.get(f"/entities/{D1}")).status_code == 200
    assert (await w.get(f"/entities/{A1}")).status_code == 404
    # an authenticated caller is not affected by the trial mode
    assert ids(await w.get("/entities", w.a, idPattern=".*", local="true")) == sorted([A1, A2, B3])


async def test_discovery_reveals_no_foreign_types_or_counts(world: World) -> None:
    w = world
    assert (await w.get("/types", w.a)).json()["typeList"] == ["Camera", "Park", "Sensor"]
    details = (await w.get("/types", w.a, details="true")).json()
    assert sorted(d["typeName"] for d in details) == ["Camera", "Park", "Sensor"]
    r = await w.get("/types/Building", w.a)
    assert r.status_code == 404 and r.json()["type"] == NOT_FOUND
    camera = (await w.get("/types/Camera", w.a)).json()
    assert camera["entityCount"] == 1  # not b's camera
    attributes = (await w.get("/attributes", w.a)).json()["attributeList"]
    assert "height" not in attributes and "temperature" in attributes
    assert (await w.get("/attributes/height", w.a)).status_code == 404
    temperature = (await w.get("/attributes/temperature", w.a)).json()
    assert temperature["attributeCount"] == 2
    assert temperature["typeNames"] == ["Camera", "Sensor"]
    listed = (await w.get("/attributes", w.a, details="true")).json()
    assert {a["attributeName"] for a in listed} == set(attributes)
    # b sees its own types and counts
    assert (await w.get("/types/Camera", w.b)).json()["entityCount"] == 1
    assert (await w.get("/attributes/height", w.b)).status_code == 200


async def test_join_does_not_pull_in_unreadable_entities(world: World) -> None:
    w = world
    for join in ("inline", "flat"):
        r = await w.get(f"/entities/{A1}", w.a, join=join)
        assert r.status_code == 200
        assert B1 in r.text  # the relationship itself is a's
        assert "height" not in r.text  # but nothing of b's building
        r = await w.get("/entities", w.a, type="Sensor", join=join)
        assert r.status_code == 200 and "height" not in r.text
    # with a grant the same request joins it (the assertion above can fail)
    await grant(w, f"{w.b}-buildings")
    for join in ("inline", "flat"):
        r = await w.get(f"/entities/{A1}", w.a, join=join)
        assert "height" in r.text


async def test_a_grant_opens_a_data_set_until_it_is_revoked(world: World) -> None:
    w = world
    assert (await w.get(f"/entities/{B1}", w.a)).status_code == 404
    grant_id = await grant(w, f"{w.b}-buildings")
    assert (await w.get(f"/entities/{B1}", w.a)).status_code == 200
    assert ids(await w.get("/entities", w.a, type="Building")) == [B1]
    assert (await w.get("/types/Building", w.a)).json()["entityCount"] == 1
    assert (await w.get(f"/entities/{B2}", w.a)).status_code == 404  # only that data set
    await w.gov.revoke_grant(Principal(w.b, "admin"), grant_id)
    # the very next request
    assert (await w.get(f"/entities/{B1}", w.a)).status_code == 404
    assert ids(await w.get("/entities", w.a, type="Building")) == []
    assert (await w.get("/types/Building", w.a)).status_code == 404


async def test_a_declared_purpose_meets_a_policys_purpose_constraint(world: World) -> None:
    """Organisations of a's kind may read b's buildings for traffic studies only: a reader
    declares its purpose in `Smartregion-Purpose`; the read is audited with it."""
    w = world
    await w.gov.set_dataset_policy(
        Principal(w.b, "admin"),
        f"{w.b}-buildings",
        "restricted",
        [
            {
                "action": "read",
                "assignee": {"kind": "company"},
                "constraint": [
                    {
                        "leftOperand": "purpose",
                        "operator": "isAnyOf",
                        "rightOperand": ["traffic", "https://example.org/purpose/mobility"],
                    }
                ],
            },
        ],
    )

    async def read(purpose: str | None) -> tuple[int, list[str]]:
        extra = {} if purpose is None else {"Smartregion-Purpose": purpose}
        one = await w.client.get(f"/entities/{B1}", headers=w.headers(w.a, **extra))
        many = await w.client.get(
            "/entities",
            params={"type": "Building", "count": "true"},
            headers=w.headers(w.a, **extra),
        )
        assert many.status_code == 200, many.text
        assert many.headers["NGSILD-Results-Count"] == str(len(many.json()))
        return one.status_code, [e["id"] for e in many.json()]

    assert await read(None) == (404, [])
    assert await read("research") == (404, [])
    assert await read(" ") == (404, [])  # blank: none declared
    assert await read("traffic") == (200, [B1])
    assert await read("https://example.org/purpose/mobility") == (200, [B1])
    bad = await w.client.get(
        f"/entities/{B1}", headers=w.headers(w.a, **{"Smartregion-Purpose": "traffic; x"})
    )
    assert bad.status_code == 400
    # (the PostgreSQL database is shared by the tests: this world's reads only)
    reads = [
        r
        for r in await w.gov.store.audit_records(after=0, limit=100_000)
        if r.action == "data.read" and r.subject == f"{w.b}-buildings"
    ]
    assert reads and {r.detail.get("purpose") for r in reads} == {
        "traffic",
        "https://example.org/purpose/mobility",
    }
