"""The admin HTTP API at /api/v1, in process (httpx over ASGI with the app's lifespan)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from smartregion.app import create_app
from smartregion.governance import Governance, Principal
from smartregion.settings import Settings

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@dataclass
class Env:
    client: httpx.AsyncClient
    gov: Governance
    platform: str  # admin key of the platform organisation
    ghent: str  # admin key of ghent
    uni: str  # editor key of uni

    @staticmethod
    def auth(key: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {key}"}


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[Env]:
    app = create_app(Settings(database_url=f"sqlite:///{tmp_path}/api.db"))
    async with app.router.lifespan_context(app):
        gov: Governance = app.state.governance
        # bootstrap as the CLI does
        op = Principal.cli()
        await gov.create_organisation(op, "platform", "Platform", "region")
        await gov.create_organisation(op, "ghent", "Stad Gent", "municipality", nis="44021")
        await gov.create_organisation(op, "uni", "Universiteit", "knowledge_institution")
        keys = [
            (await gov.create_api_key(op, org, role=role)).key
            for org, role in [("platform", "admin"), ("ghent", "admin"), ("uni", "editor")]
        ]
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver/api/v1") as c:
            yield Env(c, gov, *keys)


async def test_openapi_is_published(env: Env) -> None:
    r = await env.client.get("/openapi.json")
    assert r.status_code == 200
    paths = r.json()["paths"]
    for path in [
        "/organisations",
        "/organisations/{org_id}/keys",
        "/keys/{key_id}",
        "/datasets",
        "/mandates",
        "/access-requests",
        "/access-requests/{request_id}/approve",
        "/access-requests/{request_id}/refuse",
        "/grants",
        "/grants/{grant_id}",
    ]:
        assert path in paths


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer "},
        {"Authorization": "Basic dXNlcjpwYXNz"},
        {"Authorization": "Bearer srk_0123456789abcdef_" + "a" * 43},
        {"Authorization": "Bearer not-a-key"},
    ],
)
async def test_missing_or_invalid_credentials_are_401_problems(
    env: Env, headers: dict[str, str]
) -> None:
    r = await env.client.get("/organisations", headers=headers)
    assert r.status_code == 401
    assert r.headers["content-type"] == "application/problem+json"
    assert r.headers["www-authenticate"].startswith("Bearer")
    assert r.json()["status"] == 401


async def test_a_key_in_the_query_string_is_400_even_with_a_valid_header(env: Env) -> None:
    for params in [{"api_key": env.ghent}, {"token": "x"}, {"q": env.ghent}]:
        r = await env.client.get("/organisations", params=params, headers=env.auth(env.ghent))
        assert r.status_code == 400
        assert r.headers["content-type"] == "application/problem+json"


async def test_organisations(env: Env) -> None:
    r = await env.client.get("/organisations", headers=env.auth(env.uni))
    assert [o["id"] for o in r.json()] == ["platform", "ghent", "uni"]
    body = {"id": "leuven", "name": "Leuven", "kind": "municipality", "nis": "24062"}
    r = await env.client.post("/organisations", json=body, headers=env.auth(env.ghent))
    assert r.status_code == 403
    r = await env.client.post("/organisations", json=body, headers=env.auth(env.platform))
    assert r.status_code == 201 and r.json()["nis"] == "24062"
    r = await env.client.post("/organisations", json=body, headers=env.auth(env.platform))
    assert r.status_code == 409
    r = await env.client.post(
        "/organisations", json={**body, "id": "x", "kind": "alien"}, headers=env.auth(env.platform)
    )
    assert r.status_code == 400
    r = await env.client.post(
        "/organisations",
        json={**body, "id": "y", "kbo": "0207451228"},
        headers=env.auth(env.platform),
    )
    assert r.status_code == 400 and "check" in r.json()["detail"]
    assert (
        await env.client.get("/organisations/nope", headers=env.auth(env.uni))
    ).status_code == 404


async def test_key_lifecycle_revoked_key_refused_on_the_next_request(env: Env) -> None:
    r = await env.client.post(
        "/organisations/ghent/keys",
        json={"role": "reader", "label": "sensor"},
        headers=env.auth(env.ghent),
    )
    assert r.status_code == 201
    issued = r.json()
    assert issued["key"].startswith("srk_") and "secret_hash" not in issued
    listed = (await env.client.get("/organisations/ghent/keys", headers=env.auth(env.ghent))).json()
    assert issued["id"] in [k["id"] for k in listed]
    assert all("key" not in k and "secret_hash" not in k for k in listed)
    new = env.auth(issued["key"])
    assert (await env.client.get("/organisations", headers=new)).status_code == 200
    # a reader may not issue keys; another organisation's admin may not revoke
    assert (
        await env.client.post("/organisations/ghent/keys", json={}, headers=new)
    ).status_code == 403
    r = await env.client.delete(f"/keys/{issued['id']}", headers=env.auth(env.uni))
    assert r.status_code == 403
    r = await env.client.delete(f"/keys/{issued['id']}", headers=env.auth(env.ghent))
    assert r.status_code == 204
    assert (await env.client.get("/organisations", headers=new)).status_code == 401
    assert (
        await env.client.delete(f"/keys/{issued['id']}", headers=env.auth(env.ghent))
    ).status_code == 409


async def test_an_expired_key_is_401(env: Env) -> None:
    r = await env.client.post(
        "/organisations/ghent/keys",
        json={"expires_at": "2020-01-01T00:00:00Z"},
        headers=env.auth(env.ghent),
    )
    assert r.status_code == 400  # cannot issue an already expired key
    r = await env.client.post(
        "/organisations/ghent/keys",
        json={"expires_at": "2090-01-01T00:00:00Z"},
        headers=env.auth(env.ghent),
    )
    expiring = env.auth(r.json()["key"])
    assert (await env.client.get("/organisations", headers=expiring)).status_code == 200
    env.gov.clock = lambda: datetime(2090, 1, 1, 0, 0, 1, tzinfo=UTC)
    assert (await env.client.get("/organisations", headers=expiring)).status_code == 401
    assert (await env.client.get("/organisations", headers=env.auth(env.ghent))).status_code == 200


async def test_unknown_members_are_refused(env: Env) -> None:
    r = await env.client.post(
        "/organisations/ghent/keys",
        json={"expires": "2030-01-01T00:00:00Z"},
        headers=env.auth(env.ghent),
    )
    assert r.status_code == 400
    assert r.headers["content-type"] == "application/problem+json"


async def test_datasets_access_requests_grants(env: Env) -> None:
    ds = {
        "id": "ghent-cams",
        "owner": "ghent",
        "title": {"nl": "Camera's", "en": "Cameras"},
        "entity_types": ["Camera"],
        "theme": "mobility",
        "policy": "restricted",
    }
    assert (
        await env.client.post("/datasets", json=ds, headers=env.auth(env.uni))
    ).status_code == 403
    r = await env.client.post("/datasets", json=ds, headers=env.auth(env.ghent))
    assert r.status_code == 201 and r.json()["policy_kind"] == "restricted"
    r = await env.client.get("/datasets", params={"owner": "ghent"}, headers=env.auth(env.uni))
    assert [d["id"] for d in r.json()] == ["ghent-cams"]
    # request, approve, grant, revoke
    r = await env.client.post(
        "/access-requests",
        json={"dataset": "ghent-cams", "purpose": "research", "end": "2030-01-01T00:00:00Z"},
        headers=env.auth(env.uni),
    )
    assert r.status_code == 201
    request_id = r.json()["id"]
    listed = (await env.client.get("/access-requests", headers=env.auth(env.ghent))).json()
    assert [x["id"] for x in listed] == [request_id]
    r = await env.client.post(f"/access-requests/{request_id}/approve", headers=env.auth(env.uni))
    assert r.status_code == 403
    r = await env.client.post(f"/access-requests/{request_id}/approve", headers=env.auth(env.ghent))
    assert r.status_code == 201
    grant = r.json()["grant"]
    agreement = r.json()["agreement"]
    assert grant["org_id"] == "uni" and grant["expires_at"] == "2030-01-01T00:00:00.000000Z"
    r = await env.client.get(f"/agreements/{agreement['id']}", headers=env.auth(env.uni))
    assert r.status_code == 200 and r.json()["policy"]["@type"] == "Agreement"
    r = await env.client.get(f"/agreements/{agreement['id']}", headers=env.auth(env.platform))
    assert r.status_code == 404  # not a party
    assert (
        await env.client.post(f"/access-requests/{request_id}/refuse", headers=env.auth(env.ghent))
    ).status_code == 409
    assert [
        g["id"] for g in (await env.client.get("/grants", headers=env.auth(env.uni))).json()
    ] == [grant["id"]]
    assert (
        await env.client.delete(f"/grants/{grant['id']}", headers=env.auth(env.uni))
    ).status_code == 403
    assert (
        await env.client.delete(f"/grants/{grant['id']}", headers=env.auth(env.ghent))
    ).status_code == 204
    revoked = (await env.client.get("/grants", headers=env.auth(env.ghent))).json()[0]
    assert revoked["revoked_at"] is not None
    # policy change
    r = await env.client.put(
        "/datasets/ghent-cams/policy",
        json={
            "policy": "restricted",
            "permissions": [{"action": "read", "assignee": {"kind": "municipality"}}],
        },
        headers=env.auth(env.ghent),
    )
    assert r.status_code == 200 and r.json()["policy_kind"] == "restricted"
    r = await env.client.put(
        "/datasets/ghent-cams/policy",
        json={"policy": "restricted", "permissions": [{"action": "read", "duty": []}]},
        headers=env.auth(env.ghent),
    )
    assert r.status_code == 400


async def test_mandates(env: Env) -> None:
    r = await env.client.post(
        "/mandates", json={"owner": "ghent", "mandated": "uni"}, headers=env.auth(env.uni)
    )
    assert r.status_code == 403
    r = await env.client.post(
        "/mandates", json={"owner": "ghent", "mandated": "uni"}, headers=env.auth(env.ghent)
    )
    assert r.status_code == 201
    mandate_id = r.json()["id"]
    listed = (await env.client.get("/organisations/uni/mandates", headers=env.auth(env.uni))).json()
    assert [m["id"] for m in listed] == [mandate_id]
    assert (
        await env.client.delete(f"/mandates/{mandate_id}", headers=env.auth(env.ghent))
    ).status_code == 204
    assert (
        await env.client.delete("/mandates/nope", headers=env.auth(env.ghent))
    ).status_code == 404


async def test_unknown_paths_are_problem_404(env: Env) -> None:
    r = await env.client.get("/nothing-here", headers=env.auth(env.uni))
    assert r.status_code == 404
    assert r.headers["content-type"] == "application/problem+json"


async def test_private_datasets_are_invisible_to_others(env: Env) -> None:
    ds = {"id": "ghent-secret", "owner": "ghent", "title": "Geheim", "entity_types": ["T"]}
    assert (
        await env.client.post("/datasets", json=ds, headers=env.auth(env.ghent))
    ).status_code == 201
    assert (
        await env.client.get("/datasets/ghent-secret", headers=env.auth(env.uni))
    ).status_code == 404
    assert (await env.client.get("/datasets", headers=env.auth(env.uni))).json() == []
    r = await env.client.post(
        "/access-requests",
        json={"dataset": "ghent-secret", "purpose": "x"},
        headers=env.auth(env.uni),
    )
    assert r.status_code == 404
    r = await env.client.put(
        "/datasets/ghent-secret/policy", json={"policy": "open"}, headers=env.auth(env.uni)
    )
    assert r.status_code == 404
    r = await env.client.get("/datasets/ghent-secret", headers=env.auth(env.ghent))
    assert r.status_code == 200 and r.json()["policy_kind"] == "private"


async def test_dead_letters_are_visible_to_the_organisations_members_only(env: Env) -> None:
    from smartregion.storage.ingestion import DeadLetter, IngestionStore

    store = env.gov.store
    assert isinstance(store, IngestionStore)
    for n, org in enumerate(["ghent", "ghent", "uni"]):
        await store.add_dead_letter(
            DeadLetter("", org, "sensors/x", f"not json {n}", "not JSON", f"2026-11-27T10:0{n}:00Z")
        )
    r = await env.client.get("/organisations/ghent/dead-letters", headers=env.auth(env.ghent))
    assert r.status_code == 200, r.text
    letters = r.json()
    assert [d["payload"] for d in letters] == ["not json 1", "not json 0"]  # newest first
    assert {d["org"] for d in letters} == {"ghent"}
    # another organisation's members may not read them
    r = await env.client.get("/organisations/ghent/dead-letters", headers=env.auth(env.uni))
    assert r.status_code == 403
    r = await env.client.get(
        "/organisations/ghent/dead-letters", params={"limit": 0}, headers=env.auth(env.ghent)
    )
    assert r.status_code == 400


async def test_apps_sharing_the_hub_routers_each_serve_their_own_data(tmp_path: Path) -> None:
    # the hub's routers are built once per process and included into every app's admin API
    # (api/hub/routes.py): what one app's requests write must stay that app's
    async with contextlib.AsyncExitStack() as stack:
        clients, keys = [], []
        for name in ("one", "two"):
            app = create_app(Settings(database_url=f"sqlite:///{tmp_path}/{name}.db"))
            await stack.enter_async_context(app.router.lifespan_context(app))
            gov: Governance = app.state.governance
            await gov.create_organisation(Principal.cli(), "acme", "Acme BV", "company")
            keys.append((await gov.create_api_key(Principal.cli(), "acme", role="editor")).key)
            transport = httpx.ASGITransport(app=app)
            clients.append(
                await stack.enter_async_context(
                    httpx.AsyncClient(transport=transport, base_url="http://testserver/api/v1")
                )
            )
        profile = {"title": {"en": "Acme"}, "helix_role": "industry"}
        r = await clients[0].post("/actors", json=profile, headers=Env.auth(keys[0]))
        assert r.status_code == 201, r.text
        assert (await clients[0].get("/actors")).json()["total"] == 1
        assert (await clients[1].get("/actors")).json()["total"] == 0
        # and the other app's key is not known here
        refused = await clients[1].post("/actors", json=profile, headers=Env.auth(keys[0]))
        assert refused.status_code == 401
