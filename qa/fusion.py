"""How hybrid search fuses its signals into one score, and every weight it uses, with the
measurement each came from.

Each candidate passage has five signals: its BM25 score, its cosine to the question, its best
sentence's cosine, its best answer sentence (cosine plus the question's rare words) and the
question's word pairs it holds side by side; a passage of a long news article has a sixth, its
whole article's BM25, for a question of many words (issue 15). Fusion z-scores each signal over
the candidate pool (the article's over the candidate long articles) and adds them with fixed
weights, so a passage found by only one side still competes; plain reciprocal rank fusion throws
away how far ahead the best candidates are, which is what decides between close paragraphs. The
`Retriever` (qa.retrieve) gathers the signals; this module only weighs them.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TypeVar

from qa.text import PassageStems, blended_idf, query_terms, sentence_stems, stems
from qa.types import Span

Key = TypeVar("Key")

# Hybrid score = DENSE_WEIGHT * z(meaning) + KEYWORD_WEIGHT * z(BM25) + ANSWER_WEIGHT * z(best answer
# sentence), where meaning = (1 - SENTENCE_SHARE) * passage cosine + SENTENCE_SHARE * best sentence
# cosine, and an answer sentence scores cosine + SENTENCE_KEYWORD_WEIGHT * keyword coverage.
# Five global weights, chosen on 1,500 SQuAD v1.1 dev questions and checked on 1,500 others
# (held-out R@1 0.852 -> 0.864, MRR@10 0.898 -> 0.910 against 0.3 BM25 + 0.7 meaning).
KEYWORD_WEIGHT = 0.45
DENSE_WEIGHT = 0.55
SENTENCE_SHARE = 0.7
ANSWER_WEIGHT = 0.7
# Measured on 1,500 SQuAD v1.1 dev questions (answer in top sentence): 0.35 -> 0.728, 0.7 -> 0.745,
# 1.0 -> 0.749, 2.0 -> 0.751; a question's rare words weigh as much as its meaning.
SENTENCE_KEYWORD_WEIGHT = 1.0
# Weight of phrase matches (the question's adjacent content words, adjacent in the passage too):
# names and set phrases ("Super Bowl", "Foreign Minister") that BM25 scores word by word.
# 0.1 added 0.4-0.5 points of R@1 on each half of SQuAD v1.1 dev; 0.15 added less.
PHRASE_WEIGHT = 0.1
# What a question word found only in a sentence's headline counts for, against one in the sentence.
HEADLINE_SHARE = 0.5
# Article evidence (issue 15): a news story runs to a dozen passages, and a question often names
# the story in one and asks about a detail in another. For a question of enough words
# (qa.retrieve.ARTICLE_MIN_QUESTION_WORDS), each candidate passage of a long article
# (qa.retrieve.ARTICLE_MIN_PASSAGES) adds its whole article's BM25 (title twice and its text, as
# each store counts it: qa.stores.local.keywords sums the chunks'),
# z-scored over the candidate long articles, so every passage of one article gets the same lift.
# On all 600 RealTimeQA 2023 news questions (the tuning year; qa eval, hybrid as `qa ask` ranks),
# weight 1.0 and 1.5 gave R@1 0.590 / 0.592 and MRR@10 0.697 / 0.698, against 0.565 / 0.679 without
# (with every article lifted; 1.5 lowered the answer share). Scored from the chunks' postings
# (2026-12-04 evening, another machine), 1.5 gave 0.608 / 0.840 / 0.705 / 0.308 (R@1, R@5,
# MRR@10, answer in top sentence) against 0.600 / 0.840 / 0.700 / 0.303 at 1.0, but on all 554
# questions of 2024 0.552 / 0.816 / 0.665 / 0.267 against 0.561 / 0.821 / 0.672 / 0.267 (R@1 under
# the 0.554 of no article evidence): a gain on the tuning year that did not hold, so not taken.
ARTICLE_KEYWORD_WEIGHT = 1.0
# The least spread the article scores are z-scored by, as a share of their mean. Over two long
# articles a z-score is ±1 however near their scores are (10.1 against 10.0 as much as 30 against
# 10), so in a small folder a hair's difference in one article's words outweighed its passages'
# own signals. On RealTimeQA 2023's news questions the candidate articles spread by 0.15 to 0.56
# of their mean (the 5th and 95th percentiles of the 461 questions that read articles, median
# 0.29), so at 0.1 this floor only damps near ties.
ARTICLE_SPREAD_FLOOR = 0.1
# Other ways of scoring and weighing articles were tried beside it and not taken; their figures
# are in docs/news-ranking.md.


@dataclass
class Features:
    """Per-candidate scores of each retrieval signal."""

    ids: list[int]
    dense: dict[int, float] = field(default_factory=dict)
    best_sentence: dict[int, float] = field(default_factory=dict)
    keyword: dict[int, float] = field(default_factory=dict)
    answer_sentence: dict[int, float] = field(default_factory=dict)
    sentence_scores: dict[int, tuple[tuple[Span, float], ...]] = field(default_factory=dict)
    phrase: dict[int, float] = field(default_factory=dict)
    # The whole-article BM25 of each candidate whose article the article search found (long
    # ones only: qa.retrieve.ARTICLE_MIN_PASSAGES), and which article each candidate is of.
    article_keyword: dict[int, float] = field(default_factory=dict)
    document: dict[int, str] = field(default_factory=dict)

    def restricted(self, ids: list[int]) -> Features:
        """The same features over a subset of the candidates (z-scores are taken over that subset)."""
        return replace(self, ids=ids)

    def meaning(self) -> dict[int, float]:
        """Cosine of the passage and of its best sentence, blended: the passage's topic and its best line."""
        return {c: (1 - SENTENCE_SHARE) * self.dense[c] + SENTENCE_SHARE * self.best_sentence[c] for c in self.ids}


def mode_scores(mode: str, features: Features) -> dict[int, float]:
    """Each candidate's score in `mode`: "dense" (meaning), "keyword" (BM25) or "hybrid" (fused)."""
    if mode == "dense":
        return features.meaning()
    keyword = {c: features.keyword.get(c, 0.0) for c in features.ids}
    if mode == "keyword":
        return keyword
    meaning = zscores(features.meaning())
    words = zscores(keyword)
    scores = {c: DENSE_WEIGHT * meaning[c] + KEYWORD_WEIGHT * words[c] for c in features.ids}
    if features.answer_sentence:
        answer = zscores({c: features.answer_sentence.get(c, 0.0) for c in features.ids})
        for c in features.ids:
            scores[c] += ANSWER_WEIGHT * answer[c]
    if features.phrase:
        phrase = zscores({c: features.phrase.get(c, 0.0) for c in features.ids})
        for c in features.ids:
            scores[c] += PHRASE_WEIGHT * phrase[c]
    moved = [c for c in features.ids if c in features.article_keyword]
    if moved:
        # z-scored over the candidate long articles, not passages (an article with twelve
        # candidate passages would otherwise weigh twelve times in the mean); the passages of
        # shorter documents rank as they would without it.
        article = zscores({features.document[c]: features.article_keyword[c] for c in moved}, ARTICLE_SPREAD_FLOOR)
        for c in moved:
            scores[c] += ARTICLE_KEYWORD_WEIGHT * article[features.document[c]]
    return scores


def zscores(scores: dict[Key, float], floor_share: float = 0.0) -> dict[Key, float]:
    """Standardize scores over the candidates: mean 0, standard deviation 1; all 0 when they are
    equal. ``{a: 1.0, b: 3.0} -> {a: -1.0, b: 1.0}``; ``{a: 0.1, b: 0.1, c: 0.1} -> all 0.0``.
    The standard deviation divided by is at least `floor_share` of the mean's size:
    ``({a: 10.0, b: 10.5}, 0.1) -> {a: -0.24, b: 0.24}`` (rounded)."""
    values = list(scores.values())
    mean = sum(values) / len(values)
    spread = math.sqrt(sum((v - mean) ** 2 for v in values) / len(values))
    # Equal scores may leave a spread of rounding error (1e-17 for three 0.1s), which would
    # stretch it to ±1: a shift that matters where only some candidates get the signal (articles).
    if spread <= 1e-9 * max(1.0, abs(mean)):
        return dict.fromkeys(scores, 0.0)
    spread = max(spread, floor_share * abs(mean))
    return {c: (v - mean) / spread for c, v in scores.items()}


def phrase_match(question_pairs: frozenset[tuple[str, str]], passage: PassageStems) -> float:
    """Share of the question's word pairs that the passage also has side by side, from 0 to 1.

    >>> from qa.text import passage_stems, word_pairs
    >>> phrase_match(word_pairs("Foreign Minister"), passage_stems("The Foreign Minister of Russia"))
    1.0
    """
    if not question_pairs:
        return 0.0
    held = passage.passage
    return sum(f" {first} {second} " in held for first, second in question_pairs) / len(question_pairs)


def keyword_coverage(sentence: str, term_weights: dict[str, float], headline: str = "") -> float:
    """Share of the question's term weight (IDF) that the sentence contains, from 0 to 1; a word
    only its article's headline holds counts HEADLINE_SHARE (a story's sentences say "the quake"
    where its headline says "Earthquake near Sines").

    >>> keyword_coverage("Baghdad owes $8 billion", {"baghdad": 1.0, "owe": 1.0, "russia": 2.0})
    0.5
    """
    return KeywordCoverer(term_weights)(sentence, headline)


class KeywordCoverer:
    """`keyword_coverage` for one question's weights: the same values, for scoring every candidate
    sentence of a search (hundreds) without repeating the work that depends on the question alone.
    Call it with a sentence's text, or give `stems` a sentence's `PassageStems` string."""

    def __init__(self, term_weights: dict[str, float]) -> None:
        self._total = sum(term_weights.values())
        self._weighted = tuple((stem, f" {stem} ", weight) for stem, weight in term_weights.items())
        self._wanted = frozenset(term_weights)
        self._headlines: dict[str, frozenset[str]] = {}

    def __call__(self, sentence: str, headline: str = "") -> float:
        # The question's stems the sentence holds, as `stems` reads a sentence (stems hold no spaces).
        return self.stems(" " + " ".join(sentence_stems(sentence) & self._wanted) + " ", headline)

    def stems(self, padded: str, headline: str = "") -> float:
        """The coverage of a sentence whose stems are `padded` (PassageStems.sentences).

        One pass over the question's terms, with no set made first: a search scores some 500
        sentences this way, and making the set was half the time."""
        if self._total <= 0:
            return 0.0
        titled = self._titled(headline)
        # Added in the question's term order, in a loop: sum() of floats rounds otherwise from
        # Python 3.12 on, and a sentence's coverage must be the same by either path.
        covered = 0.0
        for stem, needle, weight in self._weighted:
            if needle in padded:
                covered += weight
            elif stem in titled:
                covered += HEADLINE_SHARE * weight
        return covered / self._total

    def _titled(self, headline: str) -> frozenset[str]:
        """The question's stems that `headline` holds (each article's found once a question)."""
        titled = self._headlines.get(headline)
        if titled is None:
            titled = self._headlines[headline] = (sentence_stems(headline) & self._wanted) if headline else frozenset()
        return titled


def term_weights_for(question: str, document_frequency: Callable[[str], int], total_chunks: int) -> dict[str, float]:
    """IDF weight of each stemmed content word of the question; rare words weigh most.

    The IDF is blended with English word frequencies (qa.text.blended_idf), so that a small
    corpus weighs "Sines" and "depth" as rare, as a large one would.
    """
    terms = query_terms(question)
    weights: dict[str, float] = {}
    for term, stem in zip(terms, stems(terms)):
        idf = blended_idf(term, document_frequency(term), total_chunks)
        weights[stem] = max(weights.get(stem, 0.0), idf)
    return weights
