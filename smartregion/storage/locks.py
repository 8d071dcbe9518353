"""Job locks: at most one process at a time runs a named background job on one database.

`exclusive(store, name)` tries the lock without waiting and yields whether it got it; the
lock is released when the block ends, and by the database or the OS when the process dies
(never left behind by a crash):

- PostgreSQL: a session-level advisory lock (`pg_try_advisory_lock`) on a pooled connection
  held for the block — shared by every process on the database, whatever host it runs on.
- SQLite: an exclusive `flock` on a file beside the database (`<db>.<name>.lock`), which is what
  every process sharing that database file has in common. An in-memory database is one process's
  own: the lock is always granted.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
from collections.abc import AsyncIterator
from typing import Any

__all__ = ["exclusive", "lock_key"]


def lock_key(name: str) -> int:
    """A stable signed 64-bit advisory lock key for a job name."""
    digest = hashlib.blake2b(f"smartregion:{name}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


@contextlib.asynccontextmanager
async def exclusive(store: Any, name: str) -> AsyncIterator[bool]:
    """Hold the job lock `name` on `store`'s database for the block, if free: yields whether."""
    backend = getattr(store, "backend", "")
    if backend == "postgresql":
        key = lock_key(name)
        async with store.pool.connection() as conn:
            cur = await conn.execute("SELECT pg_try_advisory_lock(%s)", (key,))
            row = await cur.fetchone()
            got = bool(row and row[0])
            try:
                yield got
            finally:
                if got:
                    await conn.execute("SELECT pg_advisory_unlock(%s)", (key,))
        return
    path = str(getattr(store, "path", "") or "")
    if backend != "sqlite" or not path or path == ":memory:" or path.startswith("file::memory:"):
        yield True
        return
    fd = os.open(f"{path}.{name}.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
