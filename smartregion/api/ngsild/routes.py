"""The NGSI-LD route table, mounted at /ngsi-ld/v1."""

from __future__ import annotations

from dataclasses import replace

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from smartregion.api.ngsild import batch, contexts, discovery, entities, subscriptions, temporal
from smartregion.api.ngsild.entities import PURGE_PARAMS
from smartregion.api.ngsild.exchange import Exchange
from smartregion.broker.queries import QueryRequest
from smartregion.errors import BadRequestData, MethodNotAllowed


async def purge_entities(request: Request) -> Response:
    """DELETE /entities?type=… (NGSI-LD 1.8 §6.4.3.3 purge): delete matching entities or prune attributes."""
    ex = Exchange(request)
    ex.allow(*PURGE_PARAMS)
    writer = await ex.writer()  # a write: refuse anonymous callers unless allowed, and readers
    if not any(
        k in ex.params for k in ("id", "idPattern", "type", "q", "scopeQ", "georel", "local")
    ):
        raise BadRequestData(
            "purge needs at least one of id, idPattern, type, q, scopeQ, georel or local"
        )
    vocab = await ex.vocab()
    await ex.broker.entities.check_tenant(ex.tenant)
    req: QueryRequest = entities.query_request(ex)
    req.limit = None
    query = replace(ex.broker.queries.build(req, vocab), limit=ex.settings.max_limit * 1000)
    keep = ex.list_param("keep")
    drop = ex.list_param("drop")
    await ex.broker.purge.purge(
        ex.tenant,
        query,
        writer=writer,
        keep=frozenset(vocab.expand_term(a) for a in keep) if keep is not None else None,
        drop=frozenset(vocab.expand_term(a) for a in drop) if drop is not None else None,
    )
    return ex.empty()


async def attrs_without_name(request: Request) -> Response:
    """`/entities/{id}/attrs` takes only POST and PATCH; other methods need an attribute name."""
    raise MethodNotAllowed(
        f"{request.method} is not allowed on {request.url.path}", allow="POST, PATCH"
    )


async def missing_entity_id(request: Request) -> Response:
    """PUT/PATCH /entities/ without an id: the id is missing (400, not 405)."""
    raise BadRequestData("the entity id is missing from the path")


ROUTES = [
    Route("/entities", entities.create_entity, methods=["POST"]),
    Route("/entities", entities.query_entities, methods=["GET"]),
    Route("/entities", purge_entities, methods=["DELETE"]),
    Route("/entities", missing_entity_id, methods=["PUT", "PATCH"]),
    Route(
        "/entities/{entity_id:path}/attrs/{attr_id}",
        entities.partial_update_attribute,
        methods=["PATCH"],
    ),
    Route(
        "/entities/{entity_id:path}/attrs/{attr_id}", entities.replace_attribute, methods=["PUT"]
    ),
    Route(
        "/entities/{entity_id:path}/attrs/{attr_id}", entities.delete_attribute, methods=["DELETE"]
    ),
    Route("/entities/{entity_id:path}/attrs", entities.append_attributes, methods=["POST"]),
    Route("/entities/{entity_id:path}/attrs", entities.update_attributes, methods=["PATCH"]),
    Route("/entities/{entity_id:path}/attrs", attrs_without_name, methods=["GET", "PUT", "DELETE"]),
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
    # subscriptions (NGSI-LD 1.8 §6.10-§6.11)
    Route("/subscriptions", subscriptions.create_subscription, methods=["POST"]),
    Route("/subscriptions", subscriptions.query_subscriptions, methods=["GET"]),
    Route(
        "/subscriptions/{subscription_id:path}",
        subscriptions.retrieve_subscription,
        methods=["GET"],
    ),
    Route(
        "/subscriptions/{subscription_id:path}",
        subscriptions.update_subscription,
        methods=["PATCH"],
    ),
    Route(
        "/subscriptions/{subscription_id:path}",
        subscriptions.delete_subscription,
        methods=["DELETE"],
    ),
    # the temporal API (§6.18–§6.24)
    Route("/temporal/entities", temporal.create_or_update, methods=["POST"]),
    Route("/temporal/entities", temporal.query, methods=["GET"]),
    Route("/temporal/entityOperations/query", temporal.query_post, methods=["POST"]),
    Route(
        "/temporal/entities/{entity_id:path}/attrs/{attr_id}/{instance_id:path}",
        temporal.modify_instance,
        methods=["PATCH"],
    ),
    Route(
        "/temporal/entities/{entity_id:path}/attrs/{attr_id}/{instance_id:path}",
        temporal.delete_instance,
        methods=["DELETE"],
    ),
    Route(
        "/temporal/entities/{entity_id:path}/attrs/{attr_id}",
        temporal.delete_attribute,
        methods=["DELETE"],
    ),
    Route("/temporal/entities/{entity_id:path}/attrs", temporal.add_attributes, methods=["POST"]),
    Route("/temporal/entities/{entity_id:path}", temporal.retrieve, methods=["GET"]),
    Route("/temporal/entities/{entity_id:path}", temporal.delete, methods=["DELETE"]),
]
