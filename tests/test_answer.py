"""Answers from the two seed articles with the real model: the right sentence, quoted exactly, cited."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import pytest
from rich.console import Console

from qa.answer import NOT_ANSWERED, answer_question, holds_kind, kind_question, score_sentences, unresolved_reference
from qa.embed import Embedder
from qa.stores import open_store
from qa.stores.location import StoreLocation
from qa.retrieve import Retriever
from qa.stores.base import Store
from qa.types import Answer, Hit

from conftest import retriever_over

SEEDS = Path(__file__).resolve().parent.parent / "seeds"
SITE_CHROME = ("Get the latest updates", "Last Updated", "right on your browser")


@pytest.fixture(scope="module")
def retriever(seeds_location: StoreLocation, embedder: Embedder) -> Iterator[Retriever]:
    """A retriever over the session's index of the seeds (only read here), in each store kind."""
    index = open_store(seeds_location)
    yield Retriever(index, embedder)
    index.close()


def assert_quotes_are_exact(answer: Answer, index: Store) -> None:
    """Every citation quotes its document's clean text exactly between its offsets."""
    for citation in answer.citations:
        document = index.document(citation.doc_id)
        assert document is not None
        assert document.path == citation.path
        assert document.title == citation.title
        assert citation.quote == document.text[citation.start : citation.end]
        assert citation.quote.strip() == citation.quote
        assert f"[{citation.n}]" in answer.answer


def test_who_received_the_informal_document(retriever: Retriever) -> None:
    answer = answer_question(retriever, "Who did Igor Ivanov give the informal document to?")
    assert answer.answerable
    first = answer.citations[0]
    assert first.n == 1
    assert first.title == "Ivanov's Offer Links Iraq to Chechnya"
    assert Path(first.path).resolve() == SEEDS / "000_22cb3c343393cc32.txt"
    assert "Madeleine Albright" in first.quote
    assert "Madeleine Albright" in answer.answer
    assert_quotes_are_exact(answer, retriever.store)


@pytest.mark.parametrize("mode", ["hybrid", "dense", "keyword"])
def test_every_search_mode_answers(retriever: Retriever, mode: str) -> None:
    # Keyword mode once declined every question: it searched without the question's vector, so
    # no sentence had a cosine for the answer stage to read.
    answer = answer_question(retriever, "How much does Baghdad owe Russia?", mode=mode)
    assert answer.answerable, mode
    assert "$8 billion" in answer.citations[0].quote
    assert_quotes_are_exact(answer, retriever.store)


def test_how_much_baghdad_owes_russia(retriever: Retriever) -> None:
    answer = answer_question(retriever, "How much does Baghdad owe Russia?")
    assert answer.answerable
    assert "$8 billion" in answer.citations[0].quote
    assert answer.citations[0].title == "Russia May Send Peacekeepers to Iraq"
    assert_quotes_are_exact(answer, retriever.store)


def test_a_name_no_article_holds_is_said_beside_the_answer(retriever: Retriever) -> None:
    from qa.answer import absent_names
    from qa.render import answer_json

    # Asked of Finland, the seeds answer of Russia: what they say, said to be about something else.
    answer = answer_question(retriever, "How much does Baghdad owe Finland?")
    assert answer.absent_names == ("Finland",)
    assert answer_json(answer)["absent_names"] == ["Finland"]
    assert answer_question(retriever, "How much does Baghdad owe Russia?").absent_names == ()
    # A sentence's common first word, a number word and a possessive are no names to look up;
    # a first word English seldom uses is.
    assert absent_names("Which Finnish minister met Ivanov's aide? Nineteen did.", retriever.store) == ("Finnish",)
    assert absent_names("Helsinki talks: what did Baghdad say?", retriever.store) == ("Helsinki",)
    # Initials, titles and a name with an apostrophe are looked up as the stores cut them.
    assert absent_names("Did Mr Ivanov tell the U.S. and O'Neill's U.N. team?", retriever.store) == ("O'Neill",)
    # An acronym the passages found spell out is no absent name ("weapons of mass destruction");
    # one they do not is.
    assert absent_names("What did Rubin say about WMD in Iraq?", retriever.store) == ("WMD",)
    assert answer_question(retriever, "What did Rubin say about WMD in Iraq?").absent_names == ()
    assert answer_question(retriever, "What did Rubin say about the IAEA in Iraq?").absent_names == ("IAEA",)
    # Said when no passage is found too (keyword mode finds none of these words; a filter no
    # article passes): the note was left out exactly when the name matters most.
    from qa.types import SearchFilters

    assert answer_question(retriever, "What about zebras in Nairobi?", mode="keyword").absent_names == ("Nairobi",)
    nothing = answer_question(retriever, "What about zebras in Nairobi?", filters=SearchFilters(source="*.docx"))
    assert (nothing.passages, nothing.absent_names, nothing.absent_within) == ((), ("Nairobi",), "source=*.docx")
    from qa.render import render_answer

    out = io.StringIO()
    Console(file=out, width=400).print(render_answer(nothing))  # no answer to be about something else
    assert "Note: no article that matches the filters (source=*.docx) mentions Nairobi.\n" in out.getvalue()


def test_accents_written_apart_from_their_letters_are_read_as_one_letter(tmp_path, embedder) -> None:
    # Text from a PDF or a Mac may store "é" as "e" and a combining mark, where the keyword index
    # ended a word: "Nuñez" typed was said to be in no article, and not found by keyword search.
    import unicodedata

    from qa.indexer import update_index
    from qa.retrieve import open_retriever

    folder = tmp_path / "articles"
    folder.mkdir()
    story = "Skier wins gold\n\nThe skier Renée Lefèvre won gold in Montréal. Her coach José Nuñez said she trained for ten years.\n"
    (folder / "ski.txt").write_text(unicodedata.normalize("NFD", story), encoding="utf-8")
    update_index(tmp_path / "index", [folder], embedder=embedder)
    retriever = open_retriever(tmp_path / "index", embedder=embedder)
    try:
        for form in ("NFC", "NFD"):  # the question typed either way
            question = unicodedata.normalize(form, "What did José Nuñez say?")
            answer = answer_question(retriever, question)
            assert answer.answerable and answer.absent_names == (), (form, answer.absent_names)
            assert "Nuñez said" in answer.citations[0].quote
            hits = retriever.search(unicodedata.normalize(form, "Nuñez"), mode="keyword")
            assert [hit.path for hit in hits] == [str(folder / "ski.txt")], form
    finally:
        retriever.store.close()


def test_an_acronym_is_spelled_out_only_by_words_that_open_with_its_letters() -> None:
    from qa.answer import spelled_out

    assert spelled_out("CFO", ["said the company's chief financial officer, Jane Roe."])
    assert spelled_out("NYC", ["a studio in New York City"])
    # "II" is no word of three letters: World War II does not spell WWI, nor do stopwords anything.
    assert not spelled_out("WWI", ["after World War II ended"])
    assert not spelled_out("MAS", ["more and some"])
    assert not spelled_out("Etna", ["Etna erupted"])  # not an acronym


def test_a_filtered_question_looks_for_its_names_in_the_articles_it_was_asked_of(retriever: Retriever) -> None:
    from qa.types import SearchFilters

    # Article 004 is about Sergei Ivanov; Igor Ivanov is in another article. Asked of 004 alone,
    # the answer is about Sergei, and the note once said nothing: Igor is in the index.
    question = "Who did Igor Ivanov give the informal document to?"
    of_004 = answer_question(retriever, question, filters=SearchFilters(source="*004_*"))
    assert of_004.passages and all("004_" in hit.path for hit in of_004.passages)
    assert of_004.absent_names == ("Igor",) and of_004.absent_within == "source=*004_*"
    # The note says which articles lack the name: the index as a whole holds it.
    from qa.render import answer_json, render_answer
    out = io.StringIO()
    Console(file=out, width=400).print(render_answer(of_004))
    assert "Note: no article that matches the filters (source=*004_*) mentions Igor" in out.getvalue()
    assert answer_json(of_004)["absent_within"] == "source=*004_*"
    of_000 = answer_question(retriever, question, filters=SearchFilters(source="*000_*"))
    assert of_000.passages and of_000.absent_names == ()
    assert answer_question(retriever, question).absent_names == ()
    # Looked for in every article the filters admit, not only in those of the passages shown.
    # Sergei is named in article 004 alone, Albright in 000 alone: one passage shows one article.
    both = "Did Sergei Ivanov ever meet Madeleine Albright?"
    everything = answer_question(retriever, both, k=1, filters=SearchFilters(source="*.txt"))
    assert len({hit.doc_id for hit in everything.passages}) == 1 and everything.absent_names == ()


@pytest.mark.parametrize(
    "question",
    [
        "Who did Igor Ivanov give the informal document to?",
        "How much does Baghdad owe Russia?",
        "When was the page last updated?",
        "Where can I get the latest updates?",
    ],
)
def test_site_chrome_is_never_quoted(retriever: Retriever, question: str) -> None:
    answer = answer_question(retriever, question)
    assert answer.passages
    for text in [c.quote for c in answer.citations] + [h.text for h in answer.passages] + [answer.answer]:
        for chrome in SITE_CHROME:
            assert chrome not in text


def test_unrelated_question_is_not_answered_but_shows_passages(retriever: Retriever) -> None:
    answer = answer_question(retriever, "What is the boiling point of tungsten?")
    assert not answer.answerable
    assert answer.answer == NOT_ANSWERED
    assert answer.citations == ()
    assert answer.passages  # the closest passages are still shown to the reader
    for hit in answer.passages:
        document = retriever.store.document(hit.doc_id)
        assert document is not None and hit.text == document.text[hit.start : hit.end]


def test_passages_are_distinct_and_ranked(retriever: Retriever) -> None:
    answer = answer_question(retriever, "Russian peacekeepers in Iraq", k=4)
    assert 1 <= len(answer.passages) <= 4
    scores = [h.score for h in answer.passages]
    assert scores == sorted(scores, reverse=True)
    assert len({h.chunk_id for h in answer.passages}) == len(answer.passages)
    assert answer.passages[0].title == "Russia May Send Peacekeepers to Iraq"


def test_two_sentences_quoted_from_one_passage_are_both_on_its_source_line() -> None:
    from qa.render import render_answer
    from qa.types import Citation

    citations = (Citation(1, "d", "Club", "/c/club.txt", 197, 221, "The club has 85 members.", 0.9),
                 Citation(1, "d", "Club", "/c/club.txt", 0, 74, "The Riverside Chess Club elected Ana Reis.", 0.8))
    out = io.StringIO()
    Console(file=out, width=200).print(render_answer(Answer("q", "a", True, citations), show_passages=False))
    assert "[1] Club  /c/club.txt  chars 0–74, 197–221" in out.getvalue()


def test_a_pdf_passage_is_shown_as_its_paragraphs_and_each_quote_with_its_own_page() -> None:
    # A PDF's passage kept the page's line breaks in its panel ("late on Monday," / "to 4,000
    # people, had" each a line of their own), and a source line quoting page 1 and page 2 said
    # "page 2" for both.
    from qa.render import render_answer
    from qa.types import Citation, Hit

    text = ("The volcano erupted late on Monday,\nforcing the evacuation of Grindavik.\n\f\nThe town, home\n"
            "to 4,000 people, had been emptied before.")
    first, second = text.index("The volcano"), text.index("The town")
    hit = Hit(1, "d", "Eruption", "/c/eruption.pdf", 0, len(text), text, 0.9, page=1)
    citations = (Citation(1, "d", "Eruption", "/c/eruption.pdf", first, text.index("Grindavik.") + 10,
                          text[first:text.index("Grindavik.") + 10], 0.9, page=1),
                 Citation(1, "d", "Eruption", "/c/eruption.pdf", second, len(text), text[second:], 0.8, page=2))
    out = io.StringIO()
    Console(file=out, width=200).print(render_answer(Answer("q", "a", True, citations, passages=(hit,))))
    shown = out.getvalue()
    assert f"page 1 chars {first}–{citations[0].end}, page 2 chars {second}–{len(text)}" in shown
    assert "The volcano erupted late on Monday, forcing the evacuation of Grindavik." in shown
    assert "The town, home to 4,000 people, had been emptied before." in shown
    # A list's lead-in and items keep their lines; a text file's line breaks are the writer's.
    from qa.render import shown_text

    assert shown_text("Shelters:\n- the sports hall\n1. the school", True) == "Shelters:\n- the sports hall\n1. the school"
    assert shown_text("Ana Reis\n12 Harbour Road", False) == "Ana Reis\n12 Harbour Road"


def follow_up(retriever: Retriever, before: Answer, question: str) -> Answer:
    """`question` asked in a chat after `before`, as the chat asks it (qa.repl)."""
    return answer_question(retriever, question, retrieval_query=f"{before.question} {question}",
                           said_before=before.citations, said_for=before.question)


def test_a_line_the_article_says_again_in_other_words_is_not_a_second_sentence(tmp_path: Path, embedder: Embedder) -> None:
    # It used to be quoted twice: "…after a Singapore Airlines flight hit severe turbulence. [1]
    # …after a Singapore Airlines flight faced severe turbulence. [1]" (an article that restates
    # its lead, as a page built from wire copy does).
    line = "One person is dead and 30 are injured after a Singapore Airlines flight {} severe turbulence."
    retriever = retriever_over(tmp_path, embedder, {"a.txt": (
        f"Turbulence is getting worse\n\n{line.format('hit')}\n\nThe plane landed in Bangkok, "
        f"where ambulances met it.\n\n{line.format('faced')} Experts say such deaths are rare.\n")})
    answer = answer_question(retriever, "How many people died on the flight?")
    assert answer.answerable and answer.answer.count("severe turbulence") == 1, answer.answer
    # Nor is it a follow-up's answer, which asks for something more than the line said before.
    assert "severe turbulence" not in follow_up(retriever, answer, "Where did it land?").answer


CONTEST = ("Chestnut wins the hot dog eating contest again\n\n"
           "Joey Chestnut ate 62 hot dogs and buns in 10 minutes to win the contest on Coney Island on Tuesday.\n\n"
           "Chestnut, known to fans as Jaws, has now won the title 16 times.\n\n"
           "The contest has been held on the Fourth of July since 1972, according to the organisers.\n")
BERYL = ("Beryl batters the coast of Venezuela\n\n"
         "A Venezuelan official, Mayor Ana Ruiz, was hurt by a falling tree during Hurricane Beryl late Tuesday in Cumana.\n\n"
         "Hurricane tracker: see the projected path of the storm\n\n"
         "The storm brought heavy rain to the coast, and schools were closed across the state.\n")


@pytest.mark.parametrize(("article", "first_question", "first_says", "next_question", "next_says", "holds"), [
    # "How long did it take?" after "How many hot dogs…?" was answered with his nickname: the
    # sentence that held "in 10 minutes" had been said (a helper's chat audit).
    (CONTEST, "How many hot dogs did Joey Chestnut eat?", "62 hot dogs", "How long did it take?", "in 10 minutes", True),
    # A second count is not: "How many times has he won?" is not answered by the 62 hot dogs again.
    (CONTEST, "How many hot dogs did Joey Chestnut eat?", "62 hot dogs", "How many times has he won?", "62 hot dogs", False),
    # "When did that happen?" was answered with the page's heading: the sentence said gave "late
    # Tuesday", and a weekday was no date (the same audit).
    (BERYL, "Which Venezuelan official was hurt by a falling tree during Beryl?", "Ana Ruiz", "When did that happen?",
     "late Tuesday", True),
])
def test_a_follow_up_asking_for_another_kind_may_be_answered_by_the_sentence_said(
    tmp_path: Path, embedder: Embedder, article: str, first_question: str, first_says: str, next_question: str,
    next_says: str, holds: bool,
) -> None:
    retriever = retriever_over(tmp_path, embedder, {"article.txt": article})
    first = answer_question(retriever, first_question)
    assert first_says in first.answer, first.answer
    answer = follow_up(retriever, first, next_question)
    assert (next_says in answer.answer) is holds, answer.answer


def test_a_follow_up_asking_for_what_no_passage_holds_is_not_answered(retriever: Retriever) -> None:
    # "How tall is he?" after a question about what Ivanov said was answered with more of what he
    # said: the seeds give no height, and a follow-up asking for a measure needs one.
    first = answer_question(retriever, "What did Ivanov say about peacekeepers?")
    assert first.answerable and "Ivanov" in first.answer, first.answer
    answer = follow_up(retriever, first, "How tall is he?")
    assert not answer.answerable and answer.answer == NOT_ANSWERED, answer.answer
    assert answer.passages  # the passages found are still shown
    # A follow-up asking for what the passages do hold is answered as before.
    assert follow_up(retriever, first, "When did he say it?").answerable


CHESS = ("Chess Club Wins Title\n\n"
         "The chess club of Millbrook won the regional championship on Saturday, beating Riverside 4.5 to 3.5.\n\n"
         "The club captain, Maria Lopez, said the team had practised every evening for six months.\n\n"
         "The mayor, Tom Becker, promised a new clubhouse costing $250,000.\n")


def test_a_follow_up_asking_for_a_measure_is_not_answered_by_another_measure(tmp_path: Path, embedder: Embedder) -> None:
    # "How tall is she?" after "Who is the captain…?" was answered with the captain's sentence
    # again: "six months" passed for a height (a helper's chat audit).
    retriever = retriever_over(tmp_path, embedder, {"chess.txt": CHESS})
    first = answer_question(retriever, "Who is the captain of the chess club?")
    assert "Maria Lopez" in first.answer, first.answer
    answer = follow_up(retriever, first, "How tall is she?")
    assert not answer.answerable and answer.answer == NOT_ANSWERED, answer.answer


@pytest.mark.parametrize(("question", "sentence", "holds"), [
    ("How tall is she?", "She practised every evening for six months.", False),
    ("How tall is she?", "She stands 1.8 metres tall.", True),
    ("How old was she?", "Bessie Hendricks, 115, died on Monday.", True),
    ("How old was she?", "She walked 3 miles a day.", False),
    ("How long did it take?", "He ate them in 10 minutes.", True),
    ("How long is the bridge?", "The bridge runs 2 kilometres.", True),
    ("How fast was the car?", "It reached 120 mph.", True),
    ("How fast was the car?", "It cost 120 pounds.", False),
    ("How heavy is it?", "It weighs 3 tons.", True),
    # A share for "how high", written as news writes it; an age, never a span of time.
    ("How high did prices rise?", "Prices rose 5% last year.", True),
    ("How high did prices rise?", "Prices rose 5 per cent.", True),
    ("How high did rates rise?", "Rates rose by 0.5 percentage points.", True),
    ("How high did temperatures climb?", "Temperatures reached 40 degrees.", True),
    ("How old was he?", "The victim was John Smith, 34.", True),
    ("How old is he?", "He worked there for 3 years.", False),
    ("How old is he?", "A 34-year-old man was arrested.", True),
    ("How old is he?", "He died at the age of 90.", True),
    ("How long did it take?", "He is 34 years old.", True),
    ("What did he say?", "He ate them in 10 minutes.", False),
])
def test_a_measure_asked_for_is_given_in_its_units(question: str, sentence: str, holds: bool) -> None:
    from qa.answer import measure_asked

    measure = measure_asked(question)
    assert (measure is not None and bool(measure.search(sentence))) is holds


@pytest.mark.parametrize(("sentence", "measures"), [
    ("He ate them in 10 minutes.", True), ("It took half an hour.", True), ("a 10km run", True),
    ("It lasted eighteen months.", True), ("He won for a second year running.", False),
    ("A day to remember.", False), ("The show drew 5m viewers.", False), ("a foot soldier", False),
])
def test_a_measure_is_a_number_with_its_unit(sentence: str, measures: bool) -> None:
    # What lets a follow-up's "How long…?" be answered by the sentence said before (a review
    # found "a second year" and "$5m" let it repeat a sentence that measures nothing).
    from qa.answer import measure_asked

    measure = measure_asked("How long did it take?")
    assert measure is not None and bool(measure.search(sentence)) is measures


def test_a_question_that_names_nothing_but_he_asks_who_is_meant(retriever: Retriever) -> None:
    # It used to quote any sentence with a "he" in it ("He did not say the opposite.").
    answer = answer_question(retriever, "What did he say?")
    assert not answer.answerable and answer.citations == () and "“he”" in answer.answer
    # A question that says what it is about, or whose "he" stands for a word before it, is searched.
    assert answer_question(retriever, "What did Ivanov say about peacekeepers?").answerable
    assert unresolved_reference("Why did he resign?") is None
    # The measure asked for says neither what the question is about nor whom "he" stands for.
    assert unresolved_reference("How tall is he?") == "he"
    assert unresolved_reference("How old is she?") == "she"
    assert unresolved_reference("How old was Bessie Hendricks when she died?") is None
    assert unresolved_reference("How long does it take?") is None  # "it" often stands for nothing
    assert unresolved_reference("What do only white children pay when they go to school?") is None
    # Read as a follow-up in a chat, the turns before say who: qa.followup, not this.
    follow_up = "Who did Igor Ivanov give the informal document to? What did he say?"
    assert answer_question(retriever, "What did he say?", retrieval_query=follow_up).citations


@pytest.mark.parametrize(("sentence", "tells"), [
    ("He was hurt late Tuesday in Cumana.", True), ("On Tuesday President Biden signed it.", True),
    ("It falls on the Monday after the vote.", True), ("Black Friday sales fell.", True),
    ("The Sunday Times reported the deal.", False), ("He spoke to the Sunday Telegraph.", False),
    ("He read the Sunday Times on Monday.", True), ("After the Tuesday Senate vote, he left.", True),
    ("The Monday White House briefing was cut.", True), ("He watched the Monday Night Football game.", False),
])
def test_a_weekday_in_a_newspaper_name_is_no_day(sentence: str, tells: bool) -> None:
    # What lets a follow-up's "When did that happen?" be answered by the sentence said before; a
    # review found "the Sunday Times" let a sentence that gives no time pass for one that does.
    from qa.answer import tells_a_weekday

    assert tells_a_weekday(sentence) is tells


def test_a_month_as_news_style_writes_it_is_a_date() -> None:
    assert holds_kind("He will host every Monday beginning Feb. 12.", "date", "When will he start?")
    assert holds_kind("The vote is set for Sept. 3.", "date", "When is the vote?")
    assert not holds_kind("He will host every Monday.", "date", "When will he start?")
    assert not holds_kind("Jan Egeland said the aid would come.", "date", "When will the aid come?")


def test_a_name_that_opens_the_sentence_counts_when_the_passages_write_it_as_a_name() -> None:
    question = "Which tech company confirmed this week that it was laying off 10,000 of its employees?"
    answer = "Microsoft confirmed Wednesday it was going to lay off 10,000 people."
    other = "Around 45,000 tech employees have been laid off, reported Firstpost."
    aside = "Shares of Microsoft fell 2 percent. Thousands of workers were told on Wednesday."
    hit = Hit(1, "d1", "Layoffs", "d1.txt", 0, len(answer), answer, 1.0, sentences=((0, len(answer)),),
              sentence_scores=(((0, len(answer)), 0.5),))
    second = Hit(2, "d2", "Tech jobs", "d2.txt", 0, len(aside), aside, 0.9,
                 sentences=((0, 35), (36, len(aside))), sentence_scores=(((0, 35), 0.4), ((36, len(aside)), 0.3)))
    # "Microsoft" opens its sentence, but the other passage writes it mid-sentence: a name.
    scored = {s.text: s for s in score_sentences([hit, second], {}, question)}
    assert scored[answer].holds_kind
    assert not scored["Thousands of workers were told on Wednesday."].holds_kind
    # Read alone, an opening capital says nothing: "Thousands" and "Officials" open sentences too.
    assert not holds_kind(answer, "name", question)
    assert not holds_kind("Thousands of workers were told on Wednesday.", "name", question,
                          frozenset({"Microsoft"}))
    assert holds_kind(other, "name", question)  # "Firstpost", past the first word

def test_a_follow_up_that_asks_for_nothing_of_its_own_keeps_the_kind_of_the_turn_before() -> None:
    text = "At least 40 people died in the Chechnya fighting, officials said."
    hit = Hit(1, "d1", "Siege", "d1.txt", 0, len(text), text, 1.0, sentences=((0, len(text)),),
              sentence_scores=(((0, len(text)), 0.5),))
    before = "How many people died in the siege?"
    # "What about Chechnya?" asks for no kind of its own: the number the turn before asked for.
    kind_from = kind_question("What about Chechnya?", before)
    assert score_sentences([hit], {}, f"{before} What about Chechnya?", kind_from)[0].holds_kind
    # One that asks for its own kind is read by it: "40" is no date.
    assert not score_sentences([hit], {}, f"{before} When was it?", kind_question("When was it?", before))[0].holds_kind
    # Only the turn before counts, not an older one in the chain ("When…?" two turns back).
    assert kind_question("Why did it take so long?", "Who led the rescue?") == "Who led the rescue?"


@pytest.mark.parametrize(("second", "first"), [
    ("Two people were killed in Kyiv on Monday.", "Two people were killed in Lviv on Monday."),
    ("Prices rose 3 percent in Germany in May.", "Prices rose 5 percent in Germany in May."),
    ("Russia did not attack Ukraine, officials said.", "Russia did attack Ukraine, officials said."),
    ("At least three people died in the blast on Monday.", "At least two people died in the blast on Monday."),
    ("Kyiv was hit by drones overnight, officials said.", "Lviv was hit by drones overnight, officials said."),
])
def test_a_second_sentence_that_differs_in_the_fact_is_a_second_answer(second: str, first: str) -> None:
    # Sources that disagree on a figure, a place or a denial are both quoted.
    from qa.answer import _says_again

    assert not _says_again(second, [first])


LIGHTHOUSE = ("Lighthouse number 2 reopens after repairs\n\n"
              "The old lighthouse at Point Zebra reopened on Tuesday after eighteen months of repairs, the harbour "
              "master Wilhelmina Quartermaine said. The repairs cost $24 million and were paid for by the county.\n\n"
              "Quartermaine said the lamp can now be seen from 32 miles out to sea. Fishermen welcomed the news.\n")


def test_a_question_for_a_sum_of_money_is_answered_by_the_sentence_with_the_sum(tmp_path: Path, embedder: Embedder) -> None:
    # Any number passed for "how much … cost": the sentence naming the question's place and its
    # "eighteen months" answered, before "The repairs cost $24 million" (a helper's audit).
    retriever = retriever_over(tmp_path, embedder, {"lighthouse.txt": LIGHTHOUSE})
    answer = answer_question(retriever, "How much did the lighthouse repairs at Point Zebra cost?")
    assert answer.answer.startswith("The repairs cost $24 million"), answer.answer


@pytest.mark.parametrize(("question", "asks"), [
    ("How much did the repairs cost?", True),
    ("How much is a gold bar worth?", True),
    ("How much funding was awarded?", True),
    ("How much does Baghdad owe Russia?", True),
    # Its own noun says what is counted; a change may be a share; "of" asks for a part.
    ("How much time did the astronauts spend aboard the station?", False),
    ("How much oil does Iraq sell each day?", False),
    ("How much did advertising revenue increase?", False),
    ("How much of the budget went to schools?", False),
    ("How much rain fell?", False),
    # Found by a review: the sum's noun after a verb, a word of degree, a clause's subject.
    ("How much was the settlement?", True),
    ("How much in total did the war cost?", True),
    ("Tell me how much the club paid for him.", True),
    ("How much is the transfer fee?", True),
])
def test_a_question_for_a_sum_of_money(question: str, asks: bool) -> None:
    from qa.answer import asks_for_a_sum

    assert asks_for_a_sum(question) is asks


@pytest.mark.parametrize(("sentence", "holds"), [
    ("The repairs cost $24 million.", True),
    ("The repairs cost eight million dollars.", True),
    ("It sold for £3.2m, or Rs 500 a share, 5,000 RMB, 50 cents, 4.5 mln dollars, 5bn.", True),
    ("It reopened after eighteen months of repairs.", False),
    ("Some 5 million people live there.", False),
    # A currency's name that is another word too counts after digits only.
    ("It was a real shock when South Korea won 3 medals.", False),
    ("Smith, who in 2018 won the league, joined.", False),
    ("The 7 trains cost $75 million.", True),  # the whole figure, not the "7" the question gives
    ("The 2019 budget was 900 dollars.", True),
    ("The question's own sum, 900 dollars, again.", False),
])
def test_a_sum_of_money_as_news_writes_it(sentence: str, holds: bool) -> None:
    from qa.answer import holds_a_sum

    question = ("How much more than 900 dollars did it cost?" if "own sum" in sentence
                else "How much did the 7 trains cost?")
    assert holds_a_sum(sentence, question) is holds


def test_a_follow_up_for_time_spent_is_not_taken_for_money(tmp_path: Path, embedder: Embedder) -> None:
    # "spend" made it a question for money, and the follow-up, which no "$" answered, was refused:
    # "They spent 186 days aboard the station" had answered it before (a review's finding).
    retriever = retriever_over(tmp_path, embedder, {"station.txt": (
        "Astronauts return to Earth\n\nThe two astronauts returned to Earth on Tuesday, landing off the coast "
        "of Florida. They spent 186 days aboard the International Space Station.\n")})
    first = answer_question(retriever, "When did the astronauts return to Earth?")
    answer = follow_up(retriever, first, "How much time did they spend aboard the station?")
    assert "186 days" in answer.answer, answer.answer
