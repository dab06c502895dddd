"""The local store's BM25 from cached postings gives exactly what FTS5's bm25() gives."""

from __future__ import annotations

import random
import shutil
from pathlib import Path

import numpy as np

from qa.stores.local.catalog import fts_query
from qa.stores.local.keywords import _row_totals, _varints
from qa.stores.local.store import LocalStore
from qa.text import content_words, stems


def test_varints_are_read_as_sqlite_writes_them() -> None:
    assert _varints(b"\x05\x81\x00\x7f") == [5, 128, 127]
    # Two varints a row (title, body), summed per row.
    np.testing.assert_array_equal(_row_totals(b"\x03\x81\x00\x00\x07", 2), [131, 7])


def test_cached_bm25_equals_fts5_for_many_queries(seeds_index: Path) -> None:
    store = LocalStore.open(seeds_index)
    try:
        words = sorted({w for doc in store.documents().values()
                        for w in content_words((store.document(doc.doc_id) or doc).text)})
        rng = random.Random(0)
        with store.reading():
            for _ in range(300):
                wanted = list(dict.fromkeys(stems(rng.sample(words, rng.randint(1, 5)))))
                for k in (0, 5, 256):
                    expected = store.catalog.keyword_search(fts_query(wanted), k)
                    assert store.keywords.search(wanted, k, store.generation) == expected, wanted
    finally:
        store.close()


def test_a_term_fts5_would_split_goes_to_fts5(seeds_index: Path) -> None:
    store = LocalStore.open(seeds_index)
    try:
        assert store.keywords.search(["café"], 5, store.generation) is None
        assert store.keywords.search(["foo_bar"], 5, store.generation) is None
        assert store.keyword_search(["Baghdad_Russia"], 5) == store.catalog.keyword_search('"baghdad_russia"', 5)
    finally:
        store.close()


def test_cached_scores_follow_a_commit(seeds_index: Path, tmp_path: Path, embedder) -> None:
    from qa.indexer import update_index

    index_dir = tmp_path / "index"
    shutil.copytree(seeds_index, index_dir)
    store = LocalStore.open(index_dir)
    try:
        before = store.keyword_search(["Iraq"], 10)
        assert before
        article = tmp_path / "more.md"
        article.write_text("---\ntitle: Iraq and Iraq again\n---\n\nIraq, Iraq and Iraq: a short note on Iraq.\n")
        update_index(index_dir, [article], embedder=embedder, only=True)
        with store.reading():
            wanted = stems(["iraq"])
            assert store.keyword_search(["Iraq"], 10) == store.catalog.keyword_search(fts_query(wanted), 10)
            assert store.keyword_search(["Iraq"], 10) != before
            assert store.document_frequencies(["Iraq"])["Iraq"] == store.catalog.document_frequency("iraq")
    finally:
        store.close()
