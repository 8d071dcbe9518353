"""The event-stream publisher: every data set as a Linked Data Event Stream (docs/ldes.md).

`EventStreams` decides who may read a stream (the platform's one read rule), computes a page
(`ldes/fragments.py`) from the history rows (`storage/streams.py`), renders it
(`ldes/serialisation.py`) and keeps the rendered bytes of immutable pages in a bounded
in-process cache, so a replicating client or a CDN refilling its cache costs a dictionary
look-up. Too many page renderings at once answer `Overloaded` (HTTP 429) rather than queueing
without bound.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from smartregion.core.privacy import FULL_VIEW, Access, ReadAudit, View, coarsen_extent
from smartregion.errors import Gone, Overloaded, ResourceNotFound
from smartregion.governance import Governance, Principal
from smartregion.ldes.fragments import (
    DAY,
    VIEWS,
    Page,
    PageRef,
    Relation,
    children,
    window,
)
from smartregion.ldes.members import member_lines
from smartregion.ldes.serialisation import (
    StreamDescription,
    render,
    render_page,
    render_text,
    stream_triples,
)
from smartregion.storage.base import Store
from smartregion.storage.governance import Dataset
from smartregion.storage.history import now_micros
from smartregion.storage.streams import StreamKey, StreamMember, StreamStore

__all__ = ["EventStreams", "Rendered", "StreamConfig", "entity_tag"]

_GTE = "GreaterThanOrEqualToRelation"
_GT = "GreaterThanRelation"
_LT = "LessThanRelation"
#: the first window of recording time searched for a page's members, doubled until the page is
#: full: a window costs a scan of its rows plus the 16 minutes of lateness margin
#: (storage/streams.py), so dense streams must not start with an hour
_FIRST_WINDOW = 60_000_000


@dataclass(frozen=True, slots=True)
class StreamConfig:
    """How streams are published (the `ldes_*` settings)."""

    page_size: int = 250
    #: µs a member waits before it is published (longer than any write transaction)
    settle: int = 10_000_000
    #: seconds a page that may still change may be cached
    max_age: int = 10
    #: seconds an immutable page may be cached
    immutable_max_age: int = 31_536_000
    #: page renderings in flight at once; more answer 429
    max_concurrent: int = 16
    #: bytes of rendered immutable pages kept in memory
    cache_bytes: int = 64 * 1024 * 1024
    #: days of history kept where a data set sets none (history_retention_days; 0: forever)
    default_retention_days: int = 0
    #: the tenant whose entities the data sets select
    tenant: str = ""


@dataclass(frozen=True, slots=True)
class Rendered:
    """A page as served: its bytes, entity tag and caching."""

    body: bytes
    media_type: str
    etag: str
    immutable: bool
    #: the data set is open: shared caches may keep it
    public: bool


class _PageCache:
    """Rendered immutable pages, least recently used out first, bounded in bytes."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.size = 0
        self.entries: OrderedDict[tuple[str, str, str], Rendered] = OrderedDict()

    def get(self, key: tuple[str, str, str]) -> Rendered | None:
        found = self.entries.get(key)
        if found is not None:
            self.entries.move_to_end(key)
        return found

    def put(self, key: tuple[str, str, str], page: Rendered) -> None:
        if len(page.body) > self.capacity // 4 or key in self.entries:
            return
        self.entries[key] = page
        self.size += len(page.body)
        while self.size > self.capacity:
            _, old = self.entries.popitem(last=False)
            self.size -= len(old.body)


@dataclass(frozen=True, slots=True)
class ReadableStream:
    """A data set's stream as one reader may read it (`EventStreams.readable_dataset`)."""

    dataset: Dataset
    #: attributes whose members this reader does not get
    withheld: frozenset[str] = frozenset()
    #: records a read of another organisation's non-open data (governance's read audit)
    audit: ReadAudit | None = None


def _view_key(withheld: frozenset[str]) -> str:
    """A cache-key suffix telling apart the pages of readers who get different members."""
    if not withheld:
        return ""
    return "#" + hashlib.sha256("\n".join(sorted(withheld)).encode()).hexdigest()[:16]


class EventStreams:
    """Publishes the data sets' event streams (see the module docstring)."""

    def __init__(
        self,
        store: StreamStore,
        governance: Governance,
        config: StreamConfig | None = None,
        *,
        clock: Callable[[], int] = now_micros,
    ) -> None:
        self.store = store
        self.governance = governance
        self.config = config or StreamConfig()
        self.clock = clock
        self._cache = _PageCache(self.config.cache_bytes)
        self._in_flight = 0

    # --- access ------------------------------------------------------------------------------

    async def readable_dataset(
        self, principal: Principal | None, dataset_id: str
    ) -> ReadableStream:
        """The data set whose stream `principal` (None: anonymous) may read, and what of it
        the reader does not get; ResourceNotFound as if absent otherwise — the platform's one
        read rule (`Governance.readable_for`) and its privacy views (core/privacy.py).

        A reader whose view of the data set leaves attributes out (personal ones outside the
        owner's side; sensitive ones and counts in open views) gets no members of them. An open
        view that coarsens times or places has no stream: the page order and relation values
        are exact recording times (open readers use the NGSI-LD API, which coarsens)."""
        dataset = await self.governance.store.get_dataset(dataset_id)
        if dataset is None:
            raise ResourceNotFound(f"no event stream {dataset_id!r}")
        readable = await self.governance.readable_for(principal)
        if readable is None or dataset.owner_org in readable.owners:
            return ReadableStream(dataset)
        if dataset.selection not in readable.slices:
            raise ResourceNotFound(f"no event stream {dataset_id!r}")
        disclosure = readable.disclosure
        view = (
            next((v for v in disclosure.views if v.dataset_id == dataset.id), None)
            if disclosure is not None
            else None
        )
        if disclosure is None or view is None or view.access is Access.FULL:
            return ReadableStream(dataset)
        privacy = view.privacy
        withheld: frozenset[str] = frozenset()
        if privacy.transforms(view.access):
            if view.access is Access.OPEN and (privacy.coarsen_time or privacy.coarsen_place):
                raise ResourceNotFound(f"no event stream {dataset_id!r}")
            withheld = privacy.hidden(view.access)
            if view.access is Access.OPEN:
                withheld |= privacy.counts
        audit = disclosure.audit if view.access is Access.GRANTED else None
        return ReadableStream(dataset, withheld, audit)

    async def readable_datasets(self, principal: Principal | None) -> list[tuple[Dataset, View]]:
        """Every data set whose stream `principal` may read, with how the reader sees it."""
        readable = await self.governance.readable_for(principal)
        disclosure = readable.disclosure if readable is not None else None
        out = []
        for dataset in await self.governance.list_datasets():
            if readable is None or dataset.owner_org in readable.owners:
                out.append((dataset, FULL_VIEW))
            elif dataset.selection in readable.slices:
                view = (
                    next((v for v in disclosure.views if v.dataset_id == dataset.id), None)
                    if disclosure is not None
                    else None
                )
                out.append(
                    (dataset, FULL_VIEW if view is None else View(view.access, view.privacy))
                )
        return out

    # --- pages -------------------------------------------------------------------------------

    def retention_days(self, dataset: Dataset) -> int:
        """Days of history the data set keeps (0: forever), as the purge job applies it."""
        if dataset.retention_days is not None:
            return max(0, dataset.retention_days)
        return max(0, self.config.default_retention_days)

    def cutoff(self, dataset: Dataset, now: int) -> int:
        """The first publication time still published: the purge's cutoff (its UTC day)."""
        days = self.retention_days(dataset)
        if not days:
            return 0
        return (now - days * DAY) // DAY * DAY

    async def coverage_start(self, dataset: Dataset) -> int | None:
        """When the data set's published history begins (µs; None: nothing published yet):
        its first member, or the retention cutoff when that is later."""
        first = await self.store.stream_start(
            self.config.tenant, dataset.owner_org, dataset.entity_types, scope=dataset.scope
        )
        if first is None:
            return None
        return max(first, self.cutoff(dataset, self.clock()))

    async def coverage_extent(
        self, dataset: Dataset, view: View = FULL_VIEW
    ) -> tuple[float, float, float, float] | None:
        """The bounding box (west, south, east, north) of the data set's geometries as `view`
        shows them: attributes the reader does not see left out, and widened to the grid of
        an open view that coarsens places (so it tells no more than the coarsened data)."""
        privacy = view.privacy
        extent = await self.store.stream_extent(
            self.config.tenant, dataset.owner_org, dataset.entity_types,
            sorted(privacy.hidden(view.access)), scope=dataset.scope,
        )  # fmt: skip
        if extent is not None and view.access is Access.OPEN and privacy.coarsen_place:
            extent = coarsen_extent(extent, privacy.coarsen_place)
        return extent

    def description(self, dataset: Dataset, base: str) -> StreamDescription:
        """What every page says about the data set's stream."""
        return StreamDescription(f"{base}/ldes/{dataset.id}", self.retention_days(dataset))

    async def page(self, dataset: Dataset, ref: PageRef) -> Page:
        """The page `ref` of the data set's stream now; Gone when retention removed it."""
        now = self.clock()
        horizon = now - self.config.settle
        cutoff = self.cutoff(dataset, now)
        if ref.view == "paged":
            return await self._paged(dataset, ref, horizon, cutoff)
        if ref.view == "latest":
            return await self._latest(dataset, ref, horizon, cutoff)
        lo, hi = window(ref)
        if hi <= cutoff:
            raise Gone(f"{ref.path} is past the data set's retention")
        if lo >= horizon:
            raise ResourceNotFound(f"{ref.path} is not published yet")
        if not ref.leaf:
            return await self._inner(dataset, ref, horizon, cutoff)
        start = max(lo, cutoff) if ref.after is None else ref.after[0]
        members = await self._collect(dataset, start, min(hi, horizon), ref.after, seek=False)
        page = Page(ref, members, immutable=hi <= horizon)
        if len(members) == self.config.page_size:
            last = members[-1]
            more = PageRef(ref.view, ref.parts, last.key)
            page.relations = [Relation(_GTE, more, last.p), Relation(_LT, more, hi)]
            page.immutable = True
        return page

    async def _inner(self, dataset: Dataset, ref: PageRef, horizon: int, cutoff: int) -> Page:
        hi = window(ref)[1]
        first = await self.store.stream_start(
            self.config.tenant, dataset.owner_org, dataset.entity_types, scope=dataset.scope
        )
        if first is None:
            return Page(ref, [], [], immutable=False)
        # only children holding members: a replicating client never walks empty pages
        candidates = children(ref, max(cutoff, first), horizon)
        held = await self.store.stream_nonempty(
            self.config.tenant, dataset.owner_org, dataset.entity_types,
            [window(c) for c in candidates], scope=dataset.scope,
        )  # fmt: skip
        relations: list[Relation] = []
        for child, nonempty in zip(candidates, held, strict=True):
            if nonempty:
                c_lo, c_hi = window(child)
                relations += [Relation(_GTE, child, c_lo), Relation(_LT, child, c_hi)]
        # a closed node of a stream without retention never changes (members are never
        # recorded into the past); with retention, children drop out as the cutoff passes
        # them, and the root grows with every new year
        closed = bool(ref.parts) and hi <= horizon and cutoff == 0
        return Page(ref, [], relations, immutable=closed)

    async def _paged(self, dataset: Dataset, ref: PageRef, horizon: int, cutoff: int) -> Page:
        if ref.after is not None and ref.after[0] < cutoff:
            raise Gone(f"{ref.path} is past the data set's retention")
        lo = cutoff if ref.after is None else ref.after[0]
        members = await self._collect(dataset, lo, horizon, ref.after)
        page = Page(ref, members)
        if len(members) == self.config.page_size:
            last = members[-1]
            page.relations = [Relation(_GTE, PageRef("paged", (), last.key), last.p)]
            # the view root starts at the retention cutoff, which moves
            page.immutable = ref.after is not None or cutoff == 0
        return page

    async def _latest(self, dataset: Dataset, ref: PageRef, horizon: int, cutoff: int) -> Page:
        members = await self.store.stream_latest(
            self.config.tenant, dataset.owner_org, dataset.entity_types, cutoff, horizon,
            after=ref.after_series, limit=self.config.page_size, scope=dataset.scope,
        )  # fmt: skip
        page = Page(ref, members)
        if len(members) == self.config.page_size:
            last = str(members[-1].series.key)
            # a relation on the version object's IRI (all of one text order: same prefix)
            page.relations = [Relation(_GT, PageRef("latest", (), None, last), last)]
        return page

    async def _collect(
        self,
        dataset: Dataset,
        lo: int,
        horizon: int,
        after: StreamKey | None,
        *,
        seek: bool = True,
    ) -> list[StreamMember]:
        """The next page of members in `[lo, horizon)` after `after`, searched in doubling
        windows (one window for everything would read and sort every member after `lo`); a
        first page (`seek`) starts at the stream's first member rather than at `lo`."""
        out: list[StreamMember] = []
        width = _FIRST_WINDOW
        if after is None and seek:
            first = await self.store.stream_start(
                self.config.tenant, dataset.owner_org, dataset.entity_types, scope=dataset.scope
            )
            if first is None:
                return out
            lo = max(lo, first)
        while lo < horizon and len(out) < self.config.page_size:
            hi = min(lo + width, horizon)
            found = await self.store.stream_members(
                self.config.tenant, dataset.owner_org, dataset.entity_types, lo, hi,
                after=after, limit=self.config.page_size - len(out), scope=dataset.scope,
            )  # fmt: skip
            out += found
            if found:
                after = found[-1].key
            lo, width = hi, width * 2
        return out

    # --- rendering ---------------------------------------------------------------------------

    def _enter(self) -> None:
        if self._in_flight >= self.config.max_concurrent:
            raise Overloaded("too many event-stream pages are being rendered", retry_after=1)
        self._in_flight += 1

    async def render_page(
        self,
        dataset: Dataset,
        ref: PageRef,
        base: str,
        media_type: str,
        withheld: frozenset[str] = frozenset(),
    ) -> Rendered:
        """The page as bytes in `media_type`, from the cache when it is immutable; without the
        members of the `withheld` attributes (`readable_dataset`)."""
        key = (base + "/ldes/" + dataset.id, ref.path + _view_key(withheld), media_type)
        cached = self._cache.get(key)
        public = dataset.policy_kind == "open"
        if cached is not None:
            # retention may have removed it since (a cache entry never outlives its page)
            now = self.clock()
            cutoff = self.cutoff(dataset, now)
            if (ref.view == "paged" and ref.after is not None and ref.after[0] < cutoff) or (
                ref.view == "by-time" and window(ref)[1] <= cutoff
            ):
                raise Gone(f"{ref.path} is past the data set's retention")
            return Rendered(cached.body, media_type, cached.etag, True, public)
        self._enter()
        try:
            page = await self.page(dataset, ref)
            if withheld:
                # the relations stay those of the whole page: the same pages for every reader
                page.members = [m for m in page.members if m.series.attr not in withheld]
            types = await self._types(page.members)
            body = render_page(self.description(dataset, base), page, media_type, types)
        finally:
            self._in_flight -= 1
        rendered = Rendered(body, media_type, entity_tag(body), page.immutable, public)
        if page.immutable:
            self._cache.put(key, rendered)
        return rendered

    async def render_member(
        self,
        dataset: Dataset,
        key: tuple[int, int, int],
        base: str,
        media_type: str,
        withheld: frozenset[str] = frozenset(),
    ) -> Rendered:
        """One published member on its own (`GET {stream}/members/{series}.{t}.{seq}`): the
        member extraction of TREE dereferences a member IRI whose triples a page lacks."""
        found = await self.store.stream_member(
            self.config.tenant, dataset.owner_org, dataset.entity_types, *key, scope=dataset.scope
        )
        now = self.clock()
        if found is not None and found.series.attr in withheld:
            found = None
        if found is None or found.p >= now - self.config.settle:
            raise ResourceNotFound("no such member in this event stream")
        if found.p < self.cutoff(dataset, now):
            raise Gone("the member is past the data set's retention")
        iri = self.description(dataset, base).iri
        types = (await self._types([found])).get(found.series.entity_id, ())
        body = render_text(member_lines(iri, found, types).encode(), media_type)
        return Rendered(body, media_type, entity_tag(body), True, dataset.policy_kind == "open")

    async def _types(self, members: list[StreamMember]) -> dict[str, list[str]]:
        """The current types of the members' entities (one read of their documents)."""
        if not members or not isinstance(self.store, Store):
            return {}
        ids = list(dict.fromkeys(m.series.entity_id for m in members))
        docs = await self.store.get_entities(self.config.tenant, ids)
        return {eid: list(doc.get("type") or []) for eid, doc in docs.items()}

    def render_stream(self, dataset: Dataset, base: str, media_type: str) -> Rendered:
        """The stream's own description (`GET /ldes/{ds}`)."""
        body = render(stream_triples(self.description(dataset, base), VIEWS), media_type)
        return Rendered(body, media_type, entity_tag(body), False, dataset.policy_kind == "open")


def entity_tag(body: bytes) -> str:
    """A strong entity tag of the bytes (RFC 9110 §8.8.3)."""
    return '"' + hashlib.blake2b(body, digest_size=16).hexdigest() + '"'
