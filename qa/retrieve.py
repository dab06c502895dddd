"""Retrieval stage: the best passages for a query, by meaning, by keywords, or both fused.

The `Retriever` asks a store (`qa.stores.base.Store`, whichever backend) for candidates and their
signals; how the signals are weighed into one score is `qa.fusion`'s.
"""

from __future__ import annotations

import unicodedata
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from itertools import chain, islice
from pathlib import Path
from typing import TYPE_CHECKING

from qa.errors import QueryError
from qa.fusion import (
    SENTENCE_KEYWORD_WEIGHT,
    Features,
    KeywordCoverer,
    mode_scores,
    phrase_match,
    term_weights_for,
)
from qa.text import PassageStems, passage_stems, query_terms, stems_from_marked, word_pairs
from qa.types import ArticleMatch, ChunkRecord, Hit, SearchFilters, Span

if TYPE_CHECKING:
    import numpy as np

    from qa.align import TokenAligner
    from qa.embed import Embedder, Reranker, TokenStates
    from qa.stores.base import Store
    from qa.stores.location import StoreLocation

MODES = ("hybrid", "dense", "keyword")
CANDIDATES = 64
# Words in more than this share of the chunks are left out of the keyword query (see _selective_terms).
COMMON_TERM_SHARE = 0.1
# Keyword scores are read for this many best-matching chunks per query; a candidate further down
# gets the lowest of them. 256 instead of 1,000 saves ~9 ms a query at 100k chunks and changed no
# SQuAD v1.1 figure by more than 0.001.
KEYWORD_DEPTH = 256
# Whole-article BM25 is read for this many best-matching long articles (qa.fusion.ARTICLE_KEYWORD_WEIGHT);
# a candidate whose article is further down is neither lifted nor lowered.
ARTICLE_DEPTH = 256
# Article evidence is for long articles: those of at least this many passages (67-68% of the
# RealTimeQA news articles; 95% have 3 or more). A shorter document's
# article BM25 says little its passages' do not, and lifting it lifts it over its siblings: with
# 2 / 3 / 4, hybrid R@1 on 3,000 SQuAD v1.1 questions (paragraphs of 1 to 7 passages) fell from
# 0.891 to 0.857 / 0.881 / 0.889; at 8 no SQuAD paragraph is long enough. On 2024's 554 news
# questions 4 and 8 gave the same gain (R@1 0.567 / 0.572, MRR@10 0.675 / 0.678; 0.552 / 0.658 without),
# with an earlier build of the article score; today's figures are under ARTICLE_MIN_QUESTION_WORDS.
ARTICLE_MIN_PASSAGES = 8
# Article evidence is only for questions long enough to name a story in some words and ask about
# a detail of it in others: this many distinct content words (qa.text.query_terms) or more; a chat
# follow-up counts as it is searched, with the turn it follows (qa.followup). On RealTimeQA
# 2023's 600 news questions (the tuning year) the lift gained among the 461 of 8 words or more
# (R@1 +25, R@5 +6 questions, MRR@10 +3.5 points on them) and lost a little among the 139 shorter
# ones (R@1 -3, R@5 -4, MRR@10 -2.0 points): their words fit in one passage, and the article's
# score only repeats its keywords, favouring long articles. Lifting only the longer gave R@1 /
# R@5 / MRR@10 / answer in top sentence 0.605 / 0.847 / 0.7042 / 0.300 against 0.600 / 0.840 /
# 0.6998 / 0.303 (a weight rising from 0 at 4 words to 1 at 8, or 5 to 9: 0.595 / 0.847 / 0.699
# and 0.600 / 0.850 / 0.702). Checked once on 2024: its 200 questions 0.585 / 0.860 / 0.6996 /
# 0.295 against 0.580 / 0.850 / 0.6984 / 0.285, its 554 0.561 / 0.819 / 0.6686 / 0.273 against
# 0.561 / 0.821 / 0.6715 / 0.267 (0.554 / 0.807 / 0.6592 / 0.271 with no article evidence). A
# shorter question does no article search at all.
ARTICLE_MIN_QUESTION_WORDS = 8
# How many first-stage passages a reranker sees.
RERANK_DEPTH = 20
# At most this many passages of one article lead a result list; its other passages follow every
# other article's, in their order (demoted, not dropped: a search within one article still lists
# them all). The article lift (qa.fusion) raises every passage of a long article alike, so one
# story's page filled a list: of RealTimeQA 2024's 200 news questions, 77 listed fewer than 10
# articles in their first 20 passages and 11 fewer than 5. The order of the articles is what it
# was; more of them reach the list. Figures in docs/news-ranking.md.
PASSAGES_PER_ARTICLE = 2
MAX_QUERY_CHARS = 2000

def iso_day(value: str) -> str | None:
    """A date given by a user as an ISO day, or None when it is not one: ``" 2016-07-27" -> "2016-07-27"``."""
    import datetime as dt

    try:
        return dt.date.fromisoformat(value.strip()).isoformat()
    except ValueError:
        return None


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


def printable_text(text: str) -> str:
    """`text` with lone surrogates made U+FFFD: bytes that are not UTF-8 reach Python's argv as
    surrogates ("\\udcff" for the byte 0xff), which a tokenizer refuses and no UTF-8 output can print."""
    try:
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    except UnicodeEncodeError:  # a surrogate that stands for no byte (from JSON, say)
        return text.encode("utf-8", "surrogatepass").decode("utf-8", "replace")


def searched_text(query: str) -> str:
    """`query` as it is searched: printable, its runs of spaces and line breaks one space, and its
    accents composed with their letters, as the articles are (qa.ingest._composed)."""
    return unicodedata.normalize("NFC", " ".join(printable_text(query).split()))


def clean_query(query: str, what: str = "question") -> str:
    """The query as retrieval will use it, or a QueryError saying why there is nothing to search
    (`what` names it there: `qa search` takes a query, `qa ask` a question)."""
    text = searched_text(query)
    if not text:
        raise QueryError(f"the {what} is empty")
    if not any(ch.isalnum() for ch in text):
        raise QueryError(f"the {what} has no words in it")
    if len(text) > MAX_QUERY_CHARS:
        # Refused, not cut: a question cut mid-word is searched for a word nobody asked about.
        raise QueryError(f"the {what} is longer than {MAX_QUERY_CHARS} characters")
    return text


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
    from qa.stores import open_store

    store = open_store(location)
    try:
        embedder = embedder or Embedder(backend=backend or store.manifest.backend, bulk=False)
        store.manifest.check_model(embedder.name, embedder.dimension, store.location.describe(), embedder.backend)
        return Retriever(store, embedder, Reranker(reranker) if reranker else None)
    except BaseException:
        store.close()
        raise


class Retriever:
    """Finds passages in a store for a query."""

    def __init__(self, store: Store, embedder: Embedder, reranker: Reranker | None = None) -> None:
        self.store = store
        self.embedder = embedder
        self.reranker = reranker
        # The last search's query, the store's revision then, and the query's term weights.
        self._last_weights: tuple[str, int | None, dict[str, float]] | None = None
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
        """IDF weights of the query's words; the last search's, when it was for the same query and
        the store says nothing was committed since."""
        text = clean_query(query)
        store = self.store
        with store.reading():
            revision = store.revision()
            last = self._last_weights
            if last and revision is not None and last[:2] == (text, revision) and last[2]:
                return last[2]
            frequencies = store.document_frequencies(query_terms(text))
            return term_weights_for(text, frequencies.__getitem__, store.chunk_count())

    def search(
        self,
        query: str,
        k: int = 5,
        mode: str = "hybrid",
        filters: SearchFilters | None = None,
        query_vector: np.ndarray | None = None,
        align: bool = False,
    ) -> list[Hit]:
        """The `k` best distinct passages for `query`, best first, with their scores; at most
        PASSAGES_PER_ARTICLE of one article ahead of other articles' passages (spread_articles),
        so a score need not fall down the list.

        With `align`, hybrid search reads its first ALIGN_DEPTH passages (ARTICLE_ALIGN_DEPTH for a
        question that reads whole articles) again token by token (qa.align) and re-ranks them:
        better first passages and answer sentences, at the cost of a forward pass over those
        passages (what `ask` does; `search` does it when asked).
        """
        if align and mode != "hybrid":
            # Said, not ignored: a script asking for `ask`'s ranking must not get another silently.
            raise QueryError(f"align reads hybrid search's best passages again; it does not go with mode {mode!r}")
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
        with self.store.reading():
            return self._search_snapshot(text, k, modes, filters or SearchFilters(), vector, align, query_states)

    def _search_snapshot(
        self, text: str, k: int, modes: Sequence[str], filters: SearchFilters, vector: np.ndarray | None,
        align: bool = False, query_states: TokenStates | None = None,
    ) -> dict[str, list[Hit]]:
        store = self.store
        # A store that checks the filters only on what it found is asked for more candidates.
        pool = max(CANDIDATES, k) * (8 if filters.active and not store.searches_within_filters else 1)
        total = store.chunk_count()
        wants_vector = vector is not None and any(mode != "keyword" for mode in modes)
        dense_future = None
        # A filtered search is not split: a store may read which chunks the filters admit in its
        # dense search (the local store's catalog answers only the thread that opened it).
        if wants_vector and store.concurrent_search and not filters.active:
            dense_future = self._dense_thread().submit(store.dense_search, vector, pool, filters)
        wants_keywords = "dense" not in modes or len(modes) > 1
        terms = query_terms(text) if wants_keywords else []
        frequencies = store.document_frequencies(terms)
        # One ranked keyword query serves both: its head is the keyword candidate pool, and the
        # whole list gives every candidate its BM25 score.
        selective = _selective_terms(terms, frequencies, total)
        keyword_ranked = store.keyword_search(selective, max(KEYWORD_DEPTH, pool), filters) if terms else []
        keyword_pool = [c for c, _ in keyword_ranked[:pool]]
        # Hybrid fusion also scores each candidate's whole article on the same words, when the
        # question is long enough for that to tell (ARTICLE_MIN_QUESTION_WORDS).
        article_ranked = (
            store.article_search(selective, ARTICLE_DEPTH, filters, ARTICLE_MIN_PASSAGES)
            if selective and "hybrid" in modes and len(terms) >= ARTICLE_MIN_QUESTION_WORDS else []
        )
        # While the dense search runs in its thread (FAISS lets go of the GIL), read the keyword
        # candidates' rows, vectors and sentence vectors, which the features need anyway.
        early_rows: dict[int, tuple[ChunkRecord, np.ndarray]] = {}
        early_sentences: dict[int, tuple[list[Span], np.ndarray]] = {}
        if dense_future is not None and vector is not None and keyword_pool:
            records, rows = store.chunks_with_vectors(keyword_pool)
            early_rows = {r.chunk_id: (r, row) for r, row in zip(records, rows)}
            early_sentences = store.sentence_vectors(records)
        if dense_future is not None:
            dense_pool = dense_future.result()
        else:
            dense_pool = store.dense_search(vector, pool, filters) if wants_vector else []
        wanted = list(dict.fromkeys(dense_pool + keyword_pool))
        if vector is not None:
            found, found_vectors = self._rows_with_vectors(wanted, early_rows, len(vector))
        else:
            found, found_vectors = list(store.chunks(wanted).values()), None
        admitted_rows = [n for n, r in enumerate(found) if filters.admits(r)]
        admitted = {found[n].chunk_id: found[n] for n in admitted_rows}
        chunk_vectors = found_vectors[admitted_rows] if found_vectors is not None else None
        weights = term_weights_for(text, frequencies.__getitem__, total) if keyword_pool else {}
        self._last_weights = (text, store.revision(), weights)
        features = self._features(
            list(admitted.values()), vector, keyword_ranked if keyword_pool else None, weights, chunk_vectors,
            early_sentences, word_pairs(text) if "hybrid" in modes else frozenset(), article_ranked,
        )

        results: dict[str, list[Hit]] = {}
        for mode in modes:
            pool_ids = {"dense": dense_pool, "keyword": keyword_pool}.get(mode, dense_pool + keyword_pool)
            candidates = [admitted[c] for c in dict.fromkeys(pool_ids) if c in admitted]
            # Made as it is read: each branch takes a head from it and lists on from the same
            # iterator, so no passage comes twice and the rest become hits only as far as read.
            ranked = self._ranked(candidates, features, mode)
            if self.reranker:
                # Only what the reranker scored is listed (its scores are on a scale of their own).
                head = list(islice(ranked, max(k, RERANK_DEPTH)))
                results[mode] = spread_articles(_rerank(self.reranker, text, head), k)
            elif align and mode == "hybrid" and vector is not None:
                from qa.align import ALIGN_DEPTH, ARTICLE_ALIGN_DEPTH

                head = list(islice(ranked, ARTICLE_ALIGN_DEPTH if article_ranked else ALIGN_DEPTH))
                results[mode] = spread_articles(chain(self._aligned(text, head, weights, query_states), ranked), k)
            else:
                results[mode] = spread_articles(ranked, k)
        return results

    def _rows_with_vectors(
        self, wanted: list[int], read: dict[int, tuple[ChunkRecord, np.ndarray]], dimension: int
    ) -> tuple[list[ChunkRecord], np.ndarray]:
        """Store.chunks_with_vectors(wanted), reading only those not in `read` already."""
        import numpy as np

        unread = [c for c in wanted if c not in read]
        if not read:
            return self.store.chunks_with_vectors(unread)
        rows = dict(read)
        if unread:
            records, vectors = self.store.chunks_with_vectors(unread)
            rows.update((r.chunk_id, (r, row)) for r, row in zip(records, vectors))
        chosen = [rows[c] for c in wanted if c in rows]
        if not chosen:
            return [], np.zeros((0, dimension), dtype=np.float32)
        return [record for record, _ in chosen], np.stack([row for _, row in chosen])

    def _aligned(
        self, text: str, head: list[Hit], term_weights: dict[str, float], query_states: TokenStates | None = None
    ) -> list[Hit]:
        """The first-stage hits `head` re-ranked by first-stage score plus token alignment
        (qa.align), each with its sentences' alignment."""
        if not head:
            return head
        aligner = self.aligner()
        question = aligner.question(text, term_weights, query_states)
        passages = [hit_reading(hit, [s for s, _ in hit.sentence_scores]) for hit in head]
        aligned = [
            replace(hit, score=round(hit.score + alignment.rank_bonus, 4), sentence_alignment=alignment.sentences)
            for hit, alignment in zip(head, aligner.align(question, passages))
        ]
        return sorted(aligned, key=lambda hit: hit.score, reverse=True)

    def _ranked(self, candidates: list[ChunkRecord], features: Features, mode: str) -> Iterator[Hit]:
        """The candidates as hits, best first, each passage once; made as they are read, since a
        list takes only the first few."""
        if not candidates:
            return
        scores = mode_scores(mode, features.restricted([r.chunk_id for r in candidates]))
        listed = _Listed()
        for record in sorted(candidates, key=lambda r: scores[r.chunk_id], reverse=True):
            if not listed.repeats(record):
                listed.add(record)
                yield _hit(record, scores[record.chunk_id], features.sentence_scores.get(record.chunk_id))

    def _features(
        self,
        records: list[ChunkRecord],
        vector: np.ndarray | None,
        keyword_ranked: list[tuple[int, float]] | None,
        term_weights: dict[str, float] | None = None,
        chunk_vectors: np.ndarray | None = None,
        read_sentences: dict[int, tuple[list[Span], np.ndarray]] | None = None,
        question_pairs: frozenset[tuple[str, str]] = frozenset(),
        article_ranked: Sequence[ArticleMatch] = (),
    ) -> Features:
        """Exact scores of every candidate for every signal, so no candidate is scored by a guess;
        `chunk_vectors` holds the records' stored vectors, one row each, when `vector` is given;
        `read_sentences`, the sentence vectors of those already read (Store.sentence_vectors);
        `question_pairs`, the question's word pairs (qa.text.word_pairs) for the phrase signal,
        which hybrid mode reads (it always has a `vector`); `article_ranked`, Store.article_search's
        list for the question, which hybrid mode reads too."""
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
        if article_ranked:
            # The store lists long articles only (ARTICLE_MIN_PASSAGES), so only those are lifted
            # or lowered; a candidate whose article is past the list's ARTICLE_DEPTH keeps its
            # passage score, as a short article's passage does.
            article_scores = {match.doc_id: match.score for match in article_ranked}
            features.document = {r.chunk_id: r.doc_id for r in records}
            features.article_keyword = {r.chunk_id: article_scores[r.doc_id] for r in records if r.doc_id in article_scores}
        if vector is not None:
            chunk_cosines = chunk_vectors @ vector
            features.dense = {c: float(s) for c, s in zip(ids, chunk_cosines)}
            read_sentences = read_sentences or {}
            stored = self.store.sentence_vectors([r for r in records if r.chunk_id not in read_sentences])
            stored.update(read_sentences)
            coverage = KeywordCoverer(term_weights) if term_weights else None
            for record in records:
                spans, matrix = stored.get(record.chunk_id, ([], np.zeros((0, len(vector)), np.float32)))
                cosines = matrix @ vector if len(spans) else np.zeros(0, np.float32)
                features.sentence_scores[record.chunk_id] = tuple(
                    (span, float(c)) for span, c in zip(spans, cosines)
                )
                features.best_sentence[record.chunk_id] = (
                    float(cosines.max()) if len(spans) else features.dense[record.chunk_id]
                )
                if coverage is None and not question_pairs:
                    continue
                # The passage and its sentences cut into stems at once, for both signals below.
                words = _passage_words(record, spans)
                if question_pairs:
                    features.phrase[record.chunk_id] = phrase_match(question_pairs, words)
                if coverage is not None:
                    # The passage's best answer sentence, scored as the answer stage scores it.
                    features.answer_sentence[record.chunk_id] = max(
                        (
                            float(c) + SENTENCE_KEYWORD_WEIGHT * coverage.stems(padded, record.title)
                            for padded, c in zip(words.sentences, cosines)
                        ),
                        default=features.best_sentence[record.chunk_id],
                    )
        return features


def _passage_words(record: ChunkRecord, spans: Sequence[Span]) -> PassageStems:
    """The stems of a candidate and of its sentences `spans`: read back from its store's keyword
    index when that kept them for these sentences (qa.stores.local), else cut from its text. The
    store made them from the chunk's text, which is always its document's span (qa.chunk)."""
    if record.stems is not None and tuple(spans) == record.sentences:
        found = stems_from_marked(record.stems, len(spans))
        if found is not None:
            return found
    return passage_stems(record.text, tuple((start - record.start, end - record.start) for start, end in spans))


def spread_articles(hits: Iterable[Hit], k: int, per_article: int = PASSAGES_PER_ARTICLE) -> list[Hit]:
    """The first `k` of `hits` (best first) with at most `per_article` passages of one article
    among them while other articles' passages remain; the rest of an article's passages follow in
    their order. ``[a1, a2, a3, b1], k=3 -> [a1, a2, b1]``; ``[a1, a2, a3], k=3 -> [a1, a2, a3]``."""
    # A list that never fills (a search within one or two articles) reads every candidate: a few
    # hundred at most (qa.retrieve.CANDIDATES, more under filters).
    kept: list[Hit] = []
    held: list[Hit] = []
    listed: Counter[str] = Counter()
    for hit in hits:
        listed[hit.doc_id] += 1
        (kept if listed[hit.doc_id] <= per_article else held).append(hit)
        if len(kept) >= k:
            break
    return (kept + held)[:k]


def _rerank(reranker: Reranker, query: str, hits: list[Hit]) -> list[Hit]:
    """Order first-stage hits by a cross-encoder's scores, which become their scores."""
    scores = reranker.score(query, [hit.text for hit in hits])
    rescored = [replace(hit, score=round(score, 4)) for hit, score in zip(hits, scores)]
    return sorted(rescored, key=lambda hit: hit.score, reverse=True)


class _Listed:
    """The passages a result list holds so far, to leave out one that repeats them: overlapping
    chunks of one article say the same sentences twice, and the same text saved in two files is
    one passage to the reader. Kept by article and by text, so a list that reads every candidate
    (one that never fills: spread_articles) checks each against its own article's passages only,
    not against every passage listed."""

    def __init__(self) -> None:
        self._spans: dict[str, list[tuple[int, int]]] = {}
        self._texts: set[str] = set()

    def repeats(self, record: ChunkRecord) -> bool:
        if record.text in self._texts:
            return True
        return any(record.start < end and start < record.end for start, end in self._spans.get(record.doc_id, ()))

    def add(self, record: ChunkRecord) -> None:
        self._texts.add(record.text)
        self._spans.setdefault(record.doc_id, []).append((record.start, record.end))


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
