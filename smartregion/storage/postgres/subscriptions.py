"""Subscriptions and the notification outbox on PostgreSQL (`SubscriptionStore`, migration 0002).

Mixed into `PostgresStore`. Deliverers in any number of processes claim outbox rows with
`SELECT … FOR UPDATE SKIP LOCKED`: a row being claimed by one is skipped by the others, and the
claim pushes its due time past the lease, so no two deliverers send a row at the same time.
"""

from __future__ import annotations

from typing import Any

import orjson
from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

from smartregion.core.subscriptions import DeliveryState
from smartregion.storage.subscriptions import (
    Notify,
    OutboxRow,
    StoredSubscription,
    SubscriptionStore,
)

_SUB_COLUMNS = (
    "tenant, doc::text, times_sent, times_failed, last_notification, last_success, last_failure"
)
_ROW_COLUMNS = "row_id, tenant, sub_id, body::text, target::text, attempts, due_at"


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


async def insert_outbox(conn: AsyncConnection[Any], rows: list[OutboxRow]) -> None:
    """Insert outbox rows on a connection inside the caller's transaction."""
    async with conn.cursor() as cur:
        await cur.executemany(
            "INSERT INTO outbox (row_id, tenant, sub_id, body, target, attempts, due_at)"
            " VALUES (%s, %s, %s, %s::jsonb, %s::jsonb, %s, %s)",
            [
                (
                    r.id, r.tenant, r.subscription_id, orjson.dumps(r.body).decode(),
                    orjson.dumps(r.target).decode(), r.attempts, r.due_at,
                )
                for r in rows
            ],
        )


async def take_notifications(conn: AsyncConnection[Any], ops: list[Any]) -> list[Any]:
    """Write the `Notify` ops of a transaction's ops; return the other ops."""
    rows = [row for op in ops if isinstance(op, Notify) for row in op.rows]
    if rows:
        await insert_outbox(conn, rows)
        return [op for op in ops if not isinstance(op, Notify)]
    return ops


class PostgresSubscriptions(SubscriptionStore):
    """The `SubscriptionStore` half of `PostgresStore`."""

    #: entity transactions take `Notify` ops (the outbox row commits with the entity write)
    supports_notify = True

    @property
    def pool(self) -> AsyncConnectionPool:
        """Provided by PostgresStore."""
        raise NotImplementedError

    async def create_subscription(self, tenant: str, doc: dict[str, Any]) -> bool:
        """Insert a subscription; False when its id is taken in the tenant."""
        async with self.pool.connection() as conn, conn.transaction():
            cur = await conn.execute(
                "INSERT INTO subscription (tenant, sub_id, doc) VALUES (%s, %s, %s::jsonb)"
                " ON CONFLICT (tenant, sub_id) DO NOTHING",
                (tenant, doc["id"], orjson.dumps(doc).decode()),
            )
            if cur.rowcount:
                await conn.execute("UPDATE subscription_version SET version = version + 1")
            return cur.rowcount > 0

    async def replace_subscription(self, tenant: str, doc: dict[str, Any]) -> bool:
        """Replace a subscription's document (counters kept)."""
        async with self.pool.connection() as conn, conn.transaction():
            cur = await conn.execute(
                "UPDATE subscription SET doc = %s::jsonb WHERE tenant = %s AND sub_id = %s",
                (orjson.dumps(doc).decode(), tenant, doc["id"]),
            )
            if cur.rowcount:
                await conn.execute("UPDATE subscription_version SET version = version + 1")
            return cur.rowcount > 0

    async def get_subscription(self, tenant: str, subscription_id: str) -> StoredSubscription | None:
        """One subscription, or None."""
        async with self.pool.connection() as conn:
            cur = await conn.execute(
                f"SELECT {_SUB_COLUMNS} FROM subscription WHERE tenant = %s AND sub_id = %s",
                (tenant, subscription_id),
            )
            row = await cur.fetchone()
        return None if row is None else _stored(row)

    async def list_subscriptions(
        self, tenant: str, *, limit: int, offset: int
    ) -> tuple[list[StoredSubscription], int]:
        """One page of a tenant's subscriptions in creation order, and the total."""
        async with self.pool.connection() as conn, conn.transaction():
            cur = await conn.execute(
                f"SELECT {_SUB_COLUMNS} FROM subscription WHERE tenant = %s"
                " ORDER BY sub_key LIMIT %s OFFSET %s",
                (tenant, limit, offset),
            )
            rows = await cur.fetchall()
            cur = await conn.execute("SELECT count(*) FROM subscription WHERE tenant = %s", (tenant,))
            total = await cur.fetchone()
        return [_stored(r) for r in rows], int(total[0]) if total else 0

    async def delete_subscription(self, tenant: str, subscription_id: str) -> bool:
        """Delete a subscription and its pending notifications."""
        async with self.pool.connection() as conn, conn.transaction():
            cur = await conn.execute(
                "DELETE FROM subscription WHERE tenant = %s AND sub_id = %s", (tenant, subscription_id)
            )
            if not cur.rowcount:
                return False
            await conn.execute(
                "DELETE FROM outbox WHERE tenant = %s AND sub_id = %s", (tenant, subscription_id)
            )
            await conn.execute("UPDATE subscription_version SET version = version + 1")
            return True

    async def tenant_subscriptions(self, tenant: str) -> list[StoredSubscription]:
        """Every subscription of a tenant."""
        async with self.pool.connection() as conn:
            cur = await conn.execute(
                f"SELECT {_SUB_COLUMNS} FROM subscription WHERE tenant = %s ORDER BY sub_key",
                (tenant,),
            )
            rows = await cur.fetchall()
        return [_stored(r) for r in rows]

    async def subscriptions_version(self) -> int:
        """Changes whenever a subscription is created, changed or deleted."""
        async with self.pool.connection() as conn:
            cur = await conn.execute("SELECT version FROM subscription_version")
            row = await cur.fetchone()
        return int(row[0]) if row else 0

    async def enqueue(self, rows: list[OutboxRow]) -> None:
        """Add notifications to the outbox."""
        if rows:
            async with self.pool.connection() as conn, conn.transaction():
                await insert_outbox(conn, rows)

    async def claim(self, now: float, *, limit: int, lease: float) -> list[OutboxRow]:
        """Take up to `limit` due rows for `lease` seconds (FOR UPDATE SKIP LOCKED)."""
        async with self.pool.connection() as conn, conn.transaction():
            cur = await conn.execute(
                f"UPDATE outbox SET due_at = %s WHERE seq IN (SELECT seq FROM outbox"
                f" WHERE due_at <= %s ORDER BY due_at, seq LIMIT %s FOR UPDATE SKIP LOCKED)"
                f" RETURNING {_ROW_COLUMNS}, seq",
                (now + lease, now, limit),
            )
            rows = await cur.fetchall()
        # RETURNING has no order: keep the queueing order (notifications of one subscription
        # are sent in the order their writes committed)
        return [_row(r) for r in sorted(rows, key=lambda r: r[-1])]

    async def complete(self, row_id: str) -> None:
        """Remove a delivered row."""
        async with self.pool.connection() as conn:
            await conn.execute("DELETE FROM outbox WHERE row_id = %s", (row_id,))

    async def reschedule(self, row_id: str, *, attempts: int, due_at: float) -> None:
        """Put a row back for another attempt."""
        async with self.pool.connection() as conn:
            await conn.execute(
                "UPDATE outbox SET attempts = %s, due_at = %s WHERE row_id = %s",
                (attempts, due_at, row_id),
            )

    async def record_delivery(
        self, tenant: str, subscription_id: str, *, ok: bool, at: str
    ) -> None:
        """Count one notification attempt."""
        sql = (
            "UPDATE subscription SET times_sent = times_sent + 1, last_notification = %s,"
            + (" last_success = %s" if ok else " times_failed = times_failed + 1, last_failure = %s")
            + " WHERE tenant = %s AND sub_id = %s"
        )
        async with self.pool.connection() as conn:
            await conn.execute(sql, (at, at, tenant, subscription_id))
