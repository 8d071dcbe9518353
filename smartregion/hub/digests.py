"""Digest e-mails of follows: compose, send over SMTP, and the background job that sends them.

A follow is due when its frequency's period has passed since its last digest (or its creation).
The job claims a due follow by moving its last digest time (compare-and-set, `claim_digest`), so
any number of processes may run the job and a digest still goes out once; then it computes what
is new since the previous digest and sends it. A failed send gives the claim back, so the same
matches go out at the next run. A digest with nothing to report is not sent (the period moves).
"""

from __future__ import annotations

import asyncio
import logging
import smtplib
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Protocol

from smartregion.governance import parse_time
from smartregion.hub.follows import FREQUENCIES, Follows, Match
from smartregion.hub.kinds import KINDS
from smartregion.hub.matchmaking import Matchmaking
from smartregion.hub.objects import Hub
from smartregion.storage.hub import Follow
from smartregion.storage.jobs import PeriodicJob

__all__ = ["Digest", "DigestJob", "Mailer", "SmtpMailer", "compose", "send_due"]

log = logging.getLogger("smartregion.hub")

_KIND_NAMES = {
    "nl": {
        "actor": "Actoren",
        "initiative": "Initiatieven",
        "usecase": "Use cases",
        "challenge": "Uitdagingen",
        "solution": "Oplossingen",
        "funding": "Financiering",
        "story": "Verhalen",
    },
    "en": {
        "actor": "Actors",
        "initiative": "Initiatives",
        "usecase": "Use cases",
        "challenge": "Challenges",
        "solution": "Solutions",
        "funding": "Funding",
        "story": "Stories",
    },
}


@dataclass(frozen=True, slots=True)
class Digest:
    """One e-mail to send."""

    to: str
    subject: str
    text: str


class Mailer(Protocol):
    """Sends a digest (SMTP in production; anything with this method in tests)."""

    async def send(self, digest: Digest) -> None:
        """Send, or raise."""


#: the longest term label a subject carries (an SDG target's label is a whole sentence)
SUBJECT_LABEL = 60


def _shorten(text: str, limit: int = SUBJECT_LABEL) -> str:
    """`text`, cut after its last whole word within `limit` characters and marked with "…"."""
    if len(text) <= limit:
        return text
    return text[:limit].rsplit(" ", 1)[0].rstrip(",;:") + "…"


def compose(follow: Follow, matches: list[Match], hub: Hub, base_url: str) -> Digest:
    """The plain-text digest of `matches` in the follow's language, grouped by kind."""
    nl = follow.lang == "nl"
    taxonomy = hub.taxonomy
    target = (
        taxonomy.label(follow.target, follow.lang)
        if follow.target in taxonomy.terms
        else follow.target
    )
    about = _shorten(target)
    subject = (
        f"Nieuw over {about}: {len(matches)} item(s)"
        if nl
        else f"New about {about}: {len(matches)} item(s)"
    )
    lines = [
        (
            f"Wat is er nieuw of gewijzigd over {target}:"
            if nl
            else f"What is new or changed about {target}:"
        ),
        "",
    ]
    for kind in KINDS.values():
        group = [m for m in matches if m.object.kind == kind.name]
        if not group:
            continue
        lines.append(f"{_KIND_NAMES[follow.lang][kind.name]}")
        for match in group:
            title = match.object.doc.get("title", {})
            text = title.get(follow.lang) or next(iter(title.values()), match.object.id)
            mark = ("nieuw" if nl else "new") if match.new else ("gewijzigd" if nl else "changed")
            why = (", mogelijke match" if nl else ", a possible match") if match.matched else ""
            lines.append(f"- {text} ({mark}, {match.object.owner}{why})")
            lines.append(f"  {base_url.rstrip('/')}/api/v1/{kind.path}/{match.object.id}")
        lines.append("")
    lines += [
        (
            "Niet relevant? Markeer het, dan verschijnt het niet meer in deze opvolging:"
            if nl
            else "Not relevant? Mark it and it will not appear in this follow again:"
        ),
        f"POST {base_url.rstrip('/')}/api/v1/follows/{follow.id}/dismissals",
        ("Stoppen met opvolgen:" if nl else "Stop following:")
        + f" DELETE {base_url.rstrip('/')}/api/v1/follows/{follow.id}",
    ]
    return Digest(follow.email, subject, "\n".join(lines) + "\n")


@dataclass(frozen=True, slots=True)
class SmtpMailer:
    """Sends digests through an SMTP server (RFC 5321), optionally with STARTTLS and login."""

    host: str
    port: int = 25
    sender: str = "smartregion@localhost"
    starttls: bool = False
    username: str = ""
    password: str = ""
    timeout: float = 30.0

    def _send(self, digest: Digest) -> None:
        message = EmailMessage()
        message["From"] = self.sender
        message["To"] = digest.to
        message["Subject"] = digest.subject
        message["Date"] = formatdate(usegmt=True)
        message["Message-ID"] = make_msgid(domain=self.sender.rpartition("@")[2] or None)
        message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no auto-replies to digests
        message.set_content(digest.text)
        with smtplib.SMTP(self.host, self.port, timeout=self.timeout) as smtp:
            if self.starttls:
                smtp.starttls(context=ssl.create_default_context())
            if self.username:
                smtp.login(self.username, self.password)
            smtp.send_message(message)

    async def send(self, digest: Digest) -> None:
        """Send in a worker thread (smtplib blocks)."""
        await asyncio.to_thread(self._send, digest)


def _due(follow: Follow, now: datetime) -> bool:
    days = FREQUENCIES.get(follow.frequency)
    if days is None:  # "none": followed on the portal, no e-mail
        return False
    last = parse_time(follow.last_sent_at or follow.created_at)
    return now - last >= timedelta(days=days)


async def send_due(
    hub: Hub,
    mailer: Mailer,
    *,
    base_url: str,
    now: datetime | None = None,
    matchmaking: Matchmaking | None = None,
) -> int:
    """Send every due follow's digest; returns how many digests were sent. With `matchmaking`,
    a followed challenge's digest also names new or changed solutions that match it best (and a
    solution's, challenges)."""
    now = now or datetime.now(UTC)
    stamp = now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    follows = Follows(hub, matchmaking)
    sent = 0
    for follow in await hub.store.list_follows():
        if not _due(follow, now):
            continue
        previous = follow.last_sent_at
        if not await hub.store.claim_digest(follow.id, previous, stamp):
            continue  # another process sends this one
        matches = await follows.matches(follow, since=previous or follow.created_at)
        if not matches:
            continue
        try:
            await mailer.send(compose(follow, matches, hub, base_url))
        except Exception:  # the server refused or is down: give the claim back, retry next run
            log.exception("digest of %s not sent", follow.id)
            await hub.store.claim_digest(follow.id, stamp, previous)
            continue
        sent += 1
    return sent


class DigestJob(PeriodicJob):
    """Runs `send_due` every `interval` seconds in the background (like the purge job)."""

    def __init__(self, run: Callable[[], object], interval: float) -> None:
        async def work() -> None:
            result = run()
            if asyncio.iscoroutine(result):
                await result

        super().__init__(work, interval, "hub-digests")
