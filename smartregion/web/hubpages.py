"""What the pages of challenges, solutions, joint purchases, funding and follows share: the hub
services of the portal, texts in the reader's language, taxonomy labels, facets of a list, and the
reader's permissions on an object (web/hubviews.py is the same for use cases, initiatives and
actors)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from smartregion.errors import ResourceNotFound, Unauthenticated
from smartregion.governance import Principal
from smartregion.hub.follows import Follows
from smartregion.hub.matchmaking import Matchmaking
from smartregion.hub.objects import Hub
from smartregion.storage.hub import HubObject
from smartregion.web.portal import Portal, Reader, hub_text

__all__ = ["Facet", "HubPages", "text"]

#: the most values one facet lists
FACET_VALUES = 12


#: a {nl, en} text in the reader's language, else the other one
text = hub_text


@dataclass(frozen=True, slots=True)
class Facet:
    """One value of a facet: its query value, label, count and whether it is chosen."""

    value: str
    label: str
    count: int
    selected: bool


class HubPages:
    """The hub services behind the portal's pages (404 when the store keeps no hub records)."""

    def __init__(self, portal: Portal) -> None:
        self.portal = portal

    @property
    def hub(self) -> Hub:
        """The hub service."""
        if self.portal.hub is None:
            raise ResourceNotFound("this platform runs without the ecosystem hub")
        return self.portal.hub

    @property
    def matchmaking(self) -> Matchmaking:
        """The hub's matching service."""
        if self.portal.matchmaking is None:
            raise ResourceNotFound("this platform runs without the hub's matching")
        return self.portal.matchmaking

    def label(self, term_id: str, lang: str) -> str:
        """A taxonomy term's label in the reader's language (its id when unknown)."""
        term = self.hub.taxonomy.get(term_id)
        return text(term.labels, lang) or term_id if term is not None else term_id

    def labels(self, term_ids: Any, lang: str, scheme: str | None = None) -> list[tuple[str, str]]:
        """(id, label) of terms, optionally of one scheme (its prefix, e.g. "domain")."""
        return [
            (t, self.label(t, lang))
            for t in term_ids or []
            if scheme is None or t.startswith(scheme + ":")
        ]

    def domains(self, lang: str) -> list[tuple[str, str]]:
        """Every current focus domain (id, label), broader ones first in file order."""
        return [
            (t.id, ("— " if t.parent else "") + (text(t.labels, lang) or t.id))
            for t in self.hub.taxonomy.in_scheme("domain")
            if t.replaced_by is None
        ]

    async def org_names(self) -> dict[str, str]:
        """Organisation id -> name."""
        return {o.id: o.name for o in await self.hub.governance.store.list_organisations()}

    def facet(self, counts: dict[str, int], chosen: str, label: Any) -> list[Facet]:
        """A facet's most frequent values (the chosen one always shown)."""
        ordered = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
        top = ordered[:FACET_VALUES]
        if chosen and chosen not in dict(top) and chosen in counts:
            top.append((chosen, counts[chosen]))
        return [Facet(v, str(label(v)), n, v == chosen) for v, n in top]

    async def may_edit(self, reader: Reader, obj: HubObject) -> bool:
        """Whether the reader may change the object (its owner's editors, platform admins)."""
        if reader.principal is None:
            return False
        return await self.hub.may_edit(reader.principal, obj.owner)

    async def signed_in(self, reader: Reader) -> Principal:
        """The reader's principal (Unauthenticated: the sign-in page, for a GET)."""
        if reader.principal is None:
            raise Unauthenticated("sign in first")
        return reader.principal

    async def my_follows(self, reader: Reader) -> dict[str, str]:
        """target -> follow id of the follows the reader started."""
        if reader.principal is None or self.portal.hub is None:
            return {}
        actor = reader.principal.actor
        return {
            f.target: f.id
            for f in await Follows(self.hub).of(reader.principal)
            if f.created_by == actor
        }
