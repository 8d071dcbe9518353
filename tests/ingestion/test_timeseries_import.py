"""`smartregion import timeseries` on SQLite and PostgreSQL (a tenant of its own per test)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import orjson
import pytest
from typer.testing import CliRunner

from smartregion.app import Runtime
from smartregion.cli.main import app
from smartregion.governance import WriteAccess
from smartregion.ingestion.timeseries import TimeseriesImporter, read_rows
from smartregion.settings import Settings
from smartregion.storage.history import HistoryQuery, HistoryStore

T = TypeVar("T")
runner = CliRunner()
CORE = "https://uri.etsi.org/ngsi-ld/default-context/"
TEMP = CORE + "temperature"
STATUS = CORE + "condition"


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'import.db'}"
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture
def tenant() -> str:
    return f"imp{uuid.uuid4().hex[:10]}"


def cli(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, ["import", "timeseries", *args])
    return result.exit_code, result.stdout, result.stderr


def with_runtime(db: str, work: Callable[[Runtime], Awaitable[T]]) -> T:
    async def go() -> T:
        runtime = Runtime.build(Settings(database_url=db))
        await runtime.start()
        try:
            return await work(runtime)
        finally:
            await runtime.stop()

    return asyncio.run(go())


def history(db: str, tenant: str, entity: str) -> list[tuple[str, Any, str | None, str | None]]:
    """(attribute, value, unitCode, datasetId) of an entity's instances, in time order."""

    async def read(rt: Runtime) -> list[Any]:
        assert isinstance(rt.store, HistoryStore)
        out = []
        for h in await rt.store.query_instances(tenant, HistoryQuery(entity_ids=(entity,))):
            for i in h.instances:
                out.append(
                    (
                        i.doc.get("observedAt"),
                        h.series.attr,
                        i.doc["value"],
                        i.doc.get("unitCode"),
                        i.doc.get("datasetId"),
                    )
                )
        return [row[1:] for row in sorted(out, key=lambda r: (r[0], r[1], r[4] or ""))]

    return with_runtime(db, read)


def entity(db: str, tenant: str, entity_id: str) -> dict[str, Any] | None:
    return with_runtime(db, lambda rt: rt.store.get_entity(tenant, entity_id))


def ndjson(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in rows))
    return path


def row(eid: str, minute: int, value: Any, **extra: Any) -> dict[str, Any]:
    return {
        "entity": eid,
        "attribute": "temperature",
        "observedAt": f"2025-03-01T10:{minute:02d}:00Z",
        "value": value,
        **extra,
    }


def test_ndjson_history_units_datasets_and_current_state(
    db: str, tenant: str, tmp_path: Path
) -> None:
    a, b = "urn:ngsi-ld:Sensor:a", "urn:ngsi-ld:Sensor:b"
    ds = "urn:ngsi-ld:Dataset:backup"
    f = ndjson(
        tmp_path / "t.ndjson",
        [
            row(a, 1, 20.5, unit="CEL"),
            row(a, 3, 22, unit="CEL"),  # latest of a
            row(a, 2, 21.0, unit="CEL"),  # out of order
            row(b, 1, 7.25, unit="CEL", datasetId=ds),
            {
                "entity": b,
                "attribute": "condition",
                "observedAt": "2025-03-01T10:05:00Z",
                "value": "ok",
            },
        ],
    )
    code, out, err = cli(
        str(f), "--database", db, "--tenant", tenant, "--type", "Sensor", "--batch", "2"
    )
    assert code == 0, err
    assert "imported 5 rows in 3 batches (2 entities created" in out
    assert history(db, tenant, a) == [
        (TEMP, 20.5, "CEL", None),
        (TEMP, 21.0, "CEL", None),
        (TEMP, 22, "CEL", None),
    ]
    assert history(db, tenant, b) == [(TEMP, 7.25, "CEL", ds), (STATUS, "ok", None, None)]
    doc_a = entity(db, tenant, a)
    assert doc_a is not None and doc_a["type"] == [CORE + "Sensor"]
    (current,) = doc_a["attrs"][TEMP]
    assert current["value"] == 22 and current["observedAt"] == "2025-03-01T10:03:00Z"
    assert current["unitCode"] == "CEL"
    doc_b = entity(db, tenant, b)
    assert doc_b is not None
    assert doc_b["attrs"][TEMP][0]["datasetId"] == ds
    assert doc_b["attrs"][STATUS][0]["value"] == "ok"

    # an older load leaves the (newer) current value; a newer one replaces it
    f2 = ndjson(tmp_path / "t2.ndjson", [row(a, 0, 1.0), row(b, 9, 9.5, datasetId=ds)])
    code, _, err = cli(str(f2), "--database", db, "--tenant", tenant)
    assert code == 0, err
    doc_a = entity(db, tenant, a)
    assert doc_a is not None and doc_a["attrs"][TEMP][0]["value"] == 22
    doc_b = entity(db, tenant, b)
    assert doc_b is not None and doc_b["attrs"][TEMP][0]["value"] == 9.5


def test_csv_types_values_and_type_column(db: str, tenant: str, tmp_path: Path) -> None:
    f = tmp_path / "t.csv"
    f.write_text(
        "entity,attribute,observedAt,value,unit,type\n"
        "urn:ngsi-ld:Meter:1,temperature,2025-03-01T10:00:00Z,12,CEL,Meter\n"
        "urn:ngsi-ld:Meter:1,temperature,2025-03-01T10:01:00Z,12.5,CEL,\n"
        'urn:ngsi-ld:Meter:1,condition,2025-03-01T10:01:00Z,"closed, locked",,\n'
    )
    code, _, err = cli(str(f), "--database", db, "--tenant", tenant)
    assert code == 0, err
    assert history(db, tenant, "urn:ngsi-ld:Meter:1") == [
        (TEMP, 12, "CEL", None),
        (STATUS, "closed, locked", None, None),
        (TEMP, 12.5, "CEL", None),
    ]
    doc = entity(db, tenant, "urn:ngsi-ld:Meter:1")
    assert doc is not None and doc["type"] == [CORE + "Meter"]
    assert doc["attrs"][TEMP][0]["value"] == 12.5


def test_bad_row_fails_its_batch_with_the_line_and_resumes(
    db: str, tenant: str, tmp_path: Path
) -> None:
    e = "urn:ngsi-ld:Sensor:r"
    good = [row(e, m, float(m)) for m in range(6)]
    bad = list(good)
    bad[3] = {**good[3], "observedAt": "yesterday"}
    f = ndjson(tmp_path / "bad.ndjson", bad)
    code, _, err = cli(
        str(f), "--database", db, "--tenant", tenant, "--type", "Sensor", "--batch", "2"
    )
    assert code == 1
    assert "line 4: observedAt 'yesterday' is not a DateTime" in err
    assert "first 2 data rows (up to line 2)" in err and "--skip 2" in err
    # the failing batch (lines 3-4) wrote nothing, the first batch stays
    assert [v for _, v, _, _ in history(db, tenant, e)] == [0.0, 1.0]
    doc = entity(db, tenant, e)
    assert doc is not None and doc["attrs"][TEMP][0]["value"] == 1.0

    f = ndjson(tmp_path / "fixed.ndjson", good)
    code, out, err = cli(
        str(f), "--database", db, "--tenant", tenant, "--skip", "2", "--batch", "2"
    )
    assert code == 0, err
    assert "imported 4 rows" in out and "skipped 2" in out
    assert [v for _, v, _, _ in history(db, tenant, e)] == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "entity,attribute,observedAt,value\nurn:x:1,temperature,2025-01-01T00:00:00Z,\n",
            "line 2: value is missing",
        ),
        (
            "entity,attribute,observedAt,value\nurn:x:1,temperature,2025-01-01T00:00:00Z,inf\n",
            "line 2: value 'inf' is not a finite number",
        ),
        (
            "entity,attribute,value\nurn:x:1,temperature,1\n",
            "line 1: the header has no column observedAt",
        ),
        (
            "entity,attribute,observedAt,value\nurn:x:1,temperature,2025-01-01T00:00:00Z\n",
            "line 2: 3 columns where the header has 4",
        ),
    ],
)
def test_bad_csv_rows_name_their_line(tmp_path: Path, text: str, message: str) -> None:
    db = f"sqlite:///{tmp_path / 'bad.db'}"
    f = tmp_path / "bad.csv"
    f.write_text(text)
    code, _, err = cli(str(f), "--database", db, "--type", "T")
    assert code == 1 and message in err and "nothing was written" in err


def test_dry_run_checks_everything_and_writes_nothing(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'dry.db'}"
    f = ndjson(tmp_path / "t.ndjson", [row("urn:ngsi-ld:Sensor:d", m, m) for m in range(3)])
    code, out, err = cli(str(f), "--database", db, "--dry-run")
    assert code == 1 and "line 1: entity urn:ngsi-ld:Sensor:d does not exist" in err
    code, out, err = cli(str(f), "--database", db, "--dry-run", "--type", "Sensor")
    assert code == 0 and "checked 3 rows" in out and "1 entities to create" in out
    assert entity(db, "", "urn:ngsi-ld:Sensor:d") is None
    assert history(db, "", "urn:ngsi-ld:Sensor:d") == []


def test_rows_only_go_into_entities_the_org_may_write(db: str, tenant: str, tmp_path: Path) -> None:
    owner, other = f"o{uuid.uuid4().hex[:8]}", f"x{uuid.uuid4().hex[:8]}"
    e = "urn:ngsi-ld:Sensor:owned"
    f = ndjson(tmp_path / "a.ndjson", [row(e, 1, 1.0)])
    code, _, err = cli(
        str(f), "--database", db, "--tenant", tenant, "--org", owner, "--type", "Sensor"
    )
    assert code == 0, err
    f = ndjson(tmp_path / "b.ndjson", [row("urn:ngsi-ld:Sensor:mine", 1, 5.0), row(e, 2, 2.0)])
    code, _, err = cli(
        str(f), "--database", db, "--tenant", tenant, "--org", other, "--type", "Sensor"
    )
    assert code == 1
    assert f"line 2: entity {e} is owned by an organisation that has not mandated" in err
    assert "nothing was written" in err
    assert [v for _, v, _, _ in history(db, tenant, e)] == [1.0]
    assert history(db, tenant, "urn:ngsi-ld:Sensor:mine") == []
    assert entity(db, tenant, "urn:ngsi-ld:Sensor:mine") is None


# --- the column-wise batches and the exact path -----------------------------------------------


def load(db: str, tenant: str, path: Path, fmt: str, *, exact: bool, batch: int) -> dict[str, int]:
    """Import a file in process, column-wise (or only row by row); the batch counts."""

    async def go(rt: Runtime) -> dict[str, int]:
        vocab = await rt.broker.contexts.term_map(None, tenant=tenant)
        importer = TimeseriesImporter(rt.broker, WriteAccess("org"), tenant=tenant, batch=batch)
        with path.open("rb") as stream:
            reader, _ = read_rows(stream, fmt, vocab, default_type="Sensor")
            await importer.run(reader.rows() if exact else reader)
        return {"fast": reader.cells.fast, "exact": reader.cells.exact}

    return with_runtime(db, go)


def stored(db: str, tenant: str, entity_ids: list[str]) -> dict[str, Any]:
    """Everything an import leaves: instances (in (t, seq) order), roll-up summaries by hour and
    by day, current attributes (system times aside)."""

    async def read(rt: Runtime) -> dict[str, Any]:
        assert isinstance(rt.store, HistoryStore)
        out: dict[str, Any] = {}
        for h in await rt.store.query_instances(tenant, HistoryQuery(entity_ids=tuple(entity_ids))):
            name = f"{h.series.entity_id} {h.series.attr} {h.series.dataset_id}"
            out[name] = [
                (i.seq, {k: v for k, v in i.doc.items() if k not in SYSTEM}) for i in h.instances
            ]
            day = 24 * 3600 * 10**6
            windows = [
                (d * day + h0 * day // 24, d * day + (h0 + 1) * day // 24)
                for d in range(20148, 20150)
                for h0 in range(24)
            ]
            windows += [(d * day, (d + 1) * day) for d in range(20148, 20150)]
            sums = await rt.store.summarise(h.series.key, windows)
            out[name + " rollups"] = [
                None
                if s is None
                else (
                    s.count,
                    round(s.total, 6),
                    s.vmin,
                    s.vmax,
                    s.first_t,
                    s.first_v,
                    s.last_t,
                    s.last_v,
                )
                for s in sums
            ]
        for eid in entity_ids:
            doc = await rt.store.get_entity(tenant, eid)
            out[eid] = (
                None
                if doc is None
                else {
                    a: [{k: v for k, v in i.items() if k not in SYSTEM} for i in insts]
                    for a, insts in doc["attrs"].items()
                }
            )
        return out

    return with_runtime(db, read)


SYSTEM = {"instanceId", "createdAt", "modifiedAt"}
MIXED = [
    row("urn:ngsi-ld:Sensor:m1", 5, 20.5, unit="CEL"),
    row("urn:ngsi-ld:Sensor:m1", 5, 20.5, unit="CEL"),  # the same line twice: two instances
    row("urn:ngsi-ld:Sensor:m1", 2, 20.0, unit="CEL"),  # integral float, out of order
    row("urn:ngsi-ld:Sensor:m1", 7, 2**60),  # an integer not exact as a double
    row("urn:ngsi-ld:Sensor:m2", 1, "open", type="Door"),  # text, a type of its own
    row("urn:ngsi-ld:Sensor:m2", 1, True),
    row("urn:ngsi-ld:Sensor:m2", 3, {"a": [1, 2]}, datasetId="urn:ngsi-ld:Dataset:x"),
    row("urn:ngsi-ld:Sensor:m1", 5, 19, unit="FAH"),  # the same time, another value and unit
    row("urn:ngsi-ld:Sensor:m3", 9, -0.125, unit="CEL", datasetId=""),
    {**row("urn:ngsi-ld:Sensor:m3", 8, 3), "observedAt": "2025-03-01T10:08:00.250+02:00"},
]
MIXED_IDS = ["urn:ngsi-ld:Sensor:m1", "urn:ngsi-ld:Sensor:m2", "urn:ngsi-ld:Sensor:m3"]


def test_column_wise_batches_store_what_the_exact_path_stores(db: str, tmp_path: Path) -> None:
    f = ndjson(tmp_path / "mixed.ndjson", MIXED)
    fast, exact = f"f{uuid.uuid4().hex[:8]}", f"e{uuid.uuid4().hex[:8]}"
    # twice each: the second load lands on stored instances and roll-ups (late, duplicate rows)
    for _ in range(2):
        assert load(db, fast, f, "ndjson", exact=False, batch=4) == {"fast": 3, "exact": 0}
        load(db, exact, f, "ndjson", exact=True, batch=4)
    got, want = stored(db, fast, MIXED_IDS), stored(db, exact, MIXED_IDS)
    assert got == want
    m1 = got["urn:ngsi-ld:Sensor:m1 " + TEMP + " "]
    assert [(seq, i["value"]) for seq, i in m1] == [
        (0, 20.0),
        (1, 20.0),
        (0, 20.5),
        (1, 20.5),
        (2, 19),
        (3, 20.5),
        (4, 20.5),
        (5, 19),
        (0, 2**60),
        (1, 2**60),
    ]
    assert isinstance(m1[0][1]["value"], float) and m1[4][1]["unitCode"] == "FAH"
    assert got["urn:ngsi-ld:Sensor:m1"] is not None
    assert got["urn:ngsi-ld:Sensor:m1"][TEMP][0]["value"] == 2**60  # the latest (10:07)


def test_csv_column_wise_batches_store_what_the_exact_path_stores(db: str, tmp_path: Path) -> None:
    f = tmp_path / "t.csv"
    f.write_text(
        "type,entity,attribute,observedAt,value,unit,datasetId\n"
        ",urn:ngsi-ld:Sensor:c1,temperature,2025-03-01T10:00:00Z,12,CEL,\n"
        ",urn:ngsi-ld:Sensor:c1,temperature,2025-03-01T10:01:00Z,12.50,CEL,\n"
        'Door,urn:ngsi-ld:Sensor:c2,condition,2025-03-01T10:01:00Z,"closed, locked",,\n'
        ",urn:ngsi-ld:Sensor:c1,temperature,2025-03-01T10:00:30Z,9007199254740993,,\n"
        ",urn:ngsi-ld:Sensor:c1,temperature,2025-03-01T10:02:00Z,-1e3,CEL,urn:ngsi-ld:Dataset:b\n"
    )
    fast, exact = f"f{uuid.uuid4().hex[:8]}", f"e{uuid.uuid4().hex[:8]}"
    assert load(db, fast, f, "csv", exact=False, batch=2) == {"fast": 3, "exact": 0}
    load(db, exact, f, "csv", exact=True, batch=2)
    ids = ["urn:ngsi-ld:Sensor:c1", "urn:ngsi-ld:Sensor:c2"]
    got = stored(db, fast, ids)
    assert got == stored(db, exact, ids)
    values = [i["value"] for _, i in got["urn:ngsi-ld:Sensor:c1 " + TEMP + " "]]
    assert values == [12, "9007199254740993", 12.5]  # past 2**53: kept as text


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (b"{not json", "line 7: not JSON"),
        (b"[1, 2]", "line 7: not a JSON object"),
        (
            orjson.dumps({"entity": "urn:x:1", "attribute": "temperature", "value": 1}),
            "line 7: observedAt is missing",
        ),
        (
            orjson.dumps(row("urn:x:1", 1, 1.0) | {"observedAt": "2025-13-01T00:00:00Z"}),
            "line 7: observedAt '2025-13-01T00:00:00Z' is not a DateTime",
        ),
        (orjson.dumps(row("not a uri", 1, 1.0)), "line 7: entity 'not a uri' is not a URI"),
        (orjson.dumps(row("urn:x:1", 1, None)), "line 7: value is missing"),
        (orjson.dumps(row("urn:x:1", 1, 1.0, unit="")), "line 7: unit '' is not a unit code"),
        (orjson.dumps(row("urn:x:1", 1, 1.0, datasetId="x")), "line 7: datasetId 'x' is not a URI"),
        (orjson.dumps(row("urn:x:1", 1, 1.0, type=5)), "line 7: type 5 is not a name"),
        (
            orjson.dumps(row("urn:x:1", 1, 1.0) | {"attribute": 5}),
            "line 7: attribute 5 is not a name",
        ),
        (
            b'{"entity": "urn:x:1", "attribute": "t", "observedAt": "2025-01-01T00:00:00Z", "value": 1e999}',
            "line 7: not JSON (number",
        ),  # orjson: out of range
    ],
)
def test_a_bad_line_in_the_middle_of_a_batch_names_its_line(
    db: str, tenant: str, tmp_path: Path, bad: bytes, message: str
) -> None:
    e = "urn:ngsi-ld:Sensor:mid"
    lines = [orjson.dumps(row(e, m, float(m), unit="CEL")) for m in range(10)]
    lines.insert(2, b"   ")  # a blank line: counted as a line, not as a data row
    lines[6] = bad  # line 7: the third row of the second batch of 4
    (tmp_path / "bad.ndjson").write_bytes(b"\n".join(lines) + b"\n")
    code, _, err = cli(
        str(tmp_path / "bad.ndjson"),
        "--database",
        db,
        "--tenant",
        tenant,
        "--type",
        "Sensor",
        "--batch",
        "4",
    )
    assert code == 1
    assert message in err
    assert "first 4 data rows (up to line 5)" in err and "--skip 4" in err
    assert [v for _, v, _, _ in history(db, tenant, e)] == [0.0, 1.0, 2.0, 3.0]
    doc = entity(db, tenant, e)
    assert doc is not None and doc["attrs"][TEMP][0]["value"] == 3.0


def test_a_bad_csv_value_in_the_middle_of_a_batch_names_its_line(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'bad.db'}"
    rows = [f"urn:x:1,temperature,2025-01-01T00:0{m}:00Z,{m}" for m in range(6)]
    rows[4] = "urn:x:1,temperature,2025-01-01T00:04:00Z,-inf"
    f = tmp_path / "bad.csv"
    f.write_text("entity,attribute,observedAt,value\n" + "\n".join(rows) + "\n")
    code, _, err = cli(str(f), "--database", db, "--type", "T", "--batch", "3")
    assert code == 1 and "line 6: value '-inf' is not a finite number" in err
    assert "first 3 data rows (up to line 4)" in err


def test_skipped_rows_are_counted_not_read(db: str, tenant: str, tmp_path: Path) -> None:
    e = "urn:ngsi-ld:Sensor:skip"
    lines = [b"{broken", b"", *(orjson.dumps(row(e, m, float(m))) for m in range(1, 4))]
    (tmp_path / "s.ndjson").write_bytes(b"\n".join(lines) + b"\n")
    code, out, err = cli(
        str(tmp_path / "s.ndjson"),
        "--database",
        db,
        "--tenant",
        tenant,
        "--type",
        "Sensor",
        "--skip",
        "1",
    )
    assert code == 0, err
    assert "imported 3 rows in 1 batches" in out and "skipped 1" in out
    assert [v for _, v, _, _ in history(db, tenant, e)] == [1.0, 2.0, 3.0]


def test_a_batch_of_new_entities_of_two_owners_loads_in_two_steps(
    db: str, tenant: str, tmp_path: Path
) -> None:
    # Door entities fall in a data set whose owner mandated "org": created as that owner's
    f = ndjson(
        tmp_path / "two.ndjson",
        [
            row("urn:ngsi-ld:Sensor:own1", 1, 1.5, type="Sensor"),
            row("urn:ngsi-ld:Door:own2", 1, "open", type="Door"),
            row("urn:ngsi-ld:Sensor:own1", 2, 2.5, type="Sensor"),
        ],
    )
    writer = WriteAccess("org", datasets=(("owner2", frozenset({CORE + "Door"}), None),))

    async def go(rt: Runtime) -> None:
        vocab = await rt.broker.contexts.term_map(None, tenant=tenant)
        with f.open("rb") as stream:
            reader, _ = read_rows(stream, "ndjson", vocab)
            report = await TimeseriesImporter(rt.broker, writer, tenant=tenant).run(reader)
        assert (report.rows, report.batches, report.created) == (3, 1, 2)
        assert await rt.store.owners_of(
            tenant, ["urn:ngsi-ld:Sensor:own1", "urn:ngsi-ld:Door:own2"]
        ) == {"urn:ngsi-ld:Sensor:own1": "org", "urn:ngsi-ld:Door:own2": "owner2"}

    with_runtime(db, go)
    assert history(db, tenant, "urn:ngsi-ld:Sensor:own1") == [
        (TEMP, 1.5, None, None),
        (TEMP, 2.5, None, None),
    ]
    assert history(db, tenant, "urn:ngsi-ld:Door:own2") == [(TEMP, "open", None, None)]
    door = entity(db, tenant, "urn:ngsi-ld:Door:own2")
    assert door is not None and door["attrs"][TEMP][0]["value"] == "open"
