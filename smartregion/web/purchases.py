"""Joint-purchase proposals on the portal: similar open challenges of different municipalities,
their combined demand and budget, the solutions that answer them, and the OCDS tender outline with
its lots (shown, and downloadable as JSON). The proposals are the hub's (`Matchmaking`)."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from smartregion.errors import ResourceNotFound
from smartregion.hub.matchmaking import Bundle
from smartregion.web.hubpages import HubPages, text
from smartregion.web.portal import Portal

__all__ = ["routes"]


def routes(portal: Portal) -> list[BaseRoute]:
    """The joint-purchase pages' routes."""
    pages = HubPages(portal)

    async def view(bundle: Bundle, lang: str) -> dict[str, Any]:
        snapshot = await pages.matchmaking.snapshot()
        p = bundle.proposal
        members = []
        for c in p.challenges:
            obj = snapshot.objects.get(c.id)
            members.append(
                {
                    "id": c.id,
                    "title": text(obj.doc.get("title"), lang) if obj else c.title,
                    "owner": c.owner_name or c.owner_org or "",
                    "budget": c.budget_max,
                    "quantity": c.quantity,
                    "unit": c.unit or "",
                }
            )
        solutions = []
        for s in p.solutions:
            obj = snapshot.objects.get(s.doc.id)
            solutions.append(
                {
                    "id": s.doc.id,
                    "title": text(obj.doc.get("title"), lang) if obj else s.doc.title,
                    "owner": s.doc.owner_name or "",
                    "members": s.members_matched,
                }
            )
        return {
            "id": p.id,
            "title": members[0]["title"] if members else p.title,
            "members": members,
            "budget": p.combined_budget,
            "demand": sorted(p.demand.items()),
            "words": list(p.shared_words[:8]),
            "topics": [pages.label(t, lang) for t in p.shared_taxonomy if not t.startswith("nis:")][
                :6
            ],
            "solutions": solutions,
            "tender": bundle.tender,
        }

    async def find(bundle_id: str) -> Bundle:
        for bundle in await pages.matchmaking.joint_purchases():
            if bundle.proposal.id == bundle_id:
                return bundle
        raise ResourceNotFound(f"no joint-purchase proposal {bundle_id!r}")

    async def list_page(request: Request) -> Response:
        reader = await portal.reader(request)
        bundles = [await view(b, reader.lang) for b in await pages.matchmaking.joint_purchases()]
        return await portal.render(request, "purchases.html", {"bundles": bundles})

    async def one(request: Request) -> Response:
        reader = await portal.reader(request)
        bundle = await find(request.path_params["bundle_id"])
        return await portal.render(request, "purchase.html", {"b": await view(bundle, reader.lang)})

    async def tender_json(request: Request) -> Response:
        bundle = await find(request.path_params["bundle_id"])
        return Response(
            orjson.dumps(bundle.tender, option=orjson.OPT_INDENT_2),
            media_type="application/json",
            headers={
                "Content-Disposition": f'attachment; filename="{bundle.proposal.id}-ocds.json"'
            },
        )

    return [
        Route("/joint-purchases", list_page, methods=["GET"]),
        Route("/joint-purchases/{bundle_id}", one, methods=["GET"]),
        Route("/joint-purchases/{bundle_id}/tender.json", tender_json, methods=["GET"]),
    ]
