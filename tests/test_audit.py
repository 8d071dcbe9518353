"""The audit chain (core): hashes link records; altered, deleted, inserted rows are detected."""

from __future__ import annotations

import dataclasses

from smartregion.core.audit import GENESIS, AuditRecord, record_hash, verify_chain


def chain(n: int) -> list[AuditRecord]:
    records: list[AuditRecord] = []
    prev = GENESIS
    for seq in range(1, n + 1):
        detail = {"n": seq}
        at = f"2026-11-27T08:00:0{seq % 10}.000000Z"
        digest = record_hash(prev, seq, at, "operator", "key.create", f"k{seq}", detail)
        records.append(
            AuditRecord(seq, at, "operator", "key.create", f"k{seq}", detail, prev, digest)
        )
        prev = digest
    return records


def head(records: list[AuditRecord]) -> tuple[int, str]:
    return (records[-1].seq, records[-1].hash)


def test_an_intact_chain_verifies() -> None:
    records = chain(5)
    assert verify_chain(records, head(records)) == []
    assert verify_chain([], None) == []


def test_the_hash_covers_every_field_and_key_order_does_not_matter() -> None:
    base = record_hash(GENESIS, 1, "t", "a", "x", "s", {"a": 1, "b": 2})
    assert base == record_hash(GENESIS, 1, "t", "a", "x", "s", {"b": 2, "a": 1})
    for changed in [
        record_hash("1" * 64, 1, "t", "a", "x", "s", {"a": 1, "b": 2}),
        record_hash(GENESIS, 2, "t", "a", "x", "s", {"a": 1, "b": 2}),
        record_hash(GENESIS, 1, "u", "a", "x", "s", {"a": 1, "b": 2}),
        record_hash(GENESIS, 1, "t", "b", "x", "s", {"a": 1, "b": 2}),
        record_hash(GENESIS, 1, "t", "a", "y", "s", {"a": 1, "b": 2}),
        record_hash(GENESIS, 1, "t", "a", "x", "z", {"a": 1, "b": 2}),
        record_hash(GENESIS, 1, "t", "a", "x", "s", {"a": 1, "b": 3}),
    ]:
        assert changed != base


def test_an_altered_row_is_detected() -> None:
    records = chain(5)
    records[2] = dataclasses.replace(records[2], actor="someone else")
    problems = verify_chain(records, head(records))
    assert any("row 3" in p and "altered" in p for p in problems)


def test_a_deleted_middle_row_is_detected() -> None:
    records = chain(5)
    del records[2]
    problems = verify_chain(records, head(records))
    assert any("row 4" in p for p in problems)


def test_rows_cut_off_the_end_are_detected_by_the_head() -> None:
    records = chain(5)
    full_head = head(records)
    assert verify_chain(records[:3], full_head) != []
    # and a missing head with rows present
    assert verify_chain(records, None) != []


def test_a_rehashed_row_still_breaks_the_link_to_its_successor() -> None:
    records = chain(4)
    r = records[1]
    forged = dataclasses.replace(r, subject="forged")
    forged = dataclasses.replace(
        forged,
        hash=record_hash(
            forged.prev_hash,
            forged.seq,
            forged.at,
            forged.actor,
            forged.action,
            forged.subject,
            forged.detail,
        ),
    )
    records[1] = forged
    assert any("row 3" in p and "link" in p for p in verify_chain(records, head(records)))
