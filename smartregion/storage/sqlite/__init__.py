"""The embedded SQLite backend."""

from __future__ import annotations

from smartregion.storage.sqlite.store import SQLiteStore

__all__ = ["SQLiteStore"]
