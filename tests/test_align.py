"""Token alignment with the real model: question tokens matched to passage tokens, and what it changes."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import pytest

from qa.align import (
    ALIGN_DEPTH,
    BEST_SENTENCE_ALIGN_WEIGHT,
    PASSAGE_ALIGN_WEIGHT,
    PREVIOUS_SENTENCE_CARRY,
    PassageAlignment,
    TokenAligner,
    _word_at,
)
from qa.answer import (
    JUDGMENT_LARGEST_COLLECTION,
    Corroboration,
    answer_probability,
    answer_words,
    answers_question,
    score_sentences,
)
from qa.embed import Embedder
from qa.errors import QueryError
from qa.stores import open_store
from qa.stores.location import StoreLocation
from qa.retrieve import Retriever, spread_articles
from qa.types import Hit

DEBT = "Moscow has pushed for repayment of Baghdad's $8 billion debt to Russia."
WEATHER = "Rain is expected over the weekend, with sunshine returning on Tuesday."
QUESTION = "How much does Baghdad owe Russia?"


@pytest.fixture(scope="module")
def retriever(seeds_location: StoreLocation, embedder: Embedder) -> Iterator[Retriever]:
    index = open_store(seeds_location)
    yield Retriever(index, embedder)
    index.close()


class CountingEmbedder:
    """The real embedder, counting the texts it is asked to read token by token."""

    def __init__(self, embedder: Embedder) -> None:
        self.embedder = embedder
        self.read: list[str] = []

    def token_states(self, texts):
        self.read.extend(texts)
        return self.embedder.token_states(texts)

    def unknown_token_rows(self, text):
        return self.embedder.unknown_token_rows(text)


def test_question_tokens_weigh_rare_words_and_not_stopwords(embedder: Embedder) -> None:
    question = TokenAligner(embedder).question(QUESTION, {"baghdad": 3.0, "owe": 1.5, "russia": 2.0})
    assert question.vectors.shape == (len(question.weights), embedder.dimension)
    assert question.weights.max() == 3.0
    assert (question.weights == 0).sum() >= 3  # how, much, does, and the question mark
    assert abs(float((question.vectors**2).sum(axis=1).mean()) - 1.0) < 1e-4


def test_unknown_tokens_in_a_question_are_not_matched(embedder: Embedder) -> None:
    # The model reads an emoji, and a word of over 100 letters, as one and the same unknown token:
    # 101 letters of nonsense matched a passage's emoji as closely as a word matches itself.
    aligner = TokenAligner(embedder)
    assert len(aligner.question("x" * 101, {}).vectors) == 0
    assert len(aligner.question("x" * 100, {}).vectors) > 0  # word pieces, read as usual
    question = aligner.question("Which cafe won 🦓 the award?", {"cafe": 2.0, "award": 2.0})
    assert len(question.vectors) == len(aligner.question("Which cafe won the award?", {"cafe": 2.0, "award": 2.0}).vectors)
    emoji = "The cafe 🦓 won the regional award on Monday."
    nonsense = aligner.align(aligner.question("x" * 101 + " " + "y" * 120, {}), [(emoji, 0, [(0, len(emoji))])])[0]
    assert nonsense.passage == 0.0


def test_the_answering_sentence_aligns_best(embedder: Embedder) -> None:
    aligner = TokenAligner(embedder)
    question = aligner.question(QUESTION, {"baghdad": 3.0, "owe": 1.5, "russia": 2.0})
    text = f"{WEATHER} {DEBT}"
    weather, debt = (0, len(WEATHER)), (len(WEATHER) + 1, len(text))
    answering, other = aligner.align(question, [(text, 0, [weather, debt]), (WEATHER, 0, [])])
    assert answering.sentences[1] > answering.sentences[0] + 0.1
    assert answering.passage > other.passage + 0.1
    assert 0.0 < other.passage < answering.passage <= 1.0


def test_a_sentence_carries_its_predecessors_match_at_a_discount(embedder: Embedder) -> None:
    aligner = TokenAligner(embedder)
    question = aligner.question(QUESTION, {"baghdad": 3.0, "owe": 1.5, "russia": 2.0})
    after_debt, first = f"{DEBT} {WEATHER}", f"{WEATHER} {DEBT}"
    carried, alone = aligner.align(question, [
        (after_debt, 0, [(0, len(DEBT)), (len(DEBT) + 1, len(after_debt))]),
        (first, 0, [(0, len(WEATHER)), (len(WEATHER) + 1, len(first))]),
    ])
    debt, weather_after_debt = carried.sentences
    weather_first = alone.sentences[0]
    # What the debt sentence matched counts for the sentence after it, discounted...
    assert weather_after_debt >= PREVIOUS_SENTENCE_CARRY * debt - 1e-6
    assert weather_after_debt > weather_first + 0.15
    # ...so the sentence that holds the match itself still aligns best.
    assert debt > weather_after_debt


def test_a_question_carries_to_its_answer_on_the_next_line_but_not_within_a_paragraph(embedder: Embedder) -> None:
    # An explainer's subheading ("How much does Baghdad owe Russia?") is answered by the paragraph
    # after it; a quiz's question inside a paragraph is followed by the next question, or by
    # "Answers are at the bottom of the page.", which answers nothing.
    aligner = TokenAligner(embedder)
    question = aligner.question(QUESTION, {"baghdad": 3.0, "owe": 1.5, "russia": 2.0})
    follows = "Answers are at the bottom of the page."
    heading, quiz = f"{QUESTION}\n\n{follows}", f"{QUESTION} {follows}"
    under_heading, in_quiz = aligner.align(question, [
        (heading, 0, [(0, len(QUESTION)), (len(QUESTION) + 2, len(heading))]),
        (quiz, 0, [(0, len(QUESTION)), (len(QUESTION) + 1, len(quiz))]),
    ])
    assert under_heading.sentences[1] >= PREVIOUS_SENTENCE_CARRY * under_heading.sentences[0] - 1e-6
    assert in_quiz.sentences[1] < under_heading.sentences[1] - 0.1


def test_a_passage_ranks_by_its_alignment_and_its_best_sentences() -> None:
    with_sentences = PassageAlignment(0.5, (0.2, 0.6, 0.4))
    assert with_sentences.rank_bonus == pytest.approx(PASSAGE_ALIGN_WEIGHT * 0.5 + BEST_SENTENCE_ALIGN_WEIGHT * 0.6)
    # A passage whose sentences are not known still ranks by its own alignment.
    assert PassageAlignment(0.5, ()).rank_bonus == pytest.approx(PASSAGE_ALIGN_WEIGHT * 0.5)


def test_a_headline_leading_the_text_is_context_not_matched(embedder: Embedder) -> None:
    aligner = TokenAligner(embedder)
    question = aligner.question(QUESTION, {"baghdad": 3.0, "owe": 1.5, "russia": 2.0})
    headline = "Baghdad owes Russia. "
    body_only, with_headline = aligner.align(
        question, [(headline + WEATHER, len(headline), []), (headline + WEATHER, 0, [])]
    )
    # The headline's own tokens hold the question's words; they are left out of the match.
    assert with_headline.passage > body_only.passage + 0.2


def test_passages_are_read_once_and_the_cache_is_bounded(embedder: Embedder) -> None:
    counting = CountingEmbedder(embedder)
    aligner = TokenAligner(counting, cached_passages=2)  # type: ignore[arg-type]
    question = aligner.question(QUESTION, {})
    assert question.weights.min() == question.weights.max() == 1.0  # no IDF known: all count alike
    counting.read.clear()
    first = aligner.align(question, [(DEBT, 0, []), (WEATHER, 0, [])])
    again = aligner.align(question, [(WEATHER, 0, []), (DEBT, 0, [])])
    assert counting.read == [DEBT, WEATHER]
    assert [a.passage for a in again] == [first[1].passage, first[0].passage]
    aligner.align(question, [("A third passage.", 0, [])])
    aligner.align(question, [(DEBT, 0, []), (WEATHER, 0, [])])  # the third evicted WEATHER, used longest ago
    assert counting.read == [DEBT, WEATHER, "A third passage.", WEATHER]


def test_a_passage_aligns_the_same_whatever_it_was_read_beside(embedder: Embedder) -> None:
    # The int8 encoder quantizes a batch on one scale: read beside other passages and remembered,
    # a passage's token states made a long-running server rank by the questions asked before.
    others = [WEATHER, "Prices of wheat rose 40% after the harvest failed across the plains in 2003. " * 3]
    question = TokenAligner(embedder).question(QUESTION, {})
    alone = TokenAligner(embedder).align(question, [(DEBT, 0, [(0, len(DEBT))])])[0]
    beside = TokenAligner(embedder)
    beside.align(question, [(text, 0, []) for text in (*others, DEBT)])  # read among the others first
    assert beside.align(question, [(DEBT, 0, [(0, len(DEBT))])])[0] == alone


def test_aligned_search_reranks_the_head_and_scores_its_sentences(retriever: Retriever) -> None:
    plain = retriever.search(QUESTION, k=ALIGN_DEPTH)
    aligned = retriever.search(QUESTION, k=ALIGN_DEPTH, align=True)
    assert {h.chunk_id for h in aligned} == {h.chunk_id for h in plain}
    assert all(not h.sentence_alignment for h in plain)
    # Every passage read again has its sentences aligned: its best sentence counts in its rank.
    for hit in aligned:
        assert len(hit.sentence_alignment) == len(hit.sentence_scores) > 0
    # Best first by their new scores, at most two passages of one article ahead of the other's
    # (every seed passage is among the ALIGN_DEPTH read again: two articles).
    assert aligned == spread_articles(sorted(aligned, key=lambda h: h.score, reverse=True), len(aligned))
    assert "$8 billion" in aligned[0].text
    # Only hybrid search reads again; asked of another mode, it is refused, not ignored.
    with pytest.raises(QueryError, match="does not go with mode 'keyword'"):
        retriever.search(QUESTION, mode="keyword", align=True)
    assert all(not h.sentence_alignment for h in retriever.search_modes(QUESTION, 5, ("keyword",), align=True)["keyword"])


def _hit(sentences: list[tuple[str, float, float]]) -> Hit:
    text = " ".join(s for s, _, _ in sentences)
    spans, position = [], 0
    for sentence, _, _ in sentences:
        spans.append((position, position + len(sentence)))
        position += len(sentence) + 1
    return Hit(1, "d", "T", "/t.txt", 0, len(text), text, 1.0, sentence_scores=tuple(
        (span, cosine) for span, (_, cosine, _) in zip(spans, sentences)),
        sentence_alignment=tuple(a for _, _, a in sentences))


def test_alignment_ranks_sentences_and_the_judgment_weighs_support() -> None:
    weights = {"baghdad": 1.0, "russia": 1.0}
    hit = _hit([("Baghdad and Russia met.", 0.60, 0.30), ("It owes $8 billion to Moscow.", 0.55, 0.60)])
    scored = score_sentences([hit], weights)
    assert scored[0].text.startswith("It owes")  # alignment outweighs the keyword match
    assert scored[1].support == pytest.approx(0.60 + 1.0)  # cosine + full keyword coverage
    # Little meaning, no keywords and a weak alignment: the judgment declines.
    weak = _hit([("Baghdad and Russia met.", 0.1, 0.2)])
    weak_scored = score_sentences([weak], {"x": 1.0})
    assert answer_probability(weak_scored, [weak], 1000) < answer_probability(scored, [hit], 1000)
    assert not answers_question(weak_scored, [weak], 1000)


def _page(title: str, doc_id: str, text: str) -> Hit:
    return replace(_hit([(text, 0.3, 0.1)]), title=title, doc_id=doc_id)


WAGE = "Which state now has the highest minimum wage?"
WAGE_SENTENCES = [
    # Slightly ahead on its own signals, and named on no other page: it answers something else.
    ("Lawmakers in California raised the highest minimum wage of its cities to $20 this week.", 0.64, 0.45),
    ("The highest is now in Washington, at $16.28 an hour.", 0.60, 0.41),
]


@pytest.mark.parametrize(("others", "agreement"), [
    # Two other sites' pages name Washington: the sentence that names it is chosen.
    ([("Wage rises in 22 states - AP", "b", "Washington leads at $16.28."),
      ("States raise pay - NPR", "c", "In Washington the minimum wage is the nation's highest.")], 1.0),
    # One other source only: a single page sharing a word is as often chance.
    ([("Wage rises in 22 states - AP", "b", "Washington leads at $16.28.")], 0.0),
    # A copy of one page under the same title, twice, is still one source.
    ([("Wage rises in 22 states - AP", "b", "Washington leads at $16.28."),
      ("Wage rises in 22 states - AP", "c", "Washington leads at $16.28.")], 0.0),
    # Other pages of the sentence's own source do not corroborate it.
    ([("Minimum wage - CNN", "b", "Washington leads at $16.28."),
      ("Minimum wage - CNN", "c", "In Washington the minimum wage is the nation's highest.")], 0.0),
    # Two sources, each naming a different one of its words: no one word is named twice.
    ([("Wage rises in 22 states - AP", "b", "Washington leads."),
      ("States raise pay - NPR", "c", "It is $16.28 an hour.")], 0.0),
    # Pages without a title are each their own source.
    ([("", "b", "Washington leads at $16.28."),
      ("", "c", "In Washington the minimum wage is the nation's highest.")], 1.0),
    # Only the first five passages are read for agreement.
    ([("Other news - BBC", "b", "Rain."), ("Sports - BBC", "c", "Goal."), ("Markets - FT", "d", "Stocks."),
      ("Weather - FT", "e", "Sun."), ("Wage rises in 22 states - AP", "f", "Washington leads at $16.28."),
      ("States raise pay - NPR", "g", "In Washington the minimum wage is the nation's highest.")], 0.0),
])
def test_other_sources_naming_a_sentences_answer_words_corroborate_it(
    others: list[tuple[str, str, str]], agreement: float,
) -> None:
    weights = {"highest": 1.0, "minimum": 0.5, "wage": 0.5}
    top = replace(_hit(WAGE_SENTENCES), title="Minimum wage - CNN", doc_id="a")
    hits = [top, *(_page(*other) for other in others)]
    assert Corroboration(hits, WAGE)(WAGE_SENTENCES[1][0], top) == agreement
    assert Corroboration(hits, WAGE)(WAGE_SENTENCES[0][0], top) == 0.0
    scored = score_sentences(hits, weights, WAGE)
    assert ("Washington" in scored[0].text) is (agreement > 0)
    # The judgment weighs support, which corroboration leaves as it was.
    assert {s.support for s in scored if s.hit_rank == 0} == {s.support for s in score_sentences([top], weights, WAGE)}


def test_answer_words_are_the_names_and_figures_the_question_lacks() -> None:
    asked = frozenset({"which", "state", "now", "has", "the", "highest", "minimum", "wage"})
    words = answer_words("Washington now has the highest minimum wage, $16.28, in 2024, Gov. Jay Inslee said.", asked)
    # Not the first word (any sentence capitalises it), nor the question's words or lower-case ones.
    assert words == {"$16.28", "2024", "Gov", "Jay", "Inslee"}
    # A figure counts wherever it stands; a name past the first place counts however often it comes.
    assert answer_words("2024 saw Washington say Washington won.", asked) == {"2024", "Washington"}
    # A long run of dashes is read in linear time, and is no word.
    assert answer_words("Read on " + "-" * 100_000 + " Reuters", asked) == {"Reuters"}


@pytest.mark.parametrize("aligned", [True, False], ids=["hybrid, read again", "dense or keyword"])
def test_the_same_evidence_weighs_more_in_a_small_collection_up_to_the_largest_fitted(aligned: bool) -> None:
    hit = _hit([("The quake was 17 kilometres deep.", 0.5, 0.45)])
    if not aligned:
        hit = replace(hit, sentence_alignment=())
    scored = score_sentences([hit], {"quake": 1.0, "deep": 1.0})
    small, large = (answer_probability(scored, [hit], n) for n in (30, JUDGMENT_LARGEST_COLLECTION))
    assert small > large
    # Nothing larger was fitted on: a larger collection is judged as the largest one was.
    assert answer_probability(scored, [hit], 10 * JUDGMENT_LARGEST_COLLECTION) == large


@pytest.mark.parametrize(("text", "start", "end", "word"), [
    ("Baghdad's debt", 4, 7, "Baghdad"), ("How much?", 4, 8, "much"), ("x", 0, 1, "x"),
])
def test_word_at_widens_a_piece_to_its_word(text: str, start: int, end: int, word: str) -> None:
    assert _word_at(text, start, end) == word
