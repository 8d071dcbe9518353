"""The use-case pages and the endorse form on both storage backends (SQLite and PostgreSQL)."""

from __future__ import annotations

import re
import secrets
from pathlib import Path

import httpx
import pytest

from smartregion.app import create_app
from smartregion.governance import Governance, Principal
from smartregion.hub.objects import Hub
from smartregion.settings import Settings
from tests.web.conftest import SECRET, form_token, sign_in
from tests.web.test_backends import database_url  # noqa: F401 - the fixture, both backends
from tests.web.test_pages import text_of

pytestmark = pytest.mark.anyio
OP = Principal.cli()


async def test_library_and_endorsing(database_url: str, tmp_path: Path) -> None:  # noqa: F811
    s = secrets.token_hex(3)
    town, firm, usecase = f"town-{s}", f"firm-{s}", f"meetnet-{s}"
    app = create_app(
        Settings(
            database_url=database_url,
            secret_key=SECRET,
            default_org=f"platform-{s}",
            secret_key_file=str(tmp_path / "secret"),
        )
    )
    async with app.router.lifespan_context(app):
        gov: Governance = app.state.governance
        hub: Hub = app.state.hub
        await gov.create_organisation(OP, town, f"Town {s}", "municipality")
        await gov.create_organisation(OP, firm, f"Firm {s}", "company")
        for person, org in ((f"ed{s}", town), (f"co{s}", firm)):
            await gov.create_person(OP, person, f"{person}@example.org", person, "a long password!")
            await gov.set_membership(OP, person, org, "editor")
        await hub.create(
            OP,
            "usecase",
            {
                "title": {"nl": f"Meetnet {s} voor fijnstof", "en": f"Particulate network {s}"},
                "summary": {"en": "Citizens measure the air."},
                "maturity": "pilot",
                "terms": ["domain:environment.air", "nis:44021"],
            },
            object_id=usecase,
            owner=town,
        )

        transport = httpx.ASGITransport(app=app)
        async with (
            httpx.AsyncClient(transport=transport, base_url="http://t") as editor,
            httpx.AsyncClient(transport=transport, base_url="http://t") as company,
        ):
            # the library finds it by facet (a broader term) and by a word of its Dutch title
            for query in (
                "term=nis:40000",
                f"q=meetnet {s}",
                "term=domain:environment&status=pilot",
            ):
                page = await editor.get(f"/use-cases?lang=en&{query}")
                assert f"Particulate network {s}" in page.text, query
            await sign_in(editor, (f"ed{s}@example.org", "a long password!"))
            page = await editor.get(f"/use-cases/{usecase}?lang=en")
            assert f"Endorse on behalf of Town {s}" in page.text
            r = await editor.post(
                f"/use-cases/{usecase}/endorse", data={"csrf_token": form_token(page.text)}
            )
            assert r.status_code == 303
            text = text_of((await editor.get(f"/use-cases/{usecase}?lang=en")).text)
            assert re.search(rf"1 local government vouches for this use case: Town {s}", text)
            r = await editor.post(
                f"/use-cases/{usecase}/endorse", data={"csrf_token": form_token(page.text)}
            )
            assert r.status_code == 409
            # a company's editor may not endorse; nothing changes
            await sign_in(company, (f"co{s}@example.org", "a long password!"))
            page = await company.get(f"/use-cases/{usecase}?lang=en")
            assert "Only editors of a municipality or province can endorse use cases." in page.text
            r = await company.post(
                f"/use-cases/{usecase}/endorse", data={"csrf_token": form_token(page.text)}
            )
            assert r.status_code == 403
            assert [e.org_id for e in await hub.store.list_endorsements(usecase)] == [town]
