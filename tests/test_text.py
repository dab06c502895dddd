"""How qa cuts text into stems: the one-pass cut of a passage and its sentences (qa.text.passage_stems)
against cutting the passage and each sentence apart, on real articles and on awkward spans."""

from __future__ import annotations

import random

import pytest

from qa.chunk import split_sentences
from qa.fusion import KeywordCoverer, phrase_match
from qa.ingest import read_article
from qa.text import content_words, passage_stems, sentence_stems, stems, word_pairs

from conftest import SEEDS


def _apart(text: str, spans: list[tuple[int, int]]) -> tuple[list[str], list[frozenset[str]]]:
    return stems(content_words(text)), [sentence_stems(text[a:b]) for a, b in spans]


def _one_pass(text: str, spans: list[tuple[int, int]]) -> tuple[list[str], list[frozenset[str]]]:
    found = passage_stems.__wrapped__(text, tuple(spans))
    return found.passage.split(), [frozenset(s.split()) for s in found.sentences]


SEED_TEXTS = [read_article(path).text for path in sorted(SEEDS.iterdir())]


@pytest.mark.parametrize("text", SEED_TEXTS)
def test_one_pass_cuts_a_real_article_as_cutting_it_apart_does(text: str) -> None:
    spans = split_sentences(text)
    assert len(spans) > 5
    assert _one_pass(text, spans) == _apart(text, spans)
    rng = random.Random(len(text))
    for _ in range(50):  # spans that cut words in two, abut, or leave text between them
        cuts = sorted(rng.sample(range(len(text) + 1), 8))
        odd = list(zip(cuts[::2], cuts[1::2]))
        assert _one_pass(text, odd) == _apart(text, odd)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "Mr.Smith went to Washington.It rained.",
        "a\x1fb c. The unit separator is in the text.",
        "ΟΔΟΣ.ΑΘΗΝΑ is one word pair; ΟΔΟΣ. ΑΘΗΝΑ is two sentences.",
        "İSTANBUL İS big. Straße und Maß.",
    ],
)
def test_one_pass_cuts_awkward_text_as_cutting_it_apart_does(text: str) -> None:
    spans = split_sentences(text)
    for chosen in (spans, [(0, len(text))], [(0, len(text) // 2), (len(text) // 2, len(text))]):
        assert _one_pass(text, chosen) == _apart(text, chosen)


def test_phrase_and_coverage_read_the_passage_stems_as_the_text_reads() -> None:
    text = SEED_TEXTS[0]
    spans = split_sentences(text)
    found = passage_stems(text, tuple(spans))
    question = " ".join(text[spans[1][0] : spans[1][1]].split()[:6])
    pairs = word_pairs(question)
    assert pairs and phrase_match(pairs, found) == 1.0
    held = frozenset(zip(found.passage.split(), found.passage.split()[1:]))
    assert phrase_match(pairs | {("zzz", "yyy")}, found) == len(pairs & held) / (len(pairs) + 1)
    coverage = KeywordCoverer({stem: 1.0 + n for n, stem in enumerate(sentence_stems(question))} | {"zzz": 2.0})
    # A headline holding some of the question's words (counted at HEADLINE_SHARE where the sentence
    # lacks them), and one holding none: the fast path's sums equal the sentence path's to the bit.
    headline = " ".join(question.split()[::2])
    assert sentence_stems(headline) & set(coverage._wanted)
    for (start, end), padded in zip(spans, found.sentences):
        for title in ("A headline", headline):
            assert coverage.stems(padded, title) == coverage(text[start:end], title)


def test_the_local_index_keeps_each_chunks_sentence_stems_and_search_reads_them(
    seeds_index, embedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    import qa.retrieve
    from qa.retrieve import Retriever
    from qa.stores import open_store

    store = open_store(seeds_index)
    try:
        records = list(store.chunks(range(1, 200)).values())
        assert len(records) > 5
        for record in records:  # the marks leave the keyword index's tokens as they were
            assert record.stems is not None and " ".join(record.stems.split()) == " ".join(
                stems(content_words(record.text))
            )
            spans = tuple((a - record.start, b - record.start) for a, b in record.sentences)
            assert qa.retrieve._passage_words(record, record.sentences) == passage_stems.__wrapped__(record.text, spans)
        retriever = Retriever(store, embedder)
        questions = ["How much money does Iraq owe Moscow?", "Who is the foreign minister of Russia?"]
        read_back = [retriever.search(q, k=5, mode="hybrid") for q in questions]
        monkeypatch.setattr(qa.retrieve, "stems_from_marked", lambda marked, sentences: None)  # cut every text
        passage_stems.cache_clear()
        cut_again = [retriever.search(q, k=5, mode="hybrid") for q in questions]
        assert read_back == cut_again
    finally:
        store.close()


def test_stems_stay_right_when_the_stem_cache_fills(monkeypatch: pytest.MonkeyPatch) -> None:
    import qa.text

    monkeypatch.setattr(qa.text, "STEM_CACHE_WORDS", 3)
    monkeypatch.setattr(qa.text, "_STEMS", {})
    assert stems(["owes", "running"]) == ["owe", "run"]
    # One word known, three new: the cache is replaced while the known word is still wanted.
    assert stems(["owes", "cities", "flies", "owed", "running"]) == ["owe", "citi", "fli", "owe", "run"]
    text = "The cities owed money. Flies were running."
    assert _one_pass(text, split_sentences(text)) == _apart(text, split_sentences(text))


def test_marked_stems_do_not_depend_on_when_the_stem_cache_fills(monkeypatch: pytest.MonkeyPatch) -> None:
    from qa.text import marked_stems

    text = "The cities owed money. Flies were running."
    spans = split_sentences(text)
    import qa.text

    monkeypatch.setattr(qa.text, "STEM_CACHE_WORDS", 3)
    monkeypatch.setattr(qa.text, "_STEMS", {"owed": "owe", "money": "money"})
    filling = marked_stems(text, spans)  # three new words overflow the cache in this call
    monkeypatch.setattr(qa.text, "STEM_CACHE_WORDS", 500_000)
    assert filling is not None and filling == marked_stems(text, spans)
