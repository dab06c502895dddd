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


def _plain_article_bm25(store: LocalStore, wanted: list[str]) -> dict[str, float]:
    """Whole-article BM25 counted out in Python from the chunk index's rows, as
    KeywordIndex.article_search means it: an article holds a term as often as its chunks' bodies
    do plus ARTICLE_TITLE_WEIGHT times its title does, and is as long as its chunks together."""
    import math
    import re

    from qa.stores.local.keywords import ARTICLE_TITLE_WEIGHT, B, K1

    db = store.catalog.connection
    rows = db.execute("SELECT c.doc_id, t.title, t.body FROM chunk_terms t JOIN chunks c ON c.id = t.rowid").fetchall()
    tokens = {}
    for doc_id, title, body in rows:
        title_tokens, body_tokens = re.findall("[a-z0-9]+", title), re.findall("[a-z0-9]+", body)
        held = tokens.setdefault(doc_id, {"title": title_tokens, "body": [], "length": 0})
        held["body"] += body_tokens
        held["length"] += len(title_tokens) + len(body_tokens)
    average = sum(held["length"] for held in tokens.values()) / len(tokens)
    scores: dict[str, float] = {}
    for term in wanted:
        holding = [doc for doc, held in tokens.items() if term in held["body"] or term in held["title"]]
        idf = max(math.log((len(tokens) - len(holding) + 0.5) / (len(holding) + 0.5)), 1e-6)
        for doc in holding:
            held = tokens[doc]
            count = held["body"].count(term) + ARTICLE_TITLE_WEIGHT * held["title"].count(term)
            scores[doc] = scores.get(doc, 0.0) + idf * count * (K1 + 1) / (
                count + K1 * (1 - B + B * held["length"] / average))
    return scores


def test_article_bm25_from_chunk_postings_counts_whole_articles(corpus_index: Path) -> None:
    store = LocalStore.open(corpus_index)
    try:
        documents = store.documents()
        assert len(documents) == 5
        words = sorted({w for doc in documents.values() for w in content_words(store.document(doc.doc_id).text)})
        rng = random.Random(1)
        with store.reading():
            for _ in range(200):
                asked = rng.sample(words, rng.randint(1, 4))
                expected = _plain_article_bm25(store, list(dict.fromkeys(term.lower() for term in stems(asked))))
                found = store.article_search(asked, 256)
                assert {m.doc_id: m.score for m in found} == pytest.approx(expected, rel=1e-9), asked
                assert [m.score for m in found] == sorted((m.score for m in found), reverse=True)
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


def test_a_filtered_article_search_lists_the_articles_the_filters_admit(corpus_index: Path) -> None:
    # A search under --source lifts its articles as a search of those alone would: the best
    # admitted article is listed even when articles it does not admit score higher.
    from qa.types import SearchFilters

    store = LocalStore.open(corpus_index)
    try:
        names = {doc.doc_id: Path(doc.path).name for doc in store.documents().values()}
        both = store.article_search(["Iraq", "Russia"], 5)
        assert len(both) == 2
        second = names[both[1].doc_id]
        found = store.article_search(["Iraq", "Russia"], 1, SearchFilters(source=second))
        assert [names[m.doc_id] for m in found] == [second]
        assert found[0].score == both[1].score
        assert store.article_search(["Iraq", "Russia"], 5, SearchFilters(source="kestrel_bridge.txt")) == []
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
        assert store.check() == []
    finally:
        store.close()


def test_an_article_deleted_after_a_chunk_search_leaves_article_search_whole(tmp_path: Path, write_corpus,
                                                                           embedder) -> None:
    # A chunk search reads the lengths of every chunk there is; when the article holding the
    # newest chunks is then deleted, the next article search meets lengths past the last chunk.
    # It once failed there, and left its map of articles half updated for every search after.
    from qa.indexer import update_index

    corpus = write_corpus(tmp_path / "corpus", seeds=False)
    index_dir = tmp_path / "index"
    update_index(index_dir, [corpus], embedder=embedder)
    store = LocalStore.open(index_dir)
    try:
        assert store.article_search(["Wrenmouth"], 5)  # the article map read once
        paragraph = "The {0} harbour ferry {1} crossed to Gullhaven at dawn, and the {0} pilots logged it."
        for name, word in (("first.txt", "Tern"), ("last.txt", "Plover")):
            text = "\n\n".join(paragraph.format(word, n) * 4 for n in range(12))
            (corpus / name).write_text(text, encoding="utf-8")
            update_index(index_dir, [corpus / name], embedder=embedder, only=True)
        assert store.keyword_search(["plover"], 5)  # every chunk's length read, the last article's too
        (corpus / "last.txt").unlink()
        update_index(index_dir, [corpus], embedder=embedder)
        for _ in range(2):  # and again: nothing was left half done
            found = store.article_search(["Tern", "Gullhaven"], 5)
            names = {doc.doc_id: Path(doc.path).name for doc in store.documents().values()}
            assert [names[m.doc_id] for m in found] == ["first.txt"]
        assert store.article_search(["Plover"], 5) == []
    finally:
        store.close()


def test_an_index_with_the_old_article_table_gives_it_back_on_update(corpus_index: Path, tmp_path: Path, embedder) -> None:
    import sqlite3

    from qa.indexer import update_index
    from qa.stores.local.store import CATALOG_FILE

    index_dir = tmp_path / "index"
    shutil.copytree(corpus_index, index_dir)
    with sqlite3.connect(index_dir / CATALOG_FILE) as db:  # as qa wrote indexes for a while
        db.execute("CREATE VIRTUAL TABLE article_terms USING fts5(title, body, tokenize='unicode61')")
        db.execute("INSERT INTO article_terms(rowid, title, body) VALUES(1, 'kestrel', 'wrenmouth ferry')")
        db.execute("INSERT INTO meta(key, value) VALUES('article_terms', 'complete')")
    store = LocalStore.open(index_dir)
    try:
        before = store.article_search(["Wrenmouth"], 5)
        assert len(before) == 1
        corpus = Path(store.sources()[0])
        update_index(index_dir, [corpus], embedder=embedder)  # nothing changed on disk
        db = store.catalog.connection
        assert db.execute("SELECT count(*) FROM sqlite_master WHERE name LIKE 'article_terms%'").fetchone() == (0,)
        assert db.execute("SELECT count(*) FROM meta WHERE key = 'article_terms'").fetchone() == (0,)
        assert store.article_search(["Wrenmouth"], 5) == before
        assert store.check() == []
    finally:
        store.close()


def test_an_accented_word_finds_its_article_as_fts5_folds_it(tmp_path: Path, embedder) -> None:
    from qa.indexer import update_index

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "tram.txt").write_text("Zürich council votes\n\nThe council of Zürich voted on the tram line.\n")
    (corpus / "budget.txt").write_text("Bern budget\n\nThe budget of Bern passed on Tuesday.\n")
    # unicode61 folds Latin letters' diacritics only: "й" and Greek accents stay as written.
    (corpus / "kyiv.txt").write_text("Київ\n\nЗеленський спікер Київ. Ο Μητσοτάκης μίλησε.\n", encoding="utf-8")
    update_index(tmp_path / "index", [corpus], embedder=embedder)
    store = LocalStore.open(tmp_path / "index")
    try:
        names = {doc.doc_id: Path(doc.path).name for doc in store.documents().values()}
        found = store.article_search(["Zürich"], 5)
        assert [names[m.doc_id] for m in found] == ["tram.txt"]
        assert store.article_search(["zurich", "ZURICH"], 5) == found  # one folded term, counted once
        assert store.article_search(["foo_bar"], 5) == []  # a term FTS5 would cut in two
        assert store.article_search(["tram"], 5, min_passages=2) == []  # no article that long here
        for word in ("Зеленський", "Μητσοτάκης"):
            assert [names[m.doc_id] for m in store.article_search([word], 5)] == ["kyiv.txt"], word
    finally:
        store.close()
