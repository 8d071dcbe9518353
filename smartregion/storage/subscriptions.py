"""Subscriptions and the notification outbox in storage: the interface and its values.

Contract (every backend; `tests/storage/test_subscriptions_contract.py`):

- Subscriptions are internal subscription documents (`smartregion.core.subscriptions`), one per
  (tenant, id); their delivery counters (`DeliveryState`) are kept beside the document and
  changed only by `record_delivery`, so updating a subscription never loses a count.
- The outbox holds notifications to send. Rows are durable once `enqueue` (or the entity write
  that carried them, `Notify`) has committed. `claim` hands a due row to exactly one caller by
  pushing its due time past a lease (`SELECT … FOR UPDATE SKIP LOCKED` on PostgreSQL), so N
  deliverers never send one row twice at once; a deliverer that dies before `complete` or
  `reschedule` leaves the row to be claimed again after the lease: delivery is at-least-once.
"""

from __future__ import annotations

import abc
import copy
import time
from dataclasses import dataclass, field
from typing import Any

from smartregion.core.subscriptions import DeliveryState

__all__ = [
    "MemorySubscriptionStore",
    "Notify",
    "OutboxRow",
    "StoredSubscription",
    "SubscriptionStore",
]


@dataclass(slots=True)
class StoredSubscription:
    """A subscription document with its delivery counters."""

    tenant: str
    doc: dict[str, Any]
    state: DeliveryState = field(default_factory=DeliveryState)


@dataclass(slots=True)
class OutboxRow:
    """One notification waiting to be sent (or re-sent)."""

    id: str
    tenant: str
    subscription_id: str
    #: the Notification without notifiedAt (set when sent)
    body: dict[str, Any]
    #: where and how: {"uri": …, "headers": {…}, "accept": …}
    target: dict[str, Any]
    attempts: int = 0
    #: epoch seconds when it is (again) due
    due_at: float = 0.0


@dataclass(frozen=True, slots=True)
class Notify:
    """A write op: enqueue these outbox rows in the same transaction as the entity writes."""

    rows: tuple[OutboxRow, ...]


class SubscriptionStore(abc.ABC):
    """Where subscriptions and the outbox live."""

    @abc.abstractmethod
    async def create_subscription(self, tenant: str, doc: dict[str, Any]) -> bool:
        """Insert a subscription; False when its id is taken in the tenant."""

    @abc.abstractmethod
    async def replace_subscription(self, tenant: str, doc: dict[str, Any]) -> bool:
        """Replace a subscription's document (counters kept); False when it does not exist."""

    @abc.abstractmethod
    async def get_subscription(
        self, tenant: str, subscription_id: str
    ) -> StoredSubscription | None:
        """One subscription, or None."""

    @abc.abstractmethod
    async def list_subscriptions(
        self, tenant: str, *, limit: int, offset: int
    ) -> tuple[list[StoredSubscription], int]:
        """One page of a tenant's subscriptions in creation order, and how many there are."""

    @abc.abstractmethod
    async def delete_subscription(self, tenant: str, subscription_id: str) -> bool:
        """Delete a subscription and its pending notifications; whether it existed."""

    @abc.abstractmethod
    async def tenant_subscriptions(self, tenant: str) -> list[StoredSubscription]:
        """Every subscription of a tenant (to match writes against)."""

    @abc.abstractmethod
    async def subscriptions_version(self) -> int:
        """A number that changes whenever any subscription is created, changed or deleted."""

    @abc.abstractmethod
    async def enqueue(self, rows: list[OutboxRow]) -> None:
        """Add notifications to the outbox (durable on return)."""

    @abc.abstractmethod
    async def claim(self, now: float, *, limit: int, lease: float) -> list[OutboxRow]:
        """Take up to `limit` due rows for `lease` seconds (see the module docstring)."""

    @abc.abstractmethod
    async def complete(self, row_id: str) -> None:
        """Remove a row that was delivered (or given up on)."""

    @abc.abstractmethod
    async def reschedule(self, row_id: str, *, attempts: int, due_at: float) -> None:
        """Put a row back for another attempt at `due_at`."""

    @abc.abstractmethod
    async def record_delivery(
        self, tenant: str, subscription_id: str, *, ok: bool, at: str
    ) -> None:
        """Count one notification attempt (§5.2.14 timesSent/timesFailed/last…)."""


class MemorySubscriptionStore(SubscriptionStore):
    """A non-durable implementation for tests and embedding (one process)."""

    def __init__(self) -> None:
        self._subs: dict[tuple[str, str], StoredSubscription] = {}
        self._outbox: dict[str, OutboxRow] = {}
        self._version = 0

    async def create_subscription(self, tenant: str, doc: dict[str, Any]) -> bool:
        key = (tenant, doc["id"])
        if key in self._subs:
            return False
        self._subs[key] = StoredSubscription(tenant, copy.deepcopy(doc))
        self._version += 1
        return True

    async def replace_subscription(self, tenant: str, doc: dict[str, Any]) -> bool:
        current = self._subs.get((tenant, doc["id"]))
        if current is None:
            return False
        current.doc = copy.deepcopy(doc)
        self._version += 1
        return True

    async def get_subscription(
        self, tenant: str, subscription_id: str
    ) -> StoredSubscription | None:
        found = self._subs.get((tenant, subscription_id))
        return copy.deepcopy(found) if found is not None else None

    async def list_subscriptions(
        self, tenant: str, *, limit: int, offset: int
    ) -> tuple[list[StoredSubscription], int]:
        mine = [copy.deepcopy(s) for (t, _), s in self._subs.items() if t == tenant]
        return mine[offset : offset + limit], len(mine)

    async def delete_subscription(self, tenant: str, subscription_id: str) -> bool:
        found = self._subs.pop((tenant, subscription_id), None)
        if found is None:
            return False
        for row_id, row in list(self._outbox.items()):
            if row.tenant == tenant and row.subscription_id == subscription_id:
                del self._outbox[row_id]
        self._version += 1
        return True

    async def tenant_subscriptions(self, tenant: str) -> list[StoredSubscription]:
        return [copy.deepcopy(s) for (t, _), s in self._subs.items() if t == tenant]

    async def subscriptions_version(self) -> int:
        return self._version

    async def enqueue(self, rows: list[OutboxRow]) -> None:
        for row in rows:
            self._outbox[row.id] = copy.deepcopy(row)

    async def claim(self, now: float, *, limit: int, lease: float) -> list[OutboxRow]:
        due = sorted((r for r in self._outbox.values() if r.due_at <= now), key=lambda r: r.due_at)
        taken = due[:limit]
        for row in taken:
            row.due_at = now + lease
        return [copy.deepcopy(r) for r in taken]

    async def complete(self, row_id: str) -> None:
        self._outbox.pop(row_id, None)

    async def reschedule(self, row_id: str, *, attempts: int, due_at: float) -> None:
        row = self._outbox.get(row_id)
        if row is not None:
            row.attempts = attempts
            row.due_at = due_at

    async def record_delivery(
        self, tenant: str, subscription_id: str, *, ok: bool, at: str
    ) -> None:
        found = self._subs.get((tenant, subscription_id))
        if found is None:
            return
        apply_delivery(found.state, ok=ok, at=at)


def apply_delivery(state: DeliveryState, *, ok: bool, at: str) -> None:
    """Count one attempt into a DeliveryState (shared by the backends' Python paths)."""
    state.times_sent += 1
    state.last_notification = at
    if ok:
        state.last_success = at
    else:
        state.times_failed += 1
        state.last_failure = at


def epoch_now() -> float:
    """Wall-clock seconds (outbox due times are wall-clock, shared between processes)."""
    return time.time()
