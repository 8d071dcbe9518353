"""`GET /catalog`: the DCAT-AP Vlaanderen 2.0 catalogue of the data sets the caller may read,
in Turtle (default), JSON-LD, RDF/XML, N-Triples, N-Quads or TriG."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from smartregion.api.auth import principal_of
from smartregion.api.ldes.routes import base_url, respond
from smartregion.errors import InvalidRequest
from smartregion.ldes.catalog import CatalogInfo, DatasetEntry, catalog_triples
from smartregion.ldes.serialisation import FORMATS, negotiate, render
from smartregion.ldes.streams import EventStreams, Rendered, entity_tag

__all__ = ["catalog"]


async def catalog(request: Request) -> Response:
    """GET /catalog."""
    if request.query_params:
        raise InvalidRequest("the catalogue takes no query parameters")
    streams: EventStreams = request.app.state.streams
    settings = request.app.state.settings
    media = negotiate(request.headers.get("accept"), tuple(FORMATS))
    principal = principal_of(request.scope)
    governance = streams.governance
    datasets = await streams.readable_datasets(principal)
    orgs = {o.id: o for o in await governance.list_organisations()}
    entries = []
    for dataset, view in datasets:
        start = await streams.coverage_start(dataset)
        extent = await streams.coverage_extent(dataset, view)
        entries.append(DatasetEntry(dataset, orgs.get(dataset.owner_org), start, extent))
    info = CatalogInfo(
        base=base_url(request),
        title=settings.catalog_title,
        description=settings.catalog_description,
        publisher=orgs.get(settings.default_org),
        license=settings.catalog_license,
        contact_email=settings.catalog_contact_email,
    )
    body = render(catalog_triples(info, entries), media)
    everyone = principal is None
    rendered = Rendered(body, media, entity_tag(body), False, everyone)
    # what is listed depends on the caller: shared caches keep only the anonymous catalogue
    return respond(
        request, rendered, max_age=streams.config.max_age, immutable_max_age=0, per_caller=True
    )
