"""Service-account API keys: `srk_<key id>_<secret>`, shown once, stored as a SHA-256 hash.

The key id (16 hex digits) is a public prefix used to find the record in one indexed lookup;
the secret is 32 random bytes (`secrets.token_urlsafe`). The stored value is SHA-256 of the whole
key: a slow password hash (argon2) protects *low*-entropy secrets against guessing, but a
256-bit random secret cannot be guessed, so a fast hash loses nothing and keeps every API
request cheap (the usual reasoning for high-entropy tokens).
Comparison is constant-time.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

__all__ = ["KEY_PREFIX", "IssuedKey", "hash_key", "issue_key", "key_matches", "parse_key"]

KEY_PREFIX = "srk"
_KEY = re.compile(r"srk_([0-9a-f]{16})_([A-Za-z0-9_\-]{43,})")


@dataclass(frozen=True, slots=True)
class IssuedKey:
    """A new key: its id (public) and the whole key (secret, shown once)."""

    key_id: str
    key: str


def issue_key() -> IssuedKey:
    """Mint a fresh key."""
    key_id = secrets.token_hex(8)
    return IssuedKey(key_id, f"{KEY_PREFIX}_{key_id}_{secrets.token_urlsafe(32)}")


def parse_key(key: str) -> str | None:
    """The key id of a well-formed key, or None."""
    match = _KEY.fullmatch(key)
    return match.group(1) if match else None


def hash_key(key: str) -> str:
    """The stored form of a key (hex SHA-256)."""
    return hashlib.sha256(key.encode()).hexdigest()


def key_matches(key: str, stored_hash: str) -> bool:
    """Constant-time comparison of a presented key with a stored hash."""
    return hmac.compare_digest(hash_key(key), stored_hash)
