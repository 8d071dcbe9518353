"""The event-stream storage contract (`StreamStore`): every test runs on SQLite and PostgreSQL.

Members are history rows of the data set's entities (owner + one of its types), in the order
(p, series, t, seq) where p is the recording time (modifiedAt). The expected answers are
computed here from what the test wrote, never read back from the store under test.
"""

from __future__ import annotations

import random
from typing import Any

import pytest
from storage_docs import NS, entity

from smartregion.storage import DEFAULT_TENANT, Put, Store
from smartregion.storage.history import HistoryStore, InstanceRow
from smartregion.storage.rollups import HOUR, MINUTE, format_micros, format_observed, micros
from smartregion.storage.streams import EARLY, LATE, StreamStore

pytestmark = pytest.mark.anyio

TEMP = NS + "temperature"
T0 = micros("2026-03-01T12:00:00Z")
SENSOR = [NS + "Sensor"]


def streams(store: Store) -> StreamStore:
    assert isinstance(store, StreamStore) and isinstance(store, HistoryStore)
    return store


async def _entities(store: Store) -> None:
    owned = [entity(1, "Sensor"), entity(2, "Sensor"), entity(3, "Lamp")]
    await store.transact(
        DEFAULT_TENANT,
        [d["id"] for d in owned],
        lambda _: ([Put(d) for d in owned], None),
        owner="org-a",
    )
    other = entity(4, "Sensor")
    await store.transact(
        DEFAULT_TENANT, [other["id"]], lambda _: ([Put(other)], None), owner="org-b"
    )


def _inst(observed: int | None, recorded: int, value: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "type": "Property",
        "value": value,
        "modifiedAt": format_micros(recorded),
        "createdAt": format_micros(recorded),
    }
    if observed is not None:
        doc["observedAt"] = format_observed(observed)
    return doc


async def _write(store: Store) -> list[tuple[int, str, int, Any]]:
    """Instances of every kind of lateness; returns (p, entity id, t, value) of data set members."""
    h = streams(store)
    assert isinstance(h, HistoryStore)
    written: list[tuple[int, str, int, Any]] = []
    rows: list[InstanceRow] = []
    rng = random.Random(7)
    cases = [
        (0, 2 * MINUTE),  # prompt: recorded two minutes after the observation
        (0, LATE + MINUTE),  # late: recorded 16 minutes after
        (0, 3 * HOUR),  # a back-fill
        (2 * MINUTE, 0),  # observed slightly ahead of the platform's clock (prompt)
        (EARLY + MINUTE, 0),  # observed far ahead (unprompt)
    ]
    for k in range(40):
        eid = f"urn:ngsi-ld:{'Sensor' if k % 4 else 'Lamp'}:{1 + k % 2 if k % 4 else 3}"
        ahead, delay = cases[k % len(cases)]
        recorded = T0 + rng.randrange(0, 4 * HOUR)
        observed = recorded - delay + ahead
        rows.append(InstanceRow(eid, TEMP, _inst(observed, recorded, k)))
        if eid.startswith("urn:ngsi-ld:Sensor"):
            written.append((recorded, eid, observed, k))
    # without observedAt: t is the modifiedAt itself
    for k in range(40, 45):
        recorded = T0 + rng.randrange(0, 4 * HOUR)
        rows.append(InstanceRow("urn:ngsi-ld:Sensor:1", TEMP, _inst(None, recorded, k)))
        written.append((recorded, "urn:ngsi-ld:Sensor:1", recorded, k))
    # another owner's sensor: never a member of org-a's data set
    rows.append(InstanceRow("urn:ngsi-ld:Sensor:4", TEMP, _inst(T0, T0 + MINUTE, 99)))
    await h.append_instances(DEFAULT_TENANT, rows)
    return written


async def test_members_in_recording_order_within_the_window(store: Store) -> None:
    await _entities(store)
    written = await _write(store)
    s = streams(store)
    lo, hi = T0 + HOUR, T0 + 3 * HOUR
    got = await s.stream_members(DEFAULT_TENANT, "org-a", SENSOR, lo, hi, limit=1000)
    expected = sorted((p, e, t, v) for p, e, t, v in written if lo <= p < hi)
    assert len({p for p, *_ in expected}) == len(expected)  # distinct times: one order
    assert [
        (m.p, m.series.entity_id, m.instance.t, m.instance.doc["value"]) for m in got
    ] == expected
    assert [m.key for m in got] == sorted(m.key for m in got)
    assert all(m.series.attr == TEMP for m in got)


async def test_pages_by_cursor_cover_the_window_once(store: Store) -> None:
    await _entities(store)
    written = await _write(store)
    s = streams(store)
    lo, hi = T0, T0 + 5 * HOUR
    seen: list[Any] = []
    after = None
    while True:
        page = await s.stream_members(DEFAULT_TENANT, "org-a", SENSOR, lo, hi, after=after, limit=7)
        assert len(page) <= 7
        seen += page
        if len(page) < 7:
            break
        after = page[-1].key
    assert sorted(m.instance.doc["value"] for m in seen) == sorted(v for *_, v in written)
    assert [m.key for m in seen] == sorted(m.key for m in seen)
    assert len({m.key for m in seen}) == len(seen)


async def test_membership_follows_owner_and_types(store: Store) -> None:
    await _entities(store)
    await _write(store)
    s = streams(store)
    lamps = await s.stream_members(DEFAULT_TENANT, "org-a", [NS + "Lamp"], T0, T0 + 5 * HOUR)
    assert lamps and {m.series.entity_id for m in lamps} == {"urn:ngsi-ld:Lamp:3"}
    other = await s.stream_members(DEFAULT_TENANT, "org-b", SENSOR, T0, T0 + 5 * HOUR)
    assert [m.instance.doc["value"] for m in other] == [99]
    assert await s.stream_members(DEFAULT_TENANT, "org-c", SENSOR, T0, T0 + 5 * HOUR) == []
    assert (
        await s.stream_members(DEFAULT_TENANT, "org-a", [NS + "Nothing"], T0, T0 + 5 * HOUR) == []
    )


async def test_stream_start_is_a_lower_bound_of_the_first_member(store: Store) -> None:
    s = streams(store)
    await _entities(store)
    assert await s.stream_start(DEFAULT_TENANT, "org-a", SENSOR) is None
    written = await _write(store)
    start = await s.stream_start(DEFAULT_TENANT, "org-a", SENSOR)
    first = min(p for p, *_ in written)
    assert start is not None and start <= first
    # and a close one: no earlier than the earliest observation less the early allowance
    assert start >= min(t for _, _, t, _ in written) - EARLY


async def test_nonempty_windows_agree_with_the_members(store: Store) -> None:
    await _entities(store)
    written = await _write(store)
    s = streams(store)
    windows = [(T0 + k * 20 * MINUTE, T0 + (k + 1) * 20 * MINUTE) for k in range(-3, 15)]
    got = await s.stream_nonempty(DEFAULT_TENANT, "org-a", SENSOR, windows)
    assert got == [any(lo <= p < hi for p, *_ in written) for lo, hi in windows]
    assert True in got and False in got
    assert await s.stream_nonempty(DEFAULT_TENANT, "org-c", SENSOR, windows) == [False] * len(
        windows
    )


async def test_latest_member_of_each_series(store: Store) -> None:
    await _entities(store)
    written = await _write(store)
    s = streams(store)
    for lo, hi in ((T0, T0 + 5 * HOUR), (T0, T0 + 2 * HOUR), (T0 + HOUR, T0 + 3 * HOUR)):
        latest: dict[str, tuple[int, int, Any]] = {}
        for p, e, t, v in written:
            if lo <= p < hi and (e not in latest or (p, t) > latest[e][:2]):
                latest[e] = (p, t, v)
        got = await s.stream_latest(DEFAULT_TENANT, "org-a", SENSOR, lo, hi)
        assert {
            m.series.entity_id: (m.p, m.instance.t, m.instance.doc["value"]) for m in got
        } == latest
        keys = [str(m.series.key) for m in got]
        assert keys == sorted(keys)
        # paging by series: after the first, the rest
        rest = await s.stream_latest(
            DEFAULT_TENANT, "org-a", SENSOR, lo, hi, after=keys[0], limit=1
        )
        assert [str(m.series.key) for m in rest] == keys[1:2]


async def test_a_scoped_data_set_has_the_members_of_entities_within_its_scope(
    store: Store,
) -> None:
    await _entities(store)
    # Sensor:1 lies within /Ghent/Centre (below it), Sensor:2 in a scope with the same text
    # prefix but outside it; Lamp:3 has no scope
    for eid, scope in (
        ("urn:ngsi-ld:Sensor:1", ["Ghent/Centre/Kouter"]),
        ("urn:ngsi-ld:Sensor:2", ["/Ghent/CentreNorth"]),
    ):

        def mutate(current: dict[str, Any], eid: str = eid, scope: list[str] = scope) -> Any:
            return [Put({**current[eid], "scope": scope})], None

        await store.transact(DEFAULT_TENANT, [eid], mutate, owner="org-a")
    written = await _write(store)
    s = streams(store)
    lo, hi = T0, T0 + 5 * HOUR
    args = (DEFAULT_TENANT, "org-a", [NS + "Sensor", NS + "Lamp"])
    got = await s.stream_members(*args, lo, hi, limit=1000, scope="/Ghent/Centre")
    inside = sorted(v for _, e, _, v in written if e == "urn:ngsi-ld:Sensor:1")
    assert sorted(m.instance.doc["value"] for m in got) == inside
    assert {m.series.entity_id for m in got} == {"urn:ngsi-ld:Sensor:1"}
    assert await s.stream_members(*args, lo, hi, scope="/Leuven") == []
    assert {m.series.entity_id for m in await s.stream_latest(*args, lo, hi, scope="/Ghent")} == {
        "urn:ngsi-ld:Sensor:1",
        "urn:ngsi-ld:Sensor:2",
    }
    start = await s.stream_start(*args, scope="/Ghent/Centre")
    assert start is not None and await s.stream_start(*args, scope="/Leuven") is None
    windows = [(lo, hi)]
    assert await s.stream_nonempty(*args, windows, scope="/Ghent/Centre") == [True]
    assert await s.stream_nonempty(*args, windows, scope="/Ghent/Centre/Other") == [False]
    member = got[0]
    key = (member.series.key, member.instance.t, member.instance.seq)
    assert await s.stream_member(*args, *key, scope="/Ghent/Centre") is not None
    assert await s.stream_member(*args, *key, scope="/Ghent/CentreNorth") is None
