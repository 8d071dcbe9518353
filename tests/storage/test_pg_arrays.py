"""Flat lists as PostgreSQL arrays (storage/postgres/arrays.py): what the fast encoder sends
reads back from a real server exactly as psycopg's own dumper would have sent it, and the lists
it does not take still reach the server through psycopg's dumper."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from smartregion.storage.postgres.arrays import FastListDumper, list_kind

pytestmark = pytest.mark.postgres


@pytest.fixture(scope="module")
def conn(postgres_url: str) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(postgres_url, autocommit=True) as connection:
        connection.adapters.register_dumper(list, FastListDumper)
        yield connection


def round_trip(conn: psycopg.Connection[Any], values: list[Any], cast: str) -> list[Any]:
    row = conn.execute(f"SELECT %b::{cast}", (values,)).fetchone()
    assert row is not None
    result: list[Any] = row[0]
    return result


_SLOW = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
_INT8 = st.integers(min_value=-(2**63), max_value=2**63 - 1)
_TEXT = st.text(st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",)))


@_SLOW
@given(st.lists(st.none() | _INT8, max_size=40))
def test_integers(conn: psycopg.Connection[Any], values: list[int | None]) -> None:
    assert round_trip(conn, values, "bigint[]") == values


@_SLOW
@given(st.lists(st.none() | st.floats(allow_nan=False) | st.integers(-(2**53), 2**53), max_size=40))
def test_numbers(conn: psycopg.Connection[Any], values: list[float | int | None]) -> None:
    back = round_trip(conn, values, "float8[]")
    assert back == [None if v is None else float(v) for v in values]


@_SLOW
@given(st.lists(st.none() | _TEXT, max_size=30))
def test_texts(conn: psycopg.Connection[Any], values: list[str | None]) -> None:
    assert round_trip(conn, values, "text[]") == values


@_SLOW
@given(st.lists(st.none() | st.binary(max_size=50), max_size=30))
def test_bytes(conn: psycopg.Connection[Any], values: list[bytes | None]) -> None:
    assert round_trip(conn, values, "bytea[]") == values


def test_special_floats_and_narrower_casts(conn: psycopg.Connection[Any]) -> None:
    back = round_trip(conn, [math.inf, -math.inf, math.nan, -0.0], "float8[]")
    assert back[:2] == [math.inf, -math.inf] and math.isnan(back[2])
    assert math.copysign(1.0, back[3]) == -1.0
    # integers are sent as int8[]: the statement's cast narrows them, and refuses what overflows
    assert round_trip(conn, [1, None, -32768], "smallint[]") == [1, None, -32768]
    assert round_trip(conn, [2**31 - 1], "int[]") == [2**31 - 1]
    with pytest.raises(psycopg.errors.NumericValueOutOfRange):
        round_trip(conn, [2**31], "int[]")
    # long arrays (encoded with numpy, short ones element by element), NULLs among them
    ints = [None if i % 7 == 0 else i * 1_000_003 - 2**40 for i in range(100)]
    assert round_trip(conn, ints, "bigint[]") == ints
    floats = [None if i % 5 == 0 else i / 3 for i in range(100)]
    assert round_trip(conn, floats, "float8[]") == floats
    # in a set-based statement, as the stores use them
    rows = conn.execute(
        "SELECT * FROM unnest(%b::bigint[], %b::text[], %b::float8[])",
        ([1, 2], ["a", None], [0.5, None]),
    ).fetchall()
    assert rows == [(1, "a", 0.5), (2, None, None)]


def test_other_lists_go_to_psycopg(conn: psycopg.Connection[Any]) -> None:
    cases: list[tuple[list[Any], str]] = [
        ([], "bigint[]"),
        ([None, None], "text[]"),
        ([True, False, None], "boolean[]"),
        ([2**63, -(2**63) - 1], "numeric[]"),
        ([[1, 2], [3, 4]], "bigint[]"),
        ([1, "a"], "text[]"),
    ]
    for values, cast in cases[:4]:
        assert list_kind(values) is None
        back = round_trip(conn, values, cast)
        assert back == values
    assert round_trip(conn, cases[4][0], cases[4][1]) == [[1, 2], [3, 4]]
    assert list_kind(cases[5][0]) is None
    with pytest.raises(psycopg.DataError):  # psycopg's own refusal, as before
        round_trip(conn, cases[5][0], cases[5][1])
