"""The store contract (tests/store_contract.py), run on every backend: each class names its store."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from qa.stores import open_store
from qa.stores.location import StoreLocation, parse_store

from conftest import WRITTEN_ARTICLES
from store_contract import StoreContract, assert_whole, qa_command, qa_index, write_articles


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


# `qa index`, killed inside Milvus Lite's exit-time flush of one collection ($KILL_IN_FLUSH_OF):
# after the flush saved the manifest, before it deleted the log it flushed. Exits 3 when this
# Milvus Lite has no such steps.
KILLED_IN_FLUSH = """
import os, signal, sys
try:
    from milvus_lite.engine.collection import Collection
    from milvus_lite.storage.wal import WAL
    close, close_and_delete = Collection.close, WAL.close_and_delete
except (ImportError, AttributeError) as exc:
    print(f"no Collection.close or WAL.close_and_delete: {exc}", file=sys.stderr)
    sys.exit(3)
target = os.environ["KILL_IN_FLUSH_OF"]
closing = []

def closing_one(self):
    closing[:] = [self._data_dir.rstrip("/").endswith("/" + target)]
    return close(self)

def deleting(self):
    if closing and closing[0]:
        os.kill(os.getpid(), signal.SIGKILL)
    return close_and_delete(self)

Collection.close, WAL.close_and_delete = closing_one, deleting
from qa.cli import run
sys.argv = ["qa", *sys.argv[1:]]
run()
"""


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

    def test_a_kill_inside_milvus_lites_own_flush_leaves_no_row_read_twice(self, make_location, tmp_path) -> None:
        """Milvus Lite flushes each collection as its process exits: its manifest names the new
        file, then the log the rows came from is deleted. A SIGKILL between the two left the log,
        which Milvus Lite replays on the next open: every row of it was read twice, and `qa doctor`
        called the documents half written (1 run in 4 of the SIGKILL test of the contract). Killed
        there on purpose, in a real `qa index`, the store must read as a clean run's."""
        articles = write_articles(tmp_path / "articles")
        reference = make_location(tmp_path / "reference")
        assert qa_index(reference, articles).wait(timeout=300) == 0
        location = make_location(tmp_path / "killed")
        script = tmp_path / "killed_in_flush.py"
        script.write_text(KILLED_IN_FLUSH, encoding="utf-8")
        env = dict(os.environ, HF_HUB_OFFLINE="1", KILL_IN_FLUSH_OF=location.collection + "_documents")
        run = subprocess.run([sys.executable, str(script), "index", "--store", location.argument(), str(articles)],
                             env=env, capture_output=True, text=True, timeout=300)
        if run.returncode == 3:
            pytest.skip(f"this Milvus Lite flushes another way: {run.stderr.strip()}")
        assert run.returncode == -signal.SIGKILL, run.stderr
        # The state the kill leaves: the documents' flushed log is still there beside the manifest
        # that names its rows' file.
        manifest = next(location.path.glob(f"**/{location.collection}_documents/manifest.json"))
        active = json.loads(manifest.read_text())["active_wal_number"]
        assert any(int(log.stem.rsplit("_", 1)[1]) < active for log in (manifest.parent / "wal").glob("wal_data_*.arrow"))
        doctor = qa_command("doctor", "--store", location.argument())
        assert doctor.returncode == 0, doctor.stdout + doctor.stderr
        assert assert_whole(location) == assert_whole(reference)

    def test_a_store_from_before_the_articles_collection_reads_without_it_and_gains_it_on_update(
        self, make_location, tmp_path, embedder
    ) -> None:
        from qa.indexer import update_index
        from qa.stores.milvus.store import ARTICLES_FILLING_KEY, MilvusCollections

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
        # As a writer stopped while filling the collection leaves it: the next one fills it again.
        collections = MilvusCollections(location)
        try:
            collections.set_meta(ARTICLES_FILLING_KEY, "1")
        finally:
            collections.close()
        update_index(location, [articles], embedder=embedder)  # nothing changed on disk
        store = open_store(location)
        try:
            assert store.check() == []
            assert len(store.article_search(["Wrenmouth", "Arabica", "glacier"], 5)) == len(WRITTEN_ARTICLES)
        finally:
            store.close()
        collections = MilvusCollections(location)
        try:
            assert collections.get_meta(ARTICLES_FILLING_KEY) == "0"
        finally:
            collections.close()

    def test_a_rebuild_stopped_while_renaming_its_collections_is_finished_by_the_next_writer(
        self, make_location, tmp_path, embedder, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        from pymilvus import MilvusClient

        from qa.errors import IndexCorruptError
        from qa.indexer import update_index

        from store_contract import assert_whole, built_store, document_texts

        articles, location, before = built_store(make_location, tmp_path, embedder)
        (articles / WRITTEN_ARTICLES[0].name).write_text(WRITTEN_ARTICLES[0].text + "\n\nA line added later.\n",
                                                         encoding="utf-8")
        renames: list[tuple[str, str]] = []
        original = MilvusClient.rename_collection

        def rename(self, old_name: str, new_name: str, *args, **kwargs) -> None:
            if len(renames) == 3:  # the chunks put in place, the sentences retired and not yet replaced
                raise RuntimeError("interrupted")
            renames.append((old_name, new_name))
            original(self, old_name, new_name, *args, **kwargs)

        with monkeypatch.context() as patch:
            patch.setattr(MilvusClient, "rename_collection", rename)
            with pytest.raises(Exception, match="interrupted"):
                update_index(location, [articles], embedder=embedder, rebuild=True)
        assert renames == [("qa", "qa_retired"), ("qa_rebuilding", "qa"),
                           ("qa_sentences", "qa_retired_sentences")]
        with pytest.raises(IndexCorruptError, match="putting its new collections in place"):
            open_store(location)  # old and new side by side: no reader mixes them
        report = update_index(location, [articles], embedder=embedder)  # a plain update finishes the rebuild
        assert (report.added, report.changed, report.removed) == (0, 0, 0)
        assert assert_whole(location) == before
        assert sum("A line added later." in text for text in document_texts(location)) == 1
        assert not any("_retired" in name or "_rebuilding" in name for name in collection_names(location))

    def test_another_store_named_like_a_rebuilds_collections_is_left_alone(
        self, make_location, tmp_path, embedder, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        # Stores named "qa_retired" or "qa_rebuilding" could be made before qa took those names.
        from qa.errors import ConfigError
        from qa.indexer import update_index
        from qa.stores.location import parse_store
        from qa.stores.milvus import store as milvus_store

        from store_contract import assert_whole, built_store

        articles, location, before = built_store(make_location, tmp_path, embedder)
        with monkeypatch.context() as patch:
            patch.setattr(milvus_store, "_check_new_name", lambda name: None)  # as qa made them before
            for name in ("qa_retired", "qa_rebuilding"):
                update_index(parse_store(f"milvus:{location.path}#{name}"), [articles], embedder=embedder)
        update_index(location, [articles], embedder=embedder)  # a writer of qa drops neither
        assert assert_whole(location) == before  # and its readers are not refused
        for name in ("qa_retired", "qa_rebuilding"):
            assert assert_whole(parse_store(f"milvus:{location.path}#{name}")) == before
        with pytest.raises(ConfigError, match="is another store's"):
            update_index(location, [articles], embedder=embedder, rebuild=True)

    def test_a_rebuild_whose_old_collections_could_not_be_dropped_is_read_and_tidied_later(
        self, make_location, tmp_path, embedder, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        from pymilvus import MilvusClient

        from qa.indexer import update_index
        from qa.stores.milvus.store import MilvusError

        from store_contract import assert_whole, built_store

        articles, location, before = built_store(make_location, tmp_path, embedder)
        original = MilvusClient.drop_collection

        def drop(self, name: str, *args, **kwargs) -> None:
            if "_retired" in name:
                raise RuntimeError("lost the server")
            original(self, name, *args, **kwargs)

        with monkeypatch.context() as patch:
            patch.setattr(MilvusClient, "drop_collection", drop)
            with pytest.raises(MilvusError, match="lost the server"):
                update_index(location, [articles], embedder=embedder, rebuild=True)
        assert assert_whole(location) == before  # every rename done: the new store reads
        assert any(name.startswith("qa_retired") for name in collection_names(location))
        update_index(location, [articles], embedder=embedder)  # the next writer drops them
        assert not any("_retired" in name for name in collection_names(location))

    def test_a_rebuild_whose_collections_another_writer_dropped_says_so(self, make_location, tmp_path, embedder,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
        # Writers on two machines are not kept apart: the other takes the rebuild for a stopped one.
        from qa.indexer import update_index
        from qa.stores.milvus.store import MilvusError, MilvusWriter

        from store_contract import assert_whole, built_store

        articles, location, before = built_store(make_location, tmp_path, embedder)
        original = MilvusWriter.finish

        def finish(self) -> None:
            self.collections.drop()  # as the other writer's settle_earlier_rebuild would
            original(self)

        with monkeypatch.context() as patch:
            patch.setattr(MilvusWriter, "finish", finish)
            with pytest.raises(MilvusError, match="are gone"):
                update_index(location, [articles], embedder=embedder, rebuild=True)
        assert assert_whole(location) == before


def collection_names(location: StoreLocation) -> set[str]:
    """Every collection in the Milvus Lite file of `location`, whichever store's."""
    store = open_store(location)
    try:
        return set(store.collections.client.list_collections())
    finally:
        store.close()


def test_flushed_logs_are_settled_only_in_a_store_no_process_holds(tmp_path: Path) -> None:
    """settle_flushed_wals deletes only the logs a manifest says were flushed, and nothing while
    Milvus Lite's LOCK is held (a store open in a process, this one included)."""
    import fcntl

    from qa.stores.milvus.store import settle_flushed_wals

    folder = tmp_path / "store.db"
    wal = folder / "collections" / "qa_documents" / "wal"
    wal.mkdir(parents=True)
    (wal.parent / "manifest.json").write_text(json.dumps({"active_wal_number": 3}))
    logs = [wal / name for name in ("wal_data_000002.arrow", "wal_delta_000002.arrow", "wal_data_000003.arrow",
                                    "notes.arrow")]
    for log in logs:
        log.write_bytes(b"rows")
    (folder / "LOCK").write_text("")
    with open(folder / "LOCK") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        settle_flushed_wals(folder)
        assert all(log.exists() for log in logs)  # open elsewhere: its Milvus Lite has read them
    settle_flushed_wals(folder)
    assert [log.exists() for log in logs] == [False, False, True, True]
