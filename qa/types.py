"""Records that flow through the pipeline; `--json` output is built from their fields."""

from __future__ import annotations

from dataclasses import dataclass, field

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


@dataclass(frozen=True)
class Answer:
    """An answer: sentences quoted from the articles, each marked with its citation, or (with a model
    server) sentences a model wrote, each checked against the passages it cites."""

    question: str
    answer: str
    answerable: bool
    citations: tuple[Citation, ...] = ()
    passages: tuple[Hit, ...] = field(default=(), repr=False)
    understood_as: str | None = None  # the question as retrieved, when a follow-up was expanded
    generated: bool = False  # written by a model (qa.generate); False for the quoted answer
    model: str | None = None  # the model that wrote it, or was asked to
    claims: tuple[Claim, ...] = ()  # the generated answer's sentences with their verdicts
    notice: str | None = None  # why a generated answer was not used, or that passages left the machine


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
