"""Governance records and the audit chain on PostgreSQL (`GovernanceStore`, migration 0003).

Mixed into `PostgresStore`. Each program runs in one transaction on a pooled connection; audit
appends are serialised by the row lock their `UPDATE audit_head … RETURNING` takes (READ
COMMITTED re-reads the head after the previous appender commits, so no two records get one seq).
"""

from __future__ import annotations

from typing import TypeVar

from psycopg_pool import AsyncConnectionPool

from smartregion.storage.governance import GovernanceStore, Program, SqlResult

R = TypeVar("R")


class PostgresGovernance(GovernanceStore):
    """The `GovernanceStore` part of `PostgresStore`."""

    @property
    def pool(self) -> AsyncConnectionPool:
        """Provided by PostgresStore."""
        raise NotImplementedError

    async def _run_governance(self, program: Program[R], *, write: bool) -> R:
        async with self.pool.connection() as conn, conn.transaction():
            try:
                step = next(program)
                while True:
                    # the programs' SQL has `?` placeholders and no literal `?` or `%`
                    cur = await conn.execute(step.text.replace("?", "%s"), step.params)
                    rows = await cur.fetchall() if cur.description else []
                    step = program.send(SqlResult(rows, cur.rowcount))
            except StopIteration as stop:
                result: R = stop.value
                return result
