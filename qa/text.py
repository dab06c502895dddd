"""Words: how qa splits text into words, which it leaves out, how it stems them, and how common
a word is, in English at large (wordfreq) and in the user's own corpus, blended.

Both stores, retrieval, the answer stage, alignment, the claim checker and follow-ups read words
through this module, so a question's words and an article's words are always cut and stemmed the
same way.

A rare word is what ties a question to the sentence that answers it ("How deep was the earthquake
near Sines?": "Sines", "deep"). An IDF from the user's corpus alone knows nothing on a first run:
in a two-article index every word is in one article of two, so "Sines" weighs no more than "said".
English word frequencies (wordfreq, a maintained list built from many sources) say how rare a word
is before the corpus can; as the corpus grows, its own counts take over.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from itertools import filterfalse
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from qa.types import Span

# A word for keywords and stems: a run of letters, digits or underscores ("U.S." is "u", "s").
WORD = re.compile(r"\w+", re.UNICODE)
# A word as a person reads it, apostrophes kept: a follow-up's "he's" is not the pronoun "he".
SPOKEN_WORD = re.compile(r"[\w']+")
# A word or a number as the claim checker reads facts: "US-led", "Ivanov's", "1,400", "2.5".
FACT_WORD = re.compile(r"[^\W\d_][\w'’-]*|\d[\d,]*(?:\.\d+)?")

# The months and the days of the week, lower case: dates as text writes them.
MONTH_NAMES = tuple("january february march april may june july august september october november december".split())
WEEKDAY_NAMES = tuple("monday tuesday wednesday thursday friday saturday sunday".split())
# Each month's number by its name, its three letters and "sept", lower case: "Sept. 3", "3 Jan".
MONTH_NUMBERS = {
    spelling: number
    for number, name in enumerate(MONTH_NAMES, start=1)
    for spelling in (name, name[:3], *(("sept",) if name == "september" else ()))
}

# A photo credit as news pages print it before or after a caption: a photographer or archive,
# then each agency after a slash ("Pavel Mikheyev/Reuters", "Cole Burston/The Canadian Press/AP",
# "Arthur Edwards - Pool/Getty Images", "Bill Clark/CQ-Roll Call, Inc./Getty Images/File"). A
# gallery page runs "…on January 6. Valery Sharifulin/TASS A man walks…", and the segmenter makes
# the credit the opening words of the next caption. Read only from a sentence's start (`match`,
# `fullmatch`; never `search`, which goes quadratic on a long line of slashes), and only up to
# the start of what follows it: a capital (accented too, Latin-1 and Latin Extended-A), a digit
# ("…/AP 10 people were hurt"), a quote mark or a bracket, or the sentence's end. "A", "An" or
# "The" opens a sentence ("A USA TODAY/Suffolk University poll…"), not a photographer.
_CREDIT_NAME = r"(?!(?:A|An|The) )[A-ZÀ-ÖØ-ÞĀ-ž][\w'’.-]*(?:(?: | - )(?:[A-ZÀ-ÖØ-ÞĀ-ž][\w'’.-]*|of|de|del|da|van|von|der|al|bin|la|le|du)){0,5}"
# An agency between two slashes may run to several words ("The Canadian Press"). The last one
# ends on a word such names end on ("Getty Images", "Associated Press", "USA Today Network") or
# is one that in 2023's and 2024's news pages only ever closed a credit. A last word read any
# other way was often the first of a name ("New York/New Jersey", "Time Warner/CNN President…",
# "Gates/Bloomberg Philanthropies"), and the caption's own first word ("…/Getty Images Charles
# fishes…") must stay the caption's; nor does a credit end where a name goes on ("Evan Vucci/AP
# Press Secretary…", "Anadolu Agency via…"). Pages write some of them in capitals (REUTERS,
# ZUMA, FILE); "AP" and "PA" only so ("Ma/Pa Kettle" is a film).
_CREDIT_AGENCY = r"[A-Z][\w'’.&-]*(?:,? [A-Z][\w'’.&-]*){0,4}"
_CREDIT_ENDS = r"(?:Images|Press|Network|Photos|Pictures)\b"
_CREDIT_GOES_ON = r" (?:Images|Press|Network|Photos|Pictures|Agency|Group|Service|News|Archive|Alliance)\b"
_CREDIT_LAST_SOURCES = (r"(?:AP|PA|(?i:AFP|Reuters|TASS|Xinhua|Anadolu|Shutterstock|Alamy|Redux|Sipa|Zuma|Landov|Imagn"
                        r"|WireImage|EPA|EPA-EFE|NASA|File))\b")
_CREDIT_LAST = rf"(?:(?!{_CREDIT_LAST_SOURCES} )(?:[A-Z][\w'’.&-]* ){{0,3}}{_CREDIT_ENDS}|{_CREDIT_LAST_SOURCES})(?!{_CREDIT_GOES_ON})"
PHOTO_CREDIT = re.compile(rf"{_CREDIT_NAME}(?:/{_CREDIT_AGENCY}(?=/))*/{_CREDIT_LAST}(?= [A-ZÀ-ÖØ-ÞĀ-ž0-9“\"‘'(]|$)")

# Titles as news style writes them before a name ("Gov. Gavin Newsom", "Sen. Ted Cruz", "Lt.
# Gen. …"), and the words a question asks with ("What did the governor say?"). Read only as
# written there, capitalised with a stop and a name after it: "gen" or "rep" alone are other words.
TITLE_ABBREVIATIONS = {
    "Gov": "governor", "Sen": "senator", "Rep": "representative", "Lt": "lieutenant", "Gen": "general",
    "Col": "colonel", "Capt": "captain", "Sgt": "sergeant", "Adm": "admiral", "Cmdr": "commander",
    "Atty": "attorney", "Supt": "superintendent", "Prof": "professor", "Dr": "doctor", "Rev": "reverend",
    "Sec": "secretary", "Pres": "president",
}
# A lieutenant governor ("Lt. Gov. Eleni Kounalakis") is not the governor.
_TITLE_ABBREVIATION = re.compile(r"\b(?<!Lt\. )(" + "|".join(TITLE_ABBREVIATIONS) + r")\. (?=[A-Z])")


def titles_spelled_out(text: str) -> list[str]:
    """The titles `text` writes short before a name, spelled out: ``"Gov. Gavin Newsom and Sen. Ted
    Cruz" -> ["governor", "senator"]``; ``"Gen Z voters" -> []``; ``"Lt. Gov. Eleni Kounalakis" ->
    ["lieutenant"]``."""
    return [TITLE_ABBREVIATIONS[found.group(1)] for found in _TITLE_ABBREVIATION.finditer(text)]


# Words that carry no topic: kept out of keyword queries (so BM25 does not walk huge posting
# lists), out of term weights and out of the stems an answer sentence is matched on.
STOPWORDS = frozenset(
    """a about above after again against all am an and any are as at be because been before being
    below between both but by can could did do does doing down during each few for from further had
    has have having he her here hers herself him himself his how i if in into is it its itself just
    me more most my myself no nor not now of off on once only or other our ours ourselves out over own
    same she should so some such than that the their theirs them themselves then there these they
    this those through to too under until up very was we were what when where which while who whom
    why will with would you your yours yourself yourselves s t don much many""".split()
)

# The background English counts as this many chunks of ordinary text beside the corpus's own
# (see blended_idf). Chosen on SQuAD v2.0 dev (bench/judgment.py); see README "Quality and speed".
BACKGROUND_CHUNKS = 1000
# About how many words a chunk holds (chunks are up to 256 word pieces): how likely a chunk of
# ordinary English is to hold a word follows from the word's frequency and this.
WORDS_PER_CHUNK = 180


@lru_cache(maxsize=1)
def _english_frequencies() -> dict[str, float]:
    # The whole list, read once (about 0.2 s): a lookup is then a dict access, where wordfreq's
    # word_frequency() tokenises its word again on every call (30 µs).
    from wordfreq import get_frequency_dict

    return get_frequency_dict("en")


def english_frequency(word: str) -> float:
    """How often a lower-case word occurs in English text, 0 for a word wordfreq does not know:
    ``"the" -> 0.054``, ``"earthquake" -> 1.1e-05``."""
    return _english_frequencies().get(word, 0.0)


@lru_cache(maxsize=200_000)
def zipf(word: str) -> float:
    """A lower-case word's frequency on the Zipf scale (log10 per billion words): 0 for unknown
    words, 7.73 for "the", 4.0 for "earthquake"."""
    frequency = english_frequency(word)
    return round(math.log10(frequency * 1e9), 2) if frequency > 0 else 0.0


@lru_cache(maxsize=200_000)
def english_chunk_share(word: str) -> float:
    """The share of chunks of ordinary English that hold the word (a number: none)."""
    if word[:1].isdigit():
        return 0.0
    return -math.expm1(WORDS_PER_CHUNK * math.log1p(-min(english_frequency(word), 0.5)))


def blended_idf(word: str, document_frequency: int, total_chunks: int) -> float:
    """IDF of a word over the corpus's chunks plus BACKGROUND_CHUNKS chunks of ordinary English.

    In a two-article index of 20 chunks, "sines" in one chunk weighs 6.5 and "said" in 12 of them
    1.9; by the corpus alone they weighed 2.7 and 1.0. At 100,000 chunks the corpus decides.
    """
    background = BACKGROUND_CHUNKS * english_chunk_share(word)
    return math.log(1 + (total_chunks + BACKGROUND_CHUNKS + 1) / (document_frequency + background + 0.5))


def content_words(text: str) -> list[str]:
    """A text's words, lower-cased, stopwords left out, in order: ``"How much does Baghdad owe?"
    -> ["baghdad", "owe"]``."""
    return list(filterfalse(STOPWORDS.__contains__, WORD.findall(text.lower())))


def query_terms(text: str) -> list[str]:
    """Content words of a query, lower-cased, in order, without repeats.

    >>> query_terms("How much does Baghdad owe Russia?")
    ['baghdad', 'owe', 'russia']
    """
    return list(dict.fromkeys(content_words(text)))


@lru_cache(maxsize=1)
def _stemmer():
    import Stemmer

    return Stemmer.Stemmer("english")


# Stems of words met so far: a dict lookup is a fifth of the Snowball stemmer's cost per word, and
# hybrid search stems every word of each new candidate passage. When full it is replaced by a new
# one holding the words just stemmed, never emptied in place: a dict a caller holds (threads share
# it) keeps every word it had, while later calls fill the new one.
_STEMS: dict[str, str] = {}
STEM_CACHE_WORDS = 500_000


def stems(words: Sequence[str]) -> list[str]:
    """Snowball stems: ``["owes", "owed"] -> ["owe", "owe"]``."""
    global _STEMS
    known = _STEMS
    new = set(words).difference(known)
    if not new:  # the common case, looked up in C
        return list(map(known.__getitem__, words))
    unknown = list(new)
    fresh = dict(zip(unknown, _stemmer().stemWords(unknown)))
    if len(known) + len(fresh) > STEM_CACHE_WORDS:
        _STEMS = fresh
        return [fresh[word] if word in fresh else known[word] for word in words]
    known.update(fresh)
    return list(map(known.__getitem__, words))


@lru_cache(maxsize=200_000)
def sentence_stems(sentence: str) -> frozenset[str]:
    """The stems of a text's content words: ``"Baghdad owes Russia" -> {"baghdad", "owe", "russia"}``.

    Cached: the same candidate sentences come back query after query."""
    return frozenset(stems(query_terms(sentence)))


def word_pairs(text: str) -> frozenset[tuple[str, str]]:
    """Stemmed pairs of adjacent content words, stopwords skipped over.

    >>> sorted(word_pairs("The Foreign Minister of Russia"))
    [('foreign', 'minist'), ('minist', 'russia')]
    """
    sequence = stems(content_words(text))
    return frozenset(zip(sequence, sequence[1:]))


# Marks a sentence's start and end among a passage's stems: not a word character, and whitespace
# to str.split and to FTS5's tokenizer, so the marks change no token.
_BOUNDARY = "\x1f"


@dataclass(frozen=True)
class PassageStems:
    """A passage's stems in order, whole and sentence by sentence, each one string padded with
    spaces (``" baghdad owe russia "``): whether it holds a stem, or two side by side, is then a
    substring test (``" owe " in``, ``" owe russia " in``) that runs in C."""

    passage: str
    sentences: tuple[str, ...]


@lru_cache(maxsize=50_000)
def passage_stems(text: str, spans: tuple[Span, ...] = ()) -> PassageStems:
    """The stems of `text` and of each sentence span in it (offsets into `text`, in order), cut
    and stemmed as `stems(content_words(...))` cuts each, in one pass.

    Hybrid search reads every sentence of ~70 passages it has not met before in each query; cutting
    each piece of the passage once (its sentences and what lies between them) reads its text once,
    where cutting the passage and then each sentence read it twice (0.09 against 0.12 s for SQuAD
    v2.0's 1,204 paragraphs); a local index keeps the result (`marked_stems`).
    Cached: the same candidates come back query after query.

    >>> found = passage_stems("Baghdad owes Russia. It will pay.", ((0, 20), (21, 33)))
    >>> found.passage, found.sentences
    (' baghdad owe russia pay ', (' baghdad owe russia ', ' pay '))
    """
    marked = marked_stems(text, spans)
    found = None if marked is None else stems_from_marked(marked, len(spans))
    return _passage_stems_apart(text, spans) if found is None else found


def marked_stems(text: str, spans: Sequence[Span] = ()) -> str | None:
    """`keyword_stems(text)` with the start and end of each sentence span marked by a character
    that is neither a word nor a token to FTS5, so a store can keep the sentences' stems in its
    keyword index without changing what it matches (`stems_from_marked` reads them back).

    None when the text must be cut sentence by sentence instead: a span boundary with no
    whitespace on either side (it could cut a word in two, or change how one is lower-cased),
    spans out of order, overlapping or outside the text, or an empty stem.

    >>> marked_stems("Baghdad owes Russia. It will pay.", ((0, 20), (21, 33))).split("\x1f")
    [' ', ' baghdad owe russia ', '  ', ' pay ', ' ']
    """
    cuts = [0]
    for start, end in spans:
        cuts += (start, end)
    cuts.append(len(text))
    if any(a > b for a, b in zip(cuts, cuts[1:])) or any(
        0 < cut < len(text) and not text[cut - 1].isspace() and not text[cut].isspace() for cut in cuts[1:-1]
    ):
        return None
    pieces = [stems(content_words(text[a:b])) for a, b in zip(cuts, cuts[1:])]
    if any("" in piece for piece in pieces):  # an empty stem, which a padded string cannot show
        return None
    return f" {_BOUNDARY} ".join(" ".join(piece) for piece in pieces)


@lru_cache(maxsize=50_000)
def stems_from_marked(marked: str, sentences: int) -> PassageStems | None:
    """The `PassageStems` of a `marked_stems` string of a passage with this many sentences; None
    when it marks another number (it was made for other spans, or has no marks: older indexes).
    Cached, as `passage_stems` is: reading one takes ~13 µs, finding it again under 1 µs."""
    parts = marked.split(_BOUNDARY)
    if len(parts) != 2 * sentences + 1:
        return None
    return PassageStems(
        _padded(marked.split()),  # the mark is whitespace to str.split
        tuple(_padded(parts[n].split()) for n in range(1, len(parts), 2)),
    )


def _passage_stems_apart(text: str, spans: tuple[Span, ...]) -> PassageStems:
    return PassageStems(
        _padded(stems(content_words(text))),
        tuple(_padded(stems(content_words(text[start:end]))) for start, end in spans),
    )


def _padded(words: Sequence[str]) -> str:
    return " " + " ".join(words) + " " if words else " "


def keyword_stems(text: str) -> str:
    """What a store's BM25 index reads of a text: the Snowball stems of its content words, in
    order (``"Baghdad owes Russia" -> "baghdad owe russia"``). Both stores index these and search
    with `stems` of the query's words, so keywords match the same way in each."""
    return " ".join(stems(content_words(text)))


def keyword_text(title: str, text: str) -> str:
    """A chunk's title and text as one field of stems, for a store that indexes them together
    (Milvus): ``("Iraq", "Baghdad owes Russia") -> "iraq baghdad owe russia"``."""
    return keyword_stems(f"{title}\n{text}")


def is_question(sentence: str) -> bool:
    """Whether a sentence asks rather than says: ``"…was sold this week in which state?" -> True``."""
    return sentence.rstrip().rstrip("\"'”’)").endswith("?")


def unaccented(text: str) -> str:
    """`text` with every diacritic removed: ``"Zürich" -> "Zurich"``. (FTS5's unicode61 tokenizer
    removes Latin letters' only: qa.stores.local.keywords.fts5_token.)"""
    if text.isascii():
        return text
    import unicodedata

    return "".join(ch for ch in unicodedata.normalize("NFKD", text) if not unicodedata.combining(ch))


def counted(count: int, noun: str) -> str:
    """A count and its noun, singular for one: ``(1, "document") -> "1 document"``, ``(2, "chunk") -> "2 chunks"``."""
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"
