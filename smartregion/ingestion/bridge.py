"""The MQTT ingestion bridge: MQTT messages in, NGSI-LD entity writes through the broker.

Delivery contract (docs/ingestion.md):

- Subscriptions are QoS 1 in a persistent session (a stable client id; MQTT 5: clean start off
  and a session that never expires, §3.1.2.4 and §3.1.2.11.2; MQTT 3.1.1: clean session off,
  §3.1.2.4), so the MQTT broker keeps messages for the bridge while it is away.
- Messages are written in BATCHES: the bridge takes the messages that have arrived (up to
  `batch_size`, waiting `batch_wait` seconds for more after the first) and writes all their
  entities with one batch upsert in ONE store transaction, the dead letters of the batch's bad
  messages in the same transaction (`upsert_parts`, `DeadLetters`; a batch of many large lists
  is cut, between messages, into transactions of at most `MAX_BATCH_ENTITIES` entities). A
  message is acknowledged (PUBACK) only after the transaction holding what it produced has
  committed: its entities or its dead letter. When the store fails, no message of that
  transaction is acknowledged; the bridge drops the connection and reconnects after a back-off,
  and the MQTT broker resends every unacknowledged message of the session (MQTT 3.1.1 §4.4,
  MQTT 5 §4.4). Delivery is therefore at-least-once; a redelivered message rewrites the same
  attribute values, and its observations, already in history, are not recorded again
  (storage/history.py: the content is the idempotency key). Entries of several messages for one
  entity apply in arrival order, and each records its instances and notifies as if written alone.
- Batch k+1 is read and parsed while batch k is written; writes stay one at a time, so batch
  k+1's transaction starts after batch k's commit. Its entities' system times (modifiedAt) are
  taken when it is parsed, at most one batch write before its own commit — far below
  `ldes_settle_seconds`, which must exceed that gap (docs/ldes.md).
- The bridge speaks MQTT 5 by default and announces a Receive Maximum (§3.1.2.11.3) of twice
  the batch size, so the broker keeps that many unacknowledged messages coming while a batch is
  written; over MQTT 3.1.1 the broker alone decides (Mosquitto: `max_inflight_messages`,
  20 by default), which bounds the batches.
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
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import aiomqtt
import orjson
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from smartregion.broker.batch import BatchResult, ParsedParts, Vocabularies
from smartregion.broker.mqtt import (
    MqttAddress,
    MqttRefused,
    TlsFiles,
    close_socket,
    connected,
    parse_mqtt_url,
    refusal,
)
from smartregion.broker.service import Broker
from smartregion.core.entities import Vocabulary
from smartregion.core.times import utc_now
from smartregion.errors import BadRequestData, SmartRegionError
from smartregion.governance import Governance, GovernanceStore, Principal, WriteAccess
from smartregion.ingestion.mapping import Mapping
from smartregion.storage.ingestion import DeadLetter, DeadLetters, IngestionStore

__all__ = ["BridgeConfig", "Incoming", "MqttBridge", "parse_broker_url"]

log = logging.getLogger("smartregion.ingestion")

#: dead letters keep at most this many characters of a payload
PAYLOAD_LIMIT = 4096
#: most entities one transaction of a batch writes (a batch is cut between messages)
MAX_BATCH_ENTITIES = 5000
#: MQTT protocol versions the bridge speaks
PROTOCOLS = ("5", "3.1.1")
#: MQTT 5 §3.1.2.11.2: a session that never expires, like a 3.1.1 persistent session
NEVER_EXPIRES = 0xFFFFFFFF


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
    #: most messages written in one batch (one transaction)
    batch_size: int = 500
    #: seconds a batch waits for more messages after its first, when fewer have arrived
    batch_wait: float = 0.005
    #: MQTT protocol version: "5" (Receive Maximum lets batches fill) or "3.1.1"
    protocol: str = "5"
    #: login to the MQTT broker (the password never in the URL: docs/ingestion.md)
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    #: CA and client certificate files for an mqtts:// broker
    tls: TlsFiles = field(default_factory=TlsFiles)

    def __post_init__(self) -> None:
        self.address()  # a bad URL, a password in it, unreadable TLS files: refused now
        if self.protocol not in PROTOCOLS:
            raise BadRequestData(f"MQTT protocol must be one of {', '.join(PROTOCOLS)}")
        if not 1 <= self.batch_size <= 10000:
            raise BadRequestData("the batch size must be between 1 and 10000 messages")
        if not 0 <= self.batch_wait <= 1:
            raise BadRequestData("the batch wait must be between 0 and 1 second")

    def address(self) -> MqttAddress:
        """The broker's address, TLS files and credentials."""
        return parse_mqtt_url(
            self.broker_url, tls=self.tls, username=self.username, password=self.password
        )

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

    def session_options(self) -> dict[str, Any]:
        """aiomqtt.Client options for a persistent session in the configured protocol."""
        if self.protocol == "3.1.1":
            return {"clean_session": False}
        properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        properties.SessionExpiryInterval = NEVER_EXPIRES
        # MQTT 5 §3.1.2.11.3: the broker may have this many messages unacknowledged with us
        properties.ReceiveMaximum = min(65535, 2 * self.batch_size)
        return {
            "protocol": aiomqtt.ProtocolVersion.V5,
            # resume the session on EVERY connection (aiomqtt's default starts clean the first time)
            "clean_start": False,
            "properties": properties,
        }


@dataclass(frozen=True, slots=True)
class Incoming:
    """One MQTT message to ingest."""

    topic: str
    payload: bytes
    received_at: str


@dataclass(slots=True)
class _Prepared:
    """A message turned into entities to write, or the reason it cannot be."""

    message: Incoming
    entities: list[Any] | None
    vocabs: Vocabularies | None
    reason: str | None = None


@dataclass(slots=True)
class _Chunk:
    """Consecutive messages of a batch written in one transaction, parsed."""

    #: the index of its first message in the batch
    start: int
    messages: list[_Prepared]
    parsed: ParsedParts


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
        # the bridge writes as an editor of its organisation, by the API's rules: it changes
        # that organisation's entities and those of owners that mandated it (for all their data
        # or for a data set holding the entity), and what it creates in a mandating owner's
        # data set is that owner's; any other entity becomes a dead letter. The mandates are read
        # for every transaction (`_write_access`), as the API reads them for every request, so
        # a revoked mandate stops counting at once.
        store = broker.store
        self._governance = Governance(store) if isinstance(store, GovernanceStore) else None
        self._stopping = asyncio.Event()

    def stop(self) -> None:
        """Ask `run` to finish after the message in hand (safe from a signal handler)."""
        self._stopping.set()

    async def ingest(
        self, topic: str, payload: bytes, *, received_at: str | None = None
    ) -> list[str]:
        """Write one message's entities (or its dead letter); the ids written, committed on return.

        Storage failures propagate: the caller must then not acknowledge the message.
        """
        (written,) = await self.ingest_batch([Incoming(topic, payload, received_at or utc_now())])
        return written

    async def ingest_batch(
        self,
        messages: Sequence[Incoming],
        committed: Callable[[range], None] | None = None,
    ) -> list[list[str]]:
        """Write a batch of messages (see the module docstring); the ids each one wrote.

        `committed(indices)` is called after each transaction's COMMIT with the indices of the
        messages it made durable, so the caller can acknowledge them. Storage failures
        propagate: the messages not yet reported committed must not be acknowledged.
        """
        return await self._write_chunks(await self._prepare(messages), committed)

    async def _prepare(self, messages: Sequence[Incoming]) -> list[_Chunk]:
        """Parse a batch into the entities of its transactions (no database write)."""
        prepared: list[_Prepared] = []
        for message in messages:
            try:
                entities, vocabs = await self._entities(
                    message.topic, message.payload, message.received_at
                )
                self.broker.batch.check_shape(entities)
            except SmartRegionError as exc:
                prepared.append(_Prepared(message, None, None, exc.detail))
            else:
                prepared.append(_Prepared(message, entities, vocabs))
        chunks: list[_Chunk] = []
        start = 0
        while start < len(prepared):
            end, size = start, 0
            while end < len(prepared) and (end == start or size < MAX_BATCH_ENTITIES):
                part = prepared[end].entities
                size += len(part) if part is not None else 0
                end += 1
            chunk = prepared[start:end]
            parsed = self.broker.batch.parse_parts(
                [
                    (p.entities, p.vocabs)
                    for p in chunk
                    if p.entities is not None and p.vocabs is not None
                ]
            )
            chunks.append(_Chunk(start, chunk, parsed))
            start = end
        return chunks

    async def _write_chunks(
        self, chunks: list[_Chunk], committed: Callable[[range], None] | None
    ) -> list[list[str]]:
        written: list[list[str]] = []
        for chunk in chunks:
            written.extend(await self._write(chunk))
            if committed is not None:
                committed(range(chunk.start, chunk.start + len(chunk.messages)))
        return written

    async def _write(self, chunk: _Chunk) -> list[list[str]]:
        """One transaction: the chunk's entities, and the dead letters of its bad messages."""
        batch = chunk.messages
        letters: list[DeadLetter] = []

        def dead_letters(results: list[BatchResult]) -> list[Any]:
            letters.clear()  # (called once per transaction attempt)
            outcomes = iter(results)
            for p in batch:
                reason = p.reason
                if p.entities is not None:
                    errors = next(outcomes).errors
                    if errors:
                        reason = "; ".join(
                            f"{e.entity_id or '?'}: {e.error.detail}" for e in errors
                        )
                if reason is not None:
                    letters.append(self._letter(p.message, reason))
            return [DeadLetters(tuple(letters))] if letters else []

        results = await self.broker.batch.upsert_parts(
            self.config.tenant,
            chunk.parsed,
            writer=await self._write_access(),
            mode="update",
            extra=dead_letters,
        )
        # committed: count and report
        for letter in letters:
            log.warning("dead letter from %s: %s", letter.topic, letter.reason)
        self.dead += len(letters)
        self.ingested += sum(len(r.success) for r in results)
        outcomes = iter(results)
        return [next(outcomes).success if p.entities is not None else [] for p in batch]

    async def _write_access(self) -> WriteAccess:
        """What the bridge's organisation may write now (`Governance.write_access`)."""
        if self._governance is None:
            return WriteAccess(self.config.org)
        editor = Principal(org_id=self.config.org, role="editor")
        return await self._governance.write_access(editor)

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

    def _letter(self, message: Incoming, reason: str) -> DeadLetter:
        text = message.payload.decode("utf-8", errors="replace")
        if len(text) > PAYLOAD_LIMIT:
            text = text[:PAYLOAD_LIMIT] + "…"
        return DeadLetter(
            tenant=self.config.tenant,
            org=self.config.org,
            topic=message.topic,
            payload=text,
            reason=reason[:2000],
            received_at=message.received_at,
        )

    # ------------------------------------------------------------------ the connection

    async def run(self) -> None:
        """Consume until `stop`; reconnect with exponential back-off when anything fails.

        Raises `MqttRefused` when the very first connection is refused for good (wrong
        credentials, an untrusted certificate): a misconfigured bridge stops and says why. Once
        it has been connected, such refusals are logged as errors and retried (a broker being
        reconfigured), like any other failure.
        """
        address = self.config.address()
        delay = self.config.backoff_initial
        ever_connected = False
        while not self._stopping.is_set():
            client: aiomqtt.Client | None = None
            try:
                client = aiomqtt.Client(
                    **address.client_options(),
                    identifier=self.config.identifier(),
                    keepalive=self.config.keepalive,
                    **self.config.session_options(),
                )
                # aiomqtt 2.5 has no manual acknowledgement of its own; the paho client it
                # wraps does (paho-mqtt ≥ 2.0): without it PUBACK would go out on receipt,
                # before the write committed
                client._client.manual_ack_set(True)
                async with connected(client):
                    for topic_filter in self.config.filters():
                        await client.subscribe(topic_filter, qos=1)
                    log.info(
                        "connected to %s as %s", self.config.broker_url, self.config.identifier()
                    )
                    self.connected.set()
                    ever_connected = True
                    delay = self.config.backoff_initial
                    await self._consume(client)
            except aiomqtt.MqttError as exc:
                if client is not None and not self.connected.is_set():
                    close_socket(client)  # refused before it was connected
                reason = refusal(exc)
                if reason is not None and not ever_connected:
                    raise MqttRefused(f"{reason}: {self.config.broker_url}") from None
                if reason is not None:
                    log.error("%s; retrying", reason)
                else:
                    log.warning("MQTT connection lost or refused: %s", exc)
            except Exception:
                # the store failed: the batch in hand stays unacknowledged and comes again
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
        """Read batches and write them: batch k+1 is parsed while batch k is being written.

        Writes stay one at a time, in arrival order: batch k+1's transaction starts only after
        batch k's has committed (and its messages were acknowledged).
        """
        stopping = asyncio.ensure_future(self._stopping.wait())
        writing: asyncio.Future[list[list[str]]] | None = None
        try:
            while True:
                batch = await self._next_batch(client, stopping, writing)
                if batch is None:
                    return
                received = utc_now()
                chunks = await self._prepare(
                    [
                        Incoming(str(m.topic), bytes(m.payload), received)  # type: ignore[arg-type]
                        for m in batch
                    ]
                )
                if writing is not None:
                    await writing  # the batch before has committed (a failure raises here)

                def acknowledge(indices: range, batch: list[aiomqtt.Message] = batch) -> None:
                    # only now that the write has committed (in arrival order, MQTT 3.1.1 §4.6)
                    for i in indices:
                        if batch[i].qos > 0:
                            client._client.ack(batch[i].mid, batch[i].qos)

                writing = asyncio.ensure_future(self._write_chunks(chunks, acknowledge))
        finally:
            stopping.cancel()
            if writing is not None and not writing.done():
                # stopping, or the connection is gone: the batch in hand still commits (its
                # acknowledgements go out only if the connection is still there)
                await writing
            elif writing is not None and not writing.cancelled() and writing.exception():
                log.warning("the last batch was not written: %s", writing.exception())

    async def _next_batch(
        self,
        client: aiomqtt.Client,
        stopping: asyncio.Future[Any],
        writing: asyncio.Future[list[list[str]]] | None,
    ) -> list[aiomqtt.Message] | None:
        """The next batch of messages; None when stopping. A failed write raises here."""
        incoming = asyncio.ensure_future(client.messages.__anext__())
        waits: set[asyncio.Future[Any]] = {incoming, stopping}
        if writing is not None:
            waits.add(writing)
        while True:
            done, _ = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
            if incoming in done:
                break
            if stopping in done or (writing in done and writing.exception() is not None):
                incoming.cancel()
                with contextlib.suppress(asyncio.CancelledError, aiomqtt.MqttError):
                    await incoming
                if writing is not None and writing.done():
                    writing.result()  # the write failed: raise, so that the bridge reconnects
                return None
            waits.discard(writing)  # type: ignore[arg-type]  # committed: wait for messages
        batch = [incoming.result()]
        self._take_queued(client, batch)
        if len(batch) < self.config.batch_size and self.config.batch_wait > 0:
            await asyncio.sleep(self.config.batch_wait)
            self._take_queued(client, batch)
        return batch

    def _take_queued(self, client: aiomqtt.Client, batch: list[aiomqtt.Message]) -> None:
        """Add the messages already received, up to the batch size, without waiting."""
        # aiomqtt's own queue, read directly: its iterator costs a task per message
        queue: asyncio.Queue[aiomqtt.Message] = client._queue
        while len(batch) < self.config.batch_size:
            try:
                batch.append(queue.get_nowait())
            except asyncio.QueueEmpty:
                return
