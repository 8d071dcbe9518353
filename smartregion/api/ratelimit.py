"""Token-bucket rate limits per credential and per client address (OWASP ASVS 5.0 V2.4.1).

Limits are kept per process, in memory: with `--workers N` each worker counts on its own, so a
client spread over N connections can reach up to N times the configured rate (docs/security.md).
"""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Callable, Hashable
from typing import Any

__all__ = ["ClientAddress", "RateLimits", "TokenBuckets", "credential_key"]

#: most buckets one limiter keeps; beyond it the least recently used bucket is forgotten
MAX_BUCKETS = 100_000

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class TokenBuckets:
    """One token bucket per key: `burst` tokens at most, refilled at `rate` per second.

    Each bucket is kept as a single float, the time at which it will be full again (the
    "theoretical arrival time" of the generic cell rate algorithm, ITU-T I.371, which is the
    same limit as a token bucket). Buckets live in a dict ordered by last use; a bucket that is
    full again is equivalent to no bucket at all, so the least recently used ones are dropped
    as soon as they are full, and beyond `max_keys` regardless — memory stays bounded by the
    number of clients active within the last `burst / rate` seconds.
    """

    __slots__ = ("_full_at", "interval", "max_keys", "window")

    def __init__(self, rate: float, burst: int, *, max_keys: int = MAX_BUCKETS) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("a token bucket needs rate > 0 and burst >= 1")
        self.interval = 1.0 / rate  # seconds one token takes to come back
        self.window = burst * self.interval  # how far ahead of now a bucket may be emptied
        self.max_keys = max_keys
        self._full_at: dict[Hashable, float] = {}

    def __len__(self) -> int:
        return len(self._full_at)

    def take(self, key: Hashable, now: float) -> float:
        """Take one token: 0.0 when granted, else the seconds until one is available."""
        buckets = self._full_at
        full_at = buckets.pop(key, now)  # re-inserted below: the dict stays in order of use
        if full_at < now:
            full_at = now
        after = full_at + self.interval
        if after - now > self.window + 1e-9:  # the tolerance absorbs float rounding
            buckets[key] = full_at
            return after - now - self.window
        buckets[key] = after
        # forget the least recently used bucket when it is full again (or there are too many):
        # each call adds at most one bucket and may drop one
        oldest = next(iter(buckets))
        if buckets[oldest] <= now or len(buckets) > self.max_keys:
            del buckets[oldest]
        return 0.0


def credential_key(authorization: bytes | None) -> int | None:
    """A keyed hash of the bearer token of an `Authorization` header (never the token itself).

    Python's `hash` of bytes is SipHash under a random per-process key: 64 bits, cheap, and
    neither reversible nor open to chosen collisions (PEP 456).
    """
    if authorization is None or authorization[:7].lower() != b"bearer ":
        return None
    token = authorization[7:].strip()
    return hash(token) if token else None


def _networks(spec: str) -> tuple[IPNetwork, ...]:
    items = [item.strip() for item in spec.split(",") if item.strip()]
    try:
        return tuple(ipaddress.ip_network(item, strict=False) for item in items)
    except ValueError as exc:
        raise ValueError(f"trusted_proxies: {exc}") from exc


class ClientAddress:
    """The client's address: the peer, or what trusted proxies say in `X-Forwarded-For`.

    `X-Forwarded-For` is read right to left (each proxy appends the address it saw), skipping
    trusted proxies; the first address not trusted is the client. A header sent by a client
    that is not a trusted proxy is ignored, so the default (no trusted proxies) cannot be
    spoofed.
    """

    def __init__(self, trusted_proxies: str = "") -> None:
        self.trusted = _networks(trusted_proxies)
        self._verdicts: dict[str, bool] = {}

    def is_trusted(self, address: str) -> bool:
        """Whether an address belongs to a trusted proxy (cached per address)."""
        verdict = self._verdicts.get(address)
        if verdict is None:
            try:
                ip = ipaddress.ip_address(address)
            except ValueError:
                verdict = False
            else:
                verdict = any(ip in net for net in self.trusted)
            if len(self._verdicts) >= 4096:
                self._verdicts.clear()
            self._verdicts[address] = verdict
        return verdict

    def __call__(self, scope: Any) -> str:
        client = scope.get("client")
        peer: str = client[0] if client else ""
        if not self.trusted or not self.is_trusted(peer):
            return peer
        hops: list[str] = [
            hop.strip()
            for name, value in scope["headers"]
            if name.lower() == b"x-forwarded-for"
            for hop in value.decode("latin-1").split(",")
        ]
        for hop in reversed(hops):
            if hop and not self.is_trusted(hop):
                return hop
        return next((hop for hop in hops if hop), peer)  # only proxies: the farthest one


class RateLimits:
    """The two limits of a request: per client address (all requests) and per credential."""

    def __init__(
        self,
        *,
        address_rate: float,
        address_burst: int,
        key_rate: float,
        key_burst: int,
        trusted_proxies: str = "",
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = MAX_BUCKETS,
    ) -> None:
        for name, value in (
            ("rate_limit_address_rate", address_rate),
            ("rate_limit_address_burst", address_burst),
            ("rate_limit_key_rate", key_rate),
            ("rate_limit_key_burst", key_burst),
        ):
            if value < 0:
                raise ValueError(f"{name} must not be negative")
        self.by_address = (
            TokenBuckets(address_rate, address_burst, max_keys=max_keys)
            if address_rate and address_burst
            else None
        )
        self.by_key = (
            TokenBuckets(key_rate, key_burst, max_keys=max_keys) if key_rate and key_burst else None
        )
        self.client_address = ClientAddress(trusted_proxies)
        self.clock = clock

    @property
    def enabled(self) -> bool:
        """Whether any limit is on."""
        return self.by_address is not None or self.by_key is not None

    def check(self, scope: Any, authorization: bytes | None) -> float:
        """0.0 when the request may proceed, else the seconds the client should wait."""
        now = self.clock()
        if self.by_address is not None:
            wait = self.by_address.take(self.client_address(scope), now)
            if wait:
                return wait
        if self.by_key is not None:
            key = credential_key(authorization)
            if key is not None:
                return self.by_key.take(key, now)
        return 0.0
