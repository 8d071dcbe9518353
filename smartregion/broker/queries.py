"""Entity queries (NGSI-LD 1.8 §5.7.2 query entities, §5.7.x POST /entityOperations/query).

`QueryRequest` is what an interface hands over — the query's parts as the client wrote them, terms
not yet expanded. `QueryService.build` validates and expands them into a storage `EntityQuery`
once; `QueryService.run` executes it. Subscriptions reuse `build`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import Any

from smartregion.broker.disclosure import Discloser, narrowed_query
from smartregion.core.entities import Vocabulary, is_uri
from smartregion.core.geo import parse_geo_query
from smartregion.core.ordering import OrderKey, parse_order_by, sort_documents
from smartregion.core.qlang import parse_q
from smartregion.core.scopes import parse_scope_q
from smartregion.core.typeexpr import parse_type_expr
from smartregion.errors import BadRequestData, TooManyResults
from smartregion.storage.base import DEFAULT_TENANT, EntityQuery, QueryResult, Readable, Store


@dataclass(slots=True)
class QueryRequest:
    """An entity query as received, before expansion."""

    ids: list[str] | None = None
    id_pattern: str | None = None
    type_expr: str | None = None
    attrs: list[str] | None = None
    q: str | None = None
    georel: str | None = None
    geometry: str | None = None
    coordinates: Any = None
    geoproperty: str | None = None
    scope_q: str | None = None
    limit: int | None = None
    offset: int = 0
    count: bool = False
    order_by: str | None = None


@dataclass(slots=True)
class PlannedQuery:
    """A validated, expanded query: what storage runs, and how the broker orders it."""

    query: EntityQuery
    order: list[OrderKey] = field(default_factory=list)


#: the most matching entities an ordered query sorts in memory (orderBy over more is refused)
MAX_ORDERED = 100_000


class QueryService:
    """Validate, expand and run entity queries."""

    def __init__(self, store: Store, *, default_limit: int = 20, max_limit: int = 1000) -> None:
        self.store = store
        self.discloser = Discloser(store)
        self.default_limit = default_limit
        self.max_limit = max_limit

    def plan(self, req: QueryRequest, vocab: Vocabulary) -> PlannedQuery:
        """Validate and expand a request, including its ordering."""
        order = parse_order_by(req.order_by, vocab.expand_term) if req.order_by else []
        return PlannedQuery(self.build(req, vocab), order)

    def build(self, req: QueryRequest, vocab: Vocabulary) -> EntityQuery:
        """Turn a request into a storage query; BadRequestData on any invalid part."""
        limit = self.default_limit if req.limit is None else req.limit
        if limit < 0:
            raise BadRequestData(f"limit must not be negative, got {limit}")
        if limit > self.max_limit:
            raise TooManyResults(f"limit {limit} exceeds the maximum of {self.max_limit}")
        if req.offset < 0:
            raise BadRequestData(f"offset must not be negative, got {req.offset}")
        if limit == 0 and not req.count:
            raise BadRequestData("limit=0 is only allowed together with count=true")
        ids: tuple[str, ...] | None = None
        if req.ids is not None:
            for entity_id in req.ids:
                if not is_uri(entity_id):
                    raise BadRequestData(f"{entity_id!r} is not a valid entity id (a URI)")
            ids = tuple(req.ids)
        if req.id_pattern is not None:
            try:
                re.compile(req.id_pattern)
            except re.error as exc:
                raise BadRequestData(
                    f"idPattern {req.id_pattern!r} is not a regular expression: {exc}"
                ) from exc
        expand = vocab.expand_term
        return EntityQuery(
            ids=ids,
            id_pattern=req.id_pattern,
            types=parse_type_expr(req.type_expr, expand) if req.type_expr else None,
            attrs=frozenset(expand(a) for a in req.attrs) if req.attrs else None,
            q=parse_q(req.q, expand) if req.q else None,
            geo=parse_geo_query(req.georel, req.geometry, req.coordinates, req.geoproperty, expand),
            scope_q=parse_scope_q(req.scope_q) if req.scope_q else None,
            limit=limit,
            offset=req.offset,
            count=req.count,
        )

    async def run(
        self,
        tenant: str,
        query: EntityQuery,
        order: list[OrderKey] | None = None,
        *,
        readable: Readable | None,
    ) -> QueryResult:
        """Execute a built query over what the caller may read (None: everything); with
        `order`, sort all matches then take the page. Unreadable entities are neither returned
        nor counted; what the reader sees of the others is its disclosure (broker/disclosure.py):
        the query selects nothing by values the reader does not see, and sorts what it sees."""
        query = narrowed_query(replace(query, readable=readable))
        if not order:
            result = await self.store.query(tenant, query)
            result.docs = await self.discloser.documents(tenant, result.docs, readable)
            return result
        everything = replace(query, limit=MAX_ORDERED + 1, offset=0, count=False)
        result = await self.store.query(tenant, everything)
        if len(result.docs) > MAX_ORDERED:
            raise TooManyResults(
                f"orderBy sorts at most {MAX_ORDERED} matching entities; narrow the query"
            )
        shown = await self.discloser.shown(tenant, result.docs, readable)
        ordered = sort_documents(shown.docs, order)
        page = ordered[query.offset : query.offset + query.limit]
        if page:
            await self.discloser.audit(shown, readable)
        return QueryResult(docs=page, count=len(ordered) if query.count else None)

    async def tenant_known(self, tenant: str) -> bool:
        """Whether the tenant exists (the default tenant always does)."""
        return tenant == DEFAULT_TENANT or await self.store.tenant_exists(tenant)
