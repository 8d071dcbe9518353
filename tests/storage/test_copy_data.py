"""The binary COPY data of a PostgreSQL bulk load (storage/postgres/history.py `copy_data`):
rows in the order given — the time order of a series — whatever their documents, so that the
history stays clustered by (series, time) and its key index is filled by appending, not by
splitting pages in the middle (a load with two documents, e.g. whole and fractional readings,
once wrote one document's rows after the other's)."""

from __future__ import annotations

import struct

from smartregion.storage.history import BulkPlan
from smartregion.storage.postgres.history import copy_data

_SIGNATURE = b"PGCOPY\n\xff\r\n\x00"


def _rows(data: bytes) -> list[tuple[int, int, int, int | None, int | None, float, bytes | None]]:
    """Decode binary COPY data of the instance columns (PostgreSQL docs, "COPY", Binary
    Format): key, t, seq, dm, dc, num, doc."""
    assert data.startswith(_SIGNATURE)
    pos = len(_SIGNATURE) + 8
    formats = [">q", ">q", ">i", ">q", ">q", ">d", None]
    rows = []
    while True:
        (fields,) = struct.unpack_from(">h", data, pos)
        pos += 2
        if fields == -1:
            assert pos == len(data)
            return rows
        assert fields == 7
        row: list[object] = []
        for fmt in formats:
            (length,) = struct.unpack_from(">i", data, pos)
            pos += 4
            if length == -1:
                row.append(None)
                continue
            raw = data[pos : pos + length]
            pos += length
            row.append(raw if fmt is None else struct.unpack(fmt, raw)[0])
        rows.append(tuple(row))  # type: ignore[arg-type]


def test_rows_keep_their_order_across_documents() -> None:
    n = 1_000
    whole, fractional = b'{"unitCode":"CEL","w":1}', b'{"unitCode":"CEL"}'
    docs: list[bytes | None] = [whole if i % 7 == 0 else fractional for i in range(n)]
    docs[500] = None
    times = [1_700_000_000_000_000 + i * 60_000_000 for i in range(n)]
    plan = BulkPlan(
        keys=[3] * n, times=times, seqs=None, dms=[5_000 + i for i in range(n)],
        nums=[float(i) for i in range(n)], docs=docs,
    )  # fmt: skip
    data = copy_data(plan)
    assert data is not None
    assert _rows(data) == [
        (3, t, 0, 5_000 + i, None, float(i), docs[i]) for i, t in enumerate(times)
    ]


def test_one_document_and_none() -> None:
    plan = BulkPlan(keys=[1, 2], times=[10, 20], seqs=[0, 1], dms=[1, 2], nums=[1.5, 2.5],
                    docs=[None, None])  # fmt: skip
    data = copy_data(plan)
    assert data is not None
    assert _rows(data) == [(1, 10, 0, 1, None, 1.5, None), (2, 20, 1, 2, None, 2.5, None)]
