"""FaissVectorStore: ids, cosine search, removal and the saved file, with small hand-made unit vectors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from qa.errors import IndexCorruptError
from qa.store import FaissVectorStore

DIMENSION = 8


def unit(*components: float) -> np.ndarray:
    """A normalized DIMENSION-long vector from its first few components: unit(1, 1) -> [0.707, 0.707, 0, …]."""
    vector = np.zeros(DIMENSION, dtype=np.float32)
    vector[: len(components)] = components
    return vector / np.linalg.norm(vector)


def axis(i: int) -> np.ndarray:
    """The i-th basis vector."""
    vector = np.zeros(DIMENSION, dtype=np.float32)
    vector[i] = 1.0
    return vector


@pytest.fixture
def store() -> FaissVectorStore:
    """Ids 10, 20, 30 on the first three axes, and 40 halfway between axes 0 and 1."""
    vectors = FaissVectorStore(DIMENSION)
    vectors.add([10, 20, 30], np.stack([axis(0), axis(1), axis(2)]))
    vectors.add([40], unit(1, 1)[None, :])
    return vectors


def test_search_returns_ids_with_cosine_scores_best_first(store: FaissVectorStore) -> None:
    found = store.search(axis(0), 3)
    assert [i for i, _ in found[:2]] == [10, 40]
    assert found[2][0] in (20, 30)  # both are orthogonal to the query: a tie
    assert found[0] == (10, pytest.approx(1.0))
    assert found[1] == (40, pytest.approx(2**-0.5, abs=1e-6))
    assert found[2][1] == pytest.approx(0.0, abs=1e-6)


def test_search_asking_for_more_than_held_returns_all(store: FaissVectorStore) -> None:
    found = store.search(unit(0, 1, 1), 100)
    assert sorted(i for i, _ in found) == [10, 20, 30, 40]
    scores = [s for _, s in found]
    assert scores == sorted(scores, reverse=True)


def test_search_of_empty_store_or_zero_k_is_empty(store: FaissVectorStore) -> None:
    assert FaissVectorStore(DIMENSION).search(axis(0), 5) == []
    assert store.search(axis(0), 0) == []


def test_vectors_returns_stored_rows_in_the_order_asked(store: FaissVectorStore) -> None:
    rows = store.vectors([40, 10])
    assert rows.dtype == np.float32
    np.testing.assert_allclose(rows, np.stack([unit(1, 1), axis(0)]), atol=1e-7)
    assert store.vectors([]).shape == (0, DIMENSION)


def test_remove_drops_only_the_given_ids(store: FaissVectorStore) -> None:
    store.remove([10, 999])  # 999 was never added: ignored
    assert len(store) == 3
    assert sorted(store.ids()) == [20, 30, 40]
    assert [i for i, _ in store.search(axis(0), 1)] == [40]
    store.remove([])
    assert len(store) == 3


def test_removed_id_can_be_added_again_with_a_new_vector(store: FaissVectorStore) -> None:
    store.remove([20])
    store.add([20], axis(3)[None, :])
    assert store.search(axis(3), 1) == [(20, pytest.approx(1.0))]
    np.testing.assert_allclose(store.vectors([20])[0], axis(3))


def test_add_rejects_vectors_of_another_dimension(store: FaissVectorStore) -> None:
    with pytest.raises(ValueError, match="dimension 8"):
        store.add([50], np.ones((1, DIMENSION + 1), dtype=np.float32))
    assert len(store) == 4


def test_save_and_load_round_trip(store: FaissVectorStore, tmp_path: Path) -> None:
    path = tmp_path / "vectors.faiss"
    store.save(path)
    assert path.is_file()
    assert not path.with_name(path.name + ".tmp").exists()

    loaded = FaissVectorStore.load(path, DIMENSION)
    assert len(loaded) == 4
    assert sorted(loaded.ids()) == [10, 20, 30, 40]
    np.testing.assert_array_equal(loaded.vectors([10, 20, 30, 40]), store.vectors([10, 20, 30, 40]))
    for query in (axis(0), axis(2), unit(1, 2, 3)):
        assert loaded.search(query, 4) == store.search(query, 4)


def test_loaded_store_keeps_working_after_remove_and_save(store: FaissVectorStore, tmp_path: Path) -> None:
    path = tmp_path / "vectors.faiss"
    store.save(path)
    loaded = FaissVectorStore.load(path, DIMENSION)
    loaded.remove([30])
    loaded.add([50], axis(4)[None, :])
    loaded.save(path)
    again = FaissVectorStore.load(path, DIMENSION)
    assert sorted(again.ids()) == [10, 20, 40, 50]
    assert again.search(axis(4), 1) == [(50, pytest.approx(1.0))]


def test_load_checks_the_dimension(store: FaissVectorStore, tmp_path: Path) -> None:
    path = tmp_path / "vectors.faiss"
    store.save(path)
    with pytest.raises(IndexCorruptError, match=r"8-dimensional vectors, expected 384"):
        FaissVectorStore.load(path, 384)


def test_truncated_file_is_an_index_corrupt_error(store: FaissVectorStore, tmp_path: Path) -> None:
    path = tmp_path / "vectors.faiss"
    store.save(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(IndexCorruptError, match="vectors.faiss cannot be read"):
        FaissVectorStore.load(path, DIMENSION)


def test_missing_or_garbage_file_is_an_index_corrupt_error(tmp_path: Path) -> None:
    with pytest.raises(IndexCorruptError):
        FaissVectorStore.load(tmp_path / "absent.faiss", DIMENSION)
    garbage = tmp_path / "garbage.faiss"
    garbage.write_bytes(b"not a faiss index at all")
    with pytest.raises(IndexCorruptError, match="garbage.faiss"):
        FaissVectorStore.load(garbage, DIMENSION)
