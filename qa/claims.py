"""Check stage: each sentence of a generated answer, against the passages it cites.

A model asked to cite can write "[2]" after a sentence passage 2 never says. Here code, not the
prompt, checks every sentence, in two ways:

1. **Hard facts.** Every number, amount, date and proper name the sentence states must appear in
   the passages it cites (or their headlines), after normalising the forms models rewrite:
   - numbers: "nine" and "9", "1,400" and "1400", "twenty-five" and "25", "5th" and "5";
   - amounts: "$8 billion", "8 billion dollars", "8bn" and "8,000 million" are all 8e9; a
     passage's "$8 billion" also vouches for a bare "8" (the sentence claims less), never the
     reverse; currency signs and "percent"/"%" are not compared;
   - dates: "Sept. 5", "Sep 5" and "September 5" are the same month and day; "May" is a month
     only next to a number;
   - names: capitalised words, matched by their stem in any case ("Officials" finds "official"),
     hyphenated parts each on its own; "U.S." is "United States" (and U.K., U.N., E.U. alike).
     A sentence's first word counts as a name only when it is not a common English word.
   A fact the user's question states may be repeated without a passage holding it: it is the
   user's premise, not something the model added.
   A model cannot talk its way past this: a wrong figure or a wrong name is "unsupported" however
   fluent the sentence. Nor past a denial: a sentence that says "not", "never", "no" or the like
   needs a negative word in its evidence ("does not owe" is not supported by "owes"), unless the
   user's question says one; nor can it drop one: "owes" where its evidence says "does not owe"
   is contradicted. Nor turn roles round: "Russia owes Baghdad" where the evidence says
   "Baghdad owes Russia" is contradicted too.
2. **Support.** The sentence is compared with every window of one or two consecutive sentences of
   each cited passage: its rare words found there (rarity from `wordfreq`, so a two-article index
   weighs words as a large one does) and the token alignment of qa.align (the same model's token
   states; paraphrases count). The best window is the evidence, as character offsets into the
   document's clean text, like every citation.

A sentence is `supported` (facts present and support over SUPPORT_THRESHOLD), `unsupported`, or
`uncited` (it cites no passage).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from types import MappingProxyType
from typing import TYPE_CHECKING, NamedTuple

from qa.align import sentence_maxima
from qa.chunk import split_sentences
from qa.retrieve import hit_reading
from qa.text import FACT_WORD, MONTH_NUMBERS, STOPWORDS, stems, unaccented, zipf
from qa.types import Claim, Evidence, Hit, Span

if TYPE_CHECKING:
    import numpy as np

    from qa.align import TokenAligner
    from qa.embed import TokenStates

SUPPORTED, UNSUPPORTED, UNCITED = "supported", "unsupported", "uncited"

# support = ALIGN_SHARE * alignment + (1 - ALIGN_SHARE) * rare-word coverage, of the best window.
# Chosen on the tuning half of bench/claims.py's SQuAD v1.1 claims (2,000 questions; `--fit` searches
# every share and threshold): from 0.39 to 0.50 at share 0.5, at least 97% of each false kind was
# marked unsupported, and true claims lost nothing below 0.45. On the report half at 0.45, each claim
# checked with its question: true sentences 0.0% and question-and-answer claims 0.4% unsupported;
# swapped answers 99.8% / 100% and wrong paragraphs 97.8% unsupported; AUROC 0.9995. (Without the
# question's facts counted as the user's, question-and-answer claims failed 4.2%.)
ALIGN_SHARE = 0.5
SUPPORT_THRESHOLD = 0.45
# A window is one sentence or two consecutive ones: generated sentences often join two facts.
WINDOW_SENTENCES = 2
# A sentence's first word this common in English (Zipf frequency, wordfreq's scale: "however" 5.58,
# "china" 5.1, "obama" 4.86, "aside" 4.59, "putin" 4.13, "albright" 2.94), or ending in -ly, is read
# as an ordinary word, not a name: "Bush met Putin" is checked for "Bush", while a leading "China"
# goes unchecked as a name (its support still counts it).
COMMON_FIRST_WORD_ZIPF = 5.0

# A denial in a generated sentence ("not only" is none), and what may answer it in its evidence:
# any negative word, "refused", "denied", "failed", "without" too, so that a faithful paraphrase of
# a negative passage passes. A passage's denial the sentence drops (it says "owes" where the
# passage says "does not owe") is caught the other way, by what the denial governs (_dropped_denial).
_DENIAL = re.compile(r"\b(?:not|never|no|none|nobody|nothing|neither|nor|nowhere|cannot)\b|\b\w+n['’]t\b",
                     re.IGNORECASE)
# Wordings with a negative word that deny nothing: "not only … but", "no fewer than 300",
# "whether or not", "a no-fly zone", "a nor'easter", "No 5".
_NOT_DENIALS = re.compile(
    r"\bnot\s+(?:only|just|merely|simply|solely|exclusively)\b|\bno\s+(?:fewer|less|more|later|sooner|longer|earlier)\s+than\b"
    r"|\bwhether\s+or\s+not\b|\bno-\w|\bnor['’]\w|\bno\.?\s*\d",
    re.IGNORECASE,
)
# Denials whose next word is not what they deny: "not until 1990", "not since 2001", "never before",
# and a hedge: "different, if not opposing, goals".
_UNSCOPED_DENIALS = re.compile(r"\b(?:not|never)\s+(?:until|since|before|least)\b|\bif\s+not\b", re.IGNORECASE)
# A question with one of these words takes what it says for granted ("Where does the water mix?"
# holds that it mixes); one without asks whether, yes or no ("And does Baghdad owe Russia?", "So
# Baghdad owes Russia?"), unless it offers a choice ("Would it alter the treaties or replace them?").
_PRESUPPOSING_QUESTION = re.compile(r"\b(?:what|who|whom|whose|which|where|when|why|how|or)\b", re.IGNORECASE)
# Denials of a verb or an adjective ("does not owe", "never paid", "isn't clear"), the only ones a
# dropped denial is looked for from: "no" denies a noun ("has no money"), which a true sentence
# may well use in another frame ("owes Russia money").
_VERB_DENIAL = re.compile(r"(?:not|never|cannot|\w+n['’]t)", re.IGNORECASE)
# Before a word of a sentence, these say it is not stated as done: "trying to identify", "called on
# Smith to resign", "rather than insisting", "whether it pays".
_UNASSERTED = re.compile(r"\b(?:to|rather\s+than|instead\s+of|whether|if|unless)\s+(?:\w+\s+){0,2}$", re.IGNORECASE)
# A passage's denial is read as denying the first word after it that says something (stopwords,
# "-ly" and these adverbs skipped), within this many words and the same clause: "does not owe" ->
# "owe", "was never fully repaid" -> "repaid".
DENIED_WORD_REACH = 4
# A dropped "no" is read in the same frame only: the word before "no" in the passage ("found no
# bodies") at most this many words before the thing in the sentence ("found the two bodies").
NO_FRAME_REACH = 3
# Between two words, a mark that ends a clause: a denial or a frame reaches no further.
_CLAUSE_BREAK = re.compile(r"[,;:.!?()\[\]—–]")
_ADVERBS = frozenset("yet ever even also always still quite entirely fully really actually necessarily".split())
_SPOKEN = re.compile(r"[\w'’]+")
# Between a subject and its verb: "Russia will pay", "Russia has paid" (a form of "be" is not here:
# "Russia was paid by Baghdad" turns the roles round).
_ROLE_AUXILIARIES = frozenset("will would can could may might must shall should did does do has have had "
                              "also still then later soon again reportedly".split())
_DETERMINERS = frozenset("the a an its his her their our".split())
# Words that may stand between two names without being a verb: "Russia via Turkey", "Iraq amid".
_NOT_VERBS = frozenset("via amid amidst toward towards versus vs despite including near like unlike per plus "
                       "minus beside besides alongside across along around behind beyond inside outside within "
                       "without upon onto among amongst throughout beneath underneath till according".split())
# Stems of words that say the same both ways round: "Biden met Putin" is "Putin met Biden".
_BOTH_WAYS = frozenset(stems(
    "met meet meets meeting married marry marries faced face faces played play plays fought fight fights "
    "tied tie ties drew draw draws talked talk talks spoke speak speaks negotiated negotiate debated "
    "debate clashed clash merged merge partnered partner shared share traded trade exchanged exchange "
    "versus vs against joined join".split()))
_NEGATIVE = re.compile(
    r"\b(?:not|never|no|none|nobody|nothing|neither|nor|nowhere|cannot|without|unable|den(?:y|ies|ied|ial)"
    r"|refus\w*|declin\w*|fail\w*|lack\w*|reject\w*|absen\w*)\b|\b\w+n['’]t\b",
    re.IGNORECASE,
)
_CITATION = re.compile(r"\[(\d+(?:\s*[,;–-]\s*\d+)*)\]")
# A line's end that ends its sentence: a full stop, "!" or "?", then perhaps a closing quote or
# bracket and its citations ("…debt.” [1]"), or a citation alone ("…$8 billion [1]": small models
# leave the full stop out); a ")" or ":" does not (wrapped text, a quote next).
_SENTENCE_END = re.compile(r"(?:[.!?][\"'”’)\]]*(?:\s*\[\d[^\]]*\])*|\[\d[^\]]*\])\s*$")
_HEADING = re.compile(r"^\s{0,3}#{1,6}(?:\s|$)")
_LIST_MARKER = re.compile(r"^\s*(?:[-*•]|\d+[.)])\s+")
_LEADING_CITATIONS = re.compile(r"^(?:\s*\[\d+(?:\s*[,;–-]\s*\d+)*\])+")
_DIGITS = re.compile(r"(?<![\w.])(\d{1,3}(?:,\d{3})+|\d+)(\.\d+)?")
_SCALE_AFTER = re.compile(r"\s*-?\s*(thousand|million|billion|trillion|bn|mn|m|k)\b", re.IGNORECASE)
_SCALES = {"thousand": 1e3, "k": 1e3, "million": 1e6, "m": 1e6, "mn": 1e6, "billion": 1e9, "bn": 1e9, "trillion": 1e12}
_UNITS = {w: i for i, w in enumerate(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
    "sixteen seventeen eighteen nineteen".split())}
_TENS = {w: 10 * (i + 2) for i, w in enumerate("twenty thirty forty fifty sixty seventy eighty ninety".split())}
# Capitalised words that are not names to check: titles before a name and company suffixes after
# one, which a paraphrase drops or adds, and currencies, which are units of an amount.
_NOT_NAMES = frozenset("sir mr mrs ms dr prof st lord lady dame inc ltd corp co plc llc euro euros".split())
# Endings that make a people or a language of a place: Italy/Italian, Asia/Asian, Japan/Japanese.
_DEMONYM_ENDINGS = ("n", "an", "ian", "ese", "ish", "i")
# Names written two ways, both read as the second form.
_ALIASES = [
    (re.compile(r"\bU\.\s?S\.(?:\s?A\.)?|\bUnited States(?: of America)?\b|\bUSA\b"), "US"),
    (re.compile(r"\bU\.\s?K\.|\bUnited Kingdom\b"), "UK"),
    (re.compile(r"\bU\.\s?N\.|\bUnited Nations\b"), "UN"),
    (re.compile(r"\bE\.\s?U\.|\bEuropean Union\b"), "EU"),
    (re.compile(r"\bTV\b"), "television"),
]


@dataclass(frozen=True)
class Facts:
    """What a text states that a paraphrase may not change: numbers, months and names."""

    numbers: frozenset[float] = frozenset()
    months: frozenset[int] = frozenset()
    names: frozenset[str] = frozenset()  # name keys (_name_key): lower-case, no accents, no plural s
    # (first name, last name) of two-word names: "Peyton" is taken as found when "Manning" is
    heads: frozenset[tuple[str, str]] = frozenset()
    proper: frozenset[str] = frozenset()  # of a passage: the keys of the names in it, capitalised mid-sentence

    def __bool__(self) -> bool:
        return bool(self.numbers or self.months or self.names)

    def __or__(self, other: Facts) -> Facts:
        return Facts(self.numbers | other.numbers, self.months | other.months, self.names | other.names,
                     self.heads | other.heads, self.proper | other.proper)

    def __sub__(self, other: Facts) -> Facts:
        return Facts(self.numbers - other.numbers, self.months - other.months, self.names - other.names,
                     self.heads)

    def found_in(self, other: Facts) -> Facts:
        """The part of these facts that `other` states too. A name also counts in the form of a
        people ("Italian" for "Italy", "Asian" for "Asia"), and a first name ("Peyton Manning")
        when its last name is there as a name ("Manning")."""
        found = {name for name in self.names if _name_in(name, other.names)}
        found |= {name for name, head in self.heads if name in self.names and head in other.proper}
        return Facts(self.numbers & other.numbers, self.months & other.months, frozenset(found), self.heads)

    def labelled(self, labels: dict[str, str]) -> list[str]:
        """These facts in the words the text used for them."""
        return ([labels.get(f"n:{value}", f"{value:g}") for value in sorted(self.numbers)]
                + [labels.get(f"m:{month}", str(month)) for month in sorted(self.months)]
                + [labels.get(f"w:{name}", name) for name in sorted(self.names)])


def _name_in(name: str, keys: frozenset[str]) -> bool:
    """Whether a name is among a passage's words: the same; a place and its people ("italy" and
    "italian": the place, less a final y, a or e, and a demonym ending); or, from six letters on,
    one letter added, dropped or changed, as transliterations and typos differ ("Frensh")."""
    if name in keys:
        return True
    for other in keys:
        if other[:2] != name[:2]:
            continue
        shorter, longer = sorted((name, other), key=len)
        stem = shorter.rstrip("yae") if len(shorter) > 3 else shorter
        if longer.startswith(stem) and longer[len(stem):] in _DEMONYM_ENDINGS:
            return True
        if len(name) >= 6 and abs(len(other) - len(name)) <= 1 and _one_edit_apart(name, other):
            return True
    return False


def _name_key(word: str) -> str:
    """How a name is compared: lower case, possessive and plural s dropped: "Broncos'" -> "bronco"."""
    key = word.lower().rstrip("'’.").removesuffix("'s").removesuffix("’s")
    return key[:-1] if len(key) > 4 and key.endswith("s") and not key.endswith("ss") else key


def _one_edit_apart(a: str, b: str) -> bool:
    if len(a) > len(b):
        a, b = b, a
    i = 0
    while i < len(a) and a[i] == b[i]:
        i += 1
    if len(a) == len(b):
        return a[i + 1:] == b[i + 1:]
    return a[i:] == b[i + 1:]


def split_claims(text: str) -> list[tuple[str, tuple[int, ...]]]:
    """A generated answer's sentences, each with the passage numbers it cites, markers removed.

    >>> split_claims("Baghdad owes Russia $8 billion [1]. Talks went on [2, 3].")
    [('Baghdad owes Russia $8 billion.', (1,)), ('Talks went on.', (2, 3))]
    """
    sentences: list[list] = []
    for block, is_item in _blocks(text):
        for number, (start, end) in enumerate(split_sentences(block)):
            piece = block[start:end]
            leading = _LEADING_CITATIONS.match(piece)
            # "… $8 billion. [1]" splits the marker off its sentence; but a list item that opens
            # with its marker ("- [2] Ivanov said…"), or a sentence after one that cites already
            # ("[1] Baghdad owes… [2] Moscow wants…", the passages' own style), cites for itself.
            opens_its_own = (number == 0 and is_item) or bool(sentences and sentences[-1][1])
            if leading and sentences and (not opens_its_own or not piece[leading.end():].strip()):
                sentences[-1][1].extend(_numbers_in(leading.group(0)))
                piece = piece[leading.end():]
            if not piece.strip():
                continue
            sentences.append([piece, _numbers_in(piece)])
    claims = []
    for piece, cited in sentences:
        plain = re.sub(r"\*\*|__", "", _CITATION.sub("", piece))  # Markdown's bold marks
        plain = re.sub(r"\s+([.,;:!?])", r"\1", plain)
        plain = re.sub(r"^\s*(?:[-*•]|\d+[.)])\s+", "", " ".join(plain.split()))
        if any(ch.isalnum() for ch in plain):
            claims.append((plain, tuple(dict.fromkeys(cited))))
    return claims


def _blocks(text: str) -> list[tuple[str, bool]]:
    """A generated answer's lines as its sentences stand in them, each with whether it is a list
    item: each list item, paragraph, or line ending as a sentence ends apart, its list marker
    gone; a line that runs on (text wrapped at a width, "Ivanov said:" before its quote) joined to
    the next. A list of lines with no full stop ("- Moscow wants contracts [1]" and "- Russia
    agreed [1]") was one sentence, checked as one.

    >>> _blocks("- Moscow wants contracts [1]\\n- Russia agreed [1]\\n\\nIt was\\nlate (so he said).")
    [('Moscow wants contracts [1]', True), ('Russia agreed [1]', True), ('It was late (so he said).', False)]
    """
    blocks: list[list] = []
    ended = True  # whether the block before has ended (a blank line, a sentence's end)
    for line in text.splitlines():
        if not line.strip() or _HEADING.match(line):  # a heading ("## Answer") states nothing
            ended = True
            continue
        # A numbered list ("1. Baghdad owes…") would split at its numbers: the markers go first.
        item = _LIST_MARKER.match(line)
        words = line[item.end():].strip() if item else line.strip()
        if blocks and not ended and not item:
            blocks[-1][0] += " " + words
        else:
            blocks.append([words, bool(item)])
        ended = bool(_SENTENCE_END.search(line))
    return [(words, is_item) for words, is_item in blocks]


def _numbers_in(markers: str) -> list[int]:
    numbers = []
    for group in _CITATION.findall(markers):
        for a, dash, b in re.findall(r"(\d+)(?:\s*([–-])\s*(\d+))?", group):
            low, high = sorted((int(a), int(b))) if dash else (0, 0)
            if dash and high - low < 20:
                numbers.extend(range(low, high + 1))
            elif dash:  # too wide to be meant: both ends, so that one past the passages is said
                numbers.extend((int(a), int(b)))
            else:
                numbers.append(int(a))
    return numbers


def extract_facts(text: str, lenient_scale: bool = False) -> tuple[Facts, dict[str, str]]:
    """The numbers, months and names a text states, with the words it used for each.

    `lenient_scale` (for passages) also keeps each scaled amount's bare number, so a passage's
    "$8 billion" supports a sentence's "8".

    >>> sorted(extract_facts("Russia is owed $8 billion, nine times more since Sept. 5.")[0].numbers)
    [5.0, 9.0, 8000000000.0]
    """
    text = _aliased(text)
    numbers: set[float] = set()
    labels: dict[str, str] = {}
    taken: list[Span] = []
    for match in _DIGITS.finditer(text):
        value = float(match.group(1).replace(",", "") + (match.group(2) or ""))
        end = match.end()
        scale = _SCALE_AFTER.match(text, end)
        if scale and (scale.group(1).lower() not in ("m", "k") or scale.start(1) == end):
            if lenient_scale:
                numbers.add(_rounded(value))
            value *= _SCALES[scale.group(1).lower()]
            end = scale.end()
        numbers.add(_rounded(value))
        first = match.start() - 1 if match.start() and text[match.start() - 1] in "$€£¥" else match.start()
        labels.setdefault(f"n:{_rounded(value)}", text[first:end].strip())
        taken.append((match.start(), end))
    words = [(m.group(0), m.start(), m.end()) for m in FACT_WORD.finditer(text)]
    numbers |= _spelled_numbers(words, labels, lenient_scale)
    months: set[int] = set()
    names: list[tuple[str, int]] = []  # (stem, index of the word) in text order
    for i, (word, start, end) in enumerate(words):
        if any(a <= start < b for a, b in taken):
            continue
        bare = word.rstrip("'’").removesuffix("'s").removesuffix("’s")
        lower = bare.lower()
        if not bare or not bare[0].isupper():
            continue
        month = MONTH_NUMBERS.get(lower.rstrip("."))
        # "May", and abbreviations ("Jan Egeland"), are months only beside a number, with a full
        # stop, or after a word that says when ("resume in May after a pause"; not "by May").
        short = lower == "may" or len(lower.rstrip(".")) <= 4
        if month is not None and (not short or _next_to_digit(words, i) or text[end:end + 1] == "."
                                  or (i and words[i - 1][0].lower() in _BEFORE_A_MONTH and lower in _SHORT_MONTH_NAMES
                                          and bare == word and not text[words[i - 1][2]:start].strip())):
            months.add(month)
            labels.setdefault(f"m:{month}", bare)
            continue
        if not _may_be_name(text, words, i):
            continue
        for part in bare.split("-"):
            if len(part) > 1 and part[0].isupper():
                key = _name_key(part)
                names.append((key, i))
                labels.setdefault(f"w:{key}", part)
    # A two-word name whose first word may go missing: "Peyton Manning" where the passage says "Manning".
    runs: list[list[tuple[str, int]]] = []
    for stem, i in names:
        if runs and runs[-1][-1][1] in (i, i - 1) and not _starts_sentence(text, words[i][1]):
            runs[-1].append((stem, i))
        else:
            runs.append([(stem, i)])
    resolved = {(run[0][0], run[1][0]) for run in runs if len(run) == 2 and run[0][1] != run[1][1]}
    return Facts(frozenset(numbers), frozenset(months), frozenset(s for s, _ in names), frozenset(resolved)), labels


@lru_cache(maxsize=4096)
def passage_facts(text: str) -> Facts:
    """What a passage (or headline) can vouch for: its numbers (a scaled amount's bare number too),
    its months, and every word in it, in any case ("officials" vouches for "Officials")."""
    facts, _ = extract_facts(text, lenient_scale=True)
    words = [w.strip("'’-") for w in FACT_WORD.findall(_aliased(text)) if not w[0].isdigit()]
    every = {_name_key(part) for word in words for part in word.split("-") if part}
    # "May", "June" and "July" are names too ("Theresa May"): a passage that writes one vouches for
    # the month as well, so a claim that reads it the other way ("since May took office") is not
    # refused for a month its passage "lacks".
    months = facts.months | {MONTH_NUMBERS[w.lower()] for w in words if w.lower() in _SHORT_MONTH_NAMES and w[0].isupper()}
    return Facts(facts.numbers, frozenset(months), frozenset(every) | _initialisms(text), proper=facts.names)


def _initialisms(text: str) -> frozenset[str]:
    """Initials of capitalised runs, so "UMC" is found in "United Methodist Church" ("of", "the" skipped)."""
    found = set()
    for run in re.finditer(r"[A-Z][\w'’]+(?:\s+(?:(?:of|the|and|for)\s+)?[A-Z][\w'’]+)+", text):
        initials = "".join(w[0] for w in run.group(0).split() if w[0].isupper()).lower()
        for size in range(2, min(len(initials), 6) + 1):
            for first in range(len(initials) - size + 1):
                found.add(initials[first:first + size])
    return frozenset(found)


def _aliased(text: str) -> str:
    """The text with accents dropped ("Böke" is "Boke") and two-way names in one form."""
    text = unaccented(text)
    for pattern, canonical in _ALIASES:
        text = pattern.sub(canonical, text)
    return text


def _rounded(value: float) -> float:
    return float(f"{value:.6g}")


def _spelled_numbers(words: list[tuple[str, int, int]], labels: dict[str, str], lenient_scale: bool) -> set[float]:
    """Numbers written in words: "nine" -> 9, "twenty-five" -> 25, "two hundred million" -> 2e8.

    A lone "one" is left out: it is far more often a pronoun ("one of the largest") than a count.
    """
    found: set[float] = set()
    i = 0
    while i < len(words):
        parts = words[i][0].lower().split("-")
        if not all(p in _UNITS or p in _TENS for p in parts):
            # "four-valve": a number leading a compound
            if len(parts) > 1 and (parts[0] in _UNITS or parts[0] in _TENS) and parts[0] != "one":
                value = float(_UNITS.get(parts[0], 0) + _TENS.get(parts[0], 0))
                found.add(_rounded(value))
                labels.setdefault(f"n:{_rounded(value)}", parts[0])
            i += 1
            continue
        first = i
        total, current = 0.0, float(sum(_UNITS.get(p, 0) + _TENS.get(p, 0) for p in parts))
        bare = current
        i += 1
        while i < len(words):
            word = words[i][0].lower()
            pieces = word.split("-")
            if all(p in _UNITS or p in _TENS for p in pieces):
                current += sum(_UNITS.get(p, 0) + _TENS.get(p, 0) for p in pieces)
            elif word == "hundred":
                current *= 100
            elif word in ("thousand", "million", "billion", "trillion"):
                total += current * _SCALES[word]
                current = 0.0
            elif word == "and" and i + 1 < len(words) and words[i + 1][0].lower() in _UNITS | _TENS:
                pass
            else:
                break
            i += 1
        value = total + current
        if i - first == 1 and words[first][0].lower() == "one":
            continue
        found.add(_rounded(value))
        if lenient_scale and value != bare:
            found.add(_rounded(bare))
        labels.setdefault(f"n:{_rounded(value)}", " ".join(w for w, _, _ in words[first:i]))
    return found


# Words that follow an opening adverbial ("Besides the", "Aside from", "Compared to"), where a name
# that begins a sentence is followed by what it did ("Bush met", "Russia has").
_AFTER_OPENER = frozenset("from to with for of in on at by as than the a an".split())


def _may_be_name(text: str, words: list[tuple[str, int, int]], i: int) -> bool:
    """Whether capitalised word i of `text` may be a name: not a stopword, a title, a number word,
    nor a sentence's first word that English uses often ("Approximately", "However")."""
    word, start, _ = words[i]
    lower = word.rstrip("'’").removesuffix("'s").removesuffix("’s").lower()
    if lower.rstrip(".") in STOPWORDS | _NOT_NAMES or lower in _UNITS or lower in _TENS or lower in _SCALES:
        return False
    return not (_starts_sentence(text, start) and (
        lower.endswith("ly") or zipf(lower) >= COMMON_FIRST_WORD_ZIPF or _opens_a_phrase(text, words, i)))


def _opens_a_phrase(text: str, words: list[tuple[str, int, int]], i: int) -> bool:
    """Whether the sentence's first word opens a phrase (followed by a comma, a preposition or an article)."""
    if text[words[i][2]:words[i][2] + 1] == ",":
        return True
    return i + 1 < len(words) and words[i + 1][0].lower() in _AFTER_OPENER


# Words after which a month's name in full is the month: "in May", "since June", "last July" (not
# "by", "to", "with": "a speech by May"; and not an abbreviation: "in Jan Egeland's office").
_SHORT_MONTH_NAMES = frozenset(("may", "june", "july"))
_BEFORE_A_MONTH = frozenset("in since until till through throughout during early late mid last next this".split())


def _next_to_digit(words: list[tuple[str, int, int]], i: int) -> bool:
    return any(0 <= j < len(words) and words[j][0][0].isdigit() for j in (i - 1, i + 1))


def _starts_sentence(text: str, start: int) -> bool:
    before = text[:start].rstrip(" \t\n\"'“‘(")
    return not before or before[-1] in ".!?:;"


def rarity(word: str) -> float:
    """How much a word of a sentence says, from its English frequency: "the" 0, "debt" 2.81, "ivanov" 4.73.

    Unlike an IDF from the user's own corpus, it means the same in a two-article index as in a
    large one.
    """
    if word in STOPWORDS:
        return 0.0
    return max(0.5, 7.5 - zipf(word)) if not word[0].isdigit() else 4.0


@lru_cache(maxsize=16384)
def _content_stems(text: str) -> Mapping[str, float]:
    """Each content word's stem with its rarity (the highest of the words sharing that stem)."""
    words = [w.lower().strip("'’-").replace(",", "") for w in FACT_WORD.findall(_aliased(text))]
    words = [w.removesuffix("'s").removesuffix("’s") for w in words if w]
    weights: dict[str, float] = {}
    for word, stem in zip(words, stems(words)):
        weight = rarity(word)
        if weight > 0:
            weights[stem] = max(weights.get(stem, 0.0), weight)
    return MappingProxyType(weights)  # cached: shared, so read-only


def _token_weights(text: str) -> dict[str, float]:
    """Rarity by stem for the words the aligner sees in the sentence as written (runs of letters or
    digits, so "US-led" is "US" and "led"), which _content_stems' normalised words can miss."""
    words = [w.lower() for w in re.findall(r"[^\W_]+", text)]
    return {stem: rarity(word) for word, stem in zip(words, stems(words))}


@dataclass(frozen=True)
class _Window:
    n: int
    hit: Hit
    span: Span  # article offsets
    coverage: float
    alignment: float

    @property
    def support(self) -> float:
        return ALIGN_SHARE * self.alignment + (1 - ALIGN_SHARE) * self.coverage


class ClaimChecker:
    """Checks generated sentences against numbered passages with the embedder's own model."""

    def __init__(self, aligner: TokenAligner) -> None:
        self.aligner = aligner

    def check_answer(self, text: str, passages: Sequence[Hit], question: str | None = None) -> list[Claim]:
        """Every sentence of a generated answer, checked against the passages it cites ([1] is passages[0]).

        `question` is what the user asked: the numbers, dates and names it states are the user's
        words, which an answer may repeat without a passage holding them (see `check`).
        """
        sentences = split_claims(text)
        # One call for every cited sentence; the int8 encoder reads each alone (qa.embed), so a
        # sentence's support does not depend on the others the model wrote beside it.
        cited = list(dict.fromkeys(sentence for sentence, citations in sentences if citations))
        states = dict(zip(cited, self.aligner.embedder.token_states(cited))) if cited else {}
        return [self.check(sentence, citations, passages, states.get(sentence), question)
                for sentence, citations in sentences]

    def check(self, sentence: str, citations: Sequence[int], passages: Sequence[Hit],
              states: TokenStates | None = None, question: str | None = None) -> Claim:
        """One sentence against the passages it cites; `states` are its token states when already read.

        A hard fact the user's `question` states ("What are the two subsystems…?" -> "The two
        subsystems are…") is not one the model added, so the cited passages need not hold it; the
        support score, which a false premise fails, is computed as without a question.
        """
        citations = tuple(citations)
        if not citations:
            return Claim(sentence, (), UNCITED, 0.0)
        cited = [(n, passages[n - 1]) for n in citations if 1 <= n <= len(passages)]
        invalid = [f"[{n}]" for n in citations if not 1 <= n <= len(passages)]
        if not cited:
            return Claim(sentence, citations, UNSUPPORTED, 0.0, (), tuple(invalid))
        facts, labels = extract_facts(sentence)
        vouched = [(n, hit, passage_facts(hit.title) | passage_facts(hit.text)) for n, hit in cited]
        asked = passage_facts(question) if question else Facts()
        found = facts.found_in(_union([f for _, _, f in vouched] + [asked]))
        missing = (facts - found).labelled(labels)
        windows = self._windows(sentence, cited, states)
        best = max(windows, key=lambda w: w.support)

        def contradiction(window: _Window) -> tuple[str, str | tuple[str, str, str]] | None:
            return (_dropped_denial(sentence, window, question) or _dropped_no(sentence, window, question)
                    or _swapped_roles(sentence, window, question))

        against = contradiction(best)
        strong = [w for w in windows if w.support >= SUPPORT_THRESHOLD]
        if against:
            # Evidence that says it the other way (denies it, swaps its roles) gives way to a cited
            # window that says it this way: "Smith resigned on Friday" beside "did not resign on Monday".
            said = [w for w in strong if w is not best and _affirms(w, against[1]) and not contradiction(w)]
            if said:
                best, against = max(said, key=lambda w: w.support), None
        contradicted = against[0] if against else None
        support = round(best.support, 4)
        # Each cited passage that alone supports it is shown as its source too ([1][2] where the
        # story's sentence is in both: overlapping chunks, a wire copy on another site); not one
        # whose windows all say it the other way.
        supporting = () if contradicted else tuple(
            n for n in dict.fromkeys(citations)
            if any(w.n == n and (w is best or not contradiction(w)) for w in strong))
        denial = _unmet_denial(sentence, best, question)
        if denial:
            missing.append(f"“{denial}”")
        evidence = [_evidence(best)]
        evidence += _fact_evidence(found, best, vouched)
        verdict = (SUPPORTED if not missing and not invalid and not contradicted and support >= SUPPORT_THRESHOLD
                   else UNSUPPORTED)
        return Claim(sentence, citations, verdict, support, tuple(evidence), tuple(missing + invalid), supporting,
                     (contradicted,) if contradicted else ())

    def features(self, sentence: str, passages: Sequence[Hit], question: str | None = None) -> tuple[float, float, int]:
        """(alignment, coverage, facts missing) of the sentence's best window in `passages`, for bench/claims.py."""
        facts, _ = extract_facts(sentence)
        vouched = [passage_facts(h.title) | passage_facts(h.text) for h in passages]
        missing = facts - facts.found_in(_union(vouched + ([passage_facts(question)] if question else [])))
        best = max(self._windows(sentence, list(enumerate(passages, start=1))), key=lambda w: w.support)
        denied = (_unmet_denial(sentence, best, question) is not None or _dropped_denial(sentence, best, question) is not None
                  or _dropped_no(sentence, best, question) is not None
                  or _swapped_roles(sentence, best, question) is not None)
        return best.alignment, best.coverage, len(missing.labelled({})) + denied

    def read(self, passages: Sequence[Hit]) -> None:
        """Read passages with the model ahead of checking (as hybrid search already did for `qa ask`)."""
        self.aligner.read_passages([hit_reading(hit)[0] for hit in passages])

    def _windows(self, sentence: str, cited: Sequence[tuple[int, Hit]], states: TokenStates | None = None) -> list[_Window]:
        """Every window of one or two consecutive sentences of the cited passages, scored."""
        import numpy as np

        weights = _content_stems(sentence)
        stems_wanted = list(weights)
        wanted = np.array([weights[s] for s in stems_wanted], dtype=np.float64)
        total = float(wanted.sum()) or 1.0
        question = self.aligner.question(sentence, _token_weights(sentence), states)
        reads = [hit_reading(hit) for _, hit in cited]
        states = self.aligner.read_passages([text for text, _, _ in reads])
        windows = []
        for (n, hit), (_, _, spans), read in zip(cited, reads, states):
            if not spans:
                continue
            article_spans = list(hit.sentences) or [(hit.start, hit.end)]
            titled = _content_stems(hit.title).keys()
            # Which of the sentence's rare words each passage sentence holds (the headline's count for all).
            held = np.array([[stem in words or stem in titled for stem in stems_wanted] for words in (
                _content_stems(hit.text[a - hit.start:b - hit.start]).keys() for a, b in article_spans)],
                dtype=bool).reshape(len(spans), len(stems_wanted))
            # Each passage sentence's best cosine for every token of the generated sentence.
            best = sentence_maxima(question.vectors @ read.vectors.T, read, spans)
            for size in range(1, min(WINDOW_SENTENCES, len(spans)) + 1):
                count = len(spans) - size + 1
                window_best = best[:, :count].copy()
                window_held = held[:count].copy()
                for shift in range(1, size):
                    np.maximum(window_best, best[:, shift:shift + count], out=window_best)
                    window_held |= held[shift:shift + count]
                coverage = window_held @ wanted / total
                alignment = _alignment(window_best, question.weights)
                for first in range(count):
                    span = (article_spans[first][0], article_spans[first + size - 1][1])
                    windows.append(_Window(n, hit, span, float(coverage[first]), float(alignment[first])))
        if not windows:  # passages with no text: nothing can support the sentence
            hit = cited[0][1]
            windows.append(_Window(cited[0][0], hit, (hit.start, hit.start), 0.0, 0.0))
        return windows


def _unmet_denial(sentence: str, best: _Window, question: str | None) -> str | None:
    """The word by which `sentence` denies, when neither its evidence window `best` nor the user's
    `question` denies too; else None."""
    denial = stated_denial(sentence)
    if denial is None or (question and stated_denial(question)) or _denies(best, _content_stems(sentence).keys()):
        return None
    return denial


def _denies(window: _Window, wanted: Iterable[str]) -> bool:
    """Whether a sentence of `window` that holds some of the claim's rare words (`wanted` stems)
    says a negative word: not the window's other sentence ("we won't get anything"), which denies
    something else."""
    wanted = set(wanted)
    return any(_NEGATIVE.search(_NOT_DENIALS.sub(" ", text)) and (not wanted or wanted & _content_stems(text).keys())
               for text in _window_sentences(window))


def _dropped_denial(sentence: str, best: _Window, question: str | None) -> tuple[str, str] | None:
    """The words of the evidence window `best` that deny what `sentence` states ("does not owe"
    where the sentence says "owes") and the stem they deny, or None.

    The sentence must deny nothing itself (no negative word: "refused to pay" may be a faithful
    "did not pay"), the user's `question` must not deny (its premise), and one of the sentence's
    rare words must stand in the window only where a denial governs it: "he was not elected in
    1990 but was elected in 1994" leaves "elected" free for a sentence about 1994.
    """
    if _denial_is_said(sentence, question):
        return None
    said = _asserted_words(sentence)
    wanted = set(said) - _presupposed(question)
    if not wanted:
        return None
    denied: dict[str, str] = {}  # stem -> the denying words of its first denied use
    free: set[str] = set()
    for text in _window_sentences(best):
        for stem, phrase, subject in _word_uses(text):
            if stem not in wanted:
                continue
            if phrase is None:
                free.add(stem)
            elif subject is None or subject in said[stem]:
                # The same frame: the sentence says the denied word of the same subject ("Baghdad
                # does not owe" / "Baghdad owes"), not of another ("Police have not identified the
                # victim" / "Officers said the victim was identified by a relative").
                denied.setdefault(stem, phrase)
    return next(((phrase, stem) for stem, phrase in denied.items() if stem not in free), None)


def _dropped_no(sentence: str, best: _Window, question: str | None) -> tuple[str, str] | None:
    """The words of the evidence window `best` that say "no" of what `sentence` says there is
    ("was no evidence" where the sentence says "there was evidence") and the stem they deny, or None.

    "no" denies a thing a true sentence may well name in another frame ("has no money" beside "owes
    Russia money", "has too little money"; "said no decision had been made" beside "said a decision
    was expected"), so only the passage's own wording less its "no" counts: the word before "no"
    (a form of "be" or "have" for any other) just before the thing in the sentence, with at most
    an article or a number between, and the passage's next word after it soon after it there too
    ("found no survivors in the rubble" / "found survivors in the rubble"). As for _dropped_denial,
    the sentence must state the thing as so and deny nothing, the `question` must neither deny nor
    take the thing for granted, and the window must not also name the thing without "no".
    """
    if _denial_is_said(sentence, question):
        return None
    wanted = set(_asserted_words(sentence)) - _presupposed(question)
    texts = _window_sentences(best)
    denied = [use for text in texts for use in _no_uses(text) if use.stem in wanted]
    if not denied:
        return None
    free = _undenied_uses(texts)
    words, lowered, word_stems = _spoken_words(sentence)
    for use in denied:
        if free[use.stem] > 0:
            continue
        for j, found in enumerate(word_stems):
            if found != use.stem or _is_adverb(lowered[j]) or _UNASSERTED.search(sentence[:words[j].start()]):
                continue  # "was immediately unavailable" is not "was no immediate comment"
            h = j - 1
            while h >= 0 and j - h <= NO_FRAME_REACH and (lowered[h] in _FILLERS or lowered[h].isdigit()) \
                    and not _CLAUSE_BREAK.search(sentence[words[h].end():words[h + 1].start()]):
                h -= 1
            if h < 0 or _frame_form(lowered[h]) != use.frame:
                continue
            if use.after is None or use.after in word_stems[j + 1:j + 2 + DENIED_WORD_REACH]:
                return use.phrase, use.stem
    return None


def _denial_is_said(sentence: str, question: str | None) -> bool:
    """Whether `sentence` denies something itself (any negative word: "refused to pay" may be a
    faithful "did not pay") or the user's `question` does (its premise): then no denial of the
    evidence is the sentence's to drop."""
    return bool((question and stated_denial(question)) or _NEGATIVE.search(_NOT_DENIALS.sub(" ", sentence)))


def _undenied_uses(texts: Sequence[str]) -> Counter[str]:
    """How many times each content stem is used in `texts` with no "not" and no "no" before it: a
    use after "no" is no more said than one after "not" ("there were no survivors")."""
    free = Counter(stem for text in texts for stem, phrase, _ in _word_uses(text) if phrase is None)
    free.subtract(use.stem for text in texts for use in _no_uses(text))
    return free


class _NoUse(NamedTuple):
    """A "no" of a passage sentence: "found no survivors in the rubble" is ("found", "survivor",
    "found no survivors", "rubbl")."""

    frame: str  # the word before "no", lower-cased (_frame_form)
    stem: str  # the first content word after it: the thing denied
    phrase: str  # the passage's words from the frame to the thing, as shown
    after: str | None  # the stem of the next content word in its clause, or None


# Between the frame and the thing, in the sentence: "found two survivors", "was a decision".
_FILLERS = frozenset("a an the some several many any his her its their our this that these those".split())
# "said no to the plan", "voted no on the measure" answer; "no longer", "no doubt", "no matter" deny no thing.
_NO_ANSWERS = frozenset("to on in for at of by from with as about against".split())
_NO_IDIOMS = frozenset("longer doubt matter".split())
_FRAME_FORMS = {**dict.fromkeys(("is", "was", "are", "were", "be", "been", "being"), "be"),
                **dict.fromkeys(("has", "have", "had", "having"), "have")}


def _frame_form(word: str) -> str:
    """A frame word as compared: any form of "be" or "have" is that verb ("there is no" / "there was")."""
    return _FRAME_FORMS.get(word, word)


@lru_cache(maxsize=4096)
def _no_uses(text: str) -> tuple[_NoUse, ...]:
    """Each lower-case "no" of `text` that denies a thing (a capitalised one names a side: "the No
    campaign"), with the words about it (_NoUse)."""
    plain = _NOT_DENIALS.sub(lambda m: " " * len(m.group(0)), text)
    words, lowered, word_stems = _spoken_words(text)

    def next_content(start: int) -> int | None:
        for k in range(start, min(len(words), start + DENIED_WORD_REACH)):
            if k > 0 and _CLAUSE_BREAK.search(text[words[k - 1].end():words[k].start()]):
                return None  # another clause
            if lowered[k] and rarity(lowered[k]) > 0 and lowered[k] not in _ADVERBS and not _is_adverb(lowered[k]):
                return k
        return None

    uses = []
    for i in range(1, len(words) - 1):
        if plain[words[i].start():words[i].end()] != "no" or re.search(r"\S", text[words[i - 1].end():words[i].start()]):
            continue
        if lowered[i + 1] in _NO_ANSWERS or lowered[i + 1] in _NO_IDIOMS:
            continue
        j = next_content(i + 1)
        if j is None:
            continue
        after = next_content(j + 1)
        uses.append(_NoUse(_frame_form(lowered[i - 1]), word_stems[j], text[words[i - 1].start():words[j].end()],
                           word_stems[after] if after is not None else None))
    return tuple(uses)


def _window_sentences(window: _Window) -> list[str]:
    """The text of each sentence of `window`."""
    hit, (start, end) = window.hit, window.span
    return [_quote(hit, span) for span in [s for s in hit.sentences if start <= s[0] and s[1] <= end] or [window.span]]


def _affirms(window: _Window, said: str | tuple[str, str, str]) -> bool:
    """Whether `window` says `said` as a sentence did: a word's stem used with no denial, or a
    role (subject, object, verb) in that order."""
    if isinstance(said, str):
        return _undenied_uses(_window_sentences(window))[said] > 0
    return any(role[:3] == said for text in _window_sentences(window) for role in _roles(text))


@lru_cache(maxsize=1024)
def _asserted_words(sentence: str) -> Mapping[str, frozenset[str]]:
    """The stems of the content words `sentence` states as done or so, each with the stems of the
    content words before it: not "to resign" or "rather than insisting" (_UNASSERTED)."""
    words, lowered, word_stems = _spoken_words(sentence)
    asserted: dict[str, frozenset[str]] = {}
    before: set[str] = set()
    for word, lower, stem in zip(words, lowered, word_stems):
        if not lower or rarity(lower) == 0:
            continue
        if not _UNASSERTED.search(sentence[:word.start()]):
            asserted[stem] = asserted.get(stem, frozenset()) | before
        before.add(stem)
    return MappingProxyType(asserted)  # cached: shared, so read-only


def _presupposed(question: str | None) -> frozenset[str]:
    """The stems of what the user's `question` takes for granted: "Where does the cold water mix
    with the lake?" holds that it mixes, so an answer may say "mixes" where its passage says "at
    first doesn't mix". A yes-or-no question holds nothing: "Does Baghdad owe Russia?"
    (_PRESUPPOSING_QUESTION)."""
    if not question or not _PRESUPPOSING_QUESTION.search(question):
        return frozenset()
    return frozenset(_content_stems(question))


def _spoken_words(text: str) -> tuple[list[re.Match[str]], list[str], list[str]]:
    """The words of `text` as written (apostrophes kept: "didn't"), lower-cased, and stemmed with
    any possessive dropped."""
    words = list(_SPOKEN.finditer(text))
    lowered = [w.group(0).lower().strip("'’") for w in words]
    return words, lowered, stems([w.removesuffix("'s").removesuffix("’s") for w in lowered])


@lru_cache(maxsize=4096)
def _word_uses(text: str) -> tuple[tuple[str, str | None, str | None], ...]:
    """Each content word of `text` as (stem, the words that deny it or None where none does, and
    then the stem of the content word before the denial in its clause, its subject, or None)."""
    plain = _UNSCOPED_DENIALS.sub(lambda m: " " * len(m.group(0)), _NOT_DENIALS.sub(lambda m: " " * len(m.group(0)), text))
    words, lowered, word_stems = _spoken_words(text)
    governed: dict[int, int] = {}  # word index -> index of the denial governing it
    for i, word in enumerate(words):
        if not _DENIAL.fullmatch(plain[word.start():word.end()]) or not _VERB_DENIAL.fullmatch(word.group(0)):
            continue
        for j in range(i + 1, min(len(words), i + 1 + DENIED_WORD_REACH)):
            if _CLAUSE_BREAK.search(text[words[j - 1].end():words[j].start()]):
                break  # another clause
            if lowered[j] in _ADVERBS or _is_adverb(lowered[j]) or not lowered[j] or rarity(lowered[j]) == 0:
                continue
            governed[j] = i
            break
    uses: list[tuple[str, str | None, str | None]] = []
    for j, word in enumerate(lowered):
        if word and rarity(word) > 0:
            i = governed.get(j)
            if i is None:
                uses.append((word_stems[j], None, None))
                continue
            subject = None
            for h in range(i - 1, -1, -1):
                if _CLAUSE_BREAK.search(text[words[h].end():words[h + 1].start()]):
                    break  # another clause
                if lowered[h] and rarity(lowered[h]) > 0:
                    subject = word_stems[h]
                    break
            if i > 0 and lowered[i - 1] in STOPWORDS and not re.search(
                    r"[^\s'’]", text[words[i - 1].end():words[i].start()]):
                i -= 1  # "does not owe" reads better than "not owe"
            uses.append((word_stems[j], text[words[i].start():words[j].end()], subject))
    return tuple(uses)


def _swapped_roles(sentence: str, best: _Window, question: str | None = None) -> tuple[str, tuple[str, str, str]] | None:
    """The words of the evidence window `best` that say the other way round what `sentence` says
    one name did to another ("Baghdad owes Russia" for "Russia owes Baghdad") and the sentence's
    role (subject, object, verb), or None.

    Only the plainest forms are read, a name, its verb and the other name ("Denver beat Carolina",
    "Russia will pay the Kremlin"), or its passive with "by" ("Carolina was defeated by Denver";
    see _roles): a paraphrase that turns the verb round ("Mali received troops from Germany")
    says no roles, so it is never called a swap. The window must not also say it in the sentence's order, and a verb that goes
    both ways ("met", "played") says no roles. What the user's `question` says in that order is
    the user's, unless it asks yes or no (_presupposed).
    """
    asked = {role[:3] for role in _roles(question)} if question and _presupposed(question) else set()
    claim = [role for role in _roles(sentence) if role[:3] not in asked]
    if not claim:
        return None
    told = [(role, text) for text in _window_sentences(best) for role in _roles(text)]
    said = {role[:3] for role, _ in told}
    for a, b, verb, _ in claim:
        if (b, a, verb) in said and (a, b, verb) not in said:
            (_, _, _, (first, last)), text = next(t for t in told if t[0][:3] == (b, a, verb))
            return text[first:last], (a, b, verb)
    return None


@lru_cache(maxsize=4096)
def _roles(text: str) -> tuple[tuple[str, str, str, Span], ...]:
    """(subject, object, the verb's stem, the span from one to the other) for each name of `text`
    followed by a verb and another name, spaces alone between them: "Russia owes Baghdad",
    "Denver beat the Carolina Panthers", "Russia will soon pay Baghdad"; in the passive, the name
    after "by" is the subject ("Carolina was defeated by Denver": _passive_role). A possessive
    ("Putin's ally Medvedev"), any other form of "be" ("Russia is in talks with"), a preposition
    or any punctuation between them makes none: those are not who did what to whom."""
    words = [(m.group(0), m.start(), m.end()) for m in FACT_WORD.finditer(text)]
    name = [word[:1].isupper() and word.rstrip(".").lower() not in MONTH_NUMBERS and _may_be_name(text, words, i)
            for i, (word, _, _) in enumerate(words)]

    def spaced(i: int) -> bool:  # only spaces between word i and the next
        return i + 1 < len(words) and not text[words[i][2]:words[i + 1][1]].strip()

    roles = []
    i = 0
    while i < len(words):
        if not name[i]:
            i += 1
            continue
        first = i
        while spaced(i) and name[i + 1]:
            i += 1  # a name of several words ("Saddam Hussein") is keyed by its last
        subject, k = words[i][0], i + 1
        i += 1
        if subject.endswith(("'", "’", "'s", "’s")) or not spaced(k - 1):
            continue
        while k < len(words) and (words[k][0].lower() in _ROLE_AUXILIARIES or _is_adverb(words[k][0].lower())) and spaced(k):
            k += 1
        if k < len(words) and words[k][0].lower() in _PASSIVE_BE:
            passive = _passive_role(text, words, name, k, spaced)
            if passive:
                agent, verb, last = passive
                roles.append((_name_key(agent), _name_key(subject), verb, (words[first][1], words[last][2])))
            continue
        if k >= len(words) or name[k] or not spaced(k):
            continue
        verb = words[k][0]
        if not (verb.isalpha() and verb.islower()) or rarity(verb) == 0 or verb in _NOT_VERBS:
            continue
        last = _name_at(words, name, k + 1, spaced)
        if last is None:
            continue
        stem = stems([verb])[0]
        if stem not in _BOTH_WAYS:
            roles.append((_name_key(subject), _name_key(words[last][0]), stem, (words[first][1], words[last][2])))
    return tuple(roles)


def _name_at(words: list[tuple[str, int, int]], name: list[bool], k: int, spaced: Callable[[int], bool]) -> int | None:
    """The index of the last word of the name that word `k` begins, past a determiner ("the
    Denver Broncos"), spaces alone between them; None where no name begins there."""
    if k < len(words) and words[k][0].lower() in _DETERMINERS and spaced(k):
        k += 1
    if k >= len(words) or not name[k]:
        return None
    while spaced(k) and name[k + 1]:
        k += 1
    return k


# "Carolina was beaten by Denver", "Baghdad had been paid by Russia": the name after "by" did it.
_PASSIVE_BE = frozenset("was were is are be been being".split())


def _passive_role(text: str, words: list[tuple[str, int, int]], name: list[bool], k: int,
                  spaced: Callable[[int], bool]) -> tuple[str, str, int] | None:
    """For a form of "be" at word `k` after a name: (the name after "by", the verb's stem, the
    index of the name's last word) when a participle ending in -ed and "by" follow it, spaces alone
    between them ("was defeated by the Denver Broncos"); None for any other form ("was in Paris",
    "was paid in dollars by", "was beaten by": an irregular participle does not stem as its verb)."""
    while k < len(words) and words[k][0].lower() in _PASSIVE_BE and spaced(k):
        k += 1
    if k + 1 >= len(words) or not spaced(k) or words[k + 1][0].lower() != "by" or not spaced(k + 1):
        return None
    verb = words[k][0]
    if not (verb.isalpha() and verb.islower() and verb.endswith("ed")) or rarity(verb) == 0:
        return None
    last = _name_at(words, name, k + 2, spaced)
    if last is None:
        return None
    stem = stems([verb])[0]
    return None if stem in _BOTH_WAYS else (words[last][0], stem, last)


# Words in -ly that say something of their own: "not friendly", "not weekly", "no assembly".
_LY_NOT_ADVERBS = frozenset("friendly elderly weekly monthly yearly hourly daily nightly quarterly costly deadly "
                            "lonely lovely likely unlikely assembly family supply comply multiply italy".split())


def _is_adverb(word: str) -> bool:
    """Whether `word` is an adverb made of an adjective: "explicitly", "happily"; not "reply", "Italy"."""
    if not word.endswith("ly") or len(word) < 6 or word in _LY_NOT_ADVERBS:
        return False
    return any(zipf(root) >= 3.0 for root in (word[:-2], word[:-3] + "y", word[:-2] + "e", word[:-1] + "e"))


def stated_denial(text: str) -> str | None:
    """The first word by which `text` denies something, lower-cased, or None:
    ``"Baghdad does not owe Russia $8 billion." -> "not"``; "not only", "no fewer than" are none."""
    found = _DENIAL.search(_NOT_DENIALS.sub(" ", text))
    return found.group(0).lower() if found else None


def _alignment(window_best: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Per window, the weighted mean over the sentence's tokens of each one's best cosine in it
    (0 for a window with no tokens, or a sentence with no weighted tokens)."""
    import numpy as np

    count = window_best.shape[1]
    if not len(weights) or weights.sum() <= 0:
        return np.zeros(count)
    empty = ~np.isfinite(window_best).any(axis=0)
    means = (np.where(np.isfinite(window_best), window_best, 0.0) * weights[:, None]).sum(axis=0) / weights.sum()
    return np.where(empty, 0.0, np.maximum(means, 0.0))


def _union(facts: Iterable[Facts]) -> Facts:
    result = Facts()
    for one in facts:
        result = result | one
    return result


def _fact_evidence(wanted: Facts, best: _Window, vouched: list[tuple[int, Hit, Facts]]) -> list[Evidence]:
    """Sentences beyond the best window that hold the numbers, dates and names it lacks."""
    wanted = wanted - wanted.found_in(passage_facts(_quote(best.hit, best.span)))
    extra: list[Evidence] = []
    for n, hit, held in vouched:
        if not wanted.found_in(held):
            continue
        for span in hit.sentences or [(hit.start, hit.end)]:
            gained = wanted.found_in(passage_facts(_quote(hit, span)))
            if gained and span != best.span:
                extra.append(Evidence(n, hit.doc_id, span[0], span[1], _quote(hit, span)))
                wanted = wanted - gained
                if not wanted:
                    return extra
    return extra


def _quote(hit: Hit, span: Span) -> str:
    return hit.text[span[0] - hit.start:span[1] - hit.start]


def _evidence(window: _Window) -> Evidence:
    return Evidence(window.n, window.hit.doc_id, window.span[0], window.span[1], _quote(window.hit, window.span))

