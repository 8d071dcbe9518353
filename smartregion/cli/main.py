"""The `smartregion` command: operator commands, thin over the services."""

from __future__ import annotations

import asyncio
import logging
import os
from typing import Annotated

import typer

from smartregion.cli.admin import admin_app, audit_app
from smartregion.cli.history import history_app
from smartregion.cli.importer import import_app
from smartregion.cli.ldes import ldes_app
from smartregion.cli.mqtt import mqtt_app
from smartregion.cli.simulate import simulate
from smartregion.settings import ENV_PREFIX, Settings

app = typer.Typer(help="smartregion: NGSI-LD data space and ecosystem hub.", no_args_is_help=True)
db_app = typer.Typer(help="Database commands.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(admin_app, name="admin")
app.add_typer(audit_app, name="audit")
app.add_typer(mqtt_app, name="mqtt")
app.add_typer(import_app, name="import")
app.add_typer(history_app, name="history")
app.add_typer(ldes_app, name="ldes")
app.command("simulate")(simulate)

DatabaseOpt = Annotated[
    str | None,
    typer.Option(
        "--database",
        help="Database URL (default sqlite:///./smartregion.db; env SMARTREGION_DATABASE_URL).",
    ),
]


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Interface to listen on.")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on.")] = None,
    database: DatabaseOpt = None,
    demo: Annotated[bool, typer.Option("--demo", help="Load demo content.")] = False,
    anonymous_writes: Annotated[
        bool, typer.Option("--anonymous-writes", help="Let unauthenticated clients write.")
    ] = False,
    workers: Annotated[int | None, typer.Option(help="Number of worker processes.")] = None,
    log_level: Annotated[str | None, typer.Option(help="debug, info, warning or error.")] = None,
    access_log: Annotated[
        bool | None, typer.Option("--access-log/--no-access-log", help="Log every request.")
    ] = None,
    config: Annotated[str | None, typer.Option(help="TOML config file.")] = None,
) -> None:
    """Run the HTTP server (NGSI-LD API at /ngsi-ld/v1, health at /healthz)."""
    import uvicorn

    overrides = {
        "host": host,
        "port": port,
        "database_url": database,
        "demo": demo or None,
        "anonymous_writes": anonymous_writes or None,
        "workers": workers,
        "log_level": log_level,
        "access_log": access_log,
    }
    settings = Settings.load(overrides, config_file=config)
    if settings.workers > 1:
        # Worker processes rebuild the settings from the environment (uvicorn factory).
        for key, value in settings.as_dict().items():
            os.environ[ENV_PREFIX + key.upper()] = str(value)
        uvicorn.run(
            "smartregion.app:create_app",
            factory=True,
            host=settings.host,
            port=settings.port,
            workers=settings.workers,
            log_level=settings.log_level,
            access_log=logs_access(settings),
            # the client address is decided by smartregion's `trusted_proxies`, not uvicorn
            proxy_headers=False,
        )
        return
    from smartregion.app import create_app

    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        access_log=logs_access(settings),
        proxy_headers=False,
    )


def logs_access(settings: Settings) -> bool:
    """Whether the server writes access-log lines: asked for, and at a level that shows them.

    uvicorn logs each request at INFO and works out the line's parts (client address, quoted
    path) before the logger's level check; at `warning` or `error` that work would be thrown
    away on every request (about 2 % of a PATCH's CPU, docs/benchmarks.md)."""
    from uvicorn.config import LOG_LEVELS  # (uvicorn's names: trace, debug, … critical)

    level = LOG_LEVELS.get(settings.log_level.lower(), logging.NOTSET)
    return settings.access_log and level <= logging.INFO


@db_app.command("migrate")
def migrate(database: DatabaseOpt = None) -> None:
    """Apply pending database migrations."""
    from smartregion.storage import open_store

    settings = Settings.load({"database_url": database})

    async def run() -> list[str]:
        store = open_store(settings.database_url)
        await store.open()
        try:
            return await store.migrate()
        finally:
            await store.close()

    applied = asyncio.run(run())
    if applied:
        for name in applied:
            typer.echo(f"applied {name}")
    else:
        typer.echo("database is up to date")


def main() -> None:
    """Console-script entry point."""
    app()
