"""`smartregion import timeseries` against a raw bulk insert of the same narrow rows (issue 4).

    .venv/bin/python -m benchmarks.importer [--backend sqlite|postgresql|both] [--quick]

On each backend, in fresh databases and the same run: an NDJSON file of `rows` one-a-minute
values of `series` sensors is imported with the `smartregion import timeseries` command (in
process: parsing, term expansion, validation, the entity writes through the broker and the
bulk load of the instances with roll-ups — one transaction per batch of `batch` rows; the
entities exist beforehand, as in a back-fill of running sensors). The raw ceiling is the same rows as `(series, t, value)` into a plain narrow
table with a `(series, t)` primary key, one transaction per batch: COPY on PostgreSQL,
executemany on SQLite (`benchmarks.history`). Rows per second and the ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import orjson
from rich.console import Console

from benchmarks import servers
from benchmarks.history import T0, _database, batches, raw_postgres, raw_sqlite
from smartregion.cli.importer import run_import
from smartregion.settings import Settings
from smartregion.storage.rollups import format_observed


@dataclass(slots=True)
class ImportFigures:
    """What one backend measured."""

    backend: str
    rows: int
    import_rows_per_s: float = 0.0
    raw_rows_per_s: float = 0.0
    raw_kind: str = ""

    @property
    def ratio(self) -> float:
        """The importer's rate over the raw ceiling."""
        return self.import_rows_per_s / self.raw_rows_per_s if self.raw_rows_per_s else 0.0


def write_file(path: Path, data: list[list[tuple[int, int, float]]]) -> None:
    """The rows as NDJSON, as an operator would export them."""
    with path.open("wb") as fh:
        for part in data:
            fh.write(
                b"".join(
                    orjson.dumps(
                        {
                            "entity": f"urn:ngsi-ld:Sensor:{s}",
                            "attribute": "temperature",
                            "observedAt": format_observed(t),
                            "value": v,
                            "unit": "CEL",
                        }
                    )
                    + b"\n"
                    for s, t, v in part
                )
            )


def run_importer(backend: str, *, quick: bool = False) -> ImportFigures:
    """Import vs raw on one backend."""
    series, rows, batch = (50, 20_000, 5_000) if quick else (500, 500_000, 10_000)
    data = batches(series, rows, batch)
    out = ImportFigures(backend, rows)
    with tempfile.TemporaryDirectory(prefix="bench-import-") as tmpdir:
        tmp = Path(tmpdir)
        if backend == "sqlite":
            out.raw_rows_per_s, _ = raw_sqlite(tmp / "raw.db", data)
            out.raw_kind = "executemany"
        else:
            with servers.throwaway_pg_database("iraw_") as dsn:
                _, out.raw_rows_per_s, _ = raw_postgres(dsn, data)
            out.raw_kind = "COPY"
        file = tmp / "load.ndjson"
        warm = tmp / "warm.ndjson"
        write_file(file, data)
        # the sensors exist already (one row each, at T0 - 1 min): untimed
        write_file(warm, [[(s, T0 - 60_000_000, 0.0) for s in range(1, series + 1)]])
        console = Console(file=open("/dev/null", "w"))  # noqa: SIM115 - the bar is not measured
        with _database(backend, tmp, "iimp_") as url:
            settings = Settings(database_url=url)
            common = dict(
                tenant="",
                org="bench",
                skip=0,
                dry_run=False,
                context=None,
                default_type="Sensor",
                console=console,
            )
            asyncio.run(run_import(settings, warm, "ndjson", batch=batch, **common))  # type: ignore[arg-type]
            t0 = time.perf_counter()
            report = asyncio.run(run_import(settings, file, "ndjson", batch=batch, **common))  # type: ignore[arg-type]
            out.import_rows_per_s = report.rows / (time.perf_counter() - t0)
            assert report.rows == rows
        console.file.close()
    return out


def describe(f: ImportFigures) -> str:
    """The figures as a Markdown line."""
    return (
        f"- import timeseries ({f.backend}): {f.import_rows_per_s:,.0f} rows/s; raw {f.raw_kind}"
        f" {f.raw_rows_per_s:,.0f} rows/s → {f.ratio:.0%} of raw ({f.rows:,} rows)"
    )


def main(argv: list[str] | None = None) -> int:
    """Run the importer benchmark and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--quick", action="store_true", help="small data: a smoke check")
    args = parser.parse_args(argv)
    backends = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]
    for backend in backends:
        if backend == "postgresql" and not servers.pg_admin_available():
            print("PostgreSQL unreachable: skipped")
            continue
        print(describe(run_importer(backend, quick=args.quick)), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
