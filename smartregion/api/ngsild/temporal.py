"""The temporal API: `/temporal/entities` and `/temporal/entityOperations/query`
(NGSI-LD 1.8 §6.18–§6.24; the service is broker/temporal.py, the representations
core/temporal_rendering.py)."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import Response

from smartregion.api.ngsild.entities import (
    BASE,
    _attrs_param,
    _entity_id,
    _projection,
    query_request,
)
from smartregion.api.ngsild.exchange import Exchange, require_no_body_context
from smartregion.api.ngsild.negotiation import JSON, JSON_LD
from smartregion.broker.queries import QueryRequest
from smartregion.broker.temporal import TemporalPage
from smartregion.core.entities import is_uri, validate_entity_id
from smartregion.core.rendering import RenderOptions
from smartregion.core.temporal import TemporalQuery, parse_temporal_query
from smartregion.core.temporal_rendering import (
    aggregate_entity,
    render_aggregated_entity,
    render_temporal_entity,
)
from smartregion.errors import BadRequestData, NonExistingTenant, ResourceNotFound

TEMPORAL_PARAMS = (
    "timerel",
    "timeAt",
    "endTimeAt",
    "timeproperty",
    "lastN",
    "options",
    "format",
    "aggrMethods",
    "aggrPeriodDuration",
    "attrs",
    "pick",
    "omit",
    "lang",
    "datasetId",
)
QUERY_PARAMS = (
    *TEMPORAL_PARAMS,
    "id",
    "idPattern",
    "type",
    "q",
    "georel",
    "geometry",
    "coordinates",
    "geoproperty",
    "scopeQ",
    "limit",
    "offset",
    "count",
    "csf",
    "orderBy",
)
TEMPORAL_MEDIA = (JSON, JSON_LD)


def _render_options(ex: Exchange, vocab: Any, query: TemporalQuery) -> RenderOptions:
    attrs = _attrs_param(ex)
    projection = _projection(ex)
    return RenderOptions(
        format="normalized",
        sys_attrs=query.sys_attrs,
        attrs=frozenset(vocab.expand_term(a) for a in attrs) if attrs is not None else None,
        projection=projection.expand(vocab.expand_term) if projection is not None else None,
        lang=ex.params.get("lang"),
        dataset_id=ex.params.get("datasetId"),
    )


def _render(
    doc: dict[str, Any], vocab: Any, query: TemporalQuery, opts: RenderOptions, page: TemporalPage
) -> Any:
    if query.format == "aggregatedValues":
        aggregates = page.aggregates.get(doc["id"])
        if aggregates is None:  # not answered from roll-ups: from the instances read
            aggregates = aggregate_entity(doc, vocab, query, opts)
        return render_aggregated_entity(doc, aggregates, vocab, opts)
    return render_temporal_entity(doc, vocab, query, opts)


async def create_or_update(request: Request) -> Response:
    """POST /temporal/entities (§6.18.3.1): 201 with Location when created, else 204."""
    ex = Exchange(request)
    ex.allow()
    body = await ex.body()
    require_no_body_context(body)
    vocab = await ex.vocab()
    created = await ex.broker.temporal.upsert(ex.tenant, body.data, vocab, writer=await ex.writer())
    if not created:
        return ex.empty(204)
    entity_id = body.data["id"] if isinstance(body.data, dict) else ""
    return ex.empty(201, {"Location": f"{BASE}/temporal/entities/{quote(entity_id, safe=':/')}"})


async def query(request: Request) -> Response:
    """GET /temporal/entities (§6.18.3.2)."""
    ex = Exchange(request)
    ex.allow(*QUERY_PARAMS)
    media = ex.accept(TEMPORAL_MEDIA)
    vocab = await ex.vocab()
    tq = parse_temporal_query(ex.params, require_timerel=True)
    # §5.7.4.4, as for entity queries: type, attrs, q, a geo-query or scopeQ, or local=true
    minimal = ("type", "attrs", "q", "georel", "scopeQ")
    if not any(k in ex.params for k in minimal) and not ex.bool_param("local"):
        raise BadRequestData(
            "a temporal query needs at least one of type, attrs, q, georel, scopeQ or local=true"
        )
    return await _respond_query(ex, vocab, tq, media, query_request(ex))


async def query_post(request: Request) -> Response:
    """POST /temporal/entityOperations/query (§6.24.3.1): the Query in the body."""
    ex = Exchange(request)
    ex.allow("limit", "offset", "count", "options", "format", "lastN", "lang", "datasetId")
    media = ex.accept(TEMPORAL_MEDIA)
    body = await ex.body()
    data = body.data
    if not isinstance(data, dict) or data.get("type") != "Query":
        raise BadRequestData("the body must be a Query object (type Query)")
    vocab = await ex.vocab()
    temporal = data.get("temporalQ") or {}
    if not isinstance(temporal, dict):
        raise BadRequestData("temporalQ must be an object")
    params: dict[str, Any] = {**{k: v for k, v in ex.params.items()}, **temporal}
    tq = parse_temporal_query(params, require_timerel=True)
    req = QueryRequest(
        limit=ex.int_param("limit"),
        offset=ex.int_param("offset") or 0,
        count=ex.bool_param("count"),
    )
    entities = data.get("entities")
    if entities is not None:
        if not isinstance(entities, list) or not all(isinstance(e, dict) for e in entities):
            raise BadRequestData("entities must be an array of EntitySelector objects")
        types = [e["type"] for e in entities if isinstance(e.get("type"), str)]
        ids = [e["id"] for e in entities if isinstance(e.get("id"), str)]
        patterns = [e["idPattern"] for e in entities if isinstance(e.get("idPattern"), str)]
        req.type_expr = "|".join(types) or None
        req.ids = ids or None
        req.id_pattern = "|".join(f"(?:{p})" for p in patterns) or None
    attrs = data.get("attrs")
    if attrs is not None:
        if not isinstance(attrs, list) or not all(isinstance(a, str) for a in attrs):
            raise BadRequestData("attrs must be an array of attribute names")
        req.attrs = attrs or None
    for member, field in (("q", "q"), ("scopeQ", "scope_q")):
        value = data.get(member)
        if value is not None:
            if not isinstance(value, str):
                raise BadRequestData(f"{member} must be a string")
            setattr(req, field, value)
    geo = data.get("geoQ")
    if geo is not None:
        if not isinstance(geo, dict):
            raise BadRequestData("geoQ must be an object")
        req.georel, req.geometry = geo.get("georel"), geo.get("geometry")
        req.coordinates, req.geoproperty = geo.get("coordinates"), geo.get("geoproperty")
    return await _respond_query(ex, vocab, tq, media, req)


async def _respond_query(
    ex: Exchange, vocab: Any, tq: TemporalQuery, media: str, req: QueryRequest
) -> Response:
    if not await ex.broker.queries.tenant_known(ex.tenant):
        raise NonExistingTenant(f"tenant {ex.tenant!r} does not exist")
    attrs = req.attrs
    req.attrs = None
    planned = ex.broker.queries.plan(req, vocab)
    selection = planned.query
    expanded = frozenset(vocab.expand_term(a) for a in attrs) if attrs else None
    opts = _render_options(ex, vocab, tq)
    page = await ex.broker.temporal.query(
        ex.tenant,
        selection,
        tq,
        expanded,
        readable=await ex.readable(),
        order=planned.order,
        dataset_ids=_dataset_ids(ex),
        keeps=opts.keeps,
    )
    data = [_render(doc, vocab, tq, opts, page) for doc in page.docs]
    if opts.projection is not None:
        data = [body for body in data if body]  # §4.21: nothing left -> not returned
    headers = {}
    if selection.count and page.count is not None:
        headers["NGSILD-Results-Count"] = str(page.count)
    status = 200
    if page.cut is not None:
        status = 206
        headers["Content-Range"] = page.cut.header()
    return ex.json(data, media_type=media, headers=headers, status=status)


def _dataset_ids(ex: Exchange) -> frozenset[str] | None:
    """The `datasetId` filter as stored ("" is the default instance, `@none` in the API)."""
    raw = ex.list_param("datasetId")
    if raw is None:
        return None
    return frozenset("" if d == "@none" else d for d in raw)


async def retrieve(request: Request) -> Response:
    """GET /temporal/entities/{entityId} (§6.19.3.1)."""
    ex = Exchange(request)
    ex.allow(*TEMPORAL_PARAMS)
    media = ex.accept(TEMPORAL_MEDIA)
    entity_id = _entity_id(request)
    vocab = await ex.vocab()
    tq = parse_temporal_query(ex.params)
    opts = _render_options(ex, vocab, tq)
    page = await ex.broker.temporal.retrieve(
        ex.tenant,
        entity_id,
        tq,
        opts.attrs,
        readable=await ex.readable(),
        dataset_ids=_dataset_ids(ex),
        keeps=opts.keeps,
    )
    doc = page.docs[0]
    if opts.attrs is not None and not doc["attrs"]:
        raise ResourceNotFound("the entity has none of the requested attributes")
    data = _render(doc, vocab, tq, opts, page)
    if opts.projection is not None and not data:
        raise ResourceNotFound("pick/omit leave no member of the entity")
    if page.cut is None:
        return ex.json(data, media_type=media)
    return ex.json(data, media_type=media, status=206, headers={"Content-Range": page.cut.header()})


async def delete(request: Request) -> Response:
    """DELETE /temporal/entities/{entityId} (§6.19.3.2)."""
    ex = Exchange(request)
    ex.allow()
    if "/attrs/" in request.path_params["entity_id"]:
        # `/temporal/entities/{id}/attrs//{instanceId}`: the attribute name is missing
        raise BadRequestData("the attribute name is missing from the path")
    entity_id = _entity_id(request)
    await ex.broker.temporal.delete(ex.tenant, entity_id, writer=await ex.writer())
    return ex.empty(204)


async def add_attributes(request: Request) -> Response:
    """POST /temporal/entities/{entityId}/attrs (§6.20.3.1)."""
    ex = Exchange(request)
    ex.allow()
    entity_id = request.path_params["entity_id"]
    validate_entity_id(entity_id)
    body = await ex.body()
    require_no_body_context(body)
    vocab = await ex.vocab()
    await ex.broker.temporal.add_attributes(
        ex.tenant, entity_id, body.data, vocab, writer=await ex.writer()
    )
    return ex.empty(204)


def _instance_id(request: Request) -> str:
    instance_id: str = request.path_params["instance_id"]
    if not is_uri(instance_id):
        raise BadRequestData(f"{instance_id!r} is not a valid instanceId (a URI)")
    return instance_id


def _attr_name(request: Request) -> str:
    name: str = request.path_params["attr_id"]
    if not name or any(c in name for c in "<>\"'=;(){} "):
        raise BadRequestData(f"{name!r} is not a valid attribute name")
    return name


async def delete_attribute(request: Request) -> Response:
    """DELETE /temporal/entities/{entityId}/attrs/{attrId} (§6.21.3.1)."""
    ex = Exchange(request)
    ex.allow("datasetId", "deleteAll")
    entity_id = request.path_params["entity_id"]
    validate_entity_id(entity_id)
    name = _attr_name(request)
    vocab = await ex.vocab()
    await ex.broker.temporal.delete_attribute(
        ex.tenant,
        entity_id,
        vocab.expand_term(name),
        dataset_id=ex.params.get("datasetId"),
        delete_all=ex.bool_param("deleteAll"),
        writer=await ex.writer(),
    )
    return ex.empty(204)


async def modify_instance(request: Request) -> Response:
    """PATCH /temporal/entities/{entityId}/attrs/{attrId}/{instanceId} (§6.22.3.1)."""
    ex = Exchange(request)
    ex.allow()
    entity_id = request.path_params["entity_id"]
    validate_entity_id(entity_id)
    name = _attr_name(request)
    body = await ex.body()
    require_no_body_context(body)
    vocab = await ex.vocab()
    data = body.data
    # the body is the instance itself, or an attribute fragment naming it
    fragment = data if isinstance(data, dict) and name in data else {name: data}
    await ex.broker.temporal.modify_instance(
        ex.tenant,
        entity_id,
        vocab.expand_term(name),
        _instance_id(request),
        fragment,
        vocab,
        writer=await ex.writer(),
    )
    return ex.empty(204)


async def delete_instance(request: Request) -> Response:
    """DELETE /temporal/entities/{entityId}/attrs/{attrId}/{instanceId} (§6.22.3.2)."""
    ex = Exchange(request)
    ex.allow()
    entity_id = request.path_params["entity_id"]
    validate_entity_id(entity_id)
    name = _attr_name(request)
    vocab = await ex.vocab()
    await ex.broker.temporal.delete_instance(
        ex.tenant,
        entity_id,
        vocab.expand_term(name),
        _instance_id(request),
        writer=await ex.writer(),
    )
    return ex.empty(204)
