"""The local store: a versioned manifest, the SQLite catalog and a log of vector segment files.

Layout of an index folder::

    manifest.json          {"format_version": 5, "model": "all-MiniLM-L6-v2", "dimension": 384, ...}
    catalog.sqlite         documents, chunks, sentences, sources, keyword index, the live segments
                           and the chunks whose vectors are dead
    segment-000012.faiss   the vectors one commit added (or a merge of several); files the catalog
                           does not list are leftovers to delete

A writer saves a new segment file holding only the commit's new vectors, then commits the catalog
listing it (and marking the removed chunks' vectors dead): a process killed at any instant leaves
the last committed state. See qa.stores.local.segments for merging and search.
"""

from __future__ import annotations

import functools
import json
import os
import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from qa.errors import IndexCorruptError, IndexLockedError, IndexMismatchError, IndexMissingError
from qa.stores.base import (
    REBUILD_HINT,
    UNFINISHED_COPIES_KEY,
    Manifest,
    coverage_problems,
    index_stats,
    sentence_vector_problems,
    span_problem,
    unfinished_copies,
    unfinished_copy_problems,
    unit_length_problems,
    with_copies_marked,
)
from qa.stores.local.catalog import Catalog, SegmentRow, file_signature, fts_query, is_damage, unreadable_catalog
from qa.stores.local.keywords import KeywordIndex
from qa.stores.local.segments import AllowedIds, SegmentVectors, plan_merge, segment_path
from qa.stores.local.upgrade import UPGRADABLE_FORMAT, UPGRADE_HINT, upgrade_format_4
from qa.stores.local.vectors import FaissVectorStore
from qa.text import counted, keyword_stems, stems
from qa.types import (
    Article,
    ArticleMatch,
    ChunkRecord,
    CommitGroup,
    DocumentRecord,
    ExportedDocument,
    IndexedArticle,
    IndexStats,
    SearchFilters,
    Span,
)

if TYPE_CHECKING:
    import numpy as np

    from qa.stores.location import StoreLocation

MANIFEST_FILE = "manifest.json"
CATALOG_FILE = "catalog.sqlite"
# Articles' document ids kept in memory, at most: some 10 MB.
CACHED_ARTICLES = 100_000
# How many filters' admitted chunks a store keeps (LocalStore._allowed).
FILTERS_KEPT = 8


def load_manifest(index_dir: Path) -> Manifest:
    """The manifest of the index in `index_dir`, checked (`Manifest.from_json`)."""
    manifest = _read_manifest(index_dir)
    if manifest.format_version == UPGRADABLE_FORMAT:
        raise IndexMismatchError(
            f"the index of {index_dir / MANIFEST_FILE} has the old format {UPGRADABLE_FORMAT}; {UPGRADE_HINT}"
        )
    return manifest


def load_manifest_for_writing(index_dir: Path) -> Manifest:
    """`load_manifest`, after upgrading a format-4 index in place (qa.stores.local.upgrade); only a
    writer, holding the writer lock, calls this."""
    manifest = _read_manifest(index_dir)
    if manifest.format_version == UPGRADABLE_FORMAT:
        return upgrade_format_4(index_dir, manifest, index_dir / MANIFEST_FILE, index_dir / CATALOG_FILE)
    return manifest


def _read_manifest(index_dir: Path) -> Manifest:
    """The manifest, read once and checked, of the format this qa reads or the one it upgrades."""
    path = index_dir / MANIFEST_FILE
    if not path.is_file():
        if not (index_dir / CATALOG_FILE).exists():
            raise IndexMissingError(f"no index in {index_dir}: run `qa index PATH` to build one from your articles")
        raise IndexCorruptError(f"the index in {index_dir} has no {MANIFEST_FILE}; {REBUILD_HINT}")
    return Manifest.from_json(path.read_text(), str(path), "faiss", oldest=UPGRADABLE_FORMAT)


def refuse_another_programs_folder(index_dir: Path) -> None:
    """Raise ConfigError when `index_dir` holds a manifest.json that is not qa's: another program's
    folder, given as --index, whose file an index would overwrite. (Other files may stay beside an
    index: qa's own names are its only ones, and the folder may be a mount point's or hold a
    Milvus Lite store.)"""
    manifest = index_dir / MANIFEST_FILE
    try:
        # The one manifest reader (it raises ConfigError for another program's), at any format.
        Manifest.from_json(manifest.read_text(errors="replace"), str(manifest), "faiss", oldest=0)
    except (OSError, IndexCorruptError, IndexMismatchError):
        return  # none, unreadable, damaged or of another format: the writer says so, a rebuild mends it


def save_manifest(index_dir: Path, manifest: Manifest) -> None:
    path = index_dir / MANIFEST_FILE
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(manifest.to_json())
    os.replace(tmp, path)


class LocalStore:
    """A local index opened for reading: catalog plus the vectors of its committed segments."""

    # FAISS and SQLite both let go of the GIL, so the retriever runs the vector search in a
    # thread beside the keyword query (the vectors in memory are not touched by SQLite).
    concurrent_search = True
    # Searches are made over the chunks of the articles the filters admit (filtered_chunks).
    searches_within_filters = True

    def __init__(self, location: StoreLocation, manifest: Manifest, catalog: Catalog, vectors: SegmentVectors,
                 generation: int) -> None:
        self.location = location
        self.dir = location.index_dir
        self.manifest = manifest
        self.catalog = catalog
        self.vectors = vectors
        self.generation = generation
        self.keywords = KeywordIndex(catalog.connection)
        # The document id of each article, by its first chunk id, as read: an edited article is
        # removed and added with new chunk ids, so no commit makes one stale.
        self._article_documents: dict[int, str] = {}
        # The chunks of the last filters searched (_allowed), at the generation they were read at.
        self._filtered: dict[SearchFilters, AllowedIds] = {}
        self._filtered_generation = generation
        self._manifest_stamp = file_signature(self.dir / MANIFEST_FILE)  # as read by open(), or near enough

    @classmethod
    def open(cls, where: StoreLocation | Path | str) -> LocalStore:
        """Open the last committed state of the index at `where` (a location or its folder)."""
        from qa.stores.location import as_location

        location = as_location(where)
        index_dir = location.index_dir
        manifest = load_manifest(index_dir)
        catalog = Catalog.open(index_dir / CATALOG_FILE, mapped=True)
        try:
            generation, vectors = _load_committed(index_dir, manifest, catalog, None)
        except BaseException:
            catalog.close()
            raise
        return cls(location, manifest, catalog, vectors, generation)

    @contextmanager
    def reading(self) -> Iterator[None]:
        """Hold one committed state for a search, loading newer vectors first if a writer committed.

        Readers keep answering from the last good index while `qa index` runs, and see the new
        one once it lands.
        """
        if self.catalog.in_snapshot:
            yield
            return
        state = self.catalog.file_state()
        if state == "gone":
            # Removed while open (a server keeps its files open): what it still reads is not an index.
            raise IndexMissingError(f"no index in {self.dir} now: it was removed while open")
        manifest_stamp = file_signature(self.dir / MANIFEST_FILE)
        if manifest_stamp not in (None, self._manifest_stamp):
            # Rewritten: the index was built again in place (`qa index --rebuild --backend torch`),
            # with vectors of an encoder other than the one this process reads questions with.
            self._check_same_encoder(load_manifest(self.dir))
            self._manifest_stamp = manifest_stamp
        if state == "replaced" or self.catalog.changed_on_disk():
            self._open_catalog_again()
        try:
            yield from self._reading_committed()
        except sqlite3.DatabaseError as exc:
            if not self.catalog.read_without_locks:
                if not is_damage(exc):
                    raise
                # A page past the ones opening reads (a table's rows) is damaged.
                raise unreadable_catalog(self.catalog.path, exc) from exc
            # Read without locks (qa.stores.local.catalog._read_only), the catalog was rewritten
            # by its owner under this read: it is opened again for the next one.
            self._open_catalog_again()
            raise IndexLockedError(f"the index in {self.dir} changed while it was read; ask again") from exc

    def _reading_committed(self) -> Iterator[None]:
        for _attempt in range(20):
            with self.catalog.snapshot():
                if self.catalog.generation == self.generation:
                    yield
                    return
            self.generation, self.vectors = _load_committed(self.dir, self.manifest, self.catalog, self.vectors)
        raise IndexCorruptError(f"the index in {self.dir} kept changing while it was read; try again")

    def _open_catalog_again(self) -> None:
        """The catalog opened afresh, and what was read of it dropped: its file was replaced (the
        index built again in the same folder), or one read without locks was rewritten."""
        manifest = load_manifest(self.dir)
        self._check_same_encoder(manifest)
        catalog = Catalog.open(self.catalog.path, mapped=True)
        try:
            # Every vector loaded afresh: a new index numbers its segments from 1 again.
            generation, vectors = _load_committed(self.dir, manifest, catalog, None)
        except BaseException:
            catalog.close()
            raise
        self.catalog.close()
        self.manifest, self.catalog, self.generation, self.vectors = manifest, catalog, generation, vectors
        self.keywords = KeywordIndex(catalog.connection)
        self._article_documents = {}
        self._filtered = {}
        self._filtered_generation = generation

    def _check_same_encoder(self, manifest: Manifest) -> None:
        """IndexMismatchError when the index was built again, since it was opened, by another
        model or backend than the one this process embeds questions with."""
        if (manifest.model, manifest.dimension, manifest.backend) != (
            self.manifest.model, self.manifest.dimension, self.manifest.backend
        ):
            was, now = (f"{m.model} ({m.backend})" for m in (self.manifest, manifest))
            raise IndexMismatchError(f"the index in {self.dir} was built again with {now} since it was opened "
                                     f"with {was}; start qa again to read it")

    def revision(self) -> int:
        """The committed generation: every commit that changes chunks makes a new one."""
        return self.generation

    def close(self) -> None:
        self.catalog.close()

    # Search ---------------------------------------------------------------------------------------

    def chunk_count(self) -> int:
        return len(self.vectors)

    def dense_search(self, vector: np.ndarray, k: int, filters: SearchFilters | None = None) -> list[int]:
        """The `k` nearest chunk ids, of articles the filters admit (`filtered_chunks`).

        Reads the catalog with filters: called in the thread that opened the store."""
        allowed = self._allowed(filters)
        if allowed is not None and not len(allowed):
            return []
        return [chunk_id for chunk_id, _ in self.vectors.search(vector, k, allowed)]

    def keyword_search(self, terms: Sequence[str], k: int, filters: SearchFilters | None = None) -> list[tuple[int, float]]:
        """BM25 over the chunks holding any of `terms`' stems, best first, of articles the filters admit.

        Scored from cached postings (qa.stores.local.keywords), exactly as FTS5's bm25() scores them."""
        if not terms:
            return []
        wanted = list(dict.fromkeys(stems(terms)))
        with self.reading():
            allowed = self.filtered_chunks(filters)
            found = self.keywords.search(wanted, k, self.generation, allowed)
            if found is not None:
                return found
            if allowed is None:
                return self.catalog.keyword_search(fts_query(wanted), k)
            # FTS5 cannot be told which rows (a term its tokenizer cuts in two, rare): every match
            # is read and the admitted ones kept.
            import numpy as np

            matches = self.catalog.keyword_search(fts_query(wanted), self.catalog.counts()[1])
            admitted = np.isin(np.asarray([c for c, _ in matches], dtype=np.int64), allowed)
            return [hit for hit, kept in zip(matches, admitted) if kept][:k]

    def filtered_chunks(self, filters: SearchFilters | None) -> np.ndarray | None:
        """The chunk ids (sorted) of the articles `filters` admit, or None when nothing is filtered.

        A search over the nearest few hundred passages with the filters checked after found none
        when the admitted articles were a small part of a large index ("No passage was found",
        with an article there that answers): the searches are made over these chunks alone."""
        allowed = self._allowed(filters)
        return None if allowed is None else allowed.ids

    def _allowed(self, filters: SearchFilters | None) -> AllowedIds | None:
        """`filtered_chunks` with what the vector search needs of them; kept for the last few
        filters asked until the next commit (a chat asks many questions under one, a server's
        clients under a few)."""
        import numpy as np

        if filters is None or not filters.active:
            return None
        with self.reading():
            if self._filtered_generation != self.generation:
                self._filtered = {}
                self._filtered_generation = self.generation
            allowed = self._filtered.pop(filters, None)
            if allowed is None:
                admitted = [doc_id for doc_id, path, date in self.catalog.places() if filters.admits_article(path, date)]
                allowed = AllowedIds(np.sort(np.asarray(self.catalog.chunk_ids_of(admitted), dtype=np.int64)))
                while len(self._filtered) >= FILTERS_KEPT:
                    self._filtered.pop(next(iter(self._filtered)))
            self._filtered[filters] = allowed  # the newest last
            return allowed

    def article_search(self, terms: Sequence[str], k: int, filters: SearchFilters | None = None,
                       min_passages: int = 1) -> list[ArticleMatch]:
        """BM25 over whole articles (title and text) holding any of `terms`' stems, the `k` best of
        at least `min_passages` passages among those the filters admit, best first (so a filtered
        search lifts its articles as a search of those articles alone would). Scored from the
        chunks' cached postings (qa.stores.local.keywords: KeywordIndex.article_search)."""
        if not terms:
            return []
        wanted = list(dict.fromkeys(stems(terms)))
        with self.reading():
            allowed = self.filtered_chunks(filters)
            found = self.keywords.article_search(wanted, k, self.generation, min_passages, allowed)
            # Looked up once into a dict of this search's own: filling the cache below may empty
            # it first, and the articles looked up before must not go with it.
            documents = {first: self._article_documents.get(first) for first, _, _ in found}
            unread = [first for first, known in documents.items() if known is None]
            if unread:
                fetched = self.catalog.documents_of(unread)
                if len(self._article_documents) + len(fetched) > CACHED_ARTICLES:
                    self._article_documents.clear()
                self._article_documents.update(fetched)
                documents.update(fetched)
            return [
                ArticleMatch(doc_id, score, passages)
                for first, score, passages in found
                if (doc_id := documents[first]) is not None
            ]

    def document_frequencies(self, terms: Sequence[str]) -> dict[str, int]:
        """How many chunks hold each term's stem (counted once per committed generation)."""
        with self.reading():
            return {term: self.keywords.frequency(stem, self.generation, self.catalog.document_frequency)
                    for term, stem in zip(terms, stems(terms))}

    def chunks(self, chunk_ids: Sequence[int]) -> dict[int, ChunkRecord]:
        return self.catalog.chunks(chunk_ids)

    def chunks_with_vectors(self, chunk_ids: Sequence[int]) -> tuple[list[ChunkRecord], np.ndarray]:
        found = self.catalog.chunks(chunk_ids)
        records = [found[c] for c in chunk_ids if c in found]
        return records, self.vectors.vectors([r.chunk_id for r in records])

    def chunk_vectors(self, chunk_ids: Sequence[int]) -> np.ndarray:
        return self.vectors.vectors(chunk_ids)

    def sentence_vectors(self, records: Sequence[ChunkRecord]) -> dict[int, tuple[list[Span], np.ndarray]]:
        return self.catalog.sentence_vectors(records, self.manifest.dimension)

    # Contents -------------------------------------------------------------------------------------

    def counts(self) -> tuple[int, int]:
        return self.catalog.counts()

    def chunk_ids(self) -> list[int]:
        return self.catalog.all_chunk_ids()

    def documents(self) -> dict[str, DocumentRecord]:
        """Every indexed document, by path."""
        return self.catalog.documents()

    def document(self, doc_id: str) -> Article | None:
        return self.catalog.document(doc_id)

    def sources(self) -> list[str]:
        return self.catalog.sources()

    def export(self) -> Iterator[ExportedDocument]:
        """Every document with its chunks and vectors, for copying to another store."""
        with self.reading():
            for record in self.catalog.documents().values():
                article = self.catalog.document(record.doc_id)
                if article is None:
                    continue
                chunk_ids, chunks = self.catalog.document_chunks(article)
                spans, sentence_vectors = self.catalog.document_sentences(record.doc_id, self.manifest.dimension)
                yield ExportedDocument(
                    IndexedArticle(article, tuple(chunks), record.size, record.mtime_ns),
                    self.vectors.vectors(chunk_ids),
                    sentence_vectors,
                )

    def stats(self) -> IndexStats:
        try:
            entries = list(self.dir.iterdir())
        except FileNotFoundError:
            # Removed while open (a server keeps its files open): what it still reads is not an index.
            raise IndexMissingError(f"no index in {self.dir} now: it was removed while open") from None
        size = 0
        for entry in entries:
            with suppress(FileNotFoundError):  # a segment a merge has just replaced
                size += entry.stat().st_size if entry.is_file() else 0
        return index_stats(self, size)

    def unfinished_copies(self) -> list[str]:
        return unfinished_copies(self.catalog.get_meta(UNFINISHED_COPIES_KEY))

    def check(self) -> list[str]:
        """Problems found, one line each: vectors, keyword index and metadata must agree, and every
        chunk's span must still cut its document's text."""
        catalog = self.catalog
        problems: list[str] = []
        with catalog.snapshot():
            chunk_ids = set(catalog.all_chunk_ids())
            vector_ids = set(self.vectors.ids())
            if vector_ids != chunk_ids:
                problems.append(
                    f"{len(vector_ids - chunk_ids)} vectors have no chunk and "
                    f"{len(chunk_ids - vector_ids)} chunks have no vector"
                )
            bodies = catalog.keyword_bodies()
            problems += coverage_problems("the keyword index", set(bodies), chunk_ids, "chunks")
            texts: dict[str, str] = {}
            unlisted: set[str] = set()
            for chunk_id, doc_id, start, end in catalog.chunk_spans():
                if doc_id not in texts:
                    text = catalog.document_text(doc_id)
                    texts[doc_id] = text or ""
                    if text is None:
                        unlisted.add(doc_id)
                if doc_id in unlisted:
                    continue  # said once below, not as a span outside a text of 0 characters
                text = texts[doc_id]
                problem = span_problem(chunk_id, start, end, text)
                if problem:
                    problems.append(problem)
                # (Its sentence marks, qa.text.marked_stems, are whitespace to split, as to FTS5.)
                elif chunk_id in bodies and " ".join(bodies[chunk_id].split()) != keyword_stems(text[start:end]):
                    problems.append(f"chunk {chunk_id}: the keyword index differs from its document span")
            # One sentence vector for each distinct sentence of a document's chunks (as
            # article_sentences lists them), no more and no fewer: a copy pairs them by position.
            wanted: dict[str, set[tuple[int, int]]] = {}
            for doc_id, sentences in catalog.chunk_sentences():
                wanted.setdefault(doc_id, set()).update((start, end) for start, end in json.loads(sentences))
            stored: dict[str, set[tuple[int, int]]] = {}
            for doc_id, start, end, size in catalog.sentence_rows():
                stored.setdefault(doc_id, set()).add((start, end))
                if doc_id in unlisted:
                    continue
                text = texts.get(doc_id)
                if text is None:
                    problems.append(f"sentence {start}–{end} belongs to a document that is not indexed")
                elif not 0 <= start < end <= len(text):
                    problems.append(f"a sentence of {doc_id} spans {start}–{end}, outside its document")
                if size != self.manifest.dimension * 2:
                    problems.append(f"a sentence vector of {doc_id} has {size} bytes, not {self.manifest.dimension * 2}")
            if unlisted:
                problems.append(f"the chunks of {counted(len(unlisted), 'document')} belong to no indexed document "
                                f"(the first, {min(unlisted)})")
            problems += sentence_vector_problems(wanted, stored)
            problems += unfinished_copy_problems(self.unfinished_copies(), self.location)
            sample = sorted(vector_ids)[:: max(1, len(vector_ids) // 500)]
            problems += unit_length_problems(self.vectors.vectors(sample))
        return problems


def _set_aside(catalog: Path) -> Path:
    """Rename an unreadable catalog to CATALOG.damaged-TIME; the new name."""
    aside = catalog.with_name(f"{catalog.name}.damaged-{time.strftime('%Y%m%d-%H%M%S')}")
    _move_catalog(catalog, aside)
    return aside


def _move_catalog(source: Path, target: Path) -> None:
    """Rename a catalog file with its write-ahead log and shared memory (SQLite would apply an
    old log to another file of the same name), replacing any of them at `target`."""
    for suffix in ("", "-wal", "-shm"):
        target.with_name(target.name + suffix).unlink(missing_ok=True)
        part = source.with_name(source.name + suffix)
        if part.exists():
            part.rename(target.with_name(target.name + suffix))


def _missing_segment(index_dir: Path, segments: Sequence[SegmentRow]) -> Path | None:
    """The first vector file a live segment names that is not there."""
    return next((path for s in segments if not (path := segment_path(index_dir, s.id)).is_file()), None)


def _short_segment(index_dir: Path, segments: Sequence[SegmentRow], dimension: int) -> tuple[Path, int] | None:
    """The first vector file too short for the vectors its segment holds, and its size: flat and
    IVF files alike keep every vector whole (4 bytes a dimension) and its id (8 bytes), so a
    smaller file was cut short."""
    for segment in segments:
        path = segment_path(index_dir, segment.id)
        size = path.stat().st_size
        if size < segment.vectors * (dimension * 4 + 8):
            return path, size
    return None


Method = TypeVar("Method", bound=Callable[..., Any])


def _damage_said(method: Method) -> Method:
    """`method` of LocalWriter, saying a catalog page SQLite cannot read as a search does
    (unreadable_catalog), not as a traceback: opening the writer reads only the first pages, and
    an update reads the damaged one only when it gets to its rows."""

    @functools.wraps(method)
    def said(self: LocalWriter, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, *args, **kwargs)
        except sqlite3.DatabaseError as exc:
            if not is_damage(exc):
                raise
            raise unreadable_catalog(self.catalog.path, exc) from exc

    return said  # type: ignore[return-value]


class LocalWriter:
    """Commits to a local index: a new segment file per commit that adds vectors, plus one SQLite
    transaction each; small segments merge when the update finishes."""

    def __init__(self, index_dir: Path, manifest: Manifest, fresh: bool, rebuild: bool) -> None:
        self.manifest = manifest
        self.index_dir = index_dir
        self.rebuild = rebuild
        # An index was here before this run, whole or not (qa.indexer gives a new one seeds/).
        self.existed = (index_dir / MANIFEST_FILE).is_file() or (index_dir / CATALOG_FILE).is_file()
        refuse_another_programs_folder(index_dir)
        index_dir.mkdir(parents=True, exist_ok=True)
        self._aside: Path | None = None  # where a damaged catalog was set aside by this rebuild
        # An update beside a manifest whose catalog is gone would make an empty catalog and then
        # delete every vector file as stale: it says the catalog is missing, as a search does.
        catalog_lost = not rebuild and (index_dir / MANIFEST_FILE).is_file() and not (index_dir / CATALOG_FILE).is_file()
        try:
            self.catalog = Catalog.open(index_dir / CATALOG_FILE, create=not catalog_lost)
            if rebuild and self.existed:
                self.catalog.check_sound()
        except IndexCorruptError:
            if not rebuild:
                raise
            # A rebuild starts over, but a damaged catalog is set aside, not deleted: it is the
            # user's, and may still be read by other tools.
            self._aside = _set_aside(index_dir / CATALOG_FILE)
            self.catalog = Catalog.open(index_dir / CATALOG_FILE, create=True)
        try:
            if fresh and not rebuild:
                # A brand-new index: nothing in the catalog can be trusted to match this manifest.
                save_manifest(index_dir, manifest)
            self.generation = self.catalog.generation
            if not rebuild:
                # A live vector file that is gone (deleted by hand, a disk restored in part) or cut
                # short is said now: an update would otherwise call the index up to date while
                # searches fail.
                segments = self.catalog.segments()
                gone = _missing_segment(index_dir, segments)
                if gone is not None:
                    raise IndexCorruptError(f"the vector file {gone.name} is missing; {REBUILD_HINT}")
                short = _short_segment(index_dir, segments, manifest.dimension)
                if short is not None:
                    raise IndexCorruptError(f"the vector file {short[0].name} is cut short ({short[1]:,} bytes); {REBUILD_HINT}")
            # Indexes written while whole articles had an FTS5 table of their own (now scored from
            # the chunks' postings) drop it; SQLite reuses its pages.
            self.catalog.drop_article_terms()
            # Files a killed writer left (a segment written but never committed, a merge cut short).
            # Beside a catalog just set aside every segment looks stale: they go only when the
            # rebuild has finished (finish()), so a rebuild that stops first loses nothing.
            if self._aside is None:
                _delete_stale_vector_files(index_dir, self.catalog.segments())
        except sqlite3.DatabaseError as exc:  # a page past the first ones damaged
            self.catalog.close()
            if not is_damage(exc):
                raise
            raise unreadable_catalog(index_dir / CATALOG_FILE, exc) from exc
        except BaseException:
            self.catalog.close()
            raise
        self._cleared = False

    @property
    def committed(self) -> bool:
        return self.generation > 0

    @_damage_said
    def sources(self) -> list[str]:
        return self.catalog.sources()

    @_damage_said
    def documents(self, under: Sequence[str] | None = None) -> dict[str, DocumentRecord]:
        return self.catalog.documents(under)

    @_damage_said
    def file_stamps(self, under: Sequence[str] | None = None) -> dict[str, str | None]:
        return self.catalog.file_stamps(under)

    @_damage_said
    def counts(self) -> tuple[int, int]:
        return self.catalog.counts()

    @_damage_said
    def commit(self, commit: CommitGroup) -> None:
        catalog = self.catalog
        count = commit.chunk_count
        with catalog.transaction():
            drop_ids = catalog.chunk_ids_of(commit.drop_docs)
            first_id = catalog.next_chunk_id()
            segment = None
            first_of_rebuild = self.rebuild and not self._cleared
            if commit.chunk_vectors is not None and count:
                # Only the new vectors are written, beside the live segments, before the catalog
                # lists them: a kill before the commit leaves a file nobody reads.
                vectors = FaissVectorStore(self.manifest.dimension)
                vectors.add(range(first_id, first_id + count), commit.chunk_vectors)
                segment = save_segment(self.index_dir, catalog, vectors, first_id, first_id + count - 1)
            if self.rebuild and not self._cleared:
                # The rebuild replaces every vector: the old segments stop being live with this commit.
                catalog.clear_segments()
                self._cleared = True
            elif drop_ids:
                catalog.mark_dead(drop_ids)
            if segment is not None:
                catalog.add_segment(segment)
                catalog.set_meta("next_segment_id", segment.id + 1)
            if drop_ids or segment is not None or self.generation == 0 or self.rebuild:
                self.generation += 1
            catalog.remove_documents(commit.drop_docs)
            catalog.insert_documents(commit.items, range(first_id, first_id + count), commit.sentence_vectors)
            catalog.set_meta("generation", self.generation)
            catalog.set_meta("next_chunk_id", first_id + count)
            catalog.set_meta("model", self.manifest.model)
            catalog.set_meta("dimension", self.manifest.dimension)
            catalog.add_sources(commit.add_sources)
            catalog.remove_sources(commit.remove_sources)
            for doc_id, size, mtime_ns in commit.touched:
                catalog.touch_document(doc_id, size, mtime_ns)
            if commit.copy_started is not None or commit.copy_finished is not None or first_of_rebuild:
                marks = with_copies_marked(catalog.get_meta(UNFINISHED_COPIES_KEY), commit, rebuilt=first_of_rebuild)
                catalog.set_meta(UNFINISHED_COPIES_KEY, marks or "[]")

    @_damage_said
    def finish(self) -> None:
        if self.rebuild:
            save_manifest(self.index_dir, self.manifest)
        self.merge()
        _delete_stale_vector_files(self.index_dir, self.catalog.segments())

    @_damage_said
    def merge(self) -> int:
        """Merge segments while the policy (qa.stores.local.segments.plan_merge) asks; how many merges ran.

        Each merge writes its file, then swaps it for its inputs in one transaction; readers keep
        the inputs they loaded until they see the swap.
        """
        merges = 0
        while True:
            segments = self.catalog.segments()
            run = plan_merge(segments, self.catalog.dead_counts())
            if not run:
                return merges
            self._merge(run)
            merges += 1

    def _merge(self, run: list[SegmentRow]) -> None:
        catalog = self.catalog
        dead = [i for i in catalog.dead_vectors() if run[0].first_id <= i <= run[-1].last_id]
        # An IVF input that still suits the merged size keeps its trained lists: the rest are added
        # to it (choose_index retrains only when it outgrows them), as one growing index did before.
        base = max((s for s in run if s.approximate), key=lambda s: s.vectors, default=None)
        merged = (FaissVectorStore.load(segment_path(self.index_dir, base.id), self.manifest.dimension)
                  if base else FaissVectorStore(self.manifest.dimension))
        for segment in run:
            if segment is base:
                continue
            part = FaissVectorStore.load(segment_path(self.index_dir, segment.id), self.manifest.dimension)
            ids, vectors = part._contents(with_vectors=True)
            merged.add(ids.tolist(), vectors)
            del part, ids, vectors
        merged.remove(dead)
        segment_id = catalog.next_segment_id()
        merged.save(segment_path(self.index_dir, segment_id))
        into = SegmentRow(segment_id, run[0].first_id, run[-1].last_id, len(merged), merged.approximate)
        with catalog.transaction():
            catalog.replace_segments(run, into)
            catalog.set_meta("next_segment_id", segment_id + 1)
            self.generation += 1
            catalog.set_meta("generation", self.generation)
        for segment in run:
            _unlink(segment_path(self.index_dir, segment.id))

    def close(self) -> None:
        self.catalog.close()
        if self._aside is not None and not self._cleared:
            # The rebuild stopped before its first commit (no folders to rebuild from, Ctrl-C while
            # embedding): the damaged catalog goes back, and the empty one made for it goes.
            _move_catalog(self._aside, self.index_dir / CATALOG_FILE)


def save_segment(index_dir: Path, catalog: Catalog, vectors: FaissVectorStore, first_id: int,
                 last_id: int) -> SegmentRow:
    """Write `vectors` (chunk ids `first_id`..`last_id`) as the next segment file; the caller lists the
    returned row in the catalog (`Catalog.add_segment`) in the transaction that makes it live."""
    segment_id = catalog.next_segment_id()
    vectors.save(segment_path(index_dir, segment_id))
    return SegmentRow(segment_id, first_id, last_id, len(vectors), vectors.approximate)


def _unlink(path: Path) -> None:
    try:
        path.unlink()
    except OSError:
        pass


def _delete_stale_vector_files(index_dir: Path, live: Sequence[SegmentRow]) -> None:
    """Delete vector files no live segment names: leftovers of killed writers, merged-away segments,
    and the single vector files of format 4."""
    keep = {segment_path(index_dir, s.id).name for s in live}
    for path in [*index_dir.glob("segment-*.faiss*"), *index_dir.glob("vectors-*.faiss*")]:
        if path.name not in keep:
            _unlink(path)


def _load_committed(index_dir: Path, manifest: Manifest, catalog: Catalog,
                    held: SegmentVectors | None) -> tuple[int, SegmentVectors]:
    """The committed generation and its vectors, checked against the catalog's chunk count.

    `held` (the vectors a reader has) is brought up to date when only segments were added since,
    which loads just the new files; after a merge every segment is loaded again.
    """
    for _attempt in range(20):
        missing = None
        with catalog.snapshot():
            generation = catalog.generation
            segments = catalog.segments()
            dead = catalog.dead_vectors()
            vectors = held if held is not None else SegmentVectors(manifest.dimension)
            try:
                if not vectors.update(index_dir, segments, dead):
                    vectors = SegmentVectors(manifest.dimension)
                    vectors.update(index_dir, segments, dead)
            except IndexCorruptError:
                missing = _missing_segment(index_dir, segments)
                if missing is None:
                    raise
            _, chunks = catalog.counts()
        if missing is not None:
            # A merge may have replaced this file and deleted it since we read the list: look again
            # (from scratch: `held` may hold part of the update) before calling the file missing.
            held = None
            time.sleep(0.05)
            if catalog.generation == generation:
                raise IndexCorruptError(f"the vector file {missing.name} is missing; {REBUILD_HINT}")
            continue
        if len(vectors) != chunks:
            raise IndexCorruptError(
                f"the index in {index_dir} holds {len(vectors)} vectors for {chunks} chunks; {REBUILD_HINT}"
            )
        return generation, vectors
    raise IndexCorruptError(f"the index in {index_dir} kept changing while it was read; try again")
