"""LDES replication state on SQLite (`ReplicationStore`, migration 0008); mixed into `SQLiteStore`.

Every write runs on the store's single writer thread, so a fenced write (lease check, member
rows, state) cannot interleave with a claim by another client.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import orjson

from smartregion.core.times import utc_now
from smartregion.storage.replication import (
    Replication,
    ReplicationLeaseLost,
    ReplicationProgress,
    ReplicationStore,
    take_replication_progress,
)
from smartregion.storage.sqlite.transactions import immediate

R = TypeVar("R")

_COLUMNS = "replication_key, tenant, dataset_id, source, state, members, created_at, updated_at"
_CHUNK = 500


def _replication(row: tuple[Any, ...]) -> Replication:
    return Replication(
        int(row[0]), row[1], row[2], row[3], orjson.loads(row[4]), int(row[5]), row[6], row[7]
    )


def _fenced_save(
    conn: sqlite3.Connection,
    key: int,
    holder: str,
    state: dict[str, Any],
    lease_seconds: float,
    added: int,
) -> None:
    now = time.time()
    cur = conn.execute(
        "UPDATE ldes_replication SET state = ?, members = members + ?, lease_until = ?,"
        " updated_at = ? WHERE replication_key = ? AND lease_holder = ?",
        (orjson.dumps(state).decode(), added, now + lease_seconds, utc_now(), key, holder),
    )
    if cur.rowcount != 1:
        raise ReplicationLeaseLost(
            f"replication {key}: the lease of this client has expired or was taken over"
        )


class SQLiteReplication(ReplicationStore):
    """The `ReplicationStore` part of `SQLiteStore`."""

    async def _write(self, fn: Callable[[sqlite3.Connection], R]) -> R:
        raise NotImplementedError  # provided by SQLiteStore

    async def _read(self, fn: Callable[[sqlite3.Connection], R]) -> R:
        raise NotImplementedError  # provided by SQLiteStore

    def _take_replication(self, conn: sqlite3.Connection, ops: list[Any]) -> list[Any]:
        """Write the `ReplicationProgress` ops of an entity transaction; return the other ops."""
        mine, rest = take_replication_progress(ops)
        for op in mine:
            added = 0
            for start in range(0, len(op.members), _CHUNK):
                cur = conn.executemany(
                    "INSERT INTO ldes_member_seen (replication_key, member) VALUES (?, ?)"
                    " ON CONFLICT DO NOTHING",
                    [(op.key, m) for m in op.members[start : start + _CHUNK]],
                )
                added += max(cur.rowcount, 0)
            _fenced_save(conn, op.key, op.holder, op.state, op.lease_seconds, added)
        return rest

    async def open_replication(self, tenant: str, dataset_id: str, source: str) -> Replication:
        """The replication of `source` into `dataset_id` (made empty on first use)."""

        def run(conn: sqlite3.Connection) -> Replication:
            now = utc_now()
            conn.execute(
                "INSERT INTO ldes_replication (tenant, dataset_id, source, created_at, updated_at)"
                " VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                (tenant, dataset_id, source, now, now),
            )
            row = conn.execute(
                f"SELECT {_COLUMNS} FROM ldes_replication"
                " WHERE tenant = ? AND dataset_id = ? AND source = ?",
                (tenant, dataset_id, source),
            ).fetchone()
            return _replication(row)

        return await self._write(lambda conn: immediate(conn, run))

    async def replications(self) -> list[Replication]:
        """Every replication, by key."""

        def run(conn: sqlite3.Connection) -> list[Replication]:
            rows = conn.execute(
                f"SELECT {_COLUMNS} FROM ldes_replication ORDER BY replication_key"
            ).fetchall()
            return [_replication(r) for r in rows]

        return await self._read(run)

    async def claim_replication(
        self, key: int, holder: str, lease_seconds: float, *, take_over: bool = False
    ) -> bool:
        """Take (or renew) the lease for `holder`; False when another's is still valid."""

        def run(conn: sqlite3.Connection) -> bool:
            now = time.time()
            cur = conn.execute(
                "UPDATE ldes_replication SET lease_holder = ?, lease_until = ?"
                " WHERE replication_key = ? AND (lease_holder IS NULL OR lease_holder = ?"
                " OR lease_until < ? OR ?)",
                (holder, now + lease_seconds, key, holder, now, take_over),
            )
            return cur.rowcount == 1

        return await self._write(lambda conn: immediate(conn, run))

    async def release_replication(self, key: int, holder: str) -> None:
        """Give the lease up (a no-op when `holder` no longer has it)."""

        def run(conn: sqlite3.Connection) -> None:
            conn.execute(
                "UPDATE ldes_replication SET lease_holder = NULL, lease_until = NULL"
                " WHERE replication_key = ? AND lease_holder = ?",
                (key, holder),
            )

        await self._write(lambda conn: immediate(conn, run))

    async def seen_members(self, key: int, members: Sequence[str]) -> set[str]:
        """Those of `members` recorded as seen in this replication."""
        unique = list(dict.fromkeys(members))

        def run(conn: sqlite3.Connection) -> set[str]:
            found: set[str] = set()
            for start in range(0, len(unique), _CHUNK):
                rows = conn.execute(
                    "SELECT member FROM ldes_member_seen WHERE replication_key = ?"
                    " AND member IN (SELECT value FROM json_each(?))",
                    (key, orjson.dumps(unique[start : start + _CHUNK]).decode()),
                ).fetchall()
                found.update(r[0] for r in rows)
            return found

        if not unique:
            return set()
        return await self._read(run)

    async def save_replication(
        self, key: int, holder: str, state: dict[str, Any], lease_seconds: float
    ) -> None:
        """Save the state outside an entity write (fenced; renews the lease)."""
        await self._write(
            lambda conn: immediate(
                conn, lambda c: _fenced_save(c, key, holder, state, lease_seconds, 0)
            )
        )


__all__ = ["ReplicationProgress", "SQLiteReplication"]
