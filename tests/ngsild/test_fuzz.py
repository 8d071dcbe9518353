"""Property-based fuzzing of the NGSI-LD API: whatever a client sends, the answer is never a 5xx.

Hypothesis generates hostile-but-plausible requests — arbitrary JSON bodies, entity-shaped bodies
with random members, random query strings for every query parameter — against the real app
(in-process HTTP, real SQLite store). Any 5xx fails the test with the request that caused it.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from smartregion.app import create_app
from smartregion.settings import Settings

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=20,
)
names = st.sampled_from(
    [
        "temperature",
        "location",
        "name",
        "type",
        "id",
        "@context",
        "scope",
        "observedAt",
        "x:y",
        "a b",
        "",
    ]
)
kinds = st.sampled_from(
    [
        "Property",
        "Relationship",
        "GeoProperty",
        "LanguageProperty",
        "JsonProperty",
        "VocabProperty",
        "ListProperty",
        "ListRelationship",
        "Bogus",
        7,
    ]
)
attribute = st.fixed_dictionaries(
    {"type": kinds},
    optional={
        "value": json_values,
        "object": json_values,
        "languageMap": json_values,
        "json": json_values,
        "vocab": json_values,
        "valueList": json_values,
        "objectList": json_values,
        "datasetId": json_values,
        "observedAt": json_values,
        "unitCode": json_values,
    },
)
entity = st.fixed_dictionaries(
    {
        "id": st.one_of(st.just("urn:ngsi-ld:T:1"), st.text(max_size=12), json_values),
        "type": st.one_of(st.just("T"), st.lists(st.text(max_size=5), max_size=3), json_values),
    },
    optional={
        "temperature": attribute,
        "location": attribute,
        "name": st.one_of(attribute, json_values),
    },
)
bodies = st.one_of(entity, json_values, st.lists(entity, max_size=3))

query_params = st.dictionaries(
    st.sampled_from(
        [
            "type",
            "id",
            "idPattern",
            "q",
            "attrs",
            "pick",
            "omit",
            "georel",
            "geometry",
            "coordinates",
            "geoproperty",
            "scopeQ",
            "limit",
            "offset",
            "count",
            "options",
            "format",
            "lang",
            "orderBy",
            "join",
            "joinLevel",
            "local",
            "bogus",
        ]
    ),
    st.one_of(
        st.text(max_size=25),
        st.sampled_from(
            [
                "near;maxDistance==10",
                "Point",
                "[4.3,50.8]",
                "temperature>3;(a|b)",
                "true",
                "-1",
                "keyValues",
                "sysAttrs,bogus",
                "T;(A,B",
                "a{b{c}}",
                "/a/#",
                "name;desc",
            ]
        ),
    ),
    max_size=5,
)
paths = st.sampled_from(
    [
        "/entities",
        "/entities/urn:ngsi-ld:T:1",
        "/entities/urn:ngsi-ld:T:1/attrs",
        "/entities/urn:ngsi-ld:T:1/attrs/temperature",
        "/entityOperations/create",
        "/entityOperations/upsert",
        "/entityOperations/update",
        "/entityOperations/merge",
        "/entityOperations/delete",
        "/entityOperations/query",
        "/types",
        "/types/T",
        "/attributes",
        "/attributes/temperature",
        "/jsonldContexts",
        "/entities/",
        "/entities/not a uri",
    ]
)
methods = st.sampled_from(["GET", "POST", "PATCH", "PUT", "DELETE"])
content_types = st.sampled_from(
    ["application/json", "application/ld+json", "application/merge-patch+json", "text/plain"]
)


class Harness:
    """One app and event loop shared by all examples (creating an app per example is slow)."""

    def __init__(self, tmp: Path) -> None:
        self.loop = asyncio.new_event_loop()
        self.app = create_app(
            Settings(database_url=f"sqlite:///{tmp}/fuzz.db", anonymous_writes=True)
        )
        self.lifespan = self.app.router.lifespan_context(self.app)
        self.loop.run_until_complete(self.lifespan.__aenter__())
        self.client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.app), base_url="http://fuzz/ngsi-ld/v1"
        )

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return self.loop.run_until_complete(self.client.request(method, path, **kwargs))

    def close(self) -> None:
        self.loop.run_until_complete(self.client.aclose())
        self.loop.run_until_complete(self.lifespan.__aexit__(None, None, None))
        self.loop.close()


@pytest.fixture(scope="module")
def harness(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Harness]:
    h = Harness(tmp_path_factory.mktemp("fuzz"))
    yield h
    h.close()


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(method=methods, path=paths, params=query_params, body=bodies, content_type=content_types)
def test_no_request_gets_a_server_error(
    harness: Harness, method: str, path: str, params: dict[str, str], body: Any, content_type: str
) -> None:
    kwargs: dict[str, Any] = {"params": params, "headers": {"Content-Type": content_type}}
    if method in ("POST", "PATCH", "PUT"):
        kwargs["content"] = json.dumps(body).encode()
    response = harness.request(method, path, **kwargs)
    assert response.status_code < 500, (method, path, params, body, response.text)
    if response.status_code >= 400:
        assert response.headers["content-type"].startswith("application/problem+json")
