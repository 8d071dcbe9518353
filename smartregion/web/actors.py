"""The actors directory on the portal: the organisations' hub profiles with facets (role in the
quadruple helix, kind of organisation, province, domain), search over what they offer and seek,
a map of where they are, and an actor's page.

An actor lies where its organisation's NIS code says (a municipality or province), else at the
first region its profile is tagged with; an actor with neither is listed, not mapped.
"""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from smartregion.core.policies import ORGANISATION_KINDS
from smartregion.core.taxonomy import Taxonomy
from smartregion.hub.kinds import HELIX_ROLES
from smartregion.hub.objects import Hub
from smartregion.storage.governance import Organisation
from smartregion.storage.hub import HubObject
from smartregion.web.hubviews import (
    PAGE_SIZE,
    facet_groups,
    features_of,
    list_query,
    page_url,
    summary,
    text,
)
from smartregion.web.portal import Portal

__all__ = ["place_of", "routes"]


def place_of(obj: HubObject, org: Organisation | None, taxonomy: Taxonomy) -> str | None:
    """The region term an actor is shown at (see the module docstring)."""
    if org is not None and org.nis and taxonomy.get(f"nis:{org.nis}") is not None:
        return f"nis:{org.nis}"
    return next(
        (t for t in obj.doc.get("terms", []) if t.startswith("nis:") and t != "nis:02000"), None
    )


async def _organisations(hub: Hub) -> dict[str, Organisation]:
    return {o.id: o for o in await hub.governance.store.list_organisations()}


def routes(portal: Portal) -> list[BaseRoute]:
    """The actors' routes."""

    async def directory(request: Request) -> Response:
        hub = portal.require_hub()
        reader = await portal.reader(request)
        query = list_query(request, hub.taxonomy, HELIX_ROLES, ORGANISATION_KINDS)
        found = await hub.search(
            "actor",
            query.filters(),
            sort="title",
            limit=PAGE_SIZE,
            offset=query.offset,
        )
        label = portal.envs[reader.lang].filters["facet_label"]
        facets = facet_groups(
            request,
            found,
            hub.taxonomy,
            reader.lang,
            query,
            schemes=("domain", "region"),
            status_label=lambda v: label(v, "helix"),
            status_name="helix",
            owner_kind_label=lambda v: label(v, "org_kind"),
        )
        orgs = await _organisations(hub)
        everyone = await hub.export("actor", query.filters(), sort="title")
        places: list[tuple[str, dict[str, Any]]] = []
        for obj in everyone:
            place = place_of(obj, orgs.get(obj.owner), hub.taxonomy)
            if place is not None:
                places.append(
                    (
                        place,
                        {
                            "name": text(obj.doc.get("title"), reader.lang) or obj.id,
                            "role": label(obj.status, "helix"),
                        },
                    )
                )
        points = features_of(hub.taxonomy, places)
        pages = max(1, -(-found.total // PAGE_SIZE))
        return await portal.render(
            request,
            "actors.html",
            {
                "actors": [
                    {
                        **summary(o, hub.taxonomy, reader.lang),
                        "offers": text(o.doc.get("offers"), reader.lang),
                        "seeks": text(o.doc.get("seeks"), reader.lang),
                    }
                    for o in found.items
                ],
                "total": found.total,
                "facets": facets,
                "query": query,
                "mapped": len(points["features"]),
                "geojson": orjson.dumps(points).decode(),
                "previous_url": page_url(request, query.page - 1) if query.page > 1 else "",
                "next_url": page_url(request, query.page + 1) if query.page < pages else "",
            },
        )

    async def actor_page(request: Request) -> Response:
        hub = portal.require_hub()
        reader = await portal.reader(request)
        obj = await hub.get("actor", request.path_params["actor_id"])
        org = await hub.governance.store.get_organisation(obj.owner)
        doc, lang = obj.doc, reader.lang
        place = place_of(obj, org, hub.taxonomy)
        label = portal.envs[lang].filters["facet_label"]
        name = text(doc.get("title"), lang) or obj.id
        points = features_of(
            hub.taxonomy,
            [(place, {"name": name, "role": label(obj.status, "helix")})] if place else [],
        )
        return await portal.render(
            request,
            "actor.html",
            {
                "actor": summary(obj, hub.taxonomy, lang),
                "organisation": org.name if org else obj.owner,
                "offers": text(doc.get("offers"), lang),
                "seeks": text(doc.get("seeks"), lang),
                "website": doc.get("website") or "",
                "contact": doc.get("contact") or {},
                "mapped": len(points["features"]),
                "geojson": orjson.dumps(points).decode(),
            },
        )

    return [
        Route("/actors", directory, methods=["GET"]),
        Route("/actors/{actor_id}", actor_page, methods=["GET"]),
    ]
