"""The ecosystem hub: actor profiles, initiatives, use cases, challenges, solutions, funding
instruments and stories, tagged with one taxonomy, on the data space's organisations and roles;
and the matching that explains itself (matching.py, duplicates.py, bundling.py, eligibility.py)."""

from __future__ import annotations

from smartregion.hub.kinds import KINDS, Kind
from smartregion.hub.objects import Filters, Hub
from smartregion.hub.taxonomy import load_taxonomy

__all__ = ["KINDS", "Filters", "Hub", "Kind", "load_taxonomy"]
