"""`smartregion admin …` and `smartregion audit …`: governance from the command line.

Thin over `smartregion.governance.Governance`, acting as the local operator (`Principal.cli()`),
which is how the first organisation and its first admin key are bootstrapped. Each command
applies pending migrations first, so it works on a fresh database.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Annotated, TypeVar

import orjson
import typer

from smartregion.errors import SmartRegionError
from smartregion.governance import Governance, GovernanceStore, IssuedApiKey, Principal, parse_time
from smartregion.settings import Settings

T = TypeVar("T")

admin_app = typer.Typer(help="Organisations, API keys and data sets.", no_args_is_help=True)
audit_app = typer.Typer(help="The tamper-evident audit log.", no_args_is_help=True)

DatabaseOpt = Annotated[
    str | None,
    typer.Option(
        "--database",
        help="Database URL (default sqlite:///./smartregion.db; env SMARTREGION_DATABASE_URL).",
    ),
]


def _run(database: str | None, action: Callable[[Governance], Awaitable[T]]) -> T:
    """Open the store, migrate, run `action`; a domain error becomes a message and exit 1."""
    from smartregion.storage import open_store

    settings = Settings.load({"database_url": database})

    async def run() -> T:
        store = open_store(settings.database_url)
        if not isinstance(store, GovernanceStore):
            raise typer.BadParameter("this database backend keeps no governance records")
        await store.open()
        try:
            await store.migrate()
            return await action(Governance(store))
        finally:
            await store.close()

    try:
        return asyncio.run(run())
    except SmartRegionError as exc:
        typer.echo(f"error: {exc.detail}", err=True)
        raise typer.Exit(1) from None


@admin_app.command("create-org")
def create_org(
    org_id: Annotated[
        str, typer.Option("--id", help="Organisation id (lower-case, digits, . _ -).")
    ],
    name: Annotated[str, typer.Option(help="Display name.")],
    kind: Annotated[
        str,
        typer.Option(
            help="municipality, province, region, company, knowledge_institution or citizens_organisation."
        ),
    ],
    kbo: Annotated[str | None, typer.Option(help="KBO enterprise number (checked).")] = None,
    nis: Annotated[str | None, typer.Option(help="NIS code (municipalities, provinces).")] = None,
    database: DatabaseOpt = None,
) -> None:
    """Register an organisation (the first one becomes the platform organisation)."""
    org = _run(
        database,
        lambda g: g.create_organisation(Principal.cli(), org_id, name, kind, kbo=kbo, nis=nis),
    )
    typer.echo(f"created organisation {org.id} ({org.kind})")


@admin_app.command("create-key")
def create_key(
    org: Annotated[str, typer.Option(help="Organisation the key acts for.")],
    role: Annotated[str, typer.Option(help="reader, editor or admin.")] = "editor",
    expires: Annotated[
        str | None,
        typer.Option(help="Expiry, ISO 8601 with an offset (e.g. 2027-01-01T00:00:00Z)."),
    ] = None,
    label: Annotated[str, typer.Option(help="What the key is for.")] = "",
    database: DatabaseOpt = None,
) -> None:
    """Issue an API key and print it: it is shown this once and never stored."""

    async def action(g: Governance) -> IssuedApiKey:
        expires_at = parse_time(expires) if expires else None
        return await g.create_api_key(
            Principal.cli(), org, role=role, expires_at=expires_at, label=label
        )

    issued = _run(database, action)
    typer.echo(f"key id: {issued.record.id} (organisation {org}, role {role})", err=True)
    typer.echo(issued.key)


@admin_app.command("revoke-key")
def revoke_key(
    key_id: Annotated[str, typer.Argument(help="The key id (printed when the key was created).")],
    database: DatabaseOpt = None,
) -> None:
    """Revoke an API key: refused from the very next request on."""
    record = _run(database, lambda g: g.revoke_api_key(Principal.cli(), key_id))
    typer.echo(f"revoked key {record.id} at {record.revoked_at}")


@admin_app.command("create-dataset")
def create_dataset(
    dataset_id: Annotated[str, typer.Option("--id", help="Data set id.")],
    owner: Annotated[str, typer.Option(help="Owner organisation id.")],
    title: Annotated[str, typer.Option(help="Title (Dutch).")],
    entity_types: Annotated[str, typer.Option(help="Comma-separated entity types (T1,T2).")],
    policy: Annotated[str, typer.Option(help="open, restricted or private.")] = "private",
    license: Annotated[
        str | None, typer.Option(help="Licence URI (open default: CC BY 4.0).")
    ] = None,
    theme: Annotated[
        str | None,
        typer.Option(help="mobility, environment, living, people, government or economy."),
    ] = None,
    description: Annotated[str | None, typer.Option(help="Description (Dutch).")] = None,
    scope: Annotated[str | None, typer.Option(help="NGSI-LD scope, e.g. /Flanders/Ghent.")] = None,
    retention_days: Annotated[
        int | None,
        typer.Option(
            "--retention-days",
            min=0,
            help="Days of attribute history kept (default: setting history_retention_days; 0: forever).",
        ),
    ] = None,
    rollup_retention_days: Annotated[
        int | None,
        typer.Option(
            "--rollup-retention-days",
            min=0,
            help="Days roll-ups are kept, at least --retention-days (0: as long as the raw history).",
        ),
    ] = None,
    privacy: Annotated[
        str | None,
        typer.Option(
            help='Attribute classes and open-view rules as JSON, e.g. \'{"personal": ["ownerName"], "counts": ["peopleCount"], "k": 5, "coarsenTime": 3600, "coarsenPlace": 500}\'.'
        ),
    ] = None,
    database: DatabaseOpt = None,
) -> None:
    """Describe a data set of an organisation, with its access policy."""
    types = [t for t in entity_types.split(",") if t.strip()]
    try:
        rules = orjson.loads(privacy) if privacy is not None else None
    except orjson.JSONDecodeError as exc:
        raise typer.BadParameter(f"--privacy is not JSON: {exc}") from None
    dataset = _run(
        database,
        lambda g: g.create_dataset(
            Principal.cli(),
            dataset_id,
            owner,
            title,
            types,
            description=description,
            scope=scope,
            theme=theme,
            license=license,
            policy=policy,
            retention_days=retention_days,
            rollup_retention_days=rollup_retention_days,
            privacy=rules,
        ),
    )
    typer.echo(f"created data set {dataset.id} ({dataset.policy_kind}) of {dataset.owner_org}")


@audit_app.command("verify")
def verify(database: DatabaseOpt = None) -> None:
    """Check the audit chain; exit 1 and list the problems when any row was altered or deleted."""
    count, problems = _run(database, lambda g: g.verify_audit())
    if problems:
        for problem in problems:
            typer.echo(problem, err=True)
        typer.echo(f"audit log TAMPERED: {len(problems)} problem(s) in {count} records", err=True)
        raise typer.Exit(1)
    typer.echo(f"audit log intact: {count} records")
