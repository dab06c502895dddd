"""The store contract (tests/store_contract.py), run on every backend: each class names its store."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from qa.stores import open_store
from qa.stores.location import StoreLocation, parse_store

from conftest import WRITTEN_ARTICLES
from store_contract import StoreContract


class TestLocalStore(StoreContract):
    @pytest.fixture(scope="class")
    @classmethod
    def make_location(cls) -> Callable[[Path], StoreLocation]:
        return lambda folder: parse_store(f"faiss:{folder}")

    @pytest.fixture
    def break_commit(self, monkeypatch: pytest.MonkeyPatch) -> Callable[[], Iterator[None]]:
        """The catalog fails after the next generation's vector file is written, inside the transaction."""
        from qa.stores.local.catalog import Catalog

        @contextmanager
        def broken() -> Iterator[None]:
            def fail(*args, **kwargs) -> None:
                raise RuntimeError("interrupted")

            with monkeypatch.context() as patch:
                patch.setattr(Catalog, "insert_documents", fail)
                yield

        return broken


    def test_hybrid_search_reads_during_the_dense_search_and_finds_the_same(self, built, embedder,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
        # Keyword candidates are read while the dense search runs in its thread; the hits and
        # every score must be those of reading them all afterwards.
        from qa.retrieve import Retriever

        store = open_store(built)
        questions = [article.question for article in WRITTEN_ARTICLES] + ["Kestrel Bay Bridge cost"]

        def search_all() -> list:
            retriever = Retriever(store, embedder)
            return [[(h.chunk_id, h.score, h.sentence_scores) for h in retriever.search(q, k=5, mode=mode)]
                    for q in questions for mode in ("hybrid", "dense")]

        try:
            together = search_all()
            monkeypatch.setattr(type(store), "concurrent_search", False)
            assert search_all() == together
            assert all(together)
        finally:
            store.close()


class TestMilvusStore(StoreContract):
    @pytest.fixture(scope="class")
    @classmethod
    def make_location(cls) -> Callable[[Path], StoreLocation]:
        pytest.importorskip("pymilvus")
        return lambda folder: parse_store(f"milvus:{folder / 'store.db'}")

    @pytest.fixture
    def break_commit(self, monkeypatch: pytest.MonkeyPatch) -> Callable[[], Iterator[None]]:
        """Milvus fails to take the document rows, after the chunks and sentences went in."""
        from qa.stores.milvus.store import MilvusCollections

        original = MilvusCollections.insert

        @contextmanager
        def broken() -> Iterator[None]:
            def insert(self, collection: str, rows: list[dict]) -> None:
                if collection == self.documents:
                    raise RuntimeError("interrupted")
                original(self, collection, rows)

            with monkeypatch.context() as patch:
                patch.setattr(MilvusCollections, "insert", insert)
                yield

        return broken

    def test_a_store_from_before_the_articles_collection_reads_without_it_and_gains_it_on_update(
        self, make_location, tmp_path, embedder
    ) -> None:
        from qa.indexer import update_index
        from qa.stores.milvus.store import MilvusCollections

        from store_contract import write_articles

        articles = write_articles(tmp_path / "articles")
        location = make_location(tmp_path / "store")
        update_index(location, [articles], embedder=embedder)
        collections = MilvusCollections(location)
        try:
            collections.client.drop_collection(collections.articles)  # as qa wrote stores before it
        finally:
            collections.close()
        store = open_store(location)
        try:
            assert store.article_search(["Wrenmouth"], 5) == []  # ranked without article evidence
            assert store.check() == []  # not a problem: `qa index` adds it
        finally:
            store.close()
        update_index(location, [articles], embedder=embedder)  # nothing changed on disk
        store = open_store(location)
        try:
            found = store.article_search(["Wrenmouth", "Arabica", "glacier"], 5)
            assert len(found) == len(WRITTEN_ARTICLES)
            assert sum(match.passages for match in found) == store.counts()[1]
            assert store.check() == []
        finally:
            store.close()
        collections = MilvusCollections(location)
        try:
            collections.client.delete(collections.articles, filter=f'doc_id == "{found[0].doc_id}"')
        finally:
            collections.close()
        store = open_store(location)
        try:
            assert store.check() == ["the article keyword index holds 0 unknown articles and misses 1"]
        finally:
            store.close()
