"""Follow-up questions in a chat: what to search for when a question leans on the previous turn.

"And what did he say about Iraq?" names nobody; searched alone it finds any "he". A short or
referring question is searched together with the question before it, and the answer then says
how it was understood. Pure text logic, no model.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from qa.retrieve import MAX_QUERY_CHARS
from qa.text import MONTH_NAMES, SPOKEN_WORD, WEEKDAY_NAMES, content_words, query_terms, stems, titles_spelled_out, zipf

# Words that point back at something said before.
_REFERRING = frozenset(
    "he she it they him her them his hers its their theirs this that these those there then "
    "such former latter else".split()  # "Who else will host the show?"
)
# Those that stand for someone named before ("this", "there" may point at the page; "his", "its"
# often at a name in the same question: "the university's first president … his"; "it" often at
# nothing: "How long does it take?", "Is it safe to fly?").
PERSONAL_PRONOUNS = frozenset("he she they him her them".split())
_CONTINUATIONS = ("and ", "but ", "also ", "so ", "what about", "how about", "and?", "why?", "when?")
_ABOUT = ("what about", "how about")
# A question with this many content words or fewer is too thin to stand on its own, unless it
# names something ("Who is Albright?", "What is Interfax?"): a new name is a new subject.
_SHORT_QUESTION_TERMS = 2
# A capitalised word this common in English (Zipf scale, qa.text.zipf) is no name: "I" 7.09,
# "State" 5.78, "President" 5.45; "London" 5.27, "China" 5.1, "Russia" 4.93, "NATO" 4.01 are. Between
# 5.0 and 5.3 places ("Washington" 5.08, "India" 5.04) outnumber the capitalised everyday words a
# question uses ("King" 5.17), and months, days and the like are known by name instead.
COMMON_WORD_ZIPF = 5.3
_AFTER_THE_ZIPF = 5.0
# Capitalised, and common, but no subject of their own: "How many in May?", "What happened on Monday?".
_NO_NAMES = frozenset(
    MONTH_NAMES + WEEKDAY_NAMES + tuple("today tonight yesterday tomorrow ok okay tv mr mrs ms dr st".split())
)


def is_follow_up(question: str) -> bool:
    """Whether a question seems to lean on the previous one.

    >>> is_follow_up("And what did he say about Iraq?"), is_follow_up("Who leads Russia's army?")
    (True, False)
    """
    lowered = question.strip().lower()
    words = SPOKEN_WORD.findall(lowered)
    if any(word in _REFERRING for word in words):
        return True
    short = len(query_terms(question)) <= _SHORT_QUESTION_TERMS
    if lowered.startswith(_CONTINUATIONS):
        # "And what did Ivanov say about peacekeepers?" names its own subject and asks a whole
        # question: the "and" only joins it to the chat. "What about Putin?" leans on the turn before.
        return short or lowered.startswith(_ABOUT) or not names_something(question)
    return short and not names_something(question)


# A question word rarer than this in English (Zipf) says what the question is about ("mayor" 4.62,
# "bridge" 4.77, "Iraq" 4.43); a commoner one asks how or when ("happen" 5.19, "cost" 5.24, "say"
# 5.89), which a sentence about the subject of the chat may word otherwise.
_TOPIC_WORD_ZIPF = 5.0


def topic_stems(question: str) -> frozenset[str]:
    """The stems of the words that say what a question is about, as against how it asks.

    >>> sorted(topic_stems("How much will the new bridge cost?")), sorted(topic_stems("And when did it happen?"))
    (['bridg'], [])
    """
    return frozenset(stems([t for t in query_terms(question) if t not in _REFERRING and zipf(t) < _TOPIC_WORD_ZIPF]))


def topic_share(question: str, passages: Sequence[str]) -> float:
    """The share of the words that say what `question` is about (topic_stems) that `passages` hold;
    1.0 when it has none. A follow-up whose answer rests on passages holding none of them may have
    been read wrongly with the turns before: "Who is the mayor?" after a question about a town's
    chess club was searched with the club's words and answered with its captain.

    >>> topic_share("Who is the mayor?", ["The club captain won."]), topic_share("Why?", [])
    (0.0, 1.0)
    """
    wanted = topic_stems(question)
    if not wanted:
        return 1.0  # "And when did it happen?" asks only of the turn before
    # A title the passages write short counts as written out: "Gov. Gavin Newsom" for "the governor".
    words = [word for text in passages for word in [*content_words(text), *titles_spelled_out(text)]]
    held = wanted.intersection(stems(words))
    return len(held) / len(wanted)


def names_something(question: str) -> bool:
    """Whether the question gives a name: a capitalised word past its first, or an acronym, that
    English does not use every day and that is no month or day ("I", "May", "OK" are no names:
    "How many in May?").

    >>> names_something("Who is Albright?"), names_something("How many in May?"), names_something("Where is China?")
    (True, False, True)
    """
    return bool(named_words(question))


def named_words(text: str) -> list[str]:
    """The words `text` names things with, lower-cased (as names_something reads them):
    ``"The Riverton Chess Club won." -> ["riverton", "chess", "club"]``."""
    words = SPOKEN_WORD.findall(text)
    named = [(n, word) for n, word in enumerate(words) if (n and word[:1].isupper()) or (len(word) > 1 and word.isupper())]
    # After "the", a capitalised everyday word is a title or a body ("the Minister", "the Council",
    # "the King"), which the turn before named; a rarer one is a name ("the Kremlin", "the Pentagon").
    return [word.lower() for n, word in named
            if zipf(word.lower()) < (_AFTER_THE_ZIPF if n and words[n - 1].lower() == "the" else COMMON_WORD_ZIPF)
            and word.lower() not in _NO_NAMES]


def shares_a_name(context: Sequence[str], passages: Sequence[str]) -> bool:
    """Whether `passages` name something that `context` (the chat's turns, its last answer) names:
    an answer about the chat's subject does ("The Riverton town council…" after "The Riverton
    Chess Club won…"), an answer from another story does not (a football score after a darts
    final). A name is read as names_something reads one, in each sentence apart, so that a
    sentence's first word ("Fans cheered.") is none, and on both sides: "the Premier League
    championship" does not name the "World Darts Championship"."""
    names = _names(context)
    return bool(names) and bool(names & _names(passages))


def _names(texts: Sequence[str]) -> set[str]:
    from qa.chunk import split_sentences  # the chunker's reading: "Dr. Fauci" ends no sentence

    return {word for text in texts for start, end in split_sentences(text) for word in named_words(text[start:end])}


@dataclass(frozen=True)
class Turn:
    """One question of a chat."""

    asked: str  # as typed, its spaces tidied
    searched: str  # what was searched for it: the question, a follow-up made whole, a word read right
    standalone: bool  # searched without the turns before it
    answered: bool  # whether the articles answered it


@dataclass
class Conversation:
    """The questions of a chat so far, oldest first."""

    turns: list[Turn] = field(default_factory=list)

    def contextualize(self, question: str, limit: int = MAX_QUERY_CHARS) -> str | None:
        """The query to search for a follow-up, or None when the question stands on its own.

        A follow-up is searched with the question that last stood on its own (its subject) and
        the one just before it, as they were asked: a chain of follow-ups keeps its subject and
        never grows past three questions. A question the articles did not answer is no context:
        "What is the capital of Australia?" (not in the articles) then "Who vetoed the
        resolution?" is searched as asked; an unanswered follow-up leaves the subject as it was
        ("How tall is he?" that the articles do not say, then "When did he say it?"). The query
        is at most `limit` characters, the new question always whole; the context gives way first.
        """
        question = " ".join(question.split())
        turns = self._context_turns(question)
        if not turns:
            return None
        # The subject as it was searched (a word read right, a model's rewrite), the turn since as typed.
        context = [turns[0].searched] + [turn.asked for turn in turns[1:]]
        while context and len(" ".join([*context, question])) > limit:
            context.pop()  # the turn just before goes first, then the subject
        return " ".join([*context, question]) if context else None

    def typed_context(self, question: str, by_model: bool) -> list[str]:
        """The questions, as the user typed them, that a follow-up was read with: the last three
        answered (what a model rewriting it was shown, `history`), or, `by_model` false, those
        `contextualize` leans on. Their words are the user's, which a checked answer may repeat."""
        if by_model:
            return [turn.asked for turn in self.turns if turn.answered][-3:]
        return [turn.asked for turn in self._context_turns(" ".join(question.split()))]

    def _context_turns(self, question: str) -> list[Turn]:
        """The subject turn and, when another came since, the turn just before (see
        `contextualize`); none when `question` stands on its own."""
        turns = self.turns
        while turns and not turns[-1].answered and not turns[-1].standalone:
            turns = turns[:-1]
        if not turns or not turns[-1].answered or question == self.turns[-1].asked or not is_follow_up(question):
            return []  # (a question asked again is asked anew, not of itself)
        last = max((n for n, turn in enumerate(turns) if turn.standalone), default=0)
        return [turns[last]] if last == len(turns) - 1 else [turns[last], turns[-1]]

    def record(self, asked: str, answered: bool = True, understood: str | None = None,
               standalone: bool | None = None) -> None:
        """A turn: the question as asked, whether it was answered, what was searched for it when
        that differs (a follow-up read with the turns before it, a word read as another), and
        whether it was searched without the turns before (by default: whether `contextualize`
        would have read it alone)."""
        asked = " ".join(asked.split())
        if standalone is None:
            standalone = self.contextualize(asked) is None
        self.turns.append(Turn(asked, understood or asked, standalone, answered))

    def history(self) -> list[str]:
        """The answered questions so far as searched, oldest first: what a model may read to
        rewrite a follow-up."""
        return [turn.searched for turn in self.turns if turn.answered]

    def forget(self) -> None:
        self.turns.clear()
