"""Records that flow through the pipeline; `--json` output is built from their fields.

The records a store keeps and gives back (`IndexedArticle`, `CommitGroup`, `ChunkRecord`, …) and the
filters a search takes are here, not in any one store: every store reads and writes the same ones.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

Span = tuple[int, int]
"""A half-open character range ``(start, end)`` into an article's clean text."""


@dataclass(frozen=True)
class Article:
    """One article as read from disk: its clean text is what chunks and citations point into."""

    doc_id: str
    path: str
    title: str
    text: str
    content_hash: str
    date: str | None = None  # ISO 8601 day, "2016-07-27", when the page states one


@dataclass(frozen=True)
class Chunk:
    """A few whole sentences of an article; ``text == article.text[start:end]``."""

    doc_id: str
    ordinal: int
    start: int
    end: int
    text: str
    sentences: tuple[Span, ...] = ()  # absolute spans of the sentences inside this chunk


@dataclass(frozen=True)
class Hit:
    """A passage found for a query, with where it lives."""

    chunk_id: int
    doc_id: str
    title: str
    path: str
    start: int
    end: int
    text: str
    score: float
    date: str | None = None
    sentences: tuple[Span, ...] = ()
    # (sentence span, cosine to the query) for the sentences of this passage, when a query vector was used
    sentence_scores: tuple[tuple[Span, float], ...] = field(default=(), repr=False)
    # Token alignment of each of those sentences with the query (qa.align), when the passage was read again
    sentence_alignment: tuple[float, ...] = field(default=(), repr=False)
    page: int | None = None  # the PDF page the passage starts on (qa.pages); None for other articles


@dataclass(frozen=True)
class Citation:
    """A numbered source of an answer: ``quote == clean_text[start:end]`` of that document."""

    n: int
    doc_id: str
    title: str
    path: str
    start: int
    end: int
    quote: str
    score: float
    page: int | None = None  # the PDF page the quote starts on (qa.pages); None for other articles
    date: str | None = None  # its article's day, ISO 8601, when the page states one (a news story's)


@dataclass(frozen=True)
class Evidence:
    """The words of a cited passage that support a generated sentence: ``quote == clean_text[start:end]``."""

    n: int
    doc_id: str
    start: int
    end: int
    quote: str


@dataclass(frozen=True)
class Claim:
    """One sentence of a generated answer, checked by code against the passages it cites."""

    text: str
    citations: tuple[int, ...]
    verdict: str  # "supported", "unsupported" or "uncited"
    support: float  # how well its best evidence window covers it, 0 to 1
    evidence: tuple[Evidence, ...] = ()
    # numbers, dates and names it states that the cited passages lack, and "[9]" for a passage that is not there
    missing: tuple[str, ...] = ()
    # The cited passages each of which alone supports it as well as the threshold asks (its best
    # window's support), beside the one its evidence is from.
    supporting: tuple[int, ...] = ()
    # Words of its evidence that deny what it states: "does not owe" for "Baghdad owes Russia…".
    contradicted: tuple[str, ...] = ()

    @property
    def supported_by(self) -> tuple[int, ...]:
        """The passages that support it, in the order it cited them: the [n] a supported sentence is
        shown with. A passage it cites that does not is not among them, and a sentence that is not
        supported has none (its evidence is only the closest window); with no evidence recorded
        (a claim made by hand), its citations."""
        if self.verdict != "supported":
            return ()
        if not self.evidence:
            return self.citations
        held = {evidence.n for evidence in self.evidence} | set(self.supporting)
        return tuple(n for n in self.citations if n in held) + tuple(sorted(held - set(self.citations)))


@dataclass(frozen=True)
class Answer:
    """An answer: sentences quoted from the articles, each marked with its citation, or (with a model
    server) sentences a model wrote, each checked against the passages it cites."""

    question: str
    answer: str
    answerable: bool
    citations: tuple[Citation, ...] = ()
    passages: tuple[Hit, ...] = field(default=(), repr=False)
    understood_as: str | None = None  # the question as searched: a follow-up expanded, a typo read right
    generated: bool = False  # written by a model (qa.generate); False for the quoted answer
    model: str | None = None  # the model that wrote it, or was asked to
    claims: tuple[Claim, ...] = ()  # the generated answer's sentences with their verdicts
    notice: str | None = None  # why a generated answer was not used, or that passages left the machine
    # Names the question gives that no article holds ("Etna" asked of articles on Hekla): the
    # answer is about what the articles say, which may be another thing.
    absent_names: tuple[str, ...] = ()
    # The filters the names were looked for under ("source=a*.md"): none of the articles they
    # admit holds them. "" when the search ran over every article.
    absent_within: str = ""


@dataclass(frozen=True)
class IndexStats:
    """What `qa stats` reports."""

    index_dir: str
    documents: int
    chunks: int
    model: str
    dimension: int
    size_bytes: int
    sources: tuple[str, ...] = ()


# What a store keeps and gives back ----------------------------------------------------------------


@dataclass(frozen=True)
class DocumentRecord:
    """What a store knows about an indexed file, enough to tell whether it changed."""

    doc_id: str
    path: str
    title: str
    date: str | None
    content_hash: str
    size: int
    mtime_ns: int
    indexed_at: float = 0.0


@dataclass(frozen=True)
class ChunkRecord:
    """A chunk joined with its document, as retrieval needs it."""

    chunk_id: int
    doc_id: str
    title: str
    path: str
    date: str | None
    start: int
    end: int
    text: str
    sentences: tuple[Span, ...]
    # The chunk's stems as its store's keyword index keeps them (qa.text.marked_stems), when the
    # store reads them with the chunk: hybrid search then need not cut the text into words again.
    stems: str | None = None


@dataclass(frozen=True)
class ArticleMatch:
    """A whole article's keyword score for a question (Store.article_search), with how many
    passages it was cut into (the search lists long articles only: qa.retrieve.ARTICLE_MIN_PASSAGES)."""

    doc_id: str
    score: float
    passages: int


@dataclass(frozen=True)
class IndexedArticle:
    """An article with its chunks and the file facts used to notice later changes."""

    article: Article
    chunks: tuple[Chunk, ...]
    size: int
    mtime_ns: int


@dataclass(frozen=True)
class CommitGroup:
    """One commit of an update: documents to drop, articles to write with their vectors, and
    changes to the remembered sources and to file facts."""

    items: Sequence[IndexedArticle] = ()
    drop_docs: Sequence[str] = ()
    chunk_vectors: np.ndarray | None = None  # one row per chunk of the items, in order
    sentence_vectors: Sequence[np.ndarray] | None = None  # per item, one row per article_sentences span
    add_sources: Sequence[str] = ()
    remove_sources: Sequence[str] = ()
    touched: Sequence[tuple[str, int, int]] = ()  # (doc id, size, mtime_ns) of unchanged content
    # A copy from another store (qa.migrate), by the source's --store name: one that starts marks
    # the store as holding an unfinished copy of it, one that finishes takes that mark off.
    copy_started: str | None = None
    copy_finished: str | None = None

    @property
    def chunk_count(self) -> int:
        return sum(len(item.chunks) for item in self.items)


@dataclass(frozen=True)
class ExportedDocument:
    """A document as a store holds it, for copying to another store: the article, its chunks, and
    their vectors."""

    item: IndexedArticle
    chunk_vectors: np.ndarray  # one row per chunk of item.chunks
    sentence_vectors: np.ndarray  # one row per span of article_sentences(item)


def article_sentences(item: IndexedArticle) -> list[Span]:
    """The distinct sentence spans of an article's chunks, in order (overlapping chunks share some);
    a store keeps one sentence vector for each."""
    return sorted({tuple(span) for chunk in item.chunks for span in chunk.sentences})  # type: ignore[misc]


@dataclass(frozen=True)
class SearchFilters:
    """Limits on which articles may answer: a path glob and an inclusive date range (ISO days).

    Each store turns what it can of them into its own query (`admits` is the exact test, which
    retrieval applies to every candidate whatever the store did)."""

    source: str | None = None
    since: str | None = None
    until: str | None = None

    def admits(self, record: ChunkRecord) -> bool:
        return self.admits_article(record.path, record.date)

    def admits_article(self, path: str, date: str | None) -> bool:
        """Whether an article of this path and day passes (`admits` for its every chunk)."""
        if self.source and not (
            fnmatch.fnmatch(path, self.source)
            or fnmatch.fnmatch(path.rsplit("/", 1)[-1], self.source)
            or fnmatch.fnmatch(path, f"*{self.source}*")
        ):
            return False
        if self.since and (date is None or date < self.since):
            return False
        if self.until and (date is None or date > self.until):
            return False
        return True

    @property
    def active(self) -> bool:
        return bool(self.source or self.since or self.until)

    def describe(self) -> str:
        """The filters as a user sets them: ``"source=*.txt since=2016-07-01"``, "" when none."""
        parts = (("source", self.source), ("since", self.since), ("until", self.until))
        return " ".join(f"{name}={value}" for name, value in parts if value)

    def articles(self) -> str:
        """Which articles a search under them reads, as an answer says it: ``"the articles that
        match the filters (source=*.txt)"``, "every article" when none are set."""
        return f"the articles that match the filters ({self.describe()})" if self.active else "every article"

    def nothing_passed(self) -> str:
        """What a search that these filters left nothing to read says after "No passage was found":
        which articles it read, and, under a date filter, that an undated article never passes one
        (a text file that states no day is dated by nothing, not by its file's time)."""
        undated = "; an article that states no date is left out by a date filter" if self.since or self.until else ""
        return f"{self.articles()}{undated}"

    def problem(self, prefix: str = "") -> str | None:
        """Why no article could pass these filters, when that is plain from them alone; `prefix`
        goes before each filter's name, as the command line spells them ("--")."""
        if self.since and self.until and self.since > self.until:
            return f"{prefix}since {self.since} is after {prefix}until {self.until}: no day is in both"
        return None
