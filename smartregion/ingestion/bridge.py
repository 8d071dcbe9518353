"""The MQTT ingestion bridge: MQTT messages in, NGSI-LD entity writes through the broker.

Delivery contract (docs/ingestion.md):

- Subscriptions are QoS 1 in a persistent session (clean session off, a stable client id), so
  the MQTT broker keeps messages for the bridge while it is away (MQTT 3.1.1 §3.1.2.4).
- A message is acknowledged (PUBACK) only after what it produced has committed: its entities
  (one batch upsert transaction) or its dead letter. When the store fails, the message is NOT
  acknowledged; the bridge drops the connection and reconnects after a back-off, and the MQTT
  broker resends every unacknowledged message of the session (MQTT 3.1.1 §4.4). Delivery is
  therefore at-least-once; a redelivered message rewrites the same attribute values, and its
  observations, already in history, are not recorded again (storage/history.py: the content is
  the idempotency key).
- A message that cannot be ingested (not JSON, no mapping for its topic, an invalid entity) is
  recorded as a dead letter for the organisation and acknowledged; the bridge goes on.
- The write is Batch Entity Upsert with the "update" option (NGSI-LD 1.8 §5.6.8): a missing
  entity is created, an existing one gets the message's attributes appended with overwrite
  (§5.6.3) — other attributes stay. Batch Entity Merge (§5.6.20) fails for entities that do not
  exist yet, which a sensor's first message always meets, so it cannot be used alone; a
  written attribute instance is replaced as a whole (not merged member by member).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import aiomqtt
import orjson

from smartregion.broker.batch import Vocabularies
from smartregion.broker.service import Broker
from smartregion.core.entities import Vocabulary
from smartregion.core.times import utc_now
from smartregion.errors import BadRequestData, SmartRegionError
from smartregion.governance import WriteAccess
from smartregion.ingestion.mapping import Mapping
from smartregion.storage.ingestion import DeadLetter, IngestionStore

__all__ = ["BridgeConfig", "MqttBridge", "parse_broker_url"]

log = logging.getLogger("smartregion.ingestion")

#: dead letters keep at most this many characters of a payload
PAYLOAD_LIMIT = 4096


def parse_broker_url(url: str) -> tuple[str, int]:
    """Host and port of an `mqtt://HOST[:PORT]` URL (1883 by default)."""
    parts = urlsplit(url if "://" in url else f"mqtt://{url}")
    if parts.scheme != "mqtt" or not parts.hostname:
        raise BadRequestData(f"expected mqtt://HOST:PORT, got {url!r}")
    return parts.hostname, parts.port or 1883


@dataclass(slots=True)
class BridgeConfig:
    """What the bridge subscribes to and whom it writes as."""

    broker_url: str
    org: str
    tenant: str = ""
    prefix: str = "smartregion"
    mapping: Mapping | None = None
    client_id: str | None = None
    shared_group: str | None = None
    backoff_initial: float = 0.5
    backoff_max: float = 30.0
    #: seconds of silence after which the broker and the bridge ping each other: how fast a
    #: connection that died without a goodbye (a restarted broker) is noticed and replaced
    keepalive: int = 15

    def filters(self) -> list[str]:
        """The topic filters to subscribe to (`$share/{group}/…` with a shared group)."""
        plain = self.mapping.filters if self.mapping is not None else [f"{self.prefix}/entities"]
        if self.shared_group:
            # MQTT 5 §4.8.2 (Mosquitto accepts it over 3.1.1 too): one member gets each message
            return [f"$share/{self.shared_group}/{f}" for f in plain]
        return list(plain)

    def identifier(self) -> str:
        """The stable client id that keeps the persistent session across restarts."""
        return self.client_id or f"smartregion-bridge-{self.org}"


class MqttBridge:
    """Subscribe, turn each message into entities, write them, acknowledge after commit."""

    def __init__(self, broker: Broker, config: BridgeConfig) -> None:
        if not isinstance(broker.store, IngestionStore):
            raise TypeError("the store does not keep dead letters (IngestionStore)")
        self.broker = broker
        self.dead_letters: IngestionStore = broker.store
        self.config = config
        self.connected = asyncio.Event()
        self.ingested = 0
        self.dead = 0
        # the bridge writes as its organisation: it creates what that organisation owns and may
        # change only that (an entity of another owner becomes a dead letter)
        self._writer = WriteAccess(config.org)
        self._stopping = asyncio.Event()

    def stop(self) -> None:
        """Ask `run` to finish after the message in hand (safe from a signal handler)."""
        self._stopping.set()

    async def ingest(self, topic: str, payload: bytes, *, received_at: str | None = None) -> list[str]:
        """Write one message's entities (or its dead letter); the ids written, committed on return.

        Storage failures propagate: the caller must then not acknowledge the message.
        """
        received = received_at or utc_now()
        try:
            entities, vocabs = await self._entities(topic, payload, received)
            result = await self.broker.batch.upsert(
                self.config.tenant, entities, vocabs, writer=self._writer, mode="update"
            )
        except SmartRegionError as exc:
            await self._dead_letter(topic, payload, exc.detail, received)
            return []
        if result.errors:
            reasons = "; ".join(f"{e.entity_id or '?'}: {e.error.detail}" for e in result.errors)
            await self._dead_letter(topic, payload, reasons, received)
        self.ingested += len(result.success)
        return result.success

    async def _entities(
        self, topic: str, payload: bytes, received: str
    ) -> tuple[list[dict[str, Any]], Vocabularies]:
        try:
            body = orjson.loads(payload)
        except orjson.JSONDecodeError as exc:
            raise BadRequestData(f"the payload is not JSON: {exc}") from None
        tenant = self.config.tenant
        mapping = self.config.mapping
        if mapping is not None:
            found = mapping.match(topic)
            if found is None:
                raise BadRequestData(f"no mapping matches topic {topic}")
            rule, captures = found
            vocab = await self.broker.contexts.term_map(mapping.context, tenant=tenant)
            return [rule.entity(captures, body, received)], vocab
        items = body if isinstance(body, list) else [body]
        vocabs: list[Vocabulary | SmartRegionError] = []
        for item in items:
            context = item.pop("@context", None) if isinstance(item, dict) else None
            try:
                vocabs.append(await self.broker.contexts.term_map(context, tenant=tenant))
            except SmartRegionError as exc:
                vocabs.append(exc)
        return items, vocabs

    async def _dead_letter(self, topic: str, payload: bytes, reason: str, received: str) -> None:
        text = payload.decode("utf-8", errors="replace")
        if len(text) > PAYLOAD_LIMIT:
            text = text[:PAYLOAD_LIMIT] + "…"
        await self.dead_letters.add_dead_letter(
            DeadLetter(
                tenant=self.config.tenant, org=self.config.org, topic=topic, payload=text,
                reason=reason[:2000], received_at=received,
            )
        )
        self.dead += 1
        log.warning("dead letter from %s: %s", topic, reason)

    # ------------------------------------------------------------------ the connection

    async def run(self) -> None:
        """Consume until `stop`; reconnect with exponential back-off when anything fails."""
        host, port = parse_broker_url(self.config.broker_url)
        delay = self.config.backoff_initial
        while not self._stopping.is_set():
            try:
                client = aiomqtt.Client(
                    host,
                    port,
                    identifier=self.config.identifier(),
                    clean_session=False,
                    keepalive=self.config.keepalive,
                )
                # aiomqtt 2.5 has no manual acknowledgement of its own; the paho client it
                # wraps does (paho-mqtt ≥ 2.0): without it PUBACK would go out on receipt,
                # before the write committed
                client._client.manual_ack_set(True)
                async with client:
                    for topic_filter in self.config.filters():
                        await client.subscribe(topic_filter, qos=1)
                    log.info("connected to %s as %s", self.config.broker_url, self.config.identifier())
                    self.connected.set()
                    delay = self.config.backoff_initial
                    await self._consume(client)
            except aiomqtt.MqttError as exc:
                log.warning("MQTT connection lost or refused: %s", exc)
            except Exception:
                # the store failed: the message in hand stays unacknowledged and comes again
                log.exception("write failed; reconnecting so the MQTT broker redelivers")
            finally:
                self.connected.clear()
            if self._stopping.is_set():
                break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), delay)
            delay = min(delay * 2, self.config.backoff_max)
        log.info("bridge stopped")

    async def _consume(self, client: aiomqtt.Client) -> None:
        messages = client.messages
        stopping = asyncio.ensure_future(self._stopping.wait())
        try:
            while True:
                incoming = asyncio.ensure_future(messages.__anext__())
                done, _ = await asyncio.wait(
                    {incoming, stopping}, return_when=asyncio.FIRST_COMPLETED
                )
                if incoming not in done:
                    incoming.cancel()
                    with contextlib.suppress(asyncio.CancelledError, aiomqtt.MqttError):
                        await incoming
                    return
                message = incoming.result()
                await self.ingest(str(message.topic), bytes(message.payload))  # type: ignore[arg-type]
                if message.qos > 0:
                    # acknowledged only now that the write has committed
                    client._client.ack(message.mid, message.qos)
        finally:
            stopping.cancel()
