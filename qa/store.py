"""Vector storage: a small interface, and the FAISS implementation that is the default.

FAISS is the only heavy library here and is imported lazily. The index is an `IndexIDMap2` over an
inner-product index of L2-normalized vectors, so scores are cosine similarities and every vector
keeps the integer id of its chunk in the metadata catalog.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from qa.errors import IndexCorruptError

if TYPE_CHECKING:
    import numpy as np


class VectorStore(Protocol):
    """What the rest of qa needs from a vector engine."""

    dimension: int

    def __len__(self) -> int: ...

    def add(self, ids: Sequence[int], vectors: np.ndarray) -> None:
        """Add vectors under the given integer ids."""

    def remove(self, ids: Sequence[int]) -> None:
        """Remove the vectors with these ids; unknown ids are ignored."""

    def search(self, query: np.ndarray, k: int) -> list[tuple[int, float]]:
        """The `k` nearest ids to one query vector with their cosine scores, best first."""

    def vectors(self, ids: Sequence[int]) -> np.ndarray:
        """The stored vectors of these ids, one row each."""

    def ids(self) -> list[int]:
        """Every id held, in no particular order."""


class FaissVectorStore:
    """Exact cosine search over normalized vectors with FAISS, saved as one file."""

    def __init__(self, dimension: int, index: Any = None) -> None:
        import faiss

        self.dimension = dimension
        self._index = index if index is not None else faiss.IndexIDMap2(faiss.IndexFlatIP(dimension))

    def __len__(self) -> int:
        return int(self._index.ntotal)

    def add(self, ids: Sequence[int], vectors: np.ndarray) -> None:
        import numpy as np

        if len(ids) == 0:
            return
        matrix = np.ascontiguousarray(vectors, dtype=np.float32)
        if matrix.ndim != 2 or matrix.shape[1] != self.dimension:
            raise ValueError(f"expected vectors of dimension {self.dimension}, got {matrix.shape}")
        self._index.add_with_ids(matrix, np.asarray(ids, dtype=np.int64))

    def remove(self, ids: Sequence[int]) -> None:
        import numpy as np

        if len(ids) == 0:
            return
        self._index.remove_ids(np.asarray(ids, dtype=np.int64))

    def search(self, query: np.ndarray, k: int) -> list[tuple[int, float]]:
        import numpy as np

        if k <= 0 or len(self) == 0:
            return []
        import faiss

        matrix = np.ascontiguousarray(query, dtype=np.float32).reshape(1, -1)
        # One query is too little work to share between threads: waking them costs more than it saves.
        threads = faiss.omp_get_max_threads()
        faiss.omp_set_num_threads(1)
        try:
            scores, ids = self._index.search(matrix, min(k, len(self)))
        finally:
            faiss.omp_set_num_threads(threads)
        return [(int(i), float(s)) for i, s in zip(ids[0], scores[0]) if i != -1]

    def vectors(self, ids: Sequence[int]) -> np.ndarray:
        import numpy as np

        if len(ids) == 0:
            return np.zeros((0, self.dimension), dtype=np.float32)
        return np.vstack([self._index.reconstruct(int(i)) for i in ids]).astype(np.float32)

    def ids(self) -> list[int]:
        import faiss

        return [int(i) for i in faiss.vector_to_array(self._index.id_map)]

    def save(self, path: Path) -> None:
        """Write to `path` through a temporary file and an atomic rename: readers never see half a file."""
        import faiss

        tmp = path.with_name(path.name + ".tmp")
        faiss.write_index(self._index, str(tmp))
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: Path, dimension: int) -> FaissVectorStore:
        """Read a saved store, checking it holds vectors of the expected dimension."""
        import faiss

        try:
            index = faiss.read_index(str(path))
        except Exception as exc:  # faiss raises RuntimeError with a C++ message
            raise IndexCorruptError(f"vector file {path.name} cannot be read ({_first_line(exc)})") from exc
        if index.d != dimension:
            raise IndexCorruptError(
                f"vector file {path.name} holds {index.d}-dimensional vectors, expected {dimension}"
            )
        return cls(dimension, index)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:160] if text else type(exc).__name__
