"""Payload mappings (smartregion/ingestion/mapping.py) and the three worked examples."""

from __future__ import annotations

from pathlib import Path

import pytest
from ingestion_payloads import (
    PLAIN_READING,
    PLAIN_TOPIC,
    TTN_TOPIC,
    TTN_UPLINK,
    Z2M_STATE,
    Z2M_TOPIC,
)

from smartregion.errors import BadRequestData
from smartregion.ingestion.mapping import (
    TopicPattern,
    load_mapping,
    normalise_time,
    parse_mapping,
    read_path,
)

EXAMPLES = Path(__file__).resolve().parents[2] / "docs" / "examples" / "mqtt"
NOW = "2026-03-01T12:00:00.000000Z"


def test_topic_pattern_captures_and_filter() -> None:
    pattern = TopicPattern("v3/{app}@{net}/devices/{device}/up")
    assert pattern.filter == "v3/+/devices/+/up"
    assert pattern.match("v3/air@ttn/devices/d1/up") == {"app": "air", "net": "ttn", "device": "d1"}
    assert pattern.match("v3/air@ttn/devices/d1/down") is None
    assert pattern.match("v3/air@ttn/devices/a/b/up") is None
    assert TopicPattern("a/+/#").match("a/x/y/z") == {}
    assert TopicPattern("a/+/#").filter == "a/+/#"
    for bad in ("a/#/b", "a/x+/b", "$SYS/x", "a/{not a name}"):
        with pytest.raises(BadRequestData):
            TopicPattern(bad)


def test_read_path_with_list_indexes() -> None:
    assert read_path(TTN_UPLINK, "uplink_message.rx_metadata[1].rssi") == -110
    assert (
        read_path(TTN_UPLINK, "uplink_message.rx_metadata.0.gateway_ids.gateway_id")
        == "gw-ghent-01"
    )
    for missing in ("uplink_message.rx_metadata[5].rssi", "nope", "uplink_message.f_port.x"):
        with pytest.raises(KeyError):
            read_path(TTN_UPLINK, missing)


def test_times_are_normalised_to_utc() -> None:
    assert normalise_time("2026-03-01T10:15:02.301845219Z") == "2026-03-01T10:15:02.301845Z"
    assert normalise_time("2026-03-01T12:15:02+02:00") == "2026-03-01T10:15:02.000000Z"
    assert normalise_time(1772360102) == "2026-03-01T10:15:02.000000Z"
    assert normalise_time(1772360102500) == "2026-03-01T10:15:02.500000Z"
    for bad in ("yesterday", True, None):
        with pytest.raises(BadRequestData):
            normalise_time(bad)


def test_ttn_example() -> None:
    mapping = load_mapping(EXAMPLES / "ttn.yaml")
    assert mapping.filters == ["v3/+/devices/+/up"]
    assert isinstance(mapping.context, dict) and "pm25" in mapping.context
    found = mapping.match(TTN_TOPIC)
    assert found is not None
    rule, captures = found
    entity = rule.entity(captures, TTN_UPLINK, NOW)
    assert entity["id"] == "urn:ngsi-ld:AirQualityObserved:70B3D57ED005A1B2"
    assert entity["type"] == "AirQualityObserved"
    observed = "2026-03-01T10:15:02.301845Z"
    assert entity["pm25"] == {
        "type": "Property",
        "value": 12.4,
        "unitCode": "GQ",
        "observedAt": observed,
    }
    assert entity["rssi"]["value"] == -97
    assert entity["location"] == {
        "type": "GeoProperty",
        "value": {"type": "Point", "coordinates": [3.7174, 51.0543]},
        "observedAt": observed,
    }


def test_zigbee2mqtt_example() -> None:
    mapping = load_mapping(EXAMPLES / "zigbee2mqtt.yaml")
    found = mapping.match(Z2M_TOPIC)
    assert found is not None
    rule, captures = found
    entity = rule.entity(captures, Z2M_STATE, NOW)
    assert entity["id"] == "urn:ngsi-ld:Device:zigbee:living_room_sensor"
    assert entity["temperature"] == {
        "type": "Property",
        "value": 21.37,
        "unitCode": "CEL",
        "observedAt": NOW,
    }
    assert entity["relativeHumidity"]["value"] == 48.31
    assert entity["linkQuality"] == {"type": "Property", "value": 134, "observedAt": NOW}
    # a device that reports less gets fewer attributes, not an error
    door = rule.entity({"friendly_name": "door"}, {"contact": True, "linkquality": 90}, NOW)
    assert set(door) == {"id", "type", "linkQuality"}
    # zigbee2mqtt/bridge/state has two levels below the prefix: not this mapping's
    assert mapping.match("zigbee2mqtt/bridge/state") is None
    with pytest.raises(BadRequestData, match="no mapped attribute"):
        rule.entity({"friendly_name": "x"}, {"state": "ON"}, NOW)


def test_plain_json_example_in_toml() -> None:
    mapping = load_mapping(EXAMPLES / "plain.toml")
    found = mapping.match(PLAIN_TOPIC)
    assert found is not None
    rule, captures = found
    entity = rule.entity(captures, PLAIN_READING, NOW)
    assert entity["id"] == "urn:ngsi-ld:AirQualityObserved:gent-042"
    assert entity["pm25"]["observedAt"] == "2026-03-01T10:15:02.000000Z"
    assert entity["location"]["value"] == {"type": "Point", "coordinates": [4.4, 51.2]}
    assert entity["refDevice"]["object"] == "urn:ngsi-ld:Device:gent-042"
    # no ts in the payload: the receive time
    assert rule.entity(captures, {"pm25": 1}, NOW)["pm25"]["observedAt"] == NOW


def test_unmappable_payloads_and_bad_files(tmp_path: Path) -> None:
    rule = load_mapping(EXAMPLES / "ttn.yaml").rules[0]
    with pytest.raises(BadRequestData, match="not a JSON object"):
        rule.entity({}, [1, 2], NOW)
    with pytest.raises(BadRequestData, match=r"end_device_ids\.dev_eui"):
        rule.entity({}, {"uplink_message": {"decoded_payload": {"pm25": 1}}}, NOW)
    for bad in (
        {},
        {"mappings": []},
        {"mappings": [{"topic": "a", "id": "x", "type": "T"}]},
        {
            "mappings": [
                {
                    "topic": "a",
                    "id": "x",
                    "type": "T",
                    "attributes": {"a": {"kind": "Nope", "value": "v"}},
                }
            ]
        },
        {
            "mappings": [
                {"topic": "a", "id": "x", "type": "T", "attributes": {"a": {"unitCode": "C"}}}
            ]
        },
    ):
        with pytest.raises(BadRequestData):
            parse_mapping(bad)
    broken = tmp_path / "broken.yaml"
    broken.write_text("mappings: [\n")
    with pytest.raises(BadRequestData, match=r"broken\.yaml"):
        load_mapping(broken)
