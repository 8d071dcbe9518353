"""Bundling: similar challenges of different municipalities become a joint-purchase proposal.

The strategy's group purchasing ("aankoopcentrale"): when several municipalities post the same
need, a central purchasing body can tender once for all of them. A proposal names the
participating municipalities, their combined demand and budget, the solutions that fit every
member, and a tender outline to start the tender from: an OCDS 1.1 planning release for the first
stage of a framework agreement procedure, as the central purchasing body concludes a framework
agreement that each municipality then calls off (Techniques extension:
`tender.techniques.hasFrameworkAgreement`; Lots extension: one lot per municipality, one lot
group that may be combined).

Grouping: two challenges are linked when their words (TF-IDF cosine) or, with the embeddings
extra, their meaning are similar enough and they share a focus domain. Links are merged
strongest first, never joining two challenges of one municipality: a bundle has at most one
challenge per municipality and at least two municipalities.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from smartregion.core.textindex import TextIndex
from smartregion.hub.embeddings import Embedder, cosine_similarities, document_text
from smartregion.hub.matching import MatchDoc, Matcher

__all__ = [
    "FRAMEWORK_DAYS",
    "OCDS_EXTENSIONS",
    "PROCUREMENT_METHODS",
    "BundleProposal",
    "BundleSolution",
    "propose_bundles",
    "release_package",
]

TEXT_THRESHOLD = 0.3
SEMANTIC_THRESHOLD = 0.7
#: the longest a framework agreement may run (Directive 2014/24/EU art. 33(1); Belgian public
#: procurement law of 17 June 2016, art. 43 §3): four years, 1 461 days with one leap day
FRAMEWORK_DAYS = 4 * 365 + 1
#: OCDS `tender.procurementMethod` (closed `method` codelist)
PROCUREMENT_METHODS = ("open", "selective", "limited", "direct")
#: the extensions the tender outline uses (OCDS extension registry), for a release package
OCDS_EXTENSIONS = (
    "https://raw.githubusercontent.com/open-contracting-extensions/ocds_lots_extension/v1.1.5/extension.json",
    "https://raw.githubusercontent.com/open-contracting-extensions/ocds_techniques_extension/master/extension.json",
)


@dataclass(frozen=True)
class BundleSolution:
    """A solution matched to the bundle: for how many member challenges, with what total score."""

    doc: MatchDoc
    members_matched: int
    score: float


@dataclass(frozen=True)
class BundleProposal:
    """A proposed joint purchase."""

    id: str
    title: str
    challenges: tuple[MatchDoc, ...]
    cohesion: float  # mean link strength over member pairs (>= 1 means linked; unlinked pairs 0)
    shared_words: tuple[str, ...]
    shared_taxonomy: tuple[str, ...]
    solutions: tuple[BundleSolution, ...]

    @property
    def municipalities(self) -> tuple[tuple[str, str], ...]:
        """(organisation id, name) of each participant, in the members' order."""
        return tuple(
            (c.owner_org or "", c.owner_name or c.owner_org or "") for c in self.challenges
        )

    @property
    def combined_budget(self) -> float | None:
        """The members' budgets added up (None when no member states one)."""
        budgets = [c.budget_max for c in self.challenges if c.budget_max is not None]
        return sum(budgets) if budgets else None

    @property
    def demand(self) -> dict[str, float]:
        """The members' quantities added up per unit."""
        out: dict[str, float] = {}
        for c in self.challenges:
            if c.quantity is not None:
                unit = c.unit or "unit"
                out[unit] = out.get(unit, 0.0) + c.quantity
        return out

    def demand_text(self) -> str:
        """The combined demand in words ("35 sensor, 12 kiosk"), "" when no member counts it."""
        return ", ".join(f"{amount:g} {unit}" for unit, amount in sorted(self.demand.items()))

    def tender_outline(
        self,
        *,
        ocid_prefix: str,
        procuring_entity: tuple[str, str],
        date: dt.datetime,
        currency: str = "EUR",
        category: str = "services",
        language: str = "nl",
        procurement_method: str = "open",
        framework_days: int = FRAMEWORK_DAYS,
    ) -> dict[str, Any]:
        """An OCDS 1.1 planning release for the first stage of the joint framework agreement.

        The central purchasing body (`procuring_entity`) runs the procedure and concludes the
        framework agreement; each municipality is a buyer with its own lot and calls off its
        part without reopening competition (OCDS guidance "Framework agreements": every buyer
        in `parties`, no single `buyer`; `tender.techniques.hasFrameworkAgreement` true;
        `tender.contractPeriod` the agreement's duration; `tender.value` its estimated value).
        """
        if procurement_method not in PROCUREMENT_METHODS:
            raise ValueError(f"procurement method {procurement_method!r} is not one of OCDS's")

        def value(amount: float | None) -> dict[str, Any]:
            return {"amount": amount, "currency": currency}

        entity_id, entity_name = procuring_entity
        parties: list[dict[str, Any]] = [
            {"id": entity_id, "name": entity_name, "roles": ["procuringEntity"]}
        ]
        lots: list[dict[str, Any]] = []
        items: list[dict[str, Any]] = []
        for n, challenge in enumerate(self.challenges, start=1):
            org_id = challenge.owner_org or f"participant-{n}"
            org_name = challenge.owner_name or org_id
            parties.append({"id": org_id, "name": org_name, "roles": ["buyer"]})
            lot_id = f"lot-{n}"
            lot: dict[str, Any] = {
                "id": lot_id,
                "title": f"{org_name}: {challenge.title}",
                "description": _first_text(challenge),
                "status": "planning",
            }
            if challenge.budget_max is not None:
                lot["value"] = value(challenge.budget_max)
            lots.append(lot)
            item: dict[str, Any] = {
                "id": f"item-{n}",
                "description": challenge.title,
                "relatedLot": lot_id,
            }
            if challenge.quantity is not None:
                item["quantity"] = challenge.quantity
                item["unit"] = {"name": challenge.unit or "unit"}
            items.append(item)
        total = self.combined_budget
        members = ", ".join(name for _, name in self.municipalities)
        period = {"durationInDays": framework_days}
        framework: dict[str, Any] = {
            # one supplier per lot, every term set in the agreement: direct call-offs
            "method": "withoutReopeningCompetition",
            "period": period,
            "description": (
                f"Framework agreement concluded by {entity_name} as central purchasing body for"
                f" {members}; each municipality calls off its own lot."
            ),
        }
        if total is not None:
            framework["value"] = value(total)
        tender: dict[str, Any] = {
            "id": f"{self.id}-tender",
            "title": f"Joint purchase: {self.title}",
            "description": f"Group purchase for {members}. " + _first_text(self.challenges[0]),
            "status": "planning",
            "procuringEntity": {"id": entity_id, "name": entity_name},
            "procurementMethod": procurement_method,
            "procurementMethodDetails": (
                f"{procurement_method.capitalize()} procedure for a framework agreement through"
                " a central purchasing body (aankoopcentrale)"
            ),
            "mainProcurementCategory": category,
            "contractPeriod": period,
            "techniques": {"hasFrameworkAgreement": True, "frameworkAgreement": framework},
            "items": items,
            "lots": lots,
            "lotGroups": [
                {
                    "id": "lot-group-1",
                    "relatedLots": [lot["id"] for lot in lots],
                    "optionToCombine": True,
                    **({"maximumValue": value(total)} if total is not None else {}),
                }
            ],
        }
        if total is not None:
            tender["value"] = value(total)
        budget: dict[str, Any] = {
            "description": "Combined demand of the participating municipalities"
            + (f": {self.demand_text()}" if self.demand else "")
            + ("; the amount is the sum of their budgets" if total is not None else ""),
        }
        if total is not None:
            budget["amount"] = value(total)
        release: dict[str, Any] = {
            "ocid": f"{ocid_prefix}-{self.id}",
            "id": f"{self.id}-planning-1",
            "date": date.astimezone(dt.UTC).isoformat().replace("+00:00", "Z"),
            "tag": ["planning"],
            "initiationType": "tender",
            "language": language,
            "parties": parties,
            "planning": {
                "rationale": (
                    f"{len(self.challenges)} municipalities posted the same need on the hub: "
                    + "; ".join(c.title for c in self.challenges)
                ),
                "budget": budget,
            },
            "tender": tender,
        }
        return release


def release_package(
    releases: Sequence[dict[str, Any]], *, uri: str, publisher: str
) -> dict[str, Any]:
    """An OCDS 1.1 release package of `releases` that declares the extensions they use; its
    `publishedDate` is the latest release's `date` (OCDS: a package made on demand carries the
    time its contents last changed)."""
    if not releases:
        raise ValueError("a release package holds at least one release")
    return {
        "uri": uri,
        "version": "1.1",
        "extensions": list(OCDS_EXTENSIONS),
        "publishedDate": max(r["date"] for r in releases),
        "publisher": {"name": publisher},
        "releases": list(releases),
    }


def _first_text(doc: MatchDoc) -> str:
    for _, text in sorted(doc.texts.items()):
        if text.strip():
            return text.strip()
    return doc.title


class _Groups:
    """Union-find over challenges that refuses to put two challenges of one organisation together."""

    def __init__(self, docs: Sequence[MatchDoc]) -> None:
        self.parent = {d.id: d.id for d in docs}
        self.orgs = {d.id: {d.owner_org} for d in docs}

    def find(self, x: str) -> str:
        while self.parent[x] != x:
            self.parent[x] = self.parent[self.parent[x]]
            x = self.parent[x]
        return x

    def join(self, a: str, b: str) -> bool:
        ra, rb = self.find(a), self.find(b)
        if ra == rb or self.orgs[ra] & self.orgs[rb]:
            return False
        self.parent[rb] = ra
        self.orgs[ra] |= self.orgs.pop(rb)
        return True


def propose_bundles(
    challenges: Iterable[MatchDoc],
    *,
    matcher: Matcher | None = None,
    embedder: Embedder | None = None,
    text_threshold: float = TEXT_THRESHOLD,
    semantic_threshold: float = SEMANTIC_THRESHOLD,
    solutions_per_bundle: int = 5,
) -> list[BundleProposal]:
    """Joint-purchase proposals from open challenges; largest and most cohesive first."""
    docs = [c for c in challenges if c.kind == "challenge" and c.owner_org]
    if len(docs) < 2:
        return []
    index = TextIndex({d.id: d.texts for d in docs}, compounds="none")
    text = {d.id: index.cosine(d.texts) for d in docs}
    semantic: dict[tuple[str, str], float] = {}
    if embedder is not None:
        vectors = embedder.embed([document_text(d.texts) for d in docs])
        for i, d in enumerate(docs):
            sims = cosine_similarities(vectors[i], vectors)
            for j, other in enumerate(docs):
                semantic[(d.id, other.id)] = float(sims[j])
    strength: dict[tuple[str, str], float] = {}
    for i, a in enumerate(docs):
        for b in docs[i + 1 :]:
            if a.owner_org == b.owner_org:
                continue
            if a.domains and b.domains and not a.domains & b.domains:
                continue
            t = min(text[a.id].get(b.id, 0.0), text[b.id].get(a.id, 0.0))
            s = semantic.get((a.id, b.id))
            link = max(t / text_threshold, (s or 0.0) / semantic_threshold)
            if link >= 1.0:
                strength[(a.id, b.id)] = link
    groups = _Groups(docs)
    for left, right in sorted(strength, key=lambda k: (-strength[k], k)):
        groups.join(left, right)
    members: dict[str, list[MatchDoc]] = {}
    for d in docs:
        members.setdefault(groups.find(d.id), []).append(d)
    proposals = [
        _proposal(group, strength, index, matcher, solutions_per_bundle)
        for group in members.values()
        if len(group) >= 2
    ]
    proposals.sort(key=lambda p: (-len(p.challenges), -p.cohesion, p.id))
    return proposals


def _proposal(
    group: list[MatchDoc],
    strength: dict[tuple[str, str], float],
    index: TextIndex,
    matcher: Matcher | None,
    solutions_per_bundle: int,
) -> BundleProposal:
    def link(a: str, b: str) -> float:
        return strength.get((a, b), strength.get((b, a), 0.0))

    ids = sorted(d.id for d in group)
    # the most central challenge names the bundle
    central = max(group, key=lambda d: (sum(link(d.id, o.id) for o in group), d.id))
    ordered = [central, *sorted((d for d in group if d is not central), key=lambda d: d.id)]
    pairs = [link(a, b) for i, a in enumerate(ids) for b in ids[i + 1 :]]
    common_terms = set(index.query_terms(group[0].texts))
    for d in group[1:]:
        common_terms &= set(index.query_terms(d.texts))
    shared_words = sorted(
        {w for term in common_terms for d in group for w in index.surfaces(d.id, term)}
    )
    taxonomy = set(group[0].terms)
    for d in group[1:]:
        taxonomy &= d.terms
    solutions: list[BundleSolution] = []
    if matcher is not None:
        found: dict[str, tuple[MatchDoc, int, float]] = {}
        for d in group:
            for m in matcher.solutions_for(d, limit=20).matches:
                doc, n, total = found.get(m.doc.id, (m.doc, 0, 0.0))
                found[m.doc.id] = (doc, n + 1, total + m.score)
        ranked = sorted(found.values(), key=lambda v: (-v[1], -v[2], v[0].id))
        solutions = [
            BundleSolution(doc, n, total) for doc, n, total in ranked[:solutions_per_bundle]
        ]
    digest = hashlib.sha256("\n".join(ids).encode()).hexdigest()[:12]
    return BundleProposal(
        id=f"bundle-{digest}",
        title=central.title,
        challenges=tuple(ordered),
        cohesion=sum(pairs) / len(pairs) if pairs else 0.0,
        shared_words=tuple(shared_words),
        shared_taxonomy=tuple(sorted(taxonomy)),
        solutions=tuple(solutions),
    )
