"""Cut an article's clean text into sentences, and sentences into overlapping chunks that fit the model.

Pure text in, chunks out: no files, no model. Token counts come from a `TokenCounter` the caller
passes in (the embedding model's tokenizer, or `whitespace_token_counter` where none is loaded).
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Callable, Iterable, Sequence

from qa.config import CHUNK_MAX_TOKENS, CHUNK_OVERLAP_SENTENCES
from qa.text import MONTH_NAMES, PHOTO_CREDIT, WEEKDAY_NAMES
from qa.types import Chunk, Span

TokenCounter = Callable[[Sequence[str]], list[int]]
"""Token counts of several texts in one call, ``["Hi there.", "Bye."] -> [3, 2]`` (no special tokens)."""

_PARAGRAPH_BREAK = re.compile(r"\n\s*\n")
_WORD = re.compile(r"\S+")


def whitespace_token_counter(texts: Sequence[str]) -> list[int]:
    """Count whitespace-separated words, a stand-in for a tokenizer: ``["a b", ""] -> [2, 0]``."""
    return [len(text.split()) for text in texts]


# Headlines are cut to this many words before they lead a chunk or sentence: with CHUNK_MAX_TOKENS
# of text, the model's 256-token window still holds all of it.
HEADING_MAX_WORDS = 24


def embedding_text(heading: str | None, text: str) -> str:
    """What the model reads for a chunk or a sentence: the article's headline, then the text.

    A sentence alone often names nothing ("It was founded in 1890."); led by its headline, its
    vector says what it is about. On SQuAD v1.1 dev (all 10,570 questions, `qa eval`) this moved
    hybrid recall@1 from 0.845 to 0.852 and the answer-in-top-sentence share from 0.747 to 0.759.

    >>> embedding_text("Iraq's debts", "It owes $8 billion.")
    "Iraq's debts. It owes $8 billion."
    >>> embedding_text(None, "It owes $8 billion.")
    'It owes $8 billion.'
    """
    if not heading or not heading.strip():
        return text
    words = heading.split()[:HEADING_MAX_WORDS]
    joined = " ".join(words)
    return f"{joined} {text}" if joined[-1] in ".!?:;" else f"{joined}. {text}"


def model_passage(heading: str | None, text: str, start: int, spans: Iterable[Span]) -> tuple[str, int, list[Span]]:
    """What the model reads for a passage found at article offset `start`: its headline-led text,
    where the passage's own text begins in that, and `spans` (article offsets) moved into it.

    >>> model_passage("Debts", "It owes $8 billion.", 100, [(103, 107)])
    ('Debts. It owes $8 billion.', 7, [(10, 14)])
    """
    read = embedding_text(heading, text)
    body = len(read) - len(text)  # embedding_text puts the passage's text last
    shift = body - start
    return read, body, [(first + shift, end + shift) for first, end in spans]


def split_sentences(text: str) -> list[Span]:
    """Trimmed spans of the sentences of text, in order: ``"Hi. Mr. Li left." -> [(0, 3), (4, 16)]``.

    A PDF's page break (qa.pages) ends a paragraph, except where a sentence runs on over it: the
    page ends on a lower-case letter or a comma and the next begins with a lower-case letter
    ("…will protect the marina\n\f\nfrom winter storms."). A page number or a running header
    at the break still ends one.
    """
    spans: list[Span] = []
    start = 0
    for match in _PARAGRAPH_BREAK.finditer(text):
        if _runs_over_the_page(text, match):
            continue
        spans.extend(_paragraph_sentences(text, start, match.start()))
        start = match.end()
    spans.extend(_paragraph_sentences(text, start, len(text)))
    return spans


def _runs_over_the_page(text: str, paragraph_break: re.Match[str]) -> bool:
    before, after = paragraph_break.start() - 1, paragraph_break.end()
    if "\f" not in paragraph_break.group() or before < 0 or after >= len(text):
        return False
    first_word = text[after:].split(maxsplit=1)[0]
    # Not a running header that is an address ("www.harbourtimes.com") or a heading whose first
    # word is a brand's ("iPhone sales fall", "eBay results").
    return ((text[before].islower() or text[before] == ",") and first_word[0].islower()
            and first_word.islower() and "www." not in first_word and "://" not in first_word)


def chunk_text(
    doc_id: str,
    text: str,
    count_tokens: TokenCounter,
    max_tokens: int = CHUNK_MAX_TOKENS,
    overlap_sentences: int = CHUNK_OVERLAP_SENTENCES,
) -> list[Chunk]:
    """Pack consecutive sentences into chunks of at most max_tokens tokens, overlapping by a few sentences."""
    if max_tokens < 1:
        raise ValueError(f"max_tokens must be at least 1, not {max_tokens}")
    if overlap_sentences < 0:
        raise ValueError(f"overlap_sentences must not be negative, not {overlap_sentences}")
    sentences = split_sentences(text)
    if not sentences:
        return []
    counts = _counted(count_tokens, [text[start:end] for start, end in sentences])
    units, unit_counts = _fitting_units(text, sentences, counts, count_tokens, max_tokens)

    chunks: list[Chunk] = []
    first = 0
    while True:
        # Greedy: take units while they fit; the first one always goes in, it fits on its own.
        stop, total = first + 1, unit_counts[first]
        while stop < len(units) and total + unit_counts[stop] <= max_tokens:
            total += unit_counts[stop]
            stop += 1
        start, end = units[first][0], units[stop - 1][1]
        chunks.append(Chunk(doc_id, len(chunks), start, end, text[start:end], tuple(units[first:stop])))
        if stop == len(units):
            return chunks
        first = _next_first(unit_counts, first, stop, max_tokens, overlap_sentences)


def _next_first(counts: list[int], first: int, stop: int, max_tokens: int, overlap: int) -> int:
    """Where the chunk after units[first:stop] starts: up to `overlap` units back, if unit `stop` fits."""
    # Giving up overlap rather than unit `stop` keeps every chunk reaching past the one before it,
    # so no chunk is a mere copy of part of its predecessor and the loop always moves on.
    candidate = max(stop - overlap, first + 1)
    total = sum(counts[candidate : stop + 1])
    while candidate < stop and total > max_tokens:
        total -= counts[candidate]
        candidate += 1
    return candidate


def _fitting_units(
    text: str, sentences: list[Span], counts: list[int], count_tokens: TokenCounter, max_tokens: int
) -> tuple[list[Span], list[int]]:
    """The sentences with their token counts, each sentence over max_tokens replaced by pieces that fit."""
    too_long = [i for i, count in enumerate(counts) if count > max_tokens]
    if not too_long:
        return sentences, counts
    words = {i: [m.span() for m in _WORD.finditer(text, *sentences[i])] for i in too_long}
    all_words = [span for i in too_long for span in words[i]]
    word_counts = iter(_counted(count_tokens, [text[start:end] for start, end in all_words]))
    units: list[Span] = []
    unit_counts: list[int] = []
    for i, (sentence, count) in enumerate(zip(sentences, counts)):
        if count <= max_tokens:
            units.append(sentence)
            unit_counts.append(count)
            continue
        for piece, piece_count in _sentence_pieces(
            text, [(span, next(word_counts)) for span in words[i]], count_tokens, max_tokens
        ):
            units.append(piece)
            unit_counts.append(piece_count)
    return units, unit_counts


def _sentence_pieces(
    text: str, words: list[tuple[Span, int]], count_tokens: TokenCounter, max_tokens: int
) -> list[tuple[Span, int]]:
    """Cut an over-long sentence at whitespace into pieces of at most max_tokens tokens, with their counts."""
    # A piece's count is the sum of its words' counts: exact for WordPiece, which never lets a
    # token cross whitespace, and close for tokenizers that do.
    pieces: list[tuple[Span, int]] = []
    piece: Span | None = None  # the piece being filled, and its count so far
    total = 0
    for (word_start, word_end), count in words:
        if piece is not None and total + count <= max_tokens:
            piece, total = (piece[0], word_end), total + count
            continue
        if piece is not None:
            pieces.append((piece, total))
            piece = None
        if count > max_tokens:
            pieces.extend(_word_pieces(text, word_start, word_end, count_tokens, max_tokens))
        else:
            piece, total = (word_start, word_end), count
    if piece is not None:
        pieces.append((piece, total))
    return pieces


def _word_pieces(
    text: str, start: int, end: int, count_tokens: TokenCounter, max_tokens: int
) -> list[tuple[Span, int]]:
    """Cut one over-long word by characters into the longest pieces that fit, with their counts."""
    pieces: list[tuple[Span, int]] = []
    while start < end:
        # Binary search for the longest prefix that fits; a piece has at least one character
        # even if that alone is too many tokens, so the cutting always ends.
        # No piece is longer than max_tokens counted at the character floor (_counted), so the
        # search never tokenizes more than that: a megabyte-long word is cut in seconds.
        low, high = start + 1, min(end, start + max_tokens * CHARS_PER_TOKEN_AT_MOST)
        low_count = _counted(count_tokens, [text[start:low]])[0]
        while low < high:
            middle = (low + high + 1) // 2
            middle_count = _counted(count_tokens, [text[start:middle]])[0]
            if middle_count <= max_tokens:
                low, low_count = middle, middle_count
            else:
                high = middle - 1
        pieces.append(((start, low), low_count))
        start = low
    return pieces


# A text is counted as at least one token per this many characters other than spaces. WordPiece
# reads a word of more than 100 characters as one unknown token, so a megabyte with no space in it
# would count as one token and become one chunk; no real token is this long, so text of words
# (padded tables included) never meets it.
CHARS_PER_TOKEN_AT_MOST = 16


def _counted(count_tokens: TokenCounter, texts: list[str]) -> list[int]:
    """count_tokens(texts), checked to give one count per text, and at least a token per
    CHARS_PER_TOKEN_AT_MOST characters."""
    counts = list(count_tokens(texts))
    if len(counts) != len(texts):
        raise ValueError(f"token counter gave {len(counts)} counts for {len(texts)} texts")
    return [max(count, -(-len("".join(text.split())) // CHARS_PER_TOKEN_AT_MOST)) for count, text in zip(counts, texts)]


def _paragraph_sentences(text: str, start: int, end: int) -> list[Span]:
    """Sentence spans of text[start:end], a paragraph, found by sentencex and mapped back to text."""
    words = [m.span() for m in _WORD.finditer(text, start, end)]
    if not words:
        return []
    # A paragraph may be hard-wrapped or hold runs of spaces; the segmenter reads it with each run
    # of whitespace made one space, so a line break never decides a boundary. flat_starts[k] is
    # where word k sits in that flat text.
    flat = " ".join(text[a:b] for a, b in words)
    flat_starts: list[int] = []
    position = 0
    for a, b in words:
        flat_starts.append(position)
        position += b - a + 1

    def to_text(flat_position: int) -> int:
        k = bisect_right(flat_starts, flat_position) - 1
        return words[k][0] + flat_position - flat_starts[k]

    return [(to_text(a), to_text(b - 1) + 1) for a, b in _flat_sentences(flat)]


# sentencex never ends a sentence inside quotes or brackets. A quote opened with one mark and
# closed with another (SQuAD: ‘manifestly… abstained') is taken to run to the next closing
# mark of its kind, sentences later, and swallows all of them: one "sentence" of 1,371
# characters. A segment this long is read again with those marks blanked out.
_LONG_SENTENCE_CHARS = 500
_QUOTES_AND_BRACKETS = str.maketrans({mark: " " for mark in "\"'‘’“”«»„‚()[]{}"})


_ENUMERATOR = re.compile(r"\d{1,3}[.)]")


def _flat_sentences(flat: str) -> list[Span]:
    """Sentence spans of flat (single spaces, no edge whitespace): ``"Hi. Bye." -> [(0, 3), (4, 8)]``."""
    spans: list[Span] = []
    for start, stop in _segments(flat):
        if stop - start > _LONG_SENTENCE_CHARS:
            # Blanking keeps every character's position, so the pieces are offsets into flat.
            pieces = _segments(flat[start:stop].translate(_QUOTES_AND_BRACKETS))
            spans.extend(_trimmed(flat, start + a, start + b) for a, b in pieces)
        else:
            spans.append(_trimmed(flat, start, stop))
    spans = [span for span in spans if span[0] < span[1]]
    # A list's number is no sentence of its own: "2. Boil all tap water" is one, which sentencex
    # cuts after "2.".
    joined: list[Span] = []
    for span in spans:
        if joined and _ENUMERATOR.fullmatch(flat, *joined[-1]):
            joined[-1] = (joined[-1][0], span[1])
        else:
            joined.append(span)
    spans = joined
    for n in range(len(spans) - 1):
        (start, stop), (_, next_stop) = spans[n], spans[n + 1]
        if stop - start > 2 and flat[stop - 1] in _OPENING_QUOTES and flat[stop - 2] == " ":
            # A quote mark after the space that ends a sentence opens the next one: sentencex
            # reads a straight one there as closing when the paragraph's quotes do not pair up
            # (“…Botswana," Masisi said. "We are paying…").
            spans[n], spans[n + 1] = _trimmed(flat, start, stop - 1), (stop - 1, next_stop)
    return _credits_apart(flat, _clock_times_joined(flat, spans))


_OPENING_QUOTES = frozenset("\"'“‘«„")

# sentencex ends a sentence at "a.m." or "p.m." before a capital, but news writes the day, the
# date or the time zone after the hour: "It ended at 11 a.m. Saturday, police said." was two
# sentences, the second "Saturday, police said." 2023's news-dev articles write an hour so 2,247
# times. A sentence that ends on such an hour runs on into the next when that opens with one.
_ENDS_ON_AN_HOUR = re.compile(r"\d ?[ap]\.m\.$", re.IGNORECASE)
_AFTER_AN_HOUR = re.compile(
    r"(?:(?:" + "|".join(day.capitalize() for day in WEEKDAY_NAMES) + r")s?|[ECMP][SD]?T|GMT|UTC|BST|CET)\b"
    r"|(?:Eastern|Pacific|Central|Mountain|local)(?: (?:Standard|Daylight))? [Tt]ime\b"
    r"|(?:" + "|".join(month.capitalize() for month in MONTH_NAMES)
    + r"|Jan\.|Feb\.|Mar\.|Apr\.|Aug\.|Sept?\.|Oct\.|Nov\.|Dec\.) \d"
)


def _clock_times_joined(flat: str, spans: list[Span]) -> list[Span]:
    """spans with each sentence that ends on an hour joined to the next when that names its day,
    date or zone: ``"At 8 p.m. ET it began."`` is one sentence."""
    joined: list[Span] = []
    for start, stop in spans:
        if joined and _ENDS_ON_AN_HOUR.search(flat, joined[-1][0], joined[-1][1]) and _AFTER_AN_HOUR.match(flat, start):
            joined[-1] = (joined[-1][0], stop)
        else:
            joined.append((start, stop))
    return joined


def _credits_apart(flat: str, spans: list[Span]) -> list[Span]:
    """spans with a photo credit that opens a sentence made a sentence of its own (qa.text.PHOTO_CREDIT):
    ``"Pavel Mikheyev/Reuters A man walks his dog."`` is two. On 2023's news-dev articles a credit
    opens a caption 4,260 times; read as its first words, the photographer looked like a name
    the sentence gives, and a caption like an answer to "who"."""
    apart: list[Span] = []
    for start, stop in spans:
        credit = PHOTO_CREDIT.match(flat, start, stop)
        if credit is not None and credit.end() < stop:
            apart.append((start, credit.end()))
            start = credit.end() + 1  # past the one space the credit's look-ahead read
        apart.append((start, stop))
    return apart


def _segments(text: str) -> list[Span]:
    """sentencex's English segments of text as spans; they join up to exactly the text."""
    spans: list[Span] = []
    position = 0
    # A paragraph that opens with a bullet ("• It grew. It fell.") was one segment however many
    # sentences it held; a dash in its place is read as a list's mark. One character for one, so
    # the segments' lengths are the text's.
    for segment in _segment_english(text.translate(_BULLETS_AS_DASHES)):
        spans.append((position, position + len(segment)))
        position += len(segment)
    if position != len(text):  # never seen; if a release drops text, no character is lost
        spans.append((position, len(text)))
    return spans


_BULLETS_AS_DASHES = str.maketrans(dict.fromkeys("•◦▪▫‣●○■□", "-"))


def _trimmed(flat: str, start: int, stop: int) -> Span:
    """(start, stop) narrowed past the spaces at its edges; empty (start == stop) if only spaces."""
    while start < stop and flat[start] == " ":
        start += 1
    while stop > start and flat[stop - 1] == " ":
        stop -= 1
    return (start, stop)


def _segment_english(text: str) -> list[str]:
    """sentencex.segment("en", text), imported only when first needed (keeps `qa --help` fast)."""
    # sentencex (Wikimedia's rule-based segmenter, compiled Rust) replaced pysbd here: on SQuAD
    # paragraphs it splits at 0.02 us a character against pysbd's 3.9, and agrees with it on 97.9%
    # of sentences. pysbd was a quarter of a full index build.
    import sentencex

    return list(sentencex.segment("en", text))
