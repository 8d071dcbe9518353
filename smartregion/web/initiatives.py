"""The initiatives portfolio on the portal: the list with filters (domain, status, funder) and
totals, the printable steering-group report, and an initiative's page.

The totals are the hub's `portfolio_report` over every initiative the filters select (not only
the page shown); handlers are thin: read the query, call the hub, render.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from smartregion.hub.initiatives import PortfolioReport, portfolio_report
from smartregion.hub.kinds import KINDS, slug
from smartregion.hub.objects import Hub
from smartregion.storage.hub import HubObject
from smartregion.web.datasets import Catalogue, text_in
from smartregion.web.hubviews import (
    PAGE_SIZE,
    ListQuery,
    facet_groups,
    list_query,
    page_url,
    summary,
    term_label,
    text,
)
from smartregion.web.portal import Portal
from smartregion.web.usecases import org_names

__all__ = ["routes"]

STATUSES = KINDS["initiative"].statuses


def _funders(initiatives: list[HubObject]) -> dict[str, str]:
    """`funder:<slug>` -> the funder's name as entered (the facet's labels)."""
    return {
        f"funder:{slug(s['funder'])}": str(s["funder"])
        for obj in initiatives
        for s in obj.doc.get("funding", [])
    }


def _report_context(
    hub: Hub, report: PortfolioReport, lang: str, names: dict[str, str]
) -> dict[str, Any]:
    return {
        "report": report,
        "lines": [
            {
                "id": line.id,
                "title": text(line.title, lang) or line.id,
                "owner": names.get(line.owner, line.owner),
                "status": line.status,
                "start": line.start,
                "end": line.end,
                "budget": line.budget,
                "funded": line.funded,
                "milestone": (
                    {
                        "title": text(line.next_milestone.get("title"), lang),
                        "due": line.next_milestone.get("due"),
                    }
                    if line.next_milestone
                    else None
                ),
            }
            for line in report.lines
        ],
        "by_term": [
            (term_label(hub.taxonomy, t, lang), n)
            for t, n in report.by_term.items()
            if t.startswith("domain:")
        ],
    }


def routes(portal: Portal) -> list[BaseRoute]:
    """The initiatives' routes."""
    catalogue = Catalogue(portal.governance)

    async def select(request: Request) -> tuple[Hub, ListQuery, list[HubObject]]:
        hub = portal.require_hub()
        query = list_query(request, hub.taxonomy, STATUSES)
        return hub, query, await hub.export("initiative", query.filters(), sort="title")

    async def portfolio(request: Request) -> Response:
        hub, query, selected = await select(request)
        reader = await portal.reader(request)
        found = await hub.search(
            "initiative",
            query.filters(),
            sort="title",
            limit=PAGE_SIZE,
            offset=query.offset,
        )
        label = portal.envs[reader.lang].filters["facet_label"]
        funders = _funders(selected)
        facets = facet_groups(
            request,
            found,
            hub.taxonomy,
            reader.lang,
            query,
            schemes=("domain", "region"),
            status_label=lambda v: label(v, "initiative"),
            key_labels={"funder": lambda k: funders.get(k, k.partition(":")[2])},
        )
        names = await org_names(hub)
        pages = max(1, -(-found.total // PAGE_SIZE))
        report = portfolio_report(selected)
        funded = {line.id: line for line in report.lines}
        return await portal.render(
            request,
            "initiatives.html",
            {
                "initiatives": [
                    {
                        **summary(o, hub.taxonomy, reader.lang),
                        "budget": funded[o.id].budget,
                        "funded": funded[o.id].funded,
                        "start": o.doc.get("start"),
                        "end": o.doc.get("end"),
                    }
                    for o in found.items
                    if o.id in funded
                ],
                "total": found.total,
                "facets": facets,
                "query": query,
                "names": names,
                "report": report,
                "report_url": "/initiatives/report"
                + ("?" + request.url.query if request.url.query else ""),
                "previous_url": page_url(request, query.page - 1) if query.page > 1 else "",
                "next_url": page_url(request, query.page + 1) if query.page < pages else "",
                "funders": [(name, amount) for name, amount in report.by_funder.items()],
            },
        )

    async def report_page(request: Request) -> Response:
        hub, query, selected = await select(request)
        reader = await portal.reader(request)
        names = await org_names(hub)
        label = portal.envs[reader.lang].filters["facet_label"]
        funders = _funders(selected)
        chosen = [
            term_label(hub.taxonomy, t, reader.lang) if hub.taxonomy.get(t) else funders.get(t, t)
            for t in query.terms
        ] + [label(s, "initiative") for s in query.statuses]
        if query.q:
            chosen.append(f"“{query.q}”")
        return await portal.render(
            request,
            "initiatives_report.html",
            {
                **_report_context(hub, portfolio_report(selected), reader.lang, names),
                "chosen": chosen,
                "list_url": "/initiatives" + ("?" + request.url.query if request.url.query else ""),
            },
        )

    async def initiative_page(request: Request) -> Response:
        hub = portal.require_hub()
        reader = await portal.reader(request)
        obj = await hub.get("initiative", request.path_params["initiative_id"])
        doc, lang = obj.doc, reader.lang
        names = await org_names(hub)
        line = portfolio_report([obj]).lines[0]
        visible = {d.id: d for d in await catalogue.visible(reader.principal)}
        linked = {o.id: o for o in await hub.store.get_hub_objects(list(doc.get("use_cases", [])))}
        instruments = {
            o.id: o
            for o in await hub.store.get_hub_objects(
                [s["instrument"] for s in doc.get("funding", []) if s.get("instrument")]
            )
        }
        return await portal.render(
            request,
            "initiative.html",
            {
                "initiative": summary(obj, hub.taxonomy, lang),
                "names": names,
                "partners": [names.get(p, p) for p in doc.get("partners", [])],
                "start": doc.get("start"),
                "end": doc.get("end"),
                "budget": line.budget,
                "funded": line.funded,
                "milestones": [
                    {
                        "title": text(m.get("title"), lang),
                        "due": m.get("due"),
                        "done": bool(m.get("done")),
                    }
                    for m in sorted(
                        doc.get("milestones", []), key=lambda m: str(m.get("due") or "")
                    )
                ],
                "funding": [
                    {
                        "funder": s["funder"],
                        "amount": s.get("amount") or 0,
                        "instrument": text(instruments[s["instrument"]].doc.get("title"), lang)
                        if s.get("instrument") in instruments
                        else "",
                    }
                    for s in doc.get("funding", [])
                ],
                "usecases": [
                    {"id": i, "title": text(linked[i].doc.get("title"), lang)}
                    for i in doc.get("use_cases", [])
                    if i in linked and linked[i].kind == "usecase"
                ],
                "datasets": [
                    {"id": d, "title": text_in(visible[d].title, lang)}
                    for d in doc.get("datasets", [])
                    if d in visible
                ],
            },
        )

    return [
        Route("/initiatives", portfolio, methods=["GET"]),
        Route("/initiatives/report", report_page, methods=["GET"]),
        Route("/initiatives/{initiative_id}", initiative_page, methods=["GET"]),
    ]
