"""Follow-up questions in a chat: what to search for when a question leans on the previous turn.

"And what did he say about Iraq?" names nobody; searched alone it finds any "he". A short or
referring question is searched together with the question before it, and the answer then says
how it was understood. Pure text logic, no model.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from qa.text import SPOKEN_WORD, query_terms

# Words that point back at something said before.
_REFERRING = frozenset(
    "he she it they him her them his hers its their theirs this that these those there then "
    "such former latter".split()
)
_CONTINUATIONS = ("and ", "but ", "also ", "so ", "what about", "how about", "and?", "why?", "when?")
# A question with this many content words or fewer is too thin to stand on its own.
_SHORT_QUESTION_TERMS = 2


def is_follow_up(question: str) -> bool:
    """Whether a question seems to lean on the previous one.

    >>> is_follow_up("And what did he say about Iraq?"), is_follow_up("Who leads Russia's army?")
    (True, False)
    """
    lowered = question.strip().lower()
    if lowered.startswith(_CONTINUATIONS):
        return True
    words = SPOKEN_WORD.findall(lowered)
    if any(word in _REFERRING for word in words):
        return True
    return len(query_terms(question)) <= _SHORT_QUESTION_TERMS


@dataclass
class Conversation:
    """The questions of a chat so far, as they were understood, and whether the articles answered them."""

    turns: list[str] = field(default_factory=list)
    answered: list[bool] = field(default_factory=list)

    def contextualize(self, question: str) -> str | None:
        """The query to search for a follow-up, or None when the question stands on its own.

        A question the articles did not answer is no context: "What is the capital of Australia?"
        (not in the articles) then "Who vetoed the resolution?" is searched as asked.
        """
        if not self.turns or not self.answered[-1] or not is_follow_up(question):
            return None
        return f"{self.turns[-1]} {question.strip()}"

    def record(self, understood: str, answered: bool = True) -> None:
        # Keep the expanded form, so a chain of follow-ups keeps its subject.
        self.turns.append(understood)
        self.answered.append(answered)

    def history(self) -> list[str]:
        """The answered questions so far, oldest first: what a model may read to rewrite a follow-up."""
        return [turn for turn, answered in zip(self.turns, self.answered) if answered]

    def forget(self) -> None:
        self.turns.clear()
        self.answered.clear()
