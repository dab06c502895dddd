"""The index survives SIGKILL at any moment of `qa index`, and two writers at once.

These run the real `qa` in subprocesses on real text (SQuAD paragraphs and the seed articles).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from qa.answer import answer_question
from qa.stores import check_store, open_store
from qa.indexer import update_index
from qa.retrieve import Retriever

REPO = Path(__file__).resolve().parent.parent
SQUAD_CORPUS = REPO.parent / "shared" / "eval" / "squad-dev-v1.1.corpus.jsonl"
KILLS = 20
SEED_QUESTION = "Who did Igor Ivanov give the informal document to?"
SEED_TITLE = "Ivanov's Offer Links Iraq to Chechnya"


def _write_paragraph_articles(folder: Path, count: int, skip: int = 0) -> list[Path]:
    """Real paragraphs of text nobody here wrote, one Markdown article each."""
    if not SQUAD_CORPUS.is_file():
        pytest.skip("the shared SQuAD corpus is not beside the checkout")
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    with open(SQUAD_CORPUS, encoding="utf-8") as handle:
        rows = [json.loads(next(handle)) for _ in range(skip + count)][skip:]
    for n, row in enumerate(rows):
        path = folder / f"para_{skip + n:04d}.md"
        path.write_text(f"---\ntitle: {row['title']} {skip + n}\n---\n\n{row['text']}\n", encoding="utf-8")
        paths.append(path)
    return paths


def _qa_index(index_dir: Path, *paths: Path, env_extra: dict[str, str] | None = None) -> subprocess.Popen:
    env = dict(os.environ, HF_HUB_OFFLINE="1", QA_COMMIT_EVERY_CHUNKS="6", **(env_extra or {}))
    return subprocess.Popen(
        [sys.executable, "-m", "qa.cli", "index", "--index", str(index_dir), *map(str, paths)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def _assert_whole_and_answering(index_dir: Path, embedder) -> int:
    """The index loads, passes every consistency check and cites the right article; returns its chunk count."""
    assert check_store(index_dir) == []
    index = open_store(index_dir)
    try:
        answer = answer_question(Retriever(index, embedder), SEED_QUESTION)
        assert answer.answerable
        assert answer.citations[0].title == SEED_TITLE
        text = index.document(answer.citations[0].doc_id).text
        assert text[answer.citations[0].start : answer.citations[0].end] == answer.citations[0].quote
        return index.stats().chunks
    finally:
        index.close()


def test_sigkill_at_twenty_moments_never_breaks_the_index(tmp_path: Path, embedder, write_corpus) -> None:
    seeds = write_corpus(tmp_path / "seeds", seeds=True)
    base = tmp_path / "base"
    update_index(base, [seeds], embedder=embedder)  # the last good index the kills must not harm
    articles = tmp_path / "articles"
    _write_paragraph_articles(articles, 40)

    # How long an uninterrupted run takes, on a copy, so the kills can be spread over all of it.
    reference = tmp_path / "reference"
    shutil.copytree(base, reference)
    started = time.monotonic()
    assert _qa_index(reference, articles).wait(timeout=300) == 0
    full_run = time.monotonic() - started
    expected_chunks = open_store(reference).stats().chunks

    landed = []
    for n in range(KILLS):
        # Each kill interrupts its own run from the same starting index, at a moment spread over
        # the whole run: from start-up (loading the model) to the last commits.
        index_dir = tmp_path / f"killed-{n}"
        shutil.copytree(base, index_dir)
        process = _qa_index(index_dir, articles)
        time.sleep(full_run * (n + 0.5) / KILLS)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=60)
        chunks = _assert_whole_and_answering(index_dir, embedder)
        # A normal run then finishes the job, embedding only what had not landed.
        report = update_index(index_dir, [articles], embedder=embedder)
        assert report.chunks_embedded == expected_chunks - chunks
        assert _assert_whole_and_answering(index_dir, embedder) == expected_chunks
        landed.append(chunks)

    print(f"\nuninterrupted run {full_run:.1f} s; chunks landed at each of {KILLS} kills, of {expected_chunks}: {landed}")
    # The kills fell all through the run: before anything landed, and after some work had landed.
    assert landed[0] == open_store(base).stats().chunks
    assert any(landed[0] < chunks < expected_chunks for chunks in landed)


_WRITER = """
import json, sys
from pathlib import Path
from qa.embed import Embedder
from qa.indexer import update_index
embedder = Embedder()
embedder.load()
print("ready", flush=True)
for line in sys.stdin:
    report = update_index(Path(sys.argv[1]), [Path(sys.argv[2])], embedder=embedder)
    print(json.dumps({"added": report.added, "documents": report.documents}), flush=True)
"""


def test_two_writers_at_once_lose_nothing(tmp_path: Path, embedder) -> None:
    articles = tmp_path / "articles"
    _write_paragraph_articles(articles, 2)
    index_dir = tmp_path / "index"
    update_index(index_dir, [articles], embedder=embedder)
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", _WRITER, str(index_dir), str(articles)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env,
        )
        for _ in range(2)
    ]
    try:
        for writer in writers:
            assert writer.stdout.readline().strip() == "ready"
        rounds = 20
        for n in range(rounds):
            _write_paragraph_articles(articles, 1, skip=2 + n)
            for writer in writers:  # both start the same update at the same moment
                writer.stdin.write("go\n")
                writer.stdin.flush()
            results = [json.loads(writer.stdout.readline()) for writer in writers]
            # One writer indexed the new article; the other waited for it and found nothing to do.
            assert sorted(r["added"] for r in results) == [0, 1]
            assert check_store(index_dir) == []
            assert all(r["documents"] == 3 + n for r in results)
    finally:
        for writer in writers:
            writer.stdin.close()
            writer.wait(timeout=60)


def test_ctrl_c_says_how_to_go_on_and_the_same_command_resumes(tmp_path: Path) -> None:
    articles = tmp_path / "articles"
    _write_paragraph_articles(articles, 40)
    index_dir = tmp_path / "index"
    # A process started in the background (as CI may start the tests) inherits SIGINT ignored;
    # a person's `qa index` has Python's handler, which this one is given back.
    command = [
        sys.executable, "-c",
        "import signal; signal.signal(signal.SIGINT, signal.default_int_handler); from qa.cli import run; run()",
        "index", "--index", str(index_dir), str(articles),
    ]
    env = dict(os.environ, HF_HUB_OFFLINE="1", QA_COMMIT_EVERY_CHUNKS="6")
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        stored = 0
        deadline = time.monotonic() + 240
        while not stored and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
            if (index_dir / "manifest.json").is_file():
                index = open_store(index_dir)
                try:
                    stored = index.counts()[0]
                finally:
                    index.close()
        if process.poll() is not None:
            pytest.skip("the run ended before a commit was seen to land")
        process.send_signal(signal.SIGINT)  # what Ctrl-C sends
        _, stderr = process.communicate(timeout=120)
    finally:
        process.kill()
    assert process.returncode == 130, stderr
    assert "Interrupted" in stderr and "Run the same command again to go on" in " ".join(stderr.split())
    assert "Traceback" not in stderr

    index = open_store(index_dir)
    try:
        landed = index.counts()[0]
    finally:
        index.close()
    assert 0 < landed < 40
    again = subprocess.run([*command, "--json"], env=env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    report = json.loads(again.stdout)
    assert (report["added"], report["documents"]) == (40 - landed, 40)


def test_a_full_disk_is_one_line_and_the_same_command_goes_on(tmp_path: Path, embedder) -> None:
    from qa_processes import refusing_writes_past

    articles = tmp_path / "articles"
    articles.mkdir()
    for seed in sorted((REPO / "seeds").iterdir()):
        shutil.copy(seed, articles / seed.name)
    index_dir = tmp_path / "index"
    update_index(index_dir, [articles], embedder=embedder)
    _write_paragraph_articles(articles, 40)
    # Room for the index's files as they are, not for forty articles more.
    limit = max(path.stat().st_size for path in index_dir.iterdir()) + 4096
    command = [sys.executable, "-m", "qa.cli", "index", "--index", str(index_dir), str(articles)]
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    full = subprocess.run(refusing_writes_past(limit, command), env=env, capture_output=True, text=True, timeout=300)
    assert full.returncode == 1, full.stderr
    lines = full.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"Error: cannot write the index at {index_dir}"), full.stderr
    assert "the index keeps its last completed update" in lines[0]
    assert not [path.name for path in index_dir.iterdir() if path.name.endswith(".tmp")]  # the half-written file went
    _assert_whole_and_answering(index_dir, embedder)

    again = subprocess.run([*command, "--json"], env=env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["documents"] == 42
