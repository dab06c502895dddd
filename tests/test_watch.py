"""`qa watch` and `qa serve --watch` as real processes: real files are written, and the tests wait
for the index (or the server's answers) to change."""

from __future__ import annotations

import re
import shutil
import time
from pathlib import Path

import httpx
import pytest

from qa.embed import Embedder
from qa.indexer import update_index
from qa.stores import open_store
from qa.stores.location import as_location
from qa.watch import FolderWatcher, batch_paths
from qa_processes import QAProcess, qa_server, wait_for

WATCH_SECONDS = 240.0  # a deadline for failing on a busy 2-core machine, not a measure (bench/serve.py measures)


def article(n: int) -> str:
    return (f"Harbour Report Number {n}\n\nThe harbour master of Port Quillon counted {n * 7 + 3} fishing boats "
            f"in the northern basin on the morning of report {n}, and said the catch of mackerel was the best "
            f"in years.\n\nShe added that the new breakwater had kept the swell out during the storms.\n")


def news_with_one_article(tmp_path: Path) -> Path:
    """A folder `news` holding first.txt, article(0)."""
    news = tmp_path / "news"
    news.mkdir()
    (news / "first.txt").write_text(article(0))
    return news


def watching_news(tmp_path: Path, embedder: Embedder) -> tuple[Path, Path, list[str], FolderWatcher]:
    """A watcher started (in this process) on `news` with one article: the folder, the index,
    the lines it logs, the watcher."""
    news = news_with_one_article(tmp_path)
    index_dir = tmp_path / "index"
    lines: list[str] = []
    watcher = FolderWatcher(as_location(index_dir), [str(news)], embedder=embedder, log=lines.append)
    watcher.start()
    return news, index_dir, lines, watcher


def update_lines(process: QAProcess) -> list[str]:
    return re.findall(r"^\d\d:\d\d:\d\d .*added.*$", process.output(), flags=re.MULTILINE)


def documents(index_dir: Path) -> set[str]:
    index = open_store(index_dir)
    try:
        return {Path(path).name for path in index.documents()}
    finally:
        index.close()


def wait_for_documents(index_dir: Path, wanted: set[str], what: str, lines: list[str]) -> None:
    """Until the index holds just `wanted` (by file name), or fail saying `what` with the log."""
    deadline = time.monotonic() + WATCH_SECONDS
    while documents(index_dir) != wanted:
        assert time.monotonic() < deadline, f"{what}: {documents(index_dir)}; {lines}"
        time.sleep(0.2)


def test_batch_paths_names_new_files_and_the_folders_of_deleted_ones(tmp_path: Path) -> None:
    news = tmp_path / "news"
    (news / "today").mkdir(parents=True)
    (news / "a.txt").write_text("a")
    (news / "today" / "b.txt").write_text("b")
    roots = [str(news)]
    assert batch_paths([(False, str(news / "a.txt"))], roots) == [str(news / "a.txt")]
    assert batch_paths([(True, str(news / "gone.txt")), (False, str(news / "a.txt"))], roots) == [str(news)]
    assert batch_paths([(True, str(news / "today" / "gone.txt")), (False, str(news / "today" / "b.txt"))],
                       roots) == [str(news / "today")]
    assert batch_paths([(True, str(news / "old" / "x" / "gone.txt"))], roots) == [str(news)]
    # A hidden folder inside a root is skipped, as a scan skips it (a notebook's checkpoints once
    # were indexed as articles); one remembered as a root of its own is watched.
    checkpoint = news / ".ipynb_checkpoints" / "a-checkpoint.md"
    checkpoint.parent.mkdir()
    checkpoint.write_text("a")
    assert batch_paths([(False, str(checkpoint))], roots) == []
    assert batch_paths([(False, str(checkpoint))], [*roots, str(news / ".ipynb_checkpoints")]) == [str(checkpoint)]
    assert batch_paths([(False, str(tmp_path / "elsewhere.txt"))], roots) == []


def test_a_burst_of_files_is_one_update_and_deletions_and_edits_follow(tmp_path: Path) -> None:
    news = news_with_one_article(tmp_path)
    index_dir = tmp_path / "index"
    watcher = QAProcess(["watch", str(news), "--index", str(index_dir)], tmp_path / "watch.log")
    try:
        wait_for(lambda: "watching" in watcher.output(), "qa watch started", watcher)
        assert documents(index_dir) == {"first.txt"}
        burst = tmp_path / "burst"
        burst.mkdir()
        for n in range(1, 41):
            (burst / f"report-{n:02d}.txt").write_text(article(n))
        # 40 files arrive at once, as a folder moved in does, and 20 more written one by one.
        (burst).rename(news / "burst")
        for n in range(41, 61):
            (news / f"report-{n:02d}.txt").write_text(article(n))
        wait_for(lambda: len(documents(index_dir)) == 61, "61 documents indexed", watcher, WATCH_SECONDS, 0.5)
        lines = update_lines(watcher)
        assert len(lines) <= 3, lines  # the catch-up, then one update (two if the writes straddled a batch)
        assert sum(int(re.search(r"(\d+) added", line).group(1)) for line in lines[1:]) == 60, lines

        (news / "first.txt").unlink()
        wait_for(lambda: "first.txt" not in documents(index_dir), "the deleted file dropped", watcher,
                 WATCH_SECONDS, 0.5)
        assert " 1 removed" in update_lines(watcher)[-1]

        (news / "report-60.txt").write_text(article(600))
        wait_for(lambda: " 1 changed" in (update_lines(watcher) or [""])[-1], "the edited file indexed again",
                 watcher, WATCH_SECONDS, 0.5)
        (news / ".draft.txt.swp").write_text("editor noise")
        (news / "notes.docx").write_text("not an article")
        assert documents(index_dir) == {"report-60.txt", *(f"report-{n:02d}.txt" for n in range(1, 60))}
    finally:
        watcher.stop()


def test_a_write_the_disk_refuses_is_one_line_and_watching_goes_on(tmp_path: Path, embedder: Embedder) -> None:
    news = news_with_one_article(tmp_path)
    index_dir = tmp_path / "index"
    update_index(as_location(index_dir), [str(news)], embedder=embedder)
    # Room for the files as they are, not for forty articles more (their vectors, their catalog rows).
    limit = max(path.stat().st_size for path in index_dir.iterdir()) + 4096
    watcher = QAProcess(["watch", "--index", str(index_dir)], tmp_path / "watch.log", file_size_limit=limit)
    try:
        wait_for(lambda: "watching" in watcher.output(), "qa watch started", watcher)
        burst = tmp_path / "burst"  # arrives at once, one batch too large for the room left
        burst.mkdir()
        for n in range(1, 41):
            (burst / f"report-{n:02d}.txt").write_text(article(n) * 3)
        burst.rename(news / "burst")
        wait_for(lambda: "update failed: cannot write the index" in watcher.output(), "the failed write said",
                 watcher, WATCH_SECONDS, 0.5)
        assert "Traceback" not in watcher.output()
        assert "tried again in 15 s, or at the next change" in watcher.output()
        assert documents(index_dir) == {"first.txt"}
        # The disk freed, and nothing changes in the folder: the batch is tried again on its own.
        watcher.allow_writes()
        wait_for(lambda: len(documents(index_dir)) == 41, "the refused batch indexed on a retry", watcher,
                 WATCH_SECONDS, 0.5)
        # Still watching: a change is indexed.
        shutil.rmtree(news / "burst")
        (news / "first.txt").unlink()
        wait_for(lambda: not documents(index_dir), "the deleted article dropped", watcher, WATCH_SECONDS, 0.5)
    finally:
        watcher.stop()


def test_a_refused_update_is_tried_again_after_a_wait_that_doubles(tmp_path: Path) -> None:
    from qa.errors import IndexCorruptError, IndexWriteError

    lines: list[str] = []
    watcher = FolderWatcher(as_location(tmp_path / "index"), [str(tmp_path / "news")], log=lines.append)
    watcher.roots = [str(tmp_path / "news"), str(tmp_path / "drive")]  # as run() sets them
    full = IndexWriteError("cannot write the index: its disk is full")
    for wait in (15, 30, 60, 120, 240, 480, 600, 600):  # a disk that stays full: a few lines an hour
        started = time.monotonic()
        watcher._failed([str(tmp_path / "news" / "a.txt")], full)
        assert lines[-1].endswith(f"(tried again in {wait} s, or at the next change)")
        assert started + wait <= watcher._retry_at <= time.monotonic() + wait
    # The folder caught up (a change indexed, the disk freed): nothing pending, and the next
    # refusal waits the first wait again.
    watcher._caught_up([str(tmp_path / "news")])
    assert watcher._retry_at is None
    watcher._failed([str(tmp_path / "news" / "b.txt")], full)
    assert lines[-1].endswith("(tried again in 15 s, or at the next change)")
    # A damaged index is not tried again on a timer: only `qa index --rebuild` mends it.
    watcher._failed([str(tmp_path / "news" / "c.txt")], IndexCorruptError("the catalog cannot be read"))
    assert watcher._retry_at is None and "tried again" not in lines[-1]
    # What a catch-up kept when found empty is kept on its retry until that folder is caught up.
    kept = str(tmp_path / "drive")
    watcher._failed([kept], full, [kept])
    assert watcher._pending_kept == {kept}
    watcher._caught_up([kept])
    assert not watcher._pending_kept and kept not in watcher._pending
    # A path no longer under a watched folder (forgotten meanwhile) is let go, and the wait with it.
    watcher._failed([str(tmp_path / "forgotten" / "d.txt")], full)
    watcher.roots = [str(tmp_path / "news")]
    watcher._caught_up([str(tmp_path / "news")])
    assert not watcher._pending and watcher._retry_at is None
    watcher._failed([str(tmp_path / "news" / "e.txt")], full)
    assert lines[-1].endswith("(tried again in 15 s, or at the next change)")


def test_a_folder_to_watch_whose_catch_up_failed_is_remembered_when_tried_again(
    tmp_path: Path, embedder: Embedder
) -> None:
    from qa.errors import IndexWriteError

    # `qa watch /media/usb` with the drive not yet plugged in, then its catch-up refused by a full
    # disk: the retry indexed the drive's articles without remembering the drive, so no later
    # `qa index` looked at them again.
    news = news_with_one_article(tmp_path)
    index_dir = tmp_path / "index"
    update_index(as_location(index_dir), [news], embedder=embedder)
    drive = tmp_path / "usb"
    lines: list[str] = []
    watcher = FolderWatcher(as_location(index_dir), [str(drive)], embedder=embedder, log=lines.append)
    drive.mkdir()
    (drive / "b.txt").write_text(article(2))
    watcher.roots = watcher._existing_roots()  # as run() sets them once the drive is there
    watcher._failed([str(drive)], IndexWriteError("cannot write the index: its disk is full"))
    watcher.update(())  # the retry, on its timer or with the next change
    index = open_store(index_dir)
    try:
        assert sorted(index.sources()) == [str(news), str(drive)]
    finally:
        index.close()
    assert documents(index_dir) == {"first.txt", "b.txt"}


def test_a_watched_file_deleted_leaves_the_index(tmp_path: Path, embedder: Embedder) -> None:
    news = news_with_one_article(tmp_path)
    clipping = tmp_path / "clipping.txt"
    clipping.write_text(article(5))
    index_dir = tmp_path / "index"
    lines: list[str] = []
    watcher = FolderWatcher(as_location(index_dir), [str(news), str(clipping)], embedder=embedder, log=lines.append)
    watcher.start()
    try:
        assert documents(index_dir) == {"first.txt", "clipping.txt"}
        clipping.unlink()  # a source of its own, deleted: dropped, as `qa index` drops it
        wait_for_documents(index_dir, {"first.txt"}, "the deleted file kept", lines)
    finally:
        watcher.stop()


def test_the_watcher_follows_the_files_qa_index_reads(tmp_path: Path, embedder: Embedder) -> None:
    # A name opening with "~" is an article to `qa index`; the watcher dropped its events, so an
    # edit was never read and a deletion left the article cited.
    news, index_dir, lines, watcher = watching_news(tmp_path, embedder)
    try:
        tilde = news / "~draft.txt"
        tilde.write_text(article(6))
        wait_for_documents(index_dir, {"first.txt", "~draft.txt"}, "the new file missed", lines)
        (news / "~second.txt").write_text(article(7))
        wait_for_documents(index_dir, {"first.txt", "~draft.txt", "~second.txt"}, "the new file missed", lines)
        tilde.unlink()
        wait_for_documents(index_dir, {"first.txt", "~second.txt"}, "the deleted file kept", lines)
    finally:
        watcher.stop()


def test_a_file_name_that_is_not_utf8_is_skipped_and_the_folder_scanned_instead(
    tmp_path: Path, embedder: Embedder, monkeypatch: pytest.MonkeyPatch,
) -> None:
    # watchfiles cannot name such a file, and the watcher died with its traceback at once.
    import qa.watch

    monkeypatch.setattr(qa.watch, "SCAN_EVERY_S", 1.0)
    news, index_dir, lines, watcher = watching_news(tmp_path, embedder)
    try:
        (news / "caf\udce9.txt").write_text(article(8))  # the byte 0xe9, as os.fsencode writes it
        (news / "second.txt").write_text(article(1))
        wait_for_documents(index_dir, {"first.txt", "second.txt"}, "the new file missed", lines)
        (news / "first.txt").unlink()
        wait_for_documents(index_dir, {"second.txt"}, "the deleted file kept", lines)
        assert sum("scanning" in line for line in lines) == 1, lines
        assert watcher._thread is not None and watcher._thread.is_alive()
    finally:
        watcher.stop()


def test_a_file_written_while_the_watcher_catches_up_is_not_missed(tmp_path: Path, embedder: Embedder) -> None:
    news = news_with_one_article(tmp_path)
    index_dir = tmp_path / "index"
    lines: list[str] = []

    def log(line: str) -> None:
        # The catch-up's own line is logged after its scan: a file written now is too late for the
        # scan, so only the watch can find it, and the watch must already be running.
        if not lines:
            (news / "late.txt").write_text(article(1))
        lines.append(line)

    watcher = FolderWatcher(as_location(index_dir), [str(news)], embedder=embedder, log=log)
    watcher.start()
    try:
        assert documents(index_dir) == {"first.txt"}
        wait_for_documents(index_dir, {"first.txt", "late.txt"}, "late.txt never indexed", lines)
    finally:
        watcher.stop()


def test_a_watched_folder_deleted_and_made_again_is_watched_again(tmp_path: Path, embedder: Embedder) -> None:
    news, index_dir, lines, watcher = watching_news(tmp_path, embedder)

    def wait_until(wanted: set[str], what: str) -> None:
        wait_for_documents(index_dir, wanted, what, lines)

    try:
        assert documents(index_dir) == {"first.txt"}
        news.rename(tmp_path / "news.bak")  # as a sync tool or an archive extracted again does
        deadline = time.monotonic() + WATCH_SECONDS
        while not any("is not there now" in line for line in lines):
            assert time.monotonic() < deadline, lines
            time.sleep(0.2)
        news.mkdir()
        (news / "second.txt").write_text(article(1))
        wait_until({"second.txt"}, "the folder made again never caught up")  # first.txt is gone from it
        # Said once each way, not also as a skipped path or an update that changed nothing.
        assert sum("is not there now" in line for line in lines) == 1, lines
        assert any(f"{news} is back" in line for line in lines), lines
        assert not any("skipped" in line or " 0 added, 0 changed, 0 removed" in line for line in lines), lines
        (news / "third.txt").write_text(article(2))
        wait_until({"second.txt", "third.txt"}, "a file in the folder made again never indexed")
        # Deleted and made again at once, as `rm -r` and an archive unpacked do: no moment without it.
        shutil.rmtree(news)
        news.mkdir()
        (news / "fourth.txt").write_text(article(3))
        wait_until({"fourth.txt"}, "the folder made again at once never caught up")
        (news / "fifth.txt").write_text(article(4))
        wait_until({"fourth.txt", "fifth.txt"}, "a file in the folder made again at once never indexed")
    finally:
        watcher.stop()


def test_a_watched_drive_unmounted_keeps_its_articles(tmp_path: Path, embedder: Embedder) -> None:
    news, index_dir, lines, watcher = watching_news(tmp_path, embedder)

    def wait_for_line(text: str, after: int) -> None:
        deadline = time.monotonic() + WATCH_SECONDS
        while not any(text in line for line in lines[after:]):
            assert time.monotonic() < deadline, lines
            time.sleep(0.2)

    try:
        # Unmounted: the folder is the empty mount point at once (another folder to the watch).
        said = len(lines)
        news.rename(tmp_path / "drive")
        news.mkdir()
        wait_for_line("is empty now (a drive not mounted?)", said)
        assert documents(index_dir) == {"first.txt"}
        # Mounted again: watched, and what it held is not embedded again.
        said = len(lines)
        news.rmdir()
        (tmp_path / "drive").rename(news)
        time.sleep(3)  # more than ROOTS_CHECK_S: the watch on the mount point has moved to the drive
        (news / "third.txt").write_text(article(3))
        wait_for_documents(index_dir, {"first.txt", "third.txt"}, "a file written to the drive mounted again", lines)
        assert sum(int(n) for n in re.findall(r"(\d+) added", " ".join(lines[said:]))) == 1, lines
        # Empty again, then written to: not a drive after all, and the folder's scan drops the others.
        said = len(lines)
        news.rename(tmp_path / "drive")
        news.mkdir()
        wait_for_line("is empty now", said)
        (news / "second.txt").write_text(article(1))
        wait_for_documents(index_dir, {"second.txt"}, "a file written into the emptied folder", lines)
    finally:
        watcher.stop()


def test_a_folder_qa_index_adds_meanwhile_is_watched_too(
        tmp_path: Path, embedder: Embedder, monkeypatch: pytest.MonkeyPatch) -> None:
    import qa.watch
    from qa.indexer import update_index

    monkeypatch.setattr(qa.watch, "SOURCES_CHECK_S", 1.0)  # 30 s in use: a test need not wait so long
    news, later = tmp_path / "news", tmp_path / "later"
    news.mkdir()
    later.mkdir()
    (news / "first.txt").write_text(article(0))
    index_dir = tmp_path / "index"
    lines: list[str] = []
    watcher = FolderWatcher(as_location(index_dir), [str(news)], embedder=embedder, log=lines.append)
    watcher.start()
    try:
        update_index(as_location(index_dir), [later], embedder=embedder)  # `qa index later/` elsewhere
        wait_for_documents(index_dir, {"first.txt"}, "qa index changed what was there", lines)
        time.sleep(4)  # a source check, then the new watch
        (later / "second.txt").write_text(article(1))
        wait_for_documents(index_dir, {"first.txt", "second.txt"}, "a file in the folder added never indexed", lines)
    finally:
        watcher.stop()


def test_a_folder_forgotten_meanwhile_is_not_indexed_again_from_its_events(tmp_path: Path, embedder: Embedder) -> None:
    # It used to be: a file changed in a folder `qa index --forget` had just dropped was indexed
    # again (and remembered as a source of its own), and the folder was then said to be gone.
    from qa.indexer import update_index

    news, other = tmp_path / "news", tmp_path / "other"
    news.mkdir()
    other.mkdir()
    (news / "first.txt").write_text(article(0))
    (other / "second.txt").write_text(article(1))
    index_dir = tmp_path / "index"
    update_index(as_location(index_dir), [other], embedder=embedder)  # a remembered folder
    lines: list[str] = []
    watcher = FolderWatcher(as_location(index_dir), [str(news)], embedder=embedder, log=lines.append)
    watcher.start()
    try:
        assert documents(index_dir) == {"first.txt", "second.txt"}
        update_index(as_location(index_dir), embedder=embedder, forget=[other])  # in another terminal
        assert documents(index_dir) == {"first.txt"}
        (other / "second.txt").write_text(article(2))  # an event in the forgotten folder
        (news / "third.txt").write_text(article(3))  # and one in the watched folder, after it
        wait_for_documents(index_dir, {"first.txt", "third.txt"}, "the watched folder's file never indexed", lines)
        assert documents(index_dir) == {"first.txt", "third.txt"}, lines
        assert any(f"{other} was forgotten" in line for line in lines), lines
        assert not any("is not there now" in line for line in lines), lines
    finally:
        watcher.stop()


def test_what_changes_in_a_folder_linked_into_the_watched_one_is_no_source_of_its_own(
    tmp_path: Path, embedder: Embedder
) -> None:
    # news/archive -> another drive's folder: each file edited and each folder made there was
    # remembered as a source of its own, and said "not there now" at every update once deleted.
    archive = tmp_path / "archive"
    archive.mkdir()
    (archive / "old.txt").write_text(article(1))
    news = news_with_one_article(tmp_path)
    (news / "archive").symlink_to(archive)
    index_dir = tmp_path / "index"
    lines: list[str] = []
    watcher = FolderWatcher(as_location(index_dir), [str(news)], embedder=embedder, log=lines.append)
    watcher.start()
    try:
        assert documents(index_dir) == {"first.txt", "old.txt"}
        (archive / "old.txt").write_text(article(2))
        (archive / "2024").mkdir()
        (archive / "2024" / "new.txt").write_text(article(3))
        wait_for_documents(index_dir, {"first.txt", "old.txt", "new.txt"}, "the linked folder's new file missed", lines)
        deadline = time.monotonic() + WATCH_SECONDS
        while not any(re.search(r"\b[1-9]\d* changed", line) for line in lines):
            assert time.monotonic() < deadline, f"the edit missed: {lines}"
            time.sleep(0.2)
    finally:
        watcher.stop()
    index = open_store(index_dir)
    try:
        assert index.sources() == [str(news)]
    finally:
        index.close()


def test_a_folder_forgotten_while_it_was_away_is_not_indexed_again_when_it_is_back(
        tmp_path: Path, embedder: Embedder) -> None:
    # It used to be: with every watched folder gone, the index's folders were not read again, so
    # one forgotten meanwhile was watched and indexed again when it came back.
    from qa.indexer import update_index

    drive = tmp_path / "drive"
    drive.mkdir()
    (drive / "first.txt").write_text(article(0))
    index_dir = tmp_path / "index"
    update_index(as_location(index_dir), [drive], embedder=embedder)
    lines: list[str] = []
    watcher = FolderWatcher(as_location(index_dir), embedder=embedder, log=lines.append)  # its remembered folder
    watcher.start()
    try:
        drive.rename(tmp_path / "unplugged")
        deadline = time.monotonic() + WATCH_SECONDS
        while not any(f"{drive} is not there now" in line for line in lines):
            assert time.monotonic() < deadline, lines
            time.sleep(0.2)
        update_index(as_location(index_dir), embedder=embedder, forget=[drive])  # in another terminal
        assert documents(index_dir) == set()
        time.sleep(3)  # a look for the folders, which reads the index's list again
        (tmp_path / "unplugged").rename(drive)  # plugged back in
        time.sleep(6)  # a few looks, and a watch anew, had it been taken back
        assert documents(index_dir) == set(), lines
        assert not any(f"{drive} is back" in line for line in lines), lines
    finally:
        watcher.stop()


def test_serve_watch_answers_a_new_article_without_restart_and_never_reads_a_torn_index(
        tmp_path: Path, write_corpus, extra_article) -> None:
    news = write_corpus(tmp_path / "news", seeds=False)
    index_dir = tmp_path / "index"
    with qa_server(["--watch", str(news), "--index", str(index_dir)], tmp_path / "serve.log") as (url, server), \
            httpx.Client(base_url=url, timeout=60) as client:
        question = {"question": extra_article.question}
        assert extra_article.answer_phrase not in client.post("/ask", json=question).json()["answer"]
        (news / extra_article.name).write_text(extra_article.text, encoding="utf-8")
        texts: dict[str, str] = {}

        def answered() -> bool:
            # Every search while the watcher writes must cite spans of documents that exist.
            for hit in client.post("/search", json={"query": "Bulbophyllum ravinensis orchid", "k": 5}).json()["hits"]:
                if hit["doc_id"] not in texts:
                    document = client.get(f"/documents/{hit['doc_id']}")
                    assert document.status_code == 200, hit
                    texts[hit["doc_id"]] = document.json()["text"]
                assert texts[hit["doc_id"]][hit["start"]:hit["end"]] == hit["text"]
            return extra_article.answer_phrase in client.post("/ask", json=question).json()["answer"]

        wait_for(answered, "the new article answered", server, WATCH_SECONDS, 0.2)
        assert client.get("/stats").json()["documents"] == 4
        assert re.search(r"1 added, 0 changed, 0 removed", server.output())


def test_watching_a_folder_that_is_not_there_is_a_one_line_error(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from qa.cli import main

    missing = tmp_path / "no-such-folder"
    result = CliRunner().invoke(main, ["watch", str(missing), "--index", str(tmp_path / "index")])
    assert result.exit_code == 1
    assert result.output.strip() == f"Error: no such file or folder: {missing}"
    assert not (tmp_path / "index").exists()


def test_a_mistyped_folder_to_watch_is_said_to_be_skipped(tmp_path: Path, embedder: Embedder) -> None:
    # Only a watched folder that went is left to "not there now"; a typo was never watched.
    news = news_with_one_article(tmp_path)
    typo = tmp_path / "nwes"
    lines: list[str] = []
    watcher = FolderWatcher(as_location(tmp_path / "index"), [str(news), str(typo)], embedder=embedder, log=lines.append)
    watcher.start()  # returns once the folders are watched and the index has caught up
    try:
        assert any(f"skipped {typo}: no such file or folder" in line for line in lines), lines
    finally:
        watcher.stop()


def test_a_file_that_is_no_article_is_said_once_not_at_every_update(tmp_path: Path, embedder: Embedder) -> None:
    import watchfiles

    news = news_with_one_article(tmp_path)
    photo = news / "photo.txt"
    photo.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8)
    lines: list[str] = []
    watcher = FolderWatcher(as_location(tmp_path / "index"), [str(news)], embedder=embedder, log=lines.append)
    watcher.catch_up()
    (news / "second.txt").write_text(article(2))
    (news / "first.txt").unlink()  # a deletion makes the update scan the folder, photo.txt and all
    watcher.update([(watchfiles.Change.added, str(news / "second.txt")), (watchfiles.Change.deleted, str(news / "first.txt"))])
    assert documents(tmp_path / "index") == {"second.txt"}
    said = [line for line in lines if f"skipped {photo}" in line]
    assert len(said) == 1, lines  # it was said again at every update
    photo.write_bytes(b"\x00" * 3000)  # changed, and still no article: said again
    watcher.update([(watchfiles.Change.modified, str(photo))])
    assert len([line for line in lines if f"skipped {photo}" in line]) == 2, lines


def test_a_watcher_waiting_for_another_update_says_so(tmp_path: Path, embedder: Embedder) -> None:
    # It once waited on the writer lock in silence, before even saying what it watched.
    import threading

    from filelock import FileLock

    news = news_with_one_article(tmp_path)
    index_dir = tmp_path / "index"
    index_dir.mkdir()
    held = FileLock(str(index_dir / ".writer.lock"))
    held.acquire()
    lines: list[str] = []
    watcher = FolderWatcher(as_location(index_dir), [str(news)], embedder=embedder, log=lines.append)
    caught_up = threading.Thread(target=watcher.catch_up)
    caught_up.start()
    deadline = time.monotonic() + WATCH_SECONDS
    while not lines and time.monotonic() < deadline:
        time.sleep(0.05)
    assert re.fullmatch(r"\d\d:\d\d:\d\d waiting for another qa process to finish updating .*index …", lines[0])
    held.release()
    caught_up.join(WATCH_SECONDS)
    assert documents(index_dir) == {"first.txt"}
    assert re.fullmatch(r"\d\d:\d\d:\d\d the other update finished after [\d.]+ s; going on", lines[1]), lines


def test_a_long_update_says_how_far_it_is(tmp_path: Path, embedder: Embedder, monkeypatch: pytest.MonkeyPatch) -> None:
    import qa.watch

    monkeypatch.setattr(qa.watch, "PROGRESS_EVERY_S", 0.0)  # every step of the update is "long" here
    news = news_with_one_article(tmp_path)
    for n in range(1, 4):
        (news / f"report-{n}.txt").write_text(article(n))
    lines: list[str] = []
    FolderWatcher(as_location(tmp_path / "index"), [str(news)], embedder=embedder, log=lines.append).catch_up()
    assert any(re.fullmatch(r"\d\d:\d\d:\d\d (reading|chunking|embedding): [1-3] of 4", line) for line in lines), lines
    assert re.search(r" 4 added", lines[-1]), lines


def test_ctrl_c_during_an_update_says_the_rest_is_indexed_next_time(tmp_path: Path) -> None:
    import os
    import signal
    import subprocess
    import sys

    news = news_with_one_article(tmp_path)
    index_dir = tmp_path / "index"
    # Ctrl-C sends SIGINT; a process started in the background inherits it ignored, so the
    # watcher is given Python's handler back, as a person's `qa watch` has it.
    command = [sys.executable, "-c",
               "import signal; signal.signal(signal.SIGINT, signal.default_int_handler); from qa.cli import run; run()",
               "watch", str(news), "--index", str(index_dir)]
    env = dict(os.environ, HF_HUB_OFFLINE="1", QA_COMMIT_EVERY_CHUNKS="6")  # commits land as it goes
    log = tmp_path / "watch.log"
    with log.open("wb") as stderr:
        process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=stderr)
        try:
            deadline = time.monotonic() + WATCH_SECONDS
            while "watching" not in log.read_text() and time.monotonic() < deadline:
                time.sleep(0.2)
            assert "watching" in log.read_text(), log.read_text()
            burst = tmp_path / "burst"
            burst.mkdir()
            for n in range(1, 121):
                (burst / f"report-{n:03d}.txt").write_text(article(n) * 6)
            burst.rename(news / "burst")
            while len(documents(index_dir)) < 3 and time.monotonic() < deadline:  # part of it committed
                time.sleep(0.1)
            process.send_signal(signal.SIGINT)
            process.wait(timeout=120)
        finally:
            process.kill()
    said = log.read_text()
    assert process.returncode == 130, said
    assert "stopped during an update; what it had committed stays" in said and "Traceback" not in said
    assert 1 < len(documents(index_dir)) < 121
