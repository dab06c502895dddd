"""The offline answer on small, real collections: easy questions are answered, not refused, and an
answer is never a question. Real model, real files, the default (extractive) answer.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from qa.answer import NOT_ANSWERED, answer_question, expected_kind, holds_kind, is_not_an_answer, yes_or_no_asked
from qa.embed import Embedder
from qa.indexer import update_index
from qa.retrieve import Retriever, open_retriever
from qa.spelling import corrected_query
from qa.text import sentence_stems

from conftest import retriever_over

SEEDS = Path(__file__).resolve().parent.parent / "seeds"

QUAKE = """Earthquake shakes Portugal's Alentejo coast

A magnitude 5.3 earthquake struck off the coast of Portugal early on Tuesday. Its epicentre was about
30 kilometres west of the port town of Sines, at a depth of 17 kilometres, the Portuguese Institute for
Sea and Atmosphere said. No injuries or damage were reported.
"""

QUIZ = """News quiz: how well did you follow this week's headlines?

Test yourself on the week's news. A winning Powerball ticket worth $842 million was sold this week in which
state? Which film won the top prize at the Berlin festival? Which country's parliament voted to ban
smartphones in schools? Answers are at the bottom of the page.
"""

LOTTERY = """Michigan ticket wins $842 million Powerball jackpot

A single ticket sold in Michigan matched all six numbers in Monday's drawing and won the $842 million
Powerball jackpot, lottery officials said. The ticket was bought at a petrol station in the suburbs of
Detroit. The winner has not yet come forward.
"""


@pytest.fixture(scope="module")
def small_collection(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder) -> Iterator[Retriever]:
    """The two seed articles plus the earthquake report, the quiz page and the lottery story."""
    folder = tmp_path_factory.mktemp("small") / "articles"
    shutil.copytree(SEEDS, folder)
    (folder / "sines-quake.txt").write_text(QUAKE, encoding="utf-8")
    (folder / "news-quiz.txt").write_text(QUIZ, encoding="utf-8")
    (folder / "powerball.txt").write_text(LOTTERY, encoding="utf-8")
    index_dir = folder.parent / "index"
    update_index(index_dir, [folder], embedder=embedder)
    retriever = open_retriever(index_dir, embedder=embedder)
    yield retriever
    retriever.store.close()


# Questions written here about facts each article states in one sentence, asked mostly in words the
# article does not use. The one marked still fails (issue 14 stays open for it): answered from the
# sentence before the right one. strict: the day it passes, the mark must go.
PARAPHRASED = [
    ("Which American diplomat did the Russian minister hand the proposal to?", "Madeleine Albright"),
    ("Who speaks for the State Department?", "James Rubin"),
    ("In what city did the Russian and American envoys meet?", "Istanbul"),
    ("Since when have there been no weapons inspections in Iraq?", "December"),
    ("Where was the Russian army holding drills?", "Astrakhan"),
    pytest.param("Who speaks for Russia's Foreign Ministry?", "Yakovenko",
                 marks=pytest.mark.xfail(strict=True, reason="answered from the sentence before the right one")),
    ("How much money does Iraq owe Moscow?", "$8 billion"),
    ("Which Russian leader was going to travel to America?", "Putin"),
    ("How deep was the earthquake near Sines?", "17 kilometres"),
    ("Where was the epicentre of the quake?", "Sines"),
    ("How strong was the tremor in Portugal?", "5.3"),
]


@pytest.mark.parametrize(("question", "expected"), PARAPHRASED)
def test_an_easy_question_in_other_words_is_answered(small_collection: Retriever, question: str, expected: str) -> None:
    answer = answer_question(small_collection, question)
    assert answer.answer != NOT_ANSWERED, question
    assert expected in answer.answer


def test_a_quiz_question_is_not_quoted_as_the_answer(small_collection: Retriever) -> None:
    question = "A winning Powerball ticket worth $842 million was sold this week in which state?"
    answer = answer_question(small_collection, question)
    assert answer.answerable
    assert "?" not in answer.answer
    assert "Michigan" in answer.answer


def test_an_off_topic_question_is_still_declined(small_collection: Retriever) -> None:
    answer = answer_question(small_collection, "What is the boiling point of liquid nitrogen?")
    assert answer.answer == NOT_ANSWERED


def test_a_string_of_nonsense_is_declined_beside_an_emoji(tmp_path: Path, embedder: Embedder) -> None:
    # A pasted hash of 101 letters reads as the model's unknown token, as an emoji does: it was
    # answered with the one sentence holding an emoji.
    folder = tmp_path / "articles"
    folder.mkdir()
    (folder / "cafe.md").write_text("Cafe wins award\n\nThe cafe 🦓 won the regional award on Monday.\n", encoding="utf-8")
    (folder / "tram.txt").write_text(
        "Tram line opens\n\nThe new tram line in Nantes opened on Monday with free rides for a week.\n", encoding="utf-8")
    update_index(tmp_path / "index", [folder], embedder=embedder)
    retriever = open_retriever(tmp_path / "index", embedder=embedder)
    try:
        for question in ("x" * 101, "ab" * 100, "Which cafe won the regional award?"):
            answer = answer_question(retriever, question)
            assert answer.answerable == question.startswith("Which"), (question[:20], answer.answer)
    finally:
        retriever.store.close()


def test_a_question_only_a_quiz_asks_is_declined(small_collection: Retriever) -> None:
    # The quiz page holds the question and not its answer; the sentence after the question
    # ("Answers are at the bottom of the page.") once took on its words and was quoted.
    answer = answer_question(small_collection, "Which country banned smartphones in schools?")
    assert answer.answer == NOT_ANSWERED


# Questions with a word typed wrong, each one edit from the article's spelling of it.
MISTYPED = [
    ("Who speaks for the State Departmnet?", "James Rubin", "Department"),  # refused as typed
    ("Which Rusian leader was going to visit the United States?", "Putin", "Russian"),
    ("How deep was the earthqauke near Sinse?", "17 kilometres", "earthquake near Sines"),
]


@pytest.mark.parametrize(("question", "expected", "read_as"), MISTYPED)
def test_a_mistyped_word_is_read_as_the_articles_spell_it(small_collection: Retriever, question: str,
                                                          expected: str, read_as: str) -> None:
    answer = answer_question(small_collection, question)
    assert expected in answer.answer
    # The answer says how the question was read, so the user sees the correction.
    assert answer.understood_as is not None and read_as in answer.understood_as


def test_a_real_word_the_articles_lack_is_left_as_typed(small_collection: Retriever) -> None:
    store = small_collection.store
    # "giver" is one edit from "river" and "given", but English knows it: not a typo.
    assert corrected_query("Who was the giver of the proposal?", store) is None
    assert corrected_query("What is the boiling point of liquid nitrogen?", store) is None
    answer = answer_question(small_collection, "What is the boiling point of liquid nitrogen?")
    assert answer.answer == NOT_ANSWERED and answer.understood_as is None


@pytest.mark.parametrize(
    ("question", "kind"),
    [("How deep was the earthquake?", "number"), ("How many people died?", "number"),
     ("When did the talks end?", "date"), ("In what year was it built?", "date"),
     ("Where was the epicentre?", "place"), ("Who won the election?", "name"),
     ("Why did Russia object?", None)],
)
def test_the_form_of_a_question_says_what_it_asks_for(question: str, kind: str | None) -> None:
    assert expected_kind(question) == kind


def test_a_sentence_holds_the_kind_only_with_something_the_question_lacks() -> None:
    assert holds_kind("The quake was 17 kilometres deep.", "number", "How deep was the quake?")
    assert not holds_kind("The quake struck 17 kilometres deep.", "number", "Was the quake 17 kilometres deep?")
    assert holds_kind("It was signed in March 1998.", "date", "When was it signed?")
    assert holds_kind("The prize went to Jane Smith.", "name", "Who won the prize?")
    assert not holds_kind("Officials said the prize was awarded.", "name", "Who won the prize?")


def test_questions_and_restatements_are_not_answers() -> None:
    asked = sentence_stems("Which state was the winning ticket sold in?")
    assert is_not_an_answer("The ticket was sold in which state?", asked)
    assert is_not_an_answer("The winning ticket was sold.", asked)
    assert not is_not_an_answer("The winning ticket was sold in Michigan.", asked)
    # A credit alone: "Who is its CEO?" in a chat was answered "– Reuters". A word alone may be the
    # answer: a quiz page's "Staffordshire" for "…in which county?".
    assert is_not_an_answer("– Reuters", sentence_stems("Who is its CEO?"))
    assert is_not_an_answer("— Associated Press", sentence_stems("Who is its CEO?"))
    assert not is_not_an_answer("Satya Nadella.", sentence_stems("Who is its CEO?"))
    assert not is_not_an_answer("Staffordshire", sentence_stems("The pub closed in which county?"))
    assert not is_not_an_answer("- Staffordshire", sentence_stems("The pub closed in which county?"))  # a list's item
    # A photo's credit names the photographer, not who the caption is about.
    assert is_not_an_answer("Pavel Mikheyev/Reuters", sentence_stems("Who walked the dog?"))
    assert is_not_an_answer("Cole Burston/The Canadian Press/AP", sentence_stems("Who led the protest?"))
    assert not is_not_an_answer("Tamara Lich/Pat King led the protest.", sentence_stems("Who led the protest?"))


def test_a_restatement_that_denies_what_is_asked_answers_it() -> None:
    # "Dogs: Not allowed" was left out as the question's own words, and "Are dogs allowed…?" was
    # refused with the line in the first passage (a helper's audit).
    question = "Are dogs allowed at the pond?"
    asked, yes_or_no = sentence_stems(question), yes_or_no_asked(question)
    assert not is_not_an_answer("Dogs: Not allowed", asked, yes_or_no)
    assert not is_not_an_answer("Dogs aren't allowed at the pond.", asked, yes_or_no)
    assert is_not_an_answer("Dogs are allowed at the pond.", asked, yes_or_no)
    assert is_not_an_answer("Not only dogs are allowed.", asked, yes_or_no)  # "not only" denies nothing
    # Only a yes-or-no question that does not deny is answered so; a follow-up is read by its last question.
    assert yes_or_no_asked("Where is the pond? Are dogs allowed?")
    for asked in ("Was the U.S. team in the final?", "Did Mr. Smith resign?", "And is the pond open?",
                  "So, are dogs allowed?"):  # abbreviations and a word joining it to the chat (review)
        assert yes_or_no_asked(asked), asked
    for other in ("Why are dogs not allowed at the pond?", "Aren't dogs allowed at the pond?", "Where are dogs allowed?",
                  "Are dogs allowed? Where is the pond?"):
        assert not yes_or_no_asked(other), other
    assert is_not_an_answer("The winning ticket was not sold.", sentence_stems("Where was the winning ticket sold?"),
                            yes_or_no_asked("Where was the winning ticket sold?"))


def test_a_pond_without_dogs_is_said_so(tmp_path: Path, embedder: Embedder) -> None:
    retriever = retriever_over(tmp_path, embedder, {"pond.txt": (
        "Hiking in RI: At Trustom Pond in South Kingstown, wildlife rules\n\n"
        "Two birders, as still as stone, peered through binoculars at cormorants perched on a rock in the pond.\n\n"
        "Access: Take Route 1 to Moonstone Beach Road and turn right to the refuge entrance.\n\n"
        "Parking: Available in two lots at the trailhead.\n\nDogs: Not allowed\n\nHours: Sunrise to sunset.\n")})
    answer = answer_question(retriever, "Are dogs allowed at Trustom Pond?")
    assert answer.answerable and answer.answer.startswith("Dogs: Not allowed"), answer.answer


FLOODS = """Floods close roads across South Texas

Heavy rain flooded dozens of roads across South Texas on Monday, and schools in three counties
closed for the day, the county emergency office said.

More: Mexico elects first female president, Claudia Sheinbaum declared winner in historic election

Forecasters expect more rain through Wednesday, with up to four inches in places.
"""

ELECTION = """Sheinbaum wins presidency

Claudia Sheinbaum, a former mayor of the capital, won the presidential election on Sunday by a wide
margin, according to the electoral institute's quick count. She will take office in October as the
first woman to lead the country, Mexico.
"""


def test_a_link_to_another_story_is_not_quoted_as_an_answer(tmp_path: Path, embedder: Embedder) -> None:
    # News pages set links to other stories between paragraphs ("More: …", "READ MORE: …"); their
    # words are another page's headline, and the page they sit in does not tell that story.
    assert is_not_an_answer("More: Mexico elects first female president", sentence_stems("Who won?"))
    assert is_not_an_answer("READ MORE:Storms batter the coast", sentence_stems("What hit the coast?"))
    assert is_not_an_answer("Related: How the vote was counted", sentence_stems("How was the vote counted?"))
    assert not is_not_an_answer("More than 40 roads were closed.", sentence_stems("How many roads closed?"))
    assert not is_not_an_answer("Opinion: the count was fair, the judge wrote.", sentence_stems("What did the judge write?"))
    # A field's label and its value are an answer ("What ages is it recommended for?").
    assert not is_not_an_answer("Recommended: ages 6 and up.", sentence_stems("What ages is it recommended for?"))
    assert not is_not_an_answer("Watch: Saturday at 3 p.m. on BBC One", sentence_stems("When can I watch it?"))
    assert is_not_an_answer("Don’t miss: the harbour's new ferry", sentence_stems("What is new at the harbour?"))
    # The link is not quoted from a page that only links the story (whether another of its
    # sentences is quoted instead is the judgment's call), nor beside the page that tells it.
    question = "Which country elected Claudia Sheinbaum as its first female president?"
    (tmp_path / "linked").mkdir()
    (tmp_path / "both").mkdir()
    retriever = retriever_over(tmp_path / "linked", embedder, {"floods.txt": FLOODS})
    try:
        assert "More:" not in answer_question(retriever, question).answer
    finally:
        retriever.store.close()
    retriever = retriever_over(tmp_path / "both", embedder, {"floods.txt": FLOODS, "election.txt": ELECTION})
    try:
        answer = answer_question(retriever, question)
    finally:
        retriever.store.close()
    assert answer.answerable
    assert "More:" not in answer.answer
    assert all(citation.path.endswith("election.txt") for citation in answer.citations)
