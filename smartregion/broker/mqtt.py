"""MQTT connections: broker URLs, TLS and credentials (the bridge and MQTT notification endpoints).

- `mqtt://HOST[:PORT]` is plain TCP (port 1883 by default); `mqtts://HOST[:PORT]` is MQTT over
  TLS (port 8883 by default, MQTT 3.1.1 §5.5 / MQTT 5 §5.4.9). Over TLS the broker's certificate
  is verified — against `ca_file` when given, else the system's trusted CAs — and its name must
  match HOST (`ssl.create_default_context`: TLS 1.2 at least, hostname checked). There is no
  switch to turn verification off.
- A client certificate (`cert_file`, with `key_file` unless the key is in the same PEM file)
  authenticates the client to a broker that asks for one (Mosquitto: `require_certificate`).
- A user name and password go in the MQTT CONNECT (§3.1.3.5, §3.1.3.6); only over `mqtts://`
  are they protected on the wire.

A broker that refuses the connection for a reason that waiting cannot fix — wrong user name or
password, not authorised, a certificate that is not trusted or not for this host — is told apart
from a broker that is down (`refusal`), so that a misconfigured client says why at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlsplit

import aiomqtt

from smartregion.errors import BadRequestData

__all__ = [
    "MqttAddress", "MqttRefused", "TlsFiles", "close_socket", "connected", "parse_mqtt_url",
    "refusal", "tls_context",
]  # fmt: skip

DEFAULT_PORTS = {"mqtt": 1883, "mqtts": 8883}

#: CONNACK reason codes that mean "these credentials will not do": MQTT 3.1.1 §3.2.2.3
#: (4 bad user name or password, 5 not authorised); MQTT 5 §3.2.2.2 (0x86 bad user name or
#: password, 0x87 not authorised, 0x8A banned, 0x8C bad authentication method)
_REFUSED_CREDENTIALS = {4, 5, 0x86, 0x87, 0x8A, 0x8C}


class MqttRefused(Exception):
    """The MQTT broker refused us for good: wrong credentials, or its certificate is not trusted."""


@dataclass(frozen=True, slots=True)
class TlsFiles:
    """PEM files for `mqtts://`: the CAs to trust (None: the system's) and a client certificate."""

    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None

    def __bool__(self) -> bool:
        return bool(self.ca_file or self.cert_file or self.key_file)

    @classmethod
    def of(cls, ca_file: str, cert_file: str, key_file: str) -> TlsFiles:
        """From settings, where an empty string means none."""
        return cls(ca_file or None, cert_file or None, key_file or None)


@dataclass(frozen=True, slots=True)
class MqttAddress:
    """Where and how to connect to an MQTT broker."""

    host: str
    port: int
    secure: bool
    username: str | None = None
    password: str | None = field(default=None, repr=False)  # never in logs or tracebacks
    tls: TlsFiles = TlsFiles()

    def client_options(self) -> dict[str, Any]:
        """Keyword arguments of `aiomqtt.Client` for this address."""
        options: dict[str, Any] = {
            "hostname": self.host,
            "port": self.port,
            "username": self.username,
            "password": self.password,
        }
        if self.secure:
            options["tls_context"] = tls_context(self.tls)
        return options


def parse_mqtt_url(
    url: str,
    *,
    tls: TlsFiles | None = None,
    username: str | None = None,
    password: str | None = None,
    password_in_url: bool = False,
) -> MqttAddress:
    """Parse `mqtt[s]://[USER[:PASSWORD]@]HOST[:PORT][/…]` (without a scheme: mqtt://).

    `password_in_url` allows a password in the URL (NGSI-LD 1.8 §7.3.1 puts a notification
    endpoint's credentials there); elsewhere it is refused, because a command line shows in the
    process list and the shell history. `username`/`password` given here take precedence.
    TLS files need `mqtts://`; they are checked (readable, valid PEM) here.
    """
    parts = urlsplit(url if "://" in url else f"mqtt://{url}")
    if parts.scheme not in DEFAULT_PORTS or not parts.hostname:
        raise BadRequestData(
            f"expected mqtt://HOST[:PORT] or mqtts://HOST[:PORT], got {_safe(url)!r}"
        )
    try:
        port = parts.port or DEFAULT_PORTS[parts.scheme]
    except ValueError:
        raise BadRequestData(
            f"the port of {_safe(url)!r} is not a number from 1 to 65535"
        ) from None
    if parts.password is not None and not password_in_url:
        raise BadRequestData(
            "the MQTT password must not be part of the broker URL (a command line is visible to "
            "every user of the machine): use a password file or an environment variable"
        )
    user = username or (unquote(parts.username) if parts.username else None)
    secret = (
        password if password is not None else (unquote(parts.password) if parts.password else None)
    )
    if secret is not None and not user:
        raise BadRequestData("an MQTT password needs a user name")
    files = tls or TlsFiles()
    secure = parts.scheme == "mqtts"
    if files and not secure:
        raise BadRequestData("TLS files (CA, client certificate, key) need an mqtts:// broker URL")
    address = MqttAddress(parts.hostname, port, secure, user, secret, files)
    if secure:
        tls_context(files)  # refuse unreadable or invalid files now, not at the first connection
    return address


def tls_context(files: TlsFiles) -> ssl.SSLContext:
    """A client TLS context that verifies the broker (and presents our certificate, if any)."""
    if files.key_file and not files.cert_file:
        raise BadRequestData("a client key file needs its certificate file")
    try:
        context = ssl.create_default_context(cafile=files.ca_file)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        if files.cert_file:
            context.load_cert_chain(files.cert_file, files.key_file)
    except FileNotFoundError as exc:
        raise BadRequestData(f"TLS file not found: {exc.filename}") from None
    except (ssl.SSLError, OSError) as exc:
        raise BadRequestData(f"TLS files could not be used: {exc}") from None
    return context


def refusal(exc: BaseException) -> str | None:
    """Why the broker refused us for good (see the module docstring), or None: worth retrying."""
    if isinstance(exc, aiomqtt.MqttCodeError) and _code(exc.rc) in _REFUSED_CREDENTIALS:
        return f"the MQTT broker refused the credentials ({exc})"
    text = str(exc)
    if isinstance(exc, ssl.SSLCertVerificationError) or "CERTIFICATE_VERIFY_FAILED" in text:
        return f"the MQTT broker's TLS certificate is not trusted or not for this host ({text})"
    return None


@contextlib.asynccontextmanager
async def connected(client: aiomqtt.Client) -> AsyncIterator[aiomqtt.Client]:
    """`async with client`, taking note of an unexpected disconnection's error on leaving.

    aiomqtt 2.5 keeps that error on a future of its own, and its `__aexit__` returns early when
    the future is done, without retrieving it: asyncio then reports "Future exception was
    never retrieved … Unexpected disconnection" when the client is collected. Whoever needs
    the error has had it (reading messages or publishing raises it as `MqttError`).
    """
    try:
        async with client:
            yield client
    finally:
        disconnected = getattr(client, "_disconnected", None)
        if (
            isinstance(disconnected, asyncio.Future)
            and disconnected.done()
            and not disconnected.cancelled()
        ):
            disconnected.exception()


def close_socket(client: aiomqtt.Client) -> None:
    """Close the socket of a client whose connection failed (aiomqtt 2 leaves it open).

    When the broker refuses the CONNECT, aiomqtt raises but neither it nor paho closes the
    socket: each refused attempt would leak one until garbage collection. paho's `_sock_close`
    also unregisters aiomqtt's reader of that socket (its `on_socket_close` callback).
    """
    close = getattr(client._client, "_sock_close", None)
    if close is not None:
        with contextlib.suppress(Exception):
            close()


def _code(rc: Any) -> int | None:
    value = getattr(rc, "value", rc)  # paho's ReasonCode, or a plain int
    return value if isinstance(value, int) else None


def _safe(url: str) -> str:
    """The URL without a password, for messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.netloc.rpartition("@")[2]
    return parts._replace(netloc=f"{parts.username}:***@{host}").geturl()
