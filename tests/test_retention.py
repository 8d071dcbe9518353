"""History retention: the default, per data set limits, roll-ups kept longer, the served job."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import anyio
import httpx
import pytest

from smartregion.app import Runtime, create_app
from smartregion.governance import Governance, Principal, WriteAccess
from smartregion.ingestion.timeseries import SourceRow, TimeseriesImporter
from smartregion.settings import Settings
from smartregion.storage.history import BulkRow, HistoryQuery, HistoryStore, now_micros
from smartregion.storage.locks import exclusive
from smartregion.storage.rollups import DAY, MINUTE, format_observed

pytestmark = pytest.mark.anyio
CORE = "https://uri.etsi.org/ngsi-ld/default-context/"
TEMP = CORE + "temperature"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'retention.db'}"
    return str(request.getfixturevalue("postgres_url"))


async def load(
    rt: Runtime, tenant: str, org: str, kind: str, eid: str, days_ago: list[int]
) -> None:
    """Import one value per age (at 12:00 UTC that many days ago) as `org`."""
    now = now_micros() // DAY * DAY + 12 * 60 * MINUTE
    rows = [
        SourceRow(n, CORE + kind, BulkRow(eid, TEMP, now - d * DAY, float(d), "CEL"))
        for n, d in enumerate(sorted(days_ago, reverse=True), 1)
    ]
    await TimeseriesImporter(rt.broker, WriteAccess(org), tenant=tenant).run(iter(rows))


async def ages(rt: Runtime, tenant: str, eid: str) -> list[float]:
    """The values (= ages in days) of an entity's instances left."""
    assert isinstance(rt.store, HistoryStore)
    (series,) = await rt.store.find_series(tenant, [eid])
    (h,) = await rt.store.query_instances(tenant, HistoryQuery(entity_ids=(eid,)))
    assert h.series.key == series.key
    return [i.doc["value"] for i in h.instances]


async def rollup_count(rt: Runtime, tenant: str, eid: str, days_ago: int) -> int:
    """How many values the roll-ups still count on that day."""
    assert isinstance(rt.store, HistoryStore)
    (series,) = await rt.store.find_series(tenant, [eid])
    day = (now_micros() // DAY - days_ago) * DAY
    (summary,) = await rt.store.summarise(series.key, [(day, day + DAY)])
    return summary.count if summary else 0


async def test_default_and_data_set_limits_with_rollups_kept(db: str) -> None:
    tenant, org = f"ret{uuid.uuid4().hex[:8]}", f"org{uuid.uuid4().hex[:8]}"
    settings = Settings(database_url=db, history_retention_days=60)
    rt = Runtime.build(settings)
    await rt.start()
    try:
        gov = Governance(rt.store)  # type: ignore[arg-type]
        await gov.create_organisation(Principal.cli(), org, "Test", "company")
        await gov.create_dataset(
            Principal.cli(),
            f"{org}-air",
            org,
            "Lucht",
            ["AirSensor"],
            retention_days=30,
            rollup_retention_days=400,
        )
        await gov.create_dataset(
            Principal.cli(), f"{org}-keep", org, "Alles", ["Archive"], retention_days=0
        )
        air, other, archive = (f"urn:ngsi-ld:{k}:{tenant}" for k in ("Air", "Other", "Arch"))
        await load(rt, tenant, org, "AirSensor", air, [500, 100, 45, 10])
        await load(rt, tenant, org, "Counter", other, [100, 45, 10])
        await load(rt, tenant, org, "Archive", archive, [900, 10])
        # an AirSensor of another owner is not in the data set: the default applies
        stranger = f"urn:ngsi-ld:Air2:{tenant}"
        await load(rt, tenant, "someone-else", "AirSensor", stranger, [45, 10])

        service = rt.retention(settings)
        planned = await service.purge(tenants=[tenant], dry_run=True)
        assert planned.instances == 0 and await ages(rt, tenant, air) == [500, 100, 45, 10]
        report = await service.purge(tenants=[tenant])
        assert report.instances == 3 + 1
        assert await ages(rt, tenant, air) == [10]  # 30 days
        assert await ages(rt, tenant, other) == [45, 10]  # the default: 60 days
        assert await ages(rt, tenant, stranger) == [45, 10]
        assert await ages(rt, tenant, archive) == [900, 10]  # forever
        # the data set keeps roll-ups 400 days, the default none beyond the raw data
        assert await rollup_count(rt, tenant, air, 100) == 1
        assert await rollup_count(rt, tenant, air, 45) == 1
        assert await rollup_count(rt, tenant, air, 500) == 0
        assert await rollup_count(rt, tenant, other, 100) == 0
        # a second run finds nothing more
        assert (await service.purge(tenants=[tenant])).instances == 0
    finally:
        await rt.stop()


async def test_data_set_retention_is_checked(tmp_path: Path) -> None:
    rt = Runtime.build(Settings(database_url=f"sqlite:///{tmp_path / 'd.db'}"))
    await rt.start()
    try:
        gov = Governance(rt.store)  # type: ignore[arg-type]
        await gov.create_organisation(Principal.cli(), "acme", "Acme", "company")
        from smartregion.errors import BadRequestData

        with pytest.raises(BadRequestData, match="at least retention_days"):
            await gov.create_dataset(
                Principal.cli(),
                "d1",
                "acme",
                "T",
                ["T"],
                retention_days=30,
                rollup_retention_days=10,
            )
        with pytest.raises(BadRequestData, match="0 or more"):
            await gov.create_dataset(Principal.cli(), "d2", "acme", "T", ["T"], retention_days=-1)
    finally:
        await rt.stop()


async def test_one_purging_process_at_a_time(db: str) -> None:
    rt = Runtime.build(Settings(database_url=db))
    other = Runtime.build(Settings(database_url=db))
    await rt.start()
    await other.start()
    try:
        async with (
            exclusive(rt.store, "test-job") as first,
            exclusive(other.store, "test-job") as second,
        ):
            assert first and not second
        async with exclusive(other.store, "test-job") as again:
            assert again
    finally:
        await other.stop()
        await rt.stop()


async def test_served_job_purges_while_writes_go_on(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'served.db'}"
    rt = Runtime.build(Settings(database_url=db))
    await rt.start()
    eid = "urn:ngsi-ld:Sensor:served"
    await load(rt, "", "smartregion", "Sensor", eid, [20, 19, 18, 3])
    await rt.stop()

    settings = Settings(
        database_url=db,
        anonymous_writes=True,
        history_retention_days=7,
        history_purge_interval=0.05,
        history_purge_batch=1,
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            job = app.state.purge_job
            writes = 0
            with anyio.fail_after(20):
                while job.runs < 3 or writes < 5:
                    # writes are served while the job runs (one instance per purge transaction)
                    writes += 1
                    r = await client.patch(
                        f"/ngsi-ld/v1/entities/{eid}/attrs",
                        json={
                            "temperature": {
                                "type": "Property",
                                "value": 100 + writes,
                                "observedAt": format_observed(now_micros()),
                            }
                        },
                    )
                    assert r.status_code == 204, r.text
                    await asyncio.sleep(0.01)
            r = await client.get(
                f"/ngsi-ld/v1/temporal/entities/{eid}", params={"options": "temporalValues"}
            )
            assert r.status_code == 200
            values = [v for v, _ in r.json()["temperature"]["values"]]
            assert values[0] == 3.0 and 20.0 not in values and 18.0 not in values
            assert values[1:] == [100 + k for k in range(1, writes + 1)]
