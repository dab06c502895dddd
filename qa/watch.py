"""`qa watch`: keep an index current as article files appear, change or vanish.

watchfiles gathers the file system's events into batches: it waits until the folder has been
quiet for STEP_MS (or DEBOUNCE_MS have passed), so a folder of 500 new files is one batch. Each
batch is one `update_index(..., only=True)` over the files it names, the path `qa index --only`
takes, and each commit lands as a new generation: readers keep the last complete one until then.

A deleted file is looked for through its folder (the update scans that folder alone and drops
what is gone); new and changed files are named one by one.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from qa.config import ARTICLE_SUFFIXES
from qa.errors import QAError
from qa.ingest import path_is_under

if TYPE_CHECKING:
    from qa.embed import Embedder
    from qa.indexer import UpdateReport
    from qa.stores.location import StoreLocation

DEBOUNCE_MS = 1600  # the longest a batch keeps growing while files keep arriving
STEP_MS = 150  # a batch ends after this long without a new event

Log = Callable[[str], None]


class FolderWatcher:
    """Watches PATHS and the index's remembered sources, and indexes what changes there."""

    def __init__(self, location: StoreLocation, paths: Sequence[str] = (), *, embedder: Embedder | None = None,
                 log: Log = print) -> None:
        self.location = location
        self.paths = [str(Path(p).expanduser().absolute()) for p in paths]
        self.embedder = embedder
        self.log = log
        self.roots: list[str] = []
        self.updates = 0  # batches that changed the index, for tests and the bench
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def catch_up(self) -> UpdateReport:
        """Index PATHS (remembered from now on) and every known source, as `qa index PATHS` does."""
        from qa.indexer import update_index

        started = time.perf_counter()
        report = update_index(self.location, self.paths or None, embedder=self.embedder, lock_timeout=None)
        self._log_report(report, time.perf_counter() - started, always=True)
        self.roots = [root for root in self._sources() if os.path.exists(root)]
        return report

    def run(self) -> None:
        """Index each batch of changes until `stop()` (or Ctrl-C)."""
        import watchfiles

        if not self.roots:
            self.catch_up()
        if not self.roots:
            self.log("qa watch: the index has no folders to watch; give one, as in `qa watch ~/news`")
            return
        for changes in watchfiles.watch(*self.roots, watch_filter=_is_article_event, debounce=DEBOUNCE_MS,
                                        step=STEP_MS, stop_event=self._stop, raise_interrupt=True):
            self.update(changes)

    def update(self, changes: Iterable[tuple[object, str]]) -> UpdateReport | None:
        """Index one batch of (change, path) events; a failure is logged and watching goes on."""
        import watchfiles

        from qa.indexer import update_index

        paths = batch_paths(((change == watchfiles.Change.deleted, path) for change, path in changes), self.roots)
        if not paths:
            return None
        started = time.perf_counter()
        try:
            report = update_index(self.location, paths, embedder=self.embedder, only=True, lock_timeout=None)
        except QAError as exc:
            self.log(f"{_clock()} update failed: {exc}")
            return None
        self._log_report(report, time.perf_counter() - started)
        return report

    def start(self) -> None:
        """Watch in a background thread (for `qa serve --watch`)."""
        self._thread = threading.Thread(target=self._run_quietly, name="qa-watch", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _run_quietly(self) -> None:
        try:
            self.run()
        except Exception as exc:  # the server goes on answering from the last update
            self.log(f"{_clock()} watching stopped: {type(exc).__name__}: {exc}")

    def _sources(self) -> list[str]:
        from qa.stores import open_store

        store = open_store(self.location)
        try:
            return store.sources()
        finally:
            store.close()

    def _log_report(self, report: UpdateReport, seconds: float, always: bool = False) -> None:
        if report.changed_anything:
            self.updates += 1
        if report.changed_anything or always:
            self.log(update_line(report, seconds))
        for skipped in report.skipped:
            self.log(f"{_clock()} skipped {skipped.path}: {skipped.reason}")


def update_line(report: UpdateReport, seconds: float) -> str:
    """One log line for an update: ``12:03:04 3 added, 1 changed, 0 removed; 9 chunks embedded; 120 documents (0.8 s)``."""
    return (f"{_clock()} {report.added} added, {report.changed} changed, {report.removed} removed; "
            f"{report.chunks_embedded} chunks embedded; {report.documents} documents, {report.chunks} chunks "
            f"({seconds:.1f} s)")


def batch_paths(events: Iterable[tuple[bool, str]], roots: Sequence[str]) -> list[str]:
    """What one update must look at for a batch of (deleted, path) events: each new or changed file,
    and the folder of each deleted one, inside `roots`; a file inside a folder already named is dropped.

    ``[(False, "/n/a.txt"), (True, "/n/b.txt")] -> ["/n"]``
    """
    wanted: set[str] = set()
    for deleted, path in events:
        if not path_is_under(path, roots):
            continue
        if deleted or not os.path.exists(path):
            folder = os.path.dirname(path)
            while folder and not os.path.isdir(folder):
                folder = os.path.dirname(folder)
            if folder and path_is_under(folder, roots):
                wanted.add(folder)
            elif path in roots:
                wanted.add(path)  # a watched file that is gone: update_index drops a deleted source
        else:
            wanted.add(path)
    folders = [p for p in wanted if os.path.isdir(p)]
    return sorted(p for p in wanted if p in folders or not any(path_is_under(p, [f]) for f in folders))


def _is_article_event(change: object, path: str) -> bool:
    """Events worth an update: article files (not hidden or editors' temporaries), a folder moved or
    made inside, and any deletion, which may be a folder of articles."""
    import watchfiles

    name = os.path.basename(path)
    if name.startswith((".", "~")) or name.endswith("~"):
        return False
    if change == watchfiles.Change.deleted or name.lower().endswith(ARTICLE_SUFFIXES):
        return True
    # Only a folder's arrival: its modification (a file added inside) comes with the file's own event.
    return change == watchfiles.Change.added and os.path.isdir(path)


def _clock() -> str:
    return time.strftime("%H:%M:%S")
