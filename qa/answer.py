"""Answer stage: pick the sentences that answer a question, word for word, and cite them.

No language model writes anything: each sentence of the answer is a span of an article's clean text.
A sentence is scored by its meaning (cosine to the question), by how many of the question's rare
words it contains, and, when hybrid search read the passage again (qa.align), by how closely its
tokens match the question's, so "How much does Baghdad owe Russia?" picks the sentence with
"$8 billion" over one that merely mentions Baghdad.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from qa.align import PASSAGES_READ, SENTENCE_ALIGN_KEYWORD_WEIGHT, SENTENCE_ALIGN_WEIGHT
from qa.retrieve import (
    SENTENCE_KEYWORD_WEIGHT,
    Retriever,
    SearchFilters,
    clean_query,
    keyword_coverage,
)
from qa.types import Answer, Citation, Hit, Span


NOT_ANSWERED = "The articles do not seem to answer this."
# Below this best-sentence support (meaning + keywords, without alignment) the top passages are
# judged not to answer the question.
# Calibrated on data nobody here wrote: 3,000 SQuAD v2.0 dev questions against its own corpus
# (answerable) and 1,500 SQuAD v1.1 dev questions about the 13 articles that corpus lacks (off
# topic). At 0.9, 94.9% of answerable questions are answered and 90.2% of off-topic ones declined
# (the best balanced accuracy, 0.926; AUROC 0.978). SQuAD v2.0's unanswerable questions, written to
# look answerable from the same paragraph, are mostly not caught (10.6%): that takes a reader model.
ANSWER_THRESHOLD = 0.9
MAX_SENTENCES = 2
# A second sentence joins the answer only when it scores nearly as well as the first.
SECOND_SENTENCE_MARGIN = 0.06
_MIN_SENTENCE_CHARS = 12


@dataclass(frozen=True)
class ScoredSentence:
    """A candidate answer sentence inside a retrieved passage."""

    hit_rank: int
    span: Span
    text: str
    cosine: float
    keyword: float
    score: float  # what ranks the sentences
    support: float  # meaning + keywords alone, what the answerability threshold was calibrated on


def score_sentences(hits: Sequence[Hit], term_weights: dict[str, float]) -> list[ScoredSentence]:
    """Every sentence of the top passages with its meaning and keyword scores, best first.

    The meaning score is the cosine the retriever computed from the sentence's stored vector; a
    passage that was read again (`Hit.sentence_alignment`) adds its sentences' token alignment.
    """
    scored = []
    for rank, hit in enumerate(hits[:PASSAGES_READ]):
        alignments = hit.sentence_alignment or (None,) * len(hit.sentence_scores)
        for ((start, end), cosine), alignment in zip(hit.sentence_scores, alignments):
            text = hit.text[start - hit.start : end - hit.start]
            if not text.strip():
                continue
            keyword = keyword_coverage(text, term_weights)
            # A fragment ("Ivanov said.") can match on a name alone; it is rarely the answer.
            brevity = 0.1 if len(text) < _MIN_SENTENCE_CHARS else 0.0
            support = cosine + SENTENCE_KEYWORD_WEIGHT * keyword - 0.02 * rank - brevity
            score = support
            if alignment is not None:
                score = (cosine + SENTENCE_ALIGN_KEYWORD_WEIGHT * keyword + SENTENCE_ALIGN_WEIGHT * alignment
                         - 0.02 * rank - brevity)
            scored.append(ScoredSentence(rank, (start, end), text, cosine, keyword, score, support))
    scored.sort(key=lambda s: s.score, reverse=True)
    return scored


def answers_question(scored: Sequence[ScoredSentence]) -> bool:
    """Whether some sentence has the support to be given as an answer (see ANSWER_THRESHOLD)."""
    return bool(scored) and max(s.support for s in scored) >= ANSWER_THRESHOLD


def compose_answer(
    question: str,
    hits: Sequence[Hit],
    scored: Sequence[ScoredSentence],
    understood_as: str | None = None,
) -> Answer:
    """The Answer record: chosen sentences with [n] markers, or the honest "do not answer"."""
    if not answers_question(scored):
        return Answer(question, NOT_ANSWERED, False, (), tuple(hits), understood_as)
    best = scored[0]
    chosen = [best]
    for candidate in scored[1:]:
        if len(chosen) >= MAX_SENTENCES or candidate.score < best.score - SECOND_SENTENCE_MARGIN:
            break
        if all(candidate.span != c.span or candidate.hit_rank != c.hit_rank for c in chosen):
            if candidate.text.strip() not in {c.text.strip() for c in chosen}:
                chosen.append(candidate)
    citations = []
    parts = []
    # Sources are the retrieved passages, numbered in rank order; two sentences quoted from one
    # passage share its number, and /sources and /open use the same numbers.
    for sentence in chosen:
        n = sentence.hit_rank + 1
        hit = hits[sentence.hit_rank]
        start, end = sentence.span
        citations.append(
            Citation(
                n=n,
                doc_id=hit.doc_id,
                title=hit.title,
                path=hit.path,
                start=start,
                end=end,
                quote=sentence.text,
                score=round(sentence.score, 4),
            )
        )
        parts.append(f"{sentence.text.strip()} [{n}]")
    return Answer(question, " ".join(parts), True, tuple(citations), tuple(hits), understood_as)


def answer_question(
    retriever: Retriever,
    question: str,
    k: int = 5,
    mode: str = "hybrid",
    filters: SearchFilters | None = None,
    retrieval_query: str | None = None,
) -> Answer:
    """Retrieve passages for `question` and answer it from their sentences.

    `retrieval_query` is what is searched when it differs from the question as asked (a follow-up
    expanded with the previous turn); the answer then says how the question was understood.
    """
    asked = clean_query(question)
    searched = clean_query(retrieval_query) if retrieval_query else asked
    hits = retriever.search(searched, k=k, mode=mode, filters=filters, align=True)
    weights = retriever.term_weights(searched)
    scored = score_sentences(hits, weights)
    understood = searched if searched != asked else None
    return compose_answer(asked, hits, scored, understood)
