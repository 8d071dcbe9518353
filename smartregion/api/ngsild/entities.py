"""HTTP handlers for /entities and /entities/{id}/attrs (NGSI-LD 1.8 §6.4–§6.7)."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import Response

from smartregion.api.ngsild.exchange import Exchange, require_no_body_context
from smartregion.api.ngsild.negotiation import GEO_JSON, JSON, JSON_LD, MERGE_PATCH
from smartregion.api.ngsild.problems import problem_body
from smartregion.broker.queries import QueryRequest
from smartregion.core.entities import validate_entity_id
from smartregion.core.jsonld import TermMap
from smartregion.core.mutations import SCOPE, UpdateOutcome
from smartregion.core.rendering import (
    RenderOptions,
    render_entity,
    render_geojson_collection,
    render_geojson_feature,
)
from smartregion.errors import BadRequestData, MethodNotAllowed
from smartregion.storage.base import EntityQuery

ENTITY_MEDIA = (JSON, JSON_LD, GEO_JSON)

# NGSI-LD 1.8 §6.4.3.2 / §6.5.3.1: the parameters of query and retrieve
PROJECTION_PARAMS = ("attrs", "pick", "omit", "geometryProperty", "lang", "options", "format", "datasetId",
                     "join", "joinLevel", "containedBy", "entityMap")
RETRIEVE_PARAMS = (*PROJECTION_PARAMS, "type")
QUERY_PARAMS = (*PROJECTION_PARAMS, "id", "idPattern", "type", "q", "georel", "geometry", "coordinates",
                "geoproperty", "scopeQ", "limit", "offset", "count", "csf", "orderBy")
PURGE_PARAMS = ("id", "idPattern", "type", "q", "scopeQ", "georel", "geometry", "coordinates",
                "geoproperty", "keep", "drop")
BASE = "/ngsi-ld/v1"


def _entity_id(request: Request) -> str:
    entity_id: str = request.path_params["entity_id"]
    if entity_id.endswith("/attrs"):
        # `/entities/{id}/attrs` (an attribute path without a name) only takes POST and PATCH
        raise MethodNotAllowed(f"{request.method} is not allowed on {request.url.path}", allow="POST, PATCH")
    validate_entity_id(entity_id)
    return entity_id


def render_options(ex: Exchange, vocab: TermMap) -> RenderOptions:
    """Projection and representation options of a read (§6.3.7, §6.3.9, §4.15)."""
    attrs = ex.list_param("attrs")
    pick = ex.list_param("pick")
    omit = ex.list_param("omit")
    if pick is not None and omit is not None:
        raise BadRequestData("pick and omit must not be used together")
    keep: set[str] | None = None
    pick_id = pick_type = True
    if attrs is not None:
        keep = {vocab.expand_term(a) for a in attrs}
    omitted: set[str] = set()
    if pick is not None:
        pick_id = "id" in pick
        pick_type = "type" in pick
        picked = {vocab.expand_term(a) for a in pick if a not in ("id", "type")}
        keep = picked if keep is None else keep & picked
        if "scope" not in pick:
            omitted.add(SCOPE)
    if omit is not None:
        pick_id = "id" not in omit
        pick_type = "type" not in omit
        omitted = {vocab.expand_term(a) for a in omit if a not in ("id", "type")}
    geometry_property = ex.params.get("geometryProperty")
    return RenderOptions(
        format=ex.representation(),
        sys_attrs="sysAttrs" in ex.options(),
        attrs=frozenset(keep) if keep is not None else None,
        omit=frozenset(omitted),
        pick_id=pick_id,
        pick_type=pick_type,
        lang=ex.params.get("lang"),
        dataset_id=ex.params.get("datasetId"),
        geometry_property=vocab.expand_term(geometry_property) if geometry_property else None,
    )


def query_request(ex: Exchange) -> QueryRequest:
    """The entity query of a GET /entities (§6.4.3.2)."""
    p = ex.params
    return QueryRequest(
        ids=ex.list_param("id"),
        id_pattern=p.get("idPattern"),
        type_expr=p.get("type"),
        attrs=ex.list_param("attrs") or ex.list_param("pick"),
        q=p.get("q"),
        georel=p.get("georel"),
        geometry=p.get("geometry"),
        coordinates=p.get("coordinates"),
        geoproperty=p.get("geoproperty"),
        scope_q=p.get("scopeQ"),
        limit=ex.int_param("limit"),
        offset=ex.int_param("offset") or 0,
        count=ex.bool_param("count"),
    )


async def create_entity(request: Request) -> Response:
    """POST /entities (§6.4.3.1): 201 with Location."""
    ex = Exchange(request)
    ex.allow()
    body = await ex.body()
    require_no_body_context(body)
    vocab = await ex.vocab()
    entity_id = await ex.broker.entities.create(ex.tenant, body.data, vocab, owner=ex.owner)
    return ex.empty(201, {"Location": f"{BASE}/entities/{quote(entity_id, safe=':/')}"})


async def query_entities(request: Request) -> Response:
    """GET /entities (§6.4.3.2)."""
    ex = Exchange(request)
    ex.allow(*QUERY_PARAMS)
    media = ex.accept(ENTITY_MEDIA)
    vocab = await ex.vocab()
    req = query_request(ex)
    # NGSI-LD 1.8 §6.4.3.2: a query must select by type, attrs, q or geo (or ask local=true)
    if not any(k in ex.params for k in ("type", "attrs", "q", "georel", "scopeQ")) and not ex.bool_param("local"):
        raise BadRequestData("a query needs at least one of type, attrs, q, georel or local=true")
    query = ex.broker.queries.build(req, vocab)
    opts = render_options(ex, vocab)
    return await respond_query(ex, query, opts, vocab, media)


async def respond_query(
    ex: Exchange, query: EntityQuery, opts: RenderOptions, vocab: TermMap, media: str
) -> Response:
    """Run a built query and render the page with count and next-page link (§6.3.10, §6.3.13)."""
    if not await ex.broker.queries.tenant_known(ex.tenant):
        from smartregion.errors import NonExistingTenant

        raise NonExistingTenant(f"tenant {ex.tenant!r} does not exist")
    result = await ex.broker.queries.run(ex.tenant, query)
    headers: dict[str, str] = {}
    if query.count and result.count is not None:
        headers["NGSILD-Results-Count"] = str(result.count)
    links = _page_links(ex, query, len(result.docs), result.count)
    if links:
        headers["Link"] = ", ".join(links)
    data: Any
    if media == GEO_JSON:
        data = render_geojson_collection(result.docs, vocab, opts)
    else:
        data = [render_entity(doc, vocab, opts) for doc in result.docs]
    response = ex.json(data, media_type=media, headers=headers)
    if links and media == JSON:
        response.headers["Link"] = ", ".join([ex.link_header(), *links])
    return response


def _page_links(ex: Exchange, query: EntityQuery, returned: int, total: int | None) -> list[str]:
    if ex.request.method != "GET" or query.limit == 0:
        return []
    links = []
    params = dict(ex.params)
    if returned == query.limit and (total is None or query.offset + returned < total):
        params["offset"] = str(query.offset + query.limit)
        params["limit"] = str(query.limit)
        links.append(f'<{ex.request.url.path}?{_encode(params)}>; rel="next"')
    if query.offset > 0:
        params["offset"] = str(max(0, query.offset - query.limit))
        params["limit"] = str(query.limit)
        links.append(f'<{ex.request.url.path}?{_encode(params)}>; rel="prev"')
    return links


def _encode(params: dict[str, str]) -> str:
    from urllib.parse import urlencode

    return urlencode(params, safe=":/,;")


async def retrieve_entity(request: Request) -> Response:
    """GET /entities/{entityId} (§6.5.3.1)."""
    ex = Exchange(request)
    ex.allow(*RETRIEVE_PARAMS)
    media = ex.accept(ENTITY_MEDIA)
    entity_id = _entity_id(request)
    vocab = await ex.vocab()
    opts = render_options(ex, vocab)
    doc = await ex.broker.entities.retrieve(ex.tenant, entity_id)
    if media == GEO_JSON:
        return ex.json(render_geojson_feature(doc, vocab, opts), media_type=media)
    return ex.json(render_entity(doc, vocab, opts), media_type=media)


async def delete_entity(request: Request) -> Response:
    """DELETE /entities/{entityId} (§6.5.3.2)."""
    ex = Exchange(request)
    ex.allow("type")
    await ex.broker.entities.delete(ex.tenant, _entity_id(request), owner=ex.owner)
    return ex.empty()


async def replace_entity(request: Request) -> Response:
    """PUT /entities/{entityId} (§6.5.3.3)."""
    ex = Exchange(request)
    ex.allow("options")
    entity_id = _entity_id(request)
    body = await ex.body()
    require_no_body_context(body)
    vocab = await ex.vocab()
    await ex.broker.entities.replace(ex.tenant, entity_id, body.data, vocab, owner=ex.owner)
    return ex.empty()


async def merge_entity(request: Request) -> Response:
    """PATCH /entities/{entityId} (§6.5.3.4, merge)."""
    ex = Exchange(request)
    ex.allow("options", "format")
    entity_id = _entity_id(request)
    body = await ex.body((JSON, JSON_LD, MERGE_PATCH))
    require_no_body_context(body)
    vocab = await ex.vocab()
    await ex.broker.entities.merge(ex.tenant, entity_id, body.data, vocab, owner=ex.owner)
    return ex.empty()


def outcome_response(ex: Exchange, outcome: UpdateOutcome, vocab: TermMap) -> Response:
    """204 when every attribute was updated, else 207 with an UpdateResult (§5.2.18)."""
    if not outcome.not_updated:
        return ex.empty()
    # §5.2.18: UpdateResult names attributes by their expanded IRIs (as the ETSI suite checks, 010_04)
    data = {
        "updated": list(outcome.updated),
        "notUpdated": [{"attributeName": n, "reason": reason} for n, reason in outcome.not_updated],
    }
    return ex.json(data, media_type=JSON, status=207)


async def append_attributes(request: Request) -> Response:
    """POST /entities/{entityId}/attrs (§6.6.3.1)."""
    ex = Exchange(request)
    ex.allow("options")
    entity_id = _entity_id(request)
    body = await ex.body()
    require_no_body_context(body)
    vocab = await ex.vocab()
    outcome = await ex.broker.entities.append_attributes(
        ex.tenant, entity_id, body.data, vocab, owner=ex.owner,
        no_overwrite="noOverwrite" in ex.options(),
    )
    return outcome_response(ex, outcome, vocab)


async def update_attributes(request: Request) -> Response:
    """PATCH /entities/{entityId}/attrs (§6.6.3.2)."""
    ex = Exchange(request)
    ex.allow("options")
    entity_id = _entity_id(request)
    body = await ex.body()
    require_no_body_context(body)
    vocab = await ex.vocab()
    outcome = await ex.broker.entities.update_attributes(
        ex.tenant, entity_id, body.data, vocab, owner=ex.owner
    )
    return outcome_response(ex, outcome, vocab)


async def partial_update_attribute(request: Request) -> Response:
    """PATCH /entities/{entityId}/attrs/{attrId} (§6.7.3.1)."""
    ex = Exchange(request)
    ex.allow("options")
    entity_id = _entity_id(request)
    body = await ex.body((JSON, JSON_LD, MERGE_PATCH))
    require_no_body_context(body)
    vocab = await ex.vocab()
    await ex.broker.entities.partial_update_attribute(
        ex.tenant, entity_id, request.path_params["attr_id"], body.data, vocab, owner=ex.owner
    )
    return ex.empty()


async def replace_attribute(request: Request) -> Response:
    """PUT /entities/{entityId}/attrs/{attrId} (§6.7.3.3)."""
    ex = Exchange(request)
    ex.allow("options")
    entity_id = _entity_id(request)
    body = await ex.body()
    require_no_body_context(body)
    vocab = await ex.vocab()
    await ex.broker.entities.replace_attribute(
        ex.tenant, entity_id, request.path_params["attr_id"], body.data, vocab, owner=ex.owner
    )
    return ex.empty()


async def delete_attribute(request: Request) -> Response:
    """DELETE /entities/{entityId}/attrs/{attrId} (§6.7.3.2)."""
    ex = Exchange(request)
    ex.allow("datasetId", "deleteAll", "lang")
    entity_id = _entity_id(request)
    vocab = await ex.vocab()
    await ex.broker.entities.delete_attribute(
        ex.tenant, entity_id, request.path_params["attr_id"], vocab, owner=ex.owner,
        dataset_id=ex.params.get("datasetId"), delete_all=ex.bool_param("deleteAll"),
    )
    return ex.empty()


def batch_error_body(entity_id: str | None, error: Any) -> dict[str, Any]:
    """One entry of BatchOperationResult.errors (§5.2.17 BatchEntityError)."""
    return {"entityId": entity_id, "error": problem_body(error)}
