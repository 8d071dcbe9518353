"""Where a region term lies on a map: a point per municipality, shipped as data
(`vocabularies/places.csv`, which notes its source), and for a province or the region the mean
of its current municipalities' points.

Maps of the portal (a use case's adopters, the actors) need a point per municipality; the
taxonomy holds codes and names only. A point is where the municipality's main town is, not a
geometric centroid: good enough to place a marker, not to measure anything.
"""

from __future__ import annotations

import csv
import io
from functools import cache
from importlib import resources
from statistics import fmean

from smartregion.core.taxonomy import Taxonomy

__all__ = ["Point", "municipality_points", "point_of"]

#: (latitude, longitude), WGS 84
Point = tuple[float, float]


@cache
def municipality_points() -> dict[str, Point]:
    """NIS term id -> point, for the municipalities the data file has (read once per process)."""
    text = (resources.files("smartregion.hub") / "vocabularies" / "places.csv").read_text(
        encoding="utf-8"
    )
    lines = (line for line in io.StringIO(text) if line.strip() and not line.startswith("#"))
    return {row[0]: (float(row[1]), float(row[2])) for row in csv.reader(lines)}


def point_of(taxonomy: Taxonomy, term_id: str) -> Point | None:
    """The point of a region term: a municipality's own, a broader region's the mean of its
    current municipalities'; None for a term without one (or not a region)."""
    points = municipality_points()
    if term_id in points:
        return points[term_id]
    term = taxonomy.get(term_id)
    if term is None or term.scheme != "region":
        return None
    inside = [
        points[t]
        for t in taxonomy.descendants(term_id)
        if t in points and (found := taxonomy.get(t)) is not None and found.replaced_by is None
    ]
    if not inside:
        return None
    return (round(fmean(p[0] for p in inside), 4), round(fmean(p[1] for p in inside), 4))
