"""The PostgreSQL (PostGIS) backend."""

from __future__ import annotations

from smartregion.storage.postgres.store import PostgresStore

__all__ = ["PostgresStore"]
