"""The MQTT bridge writes by the API's ownership rules (mandates), against a real Mosquitto.

Issue 3: what a mandated organisation writes into a mandating owner's data set is owned by that
owner. The bridge (`smartregion mqtt bridge --org ORG`) writes as an editor of ORG would through
the API (`Governance.write_access`), read for every transaction: a revoked mandate counts at once.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from test_bridge import eventually, opened, publish, running, unique

from smartregion.governance import Governance, GovernanceStore, Principal
from smartregion.ingestion.bridge import BridgeConfig
from smartregion.storage import Put, Store
from smartregion.storage.ingestion import IngestionStore

pytestmark = pytest.mark.anyio

OP = Principal.cli()
NS = "https://uri.etsi.org/ngsi-ld/default-context/"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'bridge.db'}"
    return str(request.getfixturevalue("postgres_url"))


def room(key: str, value: float, scope: str | None = None) -> dict[str, Any]:
    doc: dict[str, Any] = {"id": f"urn:ngsi-ld:Room:{key}", "type": "Room", "temperature": value}
    if scope is not None:
        doc["scope"] = scope
    return doc


async def owner(store: Store, tenant: str, key: str) -> str | None:
    return (await store.owners_of(tenant, [f"urn:ngsi-ld:Room:{key}"])).get(
        f"urn:ngsi-ld:Room:{key}"
    )


async def temperature(store: Store, tenant: str, key: str) -> Any:
    doc = await store.get_entity(tenant, f"urn:ngsi-ld:Room:{key}")
    found = (doc or {}).get("attrs", {}).get(NS + "temperature")
    return found[0]["value"] if found else None


async def test_the_bridge_applies_mandates_like_the_api(mosquitto_url: str, db_url: str) -> None:
    city, supplier, stranger = unique("city"), unique("supplier"), unique("stranger")
    prefix, tenant = unique("sr"), unique("t")
    config = BridgeConfig(
        mosquitto_url, org=supplier, tenant=tenant, prefix=prefix, client_id=unique("c")
    )
    topic = f"{prefix}/entities"
    async with opened(db_url) as store:
        assert isinstance(store, GovernanceStore) and isinstance(store, IngestionStore)
        gov = Governance(store)
        for org in (city, supplier, stranger):
            await gov.create_organisation(OP, org, org, "municipality")
        # the city's rooms in its centre: a data set with a scope, mandated to the supplier
        await gov.create_dataset(OP, f"{city}-rooms", city, "Rooms", ["Room"], scope="/Centre")
        mandate = await gov.create_mandate(OP, city, supplier, dataset_id=f"{city}-rooms")
        for org, key, scope in ((city, "c", ["/Centre"]), (stranger, "s", None)):
            doc = {
                "id": f"urn:ngsi-ld:Room:{key}",
                "type": [NS + "Room"],
                "attrs": {},
                "createdAt": "2026-01-01T00:00:00Z",
                "modifiedAt": "2026-01-01T00:00:00Z",
            }
            if scope:
                doc["scope"] = scope
            await store.transact(tenant, [doc["id"]], lambda _, d=doc: ([Put(d)], None), owner=org)
        async with running(store, config) as bridge:
            # new, in the mandating city's data set (its scope or below): the city's
            await publish(mosquitto_url, topic, room("new", 1.0, "/Centre/North"))
            assert await eventually(lambda: owner(store, tenant, "new")) == city
            # new, of the data set's type but outside its scope: the supplier's own
            await publish(mosquitto_url, topic, room("out", 2.0, "/Harbour"))
            assert await eventually(lambda: owner(store, tenant, "out")) == supplier
            # the city's entity in the data set: changed, and still the city's
            await publish(mosquitto_url, topic, room("c", 3.0))
            assert await eventually(lambda: temperature(store, tenant, "c")) == 3.0
            assert await owner(store, tenant, "c") == city
            # a stranger's entity: a dead letter, unchanged
            await publish(mosquitto_url, topic, room("s", 4.0))
            letters = await eventually(lambda: store.dead_letters(supplier))
            assert len(letters) == 1 and "urn:ngsi-ld:Room:s" in letters[0].reason
            assert await temperature(store, tenant, "s") is None
            assert await owner(store, tenant, "s") == stranger
            # the mandate revoked: from the next message on, the city's entity is refused and
            # what the supplier creates is its own
            await gov.revoke_mandate(OP, mandate.id)
            await publish(mosquitto_url, topic, room("c", 5.0))
            await eventually(lambda: _more_than(store, supplier, 1))
            assert await temperature(store, tenant, "c") == 3.0
            await publish(mosquitto_url, topic, room("new2", 6.0, "/Centre"))
            assert await eventually(lambda: owner(store, tenant, "new2")) == supplier
            assert bridge.dead == 2


async def _more_than(store: IngestionStore, org: str, n: int) -> bool:
    return len(await store.dead_letters(org)) > n
