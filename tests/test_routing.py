"""The indexed router picks the route Starlette's router would, and leaves the rest to it."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Match, Mount, Route

from smartregion.api.ngsild.routes import ROUTES
from smartregion.api.routing import IndexedRouter

METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
SEGMENTS = [
    "entities",
    "attrs",
    "temporal",
    "entityOperations",
    "upsert",
    "query",
    "types",
    "attributes",
    "jsonldContexts",
    "subscriptions",
    "urn:ngsi-ld:T:1",
    "temperature",
    "x",
    "",
    "2026-01-01T00:00:00Z",
]


def scope_of(method: str, path: str) -> dict[str, Any]:
    return {"type": "http", "method": method, "path": path, "root_path": "", "headers": []}


def starlette_choice(method: str, path: str) -> Any:
    """The first route of the table that fully matches, as Starlette's router tries them."""
    for route in ROUTES:
        match, _ = route.matches(scope_of(method, path))
        if match is Match.FULL:
            return route
    return None


@given(st.sampled_from(METHODS), st.lists(st.sampled_from(SEGMENTS), min_size=1, max_size=6))
def test_the_same_route_is_chosen_for_any_request(method: str, segments: list[str]) -> None:
    router = IndexedRouter(ROUTES)
    assert router._index is not None  # the NGSI-LD table is indexed
    path = "/" + "/".join(segments)
    found = router.full_match(scope_of(method, path))
    assert (found[0] if found else None) is starlette_choice(method, path)


@pytest.mark.parametrize(
    ("method", "path", "endpoint"),
    [
        ("PATCH", "/entities/urn:ngsi-ld:T:1/attrs", "update_attributes"),
        ("PATCH", "/entities/urn:ngsi-ld:T:1/attrs/temperature", "partial_update_attribute"),
        ("PATCH", "/entities/urn:ngsi-ld:T:1", "merge_entity"),
        ("POST", "/entityOperations/upsert", "batch_upsert"),
        ("GET", "/entities", "query_entities"),
        ("HEAD", "/types", "list_types"),
    ],
)
def test_known_requests_reach_their_handlers(method: str, path: str, endpoint: str) -> None:
    found = IndexedRouter(ROUTES).full_match(scope_of(method, path))
    assert found is not None and found[0].endpoint.__name__ == endpoint


async def ok(_: Request) -> Response:
    return PlainTextResponse("ok")


def client_of(router: IndexedRouter) -> httpx.AsyncClient:
    app = Starlette(routes=[Mount("/v1", app=router)])
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")


@pytest.mark.anyio
async def test_what_no_route_takes_is_answered_as_starlette_does() -> None:
    routes = [Route("/things", ok, methods=["GET"]), Route("/things/{id}", ok, methods=["PUT"])]
    async with client_of(IndexedRouter(routes)) as client:
        assert (await client.get("/v1/things")).text == "ok"
        assert (await client.put("/v1/things/a")).text == "ok"
        wrong = await client.delete("/v1/things/a")  # the path matches, the method does not
        assert wrong.status_code == 405 and wrong.headers["allow"] == "PUT"
        assert (await client.get("/v1/nothing")).status_code == 404
        slash = await client.get("/v1/things/")  # Starlette's redirect, not followed
        assert slash.status_code == 307 and slash.headers["location"] == "http://t/v1/things"


@pytest.mark.anyio
async def test_a_table_it_cannot_index_is_routed_as_is() -> None:
    router = IndexedRouter([Route("/{anything}", ok, methods=["GET"])])
    assert router._index is None and router.full_match(scope_of("GET", "/x")) is None
    async with client_of(router) as client:
        assert (await client.get("/v1/x")).text == "ok"
