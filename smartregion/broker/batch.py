"""Batch entity operations (NGSI-LD 1.8 §5.6.7–§5.6.10, §5.6.20).

A batch is checked entity by entity: what is invalid — or an entity the writer may not change
(`governance/ownership.py`) — is reported per entity, what is valid is applied and committed
before the answer; every id the answer lists as a success is durable.

A large batch is applied in chunks of consecutive entries (`CHUNK` entities each), each in one
store transaction per owner of what it creates (usually one), and the chunks are PIPELINED:
chunk k+1 is parsed while chunk k is being written, so the request's parsing overlaps the
database's work instead of preceding it (batch upsert of 1,000 entities: docs/benchmarks.md).
NGSI-LD batches are not atomic (§5.6.7–§5.6.10 report per entity), so nothing a client may rely
on changes: on a storage failure the request fails, the chunks already committed stay (every
operation but create is idempotent, so a retry is safe), and the answer never claims what is not
durable. Several entries with the same id apply in order on the running state, as if sent one
after the other — a batch repeating an id across chunks is applied as one chunk.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from smartregion.broker.history import instance_rows
from smartregion.core import mutations
from smartregion.core.entities import Vocabulary, is_uri, parse_entity
from smartregion.core.subscriptions import ChangeSteps, EntityChange
from smartregion.core.times import utc_now
from smartregion.errors import AlreadyExists, BadRequestData, ResourceNotFound, SmartRegionError
from smartregion.governance import Forbidden, WriteAccess
from smartregion.storage.base import Delete, Put, Store, WriteOp
from smartregion.storage.history import RecordInstances

Doc = dict[str, Any]
#: one vocabulary for the whole batch, or one per entity (application/ld+json batches carry a
#: @context per entity; an entry that is an error is that entity's failure to resolve it)
Vocabularies = Vocabulary | list[Vocabulary | SmartRegionError]
#: entities per chunk of a pipelined batch (module docstring)
CHUNK = 250


class PartialUpdate(BadRequestData):
    """An entity of a batch was only partly applied; `doc` is what is stored for it."""

    def __init__(self, detail: str, *, doc: Doc | None) -> None:
        super().__init__(detail, title="Some attributes were not updated")
        self.doc = doc


@dataclass(slots=True)
class BatchError:
    """One entity's failure inside a batch."""

    entity_id: str | None
    error: SmartRegionError


@dataclass(slots=True)
class BatchResult:
    """The per-entity outcome of a batch (§5.2.16 BatchOperationResult)."""

    success: list[str] = field(default_factory=list)
    errors: list[BatchError] = field(default_factory=list)
    created: list[str] = field(default_factory=list)


@dataclass(slots=True)
class ParsedParts:
    """Several parts' entities parsed for `BatchService.upsert_parts`."""

    #: the time the entities were parsed at, and are written with (createdAt, modifiedAt)
    now: str
    docs: list[Doc]
    #: the part of each of `docs`
    tags: list[int]
    #: each part's result so far (its invalid entities)
    results: list[BatchResult]


class BatchService:
    """The five batch operations, each one store transaction."""

    def __init__(self, store: Store, *, max_batch_size: int = 10000) -> None:
        self.store = store
        self.max_batch_size = max_batch_size

    def _entities(
        self, payload: Any, vocab: Vocabularies, now: str, result: BatchResult
    ) -> list[Doc]:
        """Parse every entity of (a chunk of) a batch; invalid ones become per-entity errors."""
        per_item = vocab if isinstance(vocab, list) else None
        docs: list[Doc] = []
        for index, item in enumerate(payload):
            item_vocab = per_item[index] if per_item is not None else vocab
            try:
                if isinstance(item_vocab, SmartRegionError):
                    raise item_vocab
                docs.append(parse_entity(item, item_vocab, now=now))  # type: ignore[arg-type]
            except SmartRegionError as exc:
                raw_id = item.get("id") if isinstance(item, dict) else None
                result.errors.append(BatchError(raw_id if isinstance(raw_id, str) else None, exc))
        return docs

    def check_shape(self, payload: Any) -> None:
        """BadRequestData unless the payload is a non-empty array within the size limit."""
        if not isinstance(payload, list):
            raise BadRequestData("a batch operation takes a JSON array of entities")
        if not payload:
            raise BadRequestData("a batch operation needs at least one entity")
        if len(payload) > self.max_batch_size:
            raise BadRequestData(
                f"a batch may hold at most {self.max_batch_size} entities, got {len(payload)}"
            )

    async def _run(
        self,
        tenant: str,
        docs: list[Doc],
        result: BatchResult,
        step: Callable[[Doc | None, Doc], tuple[Doc | None, bool]],
        *,
        writer: WriteAccess,
    ) -> BatchResult:
        """Apply `step(existing, new) -> (doc to store or None to skip, created?)` per entity.

        An existing entity `writer` may not change fails alone (Forbidden). Entities that would
        be created for different owners (`WriteAccess.owner_of_new`) are written in one
        transaction per owner, all entries of one id in the first one's.
        """
        if not docs:
            return result
        owner_of: dict[str, str] = {}
        for doc in docs:
            owner_of.setdefault(doc["id"], writer.owner_of_new(doc))
        groups: dict[str, list[Doc]] = {}
        for doc in docs:
            groups.setdefault(owner_of[doc["id"]], []).append(doc)
        outcome = BatchResult(errors=list(result.errors))
        for owner, group in groups.items():
            (part,) = await self._run_group(tenant, group, step, owner=owner, writer=writer)
            outcome.success.extend(part.success)
            outcome.errors.extend(part.errors)
            outcome.created.extend(part.created)
        return outcome

    async def _run_group(
        self,
        tenant: str,
        docs: list[Doc],
        step: Callable[[Doc | None, Doc], tuple[Doc | None, bool]],
        *,
        owner: str,
        writer: WriteAccess,
        parts: Sequence[int] | None = None,
        results: Sequence[BatchResult] = (),
        extra: Callable[[list[BatchResult]], list[Any]] | None = None,
    ) -> list[BatchResult]:
        """Apply `docs` in order in ONE store transaction; one result per part.

        `parts[i]` is the part (0 without `parts`) whose result reports `docs[i]`; `results`
        are the parts' results so far (their parse errors), extended here. `extra`, called
        inside the transaction with the results, returns more ops the store writes in it.
        """
        ids = list(dict.fromkeys(d["id"] for d in docs))
        owners: dict[str, str] = {}
        tags = parts if parts is not None else [0] * len(docs)
        base = list(results) if parts is not None else [BatchResult()]
        repeats = len(ids) < len(docs)
        # entries repeating an id: the history must keep every entry's instances, and every
        # entry notify, not only the final state the transaction leaves (broker/history.py and
        # the notifying store compute from that alone)
        each_step = repeats and bool(getattr(self.store, "records_history", False))
        each_notifies = repeats and bool(getattr(self.store, "notifies_steps", False))

        def mutate(current: dict[str, Doc | None]) -> tuple[list[WriteOp], list[BatchResult]]:
            denied = writer.denied(owners, current)
            state = dict(current)
            touched: dict[str, Doc] = {}
            steps: list[EntityChange] = []
            outcomes = [BatchResult(errors=list(r.errors)) for r in base]
            for doc, tag in zip(docs, tags, strict=True):
                eid = doc["id"]
                outcome = outcomes[tag]
                try:
                    if eid in denied:
                        raise _not_yours(eid)
                    stored, created = step(state.get(eid), doc)
                except PartialUpdate as exc:
                    if exc.doc is not None:
                        if repeats:
                            steps.append(EntityChange(state.get(eid), exc.doc))
                        state[eid] = exc.doc
                        touched[eid] = exc.doc
                    outcome.errors.append(BatchError(eid, exc))
                    continue
                except SmartRegionError as exc:
                    outcome.errors.append(BatchError(eid, exc))
                    continue
                if stored is not None:
                    if repeats:
                        steps.append(EntityChange(state.get(eid), stored))
                    state[eid] = stored
                    touched[eid] = stored
                outcome.success.append(eid)
                if created:
                    outcome.created.append(eid)
            ops: list[Any] = [Put(d) for d in touched.values()]
            if each_step:
                ops.append(RecordInstances(tuple(instance_rows(steps, utc_now()))))
            if each_notifies:
                ops.append(ChangeSteps(tuple(steps)))  # taken out by the notifying store
            if extra is not None:
                ops.extend(extra(outcomes))
            return ops, outcomes  # the extra ops are taken out by the store

        return await self.store.transact(
            tenant, ids, mutate, owner=owner, check_owners=owners.update
        )

    async def _pipelined(
        self,
        tenant: str,
        payload: Any,
        vocab: Vocabularies,
        now: str,
        step: Callable[[Doc | None, Doc], tuple[Doc | None, bool]],
        *,
        writer: WriteAccess,
    ) -> BatchResult:
        """Parse and apply the batch chunk by chunk, parsing the next while one is written."""
        self.check_shape(payload)
        bounds = [(i, min(i + CHUNK, len(payload))) for i in range(0, len(payload), CHUNK)]
        if len(bounds) > 1 and _repeats_across(payload, bounds):
            bounds = [(0, len(payload))]
        per_item = vocab if isinstance(vocab, list) else None
        parse_errors = BatchResult()
        tasks: list[asyncio.Task[BatchResult]] = []
        try:
            for start, end in bounds:
                docs = self._entities(
                    payload[start:end],
                    per_item[start:end] if per_item is not None else vocab,
                    now,
                    parse_errors,
                )
                tasks.append(
                    asyncio.ensure_future(
                        self._run(tenant, docs, BatchResult(), step, writer=writer)
                    )
                )
                await asyncio.sleep(0)  # let the chunk's transaction start before parsing on
        finally:
            # every chunk finishes (or fails) before the request answers: none left running
            outcomes = await asyncio.gather(*tasks, return_exceptions=True)
        failure = next((o for o in outcomes if isinstance(o, BaseException)), None)
        if failure is not None:
            raise failure
        result = BatchResult(errors=parse_errors.errors)
        for outcome in outcomes:
            assert isinstance(outcome, BatchResult)
            result.success.extend(outcome.success)
            result.errors.extend(outcome.errors)
            result.created.extend(outcome.created)
        return result

    async def create(
        self, tenant: str, payload: Any, vocab: Vocabularies, *, writer: WriteAccess
    ) -> BatchResult:
        """Batch create (§5.6.7): existing ids fail with AlreadyExists."""

        def step(existing: Doc | None, new: Doc) -> tuple[Doc | None, bool]:
            if existing is not None:
                raise AlreadyExists(f"entity {new['id']} already exists")
            return new, True

        return await self._pipelined(tenant, payload, vocab, utc_now(), step, writer=writer)

    async def upsert(
        self,
        tenant: str,
        payload: Any,
        vocab: Vocabularies,
        *,
        writer: WriteAccess,
        mode: str = "replace",
    ) -> BatchResult:
        """Batch upsert (§5.6.8): create or replace/update each entity."""
        now = utc_now()

        def step(existing: Doc | None, new: Doc) -> tuple[Doc | None, bool]:
            return mutations.upsert_entity(existing, new, now=now, mode=mode), existing is None

        return await self._pipelined(tenant, payload, vocab, now, step, writer=writer)

    def parse_parts(self, parts: Sequence[tuple[list[Any], Vocabularies]]) -> ParsedParts:
        """Parse several parts' entities (MQTT messages) for `upsert_parts`, ahead of the write."""
        parsed = ParsedParts(utc_now(), [], [], [BatchResult() for _ in parts])
        for index, (payload, vocab) in enumerate(parts):
            docs = self._entities(payload, vocab, parsed.now, parsed.results[index])
            parsed.docs.extend(docs)
            parsed.tags.extend([index] * len(docs))
        return parsed

    async def upsert_parts(
        self,
        tenant: str,
        parsed: ParsedParts,
        *,
        writer: WriteAccess,
        mode: str = "replace",
        extra: Callable[[list[BatchResult]], list[Any]] | None = None,
    ) -> list[BatchResult]:
        """Batch upsert of several parts' entities (`parse_parts`) in ONE store transaction.

        Each part (a list of entities, its vocabularies) is reported on its own: one result per
        part, in order. All entries apply in order, so entries of several parts for one entity
        apply in the parts' order. `extra(results)` runs inside the transaction and returns more
        ops for the store to write in it (the bridge's dead letters) — also when no part has a
        valid entity; nothing of it is written if the transaction fails. Not chunked: the
        caller bounds the size. Every entity created is owned by one organisation: a writer
        whose data-set mandates would spread them over several owners is refused (ValueError).
        """
        now = parsed.now

        def step(existing: Doc | None, new: Doc) -> tuple[Doc | None, bool]:
            return mutations.upsert_entity(existing, new, now=now, mode=mode), existing is None

        owners = {writer.owner_of_new(doc) for doc in parsed.docs} or {writer.org_id}
        if len(owners) > 1:
            raise ValueError("upsert_parts creates entities for one owner only")
        if not parsed.results and extra is None:
            return []
        return await self._run_group(
            tenant,
            parsed.docs,
            step,
            owner=owners.pop(),
            writer=writer,
            parts=parsed.tags,
            results=parsed.results,
            extra=extra,
        )

    async def update(
        self,
        tenant: str,
        payload: Any,
        vocab: Vocabularies,
        *,
        writer: WriteAccess,
        no_overwrite: bool = False,
    ) -> BatchResult:
        """Batch update (§5.6.9): only existing entities, only existing attributes unless appended."""
        now = utc_now()

        def step(existing: Doc | None, new: Doc) -> tuple[Doc | None, bool]:
            if existing is None:
                raise ResourceNotFound(f"entity {new['id']} not found")
            outcome = mutations.batch_update_entity(
                existing, new, now=now, no_overwrite=no_overwrite
            )
            if outcome.not_updated:
                # §5.6.9: attributes kept because of noOverwrite are reported for the entity
                # (a 207), while what could be appended is stored
                names = ", ".join(name for name, _ in outcome.not_updated)
                raise PartialUpdate(
                    f"entity {new['id']}: not updated (noOverwrite): {names}",
                    doc=outcome.doc if outcome.changed else None,
                )
            return (outcome.doc if outcome.changed else None), False

        return await self._pipelined(tenant, payload, vocab, now, step, writer=writer)

    async def merge(
        self, tenant: str, payload: Any, vocab: Vocabularies, *, writer: WriteAccess
    ) -> BatchResult:
        """Batch merge (§5.6.20): merge-patch semantics per entity."""
        now = utc_now()

        def step(existing: Doc | None, new: Doc) -> tuple[Doc | None, bool]:
            if existing is None:
                raise ResourceNotFound(f"entity {new['id']} not found")
            outcome = mutations.batch_merge_entity(existing, new, now=now)
            return (outcome.doc if outcome.changed else None), False

        return await self._pipelined(tenant, payload, vocab, now, step, writer=writer)

    async def delete(self, tenant: str, payload: Any, *, writer: WriteAccess) -> BatchResult:
        """Batch delete (§5.6.10): a JSON array of entity ids."""
        if not isinstance(payload, list):
            raise BadRequestData("batch delete takes a JSON array of entity ids")
        if not payload:
            raise BadRequestData("batch delete needs at least one entity id")
        if len(payload) > self.max_batch_size:
            raise BadRequestData(f"a batch may hold at most {self.max_batch_size} entities")
        result = BatchResult()
        ids: list[str] = []
        for item in payload:
            if not isinstance(item, str) or not is_uri(item):
                result.errors.append(
                    BatchError(
                        item if isinstance(item, str) else None,
                        BadRequestData(f"{item!r} is not a valid entity id"),
                    )
                )
            else:
                ids.append(item)
        if not ids:
            return result
        unique = list(dict.fromkeys(ids))
        owners: dict[str, str] = {}

        def mutate(current: dict[str, Doc | None]) -> tuple[list[WriteOp], BatchResult]:
            denied = writer.denied(owners, current)
            outcome = BatchResult(errors=list(result.errors))
            gone: set[str] = set()
            ops: list[WriteOp] = []
            for eid in ids:
                if eid in denied:
                    outcome.errors.append(BatchError(eid, _not_yours(eid)))
                    continue
                if current.get(eid) is None or eid in gone:
                    outcome.errors.append(
                        BatchError(eid, ResourceNotFound(f"entity {eid} not found"))
                    )
                    continue
                gone.add(eid)
                ops.append(Delete(eid))
                outcome.success.append(eid)
            return ops, outcome

        return await self.store.transact(
            tenant, unique, mutate, owner=writer.org_id, check_owners=owners.update
        )


def _not_yours(entity_id: str) -> Forbidden:
    return Forbidden(f"entity {entity_id} is owned by an organisation that has not mandated yours")


def _repeats_across(payload: list[Any], bounds: list[tuple[int, int]]) -> bool:
    """Whether some entity id occurs in more than one chunk (its entries must apply in order)."""
    home: dict[Any, int] = {}
    for chunk, (start, end) in enumerate(bounds):
        for item in payload[start:end]:
            eid = item.get("id") if isinstance(item, dict) else None
            if isinstance(eid, str) and home.setdefault(eid, chunk) != chunk:
                return True
    return False
