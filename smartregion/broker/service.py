"""The broker: the NGSI-LD services over one store, built once per application."""

from __future__ import annotations

from dataclasses import dataclass

from smartregion.broker.batch import BatchService
from smartregion.broker.contexts import ContextResolver
from smartregion.broker.discovery import DiscoveryService
from smartregion.broker.entities import EntityService, PurgeService
from smartregion.broker.queries import QueryService
from smartregion.storage.base import Store


@dataclass(slots=True)
class Broker:
    """All NGSI-LD services sharing one store and one context resolver."""

    store: Store
    contexts: ContextResolver
    entities: EntityService
    batch: BatchService
    queries: QueryService
    discovery: DiscoveryService
    purge: PurgeService

    @classmethod
    def build(
        cls,
        store: Store,
        contexts: ContextResolver,
        *,
        default_limit: int = 20,
        max_limit: int = 1000,
        max_batch_size: int = 10000,
    ) -> Broker:
        """Wire the services onto a store."""
        return cls(
            store=store,
            contexts=contexts,
            entities=EntityService(store),
            batch=BatchService(store, max_batch_size=max_batch_size),
            queries=QueryService(store, default_limit=default_limit, max_limit=max_limit),
            discovery=DiscoveryService(store),
            purge=PurgeService(store),
        )
