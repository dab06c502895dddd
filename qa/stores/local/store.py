"""The local store: a versioned manifest, the SQLite catalog and a generation-numbered vector file.

Layout of an index folder::

    manifest.json          {"format_version": 3, "model": "all-MiniLM-L6-v2", "dimension": 384, ...}
    catalog.sqlite         documents, chunks, sentences, sources, keyword index, and the current generation
    vectors-000007.faiss   the vectors of generation 7; other generations are leftovers to delete

A writer saves the next generation's vector file beside the current one, then commits the catalog
with the new generation number: a process killed at any instant leaves the last committed pair.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from qa.errors import IndexCorruptError, IndexMissingError
from qa.stores.base import REBUILD_HINT, Manifest, index_stats, span_problem, unit_length_problems
from qa.stores.local.catalog import Catalog, fts_query
from qa.stores.local.vectors import FaissVectorStore
from qa.text import keyword_stems, stems
from qa.types import (
    Article,
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


def load_manifest(index_dir: Path) -> Manifest:
    """The manifest of the index in `index_dir`, checked (`Manifest.from_json`)."""
    path = index_dir / MANIFEST_FILE
    if not path.is_file():
        if not (index_dir / CATALOG_FILE).exists():
            raise IndexMissingError(f"no index in {index_dir}: run `qa index PATH` to build one from your articles")
        raise IndexCorruptError(f"the index in {index_dir} has no {MANIFEST_FILE}; {REBUILD_HINT}")
    return Manifest.from_json(path.read_text(), str(path), "faiss")


def save_manifest(index_dir: Path, manifest: Manifest) -> None:
    path = index_dir / MANIFEST_FILE
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(manifest.to_json())
    os.replace(tmp, path)


def vectors_path(index_dir: Path, generation: int) -> Path:
    return index_dir / f"vectors-{generation:06d}.faiss"


class LocalStore:
    """A local index opened for reading: catalog plus the vectors of its committed generation."""

    # FAISS and SQLite both let go of the GIL, so the retriever runs the vector search in a
    # thread beside the keyword query (the vectors in memory are not touched by SQLite).
    concurrent_search = True

    def __init__(self, location: StoreLocation, manifest: Manifest, catalog: Catalog, vectors: FaissVectorStore,
                 generation: int) -> None:
        self.location = location
        self.dir = location.index_dir
        self.manifest = manifest
        self.catalog = catalog
        self.vectors = vectors
        self.generation = generation

    @classmethod
    def open(cls, where: StoreLocation | Path | str) -> LocalStore:
        """Open the last committed state of the index at `where` (a location or its folder)."""
        from qa.stores.location import as_location

        location = as_location(where)
        index_dir = location.index_dir
        manifest = load_manifest(index_dir)
        catalog = Catalog.open(index_dir / CATALOG_FILE)
        try:
            generation, vectors = _load_committed(index_dir, manifest, catalog)
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
        for _attempt in range(20):
            with self.catalog.snapshot():
                if self.catalog.generation == self.generation:
                    yield
                    return
            self.generation, self.vectors = _load_committed(self.dir, self.manifest, self.catalog)
        raise IndexCorruptError(f"the index in {self.dir} kept changing while it was read; try again")

    def revision(self) -> int:
        """The committed generation: every commit that changes chunks makes a new one."""
        return self.generation

    def close(self) -> None:
        self.catalog.close()

    # Search ---------------------------------------------------------------------------------------

    def chunk_count(self) -> int:
        return len(self.vectors)

    def dense_search(self, vector: np.ndarray, k: int, filters: SearchFilters | None = None) -> list[int]:
        """The `k` nearest chunk ids; filters are left to the caller, who checks every candidate."""
        return [chunk_id for chunk_id, _ in self.vectors.search(vector, k)]

    def keyword_search(self, terms: Sequence[str], k: int, filters: SearchFilters | None = None) -> list[tuple[int, float]]:
        """BM25 over the chunks holding any of `terms`' stems, best first; filters are left to the caller."""
        return self.catalog.keyword_search(fts_query(list(dict.fromkeys(stems(terms)))), k) if terms else []

    def document_frequencies(self, terms: Sequence[str]) -> dict[str, int]:
        """How many chunks hold each term's stem."""
        return {term: self.catalog.document_frequency(stem) for term, stem in zip(terms, stems(terms))}

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
        return index_stats(self, sum(p.stat().st_size for p in self.dir.iterdir() if p.is_file()))

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
            keyword_ids = set(bodies)
            if keyword_ids != chunk_ids:
                problems.append(
                    f"the keyword index holds {len(keyword_ids - chunk_ids)} unknown chunks and misses "
                    f"{len(chunk_ids - keyword_ids)}"
                )
            texts: dict[str, str] = {}
            for chunk_id, doc_id, start, end in catalog.chunk_spans():
                if doc_id not in texts:
                    texts[doc_id] = catalog.document_text(doc_id) or ""
                text = texts[doc_id]
                problem = span_problem(chunk_id, start, end, text)
                if problem:
                    problems.append(problem)
                elif chunk_id in bodies and bodies[chunk_id] != keyword_stems(text[start:end]):
                    problems.append(f"chunk {chunk_id}: the keyword index differs from its document span")
            for doc_id, start, end, size in catalog.sentence_rows():
                text = texts.get(doc_id)
                if text is None:
                    problems.append(f"sentence {start}–{end} belongs to a document that is not indexed")
                elif not 0 <= start < end <= len(text):
                    problems.append(f"a sentence of {doc_id} spans {start}–{end}, outside its document")
                if size != self.manifest.dimension * 2:
                    problems.append(f"a sentence vector of {doc_id} has {size} bytes, not {self.manifest.dimension * 2}")
            sample = sorted(vector_ids)[:: max(1, len(vector_ids) // 500)]
            problems += unit_length_problems(self.vectors.vectors(sample))
        return problems


class LocalWriter:
    """Commits to a local index: FAISS vector file generations plus one SQLite transaction each."""

    def __init__(self, index_dir: Path, manifest: Manifest, fresh: bool, rebuild: bool) -> None:
        self.manifest = manifest
        self.index_dir = index_dir
        self.rebuild = rebuild
        index_dir.mkdir(parents=True, exist_ok=True)
        self.catalog = Catalog.open(index_dir / CATALOG_FILE, create=True)
        try:
            if fresh and not rebuild:
                # A brand-new index: nothing in the catalog can be trusted to match this manifest.
                save_manifest(index_dir, manifest)
            self.generation = self.catalog.generation
            if rebuild or self.generation == 0:
                self.vectors = FaissVectorStore(manifest.dimension)
            else:
                self.vectors = FaissVectorStore.load(vectors_path(index_dir, self.generation), manifest.dimension)
        except BaseException:
            self.catalog.close()
            raise

    @property
    def committed(self) -> bool:
        return self.generation > 0

    def sources(self) -> list[str]:
        return self.catalog.sources()

    def documents(self, under: Sequence[str] | None = None) -> dict[str, DocumentRecord]:
        return self.catalog.documents(under)

    def counts(self) -> tuple[int, int]:
        return self.catalog.counts()

    def commit(self, commit: CommitGroup) -> None:
        catalog = self.catalog
        count = commit.chunk_count
        with catalog.transaction():
            drop_ids = catalog.chunk_ids_of(commit.drop_docs)
            first_id = catalog.next_chunk_id()
            new_ids = list(range(first_id, first_id + count))
            self.vectors.remove(drop_ids)
            if commit.chunk_vectors is not None:
                self.vectors.add(new_ids, commit.chunk_vectors)
            # The vector file is written anew only when vectors changed (or the index is new):
            # a commit of file facts or sources alone keeps the current generation.
            if drop_ids or new_ids or self.generation == 0 or self.rebuild:
                self.generation += 1
                self.vectors.save(vectors_path(self.index_dir, self.generation))
            catalog.remove_documents(commit.drop_docs)
            catalog.insert_documents(commit.items, new_ids, commit.sentence_vectors)
            catalog.set_meta("generation", self.generation)
            catalog.set_meta("next_chunk_id", first_id + count)
            catalog.set_meta("model", self.manifest.model)
            catalog.set_meta("dimension", self.manifest.dimension)
            catalog.add_sources(commit.add_sources)
            catalog.remove_sources(commit.remove_sources)
            for doc_id, size, mtime_ns in commit.touched:
                catalog.touch_document(doc_id, size, mtime_ns)

    def finish(self) -> None:
        if self.rebuild:
            save_manifest(self.index_dir, self.manifest)
        _delete_stale_vector_files(self.index_dir, self.generation)

    def close(self) -> None:
        self.catalog.close()


def _delete_stale_vector_files(index_dir: Path, generation: int) -> None:
    keep = vectors_path(index_dir, generation).name
    for path in index_dir.glob("vectors-*.faiss*"):
        if path.name != keep:
            try:
                path.unlink()
            except OSError:
                pass


def _load_committed(index_dir: Path, manifest: Manifest, catalog: Catalog) -> tuple[int, FaissVectorStore]:
    """The committed generation and its vectors, checked against the catalog's chunk count."""
    for _attempt in range(20):
        with catalog.snapshot():
            generation = catalog.generation
            path = vectors_path(index_dir, generation)
            if generation == 0:
                vectors = FaissVectorStore(manifest.dimension)
            elif path.is_file():
                vectors = FaissVectorStore.load(path, manifest.dimension)
            else:
                vectors = None
            _, chunks = catalog.counts()
        if vectors is None:
            # A writer may have committed a newer generation and deleted this file since we read
            # the number: look again before calling the file missing.
            time.sleep(0.05)
            if catalog.generation == generation:
                raise IndexCorruptError(f"the vector file {path.name} is missing; {REBUILD_HINT}")
            continue
        if len(vectors) != chunks:
            raise IndexCorruptError(
                f"the index in {index_dir} holds {len(vectors)} vectors for {chunks} chunks; {REBUILD_HINT}"
            )
        return generation, vectors
    raise IndexCorruptError(f"the index in {index_dir} kept changing while it was read; try again")
