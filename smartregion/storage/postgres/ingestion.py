"""Ingestion dead letters on PostgreSQL (`IngestionStore`, migration 0004); mixed into `PostgresStore`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

from smartregion.storage.ingestion import DeadLetter, IngestionStore, take_dead_letters

_COLUMNS = "tenant, org, topic, payload, reason, received_at, letter_key"


def _letter(row: tuple[Any, ...]) -> DeadLetter:
    return DeadLetter(row[0], row[1], row[2], row[3], row[4], row[5], int(row[6]))


async def insert_dead_letters(conn: AsyncConnection[Any], letters: Sequence[DeadLetter]) -> None:
    """Insert dead letters, in order, inside the caller's transaction."""
    async with conn.cursor() as cur:
        await cur.executemany(
            "INSERT INTO ingest_dead_letter (tenant, org, topic, payload, reason, received_at)"
            " VALUES (%s, %s, %s, %s, %s, %s)",
            # PostgreSQL text cannot hold NUL characters
            [
                (
                    x.tenant,
                    x.org,
                    x.topic,
                    x.payload.replace("\x00", "\ufffd"),
                    x.reason.replace("\x00", "\ufffd"),
                    x.received_at,
                )
                for x in letters
            ],
        )


class PostgresIngestion(IngestionStore):
    """The `IngestionStore` part of `PostgresStore`."""

    @property
    def pool(self) -> AsyncConnectionPool:
        """Provided by PostgresStore."""
        raise NotImplementedError

    @staticmethod
    async def _take_dead_letters(conn: AsyncConnection[Any], ops: list[Any]) -> list[Any]:
        """Write the `DeadLetters` ops of an entity transaction; return the other ops."""
        letters, rest = take_dead_letters(ops)
        if letters:
            await insert_dead_letters(conn, letters)
        return rest

    async def add_dead_letter(self, letter: DeadLetter) -> None:
        """Record a dead letter (committed on return)."""
        async with self.pool.connection() as conn, conn.transaction():
            await insert_dead_letters(conn, [letter])

    async def dead_letters(
        self, org: str, *, tenant: str | None = None, limit: int = 100
    ) -> list[DeadLetter]:
        """An organisation's dead letters, newest first."""
        async with self.pool.connection() as conn:
            if tenant is None:
                cur = await conn.execute(
                    f"SELECT {_COLUMNS} FROM ingest_dead_letter WHERE org = %s"
                    " ORDER BY letter_key DESC LIMIT %s",
                    (org, limit),
                )
            else:
                cur = await conn.execute(
                    f"SELECT {_COLUMNS} FROM ingest_dead_letter WHERE org = %s AND tenant = %s"
                    " ORDER BY letter_key DESC LIMIT %s",
                    (org, tenant, limit),
                )
            rows = await cur.fetchall()
        return [_letter(r) for r in rows]
