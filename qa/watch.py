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
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from qa.config import ARTICLE_SUFFIXES
from qa.errors import IndexCorruptError, IndexMismatchError, QAError
from qa.paths import path_is_under, typed_path
from qa.progress import SilentProgress
from qa.text import counted

if TYPE_CHECKING:
    from qa.embed import Embedder
    from qa.indexer import UpdateReport
    from qa.stores.location import StoreLocation

DEBOUNCE_MS = 1600  # the longest a batch keeps growing while files keep arriving
STEP_MS = 150  # a batch ends after this long without a new event
WAKE_MS = 500  # how long the first wait lasts before catch-up; later waits wake this often to see stop()
# How often the watched folders are looked at (one deleted, or made again, a drive plugged back
# in): a stat each. And how often the index is asked which folders it remembers (`qa index` in
# another terminal may add one): its catalog's list alone, no vectors loaded.
ROOTS_CHECK_S = 2.0
# When the folders cannot be watched (watchfiles cannot name a file whose name is not UTF-8, and
# stops), they are scanned this often instead, as `qa index` scans them, until they can be again.
SCAN_EVERY_S = 10.0
SOURCES_CHECK_S = 30.0
PROGRESS_EVERY_S = 10.0  # how often a long update says how far it is
# A batch whose update failed (a full disk) is tried again after this long with no change to
# carry it, then twice as long after each failure, up to RETRY_LONGEST_S: a disk freed in the
# night is caught up by morning, and one still full says so a few times an hour, not every second.
RETRY_FIRST_S = 15.0
RETRY_LONGEST_S = 600.0

Log = Callable[[str], None]


# How many skipped files (with their stamps) a watcher remembers having named.
SAID_SKIPPED_KEPT = 10_000


class FolderWatcher:
    """Watches PATHS and the index's remembered sources, and indexes what changes there."""

    def __init__(self, location: StoreLocation, paths: Sequence[str] = (), *, embedder: Embedder | None = None,
                 log: Log = print) -> None:
        self.location = location
        self.paths = [typed_path(p) for p in paths]
        self.embedder = embedder
        self.log = log
        self.roots: list[str] = []
        self.updates = 0  # batches that changed the index, for tests and the bench
        self.updating = False  # an update is under way (a Ctrl-C now stops it part-way)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._known: list[str] = []  # PATHS and the remembered sources, there or not
        self._gone: set[str] = set()  # watched folders said to be gone, to say when they are back
        # Watched folders found empty, their articles kept (a drive's mount point, the drive not
        # mounted): the next change in one is indexed by a scan of all of it, so what is not there goes.
        self._came_back_empty: set[str] = set()
        self._swapped: set[str] = set()  # watched folders deleted, made again or remounted since the last watch
        self._file_roots: set[str] = set()  # the watched roots that are files, not folders
        # Paths of batches whose update failed (a full disk): tried again with the next one, or
        # at _retry_at; those of a catch-up that keeps its articles when found empty, in _pending_kept.
        self._pending: set[str] = set()
        self._pending_kept: set[str] = set()
        self._retry_at: float | None = None
        self._retry_wait = RETRY_FIRST_S
        # Files said to be skipped, with the reason and the file's stamp then: a folder's next scan
        # skips them again, and saying so at every update buried the updates.
        self._said_skipped: set[tuple[str, str, tuple[int, int] | None]] = set()
        # What an update notes on its way (waiting for another process's update, a folder with no
        # articles) is logged as it happens: a watcher waiting on a lock once said nothing at all.
        self._notes = _LoggedNotes(log)
        self._scanning_said = False  # that the folders are scanned instead of watched

    def catch_up(self, say_unchanged: bool = True) -> UpdateReport:
        """Index PATHS (remembered from now on) and every known source, as `qa index PATHS` does;
        said in a line even when nothing changed, unless not `say_unchanged`."""
        started = time.perf_counter()
        report = self._update_index(self.paths or None)
        self._came_back_empty |= {root for root in report.missing_sources if os.path.isdir(root)}
        self._log_report(report, time.perf_counter() - started, always=say_unchanged)
        self.roots = self._existing_roots()
        return report

    def run(self, on_ready: Callable[[list[str]], None] | None = None) -> None:
        """Watch the folders, catch up with them, call `on_ready(roots)`, then index each batch of
        changes until `stop()` (or Ctrl-C).

        The watch starts before the catch-up scan: a file written while the scan runs (or the moment
        after) is then either found by the scan or named by an event, never missed by both."""
        import watchfiles
        from watchfiles._rust_notify import WatchfilesRustInternalError  # not exported; raised by watch()

        roots = self._existing_roots()
        said = not roots
        if said:  # nothing known yet: the catch-up says what the index holds
            self.catch_up()
            roots = self.roots
        if not roots:
            self.log("qa watch: the index has no folders to watch; give one, as in `qa watch ~/news`")
            return
        first = True
        while not self._stop.is_set():
            watched = _identities(self._known)
            if not watched:  # every folder gone: look for them again now and then
                self._stop.wait(ROOTS_CHECK_S)
                self._existing_roots()  # and for what `qa index` added or forgot meanwhile
                continue
            self.roots = list(watched)
            # Looked at before the watch starts: a file deleted a moment later is still known as one.
            self._file_roots = {root for root in watched if os.path.isfile(root)}
            batches = watchfiles.watch(*self.roots, watch_filter=_is_article_event, debounce=DEBOUNCE_MS,
                                       step=STEP_MS, stop_event=self._stop, rust_timeout=WAKE_MS,
                                       yield_on_timeout=True, raise_interrupt=True)
            try:
                early = next(batches, None)  # returns once the folders are watched: WAKE_MS later, or with changes
            except FileNotFoundError:  # a folder went between the look and the watch
                batches.close()
                continue
            except WatchfilesRustInternalError as exc:
                batches.close()
                if first:
                    self._first_catch_up(said, on_ready)
                    first = False
                self._scan_instead(exc)
                continue
            if first:
                self._first_catch_up(said, on_ready)
                first = False
            else:
                back = self._gone & set(self.roots)
                for root in sorted(back):
                    self.log(f"{_clock()} {root} is back; watching it again")
                self._gone -= set(self.roots)
                # Watched anew: what changed between the two watches was seen by neither (and a
                # folder forgotten while it was away is not indexed again now it is back).
                self._catch_up_with(self._still_remembered(self.roots), came_back=back | self._swapped)
                self._swapped = set()
            if early:
                self.update(early)
            try:
                self._watch_until_the_folders_change(batches, watched)
            except WatchfilesRustInternalError as exc:
                self._scan_instead(exc)

    def _first_catch_up(self, said: bool, on_ready: Callable[[list[str]], None] | None) -> None:
        """The catch-up once watched, or once scanning instead (what came meanwhile), said only if it
        found anything when the catch-up before it was `said`; then `on_ready(roots)`."""
        self.catch_up(say_unchanged=not said)
        if on_ready is not None:
            on_ready(self.roots)

    def _scan_instead(self, exc: Exception) -> None:
        """The folders could not be watched: scanned after SCAN_EVERY_S, as `qa index` scans them
        (which skips the file it could not name, saying why), before they are watched again."""
        if not self._scanning_said:
            self.log(f"{_clock()} cannot watch the folders ({exc}); scanning them every {SCAN_EVERY_S:g} s instead")
            self._scanning_said = True
        if not self._stop.wait(SCAN_EVERY_S):
            try:
                self.catch_up(say_unchanged=False)
            except QAError as failed:
                self._failed(self.roots, failed)

    def _watch_until_the_folders_change(self, batches: Iterator[set], watched: dict[str, tuple[int, int]]) -> None:
        """Index each batch until a watched folder is not the one watched: deleted (a watch on it
        sees nothing more, even once it is made again), made again in an instant (`rm -r` and an
        archive unpacked), or one that was not there came (a drive plugged back in, a folder
        `qa index` added)."""
        import watchfiles

        checked = sources_read = time.monotonic()
        # A watched file that is deleted is a source deleted, dropped by the update as `qa index`
        # drops it; only a folder's going is left to the catch-up.
        watched_files = self._file_roots
        try:
            for changes in batches:
                if changes:  # an empty batch is the WAKE_MS timeout
                    # A watched folder deleted: even made again at once, with the same inode (a
                    # freed one is handed out again), it is another folder the watch cannot see.
                    deleted = [path for change, path in changes
                               if change == watchfiles.Change.deleted and path in watched and path not in watched_files]
                    if deleted:
                        # What went with it is for the catch-up once it is watched again, which
                        # keeps the articles of one made again empty (a drive's mount point).
                        others = {(change, path) for change, path in changes if not path_is_under(path, deleted)}
                        if others:
                            self.update(others)
                        self._say_gone(root for root in deleted if not os.path.exists(root))
                        self._swapped |= set(deleted)
                        return
                    self.update(changes)
                elif self._retry_at is not None and time.monotonic() >= self._retry_at:
                    self._retry_at = None  # set again if it fails again
                    self.update(())
                if time.monotonic() - checked < ROOTS_CHECK_S:
                    continue
                checked = time.monotonic()
                if checked - sources_read >= SOURCES_CHECK_S:
                    # A folder `qa index --forget` dropped (said so), or one `qa index` added, in
                    # another terminal: one read of the index's list updates the folders known.
                    self._still_remembered(list(watched))
                    sources_read = checked
                now = _identities(self._known)
                if now != watched:
                    gone_files = {root for root in watched_files if root not in now}
                    if gone_files:  # deleted, its event not (yet) seen
                        self.update({(watchfiles.Change.deleted, root) for root in gone_files})
                    self._say_gone(set(watched) - set(now) - gone_files)
                    self._swapped |= {root for root, identity in now.items() if watched.get(root) != identity}
                    return
        finally:
            batches.close()

    def _say_gone(self, roots: Iterable[str]) -> None:
        for root in sorted(roots):
            if root not in self._known:
                continue  # forgotten, not gone: said when it was found so (_still_remembered)
            self._gone.add(root)
            self.log(f"{_clock()} {root} is not there now; watching for it to come back")

    def _still_remembered(self, roots: list[str]) -> list[str]:
        """`roots` less those `qa index --forget` has dropped since they were read (PATHS given to
        the watcher are watched whatever the index remembers), each said once."""
        sources = self._sources()
        if sources is None:
            return roots  # the index cannot be read now: the folders known before are kept
        remembered = {*self.paths, *sources}
        forgotten = [root for root in roots if root not in remembered]
        for root in forgotten:
            if root in self._known:
                self.log(f"{_clock()} {root} was forgotten (`qa index --forget`); not watching it now")
        self._known = [root for root in self._known if root in remembered] + sorted(remembered - set(self._known))
        return [root for root in roots if root in remembered]

    def _catch_up_with(self, roots: list[str], came_back: set[str]) -> None:
        """Index folders watched anew, as `qa index --only` would; those in `came_back` (made again,
        remounted, back) keep their articles when found empty, as `qa index` keeps them: a mount
        point whose drive went. A folder found empty that did not change was emptied by the user."""
        if not roots:
            return
        started = time.perf_counter()
        kept = [root for root in roots if root in came_back]
        try:
            report = self._update_index(roots, only=True, empty_kept=kept)
        except QAError as exc:
            self._failed(roots, exc, kept)
            return
        self._came_back_empty -= set(roots)
        self._came_back_empty |= {root for root in report.missing_sources if root in roots and os.path.isdir(root)}
        self._caught_up(roots)
        self._log_report(report, time.perf_counter() - started)

    def update(self, changes: Iterable[tuple[object, str]]) -> UpdateReport | None:
        """Index one batch of (change, path) events; a failure is logged and watching goes on."""
        import watchfiles

        from qa.indexer import holds_article

        # The sources read again first: a folder `qa index --forget` dropped a moment ago is not
        # indexed again from its events (it would come back, each changed file a source of its own).
        roots = self._still_remembered(self.roots)
        paths = batch_paths(((change == watchfiles.Change.deleted, path) for change, path in changes), roots)
        paths = sorted(set(paths) | {path for path in self._pending if path_is_under(path, roots)})
        if not paths:
            return None
        empty = [root for root in self._came_back_empty if any(path_is_under(path, [root]) for path in paths)]
        # Articles again in a folder found empty: it was not an unmounted drive, or it is mounted
        # again; a scan of all of it drops what it no longer holds. Until then (a folder made in it
        # first, a file come and gone) it is left as it is.
        refilled = [root for root in empty if holds_article(root)]
        paths = [path for path in paths if not path_is_under(path, empty)] + refilled
        if not paths:
            return None
        started = time.perf_counter()
        kept = [path for path in paths if path in self._pending_kept]
        try:
            # What changed in a watched folder is the folder's, not a source of its own; a watched
            # folder itself may be here to be remembered (its catch-up failed, and is tried again).
            report = self._update_index(paths, only=True, empty_kept=kept,
                                        remember=[path for path in paths if path in roots])
        except QAError as exc:
            self._failed(paths, exc)
            return None
        self._caught_up(paths)
        self._came_back_empty -= set(refilled)
        self._log_report(report, time.perf_counter() - started)
        return report

    def _failed(self, paths: Iterable[str], exc: QAError, kept: Iterable[str] = ()) -> None:
        """An update of `paths` failed: said, and tried again at the next change or, unless the
        index is damaged (only `qa index --rebuild` mends that), on a timer."""
        self._pending |= set(paths)
        self._pending_kept |= set(kept)
        if isinstance(exc, (IndexCorruptError, IndexMismatchError)):  # only a rebuild mends these
            self._retry_at = None
            self.log(f"{_clock()} update failed: {exc}")
            return
        wait = self._retry_wait
        self._retry_at = time.monotonic() + wait
        self._retry_wait = min(2 * wait, RETRY_LONGEST_S)
        self.log(f"{_clock()} update failed: {exc} (tried again in {wait:.0f} s, or at the next change)")

    def _caught_up(self, paths: Sequence[str]) -> None:
        """`paths` were indexed: what was pending under them is done, and what is no longer under a
        watched folder (forgotten, or gone: its catch-up reads it when it is back) is let go; with
        nothing pending, the timer too."""
        def still_pending(path: str) -> bool:
            return not path_is_under(path, paths) and path_is_under(path, self.roots)

        self._pending = set(filter(still_pending, self._pending))
        self._pending_kept = set(filter(still_pending, self._pending_kept))
        if not self._pending:
            self._retry_at, self._retry_wait = None, RETRY_FIRST_S

    def _update_index(self, paths: Sequence[str] | None, **options: Any) -> UpdateReport:
        """`qa.indexer.update_index` on this watcher's index, `updating` while it runs."""
        from qa.indexer import update_index

        self.updating = True
        try:
            report = update_index(self.location, paths, embedder=self.embedder, lock_timeout=None,
                                  progress=self._notes, **options)
        except KeyboardInterrupt:
            raise  # still `updating`: the Ctrl-C stopped this one part-way (qa.cli says so)
        except BaseException:
            self.updating = False
            raise
        self.updating = False
        return report

    def start(self) -> None:
        """Watch in a background thread (for `qa serve --watch`); return once the folders are watched
        and the index has caught up with them. A failure before then is raised here."""
        ready = threading.Event()
        failure: list[BaseException] = []

        def watch_in_background() -> None:
            try:
                self.run(on_ready=lambda roots: ready.set())
            except Exception as exc:  # the server goes on answering from the last update
                if not ready.is_set():
                    failure.append(exc)
                else:
                    self.log(f"{_clock()} watching stopped: {type(exc).__name__}: {exc}")
            finally:
                ready.set()

        self._thread = threading.Thread(target=watch_in_background, name="qa-watch", daemon=True)
        self._thread.start()
        ready.wait()
        if failure:
            raise failure[0]

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _existing_roots(self) -> list[str]:
        """PATHS and the index's remembered sources (read again now) that exist now. When the
        index cannot be read, the folders known before are kept."""
        sources = self._sources()
        if sources is not None or not self._known:
            self._known = list(dict.fromkeys([*self.paths, *(sources or [])]))
        return [root for root in self._known if os.path.exists(root)]

    def _sources(self) -> list[str] | None:
        from qa.stores import read_sources

        try:
            return read_sources(self.location)
        except QAError:  # no index yet (the catch-up builds it), or one another process holds
            return None

    def _log_report(self, report: UpdateReport, seconds: float, always: bool = False) -> None:
        from qa.indexer import GONE_REASONS

        if report.changed_anything:
            self.updates += 1
        if report.changed_anything or always:
            self.log(update_line(report, seconds))
        for skipped in report.skipped:
            # A watched folder that went is said once, by _say_gone, as what watching does about it.
            if skipped.path in self.roots and skipped.reason in GONE_REASONS:
                continue
            said = (skipped.path, skipped.reason, _stamp(skipped.path))
            if said not in self._said_skipped:  # once, until the file changes or its reason does
                if len(self._said_skipped) >= SAID_SKIPPED_KEPT:  # a watch of months: start over
                    self._said_skipped.clear()
                self._said_skipped.add(said)
                self.log(f"{_clock()} skipped {skipped.path}: {skipped.reason}")


def _stamp(path: str) -> tuple[int, int] | None:
    """(size, mtime in ns) of `path`, or None when it cannot be read."""
    try:
        facts = os.stat(path)
    except OSError:
        return None
    return facts.st_size, facts.st_mtime_ns


class _LoggedNotes(SilentProgress):
    """An update's notes, each logged with the time; its bars are lines (a watcher logs lines): one
    every PROGRESS_EVERY_S of a long phase, so a first catch-up of thousands of files is not silent."""

    def __init__(self, log: Log) -> None:
        self.log = log
        self._phase, self._total, self._done, self._said = "", 0, 0, 0.0

    def start(self, description: str, total: int) -> None:
        self._phase, self._total, self._done, self._said = description, total, 0, time.monotonic()

    def advance(self, amount: int = 1) -> None:
        self._done += amount
        if amount and self._total and time.monotonic() - self._said >= PROGRESS_EVERY_S and self._done < self._total:
            self.log(f"{_clock()} {self._phase.lower()}: {self._done:,} of {self._total:,}")
            self._said = time.monotonic()

    def note(self, message: str) -> None:
        self.log(f"{_clock()} {message}")


def update_line(report: UpdateReport, seconds: float) -> str:
    """One log line for an update: ``12:03:04 3 added, 1 changed, 0 removed; 9 chunks embedded; 120 documents (0.8 s)``."""
    return (f"{_clock()} {report.added} added, {report.changed} changed, {report.removed} removed; "
            f"{counted(report.chunks_embedded, 'chunk')} embedded; {counted(report.documents, 'document')}, "
            f"{counted(report.chunks, 'chunk')} ({seconds:.1f} s)")


def batch_paths(events: Iterable[tuple[bool, str]], roots: Sequence[str]) -> list[str]:
    """What one update must look at for a batch of (deleted, path) events: each new or changed file,
    and the folder of each deleted one, inside `roots`; a file inside a folder already named is dropped.

    ``[(False, "/n/a.txt"), (True, "/n/b.txt")] -> ["/n"]``
    """
    wanted: set[str] = set()
    for deleted, path in events:
        if not path_is_under(path, roots) or _in_hidden_folder(path, roots):
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


def _in_hidden_folder(path: str, roots: Sequence[str]) -> bool:
    """Whether `path` lies in a hidden folder inside the root that holds it: a notebook's
    .ipynb_checkpoints, a sync tool's old versions. A scan of the root skips those (qa.ingest), so
    the watcher does too; the root itself may lie in one (~/.local/news).

    >>> _in_hidden_folder("/n/.ipynb_checkpoints/a-checkpoint.md", ["/n"]), _in_hidden_folder("/.n/a.md", ["/.n"])
    (True, False)
    """
    hidden = False
    for root in roots:  # a hidden folder remembered inside another root is watched as that root
        if path_is_under(path, [root]) and path != root:
            folders = os.path.relpath(os.path.dirname(path), root).split(os.sep)
            if not any(folder.startswith(".") and folder != "." for folder in folders):
                return False
            hidden = True
    return hidden


def _is_article_event(change: object, path: str) -> bool:
    """Events worth an update: article files (not hidden, as the scan skips them, nor editors'
    backups, "story.txt~"), a folder moved or made inside, and any deletion, which may be a folder
    of articles. A name opening with "~" is an article to the scan, and so here."""
    import watchfiles

    name = os.path.basename(path)
    if name.startswith(".") or name.endswith("~"):
        return False
    if change == watchfiles.Change.deleted or name.lower().endswith(ARTICLE_SUFFIXES):
        return True
    # Only a folder's arrival: its modification (a file added inside) comes with the file's own event.
    return change == watchfiles.Change.added and os.path.isdir(path)


def _identities(roots: Sequence[str]) -> dict[str, tuple[int, int]]:
    """Each folder that is there now, by its device and inode: one made again is another (when
    not given the same inode back, which its deletion event says instead)."""
    found: dict[str, tuple[int, int]] = {}
    for root in roots:
        try:
            status = os.stat(root)
        except OSError:
            continue
        found[root] = (status.st_dev, status.st_ino)
    return found


def _clock() -> str:
    return time.strftime("%H:%M:%S")
