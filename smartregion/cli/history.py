"""`smartregion history …`: attribute history maintenance (docs/operations.md, Retention)."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer

from smartregion.app import Runtime
from smartregion.broker.retention import PurgeReport
from smartregion.errors import SmartRegionError
from smartregion.settings import Settings
from smartregion.storage.history import now_micros

history_app = typer.Typer(help="Attribute history.", no_args_is_help=True)


async def run_purge(settings: Settings, *, tenants: list[str] | None, dry_run: bool) -> PurgeReport:
    """Open the store and purge (or plan) once, holding the job lock."""
    runtime = Runtime.build(settings)
    await runtime.start()
    try:
        return await runtime.retention(settings).purge_exclusive(tenants=tenants, dry_run=dry_run)
    finally:
        await runtime.stop()


@history_app.command("purge")
def purge(
    database: Annotated[
        str | None,
        typer.Option(
            "--database",
            help="Database URL (default sqlite:///./smartregion.db; env SMARTREGION_DATABASE_URL).",
        ),
    ] = None,
    tenant: Annotated[
        list[str] | None,
        typer.Option("--tenant", help="Only this tenant's series (repeatable; default: all)."),
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show what would be purged.")] = False,
    config: Annotated[str | None, typer.Option(help="TOML config file.")] = None,
) -> None:
    """Remove attribute instances older than their retention (per data set, else the default)."""
    settings = Settings.load({"database_url": database}, config_file=config)
    now = now_micros()
    try:
        report = asyncio.run(run_purge(settings, tenants=tenant or None, dry_run=dry_run))
    except SmartRegionError as exc:
        typer.echo(f"error: {exc.detail}", err=True)
        raise typer.Exit(1) from None
    if report.skipped:
        typer.echo("another process is purging this database: nothing done", err=True)
        raise typer.Exit(2)
    if not report.groups:
        typer.echo("nothing to purge: every series is kept forever")
        return
    for line in report.describe(now):
        typer.echo(("would purge " if dry_run else "purged ") + line)
    if not dry_run:
        typer.echo(f"{report.instances:,} instances removed")
