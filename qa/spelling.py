"""Question words typed wrong, read as the word the collection holds: "povertly" as "poverty".

A typo in a rare word costs the most: the word the question turns on ("What percent live below the
povertly line?") matches no passage, so keyword search and the answer's keyword support lose it, and
the answer stage declines a question the articles answer plainly. A word is read as another only when
all of these hold, so a real word the collection does not use ("giver", "powder") stays as typed:

- the collection holds none of its stem (Store.document_frequencies);
- English at large hardly knows it either (wordfreq's Zipf below TYPO_MAX_ZIPF: "priciple" 0,
  "responce" 1.6, "stong" 1.9; the real words that SQuAD's questions hold and its articles lack,
  "giver" 3.2, "culled" 2.9, "sould" 2.1, "undergone" 3.6, are above it);
- it has at least MIN_WORD_LETTERS letters;
- one edit (a letter dropped, added, changed, or two side by side swapped) makes a word whose stem the
  collection holds; of several, the one that fits the question's other words best (see `correction`).

One edit, not two: two make ~300,000 candidates of a ten-letter word, one ~600, and each is a
lookup. On 3,000 SQuAD v1.1 dev questions, 90 held a word the corpus lacks and one edit from one it
holds; see the README's quality section for what reading them so changed.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from typing import TYPE_CHECKING

from qa.text import STOPWORDS, query_terms, stems, unaccented, zipf

if TYPE_CHECKING:
    from qa.stores.base import Store

# A word at least this common in English (Zipf scale: "earthquake" 4.0) is a word, not a typo.
TYPO_MAX_ZIPF = 2.0
# Shorter words have too many one-edit neighbours to guess from ("las": last, lash, gas, laws...).
MIN_WORD_LETTERS = 5
# Longer strings are no English word mistyped ("counterrevolutionaries" has 22 letters) but a pasted
# hash or a key held down, and a word of n letters has 54n + 25 one-edit neighbours to look up: a
# 2,000-letter one took 4-5 s, with a server's other requests waiting.
MAX_WORD_LETTERS = 24
# Held candidates (the most frequent first) weighed against the question's other words: one
# keyword search each.
MAX_CANDIDATES = 16
# Each candidate's best passages looked at for its spelling: BM25 may put first a passage that
# holds the other words and not the candidate.
SPELLING_PASSAGES = 3
_LETTERS = "abcdefghijklmnopqrstuvwxyz"
_ASCII_WORD = re.compile(r"[a-z]+")


def one_edit_words(word: str) -> set[str]:
    """Every string one edit from `word` (Damerau: drop, add, change, or swap two neighbours)."""
    splits = [(word[:i], word[i:]) for i in range(len(word) + 1)]
    found = {left + right[1:] for left, right in splits if right}
    found |= {left + right[1] + right[0] + right[2:] for left, right in splits if len(right) > 1}
    found |= {left + letter + right[1:] for left, right in splits if right for letter in _LETTERS}
    found |= {left + letter + right for left, right in splits for letter in _LETTERS}
    found.discard(word)
    return found


def likely_typos(query: str, store: Store) -> list[str]:
    """The query's words (lower-case) that look mistyped: rare in English and absent from the collection."""
    words = [w for w in query_terms(query)
             if MIN_WORD_LETTERS <= len(w) <= MAX_WORD_LETTERS and _ASCII_WORD.fullmatch(w) and zipf(w) < TYPO_MAX_ZIPF]
    if not words:
        return []
    frequencies = store.document_frequencies(words)
    return [w for w in words if not frequencies.get(w)]


def edit_likelihood(typed: str, candidate: str) -> int:
    """How likely a slip of the finger turns `candidate` into `typed` (one edit apart), higher more
    likely: two letters swapped or one doubled (2: "sinse" from "sines", "departmentt" from
    "department"), one mistyped (1), one dropped or added otherwise (0: "sinse" from "sine")."""
    if len(typed) == len(candidate):
        differ = [i for i, (a, b) in enumerate(zip(typed, candidate)) if a != b]
        swapped = len(differ) == 2 and differ[1] == differ[0] + 1 and typed[differ[0]] == candidate[differ[1]]
        return 2 if swapped else 1
    if len(typed) == len(candidate) + 1:
        doubled = next((i for i in range(len(candidate)) if typed[i] != candidate[i]), len(candidate))
        return 2 if doubled > 0 and typed[doubled] == typed[doubled - 1] else 0
    return 0


def correction(word: str, other_words: Sequence[str], store: Store) -> str | None:
    """The word one edit from `word` that the collection holds and that best fits the question's
    `other_words`, or None. Of several held, one that the articles spell as it is (not held only
    through its stem) wins, and of those the one whose best passage with the other words scores
    highest by BM25: "Sinse" beside "earthquake" is "Sines", a place the collection names once,
    not "since", which it holds in every other chunk. With no other words, the one the collection
    holds most often."""
    # One candidate per stem, the store counting stems: a word English knows ("botswana", not
    # "botswanae", for "botswanan"), then the likelier slip ("sines", not "sine", for "sinse";
    # "department", not "departments", for "departmentt"), then the commoner in English.
    by_stem: dict[str, str] = {}
    candidates = sorted(w for w in one_edit_words(word) if w not in STOPWORDS)

    def likelihood(candidate: str) -> tuple[bool, int, float]:
        return zipf(candidate) > 0, edit_likelihood(word, candidate), zipf(candidate)

    for candidate, stem in zip(candidates, stems(candidates)):
        if stem not in by_stem or likelihood(candidate) > likelihood(by_stem[stem]):
            by_stem[stem] = candidate
    frequencies = store.document_frequencies(list(by_stem.values()))
    held = sorted(((count, candidate) for candidate, count in frequencies.items() if count), reverse=True)
    if len(held) <= 1:
        return held[0][1] if held else None
    return max(_spelled_fits(held[:MAX_CANDIDATES], other_words, store), key=lambda fitted: fitted[0])[1]


def _spelled_fits(held: list[tuple[int, str]], other_words: Sequence[str],
                  store: Store) -> list[tuple[tuple[bool, float, float, str], str]]:
    """Each held candidate, keyed by: whether one of its best passages with the other words spells
    it as it is, title or text, then the best passage's BM25, then how often the collection holds
    it. The store counts stems: "secretely" (for "secretery") is held through the articles'
    "secrets", and fits "Top Gun" better than "secretary" does, but no article spells it; "Sines"
    and "Milei" are spelled so where the articles name them."""
    found = {candidate: store.keyword_search([*other_words, candidate], SPELLING_PASSAGES) for _, candidate in held}
    records = store.chunks(list(dict.fromkeys(chunk for hits in found.values() for chunk, _ in hits)))
    # Each passage read once, however many candidates it is the best passage of.
    texts = {chunk: unaccented(f"{record.title}\n{record.text}").lower() for chunk, record in records.items()}

    def spells(chunk: int, candidate: str) -> bool:
        return re.search(rf"(?<!\w){re.escape(candidate)}(?!\w)", texts.get(chunk, "")) is not None

    def key(count: int, candidate: str) -> tuple[bool, float, float, str]:
        spelled = any(spells(chunk, candidate) for chunk, _ in found[candidate])
        bm25 = found[candidate][0][1] if found[candidate] else 0.0
        # With no other words to fit, BM25 would favour the rarer word: the commoner is likelier.
        return (spelled, bm25, count, candidate) if other_words else (spelled, count, bm25, candidate)

    return [(key(count, candidate), candidate) for count, candidate in held]


def corrected_query(query: str, store: Store) -> str | None:
    """`query` with each likely typo replaced by its correction (in the case it was typed in), or
    None when nothing was corrected: ``"What percent live below the povertly line?"`` ->
    ``"What percent live below the poverty line?"`` in a collection about poverty."""
    # Composed first: an accent typed as a separate mark ("Jose\u0301phine") would otherwise cut a
    # word in two, and its second half be taken for a word of its own.
    query = unicodedata.normalize("NFC", query)
    corrected = query
    typos = likely_typos(query, store)
    others = [w for w in query_terms(query) if w not in typos]
    for word in typos:
        replacement = correction(word, others, store)
        if replacement is None:
            continue

        def matched_case(match: re.Match[str], replacement: str = replacement) -> str:
            typed = match.group(0)
            if typed.isupper() and len(typed) > 1:
                return replacement.upper()
            return replacement.capitalize() if typed[0].isupper() else replacement

        corrected = re.sub(rf"(?<![\w\u0300-\u036f]){re.escape(word)}(?![\w\u0300-\u036f])", matched_case,
                           corrected, flags=re.IGNORECASE)
    return corrected if corrected != query else None
