"""The local store's BM25 from cached postings gives exactly what FTS5's bm25() gives."""

from __future__ import annotations

import random
import shutil
from pathlib import Path

import numpy as np
import pytest

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


@pytest.fixture(scope="module")
def corpus_index(tmp_path_factory: pytest.TempPathFactory, write_corpus, embedder) -> Path:
    """The seeds and three written articles: five articles, so whole-article word rarity means something."""
    from qa.indexer import update_index

    folder = write_corpus(tmp_path_factory.mktemp("articles") / "corpus")
    index_dir = folder.parent / "index"
    update_index(index_dir, [folder], embedder=embedder)
    return index_dir


def _article_rows(store: LocalStore) -> int:
    return store.catalog.connection.execute("SELECT count(*) FROM article_terms").fetchone()[0]


def test_article_bm25_from_cached_postings_equals_fts5(corpus_index: Path) -> None:
    store = LocalStore.open(corpus_index)
    try:
        documents = store.documents()
        assert _article_rows(store) == len(documents) == 5
        words = sorted({w for doc in documents.values() for w in content_words(store.document(doc.doc_id).text)})
        rng = random.Random(1)
        with store.reading():
            for _ in range(200):
                asked = rng.sample(words, rng.randint(1, 4))
                wanted = list(dict.fromkeys(stems(asked)))
                expected = store.catalog.article_search(fts_query(wanted), 256)
                owners = store.catalog.articles_of([row for row, _ in expected])
                found = store.article_search(asked, 256)
                assert [(m.doc_id, m.score) for m in found] == [(owners[row][0], score) for row, score in expected], asked
    finally:
        store.close()


def test_an_article_is_scored_on_its_title_and_whole_text(corpus_index: Path, written_articles) -> None:
    store = LocalStore.open(corpus_index)
    try:
        by_path = {Path(doc.path).name: doc.doc_id for doc in store.documents().values()}
        # "Wrenmouth" and "ferry" are in the bridge story's text only; "Kestrel" in its headline too.
        found = store.article_search(["Wrenmouth", "ferry", "Kestrel"], 5)
        assert [match.doc_id for match in found] == [by_path["kestrel_bridge.txt"]]
        # How many passages each article has, as the chunks table says.
        assert found[0].passages == len(store.catalog.chunk_ids_of([found[0].doc_id])) == 1
        seeds = store.article_search(["Iraq", "Russia"], 5)
        assert sorted(m.passages for m in seeds) == [5, 7]  # the two seed articles, 12 passages between them
        assert store.article_search(["zzyzx"], 5) == []
    finally:
        store.close()


def test_article_rows_follow_changed_and_removed_articles(tmp_path: Path, write_corpus, embedder) -> None:
    from qa.indexer import update_index

    corpus = write_corpus(tmp_path / "corpus")
    index_dir = tmp_path / "index"
    update_index(index_dir, [corpus], embedder=embedder)
    store = LocalStore.open(index_dir)
    try:
        before = store.article_search(["Wrenmouth"], 5)
        assert len(before) == 1
        bridge = corpus / "kestrel_bridge.txt"
        # The article grows (more passages) under the same document id: its row read before, and
        # kept in memory, must not answer for the new one.
        grown = bridge.read_text(encoding="utf-8").replace("Wrenmouth", "Gullhaven")
        grown += "".join(f"\n\nThe ferry timetable for week {n} was posted at the harbour office." * 6 for n in range(30))
        bridge.write_text(grown, encoding="utf-8")
        (corpus / "glacier_survey.html").unlink()
        update_index(index_dir, [corpus], embedder=embedder)
        assert store.article_search(["Wrenmouth"], 5) == []
        after = store.article_search(["Gullhaven"], 5)
        assert [m.doc_id for m in after] == [m.doc_id for m in before]
        assert after[0].passages == len(store.catalog.chunk_ids_of([after[0].doc_id])) > before[0].passages
        assert _article_rows(store) == len(store.documents()) == 4
        assert store.check() == []
    finally:
        store.close()


def test_an_index_from_before_article_keywords_reads_without_them_and_gains_them_on_update(
    corpus_index: Path, tmp_path: Path, embedder
) -> None:
    import sqlite3

    from qa.indexer import update_index
    from qa.stores.local.store import CATALOG_FILE

    index_dir = tmp_path / "index"
    shutil.copytree(corpus_index, index_dir)
    with sqlite3.connect(index_dir / CATALOG_FILE) as db:  # as an index written by qa before the table
        db.execute("DROP TABLE article_terms")
        db.execute("DELETE FROM meta WHERE key = 'article_terms'")
    store = LocalStore.open(index_dir)
    try:
        assert store.article_search(["Wrenmouth"], 5) == []  # no table, no error: ranked as before
        assert store.check() == []  # not a problem: `qa index` adds it
        generation = store.generation
        corpus = Path(store.sources()[0])
        update_index(index_dir, [corpus], embedder=embedder)  # nothing changed on disk
        assert _article_rows(store) == len(store.documents()) == 5
        assert len(store.article_search(["Wrenmouth"], 5)) == 1
        assert store.generation > generation
    finally:
        store.close()


def test_doctor_finds_an_article_missing_from_the_article_index(corpus_index: Path, tmp_path: Path) -> None:
    import sqlite3

    from qa.stores.local.store import CATALOG_FILE

    index_dir = tmp_path / "index"
    shutil.copytree(corpus_index, index_dir)
    with sqlite3.connect(index_dir / CATALOG_FILE) as db:
        db.execute("DELETE FROM article_terms WHERE rowid = (SELECT min(rowid) FROM article_terms)")
    store = LocalStore.open(index_dir)
    try:
        assert store.check() == ["the article keyword index holds 0 unknown articles and misses 1"]
    finally:
        store.close()
