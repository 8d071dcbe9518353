"""Discovery of entity types and attributes (NGSI-LD 1.8 §5.7.5–§5.7.8)."""

from __future__ import annotations

from smartregion.errors import ResourceNotFound
from smartregion.storage.base import AttrInfo, Store, TypeInfo


class DiscoveryService:
    """What types and attributes a tenant holds."""

    def __init__(self, store: Store) -> None:
        self.store = store

    async def types(self, tenant: str) -> list[TypeInfo]:
        """Every entity type with its entity count and attribute names."""
        return sorted(await self.store.entity_types(tenant), key=lambda t: t.type_iri)

    async def type_info(self, tenant: str, type_iri: str) -> TypeInfo:
        """One entity type; ResourceNotFound when no entity has it."""
        for info in await self.store.entity_types(tenant):
            if info.type_iri == type_iri:
                return info
        raise ResourceNotFound(f"entity type {type_iri} not found")

    async def attributes(self, tenant: str) -> list[AttrInfo]:
        """Every attribute name with counts, attribute kinds and entity types."""
        return sorted(await self.store.attribute_infos(tenant), key=lambda a: a.attr_iri)

    async def attribute_info(self, tenant: str, attr_iri: str) -> AttrInfo:
        """One attribute; ResourceNotFound when no entity has it."""
        for info in await self.store.attribute_infos(tenant):
            if info.attr_iri == attr_iri:
                return info
        raise ResourceNotFound(f"attribute {attr_iri} not found")
