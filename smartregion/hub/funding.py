"""Funding instruments over time: the call deadlines still ahead (for the deadlines feed and
digests), nearest first."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from smartregion.storage.hub import HubObject

__all__ = ["Deadline", "upcoming_deadlines"]


@dataclass(frozen=True, slots=True)
class Deadline:
    """One call window's deadline of a funding instrument."""

    instrument: HubObject
    deadline: date
    opens: date | None
    note: dict[str, str]


def upcoming_deadlines(
    instruments: list[HubObject], today: date, *, limit: int = 100
) -> list[Deadline]:
    """The deadlines on or after `today` of `instruments`' calls, nearest first."""
    found = []
    for obj in instruments:
        for call in obj.doc.get("calls", []):
            deadline = date.fromisoformat(call["deadline"])
            if deadline >= today:
                opens = date.fromisoformat(call["opens"]) if call.get("opens") else None
                found.append(Deadline(obj, deadline, opens, call.get("note") or {}))
    found.sort(key=lambda d: (d.deadline, d.instrument.id))
    return found[:limit]
