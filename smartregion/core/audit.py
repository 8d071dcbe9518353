"""The audit chain: how a record's hash is computed and how a chain is verified (pure).

Each record stores the hash of the previous record and a hash over its own content together with
that previous hash, so changing any stored field, deleting or inserting a row anywhere breaks the
chain from that row on; sequence numbers are contiguous from 1, so a deleted row also leaves a
gap, and the head (the last sequence number and hash, kept apart from the rows) reveals rows cut
off the end. This is tamper-*evidence* against edits of the table, not against someone able to
rewrite the whole chain and its head consistently (anchoring the head outside the database is a
later step).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson

__all__ = ["GENESIS", "AuditEvent", "AuditRecord", "record_hash", "verify_chain"]

#: the "previous hash" of the first record
GENESIS = "0" * 64


@dataclass(frozen=True, slots=True)
class AuditEvent:
    """Something to record: who did what to which object (no secrets, no personal data)."""

    actor: str
    action: str
    subject: str
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """A stored audit row."""

    seq: int
    at: str
    actor: str
    action: str
    subject: str
    detail: dict[str, Any]
    prev_hash: str
    hash: str


def record_hash(
    prev_hash: str, seq: int, at: str, actor: str, action: str, subject: str, detail: dict[str, Any]
) -> str:
    """SHA-256 over a canonical (sorted-key) JSON of the record's content and its predecessor."""
    content = orjson.dumps(
        {
            "prev": prev_hash,
            "seq": seq,
            "at": at,
            "actor": actor,
            "action": action,
            "subject": subject,
            "detail": detail,
        },
        option=orjson.OPT_SORT_KEYS,
    )
    return hashlib.sha256(content).hexdigest()


def verify_chain(records: Iterable[AuditRecord], head: tuple[int, str] | None) -> list[str]:
    """Every inconsistency found (empty: the chain is intact); `head` is (last seq, last hash); None: no record was ever written."""
    problems: list[str] = []
    expected_seq, prev = 1, GENESIS
    for rec in records:
        if rec.seq != expected_seq:
            problems.append(
                f"row {rec.seq}: expected sequence number {expected_seq} (rows deleted?)"
            )
        if rec.prev_hash != prev:
            problems.append(f"row {rec.seq}: previous-hash link broken")
        actual = record_hash(
            rec.prev_hash, rec.seq, rec.at, rec.actor, rec.action, rec.subject, rec.detail
        )
        if actual != rec.hash:
            problems.append(f"row {rec.seq}: content does not match its hash (altered)")
        expected_seq, prev = rec.seq + 1, rec.hash
    last = (expected_seq - 1, prev)
    head = head or (0, GENESIS)
    if head != last:
        problems.append(
            f"the head says row {head[0]} is the last, the table ends at row {last[0]}"
            " (rows deleted from the end, or written around the log?)"
        )
    return problems
