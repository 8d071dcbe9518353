"""`rollups.partial_columns` (the bulk path's roll-up fold, with numpy) and `partial_rows` (the
writes' fold) against `bucket_partials`; `encode_instance` against `numeric_value` and
`decode_instance`."""

from __future__ import annotations

import math

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from smartregion.storage.rollups import (
    HOUR,
    MINUTE,
    bucket_partials,
    decode_instance,
    encode_instance,
    format_micros,
    format_observed,
    numeric_value,
    partial_columns,
    partial_rows,
)

points = st.lists(
    st.tuples(
        st.integers(1, 4),
        # around the epoch and a few days on: negative times, ties, several hours and days
        st.integers(-3 * 24 * 60, 3 * 24 * 60).map(lambda m: m * MINUTE),
        st.sampled_from([0, 0, 7, HOUR - 1]),
        st.one_of(st.none(), st.integers(-5, 5).map(float), st.floats(-1e6, 1e6)),
    ),
    max_size=120,
)


@settings(max_examples=150, deadline=None)
@given(points)
def test_partial_columns_equal_the_row_at_a_time_fold(
    rows: list[tuple[int, int, int, float | None]],
) -> None:
    keys = [k for k, _, _, _ in rows]
    times = [m + extra for _, m, extra, _ in rows]
    nums = [v for _, _, _, v in rows]
    want = bucket_partials(
        (k, t, v) for k, t, v in zip(keys, times, nums, strict=True) if v is not None
    )
    columns = partial_columns(keys, times, nums)
    got = {(r[0], r[1], r[2]): r[3:] for r in zip(*columns, strict=True)}
    assert list(got) == sorted(want)  # sorted by (series, level, bucket), each bucket once
    for key, summary in want.items():
        count, total, sumsq, vmin, vmax, first_t, first_v, last_t, last_v = got[key]
        assert (count, vmin, vmax, first_t, first_v, last_t, last_v) == (
            summary.count, summary.vmin, summary.vmax, summary.first_t, summary.first_v,
            summary.last_t, summary.last_v,
        )  # fmt: skip
        assert math.isclose(total, summary.total, rel_tol=1e-9, abs_tol=1e-6)
        assert math.isclose(sumsq, summary.sumsq, rel_tol=1e-9, abs_tol=1e-6)
        assert all(type(x) in (int, float) for x in got[key])


def test_ties_in_time_keep_the_first_and_last_recorded() -> None:
    keys, times, nums = [1, 1, 1, 1], [5, 5, 9, 9], [1.0, 2.0, 3.0, 4.0]
    rows = list(zip(*partial_columns(keys, times, nums), strict=True))
    assert [r[8:] for r in rows] == [(5, 1.0, 9, 4.0)] * 2  # hour and day buckets


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(1, 6),
            st.integers(-3 * 24 * 60, 3 * 24 * 60).map(lambda m: m * MINUTE),
            st.floats(-1e6, 1e6),
        ),
        max_size=12,
    ),
    st.booleans(),
)
def test_partial_rows_equal_the_row_at_a_time_fold(
    points: list[tuple[int, int, float]], one_per_series: bool
) -> None:
    if one_per_series:  # the usual write: each series brings one point (the direct path)
        points = list({series: (series, t, v) for series, t, v in points}.values())
    want = bucket_partials(points)
    # the same numbers exactly (no other order of additions), in key order
    assert partial_rows(points) == [(*key, *want[key].astuple()) for key in sorted(want)]


_times = st.integers(0, 4_000_000_000_000_000)
instances = st.fixed_dictionaries(
    {
        "value": st.one_of(
            st.integers(-(2**63), 2**64 - 1),  # what JSON parsing (orjson) admits
            st.floats(allow_nan=False, allow_infinity=False),
            st.integers(-3, 3).map(float),
            st.booleans(),
            st.text(max_size=3),
            st.dictionaries(st.text(max_size=2), st.integers(-5, 5), max_size=2),
        ),
        "createdAt": _times.map(format_micros),
        "modifiedAt": _times.map(format_micros),
    },
    optional={
        "type": st.sampled_from(["Property", "GeoProperty", "Relationship"]),
        "unitCode": st.sampled_from(["CEL", "P1"]),
        "observedAt": _times.map(format_observed),
        "datasetId": st.sampled_from(["urn:ds:1", "urn:ds:2"]),
    },
)


@settings(max_examples=300, deadline=None)
@given(instances)
def test_an_encoded_instance_decodes_to_itself_with_the_number_numeric_value_picks(
    instance: dict[str, object],
) -> None:
    e = encode_instance(instance, now=0)
    assert e.num == numeric_value(instance)
    back = decode_instance(e.t, e.dm, e.dc, e.num, e.doc, e.dataset_id)
    # as JSON text: 2 and 2.0 are equal in Python, not to a client
    sort = orjson.OPT_SORT_KEYS
    assert orjson.dumps(back, option=sort) == orjson.dumps(
        {"type": "Property", **instance}, option=sort
    )


@given(st.sampled_from([math.inf, -math.inf, math.nan]))
def test_a_non_finite_number_is_no_number_to_aggregate(value: float) -> None:
    instance = {"type": "Property", "value": value}
    assert encode_instance(instance, now=0).num is None is numeric_value(instance)
