"""Keeping an index in step with its corpus, with the real model: only what changed is embedded again."""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest
from click.testing import CliRunner

from qa.answer import answer_question
from qa.chunk import chunk_text, embedding_text
from qa.cli import main
from qa.embed import Embedder
from qa.errors import ConfigError, IndexCorruptError, IndexMismatchError, QAError
from qa.stores import open_store
from qa.stores.base import Manifest
from qa.stores.local.store import MANIFEST_FILE
from qa.stores.location import StoreLocation
from qa.indexer import UpdateReport, update_index
from qa.progress import SilentProgress
from qa.ingest import BINARY_FILE, article_heading, read_article
from qa.paths import typed_path
from qa.render import render_update_report
from qa.retrieve import Retriever
from qa.types import CommitGroup, IndexStats

from conftest import SEEDS, copy_index, store_location


class NoteTaker(SilentProgress):
    """Progress that keeps the notes said to the user in `notes`."""

    def __init__(self, notes: list[str]) -> None:
        self.notes = notes

    def note(self, message: str) -> None:
        self.notes.append(message)


if TYPE_CHECKING:
    from conftest import CorpusArticle

CORPUS_FILES = 5  # two seeds and three written articles
SMALL_CORPUS_FILES = 3  # the written articles alone


def chunk_count(path: Path, embedder: Embedder) -> int:
    """How many chunks the indexer should make of the file at `path`."""
    article = read_article(path)
    return len(chunk_text(article.doc_id, article.text, embedder.count_tokens))


_MODEL_VECTORS: dict[str, np.ndarray] = {}


def model_vectors(texts: list[str], embedder: Embedder) -> np.ndarray:
    """The model's vectors of `texts`, one row each, remembered: the same chunks recur in many tests."""
    missing = sorted(set(texts) - set(_MODEL_VECTORS))
    _MODEL_VECTORS.update(zip(missing, embedder.encode(missing)))
    return np.stack([_MODEL_VECTORS[text] for text in texts])


def assert_consistent(location: StoreLocation, embedder: Embedder) -> IndexStats:
    """Check the index agrees with itself and with the model, and return its stats.

    One vector per chunk under the chunk's id; each chunk is exactly its document's text between
    its offsets, the chunks of a document are what `chunk_text` makes of that text, and each
    stored vector is the model's vector of that chunk's text.
    """
    index = open_store(location)
    try:
        documents, chunks = index.counts()
        ids = sorted(index.chunk_ids())
        assert index.chunk_count() == chunks == len(ids)
        if location.is_local:
            assert sorted(index.vectors.ids()) == ids
        records = index.chunks(ids)
        assert sorted(records) == ids
        spans_by_doc: dict[str, list[tuple[int, int]]] = {}
        for record in records.values():
            document = index.document(record.doc_id)
            assert document is not None
            assert record.text == document.text[record.start : record.end]
            assert record.text.strip()
            spans_by_doc.setdefault(record.doc_id, []).append((record.start, record.end))
        assert len(spans_by_doc) == documents
        for doc_id, spans in spans_by_doc.items():
            article = index.document(doc_id)
            assert article is not None
            expected = chunk_text(doc_id, article.text, embedder.count_tokens)
            assert sorted(spans) == [(c.start, c.end) for c in expected]
        stored = index.chunk_vectors(ids)
        # Each chunk went into the model led by its article's headline.
        fresh = model_vectors(
            [embedding_text(article_heading(records[i].title, records[i].path), records[i].text) for i in ids], embedder
        )
        # The default onnx-int8 backend quantizes activations per batch, so a text's vector moves a
        # little with the company it is encoded in: cosine 0.9899 to 1 seen between batches. Another
        # chunk of the same article is further off: at most 0.946 on 40 SQuAD-made articles.
        np.testing.assert_allclose((stored * fresh).sum(axis=1), 1.0, atol=2e-2)
        return index.stats()
    finally:
        index.close()


def read_manifest(location: StoreLocation) -> dict:
    if location.is_local:
        return json.loads((location.index_dir / MANIFEST_FILE).read_text())
    from qa.stores.milvus.store import MilvusCollections

    collections = MilvusCollections(location)
    try:
        collections.load()
        return json.loads(collections.get_meta("manifest") or "{}")
    finally:
        collections.close()


def rewrite_manifest(location: StoreLocation, **changes: object) -> None:
    """Edit the saved manifest as another qa version or model would have written it."""
    manifest = read_manifest(location) | changes
    if location.is_local:
        (location.index_dir / MANIFEST_FILE).write_text(json.dumps(manifest))
        return
    from qa.stores.milvus.store import MilvusCollections

    collections = MilvusCollections(location)
    try:
        collections.set_meta("manifest", json.dumps(manifest))
    finally:
        collections.close()


def store_arg(location: StoreLocation) -> str:
    """The --store value naming `location`."""
    return f"faiss:{location.index_dir}" if location.is_local else f"milvus:{location.path}"


def top_answer(location: StoreLocation, embedder: Embedder, question: str):
    index = open_store(location)
    try:
        return answer_question(Retriever(index, embedder), question)
    finally:
        index.close()


def search(location: StoreLocation, embedder: Embedder, query: str, mode: str = "hybrid", k: int = 5):
    index = open_store(location)
    try:
        return Retriever(index, embedder).search(query, k=k, mode=mode)
    finally:
        index.close()


@pytest.fixture(scope="module")
def shared(
    tmp_path_factory: pytest.TempPathFactory, write_corpus: Callable[..., Path], embedder: Embedder, store_kind: str
) -> tuple[Path, StoreLocation, UpdateReport]:
    """One index of the corpus for the tests that leave the corpus alone: (corpus, index, build report)."""
    folder = tmp_path_factory.mktemp("shared")
    corpus = write_corpus(folder / "corpus")
    location = store_location(store_kind, folder)
    return corpus, location, update_index(location, [corpus], embedder=embedder)


@pytest.fixture
def shared_copy(shared: tuple[Path, StoreLocation, UpdateReport], tmp_path: Path) -> tuple[StoreLocation, UpdateReport]:
    """A private copy of the shared index (its corpus is still the shared one, left unchanged)."""
    _, location, report = shared
    return copy_index(location, tmp_path / "copy"), report


@pytest.fixture
def corpus(tmp_path: Path, write_corpus: Callable[..., Path]) -> Path:
    """A small corpus of this test's own (the written articles, no seeds), for tests that change files."""
    return write_corpus(tmp_path / "corpus", seeds=False)


@pytest.fixture
def built(corpus: Path, tmp_path: Path, embedder: Embedder, store_kind: str) -> tuple[StoreLocation, UpdateReport]:
    """A fresh index of this test's own corpus: (where it is, report of the build)."""
    location = store_location(store_kind, tmp_path)
    return location, update_index(location, [corpus], embedder=embedder)


def test_building_indexes_every_article(shared: tuple[Path, StoreLocation, UpdateReport], embedder: Embedder) -> None:
    corpus, index_dir, report = shared
    expected_chunks = sum(chunk_count(path, embedder) for path in corpus.iterdir())
    assert report.added == CORPUS_FILES
    assert (report.changed, report.removed, report.unchanged) == (0, 0, 0)
    assert report.skipped == ()
    assert report.chunks_embedded == report.chunks == expected_chunks
    assert report.documents == CORPUS_FILES
    stats = assert_consistent(index_dir, embedder)
    assert (stats.documents, stats.chunks) == (CORPUS_FILES, expected_chunks)
    assert stats.sources == (str(corpus),)
    manifest = read_manifest(index_dir)
    assert manifest["model"] == embedder.name == "all-MiniLM-L6-v2"
    assert manifest["dimension"] == embedder.dimension == 384
    if index_dir.is_local:
        assert len(list(index_dir.index_dir.glob("segment-*.faiss"))) == 1


def test_build_then_every_written_article_answers_its_question(
    shared: tuple[Path, StoreLocation, UpdateReport], embedder: Embedder, written_articles: tuple[CorpusArticle, ...]
) -> None:
    _, index_dir, _ = shared
    for article in written_articles:
        answer = top_answer(index_dir, embedder, article.question)
        assert answer.answerable, article.question
        assert Path(answer.citations[0].path).name == article.name
        assert article.answer_phrase in answer.citations[0].quote


def test_updating_again_embeds_nothing(shared_copy: tuple[StoreLocation, UpdateReport], embedder: Embedder) -> None:
    index_dir, first = shared_copy
    vector_files = sorted(index_dir.index_dir.glob("segment-*.faiss")) if index_dir.is_local else []
    report = update_index(index_dir, embedder=embedder)  # the remembered corpus folder
    assert report.chunks_embedded == 0
    if index_dir.is_local:
        assert sorted(index_dir.index_dir.glob("segment-*.faiss")) == vector_files  # nothing rewritten
    assert report.unchanged == CORPUS_FILES
    assert not report.changed_anything
    assert (report.documents, report.chunks) == (first.documents, first.chunks)
    assert assert_consistent(index_dir, embedder).chunks == first.chunks


def test_a_ctrl_c_during_a_scan_ends_it_without_waiting_for_the_walk(
    shared_copy: tuple[StoreLocation, UpdateReport], embedder: Embedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    import threading

    import qa.indexer

    location, first = shared_copy
    walking, release, walked = threading.Event(), threading.Event(), threading.Event()
    real_walk, real_open = qa.indexer.discover_paths, qa.indexer.open_writer

    def long_walk(paths, *args):  # the walk of a corpus of millions of files, still going
        walking.set()
        release.wait(30)
        found = real_walk(paths, *args)
        walked.set()
        return found

    def interrupted_writer(*args, **kwargs):
        writer = real_open(*args, **kwargs)

        def ctrl_c(under=None):  # Ctrl-C while the stamps are read beside the walk
            walking.wait(10)
            raise KeyboardInterrupt

        writer.file_stamps = ctrl_c
        return writer

    monkeypatch.setattr(qa.indexer, "discover_paths", long_walk)
    monkeypatch.setattr(qa.indexer, "open_writer", interrupted_writer)
    try:
        with pytest.raises(KeyboardInterrupt):
            update_index(location, embedder=embedder)
        assert not walked.is_set()  # it ended while the walk was still going
    finally:
        release.set()
    monkeypatch.undo()
    report = update_index(location, embedder=embedder)  # the lock was let go; nothing was lost
    assert report.unchanged == CORPUS_FILES and not report.changed_anything
    assert (report.documents, report.chunks) == (first.documents, first.chunks)


def test_a_path_that_is_not_there_is_skipped_and_not_remembered(
    shared_copy: tuple[StoreLocation, UpdateReport], tmp_path: Path, embedder: Embedder
) -> None:
    index_dir, first = shared_copy
    typo = tmp_path / "no-such-folder"
    report = update_index(index_dir, [typo], embedder=embedder)
    assert [(s.path, s.reason) for s in report.skipped] == [(str(typo), "no such file or folder")]
    assert report.missing_sources == ()
    assert (report.documents, report.chunks) == (first.documents, first.chunks)
    assert str(typo) not in assert_consistent(index_dir, embedder).sources
    # Said to a person once, as an error, after what the update did.
    result = CliRunner().invoke(main, ["index", str(typo), "--store", store_arg(index_dir)])
    assert result.exit_code == 1
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert lines[0].startswith("Index up to date:") and lines[-1] == f"Error: no such file or folder: {typo}"
    assert sum(str(typo) in line for line in lines) == 1

    fresh = store_location(index_dir.kind, tmp_path / "fresh")
    report = update_index(fresh, [typo], embedder=embedder)
    assert report.documents == 0  # not the seeds: a path was given, it just is not there
    assert [s.path for s in report.skipped] == [str(typo)]


def test_an_index_whose_folders_are_gone_is_not_filled_with_the_bundled_articles(
    shared_copy: tuple[StoreLocation, UpdateReport], tmp_path: Path, embedder: Embedder, extra_article: CorpusArticle
) -> None:
    index_dir, _ = shared_copy
    path = tmp_path / extra_article.name
    path.write_text(extra_article.text, encoding="utf-8")
    location = store_location(index_dir.kind, tmp_path / "one-file")
    assert update_index(location, [path], embedder=embedder).documents == 1
    path.unlink()  # the only source named, and now deleted: the index forgets it
    report = update_index(location, embedder=embedder)
    assert (report.removed, report.documents) == (1, 0)
    for _ in range(2):  # and stays empty, rather than taking the seeds a brand-new index gets
        report = update_index(location, embedder=embedder)
        assert (report.added, report.documents) == (0, 0)
    with pytest.raises(ConfigError, match="remembers no folders to rebuild from"):
        update_index(location, embedder=embedder, rebuild=True)
    # A new index, rebuilt or not, still starts with the bundled articles.
    seeded = update_index(store_location(index_dir.kind, tmp_path / "new"), embedder=embedder, rebuild=True)
    assert seeded.documents == len(list(SEEDS.glob("*.txt"))) > 0


def test_a_new_mtime_with_the_same_bytes_embeds_nothing(
    built: tuple[StoreLocation, UpdateReport], corpus: Path, embedder: Embedder, written_articles: tuple[CorpusArticle, ...]
) -> None:
    index_dir, _ = built
    path = corpus / written_articles[0].name
    before = path.stat()
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns + 5 * 10**9))
    report = update_index(index_dir, embedder=embedder)
    assert report.chunks_embedded == 0
    assert report.unchanged == SMALL_CORPUS_FILES
    assert not report.changed_anything
    index = open_store(index_dir)
    try:  # the new mtime is remembered, so the next run need not hash the file again
        assert index.documents()[str(path)].mtime_ns == before.st_mtime_ns + 5 * 10**9
    finally:
        index.close()


def test_adding_an_article_embeds_only_its_chunks(
    shared_copy: tuple[StoreLocation, UpdateReport], tmp_path: Path, embedder: Embedder, extra_article: CorpusArticle
) -> None:
    index_dir, first = shared_copy
    path = tmp_path / "more" / extra_article.name
    path.parent.mkdir()
    path.write_text(extra_article.text, encoding="utf-8")
    new_chunks = chunk_count(path, embedder)
    assert new_chunks == 2  # the article is long enough to need two chunks

    report = update_index(index_dir, [path.parent], embedder=embedder)
    assert report.chunks_embedded == new_chunks
    assert (report.added, report.changed, report.removed) == (1, 0, 0)
    assert report.unchanged == CORPUS_FILES  # the remembered corpus was checked too
    stats = assert_consistent(index_dir, embedder)
    assert (stats.documents, stats.chunks) == (CORPUS_FILES + 1, first.chunks + new_chunks)
    assert str(path.parent) in stats.sources

    hits = search(index_dir, embedder, "new orchid species in Madagascar")
    assert hits and hits[0].path == str(path)
    answer = top_answer(index_dir, embedder, extra_article.question)
    assert answer.answerable
    assert answer.citations[0].path == str(path)
    assert extra_article.answer_phrase in answer.citations[0].quote


def test_only_looks_at_the_paths_given(
    built: tuple[StoreLocation, UpdateReport], corpus: Path, tmp_path: Path, embedder: Embedder,
    written_articles: tuple[CorpusArticle, ...], extra_article: CorpusArticle,
) -> None:
    index_dir, first = built
    (corpus / written_articles[1].name).unlink()  # a change elsewhere, which --only must not look at
    inside = corpus / extra_article.name
    inside.write_text(extra_article.text, encoding="utf-8")
    outside = tmp_path / "clippings" / "today.md"
    outside.parent.mkdir()
    outside.write_text(written_articles[1].text, encoding="utf-8")

    report = update_index(index_dir, [inside, outside], embedder=embedder, only=True)
    assert (report.added, report.changed, report.removed, report.unchanged) == (2, 0, 0, 0)
    assert report.documents == first.documents + 2
    stats = assert_consistent(index_dir, embedder)
    # A file in a remembered folder is not remembered again; one from elsewhere is.
    assert sorted(stats.sources) == sorted([str(corpus), str(outside)])
    answer = top_answer(index_dir, embedder, extra_article.question)
    assert answer.citations[0].path == str(inside)

    # The deletion is noticed by the next full update, and nothing is embedded again.
    report = update_index(index_dir, embedder=embedder)
    assert (report.added, report.changed, report.removed, report.chunks_embedded) == (0, 0, 1, 0)


def test_only_needs_paths_and_refuses_rebuild(tmp_path: Path) -> None:
    for args, said in ((["index", "--only"], "--only needs the files or folders to look at"),
                       (["index", "--only", "--rebuild", str(tmp_path)], "--only cannot go with --rebuild")):
        result = CliRunner().invoke(main, [*args, "--index", str(tmp_path / "idx")])
        assert result.exit_code == 2
        assert said in " ".join(result.output.split())
    assert not (tmp_path / "idx").exists()


def test_changing_a_file_embeds_only_it_and_forgets_its_old_text(
    built: tuple[StoreLocation, UpdateReport], corpus: Path, embedder: Embedder, written_articles: tuple[CorpusArticle, ...]
) -> None:
    index_dir, first = built
    bridge = written_articles[0]
    path = corpus / bridge.name
    assert "$412 million" in bridge.text and "Helen Okafor" in bridge.text
    path.write_text(
        bridge.text.replace("$412 million", "$655.5 million").replace("Helen Okafor", "Marcus Lindqvist"),
        encoding="utf-8",
    )
    report = update_index(index_dir, embedder=embedder)
    assert (report.added, report.changed, report.removed) == (0, 1, 0)
    assert report.unchanged == SMALL_CORPUS_FILES - 1
    assert report.chunks_embedded == chunk_count(path, embedder)
    stats = assert_consistent(index_dir, embedder)
    assert (stats.documents, stats.chunks) == (first.documents, first.chunks)

    assert not [h for h in search(index_dir, embedder, "Okafor", mode="keyword") if "Okafor" in h.text]
    assert [h for h in search(index_dir, embedder, "Lindqvist", mode="keyword") if "Lindqvist" in h.text]
    answer = top_answer(index_dir, embedder, bridge.question)
    assert answer.answerable
    assert "$655.5 million" in answer.citations[0].quote
    assert all("$412 million" not in c.quote for c in answer.citations)
    assert all("$412 million" not in h.text for h in answer.passages)


def test_deleting_a_file_removes_its_chunks(
    built: tuple[StoreLocation, UpdateReport], corpus: Path, embedder: Embedder, written_articles: tuple[CorpusArticle, ...]
) -> None:
    index_dir, first = built
    coffee = written_articles[1]
    path = corpus / coffee.name
    gone_chunks = chunk_count(path, embedder)
    path.unlink()

    report = update_index(index_dir, embedder=embedder)
    assert (report.added, report.changed, report.removed) == (0, 0, 1)
    assert report.chunks_embedded == 0
    stats = assert_consistent(index_dir, embedder)
    assert (stats.documents, stats.chunks) == (first.documents - 1, first.chunks - gone_chunks)
    assert search(index_dir, embedder, "arabica frost Minas Gerais", mode="keyword") == []
    assert all(Path(h.path).name != coffee.name for h in search(index_dir, embedder, coffee.question, k=20))


def test_a_file_that_became_a_folder_or_is_named_after_deletion_is_removed(
    built: tuple[StoreLocation, UpdateReport], corpus: Path, embedder: Embedder, written_articles: tuple[CorpusArticle, ...]
) -> None:
    index_dir, first = built
    first_path, second_path = (corpus / a.name for a in written_articles[:2])
    first_path.unlink()
    first_path.mkdir()  # a folder now, under the same name
    report = update_index(index_dir, embedder=embedder)
    assert (report.added, report.changed, report.removed) == (0, 0, 1)
    # A file named with --only after it was deleted goes too; the other files are not looked at.
    second_path.unlink()
    report = update_index(index_dir, [second_path], only=True, embedder=embedder)
    assert (report.removed, report.skipped) == (1, ())
    stats = assert_consistent(index_dir, embedder)
    assert stats.documents == first.documents - 2


def test_a_file_indexed_through_a_link_is_indexed_once_when_its_real_name_is_reached(
    corpus: Path, tmp_path: Path, embedder: Embedder, store_kind: str, written_articles: tuple[CorpusArticle, ...]
) -> None:
    location = store_location(store_kind, tmp_path)
    outside = tmp_path / "outside"
    outside.mkdir()
    story = corpus / written_articles[0].name
    story.rename(outside / story.name)
    (corpus / "a_links").mkdir()
    (corpus / "a_links" / "fav.txt").symlink_to(outside / story.name)
    first = update_index(location, [corpus], embedder=embedder)
    # The story moves into the folder (after "a_links" in name order), the link follows it.
    (corpus / "archive").mkdir()
    (outside / story.name).rename(corpus / "archive" / story.name)
    (corpus / "a_links" / "fav.txt").unlink()
    (corpus / "a_links" / "fav.txt").symlink_to(corpus / "archive" / story.name)
    report = update_index(location, embedder=embedder)
    assert (report.added, report.removed, report.documents) == (1, 1, first.documents)
    hits = search(location, embedder, written_articles[0].question, k=20)
    assert {h.path for h in hits if Path(h.path).name in (story.name, "fav.txt")} == {str(corpus / "archive" / story.name)}


def test_only_names_a_linked_file_by_its_real_name_when_that_is_indexed(
    built: tuple[StoreLocation, UpdateReport], corpus: Path, tmp_path: Path, embedder: Embedder,
    written_articles: tuple[CorpusArticle, ...],
) -> None:
    # `qa index --only LINK` where LINK reaches an article indexed under its real name: a full
    # scan indexes that file once, under its real name, and so must --only (it added the article
    # again under the link's name, and the next full scan removed that copy).
    index_dir, first = built
    story = corpus / written_articles[0].name
    link = tmp_path / "elsewhere" / "fav.txt"
    link.parent.mkdir()
    link.symlink_to(story)
    report = update_index(index_dir, [link], embedder=embedder, only=True)
    assert (report.added, report.changed, report.removed, report.unchanged) == (0, 0, 0, 1)
    stats = assert_consistent(index_dir, embedder)
    assert stats.documents == first.documents
    assert str(link) not in stats.sources  # the real file's folder is remembered already
    # Changed, the real file is indexed again under its own name.
    story.write_text(story.read_text(encoding="utf-8") + "\n\nA late paragraph on the orchard harvest.\n", encoding="utf-8")
    report = update_index(index_dir, [link], embedder=embedder, only=True)
    assert (report.added, report.changed, report.removed) == (0, 1, 0)
    hits = search(index_dir, embedder, "late paragraph on the orchard harvest", k=20)
    assert {h.path for h in hits if Path(h.path).name in (story.name, "fav.txt")} == {str(story)}
    assert update_index(index_dir, embedder=embedder).removed == 0
    # A link to the remembered folder itself, named with --only: its articles are the folder's,
    # and it is not remembered (a full scan walked it first, by name order, and indexed every
    # article again under it).
    alias = tmp_path / "a_alias"
    alias.symlink_to(corpus)
    report = update_index(index_dir, [alias], embedder=embedder, only=True)
    assert (report.added, report.changed, report.removed) == (0, 0, 0)
    assert str(alias) not in assert_consistent(index_dir, embedder).sources
    report = update_index(index_dir, embedder=embedder)
    assert (report.added, report.removed, report.documents) == (0, 0, first.documents)


def test_a_link_into_a_remembered_folder_gives_its_articles_the_folders_names(
    built: tuple[StoreLocation, UpdateReport], corpus: Path, tmp_path: Path, embedder: Embedder,
    extra_article: CorpusArticle,
) -> None:
    # A new article reached through a link to its folder was added under the link's name, and the
    # next full scan added it again under the folder's (a review found the link's copy never
    # updated again). So was every article of a remembered folder typed as a link to it, without
    # --only: that link sorted first and was walked first.
    index_dir, first = built
    alias = tmp_path / "a_alias"
    alias.symlink_to(corpus)
    (corpus / extra_article.name).write_text(extra_article.text, encoding="utf-8")
    report = update_index(index_dir, [alias / extra_article.name], embedder=embedder, only=True)
    assert (report.added, report.documents) == (1, first.documents + 1)
    hits = search(index_dir, embedder, extra_article.question, k=5)
    assert hits[0].path == str(corpus / extra_article.name)
    report = update_index(index_dir, [alias], embedder=embedder)
    assert (report.added, report.removed, report.documents) == (0, 0, first.documents + 1)
    assert str(alias) not in assert_consistent(index_dir, embedder).sources
    # A file no scan of the folder reaches (a hidden folder's) is remembered through its link.
    (corpus / ".drafts").mkdir()
    draft = corpus / ".drafts" / "draft.txt"
    draft.write_text(extra_article.text.replace("orchid", "fern"), encoding="utf-8")
    pointer = tmp_path / "draft-link.txt"
    pointer.symlink_to(draft)
    assert update_index(index_dir, [pointer], embedder=embedder, only=True).added == 1
    assert str(pointer) in assert_consistent(index_dir, embedder).sources
    # A second link to it is the first link's file (it was remembered too, and indexed twice).
    second = tmp_path / "draft-link-2.txt"
    second.symlink_to(draft)
    report = update_index(index_dir, [second], embedder=embedder, only=True)
    assert (report.added, report.documents) == (0, first.documents + 2)
    assert str(second) not in assert_consistent(index_dir, embedder).sources


def test_a_folder_that_cannot_be_read_keeps_its_articles(
    built: tuple[StoreLocation, UpdateReport], corpus: Path, embedder: Embedder
) -> None:
    import shutil
    import subprocess
    import sys

    index_dir, first = built
    if not index_dir.is_local:
        pytest.skip("the walk and its refusal are the store's neighbours; one store shows it")
    command = [sys.executable, "-c", "from qa.cli import run; run()", "index", "--index", str(index_dir.index_dir), "--json"]
    if os.geteuid() == 0:
        # Root reads any folder: run qa without the capabilities that let it.
        if shutil.which("setpriv") is None:
            pytest.skip("running as root without setpriv to drop the capability to read any folder")
        command = ["setpriv", "--bounding-set=-dac_override,-dac_read_search",
                   "--inh-caps=-dac_override,-dac_read_search", *command]
    sub = corpus / "sub"
    sub.mkdir()
    moved = sorted(corpus.glob("*.txt"))[0]
    moved.rename(sub / moved.name)
    update_index(index_dir, embedder=embedder)  # moved: one removed, one added
    sub.chmod(0)
    try:
        result = subprocess.run(command, capture_output=True, text=True, env=dict(os.environ), timeout=300)
    finally:
        sub.chmod(0o755)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert (report["removed"], report["documents"]) == (0, first.documents)
    assert any(s["path"] == str(sub) and "permission denied" in s["reason"] for s in report["skipped"])


def _add_folder_holding(article: CorpusArticle, folder: Path, index_dir: StoreLocation, embedder: Embedder) -> UpdateReport:
    """Make `folder` with `article` in it, and index it as another remembered folder."""
    folder.mkdir()
    (folder / article.name).write_text(article.text, encoding="utf-8")
    return update_index(index_dir, [folder], embedder=embedder)


def test_a_rebuild_refuses_to_drop_a_missing_folders_articles_until_it_is_forgotten(
    built: tuple[StoreLocation, UpdateReport], corpus: Path, tmp_path: Path, embedder: Embedder,
    extra_article: CorpusArticle,
) -> None:
    index_dir, first = built
    drive = tmp_path / "my drive"  # the command to paste quotes it
    with_drive = _add_folder_holding(extra_article, drive, index_dir, embedder)
    drive.rename(tmp_path / "drive.unplugged")

    with pytest.raises(ConfigError, match=f"{drive} is not there now, and the 1 article indexed .* `qa index --forget '{drive}'`"):
        update_index(index_dir, rebuild=True, embedder=embedder)
    stats = assert_consistent(index_dir, embedder)  # nothing was dropped, in either store
    assert (stats.documents, stats.chunks) == (with_drive.documents, with_drive.chunks)
    # Said to a person, the commands to run name the store they named.
    result = CliRunner().invoke(main, ["index", "--rebuild", "--store", store_arg(index_dir)])
    assert f"`qa index --store {store_arg(index_dir)} --forget '{drive}'`" in " ".join(result.output.split())
    assert top_answer(index_dir, embedder, extra_article.question).answerable

    report = update_index(index_dir, embedder=embedder, forget=[drive])
    assert (report.removed, report.forgotten, report.documents) == (1, (str(drive),), first.documents)
    report = update_index(index_dir, rebuild=True, embedder=embedder)
    assert (report.documents, report.missing_sources) == (first.documents, ())
    assert_consistent(index_dir, embedder)


def test_a_rebuild_refuses_to_drop_the_earlier_text_of_a_file_it_cannot_read_again(
    built: tuple[StoreLocation, UpdateReport], corpus: Path, tmp_path: Path, embedder: Embedder,
    extra_article: CorpusArticle,
) -> None:
    # An update keeps the text of an indexed file it cannot read now (a download cut short, a
    # file emptied); a rebuild dropped it ("1 removed", exit 0).
    index_dir, first = built
    story = corpus / extra_article.name
    story.write_text(extra_article.text, encoding="utf-8")
    assert update_index(index_dir, embedder=embedder).added == 1
    story.write_bytes(b"")
    report = update_index(index_dir, embedder=embedder)
    assert (report.removed, report.kept, report.documents) == (0, (str(story),), first.documents + 1)
    with pytest.raises(ConfigError, match=f"cannot rebuild: {story} could not be read again \\(empty file\\)"):
        update_index(index_dir, rebuild=True, embedder=embedder)
    assert assert_consistent(index_dir, embedder).documents == first.documents + 1
    assert top_answer(index_dir, embedder, extra_article.question).answerable
    story.unlink()  # said to go: the rebuild goes on without it
    report = update_index(index_dir, rebuild=True, embedder=embedder)
    assert (report.removed, report.documents) == (1, first.documents)


def test_an_emptied_folder_keeps_its_articles_until_it_is_forgotten(
    built: tuple[StoreLocation, UpdateReport], tmp_path: Path, embedder: Embedder, extra_article: CorpusArticle,
) -> None:
    # A drive's mount point with the drive not mounted is an empty folder: its articles stay.
    index_dir, first = built
    mount = tmp_path / "mnt"
    with_drive = _add_folder_holding(extra_article, mount, index_dir, embedder)
    (mount / extra_article.name).rename(tmp_path / extra_article.name)

    notes: list[str] = []
    report = update_index(index_dir, embedder=embedder, progress=NoteTaker(notes))
    assert (report.removed, report.documents, report.missing_sources) == (0, with_drive.documents, (str(mount),))
    assert any(f"{mount} is empty now" in note and f"qa index --forget {mount}" in note for note in notes)
    assert top_answer(index_dir, embedder, extra_article.question).answerable
    with pytest.raises(ConfigError, match=f"cannot rebuild: {mount} is empty now, and the 1 article"):
        update_index(index_dir, rebuild=True, embedder=embedder)

    # A folder that held nothing indexed is scanned as any other, and one file back is enough.
    (tmp_path / extra_article.name).rename(mount / extra_article.name)
    (mount / "other.txt").write_text("Another story.", encoding="utf-8")
    report = update_index(index_dir, embedder=embedder)
    assert (report.added, report.removed, report.missing_sources) == (1, 0, ())
    (mount / "other.txt").unlink()
    report = update_index(index_dir, embedder=embedder)
    assert (report.removed, report.documents) == (1, with_drive.documents)

    report = update_index(index_dir, embedder=embedder, forget=[mount])
    assert (report.removed, report.documents) == (1, first.documents)
    assert_consistent(index_dir, embedder)


def test_forgetting_names_a_remembered_source(built: tuple[StoreLocation, UpdateReport], corpus: Path, embedder: Embedder) -> None:
    index_dir, _ = built
    with pytest.raises(ConfigError, match="is inside .*, which qa index keeps up to date"):
        update_index(index_dir, embedder=embedder, forget=[corpus / "sub"])
    with pytest.raises(ConfigError, match=f"is not a folder or file the index remembers \\(it remembers: {corpus}\\)"):
        update_index(index_dir, embedder=embedder, forget=[corpus.parent / "elsewhere"])
    result = CliRunner().invoke(main, ["index", str(corpus), "--forget", str(corpus), "--store", store_arg(index_dir)])
    assert result.exit_code == 2 and "--forget is done on its own" in result.output


def test_a_remembered_folder_deleted_inside_another_is_forgotten_with_its_articles(
    built: tuple[StoreLocation, UpdateReport], corpus: Path, embedder: Embedder
) -> None:
    index_dir, first = built
    today = corpus / "today"
    today.mkdir()
    moved = sorted(corpus.glob("*.txt"))[0]
    moved.rename(today / moved.name)
    update_index(index_dir, [today], embedder=embedder)
    notes: list[str] = []
    (today / moved.name).unlink()
    today.rmdir()
    report = update_index(index_dir, embedder=embedder, progress=NoteTaker(notes))
    assert (report.removed, report.missing_sources, notes) == (1, (), [])
    index = open_store(index_dir)
    try:
        assert index.sources() == [str(corpus)]
    finally:
        index.close()


def test_what_the_walk_does_not_reach_is_kept_and_a_dead_link_goes(
    built: tuple[StoreLocation, UpdateReport], corpus: Path, tmp_path: Path, embedder: Embedder,
    extra_article: CorpusArticle, written_articles: tuple[CorpusArticle, ...],
) -> None:
    index_dir, first = built
    # A file in a hidden folder, named with --only: the walk never goes there, so it stays.
    (corpus / ".drafts").mkdir()
    draft = corpus / ".drafts" / extra_article.name
    draft.write_text(extra_article.text, encoding="utf-8")
    assert update_index(index_dir, [draft], only=True, embedder=embedder).added == 1
    # A remembered folder reached through a link, whose drive is unplugged: kept.
    drive = tmp_path / "drive"
    drive.mkdir()
    moved = corpus / written_articles[0].name
    moved.rename(drive / moved.name)
    (corpus / "linked").symlink_to(drive)
    update_index(index_dir, [corpus / "linked"], embedder=embedder)
    drive.rename(tmp_path / "drive.unplugged")
    # An article reached through a link whose file was deleted: gone.
    elsewhere = tmp_path / "elsewhere.txt"
    elsewhere.write_text(written_articles[1].text, encoding="utf-8")
    (corpus / "pointer.txt").symlink_to(elsewhere)
    update_index(index_dir, embedder=embedder)
    elsewhere.unlink()

    report = update_index(index_dir, embedder=embedder)
    assert (report.removed, report.missing_sources) == (1, (str(corpus / "linked"),))
    index = open_store(index_dir)
    try:
        names = {Path(p).name for p in index.documents()}
    finally:
        index.close()
    assert extra_article.name in names and moved.name in names and "pointer.txt" not in names


def folder_linked_into(corpus: Path, folder: Path, article: CorpusArticle) -> Path:
    """`folder` made, holding `article`, and linked into `corpus` under its own name (a drive or an
    archive linked into the news folder): the link."""
    folder.mkdir()
    (folder / article.name).write_text(article.text, encoding="utf-8")
    link = corpus / folder.name
    link.symlink_to(folder)
    return link


def test_a_folder_linked_inside_a_remembered_one_keeps_its_articles_while_the_link_is_broken(
    built: tuple[StoreLocation, UpdateReport], corpus: Path, tmp_path: Path, embedder: Embedder,
    extra_article: CorpusArticle,
) -> None:
    # news/usb -> /mnt/usb, the drive unplugged: its articles were dropped ("2 removed", nothing
    # said why), and embedded again when it came back. A drive is kept, as a remembered one is.
    index_dir, first = built
    drive = tmp_path / "usb"
    folder_linked_into(corpus, drive, extra_article)
    assert update_index(index_dir, embedder=embedder).added == 1
    drive.rename(tmp_path / "usb.unplugged")
    notes: list[str] = []
    report = update_index(index_dir, embedder=embedder, progress=NoteTaker(notes))
    assert (report.removed, report.documents) == (0, first.documents + 1)
    assert any(str(corpus / "usb") in note and "kept" in note for note in notes), notes
    with pytest.raises(ConfigError, match=f"cannot rebuild: {corpus / 'usb'} links to a folder that is not there now"):
        update_index(index_dir, rebuild=True, embedder=embedder)
    (tmp_path / "usb.unplugged").rename(drive)
    report = update_index(index_dir, embedder=embedder)
    assert (report.added, report.removed, report.unchanged) == (0, 0, first.documents + 1)
    # A link removed on purpose takes its articles with it.
    (corpus / "usb").unlink()
    assert update_index(index_dir, embedder=embedder).removed == 1


def test_a_file_named_inside_a_folder_linked_into_a_remembered_one_is_no_source_of_its_own(
    built: tuple[StoreLocation, UpdateReport], corpus: Path, tmp_path: Path, embedder: Embedder,
    extra_article: CorpusArticle,
) -> None:
    # news/archive -> /mnt/archive: `--only news/archive/brief.txt` (and each file `qa watch` saw
    # change there) was remembered as a source of its own; deleted, it was "not there now", its
    # note repeated at every update.
    index_dir, first = built
    archive = tmp_path / "archive"
    brief = folder_linked_into(corpus, archive, extra_article) / extra_article.name
    assert update_index(index_dir, [brief], only=True, embedder=embedder).added == 1
    index = open_store(index_dir)
    try:
        assert index.sources() == [str(corpus)]
    finally:
        index.close()
    (archive / extra_article.name).unlink()
    notes: list[str] = []
    report = update_index(index_dir, embedder=embedder, progress=NoteTaker(notes))
    assert (report.removed, report.documents, report.missing_sources) == (1, first.documents, ())
    assert not notes, notes


def test_a_path_typed_with_dots_is_remembered_and_cited_by_its_plain_name(
    tmp_path: Path, embedder: Embedder, store_kind: str
) -> None:
    # `qa index ../news` from ~/work remembered "/home/me/work/../news", and every citation named
    # its articles so.
    news = tmp_path / "news"
    news.mkdir()
    for seed in SEEDS.glob("*.txt"):
        (news / seed.name).write_text(seed.read_text(encoding="utf-8"), encoding="utf-8")
    (tmp_path / "work").mkdir()
    location = store_location(store_kind, tmp_path)
    report = update_index(location, [f"{tmp_path}/work/../news"], embedder=embedder)
    assert report.added == len(list(news.iterdir()))
    index = open_store(location)
    try:
        assert index.sources() == [str(news)]
        assert {os.path.dirname(path) for path in index.documents()} == {str(news)}
    finally:
        index.close()
    assert update_index(location, [f"{tmp_path}/work/./../news/"], embedder=embedder).unchanged == report.added
    assert update_index(location, forget=[f"{tmp_path}/work/../news"]).forgotten == (str(news),)
    # Past a link ".." is the folder beside the link's target, as `ls` reads it (a review found
    # "here/work/../news" read as "here/news"), and it is named from there: a source with ".." in
    # it held, by its text, a folder it does not ("--forget here/work" dropped it).
    (tmp_path / "elsewhere" / "work").mkdir(parents=True)
    (tmp_path / "elsewhere" / "news").mkdir()
    (tmp_path / "elsewhere" / "news" / "far.txt").write_text("Ferries\n\nThe ferry to Sines runs twice a day.\n")
    (tmp_path / "here").mkdir()
    (tmp_path / "here" / "work").symlink_to(tmp_path / "elsewhere" / "work")
    assert typed_path(f"{tmp_path}/here/work/../news") == str(tmp_path / "elsewhere" / "news")
    assert typed_path(f"{tmp_path}/here/./news/") == f"{tmp_path}/here/news"
    # After a folder that is not there the path names nothing, and stays as typed.
    assert typed_path(f"{tmp_path}/gone/../news") == f"{tmp_path}/gone/../news"
    assert update_index(location, [f"{tmp_path}/here/work/../news"], embedder=embedder).added == 1
    with pytest.raises(ConfigError, match="not a folder or file the index remembers"):
        update_index(location, forget=[f"{tmp_path}/here/work"])
    assert update_index(location, forget=[tmp_path / "elsewhere" / "news"]).removed == 1
    # A source remembered with ".." by an earlier qa is forgotten by what it names: under the name
    # `qa stats` shows, or the plain one; never by its text ("here/work/../news" is not in "here/work").
    from qa.stores import open_writer

    for typed in (f"{tmp_path}/here/work/../news", str(tmp_path / "elsewhere" / "news")):
        index = open_store(location)
        manifest = index.manifest
        index.close()
        writer = open_writer(location, manifest.model, manifest.dimension, manifest.backend, rebuild=False)
        try:
            writer.commit(CommitGroup(add_sources=[f"{tmp_path}/here/work/../news"]))
            writer.finish()
        finally:
            writer.close()
        with pytest.raises(ConfigError, match="not a folder or file the index remembers"):
            update_index(location, forget=[f"{tmp_path}/here/work"])
        assert update_index(location, forget=[typed]).forgotten == (f"{tmp_path}/here/work/../news",)


def test_forget_on_an_index_that_is_not_there_makes_none(tmp_path: Path, store_kind: str) -> None:
    location = store_location(store_kind, tmp_path)
    with pytest.raises(QAError, match="no index"):
        update_index(location, forget=[tmp_path / "news"])
    assert not (tmp_path / "index").exists() and not (tmp_path / "index.db").exists()


def test_broken_files_are_skipped_and_the_rest_indexed(
    corpus: Path, tmp_path: Path, embedder: Embedder, store_kind: str
) -> None:
    (corpus / "broken.txt").write_bytes(bytes(range(256)) * 4)
    (corpus / "empty.md").write_bytes(b"")
    (corpus / "blank.html").write_text("   \n\n  ", encoding="utf-8")
    index_dir = store_location(store_kind, tmp_path)

    report = update_index(index_dir, [corpus], embedder=embedder)
    skipped = {Path(s.path).name: s.reason for s in report.skipped}
    assert skipped == {"broken.txt": BINARY_FILE, "empty.md": "empty file", "blank.html": "empty file"}
    assert report.added == SMALL_CORPUS_FILES
    assert assert_consistent(index_dir, embedder).documents == SMALL_CORPUS_FILES


def test_an_indexed_file_that_breaks_keeps_its_old_chunks(
    built: tuple[StoreLocation, UpdateReport], corpus: Path, embedder: Embedder, written_articles: tuple[CorpusArticle, ...]
) -> None:
    index_dir, first = built
    bridge = written_articles[0]
    path = corpus / bridge.name
    path.write_bytes(b"\x00\x01\x02" * 100)

    report = update_index(index_dir, embedder=embedder)
    assert [Path(s.path).name for s in report.skipped] == [bridge.name]
    assert report.kept == (str(path),)
    shown = [line.plain for line in render_update_report(report).renderables]
    assert shown[1].endswith(f": {BINARY_FILE}; its earlier text stays in the index")  # the text output says so too
    assert (report.removed, report.chunks_embedded) == (0, 0)
    stats = assert_consistent(index_dir, embedder)
    assert (stats.documents, stats.chunks) == (first.documents, first.chunks)
    assert bridge.answer_phrase in top_answer(index_dir, embedder, bridge.question).citations[0].quote


def test_rebuild_gives_the_same_index(built: tuple[StoreLocation, UpdateReport], embedder: Embedder) -> None:
    index_dir, first = built
    report = update_index(index_dir, rebuild=True, embedder=embedder)
    assert report.chunks_embedded == first.chunks
    assert (report.documents, report.chunks) == (first.documents, first.chunks)
    assert report.skipped == ()
    stats = assert_consistent(index_dir, embedder)
    assert (stats.documents, stats.chunks) == (first.documents, first.chunks)
    if index_dir.is_local:
        assert len(list(index_dir.index_dir.glob("segment-*.faiss"))) == 1


@pytest.mark.parametrize("damage", ["truncated", "pages overwritten"])
def test_rebuilding_over_a_damaged_catalog_sets_it_aside_and_builds_anew(
    built: tuple[StoreLocation, UpdateReport], corpus: Path, embedder: Embedder, damage: str
) -> None:
    index_dir, first = built
    if not index_dir.is_local:
        pytest.skip("the catalog is the local store's SQLite file")
    catalog = index_dir.index_dir / "catalog.sqlite"
    whole = catalog.read_bytes()
    # Cut short, or pages past the first ones overwritten (opening reads only the first: a
    # rebuild once failed half-way with a traceback).
    damaged = whole[:4096] if damage == "truncated" else whole[:4096] + bytes(range(256)) * 80 + whole[4096 + 20480:]
    catalog.write_bytes(damaged)
    with pytest.raises(IndexCorruptError, match="qa index PATH --rebuild"):
        open_store(index_dir)
    # doctor's last line, too, names the folders a rebuild needs (a bare --rebuild cannot learn them).
    result = CliRunner().invoke(main, ["doctor", "--index", str(index_dir.index_dir)])
    assert result.exit_code == 1
    assert result.output.splitlines()[-1] == (
        f"The index in {index_dir.index_dir} is damaged; build it again with "
        f"`qa index PATH --rebuild --index {index_dir.index_dir}`, naming your folders.")
    with pytest.raises(IndexCorruptError):  # an update that is not a rebuild leaves it as it is
        update_index(index_dir, [corpus], embedder=embedder)
    assert catalog.read_bytes() == damaged
    segments = sorted(index_dir.index_dir.glob("segment-*.faiss"))
    assert segments
    # A rebuild with no folder named cannot learn them from the damaged catalog: it stops, and
    # leaves the index as it found it, damaged catalog, vectors and all.
    with pytest.raises(ConfigError, match="qa index PATH --rebuild"):
        update_index(index_dir, rebuild=True, embedder=embedder)
    assert sorted(index_dir.index_dir.glob("segment-*.faiss")) == segments
    assert catalog.read_bytes() == damaged
    assert list(index_dir.index_dir.glob("catalog.sqlite.damaged-*")) == []

    report = update_index(index_dir, [corpus], rebuild=True, embedder=embedder)
    assert (report.documents, report.chunks) == (first.documents, first.chunks)
    assert_consistent(index_dir, embedder)
    (aside,) = index_dir.index_dir.glob("catalog.sqlite.damaged-*")
    assert aside.read_bytes() == damaged  # set aside, never deleted


def test_a_damaged_catalog_page_met_after_opening_is_said_in_one_line_and_changes_nothing(
    built: tuple[StoreLocation, UpdateReport], corpus: Path, embedder: Embedder
) -> None:
    index_dir, first = built
    if not index_dir.is_local:
        pytest.skip("the catalog is the local store's SQLite file")
    catalog = index_dir.index_dir / "catalog.sqlite"
    with sqlite3.connect(catalog) as db:
        (root,) = db.execute("SELECT rootpage FROM sqlite_master WHERE name = 'chunks'").fetchone()
        (page_size,) = db.execute("PRAGMA page_size").fetchone()
    db.close()
    # The chunks table's first page overwritten: opening reads only the schema's pages, so the
    # store opens, and an update or a search meets the damage at its first read of chunk rows
    # (both were a traceback: "sqlite3.DatabaseError: database disk image is malformed").
    whole = catalog.read_bytes()
    start = (root - 1) * page_size
    damaged = whole[:start] + b"\xff" * page_size + whole[start + page_size:]
    catalog.write_bytes(damaged)
    open_store(index_dir).close()
    (corpus / "new.txt").write_text("Harbour news\n\nThe harbour opened a new pier on Tuesday.\n")
    with pytest.raises(IndexCorruptError, match=r"catalog.sqlite cannot be read .*qa index PATH --rebuild"):
        update_index(index_dir, [corpus], embedder=embedder)
    assert catalog.read_bytes() == damaged
    with pytest.raises(IndexCorruptError, match="catalog.sqlite cannot be read"):
        search(index_dir, embedder, "When did the harbour open a new pier?")
    result = CliRunner().invoke(main, ["index", str(corpus), "--index", str(index_dir.index_dir)])
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    assert result.output.splitlines()[-1].startswith("Error: the catalog catalog.sqlite cannot be read")
    assert catalog.read_bytes() == damaged
    report = update_index(index_dir, [corpus], rebuild=True, embedder=embedder)
    assert report.documents == first.documents + 1
    assert search(index_dir, embedder, "When did the harbour open a new pier?")[0].path.endswith("new.txt")


def test_what_sqlite_says_of_a_damaged_file_is_told_from_a_full_disk_or_a_misuse(tmp_path: Path) -> None:
    from qa.stores.local.catalog import is_damage

    def raised(run) -> sqlite3.Error:
        with pytest.raises(sqlite3.Error) as caught:
            run()
        return caught.value

    garbage = tmp_path / "garbage.sqlite"
    garbage.write_bytes(b"not a database at all" * 500)
    assert is_damage(raised(lambda: sqlite3.connect(garbage).execute("SELECT * FROM sqlite_master").fetchall()))
    db = sqlite3.connect(":memory:")
    db.execute("CREATE TABLE documents (path TEXT UNIQUE)")
    db.execute("INSERT INTO documents VALUES ('a.txt')")
    # One changed byte in a unique index page made an INSERT fail so, though quick_check passed (review).
    assert is_damage(raised(lambda: db.execute("INSERT INTO documents VALUES ('a.txt')")))
    assert not is_damage(raised(lambda: db.execute("SELECT * FROM missing")))  # OperationalError
    db.close()
    assert not is_damage(raised(lambda: db.execute("SELECT 1")))  # a closed database: ProgrammingError


def test_an_update_beside_a_missing_catalog_refuses_and_keeps_the_vector_files(
    built: tuple[StoreLocation, UpdateReport], corpus: Path, embedder: Embedder
) -> None:
    index_dir, first = built
    if not index_dir.is_local:
        pytest.skip("the catalog is the local store's SQLite file")
    (index_dir.index_dir / "catalog.sqlite").unlink()
    segments = {path: path.read_bytes() for path in index_dir.index_dir.glob("segment-*.faiss")}
    assert segments
    # It once made an empty catalog, called the index up to date and deleted every vector file.
    for paths in (None, [corpus]):
        with pytest.raises(IndexCorruptError, match="catalog.sqlite is missing"):
            update_index(index_dir, paths, embedder=embedder)
        assert not (index_dir.index_dir / "catalog.sqlite").exists()
        assert {path: path.read_bytes() for path in index_dir.index_dir.glob("segment-*.faiss")} == segments
    report = update_index(index_dir, [corpus], rebuild=True, embedder=embedder)
    assert (report.documents, report.chunks) == (first.documents, first.chunks)
    assert_consistent(index_dir, embedder)


def test_another_programs_folder_is_not_written_into(corpus: Path, tmp_path: Path, embedder: Embedder) -> None:
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    (theirs / MANIFEST_FILE).write_text('{"name": "their-app", "version": 3}')
    location = StoreLocation("faiss", theirs)
    # Once: "manifest.json is damaged ('format_version')", and a rebuild overwrote their file.
    with pytest.raises(ConfigError, match="is not a qa index's manifest"):
        open_store(location)
    for rebuild in (False, True):
        with pytest.raises(ConfigError, match="not a qa index's manifest; name a qa index, or an empty or new folder"):
            update_index(location, [corpus], rebuild=rebuild, embedder=embedder)
    assert (theirs / MANIFEST_FILE).read_text() == '{"name": "their-app", "version": 3}'
    # Not even qa's hidden writer lock is left in their folder (it once was: taken before the look).
    assert [p.name for p in theirs.iterdir()] == [MANIFEST_FILE]

    # A Milvus store is named with --store, so its hint says that.
    with pytest.raises(ConfigError, match="name a qa store, or a new collection for one, with --store"):
        Manifest.from_json('{"name": "their-app"}', "the manifest of milvus:x.db", "milvus")

    # Files of other names may stay beside an index (a mount point's lost+found, a Milvus Lite
    # store): qa writes only its own names, and leaves theirs as they were.
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "todo.txt").write_text("milk")
    assert update_index(StoreLocation("faiss", notes), [corpus], embedder=embedder).documents > 0
    assert (notes / "todo.txt").read_text() == "milk"


def test_a_missing_or_damaged_vector_file_is_reported_by_doctor_and_refused_by_an_update(
    built: tuple[StoreLocation, UpdateReport], corpus: Path, embedder: Embedder
) -> None:
    index_dir, first = built
    if not index_dir.is_local:
        pytest.skip("vector files are the local store's")
    (segment,) = index_dir.index_dir.glob("segment-*.faiss")
    whole = segment.read_bytes()
    for damage in ("cut short", "missing"):
        if damage == "cut short":
            segment.write_bytes(whole[:100])
        else:
            segment.unlink()
        result = CliRunner().invoke(main, ["doctor", "--index", str(index_dir.index_dir), "--json"])
        assert result.exit_code == 1, result.output
        (problem,) = json.loads(result.output)["problems"]
        # The fix named is for the index named (a plain `qa index --rebuild` rebuilds the default one).
        assert segment.name in problem and f"qa index --rebuild --index {index_dir.index_dir}`" in problem
        if damage == "cut short":  # an update does not call it up to date either
            with pytest.raises(IndexCorruptError, match=f"{segment.name} is cut short .*; run `qa index --rebuild`"):
                update_index(index_dir, embedder=embedder)
    # Said to a person, the command to run names the index they named.
    result = CliRunner().invoke(main, ["doctor", "--index", str(index_dir.index_dir)])
    assert f"run `qa index --rebuild --index {index_dir.index_dir}` to build it again" in result.output
    result = CliRunner().invoke(main, ["ask", "Who?", "--index", str(index_dir.index_dir)])
    assert f"missing; run `qa index --rebuild --index {index_dir.index_dir}`" in result.output
    # An update does not call the index up to date; a rebuild makes it whole.
    with pytest.raises(IndexCorruptError, match=f"{segment.name} is missing; run `qa index --rebuild`"):
        update_index(index_dir, embedder=embedder)
    report = update_index(index_dir, rebuild=True, embedder=embedder)
    assert report.documents == first.documents
    assert_consistent(index_dir, embedder)


def test_manifest_of_another_model_is_refused_until_rebuilt(
    built: tuple[StoreLocation, UpdateReport], embedder: Embedder
) -> None:
    index_dir, first = built
    rewrite_manifest(index_dir, model="some-other-model")

    result = CliRunner().invoke(main, ["ask", "Who did Igor Ivanov give the document to?", "--store", store_arg(index_dir)])
    assert result.exit_code == 1
    assert "some-other-model" in result.output
    assert "qa index --rebuild" in result.output
    assert "Traceback" not in result.output
    assert not isinstance(result.exception, IndexMismatchError)  # shown as a message, not raised

    with pytest.raises(IndexMismatchError, match="some-other-model"):
        update_index(index_dir, embedder=embedder)

    report = update_index(index_dir, rebuild=True, embedder=embedder)
    assert report.chunks == first.chunks
    assert read_manifest(index_dir)["model"] == embedder.name
    assert_consistent(index_dir, embedder)


def test_manifest_of_a_newer_format_is_refused(shared_copy: tuple[StoreLocation, UpdateReport]) -> None:
    index_dir, _ = shared_copy
    rewrite_manifest(index_dir, format_version=99)
    with pytest.raises(IndexMismatchError, match="format 99"):
        open_store(index_dir)


def test_manifest_of_an_older_format_names_the_rebuild(shared_copy: tuple[StoreLocation, UpdateReport]) -> None:
    index_dir, _ = shared_copy
    rewrite_manifest(index_dir, format_version=2)
    with pytest.raises(IndexMismatchError, match=r"old format 2; run `qa index --rebuild`"):
        open_store(index_dir)


def test_only_folders_and_articles_not_already_covered_are_remembered(
    built: tuple[StoreLocation, UpdateReport], corpus: Path, tmp_path: Path, embedder: Embedder
) -> None:
    index_dir, first = built
    letter = tmp_path / "letter.docx"
    letter.write_bytes(b"PK\x03\x04 not an article")
    # A binary file under an article's name is skipped when read, and so not remembered either
    # (it was, and every later update skipped it again).
    photo = tmp_path / "photo.txt"
    photo.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8)
    # Nor a FIFO under an article's name: no file at all, skipped by the walk.
    pipe = tmp_path / "pipe.txt"
    os.mkfifo(pipe)
    inside = sorted(corpus.glob("*.txt"))[0]
    report = update_index(index_dir, [letter, photo, pipe, inside], embedder=embedder)
    assert sorted(s.path for s in report.skipped) == sorted([str(letter), str(photo), str(pipe)])
    assert {s.path: s.reason for s in report.skipped}[str(letter)] == "not an article file (.docx)"
    assert {s.path: s.reason for s in report.skipped}[str(pipe)] == "not a regular file"
    assert report.documents == first.documents
    index = open_store(index_dir)
    try:
        assert index.sources() == [str(corpus)]  # neither is looked at again, the file is the folder's
    finally:
        index.close()
    assert update_index(index_dir, embedder=embedder).skipped == ()


def test_a_rebuild_reports_how_the_articles_changed_since_the_last_build(
    built: tuple[StoreLocation, UpdateReport], corpus: Path, embedder: Embedder, extra_article: CorpusArticle,
) -> None:
    index_dir, first = built
    changed, deleted = sorted(corpus.glob("*.txt"))[0], sorted(corpus.glob("*.md"))[0]
    changed.write_text(changed.read_text(encoding="utf-8") + "\n\nA paragraph added later.\n", encoding="utf-8")
    deleted.unlink()
    (corpus / extra_article.name).write_text(extra_article.text, encoding="utf-8")

    report = update_index(index_dir, rebuild=True, embedder=embedder)
    assert report.rebuilt and (report.added, report.changed, report.removed) == (1, 1, 1)
    assert report.unchanged == report.documents - 2 == first.documents - 2
    assert report.chunks_embedded == report.chunks  # every article embedded again
    # Built again with nothing changed since: every article is unchanged, and embedded again.
    again = CliRunner().invoke(main, ["index", "--rebuild", "--store", store_arg(index_dir)])
    said = " ".join(again.output.split())
    assert f"Index rebuilt: 0 added, 0 changed, 0 removed, {report.documents} unchanged; {report.chunks} chunks embedded" in said


def test_an_emptied_folder_named_to_be_looked_at_now_loses_its_articles(
    built: tuple[StoreLocation, UpdateReport], tmp_path: Path, embedder: Embedder, extra_article: CorpusArticle,
) -> None:
    # `--only FOLDER` (what `qa watch` runs after a deletion there, and the chat's /add): the files
    # were seen to go, so an empty folder is not taken for an unmounted drive.
    index_dir, first = built
    inbox = tmp_path / "inbox"
    _add_folder_holding(extra_article, inbox, index_dir, embedder)
    (inbox / extra_article.name).unlink()
    report = update_index(index_dir, [inbox], only=True, embedder=embedder)
    assert (report.removed, report.documents, report.missing_sources) == (1, first.documents, ())


def _news_behind_a_link(tmp_path: Path) -> tuple[Path, Path]:
    """A folder data/news holding brief.txt, and the link news -> data/news: (folder, link)."""
    real = tmp_path / "data" / "news"
    real.mkdir(parents=True)
    (real / "brief.txt").write_text("Harbour brief\n\nThe ferry to Sines runs twice a day.\n", encoding="utf-8")
    link = tmp_path / "news"
    link.symlink_to(real)
    return real, link


def test_a_folders_real_path_typed_where_a_link_to_it_is_remembered_indexes_nothing_twice(
    built: tuple[StoreLocation, UpdateReport], tmp_path: Path, embedder: Embedder, extra_article: CorpusArticle,
) -> None:
    # `cd ~/news && qa index .` where ~/news is a link: the shell gives the real path.
    index_dir, first = built
    real, link = _news_behind_a_link(tmp_path)
    (real / extra_article.name).write_text(extra_article.text, encoding="utf-8")
    linked = update_index(index_dir, [link], embedder=embedder)
    assert linked.documents == first.documents + 2
    update_index(index_dir, [real], embedder=embedder)
    assert update_index(index_dir, embedder=embedder).documents == first.documents + 2
    (real / extra_article.name).unlink()
    assert update_index(index_dir, embedder=embedder).documents == first.documents + 1  # no copy left behind


def test_only_a_real_path_where_a_link_to_its_folder_is_remembered_updates_the_links_article(
    built: tuple[StoreLocation, UpdateReport], tmp_path: Path, embedder: Embedder, extra_article: CorpusArticle,
) -> None:
    # `qa index --only /data/news/brief.txt` where ~/news -> /data/news is remembered: the file is
    # the one a scan names ~/news/brief.txt. It was added again under its real name and remembered
    # as a source of its own; a full scan, which reaches the file through the link first, never
    # read that copy again, and after an edit the old text was quoted beside the new.
    index_dir, first = built
    real, link = _news_behind_a_link(tmp_path)
    brief = real / "brief.txt"
    assert update_index(index_dir, [link], embedder=embedder).documents == first.documents + 1
    brief.write_text("Harbour brief\n\nThe ferry to Sines runs three times a day.\n", encoding="utf-8")
    report = update_index(index_dir, [brief], embedder=embedder, only=True)
    assert (report.added, report.changed, report.documents) == (0, 1, first.documents + 1)
    (real / extra_article.name).write_text(extra_article.text, encoding="utf-8")
    report = update_index(index_dir, [real], embedder=embedder, only=True)
    assert (report.added, report.unchanged, report.documents) == (1, 1, first.documents + 2)
    stats = assert_consistent(index_dir, embedder)
    assert str(brief) not in stats.sources and str(real) not in stats.sources
    hits = search(index_dir, embedder, "How often does the ferry to Sines run?", k=20)
    assert {(h.path, "three times" in h.text) for h in hits if h.path.endswith("brief.txt")} == {(str(link / "brief.txt"), True)}
    hits = search(index_dir, embedder, extra_article.question, k=5)
    assert hits[0].path == str(link / extra_article.name)
    report = update_index(index_dir, embedder=embedder)
    assert (report.added, report.changed, report.removed, report.documents) == (0, 0, 0, first.documents + 2)
    # A file deleted there is seen to go by --only of the real folder, and of another link to it
    # (a file of the remembered folder that the folder typed no longer holds was kept).
    brief.unlink()
    report = update_index(index_dir, [real], embedder=embedder, only=True)
    assert (report.removed, report.documents) == (1, first.documents + 1)
    (real / extra_article.name).unlink()
    alias = tmp_path / "alias"
    alias.symlink_to(real)
    report = update_index(index_dir, [alias], embedder=embedder, only=True)
    assert (report.removed, report.documents) == (1, first.documents)
    assert str(alias) not in assert_consistent(index_dir, embedder).sources
    # So is a file deleted, named by its real path (it was said to be no such file, and kept).
    brief.write_text("Harbour brief\n\nThe ferry to Sines runs twice a day.\n", encoding="utf-8")
    assert update_index(index_dir, embedder=embedder).added == 1
    brief.unlink()
    report = update_index(index_dir, [brief], embedder=embedder, only=True)
    assert (report.removed, report.documents, report.skipped) == (1, first.documents, ())


def test_a_folder_named_with_no_articles_in_it_is_said(tmp_path: Path, embedder: Embedder) -> None:
    # "0 added" alone reads as success when the user named the wrong folder.
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "draft.docx").write_bytes(b"PK")
    (tmp_path / "empty").mkdir()
    notes: list[str] = []
    folders = [tmp_path / "empty", tmp_path / "notes"]
    report = update_index(tmp_path / "index", folders, embedder=embedder, progress=NoteTaker(notes))
    assert report.documents == 0
    assert notes == [f"{f} holds no articles: qa reads .txt, .md, .markdown, .html, .htm, .pdf files" for f in folders]
    # Nor twice for a folder named twice, nor for one whose articles are reached through a link
    # the index walked first, nor for a loop of links with no article in it.
    (tmp_path / "news").mkdir()
    (tmp_path / "news" / "a.txt").write_text("Orchids\n\nA new orchid was found on Marojejy.\n")
    (tmp_path / "a_link").symlink_to(tmp_path / "news")
    (tmp_path / "empty" / "loop").symlink_to(tmp_path / "empty")
    notes.clear()
    named = [tmp_path / "a_link", tmp_path / "news", tmp_path / "empty", tmp_path / "empty"]
    assert update_index(tmp_path / "index", named, embedder=embedder, progress=NoteTaker(notes)).added == 1
    assert notes == [f"{tmp_path / 'empty'} holds no articles: qa reads .txt, .md, .markdown, .html, .htm, .pdf files"]
    # Nor for a folder whose last article went (moved out under `qa watch`): "1 removed" says it.
    (tmp_path / "today").mkdir()
    (tmp_path / "today" / "b.txt").write_text("Ferries\n\nThe ferry to Sines runs twice a day.\n")
    assert update_index(tmp_path / "index", [tmp_path / "today"], embedder=embedder).added == 1
    (tmp_path / "today" / "b.txt").rename(tmp_path / "b.txt")
    notes.clear()
    report = update_index(tmp_path / "index", [tmp_path / "today"], embedder=embedder, only=True,
                          progress=NoteTaker(notes))
    assert (report.removed, notes) == (1, [])


def test_only_the_index_disk_refusing_a_write_is_called_so(tmp_path: Path) -> None:
    import errno
    import sqlite3

    from qa.indexer import write_failure

    index = tmp_path / "index"
    assert "disk is full" in write_failure(OSError(errno.ENOSPC, "No space left on device", str(index / "x.tmp")), index)
    assert "disk is full" in write_failure(sqlite3.OperationalError("database or disk is full"), index)
    refused = write_failure(RuntimeError("Error in faiss::write_index: write error in x.tmp: 1 != 2 (File too large)"), index)
    assert refused.startswith("the disk refused the write (File too large)")
    # Another disk's (the model cache's), a QAError that quotes SQLite, a lock: not this index's disk.
    assert write_failure(OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "cache" / "m.onnx")), index) is None
    assert write_failure(IndexCorruptError("the catalog cannot be read (disk I/O error); rebuild it"), index) is None
    assert write_failure(sqlite3.OperationalError("database is locked"), index) is None
