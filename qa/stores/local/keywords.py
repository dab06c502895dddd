"""BM25 over the catalog's FTS5 keyword index, scored in NumPy from cached posting lists.

FTS5's own `bm25()` reads each matching row's length with one SQLite lookup and its term counts
from the row's position lists: at 100,000 chunks a query's terms match ~20,000 rows, and scoring
them took 24 ms where finding them took 2. Here each term's postings (chunk id and weighted count,
read once from FTS5's `fts5vocab` table) and every chunk's length (FTS5's docsize table, read once)
stay in memory, and a query is a few array operations: 0.5 ms for terms seen before, about 40% of
FTS5's time for new ones.

The scores are FTS5's to the last bit: the same formula (sqlite's fts5_aux.c, k1 = 1.2, b = 0.75,
IDF floored at 1e-6, title weighted 0.5 and body 1.0), the same operations in the same order, and
ties ordered by chunk id as FTS5 returns them. A term FTS5 would cut into several tokens (one with
a character outside a-z and 0-9) sends the whole query to FTS5's `bm25()` instead.

Whole articles (issue 15) are scored from the same postings: a chunk id leads to its article,
so a question's article scores cost a few more array operations and no more SQLite reads. An FTS5
table of whole articles beside the chunks' doubled the postings a new word reads, which made a
hybrid search on a store opened afresh about a third slower at 100,000 chunks.
"""

from __future__ import annotations

import math
import re
import sqlite3
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

# BM25 as FTS5's bm25() computes it, with qa's column weights (title, body).
K1 = 1.2
B = 0.75
TITLE_WEIGHT = 0.5
BODY_WEIGHT = 1.0
# The title weight of whole articles (KeywordIndex.article_search): the headline names the story
# (issue 15's measurements used the title twice).
ARTICLE_TITLE_WEIGHT = 2.0
# Postings kept in memory, in entries (18 bytes each): the oldest terms are dropped past it, with
# their articles' postings (at most as many entries again, 16 bytes each).
CACHED_POSTINGS = 4_000_000
# Document frequencies kept in memory, in terms: a mistyped question word asks for ~500 one-edit
# spellings of it (qa.spelling), so the cache is emptied past this many rather than kept per generation.
CACHED_FREQUENCIES = 100_000
# A stem FTS5's unicode61 tokenizer reads as exactly this one token: lower-case ASCII letters and digits.
_PLAIN_TERM = re.compile(r"[a-z0-9]+")


class KeywordIndex:
    """BM25 search and document frequencies over the catalog's FTS5 chunk index (`chunk_terms`),
    and BM25 over whole articles from the same postings, cached per generation. Chunk ids only grow."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        self._db = connection
        self._generation: int | None = None
        self._lengths: np.ndarray | None = None  # tokens per chunk (title + body), by chunk id
        self._rows = 0
        self._total_length = 0
        self._average_length = 0.0
        # Per term: the chunks holding it, its weighted count in each, and how often in the title.
        self._postings: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        # Per term: the articles holding it and its weighted count in each (article_search).
        self._article_postings: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self._cached = 0
        self._frequencies: dict[str, int] = {}
        self._vocabulary = False
        self._articles: _Articles | None = None

    def search(self, terms: Sequence[str], k: int, generation: int,
               allowed: np.ndarray | None = None) -> list[tuple[int, float]] | None:
        """(chunk id, BM25 score) of the `k` best chunks holding any of `terms` (stems), best first,
        among the chunk ids `allowed` when given (a filtered search); None when a term is not one
        plain token (the caller asks FTS5 then)."""
        import numpy as np

        if not terms or not all(_PLAIN_TERM.fullmatch(term) for term in terms):
            return None
        lengths = self._refresh(generation)
        found = [self._term_postings(term) for term in terms]
        # Scores by chunk id in one array the size of the id range (800 KB at 100,000 chunks):
        # cheaper than gathering the matching ids first.
        scores = np.zeros(len(lengths))
        matched = np.zeros(len(lengths), dtype=bool)
        # Term by term in query order, as fts5Bm25Function sums them: the same floating-point result.
        for chunk_ids, counts, _titles in found:
            _add_bm25(scores, chunk_ids, counts, lengths[chunk_ids], self._rows, self._average_length)
            matched[chunk_ids] = True
        if allowed is not None:
            kept = np.zeros(len(matched), dtype=bool)
            kept[allowed[allowed < len(kept)]] = True
            matched &= kept
        return _best(scores, matched, k)

    def article_search(self, terms: Sequence[str], k: int, generation: int, min_passages: int = 1,
                       allowed: np.ndarray | None = None) -> list[tuple[int, float, int]]:
        """(article, BM25 score, passages) of the `k` best whole articles of at least `min_passages`
        passages holding any of `terms` (stems), best first; an article is named by its first chunk id.
        With `allowed` (chunk ids: a filtered search), only the articles of those chunks.

        Scored from the chunks' postings, so a query whose words were read for keyword_search
        reads nothing more: an article holds each term as often as its chunks' bodies do
        (a sentence its chunks overlap on counts twice) plus ARTICLE_TITLE_WEIGHT times its
        title does, and is as long as its chunks together. Terms are read as FTS5's unicode61
        tokenizer reads them (`fts5_token`); one it would cut in two is left out."""
        import numpy as np

        folded = [token for token in dict.fromkeys(map(fts5_token, terms)) if token is not None]
        if not folded:
            return []
        self._refresh(generation)
        articles = self._read_articles()
        if articles.longest < min_passages:  # no article is long enough: nothing to score
            return []
        scores = np.zeros(len(articles.first))
        matched = np.zeros(len(articles.first), dtype=bool)
        for term in folded:
            numbers, counted = self._article_term_postings(term, articles)
            if len(numbers):
                _add_bm25(scores, numbers, counted, articles.length[numbers], articles.count, articles.average_length)
                matched[numbers] = True
        if min_passages > 1:
            matched &= articles.passages >= min_passages
        if allowed is not None:
            admitted = np.zeros(len(matched), dtype=bool)
            admitted[articles.owner[allowed[allowed < len(articles.owner)]]] = True
            matched &= admitted
        return [(int(articles.first[n]), score, int(articles.passages[n])) for n, score in _best(scores, matched, k)]

    def _article_term_postings(self, term: str, articles: _Articles) -> tuple[np.ndarray, np.ndarray]:
        """The articles holding `term`, ascending, and its weighted count in each; kept beside the
        term's chunk postings (and dropped with them): summing them again for every search cost
        about 0.5 ms more a search at 100,000 chunks (bench/query.py, terms met before)."""
        import numpy as np

        cached = self._article_postings.get(term)
        if cached is not None:
            return cached
        chunk_ids, counts, titles = self._term_postings(term)
        if not len(chunk_ids):
            return chunk_ids, counts
        # Chunk ids ascend and an article's chunks are numbered one after another, so each
        # article's chunks lie side by side here.
        owners = articles.owner[chunk_ids]
        starts = np.flatnonzero(np.concatenate(([True], owners[1:] != owners[:-1])))
        body = np.add.reduceat(counts - TITLE_WEIGHT * titles, starts)
        in_title = np.maximum.reduceat(titles, starts)  # every chunk carries the one title
        found = (owners[starts], body + ARTICLE_TITLE_WEIGHT * in_title)
        self._article_postings[term] = found
        return found

    def frequency(self, term: str, generation: int, count: Callable[[str], int]) -> int:
        """How many chunks hold `term`: `count(term)` once per generation."""
        self._refresh(generation)
        if term not in self._frequencies:
            if len(self._frequencies) >= CACHED_FREQUENCIES:
                self._frequencies.clear()
            self._frequencies[term] = count(term)
        return self._frequencies[term]

    def _refresh(self, generation: int) -> np.ndarray:
        """Forget what a commit may have changed, and read the lengths of chunks added since (chunk ids
        only grow); returns every chunk's length, by chunk id."""
        import numpy as np

        if generation == self._generation and self._lengths is not None:
            return self._lengths
        self._postings.clear()
        self._article_postings.clear()
        self._frequencies.clear()
        self._cached = 0
        known = len(self._lengths) - 1 if self._lengths is not None else 0
        rows = self._db.execute("SELECT id, sz FROM chunk_terms_docsize WHERE id > ? ORDER BY id", (known,)).fetchall()
        if rows:
            ids = np.fromiter((row[0] for row in rows), dtype=np.int64, count=len(rows))
            lengths = np.zeros(int(ids[-1]) + 1)
            if self._lengths is not None:
                lengths[: len(self._lengths)] = self._lengths
            lengths[ids] = _row_totals(b"".join(row[1] for row in rows), len(rows))
            self._lengths = lengths
        elif self._lengths is None:
            self._lengths = np.zeros(1)
        if self._lengths is None:  # for the type checker: set just above
            raise RuntimeError("chunk lengths were not read")
        averages = self._db.execute("SELECT block FROM chunk_terms_data WHERE id = 1").fetchone()
        # FTS5 leaves this block empty until a first row is written: an index that never held one.
        values = (_varints(averages[0]) if averages else []) or [0]
        self._rows = values[0]
        self._total_length = sum(values[1:])
        self._average_length = self._total_length / values[0] if values[0] else 1.0
        self._generation = generation
        if self._articles is not None:
            self._articles.stale = True
        return self._lengths

    def _read_articles(self) -> _Articles:
        """Which article each chunk belongs to, with each article's first chunk, passages and length,
        brought up to the generation `_refresh` read: rows for chunks added since (chunk ids only
        grow, and a changed article comes back under new ones), and the count of articles now."""
        import numpy as np

        articles = self._articles
        if articles is not None and not articles.stale:
            return articles
        if self._lengths is None:
            raise RuntimeError("read the chunk lengths first")
        if articles is None:
            articles = self._articles = _Articles(
                np.zeros(1, dtype=np.int64), np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64), np.zeros(0)
            )
        known = len(articles.owner) - 1
        rows = self._db.execute("SELECT id, ordinal FROM chunks WHERE id > ? ORDER BY id", (known,)).fetchall()
        if rows:
            ids = np.fromiter((row[0] for row in rows), dtype=np.int64, count=len(rows))
            starts = np.fromiter((row[1] for row in rows), dtype=np.int64, count=len(rows)) == 0
            # New articles are numbered on from the last; each chunk's article is the last that
            # starts at or before it (an article's chunks are written all together, in order,
            # under consecutive ids).
            numbers = len(articles.first) + np.cumsum(starts) - 1
            owner = np.zeros(int(ids[-1]) + 1, dtype=np.int64)
            owner[: len(articles.owner)] = articles.owner
            owner[ids] = numbers
            added = int(starts.sum())
            # The chunk lengths were read at this generation, so they cover every chunk here, and
            # may run past the last one (chunks read and deleted since); one they lack counts 0.
            chunk_lengths = np.zeros(len(ids))
            known_length = ids < len(self._lengths)
            chunk_lengths[known_length] = self._lengths[ids[known_length]]
            passages = np.bincount(numbers - len(articles.first), minlength=added)
            lengths = np.bincount(numbers - len(articles.first), chunk_lengths, minlength=added)
            # Set together, once all is computed: a half-updated map would answer later searches.
            articles.owner = owner
            articles.first = np.concatenate((articles.first, ids[starts]))
            articles.passages = np.concatenate((articles.passages, passages))
            articles.length = np.concatenate((articles.length, lengths))
            articles.longest = max(articles.longest, int(passages.max()))
        (articles.count,) = self._db.execute("SELECT count(*) FROM documents").fetchone()
        # As FTS5 averages chunk lengths: over the articles there are now.
        articles.average_length = self._total_length / articles.count if articles.count else 1.0
        articles.stale = False
        return articles

    def _term_postings(self, term: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The chunks holding `term`, ascending, its weighted count in each (title 0.5, body 1),
        and how many of those are in the title."""
        import numpy as np

        cached = self._postings.get(term)
        if cached is not None:
            return cached
        if not self._vocabulary:
            self._db.execute("CREATE VIRTUAL TABLE IF NOT EXISTS temp.chunk_terms_instances "
                             "USING fts5vocab(main, chunk_terms, instance)")
            self._vocabulary = True
        # One row back, not one per instance: FTS5 walks the term's postings in C, and Python would
        # spend most of a cold query building a tuple per instance (1.3 s against 0.45 s for the
        # 552 stems of 200 SQuAD questions at 100,000 chunks). Each value is chunk id × 2 + (title).
        (joined,) = self._db.execute(
            "SELECT group_concat(doc * 2 + (col = 'title')) FROM temp.chunk_terms_instances WHERE term = ?", (term,)
        ).fetchone()
        instances = np.fromstring(joined, dtype=np.int64, sep=",") if joined else np.zeros(0, dtype=np.int64)
        chunk_ids, which = np.unique(instances >> 1, return_inverse=True)
        # Each instance adds its column's weight, as FTS5 counts them (halves and ones: exact sums).
        counts = np.bincount(which, np.where(instances & 1, TITLE_WEIGHT, BODY_WEIGHT), minlength=len(chunk_ids))
        titles = np.bincount(which, instances & 1, minlength=len(chunk_ids)).astype(np.int16)
        while self._postings and self._cached + len(chunk_ids) > CACHED_POSTINGS:
            oldest = next(iter(self._postings))
            self._cached -= len(self._postings.pop(oldest)[0])
            self._article_postings.pop(oldest, None)
        self._postings[term] = (chunk_ids, counts, titles)
        self._cached += len(chunk_ids)
        return chunk_ids, counts, titles


@dataclass
class _Articles:
    """KeywordIndex's view of whole articles, numbered from 0 as read: `owner[chunk id]` is that
    chunk's article, and `first` (its first chunk id), `passages` and `length` (tokens) are by
    article number. An article removed keeps its number, and no chunk leads to it any more."""

    owner: np.ndarray
    first: np.ndarray
    passages: np.ndarray
    length: np.ndarray
    count: int = 0
    average_length: float = 1.0
    longest: int = 0  # passages of the longest article read
    stale: bool = True


_TOKENIZER_LOCK = threading.Lock()


@lru_cache(maxsize=1)
def _tokenizer() -> sqlite3.Connection:
    db = sqlite3.connect(":memory:", check_same_thread=False)
    db.execute("CREATE VIRTUAL TABLE words USING fts5(word, tokenize='unicode61')")
    db.execute("CREATE VIRTUAL TABLE tokens USING fts5vocab(words, row)")
    return db


@lru_cache(maxsize=10_000)
def fts5_token(term: str) -> str | None:
    """`term` as the chunk index's unicode61 tokenizer keeps it, or None when it reads it as
    other than one token: ``"Zürich" -> "zurich"``, ``"Зеленський" -> "зеленський"`` (it folds
    Latin letters' diacritics only), ``"a-b" -> None``. A term of ASCII letters and digits is
    only lower-cased; any other is handed to FTS5 itself in a table of its own, once."""
    if _PLAIN_TERM.fullmatch(term.lower()):
        return term.lower()
    with _TOKENIZER_LOCK:
        db = _tokenizer()
        with db:
            db.execute("INSERT INTO words(rowid, word) VALUES(1, ?)", (term,))
            read = [row[0] for row in db.execute("SELECT term FROM tokens")]
            db.execute("DELETE FROM words")
    return read[0] if len(read) == 1 else None


def _add_bm25(scores: np.ndarray, rows: np.ndarray, counts: np.ndarray, lengths: np.ndarray, total_rows: int,
              average_length: float) -> None:
    """Add one term's BM25 to `scores` at `rows`, as fts5Bm25Function computes it."""
    idf = math.log((total_rows - len(rows) + 0.5) / (len(rows) + 0.5))
    if idf <= 0.0:
        idf = 1e-6
    scores[rows] += idf * ((counts * (K1 + 1.0)) / (counts + K1 * (1 - B + B * lengths / average_length)))


def _best(scores: np.ndarray, matched: np.ndarray, k: int) -> list[tuple[int, float]]:
    """(row, score) of the `k` best matched rows, best first, ties by row as FTS5 orders them."""
    import numpy as np

    hits = np.flatnonzero(matched)
    hit_scores = scores[hits]
    if 0 < k < len(hits):
        # Only the hits scoring at least the k-th best can be among the first k (ties with it
        # included, so the order by row among them is kept): sorting those alone, not all
        # ~20,000 hits, takes 0.06 ms instead of 1.8 ms.
        kth = np.partition(hit_scores, len(hits) - k)[len(hits) - k]
        contenders = np.flatnonzero(hit_scores >= kth)
        hits, hit_scores = hits[contenders], hit_scores[contenders]
    best = np.lexsort((hits, -hit_scores))[:k]
    return [(int(row), float(score)) for row, score in zip(hits[best], hit_scores[best])]


def _varints(data: bytes) -> list[int]:
    """SQLite's variable-length integers, as FTS5 writes its sizes: b"\\x81\\x00\\x05" -> [128, 5]."""
    values, value = [], 0
    for byte in data:
        value = (value << 7) | (byte & 0x7F)
        if byte < 0x80:
            values.append(value)
            value = 0
    return values


def _row_totals(data: bytes, rows: int) -> np.ndarray:
    """Each row's tokens, title and body together, from FTS5 docsize blobs joined (two varints a row)."""
    import numpy as np

    raw = np.frombuffer(data, dtype=np.uint8)
    ends = raw < 0x80
    # Which value each byte belongs to, and how many bytes follow it within that value.
    value_of = np.concatenate(([0], np.cumsum(ends)[:-1]))
    last = np.flatnonzero(ends)
    shift = 7 * (last[value_of] - np.arange(len(raw)))
    values = np.bincount(value_of, weights=(raw & 0x7F).astype(np.float64) * np.exp2(shift), minlength=len(last))
    return values.reshape(rows, -1).sum(axis=1)
