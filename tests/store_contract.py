"""What every store must do, written once against the `Store` and `StoreWriter` protocols.

In the manner of Haystack's `testing/document_store.py`: a backend's test class inherits
`StoreContract` and defines two fixtures, and gets the whole behavioural suite:

- `make_location` (class scope): a function from an empty folder to the location of a new, empty
  store kept in that folder (a file-backed one: the crash tests copy and kill it);
- `break_commit` (function scope): a context manager inside which the backend's next commit fails
  halfway through its writes, as a crash would leave it.

See tests/test_store_contract.py for the local and Milvus stores.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from qa.errors import IndexMismatchError
from qa.indexer import update_index
from qa.retrieve import Retriever
from qa.stores import check_store, open_store, open_writer
from qa.stores.base import settled_stamp
from qa.stores.location import StoreLocation
from qa.text import query_terms
from qa.types import SearchFilters, article_sentences

from conftest import BRIDGE, COFFEE, GLACIER, ORCHID, WRITTEN_ARTICLES

REPO = Path(__file__).resolve().parent.parent
SQUAD_CORPUS = REPO.parent / "shared" / "eval" / "squad-dev-v1.1.corpus.jsonl"
# When each SIGKILL falls, as a share of an uninterrupted `qa index` run (the local store's own
# test, tests/test_crash_safety.py, kills 20 runs; these three run on every backend).
KILL_MOMENTS = (0.4, 0.55, 0.7, 0.85, 0.95)
# How many passages a filtered search once read before checking the filters (qa.retrieve: 8 x 64).
CANDIDATE_POOL = 8 * 64


def write_articles(folder: Path) -> Path:
    """The three written articles of conftest, alone (no seeds): a small corpus every test reads."""
    folder.mkdir(parents=True, exist_ok=True)
    for article in WRITTEN_ARTICLES:
        (folder / article.name).write_text(article.text, encoding="utf-8")
    return folder


def write_paragraphs(folder: Path, count: int) -> Path:
    """Real paragraphs nobody here wrote (SQuAD), one Markdown article each."""
    if not SQUAD_CORPUS.is_file():
        pytest.skip("the shared SQuAD corpus is not beside the checkout")
    folder.mkdir(parents=True, exist_ok=True)
    with open(SQUAD_CORPUS, encoding="utf-8") as handle:
        rows = [json.loads(next(handle)) for _ in range(count)]
    for n, row in enumerate(rows):
        (folder / f"para_{n:04d}.md").write_text(f"---\ntitle: {row['title']} {n}\n---\n\n{row['text']}\n", encoding="utf-8")
    return folder


def copy_store(source: StoreLocation, target_folder: Path, make_location: Callable[[Path], StoreLocation]) -> StoreLocation:
    """A copy of a closed file-backed store: its files and its state folder."""
    target = make_location(target_folder)
    shutil.copytree(source.path, target.path)
    if source.state_dir() != source.path and source.state_dir().exists():
        shutil.copytree(source.state_dir(), target.state_dir())
    return target


def qa_index(location: StoreLocation, *paths: Path) -> subprocess.Popen:
    """The real `qa index` in a subprocess, committing every few chunks."""
    env = dict(os.environ, HF_HUB_OFFLINE="1", QA_COMMIT_EVERY_CHUNKS="6")
    return subprocess.Popen(
        [sys.executable, "-m", "qa.cli", "index", "--store", location.argument(), *map(str, paths)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )


def qa_command(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    return subprocess.run([sys.executable, "-m", "qa.cli", *args], env=env, capture_output=True, text=True, timeout=300)


def assert_whole(location: StoreLocation) -> tuple[int, int]:
    """The store passes `doctor`, and every chunk is its document's text between its offsets;
    returns (documents, chunks)."""
    assert check_store(location) == []
    store = open_store(location)
    try:
        with store.reading():
            records = store.chunks(store.chunk_ids())
            for record in records.values():
                article = store.document(record.doc_id)
                assert article is not None
                assert article.text[record.start : record.end] == record.text
            return store.counts()
    finally:
        store.close()


def document_texts(location: StoreLocation) -> list[str]:
    """The text of every document the store holds."""
    store = open_store(location)
    try:
        return [store.document(record.doc_id).text for record in store.documents().values()]
    finally:
        store.close()


def built_store(make_location, tmp_path: Path, embedder) -> tuple[Path, StoreLocation, tuple[int, int]]:
    """The written articles, a store of them in tmp_path, and its (documents, chunks)."""
    articles = write_articles(tmp_path / "articles")
    location = make_location(tmp_path / "store")
    update_index(location, [articles], embedder=embedder)
    return articles, location, assert_whole(location)


class StoreContract:
    """The behaviour every store shares; see the module notes for the two fixtures to define."""

    @pytest.fixture(scope="class")
    @classmethod
    def built(cls, make_location, tmp_path_factory: pytest.TempPathFactory, embedder) -> StoreLocation:
        """A store of the three written articles, built once for the class and only read."""
        folder = tmp_path_factory.mktemp("contract")
        location = make_location(folder / "store")
        update_index(location, [write_articles(folder / "articles")], embedder=embedder)
        return location

    @pytest.fixture
    def store(self, built: StoreLocation):
        opened = open_store(built)
        yield opened
        opened.close()

    # Commit and read ------------------------------------------------------------------------------

    def test_what_was_committed_reads_back(self, store, embedder) -> None:
        with store.reading():
            documents, chunks = store.counts()
            assert documents == len(WRITTEN_ARTICLES)
            by_name = {Path(path).name: record for path, record in store.documents().items()}
            assert sorted(by_name) == sorted(a.name for a in WRITTEN_ARTICLES)
            assert by_name[BRIDGE.name].date == "2021-03-14"
            ids = store.chunk_ids()
            assert len(ids) == chunks == store.chunk_count()
            records = store.chunks(ids)
            assert sorted(records) == sorted(ids)
            for record in records.values():
                article = store.document(record.doc_id)
                assert article is not None and article.text[record.start : record.end] == record.text
                assert all(record.start <= start < end <= record.end for start, end in record.sentences)
            assert store.document("no-such-document") is None
            assert len(store.sources()) == 1

    def test_chunks_with_vectors_are_the_chunks_and_their_vectors_in_the_order_asked(self, store) -> None:
        with store.reading():
            ids = store.chunk_ids()
            asked = list(reversed(ids)) + [987_654_321]  # an id no store holds is left out
            records, vectors = store.chunks_with_vectors(asked)
            assert [r.chunk_id for r in records] == list(reversed(ids))
            assert vectors.shape == (len(ids), store.manifest.dimension)
            np.testing.assert_allclose(vectors, store.chunk_vectors([r.chunk_id for r in records]), atol=1e-6)
            np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-3)

    def test_sentence_vectors_lie_inside_their_chunks(self, store) -> None:
        with store.reading():
            records = list(store.chunks(store.chunk_ids()).values())
            found = store.sentence_vectors(records)
            assert set(found) == {r.chunk_id for r in records}
            for record in records:
                spans, vectors = found[record.chunk_id]
                assert spans == sorted(spans) and len(spans) == len(vectors) > 0
                assert all(record.start <= start < end <= record.end for start, end in spans)
                np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-2)
            # Asked for some chunks of an article, a store gives each of them the same sentences.
            some = records[1::3]
            assert some and len(some) < len(records)
            partial = store.sentence_vectors(some)
            assert set(partial) == {r.chunk_id for r in some}
            for record in some:
                assert partial[record.chunk_id][0] == found[record.chunk_id][0]
                np.testing.assert_allclose(partial[record.chunk_id][1], found[record.chunk_id][1], atol=1e-6)

    # Search ---------------------------------------------------------------------------------------

    @pytest.mark.parametrize("article", WRITTEN_ARTICLES, ids=lambda a: a.name)
    def test_dense_and_keyword_search_find_the_article(self, store, embedder, article) -> None:
        with store.reading():
            dense = store.dense_search(embedder.encode_query(article.question), 3)
            keyword = store.keyword_search(query_terms(article.question), 3)
            assert keyword == sorted(keyword, key=lambda hit: hit[1], reverse=True)
            for ranked in (dense, [chunk_id for chunk_id, _ in keyword]):
                assert Path(store.chunks(ranked[:1])[ranked[0]].path).name == article.name

    def test_article_search_scores_whole_articles_by_their_words(self, store) -> None:
        with store.reading():
            names = {record.doc_id: Path(record.path).name for record in store.documents().values()}
            # Words of the bridge story's headline and of its text.
            found = store.article_search(["Kestrel", "Wrenmouth", "ferry", "province"], 5)
            assert [names[match.doc_id] for match in found] == [BRIDGE.name]
            assert found[0].score > 0
            assert found[0].passages == sum(record.doc_id == found[0].doc_id for record in store.chunks(store.chunk_ids()).values())
            ranked = store.article_search(["bridge", "coffee", "glacier", "Kestrel"], 5)
            assert ranked == sorted(ranked, key=lambda match: match.score, reverse=True)
            assert names[ranked[0].doc_id] == BRIDGE.name and len(ranked) == 3
            assert store.article_search(["zzyzx"], 5) == []
            # Only articles cut into at least so many passages, scored as before.
            most = max(match.passages for match in ranked)
            longest = store.article_search(["bridge", "coffee", "glacier", "Kestrel"], 5, min_passages=most)
            assert longest == [match for match in ranked if match.passages >= most] != []
            assert store.article_search(["bridge", "coffee", "glacier", "Kestrel"], 5, min_passages=most + 1) == []

    def test_document_frequencies_count_chunks_by_stem(self, store) -> None:
        with store.reading():
            counts = store.document_frequencies(["bridge", "bridges", "zyzzyvas"])
            assert counts["bridge"] == counts["bridges"] >= 1
            assert counts["zyzzyvas"] == 0

    def test_a_mistyped_word_is_read_as_the_store_spells_it(self, store) -> None:
        # qa.spelling asks only document_frequencies and keyword_search, so it works on every store.
        from qa.spelling import corrected_query

        with store.reading():
            assert corrected_query("When did the Kestrel Bay Birdge open?", store) == \
                "When did the Kestrel Bay Bridge open?"
            assert corrected_query("When did the Kestrel Bay Bridge open?", store) is None

    def test_filters_admit_only_what_they_name(self, store, embedder) -> None:
        retriever = Retriever(store, embedder)
        question = GLACIER.question
        by_source = retriever.search(question, k=3, filters=SearchFilters(source="coffee*"))
        assert by_source and {Path(hit.path).name for hit in by_source} == {COFFEE.name}
        by_date = retriever.search(question, k=3, filters=SearchFilters(since="2021-01-01", until="2021-12-31"))
        assert by_date and {Path(hit.path).name for hit in by_date} <= {BRIDGE.name, COFFEE.name}
        unfiltered = retriever.search(question, k=1)
        assert Path(unfiltered[0].path).name == GLACIER.name

    def test_a_narrow_filter_finds_its_article_among_many_closer_ones(self, make_location, tmp_path, embedder) -> None:
        # Once, with more close passages than a search reads (8 x 64) and the filters checked on
        # those alone, `--source` naming one article found nothing: "No passage was found".
        articles = write_articles(tmp_path / "articles")
        glacier = GLACIER.question
        for n in range(CANDIDATE_POOL + 100):
            (articles / f"note_{n:04d}.txt").write_text(f"Note {n}\n\n{glacier} Frost in note {n}.\n", encoding="utf-8")
        location = make_location(tmp_path / "store")
        update_index(location, [articles], embedder=embedder)
        store = open_store(location)
        try:
            retriever = Retriever(store, embedder)
            # An "_" or a "[k]" in the glob, which Milvus's LIKE cannot say exactly, too.
            for mode, source in (("hybrid", "kestrel*"), ("dense", "kestrel*"), ("hybrid", "[k]estrel_br?dge.*")):
                hits = retriever.search(glacier, k=3, mode=mode, filters=SearchFilters(source=source))
                assert hits and {Path(hit.path).name for hit in hits} == {BRIDGE.name}, (mode, source)
            # Every note holds "frost" in a shorter text (a higher BM25) than the coffee article.
            coffee = retriever.search("frost", k=2, mode="keyword", filters=SearchFilters(source="*coffee*"))
            assert coffee and {Path(hit.path).name for hit in coffee} == {COFFEE.name}
            assert retriever.search(glacier, k=3, filters=SearchFilters(source="no-such-article*")) == []
        finally:
            store.close()

    # Export, stats, doctor, writers ---------------------------------------------------------------

    def test_export_gives_back_every_document_with_its_vectors(self, store) -> None:
        with store.reading():
            exported = list(store.export())
            assert len(exported) == store.counts()[0]
            for document in exported:
                chunks = document.item.chunks
                assert [c.text for c in chunks] == [document.item.article.text[c.start : c.end] for c in chunks]
                assert document.chunk_vectors.shape == (len(chunks), store.manifest.dimension)
                assert len(document.sentence_vectors) == len(article_sentences(document.item))
            assert sum(len(d.item.chunks) for d in exported) == store.counts()[1]

    def test_stats_and_doctor(self, built: StoreLocation, store) -> None:
        stats = store.stats()
        assert (stats.documents, stats.chunks) == store.counts()
        assert stats.index_dir == built.describe()
        assert stats.size_bytes > 0
        assert check_store(built) == []

    def test_a_writer_refuses_vectors_of_another_model(self, built: StoreLocation, store) -> None:
        manifest = store.manifest
        with pytest.raises(IndexMismatchError, match="other-model"):
            open_writer(built, "other-model", manifest.dimension, manifest.backend, rebuild=False)

    def test_file_stamps_follow_the_settled_stamp_rule(self, make_location, tmp_path, embedder) -> None:
        # A scan trusts these stamps to skip reading a file: each store computes them its own way
        # (the local one in SQL), and each must agree with qa.stores.base.settled_stamp.
        articles = write_articles(tmp_path / "articles")
        settled = articles / BRIDGE.name
        an_hour_ago = time.time_ns() - 3600 * 10**9
        os.utime(settled, ns=(an_hour_ago, an_hour_ago))
        location = make_location(tmp_path / "store")
        update_index(location, [articles], embedder=embedder)
        reader = open_store(location)
        manifest = reader.manifest
        reader.close()
        writer = open_writer(location, manifest.model, manifest.dimension, manifest.backend, rebuild=False)
        try:
            records = writer.documents()
            expected = {path: settled_stamp(r.size, r.mtime_ns, r.indexed_at) for path, r in records.items()}
            assert writer.file_stamps() == expected
            assert writer.file_stamps([str(articles)]) == expected
            assert expected[str(settled)] == f"{settled.stat().st_size}:{an_hour_ago}"
        finally:
            writer.close()

    # Updates and crashes --------------------------------------------------------------------------

    def test_an_update_replaces_changed_files_and_drops_removed_ones(self, make_location, tmp_path, embedder) -> None:
        articles = write_articles(tmp_path / "articles")
        location = make_location(tmp_path / "store")
        update_index(location, [articles], embedder=embedder)
        (articles / BRIDGE.name).write_text(BRIDGE.text.replace("$412 million", "$517 million"), encoding="utf-8")
        (articles / COFFEE.name).unlink()
        report = update_index(location, [articles], embedder=embedder)
        assert (report.added, report.changed, report.removed) == (0, 1, 1)
        documents, _ = assert_whole(location)
        assert documents == 2
        store = open_store(location)
        try:
            texts = [store.document(record.doc_id).text for record in store.documents().values()]
            assert any("$517 million" in text for text in texts)
            assert not any("$412 million" in text or "Arabica" in text for text in texts)
            with store.reading():
                assert store.article_search(["Arabica"], 5) == []  # the removed article's row went with it
                assert len(store.article_search(["Wrenmouth"], 5)) == 1  # the changed one's, once
        finally:
            store.close()

    def test_a_commit_that_fails_halfway_leaves_a_whole_store(self, make_location, break_commit, tmp_path,
                                                              embedder) -> None:
        articles, location, before = built_store(make_location, tmp_path, embedder)
        (articles / BRIDGE.name).write_text(BRIDGE.text.replace("$412 million", "$517 million"), encoding="utf-8")
        (articles / ORCHID.name).write_text(ORCHID.text, encoding="utf-8")
        with break_commit(), pytest.raises(RuntimeError, match="interrupted"):
            update_index(location, [articles], embedder=embedder)
        assert check_store(location) == []  # doctor passes on what the failed commit left
        update_index(location, [articles], embedder=embedder)  # and the next update completes it
        documents, _ = assert_whole(location)
        assert documents == before[0] + 1
        texts = document_texts(location)
        assert sum("$517 million" in text for text in texts) == 1
        assert not any("$412 million" in text for text in texts)

    def test_a_rebuild_that_fails_halfway_leaves_the_store_as_it_was(self, make_location, break_commit, tmp_path,
                                                                     embedder) -> None:
        # A rebuild re-embeds everything (hours at scale): until it has finished, searches read
        # the store as it was, and a rebuild that stops on the way takes nothing from it.
        articles, location, before = built_store(make_location, tmp_path, embedder)
        (articles / BRIDGE.name).write_text(BRIDGE.text.replace("$412 million", "$517 million"), encoding="utf-8")
        with break_commit(), pytest.raises(RuntimeError, match="interrupted"):
            update_index(location, [articles], embedder=embedder, rebuild=True)
        assert assert_whole(location) == before
        assert sum("$412 million" in text for text in document_texts(location)) == 1
        report = update_index(location, [articles], embedder=embedder, rebuild=True)
        assert (report.rebuilt, report.changed, report.unchanged) == (True, 1, len(WRITTEN_ARTICLES) - 1)
        assert assert_whole(location) == before
        texts = document_texts(location)
        assert sum("$517 million" in text for text in texts) == 1 and not any("$412 million" in t for t in texts)

    def test_sigkill_during_qa_index_leaves_a_store_doctor_passes(self, make_location, tmp_path) -> None:
        """SIGKILL at several moments of a real `qa index`: `qa doctor` passes on what is left, and
        the next `qa index` completes the job."""
        articles = write_articles(tmp_path / "articles")
        paragraphs = write_paragraphs(tmp_path / "paragraphs", 60)
        base = make_location(tmp_path / "base")
        assert qa_index(base, articles).wait(timeout=300) == 0  # the last good store the kills must not harm

        reference = copy_store(base, tmp_path / "reference", make_location)
        started = time.monotonic()
        assert qa_index(reference, paragraphs).wait(timeout=300) == 0
        full_run = time.monotonic() - started
        expected = assert_whole(reference)
        before = assert_whole(base)

        landed = []
        for n, moment in enumerate(KILL_MOMENTS):
            location = copy_store(base, tmp_path / f"killed-{n}", make_location)
            process = qa_index(location, paragraphs)
            time.sleep(full_run * moment)
            process.send_signal(signal.SIGKILL)
            process.wait(timeout=60)
            # In subprocesses, as a user would run them (Milvus Lite serves one process at a time).
            doctor = qa_command("doctor", "--store", location.argument())
            assert doctor.returncode == 0, f"after the kill at {moment:.0%} of the run: {doctor.stdout}{doctor.stderr}"
            stats = json.loads(qa_command("stats", "--json", "--store", location.argument()).stdout)
            landed.append(stats["chunks"])
            finish = qa_index(location, paragraphs)
            assert finish.wait(timeout=300) == 0, finish.stderr.read().decode()
            assert assert_whole(location) == expected
        print(f"\nuninterrupted run {full_run:.1f} s; chunks landed at the kills, of {expected[1]}: {landed}")
        # The kills fell inside the writes too, not only before the first commit or after the last.
        assert any(before[1] < chunks < expected[1] for chunks in landed)
