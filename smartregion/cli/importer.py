"""`smartregion import timeseries FILE`: bulk historical loads (docs/ingestion.md)."""

from __future__ import annotations

import asyncio
import gc
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn

from smartregion.app import Runtime
from smartregion.errors import SmartRegionError
from smartregion.governance import Governance, GovernanceStore, Principal, WriteAccess
from smartregion.ingestion.timeseries import (
    FORMATS,
    ImportReport,
    ImportStopped,
    TimeseriesImporter,
    read_rows,
)
from smartregion.settings import Settings

import_app = typer.Typer(help="Bulk imports.", no_args_is_help=True)


def _format_of(path: Path, fmt: str | None) -> str:
    if fmt is not None:
        if fmt not in FORMATS:
            raise typer.BadParameter(f"--format must be one of {', '.join(FORMATS)}")
        return fmt
    suffix = path.suffix.lower()
    if suffix in (".ndjson", ".jsonl"):
        return "ndjson"
    if suffix in (".csv",):
        return "csv"
    raise typer.BadParameter(f"cannot tell the format of {path.name}: give --format ndjson|csv")


async def _writer(runtime: Runtime, org: str) -> WriteAccess:
    """What `org` may write: its own entities and those of the owners that mandated it."""
    store = runtime.store
    if not isinstance(store, GovernanceStore):
        return WriteAccess(org)
    return await Governance(store).write_access(Principal(org_id=org, role="editor"))


async def run_import(
    settings: Settings,
    path: Path,
    fmt: str,
    *,
    tenant: str,
    org: str,
    batch: int,
    skip: int,
    dry_run: bool,
    context: str | None,
    default_type: str | None,
    console: Console,
) -> ImportReport:
    """Open the store and import the file (with a progress bar on `console`)."""
    runtime = Runtime.build(settings)
    await runtime.start()
    # an import makes a few containers a row that live until their batch is written: with the
    # default thresholds the collector would scan them, and the whole heap of the started app,
    # many times a batch (a third of the reading time); the app's objects are frozen instead
    # and the young generation collected every 100,000 allocations
    thresholds = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(100_000, 50, 100)
    try:
        vocab = await runtime.broker.contexts.term_map(context, tenant=tenant)
        writer = await _writer(runtime, org)
        importer = TimeseriesImporter(runtime.broker, writer, tenant=tenant, batch=batch)
        size = path.stat().st_size
        with (
            path.open("rb") as stream,
            Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                TaskProgressColumn(),
                TextColumn("{task.fields[rows]:,} rows · {task.fields[rate]:,.0f} rows/s"),
                TimeElapsedColumn(),
                console=console,
                transient=False,
            ) as bar,
        ):
            rows, position = read_rows(stream, fmt, vocab, default_type=default_type)
            task = bar.add_task("checking" if dry_run else "importing", total=size, rows=0, rate=0)
            started = time.perf_counter()

            def progress(report: ImportReport) -> None:
                rate = report.rows / max(time.perf_counter() - started, 1e-9)
                bar.update(task, completed=position(), rows=report.rows, rate=rate)

            report = await importer.run(rows, skip=skip, dry_run=dry_run, progress=progress)
            bar.update(task, completed=size)
            return report
    finally:
        gc.set_threshold(*thresholds)
        gc.unfreeze()
        await runtime.stop()


@import_app.command("timeseries")
def timeseries(
    file: Annotated[
        Path,
        typer.Argument(
            help="NDJSON or CSV file of attribute instances.", exists=True, dir_okay=False
        ),
    ],
    database: Annotated[
        str | None,
        typer.Option(
            "--database",
            help="Database URL (default sqlite:///./smartregion.db; env SMARTREGION_DATABASE_URL).",
        ),
    ] = None,
    tenant: Annotated[str, typer.Option("--tenant", help="NGSI-LD tenant to write to.")] = "",
    org: Annotated[
        str | None,
        typer.Option("--org", help="Organisation writing (default: setting default_org)."),
    ] = None,
    fmt: Annotated[
        str | None, typer.Option("--format", help="ndjson or csv (default: from the extension).")
    ] = None,
    batch: Annotated[
        int, typer.Option("--batch", min=1, help="Rows per batch (each all or nothing).")
    ] = 10_000,
    skip: Annotated[
        int, typer.Option("--skip", min=0, help="Skip the first N data rows (resume).")
    ] = 0,
    entity_type: Annotated[
        str | None,
        typer.Option(
            "--type", help="Type of entities to create when missing (else a type column)."
        ),
    ] = None,
    context: Annotated[
        str | None,
        typer.Option(
            "--context", help="@context URL expanding attribute and type names (default: core)."
        ),
    ] = None,
    dry_run: Annotated[
        bool,
        typer.Option("--dry-run", help="Check the whole file and the entities; write nothing."),
    ] = False,
    config: Annotated[str | None, typer.Option(help="TOML config file.")] = None,
) -> None:
    """Load historical attribute values (entity, attribute, observedAt, value, unit[, datasetId])."""
    settings = Settings.load({"database_url": database}, config_file=config)
    chosen = _format_of(file, fmt)
    console = Console(stderr=True)
    try:
        report = asyncio.run(
            run_import(
                settings,
                file,
                chosen,
                tenant=tenant,
                org=org or settings.default_org,
                batch=batch,
                skip=skip,
                dry_run=dry_run,
                context=context,
                default_type=entity_type,
                console=console,
            )
        )
    except ImportStopped as exc:
        typer.echo(f"error: {exc.detail}", err=True)
        if dry_run:
            typer.echo("dry run: nothing was written", err=True)
        elif exc.rows:
            typer.echo(
                f"committed: the first {exc.rows:,} data rows (up to line {exc.last_line});"
                f" nothing of the failing batch. Resume with --skip {exc.rows}",
                err=True,
            )
        else:
            typer.echo("nothing was written", err=True)
        raise typer.Exit(1) from None
    except SmartRegionError as exc:
        typer.echo(f"error: {exc.detail}", err=True)
        raise typer.Exit(1) from None
    verb = "checked" if dry_run else "imported"
    typer.echo(
        f"{verb} {report.rows:,} rows in {report.batches:,} batches"
        f" ({report.created:,} entities {'to create' if dry_run else 'created'};"
        f" skipped {report.skipped:,}; last line {report.last_line})"
    )
