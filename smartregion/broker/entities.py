"""Entity and attribute provision (NGSI-LD 1.8 §5.6.1–§5.6.6, §5.6.17–§5.6.19) and retrieval (§5.7.1).

Every write reads the current document with its row locked, applies a pure mutation from
`smartregion.core.mutations`, and commits through `Store.transact` before it returns: an
acknowledged write is durable, and a write that fails changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any, TypeVar

from smartregion.broker.disclosure import Discloser
from smartregion.core import mutations
from smartregion.core.entities import Vocabulary, parse_attribute, parse_attributes, parse_entity
from smartregion.core.mutations import UpdateOutcome
from smartregion.core.times import utc_now
from smartregion.errors import AlreadyExists, BadRequestData, NonExistingTenant, ResourceNotFound
from smartregion.governance import Forbidden, WriteAccess
from smartregion.storage.base import (
    DEFAULT_TENANT,
    Delete,
    EntityQuery,
    OwnersCheck,
    Put,
    Readable,
    Store,
    WriteOp,
)

Doc = dict[str, Any]
Current = dict[str, Doc | None]
T = TypeVar("T")
Mutate = Callable[[Current], tuple[list[WriteOp], T]]


def guarded(writer: WriteAccess, mutate: Mutate[T]) -> tuple[Mutate[T], OwnersCheck]:
    """`mutate`, refused with Forbidden when an entity it is given is one `writer` may not change.

    The store reports the owners (the second value, its `check_owners`) inside the transaction,
    just before it calls `mutate`; a store that does not report them leaves every existing
    entity unowned, which only an unrestricted writer may change (fail closed).
    """
    owners: dict[str, str] = {}

    def run(current: Current) -> tuple[list[WriteOp], T]:
        denied = writer.denied(owners, current)
        if denied:
            raise Forbidden(
                f"entity {min(denied)} is owned by an organisation that has not mandated yours"
            )
        return mutate(current)

    return run, owners.update


class EntityService:
    """Create, read, update and delete single entities and their attributes."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.discloser = Discloser(store)

    async def check_tenant(self, tenant: str) -> None:
        """Raise NonExistingTenant when a non-default tenant has never been written to."""
        if tenant != DEFAULT_TENANT and not await self.store.tenant_exists(tenant):
            raise NonExistingTenant(f"tenant {tenant!r} does not exist")

    async def create(
        self, tenant: str, payload: Any, vocab: Vocabulary, *, writer: WriteAccess
    ) -> str:
        """Create an entity (§5.6.1); AlreadyExists if its id is taken."""
        doc = parse_entity(payload, vocab, now=utc_now())
        entity_id: str = doc["id"]

        def mutate(current: Current) -> tuple[list[WriteOp], str]:
            if current.get(entity_id) is not None:
                raise AlreadyExists(f"entity {entity_id} already exists")
            return [Put(doc)], entity_id

        return await self._transact(
            tenant, [entity_id], mutate, writer, owner=writer.owner_of_new(doc)
        )

    async def retrieve(self, tenant: str, entity_id: str, *, readable: Readable | None) -> Doc:
        """The internal document of one entity; ResourceNotFound if absent or not readable.

        The same filtered query as every other read: an entity the caller may not read is
        indistinguishable from one that does not exist.
        """
        found = await self.store.query(
            tenant, EntityQuery(ids=(entity_id,), limit=1, readable=readable)
        )
        doc = found.docs[0] if found.docs else None
        if doc is None:
            await self.check_tenant(tenant)
            raise ResourceNotFound(f"entity {entity_id} not found")
        # what the reader sees of it (attribute classes, open views), the read audited
        shown = await self.discloser.documents(tenant, [doc], readable)
        if not shown:  # deleted between the two reads
            raise ResourceNotFound(f"entity {entity_id} not found")
        return shown[0]

    async def delete(self, tenant: str, entity_id: str, *, writer: WriteAccess) -> None:
        """Delete an entity (§5.6.6)."""
        await self.check_tenant(tenant)

        def mutate(current: Current) -> tuple[list[WriteOp], None]:
            if current.get(entity_id) is None:
                raise ResourceNotFound(f"entity {entity_id} not found")
            return [Delete(entity_id)], None

        await self._transact(tenant, [entity_id], mutate, writer)

    async def replace(
        self, tenant: str, entity_id: str, payload: Any, vocab: Vocabulary, *, writer: WriteAccess
    ) -> None:
        """Replace an entity (§5.6.18): PUT /entities/{id}."""
        await self.check_tenant(tenant)
        now = utc_now()
        if isinstance(payload, dict) and "id" not in payload:
            payload = {**payload, "id": entity_id}
        new_doc = parse_entity(payload, vocab, now=now)
        if new_doc["id"] != entity_id:
            raise BadRequestData(
                f"entity id {new_doc['id']} in the body differs from {entity_id} in the URL"
            )

        def mutate(current: Current) -> tuple[list[WriteOp], None]:
            existing = current.get(entity_id)
            if existing is None:
                raise ResourceNotFound(f"entity {entity_id} not found")
            return [Put(mutations.replace_entity(existing, new_doc, now=now))], None

        await self._transact(tenant, [entity_id], mutate, writer)

    async def merge(
        self, tenant: str, entity_id: str, payload: Any, vocab: Vocabulary, *, writer: WriteAccess
    ) -> UpdateOutcome:
        """Merge a fragment into an entity (§5.6.17): PATCH /entities/{id}."""
        await self.check_tenant(tenant)
        now = utc_now()
        fragment = parse_attributes(payload, vocab, now=now, allow_id_type=True, mode="merge")
        self._check_same_id(fragment, entity_id)
        types = fragment.pop("type", None)
        scope = fragment.pop("scope", None)

        def mutate(current: Current) -> tuple[list[WriteOp], UpdateOutcome]:
            existing = current.get(entity_id)
            if existing is None:
                raise ResourceNotFound(f"entity {entity_id} not found")
            outcome = mutations.merge_entity(
                existing, fragment, now=now, types=_as_list(types), scope=_as_list(scope)
            )
            return _put_if_changed(outcome), outcome

        return await self._transact(tenant, [entity_id], mutate, writer)

    async def append_attributes(
        self,
        tenant: str,
        entity_id: str,
        payload: Any,
        vocab: Vocabulary,
        *,
        writer: WriteAccess,
        no_overwrite: bool = False,
    ) -> UpdateOutcome:
        """Append attributes (§5.6.3): POST /entities/{id}/attrs."""
        await self.check_tenant(tenant)
        now = utc_now()
        attrs = parse_attributes(payload, vocab, now=now, allow_id_type=True)
        self._check_same_id(attrs, entity_id)
        types = _as_list(attrs.pop("type", None))
        scope = _as_list(attrs.pop("scope", None))

        def mutate(current: Current) -> tuple[list[WriteOp], UpdateOutcome]:
            existing = current.get(entity_id)
            if existing is None:
                raise ResourceNotFound(f"entity {entity_id} not found")
            outcome = mutations.append_attributes(
                existing, attrs, now=now, no_overwrite=no_overwrite, types=types, scope=scope
            )
            return _put_if_changed(outcome), outcome

        return await self._transact(tenant, [entity_id], mutate, writer)

    async def update_attributes(
        self, tenant: str, entity_id: str, payload: Any, vocab: Vocabulary, *, writer: WriteAccess
    ) -> UpdateOutcome:
        """Update existing attributes (§5.6.2): PATCH /entities/{id}/attrs."""
        await self.check_tenant(tenant)
        now = utc_now()
        attrs = parse_attributes(payload, vocab, now=now, allow_id_type=True)
        self._check_same_id(attrs, entity_id)
        types = _as_list(attrs.pop("type", None))
        scope = _as_list(attrs.pop("scope", None))

        def mutate(current: Current) -> tuple[list[WriteOp], UpdateOutcome]:
            existing = current.get(entity_id)
            if existing is None:
                raise ResourceNotFound(f"entity {entity_id} not found")
            outcome = mutations.update_attributes(
                existing, attrs, now=now, types=types, scope=scope
            )
            return _put_if_changed(outcome), outcome

        return await self._transact(tenant, [entity_id], mutate, writer)

    async def partial_update_attribute(
        self,
        tenant: str,
        entity_id: str,
        attr: str,
        payload: Any,
        vocab: Vocabulary,
        *,
        writer: WriteAccess,
    ) -> UpdateOutcome:
        """Partial attribute update (§5.6.4): PATCH /entities/{id}/attrs/{attrId}."""
        await self.check_tenant(tenant)
        now = utc_now()
        name = vocab.expand_term(attr)
        fragment = _single_fragment(payload, name, vocab, now)

        def mutate(current: Current) -> tuple[list[WriteOp], UpdateOutcome]:
            existing = current.get(entity_id)
            if existing is None:
                raise ResourceNotFound(f"entity {entity_id} not found")
            outcome = mutations.partial_attribute_update(existing, name, fragment, now=now)
            return _put_if_changed(outcome), outcome

        return await self._transact(tenant, [entity_id], mutate, writer)

    async def replace_attribute(
        self,
        tenant: str,
        entity_id: str,
        attr: str,
        payload: Any,
        vocab: Vocabulary,
        *,
        writer: WriteAccess,
    ) -> UpdateOutcome:
        """Replace an attribute (§5.6.19): PUT /entities/{id}/attrs/{attrId}."""
        await self.check_tenant(tenant)
        now = utc_now()
        name = vocab.expand_term(attr)
        _, instances = parse_attribute(attr, payload, vocab, now=now)
        if len(instances) != 1:
            raise BadRequestData("replace attribute takes exactly one attribute instance")

        def mutate(current: Current) -> tuple[list[WriteOp], UpdateOutcome]:
            existing = current.get(entity_id)
            if existing is None:
                raise ResourceNotFound(f"entity {entity_id} not found")
            outcome = mutations.replace_attribute(existing, name, instances[0], now=now)
            return _put_if_changed(outcome), outcome

        return await self._transact(tenant, [entity_id], mutate, writer)

    async def delete_attribute(
        self,
        tenant: str,
        entity_id: str,
        attr: str,
        vocab: Vocabulary,
        *,
        writer: WriteAccess,
        dataset_id: str | None = None,
        delete_all: bool = False,
    ) -> None:
        """Delete an attribute, one datasetId instance or all instances (§5.6.5)."""
        await self.check_tenant(tenant)
        name = vocab.expand_term(attr)
        now = utc_now()

        def mutate(current: Current) -> tuple[list[WriteOp], None]:
            existing = current.get(entity_id)
            if existing is None:
                raise ResourceNotFound(f"entity {entity_id} not found")
            doc = mutations.delete_attribute(
                existing, name, dataset_id=dataset_id, delete_all=delete_all, now=now
            )
            return [Put(doc)], None

        await self._transact(tenant, [entity_id], mutate, writer)

    async def _transact(
        self,
        tenant: str,
        ids: list[str],
        mutate: Mutate[T],
        writer: WriteAccess,
        *,
        owner: str | None = None,
    ) -> T:
        """`Store.transact`, refused (Forbidden) when it would change what `writer` may not."""
        run, check = guarded(writer, mutate)
        return await self.store.transact(
            tenant, ids, run, owner=owner or writer.org_id, check_owners=check
        )

    @staticmethod
    def _check_same_id(fragment: dict[str, Any], entity_id: str) -> None:
        body_id = fragment.pop("id", None)
        if body_id is not None and body_id != entity_id:
            raise BadRequestData(
                f"entity id {body_id} in the body differs from {entity_id} in the URL"
            )


def _put_if_changed(outcome: UpdateOutcome) -> list[WriteOp]:
    return [Put(outcome.doc)] if outcome.changed else []


def _as_list(value: Any) -> list[str] | None:
    if value is None:
        return None
    if isinstance(value, list):
        return value
    return [value]


def _single_fragment(payload: Any, name: str, vocab: Vocabulary, now: str) -> dict[str, Any]:
    """Parse the body of a partial attribute update: one attribute instance fragment."""
    if not isinstance(payload, dict):
        raise BadRequestData("the body of a partial attribute update must be a JSON object")
    _, instances = parse_attribute(name, payload, vocab, now=now, partial=True)
    if len(instances) != 1:
        raise BadRequestData("a partial attribute update takes exactly one attribute fragment")
    return instances[0]


class PurgeService:
    """Purge entities matching a query, or prune their attributes (NGSI-LD 1.8 §5.6.21)."""

    def __init__(self, store: Store) -> None:
        self.store = store

    async def purge(
        self,
        tenant: str,
        query: EntityQuery,
        *,
        writer: WriteAccess,
        keep: frozenset[str] | None = None,
        drop: frozenset[str] | None = None,
    ) -> int:
        """Delete matching entities, or with keep/drop only their attributes; returns how many.

        Only the entities `writer` may change are touched; the others are left as they are.
        """
        if keep is not None and drop is not None:
            raise BadRequestData("keep and drop exclude each other")
        if keep is None and drop is None and writer.unrestricted:
            return await self.store.delete_where(tenant, query)
        now = utc_now()

        def purge(doc: Doc) -> WriteOp | None:
            if keep is None and drop is None:
                return Delete(doc["id"])
            attrs = doc.get("attrs", {})
            if keep is not None:
                kept = {k: v for k, v in attrs.items() if k in keep}
            else:
                kept = {k: v for k, v in attrs.items() if k not in (drop or frozenset())}
            return Put({**doc, "attrs": kept, "modifiedAt": now}) if kept != attrs else None

        done = skipped = 0
        while True:
            page = await self.store.query(
                tenant, replace(query, limit=PURGE_PAGE, offset=skipped, count=False)
            )
            ids = [doc["id"] for doc in page.docs]
            if not ids:
                return done
            changed, refused = await self._purge_page(tenant, ids, purge, writer)
            done += changed
            if keep is not None or drop is not None or len(ids) < PURGE_PAGE:
                return done  # keep/drop: one bounded page, as before
            skipped += refused  # deleted entities leave the result; refused ones stay in it

    async def _purge_page(
        self,
        tenant: str,
        ids: list[str],
        purge: Callable[[Doc], WriteOp | None],
        writer: WriteAccess,
    ) -> tuple[int, int]:
        """Apply `purge` to those of `ids` that `writer` may change: (changed, refused)."""
        owners: dict[str, str] = {}

        def mutate(current: Current) -> tuple[list[WriteOp], tuple[int, int]]:
            denied = writer.denied(owners, current)
            ops = [
                op
                for eid in ids
                if (doc := current.get(eid)) is not None
                and eid not in denied
                and (op := purge(doc)) is not None
            ]
            return ops, (len(ops), len(denied))

        return await self.store.transact(
            tenant, ids, mutate, owner=writer.org_id, check_owners=owners.update
        )


#: the most entities one purge with keep/drop rewrites (a bounded transaction)
PURGE_PAGE = 100_000
