"""Linked entity retrieval (join, joinLevel, §4.5.23) and pick/omit (§4.21) over HTTP."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

pytestmark = pytest.mark.anyio

LD = {"Content-Type": "application/ld+json"}
CTX = "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.9.jsonld"
BAD = "https://uri.etsi.org/ngsi-ld/errors/BadRequestData"
NOT_FOUND = "https://uri.etsi.org/ngsi-ld/errors/ResourceNotFound"

BUILDING = "urn:ngsi-ld:Building:1"
CITY = "urn:ngsi-ld:City:Paris"
COUNTRY = "urn:ngsi-ld:Country:France"


def rel(target: str) -> dict[str, str]:
    return {"type": "Relationship", "object": target}


def prop(value: Any) -> dict[str, Any]:
    return {"type": "Property", "value": value}


async def create(client: httpx.AsyncClient, entity_id: str, entity_type: str, **attrs: Any) -> None:
    body = {"id": entity_id, "type": entity_type, **attrs, "@context": CTX}
    r = await client.post("/entities", json=body, headers=LD)
    assert r.status_code == 201, r.text


@pytest.fixture
async def chain(client: httpx.AsyncClient) -> httpx.AsyncClient:
    """Building -locatedAt-> City -isInCountry-> Country, as in the ETSI suite's 018_20."""
    await create(client, BUILDING, "Building", name=prop("Eiffel Tower"), locatedAt=rel(CITY))
    await create(
        client,
        CITY,
        "City",
        name=prop("Paris"),
        description=prop("capital"),
        isInCountry=rel(COUNTRY),
    )
    await create(client, COUNTRY, "Country", name=prop("France"), description=prop("a country"))
    return client


async def get(client: httpx.AsyncClient, path: str, **params: str) -> httpx.Response:
    return await client.get(path, params=params)


# -- join ---------------------------------------------------------------------------------------


async def test_inline_embeds_the_linked_entity_under_entity(chain: httpx.AsyncClient) -> None:
    r = await get(chain, f"/entities/{BUILDING}", join="inline")
    assert r.status_code == 200, r.text
    located = r.json()["locatedAt"]
    assert located["object"] == CITY
    city = located["entity"]
    assert city["id"] == CITY and city["name"] == prop("Paris")
    # joinLevel defaults to 1: the country is not embedded in the city
    assert city["isInCountry"] == rel(COUNTRY)


async def test_inline_two_levels(chain: httpx.AsyncClient) -> None:
    r = await get(chain, f"/entities/{BUILDING}", join="inline", joinLevel="2")
    country = r.json()["locatedAt"]["entity"]["isInCountry"]["entity"]
    assert country == {
        "id": COUNTRY,
        "type": "Country",
        "name": prop("France"),
        "description": prop("a country"),
    }


async def test_inline_simplified_replaces_the_object(chain: httpx.AsyncClient) -> None:
    r = await get(chain, f"/entities/{BUILDING}", join="inline", joinLevel="2", options="keyValues")
    assert r.json() == {
        "id": BUILDING,
        "type": "Building",
        "name": "Eiffel Tower",
        "locatedAt": {
            "id": CITY,
            "type": "City",
            "name": "Paris",
            "description": "capital",
            "isInCountry": {
                "id": COUNTRY,
                "type": "Country",
                "name": "France",
                "description": "a country",
            },
        },
    }


async def test_inline_concise_keeps_object_and_entity(chain: httpx.AsyncClient) -> None:
    r = await get(chain, f"/entities/{BUILDING}", join="inline", format="concise")
    located = r.json()["locatedAt"]
    assert located["object"] == CITY and located["entity"]["name"] == "Paris"


async def test_flat_lists_entity_then_linked_entities(chain: httpx.AsyncClient) -> None:
    r = await get(chain, f"/entities/{BUILDING}", join="flat", joinLevel="2", options="sysAttrs")
    body = r.json()
    assert [e["id"] for e in body] == [BUILDING, CITY, COUNTRY]
    assert body[0]["locatedAt"] == rel(CITY) | {
        "createdAt": body[0]["locatedAt"]["createdAt"],
        "modifiedAt": body[0]["locatedAt"]["modifiedAt"],
    }
    assert all("createdAt" in e for e in body)


async def test_flat_with_nothing_linked_is_the_entity_alone(client: httpx.AsyncClient) -> None:
    await create(client, BUILDING, "Building", locatedAt=rel("urn:ngsi-ld:City:nowhere"))
    r = await get(client, f"/entities/{BUILDING}", join="flat")
    assert r.json() == {
        "id": BUILDING,
        "type": "Building",
        "locatedAt": rel("urn:ngsi-ld:City:nowhere"),
    }
    r = await get(client, f"/entities/{BUILDING}", join="inline")
    assert "entity" not in r.json()["locatedAt"]


async def test_sys_attrs_and_lang_reach_linked_entities(client: httpx.AsyncClient) -> None:
    await create(client, BUILDING, "Building", locatedAt=rel(CITY))
    await create(
        client,
        CITY,
        "City",
        label={"type": "LanguageProperty", "languageMap": {"fr": "Paris", "nl": "Parijs"}},
    )
    r = await get(client, f"/entities/{BUILDING}", join="inline", options="sysAttrs", lang="nl")
    city = r.json()["locatedAt"]["entity"]
    assert "createdAt" in city
    assert city["label"]["value"] == "Parijs" and city["label"]["lang"] == "nl"


async def test_list_relationship_inline_and_flat(client: httpx.AsyncClient) -> None:
    others = ["urn:ngsi-ld:City:A", "urn:ngsi-ld:City:B"]
    await create(
        client,
        BUILDING,
        "Building",
        near={"type": "ListRelationship", "objectList": [{"object": o} for o in others]},
    )
    for o in others:
        await create(client, o, "City")
    r = await get(client, f"/entities/{BUILDING}", join="inline")
    assert [e["id"] for e in r.json()["near"]["entityList"]] == others
    r = await get(client, f"/entities/{BUILDING}", join="inline", options="keyValues")
    assert r.json()["near"] == [{"id": o, "type": "City"} for o in others]
    r = await get(client, f"/entities/{BUILDING}", join="flat")
    assert [e["id"] for e in r.json()] == [BUILDING, *others]


async def test_cycles_do_not_embed_an_entity_in_itself(client: httpx.AsyncClient) -> None:
    a, b = "urn:ngsi-ld:T:a", "urn:ngsi-ld:T:b"
    await create(client, a, "T", next=rel(b))
    await create(client, b, "T", next=rel(a))
    r = await get(client, f"/entities/{a}", join="inline", joinLevel="9")
    inner = r.json()["next"]["entity"]
    assert inner["id"] == b and inner["next"] == rel(a)
    r = await get(client, f"/entities/{a}", join="flat", joinLevel="9")
    assert [e["id"] for e in r.json()] == [a, b]


async def test_contained_by_entities_are_not_fetched_again(chain: httpx.AsyncClient) -> None:
    r = await get(chain, f"/entities/{BUILDING}", join="flat", joinLevel="2", containedBy=COUNTRY)
    assert [e["id"] for e in r.json()] == [BUILDING, CITY]


async def test_query_inline_and_flat(chain: httpx.AsyncClient) -> None:
    await create(chain, "urn:ngsi-ld:Building:2", "Building", locatedAt=rel(CITY))
    r = await get(chain, "/entities", type="Building", join="inline")
    assert [e["locatedAt"]["entity"]["id"] for e in r.json()] == [CITY, CITY]
    r = await get(chain, "/entities", type="Building", join="flat", joinLevel="2")
    assert [e["id"] for e in r.json()] == [BUILDING, "urn:ngsi-ld:Building:2", CITY, COUNTRY]


@pytest.mark.parametrize(
    ("params"),
    [{"join": "sideways"}, {"join": "flat", "joinLevel": "0"}, {"join": "flat", "joinLevel": "x"}],
)
async def test_invalid_join_is_bad_request(
    chain: httpx.AsyncClient, params: dict[str, str]
) -> None:
    r = await get(chain, f"/entities/{BUILDING}", **params)
    assert r.status_code == 400 and r.json()["type"] == BAD


async def test_post_query_takes_join_from_the_body(chain: httpx.AsyncClient) -> None:
    body = {"type": "Query", "entities": [{"type": "Building"}], "join": "flat", "@context": CTX}
    r = await chain.post("/entityOperations/query", json=body, headers=LD)
    assert r.status_code == 200, r.text
    assert [e["id"] for e in r.json()] == [BUILDING, CITY]


# -- pick / omit -------------------------------------------------------------------------------


async def test_pick_nested_projects_each_level(chain: httpx.AsyncClient) -> None:
    pick = "id,locatedAt{id,name,isInCountry{id,description}}"
    r = await get(chain, f"/entities/{BUILDING}", join="inline", joinLevel="2", pick=pick)
    assert r.json() == {
        "id": BUILDING,
        "locatedAt": rel(CITY)
        | {
            "entity": {
                "id": CITY,
                "name": prop("Paris"),
                "isInCountry": rel(COUNTRY)
                | {"entity": {"id": COUNTRY, "description": prop("a country")}},
            }
        },
    }
    # flat: only the relationships that are shown are followed
    r = await get(
        chain, f"/entities/{BUILDING}", join="flat", joinLevel="2", pick="id,locatedAt{id,name}"
    )
    assert r.json() == [
        {"id": BUILDING, "locatedAt": rel(CITY)},
        {"id": CITY, "name": prop("Paris")},
    ]


async def test_omit_nested_keeps_the_relationship(chain: httpx.AsyncClient) -> None:
    omit = "type,locatedAt{name,isInCountry{description}}"
    r = await get(chain, f"/entities/{BUILDING}", join="flat", joinLevel="2", omit=omit)
    assert r.json() == [
        {"id": BUILDING, "name": prop("Eiffel Tower"), "locatedAt": rel(CITY)},
        {"id": CITY, "type": "City", "description": prop("capital"), "isInCountry": rel(COUNTRY)},
        {"id": COUNTRY, "type": "Country", "name": prop("France")},
    ]


@pytest.mark.parametrize(
    "params",
    [
        {"pick": "name", "omit": "name"},
        {"pick": "name", "attrs": "name"},
        {"omit": "name", "attrs": "name"},
        {"pick": "id;name"},
        {"pick": "id,locatedAt{name"},
        {"pick": "id,locatedAt{{name}"},
        {"pick": "id,,name"},
        {"pick": "id,locatedAt{,name}"},
        {"omit": "id,locatedAt{}"},
    ],
)
async def test_invalid_projection_is_bad_request(
    chain: httpx.AsyncClient, params: dict[str, str]
) -> None:
    for path in (f"/entities/{BUILDING}", "/entities?type=Building"):
        r = await chain.get(path, params=params)
        assert r.status_code == 400, (path, params, r.text)
        assert r.json()["type"] == BAD and r.json()["title"]


async def test_retrieve_with_nothing_left_is_not_found(chain: httpx.AsyncClient) -> None:
    for params in ({"pick": "unknown"}, {"omit": "id,type,name,locatedAt"}, {"attrs": "unknown"}):
        r = await get(chain, f"/entities/{BUILDING}", **params)
        assert r.status_code == 404, params
        assert r.json()["type"] == NOT_FOUND
    r = await get(chain, f"/entities/{BUILDING}", pick="id,unknown")
    assert r.json() == {"id": BUILDING}


async def test_query_pick_is_a_projection_not_a_filter(chain: httpx.AsyncClient) -> None:
    r = await get(chain, "/entities", type="Building,City,Country", pick="id,description")
    assert r.json() == [
        {"id": BUILDING},
        {"id": CITY, "description": prop("capital")},
        {"id": COUNTRY, "description": prop("a country")},
    ]
    # entities left without any member are not returned
    await create(chain, "urn:ngsi-ld:Building:2", "Building", name=prop("Pisa"))
    r = await get(chain, "/entities", type="Building", pick="locatedAt", count="true")
    assert r.json() == [{"locatedAt": rel(CITY)}]
    assert r.headers["NGSILD-Results-Count"] == "1"
    r = await get(chain, "/entities", type="Building", omit="id,type,name")
    assert r.json() == [{"locatedAt": rel(CITY)}]


async def test_query_attrs_must_name_attributes(chain: httpx.AsyncClient) -> None:
    r = await get(chain, "/entities", attrs="id,type")
    assert r.status_code == 400 and r.json()["type"] == BAD


async def test_pick_and_omit_on_core_members_and_scope(client: httpx.AsyncClient) -> None:
    await create(client, BUILDING, "Building", scope="/Paris", name=prop("x"))
    r = await get(client, f"/entities/{BUILDING}", pick="id,scope")
    assert r.json() == {"id": BUILDING, "scope": "/Paris"}
    r = await get(client, f"/entities/{BUILDING}", omit="scope,name")
    assert r.json() == {"id": BUILDING, "type": "Building"}
    r = await get(client, f"/entities/{BUILDING}", pick="type", format="keyValues")
    assert r.json() == {"type": "Building"}
