"""@context resolution and the @context registry (NGSI-LD 1.8 §5.5.7, §6.3.5, §5.13).

`ContextResolver.term_map` turns the `@context` of a request (a Link header or a body's
`@context`: None, a URL, an object, or an array of them) into a cached `TermMap`. URL look-up
order: the built-in core context (every published core URL) -> this tenant's registry (Hosted,
ImplicitlyCreated and already Cached contexts) -> the preload directory -> an HTTP GET.

Preload directory layout: `<dir>/index.json` maps URLs to file names relative to `<dir>`,
e.g. `{"https://example.org/ctx.jsonld": "example-ctx.jsonld"}`; each file is a JSON-LD
document with an `@context` member. Preloaded contexts work with remote fetching disabled.

Errors (NGSI-LD 1.8 §5.5.6): a context that cannot be retrieved (network failure, timeout,
HTTP error, over the size limit, remote fetching disabled) is `LdContextNotAvailable`; one that
was retrieved but is not a valid JSON-LD context (not JSON, no `@context` member, wrong shapes,
recursive inclusion) is `BadRequestData`.

The registry behind `/jsonldContexts` (§5.13) is per tenant (§5.5.10): one tenant never sees,
serves or deletes another's entries. Usage counting: `numberOfHits` grows by one each time a
request's @context references the entry directly and each time the entry is served (`get`);
`get` reports the count from before its own hit.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import copy
import hashlib
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urljoin, urlsplit

import httpx
import orjson

from smartregion.core.jsonld import (
    CORE_CONTEXT_URL,
    CORE_CONTEXT_URLS,
    TermMap,
    core_context_document,
    core_term_map,
    term_map_for,
    validate_context,
)
from smartregion.errors import (
    BadRequestData,
    InvalidRequest,
    LdContextNotAvailable,
    ResourceNotFound,
    SmartRegionError,
)
from smartregion.governance import Forbidden, WriteAccess
from smartregion.storage.base import Store

__all__ = [
    "HOSTED_PATH",
    "KINDS",
    "ContextEntry",
    "ContextPersistence",
    "ContextResolver",
    "StoreContextPersistence",
    "hosted_location",
]

#: where hosted contexts are served, relative to the public base URL (NGSI-LD 1.8 §6.29)
HOSTED_PATH = "/ngsi-ld/v1/jsonldContexts/"
#: the registry's entry kinds (NGSI-LD 1.8 §5.2.41 "kind")
KINDS = ("Hosted", "Cached", "ImplicitlyCreated")
CORE_LOCAL_ID = "ngsi-ld-core-context-v1.9"

_MAX_DEPTH = 8  # nested @context references followed before giving up
_MAX_DOCUMENTS = 32  # context documents one resolution may load
_RESOLVED_LIMIT = 1024  # memoised request contexts
_ACCEPT = "application/ld+json, application/json;q=0.9, */*;q=0.1"


def _format_time(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def hosted_location(url: str) -> str:
    """The Location header value for a hosted context URL (its path)."""
    return urlsplit(url).path


@dataclass(slots=True)
class ContextEntry:
    """One registered @context: its document and usage metadata (NGSI-LD 1.8 §5.2.41)."""

    url: str
    local_id: str
    kind: str
    document: dict[str, Any]
    created_at: datetime
    last_usage: datetime | None = None
    number_of_hits: int = 0
    #: wall-clock (epoch seconds) expiry of a Cached copy; None: never expires
    expires_at: float | None = None
    extra_info: dict[str, Any] | None = None
    #: the organisation that hosted it (Hosted contexts; None: hosted before owners were
    #: recorded, counted as the default organisation's); only its editors may delete it
    owner: str | None = None

    def details(self) -> dict[str, Any]:
        """The detail object listed by `GET /jsonldContexts?details=true`."""
        out: dict[str, Any] = {
            "URL": self.url,
            "localId": self.local_id,
            "kind": self.kind,
            "createdAt": _format_time(self.created_at),
            "numberOfHits": self.number_of_hits,
        }
        if self.last_usage is not None:
            out["lastUsage"] = _format_time(self.last_usage)
        if self.expires_at is not None:
            out["expiresAt"] = _format_time(datetime.fromtimestamp(self.expires_at, UTC))
        if self.extra_info:
            out["extraInfo"] = dict(self.extra_info)
        return out


class ContextPersistence(Protocol):
    """Where registry changes go to survive a restart (implemented over the Store later)."""

    async def save(self, tenant: str, entry: ContextEntry) -> None:
        """Store (or replace) an entry."""

    async def remove(self, tenant: str, entry: ContextEntry) -> None:
        """Forget an entry."""


@dataclass(slots=True)
class _Registry:
    by_url: dict[str, ContextEntry] = field(default_factory=dict)
    by_local_id: dict[str, ContextEntry] = field(default_factory=dict)

    def put(self, entry: ContextEntry) -> None:
        old = self.by_url.pop(entry.url, None)
        if old is not None:
            self.by_local_id.pop(old.local_id, None)
        self.by_url[entry.url] = entry
        self.by_local_id[entry.local_id] = entry

    def drop(self, entry: ContextEntry) -> None:
        self.by_url.pop(entry.url, None)
        self.by_local_id.pop(entry.local_id, None)


@dataclass(frozen=True, slots=True)
class _Resolved:
    term_map: TermMap
    direct: tuple[str, ...]  # URLs the request referenced itself (they get the hits)
    generation: int
    expires_at: float | None


class ContextResolver:
    """Resolves request @contexts to term maps and keeps the `/jsonldContexts` registry."""

    def __init__(
        self,
        *,
        preload_dir: Path | None,
        fetch_timeout: float = 5.0,
        max_bytes: int = 1_000_000,
        allow_remote: bool = True,
        cache_ttl: float | None = None,
        public_base_url: str = "",
        persistence: ContextPersistence | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._preload_dir = preload_dir
        self._preload_index: dict[str, Path] | None = None
        self._fetch_timeout = fetch_timeout
        self._max_bytes = max_bytes
        self._allow_remote = allow_remote
        self._cache_ttl = cache_ttl
        self.public_base_url = public_base_url.rstrip("/")
        self._persistence = persistence
        self._clock = clock
        self._client: httpx.AsyncClient | None = None
        self._registries: dict[str, _Registry] = {}
        self._resolved: dict[tuple[str, Any], _Resolved] = {}
        self._generation = 0
        self._locks: dict[tuple[str, str], asyncio.Lock] = {}
        self._started = datetime.fromtimestamp(clock(), UTC)

    # ------------------------------------------------------------------ resolution

    async def term_map(self, context: Any | None, *, tenant: str = "") -> TermMap:
        """The term map of a request's @context (None: the core context alone)."""
        if context is None:
            return core_term_map()
        key: Any
        if isinstance(context, str):
            key = context
        else:
            try:
                key = orjson.dumps(context, option=orjson.OPT_SORT_KEYS)
            except TypeError as exc:
                raise BadRequestData(f"invalid @context: {exc}") from exc
        now = self._clock()
        resolved = self._resolved.get((tenant, key))
        if (
            resolved is None
            or resolved.generation != self._generation
            or (resolved.expires_at is not None and resolved.expires_at <= now)
        ):
            resolved = await self._resolve(context, tenant)
            if len(self._resolved) >= _RESOLVED_LIMIT:
                self._resolved.pop(next(iter(self._resolved)))
            self._resolved[(tenant, key)] = resolved
        registry = self._registry(tenant)
        for url in resolved.direct:
            entry = registry.by_url.get(url) or self._hosted_entry(registry, url)
            if entry is not None:
                self._hit(entry)
        return resolved.term_map

    async def _resolve(self, context: Any, tenant: str) -> _Resolved:
        validate_context(context)
        generation = self._generation
        items = context if isinstance(context, list) else [context]
        direct = tuple(
            item for item in items if isinstance(item, str) and item not in CORE_CONTEXT_URLS
        )
        for url in direct:
            if not _is_absolute_url(url):
                # NGSI-LD requests have no document base to resolve a relative reference against
                raise LdContextNotAvailable(f"@context reference {url!r} is not an absolute URL")
        walk = _Walk()
        await self._collect(context, tenant, None, (), walk)
        return _Resolved(term_map_for(walk.definitions), direct, generation, walk.expires_at)

    async def _collect(
        self, context: Any, tenant: str, base: str | None, chain: tuple[str, ...], walk: _Walk
    ) -> None:
        if context is None:
            walk.definitions.append(None)
        elif isinstance(context, str):
            url = urljoin(base, context) if base else context
            if url in CORE_CONTEXT_URLS:
                return  # the core context is always applied (NGSI-LD 1.8 §5.5.7)
            if url in chain:
                raise BadRequestData(f"invalid @context: recursive inclusion of {url}")
            if len(chain) >= _MAX_DEPTH:
                raise BadRequestData(
                    f"invalid @context: references nested deeper than {_MAX_DEPTH}"
                )
            walk.documents += 1
            if walk.documents > _MAX_DOCUMENTS:
                raise BadRequestData(f"invalid @context: more than {_MAX_DOCUMENTS} documents")
            entry = await self._load(url, tenant)
            if entry.expires_at is not None:
                walk.expires_at = min(walk.expires_at or entry.expires_at, entry.expires_at)
            await self._collect(entry.document["@context"], tenant, url, (*chain, url), walk)
        elif isinstance(context, list):
            for item in context:
                if isinstance(item, list):
                    raise BadRequestData("invalid @context: arrays cannot be nested")
                await self._collect(item, tenant, base, chain, walk)
        elif isinstance(context, Mapping):
            if "@import" in context:
                context = await self._import(context, tenant, base, chain, walk)
            walk.definitions.append(context)
        else:
            raise BadRequestData(f"invalid @context entry {context!r}")

    async def _import(
        self,
        context: Mapping[str, Any],
        tenant: str,
        base: str | None,
        chain: tuple[str, ...],
        walk: _Walk,
    ) -> Mapping[str, Any]:
        # JSON-LD 1.1 §4.1.2 step 5.6: the imported object is merged under the importing one
        target = context["@import"]
        if not isinstance(target, str):
            raise BadRequestData("invalid @context: @import must be a URL")
        url = urljoin(base, target) if base else target
        if url in CORE_CONTEXT_URLS:
            imported: Any = core_context_document()["@context"]
        else:
            walk.documents += 1
            entry = await self._load(url, tenant)
            imported = entry.document["@context"]
        if not isinstance(imported, Mapping) or "@import" in imported:
            raise BadRequestData(
                f"invalid @context: {url} cannot be imported (not a single object)"
            )
        merged = dict(imported)
        merged.update((k, v) for k, v in context.items() if k != "@import")
        return merged

    async def _load(self, url: str, tenant: str) -> ContextEntry:
        registry = self._registry(tenant)
        entry = registry.by_url.get(url) or self._hosted_entry(registry, url)
        if entry is not None:
            if entry.expires_at is not None and entry.expires_at <= self._clock():
                # stale-if-error: a stale copy beats failing every request
                with contextlib.suppress(LdContextNotAvailable, BadRequestData):
                    await self._refresh(entry, tenant)
            return entry
        if self.public_base_url and url.startswith(self.public_base_url + HOSTED_PATH):
            raise LdContextNotAvailable(f"no @context is hosted at {url}")
        lock = self._locks.setdefault((tenant, url), asyncio.Lock())
        try:
            async with lock:
                entry = registry.by_url.get(url)
                if entry is None:
                    document, extra, expires = await self._retrieve(url)
                    entry = ContextEntry(
                        url=url,
                        local_id=_cached_local_id(url),
                        kind="Cached",
                        document=document,
                        created_at=self._now(),
                        expires_at=expires,
                        extra_info=extra,
                    )
                    # no generation bump: an addition cannot invalidate a memoised term map
                    registry.put(entry)
                    if self._persistence is not None:
                        await self._persistence.save(tenant, entry)
        finally:
            if not lock.locked():
                self._locks.pop((tenant, url), None)
        return entry

    def _hosted_entry(self, registry: _Registry, url: str) -> ContextEntry | None:
        # a hosted/implicit context is recognised by its path whatever host name the client used
        path = urlsplit(url).path if "://" in url else url
        if path.startswith(HOSTED_PATH):
            return registry.by_local_id.get(path[len(HOSTED_PATH) :])
        return None

    async def _refresh(self, entry: ContextEntry, tenant: str) -> None:
        document, extra, expires = await self._retrieve(entry.url)
        entry.document = document
        entry.extra_info = extra
        entry.expires_at = expires
        entry.created_at = self._now()
        self._generation += 1
        if self._persistence is not None:
            await self._persistence.save(tenant, entry)

    async def _retrieve(
        self, url: str
    ) -> tuple[dict[str, Any], dict[str, Any] | None, float | None]:
        """A context document from the preload directory or the network, checked."""
        preloaded = await self._preloaded(url)
        if preloaded is not None:
            return _check_document(url, preloaded), {"preloaded": True}, None
        if not self._allow_remote:
            raise LdContextNotAvailable(
                f"@context {url} is not preloaded and remote @context retrieval is disabled"
            )
        raw = await self._fetch(url)
        expires = None if self._cache_ttl is None else self._clock() + self._cache_ttl
        return _check_document(url, raw), None, expires

    async def _preloaded(self, url: str) -> bytes | None:
        if self._preload_dir is None:
            return None
        if self._preload_index is None:
            self._preload_index = await asyncio.to_thread(_read_preload_index, self._preload_dir)
        path = self._preload_index.get(url)
        if path is None:
            return None
        try:
            return await asyncio.to_thread(path.read_bytes)
        except OSError as exc:
            raise LdContextNotAvailable(f"preloaded @context {url} cannot be read: {exc}") from exc

    async def _fetch(self, url: str) -> bytes:
        if urlsplit(url).scheme not in ("http", "https"):
            raise LdContextNotAvailable(f"@context {url} is not an http(s) URL")
        if self._client is None:
            self._client = httpx.AsyncClient(follow_redirects=True, max_redirects=5)
        try:
            # one deadline for the whole exchange: httpx's own timeouts are per read
            async with asyncio.timeout(self._fetch_timeout):
                async with self._client.stream(
                    "GET", url, headers={"Accept": _ACCEPT}, timeout=self._fetch_timeout
                ) as response:
                    if response.status_code != 200:
                        raise LdContextNotAvailable(
                            f"@context {url} could not be retrieved: HTTP {response.status_code}"
                        )
                    declared = response.headers.get("content-length", "")
                    if declared.isdigit() and int(declared) > self._max_bytes:
                        raise LdContextNotAvailable(self._too_large(url))
                    chunks: list[bytes] = []
                    size = 0
                    async for chunk in response.aiter_bytes():
                        size += len(chunk)
                        if size > self._max_bytes:
                            raise LdContextNotAvailable(self._too_large(url))
                        chunks.append(chunk)
        except (TimeoutError, httpx.TimeoutException) as exc:
            raise LdContextNotAvailable(
                f"@context {url} could not be retrieved within {self._fetch_timeout:g} s"
            ) from exc
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            # InvalidURL is not an HTTPError: a malformed reference (bad port…) is just as unavailable
            raise LdContextNotAvailable(
                f"@context {url} could not be retrieved: {type(exc).__name__}: {exc}"
            ) from exc
        return b"".join(chunks)

    def _too_large(self, url: str) -> str:
        return f"@context {url} is larger than {self._max_bytes} bytes"

    async def aclose(self) -> None:
        """Close the HTTP client used for remote contexts."""
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    # ------------------------------------------------------------------ registry (§5.13)

    def list(
        self, details: bool = False, kind: str | None = None, *, tenant: str = ""
    ) -> builtins.list[Any]:
        """The registered contexts (URLs, or detail objects), optionally of one kind (§5.13.3)."""
        if kind is not None and kind not in KINDS:
            raise BadRequestData(f"kind must be one of {', '.join(KINDS)}, not {kind!r}")
        entries = [e for e in self._entries(tenant) if kind is None or e.kind == kind]
        if details:
            return [e.details() for e in entries]
        return [e.url for e in entries]

    async def add(
        self,
        document: Any,
        *,
        tenant: str = "",
        base_url: str | None = None,
        owner: str | None = None,
    ) -> str:
        """Store a Hosted context (§5.13.2), owned by `owner`; returns the URL it is served at."""
        if not isinstance(document, Mapping) or "@context" not in document:
            # NGSI-LD 1.8 §5.13.2.4; the conformance suite (050_02) expects InvalidRequest
            raise InvalidRequest("the payload must be a JSON object with an @context member")
        context = document["@context"]
        if context is None:
            raise BadRequestData("invalid @context: null")
        validate_context(context)
        # inline definitions must build a term map (a fuller check than shapes)
        inline = context if isinstance(context, list) else [context]
        term_map_for([item for item in inline if isinstance(item, Mapping)])
        local_id = uuid.uuid4().hex
        entry = ContextEntry(
            url=self._hosted_url(local_id, base_url),
            local_id=local_id,
            kind="Hosted",
            document=copy.deepcopy(dict(document)),
            created_at=self._now(),
            owner=owner,
        )
        await self._store(tenant, entry)
        if isinstance(context, str | list):
            # §5.13.2: the contexts a hosted context references become Cached ones; fetch them
            # now, best effort, so that the hosted context resolves offline later
            with contextlib.suppress(SmartRegionError):
                await self.term_map(context, tenant=tenant)
        return entry.url

    async def implicit(self, context: Any, *, tenant: str = "", base_url: str | None = None) -> str:
        """A single URL standing for `context`, creating an ImplicitlyCreated entry if needed."""
        # NGSI-LD 1.8 §5.13.2: subscriptions and registrations keep one `jsonldContext` URL; an
        # inline or compound @context is stored and served by the broker instead
        if context is None:
            return CORE_CONTEXT_URL
        if isinstance(context, list) and len(context) == 1 and isinstance(context[0], str):
            context = context[0]
        if isinstance(context, str):
            return context
        validate_context(context)
        digest = hashlib.sha256(orjson.dumps(context, option=orjson.OPT_SORT_KEYS)).hexdigest()
        local_id = "implicit-" + digest[:32]
        registry = self._registry(tenant)
        existing = registry.by_local_id.get(local_id)
        if existing is not None:
            return existing.url
        entry = ContextEntry(
            url=self._hosted_url(local_id, base_url),
            local_id=local_id,
            kind="ImplicitlyCreated",
            document={"@context": copy.deepcopy(context)},
            created_at=self._now(),
        )
        await self._store(tenant, entry)
        return entry.url

    def get(self, ident: str, details: bool = False, *, tenant: str = "") -> dict[str, Any]:
        """Serve a context by local id or URL: its document, or its details (§5.13.4)."""
        entry = self._find(ident, tenant)
        if entry is None:
            raise ResourceNotFound(f"no @context {ident!r}")
        result = entry.details() if details else copy.deepcopy(entry.document)
        self._hit(entry)
        return result

    async def delete(
        self,
        ident: str,
        reload: bool = False,
        *,
        tenant: str = "",
        writer: WriteAccess | None = None,
        unowned: str = "",
    ) -> None:
        """Delete a context, or with `reload` re-fetch a Cached one (§5.13.5).

        A Hosted context is deleted only by a `writer` of the organisation that hosted it (one
        hosted before owners were recorded counts as `unowned`'s); others get Forbidden. Cached
        copies of remote contexts and implicitly created ones have no owner (None: internal).
        """
        entry = self._find(ident, tenant)
        if entry is not None and entry.local_id == CORE_LOCAL_ID:
            if not reload:
                raise BadRequestData("the NGSI-LD core @context cannot be deleted")
            return  # the built-in core context is its own authoritative copy
        if entry is None:
            if reload:
                raise BadRequestData(f"no Cached @context {ident!r} to reload")
            raise ResourceNotFound(f"no @context {ident!r}")
        if reload:
            if entry.kind != "Cached":
                raise BadRequestData(
                    f"only Cached contexts can be reloaded; {ident!r} is {entry.kind}"
                )
            # §5.13.5.4: a failed reload leaves the cached copy in place
            await self._refresh(entry, tenant)
            return
        if (
            entry.kind == "Hosted"
            and writer is not None
            and not writer.unrestricted
            and (entry.owner or unowned) != writer.org_id
        ):
            raise Forbidden(f"@context {ident!r} was hosted by another organisation")
        self._registry(tenant).drop(entry)
        self._generation += 1
        if self._persistence is not None:
            await self._persistence.remove(tenant, entry)

    def restore(self, tenant: str, entry: ContextEntry) -> None:
        """Put back an entry loaded from persistence (at start-up)."""
        self._registry(tenant).put(entry)
        self._generation += 1

    # ------------------------------------------------------------------ internals

    def _registry(self, tenant: str) -> _Registry:
        registry = self._registries.get(tenant)
        if registry is None:
            registry = self._registries[tenant] = _Registry()
            registry.put(
                ContextEntry(
                    url=CORE_CONTEXT_URL,
                    local_id=CORE_LOCAL_ID,
                    kind="Cached",
                    document=dict(core_context_document()),
                    created_at=self._started,
                    extra_info={"builtIn": True},
                )
            )
        return registry

    def _core_entry(self, tenant: str) -> ContextEntry:
        return self._registry(tenant).by_local_id[CORE_LOCAL_ID]

    def _entries(self, tenant: str) -> Iterator[ContextEntry]:
        return iter(builtins.list(self._registry(tenant).by_url.values()))

    def _find(self, ident: str, tenant: str) -> ContextEntry | None:
        if ident in CORE_CONTEXT_URLS or ident == CORE_LOCAL_ID:
            return self._core_entry(tenant)
        registry = self._registry(tenant)
        return (
            registry.by_local_id.get(ident)
            or registry.by_url.get(ident)
            or self._hosted_entry(registry, ident)
        )

    def _hosted_url(self, local_id: str, base_url: str | None) -> str:
        base = (base_url or self.public_base_url or "http://localhost").rstrip("/")
        return base + HOSTED_PATH + local_id

    async def _store(self, tenant: str, entry: ContextEntry) -> None:
        self._registry(tenant).put(entry)
        if self._persistence is not None:
            await self._persistence.save(tenant, entry)

    def _hit(self, entry: ContextEntry) -> None:
        entry.number_of_hits += 1
        entry.last_usage = self._now()

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self._clock(), UTC)


@dataclass(slots=True)
class _Walk:
    definitions: list[Mapping[str, Any] | None] = field(default_factory=list)
    documents: int = 0
    expires_at: float | None = None


def _is_absolute_url(url: str) -> bool:
    parts = urlsplit(url)
    return bool(parts.scheme) and (bool(parts.netloc) or parts.scheme not in ("http", "https"))


def _cached_local_id(url: str) -> str:
    return "cached-" + hashlib.sha256(url.encode()).hexdigest()[:32]


def _check_document(url: str, raw: bytes) -> dict[str, Any]:
    """Parse and validate a retrieved context document (NGSI-LD 1.8 §5.5.6: invalid -> BadRequestData)."""
    try:
        document = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise BadRequestData(f"@context {url} is not a JSON document") from exc
    if not isinstance(document, dict) or "@context" not in document:
        raise BadRequestData(f"@context {url} is not a JSON-LD context (no @context member)")
    try:
        validate_context(document["@context"])
    except BadRequestData as exc:
        raise BadRequestData(f"@context {url}: {exc.detail}") from exc
    return document


def _read_preload_index(directory: Path) -> dict[str, Path]:
    index_path = directory / "index.json"
    try:
        index = orjson.loads(index_path.read_bytes())
    except (OSError, orjson.JSONDecodeError) as exc:
        raise LdContextNotAvailable(
            f"the @context preload index {index_path} is unusable: {exc}"
        ) from exc
    if not isinstance(index, dict):
        raise LdContextNotAvailable(f"the @context preload index {index_path} is not an object")
    return {str(url): directory / str(name) for url, name in index.items()}


class StoreContextPersistence:
    """Keeps the @context registry in the database, so hosted contexts survive a restart.

    Every entry (Hosted, ImplicitlyCreated and Cached copies alike — a cached copy lets a
    restarted broker work offline) is one row of the store's context table, keyed by tenant
    and local id; usage counters are not persisted.
    """

    _SEPARATOR = "\x1f"  # cannot occur in an HTTP header value, hence not in a tenant name

    def __init__(self, store: Store) -> None:
        self.store = store

    def _key(self, tenant: str, entry: ContextEntry) -> str:
        return f"{tenant}{self._SEPARATOR}{entry.local_id}"

    async def save(self, tenant: str, entry: ContextEntry) -> None:
        """Store (or replace) an entry."""
        record = {
            "tenant": tenant,
            "url": entry.url,
            "localId": entry.local_id,
            "kind": entry.kind,
            "document": entry.document,
            "createdAt": entry.created_at.isoformat(),
            "expiresAt": entry.expires_at,
            "owner": entry.owner,
        }
        await self.store.put_context(self._key(tenant, entry), record, kind=entry.kind.lower())

    async def remove(self, tenant: str, entry: ContextEntry) -> None:
        """Forget an entry."""
        await self.store.delete_context(self._key(tenant, entry))

    async def load_into(self, resolver: ContextResolver) -> int:
        """Restore every persisted entry into `resolver` (at start-up); returns how many."""
        count = 0
        for stored in await self.store.list_contexts():
            record = stored.document
            if not isinstance(record, dict) or "localId" not in record:
                continue
            entry = ContextEntry(
                url=record["url"],
                local_id=record["localId"],
                kind=record["kind"],
                document=record["document"],
                created_at=datetime.fromisoformat(record["createdAt"]),
                expires_at=record.get("expiresAt"),
                owner=record.get("owner"),
            )
            resolver.restore(record["tenant"], entry)
            count += 1
        return count
