"""`smartregion ldes replicate URL --dataset ID`: replicate a Linked Data Event Stream
(docs/ldes.md, "Replicating other streams")."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from smartregion.app import Runtime
from smartregion.errors import SmartRegionError
from smartregion.governance import Governance, GovernanceStore, Principal
from smartregion.ldes.fetching import PageFetcher
from smartregion.ldes.replication import ReplicationReport, Replicator
from smartregion.settings import Settings
from smartregion.storage.replication import ReplicationStore

ldes_app = typer.Typer(help="Linked Data Event Streams.", no_args_is_help=True)

DatabaseOpt = Annotated[
    str | None,
    typer.Option(
        "--database",
        help="Database URL (default sqlite:///./smartregion.db; env SMARTREGION_DATABASE_URL).",
    ),
]


def _summary(report: ReplicationReport) -> str:
    return (
        f"{report.pages:,} pages read ({report.not_modified:,} unchanged, {report.gone:,} gone,"
        f" {report.failed:,} failed, {report.pruned:,} pruned); {report.written:,} members written"
        f" ({report.rejected:,} rejected), {report.duplicates:,} duplicates skipped,"
        f" {report.before_since:,} before --since; {report.instances:,} history instances;"
        f" {report.rate:,.0f} members/s"
    )


async def run_replication(
    settings: Settings,
    url: str,
    *,
    dataset_id: str,
    tenant: str,
    follow: bool,
    since: str | None,
    entity_type: str | None,
    poll_interval: float,
    console: Console,
    stop: asyncio.Event | None = None,
    take_over: bool = False,
    lease_seconds: float = 60.0,
) -> ReplicationReport:
    """Open the store and replicate `url` into the data set (with a progress display)."""
    runtime = Runtime.build(settings)
    await runtime.start()
    fetcher = PageFetcher()
    try:
        store = runtime.store
        if not isinstance(store, GovernanceStore) or not isinstance(store, ReplicationStore):
            raise typer.BadParameter(f"{type(store).__name__} cannot hold replications")
        governance = Governance(store)
        dataset = await governance.get_dataset(dataset_id)
        writer = await governance.write_access(Principal(org_id=dataset.owner_org, role="editor"))
        vocab = await runtime.broker.contexts.term_map(None, tenant=tenant)
        with Progress(
            SpinnerColumn(),
            TextColumn("[bold]{task.description}"),
            TextColumn(
                "{task.fields[pages]:,} pages · {task.fields[written]:,} members"
                " · {task.fields[duplicates]:,} duplicates · {task.fields[rate]:,.0f} members/s"
            ),
            TimeElapsedColumn(),
            console=console,
            transient=False,
        ) as bar:
            task = bar.add_task("replicating", pages=0, written=0, duplicates=0, rate=0)

            def progress(report: ReplicationReport) -> None:
                bar.update(
                    task,
                    pages=report.pages + report.not_modified,
                    written=report.written,
                    duplicates=report.duplicates,
                    rate=report.rate,
                )

            replicator = Replicator(
                runtime.broker,
                fetcher,
                dataset,
                writer,
                vocab,
                source=url,
                tenant=tenant,
                default_type=vocab.expand_term(entity_type) if entity_type else None,
                since=since,
                poll_interval=poll_interval,
                lease_seconds=lease_seconds,
                progress=progress,
            )
            return await replicator.run(follow=follow, stop=stop, take_over=take_over)
    finally:
        await fetcher.aclose()
        await runtime.stop()


@ldes_app.command("replicate")
def replicate(
    url: Annotated[str, typer.Argument(help="The event stream, a view or a page (http(s) URL).")],
    dataset: Annotated[
        str, typer.Option("--dataset", help="Data set to write into (its owner writes).")
    ],
    follow: Annotated[
        bool,
        typer.Option("--follow", help="Keep polling mutable pages for new members (Ctrl-C stops)."),
    ] = False,
    since: Annotated[
        str | None, typer.Option("--since", help="Only members from this time on (ISO 8601).")
    ] = None,
    entity_type: Annotated[
        str | None,
        typer.Option(
            "--type",
            help="Type of new entities whose member states none (default: the data set's type, if it has one only).",
        ),
    ] = None,
    poll_interval: Annotated[
        float,
        typer.Option(
            "--poll-interval",
            min=0.1,
            help="Seconds between polls of a mutable page without max-age.",
        ),
    ] = 60.0,
    tenant: Annotated[str, typer.Option("--tenant", help="NGSI-LD tenant to write to.")] = "",
    take_over: Annotated[
        bool,
        typer.Option(
            "--take-over",
            help="Take over from a replicating client that died (its lease still runs).",
        ),
    ] = False,
    lease_seconds: Annotated[
        float,
        typer.Option(
            "--lease",
            min=1.0,
            help="Seconds a client's claim on the replication lasts unless renewed.",
        ),
    ] = 60.0,
    database: DatabaseOpt = None,
    config: Annotated[str | None, typer.Option(help="TOML config file.")] = None,
) -> None:
    """Replicate an LDES into a data set: every member once, resumable, optionally following."""
    if not url.startswith(("http://", "https://")):
        raise typer.BadParameter("the stream URL must be an http(s) URL")
    if since is not None:
        from smartregion.storage.rollups import micros

        try:
            micros(since)
        except (ValueError, SmartRegionError):
            raise typer.BadParameter(f"--since {since!r} is not an ISO 8601 date-time") from None
    settings = Settings.load({"database_url": database}, config_file=config)
    console = Console(stderr=True)

    async def main() -> ReplicationReport:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, stop.set)
        return await run_replication(
            settings,
            url,
            dataset_id=dataset,
            tenant=tenant,
            follow=follow,
            since=since,
            entity_type=entity_type,
            poll_interval=poll_interval,
            console=console,
            stop=stop,
            take_over=take_over,
            lease_seconds=lease_seconds,
        )

    try:
        report = asyncio.run(main())
    except SmartRegionError as exc:
        typer.echo(f"error: {exc.detail}", err=True)
        raise typer.Exit(1) from None
    for line in report.errors[:20]:
        typer.echo(f"warning: {line}", err=True)
    typer.echo(_summary(report))
    if report.failed:
        typer.echo(f"{report.failed:,} pages failed: run again to retry them", err=True)
        raise typer.Exit(1)


@ldes_app.command("replications")
def replications(
    database: DatabaseOpt = None,
    config: Annotated[str | None, typer.Option(help="TOML config file.")] = None,
) -> None:
    """List the replications of this database and how far each has come."""
    settings = Settings.load({"database_url": database}, config_file=config)

    async def run() -> list[str]:
        runtime = Runtime.build(settings)
        await runtime.start()
        try:
            store = runtime.store
            if not isinstance(store, ReplicationStore):
                return []
            lines = []
            for r in await store.replications():
                pages = r.state.get("pages", {})
                open_pages = sum(1 for p in pages.values() if p.get("status") in ("new", "mutable"))
                lines.append(
                    f"{r.dataset_id}\t{r.tenant or '-'}\t{r.source}\t{r.members:,} members"
                    f"\t{len(pages):,} pages ({open_pages:,} to poll)\tupdated {r.updated_at}"
                )
            return lines
        finally:
            await runtime.stop()

    for line in asyncio.run(run()):
        typer.echo(line)
