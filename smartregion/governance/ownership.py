"""Who may write which entity, and who owns what a write creates (docs/security.md).

Every entity is owned by an organisation. A writer (an editor or admin of organisation B) may
change an entity owned by A when A == B, or when A has mandated B — for all of A's data, or for
a data set of A whose entity types include one of the entity's types (and, for a data set with
a scope, whose scope lies within it). A new entity is owned by B, unless it falls in such a data
set of an owner A that mandated B: then A owns it (the owner who commissioned the collection
keeps the data). `WriteAccess` holds what this needs, loaded
once per request (`Governance.write_access`), so the check inside a write transaction is pure.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from smartregion.core.scopes import scopes_within

__all__ = ["WriteAccess"]


@dataclass(frozen=True, slots=True)
class WriteAccess:
    """What one writer may write; built per request, consulted inside the write transaction."""

    #: the organisation writing (new entities are owned by it unless a mandate says otherwise)
    org_id: str
    #: owners that mandated `org_id` for all their data
    mandators: frozenset[str] = frozenset()
    #: (owner, entity type IRIs, scope or None) of each data set whose owner mandated `org_id`,
    #: in a stable order
    datasets: tuple[tuple[str, frozenset[str], str | None], ...] = ()
    #: a system writer (demo loader, MQTT bridge, operator): may change every entity
    unrestricted: bool = False

    @classmethod
    def system(cls, org_id: str) -> WriteAccess:
        """A trusted in-process writer that creates as `org_id` and may change anything."""
        return cls(org_id, unrestricted=True)

    def may_write(self, owner: str, doc: dict[str, Any] | None) -> bool:
        """Whether this writer may change (or delete) an entity owned by `owner`."""
        if self.unrestricted or owner == self.org_id or owner in self.mandators:
            return True
        return any(o == owner and _holds(t, scope, doc) for o, t, scope in self.datasets)

    def owner_of_new(self, doc: dict[str, Any]) -> str:
        """The owner of a new entity this writer creates."""
        for owner, dataset_types, scope in self.datasets:
            if _holds(dataset_types, scope, doc):
                return owner
        return self.org_id

    def denied(self, owners: dict[str, str], current: dict[str, Any]) -> set[str]:
        """The ids among `current` (id -> document or None) this writer may not change."""
        return {
            eid
            for eid, doc in current.items()
            if doc is not None and not self.may_write(owners.get(eid, ""), doc)
        }


def _types(doc: dict[str, Any] | None) -> frozenset[str]:
    if doc is None:
        return frozenset()
    value: Iterable[str] | str = doc.get("type", ())
    return frozenset([value] if isinstance(value, str) else value)


def _holds(types: frozenset[str], scope: str | None, doc: dict[str, Any] | None) -> bool:
    """Whether a data set (types, scope) holds the entity `doc` (as the read filter's slices)."""
    if not types & _types(doc):
        return False
    return scope is None or (doc is not None and scopes_within(scope, doc.get("scope")))
