"""Linked entity retrieval (NGSI-LD 1.8 §4.5.23): fetch the entities relationships point at.

Starting from the entities a retrieve or query returns, `fetch_linked` follows the relationships
the caller says to follow (Relationship objects, ListRelationship objectLists), one hop per join
level, with one `Store.get_entities` call per level. Each root carries a *state* (for the API:
the render options of that level, which decide which relationships are shown and how the linked
entity is projected); the state of a linked entity comes from `follow`. An entity is fetched at
most once and a (entity, state) pair is expanded at most once, so cycles end.

Only entities the caller may read (`readable`) are fetched: an unreadable target is treated
exactly like one that does not exist — not joined, not returned, not followed further.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Hashable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from smartregion.broker.disclosure import Discloser
from smartregion.storage.base import EntityQuery, Readable, Store

__all__ = ["LinkedEntities", "fetch_linked"]

Doc = dict[str, Any]
S = TypeVar("S", bound=Hashable)


@dataclass(slots=True)
class LinkedEntities(Generic[S]):
    """The linked entities found, in the order they were reached (level by level)."""

    #: entity id -> (document, state of the first path that reached it)
    found: dict[str, tuple[Doc, S]] = field(default_factory=dict)

    def docs(self) -> dict[str, Doc]:
        """The documents by id (what an inline join embeds)."""
        return {entity_id: doc for entity_id, (doc, _) in self.found.items()}

    def __len__(self) -> int:
        return len(self.found)


async def fetch_linked(
    store: Store,
    tenant: str,
    roots: Sequence[tuple[Doc, S]],
    *,
    levels: int,
    follow: Callable[[Doc, S], Iterable[tuple[str, S]]],
    known: Collection[str] = (),
    readable: Readable | None,
) -> LinkedEntities[S]:
    """Fetch the entities reachable from `roots` in at most `levels` hops.

    `follow(doc, state)` yields (linked entity id, state for it). Root entities and the ids in
    `known` (§4.5.23 `containedBy`: entities the requester already holds) are never fetched or
    returned; ids that do not exist are skipped.
    """
    result: LinkedEntities[S] = LinkedEntities()
    have: dict[str, Doc] = {doc["id"]: doc for doc, _ in roots}
    excluded = set(have) | set(known)
    absent: set[str] = set()  # asked for once and not there: dangling relationships
    expanded: set[tuple[str, S]] = {(doc["id"], state) for doc, state in roots}
    frontier: list[tuple[Doc, S]] = list(roots)
    for _ in range(max(levels, 0)):
        wanted: list[tuple[str, S]] = []
        for doc, state in frontier:
            for target, child in follow(doc, state):
                if target not in known and (target, child) not in expanded:
                    expanded.add((target, child))
                    wanted.append((target, child))
        if not wanted:
            break
        missing = list(dict.fromkeys(t for t, _ in wanted if t not in have and t not in absent))
        if missing:
            # one round trip per level, whatever the fan-out
            have.update(await _fetch(store, tenant, missing, readable))
            absent.update(t for t in missing if t not in have)
        frontier = []
        for target, child in wanted:
            linked = have.get(target)
            if linked is None:
                continue  # a dangling relationship: the object does not exist (any more)
            frontier.append((linked, child))
            if target not in excluded and target not in result.found:
                result.found[target] = (linked, child)
    return result


async def _fetch(
    store: Store, tenant: str, ids: list[str], readable: Readable | None
) -> dict[str, Doc]:
    """The documents of those `ids` that exist and the caller may read."""
    if readable is None:
        return await store.get_entities(tenant, ids)
    # the filtered query of every read path: one rule for what may be read
    found = await store.query(
        tenant, EntityQuery(ids=tuple(ids), limit=len(ids), readable=readable)
    )
    # linked entities are shown as the reader may see them, like every other read
    docs = await Discloser(store).documents(tenant, found.docs, readable)
    return {doc["id"]: doc for doc in docs}
