"""Subscriptions and the notification outbox on PostgreSQL (`SubscriptionStore`, migration 0002).

Mixed into `PostgresStore`. Deliverers in any number of processes claim outbox rows with
`SELECT … FOR UPDATE SKIP LOCKED`: a row being claimed by one is skipped by the others, and the
claim pushes its due time past the lease, so no two deliverers send a row at the same time.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson
from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

from smartregion.core.subscriptions import DeliveryState
from smartregion.storage.subscriptions import (
    Notify,
    OutboxRow,
    Settled,
    StoredSubscription,
    SubscriptionStore,
    tally,
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

    async def get_subscription(
        self, tenant: str, subscription_id: str
    ) -> StoredSubscription | None:
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
            cur = await conn.execute(
                "SELECT count(*) FROM subscription WHERE tenant = %s", (tenant,)
            )
            total = await cur.fetchone()
        return [_stored(r) for r in rows], int(total[0]) if total else 0

    async def delete_subscription(self, tenant: str, subscription_id: str) -> bool:
        """Delete a subscription and its pending notifications."""
        async with self.pool.connection() as conn, conn.transaction():
            cur = await conn.execute(
                "DELETE FROM subscription WHERE tenant = %s AND sub_id = %s",
                (tenant, subscription_id),
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

    async def settle(self, settled: Sequence[Settled]) -> None:
        """Record a claimed batch's outcome in one transaction."""
        if not settled:
            return
        done = [x.row_id for x in settled if x.retry_at is None]
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
            for (tenant, sub_id), d in sorted(tally(settled).items())
        ]
        async with self.pool.connection() as conn, conn.transaction():
            async with conn.cursor() as cur:
                if counts:
                    # subscriptions first, then outbox rows, as `delete_subscription` does, and
                    # subscriptions in a stable order: concurrent transactions cannot deadlock
                    await cur.executemany(_COUNT, counts)
                if again:
                    await cur.executemany(
                        "UPDATE outbox SET attempts = %s, due_at = %s WHERE row_id = %s", again
                    )
            if done:
                await conn.execute("DELETE FROM outbox WHERE row_id = ANY(%s)", (done,))


def _latest(column: str) -> str:
    # the later of the stored time and the batch's (NULL: none); fixed-width UTC times, compared
    # byte-wise whatever the database's collation
    return (
        f"{column} = NULLIF(GREATEST(coalesce({column}, '') COLLATE \"C\","
        f" coalesce(%s, '') COLLATE \"C\"), '')"
    )


_COUNT = (
    "UPDATE subscription SET times_sent = times_sent + %s, times_failed = times_failed + %s, "
    + ", ".join(_latest(c) for c in ("last_notification", "last_success", "last_failure"))
    + " WHERE tenant = %s AND sub_id = %s"
)
