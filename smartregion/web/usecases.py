"""The hub's good practices on the portal: the use-case library (facets, search), a use case's
page (story, results, lessons, adopters on a map, endorsements, linked data sets and
initiatives), the endorse form, and the stories ("Slimme Stad in Mensentaal").

Handlers are thin: read the reader and the query, call the hub services, render.
"""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from smartregion.errors import Unauthenticated
from smartregion.hub.kinds import MATURITY
from smartregion.hub.objects import Filters, Hub
from smartregion.hub.usecases import ENDORSING_KINDS, UseCases
from smartregion.storage.hub import HubObject
from smartregion.web.datasets import Catalogue, text_in
from smartregion.web.hubviews import (
    PAGE_SIZE,
    facet_groups,
    features_of,
    list_query,
    page_url,
    summary,
    term_label,
    text,
)
from smartregion.web.portal import Portal, Reader

__all__ = ["PAGE_OF", "highlights", "org_names", "routes"]

#: the facets of the use-case library, in the order shown
USECASE_SCHEMES = ("domain", "sdg", "building_block", "region")


async def org_names(hub: Hub) -> dict[str, str]:
    """Organisation id -> name (the pages show names, links keep ids)."""
    return {o.id: o.name for o in await hub.governance.store.list_organisations()}


async def _linked(hub: Hub, kind: str, ids: list[str], lang: str) -> list[dict[str, str]]:
    """Existing objects of `kind` among `ids`, as (id, title) for links (a deleted one is left out)."""
    found = {o.id: o for o in await hub.store.get_hub_objects(ids) if o.kind == kind}
    return [
        {"id": i, "title": text(found[i].doc.get("title"), lang) or i} for i in ids if i in found
    ]


def routes(portal: Portal) -> list[BaseRoute]:
    """The use cases' and stories' routes."""
    catalogue = Catalogue(portal.governance)

    async def library(request: Request) -> Response:
        hub = portal.require_hub()
        reader = await portal.reader(request)
        query = list_query(request, hub.taxonomy, MATURITY)
        found = await hub.search(
            "usecase",
            query.filters(),
            sort="-endorsements",
            limit=PAGE_SIZE,
            offset=query.offset,
        )
        env = portal.envs[reader.lang]
        label = env.filters["facet_label"]
        facets = facet_groups(
            request,
            found,
            hub.taxonomy,
            reader.lang,
            query,
            schemes=USECASE_SCHEMES,
            status_label=lambda v: label(v, "maturity"),
            status_name="maturity",
        )
        pages = max(1, -(-found.total // PAGE_SIZE))
        return await portal.render(
            request,
            "usecases.html",
            {
                "usecases": [summary(o, hub.taxonomy, reader.lang) for o in found.items],
                "total": found.total,
                "facets": facets,
                "query": query,
                "names": await org_names(hub),
                "previous_url": page_url(request, query.page - 1) if query.page > 1 else "",
                "next_url": page_url(request, query.page + 1) if query.page < pages else "",
                "page": query.page,
                "pages": pages,
            },
        )

    async def may_endorse(hub: Hub, reader: Reader, usecase_id: str, endorsers: set[str]) -> str:
        """What the endorse panel offers the reader: "form", "done", "sign-in" or "not-allowed"."""
        if reader.principal is None:
            return "sign-in"
        if reader.principal.org_id in endorsers:
            return "done"
        org = await hub.governance.store.get_organisation(reader.principal.org_id)
        allowed = (
            org is not None and org.kind in ENDORSING_KINDS and reader.principal.has_role("editor")
        )
        return "form" if allowed else "not-allowed"

    async def usecase_page(request: Request) -> Response:
        hub = portal.require_hub()
        reader = await portal.reader(request)
        lang = reader.lang
        usecase = await hub.get("usecase", request.path_params["usecase_id"])
        return await render_usecase(request, hub, reader, usecase, lang)

    async def render_usecase(
        request: Request,
        hub: Hub,
        reader: Reader,
        usecase: HubObject,
        lang: str,
        *,
        status: int = 200,
    ) -> Response:
        usecases = UseCases(hub)
        doc = usecase.doc
        names = await org_names(hub)
        endorsements = await usecases.endorsements(usecase.id)
        adoptions = await usecases.adoptions(usecase.id)
        place = {
            a.municipality: term_label(hub.taxonomy, a.municipality, lang)
            for a in adoptions.current
        }
        place.update(
            {
                e.municipality: term_label(hub.taxonomy, e.municipality, lang)
                for e in adoptions.history
            }
        )
        env = portal.envs[lang]
        stage_label = env.filters["facet_label"]
        points = features_of(
            hub.taxonomy,
            [
                (
                    a.municipality,
                    {"name": place[a.municipality], "stage": stage_label(a.stage, "stage")},
                )
                for a in adoptions.current
            ],
        )
        visible = {d.id: d for d in await catalogue.visible(reader.principal)}
        datasets = [
            {"id": d, "title": text_in(visible[d].title, lang)}
            for d in doc.get("datasets", [])
            if d in visible
        ]
        # initiatives the use case names, and those that name it
        initiative_ids = list(doc.get("initiatives", []))
        for initiative in await hub.export("initiative", Filters()):
            if (
                usecase.id in initiative.doc.get("use_cases", [])
                and initiative.id not in initiative_ids
            ):
                initiative_ids.append(initiative.id)
        stories = await hub.search(
            "story",
            Filters(terms=[f"usecase:{usecase.id}"], statuses=["published"]),
            facets=False,
            limit=10,
        )
        endorsers = {e.org_id for e in endorsements}
        return await portal.render(
            request,
            "usecase.html",
            {
                "usecase": summary(usecase, hub.taxonomy, lang),
                "achievements": text(doc.get("achievements"), lang),
                "obstacles": text(doc.get("obstacles"), lang),
                "missed": text(doc.get("missed_opportunities"), lang),
                "contact": doc.get("contact") or {},
                "names": names,
                "endorsements": endorsements,
                "endorse": await may_endorse(hub, reader, usecase.id, endorsers),
                "adoptions": [
                    {
                        "place": place[a.municipality],
                        "term": a.municipality,
                        "stage": a.stage,
                        "since": a.updated_at,
                    }
                    for a in adoptions.current
                ],
                "history": [
                    {"place": place[e.municipality], "stage": e.stage, "at": e.at, "note": e.note}
                    for e in adoptions.history
                ],
                "mapped": len(points["features"]),
                "geojson": orjson.dumps(points).decode(),
                "datasets": datasets,
                "initiatives": await _linked(hub, "initiative", initiative_ids, lang),
                "stories": [summary(s, hub.taxonomy, lang) for s in stories.items],
                "endorsed": request.query_params.get("endorsed") == "1",
            },
            status=status,
        )

    async def endorse(request: Request) -> Response:
        hub = portal.require_hub()
        reader = await portal.reader(request)
        usecase = await hub.get("usecase", request.path_params["usecase_id"])
        if reader.principal is None:
            raise Unauthenticated("sign in to endorse a use case")
        # the rules (local governments' editors, once per organisation) are the hub's:
        # Forbidden is a 403 page, a second endorsement a 409 page
        await UseCases(hub).endorse(reader.principal, usecase.id)
        return RedirectResponse(f"/use-cases/{usecase.id}?endorsed=1#endorse", status_code=303)

    async def stories_page(request: Request) -> Response:
        hub = portal.require_hub()
        reader = await portal.reader(request)
        query = list_query(request, hub.taxonomy, ("published",))
        filters = Filters(terms=query.terms, q=query.q, statuses=["published"])
        found = await hub.search("story", filters, limit=PAGE_SIZE, offset=query.offset)
        facets = facet_groups(
            request, found, hub.taxonomy, reader.lang, query, schemes=("domain", "region")
        )
        pages = max(1, -(-found.total // PAGE_SIZE))
        stories = sorted(
            found.items, key=lambda s: str(s.doc.get("published_on") or s.created_at), reverse=True
        )
        return await portal.render(
            request,
            "stories.html",
            {
                "stories": [
                    {
                        **summary(s, hub.taxonomy, reader.lang),
                        "published_on": s.doc.get("published_on"),
                    }
                    for s in stories
                ],
                "total": found.total,
                "facets": facets,
                "query": query,
                "names": await org_names(hub),
                "previous_url": page_url(request, query.page - 1) if query.page > 1 else "",
                "next_url": page_url(request, query.page + 1) if query.page < pages else "",
            },
        )

    async def story_page(request: Request) -> Response:
        hub = portal.require_hub()
        reader = await portal.reader(request)
        story = await hub.get("story", request.path_params["story_id"])
        doc = story.doc
        return await portal.render(
            request,
            "story.html",
            {
                "story": summary(story, hub.taxonomy, reader.lang),
                "body": [p for p in text(doc.get("body"), reader.lang).split("\n\n") if p.strip()],
                "published_on": doc.get("published_on"),
                "names": await org_names(hub),
                "usecases": await _linked(
                    hub, "usecase", list(doc.get("use_cases", [])), reader.lang
                ),
                "initiatives": await _linked(
                    hub, "initiative", list(doc.get("initiatives", [])), reader.lang
                ),
            },
        )

    return [
        Route("/use-cases", library, methods=["GET"]),
        Route("/use-cases/{usecase_id}", usecase_page, methods=["GET"]),
        Route("/use-cases/{usecase_id}/endorse", endorse, methods=["POST"]),
        Route("/stories", stories_page, methods=["GET"]),
        Route("/stories/{story_id}", story_page, methods=["GET"]),
    ]


#: where the portal shows an object of each kind (challenges and funding: the other hub pages)
PAGE_OF = {
    "usecase": "/use-cases/",
    "story": "/stories/",
    "initiative": "/initiatives/",
    "actor": "/actors/",
    "challenge": "/challenges/",
    "funding": "/funding/",
}


async def highlights(hub: Hub, lang: str) -> dict[str, Any]:
    """What the home page shows of the hub: lighthouse stories, the use cases most endorsed by
    local governments, and what changed last across the hub."""
    stories = await hub.search("story", Filters(statuses=["published"]), limit=3, facets=False)
    lighthouses = await hub.search(
        "usecase", Filters(), sort="-endorsements", limit=3, facets=False
    )
    recent: list[HubObject] = []
    for kind in PAGE_OF:
        recent.extend((await hub.search(kind, Filters(), limit=5, facets=False)).items)
    recent.sort(key=lambda o: (o.updated_at, o.id), reverse=True)
    return {
        "stories": [summary(s, hub.taxonomy, lang) for s in stories.items],
        "lighthouses": [
            summary(u, hub.taxonomy, lang) for u in lighthouses.items if u.endorsements
        ],
        "hub_recent": [
            {**summary(o, hub.taxonomy, lang), "url": PAGE_OF[o.kind] + o.id} for o in recent[:6]
        ],
    }
