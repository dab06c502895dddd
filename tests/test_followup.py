"""Follow-up detection and the query it produces: pure text, no model."""

from __future__ import annotations

import pytest

from qa.followup import Conversation, is_follow_up, shares_a_name, topic_share, topic_stems


@pytest.mark.parametrize(
    "question",
    ["And what did he say about Iraq?", "when was that?", "Why?", "What about Chechnya?", "his reasons?",
     "Who else will host the show?"],
)
def test_referring_or_short_questions_are_follow_ups(question: str) -> None:
    assert is_follow_up(question)


@pytest.mark.parametrize(
    "question",
    ["Who did Igor Ivanov give the informal document to?", "How much does Baghdad owe Russia?"],
)
def test_self_contained_questions_are_not(question: str) -> None:
    assert not is_follow_up(question)


def test_conversation_expands_follow_up_with_previous_turn_and_forgets() -> None:
    conversation = Conversation()
    assert conversation.contextualize("And when was that?") is None  # nothing to lean on yet
    conversation.record("Who did Igor Ivanov give the informal document to?")
    assert conversation.contextualize("And when was that?") == (
        "Who did Igor Ivanov give the informal document to? And when was that?"
    )
    assert conversation.contextualize("How much does Baghdad owe Russia?") is None
    conversation.forget()
    assert conversation.contextualize("And when was that?") is None


def test_an_unanswered_question_is_not_context_for_the_next() -> None:
    # Tried as a new user would: an off-topic question, then a question about the articles.
    conversation = Conversation()
    conversation.record("What is the capital of Australia?", answered=False)
    assert conversation.contextualize("Who vetoed the resolution?") is None
    conversation.record("Who vetoed the resolution?", answered=True)
    assert conversation.contextualize("When was that?") == "Who vetoed the resolution? When was that?"
    assert conversation.history() == ["Who vetoed the resolution?"]


def test_an_unanswered_follow_up_leaves_the_subject_as_it_was() -> None:
    # "When did he say it?" after a follow-up the articles did not answer was asked back "Who is
    # he?": the chat had dropped Ivanov with the unanswered turn (this stop's chat check).
    conversation = Conversation()
    conversation.record("What did Ivanov say about peacekeepers?", answered=True)
    asked = "How tall is he?"
    searched = conversation.contextualize(asked)
    assert searched == "What did Ivanov say about peacekeepers? How tall is he?"
    conversation.record(asked, answered=False, understood=searched, standalone=False)
    assert conversation.contextualize("When did he say it?") == "What did Ivanov say about peacekeepers? When did he say it?"
    # An unanswered question that stood on its own is still no context.
    conversation.record("What is the capital of Australia?", answered=False)
    assert conversation.contextualize("When was that?") is None


@pytest.mark.parametrize("question", ["Who is Albright?", "What is Interfax?", "Who is Madeleine Albright?", "Where is NATO?",
                                      "Where is China?", "Where is London?"])
def test_a_short_question_that_names_something_stands_alone(question: str) -> None:
    # Once glued to the question before, "Who is Albright?" after the Baghdad question got the
    # debt answer again.
    assert not is_follow_up(question)
    conversation = Conversation()
    conversation.record("How much does Baghdad owe Russia?")
    assert conversation.contextualize(question) is None


def test_a_chain_of_follow_ups_keeps_its_subject_and_stays_short() -> None:
    conversation = Conversation()
    conversation.record("Who did Igor Ivanov give the informal document to?")
    follow_ups = [f"And what did he say about item {n} then?" for n in range(40)]
    for asked in follow_ups:
        understood = conversation.contextualize(asked)
        assert understood is not None and understood.endswith(asked)
        # The subject, at most the turn before, and the question: never the whole chat.
        assert understood.startswith("Who did Igor Ivanov give the informal document to?")
        assert understood.count("?") <= 3
        conversation.record(asked, understood=understood)
    assert conversation.history()[-1] == conversation.turns[-1].searched
    last = "And where did he say the Russian military maneuvers took place?"
    assert conversation.contextualize(last) == (
        f"Who did Igor Ivanov give the informal document to? {follow_ups[-1]} {last}"
    )


def test_a_follow_up_query_fits_the_search_and_keeps_the_question_whole() -> None:
    from qa.retrieve import MAX_QUERY_CHARS, clean_query
    from qa.service import MAX_QUESTION_CHARS

    assert MAX_QUESTION_CHARS == MAX_QUERY_CHARS
    conversation = Conversation()
    subject = "Who signed the treaty " + "and the accord " * 60 + "in Porto?"
    conversation.record(subject)
    conversation.record("And where did they " + "meet " * 120 + "?")
    question = "And when was that " + "exactly " * 100 + "?"
    understood = conversation.contextualize(question)
    # Subject, turn before and question run past the limit: the turn before gives way first.
    assert understood == f"{subject} {question}"
    assert len(understood) <= MAX_QUERY_CHARS and clean_query(understood) == understood
    # A question that leaves no room for its context is searched as asked.
    assert conversation.contextualize("And then " + "what " * 398 + "?") is None


def test_a_common_capitalised_word_is_no_name_and_a_turn_searched_alone_is_the_next_subject() -> None:
    assert is_follow_up("How many in May?") and is_follow_up("What in March?")
    assert is_follow_up("What happened on Monday?") and is_follow_up("Who is the President?")
    assert is_follow_up("What did the Minister say?") and not is_follow_up("What did the Kremlin say?")


def test_an_and_question_that_names_its_own_subject_stands_alone_and_a_repeat_is_asked_anew() -> None:
    assert not is_follow_up("And what did Ivanov say about peacekeepers?")
    assert is_follow_up("And what did he say about Iraq?") and is_follow_up("What about Putin?")
    conversation = Conversation()
    conversation.record("Who is the port director?")
    assert conversation.contextualize("Who is the  port director?") is None
    conversation = Conversation()
    conversation.record("Who signed the treaty in Porto?")
    # Too long to be read with the turn before, it was searched alone: it is the subject now.
    long = "And where " + "exactly " * 246 + "?"
    assert conversation.contextualize(long) is None
    conversation.record(long)
    assert conversation.contextualize("When was that?") == f"{' '.join(long.split())} When was that?"
    # A turn searched as a model rewrote it is the subject as rewritten.
    conversation.record("And the second one?", understood="Who signed the second treaty in Porto?", standalone=True)
    assert conversation.contextualize("Why?") == "Who signed the second treaty in Porto? Why?"


def test_the_words_a_follow_up_asks_about_are_its_rare_ones() -> None:
    assert topic_stems("Who is the mayor?") == {"mayor"}
    assert topic_stems("And when did it happen?") == set()  # asks of the turn before only
    assert topic_stems("How much will the bridge cost?") == {"bridg"}
    assert topic_share("Who is the mayor?", ["Club captain Maria Lopez won."]) == 0.0
    assert topic_share("Who is the mayor?", ["Mayor Daniel Okafor said so."]) == 1.0
    assert topic_share("What about the bridge and the mayor?", ["The bridge opens."]) == 0.5
    assert topic_share("Why?", []) == 1.0
    # News style writes a title short before a name, with a stop; "Dr Pepper" is no doctor.
    assert topic_share("What did the governor say?", ["Gov. Gavin Newsom said so."]) == 1.0
    assert topic_share("What did the doctor say?", ["Dr. Ana Silva said so."]) == 1.0
    assert topic_share("What did the doctor say?", ["Dr Pepper sales rose."]) == 0.0
    assert topic_share("What did the governor say?", ["Lt. Gov. Eleni Kounalakis said so."]) == 0.0


def test_an_answer_about_the_chats_subject_names_something_the_chat_did() -> None:
    assert shares_a_name(["The Riverton Chess Club won the regional title."], ["The Riverton council voted 5 to 2."])
    # A sentence's first word is no name ("Fans cheered."), nor a word the passage does not
    # capitalise ("the Premier League championship").
    assert not shares_a_name(["The darts final ended late. Fans cheered."], ["Fans of Manchester City cheered."])
    assert not shares_a_name(["Who won the World Darts Championship final?"],
                             ["Manchester City won the Premier League championship."])
    # A title's stop ends no sentence: "Dr. Fauci" is a name after it.
    assert shares_a_name(["Who is Dr. Fauci? Dr. Fauci said masks work."], ["Dr. Fauci told reporters so."])


def test_the_questions_a_follow_up_was_read_with_as_typed() -> None:
    # What a checked answer may repeat unchecked: the user's words in the questions the follow-up
    # leans on, not every question of the chat (an unrelated turn's "1998" was let through).
    chat = Conversation()
    chat.record("What happened in Moscow in 1998?")
    chat.record("Who leads Iraq?")
    chat.record("What does Moscow want from Iraq?", understood="What does Moscow want from Iraq now?")
    assert chat.typed_context("How much does it owe?", by_model=False) == ["What does Moscow want from Iraq?"]
    # A model rewriting it was shown the last three answered questions.
    chat.record("Is that new?", answered=False)
    assert chat.typed_context("How much does it owe?", by_model=True) == [
        "What happened in Moscow in 1998?", "Who leads Iraq?", "What does Moscow want from Iraq?"]
    chat.record("And Syria?")
    assert "What happened in Moscow in 1998?" not in chat.typed_context("How much does it owe?", by_model=True)
