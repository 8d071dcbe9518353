"""Personal follows on the portal: follow or stop following a term or an object from its page,
the list of one's follows, and how often the digest comes (daily, weekly or none).

A follow belongs to the reader's organisation (`hub.follows`); the portal lists and changes the
ones the reader started, and sends their digests to the reader's own e-mail address.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from smartregion.core.taxonomy import scheme_of
from smartregion.errors import BadRequestData, ResourceNotFound
from smartregion.governance import Principal
from smartregion.hub.follows import FREQUENCIES, Follows
from smartregion.storage.hub import Follow
from smartregion.web.hubpages import HubPages, text
from smartregion.web.portal import Portal

__all__ = ["routes"]

#: the pages of the kinds one can follow from the portal
_PATHS = {"challenge": "challenges", "solution": "solutions", "funding": "funding"}


def _next(raw: Any, fallback: str) -> str:
    """A local path to return to (never another site)."""
    value = raw if isinstance(raw, str) else ""
    if not value.startswith("/") or value.startswith("//") or "\\" in value or len(value) > 500:
        return fallback
    return value


def routes(portal: Portal) -> list[BaseRoute]:
    """The follows' routes."""
    pages = HubPages(portal)

    async def mine(principal: Principal) -> list[Follow]:
        return [
            f for f in await Follows(pages.hub).of(principal) if f.created_by == principal.actor
        ]

    async def own(principal: Principal, follow_id: str) -> Follow:
        follow = await Follows(pages.hub).get(principal, follow_id)
        if follow.created_by != principal.actor:
            raise ResourceNotFound(f"no follow {follow_id!r} of yours")
        return follow

    async def list_page(request: Request) -> Response:
        reader = await portal.reader(request)
        principal = await pages.signed_in(reader)
        rows = []
        for f in await mine(principal):
            rows.append(
                {
                    "id": f.id,
                    "frequency": f.frequency,
                    "created": f.created_at,
                    **await describe(f.target, reader.lang),
                }
            )
        frequencies = {f["frequency"] for f in rows}
        return await portal.render(
            request,
            "follows.html",
            {
                "follows": rows,
                "frequencies": list(FREQUENCIES),
                "digest": frequencies.pop() if len(frequencies) == 1 else "",
                "done": request.query_params.get("done", ""),
            },
        )

    async def describe(target: str, lang: str) -> dict[str, str]:
        if scheme_of(target) is not None:
            return {
                "label": pages.label(target, lang),
                "kind": "term",
                "url": f"/challenges?domain={target}" if target.startswith("domain:") else "",
            }
        obj = await pages.hub.store.get_hub_object(target)
        if obj is None:
            return {"label": target, "kind": "gone", "url": ""}
        path = _PATHS.get(obj.kind)
        return {
            "label": text(obj.doc.get("title"), lang),
            "kind": obj.kind,
            "url": f"/{path}/{obj.id}" if path else "",
        }

    async def follow(request: Request) -> Response:
        reader = await portal.reader(request)
        principal = await pages.signed_in(reader)
        form = await request.form()
        target = form.get("target")
        if not isinstance(target, str) or not 1 <= len(target) <= 120:
            raise BadRequestData("say what to follow: a term or an object")
        back = _next(form.get("next"), "/account/follows")
        existing = {f.target: f for f in await mine(principal)}
        if target not in existing:
            person = await pages.hub.governance.store.get_person(principal.person_id or "")
            if person is None:
                raise BadRequestData("a follow needs a person's e-mail address")
            # the same digest frequency as the reader's other follows (weekly at first)
            frequency = next(iter(existing.values())).frequency if existing else "weekly"
            await Follows(pages.hub).follow(
                principal, target, email=person.email, frequency=frequency, lang=reader.lang
            )
        return RedirectResponse(back, status_code=303)

    async def unfollow(request: Request) -> Response:
        reader = await portal.reader(request)
        principal = await pages.signed_in(reader)
        follow_id = request.path_params["follow_id"]
        await own(principal, follow_id)
        await Follows(pages.hub).unfollow(principal, follow_id)
        back = _next((await request.form()).get("next"), "/account/follows?done=stopped")
        return RedirectResponse(back, status_code=303)

    async def digest(request: Request) -> Response:
        reader = await portal.reader(request)
        principal = await pages.signed_in(reader)
        frequency = (await request.form()).get("frequency")
        if not isinstance(frequency, str) or frequency not in FREQUENCIES:
            raise BadRequestData(f"the digest is one of {', '.join(FREQUENCIES)}")
        follows = Follows(pages.hub)
        for f in await mine(principal):
            if f.frequency != frequency:
                await follows.set_frequency(principal, f.id, frequency)
        return RedirectResponse("/account/follows?done=digest", status_code=303)

    return [
        Route("/account/follows", list_page, methods=["GET"]),
        Route("/account/digest", digest, methods=["POST"]),
        Route("/follows", follow, methods=["POST"]),
        Route("/follows/{follow_id}/delete", unfollow, methods=["POST"]),
    ]
