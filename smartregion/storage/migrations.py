"""Numbered, recorded, transactional schema migrations (in the manner of sqlite-utils).

Each backend keeps its migrations as `NNNN_name.sql` files in its `migrations/` package. A
migration runs inside one transaction together with the row recording it in `_migrations`, so it
is applied entirely or not at all, and exactly once: running `migrate` again applies nothing.
Concurrent runners (several workers starting at once) are serialised by the database: SQLite's
`BEGIN IMMEDIATE`, PostgreSQL's transaction-level advisory lock.
"""

from __future__ import annotations

import re
import sqlite3
from dataclasses import dataclass
from importlib import resources
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import psycopg

__all__ = ["MIGRATIONS_TABLE", "Migration", "discover", "migrate_postgres", "migrate_sqlite"]

MIGRATIONS_TABLE = "_migrations"
_NAME = re.compile(r"(\d{4})_[a-z0-9_]+\.sql")
# an arbitrary constant: the advisory lock key PostgreSQL migration runners share
_PG_LOCK = 0x5EA7_0001


@dataclass(frozen=True, slots=True)
class Migration:
    """One migration: its name (`0001_initial`) and SQL script."""

    name: str
    sql: str


def discover(package: str) -> list[Migration]:
    """The migrations shipped in `package`, in number order; numbers must be unique."""
    found: list[Migration] = []
    for entry in resources.files(package).iterdir():
        if entry.is_file() and _NAME.fullmatch(entry.name):
            found.append(Migration(entry.name[:-4], entry.read_text(encoding="utf-8")))
    found.sort(key=lambda m: m.name)
    numbers = [m.name[:4] for m in found]
    if len(set(numbers)) != len(numbers):
        raise RuntimeError(f"duplicate migration numbers in {package}: {numbers}")
    return found


def _statements(script: str) -> list[str]:
    """Split a SQLite script into statements (triggers' BEGIN … END stay whole)."""
    out: list[str] = []
    buffer = ""
    for line in script.splitlines(keepends=True):
        buffer += line
        if sqlite3.complete_statement(buffer):
            if buffer.strip():
                out.append(buffer)
            buffer = ""
    if buffer.strip() and not all(
        ln.strip().startswith("--") or not ln.strip() for ln in buffer.splitlines()
    ):
        raise RuntimeError(f"incomplete SQL statement at the end of a migration: {buffer!r}")
    return out


def migrate_sqlite(conn: sqlite3.Connection, migrations: list[Migration]) -> list[str]:
    """Apply pending migrations on an autocommit (`isolation_level=None`) connection."""
    conn.execute(
        f"CREATE TABLE IF NOT EXISTS {MIGRATIONS_TABLE} (name TEXT PRIMARY KEY,"
        " applied_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')))"
    )
    applied: list[str] = []
    for migration in migrations:
        # executescript() would commit first; running statement by statement keeps the
        # migration and its record in one transaction.
        conn.execute("BEGIN IMMEDIATE")
        try:
            done = conn.execute(
                f"SELECT 1 FROM {MIGRATIONS_TABLE} WHERE name = ?", (migration.name,)
            ).fetchone()
            if done is None:
                for statement in _statements(migration.sql):
                    conn.execute(statement)
                conn.execute(f"INSERT INTO {MIGRATIONS_TABLE} (name) VALUES (?)", (migration.name,))
                applied.append(migration.name)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    return applied


async def migrate_postgres(
    conn: psycopg.AsyncConnection[object], migrations: list[Migration]
) -> list[str]:
    """Apply pending migrations; each in its own transaction under an advisory lock."""
    applied: list[str] = []
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(%s)", (_PG_LOCK,))
        await conn.execute(
            f"CREATE TABLE IF NOT EXISTS {MIGRATIONS_TABLE} (name text PRIMARY KEY,"
            " applied_at timestamptz NOT NULL DEFAULT now())"
        )
    for migration in migrations:
        async with conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock(%s)", (_PG_LOCK,))
            cur = await conn.execute(
                f"SELECT 1 FROM {MIGRATIONS_TABLE} WHERE name = %s", (migration.name,)
            )
            if await cur.fetchone() is not None:
                continue
            # no parameters: psycopg sends the whole script in one simple-protocol round trip
            await conn.execute(migration.sql.encode())
            await conn.execute(
                f"INSERT INTO {MIGRATIONS_TABLE} (name) VALUES (%s)", (migration.name,)
            )
            applied.append(migration.name)
    return applied
