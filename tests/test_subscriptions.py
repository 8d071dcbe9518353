"""smartregion.core.subscriptions: parsing, rendering and matching (NGSI-LD 1.8 §5.2.12, §5.11)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from smartregion.core.jsonld import TermMap, core_term_map
from smartregion.core.subscriptions import (
    DeliveryState,
    EntityChange,
    compile_subscription,
    merge_subscription,
    notification_entities,
    parse_subscription,
    render_subscription,
    status_of,
    triggers_of,
)
from smartregion.errors import BadRequestData

NS = "https://ex.org/"
VOCAB = TermMap(
    [
        {
            "Building": NS + "Building",
            "Tower": NS + "Tower",
            "name": NS + "name",
            "height": NS + "height",
        }
    ]
)
NOW = datetime(2026, 1, 1, tzinfo=UTC)


def sub(**members: Any) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "id": "urn:ngsi-ld:Subscription:1",
        "type": "Subscription",
        "entities": [{"type": "Building"}],
        "notification": {"endpoint": {"uri": "http://x.org/n"}},
    }
    payload.update(members)
    return parse_subscription(payload, VOCAB, context=None, now=NOW)


def entity(n: int = 1, types: tuple[str, ...] = ("Building",), **attrs: Any) -> dict[str, Any]:
    return {
        "id": f"urn:ngsi-ld:Building:{n}",
        "type": [NS + t for t in types],
        "attrs": {NS + k: [{"type": "Property", "value": v}] for k, v in attrs.items()},
    }


def test_names_are_expanded_and_compacted_back() -> None:
    doc = sub(
        watchedAttributes=["name"],
        notification={"attributes": ["height"], "endpoint": {"uri": "http://x.org/n"}},
    )
    assert doc["entities"] == [{"type": NS + "Building"}]
    assert doc["watchedAttributes"] == [NS + "name"]
    out = render_subscription(doc, VOCAB, now=NOW)
    assert out["entities"] == [{"type": "Building"}]
    assert out["notification"]["attributes"] == ["height"]
    assert out["status"] == "active"
    assert out["notificationTrigger"] == ["attributeCreated", "attributeUpdated"]
    assert "isActive" not in out  # only what the client sent


def test_type_expressions_in_selectors_round_trip() -> None:
    doc = sub(entities=[{"type": "(Building|Tower)"}])
    assert render_subscription(doc, VOCAB)["entities"] == [{"type": "Building|Tower"}]
    compiled = compile_subscription("", doc, VOCAB)
    assert compiled.selects(entity(types=("Tower",)))


@pytest.mark.parametrize(
    "members",
    [
        {"type": "Subscriptions"},
        {"entities": []},
        {"entities": [{"idPattern": "["}]},
        {"entities": [{"type": "Building", "idPattern": "["}]},
        {"notificationTrigger": []},
        {"timeInterval": 0},
        {"throttling": 1, "timeInterval": 2},
        {"expiresAt": "2025-01-01T00:00:00Z"},
        {"expiresAt": "tomorrow"},
        {"scopeQ": "/a/#/b"},
        {"geoQ": {"georel": "nearby", "geometry": "Point", "coordinates": [1, 2]}},
        {"notification": {"endpoint": {"uri": "http://x.org/n", "receiverInfo": [{"key": "a"}]}}},
        {"notification": {"endpoint": {"uri": "mqtt://"}}},
        {"notification": {"pick": ["id"], "omit": ["id"], "endpoint": {"uri": "http://x.org/n"}}},
        {"lang": 3},
    ],
)
def test_invalid_members(members: dict[str, Any]) -> None:
    with pytest.raises(BadRequestData):
        sub(**members)


def test_entities_or_watched_attributes_needed() -> None:
    with pytest.raises(BadRequestData):
        parse_subscription(
            {"type": "Subscription", "notification": {"endpoint": {"uri": "http://x.org/n"}}},
            VOCAB,
            context=None,
        )
    doc = parse_subscription(
        {
            "type": "Subscription",
            "watchedAttributes": ["name"],
            "notification": {"endpoint": {"uri": "http://x.org/n"}},
        },
        VOCAB,
        context=None,
    )
    assert doc["watchedAttributes"] == [NS + "name"]


def test_merge_replaces_members_and_null_removes_optional_ones() -> None:
    doc = sub(q="height>1", throttling=5)
    merged = merge_subscription(doc, {"q": None, "isActive": False}, VOCAB, context=None, now=NOW)
    assert "q" not in merged and merged["isActive"] is False
    with pytest.raises(BadRequestData):
        merge_subscription(doc, {"notification": None}, VOCAB, context=None)
    with pytest.raises(BadRequestData):
        merge_subscription(doc, {"timeInterval": 3}, VOCAB, context=None)  # throttling is set


def test_status() -> None:
    assert status_of(sub(isActive=False), NOW) == "paused"
    doc = sub(expiresAt="2026-06-01T00:00:00Z")
    assert status_of(doc, NOW) == "active"
    assert status_of(doc, datetime(2027, 1, 1, tzinfo=UTC)) == "expired"


def test_delivery_state_members() -> None:
    assert DeliveryState().as_members() == {}
    state = DeliveryState(
        times_sent=2,
        times_failed=1,
        last_notification="2026-01-02T00:00:00Z",
        last_success="2026-01-01T00:00:00Z",
        last_failure="2026-01-02T00:00:00Z",
    )
    assert state.as_members()["status"] == "failed"


def test_triggers_of_instances() -> None:
    old = entity(name="a", height=1)
    new = entity(name="b")
    fired = triggers_of(EntityChange(old, new))
    assert fired["attributeUpdated"] == {NS + "name"}
    assert fired["attributeDeleted"] == {NS + "height"}
    assert "entityUpdated" in fired
    assert set(triggers_of(EntityChange(None, new))) == {"entityCreated", "attributeCreated"}
    assert set(triggers_of(EntityChange(old, None))) == {"entityDeleted", "attributeDeleted"}
    # deleting one datasetId instance is an attribute deletion too
    multi = entity(name="a")
    multi["attrs"][NS + "name"].append({"type": "Property", "value": "x", "datasetId": "urn:d:1"})
    assert "attributeDeleted" in triggers_of(EntityChange(multi, entity(name="a")))


def test_fires_honours_watched_attributes_q_and_selectors() -> None:
    compiled = compile_subscription("", sub(watchedAttributes=["height"], q="height>5"), VOCAB)
    before = entity(name="a", height=1)
    assert compiled.fires(EntityChange(before, entity(name="b", height=1)), NOW) is None
    assert compiled.fires(EntityChange(before, entity(name="a", height=3)), NOW) is None  # q
    assert (
        compiled.fires(EntityChange(before, entity(name="a", height=9)), NOW) == "attributeUpdated"
    )
    other = compile_subscription("", sub(entities=[{"type": "Tower"}]), VOCAB)
    assert other.fires(EntityChange(before, entity(name="a", height=9)), NOW) is None
    paused = compile_subscription("", sub(isActive=False), VOCAB)
    assert paused.fires(EntityChange(before, entity(name="b")), NOW) is None


def test_fires_with_id_pattern_geo_and_scope() -> None:
    doc = sub(
        entities=[{"type": "Building", "idPattern": ":2$"}],
        geoQ={"georel": "near;maxDistance==1000", "geometry": "Point", "coordinates": [4.0, 51.0]},
        scopeQ="/Ghent/#",
    )
    compiled = compile_subscription("", doc, VOCAB)
    near = entity(2, name="x")
    near["attrs"]["https://uri.etsi.org/ngsi-ld/location"] = [
        {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [4.0, 51.001]}}
    ]
    near["scope"] = ["/Ghent/Centre"]
    assert compiled.fires(EntityChange(None, near), NOW) == "attributeCreated"
    far = {**near, "id": "urn:ngsi-ld:Building:3"}
    assert compiled.fires(EntityChange(None, far), NOW) is None


def test_notification_data_shows_deletions_and_previous_values() -> None:
    compiled = compile_subscription(
        "", sub(notification={"showChanges": True, "endpoint": {"uri": "http://x.org/n"}}), VOCAB
    )
    now = "2026-01-01T00:00:00.000000Z"
    old = entity(name="a", height=1)
    data = notification_entities(
        compiled, [(EntityChange(old, entity(name="b")), "attributeUpdated")], now=now
    )
    assert data[0]["name"] == {"type": "Property", "value": "b", "previousValue": "a"}
    assert data[0]["height"] == {
        "type": "Property",
        "value": "urn:ngsi-ld:null",
        "previousValue": 1,
    }
    gone = notification_entities(compiled, [(EntityChange(old, None), "entityDeleted")], now=now)
    assert gone[0]["deletedAt"] == now
    assert gone[0]["name"]["value"] == "urn:ngsi-ld:null"


def test_entity_deleted_without_show_changes_is_id_type_deleted_at() -> None:
    compiled = compile_subscription("", sub(notificationTrigger=["entityDeleted"]), VOCAB)
    data = notification_entities(
        compiled,
        [(EntityChange(entity(name="a"), None), "entityDeleted")],
        now="2026-01-01T00:00:00Z",
    )
    assert data == [
        {"id": "urn:ngsi-ld:Building:1", "type": "Building", "deletedAt": "2026-01-01T00:00:00Z"}
    ]


def test_key_values_and_attributes_projection() -> None:
    compiled = compile_subscription(
        "",
        sub(
            notification={
                "format": "keyValues",
                "attributes": ["name"],
                "endpoint": {"uri": "http://x.org/n"},
            }
        ),
        VOCAB,
    )
    data = notification_entities(
        compiled,
        [(EntityChange(None, entity(name="a", height=2)), "attributeCreated")],
        now="2026-01-01T00:00:00Z",
    )
    assert data == [{"id": "urn:ngsi-ld:Building:1", "type": "Building", "name": "a"}]


def test_q_is_percent_decoded() -> None:
    compiled = compile_subscription("", sub(q='name=="Eiffel%20Tower"'), core_term_map())
    assert compiled.q is not None
