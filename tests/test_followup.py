"""Follow-up detection and the query it produces: pure text, no model."""

from __future__ import annotations

import pytest

from qa.followup import Conversation, is_follow_up


@pytest.mark.parametrize(
    "question",
    ["And what did he say about Iraq?", "when was that?", "Why?", "What about Chechnya?", "his reasons?"],
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
