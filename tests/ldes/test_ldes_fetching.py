"""The LDES client's HTTP: media types, caching headers, redirects, 410, retries (real HTTP)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import httpx
import pyoxigraph as ox
import pytest
from streamserver import Route, StreamServer, serving

from smartregion.ldes.fetching import FetchError, Page, PageFetcher, cache_policy

TREE_MEMBER = ox.NamedNode("https://w3id.org/tree#member")


@pytest.fixture
def server() -> Iterator[StreamServer]:
    yield from serving()


def fetch(url: str, sleeps: list[float] | None = None, **kwargs: str | None) -> Page:
    async def go() -> Page:
        async def sleep(seconds: float) -> None:
            if sleeps is not None:
                sleeps.append(seconds)

        fetcher = PageFetcher(retries=3, backoff=0.01, sleep=sleep)
        try:
            return await fetcher.fetch(url, **kwargs)
        finally:
            await fetcher.aclose()

    return asyncio.run(go())


def members(page: Page) -> set[str]:
    return {q.object.value for q in page.quads if q.predicate == TREE_MEMBER}


@pytest.mark.parametrize(
    ("path", "media", "expected"),
    [
        ("/pages/1", "text/turtle", {"/obs/1", "/obs/2"}),
        ("/pages/old", "application/n-triples", {"/obs/old-1", "/obs/old-2"}),
        ("/pages/2-moved", "application/trig", {"/obs/2", "/obs/3", "/obs/4"}),
        ("/pages/3", "application/n-quads", {"/parking/p1/v1", "/parking/p1/v2"}),
        ("/pages/latest", "application/ld+json", {"/parking/p2/v1"}),
    ],
)
def test_each_media_type_parses(
    server: StreamServer, path: str, media: str, expected: set[str]
) -> None:
    page = fetch(server.base + path)
    assert page.status == "ok" and page.media_type == media
    assert members(page) == {server.base + m for m in expected}


def test_named_graph_members_keep_their_graph(server: StreamServer) -> None:
    page = fetch(server.base + "/pages/2-moved")
    graphs = {q.graph_name for q in page.quads if not isinstance(q.graph_name, ox.DefaultGraph)}
    assert ox.NamedNode(server.base + "/obs/3") in graphs


def test_redirect_is_followed_and_the_final_url_is_the_page(server: StreamServer) -> None:
    page = fetch(server.base + "/pages/2")
    assert page.status == "ok"
    assert page.url == server.base + "/pages/2"
    assert page.final_url == server.base + "/pages/2-moved"
    assert page.immutable
    assert server.requests("/pages/2") == 1 and server.requests("/pages/2-moved") == 1


def test_gone_is_reported_not_raised(server: StreamServer) -> None:
    assert fetch(server.base + "/pages/gone").status == "gone"


def test_etag_revalidation_gives_not_modified(server: StreamServer) -> None:
    first = fetch(server.base + "/pages/latest")
    assert first.etag and first.max_age == 1.0 and not first.immutable
    again = fetch(server.base + "/pages/latest", etag=first.etag)
    assert again.status == "not-modified" and again.quads == []
    assert server.log[-1] == ("/pages/latest", first.etag)
    server.routes["/pages/latest"].body += b" "  # the page changed: a new ETag
    changed = fetch(server.base + "/pages/latest", etag=first.etag)
    assert changed.status == "ok" and changed.etag != first.etag


def test_429_waits_at_least_retry_after_then_succeeds(server: StreamServer) -> None:
    server.routes["/pages/3"].before = [(429, {"Retry-After": "7"}), (503, {})]
    sleeps: list[float] = []
    page = fetch(server.base + "/pages/3", sleeps)
    assert page.status == "ok" and len(members(page)) == 2
    assert server.requests("/pages/3") == 3
    assert len(sleeps) == 2 and sleeps[0] >= 7.0 and 0 < sleeps[1] < 7.0


def test_retries_are_bounded(server: StreamServer) -> None:
    server.routes["/pages/3"].before = [(503, {})] * 10
    with pytest.raises(FetchError, match="HTTP 503 after 4 tries"):
        fetch(server.base + "/pages/3", [])
    assert server.requests("/pages/3") == 4


def test_other_failures_raise_fetch_error(server: StreamServer) -> None:
    with pytest.raises(FetchError, match="HTTP 404"):
        fetch(server.base + "/nothing")
    server.routes["/html"] = Route(body=b"<html/>", media_type="text/html")
    with pytest.raises(FetchError, match="unsupported media type 'text/html'"):
        fetch(server.base + "/html")
    server.routes["/bad"] = Route(body=b"<a> <b> .", media_type="text/turtle")
    with pytest.raises(FetchError, match="not valid text/turtle"):
        fetch(server.base + "/bad")


def test_cache_policy() -> None:
    h = httpx.Headers
    assert cache_policy(h({"Cache-Control": "public, max-age=604800, immutable"}), 0) == (
        True,
        604800.0,
    )
    assert cache_policy(h({"Cache-Control": "max-age=60", "Age": "15"}), 0) == (False, 45.0)
    assert cache_policy(h({"Cache-Control": "no-cache, max-age=60"}), 0) == (False, 0.0)
    assert cache_policy(h({"Expires": "Thu, 01 Jan 1970 00:01:40 GMT"}), 40.0) == (False, 60.0)
    assert cache_policy(h({"Expires": "garbage"}), 0) == (False, 0.0)
    assert cache_policy(h({}), 0) == (False, None)
