"""Hostile files and questions: each is skipped or answered with a clear message, never a traceback."""

from __future__ import annotations

import os
import time
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qa.answer import answer_question
from qa.cli import main
from qa.errors import IngestError, QueryError
from qa.stores import check_store, open_store
from qa.indexer import UpdateReport, update_index
from qa.ingest import SkippedFile, read_article
from qa.render import render_update_report
from qa.retrieve import Retriever

GOOD_TEXT = (
    "Harbour Crane Toppled by Storm\n\n"
    "A container crane at the port of Eastmere collapsed onto a cargo ship during a storm on Friday night, "
    "the port authority said. Nobody was hurt, but the berth will stay closed for three weeks.\n"
)


def _hostile_corpus(folder: Path) -> dict[str, str]:
    """Files of every awkward kind, by name, with what each is."""
    folder.mkdir(parents=True)
    (folder / "good.txt").write_text(GOOD_TEXT, encoding="utf-8")
    (folder / "empty.txt").write_bytes(b"")
    (folder / "blank.md").write_text(" \n\t\n")
    (folder / "binary.txt").write_bytes(bytes(range(256)) * 40)
    with open(folder / "huge.txt", "wb") as handle:  # sparse: hundreds of MB on paper, nothing on disk
        handle.truncate(300 * 1024 * 1024)
    (folder / "latin1.txt").write_bytes(
        "Caf\u00e9 Owners Protest New Tax\n\nThe owners of caf\u00e9s in Lyon said on Monday the tax "
        "would force many to close before the winter, and called for talks.\n".encode("cp1252")
    )
    (folder / "no_article.html").write_text("<html><body><nav>Home | About</nav></body></html>")
    (folder / "dir.txt").mkdir()
    os.symlink(folder, folder / "loop")
    os.symlink(folder / "missing.txt", folder / "dangling.txt")
    os.mkfifo(folder / "pipe.txt")
    return {
        "empty.txt": "empty", "blank.md": "empty", "binary.txt": "binary", "huge.txt": "larger",
        "no_article.html": "no article", "dangling.txt": "link", "pipe.txt": "regular",
    }


def test_hostile_corpus_indexes_the_good_files_and_names_the_bad(tmp_path: Path, embedder) -> None:
    expected = _hostile_corpus(tmp_path / "corpus")
    report = update_index(tmp_path / "index", [tmp_path / "corpus"], embedder=embedder)
    assert report.documents == 2  # good.txt and the cp1252 file
    skipped = {Path(s.path).name: s.reason for s in report.skipped}
    for name, word in expected.items():
        assert name in skipped, f"{name} was not reported"
        assert word in skipped[name].lower(), skipped[name]
    assert all("\n" not in reason for reason in skipped.values())
    assert check_store(tmp_path / "index") == []


def test_odd_file_names_are_indexed_or_named_and_a_rescan_reads_none_again(tmp_path: Path, embedder) -> None:
    # A newline, a tab and a colon are legal in a file name; a name in Latin-1 bytes is not valid
    # UTF-8, which the catalog cannot hold: it is skipped with a reason, never a traceback, and a
    # run given only that file neither fails nor falls back to indexing the default corpus.
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    names = ["new\nline.txt", "tab\there.txt", "colon:0.txt", "plain.txt"]
    an_hour_ago = time.time_ns() - 3600 * 10**9
    for n, name in enumerate(names):
        (corpus / name).write_text(GOOD_TEXT.replace("Eastmere", f"Eastmere {n}"), encoding="utf-8")
    latin1 = os.path.join(os.fsencode(corpus), b"caf\xe9.txt")
    try:
        with open(latin1, "wb") as handle:
            handle.write(GOOD_TEXT.encode("utf-8"))
    except OSError:
        pytest.skip("this file system refuses names that are not UTF-8")
    for path in [*corpus.iterdir()]:
        os.utime(path, ns=(an_hour_ago, an_hour_ago))  # settled: a rescan trusts size and time alone
    index = tmp_path / "index"

    report = update_index(index, [corpus], embedder=embedder)
    assert report.added == len(names)
    [skipped] = report.skipped
    assert os.fsencode(skipped.path) == latin1 and "UTF-8" in skipped.reason

    again = update_index(index, embedder=embedder)
    assert (again.added, again.changed, again.unchanged, again.chunks_embedded) == (0, 0, len(names), 0)
    assert [s.reason for s in again.skipped] == [skipped.reason]

    only = update_index(index, [os.fsdecode(latin1)], embedder=embedder, only=True)
    assert (only.added, only.documents, [s.path for s in only.skipped]) == (0, len(names), [skipped.path])
    assert check_store(index) == []


@settings(max_examples=600, deadline=timedelta(seconds=10), suppress_health_check=list(HealthCheck))
@given(
    data=st.one_of(st.binary(max_size=3000), st.text(max_size=3000).map(lambda t: t.encode("utf-8", "surrogatepass"))),
    suffix=st.sampled_from([".txt", ".md", ".html"]),
)
def test_any_bytes_give_an_article_or_a_clear_ingest_error(tmp_path_factory, data: bytes, suffix: str) -> None:
    path = tmp_path_factory.mktemp("hostile") / f"article{suffix}"
    path.write_bytes(data)
    try:
        article = read_article(path)
    except IngestError as exc:
        assert str(exc) and "\n" not in str(exc)
    else:
        assert article.text.strip() and article.title


@pytest.fixture(scope="module")
def seed_retriever(tmp_path_factory, embedder, write_corpus):
    folder = tmp_path_factory.mktemp("seed-index")
    update_index(folder / "index", [write_corpus(folder / "corpus")], embedder=embedder)
    index = open_store(folder / "index")
    yield Retriever(index, embedder)
    index.close()


_questions = st.one_of(
    st.text(max_size=200),
    st.text(alphabet=st.characters(categories=["P", "S", "Z"]), max_size=50),  # punctuation, symbols, spaces
    st.text(alphabet="Кремльиракдокументπληροφορία日本語の記事نفطالعراق", min_size=1, max_size=80),
    st.builds(lambda w, n: (w + " ") * n, st.sampled_from(["Ivanov", "why", "the", "?"]), st.integers(1, 2500)),
)


@settings(max_examples=500, deadline=timedelta(seconds=10), suppress_health_check=list(HealthCheck))
@given(question=_questions)
def test_any_question_gets_an_answer_or_a_clear_message(seed_retriever, question: str) -> None:
    try:
        answer = answer_question(seed_retriever, question)
    except QueryError as exc:
        assert str(exc) and "\n" not in str(exc)
    else:
        text = {c.doc_id: seed_retriever.store.document(c.doc_id).text for c in answer.citations}
        for citation in answer.citations:
            assert text[citation.doc_id][citation.start : citation.end] == citation.quote


@pytest.mark.parametrize("question", ["", "   ", "?!?!", "x" * 10_000, "Иванов передал документ?"])
def test_cli_answers_odd_questions_without_a_traceback(seed_retriever, question: str) -> None:
    result = CliRunner().invoke(main, ["ask", "--index", str(seed_retriever.store.dir), question])
    assert "Traceback" not in result.output
    assert result.exit_code in (0, 1)
    if result.exit_code == 1:
        assert result.output.startswith("Error: ")


def test_a_skipped_file_with_a_newline_or_latin1_byte_in_its_name_is_reported_on_one_line(tmp_path: Path) -> None:
    odd = [SkippedFile(str(tmp_path / "new\nline.txt"), "empty file"),
           SkippedFile(os.fsdecode(os.path.join(os.fsencode(tmp_path), b"caf\xe9.txt")), "its name is not valid UTF-8")]
    lines = [line.plain for line in render_update_report(UpdateReport(skipped=tuple(odd))).renderables]
    assert lines[1:] == [f"skipped {tmp_path}/new\\nline.txt: empty file",
                         f"skipped {tmp_path}/caf\\udce9.txt: its name is not valid UTF-8"]


def test_index_json_names_a_file_whose_name_is_not_utf8_in_valid_json(tmp_path: Path) -> None:
    import json
    import subprocess
    import sys

    folder = os.path.join(os.fsencode(tmp_path), b"folder")
    os.mkdir(folder)
    with open(os.path.join(folder, b"caf\xe9.txt"), "wb") as handle:
        handle.write(b"Bakery\n\nThe bakery in Porto sold 700 pastries on Sunday.\n")
    result = subprocess.run(
        [sys.executable, "-m", "qa.cli", "index", os.fsdecode(folder), "--index", str(tmp_path / "idx"), "--json"],
        capture_output=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr
    # Once the name's raw byte: not UTF-8, so not JSON to any reader.
    report = json.loads(result.stdout.decode("utf-8"))
    (skipped,) = report["skipped"]
    assert os.fsencode(skipped["path"]) == os.path.join(folder, b"caf\xe9.txt")
