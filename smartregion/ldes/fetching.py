"""HTTP for the LDES client: one page (TREE node) at a time, as an HTTP cache would fetch it.

What a fetch does (LDES §Consuming, TREE §Traversing; RFC 9111 for caching):

- asks for any of the five RDF media types (`ACCEPT`) and parses what comes back with
  pyoxigraph by the response's `Content-Type`, relative IRIs against the final URL;
- follows redirects (3xx); the page is then the FINAL URL, which is also the base IRI;
- revalidates what it fetched before: `If-None-Match` (ETag) and `If-Modified-Since`; a 304
  means unchanged;
- reads `Cache-Control`: `immutable` (the page never changes: never fetch it again), `max-age`
  (minus `Age`) or `Expires` (when to look again), `no-cache`/`no-store` (look again at once);
- 410 Gone: the page is no more (the caller drops it from its frontier, not an error);
- 429 and 5xx, and transport errors: retried with exponential back-off, waiting at least what
  `Retry-After` asks (seconds or an HTTP date), up to `retries` times;
- any other status, an unknown media type or a document that does not parse: `FetchError`.

JSON-LD documents may name remote `@context`s: the NGSI-LD core context is taken from the
package; others are fetched once per client (with the same client and limits) and inlined,
since the parser loads no documents itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import email.utils
import functools
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urljoin

import httpx
import orjson
import pyoxigraph as ox

from smartregion.core.jsonld import CORE_CONTEXT_URLS, core_context_document
from smartregion.errors import SmartRegionError

__all__ = [
    "ACCEPT",
    "MEDIA_TYPES",
    "FetchError",
    "Page",
    "PageFetcher",
    "cache_policy",
]

#: the RDF serialisations a page may come in (LDES/TREE mandate none; these five are common)
MEDIA_TYPES: dict[str, ox.RdfFormat] = {
    "application/n-quads": ox.RdfFormat.N_QUADS,
    "application/n-triples": ox.RdfFormat.N_TRIPLES,
    "application/trig": ox.RdfFormat.TRIG,
    "text/turtle": ox.RdfFormat.TURTLE,
    "application/ld+json": ox.RdfFormat.JSON_LD,
    # JSON-LD served as plain JSON is common enough to accept
    "application/json": ox.RdfFormat.JSON_LD,
}
#: the line-based formats first: they are the fastest to parse
ACCEPT = (
    "application/n-quads, application/trig;q=0.95, application/n-triples;q=0.9,"
    " text/turtle;q=0.9, application/ld+json;q=0.8"
)
_RETRIED = frozenset({429, 500, 502, 503, 504})
_MAX_CONTEXT_DEPTH = 8


class FetchError(SmartRegionError):
    """A page could not be fetched or read; names the URL."""

    def __init__(self, url: str, detail: str) -> None:
        super().__init__(f"{url}: {detail}")
        self.url = url


@dataclass(slots=True)
class Page:
    """The outcome of fetching one page."""

    #: the URL asked for
    url: str
    #: "ok" (quads parsed), "not-modified" (304) or "gone" (410)
    status: str
    #: the final URL after redirects (the page's identity and base IRI)
    final_url: str = ""
    quads: list[ox.Quad] = field(default_factory=list)
    etag: str | None = None
    last_modified: str | None = None
    immutable: bool = False
    #: seconds the page stays fresh (None: the response said nothing)
    max_age: float | None = None
    media_type: str = ""
    #: bytes of the body
    size: int = 0


def cache_policy(headers: httpx.Headers, now: float) -> tuple[bool, float | None]:
    """(immutable, seconds fresh) from Cache-Control, Age and Expires (RFC 9111 §4.2.1)."""
    immutable = False
    max_age: float | None = None
    for raw in headers.get_list("cache-control", split_commas=True):
        name, _, value = raw.strip().partition("=")
        name = name.strip().lower()
        if name == "immutable":
            immutable = True
        elif name in ("no-cache", "no-store"):
            max_age = 0.0
        elif name in ("max-age", "s-maxage") and max_age != 0.0:
            try:
                max_age = float(int(value.strip().strip('"')))
            except ValueError:
                continue
    if max_age is not None:
        with contextlib.suppress(ValueError):
            max_age = max(0.0, max_age - float(int(headers.get("age", "0"))))
    elif "expires" in headers:
        try:
            expires = email.utils.parsedate_to_datetime(headers["expires"]).timestamp()
            max_age = max(0.0, expires - now)
        except (TypeError, ValueError):
            max_age = 0.0  # RFC 9111 §5.3: an invalid date means already expired
    return immutable, max_age


@functools.cache
def _core_context() -> dict[str, Any]:
    """The packaged NGSI-LD core context, for parsing: without the remote contexts its
    scoped term definitions name (`ngsildproof` imports the W3C data-integrity context, which
    the parser would otherwise need to load, though no member uses it)."""
    context = copy.deepcopy(dict(core_context_document()["@context"]))
    for term, definition in context.items():
        if isinstance(definition, dict) and isinstance(definition.get("@context"), list):
            inline = [c for c in definition["@context"] if not isinstance(c, str)]
            context[term] = {**definition, "@context": inline}
    return context


def _retry_after(headers: httpx.Headers, now: float) -> float | None:
    value = headers.get("retry-after")
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        return max(0.0, email.utils.parsedate_to_datetime(value).timestamp() - now)
    except (TypeError, ValueError):
        return None


class PageFetcher:
    """Fetches and parses pages over one HTTP client (see the module docstring)."""

    def __init__(
        self,
        client: httpx.AsyncClient | None = None,
        *,
        retries: int = 6,
        backoff: float = 0.5,
        max_wait: float = 300.0,
        timeout: float = 30.0,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._own = client is None
        self.client = client or httpx.AsyncClient(
            timeout=timeout,
            follow_redirects=True,
            headers={"User-Agent": "smartregion-ldes-client"},
        )
        self.retries = retries
        self.backoff = backoff
        self.max_wait = max_wait
        self.sleep = sleep
        self._contexts: dict[str, Any] = {}
        #: requests made (each try counts), for the progress report
        self.requests = 0

    async def aclose(self) -> None:
        """Close the HTTP client when this fetcher made it."""
        if self._own:
            await self.client.aclose()

    async def _get(self, url: str, headers: dict[str, str]) -> httpx.Response:
        """GET with retries on 429, 5xx and transport errors (module docstring)."""
        attempt = 0
        while True:
            self.requests += 1
            try:
                response = await self.client.get(url, headers=headers, follow_redirects=True)
            except httpx.TransportError as exc:
                if attempt >= self.retries:
                    raise FetchError(url, f"unreachable after {attempt + 1} tries: {exc}") from exc
                wait: float | None = None
            else:
                if response.status_code not in _RETRIED:
                    return response
                if attempt >= self.retries:
                    raise FetchError(url, f"HTTP {response.status_code} after {attempt + 1} tries")
                wait = _retry_after(response.headers, time.time())
            backoff = self.backoff * (2**attempt) * (0.5 + random.random() / 2)
            delay = max(wait, backoff) if wait is not None else backoff
            await self.sleep(min(delay, self.max_wait))
            attempt += 1

    async def fetch(
        self, url: str, *, etag: str | None = None, last_modified: str | None = None
    ) -> Page:
        """Fetch one page, revalidating with the validators of an earlier fetch."""
        headers = {"Accept": ACCEPT}
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        response = await self._get(url, headers)
        final = str(response.url)
        immutable, max_age = cache_policy(response.headers, time.time())
        page = Page(
            url,
            "ok",
            final_url=final,
            etag=response.headers.get("etag", etag),
            last_modified=response.headers.get("last-modified", last_modified),
            immutable=immutable,
            max_age=max_age,
        )
        if response.status_code == 304:
            page.status = "not-modified"
            return page
        if response.status_code == 410:
            page.status = "gone"
            return page
        if response.status_code != 200:
            raise FetchError(url, f"HTTP {response.status_code}")
        media = response.headers.get("content-type", "").split(";", 1)[0].strip().lower()
        fmt = MEDIA_TYPES.get(media)
        if fmt is None:
            raise FetchError(url, f"unsupported media type {media or '(none)'!r}")
        body = response.content
        page.media_type = media
        page.size = len(body)
        if fmt == ox.RdfFormat.JSON_LD:
            body = await self._inline_contexts(body, final)
        try:
            page.quads = list(ox.parse(body, format=fmt, base_iri=final))
        except (SyntaxError, ValueError) as exc:
            raise FetchError(url, f"not valid {media}: {exc}") from exc
        return page

    # --- JSON-LD contexts -------------------------------------------------------------------

    async def _inline_contexts(self, body: bytes, base: str) -> bytes:
        try:
            document = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise FetchError(base, f"not JSON: {exc}") from exc
        document = await self._inline(document, base, 0)
        return orjson.dumps(document)

    async def _inline(self, node: Any, base: str, depth: int) -> Any:
        if isinstance(node, list):
            return [await self._inline(item, base, depth) for item in node]
        if not isinstance(node, dict):
            return node
        out: dict[str, Any] = {}
        for key, value in node.items():
            if key == "@context":
                out[key] = await self._context(value, base, depth)
            else:
                out[key] = await self._inline(value, base, depth)
        return out

    async def _context(self, value: Any, base: str, depth: int) -> Any:
        if isinstance(value, list):
            return [await self._context(item, base, depth) for item in value]
        if isinstance(value, dict):
            # scoped contexts inside term definitions may name remote ones too
            return await self._inline(value, base, depth)
        if not isinstance(value, str):
            return value
        url = urljoin(base, value)
        if url in CORE_CONTEXT_URLS:
            return _core_context()
        if depth >= _MAX_CONTEXT_DEPTH:
            raise FetchError(url, "@context documents nested too deeply")
        cached = self._contexts.get(url)
        if cached is None:
            response = await self._get(url, {"Accept": "application/ld+json, application/json"})
            if response.status_code != 200:
                raise FetchError(url, f"@context: HTTP {response.status_code}")
            try:
                document = orjson.loads(response.content)
            except orjson.JSONDecodeError as exc:
                raise FetchError(url, f"@context is not JSON: {exc}") from exc
            if not isinstance(document, dict) or "@context" not in document:
                raise FetchError(url, "not a JSON-LD context document")
            cached = await self._context(document["@context"], str(response.url), depth + 1)
            self._contexts[url] = cached
        return cached
