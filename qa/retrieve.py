"""Retrieval stage: the best passages for a query, by meaning, by keywords, or both fused.

Hybrid fusion z-scores each signal over the candidate pool and adds them with fixed weights, so a
passage found by only one side still competes; plain reciprocal rank fusion throws away how far
ahead the best candidates are, which is what decides between close paragraphs.
"""

from __future__ import annotations

import fnmatch
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from qa.catalog import ChunkRecord
from qa.errors import QueryError
from qa.types import Hit

if TYPE_CHECKING:
    import numpy as np

    from qa.embed import Embedder
    from qa.index import Index

MODES = ("hybrid", "dense", "keyword")
KEYWORD_WEIGHT = 0.3
DENSE_WEIGHT = 0.7
CANDIDATES = 64
MAX_QUERY_CHARS = 2000

# Words that carry no topic: kept out of the keyword query so FTS5 does not walk huge posting lists.
STOPWORDS = frozenset(
    """a about above after again against all am an and any are as at be because been before being
    below between both but by can could did do does doing down during each few for from further had
    has have having he her here hers herself him himself his how i if in into is it its itself just
    me more most my myself no nor not now of off on once only or other our ours ourselves out over own
    same she should so some such than that the their theirs them themselves then there these they
    this those through to too under until up very was we were what when where which while who whom
    why will with would you your yours yourself yourselves s t don""".split()
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


def query_terms(text: str) -> list[str]:
    """Content words of a query, lower-cased, in order, without repeats.

    >>> query_terms("How much does Baghdad owe Russia?")
    ['much', 'baghdad', 'owe', 'russia']
    """
    seen: dict[str, None] = {}
    for word in _WORD.findall(text.lower()):
        if word not in STOPWORDS and word not in seen:
            seen[word] = None
    return list(seen)


def fts_query(terms: Sequence[str]) -> str:
    """An FTS5 MATCH expression that finds any of the terms; each is quoted so none is an operator."""
    return " OR ".join('"' + term.replace('"', '""') + '"' for term in terms)


def clean_query(query: str) -> str:
    """The query as retrieval will use it, or a QueryError saying why there is nothing to search."""
    text = " ".join(query.split())
    if not text:
        raise QueryError("the question is empty")
    if not any(ch.isalnum() for ch in text):
        raise QueryError("the question has no words in it")
    return text[:MAX_QUERY_CHARS]


class Retriever:
    """Finds passages in an index for a query."""

    def __init__(self, index: Index, embedder: Embedder) -> None:
        self.index = index
        self.embedder = embedder

    def search(
        self,
        query: str,
        k: int = 5,
        mode: str = "hybrid",
        filters: SearchFilters | None = None,
        query_vector: np.ndarray | None = None,
    ) -> list[Hit]:
        """The `k` best distinct passages for `query`, best first, with their fused scores."""
        if mode not in MODES:
            raise QueryError(f"unknown mode {mode!r}; choose one of {', '.join(MODES)}")
        text = clean_query(query)
        filters = filters or SearchFilters()
        pool = max(CANDIDATES, 4 * k) * (8 if filters.active else 1)

        dense: dict[int, float] = {}
        keyword: dict[int, float] = {}
        if mode in ("dense", "hybrid"):
            vector = query_vector if query_vector is not None else self.embedder.encode_query(text)
            dense = dict(self.index.vectors.search(vector, pool))
        if mode in ("keyword", "hybrid"):
            keyword = dict(self.index.catalog.keyword_search(fts_query(query_terms(text)), pool))

        if mode == "dense":
            scores = dense
        elif mode == "keyword":
            scores = keyword
        else:
            scores = _fuse(dense, keyword)
        ranked = sorted(scores.items(), key=lambda item: item[1], reverse=True)
        records = self.index.catalog.chunks([chunk_id for chunk_id, _ in ranked])
        hits: list[Hit] = []
        for chunk_id, score in ranked:
            record = records.get(chunk_id)
            if record is None or not filters.admits(record):
                continue
            if _duplicates_any(record, hits):
                continue
            hits.append(_hit(record, score))
            if len(hits) >= k:
                break
        return hits


def _fuse(dense: dict[int, float], keyword: dict[int, float]) -> dict[int, float]:
    """Weighted sum of z-scored dense and keyword scores over the union of both candidate lists."""
    candidates = set(dense) | set(keyword)
    dense_z = _zscores(dense, candidates)
    keyword_z = _zscores(keyword, candidates)
    return {c: DENSE_WEIGHT * dense_z[c] + KEYWORD_WEIGHT * keyword_z[c] for c in candidates}


def _zscores(scores: dict[int, float], candidates: set[int]) -> dict[int, float]:
    """Standardize scores; a candidate the signal did not return gets the lowest score it gave."""
    if not scores:
        return {c: 0.0 for c in candidates}
    values = list(scores.values())
    mean = sum(values) / len(values)
    spread = math.sqrt(sum((v - mean) ** 2 for v in values) / len(values)) or 1.0
    floor = min(values)
    return {c: (scores.get(c, floor) - mean) / spread for c in candidates}


def _duplicates_any(record: ChunkRecord, hits: list[Hit]) -> bool:
    # Overlapping chunks of one article say the same sentences twice; and the same text saved in
    # two files is one passage to the reader.
    for hit in hits:
        if hit.doc_id == record.doc_id and record.start < hit.end and hit.start < record.end:
            return True
        if hit.text == record.text:
            return True
    return False


def _hit(record: ChunkRecord, score: float) -> Hit:
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
    )
