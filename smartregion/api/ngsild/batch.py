"""HTTP handlers for /entityOperations (NGSI-LD 1.8 §6.14–§6.31 batch operations and POST query)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from smartregion.api.ngsild.entities import (
    ENTITY_MEDIA,
    batch_error_body,
    render_options,
    respond_query,
)
from smartregion.api.ngsild.exchange import Exchange
from smartregion.api.ngsild.negotiation import JSON, JSON_LD, link_context
from smartregion.broker.batch import BatchResult, Vocabularies
from smartregion.broker.queries import QueryRequest
from smartregion.core.entities import Vocabulary
from smartregion.errors import BadRequestData, SmartRegionError


async def _batch_entities(ex: Exchange) -> tuple[Any, Vocabularies]:
    """Read a batch body and resolve the @context of each entity (NGSI-LD 1.8 §6.3.5).

    With application/ld+json every entity carries its own @context; with application/json the
    Link header's context applies to all and an entity carrying @context is invalid. Either way a
    context problem fails that entity (207), not the batch.
    """
    body = await ex.body(take_context=False)
    data = body.data
    ex.broker.batch.check_shape(data)
    link = link_context(ex.request)
    vocabs: list[Vocabulary | SmartRegionError] = []
    if body.media_type == JSON_LD:
        if link is not None:
            raise BadRequestData("a JSON-LD Link header must not be sent with application/ld+json")
        for item in data:
            if isinstance(item, dict) and "@context" in item:
                context = item.pop("@context")
                if ex.context is None:
                    ex.context = context
                try:
                    vocabs.append(await ex.broker.contexts.term_map(context, tenant=ex.tenant))
                except SmartRegionError as exc:
                    vocabs.append(exc)
            else:
                vocabs.append(
                    BadRequestData("an entity in an application/ld+json batch must carry @context")
                )
        return data, vocabs
    vocab = await ex.vocab()
    for item in data:
        if isinstance(item, dict) and "@context" in item:
            vocabs.append(
                BadRequestData("@context in an application/json body; send it in a Link header")
            )
        else:
            vocabs.append(vocab)
    return data, vocabs


def _result(
    ex: Exchange, result: BatchResult, *, all_ok_status: int, body_on_ok: list[str] | None
) -> Response:
    if result.errors:
        data = {
            "success": result.success,
            "errors": [batch_error_body(e.entity_id, e.error) for e in result.errors],
        }
        return ex.json(data, media_type=JSON, status=207)
    if body_on_ok is not None:
        return ex.json(body_on_ok, media_type=JSON, status=all_ok_status)
    return ex.empty(all_ok_status)


async def batch_create(request: Request) -> Response:
    """POST /entityOperations/create: 201 with the created ids, or 207."""
    ex = Exchange(request)
    ex.allow("options")
    data, vocab = await _batch_entities(ex)
    result = await ex.broker.batch.create(ex.tenant, data, vocab, writer=await ex.writer())
    return _result(ex, result, all_ok_status=201, body_on_ok=result.success)


async def batch_upsert(request: Request) -> Response:
    """POST /entityOperations/upsert: 201 with created ids when some were created, 204 when all existed, or 207."""
    ex = Exchange(request)
    ex.allow("options")
    opts = ex.options()
    if "replace" in opts and "update" in opts:
        raise BadRequestData("options replace and update exclude each other")
    mode = "update" if "update" in opts else "replace"
    data, vocab = await _batch_entities(ex)
    result = await ex.broker.batch.upsert(
        ex.tenant, data, vocab, writer=await ex.writer(), mode=mode
    )
    if not result.errors and not result.created:
        return ex.empty(204)
    return _result(ex, result, all_ok_status=201, body_on_ok=result.created)


async def batch_update(request: Request) -> Response:
    """POST /entityOperations/update: 204 or 207."""
    ex = Exchange(request)
    ex.allow("options")
    data, vocab = await _batch_entities(ex)
    result = await ex.broker.batch.update(
        ex.tenant, data, vocab, writer=await ex.writer(), no_overwrite="noOverwrite" in ex.options()
    )
    return _result(ex, result, all_ok_status=204, body_on_ok=None)


async def batch_merge(request: Request) -> Response:
    """POST /entityOperations/merge: 204 or 207."""
    ex = Exchange(request)
    ex.allow("options")
    data, vocab = await _batch_entities(ex)
    result = await ex.broker.batch.merge(ex.tenant, data, vocab, writer=await ex.writer())
    return _result(ex, result, all_ok_status=204, body_on_ok=None)


async def batch_delete(request: Request) -> Response:
    """POST /entityOperations/delete: 204 or 207."""
    ex = Exchange(request)
    ex.allow("options")
    body = await ex.body()
    result = await ex.broker.batch.delete(ex.tenant, body.data, writer=await ex.writer())
    return _result(ex, result, all_ok_status=204, body_on_ok=None)


async def query_post(request: Request) -> Response:
    """POST /entityOperations/query (§6.23): a Query object in the body."""
    ex = Exchange(request)
    ex.allow(
        "limit", "offset", "count", "options", "format", "lang", "geometryProperty", "datasetId"
    )
    media = ex.accept(ENTITY_MEDIA)
    body = await ex.body()
    data = body.data
    if not isinstance(data, dict):
        raise BadRequestData("the body of POST /entityOperations/query must be a Query object")
    if data.get("type") != "Query":
        raise BadRequestData('the Query object must have "type": "Query"')
    vocab = await ex.vocab()
    req = _query_from_body(data)
    req.limit = ex.int_param("limit")
    req.offset = ex.int_param("offset") or 0
    req.count = ex.bool_param("count")
    query = ex.broker.queries.build(req, vocab)
    opts = render_options(ex, vocab, body=data)
    if isinstance(data.get("attrs"), list) and opts.attrs is None:
        from dataclasses import replace

        opts = replace(opts, attrs=frozenset(vocab.expand_term(a) for a in data["attrs"]))
    if isinstance(data.get("lang"), str) and opts.lang is None:
        from dataclasses import replace

        opts = replace(opts, lang=data["lang"])
    return await respond_query(ex, query, opts, vocab, media)


def _query_from_body(data: dict[str, Any]) -> QueryRequest:
    req = QueryRequest()
    entities = data.get("entities")
    if entities is not None:
        if not isinstance(entities, list) or not all(isinstance(e, dict) for e in entities):
            raise BadRequestData("Query.entities must be an array of EntitySelector objects")
        ids = [e["id"] for e in entities if "id" in e]
        types = [e["type"] for e in entities if "type" in e]
        patterns = [e["idPattern"] for e in entities if "idPattern" in e]
        if ids:
            req.ids = ids
        if types:
            req.type_expr = ",".join(f"({t})" if any(c in t for c in ",;|") else t for t in types)
        if patterns:
            req.id_pattern = "|".join(f"(?:{p})" for p in patterns)
    attrs = data.get("attrs")
    if attrs is not None:
        if not isinstance(attrs, list) or not all(isinstance(a, str) for a in attrs):
            raise BadRequestData("Query.attrs must be an array of attribute names")
        req.attrs = attrs
    if "q" in data:
        if not isinstance(data["q"], str):
            raise BadRequestData("Query.q must be a string")
        req.q = data["q"]
    geo = data.get("geoQ")
    if geo is not None:
        if not isinstance(geo, dict):
            raise BadRequestData("Query.geoQ must be an object")
        req.georel = geo.get("georel")
        req.geometry = geo.get("geometry")
        req.coordinates = geo.get("coordinates")
        req.geoproperty = geo.get("geoproperty")
    if "scopeQ" in data:
        req.scope_q = data["scopeQ"]
    return req
