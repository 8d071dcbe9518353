"""Aggregated temporal answers from roll-ups equal the raw path's, on SQLite and PostgreSQL.

The same GET runs twice over the same data: as served (roll-ups plus raw edges when the series
are plain, broker/aggregates.py) and with the roll-up path switched off (every instance read
and aggregated by `core.temporal_rendering.aggregate_entity`). Counts, min, max and the periods
are equal; sums and what derives from them agree within the bounds of floating-point summation
(core/aggregation.py). Random data and queries, from fixed seeds.
"""

from __future__ import annotations

import math
import random
import secrets
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from smartregion.app import create_app
from smartregion.broker import temporal as temporal_service
from smartregion.core.aggregation import BUCKET_METHODS
from smartregion.settings import Settings

pytestmark = pytest.mark.anyio

EPS = sys.float_info.epsilon
START = datetime(2025, 3, 30, 21, 0, tzinfo=UTC)
DURATIONS = ("PT1H", "P1D", "PT2H", "PT30M", "P1M", "PT0S", "P1W", "PT90S", "PT6H")
METHODS = sorted(BUCKET_METHODS)


@pytest.fixture(params=["sqlite", "postgresql"])
async def client(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[httpx.AsyncClient]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path}/rollups.db"
    else:
        url = request.getfixturevalue("postgres_url")
    settings = Settings(database_url=url, anonymous_writes=True, temporal_max_instances=100_000)
    app = create_app(settings)
    headers = {"NGSILD-Tenant": f"t{secrets.token_hex(4)}"}  # the PostgreSQL database is shared
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://testserver/ngsi-ld/v1", headers=headers
        ) as c:
            yield c


@pytest.fixture
def rollup_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Entities whose aggregates came from roll-ups (the fast path is really taken)."""
    calls: list[str] = []
    original = temporal_service.aggregate_from_rollups

    async def counting(*args: Any, **kwargs: Any) -> Any:
        calls.append("called")
        return await original(*args, **kwargs)

    monkeypatch.setattr(temporal_service, "aggregate_from_rollups", counting)
    return calls


def _iso(when: datetime) -> str:
    return when.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _instances(rng: random.Random, count: int, dataset: str | None = None) -> list[dict[str, Any]]:
    out = []
    for _ in range(count):
        at = START + timedelta(seconds=rng.randrange(0, 3 * 86_400) // 20 * 20)
        value: float = (
            rng.randrange(-40, 140) if rng.random() < 0.4 else round(rng.uniform(-40, 140), 3)
        )
        inst: dict[str, Any] = {"type": "Property", "value": value, "observedAt": _iso(at)}
        if dataset is not None:
            inst["datasetId"] = dataset
        out.append(inst)
    return out


async def _load(client: httpx.AsyncClient, entity: str, rng: random.Random) -> None:
    temperature = _instances(rng, 300)
    humidity = _instances(rng, 120) + _instances(rng, 80, "urn:ngsi-ld:Dataset:b")
    # two writes, the second with earlier (late) values too: roll-ups fold out of order
    half = len(temperature) // 2
    body = {"id": entity, "type": "Sensor", "temperature": temperature[:half], "humidity": humidity}
    r = await client.post("/temporal/entities", json=body)
    assert r.status_code == 201, r.text
    r = await client.post(
        f"/temporal/entities/{entity}/attrs", json={"temperature": temperature[half:]}
    )
    assert r.status_code == 204, r.text


def _query(rng: random.Random) -> dict[str, str]:
    params = {
        "options": "aggregatedValues",
        "aggrMethods": ",".join(rng.sample(METHODS, rng.randint(1, len(METHODS)))),
        "aggrPeriodDuration": rng.choice(DURATIONS),
    }
    at = START + timedelta(minutes=rng.randrange(0, 3 * 1440))
    if rng.random() < 0.5:
        at = at.replace(minute=0)
    end = at + timedelta(minutes=rng.randrange(1, 3 * 1440))
    timerel = rng.choice(("between", "between", "after", "before", None))
    if timerel is not None:
        params.update(timerel=timerel, timeAt=_iso(at))
    if timerel == "between":
        params["endTimeAt"] = _iso(end)
    if rng.random() < 0.3:
        params["attrs"] = rng.choice(("temperature", "humidity"))
    return params


def _bound(values: list[float]) -> tuple[float, float]:
    n = max(1, len(values))
    return n * EPS * math.fsum(abs(v) for v in values), n * EPS * math.fsum(v * v for v in values)


def _assert_same(got: Any, want: Any, values: list[float]) -> None:
    """Two aggregated answers are the same (sums within the summation bounds)."""
    assert type(got) is type(want)
    if isinstance(want, list):
        assert len(got) == len(want)
        for g, w in zip(got, want, strict=True):
            _assert_same(g, w, values)
        return
    assert got.keys() == want.keys()
    abs_sum, squares = _bound(values)
    for member, w in want.items():
        g = got[member]
        if isinstance(w, dict | list) and member not in BUCKET_METHODS:
            _assert_same(g, w, values)  # an attribute (or its datasets) of the entity
            continue
        if member not in BUCKET_METHODS:
            assert g == w, member
            continue
        assert [row[1:] for row in g] == [row[1:] for row in w], f"{member} periods"
        for (gv, *_), (wv, *_) in zip(g, w, strict=True):
            if member in ("totalCount", "min", "max"):
                assert gv == wv and type(gv) is type(wv), member
            elif member == "sum":
                assert abs(gv - wv) <= abs_sum
            elif member == "sumsq":
                assert abs(gv - wv) <= squares
            elif member == "avg":
                assert abs(gv - wv) <= abs_sum + EPS * abs(wv)
            else:  # stddev, as variances
                # var = Σx²/n − (Σx/n)²: the error of Σx² plus twice the mean's times Σx's
                peak = max(abs(v) for v in values)
                bound = 2 * (squares + 2 * peak * abs_sum) + 8 * EPS * wv * wv
                assert abs(gv * gv - wv * wv) <= bound


async def _both(
    client: httpx.AsyncClient, entity: str, params: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> tuple[httpx.Response, httpx.Response]:
    fast = await client.get(f"/temporal/entities/{entity}", params=params)
    with monkeypatch.context() as m:
        m.setattr(temporal_service, "from_rollups", lambda _query: False)
        raw = await client.get(f"/temporal/entities/{entity}", params=params)
    return fast, raw


async def _values(client: httpx.AsyncClient, entity: str) -> list[float]:
    r = await client.get(f"/temporal/entities/{entity}", params={"options": "temporalValues"})
    body = r.json()
    out = []
    for attr in ("temperature", "humidity"):
        series = body.get(attr, [])
        for one in series if isinstance(series, list) else [series]:
            out.extend(float(v) for v, _ in one.get("values", []) if isinstance(v, int | float))
    return out


@pytest.mark.parametrize("seed", range(4))
async def test_rollup_answers_equal_the_raw_path(
    client: httpx.AsyncClient, rollup_calls: list[str], monkeypatch: pytest.MonkeyPatch, seed: int
) -> None:
    rng = random.Random(seed)
    entity = f"urn:ngsi-ld:Sensor:R{seed}"
    await _load(client, entity, rng)
    values = await _values(client, entity)
    for _ in range(12):
        params = _query(rng)
        fast, raw = await _both(client, entity, params, monkeypatch)
        assert fast.status_code == raw.status_code, (params, fast.text, raw.text)
        if raw.status_code == 200:
            _assert_same(fast.json(), raw.json(), values)
    assert rollup_calls, "the roll-up path was never taken"


async def test_the_query_list_answers_from_rollups_too(
    client: httpx.AsyncClient, rollup_calls: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = random.Random(99)
    for i in range(3):
        await _load(client, f"urn:ngsi-ld:Sensor:Q{i}", rng)
    params = {
        "type": "Sensor", "options": "aggregatedValues", "aggrMethods": "avg,min,max,totalCount",
        "aggrPeriodDuration": "PT6H", "timerel": "between", "timeAt": "2025-03-31T00:00:00Z",
        "endTimeAt": "2025-04-02T00:00:00Z",
    }  # fmt: skip
    fast = await client.get("/temporal/entities", params=params)
    with monkeypatch.context() as m:
        m.setattr(temporal_service, "from_rollups", lambda _query: False)
        raw = await client.get("/temporal/entities", params=params)
    assert fast.status_code == raw.status_code == 200
    values: list[float] = []
    for i in range(3):
        values += await _values(client, f"urn:ngsi-ld:Sensor:Q{i}")
    _assert_same(fast.json(), raw.json(), values)
    assert len(rollup_calls) == 3


async def _four_hours(client: httpx.AsyncClient, entity: str, **members: Any) -> None:
    """A Sensor whose temperature was observed at 00:10, 01:10, 02:10 and 03:10 (10 to 16)."""
    plain = [
        {"type": "Property", "value": v, "observedAt": f"2025-04-01T0{h}:10:00Z"}
        for h, v in enumerate((10, 12, 14, 16))
    ]
    body = {"id": entity, "type": "Sensor", "temperature": plain, **members}
    assert (await client.post("/temporal/entities", json=body)).status_code == 201


def _two_hourly(methods: str) -> dict[str, str]:
    """The aggregation of `methods` over 1 April 2025 in periods of two hours."""
    return {
        "options": "aggregatedValues", "aggrMethods": methods, "aggrPeriodDuration": "PT2H",
        "timerel": "between", "timeAt": "2025-04-01T00:00:00Z",
        "endTimeAt": "2025-04-02T00:00:00Z",
    }  # fmt: skip


async def test_a_scoped_entity_is_aggregated_from_rollups_without_its_scope(
    client: httpx.AsyncClient, rollup_calls: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    entity = "urn:ngsi-ld:Sensor:Scoped"
    await _four_hours(client, entity, scope="/Gent")
    r = await client.patch(f"/entities/{entity}", json={"scope": ["/Gent", "/Leie"]})
    assert r.status_code == 204, r.text
    # the scope's history (not numbers, no observedAt) leaves the series plain: roll-ups answer
    params = _two_hourly("totalCount,max")
    fast, raw = await _both(client, entity, params, monkeypatch)
    assert fast.status_code == raw.status_code == 200, fast.text
    assert fast.json() == raw.json()
    assert "scope" not in fast.json()
    assert fast.json()["temperature"]["max"] == [
        [12, "2025-04-01T00:00:00Z", "2025-04-01T02:00:00Z"],
        [16, "2025-04-01T02:00:00Z", "2025-04-01T04:00:00Z"],
    ]
    assert len(rollup_calls) == 1
    # by modification time the raw path sees the scope's instances: still not aggregated
    by_modification = {**params, "timeproperty": "modifiedAt", "timerel": "after"}
    del by_modification["endTimeAt"]
    fast, raw = await _both(client, entity, by_modification, monkeypatch)
    assert fast.status_code == 200, fast.text
    assert fast.json() == raw.json()
    assert "scope" not in fast.json()


async def test_series_that_are_not_plain_take_the_raw_path(
    client: httpx.AsyncClient, rollup_calls: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    entity = "urn:ngsi-ld:Sensor:Mixed"
    await _four_hours(client, entity)
    params = _two_hourly("totalCount,avg,max")
    fast, raw = await _both(client, entity, params, monkeypatch)
    assert fast.json() == raw.json()
    assert fast.json()["temperature"]["totalCount"] == [
        [2, "2025-04-01T00:00:00Z", "2025-04-01T02:00:00Z"],
        [2, "2025-04-01T02:00:00Z", "2025-04-01T04:00:00Z"],
    ]
    assert len(rollup_calls) == 1
    # a value without observedAt is in the roll-ups (at its modifiedAt, now) but not in an
    # observedAt query: a window holding it leaves the roll-up path, one that does not keeps it
    r = await client.post(
        f"/temporal/entities/{entity}/attrs",
        json={"temperature": [{"type": "Property", "value": 99}]},
    )
    assert r.status_code == 204, r.text
    fast, raw = await _both(client, entity, params, monkeypatch)
    assert fast.json() == raw.json()
    assert len(rollup_calls) == 2
    after = {**params, "timerel": "after"}
    del after["endTimeAt"]
    fast, raw = await _both(client, entity, after, monkeypatch)
    assert fast.json() == raw.json()
    assert len(rollup_calls) == 2
    # a string in the window is not in the roll-ups at all
    string = {"type": "Property", "value": "high", "observedAt": "2025-04-01T01:00:00Z"}
    r = await client.post(f"/temporal/entities/{entity}/attrs", json={"temperature": [string]})
    assert r.status_code == 204, r.text
    fast, raw = await _both(client, entity, params, monkeypatch)
    assert fast.status_code == raw.status_code
    assert fast.json() == raw.json()
    assert len(rollup_calls) == 2
