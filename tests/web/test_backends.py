"""The portal's access flow on both storage backends (SQLite and PostgreSQL)."""

from __future__ import annotations

import re
import secrets
from pathlib import Path

import httpx
import pytest

from smartregion.app import create_app
from smartregion.governance import Governance, Principal, WriteAccess
from smartregion.settings import Settings
from tests.web.conftest import SECRET, form_token, sign_in

pytestmark = pytest.mark.anyio
OP = Principal.cli()
CORE = "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.9.jsonld"


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/backends.db"
    url: str = request.getfixturevalue("postgres_url")
    return url


async def test_request_grant_read(database_url: str, tmp_path: Path) -> None:
    s = secrets.token_hex(3)
    owner, reader, kind = f"owner-{s}", f"reader-{s}", f"Gauge{s}"
    app = create_app(
        Settings(
            database_url=database_url,
            secret_key=SECRET,
            default_org=owner,
            secret_key_file=str(tmp_path / "secret"),
        )
    )
    async with app.router.lifespan_context(app):
        gov: Governance = app.state.governance
        for org in (owner, reader):
            if await gov.store.get_organisation(org) is None:
                await gov.create_organisation(OP, org, org.title(), "company")
        for person, org, role in ((f"own{s}", owner, "admin"), (f"read{s}", reader, "editor")):
            await gov.create_person(OP, person, f"{person}@example.org", person, "a long password!")
            await gov.set_membership(OP, person, org, role)
        await gov.create_dataset(
            OP, f"gauges-{s}", owner, {"en": f"Gauges {s}"}, [kind], policy="restricted"
        )
        broker = app.state.broker
        vocab = await broker.contexts.term_map(CORE)
        await broker.batch.upsert(
            "",
            [
                {
                    "id": f"urn:ngsi-ld:{kind}:1",
                    "type": kind,
                    "name": {"type": "Property", "value": f"Gauge one {s}"},
                    "level": {
                        "type": "Property",
                        "value": 1.5,
                        "observedAt": "2026-11-01T10:00:00Z",
                    },
                    "location": {
                        "type": "GeoProperty",
                        "value": {"type": "Point", "coordinates": [4.4, 51.2]},
                    },
                }
            ],
            vocab,
            writer=WriteAccess(owner),
            mode="update",
        )

        transport = httpx.ASGITransport(app=app)
        async with (
            httpx.AsyncClient(transport=transport, base_url="http://t") as them,
            httpx.AsyncClient(transport=transport, base_url="http://t") as us,
        ):
            await sign_in(them, (f"read{s}@example.org", "a long password!"))
            page = await them.get(f"/datasets/gauges-{s}?lang=en")
            assert "Request access" in page.text and f"Gauge one {s}" not in page.text
            r = await them.post(
                f"/datasets/gauges-{s}/access",
                data={"purpose": "planning", "csrf_token": form_token(page.text)},
            )
            assert r.status_code == 303
            assert (
                await sign_in(us, (f"own{s}@example.org", "a long password!"))
            ).status_code == 303
            inbox = await us.get("/admin")
            action = re.search(r'action="(/admin/requests/[^"]+/approve)"', inbox.text)
            assert action
            assert (
                await us.post(action.group(1), data={"csrf_token": form_token(inbox.text)})
            ).status_code == 303
            page = await them.get(f"/datasets/gauges-{s}")
            assert f"Gauge one {s}" in page.text
            r = await them.get(f"/datasets/gauges-{s}/download.geojson")
            assert [f["id"] for f in r.json()["features"]] == [f"urn:ngsi-ld:{kind}:1"]
