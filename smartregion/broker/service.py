"""The broker: the NGSI-LD services over one store, built once per application."""

from __future__ import annotations

from dataclasses import dataclass

from smartregion.broker.batch import BatchService
from smartregion.broker.contexts import ContextResolver
from smartregion.broker.discovery import DiscoveryService
from smartregion.broker.entities import EntityService, PurgeService
from smartregion.broker.queries import QueryService
from smartregion.broker.subscriptions import NotifyingStore, SubscriptionService
from smartregion.broker.temporal import TemporalService
from smartregion.storage.base import Store
from smartregion.storage.history import HistoryStore
from smartregion.storage.subscriptions import MemorySubscriptionStore, SubscriptionStore


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
    subscriptions: SubscriptionService
    temporal: TemporalService

    @classmethod
    def build(
        cls,
        store: Store,
        contexts: ContextResolver,
        *,
        default_limit: int = 20,
        max_limit: int = 1000,
        max_batch_size: int = 10000,
        temporal_max_instances: int = 10000,
        record_history: bool = True,
    ) -> Broker:
        """Wire the services onto a store."""
        # subscriptions (§5.8): entity writes go through a store that queues notifications
        subscription_store = (
            store if isinstance(store, SubscriptionStore) else MemorySubscriptionStore()
        )
        subscriptions = SubscriptionService(
            subscription_store, contexts, default_limit=default_limit, max_limit=max_limit
        )
        writer = NotifyingStore(store, subscriptions, record_history=record_history)
        if not isinstance(store, HistoryStore):
            raise TypeError(f"{type(store).__name__} keeps no attribute history")
        return cls(
            store=store,
            contexts=contexts,
            entities=EntityService(writer),
            batch=BatchService(writer, max_batch_size=max_batch_size),
            queries=QueryService(store, default_limit=default_limit, max_limit=max_limit),
            discovery=DiscoveryService(store),
            purge=PurgeService(writer),
            subscriptions=subscriptions,
            temporal=TemporalService(writer, store, store, max_instances=temporal_max_instances),
        )
