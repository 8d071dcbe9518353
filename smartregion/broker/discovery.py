"""Discovery of entity types and attributes (NGSI-LD 1.8 §5.7.5–§5.7.8).

Every method describes only what the caller may read (`readable`; None: everything): a type or
attribute that no readable entity has is not listed and answers ResourceNotFound, and counts
cover readable entities only.
"""

from __future__ import annotations

from smartregion.errors import ResourceNotFound
from smartregion.storage.base import AttrInfo, Readable, Store, TypeInfo


class DiscoveryService:
    """What types and attributes a tenant holds."""

    def __init__(self, store: Store) -> None:
        self.store = store

    async def types(self, tenant: str, *, readable: Readable | None) -> list[TypeInfo]:
        """Every entity type with its entity count and attribute names."""
        found = await self.store.entity_types(tenant, readable)
        return sorted(found, key=lambda t: t.type_iri)

    async def type_info(self, tenant: str, type_iri: str, *, readable: Readable | None) -> TypeInfo:
        """One entity type; ResourceNotFound when no (readable) entity has it."""
        for info in await self.store.entity_types(tenant, readable):
            if info.type_iri == type_iri:
                return info
        raise ResourceNotFound(f"entity type {type_iri} not found")

    async def attributes(self, tenant: str, *, readable: Readable | None) -> list[AttrInfo]:
        """Every attribute name with counts, attribute kinds and entity types."""
        found = await self.store.attribute_infos(tenant, readable)
        return sorted(found, key=lambda a: a.attr_iri)

    async def attribute_info(
        self, tenant: str, attr_iri: str, *, readable: Readable | None
    ) -> AttrInfo:
        """One attribute; ResourceNotFound when no (readable) entity has it."""
        for info in await self.store.attribute_infos(tenant, readable):
            if info.attr_iri == attr_iri:
                return info
        raise ResourceNotFound(f"attribute {attr_iri} not found")
