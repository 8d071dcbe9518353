"""Text analysis and ranking for the hub's matching: Dutch/English stemming, BM25, score fusion.

Pure: no I/O. A `TextIndex` is built over a small corpus (the hub's challenges, solutions or use
cases: thousands, not millions) and answers one query at a time with every hit's score broken
down per shared term, so that the matcher can say *why* two texts match.

Dutch compounds ("luchtkwaliteitsmeetnet", "parkeerbeleid") defeat word-level BM25: the index
offers two remedies, measured on the evaluation set in `benchmarks/matching.py`:

- ``compounds="split"``: a dictionary decompounder (as Lucene's DictionaryCompoundWordTokenFilter)
  whose dictionary is the corpus's own vocabulary; a compound adds its parts as extra tokens;
- ``compounds="ngrams"``: a second BM25 field of character 4-grams inside each word.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Literal

import bm25s
import numpy as np
import Stemmer

__all__ = [
    "STOPWORDS",
    "Analyzer",
    "Decompounder",
    "Hit",
    "TextIndex",
    "char_ngrams",
    "fold",
    "min_max_normalise",
    "reciprocal_rank_fusion",
    "weighted_sum_fusion",
    "words",
]

CompoundMode = Literal["none", "split", "ngrams"]

# Snowball algorithm names of the languages the hub is written in.
STEMMER_LANGUAGES: dict[str, str] = {"nl": "dutch", "en": "english"}

STOPWORDS: dict[str, frozenset[str]] = {
    "nl": frozenset(
        """aan af al alle als alles ander andere bij binnen brengen daar dan dat de deze die dit
        doen door dus een eens en er ge geen geweest haar had heb hebben heeft hem het hier hij hoe
        hun iets ik in is je kan kon kunnen maar me meer men met mij mijn moet na naar niet niets
        nog nu of om omdat onder ons onze ook op over per te tegen toch toen tot u uit uw van veel
        via voor waar wat we wel werd wij wil worden wordt zal ze zelf zich zij zijn zo zoals zonder
        zou zodat willen gaat steeds ieder elk elke wie welke waarbij waarmee graag""".split()  # noqa: SIM905
    ),
    "en": frozenset(
        """a about after all also an and any are as at be been being but by can could do does for
        from had has have how i if in into is it its more most no not of on one or our out over
        so such than that the their them then there these they this those through to too under up
        us use used uses using very was we were what when where which while who will with within
        without would you your""".split()  # noqa: SIM905
    ),
}
_ALL_STOPWORDS = STOPWORDS["nl"] | STOPWORDS["en"]

_WORD = re.compile(r"[a-z0-9]+")


def fold(text: str) -> str:
    """Lower-case and strip diacritics ("België" -> "belgie"), so spelling variants meet."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def words(text: str) -> list[str]:
    """The folded alphanumeric words of a text, in order."""
    return _WORD.findall(fold(text))


def char_ngrams(word: str, n: int = 4) -> list[str]:
    """Character n-grams of one word with boundary marks ("#fiets#" -> "#fie", "fiet", ...)."""
    padded = f"#{word}#"
    if len(padded) <= n:
        return [padded]
    return [padded[i : i + n] for i in range(len(padded) - n + 1)]


@lru_cache(maxsize=8)
def _stemmer(algorithm: str) -> Stemmer.Stemmer:
    return Stemmer.Stemmer(algorithm)


class Decompounder:
    """Splits compounds into the longest known words of a dictionary (Dutch linking s/e/en aware).

    "luchtkwaliteitsmeetnet" with {"lucht", "kwaliteit", "meetnet"} known gives those three parts.
    A word is split only when every part is known; the fewest parts win, then the longest first.
    """

    LINKS = ("", "s", "e", "en")

    def __init__(self, dictionary: Iterable[str], *, min_part: int = 3, min_word: int = 7) -> None:
        self.dictionary = frozenset(w for w in dictionary if len(w) >= min_part)
        self.min_part = min_part
        self.min_word = min_word
        self._cache: dict[str, tuple[str, ...]] = {}

    def split(self, word: str) -> tuple[str, ...]:
        """The parts of a compound, or () when the word is not one (or unknown parts remain)."""
        if len(word) < self.min_word:
            return ()
        cached = self._cache.get(word)
        if cached is not None:
            return cached
        best = self._segment(word, top=True)
        parts = best if best is not None and len(best) >= 2 else ()
        self._cache[word] = parts
        return parts

    def _segment(self, rest: str, *, top: bool) -> tuple[str, ...] | None:
        if not rest:
            return ()
        if not top and rest in self.dictionary:
            return (rest,)
        best: tuple[str, ...] | None = None
        # longest head first, so that ties on the number of parts keep the longest words
        for end in range(len(rest) - self.min_part, self.min_part - 1, -1):
            head = rest[:end]
            if head not in self.dictionary:
                continue
            for link in self.LINKS:
                if not rest.startswith(link, end):
                    continue
                tail = self._segment(rest[end + len(link) :], top=False)
                if tail is None or (not tail and not top):
                    continue
                candidate = (head, *tail)
                if best is None or len(candidate) < len(best):
                    best = candidate
        return best


@dataclass(frozen=True)
class Token:
    """One analysed token: the indexed form and the word it came from."""

    term: str
    surface: str


class Analyzer:
    """Turns a text in a known language into index terms: fold, split, drop stop words, stem."""

    def __init__(
        self, *, compounds: CompoundMode = "none", decompounder: Decompounder | None = None
    ) -> None:
        self.compounds = compounds
        self.decompounder = decompounder

    def stem(self, word: str, lang: str) -> str:
        """The Snowball stem of a folded word (unchanged for a language without a stemmer)."""
        algorithm = STEMMER_LANGUAGES.get(lang)
        if algorithm is None:
            return word
        return str(_stemmer(algorithm).stemWord(word))

    def tokens(self, text: str, lang: str) -> list[Token]:
        """The word-field tokens of a text; with compound splitting, a compound's parts follow it."""
        stop = STOPWORDS.get(lang, _ALL_STOPWORDS)
        out: list[Token] = []
        for word in words(text):
            if word in stop or len(word) < 2:
                continue
            out.append(Token(self.stem(word, lang), word))
            if self.compounds == "split" and self.decompounder is not None:
                for part in self.decompounder.split(word):
                    out.append(Token(self.stem(part, lang), word))
        return out

    def grams(self, text: str, lang: str) -> list[str]:
        """The character 4-grams of a text's content words (the n-gram field)."""
        stop = STOPWORDS.get(lang, _ALL_STOPWORDS)
        return [g for word in words(text) if word not in stop for g in char_ngrams(word)]


@dataclass(frozen=True)
class Hit:
    """One ranked document: its score, and the score per shared term (they add up to the score)."""

    doc_id: str
    score: float
    terms: Mapping[str, float] = field(default_factory=dict)
    gram_score: float = 0.0


def _texts_tokens(analyzer: Analyzer, texts: Mapping[str, str]) -> list[Token]:
    return [tok for lang, text in texts.items() for tok in analyzer.tokens(text, lang)]


def _texts_grams(analyzer: Analyzer, texts: Mapping[str, str]) -> list[str]:
    return [g for lang, text in texts.items() for g in analyzer.grams(text, lang)]


class TextIndex:
    """BM25 over a corpus of multilingual documents (each a mapping language -> text)."""

    def __init__(
        self,
        docs: Mapping[str, Mapping[str, str]],
        *,
        compounds: CompoundMode = "none",
        ngram_weight: float = 0.5,
        k1: float = 1.2,
        b: float = 0.75,
    ) -> None:
        self.ids: list[str] = list(docs)
        self.compounds = compounds
        self.ngram_weight = ngram_weight
        decompounder = None
        if compounds == "split":
            vocabulary = {
                w for texts in docs.values() for text in texts.values() for w in words(text)
            }
            decompounder = Decompounder(vocabulary - _ALL_STOPWORDS)
        self.analyzer = Analyzer(compounds=compounds, decompounder=decompounder)
        self._surfaces: list[dict[str, set[str]]] = []
        corpus: list[list[str]] = []
        for texts in docs.values():
            toks = _texts_tokens(self.analyzer, texts)
            corpus.append([t.term for t in toks])
            surfaces: dict[str, set[str]] = {}
            for t in toks:
                surfaces.setdefault(t.term, set()).add(t.surface)
            self._surfaces.append(surfaces)
        self._position = {doc_id: i for i, doc_id in enumerate(self.ids)}
        self._counts = [Counter(terms) for terms in corpus]
        document_frequency: Counter[str] = Counter()
        for counts in self._counts:
            document_frequency.update(counts.keys())
        n = len(corpus)
        # smoothed idf as in scikit-learn's TfidfVectorizer: ln((1 + n) / (1 + df)) + 1
        self._idf = {t: math.log((1 + n) / (1 + df)) + 1.0 for t, df in document_frequency.items()}
        self._default_idf = math.log(1 + n) + 1.0
        self._norms = [self._norm(counts) for counts in self._counts]
        # bm25s divides by the mean document length: a corpus without a single term has none
        self._words: bm25s.BM25 | None = None
        if any(corpus):
            self._words = bm25s.BM25(k1=k1, b=b)
            self._words.index(corpus, show_progress=False)
        self._grams: bm25s.BM25 | None = None
        if compounds == "ngrams":
            gram_corpus = [_texts_grams(self.analyzer, texts) for texts in docs.values()]
            if any(gram_corpus):
                self._grams = bm25s.BM25(k1=k1, b=b)
                self._grams.index(gram_corpus, show_progress=False)

    def __len__(self) -> int:
        return len(self.ids)

    def query_terms(self, texts: Mapping[str, str]) -> Counter[str]:
        """The query's index terms with their counts (BM25 counts a repeated query term again)."""
        return Counter(t.term for t in _texts_tokens(self.analyzer, texts))

    def surfaces(self, doc_id: str, term: str) -> frozenset[str]:
        """The words of a document that produced an index term (for explanations)."""
        return frozenset(self._surfaces[self._position[doc_id]].get(term, ()))

    def _weights(self, counts: Mapping[str, int]) -> dict[str, float]:
        return {
            t: (1.0 + math.log(c)) * self._idf.get(t, self._default_idf) for t, c in counts.items()
        }

    def _norm(self, counts: Mapping[str, int]) -> float:
        return math.sqrt(sum(w * w for w in self._weights(counts).values()))

    def cosine(self, texts: Mapping[str, str]) -> dict[str, float]:
        """TF-IDF cosine similarity (0..1) of a text with every document sharing a term with it.

        Unlike a BM25 score it is bounded and symmetric, so a fixed threshold means the same thing
        for every query: the near-duplicate check uses it.
        """
        query = self._weights(self.query_terms(texts))
        qnorm = math.sqrt(sum(w * w for w in query.values()))
        if not qnorm:
            return {}
        out: dict[str, float] = {}
        for i, counts in enumerate(self._counts):
            shared = query.keys() & counts.keys()
            if not shared or not self._norms[i]:
                continue
            doc = self._weights({t: counts[t] for t in shared})
            dot = sum(query[t] * doc[t] for t in shared)
            out[self.ids[i]] = min(1.0, dot / (qnorm * self._norms[i]))
        return out

    def _term_scores(self, model: bm25s.BM25 | None, term: str) -> np.ndarray:
        if model is None or term not in model.vocab_dict:
            return np.zeros(len(self.ids), dtype=np.float64)
        return np.asarray(model.get_scores([term]), dtype=np.float64)

    def search(
        self,
        texts: Mapping[str, str],
        *,
        candidates: Iterable[str] | None = None,
        limit: int | None = None,
    ) -> list[Hit]:
        """Documents with a positive score for the query, best first (ties by id)."""
        if not self.ids:
            return []
        allowed = (
            None
            if candidates is None
            else {self._position[c] for c in candidates if c in self._position}
        )
        total = np.zeros(len(self.ids), dtype=np.float64)
        per_term: dict[str, np.ndarray] = {}
        for term, count in self.query_terms(texts).items():
            scores = self._term_scores(self._words, term) * count
            if scores.any():
                per_term[term] = scores
                total += scores
        grams = np.zeros(len(self.ids), dtype=np.float64)
        if self._grams is not None:
            gram_counts = Counter(_texts_grams(self.analyzer, texts))
            for gram, count in gram_counts.items():
                grams += self._term_scores(self._grams, gram) * count
            total += self.ngram_weight * grams
        hits: list[Hit] = []
        for i in np.flatnonzero(total > 0):
            if allowed is not None and int(i) not in allowed:
                continue
            terms = {t: float(s[i]) for t, s in per_term.items() if s[i] > 0}
            hits.append(
                Hit(self.ids[i], float(total[i]), terms, float(self.ngram_weight * grams[i]))
            )
        hits.sort(key=lambda h: (-h.score, h.doc_id))
        return hits if limit is None else hits[:limit]


def reciprocal_rank_fusion(rankings: Sequence[Sequence[str]], *, k: int = 60) -> dict[str, float]:
    """Cormack, Clarke & Büttcher (SIGIR 2009): score(d) = Σ 1 / (k + rank of d), rank from 1."""
    fused: dict[str, float] = {}
    for ranking in rankings:
        for rank, doc_id in enumerate(ranking, start=1):
            fused[doc_id] = fused.get(doc_id, 0.0) + 1.0 / (k + rank)
    return fused


def min_max_normalise(scores: Mapping[str, float]) -> dict[str, float]:
    """Scores scaled to [0, 1] over the candidates; all equal -> all 1 (or 0 when all are 0)."""
    if not scores:
        return {}
    low, high = min(scores.values()), max(scores.values())
    if math.isclose(high, low):
        return {d: (1.0 if high > 0 else 0.0) for d in scores}
    return {d: (s - low) / (high - low) for d, s in scores.items()}


def weighted_sum_fusion(
    score_maps: Sequence[Mapping[str, float]], weights: Sequence[float]
) -> dict[str, float]:
    """Σ weight · min-max-normalised score; a document absent from a ranker gets 0 from it."""
    if len(score_maps) != len(weights):
        raise ValueError("one weight per score map")
    fused: dict[str, float] = {}
    for scores, weight in zip(score_maps, weights, strict=True):
        for doc_id, s in min_max_normalise(scores).items():
            fused[doc_id] = fused.get(doc_id, 0.0) + weight * s
    return fused
