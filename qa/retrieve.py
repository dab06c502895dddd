"""Retrieval stage: the best passages for a query, by meaning, by keywords, or both fused.

Hybrid fusion z-scores each signal over the candidate pool and adds them with fixed weights, so a
passage found by only one side still competes; plain reciprocal rank fusion throws away how far
ahead the best candidates are, which is what decides between close paragraphs.
"""

from __future__ import annotations

import fnmatch
import math
import re
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from qa.catalog import ChunkRecord
from qa.errors import QueryError
from qa.types import Hit, Span

if TYPE_CHECKING:
    import numpy as np

    from qa.align import TokenAligner
    from qa.embed import Embedder, Reranker, TokenStates
    from qa.index import Index
    from qa.location import StoreLocation
    from qa.milvus import MilvusIndex

MODES = ("hybrid", "dense", "keyword")
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
CANDIDATES = 64
# Words in more than this share of the chunks are left out of the keyword query (see _selective_terms).
COMMON_TERM_SHARE = 0.1
# Keyword scores are read for this many best-matching chunks per query; a candidate further down
# gets the lowest of them. 256 instead of 1,000 saves ~9 ms a query at 100k chunks and changed no
# SQuAD v1.1 figure by more than 0.001.
KEYWORD_DEPTH = 256
# How many first-stage passages a reranker sees.
RERANK_DEPTH = 20
MAX_QUERY_CHARS = 2000

# Words that carry no topic: kept out of the keyword query so FTS5 does not walk huge posting lists.
STOPWORDS = frozenset(
    """a about above after again against all am an and any are as at be because been before being
    below between both but by can could did do does doing down during each few for from further had
    has have having he her here hers herself him himself his how i if in into is it its itself just
    me more most my myself no nor not now of off on once only or other our ours ourselves out over own
    same she should so some such than that the their theirs them themselves then there these they
    this those through to too under until up very was we were what when where which while who whom
    why will with would you your yours yourself yourselves s t don much many""".split()
)

_WORD = re.compile(r"\w+", re.UNICODE)


@dataclass(frozen=True)
class SearchFilters:
    """Limits on which articles may answer: a path glob and an inclusive date range (ISO days)."""

    source: str | None = None
    since: str | None = None
    until: str | None = None

    def admits(self, record: ChunkRecord) -> bool:
        if self.source and not (
            fnmatch.fnmatch(record.path, self.source)
            or fnmatch.fnmatch(record.path.rsplit("/", 1)[-1], self.source)
            or fnmatch.fnmatch(record.path, f"*{self.source}*")
        ):
            return False
        if self.since and (record.date is None or record.date < self.since):
            return False
        if self.until and (record.date is None or record.date > self.until):
            return False
        return True

    @property
    def active(self) -> bool:
        return bool(self.source or self.since or self.until)


def iso_day(value: str) -> str | None:
    """A date given by a user as an ISO day, or None when it is not one: ``" 2016-07-27" -> "2016-07-27"``."""
    import datetime as dt

    try:
        return dt.date.fromisoformat(value.strip()).isoformat()
    except ValueError:
        return None


def _content_words(text: str) -> list[str]:
    return [word for word in _WORD.findall(text.lower()) if word not in STOPWORDS]


def query_terms(text: str) -> list[str]:
    """Content words of a query, lower-cased, in order, without repeats.

    >>> query_terms("How much does Baghdad owe Russia?")
    ['baghdad', 'owe', 'russia']
    """
    return list(dict.fromkeys(_content_words(text)))


@lru_cache(maxsize=1)
def _stemmer():
    import Stemmer

    return Stemmer.Stemmer("english")


def stems(words: Sequence[str]) -> list[str]:
    """Snowball stems: ``["owes", "owed"] -> ["owe", "owe"]``."""
    return _stemmer().stemWords(list(words))


@lru_cache(maxsize=200_000)
def sentence_stems(sentence: str) -> frozenset[str]:
    """The stems of a text's content words: ``"Baghdad owes Russia" -> {"baghdad", "owe", "russia"}``.

    Cached: the same candidate sentences come back query after query."""
    return frozenset(stems(query_terms(sentence)))


def word_pairs(text: str) -> frozenset[tuple[str, str]]:
    """Stemmed pairs of adjacent content words, stopwords skipped over.

    >>> sorted(word_pairs("The Foreign Minister of Russia"))
    [('foreign', 'minist'), ('minist', 'russia')]
    """
    sequence = stems(_content_words(text))
    return frozenset(zip(sequence, sequence[1:]))


@lru_cache(maxsize=50_000)
def _passage_pairs(text: str) -> frozenset[tuple[str, str]]:
    # Cached: the same candidate passages come back query after query.
    return word_pairs(text)


def phrase_match(question_pairs: frozenset[tuple[str, str]], passage: str) -> float:
    """Share of the question's word pairs that the passage also has side by side, from 0 to 1."""
    if not question_pairs:
        return 0.0
    return len(question_pairs & _passage_pairs(passage)) / len(question_pairs)


def keyword_coverage(sentence: str, term_weights: dict[str, float], headline: str = "") -> float:
    """Share of the question's term weight (IDF) that the sentence contains, from 0 to 1; a word
    only its article's headline holds counts HEADLINE_SHARE (a story's sentences say "the quake"
    where its headline says "Earthquake near Sines").

    >>> keyword_coverage("Baghdad owes $8 billion", {"baghdad": 1.0, "owe": 1.0, "russia": 2.0})
    0.5
    """
    total = sum(term_weights.values())
    if total <= 0:
        return 0.0
    present = sentence_stems(sentence)
    titled = sentence_stems(headline) if headline else frozenset()
    return sum(w if stem in present else HEADLINE_SHARE * w if stem in titled else 0.0
               for stem, w in term_weights.items()) / total


def term_weights_for(question: str, document_frequency: Callable[[str], int], total_chunks: int) -> dict[str, float]:
    """IDF weight of each stemmed content word of the question; rare words weigh most.

    The IDF is blended with English word frequencies (qa.text.blended_idf), so that a small
    corpus weighs "Sines" and "depth" as rare, as a large one would.
    """
    from qa.text import blended_idf

    terms = query_terms(question)
    weights: dict[str, float] = {}
    for term, stem in zip(terms, stems(terms)):
        idf = blended_idf(term, document_frequency(term), total_chunks)
        weights[stem] = max(weights.get(stem, 0.0), idf)
    return weights


def _selective_terms(terms: Sequence[str], frequencies: dict[str, int], total: int) -> list[str]:
    """The terms worth a keyword search: those in at most COMMON_TERM_SHARE of the chunks.

    FTS5 scores every chunk that matches any term, so a word found everywhere makes the query
    slow while adding almost nothing to BM25 (its IDF is near zero). The three rarest terms are
    always kept.
    """
    limit = COMMON_TERM_SHARE * max(total, 1)
    rarest = sorted(terms, key=lambda t: frequencies.get(t, 0))[:3]
    return [t for t in terms if frequencies.get(t, 0) <= limit or t in rarest]


def hit_reading(hit: Hit, spans: Sequence[Span] | None = None) -> tuple[str, int, list[Span]]:
    """What the model reads for a passage (qa.chunk.model_passage: its headline, then its text), where
    its text starts in that, and `spans` (its sentences by default) moved into it. Hybrid search's
    second look and the claim checker read the same text, so one reading serves both."""
    from qa.chunk import model_passage
    from qa.ingest import article_heading

    chosen = list(spans) if spans is not None else list(hit.sentences) or [(hit.start, hit.end)]
    return model_passage(article_heading(hit.title, hit.path), hit.text, hit.start, chosen)


def clean_query(query: str) -> str:
    """The query as retrieval will use it, or a QueryError saying why there is nothing to search."""
    text = " ".join(query.split())
    if not text:
        raise QueryError("the question is empty")
    if not any(ch.isalnum() for ch in text):
        raise QueryError("the question has no words in it")
    return text[:MAX_QUERY_CHARS]


def open_retriever(
    location: Path | StoreLocation,
    backend: str | None = None,
    reranker: str | None = None,
    embedder: Embedder | None = None,
) -> Retriever:
    """A retriever over the index at `location` (a local folder or a store), its embedder checked
    against the index's manifest.

    The backend is the one asked for, else the one the index was built with.
    """
    from qa.embed import Embedder, Reranker
    from qa.index import open_index
    from qa.location import as_location

    index = open_index(as_location(location))
    try:
        embedder = embedder or Embedder(backend=backend or index.manifest.backend, bulk=False)
        index.manifest.check_model(embedder.name, embedder.dimension, index.dir, embedder.backend)
        return Retriever(index, embedder, Reranker(reranker) if reranker else None)
    except BaseException:
        index.close()
        raise


class Retriever:
    """Finds passages in an index for a query."""

    def __init__(self, index: Index | MilvusIndex, embedder: Embedder, reranker: Reranker | None = None) -> None:
        self.index = index
        self.embedder = embedder
        self.reranker = reranker
        self._last_weights: tuple[str, int, dict[str, float]] | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._aligner: TokenAligner | None = None

    def aligner(self) -> TokenAligner:
        """The token aligner that reads the best passages again (qa.align), made on first use."""
        if self._aligner is None:
            from qa.align import TokenAligner

            self._aligner = TokenAligner(self.embedder)
        return self._aligner

    def _dense_thread(self) -> ThreadPoolExecutor:
        # One thread, made on first use and reused: starting one per query would cost more than
        # the overlap saves. Daemon-like: it idles between queries and ends with the process.
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="qa-dense")
        return self._executor

    def term_weights(self, query: str) -> dict[str, float]:
        """IDF weights of the query's words; the last search's, when it was for the same query."""
        text = clean_query(query)
        if self._last_weights and self._last_weights[:2] == (text, self.index.generation) and self._last_weights[2]:
            return self._last_weights[2]
        with self.index.reading():
            frequencies = self.index.document_frequencies(query_terms(text))
            return term_weights_for(text, frequencies.__getitem__, self.index.chunk_count())

    def search(
        self,
        query: str,
        k: int = 5,
        mode: str = "hybrid",
        filters: SearchFilters | None = None,
        query_vector: np.ndarray | None = None,
        align: bool = False,
    ) -> list[Hit]:
        """The `k` best distinct passages for `query`, best first, with their scores.

        With `align`, hybrid search reads its first ALIGN_DEPTH passages again token by token
        (qa.align) and re-ranks them: better first passages and answer sentences, at the cost of
        a forward pass over those passages (what `ask` does; `search` does it when asked).
        """
        return self.search_modes(query, k, (mode,), filters, query_vector, align)[mode]

    def search_modes(
        self,
        query: str,
        k: int,
        modes: Sequence[str],
        filters: SearchFilters | None = None,
        query_vector: np.ndarray | None = None,
        align: bool = False,
        query_states: TokenStates | None = None,
    ) -> dict[str, list[Hit]]:
        """`search` in several modes at once, scoring the candidates only once (for `qa eval`).

        `query_states` are the query's token states for `align`, when the caller read them already.

        Each mode ranks only the candidates its own signals found, so "dense" is never helped by a
        keyword match, nor "keyword" by a vector.
        """
        for mode in modes:
            if mode not in MODES:
                raise QueryError(f"unknown mode {mode!r}; choose one of {', '.join(MODES)}")
        text = clean_query(query)
        vector = query_vector
        if align and "hybrid" in modes and not self.reranker and vector is None and query_states is None:
            # One pass over the question gives both: its token states and, pooled, its vector.
            from qa.embed import mean_vector

            query_states = self.embedder.token_states([text])[0]
            vector = mean_vector(query_states[0])
        elif vector is None and any(mode != "keyword" for mode in modes):
            vector = self.embedder.encode_query(text)
        with self.index.reading():
            return self._search_snapshot(text, k, modes, filters or SearchFilters(), vector, align, query_states)

    def _search_snapshot(
        self, text: str, k: int, modes: Sequence[str], filters: SearchFilters, vector: np.ndarray | None,
        align: bool = False, query_states: TokenStates | None = None,
    ) -> dict[str, list[Hit]]:
        index = self.index
        pool = max(CANDIDATES, k) * (8 if filters.active else 1)
        total = index.chunk_count()
        wants_vector = vector is not None and any(mode != "keyword" for mode in modes)
        dense_future = None
        if wants_vector and index.concurrent_search:
            dense_future = self._dense_thread().submit(index.dense_search, vector, pool, filters)
        wants_keywords = "dense" not in modes or len(modes) > 1
        terms = query_terms(text) if wants_keywords else []
        frequencies = index.document_frequencies(terms)
        # One ranked keyword query serves both: its head is the keyword candidate pool, and the
        # whole list gives every candidate its BM25 score.
        selective = _selective_terms(terms, frequencies, total)
        keyword_ranked = index.keyword_search(selective, max(KEYWORD_DEPTH, pool), filters) if terms else []
        keyword_pool = [c for c, _ in keyword_ranked[:pool]]
        if dense_future is not None:
            dense_pool = dense_future.result()
        else:
            dense_pool = index.dense_search(vector, pool, filters) if wants_vector else []
        records = index.chunks(list(dict.fromkeys(dense_pool + keyword_pool)))
        admitted = {c: r for c, r in records.items() if filters.admits(r)}
        weights = term_weights_for(text, frequencies.__getitem__, total) if keyword_pool else {}
        self._last_weights = (text, self.index.generation, weights)
        features = self._features(list(admitted.values()), vector, keyword_ranked if keyword_pool else None, weights)
        pairs = word_pairs(text) if "hybrid" in modes else frozenset()
        features.phrase = {c: phrase_match(pairs, r.text) for c, r in admitted.items()} if pairs else {}

        results: dict[str, list[Hit]] = {}
        for mode in modes:
            pool_ids = {"dense": dense_pool, "keyword": keyword_pool}.get(mode, dense_pool + keyword_pool)
            candidates = [admitted[c] for c in dict.fromkeys(pool_ids) if c in admitted]
            if self.reranker:
                hits = self._rank(candidates, features, mode, max(k, RERANK_DEPTH))
                results[mode] = _rerank(self.reranker, text, hits)[:k]
            elif align and mode == "hybrid" and vector is not None:
                from qa.align import ALIGN_DEPTH

                hits = self._rank(candidates, features, mode, max(k, ALIGN_DEPTH))
                results[mode] = self._aligned(text, hits, weights, query_states)[:k]
            else:
                results[mode] = self._rank(candidates, features, mode, k)
        return results

    def _aligned(
        self, text: str, hits: list[Hit], term_weights: dict[str, float], query_states: TokenStates | None = None
    ) -> list[Hit]:
        """The first ALIGN_DEPTH hits re-ranked by first-stage score plus token alignment (qa.align),
        each with its sentences' alignment; the rest follow in their first-stage order and scores."""
        from qa.align import ALIGN_DEPTH

        head, tail = hits[:ALIGN_DEPTH], hits[ALIGN_DEPTH:]
        if not head:
            return hits
        aligner = self.aligner()
        question = aligner.question(text, term_weights, query_states)
        passages = [hit_reading(hit, [s for s, _ in hit.sentence_scores]) for hit in head]
        aligned = [
            replace(hit, score=round(hit.score + alignment.rank_bonus, 4), sentence_alignment=alignment.sentences)
            for hit, alignment in zip(head, aligner.align(question, passages))
        ]
        return sorted(aligned, key=lambda hit: hit.score, reverse=True) + tail

    def _rank(self, candidates: list[ChunkRecord], features: Features, mode: str, k: int) -> list[Hit]:
        if not candidates:
            return []
        scores = _mode_scores(mode, features.restricted([r.chunk_id for r in candidates]))
        ranked = sorted(candidates, key=lambda r: scores[r.chunk_id], reverse=True)
        hits: list[Hit] = []
        for record in ranked:
            if _duplicates_any(record, hits):
                continue
            hits.append(_hit(record, scores[record.chunk_id], features.sentence_scores.get(record.chunk_id)))
            if len(hits) >= k:
                break
        return hits

    def _features(
        self,
        records: list[ChunkRecord],
        vector: np.ndarray | None,
        keyword_ranked: list[tuple[int, float]] | None,
        term_weights: dict[str, float] | None = None,
    ) -> Features:
        """Exact scores of every candidate for every signal, so no candidate is scored by a guess."""
        import numpy as np

        ids = [r.chunk_id for r in records]
        features = Features(ids=ids)
        if keyword_ranked is not None:
            # A ranked FTS5 query is far cheaper than scoring chosen rows (`rowid IN`), and it is
            # exact for every chunk when fewer than KEYWORD_DEPTH chunks match; past that, a
            # candidate outside the list gets the lowest score the list holds.
            ranked = keyword_ranked
            scores = dict(ranked)
            floor = ranked[-1][1] if len(ranked) >= KEYWORD_DEPTH else 0.0
            features.keyword = {c: scores.get(c, floor) for c in ids}
        if vector is not None:
            chunk_cosines = self.index.chunk_vectors(ids) @ vector
            features.dense = {c: float(s) for c, s in zip(ids, chunk_cosines)}
            stored = self.index.sentence_vectors(records)
            for record in records:
                spans, matrix = stored.get(record.chunk_id, ([], np.zeros((0, len(vector)), np.float32)))
                cosines = matrix @ vector if len(spans) else np.zeros(0, np.float32)
                features.sentence_scores[record.chunk_id] = tuple(
                    (span, float(c)) for span, c in zip(spans, cosines)
                )
                features.best_sentence[record.chunk_id] = (
                    float(cosines.max()) if len(spans) else features.dense[record.chunk_id]
                )
                if term_weights:
                    # The passage's best answer sentence, scored as the answer stage scores it.
                    features.answer_sentence[record.chunk_id] = max(
                        (
                            float(c) + SENTENCE_KEYWORD_WEIGHT * keyword_coverage(
                                record.text[start - record.start : end - record.start], term_weights, record.title
                            )
                            for (start, end), c in zip(spans, cosines)
                        ),
                        default=features.best_sentence[record.chunk_id],
                    )
        return features


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

    def restricted(self, ids: list[int]) -> Features:
        """The same features over a subset of the candidates (z-scores are taken over that subset)."""
        return replace(self, ids=ids)

    def meaning(self) -> dict[int, float]:
        """Cosine of the passage and of its best sentence, blended: the passage's topic and its best line."""
        return {c: (1 - SENTENCE_SHARE) * self.dense[c] + SENTENCE_SHARE * self.best_sentence[c] for c in self.ids}


def _rerank(reranker: Reranker, query: str, hits: list[Hit]) -> list[Hit]:
    """Order first-stage hits by a cross-encoder's scores, which become their scores."""
    scores = reranker.score(query, [hit.text for hit in hits])
    rescored = [replace(hit, score=round(score, 4)) for hit, score in zip(hits, scores)]
    return sorted(rescored, key=lambda hit: hit.score, reverse=True)


def _mode_scores(mode: str, features: Features) -> dict[int, float]:
    if mode == "dense":
        return features.meaning()
    keyword = {c: features.keyword.get(c, 0.0) for c in features.ids}
    if mode == "keyword":
        return keyword
    meaning = _zscores(features.meaning())
    words = _zscores(keyword)
    scores = {c: DENSE_WEIGHT * meaning[c] + KEYWORD_WEIGHT * words[c] for c in features.ids}
    if features.answer_sentence:
        answer = _zscores({c: features.answer_sentence.get(c, 0.0) for c in features.ids})
        for c in features.ids:
            scores[c] += ANSWER_WEIGHT * answer[c]
    if features.phrase:
        phrase = _zscores({c: features.phrase.get(c, 0.0) for c in features.ids})
        for c in features.ids:
            scores[c] += PHRASE_WEIGHT * phrase[c]
    return scores


def _zscores(scores: dict[int, float]) -> dict[int, float]:
    """Standardize scores over the candidates: mean 0, standard deviation 1."""
    values = list(scores.values())
    mean = sum(values) / len(values)
    spread = math.sqrt(sum((v - mean) ** 2 for v in values) / len(values)) or 1.0
    return {c: (v - mean) / spread for c, v in scores.items()}


def _duplicates_any(record: ChunkRecord, hits: list[Hit]) -> bool:
    # Overlapping chunks of one article say the same sentences twice; and the same text saved in
    # two files is one passage to the reader.
    for hit in hits:
        if hit.doc_id == record.doc_id and record.start < hit.end and hit.start < record.end:
            return True
        if hit.text == record.text:
            return True
    return False


def _hit(record: ChunkRecord, score: float, sentence_scores: tuple | None) -> Hit:
    return Hit(
        chunk_id=record.chunk_id,
        doc_id=record.doc_id,
        title=record.title,
        path=record.path,
        start=record.start,
        end=record.end,
        text=record.text,
        score=round(float(score), 4),
        date=record.date,
        sentences=record.sentences,
        sentence_scores=sentence_scores or (),
    )
