"""Storage: the `Store` interface (`base.py`) and its backends, chosen by database URL.

sqlite:///./smartregion.db     a file relative to the working directory (the default)
sqlite:////var/lib/sr.db       an absolute path
sqlite:///:memory:             an in-memory database (tests)
postgresql://user@host/db      PostgreSQL 15+ with PostGIS (also postgres://)
"""

from __future__ import annotations

from typing import Any

from smartregion.errors import InvalidRequest
from smartregion.storage.base import (
    DEFAULT_TENANT,
    AttrInfo,
    Delete,
    EntityQuery,
    Put,
    QueryResult,
    Readable,
    Store,
    StoredContext,
    TypeInfo,
    WriteOp,
)

__all__ = [
    "DEFAULT_TENANT",
    "AttrInfo",
    "Delete",
    "EntityQuery",
    "Put",
    "QueryResult",
    "Readable",
    "Store",
    "StoredContext",
    "TypeInfo",
    "WriteOp",
    "open_store",
]


def open_store(url: str, **options: Any) -> Store:
    """A (not yet opened) store for a database URL; `options` go to the backend's constructor."""
    if url.startswith("sqlite:///"):
        from smartregion.storage.sqlite import SQLiteStore

        path = url[len("sqlite:///") :].split("?", 1)[0]
        if not path:
            raise InvalidRequest(f"database URL {url!r} names no file")
        return SQLiteStore(path, **options)
    if url.startswith(("postgresql://", "postgres://", "postgresql+psycopg://")):
        from smartregion.storage.postgres import PostgresStore

        return PostgresStore(url.replace("postgresql+psycopg://", "postgresql://", 1), **options)
    raise InvalidRequest(
        f"unsupported database URL {url!r}: expected sqlite:///path or postgresql://…"
    )
