"""Bring an index up to date with its corpus: embed new and changed files, drop deleted ones.

Only files whose content hash changed are read, chunked and embedded again. Work is committed in
groups through the store's writer (`qa.stores.open_writer`), each group whole or not at all, so an
interrupted run keeps every group that landed and loses nothing that was there before.
"""

from __future__ import annotations

import os
import re
import shlex
import threading
import time
from collections.abc import Callable, Collection, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from stat import S_ISREG
from typing import TYPE_CHECKING, TypeVar

from qa.chunk import chunk_text, model_passage
from qa.config import ARTICLE_SUFFIXES, default_corpus
from qa.embed import Embedder, Passage
from qa.errors import ConfigError, IndexLockedError, IndexMismatchError, IndexWriteError, IngestError, QAError
from qa.ingest import (
    SkippedFile,
    article_heading,
    content_hash,
    discover_paths,
    is_article_name,
    max_file_bytes,
    read_article,
)
from qa.paths import path_is_under, typed_path, unstorable_name
from qa.progress import IndexProgress, SilentProgress
from qa.stores import backend, open_writer
from qa.stores.base import file_stamp
from qa.types import CommitGroup, DocumentRecord, IndexedArticle, Span, article_sentences

if TYPE_CHECKING:
    import numpy as np
    from filelock import BaseFileLock

    from qa.stores.base import StoreWriter
    from qa.stores.location import StoreLocation

T = TypeVar("T")

# Chunks embedded between two commits: small enough that an interrupted run keeps most of its
# work, large enough that rewriting the vector file is a small share of the time.
COMMIT_EVERY_CHUNKS = 2048
COMMIT_EVERY_ENV = "QA_COMMIT_EVERY_CHUNKS"
LOCK_FILE = ".writer.lock"
# Past this many changed or deleted files, their records are read in one pass over the index's
# documents rather than one lookup each.
MANY_RECORDS = 2000


@dataclass(frozen=True)
class UpdateReport:
    """What one `qa index` run did."""

    added: int = 0
    changed: int = 0
    removed: int = 0
    unchanged: int = 0
    chunks_embedded: int = 0
    sentences_embedded: int = 0
    documents: int = 0
    chunks: int = 0
    skipped: tuple[SkippedFile, ...] = ()
    # remembered folders not there now, or empty (a drive not mounted): their articles were kept
    missing_sources: tuple[str, ...] = ()
    kept: tuple[str, ...] = field(default=())  # indexed files that could not be read now and were kept
    forgotten: tuple[str, ...] = ()  # remembered sources forgotten (`qa index --forget`)
    rebuilt: bool = False  # every article embedded again (`qa index --rebuild`)

    @property
    def changed_anything(self) -> bool:
        return bool(self.added or self.changed or self.removed)


def writer_lock(index_dir: Path, timeout: float | None, progress: IndexProgress | None = None,
                name: str | None = None) -> BaseFileLock:
    """The lock that lets one process at a time write to an index; waits up to `timeout` seconds."""
    from filelock import FileLock, Timeout

    index_name = name or index_dir
    lock = FileLock(str(index_dir / LOCK_FILE))
    try:
        lock.acquire(timeout=0)
        return lock
    except Timeout:
        pass
    except OSError as exc:  # another user's index, a read-only disk
        raise ConfigError(
            f"cannot update the index in {index_name}: {exc.strerror or exc}; an index this user may not "
            "write can still be searched (`qa ask`, `qa search`, `qa chat --no-update`)"
        ) from exc
    if timeout == 0:
        raise IndexLockedError(f"another qa process is updating the index in {index_name}")
    if progress is not None:
        progress.note(f"waiting for another qa process to finish updating {index_name} …")
    started = time.monotonic()
    try:
        lock.acquire(timeout=-1 if timeout is None else timeout)
    except Timeout as exc:
        raise IndexLockedError(
            f"another qa process is still updating the index in {index_name}; try again when it is done"
        ) from exc
    if progress is not None:  # a log that said "waiting" and nothing more looked hung
        progress.note(f"the other update finished after {time.monotonic() - started:.1f} s; going on")
    return lock


def location_writer_lock(
    location: StoreLocation, timeout: float | None, progress: IndexProgress | None = None
) -> BaseFileLock:
    """`writer_lock` for the store at `location`, its folder made first; another program's folder
    is refused before anything (the folder, the lock file) is made in it."""
    backend(location.kind).refuse_another_programs(location)
    state_dir = location.state_dir()
    try:
        state_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        # A parent that is a file, a read-only disk, /proc: say where, in one line.
        raise ConfigError(f"cannot make the index folder {state_dir}: {exc.strerror or exc}; pass --index DIR") from exc
    # One writer at a time. For a Milvus server this only orders writers on this machine.
    return writer_lock(state_dir, timeout, progress, location.describe())


def update_index(
    location: Path | StoreLocation,
    paths: Sequence[str | os.PathLike[str]] | None = None,
    *,
    embedder: Embedder | None = None,
    rebuild: bool = False,
    only: bool = False,
    progress: IndexProgress | None = None,
    lock_timeout: float | None = None,
    forget: Sequence[str | os.PathLike[str]] = (),
    empty_kept: Sequence[str] = (),
    remember: bool | Collection[str] = True,
) -> UpdateReport:
    """Index `paths` (added to the index's remembered sources: all of them, none with `remember`
    False, or those of them in `remember`) and every source it already has.

    With `forget`, those remembered folders or files are forgotten instead, nothing else looked
    at: their articles leave the index and later updates no longer scan them (a folder renamed,
    a drive that is not coming back).

    With `only`, just `paths` are looked at: the other sources are not scanned, so adding today's
    files to a large index costs what those files cost. A path inside a remembered source is not
    remembered again. A remembered folder among them that is empty though articles were indexed
    from it is taken at its word (its files were seen to go), unless it is in `empty_kept`: then
    its articles are kept, as a plain update keeps them (a drive's mount point with the drive not
    mounted; `qa watch` asks so of a folder that came back).

    A write that fails (a full disk, a read-only or failing one) raises IndexWriteError: what was
    committed before stays, and the same update run again goes on from there.

    `location` is a local index folder or a store (`qa.stores.location.StoreLocation`); `embedder`
    may be any object with Embedder's methods (`qa.distributed.RayEmbedder` spreads the work over Ray).
    """
    from qa.stores.location import as_location

    if only and (rebuild or not paths):
        raise ValueError("only=True updates the given paths alone: it needs paths and cannot rebuild")
    if forget and (rebuild or only or paths):
        raise ValueError("forget is done alone: no paths, only or rebuild with it")
    location = as_location(location)
    progress = progress or SilentProgress()
    if forget:
        # Nothing is embedded: the writer is opened as the index was built (its manifest read
        # under the lock below), and an index that is not there is said to be before anything (a
        # folder, a lock file) is made for it. An old format is upgraded under the lock too.
        try:
            backend(location.kind).read_manifest(location)
        except IndexMismatchError:
            pass  # an old format to upgrade; any other mismatch the read under the lock says again
    lock = location_writer_lock(location, lock_timeout, progress)
    try:
        if forget:
            built = backend(location.kind).read_manifest(location, upgrade=True)
            writer = open_writer(location, built.model, built.dimension, built.backend, False)
            try:
                return _forget(writer, forget)
            finally:
                writer.close()
        embedder = embedder or Embedder()
        try:
            writer = open_writer(location, embedder.name, embedder.dimension, embedder.backend, rebuild)
            try:
                return _update(writer, paths, embedder, rebuild, only, progress, empty_kept, remember)
            finally:
                writer.close()
        except Exception as exc:
            failure = write_failure(exc, location.state_dir())
            if failure is None:
                raise
            raise IndexWriteError(f"cannot write the index at {location.describe()}: {failure}") from exc
    finally:
        lock.release()


_OUT_OF_SPACE = ("no space left on device", "disk is full", "disk quota exceeded")
_WRITE_FAULTS = ("read-only file system", "readonly database", "disk i/o error", "input/output error",
                 "write error", "file too large")


def write_failure(exc: BaseException, index_folder: Path) -> str | None:
    """What to tell the user when `exc` is the index's disk refusing a write, or None when it is
    not one.

    The local store writes through three libraries that each say it their own way: an OSError
    (ENOSPC) with the file's name, SQLite's OperationalError ("database or disk is full") and
    FAISS's RuntimeError ("write error in …: No space left on device"). Nothing else is read for
    it: a QAError says its own cause, and another disk's (the model cache's, a Ray worker's) is
    not this index's."""
    import errno
    import sqlite3

    if isinstance(exc, OSError):
        named = exc.filename and path_is_under(os.path.abspath(os.fsdecode(exc.filename)), [str(index_folder)])
        if not named:
            return None
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            return _FULL
        if exc.errno in (errno.EROFS, errno.EIO, errno.EFBIG):
            return f"the disk refused the write ({exc.strerror}); the index keeps its last completed update"
        return None
    if not isinstance(exc, (sqlite3.OperationalError, RuntimeError)) or isinstance(exc, QAError):
        return None
    said = str(exc).lower()
    if any(words in said for words in _OUT_OF_SPACE):
        return _FULL
    if any(words in said for words in _WRITE_FAULTS):
        # FAISS ends its C++ message with the system's reason: "… 299918 != 552960 (File too large)".
        bracketed = re.search(r"\(([^()]+)\)$", str(exc).strip())
        reason = bracketed.group(1) if isinstance(exc, RuntimeError) and bracketed else str(exc).splitlines()[0][:200]
        return f"the disk refused the write ({reason}); the index keeps its last completed update"
    return None


_FULL = "its disk is full; free some space and run the same command again (the index keeps its last completed update)"


def _update(
    writer: StoreWriter,
    paths: Sequence[str | os.PathLike[str]] | None,
    embedder: Embedder,
    rebuild: bool,
    only: bool,
    progress: IndexProgress,
    empty_kept: Sequence[str] = (),
    remember: bool | Collection[str] = True,
) -> UpdateReport:
    given = [typed_path(p) for p in (paths or [])]
    # A path the index could not record is reported, not remembered (nor looked up: the store
    # could not hold it as a query parameter either).
    unstorable = [SkippedFile(p, reason) for p in given if (reason := unstorable_name(p))]
    if unstorable:
        left_out = {s.path for s in unstorable}
        given = [p for p in given if p not in left_out]
    # A path given now that is not there (a typo) is reported as skipped, not remembered as a source.
    not_there = [p for p in given if not os.path.exists(p)]
    present = [p for p in given if p not in not_there]
    known_sources = writer.sources()
    known_real = [os.path.realpath(source) for source in known_sources]
    # Each remembered folder and its real path, in the order a scan walks them.
    scanned_folders = sorted(zip(known_sources, known_real))
    # A file named now that is not there but is indexed was deleted: it goes, as a deleted file
    # in a folder does (`qa index --only FILE` after removing FILE). A folder named that is not
    # there is kept, as an unplugged drive is. It is looked up under the name a scan gives it
    # too (typed by its real path, or through a link to a remembered folder).
    indexed_as = {p: _scan_name(os.path.realpath(p), scanned_folders) or p for p in not_there}
    named_stamps = writer.file_stamps(sorted({*not_there, *indexed_as.values()})) if not_there else {}
    deleted_named = list(dict.fromkeys(
        name for p in not_there for name in (p, indexed_as[p]) if name in named_stamps
    ))
    not_there = [p for p in not_there if p not in named_stamps and indexed_as[p] not in named_stamps]
    # Remembered for later updates: what no remembered folder's scan reaches (a folder linked into
    # one is remembered, as its drive may be unplugged), and not a file that is no article (a
    # .docx, said to be skipped now), which each update would skip again. Not a link to a
    # remembered folder or to what its scan reaches in it, nor a real path that a remembered link
    # reaches: the scan names those files, and a scan of the path typed too would index them
    # again under its names. Nor a file inside a remembered folder reached through a link in it
    # (~/news/archive -> /mnt/archive): the folder's scan reaches it by that name, and remembered,
    # the file was a source of its own, said to be "not there" once deleted. Only those in
    # `remember` when it names some (qa watch: its own folders, not what changed in them).
    real_of = {p: os.path.realpath(p) for p in present}
    textually = [(source, source) for source in known_sources]
    may_remember = None if remember is True else set() if remember is False else {typed_path(p) for p in remember}
    new_sources = [
        p for p in present
        if not (path_is_under(p, known_sources) and path_is_under(real_of[p], known_real))
        and _scan_name(real_of[p], scanned_folders) is None
        and (os.path.isdir(p) or (is_article_name(os.path.basename(p)) and _scan_name(p, textually) is None))
        and (may_remember is None or p in may_remember)
    ]
    if only:
        roots = sorted(set(present) | set(deleted_named))
    else:
        roots = sorted(set(known_sources) | set(present) | set(deleted_named))
    if not roots and not paths:
        # The bundled articles are the first index's, not a fallback for one whose folders are
        # gone (its last named file deleted, its catalog lost): that one is told to name them.
        if writer.existed and rebuild:
            raise ConfigError("the index remembers no folders to rebuild from; name them: qa index PATH --rebuild")
        if writer.existed:
            progress.note("the index remembers no folders of articles; add one with `qa index PATH`")
        else:
            roots = [str(p) for p in default_corpus()]
            new_sources = list(roots)
            # Said: `qa index --index NEWDIR` with the folder forgotten once built the samples silently.
            progress.note(f"no folder named: indexing the bundled sample articles ({', '.join(roots)}); "
                          "index yours with `qa index PATH`")
    present_roots = [r for r in roots if os.path.exists(r)]
    # The folders are walked beside the read of the stamps (size and mtime) of the files this run
    # may touch: the store's part of that read lets the walk's thread run (100,000 files: 0.07 s
    # less). A scan that finds nothing changed reads no more of the store than these stamps.
    # A file reached through a path typed now (a link, or a real path a remembered link reaches),
    # which a remembered folder's scan reaches too, is looked at under the name that scan gives
    # it, whichever was walked first (with --only the folder is not walked at all). A scan of the
    # remembered folders alone names every file by them: the walk is not asked for real names then.
    renaming = only or not set(present_roots) <= set(known_sources)
    walk = _in_background(discover_paths, present_roots + not_there, renaming)
    # With --only, a folder typed that a scan names otherwise (a link to a remembered folder, or
    # its real path where a link to it is remembered) is looked at under the scan's name: the
    # files gone from it are gone from there (they were kept, not being under the name typed).
    aliases = sorted({
        name for root in present_roots
        if only and os.path.isdir(root) and (name := _scan_name(real_of[root], scanned_folders)) not in (None, root)
    })
    all_facts = writer.file_stamps(roots + aliases if only else None)
    files, skipped, stats, real_names = walk.result()
    # With --only, the records of files so renamed are read with the roots'.
    record_paths = list(roots) + aliases
    if renaming and scanned_folders:
        files, scan_folders = _scan_names(files, real_names, scanned_folders, only)
        scan_folders = [folder for folder in scan_folders if not path_is_under(folder, aliases)]
        if only and scan_folders:
            all_facts.update(writer.file_stamps(scan_folders))
            record_paths += scan_folders
    facts = {} if rebuild else all_facts
    # A file named as a source that is gone was deleted, and so was a remembered folder inside
    # another that is there (that one's scan shows its files gone): both are forgotten. A folder
    # that is gone on its own may be an unplugged drive: what was indexed from it is kept.
    # A remembered folder that is there but empty, though articles were indexed from it, is most
    # often a drive's mount point with the drive not mounted (or a sync not yet done): its articles
    # are kept as a missing folder's are, not dropped as deleted (Syncthing stops syncing such a
    # folder for the same reason). Deleting them all is said with `qa index --forget`. Not when the
    # folder is named to be looked at now (`--only`, `/add`, `qa watch` after a deletion there): its
    # files were seen to go. A watched folder that came back is not one (`empty_kept`).
    kept = {typed_path(p) for p in empty_kept}
    emptied = [
        r for r in present_roots
        if (not only or r in kept) and r in known_sources and _empty_folder(r) and _holds_any(r, all_facts)
    ]
    present_roots = [r for r in present_roots if r not in emptied]
    deleted_file_sources = [
        r for r in roots if r not in present_roots and r not in emptied
        and (r in all_facts or _deleted_inside(r, present_roots))
    ]
    missing_roots = tuple(r for r in roots if r not in present_roots and r not in deleted_file_sources)
    if rebuild and missing_roots:
        lost = {root: sum(1 for path in all_facts if path_is_under(path, [root])) for root in missing_roots}
        stranded = [(root, count) for root, count in lost.items() if count]
        if stranded:
            root, count = stranded[0]
            state = "is empty now" if root in emptied else "is not there now"
            raise ConfigError(
                f"cannot rebuild: {root} {state}, and the {count} article{'s' if count != 1 else ''} "
                f"indexed from it could not be read again; connect it again, or forget it first with `qa index --forget {shlex.quote(root)}`"
            )
    for root in missing_roots:
        if root in emptied:
            progress.note(
                f"{root} is empty now (a drive not mounted?); its indexed articles are kept "
                f"(if they were deleted, `qa index --forget {shlex.quote(root)}` drops them)"
            )
        else:
            progress.note(f"{root} is not there now; its indexed articles are kept (`qa index --forget {shlex.quote(root)}` drops them)")
    skipped = unstorable + [s for s in skipped if s.path not in missing_roots]
    # A folder named now in which the walk found no article at all is most often the wrong folder,
    # or one of files qa does not read (.docx): "0 added" alone would look like success. Not one
    # that held indexed articles: its files went (its last one moved out under `qa watch`), and
    # the report says how many were removed.
    # Looked for in the folder itself, not in the walk's list: the walk lists a file once, under
    # the first name it reached it by, and scanning that list once per named folder would cost
    # a scan of 100,000 files as much again for each.
    reported = {s.path for s in skipped}
    for folder in dict.fromkeys(present):
        if (folder not in emptied and folder not in reported and os.path.isdir(folder)
                and not holds_article(folder) and not _holds_any(folder, all_facts)):
            progress.note(f"{folder} holds no articles: qa reads {', '.join(ARTICLE_SUFFIXES)} files")
    suspects, unchanged = _changed_files(files, stats, facts, progress)

    # Gone: indexed files under a root we scanned that the walk did not find there as articles,
    # unless it could not look (a folder it was refused, whose files' text stays) or they are
    # another remembered folder's, one that is not there (a drive linked inside, unplugged).
    scanned = [r for r in roots if r not in missing_roots] + aliases
    unlisted = [s.path for s in skipped if s.reason not in GONE_REASONS]
    found = set(files)
    gone = [
        path for path in sorted(all_facts.keys() - found)
        if (path_is_under(path, scanned) or path in deleted_file_sources)
        and not path_is_under(path, [*unlisted, *missing_roots]) and _no_longer_there(path, found)
    ]
    # A folder linked inside a scanned one whose link leads nowhere now is a drive unplugged (or
    # a share not mounted): its articles are kept, as a remembered folder's are. A link removed,
    # or one to a file, takes its articles with it.
    unplugged: dict[str, int] = {}
    for path in gone:
        if (link := _broken_link_above(path, scanned)) is not None:
            unplugged[link] = unplugged.get(link, 0) + 1
    if unplugged and rebuild:
        link, count = min(unplugged.items())
        raise ConfigError(
            f"cannot rebuild: {link} links to a folder that is not there now, and the {count} "
            f"article{'s' if count != 1 else ''} indexed from it could not be read again; connect it again, "
            "or delete the link to drop them"
        )
    if unplugged:
        gone = [path for path in gone if not path_is_under(path, list(unplugged))]
        for link, count in sorted(unplugged.items()):
            progress.note(f"{link} links to a folder that is not there now (a drive unplugged?); its "
                          f"{count} indexed article{'s are' if count != 1 else ' is'} kept (delete the link to drop "
                          f"{'them' if count != 1 else 'it'})")
    # The whole records only of the files that may have changed or went (all of them on a rebuild).
    in_play = [path for path, _ in suspects if path in all_facts] + gone
    if rebuild or len(in_play) > MANY_RECORDS:
        all_known = writer.documents(record_paths if only else None)
    else:
        all_known = writer.documents(in_play) if in_play else {}
    known = {} if rebuild else all_known
    plan = _plan_changes(suspects, known, skipped, progress)
    plan.unchanged += unchanged
    if rebuild:
        # An update keeps the earlier text of an indexed file it cannot read now (a download cut
        # short, a file emptied); a rebuild would drop it, as it would a missing folder's articles.
        unread = [s for s in plan.skipped
                  if s.path in all_known and s.reason not in GONE_REASONS and os.path.lexists(s.path)]
        if unread:
            first_unread = unread[0]
            more = f" (and {len(unread) - 1} more)" if len(unread) > 1 else ""
            raise ConfigError(
                f"cannot rebuild: {first_unread.path} could not be read again ({first_unread.reason}){more}, and the "
                "text indexed from it would be lost; mend the file, or delete it to drop its article, then rebuild"
            )
    # A file named now that could not be read as an article (binary, not text, empty; a FIFO or
    # a device, which is no file at all) is reported, not remembered: every update would skip it
    # again, as it would a .docx. Only a folder is remembered whatever it holds now.
    unread = {s.path for s in plan.skipped}
    new_sources = [p for p in new_sources if not (p in unread and not os.path.isdir(p))]
    removed = list(all_known.values()) if rebuild else [known[path] for path in gone]

    progress.start("Chunking", len(plan.to_index))
    chunked: list[IndexedArticle] = []
    for article, size, mtime_ns in plan.to_index:
        chunks = chunk_text(article.doc_id, article.text, embedder.count_tokens)
        chunked.append(IndexedArticle(article, tuple(chunks), size, mtime_ns))
        progress.advance()

    replaced_ids = [all_known[item.article.path].doc_id for item in chunked if item.article.path in all_known]
    groups = _commit_groups(chunked) if not rebuild else [chunked]
    total_chunks = sum(len(item.chunks) for item in chunked)
    total_sentences = sum(len(article_sentences(item)) for item in chunked)
    progress.start("Embedding", total_chunks)
    unchanged_index = (
        writer.committed
        and not (chunked or removed or plan.touched)
        and set(new_sources) <= set(known_sources)
        and not deleted_file_sources
    )
    if not groups and not unchanged_index:
        groups = [[]]  # nothing to embed, but removals, file facts or sources to commit
    pending_removals = [r.doc_id for r in removed]
    for group in groups:
        passages, owned = _passages(group)
        encoded = embedder.encode_passages(passages, progress=progress.advance) if passages else None
        embedded = encoded[0] if encoded is not None else None
        sentence_vectors = _article_sentence_vectors(group, owned, encoded[1]) if encoded is not None else None
        group_old = [
            all_known[item.article.path].doc_id for item in group if item.article.path in all_known
        ]
        drop_docs = sorted(set(group_old) | set(pending_removals))
        writer.commit(CommitGroup(
            group, drop_docs, embedded, sentence_vectors, new_sources, deleted_file_sources, list(plan.touched)
        ))
        pending_removals = []
        plan.touched.clear()
    writer.finish()

    documents, chunks = writer.counts()
    if rebuild:
        # Every article was embedded again; the counts say how the articles themselves changed
        # since the index was last built, a file gone since then counted as removed.
        before = {path: record.content_hash for path, record in all_known.items()}
        read_now = {item.article.path for item in chunked}
        added = sum(1 for item in chunked if item.article.path not in before)
        changed = sum(1 for item in chunked if before.get(item.article.path, item.article.content_hash) != item.article.content_hash)
        dropped = sum(1 for path in before if path not in read_now)
        unchanged = len(chunked) - added - changed
    else:
        added, changed = len(chunked) - len(set(replaced_ids)), len(set(replaced_ids))
        dropped, unchanged = len(removed), plan.unchanged
    return UpdateReport(
        added=added,
        changed=changed,
        removed=dropped,
        unchanged=unchanged,
        rebuilt=rebuild,
        chunks_embedded=total_chunks,
        sentences_embedded=total_sentences,
        documents=documents,
        chunks=chunks,
        skipped=tuple(plan.skipped),
        missing_sources=missing_roots,
        kept=tuple(plan.kept),
    )


# Skip reasons that say a path is gone rather than unreadable (qa.ingest._stat_failure).
GONE_REASONS = frozenset({"no such file or folder", "broken symlink"})


def _forget(writer: StoreWriter, forget: Sequence[str | os.PathLike[str]]) -> UpdateReport:
    """Forget remembered sources: each path is one, or holds some. Their articles are removed."""
    sources = writer.sources()
    dropped: list[str] = []
    for raw in forget:
        path = typed_path(raw)
        # Each source by what it names (typed_path leaves a plain absolute one as it is): one an
        # earlier qa remembered with ".." in it is never matched by its text ("lnk/../news" is not
        # inside "lnk"), whichever name is typed, the one `qa stats` shows or the plain one.
        held = [s for s in sources if path_is_under(typed_path(s), [path])]
        if held:
            dropped += held
            continue
        around = [s for s in sources if path_is_under(path, [s])]
        if around:
            raise ConfigError(
                f"{path} is inside {around[0]}, which qa index keeps up to date: remove the files there, "
                f"or forget {around[0]}"
            )
        remembered = ", ".join(sources) if sources else "none"
        raise ConfigError(f"{path} is not a folder or file the index remembers (it remembers: {remembered})")
    dropped = sorted(set(dropped))
    # A file under a forgotten folder that another remembered folder also holds stays.
    kept_roots = [s for s in sources if s not in dropped]
    going = {p: r for p, r in writer.documents(dropped).items() if not path_is_under(p, kept_roots)}
    writer.commit(CommitGroup(drop_docs=sorted(r.doc_id for r in going.values()), remove_sources=dropped))
    writer.finish()
    documents, chunks = writer.counts()
    return UpdateReport(removed=len(going), documents=documents, chunks=chunks, forgotten=tuple(dropped))


def _scan_name(real: str, scanned_folders: Sequence[tuple[str, str]]) -> str | None:
    """The name a scan of the remembered folders gives the file or folder whose real path is
    `real`, or None when no scan reaches it: within the first of `scanned_folders` (each a
    remembered folder and its real path, in the order a scan walks them) whose real path holds it
    with no hidden folder on the way, the folder's name and the path inside it (a remembered
    folder may itself be a link). ``("/news/a.txt", [("/news", "/news")]) -> "/news/a.txt"``."""
    for folder, folder_real in scanned_folders:
        if path_is_under(real, [folder_real]):
            inside = real[len(folder_real):].lstrip(os.sep)
            if not any(part.startswith(".") for part in inside.split(os.sep) if part):
                return os.path.join(folder, inside) if inside else folder
    return None


def _scan_names(
    files: list[str], real_names: dict[str, str], scanned_folders: Sequence[tuple[str, str]], only: bool
) -> tuple[list[str], list[str]]:
    """`files` named as a scan of the remembered folders names them (`_scan_name`; `real_names`
    holds the real path of each found through a link), and the topmost folders of the files so
    named. Without `only` those folders were walked too, and a file found under one of them has
    its scan's name already: only those found under a path typed now are named anew (a link to a
    remembered folder, walked before it, named its articles twice). With `only` they were not
    walked, and `--only LINK` added an article again under the link's name. Stamps are read by
    folder: a folder reached through a link names each of its files so, and a store query per
    file would cost."""
    remembered = [folder for folder, _ in scanned_folders]
    named, folders = [], set()
    for path in files:
        renamed = only or not path_is_under(path, remembered)
        scanned = _scan_name(real_names.get(path, path), scanned_folders) if renamed else None
        if scanned is None or scanned == path:
            named.append(path)
            continue
        named.append(scanned)
        folders.add(os.path.dirname(scanned))
    topmost: list[str] = []
    for folder in sorted(folders):  # a folder's own subfolders sort after it
        if not (topmost and path_is_under(folder, topmost[-1:])):
            topmost.append(folder)
    return list(dict.fromkeys(named)), topmost


def _no_longer_there(path: str, found: set[str]) -> bool:
    """Whether an indexed file that the walk did not find is no longer an article at `path`:
    deleted, its folder deleted or renamed, a folder now, or a file the walk `found` under its
    real name (it was indexed through a link). False when `path` cannot be looked at (a folder
    without permission, a share whose credentials ran out), or is a file the walk does not go to
    (one in a hidden folder, named with --only): what is not known to be gone is kept."""
    try:
        mode = os.stat(path).st_mode
    except (FileNotFoundError, NotADirectoryError):
        return True
    except OSError:
        return False
    return not S_ISREG(mode) or os.path.realpath(path) in found


def _empty_folder(path: str) -> bool:
    """Whether `path` is a folder with nothing in it at all (an unreadable one is not: the walk
    reports that one, and keeps its articles)."""
    try:
        with os.scandir(path) as entries:
            return next(entries, None) is None
    except OSError:
        return False


def holds_article(folder: str) -> bool:
    """Whether an article file is anywhere under `folder` (links followed, as the walk does); it
    stops at the first found. A subfolder it cannot open counts as holding one: the walk says
    why it was skipped."""
    unreadable: list[OSError] = []
    seen: set[str] = set()
    for root, folders, names in os.walk(folder, onerror=unreadable.append, followlinks=True):
        real = os.path.realpath(root)
        if real in seen:  # a link back up the tree: walked already
            folders[:] = []
            continue
        seen.add(real)
        if unreadable or any(is_article_name(name) for name in names):
            return True
    return bool(unreadable)


def _holds_any(root: str, stamps: dict[str, object]) -> bool:
    """Whether any indexed file of `stamps` is under `root`."""
    return any(path_is_under(path, [root]) for path in stamps)


def _broken_link_above(path: str, roots: Sequence[str]) -> str | None:
    """The folder above `path`, inside one of `roots`, that is a link leading nowhere, if any."""
    folder = os.path.dirname(path)
    while path_is_under(folder, roots) and folder not in roots:
        if os.path.islink(folder) and not os.path.exists(folder):
            return folder
        folder = os.path.dirname(folder)
    return None


def _deleted_inside(root: str, present_roots: Sequence[str]) -> bool:
    """Whether a remembered folder that is not there was deleted from a folder that is: the
    scan of that one shows its files gone. Not when it was reached through a link (a drive
    linked into the folder, unplugged), which is kept as an unplugged drive is."""
    if os.path.lexists(root):
        return False  # a broken link
    parent = os.path.dirname(root)
    return path_is_under(root, present_roots) and os.path.realpath(parent) == parent


def _in_background(function: Callable[..., T], *args: object) -> Future[T]:
    """`function(*args)` in a daemon thread: a Ctrl-C while it runs ends `qa index` at once, where a
    pool's worker would be waited for (a walk of a million files takes seconds). It only reads, so
    leaving it to finish unseen loses nothing."""
    future: Future[T] = Future()

    def run() -> None:
        if future.set_running_or_notify_cancel():
            try:
                future.set_result(function(*args))
            except BaseException as exc:  # handed to whoever asks for the result
                future.set_exception(exc)

    threading.Thread(target=run, name="qa-walk", daemon=True).start()
    return future


def _passages(group: Sequence[IndexedArticle]) -> tuple[list[Passage], list[list[Span]]]:
    """What the model reads for a commit group: each chunk led by its article's headline, with the
    spans (in that text) of the sentences whose vectors it gives; and those sentences' spans in
    the article. A sentence in two overlapping chunks is read from the first.
    """
    passages: list[Passage] = []
    owned: list[list[Span]] = []
    for item in group:
        heading = article_heading(item.article.title, item.article.path)
        taken: set[Span] = set()
        for chunk in item.chunks:
            mine = [span for span in map(tuple, chunk.sentences) if span not in taken]
            taken.update(mine)
            text, _, spans = model_passage(heading, chunk.text, chunk.start, mine)
            passages.append((text, spans))
            owned.append(mine)
    return passages, owned


def _article_sentence_vectors(
    group: Sequence[IndexedArticle], owned: list[list[Span]], per_passage: list[np.ndarray]
) -> list[np.ndarray]:
    """Each article's sentence vectors in `article_sentences` order, gathered from its chunks."""
    import numpy as np

    dimension = per_passage[0].shape[1] if per_passage else 0
    out = []
    passage = 0
    for item in group:
        by_span: dict[Span, np.ndarray] = {}
        for _chunk in item.chunks:
            by_span.update(zip(owned[passage], per_passage[passage]))
            passage += 1
        rows = [by_span[span] for span in article_sentences(item)]
        out.append(np.stack(rows) if rows else np.zeros((0, dimension), dtype=np.float32))
    return out


@dataclass
class _Plan:
    to_index: list[tuple] = field(default_factory=list)  # (Article, size, mtime_ns)
    touched: list[tuple[str, int, int]] = field(default_factory=list)
    skipped: list[SkippedFile] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    unchanged: int = 0


def _changed_files(
    files: list[str], stats: dict[str, os.stat_result], stamps: dict[str, str | None], progress: IndexProgress
) -> tuple[list[tuple[str, os.stat_result | None]], int]:
    """The files that may have changed since indexed, each with its stat (None if it failed), and
    how many surely did not: a stat per file (`stats` holds those the walk took), its size and
    modification time compared with the stamp the store keeps (qa.stores.base.settled_stamp).
    """
    progress.start("Reading", len(files))
    suspects: list[tuple[str, os.stat_result | None]] = []
    unchanged = 0
    for path in files:
        stat = stats.get(path)
        if stat is None:
            try:
                stat = os.stat(path)
            except OSError:
                suspects.append((path, None))
                continue
        stamp = stamps.get(path)
        if stamp is not None and stamp == file_stamp(stat.st_size, stat.st_mtime_ns):
            unchanged += 1
        else:
            suspects.append((path, stat))
    progress.advance(unchanged)
    return suspects, unchanged


def _plan_changes(
    suspects: list[tuple[str, os.stat_result | None]], known: dict[str, DocumentRecord],
    skipped: list[SkippedFile], progress: IndexProgress
) -> _Plan:
    """What to do with each file that may have changed: index it, record its new file facts (same
    content), or skip it with a reason (keeping what was indexed of it)."""
    plan = _Plan(skipped=list(skipped))
    for key, stat in suspects:
        record = known.get(key)
        path = Path(key)
        try:
            if stat is None:
                stat = path.stat()  # raises the error the first stat met
            data = path.read_bytes() if stat.st_size <= max_file_bytes(path) else None
            if data is not None and record and content_hash(data) == record.content_hash:
                plan.unchanged += 1
                plan.touched.append((record.doc_id, stat.st_size, stat.st_mtime_ns))
                continue
            article = read_article(path, data)
            plan.to_index.append((article, stat.st_size, stat.st_mtime_ns))
        except (IngestError, OSError) as exc:
            reason = str(exc) if isinstance(exc, IngestError) else f"could not be read: {exc.strerror}"
            plan.skipped.append(SkippedFile(key, reason))
            if record is not None:
                plan.kept.append(key)
        finally:
            progress.advance()
    return plan


def _commit_groups(items: list[IndexedArticle]) -> list[list[IndexedArticle]]:
    groups: list[list[IndexedArticle]] = []
    current: list[IndexedArticle] = []
    size = 0
    limit = _commit_every()
    for item in items:
        current.append(item)
        size += len(item.chunks)
        if size >= limit:
            groups.append(current)
            current, size = [], 0
    if current:
        groups.append(current)
    return groups


def _commit_every() -> int:
    """Chunks per commit: $QA_COMMIT_EVERY_CHUNKS when set (the crash tests commit often), else the default."""
    try:
        return max(1, int(os.environ.get(COMMIT_EVERY_ENV, COMMIT_EVERY_CHUNKS)))
    except ValueError:
        return COMMIT_EVERY_CHUNKS
