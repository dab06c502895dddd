"""Page numbers for passages and citations of PDF articles.

A PDF's clean text keeps a form feed between its pages, as `pdftotext` writes it
(``"page one text\\n\\f\\npage two text"``), so the page of any character span is the number of form
feeds before it, plus one: the index needs no extra column, and every store keeps it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

from qa.types import Answer, Citation, Hit

if TYPE_CHECKING:
    from qa.stores.base import Store

PAGE_BREAK = "\f"
PAGED_SUFFIXES = (".pdf",)


def page_at(text: str, offset: int) -> int:
    """The 1-based page of character `offset`: ``("a\\n\\f\\nb", 4) -> 2``."""
    return text.count(PAGE_BREAK, 0, offset) + 1


def is_paged(path: str) -> bool:
    """Whether the article at `path` has pages (a PDF)."""
    return path.lower().endswith(PAGED_SUFFIXES)


def hits_with_pages(hits: Sequence[Hit], index: Store) -> list[Hit]:
    """`hits`, those from PDFs with the page each starts on."""
    texts = _paged_texts(((h.doc_id, h.path) for h in hits), index)
    return [replace(h, page=page_at(texts[h.doc_id], h.start)) if h.doc_id in texts else h for h in hits]


def answer_with_pages(answer: Answer, index: Store) -> Answer:
    """`answer` with the page of every citation and passage that comes from a PDF."""
    pairs = [(c.doc_id, c.path) for c in answer.citations] + [(h.doc_id, h.path) for h in answer.passages]
    texts = _paged_texts(pairs, index)
    if not texts:
        return answer
    citations: list[Citation] = [
        replace(c, page=page_at(texts[c.doc_id], c.start)) if c.doc_id in texts else c for c in answer.citations
    ]
    passages = [replace(h, page=page_at(texts[h.doc_id], h.start)) if h.doc_id in texts else h
                for h in answer.passages]
    return replace(answer, citations=tuple(citations), passages=tuple(passages))


def _paged_texts(pairs: Iterable[tuple[str, str]], index: Store) -> dict[str, str]:
    wanted = sorted({doc_id for doc_id, path in pairs if is_paged(path)})
    texts: dict[str, str] = {}
    if not wanted:
        return texts
    with index.reading():
        for doc_id in wanted:
            article = index.document(doc_id)
            if article is not None:
                texts[doc_id] = article.text
    return texts
