"""The store contract (tests/store_contract.py), run on every backend: each class names its store."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from qa.stores.location import StoreLocation, parse_store

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
