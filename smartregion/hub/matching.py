"""Challenge -> ranked solutions and solution -> ranked challenges, every match with its reasons.

Two stages, as in the issue: structured filters first (domain overlap, region, budget, maturity;
a candidate failing one is listed as excluded with the rule that excluded it), then hybrid text
ranking of the rest: BM25 with Dutch/English stemming (`core.textindex`) and, when the
`embeddings` extra is installed, multilingual sentence embeddings, fused (reciprocal rank fusion by
default; a normalised weighted sum on request). Without the extra the ranking is BM25 alone.

The matcher works on small frozen records (`MatchDoc`) so that it does not depend on how the
hub's objects are stored: the service layer adapts challenges, solutions and use cases to them.
Pairs marked "not relevant" are passed in as `hidden` and never returned.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from smartregion.core.textindex import (
    CompoundMode,
    TextIndex,
    reciprocal_rank_fusion,
    weighted_sum_fusion,
)
from smartregion.errors import ResourceNotFound
from smartregion.hub.embeddings import Embedder, cosine_similarities, document_text

__all__ = [
    "Exclusion",
    "Explanation",
    "Match",
    "MatchConfig",
    "MatchDoc",
    "MatchResult",
    "Matcher",
    "RuleOutcome",
    "SharedTerm",
    "check_rules",
]

Kind = Literal["challenge", "solution", "usecase"]
Fusion = Literal["rrf", "weighted"]

DOMAIN_PREFIX = "domain:"


@dataclass(frozen=True)
class MatchDoc:
    """What the matcher needs of a challenge, solution or use case.

    `regions`: for a challenge, the region terms it lies in *with their ancestors* (municipality,
    arrondissement, province, "region:flanders": the taxonomy expands them); for a solution, the
    regions it is offered in (empty: everywhere). `budget_min`/`budget_max`: a challenge's
    available budget (max) and a solution's price range (min = the cheapest offer), in euro.
    `maturity`: a solution's technology readiness level (TRL 1-9); for a challenge, the lowest
    level it accepts. `quantity`/`unit`: a challenge's demand (e.g. 40 "sensors"), for bundling.
    """

    id: str
    kind: Kind
    title: str
    texts: Mapping[str, str]
    owner_org: str | None = None
    owner_name: str | None = None
    terms: frozenset[str] = frozenset()
    regions: frozenset[str] = frozenset()
    budget_min: float | None = None
    budget_max: float | None = None
    maturity: int | None = None
    quantity: float | None = None
    unit: str | None = None

    @property
    def domains(self) -> frozenset[str]:
        """The focus-domain terms ("domain:mobility", ...)."""
        return frozenset(t for t in self.terms if t.startswith(DOMAIN_PREFIX))


@dataclass(frozen=True)
class RuleOutcome:
    """One structured rule applied to a (challenge, solution) pair."""

    rule: Literal["domain", "region", "budget", "maturity"]
    passed: bool
    detail: str


def _euro(amount: float) -> str:
    return f"€{amount:,.0f}".replace(",", ".")


def check_rules(challenge: MatchDoc, solution: MatchDoc) -> tuple[RuleOutcome, ...]:
    """The structured filters, in order; a rule with a missing fact passes and says so."""
    out: list[RuleOutcome] = []
    cd, sd = challenge.domains, solution.domains
    if not cd or not sd:
        out.append(RuleOutcome("domain", True, "no domain stated on one side: not checked"))
    elif cd & sd:
        out.append(RuleOutcome("domain", True, "shared domain " + ", ".join(sorted(cd & sd))))
    else:
        out.append(
            RuleOutcome(
                "domain",
                False,
                f"no shared domain (challenge {', '.join(sorted(cd))}; "
                f"solution {', '.join(sorted(sd))})",
            )
        )
    if not solution.regions:
        out.append(RuleOutcome("region", True, "solution offered in every region"))
    elif not challenge.regions:
        out.append(RuleOutcome("region", True, "challenge names no region: not checked"))
    elif challenge.regions & solution.regions:
        out.append(
            RuleOutcome(
                "region",
                True,
                "offered in " + ", ".join(sorted(challenge.regions & solution.regions)),
            )
        )
    else:
        out.append(
            RuleOutcome(
                "region",
                False,
                f"not offered in the challenge's region (offered in {', '.join(sorted(solution.regions))})",
            )
        )
    if challenge.budget_max is None or solution.budget_min is None:
        out.append(RuleOutcome("budget", True, "budget or price unknown: not checked"))
    elif solution.budget_min <= challenge.budget_max:
        out.append(
            RuleOutcome(
                "budget",
                True,
                f"price from {_euro(solution.budget_min)} within budget {_euro(challenge.budget_max)}",
            )
        )
    else:
        out.append(
            RuleOutcome(
                "budget",
                False,
                f"price from {_euro(solution.budget_min)} exceeds budget {_euro(challenge.budget_max)}",
            )
        )
    if challenge.maturity is None or solution.maturity is None:
        out.append(RuleOutcome("maturity", True, "maturity unknown: not checked"))
    elif solution.maturity >= challenge.maturity:
        out.append(
            RuleOutcome(
                "maturity",
                True,
                f"TRL {solution.maturity} meets the required TRL {challenge.maturity}",
            )
        )
    else:
        out.append(
            RuleOutcome(
                "maturity",
                False,
                f"TRL {solution.maturity} below the required TRL {challenge.maturity}",
            )
        )
    return tuple(out)


@dataclass(frozen=True)
class SharedTerm:
    """A term both texts contain: its share of the BM25 score and the words it came from."""

    term: str
    score: float
    query_words: tuple[str, ...]
    doc_words: tuple[str, ...]


@dataclass(frozen=True)
class Explanation:
    """Why a candidate matched: shared words, shared taxonomy terms, the rules it passed, scores."""

    shared_terms: tuple[SharedTerm, ...]
    shared_taxonomy: tuple[str, ...]
    rules: tuple[RuleOutcome, ...]
    fusion: str
    text_score: float | None = None  # = the shared terms' scores + word_part_score
    word_part_score: float = 0.0  # the 4-gram field's share: similar word parts (compounds)
    text_rank: int | None = None
    semantic_similarity: float | None = None
    semantic_rank: int | None = None

    def summary(self) -> str:
        """One sentence for people: the main shared words and taxonomy terms."""
        parts: list[str] = []
        if self.shared_terms:
            words = sorted({w for t in self.shared_terms[:5] for w in t.doc_words})
            parts.append("shared words: " + ", ".join(words))
        if self.shared_taxonomy:
            parts.append("shared taxonomy: " + ", ".join(self.shared_taxonomy))
        if self.semantic_similarity is not None:
            parts.append(f"meaning similarity {self.semantic_similarity:.2f}")
        parts.append("passes " + ", ".join(r.rule for r in self.rules if r.passed))
        return "; ".join(parts)


@dataclass(frozen=True)
class Match:
    """One ranked candidate."""

    doc: MatchDoc
    rank: int
    score: float
    explanation: Explanation


@dataclass(frozen=True)
class Exclusion:
    """A candidate the structured filters excluded, with the rules it failed."""

    doc_id: str
    failed: tuple[RuleOutcome, ...]


@dataclass(frozen=True)
class MatchResult:
    """Ranked matches for one subject, the excluded candidates and the hidden ones."""

    subject: MatchDoc
    method: Literal["bm25", "hybrid"]
    matches: tuple[Match, ...]
    excluded: tuple[Exclusion, ...] = ()
    hidden: tuple[str, ...] = ()


@dataclass(frozen=True)
class MatchConfig:
    """Ranking settings; the defaults are the best measured on the evaluation set.

    (benchmarks/matching.py, docs/benchmarks.md "Hub matching quality": the 4-gram field beats
    decompounding and plain BM25; the weighted sum 0.3 BM25 / 0.7 cosine beats RRF.)
    """

    compounds: CompoundMode = "ngrams"
    ngram_weight: float = 0.5
    fusion: Fusion = "weighted"
    rrf_k: int = 60
    text_weight: float = 0.3
    semantic_weight: float = 0.7
    # a candidate found by meaning alone (no shared term) must be at least this similar
    min_similarity: float = 0.3
    use_embeddings: bool = True


@dataclass
class _Side:
    """The candidates of one kind with their text index and (lazily) their vectors."""

    docs: dict[str, MatchDoc]
    index: TextIndex
    vectors: np.ndarray | None = None
    order: list[str] = field(default_factory=list)


class Matcher:
    """Matches challenges and solutions in both directions over one snapshot of both sets."""

    def __init__(
        self,
        challenges: Iterable[MatchDoc],
        solutions: Iterable[MatchDoc],
        *,
        embedder: Embedder | None = None,
        config: MatchConfig | None = None,
    ) -> None:
        self.config = config or MatchConfig()
        self.embedder = embedder if self.config.use_embeddings else None
        self._challenges = self._side(challenges)
        self._solutions = self._side(solutions)

    @property
    def method(self) -> Literal["bm25", "hybrid"]:
        """'hybrid' when embeddings take part, else 'bm25'."""
        return "hybrid" if self.embedder is not None else "bm25"

    def _side(self, docs: Iterable[MatchDoc]) -> _Side:
        by_id = {d.id: d for d in docs}
        index = TextIndex(
            {i: d.texts for i, d in by_id.items()},
            compounds=self.config.compounds,
            ngram_weight=self.config.ngram_weight,
        )
        return _Side(by_id, index, order=list(by_id))

    def _vectors(self, side: _Side) -> np.ndarray:
        assert self.embedder is not None
        if side.vectors is None:
            side.vectors = self.embedder.embed(
                [document_text(side.docs[i].texts) for i in side.order]
            )
        return side.vectors

    def solutions_for(
        self,
        challenge: MatchDoc | str,
        *,
        hidden: Collection[tuple[str, str]] = (),
        limit: int = 10,
    ) -> MatchResult:
        """Solutions for a challenge (an id of a known challenge, or a record), best first."""
        subject = self._resolve(challenge, self._challenges, "challenge")
        hidden_ids = {s for c, s in hidden if c == subject.id}
        return self._rank(subject, self._solutions, hidden_ids, limit, subject_is_challenge=True)

    def challenges_for(
        self,
        solution: MatchDoc | str,
        *,
        hidden: Collection[tuple[str, str]] = (),
        limit: int = 10,
    ) -> MatchResult:
        """Challenges a solution answers, best first."""
        subject = self._resolve(solution, self._solutions, "solution")
        hidden_ids = {c for c, s in hidden if s == subject.id}
        return self._rank(subject, self._challenges, hidden_ids, limit, subject_is_challenge=False)

    @staticmethod
    def _resolve(ref: MatchDoc | str, side: _Side, what: str) -> MatchDoc:
        if isinstance(ref, MatchDoc):
            return ref
        try:
            return side.docs[ref]
        except KeyError:
            raise ResourceNotFound(f"no {what} {ref!r}") from None

    def _rank(
        self,
        subject: MatchDoc,
        side: _Side,
        hidden_ids: set[str],
        limit: int,
        *,
        subject_is_challenge: bool,
    ) -> MatchResult:
        rules: dict[str, tuple[RuleOutcome, ...]] = {}
        excluded: list[Exclusion] = []
        hidden: list[str] = []
        for doc_id in side.order:
            if doc_id == subject.id:
                continue
            if doc_id in hidden_ids:
                hidden.append(doc_id)
                continue
            other = side.docs[doc_id]
            outcome = (
                check_rules(subject, other) if subject_is_challenge else check_rules(other, subject)
            )
            failed = tuple(r for r in outcome if not r.passed)
            if failed:
                excluded.append(Exclusion(doc_id, failed))
            else:
                rules[doc_id] = outcome
        hits = {h.doc_id: h for h in side.index.search(subject.texts, candidates=rules)}
        text_ranking = sorted(hits, key=lambda d: (-hits[d].score, d))
        similarity: dict[str, float] = {}
        if self.embedder is not None and rules:
            query = self.embedder.embed([document_text(subject.texts)])[0]
            sims = cosine_similarities(query, self._vectors(side))
            for i, doc_id in enumerate(side.order):
                if doc_id in rules and (doc_id in hits or sims[i] >= self.config.min_similarity):
                    similarity[doc_id] = float(sims[i])
        semantic_ranking = sorted(similarity, key=lambda d: (-similarity[d], d))
        if self.embedder is None:
            fused = {d: hits[d].score for d in text_ranking}
            fusion = "bm25"
        elif self.config.fusion == "rrf":
            fused = reciprocal_rank_fusion([text_ranking, semantic_ranking], k=self.config.rrf_k)
            fusion = f"rrf(k={self.config.rrf_k})"
        else:
            fused = weighted_sum_fusion(
                [{d: hits[d].score for d in hits}, similarity],
                [self.config.text_weight, self.config.semantic_weight],
            )
            fusion = (
                f"weighted({self.config.text_weight}·bm25 + {self.config.semantic_weight}·cosine)"
            )
        text_rank = {d: r for r, d in enumerate(text_ranking, start=1)}
        semantic_rank = {d: r for r, d in enumerate(semantic_ranking, start=1)}
        ordered = sorted(fused, key=lambda d: (-fused[d], d))[:limit]
        query_words = self._query_words(side.index, subject.texts)
        matches = []
        for rank, doc_id in enumerate(ordered, start=1):
            doc = side.docs[doc_id]
            hit = hits.get(doc_id)
            shared = tuple(
                SharedTerm(
                    term,
                    score,
                    tuple(sorted(query_words.get(term, ()))),
                    tuple(sorted(side.index.surfaces(doc_id, term))),
                )
                for term, score in sorted(
                    (hit.terms.items() if hit else ()), key=lambda kv: (-kv[1], kv[0])
                )
            )
            explanation = Explanation(
                shared_terms=shared,
                shared_taxonomy=tuple(sorted(subject.terms & doc.terms)),
                rules=rules[doc_id],
                fusion=fusion,
                text_score=hit.score if hit else None,
                word_part_score=hit.gram_score if hit else 0.0,
                text_rank=text_rank.get(doc_id),
                semantic_similarity=similarity.get(doc_id),
                semantic_rank=semantic_rank.get(doc_id),
            )
            matches.append(Match(doc, rank, fused[doc_id], explanation))
        return MatchResult(subject, self.method, tuple(matches), tuple(excluded), tuple(hidden))

    @staticmethod
    def _query_words(index: TextIndex, texts: Mapping[str, str]) -> dict[str, set[str]]:
        out: dict[str, set[str]] = {}
        for lang, text in texts.items():
            for tok in index.analyzer.tokens(text, lang):
                out.setdefault(tok.term, set()).add(tok.surface)
        return out


def rank_ids(result: MatchResult) -> Sequence[str]:
    """The matched ids in rank order (for evaluation and tests)."""
    return [m.doc.id for m in result.matches]
