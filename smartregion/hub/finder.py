"""The funding finder: a few answers (who are you, which domain, how much, when) in, the funding
instruments that fit out — each with the eligibility matcher's rules and next deadline.

The answers make an `Applicant` of the organisation kind (and its domain), and the matcher runs as
of the day the applicant is ready ("when"): a call that closes before then fails its "Call open"
rule. The amount and domain do not exclude (an instrument's domains describe it; a project larger
than the grant can still apply): they say whether the grant covers the amount and whether the
instrument names the domain, and the instruments that name it come first within each verdict.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Literal

from smartregion.core.policies import ORGANISATION_KINDS
from smartregion.errors import BadRequestData
from smartregion.hub.eligibility import (
    BRUSSELS,
    Applicant,
    EligibilityResult,
    eligible_instruments,
)
from smartregion.hub.matchrecords import funding_instrument
from smartregion.hub.objects import Filters, Hub
from smartregion.storage.hub import HubObject

__all__ = ["FinderAnswers", "FinderResult", "find_funding"]


@dataclass(frozen=True, slots=True)
class FinderAnswers:
    """What the finder asks: the kind of organisation, a focus domain, an amount, a start day."""

    org_kind: str
    domain: str = ""
    amount: float | None = None
    when: dt.date | None = None


@dataclass(frozen=True, slots=True)
class FinderResult:
    """One instrument for the answers: the matcher's verdict, and what the amount and domain say."""

    instrument: HubObject
    result: EligibilityResult
    #: whether the largest grant covers the amount (None: no amount asked or no maximum known)
    covers: bool | None
    #: whether the instrument names the domain or a broader one (None: no domain asked)
    in_domain: bool | None


async def find_funding(
    hub: Hub, answers: FinderAnswers, *, lang: str = "nl", include_not_eligible: bool = True
) -> list[FinderResult]:
    """The instruments for the answers: eligible, then possibly, then (asked) not eligible."""
    if answers.org_kind not in ORGANISATION_KINDS:
        raise BadRequestData(f"org_kind must be one of {list(ORGANISATION_KINDS)}")
    domain_terms: frozenset[str] = frozenset()
    if answers.domain:
        hub.taxonomy.check([answers.domain])
        if not answers.domain.startswith("domain:"):
            raise BadRequestData(f"{answers.domain!r} is not a focus domain")
        domain_terms = frozenset(hub.taxonomy.expand([answers.domain]))
    if answers.amount is not None and not 0 <= answers.amount <= 1e12:
        raise BadRequestData("amount is between 0 and 1,000,000,000,000 euro")
    today = dt.datetime.now(BRUSSELS).date()
    start = max(answers.when or today, today)
    now = dt.datetime.combine(start, dt.time(), BRUSSELS)
    applicant = Applicant(
        id="finder",
        kind="organisation",
        name="",
        org_type=answers.org_kind,
        terms=domain_terms,
        budget=answers.amount,
    )
    objects = {o.id: o for o in await hub.export("funding", Filters())}
    instruments = [funding_instrument(o, lang) for o in objects.values()]
    results = eligible_instruments(
        applicant, instruments, now=now, include_not_eligible=include_not_eligible
    )
    out: list[FinderResult] = []
    for r in results:
        obj = objects[r.instrument.id]
        covers = None
        if answers.amount is not None and r.instrument.max_amount is not None:
            covers = r.instrument.max_amount >= answers.amount
        in_domain = None
        if answers.domain:
            named = hub.taxonomy.expand(obj.doc.get("terms", []))
            in_domain = answers.domain in named or bool(
                domain_terms & set(obj.doc.get("terms", []))
            )
        out.append(FinderResult(obj, r, covers, in_domain))
    verdict: dict[Literal["eligible", "possibly", "not_eligible"], int] = {
        "eligible": 0,
        "possibly": 1,
        "not_eligible": 2,
    }
    # stable: the matcher's order (nearest deadline first) within each group
    out.sort(key=lambda f: (verdict[f.result.status], f.in_domain is False))
    return out
