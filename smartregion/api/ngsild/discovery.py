"""HTTP handlers for /types and /attributes (NGSI-LD 1.8 §6.25–§6.28)."""

from __future__ import annotations

import hashlib

from starlette.requests import Request
from starlette.responses import Response

from smartregion.api.ngsild.exchange import Exchange


def _list_id(kind: str, items: list[str]) -> str:
    # A stable identifier for a generated list: same content, same id (§5.2.24).
    digest = hashlib.sha1("\n".join(items).encode()).hexdigest()[:16]
    return f"urn:ngsi-ld:{kind}:{digest}"


async def list_types(request: Request) -> Response:
    """GET /types, with details=true for EntityType objects."""
    ex = Exchange(request)
    ex.allow("details")
    media = ex.accept()
    vocab = await ex.vocab()
    await ex.broker.entities.check_tenant(ex.tenant)
    infos = await ex.broker.discovery.types(ex.tenant, readable=await ex.readable())
    if ex.bool_param("details"):
        data: object = [
            {
                "id": info.type_iri,
                "type": "EntityType",
                "typeName": vocab.compact_iri(info.type_iri),
                "attributeNames": [vocab.compact_iri(a) for a in sorted(info.attribute_names)],
            }
            for info in infos
        ]
    else:
        names = [vocab.compact_iri(i.type_iri) for i in infos]
        data = {
            "id": _list_id("EntityTypeList", names),
            "type": "EntityTypeList",
            "typeList": names,
        }
    return ex.json(data, media_type=media)


async def type_info(request: Request) -> Response:
    """GET /types/{type}: EntityTypeInformation."""
    ex = Exchange(request)
    ex.allow()
    media = ex.accept()
    vocab = await ex.vocab()
    await ex.broker.entities.check_tenant(ex.tenant)
    type_iri = vocab.expand_term(request.path_params["type"])
    info = await ex.broker.discovery.type_info(ex.tenant, type_iri, readable=await ex.readable())
    attr_infos = {
        a.attr_iri: a
        for a in await ex.broker.discovery.attributes(ex.tenant, readable=await ex.readable())
    }
    details = []
    for attr in sorted(info.attribute_names):
        kinds = attr_infos[attr].attribute_types if attr in attr_infos else []
        details.append(
            {
                "id": attr,
                "type": "Attribute",
                "attributeName": vocab.compact_iri(attr),
                "attributeTypes": kinds,
            }
        )
    data = {
        "id": info.type_iri,
        "type": "EntityTypeInfo",
        "typeName": vocab.compact_iri(info.type_iri),
        "entityCount": info.entity_count,
        "attributeDetails": details,
    }
    return ex.json(data, media_type=media)


async def list_attributes(request: Request) -> Response:
    """GET /attributes, with details=true for Attribute objects."""
    ex = Exchange(request)
    ex.allow("details")
    media = ex.accept()
    vocab = await ex.vocab()
    await ex.broker.entities.check_tenant(ex.tenant)
    infos = await ex.broker.discovery.attributes(ex.tenant, readable=await ex.readable())
    if ex.bool_param("details"):
        data: object = [
            {
                "id": info.attr_iri,
                "type": "Attribute",
                "attributeName": vocab.compact_iri(info.attr_iri),
                "typeNames": [vocab.compact_iri(t) for t in sorted(info.type_names)],
            }
            for info in infos
        ]
    else:
        names = [vocab.compact_iri(i.attr_iri) for i in infos]
        data = {
            "id": _list_id("AttributeList", names),
            "type": "AttributeList",
            "attributeList": names,
        }
    return ex.json(data, media_type=media)


async def attribute_info(request: Request) -> Response:
    """GET /attributes/{attrId}: Attribute with counts and types."""
    ex = Exchange(request)
    ex.allow()
    media = ex.accept()
    vocab = await ex.vocab()
    await ex.broker.entities.check_tenant(ex.tenant)
    attr_iri = vocab.expand_term(request.path_params["attr_id"])
    info = await ex.broker.discovery.attribute_info(
        ex.tenant, attr_iri, readable=await ex.readable()
    )
    data = {
        "id": info.attr_iri,
        "type": "Attribute",
        "attributeName": vocab.compact_iri(info.attr_iri),
        "attributeCount": info.attribute_count,
        "attributeTypes": info.attribute_types,
        "typeNames": [vocab.compact_iri(t) for t in sorted(info.type_names)],
    }
    return ex.json(data, media_type=media)
