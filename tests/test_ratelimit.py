"""Token buckets, client addresses behind proxies, and credential keys (no clock: times are given)."""

from __future__ import annotations

from typing import Any

import pytest

from smartregion.api.ratelimit import ClientAddress, RateLimits, TokenBuckets, credential_key


def test_a_bucket_grants_its_burst_then_refills_at_its_rate() -> None:
    buckets = TokenBuckets(rate=2.0, burst=3)
    assert [buckets.take("a", 100.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    wait = buckets.take("a", 100.0)
    assert wait == pytest.approx(0.5)  # one token comes back every 1/rate seconds
    assert buckets.take("a", 100.4) > 0  # not yet
    assert buckets.take("a", 100.5) == 0.0
    assert buckets.take("a", 100.5) > 0
    # after a long pause the bucket is full again, never fuller than the burst
    assert [buckets.take("a", 200.0) for _ in range(4)][-1] > 0
    assert buckets.take("b", 200.0) == 0.0  # keys are independent


def test_refused_requests_do_not_use_up_tokens() -> None:
    buckets = TokenBuckets(rate=1.0, burst=1)
    assert buckets.take("a", 0.0) == 0.0
    for _ in range(100):
        assert buckets.take("a", 0.5) > 0
    assert buckets.take("a", 1.0) == 0.0


def test_idle_buckets_are_forgotten_and_memory_is_bounded() -> None:
    buckets = TokenBuckets(rate=10.0, burst=5)
    for i in range(1000):
        buckets.take(f"client-{i}", float(i))  # each client is full again 0.1 s later
    assert len(buckets) <= 2
    capped = TokenBuckets(rate=0.001, burst=5, max_keys=50)  # nobody is full again for hours
    for i in range(1000):
        capped.take(i, 0.0)
    assert len(capped) <= 51


def test_invalid_buckets_are_refused() -> None:
    with pytest.raises(ValueError):
        TokenBuckets(rate=0, burst=1)
    with pytest.raises(ValueError):
        RateLimits(address_rate=-1, address_burst=1, key_rate=0, key_burst=0)


def _scope(peer: str, *forwarded: str) -> dict[str, Any]:
    headers = [(b"x-forwarded-for", value.encode()) for value in forwarded]
    return {"client": (peer, 40000), "headers": [(b"host", b"x"), *headers]}


def test_forwarded_for_is_ignored_unless_the_peer_is_a_trusted_proxy() -> None:
    default = ClientAddress("")
    assert default(_scope("203.0.113.9", "198.51.100.1")) == "203.0.113.9"
    behind = ClientAddress("10.0.0.0/8, 192.0.2.1")
    assert behind(_scope("203.0.113.9", "198.51.100.1")) == "203.0.113.9"  # not a proxy of ours
    assert behind(_scope("10.1.2.3", "198.51.100.1")) == "198.51.100.1"
    # the client made up the first hop; our proxies appended the rest: take the rightmost untrusted
    assert behind(_scope("10.1.2.3", "6.6.6.6, 198.51.100.1, 192.0.2.1")) == "198.51.100.1"
    assert behind(_scope("10.1.2.3", "6.6.6.6", "198.51.100.7")) == "198.51.100.7"
    assert behind(_scope("10.1.2.3", "10.9.9.9")) == "10.9.9.9"  # only proxies: the farthest
    assert behind(_scope("10.1.2.3")) == "10.1.2.3"
    assert ClientAddress("")({"headers": []}) == ""  # no peer (a unix socket)
    with pytest.raises(ValueError, match="trusted_proxies"):
        ClientAddress("not-an-address")


def test_credential_keys_identify_bearer_tokens_without_holding_them() -> None:
    key = credential_key(b"Bearer srk_0123_secret")
    assert key is not None
    assert key == credential_key(b"bearer  srk_0123_secret ")
    assert key != credential_key(b"Bearer srk_0123_other")
    assert b"secret" not in repr(key).encode()
    assert credential_key(b"Basic dXNlcjpwdw==") is None
    assert credential_key(b"Bearer ") is None
    assert credential_key(None) is None


def test_a_request_counts_against_its_address_and_its_credential() -> None:
    now = [0.0]
    limits = RateLimits(
        address_rate=1.0, address_burst=10, key_rate=1.0, key_burst=2, clock=lambda: now[0]
    )
    scope = _scope("198.51.100.1")
    assert limits.check(scope, b"Bearer k1") == 0.0
    assert limits.check(scope, b"Bearer k1") == 0.0
    assert limits.check(scope, b"Bearer k1") > 0  # the key's burst is spent
    assert limits.check(scope, b"Bearer k2") == 0.0  # another key from the same address
    for _ in range(7):
        limits.check(scope, None)
    assert limits.check(scope, b"Bearer k3") > 0  # the address's burst is spent
    assert limits.check(_scope("198.51.100.2"), None) == 0.0
    off = RateLimits(address_rate=0, address_burst=10, key_rate=5, key_burst=0)
    assert not off.enabled
