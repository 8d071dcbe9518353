"""Governance records and the audit chain on SQLite (`GovernanceStore`, migration 0003).

Mixed into `SQLiteStore`. Writes run on its single writer thread under `BEGIN IMMEDIATE`, so a
governance change and its audit record commit together and appends are serialised; reads use
the reader pool.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import TypeVar

from smartregion.storage.governance import GovernanceStore, Program, SqlResult
from smartregion.storage.sqlite.transactions import immediate

R = TypeVar("R")


def drive(conn: sqlite3.Connection, program: Program[R]) -> R:
    """Run a governance program's statements on `conn`; return its value."""
    try:
        step = next(program)
        while True:
            cur = conn.execute(step.text, step.params)
            rows = cur.fetchall() if cur.description else []
            step = program.send(SqlResult(rows, cur.rowcount))
    except StopIteration as stop:
        result: R = stop.value
        return result


class SQLiteGovernance(GovernanceStore):
    """The `GovernanceStore` part of `SQLiteStore`."""

    async def _write(self, fn: Callable[[sqlite3.Connection], R]) -> R:
        raise NotImplementedError  # provided by SQLiteStore

    async def _read(self, fn: Callable[[sqlite3.Connection], R]) -> R:
        raise NotImplementedError  # provided by SQLiteStore

    async def _run_governance(self, program: Program[R], *, write: bool) -> R:
        if not write:
            return await self._read(lambda conn: drive(conn, program))

        return await self._write(lambda conn: immediate(conn, lambda c: drive(c, program)))
