"""Generated answers: a real llama.cpp server with SmolLM2-135M writes them, and qa checks each sentence.

A 135M model answers poorly, which is the point: its unsupported sentences must be marked, and an
off-topic question must end with the honest answer. The checker's verdicts and evidence spans are
tested on fixed sentences against the real seed passages with the real encoder.
"""

from __future__ import annotations

import io
import json
import signal
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
from llm_servers import REWRITE_WITH_A_YEAR, free_port, scripted_server
from rich.console import Console

from qa.answer import NOT_ANSWERED
from qa.chunk import split_sentences
from qa.claims import SUPPORTED, UNCITED, UNSUPPORTED, ClaimChecker, extract_facts, split_claims
from qa.generate import build_messages, declines, generate_answer
from qa.llm import ChatClient, LLMSettings
from qa.render import claim_json
from qa.repl import ChatSession
from qa.retrieve import Retriever, open_retriever
from qa.types import Hit

DEBT_QUESTION = "How much does Baghdad owe Russia?"
DEBT_SENTENCE = "Baghdad's $8 billion debt to Russia"


@pytest.fixture(scope="module")
def retriever(seeds_index: Path, embedder) -> Retriever:
    opened = open_retriever(seeds_index, embedder=embedder)
    yield opened
    opened.store.close()


@pytest.fixture(scope="module")
def debt_passages(retriever: Retriever):
    hits = retriever.search(DEBT_QUESTION, k=5, align=True)
    assert any(DEBT_SENTENCE in hit.text for hit in hits)
    return hits


def _debt_n(hits) -> int:
    return next(n for n, hit in enumerate(hits, start=1) if DEBT_SENTENCE in hit.text)


# The checker, on fixed sentences --------------------------------------------------------------------


def test_a_paraphrased_true_sentence_is_supported_with_a_verbatim_evidence_span(retriever, debt_passages) -> None:
    n = _debt_n(debt_passages)
    checker = ClaimChecker(retriever.aligner())
    claim = checker.check("Baghdad owes Russia 8 billion dollars.", [n], debt_passages)
    assert claim.verdict == SUPPORTED, claim
    assert claim.evidence and claim.evidence[0].n == n
    evidence = claim.evidence[0]
    article = retriever.store.document(evidence.doc_id)
    assert article.text[evidence.start:evidence.end] == evidence.quote  # the citation contract
    assert "$8 billion" in evidence.quote


def test_a_sentence_is_checked_the_same_whatever_the_model_wrote_beside_it(retriever, debt_passages) -> None:
    n = _debt_n(debt_passages)
    checker = ClaimChecker(retriever.aligner())
    sentence = f"Baghdad owes Russia 8 billion dollars [{n}]."
    alone = checker.check_answer(sentence, debt_passages)[0]
    for before in ("Russia", "Iraq has long disputed the size of its debts to Moscow and to Paris"):
        assert checker.check_answer(f"{before} [{n}]. {sentence}", debt_passages)[-1] == alone, before


@pytest.mark.parametrize(
    ("sentence", "missing"),
    [
        ("Baghdad owes Russia $9 billion.", "$9 billion"),  # a wrong amount, fluently put
        ("Baghdad owes Russia eight million dollars.", "eight million"),  # a wrong scale
        ("Baghdad owes Germany $8 billion.", "Germany"),  # a wrong name
        ("Baghdad does not owe Russia $8 billion.", "“not”"),  # a denial its evidence does not make
        ("Baghdad never owed Russia 8 billion dollars.", "“never”"),
    ],
)
def test_a_wrong_fact_is_unsupported_and_named(retriever, debt_passages, sentence: str, missing: str) -> None:
    claim = ClaimChecker(retriever.aligner()).check(sentence, [_debt_n(debt_passages)], debt_passages)
    assert claim.verdict == UNSUPPORTED
    assert missing in claim.missing


def test_a_denial_is_supported_by_a_negative_passage_or_a_question_that_denies(retriever, debt_passages) -> None:
    checker = ClaimChecker(retriever.aligner())
    n = _debt_n(debt_passages)
    sentence = "Baghdad does not owe Russia $8 billion."
    asked = "Why does Baghdad not owe Russia $8 billion?"  # the user's premise, repeated
    assert checker.check(sentence, [n], debt_passages, question=asked).verdict == SUPPORTED
    # A passage that denies it, in other words, supports it.
    denied = [replace(hit, text=hit.text.replace("repayment of Baghdad's $8 billion debt to Russia",
                                                "repayment of a debt Baghdad denies: $8 billion to Russia"))
              if i == n - 1 else hit for i, hit in enumerate(debt_passages)]
    assert "denies" in denied[n - 1].text
    assert checker.check(sentence, [n], denied).verdict == SUPPORTED
    assert "not only" not in sentence and checker.check(
        "Baghdad owes not only Russia $8 billion.", [n], debt_passages).verdict == SUPPORTED


DEBT_CLAUSE = "Moscow wants to get a share of Iraq rebuilding contracts"


def _rewritten(hits, n: int, sentence: str):
    """`hits` with passage n's sentence that opens with DEBT_CLAUSE made to say `sentence`, padded
    to its length so that every span the passage holds still cuts it where it did."""
    hit = hits[n - 1]
    start = hit.text.index(DEBT_CLAUSE)
    end = hit.text.index(".", hit.text.index(DEBT_SENTENCE)) + 1
    assert len(sentence) <= end - start
    text = hit.text[:start] + sentence.ljust(end - start) + hit.text[end:]
    return [replace(hit, text=text) if i == n - 1 else other for i, other in enumerate(hits)]


def test_a_sentence_that_drops_its_passages_denial_is_unsupported(retriever, debt_passages) -> None:
    # The passage made to deny the debt: a sentence stating it says the opposite of its evidence.
    checker = ClaimChecker(retriever.aligner())
    n = _debt_n(debt_passages)
    denied = _rewritten(debt_passages, n, "Moscow says Baghdad does not owe Russia a debt of $8 billion.")
    claim = checker.check("Baghdad owes Russia a debt of $8 billion.", [n], denied)
    assert claim.verdict == UNSUPPORTED and claim.contradicted == ("does not owe",), claim
    assert "does not owe" in claim.evidence[0].quote
    assert claim.supported_by == () and claim_json(claim)["supported_by"] == []  # its evidence supports nothing
    assert checker.check("Baghdad does not owe Russia a debt of $8 billion.", [n], denied).verdict == SUPPORTED
    # A yes-or-no question takes nothing for granted; "How much does Baghdad owe?" takes the debt for
    # granted: its words are the user's premise, as its facts are.
    claim = checker.check("Baghdad owes Russia a debt of $8 billion.", [n], denied, question="Does Baghdad owe Russia?")
    assert claim.contradicted == ("does not owe",)
    assert checker.check("Baghdad owes Russia a debt of $8 billion.", [n], denied,
                         question=DEBT_QUESTION).contradicted == ()
    # Against the passage as it is, the same sentence stands.
    assert checker.check("Baghdad owes Russia a debt of $8 billion.", [n], debt_passages).contradicted == ()
    # A word the window also uses undenied is free ("not elected in 1990 but elected in 1994").
    both = _rewritten(debt_passages, n, "Baghdad does not owe Russia $8 billion, but does owe the Paris Club $8 billion.")
    claim = checker.check("Baghdad owes the Paris Club $8 billion.", [n], both)
    assert claim.verdict == SUPPORTED and claim.contradicted == (), claim


def test_a_sentence_that_swaps_who_did_what_is_unsupported(retriever, debt_passages) -> None:
    checker = ClaimChecker(retriever.aligner())
    n = _debt_n(debt_passages)
    said = _rewritten(debt_passages, n, "Moscow says Baghdad owes Russia $8 billion and Interfax agrees.")
    claim = checker.check("Russia owes Baghdad $8 billion.", [n], said)
    assert claim.verdict == UNSUPPORTED and claim.contradicted == ("Baghdad owes Russia",), claim
    assert checker.check("Baghdad owes Russia $8 billion.", [n], said).verdict == SUPPORTED
    # "By" turns the roles round, and a word that goes both ways is no role.
    assert checker.check("Russia is owed $8 billion by Baghdad.", [n], said).contradicted == ()
    met = _rewritten(debt_passages, n, "Moscow says Baghdad met Russia over $8 billion of debt.")
    assert checker.check("Russia met Baghdad over $8 billion of debt.", [n], met).contradicted == ()


def test_a_passive_says_who_did_what_too(retriever) -> None:
    checker = ClaimChecker(retriever.aligner())
    passive = _news("The Carolina Panthers were defeated by the Denver Broncos in Super Bowl 50 on Sunday.")
    for swapped in ("The Carolina Panthers defeated the Denver Broncos in Super Bowl 50.",
                    "The Denver Broncos were defeated by the Carolina Panthers in Super Bowl 50."):
        claim = checker.check(swapped, [1], passive)
        assert claim.verdict == UNSUPPORTED, claim
        assert claim.contradicted == ("Carolina Panthers were defeated by the Denver Broncos",), claim
    for said in ("The Denver Broncos defeated the Carolina Panthers in Super Bowl 50.",
                 "The Carolina Panthers were defeated by the Denver Broncos in Super Bowl 50."):
        assert checker.check(said, [1], passive).contradicted == ()
    active = _news("Denver defeated Carolina in Super Bowl 50.")
    assert checker.check("Carolina was defeated by Denver in Super Bowl 50.", [1], active).verdict == SUPPORTED
    assert checker.check("Denver was defeated by Carolina in Super Bowl 50.", [1], active).contradicted == (
        "Denver defeated Carolina",)


def _news(*texts: str) -> list[Hit]:
    """Passages of made-up news, one a text, as a search returns them."""
    return [Hit(n, f"d{n}", "News", f"d{n}.txt", 0, len(text), text, 1.0, sentences=tuple(split_sentences(text)))
            for n, text in enumerate(texts)]


@pytest.mark.parametrize(
    ("passage", "sentence"),
    [  # true sentences a model writes in other words (found by a review of the checks)
        ("Iraq imports oil from Russia under a 2003 deal.", "Russia exports oil to Iraq under a 2003 deal."),
        ("Germany sent troops to Mali in 2013.", "Mali received troops from Germany in 2013."),
        ("Obama called Merkel on Monday to discuss the crisis.", "Merkel received a call from Obama on Monday."),
        ("Putin's longtime ally Medvedev chairs the council.", "Medvedev is a longtime ally of Putin."),
        ("Baghdad's $8 billion debt to Russia remains unpaid.", "Russia is owed an $8 billion debt from Baghdad."),
        ("Iraq has no money to repay its debt to Russia.", "Iraq owes Russia money."),
        ("Russia will not insist on full repayment but wants a share of Iraq rebuilding contracts.",
         "Russia wants a share of Iraq rebuilding contracts rather than insisting on full repayment."),
        ("The deal covers not simply oil but natural gas as well.", "The deal covers oil and natural gas."),
        ("Smith did not resign despite opposition calls to quit over the scandal.",
         "Opposition parties called on Smith to resign over the scandal."),
        ("Police have not identified the victim, a man in his 40s found dead on Sunday.",
         "Police are trying to identify the victim, a man in his 40s."),
        ("The minister said there was no evidence of foul play in the death of the journalist.",
         "The minister commented on the evidence in the journalist's death."),
        # found by a review of the dropped-"no" check: the thing named in another frame or wording
        ("The spokesman said no decision had yet been made, but one was expected next week.",
         "The spokesman said a decision was expected next week."),
        ("Iraq has no money to repay its debt to Russia.", "Iraq has too little money to repay its debt to Russia."),
        ("The No campaign won 55 percent of the vote in the referendum.",
         "The campaign against independence won 55 percent of the vote in the referendum."),
        ("Voters in the region said no to the plan to build a new airport.",
         "Voters in the region said the plan to build a new airport should be dropped."),
        ("There was no immediate comment from the ministry on the report.",
         "The ministry was immediately unavailable for comment on the report."),
        ("Police examined the scene and said there was no evidence of foul play.",
         "Police examined the scene to see whether there was evidence of foul play."),
    ],
)
def test_a_true_sentence_in_other_words_is_not_contradicted(retriever, passage: str, sentence: str) -> None:
    claim = ClaimChecker(retriever.aligner()).check(sentence, [1], _news(passage))
    assert claim.contradicted == () and claim.verdict == SUPPORTED, claim


@pytest.mark.parametrize(
    ("passage", "sentence", "denial"),
    [
        ("The minister said there was no evidence of foul play in the death of the journalist.",
         "There was evidence of foul play in the journalist's death.", "was no evidence"),
        ("Rescuers found no survivors in the rubble of the collapsed hotel on Monday.",
         "Rescuers found survivors in the rubble of the collapsed hotel on Monday.", "found no survivors"),
    ],
)
def test_a_sentence_that_drops_a_no_is_contradicted(retriever, passage: str, sentence: str, denial: str) -> None:
    checker = ClaimChecker(retriever.aligner())
    claim = checker.check(sentence, [1], _news(passage))
    assert claim.verdict == UNSUPPORTED and claim.contradicted == (denial,), claim
    # The same noun in another frame, or used by the passage without "no" too, is no contradiction.
    assert checker.check("Rescuers searched the rubble of the collapsed hotel for survivors on Monday.", [1],
                         _news(passage)).contradicted == ()
    both = _news("There was no warning before the first blast, but police said a warning came before the second.")
    assert checker.check("There was a warning before the second blast.", [1], both).contradicted == ()
    # Another passage's "no" in another frame does not say it either: it is no source for the sentence.
    again = _news("Rescuers found no survivors in the rubble of the collapsed hotel on Monday.",
                  "Officials said there were no survivors in the rubble of the collapsed hotel.")
    claim = checker.check("Rescuers found survivors in the rubble of the collapsed hotel on Monday.", [1, 2], again)
    assert claim.verdict == UNSUPPORTED and claim.contradicted == ("found no survivors",), claim


def test_a_contradicting_passage_is_no_source_and_another_that_says_it_is(retriever) -> None:
    checker = ClaimChecker(retriever.aligner())
    hits = _news("Defence Minister John Smith did not resign on Monday despite mounting pressure over the arms scandal.",
                 "Defence Minister John Smith resigned on Friday over the arms scandal.")
    sentence = "Defence Minister John Smith resigned over the arms scandal."
    alone = checker.check(sentence, [1], hits)
    assert alone.verdict == UNSUPPORTED and alone.contradicted == ("did not resign",) and alone.supporting == ()
    both = checker.check(sentence, [1, 2], hits)
    assert both.verdict == SUPPORTED and both.contradicted == () and both.supported_by == (2,), both
    # "And does…?" asks yes or no as "Does…?" does: it takes nothing for granted.
    denied = _news("Moscow says Baghdad does not owe Russia a debt of $8 billion.")
    for asked in ("Does Baghdad owe Russia money?", "And does Baghdad owe Russia money?", "So Baghdad owes Russia?"):
        assert checker.check("Baghdad owes Russia a debt of $8 billion.", [1], denied, question=asked).contradicted


def test_a_fact_the_question_states_may_be_repeated_but_one_it_does_not_may_not(retriever, debt_passages) -> None:
    # "In 2003" is in no passage: without the question it is the model's claim; asked about 2003, it is
    # the user's own premise, repeated. A wrong amount stays wrong either way.
    checker = ClaimChecker(retriever.aligner())
    n = _debt_n(debt_passages)
    sentence = "In 2003, Baghdad owed Russia $8 billion."
    assert checker.check(sentence, [n], debt_passages).verdict == UNSUPPORTED
    asked = "How much did Baghdad owe Russia in 2003?"
    assert checker.check(sentence, [n], debt_passages, question=asked).verdict == SUPPORTED
    wrong = checker.check("In 2003, Baghdad owed Russia $9 billion.", [n], debt_passages, question=asked)
    assert wrong.verdict == UNSUPPORTED and "$9 billion" in wrong.missing


def test_a_sentence_citing_a_passage_that_does_not_say_it_is_unsupported(retriever, debt_passages) -> None:
    n = _debt_n(debt_passages)
    other = next(m for m, hit in enumerate(debt_passages, start=1) if m != n and "8 billion" not in hit.text)
    claim = ClaimChecker(retriever.aligner()).check("Baghdad owes Russia $8 billion.", [other], debt_passages)
    assert claim.verdict == UNSUPPORTED


def test_uncited_and_out_of_range_citations(retriever, debt_passages) -> None:
    checker = ClaimChecker(retriever.aligner())
    claims = checker.check_answer("Baghdad owes Russia $8 billion. It is a large debt [9].", debt_passages)
    assert [c.verdict for c in claims] == [UNCITED, UNSUPPORTED]
    assert claims[1].missing == ("[9]",)


def test_a_range_too_wide_to_be_meant_keeps_its_ends() -> None:
    # "[1–40]" was read as [1], the 40 dropped unsaid; it is "not one of the passages" now.
    assert split_claims("Baghdad owes Russia $8 billion [1–40].") == [("Baghdad owes Russia $8 billion.", (1, 40))]


def test_sentences_and_their_markers_are_split() -> None:
    assert split_claims("Baghdad owes $8 billion [1]. Talks went on. [2][3]\n- Nine died [4, 5].") == [
        ("Baghdad owes $8 billion.", (1,)), ("Talks went on.", (2, 3)), ("Nine died.", (4, 5)),
    ]
    # A list item is a sentence, full stop or not, and one that opens with its marker cites for
    # itself: both were run into the item before ("…contracts Russia agreed [1]"; "[2]" moved up).
    assert split_claims("- Moscow wants contracts [1]\n- Russia agreed to pay [1]\n") == [
        ("Moscow wants contracts", (1,)), ("Russia agreed to pay", (1,)),
    ]
    assert split_claims("- [1] Moscow wants contracts.\n- [2] Ivanov said troops may go.") == [
        ("Moscow wants contracts.", (1,)), ("Ivanov said troops may go.", (2,)),
    ]
    # A line that runs on is the same sentence, wrapped after a bracket or a colon too; a marker
    # alone on a line, or opening a line that is no list item, is the sentence before's.
    assert split_claims("Baghdad owes Russia\n$8 billion.\n[1]\n\nTalks went on [2].") == [
        ("Baghdad owes Russia $8 billion.", (1,)), ("Talks went on.", (2,)),
    ]
    assert split_claims("Baghdad owes $8 billion (half its Soviet-era debt)\nunder old contracts [1].") == [
        ("Baghdad owes $8 billion (half its Soviet-era debt) under old contracts.", (1,)),
    ]
    assert split_claims('Ivanov said:\n"Russia may send peacekeepers" [1].') == [
        ('Ivanov said: "Russia may send peacekeepers".', (1,)),
    ]
    assert split_claims("Baghdad owes $8 billion.\n[1] Moscow wants oil contracts\nin return. [2]") == [
        ("Baghdad owes $8 billion.", (1,)), ("Moscow wants oil contracts in return.", (2,)),
    ]
    # A line ending in its citation ends its sentence, full stop or not; a line opening with its
    # citation after a sentence that cites already cites for itself (the passages' own style); a
    # heading states nothing, and bold marks are no words (found by a review).
    assert split_claims("Baghdad owes Russia $8 billion [1]\nThe debt was forgiven in 2004.") == [
        ("Baghdad owes Russia $8 billion", (1,)), ("The debt was forgiven in 2004.", ()),
    ]
    assert split_claims("[1] Baghdad owes Russia $8 billion.\n[2] Moscow wants contracts.") == [
        ("Baghdad owes Russia $8 billion.", (1,)), ("Moscow wants contracts.", (2,)),
    ]
    assert split_claims("## Answer\n**Baghdad** owes $8 billion [1].") == [("Baghdad owes $8 billion.", (1,))]


@pytest.mark.parametrize(
    ("claim", "passage"),
    [
        ("It cost 8 billion dollars", "It cost $8 billion"),
        ("It cost $8bn", "It cost 8,000 million dollars"),
        ("Nine people died", "9 people died"),
        ("It opened on Sept. 5", "It opened on September 5"),
        ("twenty-five thousand came", "25,000 came"),
        ("The U.S. agreed", "The United States agreed"),
        ("They hired Italian lawyers", "lawyers in Italy"),
        ("The talks will resume in May.", "The talks will resume in May after a pause"),
        ("Since May took office, exports fell", "Since Theresa May took office, exports fell"),
    ],
)
def test_the_forms_models_rewrite_are_the_same_fact(claim: str, passage: str) -> None:
    from qa.claims import passage_facts

    facts, _ = extract_facts(claim)
    assert facts, claim
    assert not facts - facts.found_in(passage_facts(passage))


def test_may_is_a_month_after_a_word_that_says_when() -> None:
    assert extract_facts("The talks will resume in May after a pause")[0].months == {5}
    assert extract_facts("The vote came late. May said she would stay")[0].months == frozenset()
    assert extract_facts("A speech by May angered MPs")[0].months == frozenset()


def test_a_refusal_is_recognised() -> None:
    assert declines("The passages do not answer this.")
    assert declines("I'm sorry, the articles don't mention it; there is no information about that.")
    assert not declines("Baghdad owes Russia $8 billion [1].")
    # SmolLM2's refusal, met by a helper's audit with the real model.
    assert declines("The passage talks about Russia, but it does not provide the answer to your question.")
    assert not declines("The deal does not include the debt [1].")


def test_the_prompt_numbers_the_passages_and_fits_a_small_context(debt_passages) -> None:
    messages = build_messages(DEBT_QUESTION, debt_passages)
    user = messages[-1]["content"]
    assert "[1] " in user and f"[{len(debt_passages)}] " in user and DEBT_QUESTION in user
    # about four characters a token: k=5 passages leave room for the answer in 4,096 tokens
    assert sum(len(m["content"]) for m in messages) < 4 * 2500


def test_a_model_answer_fed_from_a_string_keeps_only_supported_sentences(retriever, debt_passages) -> None:
    from qa.answer import compose_answer, score_sentences
    from qa.generate import answer_from_text
    from qa.render import render_answer

    n = _debt_n(debt_passages)
    quoted = compose_answer(DEBT_QUESTION, debt_passages, score_sentences(debt_passages, retriever.term_weights(DEBT_QUESTION)),
                            retriever.store.chunk_count())
    text = f"Baghdad owes Russia 8 billion dollars [{n}]. Baghdad also owes Germany $2 billion [{n}]."
    answer = answer_from_text(quoted, text, "some-model", ClaimChecker(retriever.aligner()))
    assert answer.generated and answer.model == "some-model"
    assert [c.verdict for c in answer.claims] == [SUPPORTED, UNSUPPORTED]
    assert answer.answer == f"Baghdad owes Russia 8 billion dollars. [{n}]"  # what scripts read: supported only
    assert answer.citations and all(
        retriever.store.document(c.doc_id).text[c.start:c.end] == c.quote for c in answer.citations)
    out = io.StringIO()
    Console(file=out, width=200).print(render_answer(answer))
    shown = out.getvalue()
    assert "Written by some-model" in shown and "($2 billion, Germany not in [" in shown
    assert f"[{n}] " + debt_passages[n - 1].title in shown  # its source, listed


def test_a_passage_cited_beside_the_one_that_says_it_is_not_shown_as_a_source(retriever, debt_passages) -> None:
    from qa.answer import compose_answer, score_sentences
    from qa.generate import answer_from_text
    from qa.render import render_answer

    n = _debt_n(debt_passages)
    idle = next(m for m, hit in enumerate(debt_passages, start=1) if m != n and "8 billion" not in hit.text)
    quoted = compose_answer(DEBT_QUESTION, debt_passages, score_sentences(debt_passages, retriever.term_weights(DEBT_QUESTION)),
                            retriever.store.chunk_count())
    answer = answer_from_text(quoted, f"Baghdad owes Russia 8 billion dollars [{idle}][{n}].", "some-model",
                              ClaimChecker(retriever.aligner()))
    (claim,) = answer.claims
    assert claim.verdict == SUPPORTED and claim.citations == (idle, n) and claim.supported_by == (n,)
    # It was shown with [idle] too, though neither the sources nor the citations listed that passage.
    assert answer.answer == f"Baghdad owes Russia 8 billion dollars. [{n}]"
    assert {c.n for c in answer.citations} == {n}
    out = io.StringIO()
    Console(file=out, width=200).print(render_answer(answer))
    assert f"dollars. [{n}] (cited [{idle}] too, which does not say it)" in out.getvalue()
    # Two passages that each say it (a wire copy on another site) are both its sources.
    copied = [*debt_passages, debt_passages[n - 1]]
    twice = answer_from_text(replace(quoted, passages=tuple(copied)),
                             f"Baghdad owes Russia 8 billion dollars [{n}][{len(copied)}].", "some-model",
                             ClaimChecker(retriever.aligner()))
    assert twice.claims[0].supported_by == (n, len(copied))
    assert twice.answer == f"Baghdad owes Russia 8 billion dollars. [{n}][{len(copied)}]"


def test_an_answer_that_cites_nothing_is_said_so(retriever, debt_passages) -> None:
    from qa.answer import compose_answer, score_sentences
    from qa.generate import answer_from_text

    quoted = compose_answer(DEBT_QUESTION, debt_passages, score_sentences(debt_passages, retriever.term_weights(DEBT_QUESTION)),
                            retriever.store.chunk_count())
    checker = ClaimChecker(retriever.aligner())
    uncited = answer_from_text(quoted, "Baghdad owes Russia 8 billion dollars.", "some-model", checker)
    assert uncited.notice == "no sentence some-model wrote cites a passage; showing the quoted answer instead"
    wrong = answer_from_text(quoted, f"Baghdad owes Germany $2 billion [{_debt_n(debt_passages)}].", "some-model", checker)
    assert wrong.notice.startswith("no sentence some-model wrote is supported by a passage it cites")


# The real model ---------------------------------------------------------------------------------------


def test_a_real_model_answer_is_checked_sentence_by_sentence(retriever, llm_url: str) -> None:
    tokens: list[str] = []
    with ChatClient(LLMSettings(llm_url)) as client:
        answer = generate_answer(retriever, client, DEBT_QUESTION, on_token=tokens.append)
    assert len(tokens) > 1  # it streamed
    assert answer.model == "smollm2"
    assert answer.claims, "the model's sentences are kept with their verdicts"
    for claim in answer.claims:
        assert claim.verdict in (SUPPORTED, UNSUPPORTED, UNCITED)
        for evidence in claim.evidence:
            assert retriever.store.document(evidence.doc_id).text[evidence.start:evidence.end] == evidence.quote
    if answer.generated:
        assert any(c.verdict == SUPPORTED for c in answer.claims)
        for citation in answer.citations:
            assert retriever.store.document(citation.doc_id).text[citation.start:citation.end] == citation.quote
    else:  # nothing it wrote was supported: the quoted answer, and a note saying why
        assert answer.notice and "smollm2" in answer.notice
        assert DEBT_SENTENCE in answer.answer


def test_an_off_topic_question_ends_with_the_honest_answer(retriever, llm_url: str) -> None:
    with ChatClient(LLMSettings(llm_url)) as client:
        answer = generate_answer(retriever, client, "What is the capital of Australia?")
    assert not answer.generated
    assert answer.answer == NOT_ANSWERED
    assert all(c.verdict != SUPPORTED for c in answer.claims)


def test_ctrl_c_stops_generation_and_keeps_what_came(retriever, llm_url: str) -> None:
    tokens: list[str] = []

    def interrupt_after_a_few(delta: str) -> None:
        tokens.append(delta)
        if len(tokens) == 3:
            signal.raise_signal(signal.SIGINT)  # what Ctrl-C sends

    # A process started in the background (as CI may start the tests) inherits SIGINT ignored; a
    # terminal's Ctrl-C raises KeyboardInterrupt, and that is what is tested here.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with ChatClient(LLMSettings(llm_url)) as client:
            answer = generate_answer(retriever, client, DEBT_QUESTION, on_token=interrupt_after_a_few)
            assert len(tokens) == 3
            assert "generation stopped" in answer.notice
            assert [c.text for c in answer.claims] == [c for c, _ in split_claims("".join(tokens))]  # what came, checked
            # the server took the closed stream in its stride and answers the next request
            assert client.complete([{"role": "user", "content": "Say hi."}], max_tokens=4)
    finally:
        signal.signal(signal.SIGINT, previous)


def test_the_chat_streams_a_generated_answer_and_switches_llm(seeds_index: Path, embedder, llm_url: str) -> None:
    out = io.StringIO()
    session = ChatSession(seeds_index, console=Console(file=out, width=100), embedder=embedder,
                          llm=LLMSettings(llm_url))
    session.run(["/llm", DEBT_QUESTION, "/sources", "/llm off", DEBT_QUESTION, "/llm on"], update=False)
    text = out.getvalue()
    assert "on, " + llm_url in text  # /llm alone says what is in use
    assert "Answers are quoted from the articles." in text
    assert f"Model server: on, {llm_url}" in text
    assert text.count("$8 billion") >= 2  # the quoted answer, at least, cites the debt sentence
    assert "Written by smollm2" in text or "Note: " in text


def test_a_follow_up_is_rewritten_by_the_model_or_else_by_the_rule(seeds_index: Path, embedder, llm_url: str) -> None:
    session = ChatSession(seeds_index, console=Console(file=io.StringIO(), width=100), embedder=embedder,
                          llm=LLMSettings(llm_url))
    session.run([DEBT_QUESTION, "And when was that?"], update=False)
    first, follow_up = (turn.searched for turn in session.conversation.turns)
    assert first == DEBT_QUESTION
    assert follow_up != "And when was that?"  # understood with the first question, one way or the other


def test_a_year_the_models_rewrite_of_a_follow_up_adds_is_checked_as_the_models(seeds_index: Path, embedder) -> None:
    # The rewrite was taken for the user's words, which an answer may repeat unchecked: "In 1998,
    # Baghdad owed Russia $8 billion [1]" passed against a passage that gives no year.
    out = io.StringIO()
    with scripted_server("adds_a_year") as url:
        session = ChatSession(seeds_index, console=Console(file=out, width=200), embedder=embedder,
                              llm=LLMSettings(url, model="smollm2", timeout=10))
        session.run(["What does Moscow want from Iraq?", "How much does it owe?"], update=False)
    assert session.conversation.turns[1].searched == REWRITE_WITH_A_YEAR[0]  # the model's rewrite was searched
    answer = session.last_answer
    assert answer is not None and answer.claims, out.getvalue()
    assert all(claim.verdict != SUPPORTED for claim in answer.claims), answer.claims
    assert "1998" not in answer.answer
    # Typed by the user, the year is theirs to repeat.
    with scripted_server("adds_a_year") as url:
        session = ChatSession(seeds_index, console=Console(file=io.StringIO(), width=200), embedder=embedder,
                              llm=LLMSettings(url, model="smollm2", timeout=10))
        session.run(["What does Moscow want from Iraq?", "How much did Baghdad owe Russia in 1998?"], update=False)
    assert any(claim.verdict == SUPPORTED for claim in session.last_answer.claims), session.last_answer.claims


def test_control_characters_a_model_writes_reach_neither_the_terminal_nor_the_json(retriever) -> None:
    # Rich passes ESC through: "\x1b[31m" in a model's text recoloured the user's terminal.
    shown: list[str] = []
    with scripted_server("escape_codes") as url, ChatClient(LLMSettings(url, model="smollm2", timeout=10)) as client:
        answer = generate_answer(retriever, client, DEBT_QUESTION, on_token=shown.append)
    assert "".join(shown) == "Baghdad owes Russia $8 billion [1]."
    assert answer.generated and "\x1b" not in answer.answer and "\x07" not in json.dumps(claim_json(answer.claims[0]))
    # A title sequence with no end of its own stops at its line, not at the answer's end; a
    # character set chosen leaves no letter behind (a review's findings).
    from qa.generate import _terminal_safe

    assert _terminal_safe("\x1b]0;title\nBaghdad owes Russia $8 billion [1].") == "\nBaghdad owes Russia $8 billion [1]."
    assert _terminal_safe("\x1b(BBaghdad owes") == "Baghdad owes"


# Failures: one line naming the URL, then the quoted answer -----------------------------------------


def test_a_follow_up_with_the_server_down_gives_one_notice_and_the_quoted_answer(seeds_index: Path, embedder) -> None:
    url = f"http://127.0.0.1:{free_port()}/v1"
    out = io.StringIO()
    session = ChatSession(seeds_index, console=Console(file=out, width=200), embedder=embedder,
                          llm=LLMSettings(url, timeout=2))
    session.run([DEBT_QUESTION, "And when was that?"], update=False)
    text = out.getvalue()
    # The first question's failure and the follow-up's: one notice each, naming the URL.
    assert text.count("showing the quoted answer instead") == 2
    assert text.count(url) == 3  # the banner's, and each notice's
    assert "reading the question as it is" not in text
    assert session.conversation.turns[1].searched != "And when was that?"  # read with the first, by the rule


@pytest.mark.parametrize("behaviour", ["http_500", "malformed_stream", "no_choices", "stream_error", "unknown_model",
                                       "context_overflow", "models_not_json"])
def test_a_failing_server_gives_the_quoted_answer_and_one_line(retriever, behaviour: str) -> None:
    with scripted_server(behaviour) as url, ChatClient(LLMSettings(url, model="smollm2", timeout=5)) as client:
        answer = generate_answer(retriever, client, DEBT_QUESTION)
    assert not answer.generated
    assert DEBT_SENTENCE in answer.answer
    assert url in answer.notice and "\n" not in answer.notice


def test_a_hanging_server_times_out_to_the_quoted_answer(retriever) -> None:
    with scripted_server("hang") as url, ChatClient(LLMSettings(url, model="smollm2", timeout=1)) as client:
        answer = generate_answer(retriever, client, DEBT_QUESTION)
    assert DEBT_SENTENCE in answer.answer and url in answer.notice


def test_a_server_that_is_down_gives_the_quoted_answer(retriever) -> None:
    url = f"http://127.0.0.1:{free_port()}/v1"
    with ChatClient(LLMSettings(url)) as client:
        answer = generate_answer(retriever, client, DEBT_QUESTION)
    assert DEBT_SENTENCE in answer.answer
    assert url in answer.notice and "not reachable" in answer.notice


def _qa(*args: str, index: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "qa.cli", *args, "--index", str(index)],
                          capture_output=True, text=True, timeout=600)


def test_ask_stream_prints_token_claim_and_done_events(seeds_index: Path, llm_url: str) -> None:
    result = _qa("ask", DEBT_QUESTION, "--llm", llm_url, "--stream", index=seeds_index)
    assert result.returncode == 0, result.stderr
    events = [json.loads(line) for line in result.stdout.splitlines()]
    kinds = [e["event"] for e in events]
    assert kinds.count("token") > 1 and kinds[-1] == "done"
    assert kinds.index("done") > max((i for i, k in enumerate(kinds) if k == "token"), default=-1)
    done = events[-1]["answer"]
    assert done["model"] == "smollm2" and "claims" in done
    assert [e["text"] for e in events if e["event"] == "claim"] == [c["text"] for c in done["claims"]]


def test_ask_to_a_file_writes_no_unchecked_draft(seeds_index: Path) -> None:
    # The dimmed draft is for a terminal; in a file the model's unchecked words would read as the
    # answer. The scripted model writes "Hello there", which no passage supports.
    with scripted_server("ok") as url:
        result = _qa("ask", DEBT_QUESTION, "--llm", url, index=seeds_index)
    assert result.returncode == 0, result.stderr
    assert "Hello" not in result.stdout
    assert DEBT_SENTENCE in " ".join(result.stdout.split())


def test_a_server_that_fails_after_naming_its_model_is_named_in_the_json(seeds_index: Path) -> None:
    with scripted_server("truncated_stream") as url:
        result = _qa("ask", DEBT_QUESTION, "--llm", url, "--json", index=seeds_index)
    data = json.loads(result.stdout)
    assert data["generated"] is False and "broke off the answer" in data["notice"]
    assert data["model"] == "smollm2"  # resolved from the server's list before the stream broke


def test_ask_json_with_a_closed_port_falls_back_in_one_line(seeds_index: Path) -> None:
    result = _qa("ask", DEBT_QUESTION, "--llm", "http://127.0.0.1:9/v1", "--json", index=seeds_index)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["generated"] is False and "127.0.0.1:9" in data["notice"]
    assert DEBT_SENTENCE in data["answer"]
    assert "Traceback" not in result.stderr


def test_the_chat_says_once_when_passages_would_leave_the_machine(seeds_index: Path, embedder) -> None:
    out = io.StringIO()
    session = ChatSession(seeds_index, console=Console(file=out, width=120), embedder=embedder)
    # No question is asked, so nothing is sent: the warning comes when the server is chosen.
    session.run(["/llm http://192.0.2.1:8080", "/llm off", "/llm on"], update=False)
    assert out.getvalue().count("which is not this machine") == 1


def test_ask_stream_without_a_server_is_a_usage_error(seeds_index: Path, monkeypatch: pytest.MonkeyPatch,
                                                     tmp_path: Path) -> None:
    monkeypatch.delenv("QA_LLM", raising=False)
    (tmp_path / "empty.toml").write_text("")  # no model server in it, nor in the user's own
    monkeypatch.setenv("QA_CONFIG", str(tmp_path / "empty.toml"))
    result = _qa("ask", DEBT_QUESTION, "--stream", index=seeds_index)
    assert result.returncode == 2 and "--stream needs a model server" in result.stderr


def test_verdicts_are_shown_as_the_check_found_them() -> None:
    from qa.render import claims_text
    from qa.types import Claim, Evidence

    claims = [
        Claim("Baghdad owes Russia $8 billion.", (1,), SUPPORTED, 0.9),
        Claim("Baghdad owes Russia $9 billion.", (1,), UNSUPPORTED, 0.6, missing=("$9 billion",)),
        Claim("Talks went well.", (2,), UNSUPPORTED, 0.2),
        Claim("Baghdad owes Russia.", (1, 2), UNSUPPORTED, 0.8, (Evidence(2, "d", 0, 20, "Baghdad does not owe Russia"),),
              contradicted=("does not owe",)),
        Claim("It is a large debt.", (9,), UNSUPPORTED, 0.0, missing=("[9]",)),
        Claim("Russia is a big country.", (), UNCITED, 0.0),
    ]
    out = io.StringIO()
    Console(file=out, width=300).print(claims_text(claims))
    assert out.getvalue().strip() == (
        "Baghdad owes Russia $8 billion. [1] Baghdad owes Russia $9 billion. ($9 billion not in [1]) "
        "Talks went well. (not found in [2]) Baghdad owes Russia. ([2] says “does not owe”) It is a large debt. (cites [9], which is not one of the passages) "
        "Russia is a big country. (no source cited)"
    )
