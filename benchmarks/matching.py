"""Matching quality on the labelled evaluation set: precision@3 and mean reciprocal rank.

    .venv/bin/python -m benchmarks.matching [--all]

The set is `tests/fixtures/matching/eval.json`: 42 challenges (23 Dutch, 19 English) with 67
labelled relevant solutions among 64 (29 Dutch, 35 English; the rest are distractors, several in
the same domain). Every challenge is matched against all solutions with `Matcher.solutions_for`
(structured filters on: a candidate must share a focus domain), and the ranking is scored:

- precision@3: relevant solutions among the first three, divided by three, averaged;
- MRR: 1 / rank of the first relevant solution (0 when none is returned), averaged;
- recall@3 and, apart, the same figures for the cross-language pairs only (a Dutch challenge
  whose relevant solution is English or the reverse) — where BM25 needs shared words.

Configurations: BM25 alone (no compound handling), BM25 with dictionary decompounding, BM25 with
a character 4-gram field, and, when the `embeddings` extra is installed, the hybrid with
reciprocal rank fusion and with a normalised weighted sum. `--all` adds a sweep of the n-gram
weight and the fusion parameters. Deterministic and cheap (seconds): it prints a Markdown table.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from smartregion.hub.embeddings import Embedder, default_embedder
from smartregion.hub.matching import MatchConfig, MatchDoc, Matcher

EVAL_SET = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "matching" / "eval.json"


@dataclass(frozen=True)
class EvalSet:
    """Challenges, solutions and the relevance labels."""

    challenges: list[MatchDoc]
    solutions: list[MatchDoc]
    relevant: dict[str, frozenset[str]]
    lang: dict[str, str]


def load_eval_set(path: Path = EVAL_SET) -> EvalSet:
    """The evaluation set as matcher records."""
    data = json.loads(path.read_text(encoding="utf-8"))

    def doc(item: dict[str, object], kind: str) -> MatchDoc:
        lang = str(item["lang"])
        domains = item["domains"]
        assert isinstance(domains, list)
        return MatchDoc(
            id=str(item["id"]),
            kind="challenge" if kind == "challenge" else "solution",
            title=str(item["title"]),
            texts={lang: f"{item['title']}. {item['text']}"},
            terms=frozenset(f"domain:{d}" for d in domains),
        )

    challenges = [doc(c, "challenge") for c in data["challenges"]]
    solutions = [doc(s, "solution") for s in data["solutions"]]
    relevant = {c["id"]: frozenset(c["relevant"]) for c in data["challenges"]}
    lang = {x["id"]: x["lang"] for x in data["challenges"] + data["solutions"]}
    return EvalSet(challenges, solutions, relevant, lang)


@dataclass(frozen=True)
class Quality:
    """Averaged figures over the challenges."""

    precision_at_3: float
    recall_at_3: float
    mrr: float
    cross_mrr: float
    cross_hit_at_3: float


def evaluate(matcher: Matcher, data: EvalSet) -> Quality:
    """Precision@3, recall@3 and MRR of a matcher on the set (and MRR on cross-language pairs)."""
    p3 = r3 = rr = 0.0
    cross_rr: list[float] = []
    cross_hit: list[float] = []
    for challenge in data.challenges:
        ranked = [m.doc.id for m in matcher.solutions_for(challenge.id, limit=50).matches]
        relevant = data.relevant[challenge.id]
        top3 = set(ranked[:3])
        p3 += len(top3 & relevant) / 3
        r3 += len(top3 & relevant) / len(relevant)
        rr += next((1 / (i + 1) for i, d in enumerate(ranked) if d in relevant), 0.0)
        for sol in relevant:
            if data.lang[sol] != data.lang[challenge.id]:
                rank = ranked.index(sol) + 1 if sol in ranked else None
                cross_rr.append(1 / rank if rank else 0.0)
                cross_hit.append(1.0 if rank and rank <= 3 else 0.0)
    n = len(data.challenges)
    return Quality(
        p3 / n,
        r3 / n,
        rr / n,
        sum(cross_rr) / max(1, len(cross_rr)),
        sum(cross_hit) / max(1, len(cross_hit)),
    )


def configurations(embedder: Embedder | None, sweep: bool) -> Iterable[tuple[str, MatchConfig]]:
    """The named configurations to measure."""
    yield "BM25 alone", MatchConfig(compounds="none", use_embeddings=False)
    yield "BM25 + decompounding", MatchConfig(compounds="split", use_embeddings=False)
    yield "BM25 + 4-gram field", MatchConfig(compounds="ngrams", use_embeddings=False)
    if sweep:
        for w in (0.1, 0.25, 1.0):
            yield (
                f"BM25 + 4-gram field (weight {w})",
                MatchConfig(compounds="ngrams", ngram_weight=w, use_embeddings=False),
            )
    if embedder is None:
        return
    yield (
        "Embeddings alone (USE-m3)",
        MatchConfig(compounds="none", fusion="weighted", text_weight=0.0, semantic_weight=1.0),
    )
    yield "Hybrid: BM25 + embeddings, RRF", MatchConfig(compounds="none", fusion="rrf")
    yield "Hybrid: BM25 + 4-grams + embeddings, RRF", MatchConfig(compounds="ngrams", fusion="rrf")
    yield (
        "Hybrid: BM25 + 4-grams + embeddings, weighted sum 0.5/0.5",
        MatchConfig(compounds="ngrams", fusion="weighted", text_weight=0.5, semantic_weight=0.5),
    )
    yield "Hybrid: BM25 + 4-grams + embeddings, weighted sum 0.3/0.7 (default)", MatchConfig()
    if sweep:
        for k in (10, 30):
            yield (
                f"Hybrid 4-grams RRF k={k}",
                MatchConfig(compounds="ngrams", fusion="rrf", rrf_k=k),
            )
        for tw in (0.1, 0.7):
            yield (
                f"Hybrid 4-grams weighted {tw}/{1 - tw:.1f}",
                MatchConfig(
                    compounds="ngrams", fusion="weighted", text_weight=tw, semantic_weight=1 - tw
                ),
            )
        yield "Hybrid decompounding RRF", MatchConfig(compounds="split", fusion="rrf")
        for ms in (0.2, 0.4):
            yield (
                f"Hybrid 4-grams RRF min_similarity={ms}",
                MatchConfig(compounds="ngrams", fusion="rrf", min_similarity=ms),
            )


def table(rows: Sequence[tuple[str, Quality]]) -> str:
    """A Markdown table of the figures."""
    lines = [
        "| configuration | P@3 | R@3 | MRR | cross-language MRR | cross-language hit@3 |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, q in rows:
        lines.append(
            f"| {name} | {q.precision_at_3:.3f} | {q.recall_at_3:.3f} | {q.mrr:.3f} | "
            f"{q.cross_mrr:.3f} | {q.cross_hit_at_3:.3f} |"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--all", action="store_true", help="also sweep weights and fusion settings")
    args = parser.parse_args(argv)
    data = load_eval_set()
    embedder = default_embedder()
    rows = []
    for name, config in configurations(embedder, args.all):
        matcher = Matcher(data.challenges, data.solutions, embedder=embedder, config=config)
        rows.append((name, evaluate(matcher, data)))
    pairs = sum(len(r) for r in data.relevant.values())
    cross = sum(1 for c, rel in data.relevant.items() for s in rel if data.lang[s] != data.lang[c])
    print(
        f"Hub matching quality, {dt.date.today().isoformat()}: {len(data.challenges)} challenges, "
        f"{len(data.solutions)} solutions, {pairs} relevant pairs ({cross} cross-language); "
        f"embeddings: {embedder.name if embedder else 'not installed'}\n"
    )
    print(table(rows))


if __name__ == "__main__":
    main()
