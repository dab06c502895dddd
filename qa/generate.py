"""Generated answers: the user's own model server writes the answer, and code checks every sentence.

The passages are the ones `qa ask` would quote from (hybrid search with its second look). The
model gets them numbered, with the question, and is asked to end each sentence with the [n] of
the passages it rests on. Then qa.claims checks each sentence against exactly those passages; a
sentence the passages do not support is marked, never passed off as cited.

When the server fails, or the model says the passages do not answer, or no sentence it wrote is
supported, the answer is the quoted (extractive) one, with a one-line notice saying why.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from qa.answer import answer_question
from qa.claims import SUPPORTED, UNCITED, ClaimChecker
from qa.errors import LLMError
from qa.llm import model_label
from qa.retrieve import Retriever, SearchFilters
from qa.types import Answer, Citation, Claim, Hit

if TYPE_CHECKING:
    from qa.llm import ChatClient

# The prompt, in one place. Bump PROMPT_VERSION when its words change, so figures measured with one
# prompt are not compared with another's. With k=5 passages of at most PASSAGE_CHARS characters it
# stays under about 7,000 characters, some 1,800 tokens (bench/generate.py prints the largest
# prompt it sent), which leaves room for the answer in a 4k-token context.
PROMPT_VERSION = 1
SYSTEM_PROMPT = (
    "You answer questions about news articles using only the numbered passages you are given. "
    "Answer briefly, in one to three sentences. End every sentence with the number of the passage "
    "it is based on, in square brackets, like [1] or [2][3]. Do not use anything you know that the "
    "passages do not say. If the passages do not answer the question, reply only: "
    "The passages do not answer this."
)
PASSAGE_CHARS = 1200
MAX_ANSWER_TOKENS = 200
CONDENSE_PROMPT = (
    "Rewrite the last question so that it can be understood without the conversation before it: "
    "replace words like he, it or that with what they refer to. Reply with the rewritten question only."
)
# What a model writes when it declines.
_DECLINES = re.compile(
    r"\b(?:passages?|articles?|context|text)s? (?:do|does|did) not (?:answer|say|mention|contain|provide|state)"
    r"|\bnot (?:mentioned|stated|provided|answered) in the (?:passages?|articles?|context)"
    r"|\b(?:no|not enough) information\b|\bcannot (?:answer|find|determine)\b|\bI (?:don't|do not) know\b"
    # SmolLM2's way: "…but it does not provide the answer to your question."
    r"|\b(?:does|do|did)(?: not|n't) (?:provide|give|contain|include) (?:the|an|any) (?:answer|information)\b",
    re.IGNORECASE,
)

TokenCallback = Callable[[str], None]
# Control characters but tab and line ends: an escape sequence a model writes ("\x1b[31m") would
# reach the terminal as a command (rich passes ESC through), and no answer needs one.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
# ECMA-48's escape sequences: CSI ("\x1b[31m"), OSC ("\x1b]0;title\x07", cut at a line's end when
# it has no end of its own, not the rest of the answer), a character set chosen ("\x1b(B"), and
# ESC with one character.
_ESCAPE_SEQUENCE = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b\n]*(?:\x07|\x1b\\)?|\x1b[ -/][ -~]|\x1b[ -~]")


def build_messages(question: str, passages: Sequence[Hit]) -> list[dict[str, str]]:
    """The chat messages for a question and its numbered passages (prompt version PROMPT_VERSION)."""
    blocks = []
    for n, hit in enumerate(passages, start=1):
        text = " ".join(hit.text.split())
        if len(text) > PASSAGE_CHARS:
            text = text[:PASSAGE_CHARS].rsplit(" ", 1)[0] + " …"
        dated = f" ({hit.date})" if hit.date else ""
        blocks.append(f"[{n}] {hit.title}{dated}\n{text}")
    user = "Passages:\n\n" + "\n\n".join(blocks) + f"\n\nQuestion: {question}"
    return [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": user}]


def declines(text: str) -> bool:
    """Whether a model's answer says the passages do not answer: ``"The passages do not answer this." -> True``."""
    return bool(_DECLINES.search(text))


def generate_answer(
    retriever: Retriever,
    client: ChatClient,
    question: str,
    k: int = 5,
    mode: str = "hybrid",
    filters: SearchFilters | None = None,
    retrieval_query: str | None = None,
    on_token: TokenCallback | None = None,
    user_words: str | None = None,
) -> Answer:
    """Retrieve passages, have the model answer from them, and check each sentence it wrote.

    `user_words` is what the user typed, when the question searched is not theirs (a chat's
    follow-up rewritten by the model): the facts it states need no passage to hold them (see
    `answer_from_text`).

    Tokens go to `on_token` as they arrive. Ctrl-C (KeyboardInterrupt) while the model writes stops
    it and keeps what came. A server failure gives the quoted answer with a notice naming the URL.
    The three steps are also called one by one (qa.service), so that the index is not held while
    a model server writes.
    """
    quoted = answer_question(retriever, question, k, mode, filters, retrieval_query)
    written = model_writes(client, quoted, on_token)
    return written if isinstance(written, Answer) else checked_answer(retriever, quoted, written, user_words)


@dataclass(frozen=True)
class Written:
    """What a model wrote from a quoted answer's passages, and whether Ctrl-C stopped it."""

    model: str
    text: str
    stopped: bool


def model_writes(client: ChatClient, quoted: Answer, on_token: TokenCallback | None = None) -> Written | Answer:
    """The model's text from the passages of `quoted` (`qa ask`'s answer, answer_question); or,
    when there are none or the server fails, `quoted` with a notice saying why. Reads nothing
    from the index."""
    if not quoted.passages:
        return replace(quoted, notice="no passages were found, so the model was not asked")
    try:
        model = client.resolve_model()
        # The model is asked the question as searched (a follow-up or a mistyped word read anew).
        searched = quoted.understood_as or quoted.question
        text, stopped = _stream(client, build_messages(searched, quoted.passages), on_token)
    except LLMError as exc:
        return replace(quoted, model=client.model,
                       notice=f"{str(exc).rstrip('.')}; showing the quoted answer instead")
    except KeyboardInterrupt:
        return replace(quoted, model=client.model,
                       notice="stopped before the model wrote anything; showing the quoted answer instead")
    return Written(model, text, stopped)


def checked_answer(retriever: Retriever, quoted: Answer, written: Written, user_words: str | None = None) -> Answer:
    """`written` checked sentence by sentence against `quoted`'s passages (the token aligner reads them)."""
    return answer_from_text(quoted, written.text, written.model, ClaimChecker(retriever.aligner()), written.stopped,
                            user_words)


def answer_from_text(quoted: Answer, text: str, model: str, checker: ClaimChecker, stopped: bool = False,
                     user_words: str | None = None) -> Answer:
    """The answer a model's text makes once each sentence is checked against `quoted.passages`:
    the supported sentences with their [n], or else `quoted` (the extractive answer) with a notice.

    The numbers, dates and names the user stated may be repeated without a passage holding them:
    those of `user_words` when given, else of the question as qa read it (a word respelled, a
    follow-up joined to the questions before it, all the user's words). Never a model's rewrite's:
    "How much does it owe?" rewritten "How much did Baghdad owe Russia in 1998?" let "In 1998,
    Baghdad owed Russia $8 billion" pass against a passage that gives no year.
    """
    hits = list(quoted.passages)
    stop_note = "generation stopped; " if stopped else ""
    named = model_label(model)
    if not text.strip():
        why = "stopped before the model wrote anything" if stopped else f"{named} wrote nothing"
        return replace(quoted, model=model, notice=f"{why}; showing the quoted answer instead")
    claims = tuple(checker.check_answer(text, hits, user_words or quoted.understood_as or quoted.question))
    supported = [c for c in claims if c.verdict == SUPPORTED]
    if not supported:
        if declines(text):
            why = f"{named} says the passages do not answer this"
        elif all(c.verdict == UNCITED for c in claims):
            why = f"no sentence {named} wrote cites a passage"
        else:
            why = f"no sentence {named} wrote is supported by a passage it cites"
        instead = "; showing the quoted answer instead" if quoted.answerable else ""
        return replace(quoted, model=model, claims=claims, notice=f"{stop_note}{why}{instead}")
    # What a script reads as the answer holds only what the passages support; `claims` has it all.
    # Its [n] are the passages that hold its evidence: one the model cited that says none of it is
    # not shown as a source (the claims keep every [n] it wrote).
    shown = " ".join(f"{c.text} " + "".join(f"[{n}]" for n in c.supported_by) for c in supported)
    notice = "generation stopped; the answer is what came before" if stopped else None
    return Answer(quoted.question, shown, True, _citations(claims, hits), tuple(hits), quoted.understood_as,
                  generated=True, model=model, claims=claims, notice=notice, absent_names=quoted.absent_names,
                  absent_within=quoted.absent_within)


def _stream(client: ChatClient, messages: list[dict[str, str]], on_token: TokenCallback | None) -> tuple[str, bool]:
    """The model's text, and whether Ctrl-C stopped it early."""
    parts: list[str] = []
    stream = client.stream_chat(messages, max_tokens=MAX_ANSWER_TOKENS)
    try:
        for delta in stream:
            parts.append(delta)
            if on_token is not None:
                on_token(_terminal_safe(delta))  # a sequence cut between two pieces loses its ESC
    except KeyboardInterrupt:
        return _terminal_safe("".join(parts)), True
    finally:
        stream.close()  # closes the HTTP response, so the server stops generating
    return _terminal_safe("".join(parts)), False


def _terminal_safe(text: str) -> str:
    """`text` without terminal escape sequences and control characters (tab and line ends kept):
    ``"\\x1b[31mRed\\x1b[0m" -> "Red"``."""
    return _CONTROL.sub("", _ESCAPE_SEQUENCE.sub("", text))


def _citations(claims: Sequence[Claim], hits: Sequence[Hit]) -> tuple[Citation, ...]:
    """The evidence of supported sentences, as citations: what /open and the source list show."""
    citations = []
    for claim in claims:
        if claim.verdict != SUPPORTED:
            continue
        for evidence in claim.evidence:
            hit = hits[evidence.n - 1]
            citation = Citation(evidence.n, evidence.doc_id, hit.title, hit.path, evidence.start, evidence.end,
                                evidence.quote, claim.support, date=hit.date)
            if citation not in citations:
                citations.append(citation)
    return tuple(citations)


def condense_question(client: ChatClient, previous: Sequence[str], question: str) -> str | None:
    """A follow-up rewritten by the model into a question that stands alone, or None if it gave nothing
    usable (nothing, too much, or the follow-up itself)."""
    history = "\n".join(f"Earlier question: {turn}" for turn in previous[-3:])
    messages = [
        {"role": "system", "content": CONDENSE_PROMPT},
        {"role": "user", "content": f"{history}\nLast question: {question}\nRewritten question:"},
    ]
    text = _terminal_safe(client.complete(messages, max_tokens=64)).strip().strip('"').splitlines()
    rewritten = " ".join(text[0].split()) if text else ""
    rewritten = re.sub(r"^(?:rewritten question|question)\s*:\s*", "", rewritten, flags=re.IGNORECASE)
    if not rewritten or len(rewritten) > 300 or not any(ch.isalpha() for ch in rewritten):
        return None
    # A small model may give the follow-up back as it came: that stands no more alone than before,
    # so the rule-based reading (qa.followup) takes over.
    if re.findall(r"\w+", rewritten.casefold()) == re.findall(r"\w+", question.casefold()):
        return None
    return rewritten
