"""The hub API tests' environment: an app with a few organisations and keys (in process)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import psycopg

from smartregion.app import create_app
from smartregion.governance import Governance, Principal
from smartregion.hub import Hub
from smartregion.settings import Settings


@dataclass
class Env:
    client: httpx.AsyncClient
    gov: Governance
    hub: Hub
    keys: dict[str, str]

    def auth(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[who]}"}


#: (org id, name, kind, NIS code, [(key name, role)])
ORGS = [
    ("platform", "Platform", "region", None, [("platform", "admin")]),
    (
        "ghent",
        "Stad Gent",
        "municipality",
        "44021",
        [("ghent", "editor"), ("ghent-reader", "reader")],
    ),
    ("leuven", "Stad Leuven", "municipality", "24062", [("leuven", "editor")]),
    ("acme", "Acme BV", "company", None, [("acme", "editor")]),
    ("uni", "Universiteit", "knowledge_institution", None, [("uni", "admin")]),
]


def empty_postgres(url: str) -> None:
    """Empty what these tests write in the (shared, session-wide) test database: governance
    records, the audit chain and the hub's tables (other tables keep their set-up rows)."""
    with psycopg.connect(url, autocommit=True) as conn:
        names = [
            r[0]
            for r in conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND (tablename LIKE 'gov\\_%'"
                " OR tablename LIKE 'hub\\_%' OR tablename IN ('audit_log', 'audit_head'))"
            ).fetchall()
        ]
        if names:
            conn.execute("TRUNCATE " + ", ".join(f'"{n}"' for n in names) + " RESTART IDENTITY")


async def make_env(database_url: str) -> AsyncIterator[Env]:
    """The app on `database_url` with ORGS and their keys."""
    app = create_app(Settings(database_url=database_url))
    async with app.router.lifespan_context(app):
        gov: Governance = app.state.governance
        hub: Hub = app.state.hub
        op = Principal.cli()
        keys: dict[str, str] = {}
        for org, name, kind, nis, roles in ORGS:
            await gov.create_organisation(op, org, name, kind, nis=nis)
            for key_name, role in roles:
                keys[key_name] = (await gov.create_api_key(op, org, role=role)).key
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver/api/v1") as c:
            yield Env(c, gov, hub, keys)
