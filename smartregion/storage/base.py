"""The `Store` interface every storage backend implements, and the values it exchanges.

Contract (all backends, checked by `tests/storage/test_contract.py`):

- Documents are internal entity documents (`docs/architecture.md`): every term an expanded IRI.
- `transact` is the only entity write path. It reads the current documents of the named ids with
  those entities locked against every other writer (an id that does not exist is locked too, so
  two concurrent creates of one id cannot both succeed), calls `mutate` once, applies the ops it
  returns and commits; only after the commit is durable does it return `mutate`'s result. If
  `mutate` (or the database) raises, nothing is written. New entities are recorded as owned by
  `owner`; an existing entity keeps its owner. With `check_owners`, the store first calls it
  (inside the transaction, the entities locked) with the owner of every named entity that
  exists — what write authorisation needs (`governance/ownership.py`); it may raise to abort.
- Queries return entities in a stable order (the internal key: creation order), honour
  `limit`/`offset`, and give the exact number of matches when `count` is asked for.
- `EntityQuery.readable` (and the `readable` argument of the discovery methods) restricts every
  result to what a caller may read, exactly, in SQL: what it excludes is never returned, counted
  or described, as if it did not exist. None means unrestricted (internal callers).
- The Python evaluators (`core.qlang.matches`, `core.geo.geo_matches`,
  `core.scopes.scope_matches`) define what matches; SQL push-down only ever narrows candidates
  to a superset of that, and is trusted on its own only where it is provably exact.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple, TypeVar

from smartregion.core.scopes import scopes_within

if TYPE_CHECKING:
    from smartregion.core.geo import GeoQuery
    from smartregion.core.privacy import Disclosure

__all__ = [
    "DEFAULT_TENANT",
    "AttrInfo",
    "Delete",
    "EntityQuery",
    "FeedEntry",
    "OwnersCheck",
    "Put",
    "QueryResult",
    "Readable",
    "Slice",
    "Store",
    "StoredContext",
    "TypeInfo",
    "WriteOp",
]

T = TypeVar("T")

#: called by `Store.transact` before `mutate` with {entity id: owner} of the existing entities
OwnersCheck = Callable[[Mapping[str, str]], None]

#: the default tenant's name in storage (NGSI-LD 1.8 §4.14: requests without NGSILD-Tenant)
DEFAULT_TENANT = ""


class Slice(NamedTuple):
    """One owner's entities having one of `types` and, with a `scope`, a scope within it."""

    owner: str
    #: expanded entity type IRIs
    types: frozenset[str]
    #: a data set's scope (`/Madrid`): only entities with a scope that is it or below it
    #: (`/Madrid`, `/Madrid/Gardens`; `core.scopes.scopes_within`); None: any entity
    scope: str | None = None

    def admits(self, owner: str, types: Iterable[str], scopes: Iterable[str] | None) -> bool:
        """Whether an entity of `owner` with `types` and `scopes` is in the slice."""
        return (
            owner == self.owner
            and not self.types.isdisjoint(types)
            and (self.scope is None or scopes_within(self.scope, scopes))
        )


@dataclass(frozen=True, slots=True)
class Readable:
    """The entities a caller may read: all of some owners', and slices of others'.

    An entity is readable when its owner is in `owners`, or when some slice names its owner and
    at least one of its types (and, for a scoped slice, has a scope within the slice's).
    Organisations and types unknown to the store select nothing.
    """

    #: organisations (ids, as entities are owned in storage) whose entities are all readable
    owners: frozenset[str] = frozenset()
    #: that owner's entities with one of the types (and within the scope, if any)
    slices: tuple[Slice, ...] = ()
    #: what the reader sees of the entities it reads, when that is not everything stored
    #: (`core/privacy.py`: attribute classes, open views, read audit); not part of the filter
    disclosure: Disclosure | None = field(default=None, compare=False)

    def admits(self, owner: str, types: Iterable[str], scopes: Iterable[str] | None) -> bool:
        """Whether an entity of `owner` with `types` and `scopes` (its `scope` member; None:
        none) is readable — the rule SQL implements."""
        if owner in self.owners:
            return True
        have = frozenset(types)
        found = list(scopes) if scopes is not None else None
        return any(s.admits(owner, have, found) for s in self.slices)


@dataclass(slots=True)
class EntityQuery:
    """What to select: the conjunction of every criterion given (NGSI-LD 1.8 §5.7.2)."""

    ids: tuple[str, ...] | None = None
    #: a regular expression searched for in the entity id (Python `re.search` semantics)
    id_pattern: str | None = None
    #: disjunctive normal form: an entity matches if ANY conjunct is a subset of its types
    types: list[frozenset[str]] | None = None
    #: the entity must have at least one of these attributes
    attrs: frozenset[str] | None = None
    #: a `smartregion.core.qlang` expression
    q: Any = None
    geo: GeoQuery | None = None
    #: a `smartregion.core.scopes` expression
    scope_q: Any = None
    limit: int = 20
    offset: int = 0
    count: bool = False
    #: what the caller may read (None: unrestricted — internal callers and the operator)
    readable: Readable | None = None


@dataclass(slots=True)
class QueryResult:
    """One page of matching documents and, when asked for, the total number of matches."""

    docs: list[dict[str, Any]]
    count: int | None = None


@dataclass(frozen=True, slots=True)
class Put:
    """Insert or replace the entity `doc["id"]`."""

    doc: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Delete:
    """Delete the entity `entity_id` (a no-op if it does not exist)."""

    entity_id: str


WriteOp = Put | Delete


def last_op_per_entity(ops: Sequence[WriteOp]) -> dict[str, WriteOp]:
    """The write each entity ends up with: the last op on an id wins, in the order of last use."""
    final: dict[str, WriteOp] = {}
    for op in ops:
        eid = op.doc["id"] if isinstance(op, Put) else op.entity_id
        final.pop(eid, None)
        final[eid] = op
    return final


@dataclass(slots=True)
class TypeInfo:
    """An entity type in use in a tenant (NGSI-LD 1.8 §5.2.25 EntityTypeInfo)."""

    type_iri: str
    entity_count: int
    attribute_names: list[str] = field(default_factory=list)


@dataclass(slots=True)
class AttrInfo:
    """An attribute name in use in a tenant (NGSI-LD 1.8 §5.2.28 Attribute)."""

    attr_iri: str
    #: number of attribute instances with this name
    attribute_count: int
    #: e.g. ["Property", "Relationship"]
    attribute_types: list[str] = field(default_factory=list)
    #: entity types having it
    type_names: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class FeedEntry:
    """One committed entity transaction in the change feed: which entities it wrote."""

    seq: int
    tenant: str
    entity_ids: tuple[str, ...]
    #: commit time, seconds since the epoch
    at: float


@dataclass(slots=True)
class StoredContext:
    """A hosted or cached @context document (NGSI-LD 1.8 §5.13)."""

    context_id: str
    document: Any
    #: "hosted" | "cached" | "implicitlycreated"
    kind: str
    created_at: str


class Store(abc.ABC):
    """A storage backend: entity documents, their indexes, tenants and @context documents."""

    #: "sqlite" | "postgresql"
    backend: str

    @abc.abstractmethod
    async def open(self) -> None:
        """Connect (and create the database file or pool)."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Release every connection and thread."""

    @abc.abstractmethod
    async def migrate(self) -> list[str]:
        """Apply pending numbered migrations; return the names applied now."""

    @abc.abstractmethod
    async def get_entity(self, tenant: str, entity_id: str) -> dict[str, Any] | None:
        """The current document of one entity, or None."""

    @abc.abstractmethod
    async def get_entities(self, tenant: str, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        """The current documents of those ids that exist, keyed by id."""

    @abc.abstractmethod
    async def owners_of(self, tenant: str, ids: Sequence[str]) -> dict[str, str]:
        """The owner organisation of each of those entities that exist, keyed by entity id."""

    @abc.abstractmethod
    async def transact(
        self,
        tenant: str,
        entity_ids: Sequence[str],
        mutate: Callable[[dict[str, dict[str, Any] | None]], tuple[list[WriteOp], T]],
        *,
        owner: str,
        check_owners: OwnersCheck | None = None,
    ) -> T:
        """Read-lock-mutate-commit (see the module docstring); returns `mutate`'s result."""

    @abc.abstractmethod
    async def query(self, tenant: str, query: EntityQuery) -> QueryResult:
        """Matching entities in internal-key order, one page, with the count if asked for."""

    @abc.abstractmethod
    async def delete_where(self, tenant: str, query: EntityQuery) -> int:
        """Delete every entity matching (ignoring limit/offset); return how many."""

    @abc.abstractmethod
    async def tenant_exists(self, tenant: str) -> bool:
        """Whether the tenant has been written to (the default tenant always exists)."""

    @abc.abstractmethod
    async def tenants(self) -> list[str]:
        """Every tenant's name, sorted (the default tenant is "")."""

    @abc.abstractmethod
    async def entity_types(self, tenant: str, readable: Readable | None = None) -> list[TypeInfo]:
        """The entity types of a tenant's (readable) entities, with their counts, by IRI."""

    @abc.abstractmethod
    async def attribute_infos(
        self, tenant: str, readable: Readable | None = None
    ) -> list[AttrInfo]:
        """The attribute names of a tenant's (readable) entities, with their counts, by IRI."""

    @abc.abstractmethod
    async def put_context(self, context_id: str, document: Any, *, kind: str = "hosted") -> None:
        """Store (or replace) an @context document under its id/URL."""

    @abc.abstractmethod
    async def get_context(self, context_id: str) -> StoredContext | None:
        """A stored @context document, or None."""

    @abc.abstractmethod
    async def delete_context(self, context_id: str) -> bool:
        """Delete a stored @context; whether it existed."""

    @abc.abstractmethod
    async def list_contexts(self) -> list[StoredContext]:
        """Every stored @context, sorted by id."""

    @abc.abstractmethod
    async def change_feed(self, after: int, *, limit: int = 500) -> list[FeedEntry]:
        """Committed entity transactions with a sequence number above `after`, in order.

        Every transaction that writes entities adds one entry, committed with it (live streams
        read it from any process). Numbers are never reused, but on PostgreSQL concurrent
        transactions may commit out of number order: a reader re-reads a short span behind its
        position and skips what it has seen.
        """

    @abc.abstractmethod
    async def change_feed_head(self) -> int:
        """The highest sequence number in the change feed (0 when empty)."""

    @abc.abstractmethod
    async def prune_change_feed(self, before: float) -> int:
        """Delete feed entries committed before `before` (epoch seconds); how many."""

    @abc.abstractmethod
    async def health(self) -> None:
        """Raise if the database is unreachable."""
