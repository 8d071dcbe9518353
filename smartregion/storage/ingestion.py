"""Ingestion storage: the dead letters of the MQTT bridge (interface and values).

Contract (every backend; `tests/storage/test_ingestion_contract.py`): a dead letter is durable
once `add_dead_letter` returns; `dead_letters` lists one organisation's letters (optionally of
one tenant), newest first. Payloads are stored as given: callers truncate them.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass

__all__ = ["DeadLetter", "IngestionStore"]


@dataclass(slots=True)
class DeadLetter:
    """A message that could not be ingested, with the reason."""

    tenant: str
    org: str
    topic: str
    payload: str
    reason: str
    received_at: str
    #: arrival order, set by the store
    key: int | None = None


class IngestionStore(abc.ABC):
    """Where the ingestion bridge keeps what it could not ingest."""

    @abc.abstractmethod
    async def add_dead_letter(self, letter: DeadLetter) -> None:
        """Record a dead letter (durable on return)."""

    @abc.abstractmethod
    async def dead_letters(
        self, org: str, *, tenant: str | None = None, limit: int = 100
    ) -> list[DeadLetter]:
        """An organisation's dead letters, newest first."""
