"""Response and request bodies of the hub's matching endpoints (api/hub/matches.py), and how
the matching's answers become them."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from smartregion.api.hub.models import ObjectId, OptionalTexts
from smartregion.core.taxonomy import Taxonomy
from smartregion.hub.bundling import OCDS_EXTENSIONS, BundleProposal
from smartregion.hub.duplicates import DuplicateWarning
from smartregion.hub.eligibility import EligibilityResult
from smartregion.hub.matching import Explanation, MatchResult, RuleOutcome
from smartregion.hub.matchmaking import Bundle, Snapshot
from smartregion.storage.hub import HubObject

__all__ = [
    "EligibilityOut",
    "JointPurchaseOut",
    "MatchesOut",
    "SimilarOut",
    "bundle_out",
    "instrument_out",
    "matches_out",
    "similar_out",
]

_FORBID = ConfigDict(extra="forbid")


# --- bodies --------------------------------------------------------------------------------


class ObjectRef(BaseModel):
    """A hub object, briefly."""

    id: str
    kind: str
    owner: str
    status: str
    title: dict[str, str]


class TermRef(BaseModel):
    """A taxonomy term with its labels."""

    id: str
    label: dict[str, str]


class RuleOut(BaseModel):
    """A structured rule applied to a challenge and a solution."""

    rule: Literal["domain", "region", "budget", "maturity"]
    passed: bool
    detail: str


class SharedTermOut(BaseModel):
    """A stemmed term both texts contain: its share of the BM25 score and the words it came from."""

    term: str
    score: float
    subject_words: list[str]
    candidate_words: list[str]


class ExplanationOut(BaseModel):
    """Why a candidate matched."""

    summary: str
    shared_terms: list[SharedTermOut]
    word_part_score: float = Field(description="the share of similar word parts (4-grams)")
    shared_taxonomy: list[TermRef]
    rules: list[RuleOut]
    text_score: float | None
    text_rank: int | None
    semantic_similarity: float | None
    semantic_rank: int | None
    fusion: str


class RankedOut(BaseModel):
    """A match: the candidate, its rank and score, and why."""

    object: ObjectRef
    rank: int
    score: float
    explanation: ExplanationOut


class ExcludedOut(BaseModel):
    """A candidate the structured rules excluded, and the rules it failed."""

    object: ObjectRef
    failed: list[RuleOut]


class MatchesOut(BaseModel):
    """Ranked matches of a challenge (solutions) or a solution (open challenges)."""

    subject: ObjectRef
    method: Literal["bm25", "hybrid"]
    matches: list[RankedOut]
    excluded: list[ExcludedOut]
    hidden: list[str] = Field(
        description="candidates the caller's organisation marked not relevant"
    )


class MatchDismissalOut(BaseModel):
    """A match marked "not relevant" by an organisation."""

    challenge_id: str
    solution_id: str
    org_id: str
    at: str


class SimilarOut(BaseModel):
    """An existing object that resembles the one being written."""

    object: ObjectRef
    similarity: float = Field(description="the stronger signal relative to its threshold (>= 1)")
    text_similarity: float
    semantic_similarity: float | None
    shared_words: list[str]


class Draft(BaseModel):
    model_config = _FORBID
    id: ObjectId | None = Field(
        None, description="the object being edited (left out of the answer)"
    )
    title: OptionalTexts = Field(default_factory=OptionalTexts)
    summary: OptionalTexts = Field(default_factory=OptionalTexts)


class ChallengeDraft(Draft):
    """The texts of a challenge being written."""

    problem: OptionalTexts = Field(default_factory=OptionalTexts)
    affected_groups: OptionalTexts = Field(default_factory=OptionalTexts)


class SolutionDraft(Draft):
    """The texts of a solution being written."""

    description: OptionalTexts = Field(default_factory=OptionalTexts)


class UseCaseDraft(Draft):
    """The texts of a use case being written."""

    achievements: OptionalTexts = Field(default_factory=OptionalTexts)
    obstacles: OptionalTexts = Field(default_factory=OptionalTexts)
    missed_opportunities: OptionalTexts = Field(default_factory=OptionalTexts)


class BundleSolutionOut(BaseModel):
    """A solution for the bundle: how many members it matches, with what total score."""

    object: ObjectRef
    members_matched: int
    score: float


class Participant(BaseModel):
    """A municipality (or province) taking part."""

    id: str
    name: str


class JointPurchaseOut(BaseModel):
    """A joint-purchase proposal and its OCDS 1.1 planning release of the framework agreement
    (Lots and Techniques extensions)."""

    id: str
    title: str
    participants: list[Participant]
    challenges: list[ObjectRef]
    combined_budget: float | None
    demand: dict[str, float]
    cohesion: float
    shared_words: list[str]
    shared_taxonomy: list[TermRef]
    solutions: list[BundleSolutionOut]
    tender: dict[str, Any]
    #: the OCDS extensions `tender` uses (a release package's `extensions`)
    tender_extensions: list[str]


class ApplicantOut(BaseModel):
    """What the hub knows of an applicant."""

    id: str
    kind: Literal["initiative", "usecase", "organisation"]
    name: str
    org_type: str | None
    regions: list[str]
    terms: list[str]
    budget: float | None
    partners: int | None
    facts: dict[str, Any]


class CheckOut(BaseModel):
    """One rule of an instrument applied to the applicant."""

    fact: str
    op: str
    label: str
    status: Literal["passed", "failed", "unknown"]
    reason: str


class InstrumentEligibilityOut(BaseModel):
    """A funding instrument for the applicant: verdict, every rule, the next deadline."""

    object: ObjectRef
    funder: str
    url: str | None
    max_amount: float | None
    status: Literal["eligible", "possibly", "not_eligible"]
    next_deadline: str | None
    checks: list[CheckOut]


class EligibilityOut(BaseModel):
    """The instruments an applicant may apply to."""

    applicant: ApplicantOut
    instruments: list[InstrumentEligibilityOut]


# --- rendering -----------------------------------------------------------------------------


def ref(obj: HubObject) -> ObjectRef:
    """An object, briefly."""
    return ObjectRef(
        id=obj.id,
        kind=obj.kind,
        owner=obj.owner,
        status=obj.status,
        title=obj.doc.get("title") or {},
    )


def terms_out(taxonomy: Taxonomy, ids: Any) -> list[TermRef]:
    return [TermRef(id=t, label=taxonomy.terms[t].labels) for t in ids if t in taxonomy.terms]


def rule_out(r: RuleOutcome) -> RuleOut:
    return RuleOut(rule=r.rule, passed=r.passed, detail=r.detail)


def explanation_out(e: Explanation, taxonomy: Taxonomy) -> ExplanationOut:
    return ExplanationOut(
        summary=e.summary(),
        shared_terms=[
            SharedTermOut(
                term=t.term,
                score=t.score,
                subject_words=list(t.query_words),
                candidate_words=list(t.doc_words),
            )
            for t in e.shared_terms
        ],
        word_part_score=e.word_part_score,
        shared_taxonomy=terms_out(taxonomy, e.shared_taxonomy),
        rules=[rule_out(r) for r in e.rules],
        text_score=e.text_score,
        text_rank=e.text_rank,
        semantic_similarity=e.semantic_similarity,
        semantic_rank=e.semantic_rank,
        fusion=e.fusion,
    )


def matches_out(snapshot: Snapshot, result: MatchResult, taxonomy: Taxonomy) -> MatchesOut:
    """A matcher's answer as the response body."""
    objects = snapshot.objects
    return MatchesOut(
        subject=ref(objects[result.subject.id]),
        method=result.method,
        matches=[
            RankedOut(
                object=ref(objects[m.doc.id]),
                rank=m.rank,
                score=m.score,
                explanation=explanation_out(m.explanation, taxonomy),
            )
            for m in result.matches
        ],
        excluded=[
            ExcludedOut(object=ref(objects[x.doc_id]), failed=[rule_out(r) for r in x.failed])
            for x in result.excluded
        ],
        hidden=list(result.hidden),
    )


def similar_out(found: list[tuple[HubObject, DuplicateWarning]]) -> list[SimilarOut]:
    """Near-duplicate warnings as response bodies."""
    return [
        SimilarOut(
            object=ref(obj),
            similarity=w.similarity,
            text_similarity=w.text_similarity,
            semantic_similarity=w.semantic_similarity,
            shared_words=list(w.shared_words),
        )
        for obj, w in found
    ]


def bundle_out(
    bundle: Bundle, objects: dict[str, HubObject], taxonomy: Taxonomy
) -> JointPurchaseOut:
    p: BundleProposal = bundle.proposal
    return JointPurchaseOut(
        id=p.id,
        title=p.title,
        participants=[Participant(id=i, name=n) for i, n in p.municipalities],
        challenges=[ref(objects[c.id]) for c in p.challenges],
        combined_budget=p.combined_budget,
        demand=p.demand,
        cohesion=p.cohesion,
        shared_words=list(p.shared_words),
        shared_taxonomy=terms_out(taxonomy, p.shared_taxonomy),
        solutions=[
            BundleSolutionOut(
                object=ref(objects[s.doc.id]), members_matched=s.members_matched, score=s.score
            )
            for s in p.solutions
        ],
        tender=bundle.tender,
        tender_extensions=list(OCDS_EXTENSIONS),
    )


def instrument_out(obj: HubObject, r: EligibilityResult) -> InstrumentEligibilityOut:
    deadline = r.next_deadline
    return InstrumentEligibilityOut(
        object=ref(obj),
        funder=r.instrument.funder,
        url=r.instrument.url,
        max_amount=r.instrument.max_amount,
        status=r.status,
        next_deadline=deadline.isoformat() if deadline is not None else None,
        checks=[
            CheckOut(
                fact=c.rule.fact, op=c.rule.op, label=c.rule.label, status=c.status, reason=c.reason
            )
            for c in r.checks
        ],
    )


def fact_out(value: Any) -> Any:
    return sorted(value) if isinstance(value, frozenset) else value
