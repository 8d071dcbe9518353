"""Follows, "not relevant" feedback, digests over SMTP (a local aiosmtpd server), the job."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email import message_from_bytes
from email.message import Message
from email.policy import default
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiosmtpd.controller import Controller
from hub_env import Env

from benchmarks.servers import free_port
from smartregion.app import create_app
from smartregion.errors import BadRequestData
from smartregion.governance import Forbidden, Principal
from smartregion.hub.digests import Digest, SmtpMailer, send_due
from smartregion.hub.follows import Follows
from smartregion.hub.matchmaking import Matchmaking
from smartregion.settings import Settings

pytestmark = pytest.mark.anyio


class Inbox:
    """An aiosmtpd handler keeping what it receives."""

    def __init__(self) -> None:
        self.messages: list[Message] = []
        self.recipients: list[list[str]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(message_from_bytes(envelope.content, policy=default))
        self.recipients.append(list(envelope.rcpt_tos))
        return "250 OK"


@pytest.fixture
def smtp() -> Iterator[tuple[Inbox, int]]:
    inbox = Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield inbox, port
    finally:
        controller.stop()


def uc(object_id: str, terms: list[str], title: str | None = None) -> dict[str, Any]:
    return {
        "id": object_id,
        "title": {"nl": title or object_id, "en": f"{title or object_id} (en)"},
        "maturity": "pilot",
        "terms": terms,
    }


async def test_members_follow_and_only_their_organisation_sees_it(env: Env) -> None:
    c = env.client
    body = {"target": "domain:mobility", "email": "lies@gent.be", "frequency": "daily"}
    r = await c.post("/follows", json=body, headers=env.auth("ghent-reader"))
    assert r.status_code == 201, r.text
    follow = r.json()
    assert follow["org_id"] == "ghent" and follow["last_sent_at"] == "" and follow["lang"] == "nl"
    assert [f["id"] for f in (await c.get("/follows", headers=env.auth("ghent"))).json()] == [
        follow["id"]
    ]
    assert (await c.get("/follows", headers=env.auth("leuven"))).json() == []
    assert (await c.get(f"/follows/{follow['id']}", headers=env.auth("leuven"))).status_code == 403
    assert (
        await c.get(f"/follows/{follow['id']}", headers=env.auth("platform"))
    ).status_code == 200
    assert (await c.post("/follows", json=body)).status_code == 401
    for bad in (
        {**body, "target": "sdg:99"},
        {**body, "target": "no-such-object"},
        {**body, "email": "nobody"},
        {**body, "frequency": "hourly"},
        {**body, "kinds": ["cat"]},
    ):
        assert (await c.post("/follows", json=bad, headers=env.auth("ghent"))).status_code == 400, (
            bad
        )
    assert (
        await c.delete(f"/follows/{follow['id']}", headers=env.auth("leuven"))
    ).status_code == 403
    assert (
        await c.delete(f"/follows/{follow['id']}", headers=env.auth("ghent"))
    ).status_code == 204
    assert (await c.get(f"/follows/{follow['id']}", headers=env.auth("ghent"))).status_code == 404


async def test_matches_narrower_terms_and_not_relevant_hides_for_good(env: Env) -> None:
    c = env.client
    r = await c.post(
        "/follows", json={"target": "nis:40000", "email": "a@b.be"}, headers=env.auth("ghent")
    )
    fid = r.json()["id"]
    for body in (
        uc("gent-a", ["nis:44021"]),
        uc("gent-b", ["nis:44021"]),
        uc("leuven-c", ["nis:24062"]),
    ):
        assert (
            await c.post("/use-cases", json=body, headers=env.auth("platform"))
        ).status_code == 201
    await c.post(
        "/challenges",
        headers=env.auth("ghent"),
        json={
            "id": "ch",
            "title": {"nl": "ch"},
            "problem": {"nl": "p"},
            "status": "open",
            "terms": ["nis:44021"],
        },
    )
    found = (await c.get(f"/follows/{fid}/matches", headers=env.auth("ghent"))).json()
    assert sorted(m["id"] for m in found) == ["ch", "gent-a", "gent-b"]
    assert all(m["new"] for m in found)
    r = await c.post(
        f"/follows/{fid}/dismissals", json={"object_id": "gent-b"}, headers=env.auth("ghent")
    )
    assert r.status_code == 201 and [d["object_id"] for d in r.json()] == ["gent-b"]
    again = await c.post(
        f"/follows/{fid}/dismissals", json={"object_id": "gent-b"}, headers=env.auth("ghent")
    )
    assert again.status_code == 200
    assert (
        await c.post(
            f"/follows/{fid}/dismissals", json={"object_id": "nope-x"}, headers=env.auth("ghent")
        )
    ).status_code == 404
    found = (await c.get(f"/follows/{fid}/matches", headers=env.auth("ghent"))).json()
    assert sorted(m["id"] for m in found) == ["ch", "gent-a"]
    # the feedback is recorded in the audit chain
    assert "hub.follow.dismiss" in [r.action for r in await env.gov.store.audit_records()]


async def test_following_an_object_reports_it_and_what_links_to_it(env: Env) -> None:
    c = env.client
    await c.post("/use-cases", json=uc("parkeren", ["domain:mobility"]), headers=env.auth("ghent"))
    r = await c.post(
        "/follows", json={"target": "parkeren", "email": "a@b.be"}, headers=env.auth("leuven")
    )
    fid = r.json()["id"]
    assert (await c.get(f"/follows/{fid}/matches", headers=env.auth("leuven"))).json() == []
    await c.post(
        "/stories",
        headers=env.auth("ghent"),
        json={
            "id": "verhaal",
            "title": {"nl": "Verhaal"},
            "body": {"nl": "x"},
            "status": "published",
            "use_cases": ["parkeren"],
        },
    )
    changed = uc("parkeren", ["domain:mobility"], "Gewijzigd")
    del changed["id"]
    assert (
        await c.put("/use-cases/parkeren", json=changed, headers=env.auth("ghent"))
    ).status_code == 200
    found = {
        m["id"]: m
        for m in (await c.get(f"/follows/{fid}/matches", headers=env.auth("leuven"))).json()
    }
    assert set(found) == {"parkeren", "verhaal"}
    assert found["verhaal"]["new"] and not found["parkeren"]["new"]


async def test_digests_go_out_over_smtp_once_per_period(env: Env, smtp: tuple[Inbox, int]) -> None:
    inbox, port = smtp
    c = env.client
    r = await c.post(
        "/follows",
        json={"target": "domain:mobility", "email": "lies@gent.be", "lang": "en"},
        headers=env.auth("ghent"),
    )
    follow = r.json()
    for body in (
        uc("fietstellers", ["domain:mobility"], "Fietstellers"),
        uc("lucht", ["domain:environment"]),
    ):
        await c.post("/use-cases", json=body, headers=env.auth("leuven"))
    mailer = SmtpMailer("127.0.0.1", port, sender="hub@smartregion.test")
    created = datetime.fromisoformat(follow["created_at"].replace("Z", "+00:00"))

    # not due yet (weekly)
    assert (
        await send_due(
            env.hub, mailer, base_url="https://hub.test", now=created + timedelta(days=6)
        )
        == 0
    )
    assert inbox.messages == []
    week = created + timedelta(days=7, seconds=1)
    assert await send_due(env.hub, mailer, base_url="https://hub.test", now=week) == 1
    assert len(inbox.messages) == 1 and inbox.recipients == [["lies@gent.be"]]
    mail = inbox.messages[0]
    assert mail["From"] == "hub@smartregion.test" and mail["Auto-Submitted"] == "auto-generated"
    assert mail["Subject"] == "New about Mobility: 1 item(s)"
    text = mail.get_content()
    assert "Fietstellers (en) (new, leuven)" in text
    assert "https://hub.test/api/v1/use-cases/fietstellers" in text
    assert f"/api/v1/follows/{follow['id']}/dismissals" in text
    assert "lucht" not in text
    # the same period is not sent twice, even by a second process
    assert await send_due(env.hub, mailer, base_url="https://hub.test", now=week) == 0
    # a week later, with nothing new, nothing is sent
    assert (
        await send_due(env.hub, mailer, base_url="https://hub.test", now=week + timedelta(days=7))
        == 0
    )
    assert len(inbox.messages) == 1


async def test_a_failed_send_is_retried_at_the_next_run(env: Env) -> None:
    c = env.client
    r = await c.post(
        "/follows",
        json={"target": "domain:mobility", "email": "a@b.be", "frequency": "daily"},
        headers=env.auth("ghent"),
    )
    follow = r.json()
    await c.post("/use-cases", json=uc("fiets", ["domain:mobility"]), headers=env.auth("leuven"))
    later = datetime.fromisoformat(follow["created_at"].replace("Z", "+00:00")) + timedelta(days=2)

    class Down:
        async def send(self, digest: Digest) -> None:
            raise ConnectionRefusedError("smtp down")

    class Up:
        sent: list[Digest] = []

        async def send(self, digest: Digest) -> None:
            self.sent.append(digest)

    assert await send_due(env.hub, Down(), base_url="http://x", now=later) == 0
    assert (await env.hub.store.get_follow(follow["id"])).last_sent_at == ""  # type: ignore[union-attr]
    up = Up()
    assert await send_due(env.hub, up, base_url="http://x", now=later) == 1
    assert up.sent[0].subject.startswith("Nieuw over Mobiliteit")


async def test_a_digest_about_an_sdg_target_has_a_short_subject_and_the_full_text(env: Env) -> None:
    r = await env.client.post(
        "/follows",
        json={"target": "sdg:11.2", "email": "a@b.be", "frequency": "daily"},
        headers=env.auth("ghent"),
    )
    follow = r.json()
    await env.client.post("/use-cases", json=uc("bus", ["sdg:11.2"]), headers=env.auth("leuven"))
    later = datetime.fromisoformat(follow["created_at"].replace("Z", "+00:00")) + timedelta(days=2)

    class Up:
        sent: list[Digest] = []

        async def send(self, digest: Digest) -> None:
            self.sent.append(digest)

    up = Up()
    assert await send_due(env.hub, up, base_url="http://x", now=later) == 1
    subject = up.sent[0].subject
    assert subject.startswith("Nieuw over 11.2 Tegen 2030 toegang voorzien tot")
    assert "…: 1 item(s)" in subject and len(subject) < 90
    # the body names the whole target
    assert "personen met een handicap en ouderen" in up.sent[0].text


async def test_a_followed_challenge_reports_the_solutions_that_match_it(env: Env) -> None:
    c = env.client
    challenge = {
        "id": "school-air",
        "title": {"nl": "Luchtkwaliteit aan scholen meten"},
        "problem": {"nl": "We willen fijnstof meten aan de schoolpoort en ouders informeren."},
        "status": "open",
        "terms": ["domain:environment.air", "nis:44021"],
    }
    assert (
        await c.post("/challenges", json=challenge, headers=env.auth("ghent"))
    ).status_code == 201
    r = await c.post(
        "/follows",
        json={"target": "school-air", "email": "a@b.be", "frequency": "daily"},
        headers=env.auth("ghent"),
    )
    follow = r.json()
    for sid, title, text, domain in [
        (
            "dust-sensors",
            "Fijnstofsensoren voor scholen",
            "Sensoren meten fijnstof aan de schoolpoort; ouders zien de kaart.",
            "domain:environment.air",
        ),
        (
            "tax-app",
            "Belastingaangifte app",
            "Een app voor de belastingaangifte van inwoners.",
            "domain:government",
        ),
    ]:
        body = {
            "id": sid,
            "title": {"nl": title},
            "description": {"nl": text},
            "maturity": "implemented",
            "pricing_model": "one_off",
            "terms": [domain],
        }
        assert (await c.post("/solutions", json=body, headers=env.auth("acme"))).status_code == 201
    preview = (await c.get(f"/follows/{follow['id']}/matches", headers=env.auth("ghent"))).json()
    by_id = {m["id"]: m for m in preview}
    assert by_id["dust-sensors"]["matched"] is True and by_id["dust-sensors"]["new"] is True
    assert "tax-app" not in by_id  # the matcher's domain rule leaves it out
    assert set(by_id) == {"dust-sensors"}  # the challenge itself has not changed since

    later = datetime.fromisoformat(follow["created_at"].replace("Z", "+00:00")) + timedelta(days=2)

    class Up:
        sent: list[Digest] = []

        async def send(self, digest: Digest) -> None:
            self.sent.append(digest)

    matchmaking = Matchmaking(env.hub, embeddings=False)
    up = Up()
    assert await send_due(env.hub, up, base_url="http://x", now=later, matchmaking=matchmaking) == 1
    assert "Fijnstofsensoren voor scholen (nieuw, acme, mogelijke match)" in up.sent[0].text
    # "not relevant" on the pair hides the solution from the follower's organisation
    r = await c.post(
        "/challenges/school-air/matches/dust-sensors/not-relevant", headers=env.auth("ghent")
    )
    assert r.status_code == 201
    preview = (await c.get(f"/follows/{follow['id']}/matches", headers=env.auth("ghent"))).json()
    assert "dust-sensors" not in {m["id"] for m in preview}


async def test_serve_runs_the_digest_job_when_smtp_is_configured(
    tmp_path: Path, smtp: tuple[Inbox, int]
) -> None:
    _, port = smtp
    settings = Settings(
        database_url=f"sqlite:///{tmp_path}/d.db",
        smtp_host="127.0.0.1",
        smtp_port=port,
        digest_interval=0.05,
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        job = app.state.digest_job
        assert job is not None
        for _ in range(100):
            if job.runs >= 2:
                break
            await asyncio.sleep(0.02)
        assert job.runs >= 2
    plain = create_app(Settings(database_url=f"sqlite:///{tmp_path}/e.db"))
    async with plain.router.lifespan_context(plain):
        assert plain.state.digest_job is None
        transport = httpx.ASGITransport(app=plain)
        async with httpx.AsyncClient(transport=transport, base_url="http://t/api/v1") as client:
            assert (await client.get("/follows")).status_code == 401


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


_ = UTC


async def test_a_follow_set_to_no_digest_is_kept_but_never_mailed(env: Env) -> None:
    class Never:
        async def send(self, digest: Digest) -> None:
            raise AssertionError("a follow without digest was mailed")

    c = env.client
    r = await c.post(
        "/follows",
        json={"target": "domain:mobility", "email": "a@b.be", "frequency": "daily"},
        headers=env.auth("ghent"),
    )
    follow = r.json()
    await c.post("/use-cases", json=uc("fiets", ["domain:mobility"]), headers=env.auth("leuven"))
    ghent = Principal(org_id="ghent", role="editor", person_id="lies")
    follows = Follows(env.hub)
    changed = await follows.set_frequency(ghent, follow["id"], "none")
    assert changed.frequency == "none"
    stored = (await c.get(f"/follows/{follow['id']}", headers=env.auth("ghent"))).json()
    assert (
        stored["frequency"] == "none"
        and stored["email"] == "a@b.be"
        and stored["target"] == "domain:mobility"
    )
    later = datetime.now(UTC) + timedelta(days=30)
    assert await send_due(env.hub, Never(), base_url="https://hub.test", now=later) == 0
    # what it would report is still there, for the portal's list
    assert [m.object.id for m in await follows.matches(changed)] == ["fiets"]
    with pytest.raises(BadRequestData):
        await follows.set_frequency(ghent, follow["id"], "hourly")
    leuven = Principal(org_id="leuven", role="editor")
    with pytest.raises(Forbidden):
        await follows.set_frequency(leuven, follow["id"], "daily")
    assert "hub.follow.update" in [r.action for r in await env.gov.store.audit_records()]
