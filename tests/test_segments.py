"""The local store's vector segments: the merge policy, search over segments, and kills during a merge.

Articles here are small hand-made texts with random unit vectors of 8 dimensions: the storage logic
is what is tested, not the model.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from qa.stores.base import new_manifest
from qa.stores.local.catalog import SegmentRow
from qa.stores.local.segments import MERGE_FACTOR, plan_merge
from qa.stores.local.store import LocalStore, LocalWriter
from qa.types import Article, Chunk, CommitGroup, IndexedArticle, SearchFilters, article_sentences

DIMENSION = 8
REPO = Path(__file__).resolve().parent.parent


def rows(*sizes: int, approximate: tuple[int, ...] = ()) -> list[SegmentRow]:
    """Segments of these sizes, oldest first, each covering the chunk ids after the one before."""
    made, first = [], 1
    for number, size in enumerate(sizes, start=1):
        made.append(SegmentRow(number, first, first + size - 1, size, number in approximate))
        first += size
    return made


def test_ten_segments_of_a_size_class_merge_with_the_smaller_ones_after_them() -> None:
    assert plan_merge(rows(5000, *[40] * 9), {}, threshold=10**9) == []
    assert [s.vectors for s in plan_merge(rows(5000, *[40] * 10), {}, threshold=10**9)] == [40] * 10
    # Ten of 40 make one of 400, the tenth of its class: both merges are one.
    assert len(plan_merge(rows(5000, *[900] * 9, *[40] * 10), {}, threshold=10**9)) == 19


def test_a_large_segment_is_not_rewritten_for_small_ones() -> None:
    segments = rows(100_000, *[3] * 9, 5, 4)
    assert plan_merge(segments, {}, threshold=10**9)[0].vectors != 100_000


def test_a_build_of_equal_commits_merges_once() -> None:
    run = plan_merge(rows(*[2048] * 178), {}, threshold=10**9)
    assert len(run) == 178


def test_daily_adds_rewrite_each_vector_a_few_times() -> None:
    """A thousand adds of 3 vectors to 100,000: the base is never rewritten, the rest log10(n) times."""
    sizes, written = [100_000], 0
    for _ in range(1000):
        sizes.append(3)
        written += 3
        while run := plan_merge(rows(*sizes), {}, threshold=10**9):
            merged = sum(s.vectors for s in run)
            written += merged
            sizes = sizes[: len(sizes) - len(run)] + [merged]
    assert sizes[0] == 100_000
    assert written <= 3000 * 4
    assert len(sizes) <= 1 + 3 * (MERGE_FACTOR - 1)


def test_past_the_threshold_an_exact_part_over_half_of_it_merges_into_one() -> None:
    assert plan_merge(rows(900, 40), {}, threshold=1000) == []
    assert len(plan_merge(rows(900, 400), {}, threshold=1000)) == 2
    assert plan_merge(rows(1500, 400, approximate=(1,)), {}, threshold=1000) == []
    assert len(plan_merge(rows(1500, 600, approximate=(1,)), {}, threshold=1000)) == 2
    # Below half the threshold an approximate segment goes back to exact.
    assert len(plan_merge(rows(1500, 10, approximate=(1,)), {1: 1200}, threshold=1000)) == 2


def test_a_segment_a_fifth_dead_is_rewritten_alone() -> None:
    segments = rows(1000, 100)
    assert plan_merge(segments, {1: 199}, threshold=10**9) == []
    assert plan_merge(segments, {1: 200}, threshold=10**9) == [segments[0]]


# A real index of small articles -------------------------------------------------------------------


def article(n: int, rng: np.random.Generator) -> tuple[IndexedArticle, np.ndarray, np.ndarray]:
    """Article n: two sentences in one chunk, with random unit vectors for the chunk and its sentences."""
    text = f"Article {n} tells of river number {n}. It runs north of town {n}."
    first = text.index(" It") + 1
    spans = ((0, first - 1), (first, len(text)))
    doc_id = f"doc{n:05d}"
    item = IndexedArticle(
        Article(doc_id, f"/corpus/a{n:05d}.md", f"Article {n}", text, f"hash{n}"),
        (Chunk(doc_id, 0, 0, len(text), text, spans),),
        len(text),
        0,
    )
    chunk = unit_rows(rng, 1)
    return item, chunk, unit_rows(rng, len(article_sentences(item)))


def unit_rows(rng: np.random.Generator, count: int) -> np.ndarray:
    matrix = rng.standard_normal((count, DIMENSION)).astype(np.float32)
    return matrix / np.linalg.norm(matrix, axis=1, keepdims=True)


def add_articles(writer: LocalWriter, numbers: range, rng: np.random.Generator, drop: tuple[str, ...] = ()) -> None:
    made = [article(n, rng) for n in numbers]
    writer.commit(CommitGroup(
        [m[0] for m in made], drop, np.vstack([m[1] for m in made]), [m[2] for m in made], ["/corpus"]
    ))


def open_writer(index_dir: Path, rebuild: bool = False) -> LocalWriter:
    fresh = not (index_dir / "manifest.json").exists()
    return LocalWriter(index_dir, new_manifest("test-model", DIMENSION), fresh, rebuild)


def exact_top(store: LocalStore, query: np.ndarray, k: int) -> list[int]:
    """The true top k over every live chunk's vector, by brute force."""
    ids = store.chunk_ids()
    cosines = store.chunk_vectors(ids) @ query
    return [ids[i] for i in np.argsort(-cosines, kind="stable")[:k]]


@pytest.fixture
def segmented(tmp_path: Path) -> Path:
    """An index of 12 one-article commits, two of them removed since: 12 segments, 2 dead vectors."""
    index_dir = tmp_path / "index"
    rng = np.random.default_rng(0)
    writer = open_writer(index_dir)
    for n in range(12):
        add_articles(writer, range(n, n + 1), rng)
    writer.commit(CommitGroup(drop_docs=["doc00003", "doc00007"]))
    writer.close()  # not finished: nothing merged yet
    return index_dir


def test_search_over_segments_finds_the_exact_neighbours_and_skips_dead_ones(segmented: Path) -> None:
    store = LocalStore.open(segmented)
    try:
        assert len(store.vectors.loaded) == 12
        assert store.chunk_count() == 10
        assert store.check() == []
        for query in unit_rows(np.random.default_rng(1), 20):
            found = store.dense_search(query, 4)
            assert found == exact_top(store, query, 4)
    finally:
        store.close()


def test_a_reader_loads_only_new_segments_and_sees_a_merge(segmented: Path) -> None:
    store = LocalStore.open(segmented)
    try:
        held = store.vectors
        writer = open_writer(segmented)
        add_articles(writer, range(100, 103), np.random.default_rng(2), drop=("doc00005",))
        with store.reading():
            assert store.vectors is held  # brought up to date in place
            assert store.chunk_count() == 12
        writer.finish()  # 13 segments: ten of one article merge
        writer.close()
        with store.reading():
            assert store.vectors is not held
            assert len(store.vectors.loaded) < 13
            assert store.chunk_count() == 12
            assert store.check() == []
    finally:
        store.close()
    assert len(list(segmented.glob("segment-*.faiss"))) == len(store.vectors.loaded)


def test_a_rebuild_replaces_every_segment(segmented: Path) -> None:
    writer = open_writer(segmented, rebuild=True)
    add_articles(writer, range(200, 205), np.random.default_rng(3), drop=tuple(f"doc{n:05d}" for n in range(12)))
    writer.finish()
    writer.close()
    store = LocalStore.open(segmented)
    try:
        assert store.counts() == (5, 5)
        assert store.check() == []
    finally:
        store.close()
    assert len(list(segmented.glob("segment-*.faiss"))) == 1


def test_segments_past_the_threshold_merge_into_an_approximate_index(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QA_ANN_THRESHOLD", "400")
    index_dir = tmp_path / "index"
    rng = np.random.default_rng(4)
    writer = open_writer(index_dir)
    for begin in range(0, 600, 100):
        add_articles(writer, range(begin, begin + 100), rng)
    writer.finish()
    add_articles(writer, range(600, 650), rng)  # a new exact segment beside the approximate one
    store = LocalStore.open(index_dir)
    try:
        assert store.vectors.approximate and len(store.vectors.flat) == 50
        assert store.chunk_count() == 650
        assert store.check() == []
        new = store.chunk_vectors([650])[0]
        assert store.dense_search(new, 1) == [650]
        old = store.chunk_vectors([7])[0]
        assert store.dense_search(old, 1) == [7]
        writer.commit(CommitGroup(drop_docs=["doc00006", "doc00649"]))  # chunks 7 and 650
        with store.reading():
            assert store.chunk_count() == 648
            assert store.check() == []
            assert 7 not in store.dense_search(old, 5) and 650 not in store.dense_search(new, 5)
        # A filtered search is exact over the articles the filters admit, in the approximate
        # part (whose probed lists may hold none of them) and the exact one alike, dead ones left out.
        writer.commit(CommitGroup(drop_docs=["doc00012"]))
        filters = SearchFilters(source="a0001*")  # articles 10-19 (approximate), and none of 600-649
        wide = SearchFilters(source="a006*")  # articles 600-649 (exact) and none of the others
        # Past EXACT_ALLOWED_VECTORS (0 here) the approximate part is probed in more lists instead.
        from qa.stores.local import segments

        for exact_limit in (segments.EXACT_ALLOWED_VECTORS, 0):
            monkeypatch.setattr(segments, "EXACT_ALLOWED_VECTORS", exact_limit)
            with store.reading():
                for chosen in (filters, wide):
                    records = store.chunks(store.chunk_ids())
                    admitted = sorted(c for c, record in records.items() if chosen.admits(record))
                    assert admitted and "doc00012" not in {records[c].doc_id for c in admitted}
                    for query in unit_rows(np.random.default_rng(5), 10):
                        cosines = store.chunk_vectors(admitted) @ query
                        expected = [admitted[i] for i in np.argsort(-cosines, kind="stable")[:4]]
                        assert store.dense_search(query, 4, chosen) == expected, exact_limit
    finally:
        store.close()
        writer.close()


# A kill during a merge ----------------------------------------------------------------------------

_KILLER = """
import os, signal, sys
import qa.stores.local.store as store
from qa.stores.base import new_manifest
from qa.stores.local.catalog import Catalog
from qa.stores.local.vectors import FaissVectorStore

moment = sys.argv[2]

def kill():
    os.kill(os.getpid(), signal.SIGKILL)

def after(original):
    def patched(*args, **kwargs):
        result = original(*args, **kwargs)
        kill()
        return result
    return patched

if moment == "written":
    FaissVectorStore.save = after(FaissVectorStore.save)
elif moment == "swapped":
    Catalog.replace_segments = after(Catalog.replace_segments)
elif moment == "committed":
    store._unlink = lambda path: kill()
writer = store.LocalWriter(__import__("pathlib").Path(sys.argv[1]), new_manifest("test-model", 8), False, False)
writer.merge()
"""


@pytest.mark.parametrize("moment", ["written", "swapped", "committed"])
def test_a_kill_during_a_merge_loses_nothing(segmented: Path, moment: str) -> None:
    writer = open_writer(segmented)
    add_articles(writer, range(20, 21), np.random.default_rng(5))  # 13 segments of one: a merge is due
    writer.close()
    before = LocalStore.open(segmented)
    queries = unit_rows(np.random.default_rng(6), 10)
    expected = (before.chunk_ids(), [before.dense_search(q, 5) for q in queries])
    before.close()

    env = dict(os.environ, PYTHONPATH=str(REPO))
    killed = subprocess.run([sys.executable, "-c", _KILLER, str(segmented), moment], env=env, timeout=120)
    assert killed.returncode == -signal.SIGKILL

    merges_due = [0] if moment == "committed" else [1, 0]
    for due in [*merges_due, 0]:  # as the kill left it, then after the next update's merge
        store = LocalStore.open(segmented)
        try:
            assert store.check() == []
            assert (store.chunk_ids(), [store.dense_search(q, 5) for q in queries]) == expected
        finally:
            store.close()
        writer = open_writer(segmented)
        assert writer.merge() == due
        writer.close()
    assert len(list(segmented.glob("segment-*.faiss*"))) == len(LocalStore.open(segmented).vectors.loaded)


def test_file_stamps_too_long_for_one_sqlite_string_are_read_a_row_each(tmp_path: Path) -> None:
    """At some ten million files the stamps outgrow SQLite's longest string; the scan must still get them."""
    writer = open_writer(tmp_path / "index")
    try:
        add_articles(writer, range(30), np.random.default_rng(0))
        whole, under = writer.file_stamps(), writer.file_stamps(["/corpus"])
        assert len(whole) == 30 and under == whole
        writer.catalog.connection.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, 200)
        assert writer.file_stamps() == whole
        assert writer.file_stamps(["/corpus"]) == whole
    finally:
        writer.close()
