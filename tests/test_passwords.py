"""Passwords: argon2id hashes, length rules, no exceptions on mismatch."""

from __future__ import annotations

import pytest

from smartregion.errors import BadRequestData
from smartregion.governance.passwords import hash_password, needs_rehash, verify_password


def test_hash_and_verify() -> None:
    encoded = hash_password("correct horse battery")
    assert encoded.startswith("$argon2id$")
    assert "correct horse" not in encoded
    assert verify_password(encoded, "correct horse battery")
    assert not verify_password(encoded, "correct horse batterY")
    assert not verify_password("not a hash", "correct horse battery")
    assert not needs_rehash(encoded)
    assert hash_password("correct horse battery") != encoded  # salted


@pytest.mark.parametrize("password", ["short", "x" * 11, "y" * 1025])
def test_unacceptable_passwords(password: str) -> None:
    with pytest.raises(BadRequestData):
        hash_password(password)
