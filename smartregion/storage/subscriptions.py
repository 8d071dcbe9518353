"""Subscriptions and the notification outbox in storage: the interface and its values.

Contract (every backend; `tests/storage/test_subscriptions_contract.py`):

- Subscriptions are internal subscription documents (`smartregion.core.subscriptions`), one per
  (tenant, id); their delivery counters (`DeliveryState`) are kept beside the document and
  changed only by `settle`, so updating a subscription never loses a count.
- The outbox holds notifications to send. Rows are durable once `enqueue` (or the entity write
  that carried them, `Notify`) has committed. `claim` hands a due row to exactly one caller by
  pushing its due time past a lease (`SELECT … FOR UPDATE SKIP LOCKED` on PostgreSQL), so N
  deliverers never send one row twice at once. `settle` records what became of a claimed batch
  in ONE transaction: the rows delivered (or given up on) are removed, the others put back for
  another attempt, and each subscription's counters get the batch's attempts added. A deliverer
  that dies before `settle` commits leaves its rows to be claimed again after the lease:
  delivery is at-least-once.
"""

from __future__ import annotations

import abc
import copy
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from smartregion.core.subscriptions import DeliveryState

__all__ = [
    "MemorySubscriptionStore",
    "Notify",
    "OutboxRow",
    "Settled",
    "StoredSubscription",
    "SubscriptionStore",
    "tally",
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


@dataclass(frozen=True, slots=True)
class Settled:
    """What became of one claimed outbox row (recorded with the rest of its batch by `settle`)."""

    row_id: str
    tenant: str
    subscription_id: str
    #: the attempt was acknowledged (True) or not (False), and is counted on the subscription;
    #: None: nothing was sent (nothing in it the subscriber may read, or left for later)
    ok: bool | None = None
    #: when it was sent (§5.2.14 lastNotification, lastSuccess, lastFailure)
    at: str = ""
    #: None: the row is finished and removed; else it is due again at this time (epoch seconds)
    retry_at: float | None = None
    #: the row's attempts so far (kept when it is put back)
    attempts: int = 0


def tally(settled: Sequence[Settled]) -> dict[tuple[str, str], DeliveryState]:
    """The attempts of a batch added up per (tenant, subscription id), latest times kept."""
    counts: dict[tuple[str, str], DeliveryState] = {}
    for s in settled:
        if s.ok is None:
            continue
        state = counts.setdefault((s.tenant, s.subscription_id), DeliveryState())
        state.times_sent += 1
        state.last_notification = _later(state.last_notification, s.at)
        if s.ok:
            state.last_success = _later(state.last_success, s.at)
        else:
            state.times_failed += 1
            state.last_failure = _later(state.last_failure, s.at)
    return counts


def _later(a: str | None, b: str | None) -> str | None:
    # fixed-width UTC times (core.times.format_datetime) compare as text
    return b if a is None or (b is not None and b > a) else a


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
    async def settle(self, settled: Sequence[Settled]) -> None:
        """Record a claimed batch's outcome in ONE transaction (see the module docstring).

        Rows finished are removed; the others are due again at `retry_at` with `attempts`.
        Each subscription gets its attempts added to timesSent/timesFailed and its last…
        times moved forward (never back: several deliverers may settle out of order).
        """


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

    async def settle(self, settled: Sequence[Settled]) -> None:
        for item in settled:
            if item.retry_at is None:
                self._outbox.pop(item.row_id, None)
            elif (row := self._outbox.get(item.row_id)) is not None:
                row.attempts = item.attempts
                row.due_at = item.retry_at
        for key, delta in tally(settled).items():
            found = self._subs.get(key)
            if found is not None:
                state = found.state
                state.times_sent += delta.times_sent
                state.times_failed += delta.times_failed
                state.last_notification = _later(state.last_notification, delta.last_notification)
                state.last_success = _later(state.last_success, delta.last_success)
                state.last_failure = _later(state.last_failure, delta.last_failure)


def epoch_now() -> float:
    """Wall-clock seconds (outbox due times are wall-clock, shared between processes)."""
    return time.time()
