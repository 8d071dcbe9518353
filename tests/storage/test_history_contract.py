"""The attribute-history storage contract (`HistoryStore`): every test runs on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import itertools
import math
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from smartregion.errors import BadRequestData
from smartregion.storage import Delete, Put, Store, open_store
from smartregion.storage.history import (
    BulkRow,
    DropHistory,
    HistoryQuery,
    HistoryStore,
    InstanceRow,
    RecordInstances,
)
from smartregion.storage.rollups import (
    DAY,
    HOUR,
    LEVELS,
    MINUTE,
    Summary,
    format_micros,
    format_observed,
    micros,
    summarise_points,
)

pytestmark = pytest.mark.anyio

A = "https://example.org/temperature"
B = "https://example.org/status"
E1, E2 = "urn:ngsi-ld:Sensor:1", "urn:ngsi-ld:Sensor:2"
T0 = micros("2026-03-01T00:00:00Z")


def hist(store: Store) -> HistoryStore:
    assert isinstance(store, HistoryStore)
    return store


def inst(at: int, value: Any, **extra: Any) -> dict[str, Any]:
    return {"type": "Property", "value": value, "observedAt": format_observed(at), **extra}


def rows(entity: str, attr: str, *points: tuple[int, Any]) -> list[InstanceRow]:
    return [InstanceRow(entity, attr, inst(at, v)) for at, v in points]


def values(history: Any) -> list[Any]:
    return [i.doc["value"] for i in history.instances]


async def test_append_and_query_in_time_order(store: Store) -> None:
    h = hist(store)
    # out of order, two attributes, two datasets, a text value
    await h.append_instances("", rows(E1, A, (T0 + 30 * MINUTE, 3), (T0, 1), (T0 + 10 * MINUTE, 2)))
    await h.append_instances(
        "",
        [
            InstanceRow(E1, A, inst(T0 + 5 * MINUTE, 9.5, datasetId="urn:ds:b", unitCode="CEL")),
            InstanceRow(E1, B, inst(T0, "on")),
            InstanceRow(E2, A, inst(T0, 7)),
        ],
    )
    got = await h.query_instances("", HistoryQuery((E1,)))
    # series in attribute IRI, then datasetId order
    assert [(g.series.attr, g.series.dataset_id) for g in got] == [
        (B, ""),
        (A, ""),
        (A, "urn:ds:b"),
    ]
    assert values(got[1]) == [1, 2, 3]
    doc = got[2].instances[0].doc
    assert doc["value"] == 9.5 and doc["unitCode"] == "CEL" and doc["datasetId"] == "urn:ds:b"
    assert doc["observedAt"] == format_observed(T0 + 5 * MINUTE)
    assert doc["instanceId"] == got[2].instances[0].instance_id
    assert values(got[0]) == ["on"]
    # window [start, end), attrs, datasetIds, lastN, per-series limit
    q = HistoryQuery((E1, E2), attrs=frozenset({A}), dataset_ids=frozenset({""}))
    q.start, q.end = T0 + MINUTE, T0 + 30 * MINUTE
    got = await h.query_instances("", q)
    assert [(g.series.entity_id, values(g)) for g in got] == [(E1, [2]), (E2, [])]
    got = await h.query_instances("", HistoryQuery((E1,), attrs=frozenset({A}), last_n=2))
    assert values(got[0]) == [2, 3] and not got[0].truncated
    got = await h.query_instances("", HistoryQuery((E1,), attrs=frozenset({A}), limit=2))
    assert values(got[0]) == [1, 2] and got[0].truncated
    got = await h.query_instances("", HistoryQuery((E1,), attrs=frozenset({A}), last_n=3, limit=1))
    assert values(got[0]) == [3] and got[0].truncated
    # tenants are separate
    assert await h.query_instances("other", HistoryQuery((E1,))) == []


async def test_values_round_trip(store: Store) -> None:
    h = hist(store)
    sub = {"https://example.org/accuracy": {"type": "Property", "value": 0.1}}
    docs = [
        inst(T0, 21, **sub),
        inst(T0 + 1, 21.0),
        inst(T0 + 2, 2**60),
        inst(T0 + 3, True),
        inst(T0 + 4, {"a": [1, 2]}),
        {"type": "Relationship", "object": "urn:x", "observedAt": format_observed(T0 + 5)},
    ]
    await h.append_instances("", [InstanceRow(E1, A, d) for d in docs])
    (got,) = await h.query_instances("", HistoryQuery((E1,)))
    back = [
        {k: v for k, v in i.doc.items() if k not in ("createdAt", "modifiedAt", "instanceId")}
        for i in got.instances
    ]
    assert back == docs
    assert type(back[0]["value"]) is int and type(back[1]["value"]) is float


async def test_timeproperty_selects_on_system_times(store: Store) -> None:
    h = hist(store)
    created = "2026-05-01T00:00:00.000000Z"
    await h.append_instances(
        "",
        [
            # observed in March, recorded in May and modified in June
            InstanceRow(E1, A, inst(T0, 1, createdAt=created, modifiedAt="2026-06-01T00:00:00Z")),
            # no observedAt: it is observed when it was modified
            InstanceRow(
                E1, A, {"type": "Property", "value": 2, "createdAt": created, "modifiedAt": created}
            ),
        ],
    )
    may, june = micros(created), micros("2026-06-01T00:00:00Z")

    async def window(prop: str, lo: int, hi: int) -> list[Any]:
        q = HistoryQuery((E1,), start=lo, end=hi, timeproperty=prop)
        (got,) = await h.query_instances("", q)
        return values(got)

    assert await window("observedAt", T0, T0 + 1) == [1]
    assert await window("observedAt", may, may + 1) == [2]
    assert await window("modifiedAt", june, june + 1) == [1]
    assert await window("createdAt", may, may + 1) == [1, 2]
    (got,) = await h.query_instances("", HistoryQuery((E1,)))
    first, second = got.instances
    assert first.doc["createdAt"] == created and first.doc["modifiedAt"].startswith("2026-06-01")
    assert "observedAt" not in second.doc and second.doc["modifiedAt"] == created
    with pytest.raises(BadRequestData):
        await h.query_instances("", HistoryQuery((E1,), timeproperty="deletedAt"))


async def test_instances_commit_with_the_entity_write(store: Store) -> None:
    h = hist(store)

    def write(fail: bool, bad_time: bool = False) -> Any:
        def mutate(current: dict[str, Any]) -> tuple[list[Any], None]:
            if fail:
                raise RuntimeError("mutate fails")
            at = "yesterday" if bad_time else format_micros(T0)
            doc = {
                "id": E1,
                "type": ["https://example.org/Sensor"],
                "attrs": {A: [{"type": "Property", "value": 5}]},
            }
            record = RecordInstances(
                (InstanceRow(E1, A, {"type": "Property", "value": 5, "observedAt": at}),)
            )
            return [Put(doc), record], None

        return mutate

    with pytest.raises(RuntimeError):
        await store.transact("", [E1], write(fail=True), owner="org")
    with pytest.raises(BadRequestData):  # the instance cannot be written: neither is the entity
        await store.transact("", [E1], write(fail=False, bad_time=True), owner="org")
    assert await store.get_entity("", E1) is None
    assert await h.find_series("") == []
    await store.transact("", [E1], write(fail=False), owner="org")
    assert await store.get_entity("", E1) is not None
    (got,) = await h.query_instances("", HistoryQuery((E1,)))
    assert values(got) == [5]


async def test_a_shape_made_by_a_failed_write_is_not_remembered(store: Store) -> None:
    h = hist(store)

    def write(fail: bool) -> Any:
        def mutate(current: dict[str, Any]) -> tuple[list[Any], None]:
            doc: dict[str, Any] = {
                "id": E1,
                "type": ["https://example.org/Sensor"],
                "attrs": {A: [{"type": "Property", "value": 5}]},
            }
            if fail:  # the entity cannot be written, after its instances were
                doc["unwritable"] = {1, 2}
            # a unit no write has used yet: its document becomes a new shape
            row = InstanceRow(E1, A, inst(T0, 5, unitCode="XQZ"))
            return [Put(doc), RecordInstances((row,))], None

        return mutate

    with pytest.raises(TypeError):
        await store.transact("", [E1], write(fail=True), owner="org")
    await store.transact("", [E1], write(fail=False), owner="org")
    # another new shape: a key remembered from the failed write could be given to this one
    await h.append_instances("", [InstanceRow(E2, A, inst(T0, 1, unitCode="OTHER"))])
    await store.transact("", [E1], write(fail=False), owner="org")  # the shape known now
    (got,) = await h.query_instances("", HistoryQuery((E1,)))
    assert [i.doc.get("unitCode") for i in got.instances] == ["XQZ"]
    (other,) = await h.query_instances("", HistoryQuery((E2,)))
    assert [i.doc.get("unitCode") for i in other.instances] == ["OTHER"]


async def test_a_shape_seen_twice_by_a_failed_write_is_not_remembered(store: Store) -> None:
    # Two bulk loads in one transaction: the first makes a new shape (a unit no row has used),
    # the second finds it — made by this very transaction, not committed. The transaction then
    # fails: nothing of it may be remembered, or a later load refers to a shape that is not.
    h = hist(store)

    def write(first: Any, second: Any, *, fail: bool) -> Any:
        def mutate(current: dict[str, Any]) -> tuple[list[Any], None]:
            doc: dict[str, Any] = {"id": E1, "type": ["https://example.org/Sensor"], "attrs": {}}
            if fail:  # the entity cannot be written, after both loads were
                doc["unwritable"] = {1, 2}
            return [first, second, Put(doc)], None

        return mutate

    def load(entity: str, start: int) -> Any:
        return h.prepare_load(
            [BulkRow(entity, A, T0 + (start + i) * MINUTE, i, "XQY") for i in range(3)]
        )

    with pytest.raises(TypeError):
        await store.transact(
            "", [E1], write(await load(E1, 0), await load(E2, 0), fail=True), owner="org"
        )
    assert await h.find_series("", [E1, E2]) == []
    # other shapes made meanwhile take the keys a remembered one would point to
    await h.bulk_load("", [BulkRow(E2, B, T0, 1, "OTHER"), BulkRow(E2, B, T0 + MINUTE, 2, "MORE")])
    await store.transact(
        "", [E1], write(await load(E1, 10), await load(E2, 10), fail=False), owner="org"
    )
    h.shape_cache().docs.clear()  # read as another process would: every shape from the database
    for entity in (E1, E2):
        (got,) = await h.query_instances("", HistoryQuery((entity,), attrs=frozenset({A})))
        assert [i.doc.get("unitCode") for i in got.instances] == ["XQY"] * 3


async def test_history_is_dropped_with_the_entity_write_or_not_at_all(store: Store) -> None:
    h = hist(store)
    doc = {
        "id": E1,
        "type": ["https://example.org/Sensor"],
        "attrs": {A: [{"type": "Property", "value": 5}]},
    }
    record = RecordInstances(
        tuple(rows(E1, A, (T0, 5), (T0 + MINUTE, 6)) + rows(E1, B, (T0, "on")))
    )
    await store.transact("", [E1], lambda current: ([Put(doc), record], None), owner="org")
    bad = RecordInstances(
        (InstanceRow(E1, A, {"type": "Property", "value": 1, "observedAt": "never"}),)
    )

    def delete_all(fail: bool) -> Any:
        def mutate(current: dict[str, Any]) -> tuple[list[Any], None]:
            return [Delete(E1), DropHistory(E1), *([bad] if fail else [])], None

        return mutate

    # a later part of the transaction fails: the entity and its history stay, both
    with pytest.raises(BadRequestData):
        await store.transact("", [E1], delete_all(fail=True), owner="org")
    assert await store.get_entity("", E1) is not None
    assert len(await h.find_series("", [E1])) == 2
    # one attribute's history, with the entity's new state
    drop_b = lambda current: ([Put(doc), DropHistory(E1, B)], None)  # noqa: E731
    await store.transact("", [E1], drop_b, owner="org")
    assert [s.attr for s in await h.find_series("", [E1])] == [A]
    await store.transact("", [E1], delete_all(fail=False), owner="org")
    assert await store.get_entity("", E1) is None
    assert await h.find_series("", [E1]) == []


def sensor_write(n: int, *rows: InstanceRow) -> Any:
    """The `mutate` of an entity write setting E1's A to `n` and recording `rows`."""

    def mutate(current: dict[str, Any]) -> tuple[list[Any], None]:
        doc = {
            "id": E1,
            "type": ["https://example.org/Sensor"],
            "attrs": {A: [{"type": "Property", "value": n}]},
        }
        return [Put(doc), RecordInstances(rows)], None

    return mutate


async def test_concurrent_entity_writes_record_every_instance(store: Store) -> None:
    h = hist(store)
    # every write observes the same instant: ties are kept, in recording order
    await asyncio.gather(
        *(
            store.transact("", [E1], sensor_write(n, InstanceRow(E1, A, inst(T0, n))), owner="org")
            for n in range(20)
        )
    )
    (got,) = await h.query_instances("", HistoryQuery((E1,)))
    assert sorted(values(got)) == list(range(20))
    assert [i.seq for i in got.instances] == list(range(20))
    (summary,) = await h.summarise(got.series.key, [(T0, T0 + MINUTE)])
    assert summary is not None and summary.count == 20 and summary.last_v == values(got)[-1]


async def test_two_stores_making_the_same_series_at_once_record_everything(
    store: Store, store_url: str
) -> None:
    """Two stores on one database (two server processes) record the first instances of the
    same new attributes at the same moment, through entity writes and the temporal API: each
    series is made once, every instance is kept, and ties at one time are numbered apart."""
    other = open_store(store_url)
    await other.open()
    try:

        def write(n: int) -> Any:
            return sensor_write(
                n, InstanceRow(E1, A, inst(T0, n)), InstanceRow(E1, B, inst(T0, f"s{n}"))
            )

        async def append(s: Store, n: int) -> int:
            return await hist(s).append_instances(
                "", [InstanceRow(E1, A, inst(T0, 100 + n)), InstanceRow(E1, B, inst(T0, f"t{n}"))]
            )

        stores = (store, other)
        await asyncio.gather(
            *(stores[n % 2].transact("", [E1], write(n), owner="org") for n in range(10)),
            *(append(stores[n % 2], n) for n in range(10)),
        )
        got = {g.series.attr: g for g in await hist(store).query_instances("", HistoryQuery((E1,)))}
        assert len(await hist(store).find_series("", [E1])) == 2
        assert sorted(values(got[A])) == sorted([*range(10), *range(100, 110)])
        assert sorted(values(got[B])) == sorted(
            [f"s{n}" for n in range(10)] + [f"t{n}" for n in range(10)]
        )
        assert [i.seq for i in got[A].instances] == list(range(20))
        assert [i.seq for i in got[B].instances] == list(range(20))
    finally:
        await other.close()


async def test_delete_and_patch(store: Store) -> None:
    h = hist(store)
    await h.append_instances("", rows(E1, A, (T0, 1), (T0 + 1, 2), (T0 + 2 * MINUTE, 3)))
    await h.append_instances("", rows(E1, B, (T0, "x")))
    await h.append_instances("", [InstanceRow(E1, A, inst(T0, 4, datasetId="urn:ds:b"))])
    await h.append_instances("", rows(E2, A, (T0, 5)))
    q = HistoryQuery((E1,), attrs=frozenset({A}), dataset_ids=frozenset({""}))
    (series,) = await h.query_instances("", q)
    first, second, third = series.instances
    key = series.series.key
    # an instanceId must name an instance of that entity and attribute
    assert not await h.delete_instance("", E2, A, first.instance_id)
    assert not await h.delete_instance("", E1, B, first.instance_id)
    assert not await h.delete_instance("", E1, A, "urn:ngsi-ld:attribute:instance:nonsense")
    assert await h.delete_instance("", E1, A, first.instance_id)
    assert not await h.delete_instance("", E1, A, first.instance_id)
    (summary,) = await h.summarise(key, [(T0, T0 + DAY)])
    assert summary is not None and (summary.count, summary.first_v, summary.vmin) == (2, 2.0, 2.0)
    # a patch in place keeps the instanceId; a patch to another time moves it
    same = await h.replace_instance("", E1, A, second.instance_id, inst(T0 + 1, 20))
    assert same == second.instance_id
    moved = await h.replace_instance("", E1, A, third.instance_id, inst(T0 + 3 * DAY, 30))
    assert moved is not None and moved != third.instance_id
    assert await h.replace_instance("", E1, A, third.instance_id, inst(T0, 0)) is None
    (got,) = await h.query_instances("", q)
    assert values(got) == [20, 30] and got.instances[1].instance_id == moved
    (day1, day4) = await h.summarise(key, [(T0, T0 + DAY), (T0 + 3 * DAY, T0 + 4 * DAY)])
    assert day1 is not None and (day1.count, day1.vmax) == (1, 20.0)
    assert day4 is not None and (day4.count, day4.vmax) == (1, 30.0)
    await check_rollups(h, key)
    # one attribute's history of one datasetId, then the entity's
    assert await h.delete_history("", E1, A, "urn:ds:b") == 1
    assert len(await h.find_series("", [E1])) == 2
    assert await h.delete_history("", E1) == 3
    assert await h.find_series("", [E1]) == []
    assert await h.read_rollups(key, 0, 0, 2**40) == []
    assert len(await h.find_series("", [E2])) == 1


async def test_a_redelivered_observation_is_recorded_once(store: Store) -> None:
    """At-least-once paths (the MQTT bridge, replication, client retries) resend observations,
    out of order too: the same observation (series, observedAt, value, members) is one
    instance, and the roll-ups count it once; a different value at the same time is another."""
    h = hist(store)
    m1 = InstanceRow(E2, A, inst(T0, 1.5, unitCode="CEL"))
    m2 = InstanceRow(E2, A, inst(T0 + MINUTE, 2.5, unitCode="CEL"))
    assert await h.append_instances("", [m1, m2]) == 2
    # redelivered in another order, with other system times, and twice in one batch
    again = [
        InstanceRow(E2, A, {**m2.instance, "modifiedAt": format_micros(T0 + HOUR)}),
        InstanceRow(E2, A, {**m1.instance, "createdAt": format_micros(T0 + HOUR)}),
        m1,
    ]
    assert await h.append_instances("", again) == 0
    corrected = InstanceRow(E2, A, inst(T0, 1.75, unitCode="CEL"))
    other_unit = InstanceRow(E2, A, inst(T0 + MINUTE, 2.5, unitCode="FAH"))
    untimed = InstanceRow(E2, B, {"type": "Property", "value": "on"})
    assert await h.append_instances("", [corrected, other_unit, untimed, untimed]) == 4
    (got,) = await h.query_instances("", HistoryQuery((E2,), attrs=frozenset({A})))
    assert sorted(values(got)) == [1.5, 1.75, 2.5, 2.5]
    (series,) = await h.find_series("", [E2], [A])
    (summary,) = await h.summarise(series.key, [(T0, T0 + HOUR)])
    assert summary is not None and summary.count == 4 and summary.total == 1.5 + 1.75 + 2.5 + 2.5


@pytest.mark.parametrize("count", [1, 8, 9, 40])
async def test_redelivered_observations_are_found_however_many(store: Store, count: int) -> None:
    """The probe for recorded observations looks a few up by their keys and many through one
    array (SQLite): either way a redelivered write records nothing again."""
    h = hist(store)
    rows = [InstanceRow(E1, A, inst(T0 + i * MINUTE, float(i))) for i in range(count)]
    assert await h.append_instances("", rows) == count
    assert await h.append_instances("", rows[::-1]) == 0
    changed = [InstanceRow(E1, A, inst(T0 + i * MINUTE, i + 0.5)) for i in range(count)]
    assert await h.append_instances("", changed) == count
    (got,) = await h.query_instances("", HistoryQuery((E1,)))
    assert len(got.instances) == 2 * count


async def test_summarise_reads_rollups_and_raw_edges(store: Store) -> None:
    h = hist(store)
    # two days of one value a minute, plus two values in a minute
    points = [(T0 + i * MINUTE, float(i % 97)) for i in range(2 * 24 * 60)]
    points += [(T0 + 90 * MINUTE + 7, -5.0), (T0 + 90 * MINUTE + 8, 500.0)]
    await h.bulk_load("", [BulkRow(E1, A, t, v) for t, v in points])
    (series,) = await h.find_series("", [E1])
    ordered = sorted(points, key=lambda p: p[0])
    windows = [
        (T0, T0 + 2 * DAY),
        (T0 + 13, T0 + DAY + 5 * MINUTE + 17),
        (T0 + 90 * MINUTE + 7, T0 + 90 * MINUTE + 8),
        (T0 - DAY, T0),
        # overlapping windows, whole hours and whole days
        (T0 + 90 * MINUTE + 5, T0 + 90 * MINUTE + 9),
        (T0 + HOUR, T0 + 2 * HOUR),
        (T0 + HOUR, T0 + DAY + 2 * HOUR),
        (T0 + DAY, T0 + 2 * DAY),
    ]
    got = await h.summarise(series.key, windows)
    for (lo, hi), summary in zip(windows, got, strict=True):
        assert_same(summary, summarise_points(p for p in ordered if lo <= p[0] < hi))
    assert len(await h.read_rollups(series.key, 2, 0, 2**40)) == 2
    assert await h.read_points(series.key, T0 + 90 * MINUTE, T0 + 91 * MINUTE) == [
        (T0 + 90 * MINUTE, 90.0),
        (T0 + 90 * MINUTE + 7, -5.0),
        (T0 + 90 * MINUTE + 8, 500.0),
    ]


async def test_bulk_load_is_all_or_nothing(store: Store) -> None:
    h = hist(store)
    good = [BulkRow(E1, A, T0 + i * MINUTE, i, "CEL") for i in range(10)]
    for bad in (BulkRow(E1, A, "not a time", 1), BulkRow(E2, A, T0, math.nan)):
        with pytest.raises(BadRequestData):
            await h.bulk_load("", [*good, bad])
        assert await h.find_series("") == []
    assert await h.bulk_load("", good) == 10
    # overlapping times: kept beside the stored ones, after them
    assert await h.bulk_load("", [BulkRow(E1, A, "2026-03-01T00:00:00Z", 100.5, "CEL")]) == 1
    (got,) = await h.query_instances("", HistoryQuery((E1,), end=T0 + 1))
    assert values(got) == [0, 100.5] and [i.seq for i in got.instances] == [0, 1]
    assert got.instances[1].doc["unitCode"] == "CEL"
    await check_rollups(h, got.series.key)


@pytest.mark.parametrize("units", [["CEL", None], ["CEL", None, "FAH"]])
async def test_a_bulk_load_mixing_documents_keeps_each_rows_own(
    store: Store, units: list[str | None]
) -> None:
    """Whole and fractional readings and units interleaved in one batch (each combination
    stores its own document: four of them take the bulk paths for a few documents, six the
    general one): every row reads back with its value and unit, in time order."""
    h = hist(store)
    rows = [
        BulkRow(E1, A, T0 + i * MINUTE, float(i) if i % 7 else i + 0.25, units[i % len(units)])
        for i in range(500)
    ]
    assert await h.bulk_load("", rows) == 500
    (got,) = await h.query_instances("", HistoryQuery((E1,)))
    assert values(got) == [row.value for row in rows]
    assert [i.doc.get("unitCode") for i in got.instances] == [row.unit for row in rows]
    await check_rollups(h, got.series.key)


@pytest.mark.postgres
@pytest.mark.parametrize("backend", ["postgresql"])
async def test_partitions_are_made_and_dropped(store: Store) -> None:
    h = hist(store)
    jan, feb, apr = (micros(f"2026-{m}-15T00:00:00Z") for m in ("01", "02", "04"))
    await h.append_instances("", rows(E1, A, (jan, 1), (feb, 2)))
    await h.bulk_load("", [BulkRow(E1, A, apr, 4)])
    names = await store.partitions()  # type: ignore[attr-defined]
    assert names == [f"instance_y2026m{m}" for m in ("01", "02", "03", "04", "05")]
    (series,) = await h.find_series("", [E1])
    # March 1st: January and February are entirely older and go whole; roll-ups stay
    assert await h.purge_history(micros("2026-03-01T12:00:00Z")) == 2
    assert await store.partitions() == [  # type: ignore[attr-defined]
        f"instance_y2026m{m}" for m in ("03", "04", "05")
    ]
    (got,) = await h.query_instances("", HistoryQuery((E1,)))
    assert values(got) == [4]
    assert len(await h.read_rollups(series.key, 2, 0, 2**40)) == 3
    # rows arriving for a dropped month make its partition again
    await h.append_instances("", rows(E1, A, (jan, 1)))
    assert "instance_y2026m01" in await store.partitions()  # type: ignore[attr-defined]


async def test_purge_in_batches_keeps_or_drops_rollups(store: Store) -> None:
    h = hist(store)
    await h.bulk_load("", [BulkRow(E1, A, T0 + i * 6 * 3600 * 10**6, i) for i in range(12)])
    await h.bulk_load("", [BulkRow(E2, A, T0 + i * DAY, i) for i in range(3)])
    s1, s2 = await h.find_series("")
    # the cutoff is taken back to its day: the instances of the first day of E1 only
    gone = await h.purge_history(T0 + DAY + 5, series_keys=[s1.key], batch=3)
    assert gone == 4
    assert (await h.read_points(s1.key, 0, 2**62))[0][0] == T0 + DAY
    assert len(await h.read_points(s2.key, 0, 2**62)) == 3
    assert len(await h.read_rollups(s1.key, 2, 0, 2**40)) == 3  # kept longer than raw data
    assert await h.purge_history(T0 + 2 * DAY, keep_rollups=False, batch=2) == 6
    assert [r.bucket for r in await h.read_rollups(s1.key, 2, 0, 2**40)] == [(T0 + 2 * DAY) // DAY]
    await check_rollups(h, s1.key)
    await check_rollups(h, s2.key)


# --- roll-ups stay equal to a recomputation from raw rows ------------------------------------


def assert_same(got: Summary | None, want: Summary | None) -> None:
    if want is None or got is None:
        assert got == want
        return
    assert (got.count, got.vmin, got.vmax, got.first_t, got.first_v, got.last_t, got.last_v) == (
        want.count,
        want.vmin,
        want.vmax,
        want.first_t,
        want.first_v,
        want.last_t,
        want.last_v,
    )
    assert math.isclose(got.total, want.total, rel_tol=1e-9, abs_tol=1e-6)
    assert math.isclose(got.sumsq, want.sumsq, rel_tol=1e-9, abs_tol=1e-6)


async def check_rollups(h: HistoryStore, series_key: int) -> None:
    """Every stored roll-up equals the summary of its bucket's raw points, and no bucket with
    points lacks one."""
    points = await h.read_points(series_key, -(2**62), 2**62)
    for level, width in LEVELS:
        want: dict[int, list[tuple[int, float]]] = {}
        for t, v in points:
            want.setdefault(t // width, []).append((t, v))
        got = await h.read_rollups(series_key, level, -(2**40), 2**40)
        assert [r.bucket for r in got] == sorted(want)
        for r in got:
            assert_same(r.summary, summarise_points(want[r.bucket]))


# offsets (µs from T0) that cross minute, hour and day boundaries and collide often
_offsets = st.one_of(
    st.sampled_from([0, 1, MINUTE - 1, MINUTE, 3600 * 10**6, DAY - 1, DAY, DAY + MINUTE]),
    st.integers(0, 2 * DAY),
)
_values = st.one_of(st.integers(-100, 100), st.floats(-1e3, 1e3, allow_nan=False), st.just("text"))
_steps = st.lists(
    st.one_of(
        st.tuples(
            st.just("append"), st.lists(st.tuples(_offsets, _values), min_size=1, max_size=6)
        ),
        st.tuples(st.just("bulk"), st.lists(st.tuples(_offsets, _values), min_size=1, max_size=6)),
        st.tuples(st.just("delete"), st.integers(0, 1000)),
        st.tuples(st.just("patch"), st.integers(0, 1000), _offsets, _values),
    ),
    min_size=1,
    max_size=8,
)


def test_rollups_equal_a_recomputation_from_raw(store_url: str) -> None:
    async def migrate() -> None:
        s = open_store(store_url)
        await s.open()
        await s.migrate()
        await s.close()

    asyncio.run(migrate())
    entities = (f"urn:ngsi-ld:Sensor:p{n}" for n in itertools.count())

    @settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(steps=_steps)
    # a bulk load into a time whose lowest sequence number was freed by a delete
    @example(steps=[("append", [(0, "text"), (0, 1)]), ("delete", 0), ("bulk", [(0, 0)])])
    def check(steps: list[tuple[Any, ...]]) -> None:
        entity = next(entities)

        async def run() -> None:
            s = open_store(store_url)
            await s.open()
            h = hist(s)
            try:
                for step in steps:
                    if step[0] == "append":
                        await h.append_instances(
                            "", rows(entity, A, *((T0 + o, v) for o, v in step[1]))
                        )
                    elif step[0] == "bulk":
                        await h.bulk_load("", [BulkRow(entity, A, T0 + o, v) for o, v in step[1]])
                    else:
                        found = await h.query_instances("", HistoryQuery((entity,)))
                        if not found or not found[0].instances:
                            continue
                        target = found[0].instances[step[1] % len(found[0].instances)]
                        if step[0] == "delete":
                            assert await h.delete_instance("", entity, A, target.instance_id)
                        else:
                            new = inst(T0 + step[2], step[3])
                            assert await h.replace_instance("", entity, A, target.instance_id, new)
                for series in await h.find_series("", [entity]):
                    await check_rollups(h, series.key)
                    points = await h.read_points(series.key, -(2**62), 2**62)
                    windows = [
                        (T0, T0 + DAY),
                        (T0 + 1, T0 + DAY + HOUR + 1),
                        (T0 + HOUR, T0 + 3 * DAY),
                    ]
                    got = await h.summarise(series.key, windows)
                    for (lo, hi), summary in zip(windows, got, strict=True):
                        assert_same(summary, summarise_points(p for p in points if lo <= p[0] < hi))
            finally:
                await s.close()

        asyncio.run(run())

    check()


async def test_prepared_bulk_rows_load_with_the_entity_write(store: Store) -> None:
    h = hist(store)
    load = await h.prepare_load(
        [BulkRow(E1, A, T0 + i * MINUTE, float(i) + 0.5, "CEL") for i in range(5)]
    )
    doc = {
        "id": E1,
        "type": ["https://example.org/Sensor"],
        "attrs": {A: [{"type": "Property", "value": 4.5}]},
    }
    # a write op of the entity transaction (RecordInstances(()): the write records nothing else)
    await store.transact(
        "", [E1], lambda current: ([Put(doc), RecordInstances(()), load], None), owner="org"
    )
    assert await store.get_entity("", E1) is not None
    (got,) = await h.query_instances("", HistoryQuery((E1,)))
    assert values(got) == [0.5, 1.5, 2.5, 3.5, 4.5]
    assert got.instances[0].doc["unitCode"] == "CEL"
    await check_rollups(h, got.series.key)
    # the same prepared rows on their own: a transaction of their own, after the stored ones
    assert await h.bulk_load("", load) == 5
    (got,) = await h.query_instances("", HistoryQuery((E1,)))
    assert [i.seq for i in got.instances] == [0, 1] * 5
    await check_rollups(h, got.series.key)
