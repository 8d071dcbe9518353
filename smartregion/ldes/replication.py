"""The LDES replication client: follows a stream's pages and writes its members as entities.

What it does (LDES §Consuming; TREE §Traversing; the VSDS LDIO LDES client behaves alike):

- **Traversal.** From the URL given (the event stream, a view, or any page) it fetches pages
  (`fetching.PageFetcher`) and follows every `tree:relation`'s `tree:node` it cannot prune, and
  a stream's `tree:view`. With `since`, a relation whose `tree:path` is the stream's
  `ldes:timestampPath` and whose type bounds the members from above (`tree:LessThanRelation`,
  `LessThanOrEqualToRelation`, `EqualToRelation`) below `since` is pruned, and members older
  than `since` are left out.
- **Caching.** A page served `Cache-Control: immutable` is never fetched again; any other page
  is mutable: it is fetched again on the next run, and, when following, after its `max-age`
  (else `poll_interval`), with `If-None-Match`/`If-Modified-Since` (304: unchanged). 410 Gone
  drops a page (it is remembered as gone); a page that fails (after the fetcher's retries) is
  counted, reported and tried again later; the others go on.
- **Members, exactly once.** A member is kept by its IRI. Before writing a page's members the
  client asks the store which are already seen, maps the others (`members_in.map_member`) and
  writes their entities, their attribute history and the member IRIs (`ReplicationProgress`)
  in ONE store transaction, with the client's new state (frontier and caching state of every
  page). A kill at any point leaves either all of a transaction or nothing: a restarted client
  fetches the pages its saved state has not finished and skips the members committed. One
  client runs per replication (a fenced lease, `storage/replication.py`), so the "seen" read
  is current.
- **Writes.** Entities are written as the data set's owner, through the broker's store
  (subscriptions are notified, as for every write). Per entity, a page's changes apply in time
  order: every attribute instance goes to history (in time order); the current value of an
  attribute is replaced only by a newer one (observedAt), so late members fill history without
  rolling the current state back. A new entity gets the types its member states, else the
  default type (given, or the data set's type when it has only one). An entity whose types are
  none of the data set's, or that states none when there is no default, one the owner may not
  write, or a member that cannot be mapped is rejected: it is recorded as seen (it is not
  retried) and as a dead letter of the owner, with the reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
import pyoxigraph as ox

from smartregion.broker.service import Broker
from smartregion.core import mutations
from smartregion.core.entities import Vocabulary, parse_entity
from smartregion.core.times import utc_now
from smartregion.core.vocabulary import LDES, RDF, TREE
from smartregion.errors import BadRequestData, Conflict, SmartRegionError
from smartregion.governance import WriteAccess
from smartregion.ldes.fetching import FetchError, Page, PageFetcher
from smartregion.ldes.frontier import Frontier
from smartregion.ldes.members_in import (
    Contribution,
    MemberRejected,
    PageGraph,
    StreamInfo,
    map_member,
)
from smartregion.storage.base import Put, WriteOp
from smartregion.storage.governance import Dataset
from smartregion.storage.history import InstanceRow, RecordInstances
from smartregion.storage.ingestion import DeadLetter, IngestionStore
from smartregion.storage.replication import ReplicationProgress, ReplicationStore
from smartregion.storage.rollups import micros

__all__ = ["ReplicationBusy", "ReplicationReport", "Replicator"]

Doc = dict[str, Any]
#: members written per transaction (a page larger than this takes several, the last one
#: saving the page as done)
CHUNK = 1000
#: relation types that bound a node's members from above (TREE §Relations)
_UPPER_BOUNDS = {
    TREE + "LessThanRelation": "lt",
    TREE + "LessThanOrEqualToRelation": "le",
    TREE + "EqualToRelation": "eq",
}
_DEAD_LETTER_PAYLOAD = 4000


class ReplicationBusy(Conflict):
    """Another client is replicating this stream into this data set right now."""


@dataclass(slots=True)
class ReplicationReport:
    """What a run did (the progress report and the command's summary)."""

    #: pages fetched and read (200)
    pages: int = 0
    not_modified: int = 0
    gone: int = 0
    failed: int = 0
    pruned: int = 0
    #: members found on the pages read (a member on two pages counts twice)
    members: int = 0
    #: members written now (mapped into entities, or rejected and recorded)
    written: int = 0
    #: members skipped as seen before (on another page, in an earlier poll or run)
    duplicates: int = 0
    rejected: int = 0
    #: members older than --since, left out
    before_since: int = 0
    #: attribute instances recorded in history
    instances: int = 0
    started: float = field(default_factory=time.perf_counter)
    errors: list[str] = field(default_factory=list)

    @property
    def elapsed(self) -> float:
        """Seconds since the run started."""
        return time.perf_counter() - self.started

    @property
    def rate(self) -> float:
        """Members written per second."""
        return self.written / max(self.elapsed, 1e-9)


def _time_of(instance: Doc) -> int | None:
    for member in ("observedAt", "modifiedAt"):
        text = instance.get(member)
        if isinstance(text, str):
            with contextlib.suppress(ValueError, SmartRegionError):
                return micros(text)
    return None


class Replicator:
    """Replicates one stream into one data set (see the module docstring)."""

    def __init__(
        self,
        broker: Broker,
        fetcher: PageFetcher,
        dataset: Dataset,
        writer: WriteAccess,
        vocab: Vocabulary,
        *,
        source: str,
        tenant: str = "",
        default_type: str | None = None,
        since: str | None = None,
        poll_interval: float = 60.0,
        lease_seconds: float = 60.0,
        progress: Callable[[ReplicationReport], None] | None = None,
    ) -> None:
        store = broker.store
        if not isinstance(store, ReplicationStore):
            raise BadRequestData(f"{type(store).__name__} keeps no replication state")
        self.broker = broker
        self.store: ReplicationStore = store
        self.fetcher = fetcher
        self.dataset = dataset
        self.writer = writer
        self.vocab = vocab
        self.source = source
        self.tenant = tenant
        # a data set of one type says what an untyped entity is; of several, it does not
        self.default_type = default_type or (
            dataset.entity_types[0] if len(dataset.entity_types) == 1 else None
        )
        self.since = micros(since) if since else None
        self.poll_interval = poll_interval
        self.lease_seconds = lease_seconds
        self.progress = progress
        self.holder = uuid.uuid4().hex
        self.report = ReplicationReport()
        self.key = 0
        self.state: dict[str, Any] = {}
        self._last_renewal = 0.0
        self.frontier = Frontier({}, since=self.since, poll_interval=poll_interval)
        #: the next page, fetched while the one before is written (url -> fetch)
        self._ahead: dict[str, asyncio.Task[Page]] = {}

    # --- the run --------------------------------------------------------------------------

    async def run(
        self, *, follow: bool = False, stop: asyncio.Event | None = None, take_over: bool = False
    ) -> ReplicationReport:
        """Replicate until every page is read (or, with `follow`, until `stop` is set).

        `take_over`: take the replication from a client that died holding it (its lease had
        not run out); were it alive, its next write fails on the fence.
        """
        replication = await self.store.open_replication(self.tenant, self.dataset.id, self.source)
        self.key = replication.key
        if not await self.store.claim_replication(
            self.key, self.holder, self.lease_seconds, take_over=take_over
        ):
            raise ReplicationBusy(
                f"another client is replicating {self.source} into {self.dataset.id}"
                " (if it has died, run again with --take-over)"
            )
        self._last_renewal = time.monotonic()
        self.state = replication.state or {}
        self.frontier = Frontier(self.state, since=self.since, poll_interval=self.poll_interval)
        self.frontier.discover(self.source)
        try:
            while stop is None or not stop.is_set():
                url = self.frontier.next(follow)
                if url is None:
                    if not follow:
                        break
                    await self._wait(stop)
                    continue
                self.frontier.visited.add(url)
                await self._visit(url, follow)
                if self.progress is not None:
                    self.progress(self.report)
        finally:
            for ahead in self._ahead.values():
                ahead.cancel()
            await asyncio.gather(*self._ahead.values(), return_exceptions=True)
            self._ahead.clear()
            with contextlib.suppress(Exception):
                await self.store.release_replication(self.key, self.holder)
        return self.report

    async def _wait(self, stop: asyncio.Event | None) -> None:
        """Sleep until the next mutable page is due (renewing the lease meanwhile)."""
        due = self.frontier.next_due()
        delay = (due - time.time()) if due is not None else self.poll_interval
        delay = min(max(delay, 0.05), self.lease_seconds / 3)
        if stop is None:
            await asyncio.sleep(delay)
        else:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), delay)
        if time.monotonic() - self._last_renewal > self.lease_seconds / 3:
            await self._save()

    async def _save(self) -> None:
        await self.store.save_replication(self.key, self.holder, self.state, self.lease_seconds)
        self._last_renewal = time.monotonic()

    # --- one page -------------------------------------------------------------------------

    def _fetch(self, url: str) -> asyncio.Task[Page]:
        """The fetch of a page (revalidating a mutable one), started now or ahead."""
        ahead = self._ahead.pop(url, None)
        if ahead is not None:
            return ahead
        etag, last_modified = self.frontier.validators(url)
        return asyncio.ensure_future(
            self.fetcher.fetch(url, etag=etag, last_modified=last_modified)
        )

    def _fetch_ahead(self, follow: bool) -> None:
        """Start fetching the page that comes next, so that it downloads and parses while
        this one is written (the order of writes does not change)."""
        url = self.frontier.next(follow)
        if url is not None and url not in self._ahead:
            self._ahead[url] = self._fetch(url)

    async def _visit(self, url: str, follow: bool) -> None:
        try:
            fetched = await self._fetch(url)
        except FetchError as exc:
            self.report.failed += 1
            self.report.errors.append(exc.detail)
            self.frontier.failed(url)
            await self._save()
            return
        if fetched.status == "gone":
            self.report.gone += 1
            self.frontier.gone(url)
            await self._save()
            return
        if fetched.status == "not-modified":
            self.report.not_modified += 1
            self.frontier.fetched(url, fetched)
            await self._save()
            return
        self.report.pages += 1
        graph = PageGraph(fetched.quads)
        stream = self._stream(graph)
        self._follow(graph, stream, url, fetched.final_url)
        before = self.report.before_since
        members = self._members(graph, stream)
        self.frontier.fetched(url, fetched, left_out=self.report.before_since > before)
        self._fetch_ahead(follow)
        await self._write_members(graph, stream, members, url)

    def _stream(self, graph: PageGraph) -> StreamInfo:
        """The event stream this page belongs to, and its timestamp and version paths."""
        iri = self.state.get("stream")
        if iri is None:
            typed = [
                s
                for s, o in graph.subjects_with(RDF + "type")
                if o == ox.NamedNode(LDES + "EventStream")
            ]
            holders = [s for s, _ in graph.subjects_with(TREE + "member")]
            found = next((s for s in typed + holders if isinstance(s, ox.NamedNode)), None)
            if found is not None:
                iri = self.state["stream"] = found.value
        if iri is not None:
            subject = ox.NamedNode(iri)
            for key, predicate in (
                ("timestampPath", "timestampPath"),
                ("versionOfPath", "versionOfPath"),
            ):
                value = graph.first(subject, LDES + predicate)
                if isinstance(value, ox.NamedNode):
                    self.state[key] = value.value
        return StreamInfo(
            iri or "", self.state.get("timestampPath"), self.state.get("versionOfPath")
        )

    def _follow(self, graph: PageGraph, stream: StreamInfo, url: str, final: str) -> None:
        """Add the nodes of the page's relations (and the stream's views) to the frontier."""
        known = {url, final} | self.frontier.known()
        targets: list[tuple[str, str | None, int | None]] = []
        if stream.iri:
            for view in graph.objects(ox.NamedNode(stream.iri), TREE + "view"):
                if isinstance(view, ox.NamedNode):
                    targets.append((view.value, None, None))
        for _, relation in graph.subjects_with(TREE + "relation"):
            node = graph.first(relation, TREE + "node")
            if not isinstance(node, ox.NamedNode):
                continue
            bound, value = self._bound(graph, relation, stream)
            targets.append((node.value, bound, value))
        for target, bound, value in targets:
            if target in known:
                continue
            known.add(target)
            if not self.frontier.discover(target, bound, value):
                self.report.pruned += 1

    @staticmethod
    def _bound(
        graph: PageGraph, relation: Any, stream: StreamInfo
    ) -> tuple[str | None, int | None]:
        """(upper-bound kind, µs) when the relation bounds the members' timestamps from above."""
        kinds = [_UPPER_BOUNDS[t] for t in graph.types(relation) if t in _UPPER_BOUNDS]
        path = graph.first(relation, TREE + "path")
        value = graph.first(relation, TREE + "value")
        if not kinds or not isinstance(value, ox.Literal) or not isinstance(path, ox.NamedNode):
            return None, None
        if stream.timestamp_path and path.value != stream.timestamp_path:
            return None, None
        try:
            return kinds[0], micros(value.value)
        except (ValueError, SmartRegionError):
            return None, None

    def _members(self, graph: PageGraph, stream: StreamInfo) -> list[ox.NamedNode]:
        """The page's member IRIs (each once), without those older than --since."""
        found: dict[str, ox.NamedNode] = {}
        for subject, member in graph.subjects_with(TREE + "member"):
            if stream.iri and subject != ox.NamedNode(stream.iri):
                continue
            self.report.members += 1
            if not isinstance(member, ox.NamedNode):
                self.report.rejected += 1
                self.report.errors.append("a member without an IRI cannot be kept once: skipped")
                continue
            if member.value in found:
                self.report.duplicates += 1
                continue
            found[member.value] = member
        out = list(found.values())
        if self.since is not None and stream.timestamp_path:
            kept = []
            for member in out:
                stamp = graph.first(member, stream.timestamp_path)
                at = None
                if isinstance(stamp, ox.Literal):
                    with contextlib.suppress(ValueError, SmartRegionError):
                        at = micros(stamp.value)
                if at is not None and at < self.since:
                    self.report.before_since += 1
                else:
                    kept.append(member)
            out = kept
        return out

    # --- writing --------------------------------------------------------------------------

    async def _write_members(
        self, graph: PageGraph, stream: StreamInfo, members: list[ox.NamedNode], url: str
    ) -> None:
        seen = await self.store.seen_members(self.key, [m.value for m in members])
        fresh = [m for m in members if m.value not in seen]
        self.report.duplicates += len(members) - len(fresh)
        if not fresh:
            await self._save()
            return
        for start in range(0, len(fresh), CHUNK):
            chunk = fresh[start : start + CHUNK]
            last = start + CHUNK >= len(fresh)
            contributions: list[Contribution] = []
            rejected: list[tuple[str, str]] = []
            for member in chunk:
                try:
                    contributions.append(map_member(graph, member, stream, self.vocab))
                except MemberRejected as exc:
                    rejected.append((member.value, str(exc)))
            # the page counts as read only with its last chunk (an earlier state otherwise)
            state = self.state if last else self.frontier.unread(url)
            refused = await self._transact([m.value for m in chunk], contributions, state)
            rejected.extend(refused)
            self._last_renewal = time.monotonic()
            self.report.written += len(chunk)
            self.report.rejected += len(rejected)
            await self._dead_letters(graph, rejected, url)

    async def _transact(
        self, members: list[str], contributions: list[Contribution], state: dict[str, Any]
    ) -> list[tuple[str, str]]:
        """One transaction: the entities and history of `contributions`, `members` as seen."""
        now = utc_now()
        by_entity: dict[str, list[Contribution]] = {}
        for c in contributions:
            by_entity.setdefault(c.entity_id, []).append(c)
        for changes in by_entity.values():
            # time order per entity (stable: a page's order breaks ties)
            changes.sort(key=lambda c: c.at if c.at is not None else -1)
        owners: dict[str, str] = {}
        rejected: list[tuple[str, str]] = []
        counted = {"instances": 0}
        snapshot = orjson.loads(orjson.dumps(state))

        def mutate(current: dict[str, Doc | None]) -> tuple[list[WriteOp], None]:
            rejected.clear()
            denied = self.writer.denied(owners, current)
            ops: list[Any] = []
            rows: list[InstanceRow] = []
            for eid, changes in by_entity.items():
                if eid in denied:
                    reason = f"entity {eid} belongs to an organisation that has not mandated {self.writer.org_id}"
                    rejected.extend((c.member, reason) for c in changes)
                    continue
                doc = self._entity(eid, current.get(eid), changes, now, rows, rejected)
                if doc is not None:
                    ops.append(Put(doc))
            counted["instances"] = len(rows)
            ops.append(RecordInstances(tuple(rows)))
            ops.append(
                ReplicationProgress(
                    self.key, self.holder, tuple(members), snapshot, self.lease_seconds
                )
            )
            return ops, None

        await self.broker.entities.store.transact(
            self.tenant,
            list(by_entity),
            mutate,
            owner=self.dataset.owner_org,
            check_owners=owners.update,
        )
        self.report.instances += counted["instances"]
        return list(rejected)

    def _entity(
        self,
        eid: str,
        existing: Doc | None,
        changes: list[Contribution],
        now: str,
        rows: list[InstanceRow],
        rejected: list[tuple[str, str]],
    ) -> Doc | None:
        """The entity after `changes` (None: unchanged); their instances appended to `rows`."""
        stated = next((c.types for c in changes if c.types), [])
        types = (
            list(existing["type"])
            if existing is not None
            else (stated or ([self.default_type] if self.default_type else []))
        )
        if not types:
            reason = (
                f"the member states no type for new entity {eid}, and data set"
                f" {self.dataset.id} has several: give --type"
            )
            rejected.extend((c.member, reason) for c in changes)
            return None
        wanted = set(self.dataset.entity_types)
        if wanted and wanted.isdisjoint(types) and wanted.isdisjoint(stated):
            reason = (
                f"entity {eid} of type {', '.join(types)} is outside data set {self.dataset.id}"
            )
            rejected.extend((c.member, reason) for c in changes)
            return None
        latest: dict[tuple[str, Any], tuple[int, Doc]] = {}
        for c in changes:
            try:
                parsed = parse_entity({"id": eid, "type": types, **c.attrs}, self.vocab, now=now)
            except SmartRegionError as exc:
                rejected.append((c.member, exc.detail))
                continue
            for attr, instances in parsed["attrs"].items():
                for inst in instances:
                    rows.append(InstanceRow(eid, attr, inst))
                    when = _time_of(inst) or 0
                    key = (attr, inst.get("datasetId"))
                    if key not in latest or when >= latest[key][0]:
                        latest[key] = (when, inst)
        winners: dict[str, list[Doc]] = {}
        stored_attrs: dict[str, Any] = (existing or {}).get("attrs") or {}
        for (attr, dataset_id), (when, inst) in latest.items():
            stored = next(
                (i for i in stored_attrs.get(attr, []) if i.get("datasetId") == dataset_id), None
            )
            if stored is not None:
                stored_when = _time_of(stored)
                if stored_when is not None and when < stored_when:
                    continue  # a late member: history only
            winners.setdefault(attr, []).append(inst)
        if existing is not None and not winners and set(stated) <= set(existing["type"]):
            return None
        new_doc: Doc = {
            "id": eid,
            "type": types if existing is None else stated or types,
            "attrs": winners,
        }
        return mutations.upsert_entity(existing, new_doc, now=now, mode="update")

    async def _dead_letters(
        self, graph: PageGraph, rejected: list[tuple[str, str]], url: str
    ) -> None:
        if not rejected:
            return
        self.report.errors.extend(f"{member}: {reason}" for member, reason in rejected[:20])
        store = self.broker.store
        if not isinstance(store, IngestionStore):
            return
        for member, reason in rejected:
            payload = _describe(graph, member)[:_DEAD_LETTER_PAYLOAD]
            await store.add_dead_letter(
                DeadLetter(
                    self.tenant,
                    self.dataset.owner_org,
                    f"ldes:{url}",
                    payload,
                    f"{member}: {reason}",
                    utc_now(),
                )
            )


def _describe(graph: PageGraph, member: str) -> str:
    """The member's own triples as N-Triples (what a dead letter shows)."""
    subject = ox.NamedNode(member)
    lines = [f"{subject} <{p}> {o} ." for p, o in graph.out.get(subject, ())]
    return "\n".join(lines)
