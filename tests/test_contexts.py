"""@context resolution and the /jsonldContexts registry (smartregion.broker.contexts)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import socket
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from smartregion.broker.contexts import (
    HOSTED_PATH,
    ContextEntry,
    ContextResolver,
    hosted_location,
)
from smartregion.core.jsonld import CORE_CONTEXT_URL, DEFAULT_VOCAB
from smartregion.errors import (
    BadRequestData,
    InvalidRequest,
    LdContextNotAvailable,
    ResourceNotFound,
)

pytestmark = pytest.mark.anyio

FIXTURES = Path(__file__).parent / "fixtures" / "contexts"
SUITE_URL = (
    "https://raw.githubusercontent.com/marek-mraz/ngsi-ld-test-suite/main/"
    "resources/jsonld-contexts/ngsi-ld-test-suite.jsonld"
)
COMPOUND_URL = SUITE_URL.replace("ngsi-ld-test-suite.jsonld", "ngsi-ld-test-suite-compound.jsonld")
SUITE = "https://ngsi-ld-test-suite/context#"
NGSI = "https://uri.etsi.org/ngsi-ld/"
DETAIL_KEYS = {
    "URL",
    "localId",
    "kind",
    "createdAt",
    "lastUsage",
    "numberOfHits",
    "extraInfo",
    "body",
    "expiresAt",
}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def fixture(name: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((FIXTURES / name).read_text())
    return document


# ------------------------------------------------------------------ a real local HTTP server


@dataclass
class Route:
    body: bytes
    status: int = 200
    delay: float = 0.0
    content_length: bool = True


class ContextServer:
    """A threaded HTTP server on 127.0.0.1 serving context documents, counting requests."""

    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        self.hits: Counter[str] = Counter()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.hits[self.path] += 1
                route = server.routes.get(self.path)
                if route is None:
                    route = Route(b'{"error": "not found"}', status=404)
                if route.delay:
                    time.sleep(route.delay)
                self.send_response(route.status)
                self.send_header("Content-Type", "application/ld+json")
                if route.content_length:
                    self.send_header("Content-Length", str(len(route.body)))
                self.end_headers()
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    self.wfile.write(route.body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}{path}"

    def serve(self, path: str, document: Any, **options: Any) -> str:
        body = document if isinstance(document, bytes) else json.dumps(document).encode()
        self.routes[path] = Route(body, **options)
        return self.url(path)


@pytest.fixture
def server() -> Iterator[ContextServer]:
    srv = ContextServer()
    srv.thread.start()
    yield srv
    srv.httpd.shutdown()
    srv.httpd.server_close()
    srv.thread.join(timeout=5)


@pytest.fixture
async def resolver() -> AsyncIterator[ContextResolver]:
    res = ContextResolver(
        preload_dir=None, fetch_timeout=0.5, max_bytes=10_000, public_base_url="http://broker"
    )
    yield res
    await res.aclose()


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/ctx.jsonld"


# ------------------------------------------------------------------ resolution


async def test_none_and_core_urls_need_no_network() -> None:
    res = ContextResolver(preload_dir=None, allow_remote=False)
    core = await res.term_map(None)
    assert core.expand_term("location") == NGSI + "location"
    for url in (CORE_CONTEXT_URL, f"{NGSI}v1/ngsi-ld-core-context-v1.6.jsonld"):
        assert (await res.term_map(url)).expand_term("observedAt") == NGSI + "observedAt"
    await res.aclose()


async def test_inline_context(resolver: ContextResolver) -> None:
    tm = await resolver.term_map({"speed": "https://ex.org/speed"})
    assert tm.expand_term("speed") == "https://ex.org/speed"
    assert tm.expand_term("other") == DEFAULT_VOCAB + "other"


async def test_remote_context_is_fetched_once_and_cached(
    server: ContextServer, resolver: ContextResolver
) -> None:
    url = server.serve("/suite.jsonld", fixture("ngsi-ld-test-suite.jsonld"))
    tm = await resolver.term_map(url)
    assert tm.expand_term("Building") == SUITE + "Building"
    again = await resolver.term_map([url])
    assert again.expand_term("Vehicle") == SUITE + "Vehicle"
    assert await resolver.term_map(url) is tm
    assert server.hits["/suite.jsonld"] == 1
    details = resolver.get(url, details=True)
    assert details["kind"] == "Cached"
    assert details["numberOfHits"] == 3


async def test_concurrent_resolutions_share_one_fetch(
    server: ContextServer, resolver: ContextResolver
) -> None:
    url = server.serve("/slow.jsonld", fixture("ngsi-ld-test-suite.jsonld"), delay=0.2)
    maps = await asyncio.gather(*(resolver.term_map(url) for _ in range(5)))
    assert {m.expand_term("speed") for m in maps} == {SUITE + "speed"}
    assert server.hits["/slow.jsonld"] == 1


async def test_http_error_is_ld_context_not_available(
    server: ContextServer, resolver: ContextResolver
) -> None:
    with pytest.raises(LdContextNotAvailable, match="HTTP 404"):
        await resolver.term_map(server.url("/missing.jsonld"))


async def test_timeout_is_ld_context_not_available(
    server: ContextServer, resolver: ContextResolver
) -> None:
    url = server.serve("/sleepy.jsonld", fixture("ngsi-ld-test-suite.jsonld"), delay=2.0)
    started = time.monotonic()
    with pytest.raises(LdContextNotAvailable, match=r"within 0\.5 s"):
        await resolver.term_map(url)
    assert time.monotonic() - started < 1.5


@pytest.mark.parametrize("content_length", [True, False])
async def test_too_large_is_ld_context_not_available(
    server: ContextServer, resolver: ContextResolver, content_length: bool
) -> None:
    big = {"@context": {f"term{i}": f"https://ex.org/{i}" for i in range(1000)}}
    url = server.serve("/big.jsonld", big, content_length=content_length)
    with pytest.raises(LdContextNotAvailable, match="larger than 10000 bytes"):
        await resolver.term_map(url)


async def test_connection_refused_is_ld_context_not_available(resolver: ContextResolver) -> None:
    with pytest.raises(LdContextNotAvailable, match="could not be retrieved"):
        await resolver.term_map(closed_port_url())


@pytest.mark.parametrize(
    "body",
    [
        b"this is { not json",
        b'{"note": "no context member here"}',
        b"[1, 2]",
        b'{"@context": 42}',
        b'{"@context": {"speed": 7}}',
    ],
)
async def test_invalid_remote_documents_are_bad_request_data(
    server: ContextServer, resolver: ContextResolver, body: bytes
) -> None:
    # NGSI-LD 1.8 §5.5.6, suite 556_01: retrieved but invalid -> BadRequestData, not 504
    url = server.serve("/invalid.jsonld", body)
    with pytest.raises(BadRequestData):
        await resolver.term_map(url)


@pytest.mark.parametrize("context", [42, True, ["https://ex.org/c", 7], [["nested"]]])
async def test_invalid_request_contexts_are_bad_request_data(
    resolver: ContextResolver, context: Any
) -> None:
    with pytest.raises(BadRequestData):
        await resolver.term_map(context)


async def test_relative_reference_at_top_level_is_not_available(resolver: ContextResolver) -> None:
    with pytest.raises(LdContextNotAvailable, match="absolute"):
        await resolver.term_map("/ngsi-ld/v1/jsonldContexts/abc")


async def test_nested_references_are_resolved_relative_to_their_document(
    server: ContextServer, resolver: ContextResolver
) -> None:
    server.serve(
        "/base/b.jsonld", {"@context": {"speed": "https://b.org/speed", "b": "https://b.org/"}}
    )
    server.serve(
        "/base/a.jsonld",
        {"@context": ["b.jsonld", {"speed": "b:fast"}, CORE_CONTEXT_URL]},
    )
    tm = await resolver.term_map(server.url("/base/a.jsonld"))
    assert tm.expand_term("speed") == "https://b.org/fast"  # later definitions win
    assert tm.expand_term("b:slow") == "https://b.org/slow"
    listed = resolver.list(kind="Cached")
    assert server.url("/base/a.jsonld") in listed
    assert server.url("/base/b.jsonld") in listed


async def test_recursive_inclusion_is_bad_request_data(
    server: ContextServer, resolver: ContextResolver
) -> None:
    server.serve("/loop/a.jsonld", {"@context": ["b.jsonld"]})
    server.serve("/loop/b.jsonld", {"@context": ["a.jsonld", {"x": "https://x.org/"}]})
    with pytest.raises(BadRequestData, match="recursive"):
        await resolver.term_map(server.url("/loop/a.jsonld"))


async def test_import_merges_the_imported_context(
    server: ContextServer, resolver: ContextResolver
) -> None:
    base = server.serve(
        "/imp.jsonld", {"@context": {"a": "https://a.org/a", "b": "https://a.org/b"}}
    )
    tm = await resolver.term_map({"@import": base, "b": "https://mine.org/b"})
    assert tm.expand_term("a") == "https://a.org/a"
    assert tm.expand_term("b") == "https://mine.org/b"


def write_preload(directory: Path) -> None:
    shutil.copy(FIXTURES / "ngsi-ld-test-suite.jsonld", directory / "suite.jsonld")
    shutil.copy(FIXTURES / "ngsi-ld-test-suite-compound.jsonld", directory / "compound.jsonld")
    index = {SUITE_URL: "suite.jsonld", COMPOUND_URL: "compound.jsonld"}
    (directory / "index.json").write_text(json.dumps(index))


async def test_preload_directory_works_with_the_network_refused(tmp_path: Path) -> None:
    write_preload(tmp_path)
    res = ContextResolver(preload_dir=tmp_path, allow_remote=False)
    tm = await res.term_map(COMPOUND_URL)  # nested: compound -> suite + core v1.8
    assert tm.expand_term("OffStreetParking") == SUITE + "OffStreetParking"
    assert tm.expand_term("location") == NGSI + "location"
    assert res.get(SUITE_URL, details=True)["extraInfo"] == {"preloaded": True}
    with pytest.raises(LdContextNotAvailable, match="disabled"):
        await res.term_map("https://example.org/not-preloaded.jsonld")
    await res.aclose()


async def test_cache_ttl_refetches_and_serves_stale_on_error(server: ContextServer) -> None:
    now = [1_000_000.0]
    res = ContextResolver(preload_dir=None, cache_ttl=60, fetch_timeout=0.5, clock=lambda: now[0])
    url = server.serve("/ttl.jsonld", {"@context": {"speed": "https://one.org/speed"}})
    assert (await res.term_map(url)).expand_term("speed") == "https://one.org/speed"
    assert "expiresAt" in res.get(url, details=True)
    now[0] += 30
    await res.term_map(url)
    assert server.hits["/ttl.jsonld"] == 1
    server.serve("/ttl.jsonld", {"@context": {"speed": "https://two.org/speed"}})
    now[0] += 31
    assert (await res.term_map(url)).expand_term("speed") == "https://two.org/speed"
    assert server.hits["/ttl.jsonld"] == 2
    server.serve("/ttl.jsonld", b"gone", status=500)
    now[0] += 61
    assert (await res.term_map(url)).expand_term("speed") == "https://two.org/speed"
    await res.aclose()


# ------------------------------------------------------------------ the registry (§5.13)


async def test_add_hosted_then_serve_and_list(resolver: ContextResolver) -> None:
    document = fixture("@context-minimal-valid.json")
    url = await resolver.add(document)
    assert url.startswith("http://broker" + HOSTED_PATH)
    location = hosted_location(url)
    local_id = location.removeprefix(HOSTED_PATH)
    assert resolver.get(local_id) == document
    assert resolver.get(url) == document
    assert resolver.get(location) == document
    details = resolver.get(local_id, details=True)
    assert details["kind"] == "Hosted"
    assert details["URL"] == url
    assert details["localId"] == local_id
    assert set(details) <= DETAIL_KEYS
    assert details["createdAt"].endswith("Z")
    assert url in resolver.list()
    assert resolver.list(kind="Cached") == [CORE_CONTEXT_URL]
    assert [d["URL"] for d in resolver.list(details=True, kind="Hosted")] == [url]


async def test_hosted_context_with_urls_caches_them_when_added(
    server: ContextServer, resolver: ContextResolver
) -> None:
    suite = server.serve("/suite.jsonld", fixture("ngsi-ld-test-suite.jsonld"))
    other = server.serve("/other.jsonld", {"@context": {"extra": "https://x.org/extra"}})
    url = await resolver.add({"@context": [suite, other]})
    assert resolver.get(url, details=True)["kind"] == "Hosted"
    # the referenced contexts are fetched when the hosted one is added (ETSI 050_04_01)
    assert suite in resolver.list()
    requests_after_add = sum(server.hits.values())
    # the broker's own hosted URL resolves locally whatever host name the client uses
    tm = await resolver.term_map("http://localhost:9090" + hosted_location(url))
    assert tm.expand_term("brandName") == SUITE + "brandName"
    assert tm.expand_term("extra") == "https://x.org/extra"
    for cached in (suite, other):
        assert resolver.get(cached, details=True)["kind"] == "Cached"
    # using the hosted context fetched nothing more
    assert sum(server.hits.values()) == requests_after_add
    # one serve (above) and one use under another host name
    assert resolver.get(url, details=True)["numberOfHits"] == 2


async def test_unknown_hosted_url_on_this_broker_is_not_available(
    resolver: ContextResolver,
) -> None:
    with pytest.raises(LdContextNotAvailable, match="no @context is hosted"):
        await resolver.term_map("http://broker" + HOSTED_PATH + "nope")


@pytest.mark.parametrize(
    ("name", "error"),
    [
        ("@context-incorrect.json", InvalidRequest),
        ("@context-invalid-number.json", BadRequestData),
        ("@context-invalid-boolean.json", BadRequestData),
        ("@context-invalid-array-item.json", BadRequestData),
    ],
)
async def test_add_rejects_invalid_payloads(
    resolver: ContextResolver, name: str, error: type[Exception]
) -> None:
    # suite 050_02 (InvalidRequest) and 5132_01 (BadRequestData); nothing is stored
    with pytest.raises(error):
        await resolver.add(fixture(name))
    assert resolver.list() == [CORE_CONTEXT_URL]


async def test_add_rejects_non_objects_and_bad_definitions(resolver: ContextResolver) -> None:
    with pytest.raises(InvalidRequest):
        await resolver.add(["not", "an", "object"])
    with pytest.raises(BadRequestData):
        await resolver.add({"@context": {"a": {"@id": "https://x.org/", "@prefix": "maybe"}}})


async def test_number_of_hits_counts_uses_and_serves(resolver: ContextResolver) -> None:
    url = await resolver.add(fixture("@context-minimal-valid.json"))
    assert resolver.get(url, details=True)["numberOfHits"] == 0  # suite 053_04 setup
    await resolver.term_map(url)
    details = resolver.get(url, details=True)
    assert details["numberOfHits"] == 2
    assert "lastUsage" in details


async def test_kind_filter_is_validated(resolver: ContextResolver) -> None:
    with pytest.raises(BadRequestData):
        resolver.list(kind="other")


async def test_unknown_context_is_resource_not_found(resolver: ContextResolver) -> None:
    with pytest.raises(ResourceNotFound):
        resolver.get("wrong_id_context")
    with pytest.raises(ResourceNotFound):
        resolver.get("wrong_id_context", details=True)


async def test_delete_hosted(resolver: ContextResolver) -> None:
    url = await resolver.add(fixture("@context-minimal-valid.json"))
    tm = await resolver.term_map(url)
    assert tm.expand_term("A1") == "urn:ngsi-ld:attributes:A1"
    with pytest.raises(BadRequestData):
        await resolver.delete(url, reload=True)  # suite 051_04_05
    await resolver.delete(hosted_location(url).removeprefix(HOSTED_PATH))
    with pytest.raises(ResourceNotFound):
        resolver.get(url)
    with pytest.raises(LdContextNotAvailable):
        await resolver.term_map(url)  # a memoised term map must not outlive its context


async def test_delete_unknown(resolver: ContextResolver) -> None:
    # suite 051_02 and 051_04
    with pytest.raises(ResourceNotFound):
        await resolver.delete("1234567890123456")
    with pytest.raises(BadRequestData):
        await resolver.delete("wrong_id_context", reload=True)


async def test_core_context_is_listed_and_protected(resolver: ContextResolver) -> None:
    v16 = f"{NGSI}v1/ngsi-ld-core-context-v1.6.jsonld"
    assert resolver.list() == [CORE_CONTEXT_URL]
    details = resolver.get(v16, details=True)  # suite 051_09
    assert details["kind"] == "Cached"
    assert details["URL"] == CORE_CONTEXT_URL
    assert "@context" in resolver.get(CORE_CONTEXT_URL)
    for reload in (False,):
        with pytest.raises(BadRequestData):  # suite 051_08
            await resolver.delete(v16, reload=reload)
    await resolver.delete(v16, reload=True)  # a no-op: the built-in copy is authoritative
    assert resolver.list() == [CORE_CONTEXT_URL]


async def test_delete_cached_then_next_use_refetches(
    server: ContextServer, resolver: ContextResolver
) -> None:
    url = server.serve("/c.jsonld", {"@context": {"speed": "https://one.org/speed"}})
    await resolver.term_map(url)
    await resolver.delete(url)
    assert url not in resolver.list()
    await resolver.term_map(url)
    assert server.hits["/c.jsonld"] == 2


async def test_reload_cached(server: ContextServer, resolver: ContextResolver) -> None:
    url = server.serve("/r.jsonld", {"@context": {"speed": "https://one.org/speed"}})
    assert (await resolver.term_map(url)).expand_term("speed") == "https://one.org/speed"
    server.serve("/r.jsonld", {"@context": {"speed": "https://two.org/speed"}})
    await resolver.delete(url, reload=True)
    assert (await resolver.term_map(url)).expand_term("speed") == "https://two.org/speed"


async def test_failed_reload_keeps_the_cached_context(
    server: ContextServer, resolver: ContextResolver
) -> None:
    # suite 051_05 / 5135_01: 504 LdContextNotAvailable, entry kept, plain delete still works
    url = server.serve("/k.jsonld", fixture("@context-minimal-valid.json"))
    await resolver.term_map(url)
    del server.routes["/k.jsonld"]
    with pytest.raises(LdContextNotAvailable):
        await resolver.delete(url, reload=True)
    assert resolver.get(url, details=True)["kind"] == "Cached"
    assert (await resolver.term_map(url)).expand_term("A3") == "urn:ngsi-ld:attributes:A3"
    await resolver.delete(url)
    with pytest.raises(ResourceNotFound):
        resolver.get(url, details=True)


async def test_implicitly_created_contexts(
    server: ContextServer, resolver: ContextResolver
) -> None:
    suite = server.serve("/suite.jsonld", fixture("ngsi-ld-test-suite.jsonld"))
    compound = [suite, {"extra": "https://x.org/extra"}]
    url = await resolver.implicit(compound)
    assert await resolver.implicit(json.loads(json.dumps(compound))) == url
    assert await resolver.implicit(suite) == suite
    assert await resolver.implicit([suite]) == suite
    assert await resolver.implicit(None) == CORE_CONTEXT_URL
    details = resolver.get(url, details=True)
    assert details["kind"] == "ImplicitlyCreated"
    assert resolver.list(kind="ImplicitlyCreated") == [url]
    assert resolver.get(url) == {"@context": compound}
    tm = await resolver.term_map(url)
    assert tm.expand_term("speed") == SUITE + "speed"
    assert tm.expand_term("extra") == "https://x.org/extra"
    with pytest.raises(BadRequestData):  # suite 051_07
        await resolver.delete(url, reload=True)
    await resolver.delete(details["localId"])  # suite 051_06
    assert resolver.list(kind="ImplicitlyCreated") == []


async def test_tenants_are_isolated(resolver: ContextResolver) -> None:
    # suite 5134_01: another tenant can neither serve, list, use nor delete the entry
    url = await resolver.add(
        {"@context": {"TenantPrivateTerm": "urn:ngsi-ld:attributes:T"}}, tenant="a"
    )
    local_id = hosted_location(url).removeprefix(HOSTED_PATH)
    with pytest.raises(ResourceNotFound):
        resolver.get(local_id, tenant="b")
    with pytest.raises(ResourceNotFound):
        resolver.get(local_id, details=True, tenant="b")
    assert url not in resolver.list(tenant="b")
    assert all(d["localId"] != local_id for d in resolver.list(details=True, tenant="b"))
    with pytest.raises(LdContextNotAvailable):
        await resolver.term_map(url, tenant="b")
    with pytest.raises(ResourceNotFound):
        await resolver.delete(local_id, tenant="b")
    assert "TenantPrivateTerm" in json.dumps(resolver.get(local_id, tenant="a"))
    tm = await resolver.term_map(url, tenant="a")
    assert tm.expand_term("TenantPrivateTerm") == "urn:ngsi-ld:attributes:T"
    await resolver.delete(local_id, tenant="a")


class RecordingPersistence:
    def __init__(self) -> None:
        self.events: list[tuple[str, str, str, str]] = []

    async def save(self, tenant: str, entry: ContextEntry) -> None:
        self.events.append(("save", tenant, entry.kind, entry.url))

    async def remove(self, tenant: str, entry: ContextEntry) -> None:
        self.events.append(("remove", tenant, entry.kind, entry.url))


async def test_persistence_sees_every_change_and_restore_puts_entries_back(
    server: ContextServer,
) -> None:
    persistence = RecordingPersistence()
    res = ContextResolver(preload_dir=None, persistence=persistence, public_base_url="http://b")
    hosted = await res.add({"@context": {"a": "https://a.org/a"}}, tenant="t")
    cached = server.serve("/p.jsonld", {"@context": {"p": "https://p.org/p"}})
    await res.term_map(cached, tenant="t")
    await res.delete(hosted, tenant="t")
    assert persistence.events == [
        ("save", "t", "Hosted", hosted),
        ("save", "t", "Cached", cached),
        ("remove", "t", "Hosted", hosted),
    ]
    await res.aclose()

    fresh = ContextResolver(preload_dir=None, allow_remote=False)
    entry = ContextEntry(
        url="http://b" + HOSTED_PATH + "kept",
        local_id="kept",
        kind="Hosted",
        document={"@context": {"k": "https://k.org/k"}},
        created_at=datetime(2026, 1, 1, tzinfo=UTC),
    )
    fresh.restore("t", entry)
    tm = await fresh.term_map(entry.url, tenant="t")
    assert tm.expand_term("k") == "https://k.org/k"


async def test_malformed_context_url_is_not_available_not_a_crash() -> None:
    # a URL with a broken port (seen from the ETSI suite's doubled URLs) must be a client-side
    # LdContextNotAvailable, never an unhandled httpx.InvalidURL (a 500)
    from smartregion.broker.contexts import ContextResolver
    from smartregion.errors import LdContextNotAvailable

    resolver = ContextResolver(preload_dir=None)
    try:
        with pytest.raises(LdContextNotAvailable):
            await resolver.term_map("http://127.0.0.1:5http://127.0.0.1:5/api/v1/context.jsonld")
    finally:
        await resolver.aclose()
