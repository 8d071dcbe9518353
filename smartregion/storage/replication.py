"""Replication state of the LDES client (`smartregion ldes replicate`): interface and values.

Contract (every backend; `tests/storage/test_replication_contract.py`):

- A replication is one (tenant, data set, source URL): `open_replication` makes it on first use
  and returns the same record (and its saved state) afterwards.
- One process replicates at a time: `claim_replication` takes a lease for a holder (a token of
  the running client) when it is free, expired or already its own. Every later write of the
  holder is FENCED by the lease: it commits only while no other holder has claimed the
  replication since (and renews the lease), else it raises `ReplicationLeaseLost` and nothing of
  it is written. (A lease that ran out unclaimed — a slow fetch — is still the holder's.)
- Members are recorded as seen with a `ReplicationProgress` op returned by `Store.transact`'s
  `mutate`: the store writes it in the SAME transaction as the entity writes and attribute
  history the members became, together with the client's new state. So after any crash either
  a member's effects and its "seen" row are both committed or neither is; the client filters a
  page's members by `seen_members` before writing them, and the lease makes that read current.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from smartregion.errors import Conflict

__all__ = [
    "Replication",
    "ReplicationLeaseLost",
    "ReplicationProgress",
    "ReplicationStore",
    "take_replication_progress",
]


class ReplicationLeaseLost(Conflict):
    """Another client holds the replication now (this one's lease expired or was never held)."""


@dataclass(slots=True)
class Replication:
    """One replication of a source stream into a data set, with the client's saved state."""

    key: int
    tenant: str
    dataset_id: str
    source: str
    #: the client's state (JSON): the pages known, their caching state, counters
    state: dict[str, Any] = field(default_factory=dict)
    #: members recorded as seen so far
    members: int = 0
    created_at: str = ""
    updated_at: str = ""


@dataclass(frozen=True, slots=True)
class ReplicationProgress:
    """A write op: record `members` as seen and save `state`, fenced by `holder`'s lease."""

    key: int
    holder: str
    members: tuple[str, ...]
    state: dict[str, Any]
    lease_seconds: float


def take_replication_progress(ops: list[Any]) -> tuple[list[ReplicationProgress], list[Any]]:
    """The `ReplicationProgress` ops of a transaction, and the other ops."""
    mine = [op for op in ops if isinstance(op, ReplicationProgress)]
    if not mine:
        return [], ops
    return mine, [op for op in ops if not isinstance(op, ReplicationProgress)]


class ReplicationStore(abc.ABC):
    """Where the LDES client keeps what it has replicated (see the module docstring)."""

    #: entity transactions take `ReplicationProgress` ops
    supports_replication = True

    @abc.abstractmethod
    async def open_replication(self, tenant: str, dataset_id: str, source: str) -> Replication:
        """The replication of `source` into `dataset_id` (made empty on first use)."""

    @abc.abstractmethod
    async def replications(self) -> list[Replication]:
        """Every replication, by key."""

    @abc.abstractmethod
    async def claim_replication(
        self, key: int, holder: str, lease_seconds: float, *, take_over: bool = False
    ) -> bool:
        """Take (or renew) the lease for `holder`; False when another holder's is still valid
        — unless `take_over` (the operator knows the other client is dead; were it alive, its
        next write would fail on the fence)."""

    @abc.abstractmethod
    async def release_replication(self, key: int, holder: str) -> None:
        """Give the lease up (a no-op when `holder` no longer has it)."""

    @abc.abstractmethod
    async def seen_members(self, key: int, members: Sequence[str]) -> set[str]:
        """Those of `members` recorded as seen in this replication."""

    @abc.abstractmethod
    async def save_replication(
        self, key: int, holder: str, state: dict[str, Any], lease_seconds: float
    ) -> None:
        """Save the state outside an entity write (fenced; renews the lease)."""
