"""Delivery of queued notifications (NGSI-LD 1.8 §5.11, HTTP binding §6.3.6 / §7.2).

The `Notifier` runs beside the API (started in `create_app`'s lifespan). It claims a batch of
due rows of the durable outbox (`SubscriptionStore.claim`) and POSTs each Notification with
`notifiedAt` set to its endpoint: the rows of one subscription one after the other in queueing
order, subscriptions in parallel, with no database write between two sends. Then ONE
transaction records what became of the whole batch (`SubscriptionStore.settle`): rows
acknowledged (or given up on) are removed, failed ones rescheduled, and each subscription's
timesSent, timesFailed, lastNotification, lastSuccess and lastFailure get the batch's attempts.

Crash safety: a row is removed only after its send was acknowledged by the receiver (any 2xx,
§7.2), in the transaction that also counts it. If the process dies after a send and before that
transaction commits, the row is still in the outbox and is sent again once its lease has run
out: delivery is at-least-once, as it always was. Rows of a batch not yet sent half-way through
the lease are put back, due at once and not counted, so the batch is recorded while its lease
still holds and no other deliverer can have claimed them meanwhile.

A failed attempt (a non-2xx answer, a refused connection, a timeout) is retried with exponential
back-off (1 s doubling, at most `max_delay` between attempts) up to `max_attempts`; rows survive
a restart. `mqtt://`/`mqtts://` endpoints are published to with aiomqtt (NGSI-LD 1.8 §7.3 MQTT
binding: a JSON message {"metadata": headers, "body": notification}); the endpoint URI carries
the user name and password (§7.3.1), `mqtts://` verifies the broker against `mqtt_tls` (the
settings mqtt_ca_file, mqtt_cert_file, mqtt_key_file; broker/mqtt.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import ssl
import time
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import aiomqtt
import httpx
import orjson

from smartregion.broker.mqtt import TlsFiles, close_socket, connected, parse_mqtt_url, refusal
from smartregion.broker.subscriptions import (
    NotificationFilter,
    PeriodicSender,
    SubscriptionService,
    join_linked,
    subscription_owner,
)
from smartregion.core.times import format_datetime
from smartregion.errors import BadRequestData
from smartregion.storage.base import Readable, Store
from smartregion.storage.subscriptions import OutboxRow, Settled, epoch_now

log = logging.getLogger("smartregion.notifier")

__all__ = ["Notifier"]

#: seconds one reading of what a subscription's owner may read serves its next notifications
READABLE_FOR = 1.0


@functools.cache
def _tls_context() -> ssl.SSLContext:
    """The TLS settings of every notifier's HTTP client — httpx's default (certifi's CAs, the
    environment ignored) — made once per process: making them reads the CA bundle (~20 ms),
    which every app's start-up paid (a twentieth of the NGSI-LD tests' time)."""
    return httpx.create_ssl_context(trust_env=False)


class Notifier:
    """Background sender of the outbox."""

    def __init__(
        self,
        subscriptions: SubscriptionService,
        *,
        timeout: float = 10.0,
        max_attempts: int = 200,
        base_delay: float = 1.0,
        max_delay: float = 30.0,
        poll_interval: float = 1.0,
        batch: int = 50,
        lease: float = 60.0,
        transport: httpx.AsyncBaseTransport | None = None,
        store: Store | None = None,
        readers: NotificationFilter | None = None,
        mqtt_tls: TlsFiles | None = None,
    ) -> None:
        self.subscriptions = subscriptions
        #: CA and client certificate for mqtts:// endpoints (None: the system's CAs, no certificate)
        self.mqtt_tls = mqtt_tls
        #: timeInterval subscriptions need the entity store to query what they report
        self.store = store
        #: what each subscription's owner may read, decided when a notification is sent
        self.readers = readers
        self.periodic = PeriodicSender(subscriptions, store, readers) if store is not None else None
        self.timeout = timeout
        self.max_attempts = max_attempts
        self.base_delay = base_delay
        self.max_delay = max_delay
        self.poll_interval = poll_interval
        self.batch = batch
        self.lease = lease
        self._client = httpx.AsyncClient(
            timeout=timeout, transport=transport, trust_env=False, verify=_tls_context()
        )
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    async def start(self) -> None:
        """Start the delivery loop."""
        if self._task is None:
            self._stopping = False
            self._task = asyncio.create_task(self._run(), name="smartregion-notifier")

    async def stop(self) -> None:
        """Stop the loop (rows in flight stay queued and are retried after their lease)."""
        self._stopping = True
        self.subscriptions.queued.set()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self._client.aclose()

    async def _run(self) -> None:
        while not self._stopping:
            try:
                if self.periodic is not None:
                    await self.periodic.run_due()
                sent = await self.deliver_due()
            except Exception:  # a database hiccup must not end delivery for good
                log.exception("notification delivery failed; retrying")
                sent = 0
            if sent:
                continue
            self.subscriptions.queued.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.subscriptions.queued.wait(), self.poll_interval)

    async def deliver_due(self) -> int:
        """Claim, send and settle the rows due now; returns how many were claimed."""
        rows = await self.subscriptions.subs.claim(epoch_now(), limit=self.batch, lease=self.lease)
        if not rows:
            return 0
        # what is not sent by then goes back, so that the batch is settled within its lease
        deadline = time.monotonic() + self.lease / 2
        groups: dict[tuple[str, str], list[OutboxRow]] = {}
        for row in rows:
            groups.setdefault((row.tenant, row.subscription_id), []).append(row)
        settled: list[Settled] = []
        try:
            await asyncio.gather(
                *(self._deliver_in_order(group, deadline, settled) for group in groups.values())
            )
        finally:
            # one transaction for the batch, also when stopped part-way: what was sent is
            # recorded, and a row cut off in mid-send is sent again after its lease
            try:
                if settled:
                    await self.subscriptions.subs.settle(settled)
            finally:
                # reads of these subscriptions waited for this record (SubscriptionService)
                self.subscriptions.outcomes_recorded(
                    [(s.tenant, s.subscription_id, s.row_id) for s in settled if s.ok is not None]
                )
        return len(rows)

    async def _deliver_in_order(
        self, rows: list[OutboxRow], deadline: float, settled: list[Settled]
    ) -> None:
        """Send one subscription's rows in order; their outcomes go to `settled`."""
        # what the owner may read is read once for the rows sent within READABLE_FOR seconds
        # (a grant revoked stops the notifications sent after that), not once per row
        known: tuple[str, float, Readable | None] | None = None
        for row in rows:
            if time.monotonic() > deadline:
                settled.append(
                    Settled(
                        row.id,
                        row.tenant,
                        row.subscription_id,
                        retry_at=epoch_now(),
                        attempts=row.attempts,
                    )
                )
                continue
            try:
                readable: Readable | None = None
                if self.readers is not None:
                    owner = subscription_owner(row.target, self.readers.unowned)
                    if (
                        known is None
                        or known[0] != owner
                        or time.monotonic() - known[1] > READABLE_FOR
                    ):
                        known = (owner, time.monotonic(), await self.readers.readable(row.target))
                    readable = known[2]
                settled.append(await self._deliver(row, readable))
            except Exception:
                # not sent (reading what it reports failed): this row and the later ones stay
                # leased and are sent, in order, after the lease
                log.exception(
                    "notification %s of %s could not be sent", row.id, row.subscription_id
                )
                return

    async def _deliver(self, row: OutboxRow, readable: Readable | None) -> Settled:
        at = format_datetime(datetime.now(UTC))
        # reads of the subscription wait for this send's outcome to be recorded with the batch
        # (SubscriptionService.outcome_pending); released at once when nothing is recorded
        pending = (row.tenant, row.subscription_id, row.id)
        self.subscriptions.outcome_pending(*pending)
        try:
            ok = await self._send(row, at, readable)
        except BaseException:
            self.subscriptions.outcomes_recorded([pending])
            raise
        if ok is None:
            self.subscriptions.outcomes_recorded([pending])
            # nothing in it the subscriber may read: not sent, and not counted either (the
            # subscription's timesSent must not reveal changes to others' data)
            return Settled(row.id, row.tenant, row.subscription_id)
        attempts = row.attempts + 1
        if ok or attempts >= self.max_attempts:
            if not ok:
                log.warning(
                    "giving up notification %s of %s after %d attempts",
                    row.id,
                    row.subscription_id,
                    attempts,
                )
            return Settled(row.id, row.tenant, row.subscription_id, ok, at)
        delay = min(self.max_delay, self.base_delay * 2 ** (attempts - 1))
        return Settled(
            row.id,
            row.tenant,
            row.subscription_id,
            ok,
            at,
            retry_at=epoch_now() + delay,
            attempts=attempts,
        )

    async def _send(self, row: OutboxRow, at: str, readable: Readable | None) -> bool | None:
        """Send one notification: whether it was acknowledged (None: nothing left to send).

        `readable` is what the subscription's owner may read (None: everything)."""
        uri: str = row.target["uri"]
        body = dict(row.body)
        if self.readers is not None:
            kept = await self.readers.body(row, body, readable)
            if kept is None:
                return None
            body = kept
        if "join" in row.target and self.store is not None:
            body = await join_linked(
                self.subscriptions, self.store, replace(row, body=body), readable
            )
        body["notifiedAt"] = at
        headers = dict(row.target.get("headers", {}))
        timeout = float(row.target.get("timeout", self.timeout))
        if uri.startswith(("mqtt://", "mqtts://")):
            return await publish_mqtt(
                uri, body, headers, row.target.get("notifierInfo", []), timeout, self.mqtt_tls
            )
        try:
            response = await self._client.post(
                uri, content=orjson.dumps(body), headers=headers, timeout=timeout
            )
        except httpx.HTTPError as exc:
            log.info("notification to %s failed: %s", uri, exc)
            return False
        # NGSI-LD 1.8 §7.2: any 2xx acknowledges the notification
        return 200 <= response.status_code < 300


async def publish_mqtt(
    uri: str,
    body: dict[str, Any],
    headers: dict[str, str],
    notifier_info: list[dict[str, str]],
    timeout: float,
    tls: TlsFiles | None = None,
) -> bool:
    """Publish a notification to an MQTT topic (§7.3); whether the broker accepted it."""
    info = {pair["key"]: pair["value"] for pair in notifier_info}
    # §7.3.2: notifierInfo MQTT-QoS (0, 1, 2) and MQTT-Version (mqtt3.1.1, mqtt5.0)
    qos = int(info.get("MQTT-QoS", "0")) if info.get("MQTT-QoS", "0") in ("0", "1", "2") else 0
    version = (
        aiomqtt.ProtocolVersion.V5
        if info.get("MQTT-Version") == "mqtt5.0"
        else aiomqtt.ProtocolVersion.V311
    )
    message = orjson.dumps({"metadata": headers, "body": body})
    try:
        # §7.3.1: mqtt[s]://[user[:password]@]host[:port]/topic
        address = parse_mqtt_url(
            uri, tls=tls if uri.startswith("mqtts://") else None, password_in_url=True
        )
        options = address.client_options()
    except BadRequestData as exc:  # unreadable TLS files, a bad URI: said at every attempt
        log.error("MQTT notification to %s not sent: %s", urlsplit(uri).hostname, exc.detail)
        return False
    client = aiomqtt.Client(**options, protocol=version, timeout=timeout)
    try:
        async with connected(client):
            await client.publish(urlsplit(uri).path.lstrip("/"), message, qos=qos)
    except (aiomqtt.MqttError, OSError) as exc:
        close_socket(client)
        reason = refusal(exc)
        if reason is not None:
            log.warning("MQTT notification to %s refused: %s", address.host, reason)
        else:
            log.info("MQTT notification to %s failed: %s", address.host, exc)
        return False
    return True
