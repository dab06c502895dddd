"""Token alignment: the second look hybrid search takes at its best passages before answering.

A passage's vector and a sentence's vector are each one mean of many token states, so a long
passage that holds every word of the question in one place scores little above one that
mentions them apart. Here each of the question's tokens is matched to its closest token in the
passage (cosine of the model's token states, each read in its own context), as ColBERT and
BERTScore do; the mean of those best matches, weighted by each word's rarity, says how much of
the question the passage covers. No second model: the same all-MiniLM-L6-v2 reads the passages
again, token by token, which is why only the first ALIGN_DEPTH (or ARTICLE_ALIGN_DEPTH) passages
are read.

On SQuAD v1.1 dev (2,000 questions, every fifth, weights chosen on the even half and checked on
the odd half), re-ranking the first 10 hybrid passages moved R@1 from 0.850 / 0.855 to 0.866 /
0.876, R@5 from 0.968 / 0.962 to 0.974 / 0.969 and MRR@10 from 0.901 / 0.904 to 0.913 / 0.918;
scoring answer sentences by their alignment too moved the answer-in-top-sentence share from
0.758 / 0.756 to 0.783 / 0.792. On all 10,570 questions (`qa eval`): hybrid R@1 0.858 -> 0.874,
R@5 0.968 -> 0.974, MRR@10 0.907 -> 0.918, answer share 0.760 -> 0.788. With each sentence also
carrying its predecessor's matches (PREVIOUS_SENTENCE_CARRY) and each passage ranked by its best
sentence too (BEST_SENTENCE_ALIGN_WEIGHT): R@1 0.879, R@5 0.976, MRR@10 0.921, answer share 0.802.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from qa.embed import unit_rows
from qa.text import STOPWORDS, is_question, stems

if TYPE_CHECKING:
    import numpy as np

    from qa.embed import Embedder, TokenStates

# How many of the first-stage passages are read again. 10 instead of 5 adds R@5 (the 6th to 10th
# can move up); 20 added nothing more on SQuAD's tuning half.
ALIGN_DEPTH = 10
# How many for a question whose search listed long articles (qa.retrieve: a question of
# ARTICLE_MIN_QUESTION_WORDS or more, over an index that holds some). The article lift (qa.fusion)
# raises every passage of a long article alike, so the first ten often hold a few articles only, and
# an article the second look would raise sat below them. On RealTimeQA 2023's 600 news questions
# (the tuning year), 15 for every question gave R@5 0.8533 against 0.8417 (7 questions better, none
# worse), MRR@10 0.7027 against 0.7013, R@1 and the answer share as they were (20: 0.8517 / 0.7031,
# answer 0.3167 against 0.320); the questions that gained a gold article in the first five were
# questions of 8 content words or more but one, and the shorter ones' first gold articles mostly
# moved down a place. Each passage read costs about 11 ms on 2 cores (qa.embed reads one text a
# pass): with fifteen for every question `ask` took 194 ms against 140 (p50, bench/query.py), so the
# shorter questions keep ten.
ARTICLE_ALIGN_DEPTH = 15
# Passage score += PASSAGE_ALIGN_WEIGHT * alignment (a mean cosine, 0.2 to 0.8 in practice)
# against the hybrid score's z-sum; 16 to 32 were within 0.3 points on both halves.
PASSAGE_ALIGN_WEIGHT = 24.0
# Passage score also += BEST_SENTENCE_ALIGN_WEIGHT * the alignment of its best sentence: the
# passage with one sentence that matches the question closely, the one the answer will quote,
# goes first. On SQuAD v1.1 dev (2,000 questions, chosen on the even half, checked on the odd):
# R@1 0.866 / 0.877 -> 0.869 / 0.881, MRR@10 0.913 / 0.918 -> 0.916 / 0.921; 8 to 16 were alike.
BEST_SENTENCE_ALIGN_WEIGHT = 16.0
# The answer reads the sentences of this many passages.
PASSAGES_READ = 3
# Each sentence's (unweighted) alignment, with what it carries (below), is one of the answer
# sentence's signals (qa.answer.SENTENCE_WEIGHTS).
# A sentence is also credited with the question words its previous sentence matched, at this
# discount. Questions are often asked of the sentence after the one that names their topic ("Some
# chloroplasts contain a peripheral reticulum." / "It is often found in C4 plants."): the answer
# sits beside the words that match. On SQuAD v1.1 dev (2,000 questions, chosen on the even half,
# checked on the odd) the answer-in-top-sentence share went from 0.782 / 0.795 to 0.791 / 0.811;
# 0.85 to 0.925 were within 0.5 points, and carrying from the next sentence instead lost.
PREVIOUS_SENTENCE_CARRY = 0.875
# Passages' token states kept between questions (about 260 KB each): a follow-up, or another
# question about the same story, does not read the same passage twice.
CACHED_PASSAGES = 256


@dataclass(frozen=True)
class QuestionTokens:
    """The question's word pieces as the model read them: unit vectors and a weight each."""

    vectors: np.ndarray  # (tokens, dimension), unit rows
    weights: np.ndarray  # (tokens,), the rarity (IDF) of the word each piece belongs to


@dataclass(frozen=True)
class PassageAlignment:
    """How well a passage covers a question: over all its text, and sentence by sentence."""

    passage: float
    sentences: tuple[float, ...]  # in the order of the spans asked for

    @property
    def rank_bonus(self) -> float:
        """What this alignment adds to the passage's first-stage score."""
        return PASSAGE_ALIGN_WEIGHT * self.passage + BEST_SENTENCE_ALIGN_WEIGHT * max(self.sentences, default=0.0)


@dataclass(frozen=True)
class ReadPassage:
    """A passage's token states as unit float32 rows, with each token's character span."""

    vectors: np.ndarray  # (tokens, dimension)
    starts: np.ndarray  # (tokens,) character offsets; special tokens removed
    ends: np.ndarray


class TokenAligner:
    """Reads questions and passages token by token with the embedder's model, and compares them."""

    def __init__(self, embedder: Embedder, cached_passages: int = CACHED_PASSAGES) -> None:
        self.embedder = embedder
        self.cached_passages = cached_passages
        self._cache: OrderedDict[str, ReadPassage] = OrderedDict()

    def question(self, text: str, term_weights: dict[str, float], states: TokenStates | None = None) -> QuestionTokens:
        """The question's tokens, each weighted by the IDF of its word (stopwords weigh nothing).

        `states` are the question's token states when the caller has them (qa eval reads all its
        questions in batches); otherwise the model reads the question now.
        """
        import numpy as np

        hidden, offsets = states if states is not None else self.embedder.token_states([text])[0]
        # An unknown token matches any other (an emoji in a passage), whatever each stood for: a
        # question of 101 letters of nonsense was answered from the sentence with the emoji.
        unknown = self.embedder.unknown_token_rows(text)
        rows, words = [], []
        for row, (start, end) in enumerate(offsets):
            if end > start and row not in unknown:  # special tokens have empty spans
                rows.append(row)
                words.append(_word_at(text, start, end).lower())
        if not rows:
            return QuestionTokens(np.zeros((0, hidden.shape[1]), np.float32), np.zeros(0, np.float32))
        vectors = unit_rows(hidden[rows])
        weights = np.array(
            [0.0 if word in STOPWORDS else term_weights.get(stem, 0.0) for word, stem in zip(words, stems(words))],
            dtype=np.float32,
        )
        if weights.sum() <= 0:  # a question of stopwords only: every piece counts alike
            weights = np.ones(len(rows), np.float32)
        return QuestionTokens(vectors, weights)

    def align(
        self, question: QuestionTokens, passages: Sequence[tuple[str, int, Sequence[tuple[int, int]]]]
    ) -> list[PassageAlignment]:
        """Alignment of each passage, given as (text the model reads, where the passage's own text
        starts in it, sentence spans in that text), and of each of its sentences."""
        import numpy as np

        read = self.read_passages([text for text, _, _ in passages])
        if not len(question.vectors):
            return [PassageAlignment(0.0, tuple(0.0 for _ in spans)) for _, _, spans in passages]
        results = []
        nothing = np.full(len(question.vectors), -np.inf, np.float32)  # no previous sentence to carry
        for (text, body_start, spans), passage in zip(passages, read):
            similarity = question.vectors @ passage.vectors.T  # question tokens x passage tokens
            # The headline leads what the model reads, as context; its own words are not matched.
            body = int(np.searchsorted(passage.starts, body_start))
            best = similarity[:, body:].max(axis=1) if body < len(passage.starts) else np.zeros(len(similarity))
            score = float((best * question.weights).sum() / question.weights.sum())
            maxima = sentence_maxima(similarity, passage, spans)
            maxima = np.where(np.isfinite(maxima), maxima, 0.0)  # a sentence with no tokens matches nothing
            sentences = []
            previous = nothing  # the first sentence has none
            next_starts = [start for start, _ in spans[1:]] + [len(text)]
            for column, ((start, end), next_start) in enumerate(zip(spans, next_starts)):
                own = maxima[:, column]
                sentences.append(float(np.maximum(own, PREVIOUS_SENTENCE_CARRY * previous).mean()))
                previous = nothing if _asked_in_passing(text, start, end, next_start) else own
            results.append(PassageAlignment(score, tuple(sentences)))
        return results

    def read_passages(self, texts: list[str]) -> list[ReadPassage]:
        """Each text's token states, read once and then remembered (least recently used goes first)."""
        import numpy as np

        missing = list(dict.fromkeys(t for t in texts if t not in self._cache))
        if missing:
            # The int8 encoder reads each text alone (qa.embed._OnnxEncoder._passes): read in a
            # batch, a passage's remembered states depended on its companions (by up to 0.4), and
            # a long-running `qa serve` ranked by the questions asked before.
            for text, (hidden, offsets) in zip(missing, self.embedder.token_states(missing)):
                real = [row for row, (start, end) in enumerate(offsets) if end > start]
                self._cache[text] = ReadPassage(
                    unit_rows(hidden[real]),
                    np.array([offsets[row][0] for row in real], dtype=np.int64),
                    np.array([offsets[row][1] for row in real], dtype=np.int64),
                )
        found = []
        for text in texts:
            self._cache.move_to_end(text)
            found.append(self._cache[text])
        while len(self._cache) > max(self.cached_passages, len(texts)):
            self._cache.popitem(last=False)
        return found


def sentence_maxima(similarity: np.ndarray, read: ReadPassage, spans: Sequence[tuple[int, int]]) -> np.ndarray:
    """(question tokens, spans): each question token's best cosine among a passage's tokens inside
    each span of it (-inf for a span holding no token), from `similarity` (question x passage tokens).

    Tokens are in text order, so a span's tokens are one run of columns.
    """
    import numpy as np

    best = np.full((similarity.shape[0], len(spans)), -np.inf, dtype=np.float32)
    firsts = np.searchsorted(read.starts, [start for start, _ in spans])
    stops = np.searchsorted(read.ends, [end for _, end in spans], side="right")
    for column, (first, stop) in enumerate(zip(firsts, stops)):
        if stop > first:
            best[:, column] = similarity[:, first:stop].max(axis=1)
    return best


def _asked_in_passing(text: str, start: int, end: int, next_start: int) -> bool:
    """Whether text[start:end] is a question inside a paragraph, which the sentence after it does
    not answer: a quiz's "…was sold this week in which state? Which film won…? Answers are at the
    bottom of the page." A question on a line of its own is an explainer's subheading ("When is the
    debate?"), and the paragraph after it is its answer: that one carries."""
    return is_question(text[start:end]) and "\n" not in text[end:next_start]


def _word_at(text: str, start: int, end: int) -> str:
    """The whole word around text[start:end], a word piece: ``("Baghdad's", 4, 7) -> "Baghdad"``."""
    while start > 0 and text[start - 1].isalnum():
        start -= 1
    while end < len(text) and text[end].isalnum():
        end += 1
    return text[start:end]
