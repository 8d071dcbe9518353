"""The one way the SQLite mixins run a write of their own on the writer thread."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import TypeVar

R = TypeVar("R")

__all__ = ["immediate"]


def immediate(conn: sqlite3.Connection, fn: Callable[[sqlite3.Connection], R]) -> R:
    """`fn(conn)` inside `BEGIN IMMEDIATE … COMMIT`; any exception rolls it all back."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        result = fn(conn)
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return result
