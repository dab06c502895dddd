"""FaissVectorStore: ids, cosine search, removal and the saved file, with small hand-made unit vectors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from qa.errors import ConfigError, IndexCorruptError
from qa.stores.local.vectors import ANN_THRESHOLD, FaissVectorStore

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
    with pytest.raises(IndexCorruptError, match="garbage.faiss") as raised:
        FaissVectorStore.load(garbage, DIMENSION)
    # What faiss says, whole and without the C++ function and source line it failed in ("Error in
    # std::unique_ptr<faiss::Index> faiss::read_index_up(…) at …/index_read.cpp:3251: …").
    assert "not recognized)" in str(raised.value) and "Error in" not in str(raised.value), raised.value


# The approximate index, with a threshold of a few thousand vectors instead of 150,000.

ANN_DIMENSION = 32
THRESHOLD = 2000


def normalized(matrix: np.ndarray) -> np.ndarray:
    return (matrix / np.linalg.norm(matrix, axis=1, keepdims=True)).astype(np.float32)


def unit_rows(rng: np.random.Generator, rows: int, dimension: int = ANN_DIMENSION) -> np.ndarray:
    """Random unit vectors: no structure for an index to find."""
    return normalized(rng.standard_normal((rows, dimension)))


def topical_rows(rng: np.random.Generator, rows: int, topics: np.ndarray, spread: float) -> np.ndarray:
    """Unit vectors around a few topic vectors, as embeddings of texts on a few subjects are."""
    picked = topics[rng.integers(0, len(topics), rows)]
    return normalized(picked + spread * rng.standard_normal(picked.shape) / np.sqrt(picked.shape[1]))


def recall(approximate: FaissVectorStore, exact: FaissVectorStore, queries: np.ndarray, k: int) -> float:
    shares = []
    for query in queries:
        truth = {i for i, _ in exact.search(query, k)}
        shares.append(len(truth & {i for i, _ in approximate.search(query, k)}) / len(truth))
    return float(np.mean(shares))


@pytest.fixture
def topical() -> tuple[FaissVectorStore, FaissVectorStore, np.ndarray, np.ndarray, np.ndarray]:
    """The same 3,000 topical vectors under scattered int64 ids in an IVF store and a flat one,
    with 40 queries on the same topics."""
    rng = np.random.default_rng(7)
    topics = unit_rows(rng, 60)
    rows = topical_rows(rng, 3000, topics, 0.5)
    ids = rng.choice(2**62, 3000, replace=False)
    approximate = FaissVectorStore(ANN_DIMENSION, threshold=THRESHOLD)
    exact = FaissVectorStore(ANN_DIMENSION, threshold=10**9)
    approximate.add(ids, rows)
    exact.add(ids, rows)
    assert approximate.choose_index()
    return approximate, exact, ids, rows, topical_rows(rng, 40, topics, 0.7)


def test_index_stays_exact_up_to_the_threshold_and_turns_approximate_on_save(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    store = FaissVectorStore(ANN_DIMENSION, threshold=THRESHOLD)
    store.add(range(THRESHOLD), unit_rows(rng, THRESHOLD))
    store.save(tmp_path / "vectors.faiss")
    assert not store.approximate
    assert store.describe() == "exact (flat)"
    store.add([THRESHOLD], unit_rows(rng, 1))
    assert not store.approximate  # adding alone does not retrain: the commit's save does
    store.save(tmp_path / "vectors.faiss")
    assert store.approximate
    assert store.describe().startswith("IVF-Flat, ")
    assert FaissVectorStore.load(tmp_path / "vectors.faiss", ANN_DIMENSION).approximate


def test_approximate_search_finds_most_of_the_exact_neighbours_of_random_vectors() -> None:
    rng = np.random.default_rng(2)
    rows = unit_rows(rng, 3000)
    approximate = FaissVectorStore(ANN_DIMENSION, threshold=THRESHOLD)
    exact = FaissVectorStore(ANN_DIMENSION, threshold=10**9)
    for store in (approximate, exact):
        store.add(range(3000), rows)
    approximate.choose_index()
    queries = unit_rows(rng, 40)
    assert recall(approximate, exact, queries, 64) >= 0.95
    assert recall(approximate, exact, queries, 5) >= 0.95


def test_approximate_search_probes_few_lists_of_topical_vectors_and_scores_by_cosine(topical) -> None:
    approximate, exact, ids, rows, queries = topical
    assert approximate._index.nprobe < approximate._index.nlist / 4  # really approximate
    assert recall(approximate, exact, queries, 64) >= 0.95
    assert recall(approximate, exact, queries, 300) >= 0.95  # deeper pools probe more lists
    found = approximate.search(queries[0], 10)
    by_id = dict(zip(ids.tolist(), rows))
    for chunk_id, score in found:
        assert score == pytest.approx(float(by_id[chunk_id] @ queries[0]), abs=1e-5)
    assert [s for _, s in found] == sorted((s for _, s in found), reverse=True)


def test_vectors_returns_the_stored_rows_after_conversion(topical) -> None:
    approximate, _, ids, rows, _ = topical
    picked = [5, 2999, 0, 1234]
    np.testing.assert_array_equal(approximate.vectors(ids[picked].tolist()), rows[picked])
    assert sorted(approximate.ids()) == sorted(ids.tolist())


def test_remove_and_add_again_after_conversion(topical) -> None:
    approximate, _, ids, rows, _ = topical
    gone = ids[:100].tolist()
    approximate.remove(gone + [12345])  # 12345 was never added: ignored
    assert len(approximate) == 2900
    assert not set(gone) & set(approximate.ids())
    for query in rows[:100:10]:
        assert not {i for i, _ in approximate.search(query, 64)} & set(gone)
    approximate.add([gone[0]], rows[1:2])
    assert approximate.search(rows[1], 2)[0][1] == pytest.approx(1.0)
    assert gone[0] in {i for i, _ in approximate.search(rows[1], 2)}
    np.testing.assert_array_equal(approximate.vectors([gone[0]])[0], rows[1])


def test_approximate_index_survives_save_and_load(topical, tmp_path: Path) -> None:
    approximate, _, ids, rows, queries = topical
    path = tmp_path / "vectors.faiss"
    approximate.save(path)
    loaded = FaissVectorStore.load(path, ANN_DIMENSION, threshold=THRESHOLD)
    assert loaded.approximate
    assert loaded.describe() == approximate.describe()
    assert sorted(loaded.ids()) == sorted(ids.tolist())
    np.testing.assert_array_equal(loaded.vectors(ids.tolist()), rows)
    for query in queries[:5]:
        assert loaded.search(query, 64) == approximate.search(query, 64)
    loaded.remove(ids[:10].tolist())
    loaded.save(path)
    assert len(FaissVectorStore.load(path, ANN_DIMENSION)) == 2990


def test_index_turns_exact_again_below_half_the_threshold_and_retrains_when_it_outgrows_its_lists(topical) -> None:
    approximate, exact, ids, rows, queries = topical
    approximate.remove(ids[: 3000 - THRESHOLD // 2].tolist())
    assert not approximate.choose_index()  # at half the threshold it stays approximate
    approximate.remove(ids[3000 - THRESHOLD // 2 : 3000 - THRESHOLD // 2 + 1].tolist())
    assert approximate.choose_index()
    assert not approximate.approximate
    assert sorted(approximate.ids()) == sorted(ids[3000 - THRESHOLD // 2 + 1 :].tolist())

    grown = FaissVectorStore(ANN_DIMENSION, threshold=500)
    grown.add(ids[:600].tolist(), rows[:600])
    grown.choose_index()
    lists = grown._index.nlist
    grown.add(ids[600:].tolist(), rows[600:])
    assert grown.choose_index()  # five times the vectors it was sized for
    assert grown._index.nlist >= 2 * lists
    assert recall(grown, exact, queries, 64) >= 0.95


def test_threshold_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QA_ANN_THRESHOLD", "1_000")
    assert FaissVectorStore(ANN_DIMENSION).threshold == 1000
    monkeypatch.setenv("QA_ANN_THRESHOLD", "lots")
    with pytest.raises(ConfigError, match="QA_ANN_THRESHOLD"):
        FaissVectorStore(ANN_DIMENSION)
    monkeypatch.delenv("QA_ANN_THRESHOLD")
    assert FaissVectorStore(ANN_DIMENSION).threshold == ANN_THRESHOLD


def test_a_failed_conversion_keeps_the_vectors_held(monkeypatch: pytest.MonkeyPatch) -> None:
    import qa.stores.local.vectors

    def fail(*_args: object) -> None:
        raise MemoryError

    rng = np.random.default_rng(3)
    rows = unit_rows(rng, 100)
    store = FaissVectorStore(ANN_DIMENSION, threshold=50)
    store.add(range(100), rows)
    monkeypatch.setattr(qa.stores.local.vectors, "_trained_ivf", fail)
    with pytest.raises(MemoryError):
        store.choose_index()
    assert not store.approximate
    assert sorted(store.ids()) == list(range(100))
    np.testing.assert_array_equal(store.vectors(range(100)), rows)


def test_two_stage_exact_search_gives_the_full_scans_results_through_adds_removes_and_ties(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Past FAST_SCAN_MIN_VECTORS a search scans half-precision copies first; what it returns must be
    the full scan's: the same ids, scores and order, duplicates (equal scores) included, after adds
    and removes, for small and deep pools."""
    import qa.stores.local.vectors as vectors_module

    rng = np.random.default_rng(5)
    rows = unit_rows(rng, 3000)
    rows[1000:1004] = rows[:4]  # one text saved twice has one vector: equal scores
    # 100 vectors a hair apart: their scores differ by less than half precision can tell apart.
    near = rows[2000] + 1e-5 * rng.standard_normal((100, ANN_DIMENSION)).astype(np.float32)
    rows[2000:2100] = near / np.linalg.norm(near, axis=1, keepdims=True)
    store = FaissVectorStore(ANN_DIMENSION, threshold=10**9)
    store.add(range(3000), rows)
    # Some queries sit on a duplicated vector, and some in the tight bunch.
    queries = np.vstack([unit_rows(rng, 34), rows[:4], rows[2000], rows[2050]])

    def both(k: int) -> tuple[list, list, int]:
        proved = []
        original = FaissVectorStore._two_stage

        def counted(self, query, k):
            found = original(self, query, k)
            proved.append(found is not None)
            return found

        monkeypatch.setattr(vectors_module, "FAST_SCAN_MIN_VECTORS", 500)
        monkeypatch.setattr(vectors_module, "FAST_SCAN_AFTER_SEARCHES", 1)
        monkeypatch.setattr(FaissVectorStore, "_two_stage", counted)
        fast = [store.search(q, k) for q in queries]
        monkeypatch.setattr(vectors_module, "FAST_SCAN_MIN_VECTORS", 10**12)
        full = [store.search(q, k) for q in queries]
        monkeypatch.setattr(FaissVectorStore, "_two_stage", original)
        return fast, full, sum(proved)

    for k in (1, 5, 64, 150):
        fast, full, proved = both(k)
        assert fast == full
        assert proved > len(queries) // 2  # the fast path really ran, not only the fallback
    store.remove(list(range(0, 3000, 3)))
    store.add(range(5000, 5200), unit_rows(rng, 200))
    fast, full, proved = both(64)
    assert fast == full and proved > 0
    assert all(hit[0] % 3 != 0 or hit[0] >= 5000 for found in fast for hit in found)


def test_the_half_precision_copies_are_made_only_once_an_index_is_searched_several_times(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A process that asks once (`qa ask`) must not pay for copies it would use once."""
    import qa.stores.local.vectors as vectors_module

    monkeypatch.setattr(vectors_module, "FAST_SCAN_MIN_VECTORS", 500)
    rng = np.random.default_rng(6)
    store = FaissVectorStore(ANN_DIMENSION, threshold=10**9)
    store.add(range(1000), unit_rows(rng, 1000))
    query = unit_rows(rng, 1)[0]
    for _ in range(vectors_module.FAST_SCAN_AFTER_SEARCHES - 1):
        store.search(query, 5)
    assert store._fast is None
    store.search(query, 5)
    assert store._fast is not None and store._fast.ntotal == 1000


def test_an_index_removed_under_a_reader_is_said_gone_and_one_built_again_there_is_read(
    seeds_index: Path, tmp_path: Path, embedder
) -> None:
    # A server keeps the index's files open: removed, it once went on answering from them; built
    # again in the same folder, it answered from the old files (and the new one's segment 1 would
    # have been taken for the old one's).
    import shutil

    from conftest import GLACIER, WRITTEN_ARTICLES
    from qa.errors import IndexMissingError
    from qa.indexer import update_index
    from qa.retrieve import Retriever
    from qa.stores import open_store

    index_dir = tmp_path / "index"
    shutil.copytree(seeds_index, index_dir)
    store = open_store(index_dir)
    try:
        retriever = Retriever(store, embedder)
        assert retriever.search("How much does Baghdad owe Russia?", k=1)
        shutil.rmtree(index_dir)
        with pytest.raises(IndexMissingError, match="removed while open"):
            retriever.search("How much does Baghdad owe Russia?", k=1)
        articles = tmp_path / "articles"
        articles.mkdir()
        for article in WRITTEN_ARTICLES:
            (articles / article.name).write_text(article.text, encoding="utf-8")
        update_index(index_dir, [articles], embedder=embedder)
        (hit,) = retriever.search(GLACIER.question, k=1)
        assert Path(hit.path).name == GLACIER.name
        assert store.counts() == (len(WRITTEN_ARTICLES), store.chunk_count())
        assert {Path(p).name for p in store.documents()} == {a.name for a in WRITTEN_ARTICLES}
    finally:
        store.close()
