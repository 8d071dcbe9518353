"""Ingestion storage: the dead letters of the MQTT bridge (interface and values).

Contract (every backend; `tests/storage/test_ingestion_contract.py`): a dead letter is durable
once `add_dead_letter` returns — or, returned by `Store.transact`'s `mutate` as a `DeadLetters`
op, once that entity transaction has committed (written in it, in the order given, so the MQTT
bridge commits a batch's entities and its dead letters together). `dead_letters` lists one
organisation's letters (optionally of one tenant), newest first. Payloads are stored as given:
callers truncate them.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import Any

__all__ = ["DeadLetter", "DeadLetters", "IngestionStore", "take_dead_letters"]


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


@dataclass(frozen=True, slots=True)
class DeadLetters:
    """A write op: record these dead letters in the same transaction as the entity writes."""

    letters: tuple[DeadLetter, ...]


def take_dead_letters(ops: list[Any]) -> tuple[list[DeadLetter], list[Any]]:
    """The letters of a transaction's `DeadLetters` ops (in order), and the other ops."""
    if not any(isinstance(op, DeadLetters) for op in ops):
        return [], ops
    letters = [letter for op in ops if isinstance(op, DeadLetters) for letter in op.letters]
    return letters, [op for op in ops if not isinstance(op, DeadLetters)]


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
