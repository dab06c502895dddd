"""The local store's chunk vectors: FAISS, in one file per generation.

FAISS is the only heavy library here and is imported lazily. Vectors are L2-normalized and searched by
inner product, so scores are cosine similarities, and every vector keeps the integer id of its chunk in
the metadata catalog. Up to `ANN_THRESHOLD` vectors the index is exact (`IndexIDMap2` over
`IndexFlatIP`); past it, saving turns it into an inverted-file index (`IndexIVFFlat`) that scans only
the lists nearest the query: as many as it takes for queries in random directions to find 90% of their
exact top 64. An exact index of FAST_SCAN_MIN_VECTORS or more, searched often, is scanned through
half-precision copies first and gives the full scan's results, proved so on each search (_two_stage).
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from qa.errors import ConfigError, IndexCorruptError
from qa.stores.base import REBUILD_HINT

if TYPE_CHECKING:
    import numpy as np

# Flat search reads every vector, so its time grows with their number. One query, one thread, k=64,
# 384 dimensions, p50 on this project's 2-core machine (bench/query.py, "vector index"): 5.7 ms at 100k
# vectors, 9.5 ms at 150k, 19 ms at 300k, 58 ms at 1M. Near 150k it passes ~10 ms, a third of the 30 ms
# a whole hybrid search may take; there the IVF index answers in 2.7 ms (3.1 ms at 1M) and finds 0.99
# of the exact top 64 for embedded questions over real-like vectors. Below it, exact search is fast
# enough and needs no training.
ANN_THRESHOLD = 150_000
ANN_THRESHOLD_ENV = "QA_ANN_THRESHOLD"

# What the approximate index is tuned for: the dense candidate pool of qa.retrieve (CANDIDATES),
# which then scores its candidates exactly, so missing a few of the 64 costs little. The recall is
# that of queries in random directions, the worst case (see _tuned_nprobe); questions do better.
TUNED_K = 64
TARGET_RECALL = 0.90
# k-means places its centroids well enough from 64 points each; FAISS's own 256 would train on every
# vector up to 1M, four times the work there (conversion took 81 s at 1M, 11 s at 150k, with 64).
TRAINING_POINTS_PER_LIST = 64
# FAISS warns when a list would get fewer training points than this.
MIN_POINTS_PER_LIST = 39
TUNING_QUERIES = 200


# An exact index of at least this many vectors is searched in two stages: a scan of half-precision
# copies finds a pool twice as deep as asked, and the pool is scored again in full precision. The
# scan reads half the bytes (100k vectors, one thread: 7.9-8.4 ms against 13.4-14.3 ms for the full
# scan), and its results are the full scan's, not an approximation: see `_two_stage`. Below this
# many, the full scan takes a few milliseconds and the copies would cost memory for nothing.
FAST_SCAN_MIN_VECTORS = 20_000
# The copies are made (0.2 s and more at 100k vectors) at this many-th search of one index, so a
# process that asks once (`qa ask`) never pays for them, and a chat, server or eval soon does.
FAST_SCAN_AFTER_SEARCHES = 4
# How far a half-precision score can be from the full one, for unit vectors: fp16 keeps 11
# significant bits (an error of at most 2^-10 of each component even if rounded down), which moves
# a dot product by at most 2^-10 (Cauchy-Schwarz), plus float32 rounding of both 384-term sums
# (under 1e-4). Scaled by the query's and the longest vector's norms.
FAST_SCAN_ERROR = 2.0**-10 + 1e-4


def ann_threshold() -> int:
    """Vectors past which the index becomes approximate: $QA_ANN_THRESHOLD, else `ANN_THRESHOLD`."""
    chosen = os.environ.get(ANN_THRESHOLD_ENV, "").strip()
    if not chosen:
        return ANN_THRESHOLD
    try:
        value = int(chosen.replace("_", ""))
    except ValueError:
        value = -1
    if value < 0:
        raise ConfigError(f"{ANN_THRESHOLD_ENV}={chosen!r} is not a number of vectors (0 or more)")
    return value


class FaissVectorStore:
    """Cosine search over normalized vectors with FAISS, saved as one file: exact up to `threshold`
    vectors, approximate (IVF) past it."""

    def __init__(self, dimension: int, index: Any = None, threshold: int | None = None) -> None:
        import faiss

        self.dimension = dimension
        self.threshold = ann_threshold() if threshold is None else threshold
        self._index = index if index is not None else _flat_index(dimension)
        self._fast: Any = None  # half-precision copies for _two_stage, made at its FAST_SCAN_AFTER_SEARCHES-th search
        self._fast_norm = 0.0  # the longest vector's norm among them
        self._exact_searches = 0
        if isinstance(self._index, faiss.IndexIVF) and self._index.direct_map.type != faiss.DirectMap.Hashtable:
            # vectors(ids) looks rows up by chunk id, which an inverted file can only do through this map.
            self._index.set_direct_map_type(faiss.DirectMap.Hashtable)

    def __len__(self) -> int:
        return int(self._index.ntotal)

    @property
    def approximate(self) -> bool:
        """Whether searches go through the approximate (IVF) index rather than the exact one."""
        import faiss

        return isinstance(self._index, faiss.IndexIVF)

    def describe(self) -> str:
        """The index in a few words: 'exact (flat)' or 'IVF-Flat, 1548 lists, nprobe 64'."""
        if not self.approximate:
            return "exact (flat)"
        return f"IVF-Flat, {self._index.nlist} lists, nprobe {self._index.nprobe}"

    def add(self, ids: Sequence[int], vectors: np.ndarray) -> None:
        import numpy as np

        if len(ids) == 0:
            return
        matrix = np.ascontiguousarray(vectors, dtype=np.float32)
        if matrix.ndim != 2 or matrix.shape[1] != self.dimension:
            raise ValueError(f"expected vectors of dimension {self.dimension}, got {matrix.shape}")
        self._index.add_with_ids(matrix, np.asarray(ids, dtype=np.int64))
        if self._fast is not None:
            self._fast.add_with_ids(matrix, np.asarray(ids, dtype=np.int64))
            self._fast_norm = max(self._fast_norm, _longest(matrix))

    def remove(self, ids: Sequence[int]) -> None:
        import numpy as np

        if len(ids) == 0:
            return
        self._index.remove_ids(np.asarray(ids, dtype=np.int64))
        if self._fast is not None:
            self._fast.remove_ids(np.asarray(ids, dtype=np.int64))

    def search(self, query: np.ndarray, k: int, allowed: Any = None, probe_scale: int = 1) -> list[tuple[int, float]]:
        """The `k` nearest vectors, best first; only those a FAISS IDSelector `allowed` selects, when
        given; an approximate index probes `probe_scale` times its lists (a filter that admits a
        tenth of its vectors finds as many of them in ten times the lists)."""
        import numpy as np

        if k <= 0 or len(self) == 0:
            return []
        import faiss

        matrix = np.ascontiguousarray(query, dtype=np.float32).reshape(1, -1)
        params = None if allowed is None else faiss.SearchParameters(sel=allowed)
        if self.approximate:
            # A deeper pool (filtered searches ask for 8 x 64) needs more lists for the same recall;
            # measured, twice the lists for 8 times k, so the lists grow with the square root of k.
            scale = (math.ceil(math.sqrt(k / TUNED_K)) if k > TUNED_K else 1) * probe_scale
            params = faiss.SearchParametersIVF(nprobe=min(self._index.nlist, self._index.nprobe * scale), sel=allowed)
        # One query is too little work to share between threads: waking them costs more than it saves.
        threads = faiss.omp_get_max_threads()
        faiss.omp_set_num_threads(1)
        try:
            two_stage = allowed is None and not self.approximate and len(self) >= FAST_SCAN_MIN_VECTORS
            found = self._two_stage(matrix, k) if two_stage else None
            if found is not None:
                return found
            scores, ids = self._index.search(matrix, min(k, len(self)), params=params)
        finally:
            faiss.omp_set_num_threads(threads)
        return [(int(i), float(s)) for i, s in zip(ids[0], scores[0]) if i != -1]

    def _two_stage(self, query: np.ndarray, k: int) -> list[tuple[int, float]] | None:
        """The exact search's `k` best (ids, scores, order: the same to the bit), or None when this
        search cannot prove it has them; then the caller scans in full.

        Half-precision copies of the vectors pick a pool of 2k; the pool's full vectors are scored by
        FAISS's own exact kernel (so each score is the full scan's). A vector outside the pool scores
        at most the pool's lowest half-precision score plus FAST_SCAN_ERROR; when the k-th exact
        score is above that, no vector outside could have entered the k best. Equal scores among the
        first k + 1 (one text saved twice has one vector) leave the order to the full scan too.
        """
        import faiss
        import numpy as np

        pool = 2 * k
        if pool >= len(self):
            return None
        if self._fast is None:
            self._exact_searches += 1
            if self._exact_searches < FAST_SCAN_AFTER_SEARCHES:
                return None
            # The flat index's own rows, read in place (a copy of them took seconds on a busy machine).
            count = self._index.ntotal
            ids = faiss.vector_to_array(self._index.id_map)
            flat = faiss.downcast_index(self._index.index)
            rows = faiss.rev_swig_ptr(flat.get_xb(), count * self.dimension).reshape(count, self.dimension)
            fast = faiss.IndexIDMap2(faiss.IndexScalarQuantizer(
                self.dimension, faiss.ScalarQuantizer.QT_fp16, faiss.METRIC_INNER_PRODUCT))
            fast.add_with_ids(rows, ids)
            self._fast_norm = _longest(rows)
            self._fast = fast
        rough, picked = self._fast.search(query, pool)
        picked = picked[0][picked[0] != -1]
        if len(picked) <= k:
            return None
        exact = faiss.IndexIDMap2(faiss.IndexFlatIP(self.dimension))
        exact.add_with_ids(self._index.reconstruct_batch(picked), picked)
        scores, ids = exact.search(query, k + 1)
        scores, ids = scores[0], ids[0]
        bound = FAST_SCAN_ERROR * float(np.linalg.norm(query)) * self._fast_norm
        if not scores[k - 1] > rough[0][len(picked) - 1] + bound or len(set(scores.tolist())) <= k:
            return None
        return [(int(i), float(s)) for i, s in zip(ids[:k], scores[:k])]

    def vectors(self, ids: Sequence[int]) -> np.ndarray:
        import numpy as np

        if len(ids) == 0:
            return np.zeros((0, self.dimension), dtype=np.float32)
        # One call for all rows: a Python loop of reconstruct() costs a few microseconds per id.
        return self._index.reconstruct_batch(np.asarray(ids, dtype=np.int64)).astype(np.float32, copy=False)

    def ids(self) -> list[int]:
        return [int(i) for i in self._contents(with_vectors=False)[0]]

    def choose_index(self) -> bool:
        """Make the index suit the number of vectors held; True if it was rebuilt.

        Past `threshold` a flat index becomes IVF, trained on the vectors held. An IVF index is
        trained again once it holds four times what it was sized for (its lists would be twice too
        few), and goes back to flat below half the threshold: the gap keeps an index that hovers
        near the threshold from being rebuilt at every commit.
        """
        held = len(self)
        if self.approximate:
            approximate = held >= self.threshold // 2
            rebuild = not approximate or _list_count(held) >= 2 * self._index.nlist
        else:
            approximate = rebuild = held > self.threshold
        if not rebuild:
            return False
        ids, vectors = self._contents(with_vectors=True)
        # The old index goes before the new one is filled, so at most two copies of the vectors
        # exist at once: memory stays a small multiple of the vectors themselves.
        previous = self._index
        previous.reset()
        try:
            if approximate:
                index = _trained_ivf(self.dimension, ids, vectors)
            else:
                index = _flat_index(self.dimension)
                index.add_with_ids(vectors, ids)
        except BaseException:
            previous.add_with_ids(vectors, ids)  # out of memory, or interrupted: keep what was held
            raise
        self._index = index
        self._fast = None  # copies of the index it replaces
        return True

    def save(self, path: Path) -> None:
        """Write to `path` through a temporary file and an atomic rename: readers never see half a file.

        The index is first made to suit its size (`choose_index`), so the file written is flat or IVF.
        """
        import faiss

        self.choose_index()
        tmp = path.with_name(path.name + ".tmp")
        try:
            faiss.write_index(self._index, str(tmp))
            with open(tmp, "rb") as handle:
                os.fsync(handle.fileno())
        except BaseException:
            tmp.unlink(missing_ok=True)  # half a file on a full disk: the space goes back now
            raise
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: Path, dimension: int, threshold: int | None = None) -> FaissVectorStore:
        """Read a saved store, flat or IVF, checking it holds vectors of the expected dimension."""
        import faiss

        try:
            index = faiss.read_index(str(path))
        except Exception as exc:  # faiss raises RuntimeError with a C++ message
            raise IndexCorruptError(f"vector file {path.name} cannot be read ({_first_line(exc)}); {REBUILD_HINT}") from exc
        if index.d != dimension:
            raise IndexCorruptError(
                f"vector file {path.name} holds {index.d}-dimensional vectors, expected {dimension}"
            )
        return cls(dimension, index, threshold)

    def _contents(self, with_vectors: bool) -> tuple[np.ndarray, np.ndarray | None]:
        """Every id held and, if asked, its vector, read from the index's own storage in one pass."""
        import faiss
        import numpy as np

        index = self._index
        if not self.approximate:
            ids = faiss.vector_to_array(index.id_map)
            return ids, (index.index.reconstruct_n(0, index.ntotal) if with_vectors else None)
        id_parts, vector_parts = [], []
        lists = index.invlists
        for number in range(index.nlist):
            size = lists.list_size(number)
            if size == 0:
                continue
            id_parts.append(faiss.rev_swig_ptr(lists.get_ids(number), size).copy())
            if with_vectors:
                codes = faiss.rev_swig_ptr(lists.get_codes(number), size * index.code_size)
                vector_parts.append(codes.view(np.float32).reshape(size, self.dimension).copy())
        ids = np.concatenate(id_parts) if id_parts else np.zeros(0, dtype=np.int64)
        if not with_vectors:
            return ids, None
        vectors = np.vstack(vector_parts) if vector_parts else np.zeros((0, self.dimension), dtype=np.float32)
        return ids, vectors


def _longest(rows: np.ndarray) -> float:
    """The largest norm among `rows` (read in place: no copy of them is made)."""
    import numpy as np

    return math.sqrt(float(np.einsum("ij,ij->i", rows, rows).max())) if len(rows) else 0.0


def _flat_index(dimension: int) -> Any:
    import faiss

    return faiss.IndexIDMap2(faiss.IndexFlatIP(dimension))


def _list_count(vectors: int) -> int:
    """Inverted lists for this many vectors: 4 x sqrt(n), FAISS's usual low end (1,548 at 150k), so a
    probe reads a few hundred vectors; fewer when there are too few points to train them."""
    return max(1, min(int(4 * math.sqrt(vectors)), vectors // MIN_POINTS_PER_LIST))


def _trained_ivf(dimension: int, ids: np.ndarray, vectors: np.ndarray) -> Any:
    """An IVF-Flat index trained on `vectors` (spherical k-means), holding them, with nprobe tuned."""
    import faiss

    lists = _list_count(len(vectors))
    index = faiss.IndexIVFFlat(faiss.IndexFlatIP(dimension), dimension, lists, faiss.METRIC_INNER_PRODUCT)
    index.cp.max_points_per_centroid = TRAINING_POINTS_PER_LIST
    index.cp.min_points_per_centroid = 1  # _list_count already gives each list enough points
    index.train(vectors)
    index.set_direct_map_type(faiss.DirectMap.Hashtable)
    index.add_with_ids(vectors, ids)
    index.nprobe = _tuned_nprobe(index, ids, vectors)
    return index


def _tuned_nprobe(index: Any, ids: np.ndarray, vectors: np.ndarray) -> int:
    """The fewest lists to probe (a power of two) for queries in random directions to find
    `TARGET_RECALL` of their exact top `TUNED_K`.

    Random directions are the hard case for an inverted file: far from every vector, their neighbours
    lie spread over many lists, where a question lies near the chunks that answer it. Over real-like
    vectors (bench/query.py), embedded SQuAD questions found 0.98-0.99 of their top 64 with what this
    picks. Test queries made from stored vectors pushed off by noise misjudged questions both ways: they
    asked for 16 times the lists questions need at 100k vectors and a quarter of them at 300k. Over
    random vectors, which have no clusters to find, this ends at a full scan.
    """
    import faiss
    import numpy as np

    rng = np.random.default_rng(0)  # the same vectors always get the same nprobe
    queries = rng.standard_normal((TUNING_QUERIES, vectors.shape[1])).astype(np.float32)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    k = min(TUNED_K, len(vectors))
    _, rows = faiss.knn(queries, vectors, k, metric=faiss.METRIC_INNER_PRODUCT)
    truth = [set(ids[row].tolist()) for row in rows]
    nprobe = 1
    while nprobe < index.nlist:
        _, found = index.search(queries, k, params=faiss.SearchParametersIVF(nprobe=nprobe))
        if recall_at(found, truth) >= TARGET_RECALL:
            break
        nprobe *= 2
    return min(nprobe, index.nlist)


def recall_at(found: np.ndarray, truth: Sequence[set[int]]) -> float:
    """Mean share of each query's true neighbours (`truth`, one set each) among its `found` ids (one row
    each, -1 for none): [[1, 2, -1]] against [{1, 3}] -> 0.5."""
    shares = [len(wanted.intersection(row.tolist())) / len(wanted) for row, wanted in zip(found, truth) if wanted]
    return sum(shares) / len(shares) if shares else 1.0


# Where in faiss's C++ a read failed, before what failed: "Error in std::unique_ptr<faiss::Index>
# faiss::read_index_up(IOReader*, int) at /project/faiss/impl/index_read.cpp:3251: Index type … not
# recognized". The place means nothing to a user, and cut to a length it left "not recog".
_FAISS_WHERE = re.compile(r"^Error in .*? at \S+:\d+: ")


def _first_line(exc: BaseException) -> str:
    """What a failed read says, in one line: its first, without faiss's source location."""
    text = str(exc).strip().splitlines()
    if not text:
        return type(exc).__name__
    said = _FAISS_WHERE.sub("", text[0])
    return said if len(said) <= 160 else said[:160].rsplit(" ", 1)[0] + " …"
