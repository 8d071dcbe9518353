"""Atom feeds (RFC 4287) of the hub: new stories, new challenges, funding deadlines ahead.

Public, like the lists. Entry ids are stable URNs (`urn:smartregion:hub:<kind>:<id>`), so feed
readers see an edited story as the same entry, updated; a deadline entry's id names its call.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal
from xml.sax.saxutils import escape, quoteattr

from fastapi import APIRouter, Depends, Query, Request, Response

from smartregion.hub import Filters, Hub
from smartregion.hub.funding import upcoming_deadlines
from smartregion.storage.hub import HubObject

__all__ = ["ATOM", "feeds_router"]

ATOM = "application/atom+xml"
_ENTRIES = 50
Lang = Literal["nl", "en"]


def _hub(request: Request) -> Hub:
    hub: Hub = request.app.state.hub
    return hub


HubDep = Annotated[Hub, Depends(_hub)]


def _text(texts: dict[str, str] | None, lang: str) -> str:
    texts = texts or {}
    return texts.get(lang) or next((t for t in texts.values() if t), "")


def _feed(request: Request, title: str, entries: list[str], updated: str, lang: str) -> Response:
    self_url = str(request.url)
    body = (
        '<?xml version="1.0" encoding="utf-8"?>\n'
        f'<feed xmlns="http://www.w3.org/2005/Atom" xml:lang={quoteattr(lang)}>'
        f"<id>{escape('urn:smartregion:feed:' + request.url.path)}</id>"
        f"<title>{escape(title)}</title><updated>{escape(updated)}</updated>"
        f'<link rel="self" href={quoteattr(self_url)}/>'
        f"<author><name>smartregion</name></author>{''.join(entries)}</feed>"
    )
    return Response(body, media_type=f"{ATOM}; charset=utf-8")


def _entry(
    request: Request,
    obj: HubObject,
    lang: str,
    *,
    title: str | None = None,
    entry_id: str | None = None,
    summary: str | None = None,
) -> str:
    path = {"story": "stories", "challenge": "challenges", "funding": "funding"}[obj.kind]
    link = str(request.base_url).rstrip("/") + f"/api/v1/{path}/{obj.id}"
    return (
        f"<entry><id>{escape(entry_id or f'urn:smartregion:hub:{obj.kind}:{obj.id}')}</id>"
        f"<title>{escape(title or _text(obj.doc.get('title'), lang))}</title>"
        f"<updated>{escape(_rfc3339(obj.updated_at))}</updated>"
        f"<published>{escape(_rfc3339(obj.created_at))}</published>"
        f"<author><name>{escape(obj.owner)}</name></author>"
        f'<link rel="alternate" type="application/json" href={quoteattr(link)}/>'
        f"<summary>{escape(summary if summary is not None else _text(obj.doc.get('summary'), lang))}</summary>"
        "</entry>"
    )


def _rfc3339(stamp: str) -> str:
    # governance times are `…T…:SS.ffffffZ`, already RFC 3339
    return stamp


def _newest(objects: list[HubObject]) -> str:
    return max((o.updated_at for o in objects), default="1970-01-01T00:00:00Z")


def feeds_router() -> APIRouter:
    """The Atom feed endpoints."""
    router = APIRouter(tags=["feeds"])
    atom: dict[int | str, dict[str, Any]] = {200: {"content": {ATOM: {}}}}

    @router.get("/feeds/stories.atom", response_class=Response, responses=atom)
    async def stories(request: Request, hub: HubDep, lang: Lang = "nl") -> Response:
        """The newest published stories ("Slimme Stad in Mensentaal")."""
        page = await hub.search(
            "story", Filters(statuses=["published"]), sort="-created", limit=_ENTRIES, facets=False
        )
        title = "Verhalen" if lang == "nl" else "Stories"
        return _feed(
            request,
            title,
            [_entry(request, o, lang) for o in page.items],
            _newest(page.items),
            lang,
        )

    @router.get("/feeds/challenges.atom", response_class=Response, responses=atom)
    async def challenges(
        request: Request,
        hub: HubDep,
        lang: Lang = "nl",
        term: Annotated[
            list[Annotated[str, Query(pattern=r"^[a-z_]+:[a-z0-9._-]{1,80}$")]],
            Query(max_length=20, description="only challenges with all these terms"),
        ] = [],  # noqa: B006
    ) -> Response:
        """The newest open challenges (optionally of some domains or regions)."""
        page = await hub.search(
            "challenge",
            Filters(terms=term, statuses=["open"]),
            sort="-created",
            limit=_ENTRIES,
            facets=False,
        )
        title = "Nieuwe uitdagingen" if lang == "nl" else "New challenges"
        entries = [
            _entry(request, o, lang, summary=_text(o.doc.get("problem"), lang)) for o in page.items
        ]
        return _feed(request, title, entries, _newest(page.items), lang)

    @router.get("/feeds/funding-deadlines.atom", response_class=Response, responses=atom)
    async def deadlines(request: Request, hub: HubDep, lang: Lang = "nl") -> Response:
        """Call deadlines of funding instruments still ahead, nearest first."""
        instruments = await hub.export("funding", Filters())
        ahead = upcoming_deadlines(instruments, datetime.now(UTC).date())
        entries = [
            _entry(
                request,
                d.instrument,
                lang,
                title=f"{d.deadline.isoformat()}: {_text(d.instrument.doc.get('title'), lang)}",
                entry_id=f"urn:smartregion:hub:funding:{d.instrument.id}:deadline:{d.deadline.isoformat()}",
                summary=_text(d.note, lang) or _text(d.instrument.doc.get("summary"), lang),
            )
            for d in ahead
        ]
        title = "Deadlines van financieringsoproepen" if lang == "nl" else "Funding call deadlines"
        return _feed(request, title, entries, _newest([d.instrument for d in ahead]), lang)

    return router
