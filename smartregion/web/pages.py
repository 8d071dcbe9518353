"""The data-space pages: home, data catalogue, data set (map, chart, downloads, access request).

Handlers are thin: read the reader and the query, call the services, render a template.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

import orjson
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from smartregion.errors import BadRequestData, ResourceNotFound, Unauthenticated
from smartregion.governance import THEMES
from smartregion.storage.governance import Dataset
from smartregion.web import charts, i18n
from smartregion.web.dashboard import Dashboard, Indicator, places
from smartregion.web.datasets import (
    AGGREGATIONS,
    PERIODS,
    Catalogue,
    ChartChoice,
    DatasetView,
    csv_text,
    current_values,
    features,
    label_of,
    numeric_attributes,
    short_name,
    text_in,
)
from smartregion.web.portal import N_, Portal
from smartregion.web.usecases import highlights

__all__ = ["routes"]

#: the units of indicators, as a chart names them
UNITS = {"vehicles/day": N_("vehicles a day")}
#: an indicator's chart: its title (the dashboard's heading) and its reference line's label
CHART_TEXTS: dict[str, tuple[str, str]] = {
    "pm10": (N_("Particulate matter (PM10) at %(label)s"), N_("EU daily limit")),
    "traffic": (N_("Traffic at %(label)s"), ""),
    "water": (N_("Water level at %(label)s"), N_("alert threshold")),
}


def _summary(dataset: Dataset, lang: str) -> dict[str, Any]:
    """What a listing shows of a data set."""
    return {
        "id": dataset.id,
        "title": text_in(dataset.title, lang),
        "description": text_in(dataset.description, lang),
        "owner": dataset.owner_org,
        "theme": dataset.theme or "",
        "policy": dataset.policy_kind,
        "license": dataset.license or "",
        "modified": dataset.modified_at,
        "types": [short_name(t) for t in dataset.entity_types],
        "scope": dataset.scope or "",
    }


def routes(portal: Portal) -> list[BaseRoute]:
    """The data-space pages' routes."""
    catalogue = Catalogue(portal.governance)

    async def home(request: Request) -> Response:
        reader = await portal.reader(request)
        datasets, _ = await catalogue.search(reader.principal, reader.lang)
        found = await places(portal.broker, await portal.readable(reader))
        hub = await highlights(portal.hub, reader.lang) if portal.hub is not None else {}
        return await portal.render(
            request,
            "home.html",
            {
                "recent": [_summary(d, reader.lang) for d in datasets[:5]],
                "places": found,
                **hub,
            },
        )

    async def catalogue_page(request: Request) -> Response:
        reader = await portal.reader(request)
        q = request.query_params
        chosen = {name: q.get(name, "") for name in ("theme", "owner", "policy")}
        text = q.get("q", "")[:200]
        datasets, facets = await catalogue.search(
            reader.principal, reader.lang, text=text, **chosen
        )
        return await portal.render(
            request,
            "catalogue.html",
            {
                "datasets": [_summary(d, reader.lang) for d in datasets],
                "facets": facets,
                "chosen": chosen,
                "text": text,
                "themes": THEMES,
            },
        )

    async def find(request: Request) -> tuple[DatasetView, Any]:
        reader = await portal.reader(request)
        dataset_id = request.path_params["dataset_id"]
        datasets = await catalogue.visible(reader.principal)
        dataset = next((d for d in datasets if d.id == dataset_id), None)
        if dataset is None:
            raise ResourceNotFound(f"no data set {dataset_id!r}")
        return DatasetView(portal.broker, portal.governance, dataset), reader

    async def dataset_page(request: Request) -> Response:
        view, reader = await find(request)
        return await render_dataset(request, view, reader)

    async def render_dataset(
        request: Request,
        view: DatasetView,
        reader: Any,
        *,
        purpose: str = "",
        problem: str = "",
        status: int = 200,
    ) -> Response:
        docs = await view.entities(reader.principal)
        readable = await view.readable(reader.principal)
        series = numeric_attributes(docs)
        q = request.query_params
        period = q.get("period", "7d")
        if period not in PERIODS:
            raise BadRequestData(f"period is one of {', '.join(PERIODS)}")
        aggregation = q.get("aggr", "avg")
        if aggregation not in AGGREGATIONS:
            raise BadRequestData(f"aggr is one of {', '.join(AGGREGATIONS)}")
        chosen_series = q.get("series", "")
        options = [f"{entity}|{attr}" for entity, attr in series]
        if chosen_series and chosen_series not in options:
            raise BadRequestData("the chosen series is not one of this data set's")
        chart = None
        if options:
            entity_id, attr = (chosen_series or options[0]).split("|", 1)
            choice = ChartChoice(entity_id, attr, period, aggregation)
            now = datetime.now(UTC)
            chart = {
                "choice": choice,
                "url": choice.temporal_url(now),
                "series_url": choice.series_url(view.dataset.id, now),
                "value": f"{entity_id}|{attr}",
            }
        labels = {d["id"]: label_of(d) for d in docs}
        org = reader.principal.org_id if reader.principal is not None else None
        requested = False
        if reader.principal is not None and readable is None:
            requests = await portal.governance.list_access_requests(
                reader.principal, reader.principal.org_id
            )
            requested = any(
                r.dataset_id == view.dataset.id and r.status == "pending" and r.requester_org == org
                for r in requests
            )
        return await portal.render(
            request,
            "dataset.html",
            {
                "dataset": _summary(view.dataset, reader.lang),
                "readable": readable is not None,
                "entities": [
                    {
                        "id": d["id"],
                        "label": labels[d["id"]],
                        "types": [short_name(t) for t in d["type"]],
                        "values": current_values(d),
                    }
                    for d in docs
                ],
                "geojson": orjson.dumps(features(docs)).decode() if readable is not None else "",
                "series": [
                    (o, f"{labels.get(o.split('|')[0], o)} — {o.split('|')[1]}") for o in options
                ],
                "chart": chart,
                "periods": list(PERIODS),
                "aggregations": AGGREGATIONS,
                "ngsild_url": view.ngsild_url(),
                "requested": requested,
                "sent": q.get("sent") == "1",
                "purpose": purpose,
                "problem": problem,
            },
            status=status,
        )

    async def download_csv(request: Request) -> Response:
        view, reader = await find(request)
        docs = await view.entities(reader.principal)
        if await view.readable(reader.principal) is None:
            raise ResourceNotFound("you may not read this data set; request access on its page")
        return Response(
            csv_text(docs).encode("utf-8"),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{view.dataset.id}.csv"'},
        )

    async def download_geojson(request: Request) -> Response:
        view, reader = await find(request)
        docs = await view.entities(reader.principal)
        if await view.readable(reader.principal) is None:
            raise ResourceNotFound("you may not read this data set; request access on its page")
        return Response(
            orjson.dumps(features(docs)),
            media_type="application/geo+json",
            headers={"Content-Disposition": f'attachment; filename="{view.dataset.id}.geojson"'},
        )

    async def series(request: Request) -> Response:
        view, reader = await find(request)
        params = dict(request.query_params)
        entity_id = params.pop("id", "")
        body = await view.series(reader.principal, entity_id, params)
        return Response(orjson.dumps(body), media_type="application/json")

    async def request_access(request: Request) -> Response:
        view, reader = await find(request)
        if reader.principal is None:
            raise Unauthenticated("sign in to request access")
        form = await request.form()
        purpose = str(form.get("purpose", ""))
        if not purpose.strip() or len(purpose) > 500:
            # the form again, with the problem next to the field (GOV.UK error pattern)
            return await render_dataset(
                request, view, reader, purpose=purpose, status=400, problem="purpose"
            )
        await portal.governance.request_access(reader.principal, view.dataset.id, purpose)
        return RedirectResponse(f"/datasets/{view.dataset.id}?sent=1#access", status_code=303)

    async def municipalities_page(request: Request) -> Response:
        reader = await portal.reader(request)
        found = await places(portal.broker, await portal.readable(reader))
        return await portal.render(request, "municipalities.html", {"places": found})

    async def dashboard_page(request: Request) -> Response:
        reader = await portal.reader(request)
        place = request.path_params["place"]
        dashboard = Dashboard(portal.broker, await portal.readable(reader))
        docs, indicators = await dashboard.indicators(place)
        return await portal.render(
            request,
            "dashboard.html",
            {
                "place": place,
                "indicators": indicators,
                "entities": [
                    {
                        "id": d["id"],
                        "label": label_of(d),
                        "types": [short_name(t) for t in d["type"]],
                        "values": current_values(d),
                    }
                    for d in docs
                ],
                "live_url": "/live/entities?"
                + urlencode({"id": ",".join(d["id"] for d in docs), "options": "keyValues"}),
            },
        )

    async def indicator(request: Request) -> tuple[str, str, Indicator]:
        reader = await portal.reader(request)
        place, key = request.path_params["place"], request.path_params["indicator"]
        dashboard = Dashboard(portal.broker, await portal.readable(reader))
        _, indicators = await dashboard.indicators(place)
        wanted = [i for i in indicators if f"{i.key}-{i.entity_id.rsplit(':', 1)[-1]}" == key]
        if not wanted:
            raise ResourceNotFound(f"no indicator {key!r} for {place!r}")
        return place, key, wanted[0]

    async def indicator_csv(request: Request) -> Response:
        place, key, found = await indicator(request)
        return Response(
            found.csv().encode("utf-8"),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{place}-{key}.csv"'},
        )

    async def indicator_png(request: Request) -> Response:
        place, key, found = await indicator(request)
        reader = await portal.reader(request)
        lang = reader.lang
        title, reference = CHART_TEXTS[found.key]
        limit = {"pm10": found.figures.get("limit"), "water": found.figures.get("threshold")}.get(
            found.key
        )
        formats = i18n.Formats(reader.lang)
        png = charts.indicator_png(
            found,
            title=portal.gettext(lang, title, label=found.entity_label),
            source=portal.gettext(
                lang,
                N_("Source: smartregion, %(place)s, %(date)s"),
                place=place,
                date=formats.date(datetime.now(UTC)),
            ),
            reference=(float(limit), portal.gettext(lang, reference))
            if limit is not None and reference
            else None,
            unit=portal.gettext(lang, UNITS.get(found.unit, found.unit)),
            lang=reader.lang,
            number=lambda v, digits: formats.number(v, digits),
        )
        return Response(
            png,
            media_type="image/png",
            headers={"Content-Disposition": f'attachment; filename="{place}-{key}.png"'},
        )

    return [
        Route("/", home, methods=["GET"]),
        Route("/municipalities", municipalities_page, methods=["GET"]),
        Route("/municipalities/{place}", dashboard_page, methods=["GET"]),
        Route("/municipalities/{place}/{indicator}.csv", indicator_csv, methods=["GET"]),
        Route("/municipalities/{place}/{indicator}.png", indicator_png, methods=["GET"]),
        Route("/datasets", catalogue_page, methods=["GET"]),
        Route("/datasets/{dataset_id}", dataset_page, methods=["GET"]),
        Route("/datasets/{dataset_id}/download.csv", download_csv, methods=["GET"]),
        Route("/datasets/{dataset_id}/download.geojson", download_geojson, methods=["GET"]),
        Route("/datasets/{dataset_id}/series", series, methods=["GET"]),
        Route("/datasets/{dataset_id}/access", request_access, methods=["POST"]),
    ]
