"""The pages (TREE nodes) of an event stream and how they link: the two views, pure.

Every data set's stream (`/ldes/{dataset}`) has two views, both over one member order —
`(p, series_key, t, seq)`, `p` being when the platform recorded the member
(`storage.streams`):

- **paged** (`/ldes/{ds}/paged`): the members in stream order, `page_size` a page. A page is
  named by the key of the member before it (`?after=p.series.t.seq`), so its content is fixed
  once its members are: a full page never changes. The view root starts at the retention
  cutoff (or the beginning), so it is the one page that moves.
- **by-time** (`/ldes/{ds}/by-time/YYYY/MM/DD/HH`): a hierarchy year → month → day → hour on
  the timestamp path (`prov:generatedAtTime` = `p`); inner nodes hold only relations
  (`tree:GreaterThanOrEqualToRelation` and `tree:LessThanRelation` to each child), hours hold
  the members, `page_size` a page, continued within the hour like the paged view.

Why recording time, not observation time: observations arrive late and out of order; a bucket
of observation time could never be closed without either refusing late data or changing a
page declared immutable. Ordered by recording time, a member is never inserted before one
already published — once the write that recorded it has committed. Members are published
only once **settled** (`p < now - settle`): a transaction commits at most `settle` after it
took its modifiedAt, so nothing can later arrive before the settled horizon. Late
observations appear in the current pages; their `sosa:resultTime` says when they were made.

- **latest** (`/ldes/{ds}/latest`): the latest member of each version object (series) only —
  a `ldes:LatestVersionSubset` of one — `page_size` a page in the text order of the version
  IRIs (`tree:GreaterThanRelation` on `dct:isVersionOf`); never immutable.

Retention: a data set keeping N days of history publishes from the cutoff
(`now - N days`, taken back to its UTC day, as the purge does); pages wholly before it answer
410 Gone and no relation leads to them.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime

from smartregion.errors import InvalidRequest, ResourceNotFound
from smartregion.storage.streams import StreamKey, StreamMember

__all__ = [
    "HOUR",
    "VIEWS",
    "Page",
    "PageRef",
    "Relation",
    "children",
    "format_after",
    "parse_page",
    "window",
]

HOUR = 3_600_000_000
DAY = 24 * HOUR
#: view names, as they appear in URLs
VIEWS = ("paged", "by-time", "latest")
_SERIES_AFTER = re.compile(r"\d{1,19}")
_AFTER = re.compile(r"(-?\d{1,19})\.(\d{1,19})\.(-?\d{1,19})\.(\d{1,10})")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class PageRef:
    """Which page: a view, a time bucket (by-time: (), (Y,), (Y, M), (Y, M, D), (Y, M, D, H))
    and the member the page continues after (None: the bucket's or view's first page)."""

    view: str
    parts: tuple[int, ...] = ()
    after: StreamKey | None = None
    #: the latest view: the series key (as text) the page continues after
    after_series: str | None = None

    @property
    def path(self) -> str:
        """The page's path and query relative to the stream IRI."""
        path = "/" + self.view
        if self.view == "by-time":
            widths = (4, 2, 2, 2)
            path += "".join(f"/{v:0{w}d}" for v, w in zip(self.parts, widths, strict=False))
        if self.after is not None:
            path += "?after=" + format_after(self.after)
        elif self.after_series is not None:
            path += "?after=" + self.after_series
        return path

    @property
    def leaf(self) -> bool:
        """Whether the page holds members (the paged view, a by-time hour)."""
        return self.view == "paged" or len(self.parts) == 4


@dataclass(frozen=True, slots=True)
class Relation:
    """A TREE relation of a page: its type's local name, the node it leads to, its value (µs
    on the timestamp path; or, on `dct:isVersionOf`, a version object's IRI)."""

    kind: str
    node: PageRef
    value: int | str


@dataclass(slots=True)
class Page:
    """One page: its members and relations, and whether it can never change."""

    ref: PageRef
    members: list[StreamMember] = field(default_factory=list)
    relations: list[Relation] = field(default_factory=list)
    immutable: bool = False


def format_after(key: StreamKey) -> str:
    """A member key as the `after` parameter."""
    return ".".join(str(v) for v in key)


def parse_page(view: str, path: str, after: str | None) -> PageRef:
    """The page a URL names (`path`: what follows the view, e.g. "2026/11/27"); unknown pages
    are ResourceNotFound, malformed parameters InvalidRequest."""
    if view not in VIEWS:
        raise ResourceNotFound(f"no view {view!r}")
    parts: tuple[int, ...] = ()
    pieces = [p for p in path.split("/") if p]
    if pieces:
        if view != "by-time" or len(pieces) > 4:
            raise ResourceNotFound(f"no page {path!r} in view {view!r}")
        widths = (4, 2, 2, 2)
        if any(not p.isdigit() or len(p) != w for p, w in zip(pieces, widths, strict=False)):
            raise ResourceNotFound(f"no page {path!r} in view {view!r}")
        parts = tuple(int(p) for p in pieces)
        if not _valid(parts):
            raise ResourceNotFound(f"no page {path!r} in view {view!r}")
    key: StreamKey | None = None
    if view == "latest":
        if after is not None and _SERIES_AFTER.fullmatch(after) is None:
            raise InvalidRequest(f"after={after!r} is not a series key")
        return PageRef(view, parts, None, after)
    if after is not None:
        found = _AFTER.fullmatch(after)
        if found is None:
            raise InvalidRequest(f"after={after!r} is not a member key (p.series.t.seq)")
        if view == "by-time" and len(parts) != 4:
            raise InvalidRequest("after= continues an hour page or a paged-view page only")
        key = (int(found[1]), int(found[2]), int(found[3]), int(found[4]))
    ref = PageRef(view, parts, key)
    if key is not None and view == "by-time":
        lo, hi = window(ref)
        if not lo <= key[0] < hi:
            raise ResourceNotFound("after= names a member outside this hour")
    return ref


def _valid(parts: tuple[int, ...]) -> bool:
    year = parts[0]
    if not 1970 <= year <= 9998:
        return False
    if len(parts) > 1 and not 1 <= parts[1] <= 12:
        return False
    if len(parts) > 2 and not 1 <= parts[2] <= calendar.monthrange(year, parts[1])[1]:
        return False
    return not (len(parts) > 3 and not 0 <= parts[3] <= 23)


def _micros(when: datetime) -> int:
    delta = when - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000


def window(ref: PageRef) -> tuple[int, int]:
    """The `[lo, hi)` µs of publication time a by-time node covers (the root: everything)."""
    parts = ref.parts
    if not parts:
        return 0, 2**62
    y = parts[0]
    if len(parts) == 1:
        return _micros(datetime(y, 1, 1, tzinfo=UTC)), _micros(datetime(y + 1, 1, 1, tzinfo=UTC))
    m = parts[1]
    if len(parts) == 2:
        ny, nm = (y + 1, 1) if m == 12 else (y, m + 1)
        return _micros(datetime(y, m, 1, tzinfo=UTC)), _micros(datetime(ny, nm, 1, tzinfo=UTC))
    day = _micros(datetime(y, m, parts[2], tzinfo=UTC))
    if len(parts) == 3:
        return day, day + DAY
    return day + parts[3] * HOUR, day + (parts[3] + 1) * HOUR


def _parts_of(micros: int, depth: int) -> tuple[int, ...]:
    when = datetime.fromtimestamp(micros // 1_000_000, UTC)
    return (when.year, when.month, when.day, when.hour)[:depth]


def children(ref: PageRef, lo: int, hi: int) -> list[PageRef]:
    """The child nodes of a by-time inner node that overlap `[lo, hi)` (the published span)."""
    depth = len(ref.parts) + 1
    own_lo, own_hi = window(ref)
    lo, hi = max(lo, own_lo), min(hi, own_hi)
    if lo >= hi:
        return []
    out: list[PageRef] = []
    parts = _parts_of(lo, depth)
    while True:
        child = PageRef("by-time", parts)
        c_lo, c_hi = window(child)
        if c_lo >= hi:
            break
        out.append(child)
        parts = _parts_of(c_hi, depth)
    return out
