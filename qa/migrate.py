"""Copy an index from one store to another without embedding anything again.

`qa index --from-store faiss:index/ --store milvus://host:19530/news` reads every document with
its chunks, chunk vectors and sentence vectors from the source and commits them to the target in
groups, through the same writer an update uses; the source is only read.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from contextlib import closing
from dataclasses import dataclass

from qa.errors import ConfigError, IndexCorruptError, IndexLockedError, QAError
from qa.indexer import COMMIT_EVERY_CHUNKS, location_writer_lock
from qa.progress import IndexProgress, SilentProgress
from qa.stores import open_store, open_writer
from qa.stores.base import StoreWriter
from qa.stores.location import StoreLocation
from qa.types import CommitGroup, ExportedDocument, article_sentences


# A file beside the store's writer lock that names the process of the copy holding it.
COPYING_FILE = "copying.pid"


def copy_under_way(target: StoreLocation) -> bool:
    """Whether a copy into `target` is running now: the process its COPYING_FILE names is alive
    and holds the writer lock. A copy that was killed left the file and let the lock go."""
    try:
        pid = int((target.state_dir() / COPYING_FILE).read_text())
        os.kill(pid, 0)
    except (OSError, ValueError):
        return False
    try:
        location_writer_lock(target, 0).release()
    except IndexLockedError:
        return True
    except QAError:  # a folder this user may not write: no copy of theirs runs there
        return False
    return False


@dataclass(frozen=True)
class MigrationReport:
    """What a copy moved."""

    source: str
    target: str
    documents: int
    chunks: int
    sentences: int
    # Documents the target held that the source does not: a copy adds to a store, it does not
    # empty it first, so a second copy of a changed index keeps what that index has since dropped.
    kept_in_target: int = 0


def migrate_store(source: StoreLocation, target: StoreLocation, progress: IndexProgress | None = None) -> MigrationReport:
    """Copy every document of `source` into `target`, which must be empty or hold the same model."""
    progress = progress or SilentProgress()
    if source.same_store(target):
        raise ConfigError("--from-store and --store name the same index; nothing to copy")
    try:
        reader = open_store(source)
    except QAError as exc:
        # A hint in it ("run `qa index` to upgrade it") is about the store copied from: the
        # command line names that one in it, not the target (qa.cli).
        exc.about_source = True
        raise
    try:
        unfinished = reader.unfinished_copies()
        if unfinished:
            # Its copy would look whole and lack what the copy into it did not bring.
            partial = ConfigError(
                f"the index copied from is an unfinished copy of {unfinished[0]} itself; finish that copy "
                f"first: `qa index --from-store {unfinished[0]} --store {source.argument()}`"
            )
            partial.about_source = True
            raise partial
        documents, total_chunks = reader.counts()
        manifest = reader.manifest
        sources = reader.sources()
        lock = location_writer_lock(target, None, progress)
        # Beside the lock, for `qa doctor`: which writer holds it is this copy (by its process).
        running = target.state_dir() / COPYING_FILE
        running.write_text(str(os.getpid()))
        try:
            # The target must be empty or hold vectors of the same model and encoder backend.
            writer = open_writer(target, manifest.model, manifest.dimension, manifest.backend, rebuild=False)
            try:
                # Closed here, not left to the collector: a generator suspended inside the
                # reader's snapshot would end it after the reader closed (a traceback on Ctrl-C).
                with closing(reader.export()) as exported:
                    copied = _copy(exported, writer, sources, documents, total_chunks, progress, source.argument())
                kept = sum(record.doc_id not in copied[3] for record in writer.documents().values())
                # The mark the first commit set goes with the last: a copy stopped before here
                # (Ctrl-C, a kill, a full disk) leaves it for `qa doctor` to name. Another
                # source's mark stays: this copy did not finish that one.
                writer.commit(CommitGroup(copy_finished=source.argument()))
                writer.finish()
            finally:
                writer.close()
        finally:
            running.unlink(missing_ok=True)
            lock.release()
    finally:
        reader.close()
    return MigrationReport(source.describe(), target.describe(), copied[0], copied[1], copied[2], kept)


def _copy(
    exported: Iterable[ExportedDocument], writer: StoreWriter, sources: list[str], documents: int, total_chunks: int,
    progress: IndexProgress, source: str,
) -> tuple[int, int, int, set[str]]:
    """Commit every exported document to `writer` in groups; the counts of documents, chunks and
    sentence vectors copied, and the ids of the documents."""
    import numpy as np

    progress.start("Copying", total_chunks)
    group: list[ExportedDocument] = []
    counts = [0, 0, 0]
    ids: set[str] = set()
    first = True

    def flush() -> None:
        nonlocal first, group
        if not group and not first:
            return
        items = [doc.item for doc in group]
        chunk_vectors = np.vstack([doc.chunk_vectors for doc in group]) if group else None
        writer.commit(CommitGroup(
            items,
            drop_docs=[doc.item.article.doc_id for doc in group],
            chunk_vectors=chunk_vectors,
            sentence_vectors=[doc.sentence_vectors for doc in group],
            add_sources=sources if first else [],
            copy_started=source if first else None,
        ))
        for doc in group:
            progress.advance(len(doc.item.chunks))
        first = False
        group = []

    size = 0
    for doc in exported:
        if len(doc.sentence_vectors) != len(article_sentences(doc.item)):
            # The writer pairs them by position: one missing would give every later sentence of
            # the article its neighbour's vector.
            damaged = IndexCorruptError(
                f"the index copied from holds {len(doc.sentence_vectors)} sentence vectors for the "
                f"{len(article_sentences(doc.item))} sentences of {doc.item.article.path}: it is damaged; "
                "build it again with `qa index --rebuild` and copy that"
            )
            damaged.about_source = True  # the fix is the source's (qa.cli names it)
            raise damaged
        group.append(doc)
        ids.add(doc.item.article.doc_id)
        counts[0] += 1
        counts[1] += len(doc.item.chunks)
        counts[2] += len(doc.sentence_vectors)
        size += len(doc.item.chunks)
        if size >= COMMIT_EVERY_CHUNKS:
            flush()
            size = 0
    flush()
    return counts[0], counts[1], counts[2], ids
