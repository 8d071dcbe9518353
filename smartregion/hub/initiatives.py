"""The initiative portfolio's overview for a steering group: totals over a filtered selection.

Amounts are euros as entered; an initiative's funding is the sum of its funding sources, its own
share what its budget leaves uncovered. Totals are over every selected initiative, so a report is
what the filters select — by domain, status, funder, region — not a sample.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

from smartregion.storage.hub import HubObject

__all__ = ["PortfolioLine", "PortfolioReport", "portfolio_report"]


@dataclass(slots=True)
class PortfolioLine:
    """One initiative in the report."""

    id: str
    title: dict[str, str]
    owner: str
    status: str
    start: str | None
    end: str | None
    budget: float
    funded: float
    next_milestone: dict[str, Any] | None


@dataclass(slots=True)
class PortfolioReport:
    """Totals and lines of a selection of initiatives."""

    count: int = 0
    budget: float = 0.0
    funded: float = 0.0
    by_status: dict[str, int] = field(default_factory=dict)
    #: funder name -> amount
    by_funder: dict[str, float] = field(default_factory=dict)
    #: taxonomy term -> number of initiatives tagged with it (as tagged, not expanded)
    by_term: dict[str, int] = field(default_factory=dict)
    lines: list[PortfolioLine] = field(default_factory=list)


def portfolio_report(initiatives: list[HubObject]) -> PortfolioReport:
    """The report of `initiatives` (in the given order)."""
    report = PortfolioReport(count=len(initiatives))
    statuses: Counter[str] = Counter()
    terms: Counter[str] = Counter()
    funders: defaultdict[str, float] = defaultdict(float)
    for obj in initiatives:
        doc = obj.doc
        budget = float(doc.get("budget") or 0)
        funded = 0.0
        for source in doc.get("funding", []):
            amount = float(source.get("amount") or 0)
            funded += amount
            funders[source["funder"]] += amount
        statuses[obj.status] += 1
        terms.update(doc.get("terms", []))
        open_milestones = sorted(
            (m for m in doc.get("milestones", []) if not m.get("done") and m.get("due")),
            key=lambda m: str(m["due"]),
        )
        report.budget += budget
        report.funded += funded
        report.lines.append(
            PortfolioLine(
                obj.id,
                doc.get("title", {}),
                obj.owner,
                obj.status,
                doc.get("start"),
                doc.get("end"),
                budget,
                funded,
                open_milestones[0] if open_milestones else None,
            )
        )
    report.by_status = dict(statuses.most_common())
    report.by_term = dict(terms.most_common())
    report.by_funder = dict(sorted(funders.items(), key=lambda kv: (-kv[1], kv[0])))
    return report
