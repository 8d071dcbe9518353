"""PostgreSQL's plans for the set-based statements of a write: each finds its rows through an
index, whatever the table's size, instead of scanning the table.

A statement joining a table with the `unnest` of a write's keys leaves the join to the
planner, which picks a hash join over a scan of the whole table where it guesses that cheaper
— for a batch's 750 (entity, attribute) pairs at 20,000 entities, 43 ms where the index takes
4, and the time grows with the table. These tests make the tables that large (rows inserted
directly, with statistics, as the store keeps them after bulk writes) and read the plans.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from smartregion.storage import Store
from smartregion.storage.postgres.history import _STORED_AT
from smartregion.storage.postgres.store import (
    _DELETE_GEOMS,
    _DELETE_TYPES,
    _DELETE_VALUES,
    PostgresStore,
)

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.anyio,
    pytest.mark.parametrize("backend", ["postgresql"]),
]

ENTITIES = 20_000
#: a batch chunk's entities (broker/batch.py CHUNK) and their attributes
KEYS = list(range(5_001, 5_251))
ATTRS = (1, 2, 3)


def _scans(plan: Any) -> Iterator[tuple[str, str]]:
    """(node type, relation) of every node of an EXPLAIN (FORMAT JSON) plan."""
    yield plan["Node Type"], plan.get("Relation Name", "")
    for child in plan.get("Plans", ()):
        yield from _scans(child)


def _plan(
    conn: psycopg.Connection[Any], sql: str, params: tuple[Any, ...]
) -> list[tuple[str, str]]:
    row = conn.execute("EXPLAIN (FORMAT JSON) " + sql, params).fetchone()
    assert row is not None
    return list(_scans(row[0][0]["Plan"]))


def _fill_index(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO attr_value (entity_key, attr_key, typeset_key, inst, elem, kind, num)"
            " SELECT g, a, 1, 0, 0, 1, g FROM generate_series(1, %s) g, generate_series(1, 3) a",
            (ENTITIES,),
        )
        conn.execute(
            "INSERT INTO geo_index (entity_key, attr_key, inst, geom, x, y)"
            " SELECT g, 3, 0, ST_SetSRID(ST_MakePoint(4 + g / 1e5, 51), 4326), 4 + g / 1e5, 51"
            " FROM generate_series(1, %s) g",
            (ENTITIES,),
        )
        conn.execute(
            "INSERT INTO entity_type (tenant_key, type_key, entity_key)"
            " SELECT 1, t, g FROM generate_series(1, %s) g, generate_series(1, 3) t",
            (ENTITIES,),
        )
        conn.execute("ANALYZE attr_value, geo_index, entity_type")


@pytest.mark.parametrize(
    ("table", "sql", "pairs", "per_entity"),
    [
        ("attr_value", _DELETE_VALUES, [(k, a) for k in KEYS for a in ATTRS], 3),
        ("geo_index", _DELETE_GEOMS, [(k, 3) for k in KEYS], 1),
        ("entity_type", _DELETE_TYPES, [(k, 2) for k in KEYS], 3),
    ],
)
async def test_the_index_rows_a_batch_chunk_removes_are_found_through_an_index(
    store: Store,
    store_url: str,
    table: str,
    sql: str,
    pairs: list[tuple[int, int]],
    per_entity: int,
) -> None:
    assert isinstance(store, PostgresStore)
    _fill_index(store_url)
    # the types' statement also takes the tenant's key (1: the default tenant)
    more = (1,) if table == "entity_type" else ()
    params = ([p[0] for p in pairs], [p[1] for p in pairs], *more)
    with psycopg.connect(store_url) as conn:
        scans = _plan(conn, sql, params)
        assert ("Seq Scan", table) not in scans, scans
        # and it removes exactly those rows
        before = conn.execute(f"SELECT count(*) FROM {table}").fetchone()
        conn.execute(sql, params)
        after = conn.execute(f"SELECT count(*) FROM {table}").fetchone()
        assert before is not None and after is not None
        assert before[0] - after[0] == len(pairs)
        left = conn.execute(
            f"SELECT count(*) FROM {table} WHERE entity_key = ANY(%s)", (KEYS,)
        ).fetchone()
        assert left is not None and left[0] == len(KEYS) * per_entity - len(pairs)
        conn.rollback()


async def test_the_instances_a_write_checks_are_probed_through_the_index(
    store: Store, store_url: str
) -> None:
    # 2,000 (series, t) pairs against 120,000 recorded instances that have no statistics yet
    # (autovacuum had not come by): a plain join was planned as a scan of every partition
    assert isinstance(store, PostgresStore)
    t0 = 1_795_000_000_000_000  # 2026-11-17, microseconds
    await store._ensure_partitions([t0])
    with psycopg.connect(store_url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO instance (series_key, t, seq, dm, num)"
            " SELECT s, %s + h * 3600000000, 0, 5, h FROM generate_series(1, 5000) s,"
            " generate_series(0, 23) h",
            (t0,),
        )
        pairs = [(s, t0 + 3_600_000_000 * (s % 24)) for s in range(1, 2_001)]
        params = ([s for s, _ in pairs], [t for _, t in pairs])
        scans = _plan(conn, _STORED_AT, params)
        assert not any(node == "Seq Scan" for node, _ in scans), scans
        rows = conn.execute(_STORED_AT, params).fetchall()
        assert sorted((s, t) for s, t, *_ in rows) == pairs
