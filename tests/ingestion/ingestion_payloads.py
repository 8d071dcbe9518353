"""Realistic payloads of the three worked mapping examples (docs/examples/mqtt/)."""

from __future__ import annotations

from typing import Any

TTN_TOPIC = "v3/air-ghent@ttn/devices/eui-70b3d57ed005a1b2/up"
TTN_UPLINK: dict[str, Any] = {
    "end_device_ids": {
        "device_id": "eui-70b3d57ed005a1b2",
        "application_ids": {"application_id": "air-ghent"},
        "dev_eui": "70B3D57ED005A1B2",
        "join_eui": "0000000000000000",
        "dev_addr": "260B1234",
    },
    "correlation_ids": ["gs:uplink:01HQ2Z4J8Q0Y3ZJ4Y5X0P3T9K7"],
    "received_at": "2026-03-01T10:15:02.512349871Z",
    "uplink_message": {
        "session_key_id": "AYx2QnNzZXNzaW9u",
        "f_port": 2,
        "f_cnt": 1187,
        "frm_payload": "AHwAyQBV",
        "decoded_payload": {"pm25": 12.4, "pm10": 20.1, "temperature": 8.5},
        "rx_metadata": [
            {
                "gateway_ids": {"gateway_id": "gw-ghent-01"},
                "rssi": -97,
                "channel_rssi": -97,
                "snr": 7.5,
            },
            {"gateway_ids": {"gateway_id": "gw-ghent-02"}, "rssi": -110, "snr": -2.0},
        ],
        "settings": {
            "data_rate": {"lora": {"bandwidth": 125000, "spreading_factor": 7}},
            "frequency": "868100000",
        },
        "received_at": "2026-03-01T10:15:02.301845219Z",
        "consumed_airtime": "0.061696s",
        "locations": {
            "user": {"latitude": 51.0543, "longitude": 3.7174, "source": "SOURCE_REGISTRY"}
        },
    },
}

Z2M_TOPIC = "zigbee2mqtt/living_room_sensor"
Z2M_STATE: dict[str, Any] = {
    "battery": 97,
    "humidity": 48.31,
    "linkquality": 134,
    "temperature": 21.37,
    "voltage": 2995,
}

PLAIN_TOPIC = "sensors/gent-042/air"
PLAIN_READING: dict[str, Any] = {
    "ts": 1772360102,
    "pm25": 9.1,
    "no2": 21,
    "gps": {"lat": 51.2, "lon": 4.4},
}
