"""LDES replication state on PostgreSQL (`ReplicationStore`, migration 0009); mixed into
`PostgresStore`.

The fence (`lease_holder = holder`) is an UPDATE of the replication row:
a concurrent claim waits for the row lock and re-checks its condition on the committed row
(READ COMMITTED re-evaluation), so a write and a take-over never both succeed.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import orjson
import psycopg
from psycopg_pool import AsyncConnectionPool

from smartregion.core.times import utc_now
from smartregion.storage.replication import (
    Replication,
    ReplicationLeaseLost,
    ReplicationStore,
    take_replication_progress,
)

Conn = psycopg.AsyncConnection[Any]

_COLUMNS = "replication_key, tenant, dataset_id, source, state, members, created_at, updated_at"


def _replication(row: tuple[Any, ...]) -> Replication:
    return Replication(
        int(row[0]), row[1], row[2], row[3], orjson.loads(row[4]), int(row[5]), row[6], row[7]
    )


async def _fenced_save(
    conn: Conn, key: int, holder: str, state: dict[str, Any], lease_seconds: float, added: int
) -> None:
    now = time.time()
    cur = await conn.execute(
        "UPDATE ldes_replication SET state = %s, members = members + %s, lease_until = %s,"
        " updated_at = %s WHERE replication_key = %s AND lease_holder = %s",
        (orjson.dumps(state).decode(), added, now + lease_seconds, utc_now(), key, holder),
    )
    if cur.rowcount != 1:
        raise ReplicationLeaseLost(
            f"replication {key}: the lease of this client has expired or was taken over"
        )


class PostgresReplication(ReplicationStore):
    """The `ReplicationStore` part of `PostgresStore`."""

    @property
    def pool(self) -> AsyncConnectionPool:
        """Provided by PostgresStore."""
        raise NotImplementedError

    async def _take_replication(self, conn: Conn, ops: list[Any]) -> list[Any]:
        """Write the `ReplicationProgress` ops of an entity transaction; return the other ops."""
        mine, rest = take_replication_progress(ops)
        for op in mine:
            added = 0
            if op.members:
                cur = await conn.execute(
                    "INSERT INTO ldes_member_seen (replication_key, member)"
                    " SELECT %s, m FROM unnest(%b::text[]) AS m ON CONFLICT DO NOTHING",
                    (op.key, list(dict.fromkeys(op.members))),
                )
                added = max(cur.rowcount, 0)
            await _fenced_save(conn, op.key, op.holder, op.state, op.lease_seconds, added)
        return rest

    async def open_replication(self, tenant: str, dataset_id: str, source: str) -> Replication:
        """The replication of `source` into `dataset_id` (made empty on first use)."""
        now = utc_now()
        async with self.pool.connection() as conn, conn.transaction():
            await conn.execute(
                "INSERT INTO ldes_replication (tenant, dataset_id, source, created_at, updated_at)"
                " VALUES (%s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
                (tenant, dataset_id, source, now, now),
            )
            cur = await conn.execute(
                f"SELECT {_COLUMNS} FROM ldes_replication"
                " WHERE tenant = %s AND dataset_id = %s AND source = %s",
                (tenant, dataset_id, source),
            )
            row = await cur.fetchone()
        assert row is not None
        return _replication(row)

    async def replications(self) -> list[Replication]:
        """Every replication, by key."""
        async with self.pool.connection() as conn:
            cur = await conn.execute(
                f"SELECT {_COLUMNS} FROM ldes_replication ORDER BY replication_key"
            )
            rows = await cur.fetchall()
        return [_replication(r) for r in rows]

    async def claim_replication(
        self, key: int, holder: str, lease_seconds: float, *, take_over: bool = False
    ) -> bool:
        """Take (or renew) the lease for `holder`; False when another's is still valid."""
        now = time.time()
        async with self.pool.connection() as conn, conn.transaction():
            cur = await conn.execute(
                "UPDATE ldes_replication SET lease_holder = %s, lease_until = %s"
                " WHERE replication_key = %s AND (lease_holder IS NULL OR lease_holder = %s"
                " OR lease_until < %s OR %s)",
                (holder, now + lease_seconds, key, holder, now, take_over),
            )
            return cur.rowcount == 1

    async def release_replication(self, key: int, holder: str) -> None:
        """Give the lease up (a no-op when `holder` no longer has it)."""
        async with self.pool.connection() as conn, conn.transaction():
            await conn.execute(
                "UPDATE ldes_replication SET lease_holder = NULL, lease_until = NULL"
                " WHERE replication_key = %s AND lease_holder = %s",
                (key, holder),
            )

    async def seen_members(self, key: int, members: Sequence[str]) -> set[str]:
        """Those of `members` recorded as seen in this replication."""
        unique = list(dict.fromkeys(members))
        if not unique:
            return set()
        async with self.pool.connection() as conn:
            cur = await conn.execute(
                "SELECT member FROM ldes_member_seen WHERE replication_key = %s"
                " AND member = ANY(%b::text[])",
                (key, unique),
            )
            return {r[0] for r in await cur.fetchall()}

    async def save_replication(
        self, key: int, holder: str, state: dict[str, Any], lease_seconds: float
    ) -> None:
        """Save the state outside an entity write (fenced; renews the lease)."""
        async with self.pool.connection() as conn, conn.transaction():
            await _fenced_save(conn, key, holder, state, lease_seconds, 0)
