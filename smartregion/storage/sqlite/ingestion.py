"""Ingestion dead letters on SQLite (`IngestionStore`, migration 0004); mixed into `SQLiteStore`."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from smartregion.storage.ingestion import DeadLetter, IngestionStore, take_dead_letters
from smartregion.storage.sqlite.transactions import immediate

R = TypeVar("R")

_COLUMNS = "tenant, org, topic, payload, reason, received_at, letter_key"


def _letter(row: tuple[Any, ...]) -> DeadLetter:
    return DeadLetter(row[0], row[1], row[2], row[3], row[4], row[5], int(row[6]))


def insert_dead_letters(conn: sqlite3.Connection, letters: Sequence[DeadLetter]) -> None:
    """Insert dead letters, in order, inside the caller's transaction."""
    conn.executemany(
        "INSERT INTO ingest_dead_letter"
        " (tenant, org, topic, payload, reason, received_at) VALUES (?, ?, ?, ?, ?, ?)",
        [(x.tenant, x.org, x.topic, x.payload, x.reason, x.received_at) for x in letters],
    )


class SQLiteIngestion(IngestionStore):
    """The `IngestionStore` part of `SQLiteStore`."""

    async def _write(self, fn: Callable[[sqlite3.Connection], R]) -> R:
        raise NotImplementedError  # provided by SQLiteStore

    async def _read(self, fn: Callable[[sqlite3.Connection], R]) -> R:
        raise NotImplementedError  # provided by SQLiteStore

    @staticmethod
    def _take_dead_letters(conn: sqlite3.Connection, ops: list[Any]) -> list[Any]:
        """Write the `DeadLetters` ops of an entity transaction; return the other ops."""
        letters, rest = take_dead_letters(ops)
        if letters:
            insert_dead_letters(conn, letters)
        return rest

    async def add_dead_letter(self, letter: DeadLetter) -> None:
        """Record a dead letter (committed on return)."""
        await self._write(lambda conn: immediate(conn, lambda c: insert_dead_letters(c, [letter])))

    async def dead_letters(
        self, org: str, *, tenant: str | None = None, limit: int = 100
    ) -> list[DeadLetter]:
        """An organisation's dead letters, newest first."""

        def run(conn: sqlite3.Connection) -> list[DeadLetter]:
            if tenant is None:
                rows = conn.execute(
                    f"SELECT {_COLUMNS} FROM ingest_dead_letter WHERE org = ?"
                    " ORDER BY letter_key DESC LIMIT ?",
                    (org, limit),
                ).fetchall()
            else:
                rows = conn.execute(
                    f"SELECT {_COLUMNS} FROM ingest_dead_letter WHERE org = ? AND tenant = ?"
                    " ORDER BY letter_key DESC LIMIT ?",
                    (org, tenant, limit),
                ).fetchall()
            return [_letter(r) for r in rows]

        return await self._read(run)
