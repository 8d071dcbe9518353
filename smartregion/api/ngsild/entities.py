"""HTTP handlers for /entities and /entities/{id}/attrs (NGSI-LD 1.8 §6.4–§6.7)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import Response

from smartregion.api.ngsild.exchange import Exchange, require_no_body_context
from smartregion.api.ngsild.negotiation import GEO_JSON, JSON, JSON_LD, MERGE_PATCH
from smartregion.api.ngsild.problems import problem_body
from smartregion.broker.linking import LinkedEntities, fetch_linked
from smartregion.broker.queries import QueryRequest
from smartregion.core.entities import validate_entity_id
from smartregion.core.jsonld import TermMap
from smartregion.core.mutations import UpdateOutcome
from smartregion.core.ordering import OrderKey
from smartregion.core.projection import CORE_MEMBERS, Projection, parse_omit, parse_pick
from smartregion.core.rendering import (
    RenderOptions,
    linked_targets,
    render_entity,
    render_geojson_collection,
    render_geojson_feature,
)
from smartregion.errors import BadRequestData, MethodNotAllowed, NonExistingTenant, ResourceNotFound
from smartregion.storage.base import EntityQuery

ENTITY_MEDIA = (JSON, JSON_LD, GEO_JSON)

# NGSI-LD 1.8 §6.4.3.2 / §6.5.3.1: the parameters of query and retrieve
PROJECTION_PARAMS = (
    "attrs",
    "pick",
    "omit",
    "geometryProperty",
    "lang",
    "options",
    "format",
    "datasetId",
    "join",
    "joinLevel",
    "containedBy",
    "entityMap",
)
RETRIEVE_PARAMS = (*PROJECTION_PARAMS, "type")
QUERY_PARAMS = (
    *PROJECTION_PARAMS,
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
PURGE_PARAMS = (
    "id",
    "idPattern",
    "type",
    "q",
    "scopeQ",
    "georel",
    "geometry",
    "coordinates",
    "geoproperty",
    "keep",
    "drop",
)
BASE = "/ngsi-ld/v1"
# NGSI-LD 1.8 §4.6.2: characters that cannot occur in an attribute name
_FORBIDDEN = frozenset("<>\"'=;(){}")
# rendered members that are not attributes
_NON_ATTRIBUTES = frozenset(
    {"id", "type", "scope", "createdAt", "modifiedAt", "deletedAt", "expiresAt"}
)


def _entity_id(request: Request) -> str:
    entity_id: str = request.path_params["entity_id"]
    if entity_id.endswith("/attrs"):
        # `/entities/{id}/attrs` (an attribute path without a name) only takes POST and PATCH
        raise MethodNotAllowed(
            f"{request.method} is not allowed on {request.url.path}", allow="POST, PATCH"
        )
    validate_entity_id(entity_id)
    return entity_id


def _attrs_param(ex: Exchange) -> list[str] | None:
    """The `attrs` list; BadRequestData for names that cannot be attributes (§4.6.2, §6.3.3)."""
    attrs = ex.list_param("attrs")
    if attrs is None:
        return None
    for name in attrs:
        # NGSI-LD 1.8 §5.7.2: id and type are entity members, never attribute names
        if name in ("id", "type") or any(c in _FORBIDDEN for c in name) or " " in name:
            raise BadRequestData(
                f"{name!r} is not a valid attribute name in attrs", title="Invalid attrs"
            )
    return attrs


def _projection(ex: Exchange) -> Projection | None:
    """The parsed pick/omit projection (§4.21), terms not yet expanded; None when neither given."""
    pick = ex.params.get("pick")
    omit = ex.params.get("omit")
    if pick is None and omit is None:
        return None
    if "attrs" in ex.params:
        raise BadRequestData(
            "attrs cannot be combined with pick or omit", title="Invalid projection"
        )
    picked = parse_pick(pick) if pick is not None else None
    omitted = parse_omit(omit) if omit is not None else None
    if picked is not None and omitted is not None:
        return picked.merge(omitted)
    return picked or omitted


def _join(ex: Exchange, body: Any) -> tuple[str | None, int]:
    """The linked entity retrieval mode and depth (§4.5.23, §6.3.21): join and joinLevel."""
    join: Any = ex.params.get("join")
    level: Any = ex.params.get("joinLevel")
    if isinstance(body, dict):  # POST /entityOperations/query carries them in the Query
        join = body.get("join", join)
        level = body.get("joinLevel", level)
    if join not in (None, "inline", "flat", "@none"):
        raise BadRequestData(
            f"join must be one of inline, flat, @none; got {join!r}", title="Invalid join"
        )
    if level is None:
        depth = 1
    else:
        try:
            depth = int(level)
        except (TypeError, ValueError):
            depth = 0
        if depth < 1 or isinstance(level, bool):
            raise BadRequestData(
                f"joinLevel must be a positive integer, got {level!r}", title="Invalid joinLevel"
            )
    return (None if join == "@none" else join), depth


def render_options(ex: Exchange, vocab: TermMap, body: Any = None) -> RenderOptions:
    """Projection and representation options of a read (§6.3.7, §6.3.9, §4.15, §4.21, §4.5.23).

    `body` is the Query object of a POST query, whose join/joinLevel members apply too.
    """
    attrs = _attrs_param(ex)
    projection = _projection(ex)
    join, join_level = _join(ex, body)
    geometry_property = ex.params.get("geometryProperty")
    return RenderOptions(
        format=ex.representation(),
        sys_attrs="sysAttrs" in ex.options(),
        attrs=frozenset(vocab.expand_term(a) for a in attrs) if attrs is not None else None,
        projection=projection.expand(vocab.expand_term) if projection is not None else None,
        lang=ex.params.get("lang"),
        dataset_id=ex.params.get("datasetId"),
        geometry_property=vocab.expand_term(geometry_property) if geometry_property else None,
        join=join,
        join_level=join_level,
    )


def query_request(ex: Exchange) -> QueryRequest:
    """The entity query of a GET /entities (§6.4.3.2)."""
    p = ex.params
    return QueryRequest(
        ids=ex.list_param("id"),
        id_pattern=p.get("idPattern"),
        type_expr=p.get("type"),
        attrs=_attrs_param(ex) or _picked_attributes(ex),
        q=p.get("q"),
        georel=p.get("georel"),
        geometry=p.get("geometry"),
        coordinates=p.get("coordinates"),
        geoproperty=p.get("geoproperty"),
        scope_q=p.get("scopeQ"),
        limit=ex.int_param("limit"),
        offset=ex.int_param("offset") or 0,
        count=ex.bool_param("count"),
        order_by=p.get("orderBy"),
    )


def _picked_attributes(ex: Exchange) -> list[str] | None:
    """The attributes of a pick that names no core member: the store may then filter on them.

    An entity with none of them would render as an empty object and be left out (§4.21), so
    selecting in the store keeps pages full and counts right.
    """
    raw = ex.params.get("pick")
    if raw is None:
        return None
    picked = parse_pick(raw).pick or frozenset()
    if not picked or picked & CORE_MEMBERS:
        return None
    return sorted(picked)


async def _fetch_linked(
    ex: Exchange, docs: list[dict[str, Any]], opts: RenderOptions
) -> LinkedEntities[RenderOptions]:
    """The entities the rendered relationships of `docs` link to, `opts.join_level` hops deep."""

    def follow(doc: dict[str, Any], state: RenderOptions) -> list[tuple[str, RenderOptions]]:
        return [(uri, state.for_linked(iri)) for iri, uri in linked_targets(doc, state)]

    return await fetch_linked(
        ex.broker.store,
        ex.tenant,
        [(doc, opts) for doc in docs],
        levels=opts.join_level,
        follow=follow,
        known=ex.list_param("containedBy") or (),
        readable=await ex.readable(),
    )


def _render_linked_flat(
    linked: LinkedEntities[RenderOptions], vocab: TermMap
) -> list[dict[str, Any]]:
    """The linked entities of a flat join, each with the projection of the path that reached it."""
    bodies = (render_entity(doc, vocab, state) for doc, state in linked.found.values())
    return [body for body in bodies if body]


async def create_entity(request: Request) -> Response:
    """POST /entities (§6.4.3.1): 201 with Location."""
    ex = Exchange(request)
    ex.allow()
    body = await ex.body()
    require_no_body_context(body)
    vocab = await ex.vocab()
    entity_id = await ex.broker.entities.create(
        ex.tenant, body.data, vocab, writer=await ex.writer()
    )
    return ex.empty(201, {"Location": f"{BASE}/entities/{quote(entity_id, safe=':/')}"})


async def query_entities(request: Request) -> Response:
    """GET /entities (§6.4.3.2)."""
    ex = Exchange(request)
    ex.allow(*QUERY_PARAMS)
    media = ex.accept(ENTITY_MEDIA)
    vocab = await ex.vocab()
    req = query_request(ex)
    # NGSI-LD 1.8 §6.4.3.2: a query must select by type, attrs, q or geo (or ask local=true)
    if not any(
        k in ex.params for k in ("type", "attrs", "q", "georel", "scopeQ")
    ) and not ex.bool_param("local"):
        raise BadRequestData("a query needs at least one of type, attrs, q, georel or local=true")
    planned = ex.broker.queries.plan(req, vocab)
    opts = render_options(ex, vocab)
    return await respond_query(ex, planned.query, opts, vocab, media, order=planned.order)


async def respond_query(
    ex: Exchange,
    query: EntityQuery,
    opts: RenderOptions,
    vocab: TermMap,
    media: str,
    *,
    order: list[OrderKey] | None = None,
) -> Response:
    """Run a built query and render the page with count and next-page link (§6.3.10, §6.3.13)."""
    if not await ex.broker.queries.tenant_known(ex.tenant):
        raise NonExistingTenant(f"tenant {ex.tenant!r} does not exist")
    result = await ex.broker.queries.run(ex.tenant, query, order, readable=await ex.readable())
    headers: dict[str, str] = {}
    if query.count and result.count is not None:
        headers["NGSILD-Results-Count"] = str(result.count)
    links = _page_links(ex, query, len(result.docs), result.count)
    if links:
        headers["Link"] = ", ".join(links)
    linked = await _fetch_linked(ex, result.docs, opts) if opts.join is not None else None
    inline = linked.docs() if linked is not None and opts.join == "inline" else None
    data: Any
    if media == GEO_JSON:
        data = render_geojson_collection(result.docs, vocab, opts, inline)
        if opts.projection is not None:
            # §4.21: an entity left without members is not returned
            data["features"] = [f for f in data["features"] if "id" in f or f["properties"]]
        if linked is not None and opts.join == "flat":
            data["features"] += [
                render_geojson_feature(doc, vocab, state) for doc, state in linked.found.values()
            ]
    else:
        data = [render_entity(doc, vocab, opts, inline) for doc in result.docs]
        if opts.projection is not None:
            data = [body for body in data if body]  # §4.21: nothing left -> not returned
        if linked is not None and opts.join == "flat":
            data += _render_linked_flat(linked, vocab)
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
    doc = await ex.broker.entities.retrieve(ex.tenant, entity_id, readable=await ex.readable())
    linked = await _fetch_linked(ex, [doc], opts) if opts.join is not None else None
    inline = linked.docs() if linked is not None and opts.join == "inline" else None
    data: Any
    if media == GEO_JSON:
        data = render_geojson_feature(doc, vocab, opts, inline)
        _require_members(opts, {*data["properties"], *(["id"] if "id" in data else [])})
    else:
        data = render_entity(doc, vocab, opts, inline)
        _require_members(opts, data)
    if linked and opts.join == "flat":
        # NGSI-LD 1.8 §4.5.23.3: flat join answers the entity followed by the linked entities;
        # with nothing linked the entity alone is returned, as for no join (suite 018_14_02)
        if media == GEO_JSON:
            features = [render_geojson_feature(d, vocab, s) for d, s in linked.found.values()]
            data = {"type": "FeatureCollection", "features": [data, *features]}
        else:
            data = [data, *_render_linked_flat(linked, vocab)]
    return ex.json(data, media_type=media)


def _require_members(opts: RenderOptions, members: Iterable[str]) -> None:
    """ResourceNotFound when the projection leaves nothing of the entity (§5.7.1, §4.21)."""
    names = set(members)
    if opts.attrs is not None and not names - _NON_ATTRIBUTES:
        # NGSI-LD 1.8 §5.7.1: none of the requested attributes exists on the entity
        raise ResourceNotFound("the entity has none of the requested attributes")
    if opts.projection is not None and not names:
        raise ResourceNotFound("pick/omit leave no member of the entity")


async def delete_entity(request: Request) -> Response:
    """DELETE /entities/{entityId} (§6.5.3.2)."""
    ex = Exchange(request)
    ex.allow("type")
    await ex.broker.entities.delete(ex.tenant, _entity_id(request), writer=await ex.writer())
    return ex.empty()


async def replace_entity(request: Request) -> Response:
    """PUT /entities/{entityId} (§6.5.3.3)."""
    ex = Exchange(request)
    ex.allow("options")
    entity_id = _entity_id(request)
    body = await ex.body()
    require_no_body_context(body)
    vocab = await ex.vocab()
    await ex.broker.entities.replace(
        ex.tenant, entity_id, body.data, vocab, writer=await ex.writer()
    )
    return ex.empty()


async def merge_entity(request: Request) -> Response:
    """PATCH /entities/{entityId} (§6.5.3.4, merge)."""
    ex = Exchange(request)
    ex.allow("options", "format")
    entity_id = _entity_id(request)
    body = await ex.body((JSON, JSON_LD, MERGE_PATCH))
    require_no_body_context(body)
    vocab = await ex.vocab()
    await ex.broker.entities.merge(ex.tenant, entity_id, body.data, vocab, writer=await ex.writer())
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
        ex.tenant,
        entity_id,
        body.data,
        vocab,
        writer=await ex.writer(),
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
        ex.tenant, entity_id, body.data, vocab, writer=await ex.writer()
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
        ex.tenant,
        entity_id,
        request.path_params["attr_id"],
        body.data,
        vocab,
        writer=await ex.writer(),
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
        ex.tenant,
        entity_id,
        request.path_params["attr_id"],
        body.data,
        vocab,
        writer=await ex.writer(),
    )
    return ex.empty()


async def delete_attribute(request: Request) -> Response:
    """DELETE /entities/{entityId}/attrs/{attrId} (§6.7.3.2)."""
    ex = Exchange(request)
    ex.allow("datasetId", "deleteAll", "lang")
    entity_id = _entity_id(request)
    vocab = await ex.vocab()
    await ex.broker.entities.delete_attribute(
        ex.tenant,
        entity_id,
        request.path_params["attr_id"],
        vocab,
        writer=await ex.writer(),
        dataset_id=ex.params.get("datasetId"),
        delete_all=ex.bool_param("deleteAll"),
    )
    return ex.empty()


def batch_error_body(entity_id: str | None, error: Any) -> dict[str, Any]:
    """One entry of BatchOperationResult.errors (§5.2.17 BatchEntityError)."""
    return {"entityId": entity_id, "error": problem_body(error)}
