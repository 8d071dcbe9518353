"""A static LDES server for the replication tests: fixture pages over real HTTP, in a thread.

Routes are mutable while it runs (a page can grow between polls), and each can be told to
answer some requests with another status first (429 with Retry-After), to redirect, to hold a
request until released (to kill a client while it waits), and to honour ETags (304).
"""

from __future__ import annotations

import contextlib
import hashlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

FIXTURES = Path(__file__).parent.parent / "fixtures" / "ldes"

MEDIA = {
    ".ttl": "text/turtle",
    ".trig": "application/trig",
    ".nt": "application/n-triples",
    ".nq": "application/n-quads",
    ".jsonld": "application/ld+json",
}


@dataclass
class Route:
    """What one path answers."""

    status: int = 200
    body: bytes = b""
    media_type: str = "text/turtle"
    cache_control: str | None = None
    location: str | None = None
    etag: bool = False
    #: statuses (with their headers) to answer first, one request each
    before: list[tuple[int, dict[str, str]]] = field(default_factory=list)
    #: when set, a request waits for it (up to 30 s) before being answered
    hold: threading.Event | None = None
    #: set when a request for this path has arrived
    arrived: threading.Event = field(default_factory=threading.Event)


class StreamServer:
    """The server; `base` is its http://127.0.0.1:PORT."""

    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        #: (path, If-None-Match) of every request, in order
        self.log: list[tuple[str, str | None]] = []
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                return

            def do_GET(self) -> None:
                # the client may go away (a test killed it)
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    self.answer()

            def answer(self) -> None:
                path = self.path.split("?", 1)[0]
                with server.lock:
                    server.log.append((path, self.headers.get("If-None-Match")))
                    route = server.routes.get(path)
                    first = route.before.pop(0) if route is not None and route.before else None
                if route is None:
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                route.arrived.set()
                if route.hold is not None:
                    route.hold.wait(30)
                if first is not None:
                    self.send_response(first[0])
                    for name, value in first[1].items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if route.location is not None:
                    self.send_response(route.status)
                    self.send_header("Location", route.location)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                tag = f'"{hashlib.sha1(route.body).hexdigest()}"' if route.etag else None
                if tag is not None and self.headers.get("If-None-Match") == tag:
                    self.send_response(304)
                    self.send_header("ETag", tag)
                    if route.cache_control:
                        self.send_header("Cache-Control", route.cache_control)
                    self.end_headers()
                    return
                self.send_response(route.status)
                if route.status == 200:
                    self.send_header("Content-Type", route.media_type)
                    if route.cache_control:
                        self.send_header("Cache-Control", route.cache_control)
                    if tag is not None:
                        self.send_header("ETag", tag)
                self.send_header("Content-Length", str(len(route.body)))
                self.end_headers()
                self.wfile.write(route.body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        for route in self.routes.values():
            if route.hold is not None:
                route.hold.set()
        self.httpd.shutdown()
        self.httpd.server_close()

    def fixture(self, name: str) -> bytes:
        """A fixture file with {BASE} filled in."""
        return (FIXTURES / name).read_bytes().replace(b"{BASE}", self.base.encode())

    def page(
        self, path: str, name: str, cache_control: str | None = None, **options: object
    ) -> Route:
        """Serve fixture `name` at `path` with the media type of its extension."""
        route = Route(
            body=self.fixture(name),
            media_type=MEDIA[Path(name).suffix],
            cache_control=cache_control,
            **options,  # type: ignore[arg-type]
        )
        self.routes[path] = route
        return route

    def requests(self, path: str) -> int:
        with self.lock:
            return sum(1 for p, _ in self.log if p == path)

    def fixture_stream(self) -> None:
        """The stream of tests/fixtures/ldes/README.md."""
        self.page("/stream", "stream.ttl", "max-age=60")
        self.page("/pages/1", "page1.ttl", "public, max-age=604800, immutable")
        self.page("/pages/old", "old.nt", "public, max-age=604800, immutable")
        self.routes["/pages/2"] = Route(status=301, location=f"{self.base}/pages/2-moved")
        self.page("/pages/2-moved", "page2.trig", "public, max-age=604800, immutable")
        self.routes["/pages/gone"] = Route(status=410)
        self.page("/pages/3", "page3.nq", "immutable")
        self.page("/pages/latest", "latest.jsonld", "max-age=1", etag=True)


def serving() -> Iterator[StreamServer]:
    """A started server with the fixture stream; stopped afterwards (a fixture body)."""
    server = StreamServer()
    server.fixture_stream()
    server.start()
    try:
        yield server
    finally:
        server.stop()
