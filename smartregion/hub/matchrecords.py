"""Stored hub objects as the matching's small frozen records (docs/hub.md, "Matching").

The matching modules (`matching.py`, `duplicates.py`, `bundling.py`, `eligibility.py`) know
nothing of storage; this module turns what the hub stores into what they take:

- challenges, solutions and use cases -> `MatchDoc`: the nl/en texts (title, summary and the
  kind's own texts), taxonomy terms with their broader terms (so `domain:mobility.parking` shares
  the focus domain `domain:mobility`), regions, budget or price, maturity as a TRL, demand;
- funding instruments -> `FundingInstrument` with their rules as data, derived from the fields
  the hub keeps (eligible applicants and partners, own contribution, duration, regions, calls);
- organisations, initiatives and use cases -> `Applicant` facts.

Pure: no I/O. The caller passes the organisations the records name.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any, Literal

from smartregion.core.policies import ORGANISATION_KINDS
from smartregion.core.taxonomy import Taxonomy, scheme_of
from smartregion.hub.eligibility import Applicant, Fact, FundingInstrument, FundingRule
from smartregion.hub.kinds import KINDS
from smartregion.hub.matching import MatchDoc
from smartregion.hub.objects import title_of
from smartregion.storage.governance import Organisation
from smartregion.storage.hub import HubObject

__all__ = [
    "CANDIDATE_STATUSES",
    "LOCAL_GOVERNMENTS",
    "MATURITY_TRL",
    "applicant_of_object",
    "applicant_of_organisation",
    "funding_instrument",
    "match_doc",
    "texts_of",
]

#: the hub's maturity levels as technology readiness levels (EU Horizon TRL definitions): an idea
#: is a formulated concept (TRL 2), a proof of concept is experimental (3), a pilot is
#: demonstrated in the relevant environment (6), implemented is complete and qualified (8),
#: scaled is proven in operation (9)
MATURITY_TRL: dict[str, int] = {
    "idea": 2,
    "proof_of_concept": 3,
    "pilot": 6,
    "implemented": 8,
    "scaled": 9,
}
#: challenges a solution is matched with (matched and closed ones are no longer looking)
CANDIDATE_STATUSES = ("open", "in_progress")
#: the kinds of organisation whose challenges may be bundled into a joint purchase
LOCAL_GOVERNMENTS = ("municipality", "province")
MatchKind = Literal["challenge", "solution", "usecase"]


def texts_of(kind_name: str, fields: Mapping[str, Any]) -> dict[str, str]:
    """Per language, the title, summary and the kind's own texts, one per line."""
    names = ("title", "summary", *KINDS[kind_name].texts)
    out: dict[str, str] = {}
    for lang in ("nl", "en"):
        parts = []
        for name in names:
            value = fields.get(name)
            text = value.get(lang) if isinstance(value, dict) else None
            if isinstance(text, str) and text.strip():
                parts.append(text.strip())
        if parts:
            out[lang] = "\n".join(parts)
    return out


def _regions(terms: Iterable[str]) -> list[str]:
    return [t for t in terms if scheme_of(t) == "region"]


def _successors(taxonomy: Taxonomy, term_ids: Iterable[str]) -> set[str]:
    """The terms with, for retired municipalities, the merged ones that replace them."""
    out: set[str] = set()
    for term_id in term_ids:
        current: str | None = term_id
        while current is not None and current in taxonomy.terms and current not in out:
            out.add(current)
            current = taxonomy.terms[current].replaced_by
    return out


def _nis(taxonomy: Taxonomy, org: Organisation | None) -> list[str]:
    if org is None or not org.nis:
        return []
    term = f"nis:{org.nis}"
    return [term] if term in taxonomy.terms else []


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def match_doc(obj: HubObject, taxonomy: Taxonomy, orgs: Mapping[str, Organisation]) -> MatchDoc:
    """A challenge, solution or use case as the matcher's record.

    Regions: a challenge lies in its region terms, its owner's and its co-owners' municipality or
    province, each with its broader regions (municipality -> province -> Flemish Region; the
    taxonomy has no arrondissements); a solution is offered in its region terms as tagged (none:
    everywhere); a use case lies in its region terms or, without them, its owner's.
    """
    if obj.kind not in ("challenge", "solution", "usecase"):
        raise ValueError(f"{obj.kind!r} objects are not matched")
    kind: MatchKind = obj.kind  # type: ignore[assignment]
    f = obj.doc
    tags = list(f.get("terms", []))
    regions = _regions(tags)
    topical = frozenset(taxonomy.expand(t for t in tags if scheme_of(t) != "region"))
    owner = orgs.get(obj.owner)
    common: dict[str, Any] = {
        "id": obj.id,
        "kind": kind,
        "title": title_of(f),
        "texts": texts_of(obj.kind, f),
        "owner_org": obj.owner,
        "owner_name": owner.name if owner else obj.owner,
        "terms": topical,
    }
    if kind == "challenge":
        places = regions + _nis(taxonomy, owner)
        for co_owner in f.get("co_owners", []):
            places += _nis(taxonomy, orgs.get(co_owner))
        level = f.get("min_maturity")
        return MatchDoc(
            **common,
            regions=frozenset(taxonomy.expand(places)),
            budget_min=_number(f.get("budget_min")),
            budget_max=_number(f.get("budget_max")),
            maturity=MATURITY_TRL.get(level) if isinstance(level, str) else None,
            quantity=_number(f.get("quantity")),
            unit=f.get("unit"),
        )
    if kind == "solution":
        return MatchDoc(
            **common,
            regions=frozenset(_successors(taxonomy, regions)),
            budget_min=_number(f.get("price_min")),
            budget_max=_number(f.get("price_max")),
            maturity=MATURITY_TRL.get(str(f.get("maturity"))),
        )
    return MatchDoc(
        **common,
        regions=frozenset(taxonomy.expand(regions or _nis(taxonomy, owner))),
        maturity=MATURITY_TRL.get(str(f.get("maturity"))),
    )


def _text(texts: Any, lang: str) -> str:
    if not isinstance(texts, dict):
        return ""
    return str(texts.get(lang) or next((t for t in texts.values() if t), ""))


def funding_instrument(obj: HubObject, lang: str = "nl") -> FundingInstrument:
    """A funding instrument with its rules as data, from the fields the hub keeps.

    - `eligible_applicants` -> the applicant's organisation kind is one of them;
    - `eligible_partners` -> no partner is of another kind;
    - region terms -> the applicant lies in one of those regions;
    - `min_own_contribution` -> the share of the budget not covered by the funding already
      listed is at least that;
    - `duration_months` -> the project lasts at most that long;
    - `calls` -> the deadlines. Focus-domain and SDG terms describe, they do not exclude.
    """
    f = obj.doc
    rules: list[FundingRule] = []
    if f.get("eligible_applicants"):
        rules.append(
            FundingRule("org_type", "in", frozenset(f["eligible_applicants"]), "Applicant type")
        )
    if f.get("eligible_partners"):
        others = frozenset(ORGANISATION_KINDS) - set(f["eligible_partners"])
        if others:
            rules.append(FundingRule("partner_kinds", "not_in", others, "Partner types"))
    regions = _regions(f.get("terms", []))
    if regions:
        rules.append(FundingRule("regions", "intersects", frozenset(regions), "Region"))
    if f.get("min_own_contribution") is not None:
        rules.append(
            FundingRule(
                "own_contribution", "ge", float(f["min_own_contribution"]), "Own contribution"
            )
        )
    if f.get("duration_months") is not None:
        rules.append(
            FundingRule(
                "duration_months", "le", int(f["duration_months"]), "Project duration in months"
            )
        )
    title = f.get("title") or {}
    return FundingInstrument(
        id=obj.id,
        name=_text(title, lang),
        funder=str(f.get("funder", "")),
        rules=tuple(rules),
        deadlines=tuple(sorted(dt.date.fromisoformat(c["deadline"]) for c in f.get("calls", []))),
        url=f.get("url"),
        max_amount=_number(f.get("max_amount")),
        description=_text(f.get("summary"), lang),
    )


def applicant_of_organisation(
    org: Organisation, taxonomy: Taxonomy, profile: HubObject | None = None
) -> Applicant:
    """An organisation applying on its own: its kind, its place and its profile's terms."""
    tags = list(profile.doc.get("terms", [])) if profile is not None else []
    regions = _nis(taxonomy, org) or _regions(tags)
    return Applicant(
        id=org.id,
        kind="organisation",
        name=org.name,
        org_type=org.kind,
        regions=frozenset(taxonomy.expand(regions)),
        terms=frozenset(taxonomy.expand(t for t in tags if scheme_of(t) != "region")),
    )


def _months(start: str | None, end: str | None) -> int | None:
    if not start or not end:
        return None
    a, b = dt.date.fromisoformat(start), dt.date.fromisoformat(end)
    # calendar months begun: 2026-01-01 .. 2027-12-31 is 24 months
    return (b.year - a.year) * 12 + b.month - a.month + (1 if b.day >= a.day else 0)


def applicant_of_object(
    obj: HubObject, taxonomy: Taxonomy, orgs: Mapping[str, Organisation]
) -> Applicant:
    """An initiative or use case applying through its owner (the lead): its owner's kind, its
    regions (else its owner's), its terms and, for an initiative, its budget, partners, own
    contribution and duration."""
    if obj.kind not in ("initiative", "usecase"):
        raise ValueError(f"a {obj.kind} does not apply for funding")
    f = obj.doc
    tags = list(f.get("terms", []))
    owner = orgs.get(obj.owner)
    regions = _regions(tags) or _nis(taxonomy, owner)
    facts: dict[str, Fact] = {}
    budget = partners = None
    if obj.kind == "initiative":
        budget = _number(f.get("budget"))
        partner_ids = list(f.get("partners", []))
        partners = len(partner_ids)
        if all(p in orgs for p in partner_ids):  # partners are checked to exist when stored
            facts["partner_kinds"] = frozenset(orgs[p].kind for p in partner_ids)
        if budget:
            funded = sum(float(s.get("amount", 0)) for s in f.get("funding", []))
            facts["own_contribution"] = round(max(0.0, (budget - funded) / budget), 4)
        months = _months(f.get("start"), f.get("end"))
        if months is not None:
            facts["duration_months"] = months
    return Applicant(
        id=obj.id,
        kind="initiative" if obj.kind == "initiative" else "usecase",
        name=title_of(f),
        org_type=obj.owner_kind,
        regions=frozenset(taxonomy.expand(regions)),
        terms=frozenset(taxonomy.expand(t for t in tags if scheme_of(t) != "region")),
        budget=budget,
        partners=partners,
        facts=facts,
    )
