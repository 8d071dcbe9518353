"""`smartregion ldes replicate` against the static fixture stream, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
from streamserver import Route, StreamServer, serving
from typer.testing import CliRunner

from smartregion.app import Runtime
from smartregion.cli.main import app
from smartregion.governance import Governance, GovernanceStore, Principal
from smartregion.ldes.fetching import PageFetcher
from smartregion.ldes.replication import ReplicationBusy, ReplicationReport, Replicator
from smartregion.settings import Settings
from smartregion.storage.history import HistoryQuery, HistoryStore
from smartregion.storage.ingestion import IngestionStore
from smartregion.storage.replication import ReplicationStore

T = TypeVar("T")
runner = CliRunner()
CORE = "https://uri.etsi.org/ngsi-ld/default-context/"
TEMP = CORE + "airTemperature"
NO2 = CORE + "no2"
SPOTS = "https://example.org/parking#availableSpots"
SPOT_NUMBER = CORE + "availableSpotNumber"
LOCATION = "https://uri.etsi.org/ngsi-ld/location"
GENT1, GENT2 = "urn:ngsi-ld:Site:gent-1", "urn:ngsi-ld:Site:gent-2"
P1, P2 = "urn:ngsi-ld:Parking:p1", "urn:ngsi-ld:Parking:p2"
IMMUTABLE = ("/pages/1", "/pages/old", "/pages/2-moved", "/pages/3")


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'ldes.db'}"
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture
def server() -> Iterator[StreamServer]:
    yield from serving()


@pytest.fixture
def tenant() -> str:
    return f"ldes{uuid.uuid4().hex[:10]}"


def with_runtime(db: str, work: Callable[[Runtime], Awaitable[T]]) -> T:
    async def go() -> T:
        runtime = Runtime.build(Settings(database_url=db))
        await runtime.start()
        try:
            return await work(runtime)
        finally:
            await runtime.stop()

    return asyncio.run(go())


def make_dataset(db: str, types: list[str]) -> tuple[str, str]:
    """A fresh organisation and a data set of it selecting `types`: (org, data set id)."""
    org = f"org{uuid.uuid4().hex[:8]}"
    dataset = f"ds{uuid.uuid4().hex[:8]}"

    async def go(rt: Runtime) -> None:
        assert isinstance(rt.store, GovernanceStore)
        gov = Governance(rt.store)
        await gov.create_organisation(Principal.cli(), org, "City", "municipality")
        await gov.create_dataset(Principal.cli(), dataset, org, "Air and parking", types)

    with_runtime(db, go)
    return org, dataset


@pytest.fixture
def dataset(db: str) -> tuple[str, str]:
    return make_dataset(db, ["Site", "AirQualitySite", "Parking"])


async def replicator(
    rt: Runtime, url: str, dataset_id: str, tenant: str, **options: Any
) -> Replicator:
    assert isinstance(rt.store, GovernanceStore)
    gov = Governance(rt.store)
    ds = await gov.get_dataset(dataset_id)
    writer = await gov.write_access(Principal(org_id=ds.owner_org, role="editor"))
    vocab = await rt.broker.contexts.term_map(None, tenant=tenant)

    async def no_wait(seconds: float) -> None:
        return None

    fetcher = PageFetcher(backoff=0.01, sleep=no_wait)
    options.setdefault("default_type", CORE + "Site")
    return Replicator(rt.broker, fetcher, ds, writer, vocab, source=url, tenant=tenant, **options)


def replicate(db: str, url: str, dataset_id: str, tenant: str, **options: Any) -> ReplicationReport:
    async def go(rt: Runtime) -> ReplicationReport:
        r = await replicator(rt, url, dataset_id, tenant, **options)
        try:
            return await r.run()
        finally:
            await r.fetcher.aclose()

    return with_runtime(db, go)


def history(db: str, tenant: str, entity_id: str) -> dict[str, list[Any]]:
    """attribute -> values of its instances in time order."""

    async def read(rt: Runtime) -> dict[str, list[Any]]:
        assert isinstance(rt.store, HistoryStore)
        out: dict[str, list[tuple[str, Any]]] = {}
        for h in await rt.store.query_instances(tenant, HistoryQuery(entity_ids=(entity_id,))):
            for i in h.instances:
                value = i.doc.get("value", i.doc.get("object", i.doc.get("languageMap")))
                out.setdefault(h.series.attr, []).append((i.doc.get("observedAt", ""), value))
        return {a: [v for _, v in sorted(rows, key=lambda r: r[0])] for a, rows in out.items()}

    return with_runtime(db, read)


def entity(db: str, tenant: str, entity_id: str) -> dict[str, Any] | None:
    return with_runtime(db, lambda rt: rt.store.get_entity(tenant, entity_id))


def current(doc: dict[str, Any] | None, attr: str) -> Any:
    assert doc is not None
    (instance,) = doc["attrs"][attr]
    return instance


def assert_fixture_stream_stored(db: str, tenant: str) -> None:
    """What the whole fixture stream becomes (each member exactly once)."""
    gent1 = entity(db, tenant, GENT1)
    assert gent1 is not None and gent1["type"] == [CORE + "Site"]
    now = current(gent1, TEMP)
    assert now["value"] == 13.0 and now["observedAt"] == "2026-01-02T10:00:00Z"
    assert history(db, tenant, GENT1) == {TEMP: [3, 4.5, 11.5, 12.0, 13.0]}

    gent2 = entity(db, tenant, GENT2)
    assert gent2 is not None and gent2["type"] == [CORE + "AirQualitySite"]
    no2 = current(gent2, NO2)
    assert (no2["value"], no2["unitCode"]) == (23.25, "GQ")
    assert current(gent2, LOCATION)["value"] == {"type": "Point", "coordinates": [3.72, 51.05]}
    # obs/2 is on two pages: one instance
    assert history(db, tenant, GENT2)[NO2] == [23.25]

    p1 = entity(db, tenant, P1)
    assert p1 is not None and p1["type"] == [CORE + "Parking"]
    assert current(p1, SPOTS)["value"] == 35
    assert current(p1, "https://example.org/parking#name")["languageMap"] == {
        "nl": "Parking Zuid",
        "en": "South car park",
    }
    assert (
        current(p1, "https://example.org/parking#operator")["object"]
        == "urn:ngsi-ld:Organisation:city"
    )
    assert history(db, tenant, P1)[SPOTS] == [40, 35]

    p2 = entity(db, tenant, P2)
    spots = current(p2, SPOT_NUMBER)
    assert (spots["value"], spots["observedAt"]) == (120, "2026-01-04T07:59:00Z")
    assert current(p2, LOCATION)["value"] == {"type": "Point", "coordinates": [3.7174, 51.0543]}
    assert current(p2, CORE + "refOperator")["object"] == "urn:ngsi-ld:Organisation:city"


def test_replicates_the_whole_stream_each_member_once(
    db: str, server: StreamServer, dataset: tuple[str, str], tenant: str
) -> None:
    org, ds = dataset
    report = replicate(db, server.base + "/stream", ds, tenant)
    assert (report.pages, report.gone, report.failed, report.pruned) == (6, 1, 0, 0)
    assert report.written == 9 and report.rejected == 0
    assert report.duplicates == 1  # obs/2 on /pages/1 and /pages/2-moved
    assert report.errors == []
    assert_fixture_stream_stored(db, tenant)
    # the redirect was followed, the page behind it read once
    assert server.requests("/pages/2") == 1 and server.requests("/pages/2-moved") == 1

    async def owners(rt: Runtime) -> set[str]:
        from smartregion.storage.base import EntityQuery, Readable

        mine = await rt.store.query(
            tenant, EntityQuery(limit=100, readable=Readable(owners=frozenset({org})))
        )
        return {d["id"] for d in mine.docs}

    # written as the data set's owner
    assert with_runtime(db, owners) == {GENT1, GENT2, P1, P2}


def test_a_second_run_skips_immutable_pages_and_revalidates_mutable_ones(
    db: str, server: StreamServer, dataset: tuple[str, str], tenant: str
) -> None:
    _, ds = dataset
    replicate(db, server.base + "/stream", ds, tenant)
    before = {p: server.requests(p) for p in (*IMMUTABLE, "/stream", "/pages/latest")}
    report = replicate(db, server.base + "/stream", ds, tenant)
    for path in IMMUTABLE:
        assert server.requests(path) == before[path] == 1, path
    assert server.requests("/stream") == 2  # mutable: read again
    assert server.requests("/pages/latest") == 2
    assert server.log[-1][1] is not None  # revalidated with its ETag
    assert report.not_modified == 1 and report.written == 0
    assert_fixture_stream_stored(db, tenant)


def test_since_prunes_relations_and_members_and_a_later_run_fills_in(
    db: str, server: StreamServer, dataset: tuple[str, str], tenant: str
) -> None:
    _, ds = dataset
    report = replicate(db, server.base + "/stream", ds, tenant, since="2026-01-02T00:00:00Z")
    assert report.pruned == 1  # /pages/old: tree:LessThanRelation 2026-01-01
    assert server.requests("/pages/old") == 0
    assert report.before_since == 3  # obs/1, obs/2 on /pages/1, obs/2 again on /pages/2-moved
    assert history(db, tenant, GENT1) == {TEMP: [12.0, 13.0]}
    assert entity(db, tenant, GENT2) is None
    # without --since: the pruned page and the members left out come in; nothing twice
    report = replicate(db, server.base + "/stream", ds, tenant)
    assert server.requests("/pages/old") == 1
    # the pages that had members left out are read again; the others are not
    assert server.requests("/pages/1") == 2 and server.requests("/pages/2-moved") == 2
    assert server.requests("/pages/3") == 1
    assert report.written == 4 and report.pruned == 0
    assert report.duplicates == 3  # obs/3 and obs/4 seen before, obs/2 on its second page
    assert_fixture_stream_stored(db, tenant)


def test_follow_polls_the_mutable_page_and_takes_new_members_once(
    db: str, server: StreamServer, dataset: tuple[str, str], tenant: str
) -> None:
    _, ds = dataset
    latest = server.routes["/pages/latest"]
    grown = latest.body.replace(
        b"      ]\n    }\n  ]\n}",
        b"""      ,{
          "id": "%s/parking/p2/v2",
          "type": "Parking",
          "isVersionOf": "urn:ngsi-ld:Parking:p2",
          "generatedAtTime": "2026-01-04T09:00:00Z",
          "availableSpotNumber": {"type": "Property", "value": 118, "observedAt": "2026-01-04T08:59:00Z"}
        }
      ]
    }
  ]
}"""
        % server.base.encode(),
    )
    assert grown != latest.body

    async def go(rt: Runtime) -> ReplicationReport:
        r = await replicator(rt, server.base + "/stream", ds, tenant, poll_interval=0.2)
        stop = asyncio.Event()
        task = asyncio.create_task(r.run(follow=True, stop=stop))

        async def until(check: Callable[[], Awaitable[bool]]) -> None:
            deadline = time.monotonic() + 30
            while not await check():
                assert not task.done(), task.result()
                assert time.monotonic() < deadline, "the follower did not get there"
                await asyncio.sleep(0.05)

        async def has_p2() -> bool:
            return await rt.store.get_entity(tenant, P2) is not None

        await until(has_p2)
        polls = server.requests("/pages/latest")

        async def revalidated() -> bool:  # at least one 304 poll before the page grows
            return r.report.not_modified >= 1

        await until(revalidated)
        latest.body = grown

        async def has_118() -> bool:
            doc = await rt.store.get_entity(tenant, P2)
            return doc is not None and doc["attrs"][SPOT_NUMBER][0]["value"] == 118

        await until(has_118)
        assert server.requests("/pages/latest") > polls
        stop.set()
        report = await task
        await r.fetcher.aclose()
        return report

    report = with_runtime(db, go)
    assert report.written == 10 and report.not_modified >= 1
    assert report.duplicates >= 2  # obs/2, and p2/v1 again on the grown page
    assert history(db, tenant, P2)[SPOT_NUMBER] == [120, 118]
    # the immutable pages were read once though the follower ran on
    for path in IMMUTABLE:
        assert server.requests(path) == 1, path


def test_members_outside_the_data_set_are_rejected_as_dead_letters(
    db: str, server: StreamServer, tenant: str
) -> None:
    org, ds = make_dataset(db, ["Site"])
    report = replicate(db, server.base + "/stream", ds, tenant)
    # obs/2 (its feature is an AirQualitySite) and the three parking versions
    assert report.rejected == 4 and report.written == 9
    assert entity(db, tenant, P1) is None and entity(db, tenant, GENT2) is None
    assert history(db, tenant, GENT1) == {TEMP: [3, 4.5, 11.5, 12.0, 13.0]}

    async def letters(rt: Runtime) -> list[Any]:
        assert isinstance(rt.store, IngestionStore)
        return await rt.store.dead_letters(org, tenant=tenant)

    found = with_runtime(db, letters)
    assert len(found) == 4
    assert all("outside data set" in letter.reason for letter in found)
    assert {letter.topic for letter in found} >= {f"ldes:{server.base}/pages/3"}
    # rejected members are not retried
    again = replicate(db, server.base + "/stream", ds, tenant)
    assert again.rejected == 0 and len(with_runtime(db, letters)) == 4


def test_a_failing_page_is_reported_and_the_rest_replicated(
    db: str, server: StreamServer, dataset: tuple[str, str], tenant: str
) -> None:
    _, ds = dataset
    pages = server.routes
    pages["/pages/gone"] = Route(status=404)
    report = replicate(db, server.base + "/stream", ds, tenant)
    assert report.failed == 1 and report.written == 9
    assert any("/pages/gone: HTTP 404" in e for e in report.errors)
    assert server.requests("/pages/gone") == 1  # not retried in a loop within the run
    assert_fixture_stream_stored(db, tenant)
    # the next run tries it again
    pages["/pages/gone"] = pages["/pages/3"]
    report = replicate(db, server.base + "/stream", ds, tenant)
    assert report.failed == 0 and server.requests("/pages/gone") == 2
    assert report.duplicates == 2 and report.written == 0  # the copy of /pages/3's members


def test_untyped_entities_need_a_type_when_the_data_set_has_several(
    db: str, server: StreamServer, tenant: str
) -> None:
    _, ds = make_dataset(db, ["Site", "Parking"])
    report = replicate(db, server.base + "/stream", ds, tenant, default_type=None)
    # gent-1's five observations state no type; gent-2's is outside; the parkings state theirs
    assert report.rejected == 6
    assert any("has several: give --type" in e for e in report.errors)
    assert entity(db, tenant, GENT1) is None
    assert entity(db, tenant, P1) is not None
    _, single = make_dataset(db, ["Site"])
    other = f"{tenant}b"
    report = replicate(db, server.base + "/stream", single, other, default_type=None)
    gent1 = entity(db, other, GENT1)
    assert gent1 is not None and gent1["type"] == [CORE + "Site"]


def test_one_client_at_a_time(
    db: str, server: StreamServer, dataset: tuple[str, str], tenant: str
) -> None:
    _, ds = dataset

    async def go(rt: Runtime) -> None:
        first = await replicator(rt, server.base + "/stream", ds, tenant)
        second = await replicator(rt, server.base + "/stream", ds, tenant)
        hold = server.routes["/pages/1"].hold = threading.Event()
        task = asyncio.create_task(first.run())
        while not server.routes["/pages/1"].arrived.is_set():
            await asyncio.sleep(0.02)
        with pytest.raises(ReplicationBusy, match="--take-over"):
            await second.run()
        hold.set()
        await task
        await first.fetcher.aclose()
        await second.fetcher.aclose()

    with_runtime(db, go)
    assert_fixture_stream_stored(db, tenant)


def cli(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, ["ldes", *args])
    return result.exit_code, result.stdout, result.stderr


def test_resume_after_a_kill_stores_nothing_twice(
    db: str, server: StreamServer, dataset: tuple[str, str], tenant: str, tmp_path: Path
) -> None:
    _, ds = dataset
    url = server.base + "/stream"
    args = [url, "--dataset", ds, "--database", db, "--tenant", tenant, "--type", "Site"]
    hold = server.routes["/pages/3"].hold = threading.Event()
    proc = subprocess.Popen(
        [sys.executable, "-m", "smartregion", "ldes", "replicate", *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env={**os.environ, "COLUMNS": "200"},
    )
    try:
        # the client has read /stream, /pages/1, /pages/2 and /pages/old; it waits for /pages/3
        assert server.routes["/pages/3"].arrived.wait(60), proc.stderr.read() if proc.stderr else ""
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stderr:
            proc.stderr.close()
    hold.set()

    async def members_seen(rt: Runtime) -> int:
        assert isinstance(rt.store, ReplicationStore)
        (replication,) = [r for r in await rt.store.replications() if r.tenant == tenant]
        return replication.members

    # /pages/1 and /pages/2 were committed (the client fetches a page ahead while it writes
    # one, so /pages/old, read just before /pages/3, may or may not have been)
    before = with_runtime(db, members_seen)
    assert before in (4, 6)
    assert set(history(db, tenant, GENT1)[TEMP]) >= {11.5, 12.0, 13.0}
    assert entity(db, tenant, P1) is None
    # the dead client's lease still runs: refused, then taken over
    code, _, err = cli("replicate", *args)
    assert code == 1 and "another client is replicating" in err
    code, out, err = cli("replicate", *args, "--take-over")
    assert code == 0, err
    # the rest (p1/v1, p1/v2, p2/v1 and perhaps /pages/old's two); nothing twice
    assert f"{9 - before} members written" in out and "0 duplicates skipped" in out
    # pages read before the kill were not read again (immutable, done)
    for path in ("/pages/1", "/pages/2-moved"):
        assert server.requests(path) == 1, path
    assert server.requests("/pages/old") == (1 if before == 6 else 2)
    assert server.requests("/pages/3") == 2
    assert_fixture_stream_stored(db, tenant)
    code, out, _ = cli("replications", "--database", db)
    assert code == 0 and f"{ds}\t{tenant}\t{url}\t9 members" in out


def test_cli_checks_its_arguments(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'x.db'}"
    code, _, err = cli("replicate", "ftp://x/stream", "--dataset", "d", "--database", db)
    assert code == 2 and "http(s) URL" in err
    code, _, err = cli(
        "replicate", "http://x/stream", "--dataset", "d", "--database", db, "--since", "yesterday"
    )
    assert code == 2 and "ISO 8601" in err
    code, _, err = cli("replicate", "http://x/stream", "--dataset", "nope", "--database", db)
    assert code == 1 and "nope" in err


def test_follow_from_the_command_line_stops_cleanly_on_sigterm(
    db: str, server: StreamServer, dataset: tuple[str, str], tenant: str
) -> None:
    _, ds = dataset
    args = [
        server.base + "/stream",
        "--dataset",
        ds,
        "--database",
        db,
        "--tenant",
        tenant,
        "--type",
        "Site",
        "--follow",
        "--poll-interval",
        "0.2",
    ]
    proc = subprocess.Popen(
        [sys.executable, "-m", "smartregion", "ldes", "replicate", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        # following: /pages/latest (max-age=1) is polled again and again
        while server.requests("/pages/latest") < 3:
            assert proc.poll() is None, "the follower stopped by itself"
            assert time.monotonic() < deadline, "the follower did not poll"
            time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0
    assert b"9 members written" in out
    assert_fixture_stream_stored(db, tenant)
    # it gave its lease up: the next run needs no --take-over
    code, out_text, err = cli("replicate", *args[:-3])
    assert code == 0, err
    assert "0 members written" in out_text


def test_a_page_cut_short_by_a_failure_is_read_whole_again(
    db: str,
    server: StreamServer,
    dataset: tuple[str, str],
    tenant: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Members of one page committed in several transactions; the process fails between
    them: the next run must fetch the page (not revalidate it: a 304 would skip the rest)."""
    import smartregion.ldes.replication as replication

    _, ds = dataset
    latest = server.routes["/pages/latest"]
    latest.body = latest.body.replace(
        b"      ]\n    }\n  ]\n}",
        b"""      ,{"id": "%s/parking/p2/v2", "type": "Parking", "isVersionOf": "urn:ngsi-ld:Parking:p2",
          "generatedAtTime": "2026-01-04T09:00:00Z",
          "availableSpotNumber": {"type": "Property", "value": 118, "observedAt": "2026-01-04T08:59:00Z"}}
      ]
    }
  ]
}"""
        % server.base.encode(),
    )
    monkeypatch.setattr(replication, "CHUNK", 1)

    async def failing(rt: Runtime) -> None:
        r = await replicator(rt, server.base + "/pages/latest", ds, tenant)
        writes = rt.broker.entities.store
        real = writes.transact
        calls = {"n": 0}

        async def transact(*args: Any, **kwargs: Any) -> Any:
            calls["n"] += 1
            if calls["n"] == 2:
                raise RuntimeError("the database went away")
            return await real(*args, **kwargs)

        monkeypatch.setattr(writes, "transact", transact)
        with pytest.raises(RuntimeError, match="went away"):
            await r.run()
        monkeypatch.setattr(writes, "transact", real)
        await r.fetcher.aclose()

    with_runtime(db, failing)
    assert history(db, tenant, P2)[SPOT_NUMBER] == [120]
    report = replicate(db, server.base + "/pages/latest", ds, tenant)
    assert report.not_modified == 0 and report.pages == 1
    assert report.written == 1 and report.duplicates == 1
    assert history(db, tenant, P2)[SPOT_NUMBER] == [120, 118]


def test_replicates_the_platforms_own_stream_round_trip(
    db: str, tmp_path: Path, tenant: str
) -> None:
    """Our client against our server: the demo data set's stream, served by `smartregion serve
    --demo`, replicated into another database (SQLite or PostgreSQL) — every member once, and
    every observed value back in the copy's history at its observation time."""
    from test_serve import server as serving_platform

    source_db = tmp_path / "source.db"
    os.environ["SMARTREGION_LDES_SETTLE_SECONDS"] = "1"
    try:
        with serving_platform(
            "--database", f"sqlite:///{source_db}", "--demo", "--anonymous-writes"
        ) as base:
            time.sleep(2.5)  # past the settle time: every demo member is published

            async def demo_types(rt: Runtime) -> list[str]:
                assert isinstance(rt.store, GovernanceStore)
                return (await Governance(rt.store).get_dataset("demo")).entity_types

            _, ds = make_dataset(db, with_runtime(f"sqlite:///{source_db}", demo_types))
            report = replicate(db, f"{base}/ldes/demo", ds, tenant)
            again = replicate(db, f"{base}/ldes/demo", ds, tenant)
    finally:
        os.environ.pop("SMARTREGION_LDES_SETTLE_SECONDS", None)
    from test_ldes_interop import published

    # the members of the demo data set's stream (its own entities; other data sets' are not)
    members = len(published(source_db, "stream"))
    assert report.errors == [] and report.rejected == 0
    assert report.written == members > 0 and report.duplicates == 0
    assert again.written == 0  # a second run stores nothing twice
    station = "urn:ngsi-ld:AirQualityObserved:12025-001"
    original = history(f"sqlite:///{source_db}", "", station)
    copy = history(db, tenant, station)
    for attr in ("no2", "pm10", "pm25"):  # every observed value, in time order
        assert copy[CORE + attr] == original[CORE + attr] != []
