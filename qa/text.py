"""How common a word is: in English at large (wordfreq) and in the user's own corpus, blended.

A rare word is what ties a question to the sentence that answers it ("How deep was the earthquake
near Sines?": "Sines", "deep"). An IDF from the user's corpus alone knows nothing on a first run:
in a two-article index every word is in one article of two, so "Sines" weighs no more than "said".
English word frequencies (wordfreq, a maintained list built from many sources) say how rare a word
is before the corpus can; as the corpus grows, its own counts take over.
"""

from __future__ import annotations

import math
from functools import lru_cache

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
