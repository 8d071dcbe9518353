"""Notifications to mqtt:// endpoints, received from a real Mosquitto broker (NGSI-LD 1.8 §7.3)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiomqtt
import httpx
import pytest

pytestmark = pytest.mark.anyio

LD = {"Content-Type": "application/ld+json"}
CTX = {"@context": {"Building": "https://ex.org/Building", "height": "https://ex.org/height"}}


async def collect(
    broker: str, topic: str, ready: asyncio.Event, out: list[dict[str, Any]], count: int
) -> None:
    host, port = broker.removeprefix("mqtt://").split(":")
    async with aiomqtt.Client(hostname=host, port=int(port)) as client:
        await client.subscribe(topic, qos=1)
        ready.set()
        async for message in client.messages:
            out.append(json.loads(bytes(message.payload)))  # type: ignore[arg-type]
            if len(out) >= count:
                return


async def test_mqtt_endpoint_receives_notifications(
    client: httpx.AsyncClient, mosquitto_url: str
) -> None:
    topic = "smartregion/test/notifications"
    received: list[dict[str, Any]] = []
    ready = asyncio.Event()
    listener = asyncio.create_task(collect(mosquitto_url, topic, ready, received, 2))
    await asyncio.wait_for(ready.wait(), 10)

    sub = {
        "type": "Subscription",
        "entities": [{"type": "Building"}],
        "watchedAttributes": ["height"],
        "notification": {
            "endpoint": {
                "uri": f"{mosquitto_url}/{topic}",
                "accept": "application/json",
                "notifierInfo": [{"key": "MQTT-QoS", "value": "1"}],
            }
        },
        **CTX,
    }
    r = await client.post("/subscriptions", json=sub, headers=LD)
    assert r.status_code == 201, r.text
    entity = {
        "id": "urn:ngsi-ld:Building:m1",
        "type": "Building",
        "height": {"type": "Property", "value": 10},
        **CTX,
    }
    assert (await client.post("/entities", json=entity, headers=LD)).status_code == 201
    r = await client.patch(
        "/entities/urn:ngsi-ld:Building:m1/attrs",
        json={"height": {"type": "Property", "value": 12}, **CTX},
        headers=LD,
    )
    assert r.status_code == 204, r.text

    try:
        await asyncio.wait_for(listener, 20)
    except TimeoutError:
        raise AssertionError(f"received only {received}") from None
    bodies = [m["body"] for m in received]
    assert all(b["type"] == "Notification" for b in bodies)
    # compacted with the subscription's @context
    heights = [b["data"][0]["height"]["value"] for b in bodies]
    assert heights == [10, 12]
    assert all("metadata" in m for m in received)
