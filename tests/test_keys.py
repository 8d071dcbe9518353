"""API keys: format, randomness, hashing, constant-time match."""

from __future__ import annotations

import hashlib

from smartregion.governance.keys import hash_key, issue_key, key_matches, parse_key


def test_issued_keys_carry_their_id_and_32_random_bytes() -> None:
    issued = issue_key()
    assert issued.key.startswith(f"srk_{issued.key_id}_")
    assert parse_key(issued.key) == issued.key_id
    secret = issued.key.split("_", 2)[2]
    assert len(secret) >= 43  # 32 bytes in URL-safe base64
    assert len({issue_key().key for _ in range(100)}) == 100


def test_the_stored_form_is_sha256_and_matches_only_the_key() -> None:
    issued = issue_key()
    stored = hash_key(issued.key)
    assert stored == hashlib.sha256(issued.key.encode()).hexdigest()
    assert issued.key not in stored
    assert key_matches(issued.key, stored)
    assert not key_matches(issued.key + "x", stored)
    assert not key_matches(issue_key().key, stored)


def test_malformed_keys_have_no_id() -> None:
    for bad in [
        "",
        "srk_",
        "srk_0123456789abcdef_short",
        "xyz_0123456789abcdef_" + "a" * 43,
        "srk_0123456789ABCDEF_" + "a" * 43,
        "Bearer srk_0123456789abcdef_" + "a" * 43,
    ]:
        assert parse_key(bad) is None
