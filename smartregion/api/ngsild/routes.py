"""The NGSI-LD route table, mounted at /ngsi-ld/v1."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from smartregion.api.ngsild import batch, contexts, discovery, entities
from smartregion.api.ngsild.exchange import Exchange
from smartregion.broker.queries import QueryRequest


async def purge_entities(request: Request) -> Response:
    """DELETE /entities?type=… (NGSI-LD 1.8 purge entities): delete every matching entity."""
    ex = Exchange(request)
    _ = ex.owner  # a write: refuse anonymous callers unless allowed
    vocab = await ex.vocab()
    await ex.broker.entities.check_tenant(ex.tenant)
    req: QueryRequest = entities.query_request(ex)
    req.limit = None
    query = ex.broker.queries.build(req, vocab)
    await ex.broker.store.delete_where(ex.tenant, query)
    return ex.empty()


ROUTES = [
    Route("/entities", entities.create_entity, methods=["POST"]),
    Route("/entities", entities.query_entities, methods=["GET"]),
    Route("/entities", purge_entities, methods=["DELETE"]),
    Route("/entities/{entity_id:path}/attrs/{attr_id}", entities.partial_update_attribute, methods=["PATCH"]),
    Route("/entities/{entity_id:path}/attrs/{attr_id}", entities.replace_attribute, methods=["PUT"]),
    Route("/entities/{entity_id:path}/attrs/{attr_id}", entities.delete_attribute, methods=["DELETE"]),
    Route("/entities/{entity_id:path}/attrs", entities.append_attributes, methods=["POST"]),
    Route("/entities/{entity_id:path}/attrs", entities.update_attributes, methods=["PATCH"]),
    Route("/entities/{entity_id:path}", entities.retrieve_entity, methods=["GET"]),
    Route("/entities/{entity_id:path}", entities.delete_entity, methods=["DELETE"]),
    Route("/entities/{entity_id:path}", entities.replace_entity, methods=["PUT"]),
    Route("/entities/{entity_id:path}", entities.merge_entity, methods=["PATCH"]),
    Route("/entityOperations/create", batch.batch_create, methods=["POST"]),
    Route("/entityOperations/upsert", batch.batch_upsert, methods=["POST"]),
    Route("/entityOperations/update", batch.batch_update, methods=["POST"]),
    Route("/entityOperations/merge", batch.batch_merge, methods=["POST"]),
    Route("/entityOperations/delete", batch.batch_delete, methods=["POST"]),
    Route("/entityOperations/query", batch.query_post, methods=["POST"]),
    Route("/types", discovery.list_types, methods=["GET"]),
    Route("/types/{type:path}", discovery.type_info, methods=["GET"]),
    Route("/attributes", discovery.list_attributes, methods=["GET"]),
    Route("/attributes/{attr_id:path}", discovery.attribute_info, methods=["GET"]),
    Route("/jsonldContexts", contexts.list_contexts, methods=["GET"]),
    Route("/jsonldContexts", contexts.add_context, methods=["POST"]),
    Route("/jsonldContexts/{context_id:path}", contexts.serve_context, methods=["GET"]),
    Route("/jsonldContexts/{context_id:path}", contexts.delete_context, methods=["DELETE"]),
]
