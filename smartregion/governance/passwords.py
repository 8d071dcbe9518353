"""Password hashing for people: argon2id (argon2-cffi's RFC 9106 defaults)."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from smartregion.errors import BadRequestData

__all__ = ["MIN_PASSWORD_LENGTH", "hash_password", "needs_rehash", "verify_password"]

#: OWASP ASVS 5.0 (authentication chapter): a minimum length and no composition rules; we
#: take 12 characters
MIN_PASSWORD_LENGTH = 12
_MAX_PASSWORD_LENGTH = 1024  # argon2 hashes anything, but a megabyte password is a DoS

_hasher = PasswordHasher()


def hash_password(password: str) -> str:
    """The encoded argon2id hash of an acceptable password."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise BadRequestData(f"a password needs at least {MIN_PASSWORD_LENGTH} characters")
    if len(password) > _MAX_PASSWORD_LENGTH:
        raise BadRequestData(f"a password has at most {_MAX_PASSWORD_LENGTH} characters")
    return _hasher.hash(password)


def verify_password(encoded: str, password: str) -> bool:
    """Whether `password` matches the encoded hash (False, never an exception, on mismatch)."""
    if len(password) > _MAX_PASSWORD_LENGTH:
        return False
    try:
        return _hasher.verify(encoded, password)
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(encoded: str) -> bool:
    """Whether the hash was made with weaker parameters than today's (rehash at next login)."""
    return _hasher.check_needs_rehash(encoded)
