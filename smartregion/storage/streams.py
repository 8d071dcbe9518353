"""Event-stream reads of attribute history (the LDES publisher's storage): the interface.

Contract (every backend; `tests/storage/test_streams_contract.py`):

- The members of a data set's stream are the attribute instances (history rows) of the series
  of the entities that the data set selects: the tenant's entities owned by `owner` that have
  at least one of `types` and, with a `scope`, a scope within it (as the readable filter's
  slices, `storage.base.Slice`). An entity's scope history (`core.temporal.SCOPE_HISTORY`) is no
  attribute and is not published.
- A member's **publication time** `p` is the instant the platform recorded it: its modifiedAt
  (`t + dm`; `t` when the instance has no observedAt). Members are ordered by
  `(p, series_key, t, seq)` — a total order that never changes once the writes that may still
  come have a later `p` (see `ldes/fragments.py`, "settled").
- `stream_members(…, lo, hi, after, limit)` returns, in that order, at most `limit` members with
  `lo ≤ p < hi` and key after `after` (None: from the start of the window).
- Reading by `p` uses no index on `p` for the rows recorded close to their observation
  (`-EARLY ≤ dm ≤ LATE`, the sensor case): they lie in `t ∈ [lo - LATE, hi + EARLY)` of each
  series' clustered range. The others (late arrivals, bulk loads of old data, observations
  dated ahead) are found through the partial index `instance_unprompt`
  (`(series_key, t + dm)`, only those rows), which costs ordinary writes nothing.
- `stream_nonempty(…, windows)` says per `[lo, hi)` window whether it holds a member (an
  existence probe per window, no sorting).
- `stream_latest(…, lo, hi, after, limit)` returns, per series of the data set (in the text
  order of their keys, after `after`; at most `limit`), its latest member with `lo ≤ p < hi`
  — the greatest `(p, t, seq)` — found with index probes: the last prompt row by `t`, the
  prompt rows within LATE + EARLY before it, and the unprompt index's last `p`.
- `stream_member(…, series_key, t, seq)` is one member by its row key, when it belongs to the
  data set (None otherwise).
- `stream_start` is a lower bound of the first member's `p` (None: no member), read with index
  probes only (per series its first `t`, less EARLY, and its first unprompt `p`).
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from dataclasses import dataclass

from smartregion.storage.history import Series, StoredInstance

__all__ = ["EARLY", "LATE", "StreamKey", "StreamMember", "StreamStore"]

#: rows recorded at most this long (µs) after their observation time are "prompt"
#: (fixed by the partial index's predicate: sqlite 0009, postgres 0010)
LATE = 900_000_000
#: ... or at most this long before it (an observedAt slightly ahead of the platform's clock)
EARLY = 60_000_000

#: (p, series_key, t, seq): a member's position in its stream
StreamKey = tuple[int, int, int, int]


@dataclass(slots=True)
class StreamMember:
    """One member read for a stream page: its publication time, series and instance."""

    p: int
    series: Series
    instance: StoredInstance

    @property
    def key(self) -> StreamKey:
        """The member's position in the stream order."""
        return (self.p, self.series.key, self.instance.t, self.instance.seq)


class StreamStore(abc.ABC):
    """Where event-stream pages read their members (see the module docstring)."""

    @abc.abstractmethod
    async def stream_members(
        self,
        tenant: str,
        owner: str,
        types: Sequence[str],
        lo: int,
        hi: int,
        *,
        after: StreamKey | None = None,
        limit: int = 1000,
        scope: str | None = None,
    ) -> list[StreamMember]:
        """At most `limit` members of the data set (owner, types) with `lo ≤ p < hi`, after
        `after`, in stream order."""

    @abc.abstractmethod
    async def stream_start(
        self, tenant: str, owner: str, types: Sequence[str], *, scope: str | None = None
    ) -> int | None:
        """A lower bound of the data set's first publication time (None: no member yet)."""

    @abc.abstractmethod
    async def stream_extent(
        self,
        tenant: str,
        owner: str,
        types: Sequence[str],
        without: Sequence[str] = (),
        *,
        scope: str | None = None,
    ) -> tuple[float, float, float, float] | None:
        """The bounding box (west, south, east, north; WGS 84 degrees) of every geometry the
        data set's current entities (within `scope`, when it has one) hold, leaving out the
        attributes (IRIs) in `without`; None when they hold none (the catalogue's spatial
        coverage)."""

    @abc.abstractmethod
    async def stream_nonempty(
        self,
        tenant: str,
        owner: str,
        types: Sequence[str],
        windows: Sequence[tuple[int, int]],
        *,
        scope: str | None = None,
    ) -> list[bool]:
        """Per window `[lo, hi)` (in the order given), whether it holds a member."""

    @abc.abstractmethod
    async def stream_latest(
        self,
        tenant: str,
        owner: str,
        types: Sequence[str],
        lo: int,
        hi: int,
        *,
        after: str | None = None,
        limit: int = 1000,
        scope: str | None = None,
    ) -> list[StreamMember]:
        """Each series' latest member with `lo ≤ p < hi`, series in the text order of their keys
        after `after` (a key as text), at most `limit` series (those without such a member are
        skipped)."""

    @abc.abstractmethod
    async def stream_member(
        self,
        tenant: str,
        owner: str,
        types: Sequence[str],
        series_key: int,
        t: int,
        seq: int,
        *,
        scope: str | None = None,
    ) -> StreamMember | None:
        """One member by its row key; None when there is none in the data set."""
