"""HTTP handlers for the @context management API /jsonldContexts (NGSI-LD 1.8 §6.29–§6.30)."""

from __future__ import annotations

import orjson
from starlette.requests import Request
from starlette.responses import Response

from smartregion.api.ngsild.exchange import Exchange
from smartregion.api.ngsild.negotiation import JSON, JSON_LD
from smartregion.broker.contexts import hosted_location


async def list_contexts(request: Request) -> Response:
    """GET /jsonldContexts: URLs, or detail objects with details=true."""
    ex = Exchange(request)
    ex.allow("details", "kind")
    ex.accept((JSON, JSON_LD))
    data = ex.broker.contexts.list(
        details=ex.bool_param("details"), kind=ex.params.get("kind"), tenant=ex.tenant
    )
    return ex.json(data, media_type=JSON, embed_context=False)


async def add_context(request: Request) -> Response:
    """POST /jsonldContexts: host a context; 201 with the Location path of the hosted copy."""
    ex = Exchange(request)
    ex.allow()
    writer = await ex.writer()  # a write: refuse anonymous callers unless allowed, and readers
    body = await ex.body((JSON, JSON_LD), take_context=False)
    url = await ex.broker.contexts.add(
        body.data, tenant=ex.tenant, base_url=_base_url(ex), owner=writer.org_id
    )
    return ex.empty(201, {"Location": hosted_location(url)})


async def serve_context(request: Request) -> Response:
    """GET /jsonldContexts/{contextId}: the document as stored, or its details with details=true."""
    ex = Exchange(request)
    ex.allow("details")
    data = ex.broker.contexts.get(
        request.path_params["context_id"], details=ex.bool_param("details"), tenant=ex.tenant
    )
    return Response(orjson.dumps(data), media_type=JSON)


async def delete_context(request: Request) -> Response:
    """DELETE /jsonldContexts/{contextId} (with reload=true for cached contexts)."""
    ex = Exchange(request)
    ex.allow("reload")
    writer = await ex.writer()  # a write: refuse anonymous callers unless allowed, and readers
    reload = ex.bool_param("reload")
    await ex.broker.contexts.delete(
        request.path_params["context_id"],
        reload=reload,
        tenant=ex.tenant,
        writer=writer,
        unowned=ex.settings.default_org,
    )
    return ex.empty()


def _base_url(ex: Exchange) -> str:
    if ex.settings.public_base_url:
        return ex.settings.public_base_url.rstrip("/")
    return str(ex.request.base_url).rstrip("/")
