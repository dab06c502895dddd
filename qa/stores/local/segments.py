"""The local store's vectors as a log of immutable segment files, searched as one index.

An update writes one new file holding only its new vectors (`segment-000012.faiss`, a FAISS index of
`qa.stores.local.vectors`); the chunks it removes are marked dead in the catalog, in the same SQLite
transaction that makes the new file live. So an add costs what it adds, however large the index is.

Small segments are merged at the end of a later update (`plan_merge`, the log-structured policy of
Lucene's LogMergePolicy): ten segments of one size class (a power of ten of vectors) become one of
the next, so each vector is written again once per class it climbs, log10(n) times in all. A merge
writes its file first and swaps it for its inputs in one transaction, so readers keep answering
from the segments they hold, and a process killed during a merge leaves the segments as they were.

Readers hold every exact segment in one in-memory flat index and each approximate (IVF) one as it
is; a search asks each and keeps the best. Past the ANN threshold the segments are merged into an
IVF index whenever their exact part outgrows half of it, so searches stay approximate and fast.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from qa.stores.local.catalog import SegmentRow
from qa.stores.local.vectors import FaissVectorStore, ann_threshold

if TYPE_CHECKING:
    import numpy as np

# Segments of one size class merged together: Lucene's default too. More means fewer rewrites
# (log base MERGE_FACTOR of the index size per vector) and more files for a reader to open.
MERGE_FACTOR = 10
# A segment whose vectors are this share dead is written again without them.
DEAD_SHARE = 0.2
# Dead vectors a reader skips in its search results before it removes them from its index: removing
# from a flat index moves every vector after them, so a few are cheaper to skip.
DEAD_SLACK = 256


def segment_path(index_dir: Path, segment_id: int) -> Path:
    return index_dir / f"segment-{segment_id:06d}.faiss"


def size_class(vectors: int) -> int:
    """The power of ten a segment's size falls in: 9 -> 0, 2048 -> 3, 364_000 -> 5."""
    return int(math.log10(vectors)) if vectors > 0 else 0


def plan_merge(segments: Sequence[SegmentRow], dead: dict[int, int], threshold: int | None = None) -> list[SegmentRow]:
    """The adjacent run of segments (oldest first, as the catalog lists them) to merge next, or [].

    Ten segments of one size class at the end of the log merge, with every smaller one after them,
    and again if that makes ten of the next class: [5000, 3 x 900, 10 x 40] -> the last 13. Past the
    ANN threshold, an exact part over half of it merges everything into one IVF index; below half
    the threshold an IVF index merges back to exact; a segment a fifth dead is rewritten alone.
    """
    threshold = ann_threshold() if threshold is None else threshold
    live = [s.vectors - dead.get(s.id, 0) for s in segments]
    total = sum(live)
    exact = sum(n for s, n in zip(segments, live) if not s.approximate)
    approximate = any(s.approximate for s in segments)
    if (total > threshold and exact > threshold // 2) or (approximate and total < threshold // 2):
        return list(segments)
    sizes = list(live)
    start = len(sizes)
    merged = True
    while merged:
        merged = False
        classes = [size_class(n) for n in sizes]
        for level in sorted(set(classes)):
            begin = len(sizes)
            while begin > 0 and classes[begin - 1] <= level:
                begin -= 1
            if classes[begin:].count(level) >= MERGE_FACTOR:
                # Simulate the merge: the run becomes one segment, which may complete a class above.
                sizes[begin:] = [sum(sizes[begin:])]
                # Merges take only tails, so the segments before `begin` are the catalog's own.
                start = min(start, begin)
                merged = True
                break
    if start < len(segments):
        return list(segments[start:])
    for segment in segments:
        if segment.vectors and dead.get(segment.id, 0) >= DEAD_SHARE * segment.vectors:
            return [segment]
    return []


# A filtered search scores at most this many allowed vectors of an approximate segment one by one
# (exact: 31 MB of float32 at 384 dimensions, read back from the index); past that it probes the
# segment's lists, as many more as the filter admits fewer of its vectors.
EXACT_ALLOWED_VECTORS = 20_000


class AllowedIds:
    """The chunk ids a filtered search may return (sorted), with what searching them needs, made
    once per filter and index state: a FAISS selector over them (101 ms to build at 2M ids) and
    the ones each approximate segment holds."""

    def __init__(self, ids: np.ndarray) -> None:
        import faiss

        self.ids = ids
        self.selector = faiss.IDSelectorBatch(ids)
        self._parts: dict[int, np.ndarray] = {}

    def __len__(self) -> int:
        return len(self.ids)

    def in_part(self, number: int, part_ids: np.ndarray, dead: set[int]) -> np.ndarray:
        """The allowed ids approximate segment `number` (of sorted `part_ids`) holds alive."""
        import numpy as np

        held = self._parts.get(number)
        if held is None:
            at = np.searchsorted(part_ids, self.ids)
            inside = at < len(part_ids)
            candidates = self.ids[inside]
            held = candidates[part_ids[at[inside]] == candidates]
            if dead:
                held = held[np.isin(held, np.fromiter(dead, dtype=np.int64), invert=True)]
            self._parts[number] = held
        return held


class SegmentVectors:
    """Every live segment of an index, held for search: the exact ones in one flat index, the
    approximate ones each in its own, less the vectors of removed chunks."""

    def __init__(self, dimension: int) -> None:
        self.dimension = dimension
        self.flat = FaissVectorStore(dimension, threshold=2**62)  # never turned approximate here
        self.approximate_parts: list[FaissVectorStore] = []
        self.loaded: set[int] = set()
        self.dead: set[int] = set()  # chunk ids whose vectors are dead, removed from the indexes or not
        self._unremoved: set[int] = set()  # of those, the ones still in the indexes
        self._part_ids: list[np.ndarray] = []  # sorted ids of each approximate part

    def __len__(self) -> int:
        return len(self.flat) + sum(len(p) for p in self.approximate_parts) - len(self._unremoved)

    @property
    def approximate(self) -> bool:
        return bool(self.approximate_parts)

    def update(self, index_dir: Path, segments: Sequence[SegmentRow], dead: set[int]) -> bool:
        """Load the segments not held yet and drop dead vectors; False when a held segment is no longer
        live (a merge replaced it): then a fresh SegmentVectors must load them all."""
        live_ids = {s.id for s in segments}
        if self.loaded - live_ids:
            return False
        for segment in segments:
            if segment.id in self.loaded:
                continue
            store = FaissVectorStore.load(segment_path(index_dir, segment.id), self.dimension)
            if store.approximate:
                self.approximate_parts.append(store)
                self._part_ids.append(_sorted(store.ids()))
            elif len(self.flat) == 0:
                self.flat = FaissVectorStore(self.dimension, store._index, threshold=2**62)
            else:
                ids, vectors = store._contents(with_vectors=True)
                self.flat.add(ids.tolist(), vectors)
            self.loaded.add(segment.id)
        # The catalog lists as dead only vectors of live segments (a merge forgets those it dropped),
        # so every one is held here: an approximate part drops its own at once (a few list entries),
        # the flat part skips them in its results until there are enough to be worth moving its rows.
        newly_dead = sorted(dead - self.dead)
        self.dead = set(dead)
        owner = self._owner(newly_dead)
        for number, part in enumerate(self.approximate_parts):
            part.remove([i for i, o in zip(newly_dead, owner) if o == number])
        self._unremoved |= {i for i, o in zip(newly_dead, owner) if o == -1}
        if len(self._unremoved) > DEAD_SLACK:
            self.flat.remove(sorted(self._unremoved))
            self._unremoved = set()
        return True

    def search(self, query: np.ndarray, k: int, allowed: AllowedIds | None = None) -> list[tuple[int, float]]:
        """The `k` nearest live vectors, best first, over every part; among `allowed` when given (a
        filtered search): exact over the flat part and over a few allowed vectors of an approximate
        one, whose usual lists might hold none of them."""
        import numpy as np

        if k <= 0:
            return []
        selector = None if allowed is None else allowed.selector
        found: list[tuple[int, float]] = []
        if len(self.flat):
            found = self.flat.search(query, k + len(self._unremoved), selector)
            if self._unremoved:
                found = [hit for hit in found if hit[0] not in self._unremoved]
        for number, part in enumerate(self.approximate_parts):
            if not len(part):
                continue
            if allowed is None:
                found += part.search(query, k)
                continue
            held = allowed.in_part(number, self._part_ids[number], self.dead)
            if len(held) <= EXACT_ALLOWED_VECTORS:
                scores = part.vectors(held.tolist()) @ np.asarray(query, dtype=np.float32).reshape(-1)
                best = np.argsort(-scores, kind="stable")[:k]
                found += [(int(held[n]), float(scores[n])) for n in best]
                continue
            scale = -(-len(part) // len(held))  # lists probed grow as the admitted share shrinks
            hits = part.search(query, k, selector, scale)
            if len(hits) < k:  # the probed lists held too few of them: every list
                hits = part.search(query, k, selector, len(part))
            found += hits
        if self.approximate_parts:
            found.sort(key=lambda hit: hit[1], reverse=True)
        return found[:k]

    def vectors(self, ids: Sequence[int]) -> np.ndarray:
        import numpy as np

        if not self.approximate_parts:
            return self.flat.vectors(ids)
        wanted = np.asarray(ids, dtype=np.int64)
        out = np.zeros((len(wanted), self.dimension), dtype=np.float32)
        owner = self._owner(wanted)
        for number, part in enumerate((self.flat, *self.approximate_parts), start=-1):
            rows = np.flatnonzero(owner == number)
            if len(rows):
                out[rows] = part.vectors(wanted[rows].tolist())
        return out

    def _owner(self, ids: Sequence[int] | np.ndarray) -> np.ndarray:
        """For each id, the approximate part that holds it (0, 1, ...), else -1 (the flat part)."""
        import numpy as np

        wanted = np.asarray(ids, dtype=np.int64)
        owner = np.full(len(wanted), -1, dtype=np.int64)
        for number, part_ids in enumerate(self._part_ids):
            at = np.searchsorted(part_ids, wanted)
            inside = at < len(part_ids)
            hit = np.zeros(len(wanted), dtype=bool)
            hit[inside] = part_ids[at[inside]] == wanted[inside]
            owner[hit] = number
        return owner

    def ids(self) -> list[int]:
        held = self.flat.ids() + [i for part in self.approximate_parts for i in part.ids()]
        return [i for i in held if i not in self._unremoved]


def _sorted(ids: list[int]) -> np.ndarray:
    import numpy as np

    return np.sort(np.asarray(ids, dtype=np.int64))
