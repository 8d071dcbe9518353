"""Privacy by design: what a reader sees of a data set it may read, and what its queries may test.

A data set (governance) may classify attributes and describe how its *open view* is made
(`Privacy`). Who reads an entity, and through which rule, decides what they see (`Access`):

* `FULL` — the owner, organisations it mandated, the operator: everything, as stored;
* `GRANTED` — a reader admitted by a restricted policy, a grant or a data-set mandate: everything
  but the *personal* attributes (they never leave the owner);
* `OPEN` — a reader admitted only because the data set is open: no personal and no *sensitive*
  attributes; *count* attributes below the k-threshold suppressed, with secondary suppression so
  that no suppressed count can be recovered from the others (or from a total among them); times
  truncated to `coarsen_time`; geometries snapped to a grid of `coarsen_place` metres.

An entity several rules admit is shown by the most permissive one. `Disclosure` applies this
to internal documents (`disclose`) and keeps queries from testing what a reader may not see
(`withheld`): a query that filters on a withheld attribute, on coarsened times or by geometry
selects nothing of that data set for that reader, instead of letting repeated queries recover
the value the view hides. Pure: no I/O.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from smartregion.core.scopes import scopes_within
from smartregion.errors import BadRequestData

__all__ = [
    "FULL_VIEW",
    "Access",
    "Disclosure",
    "Privacy",
    "SliceView",
    "View",
    "coarsen_extent",
    "coarsen_geometry",
    "coarsen_timestamp",
    "disclose_document",
    "disclose_instances",
    "disclose_temporal",
    "suppress_counts",
]

#: the smallest count an open view shows (statistical disclosure control's usual threshold)
DEFAULT_K = 5
_TIME_MEMBERS = ("observedAt", "createdAt", "modifiedAt", "deletedAt")
_METRES_PER_DEGREE = 111_320.0


class Access(enum.IntEnum):
    """How a reader was admitted to an entity; a higher value sees more."""

    OPEN = 1
    GRANTED = 2
    FULL = 3


@dataclass(frozen=True, slots=True)
class Privacy:
    """A data set's attribute classes and open-view rules (attribute names expanded to IRIs)."""

    #: attributes about people: shown to the owner side only
    personal: frozenset[str] = frozenset()
    #: attributes left out of open views
    sensitive: frozenset[str] = frozenset()
    #: count-type attributes: values below `k` suppressed in open views
    counts: frozenset[str] = frozenset()
    k: int = DEFAULT_K
    #: open views truncate every time to a multiple of this many seconds (None: exact)
    coarsen_time: int | None = None
    #: open views snap every geometry to the centre of a grid cell this many metres wide
    coarsen_place: float | None = None

    @property
    def empty(self) -> bool:
        """Whether this changes nothing for any reader."""
        return not (
            self.personal
            or self.sensitive
            or self.counts
            or self.coarsen_time
            or self.coarsen_place
        )

    @classmethod
    def parse(cls, raw: Mapping[str, Any] | None, expand: Callable[[str], str]) -> Privacy:
        """From the JSON a data set's owner gives; BadRequestData on anything unknown or invalid.

        `{"personal": [names], "sensitive": [names], "counts": [names], "k": 5,
        "coarsenTime": seconds, "coarsenPlace": metres}` — every member optional.
        """
        if raw is None:
            return cls()
        if not isinstance(raw, Mapping):
            raise BadRequestData("privacy must be a JSON object")
        known = {"personal", "sensitive", "counts", "k", "coarsenTime", "coarsenPlace"}
        unknown = sorted(set(raw) - known)
        if unknown:
            # an unknown rule is refused, never ignored (fail closed)
            raise BadRequestData(f"unknown privacy member(s) {unknown}; known: {sorted(known)}")

        def names(member: str) -> frozenset[str]:
            value = raw.get(member, [])
            if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
                raise BadRequestData(f"privacy.{member} must be a list of attribute names")
            return frozenset(expand(v) for v in value)

        k = raw.get("k", DEFAULT_K)
        if isinstance(k, bool) or not isinstance(k, int) or not 2 <= k <= 1000:
            raise BadRequestData("privacy.k must be an integer from 2 to 1000")
        coarsen_time = raw.get("coarsenTime")
        if coarsen_time is not None and (
            isinstance(coarsen_time, bool)
            or not isinstance(coarsen_time, int)
            or not 1 <= coarsen_time <= 366 * 86_400
        ):
            raise BadRequestData(
                "privacy.coarsenTime must be a whole number of seconds (1 to a year)"
            )
        coarsen_place = raw.get("coarsenPlace")
        if coarsen_place is not None and (
            isinstance(coarsen_place, bool)
            or not isinstance(coarsen_place, int | float)
            or not 1 <= coarsen_place <= 100_000
        ):
            raise BadRequestData("privacy.coarsenPlace must be a number of metres (1 to 100,000)")
        personal, sensitive, counts = names("personal"), names("sensitive"), names("counts")
        if personal & counts or sensitive & counts:
            raise BadRequestData("an attribute is either personal/sensitive or a count, not both")
        return cls(
            personal=personal,
            sensitive=sensitive,
            counts=counts,
            k=k,
            coarsen_time=coarsen_time,
            coarsen_place=float(coarsen_place) if coarsen_place is not None else None,
        )

    @classmethod
    def from_json(cls, raw: Mapping[str, Any] | None) -> Privacy:
        """From what `to_json` stored (names already expanded)."""
        return cls.parse(raw, lambda name: name)

    def to_json(self) -> dict[str, Any]:
        """The stored form (expanded names, sorted)."""
        out: dict[str, Any] = {}
        for member, names in (
            ("personal", self.personal),
            ("sensitive", self.sensitive),
            ("counts", self.counts),
        ):
            if names:
                out[member] = sorted(names)
        if self.counts:
            out["k"] = self.k
        if self.coarsen_time is not None:
            out["coarsenTime"] = self.coarsen_time
        if self.coarsen_place is not None:
            out["coarsenPlace"] = self.coarsen_place
        return out

    def hidden(self, access: Access) -> frozenset[str]:
        """The attributes a reader with `access` never sees."""
        if access is Access.FULL:
            return frozenset()
        if access is Access.GRANTED:
            return self.personal
        return self.personal | self.sensitive

    def transforms(self, access: Access) -> bool:
        """Whether documents read with `access` differ from the stored ones."""
        if access is Access.FULL:
            return False
        if access is Access.GRANTED:
            return bool(self.personal)
        return not self.empty


# ------------------------------------------------------------------------------ transforms


def coarsen_timestamp(text: str, seconds: int) -> str:
    """An NGSI-LD DateTime truncated to a multiple of `seconds` since the epoch (UTC)."""
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return text
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    epoch = int(moment.timestamp())
    cell = epoch - epoch % seconds
    return datetime.fromtimestamp(cell, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _snap(lon: float, lat: float, metres: float) -> list[float]:
    """The centre of the grid cell holding (lon, lat); cells `metres` high and about as wide."""
    lat_step = metres / _METRES_PER_DEGREE
    lat_cell = math.floor(lat / lat_step)
    lat_centre = (lat_cell + 0.5) * lat_step
    # one longitude step per latitude row: cells stay about square away from the equator
    lon_step = metres / (_METRES_PER_DEGREE * max(math.cos(math.radians(lat_centre)), 0.01))
    lon_centre = (math.floor(lon / lon_step) + 0.5) * lon_step
    return [round(lon_centre, 6), round(max(-90.0, min(90.0, lat_centre)), 6)]


def _cell_edges(lon: float, lat: float, metres: float) -> tuple[float, float, float, float]:
    """The (west, south, east, north) edges of the grid cell of `_snap` holding (lon, lat)."""
    lat_step = metres / _METRES_PER_DEGREE
    lat_cell = math.floor(lat / lat_step)
    lat_centre = (lat_cell + 0.5) * lat_step
    lon_step = metres / (_METRES_PER_DEGREE * max(math.cos(math.radians(lat_centre)), 0.01))
    lon_cell = math.floor(lon / lon_step)
    return (
        lon_cell * lon_step,
        lat_cell * lat_step,
        (lon_cell + 1) * lon_step,
        (lat_cell + 1) * lat_step,
    )


def coarsen_extent(
    extent: tuple[float, float, float, float], metres: float
) -> tuple[float, float, float, float]:
    """A bounding box (west, south, east, north) widened to the edges of the grid cells of
    `coarsen_geometry` that hold its corners: it tells no more than the coarsened places."""
    west, south, east, north = extent
    corners = [_cell_edges(lon, lat, metres) for lon in (west, east) for lat in (south, north)]
    return (
        round(max(-180.0, min(c[0] for c in corners)), 6),
        round(max(-90.0, min(c[1] for c in corners)), 6),
        round(min(180.0, max(c[2] for c in corners)), 6),
        round(min(90.0, max(c[3] for c in corners)), 6),
    )


def _positions(coordinates: Any) -> Iterable[tuple[float, float]]:
    if isinstance(coordinates, list) and coordinates and isinstance(coordinates[0], int | float):
        yield float(coordinates[0]), float(coordinates[1])
    elif isinstance(coordinates, list):
        for part in coordinates:
            yield from _positions(part)


def coarsen_geometry(geometry: Any, metres: float) -> Any:
    """A GeoJSON geometry replaced by the centre of the grid cell of its bounding box's centre.

    Every geometry type becomes a Point: a coarsened line or polygon would still show its shape.
    """
    if not isinstance(geometry, Mapping):
        return geometry
    points: list[tuple[float, float]] = []
    if geometry.get("type") == "GeometryCollection":
        for part in geometry.get("geometries") or []:
            if isinstance(part, Mapping):
                points.extend(_positions(part.get("coordinates")))
    else:
        points.extend(_positions(geometry.get("coordinates")))
    if not points:
        return geometry
    lons = [p[0] for p in points]
    lats = [p[1] for p in points]
    centre = ((min(lons) + max(lons)) / 2, (min(lats) + max(lats)) / 2)
    return {"type": "Point", "coordinates": _snap(centre[0], centre[1], metres)}


def _numeric(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def suppress_counts(values: Mapping[str, float], k: int) -> frozenset[str]:
    """Which of one entity's count cells to suppress so that no small count can be learnt.

    Primary suppression: every count below `k` (zero is not small: it discloses no one).
    Secondary suppression, while the suppressed cells could be recovered (a single suppressed
    cell beside others, whose difference from a total among them would give it away) or add up
    to less than `k` (their sum would be a small count itself): suppress the smallest shown
    cell too. All cells suppressed is always safe.
    """
    hidden = {name for name, v in values.items() if 0 < v < k}
    if not hidden:
        return frozenset()
    shown = sorted((v, name) for name, v in values.items() if name not in hidden)
    while shown and (len(hidden) == 1 or sum(values[n] for n in hidden) < k):
        hidden.add(shown.pop(0)[1])
    return frozenset(hidden)


def _coarsen_times(target: dict[str, Any], seconds: int) -> None:
    for member in _TIME_MEMBERS:
        value = target.get(member)
        if isinstance(value, str):
            target[member] = coarsen_timestamp(value, seconds)


def _open_instance(instance: dict[str, Any], privacy: Privacy) -> dict[str, Any]:
    out = dict(instance)
    if privacy.coarsen_time:
        _coarsen_times(out, privacy.coarsen_time)
    if privacy.coarsen_place and out.get("type") == "GeoProperty":
        out["value"] = coarsen_geometry(out.get("value"), privacy.coarsen_place)
    for key, sub in instance.items():
        if ":" in key and isinstance(sub, dict):  # a sub-attribute (an expanded IRI)
            if key in privacy.personal or key in privacy.sensitive:
                del out[key]
            else:
                out[key] = _open_instance(sub, privacy)
    return out


def disclose_document(doc: Mapping[str, Any], access: Access, privacy: Privacy) -> dict[str, Any]:
    """The internal document as a reader with `access` sees it (a new dict; `doc` untouched)."""
    if not privacy.transforms(access):
        return dict(doc)
    hidden = privacy.hidden(access)
    attrs: dict[str, Any] = doc.get("attrs") or {}
    out = dict(doc)
    kept = {name: instances for name, instances in attrs.items() if name not in hidden}
    if access is Access.OPEN:
        if privacy.coarsen_time:
            _coarsen_times(out, privacy.coarsen_time)
        kept = {
            name: [_open_instance(i, privacy) for i in instances]
            for name, instances in kept.items()
        }
        cells: dict[str, float] = {}
        for name in privacy.counts & kept.keys():
            for index, instance in enumerate(kept[name]):
                number = _numeric(instance.get("value"))
                if number is not None:
                    cells[f"{index}\x00{name}"] = number
        drop = suppress_counts(cells, privacy.k)
        for cell in drop:
            position, name = cell.split("\x00", 1)
            kept[name][int(position)] = {}
        kept = {name: [i for i in instances if i] for name, instances in kept.items()}
        kept = {name: instances for name, instances in kept.items() if instances}
    out["attrs"] = kept
    return out


def disclose_instances(
    attr: str, instances: Sequence[dict[str, Any]], access: Access, privacy: Privacy
) -> list[dict[str, Any]]:
    """One attribute's history as a reader with `access` sees it (temporal representation).

    A count instance below `k` is left out: a series of instances has no total beside it, and
    the aggregations that would form one are refused to open readers (`Disclosure.withheld`).
    """
    if not privacy.transforms(access):
        return list(instances)
    if attr in privacy.hidden(access):
        return []
    if access is not Access.OPEN:
        return list(instances)
    out = []
    for instance in instances:
        if attr in privacy.counts:
            number = _numeric(instance.get("value"))
            if number is not None and 0 < number < privacy.k:
                continue
        out.append(_open_instance(instance, privacy))
    return out


def disclose_temporal(doc: Mapping[str, Any], access: Access, privacy: Privacy) -> dict[str, Any]:
    """A temporal document (attribute -> instances) as a reader with `access` sees it."""
    if not privacy.transforms(access):
        return dict(doc)
    out = dict(doc)
    if access is Access.OPEN and privacy.coarsen_time:
        _coarsen_times(out, privacy.coarsen_time)
    attrs: dict[str, Any] = doc.get("attrs") or {}
    shown = {
        name: disclose_instances(name, instances, access, privacy)
        for name, instances in attrs.items()
        if name not in privacy.hidden(access)
    }
    out["attrs"] = {
        name: instances for name, instances in shown.items() if instances or not attrs[name]
    }
    return out


# ------------------------------------------------------------------------------ disclosure


@dataclass(frozen=True, slots=True)
class SliceView:
    """One data set through which a reader reads an owner's entities of some types."""

    dataset_id: str
    owner: str
    types: frozenset[str]
    access: Access
    privacy: Privacy = field(default_factory=Privacy)
    #: the data set's scope: only entities with a scope within it (`core.scopes.scopes_within`)
    scope: str | None = None

    def admits(self, owner: str, types: Iterable[str], scopes: Iterable[str] | None) -> bool:
        """Whether the data set holds an entity of `owner` with `types` and `scopes`."""
        return (
            owner == self.owner
            and not self.types.isdisjoint(types)
            and (self.scope is None or scopes_within(self.scope, scopes))
        )


#: records a read of non-open data: (data set ids, number of entities returned)
ReadAudit = Callable[[Sequence[str], int], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class View:
    """How one entity is shown to one reader: the most permissive rule admitting it."""

    access: Access
    privacy: Privacy
    #: the non-open data sets through which it was read (audited)
    audited: tuple[str, ...] = ()


#: how the owner's side sees its own data: everything as stored
FULL_VIEW = _FULL = View(Access.FULL, Privacy())


@dataclass(frozen=True, slots=True)
class Disclosure:
    """What one reader sees of what it may read (built by governance; see the module docstring)."""

    #: organisations whose entities the reader sees in full
    owners: frozenset[str] = frozenset()
    views: tuple[SliceView, ...] = ()
    #: called once per read that returned entities of non-open data sets
    audit: ReadAudit | None = None

    @property
    def needed(self) -> bool:
        """Whether any read needs the owners of its entities (to transform or to audit)."""
        return any(
            v.access is not Access.FULL
            and (v.access is Access.GRANTED or v.privacy.transforms(v.access))
            for v in self.views
        )

    def view(self, owner: str, types: Iterable[str], scopes: Iterable[str] | None) -> View:
        """How an entity of `owner` with `types` and `scopes` (its `scope` member) is shown."""
        if owner in self.owners:
            return _FULL
        have = frozenset(types)
        found = list(scopes) if scopes is not None else None
        admitting = [v for v in self.views if v.admits(owner, have, found)]
        if not admitting:
            return _FULL  # admitted by no view of ours: the filter decided; nothing to change
        best = max(admitting, key=lambda v: (v.access, not v.privacy.transforms(v.access)))
        if best.access is Access.OPEN:
            # open data: not audited; several open views: the least transforming
            return View(Access.OPEN, best.privacy)
        audited = tuple(sorted({v.dataset_id for v in admitting if v.access is Access.GRANTED}))
        if best.access is Access.FULL:
            return _FULL
        return View(Access.GRANTED, best.privacy, audited)

    def withheld(
        self,
        tested: frozenset[str],
        *,
        present: frozenset[str] = frozenset(),
        times: bool = False,
        bounds: Sequence[float] = (),
        geo: bool = False,
        aggregate: bool = False,
    ) -> list[tuple[str, frozenset[str], str | None]]:
        """The (owner, types, scope) slices a query may not select from, because it tests what the
        reader does not see there: the value of an attribute in `tested` that is hidden or a
        count (suppressed values), the presence of a hidden attribute in `present`, a time
        (`times`: system or observation times, coarsened; `bounds`: a time window, epoch
        seconds, that does not fall on the view's time grid), a geometry (`geo`, coarsened) —
        or aggregates (`aggregate`) what the reader sees transformed."""
        blocked: set[tuple[str, frozenset[str], str | None]] = set()
        free: set[tuple[str, frozenset[str], str | None]] = set()
        for v in self.views:
            if v.owner in self.owners:
                continue
            p = v.privacy
            if not p.transforms(v.access):
                hit = False
            elif aggregate:
                hit = True  # aggregates are computed from stored values: never of a view
            elif v.access is Access.GRANTED:
                hit = bool((tested | present) & p.personal)
            else:
                grid = p.coarsen_time
                hit = (
                    bool(tested & (p.personal | p.sensitive | p.counts))
                    or bool(present & (p.personal | p.sensitive))
                    or (grid is not None and (times or any(b % grid for b in bounds)))
                    or (geo and p.coarsen_place is not None)
                )
            (blocked if hit else free).add((v.owner, v.types, v.scope))
        # a slice another, unhindered data set also admits stays selectable (most permissive)
        return sorted(blocked - free, key=lambda s: (s[0], sorted(s[1]), s[2] or ""))
