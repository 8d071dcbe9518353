"""Subscriptions and the notification outbox on SQLite (`SubscriptionStore`, migration 0002).

Mixed into `SQLiteStore`: every write goes through its single writer thread, so a claim cannot
race another claim of this process; several processes on one file are serialised by SQLite's
write lock (`BEGIN IMMEDIATE`).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import orjson

from smartregion.core.subscriptions import DeliveryState
from smartregion.storage.sqlite.transactions import immediate
from smartregion.storage.subscriptions import (
    Notify,
    OutboxRow,
    Settled,
    StoredSubscription,
    SubscriptionStore,
    tally,
)

R = TypeVar("R")

_SUB_COLUMNS = (
    "tenant, doc, times_sent, times_failed, last_notification, last_success, last_failure"
)


def _stored(row: tuple[Any, ...]) -> StoredSubscription:
    return StoredSubscription(
        tenant=row[0],
        doc=orjson.loads(row[1]),
        state=DeliveryState(int(row[2]), int(row[3]), row[4], row[5], row[6]),
    )


def _row(row: tuple[Any, ...]) -> OutboxRow:
    return OutboxRow(
        id=row[0],
        tenant=row[1],
        subscription_id=row[2],
        body=orjson.loads(row[3]),
        target=orjson.loads(row[4]),
        attempts=int(row[5]),
        due_at=float(row[6]),
    )


def insert_outbox(conn: sqlite3.Connection, rows: list[OutboxRow]) -> None:
    """Insert outbox rows on a connection inside the caller's transaction."""
    conn.executemany(
        "INSERT INTO outbox (row_id, tenant, sub_id, body, target, attempts, due_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        [
            (
                r.id,
                r.tenant,
                r.subscription_id,
                orjson.dumps(r.body).decode(),
                orjson.dumps(r.target).decode(),
                r.attempts,
                r.due_at,
            )
            for r in rows
        ],
    )


def take_notifications(conn: sqlite3.Connection, ops: list[Any]) -> list[Any]:
    """Write the `Notify` ops of a transaction's ops; return the other ops."""
    rows = [row for op in ops if isinstance(op, Notify) for row in op.rows]
    if rows:
        insert_outbox(conn, rows)
        return [op for op in ops if not isinstance(op, Notify)]
    return ops


class SQLiteSubscriptions(SubscriptionStore):
    """The `SubscriptionStore` half of `SQLiteStore`."""

    #: entity transactions take `Notify` ops (the outbox row commits with the entity write)
    supports_notify = True

    async def _write(self, fn: Callable[[sqlite3.Connection], R]) -> R:
        raise NotImplementedError  # provided by SQLiteStore

    async def _read(self, fn: Callable[[sqlite3.Connection], R]) -> R:
        raise NotImplementedError  # provided by SQLiteStore

    async def _in_transaction(self, fn: Callable[[sqlite3.Connection], R]) -> R:
        return await self._write(lambda conn: immediate(conn, fn))

    @staticmethod
    def _bump(conn: sqlite3.Connection) -> None:
        conn.execute("UPDATE subscription_version SET version = version + 1")

    async def create_subscription(self, tenant: str, doc: dict[str, Any]) -> bool:
        """Insert a subscription; False when its id is taken in the tenant."""

        def run(conn: sqlite3.Connection) -> bool:
            cur = conn.execute(
                "INSERT INTO subscription (tenant, sub_id, doc) VALUES (?, ?, ?)"
                " ON CONFLICT (tenant, sub_id) DO NOTHING",
                (tenant, doc["id"], orjson.dumps(doc).decode()),
            )
            if cur.rowcount:
                self._bump(conn)
            return cur.rowcount > 0

        return await self._in_transaction(run)

    async def replace_subscription(self, tenant: str, doc: dict[str, Any]) -> bool:
        """Replace a subscription's document (counters kept)."""

        def run(conn: sqlite3.Connection) -> bool:
            cur = conn.execute(
                "UPDATE subscription SET doc = ? WHERE tenant = ? AND sub_id = ?",
                (orjson.dumps(doc).decode(), tenant, doc["id"]),
            )
            if cur.rowcount:
                self._bump(conn)
            return cur.rowcount > 0

        return await self._in_transaction(run)

    async def get_subscription(
        self, tenant: str, subscription_id: str
    ) -> StoredSubscription | None:
        """One subscription, or None."""
        row = await self._read(
            lambda conn: conn.execute(
                f"SELECT {_SUB_COLUMNS} FROM subscription WHERE tenant = ? AND sub_id = ?",
                (tenant, subscription_id),
            ).fetchone()
        )
        return None if row is None else _stored(row)

    async def list_subscriptions(
        self, tenant: str, *, limit: int, offset: int
    ) -> tuple[list[StoredSubscription], int]:
        """One page of a tenant's subscriptions in creation order, and the total."""

        def run(conn: sqlite3.Connection) -> tuple[list[StoredSubscription], int]:
            rows = conn.execute(
                f"SELECT {_SUB_COLUMNS} FROM subscription WHERE tenant = ?"
                " ORDER BY sub_key LIMIT ? OFFSET ?",
                (tenant, limit, offset),
            ).fetchall()
            (total,) = conn.execute(
                "SELECT count(*) FROM subscription WHERE tenant = ?", (tenant,)
            ).fetchone()
            return [_stored(r) for r in rows], int(total)

        return await self._read(run)

    async def delete_subscription(self, tenant: str, subscription_id: str) -> bool:
        """Delete a subscription and its pending notifications."""

        def run(conn: sqlite3.Connection) -> bool:
            cur = conn.execute(
                "DELETE FROM subscription WHERE tenant = ? AND sub_id = ?",
                (tenant, subscription_id),
            )
            if not cur.rowcount:
                return False
            conn.execute(
                "DELETE FROM outbox WHERE tenant = ? AND sub_id = ?", (tenant, subscription_id)
            )
            self._bump(conn)
            return True

        return await self._in_transaction(run)

    async def tenant_subscriptions(self, tenant: str) -> list[StoredSubscription]:
        """Every subscription of a tenant."""
        rows = await self._read(
            lambda conn: conn.execute(
                f"SELECT {_SUB_COLUMNS} FROM subscription WHERE tenant = ? ORDER BY sub_key",
                (tenant,),
            ).fetchall()
        )
        return [_stored(r) for r in rows]

    async def subscriptions_version(self) -> int:
        """Changes whenever a subscription is created, changed or deleted."""
        row = await self._read(
            lambda conn: conn.execute("SELECT version FROM subscription_version").fetchone()
        )
        return int(row[0]) if row else 0

    async def enqueue(self, rows: list[OutboxRow]) -> None:
        """Add notifications to the outbox."""
        if rows:
            await self._in_transaction(lambda conn: insert_outbox(conn, rows))

    async def claim(self, now: float, *, limit: int, lease: float) -> list[OutboxRow]:
        """Take up to `limit` due rows for `lease` seconds."""

        def run(conn: sqlite3.Connection) -> list[OutboxRow]:
            rows = conn.execute(
                "SELECT row_id, tenant, sub_id, body, target, attempts, due_at FROM outbox"
                " WHERE due_at <= ? ORDER BY due_at, seq LIMIT ?",
                (now, limit),
            ).fetchall()
            if rows:
                conn.executemany(
                    "UPDATE outbox SET due_at = ? WHERE row_id = ?",
                    [(now + lease, r[0]) for r in rows],
                )
            return [_row(r) for r in rows]

        return await self._in_transaction(run)

    async def settle(self, settled: Sequence[Settled]) -> None:
        """Record a claimed batch's outcome in one transaction."""
        if not settled:
            return
        done = [(x.row_id,) for x in settled if x.retry_at is None]
        again = [(x.attempts, x.retry_at, x.row_id) for x in settled if x.retry_at is not None]
        counts = [
            (
                d.times_sent,
                d.times_failed,
                d.last_notification,
                d.last_success,
                d.last_failure,
                tenant,
                sub_id,
            )
            for (tenant, sub_id), d in tally(settled).items()
        ]

        def run(conn: sqlite3.Connection) -> None:
            if counts:
                conn.executemany(_COUNT, counts)
            if again:
                conn.executemany(
                    "UPDATE outbox SET attempts = ?, due_at = ? WHERE row_id = ?", again
                )
            if done:
                conn.executemany("DELETE FROM outbox WHERE row_id = ?", done)

        await self._in_transaction(run)


def _latest(column: str) -> str:
    # the later of the stored time and the batch's (NULL: none); fixed-width UTC times
    return f"{column} = NULLIF(max(coalesce({column}, ''), coalesce(?, '')), '')"


_COUNT = (
    "UPDATE subscription SET times_sent = times_sent + ?, times_failed = times_failed + ?, "
    + ", ".join(_latest(c) for c in ("last_notification", "last_success", "last_failure"))
    + " WHERE tenant = ? AND sub_id = ?"
)
