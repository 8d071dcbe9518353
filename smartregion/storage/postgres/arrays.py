"""Flat lists sent as PostgreSQL arrays, encoded in bulk instead of element by element.

Every set-based write passes its rows as columns (`unnest(%b::bigint[], …)`), so a 1,000-entity
batch sends about 100,000 array elements. psycopg's own binary list dumper handles them in
Python one by one (a type scan for the element type, then a dumper call, a length and two
appends per element): py-spy put about a fifth of the event loop's GIL samples of a PostgreSQL
batch upsert in parameter conversion, and encoding in bulk cut the loop's CPU per batch by
about a tenth (docs/benchmarks.md). `FastListDumper` takes over for the flat lists these
statements send — all elements `int` (int8[]), `float` or `int` and `float` (float8[]), `str`
(text[]) or `bytes` (bytea[]), with or without `None` — and writes PostgreSQL's binary array
format (`array_send`) with numpy for the fixed-size types and one join for the others. Any
other list (nested, mixed, booleans, ints beyond 64 bits, other types) goes to psycopg's
dumper unchanged.

Integers are always sent as int8[]: the statements cast every array explicitly
(`::int[]`, `::smallint[]`), and PostgreSQL casts an int8 array to those element by element,
rejecting values out of range as it would for any other input.
"""

from __future__ import annotations

import struct
from typing import Any

import numpy as np
from psycopg.adapt import Buffer, PyFormat
from psycopg.types.array import ListBinaryDumper

__all__ = ["FastListDumper", "encode_array"]

# element type oids and their array types (pg_type)
_INT8, _INT8_ARRAY = 20, 1016
_FLOAT8, _FLOAT8_ARRAY = 701, 1022
_TEXT, _TEXT_ARRAY = 25, 1009
_BYTEA, _BYTEA_ARRAY = 17, 1001

_HEAD = struct.Struct(">iiiii")  # dimensions (1), has nulls, element oid, length, lower bound
_EMPTY = struct.Struct(">iii")  # dimensions (0), has nulls, element oid
_LENGTH = struct.Struct(">i").pack
_NULL = b"\xff\xff\xff\xff"  # an element's length -1: NULL, no data
_INT8_RANGE = (-(2**63), 2**63 - 1)
#: arrays up to this length are packed element by element, longer ones with numpy
_SMALL = 32
_ELEMENT = {">i8": struct.Struct(">iq").pack, ">f8": struct.Struct(">id").pack}

#: the kinds of flat list encoded here: (element oid, array oid)
_KINDS: dict[str, tuple[int, int]] = {
    "int8": (_INT8, _INT8_ARRAY),
    "float8": (_FLOAT8, _FLOAT8_ARRAY),
    "text": (_TEXT, _TEXT_ARRAY),
    "bytea": (_BYTEA, _BYTEA_ARRAY),
}
_NONE = type(None)


def list_kind(values: list[Any]) -> str | None:
    """The kind of array `values` is sent as here, or None when psycopg's dumper must do it."""
    types = set(map(type, values))
    nulls = _NONE in types
    types.discard(_NONE)
    if not types:
        return None  # empty or all NULL: psycopg sends it with an unknown element type
    if types == {int}:
        present = [v for v in values if v is not None] if nulls else values
        low, high = _INT8_RANGE
        return "int8" if low <= min(present) and max(present) <= high else None
    if types <= {int, float}:
        return "float8"
    if types == {str}:
        return "text"
    if types == {bytes}:
        return "bytea"
    return None


def encode_array(values: list[Any], kind: str) -> bytes:
    """`values` in PostgreSQL's binary array format, as an array of `kind` (see `list_kind`)."""
    oid = _KINDS[kind][0]
    n = len(values)
    if not n:
        return _EMPTY.pack(0, 0, oid)
    if kind == "int8" or kind == "float8":
        return _fixed(values, n, oid, ">i8" if kind == "int8" else ">f8")
    if kind == "text":
        values = [None if v is None else v.encode() for v in values]
    has_null = 0
    parts: list[bytes] = [b""]
    for value in values:
        if value is None:
            has_null = 1
            parts.append(_NULL)
        else:
            parts.append(_LENGTH(len(value)))
            parts.append(value)
    parts[0] = _HEAD.pack(1, has_null, oid, n, 1)
    return b"".join(parts)


def _fixed(values: list[Any], n: int, oid: int, dtype: str) -> bytes:
    """An array of 8-byte elements: each a length (8, or -1 for NULL) and its big-endian value."""
    if n <= _SMALL:  # a single-entity write's few values: struct is cheaper than numpy
        pack = _ELEMENT[dtype]
        packed = b"".join(_NULL if v is None else pack(8, v) for v in values)
        return _HEAD.pack(1, int(None in values), oid, n, 1) + packed
    records = np.empty(n, dtype=[("length", ">i4"), ("value", dtype)])
    if None not in values:
        records["length"] = 8
        records["value"] = values
        return _HEAD.pack(1, 0, oid, n, 1) + records.tobytes()
    nulls = np.fromiter((v is None for v in values), dtype=bool, count=n)
    records["length"] = np.where(nulls, -1, 8)
    records["value"] = [0 if v is None else v for v in values]
    keep = np.ones((n, 12), dtype=bool)
    keep[nulls, 4:] = False  # a NULL is its length alone
    body = records.view(np.uint8).reshape(n, 12)[keep]
    return _HEAD.pack(1, 1, oid, n, 1) + body.tobytes()


class FastListDumper(ListBinaryDumper):
    """psycopg's binary list dumper, with the flat lists of `list_kind` encoded in bulk."""

    kind: str | None = None

    def get_key(self, obj: list[Any], format: PyFormat) -> Any:
        kind = list_kind(obj)
        if kind is None:
            return super().get_key(obj, format)
        return (self.cls, kind)

    def upgrade(self, obj: list[Any], format: PyFormat) -> Any:
        kind = list_kind(obj)
        if kind is None:
            return super().upgrade(obj, format)
        dumper = FastListDumper(self.cls, self._tx)
        dumper.kind = kind
        dumper.oid = _KINDS[kind][1]
        return dumper

    def dump(self, obj: list[Any]) -> Buffer | None:
        if self.kind is None:
            return super().dump(obj)
        return encode_array(obj, self.kind)
