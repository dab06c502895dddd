"""The index on disk: a versioned manifest, the SQLite catalog and a generation-numbered vector file.

Layout of an index folder::

    manifest.json          {"format_version": 1, "model": "all-MiniLM-L6-v2", "dimension": 384, ...}
    catalog.sqlite         documents, chunks, sources, keyword index, and the current generation
    vectors-000007.faiss   the vectors of generation 7; other generations are leftovers to delete

A writer saves the next generation's vector file beside the current one, then commits the catalog
with the new generation number: a process killed at any instant leaves the last committed pair.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from qa.catalog import Catalog, ChunkRecord, DocumentRecord, ExportedDocument, IndexedArticle, fts_query
from qa.errors import IndexCorruptError, IndexMismatchError, IndexMissingError, QAError
from qa.store import FaissVectorStore
from qa.types import Article, IndexStats, Span

if TYPE_CHECKING:
    import numpy as np

    from qa.location import StoreLocation
    from qa.milvus import MilvusIndex
    from qa.retrieve import SearchFilters

# 2: chunks are embedded led by their article's headline (qa.chunk.embedding_text);
# 3: sentence vectors are pooled from their chunk's token states (Embedder.encode_passages).
FORMAT_VERSION = 3
MANIFEST_FILE = "manifest.json"
CATALOG_FILE = "catalog.sqlite"
REBUILD_HINT = "run `qa index --rebuild` to build it again"


@dataclass(frozen=True)
class Manifest:
    """Build settings saved beside the index and checked every time it is opened."""

    format_version: int
    model: str
    dimension: int
    store: str = "faiss"
    created: str = ""
    backend: str = "torch"  # the encoder backend whose vectors the index holds

    def save(self, index_dir: Path) -> None:
        path = index_dir / MANIFEST_FILE
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(asdict(self), indent=2) + "\n")
        os.replace(tmp, path)

    @classmethod
    def load(cls, index_dir: Path) -> Manifest:
        path = index_dir / MANIFEST_FILE
        if not path.is_file():
            if not (index_dir / CATALOG_FILE).exists():
                raise IndexMissingError(
                    f"no index in {index_dir}: run `qa index PATH` to build one from your articles"
                )
            raise IndexCorruptError(f"the index in {index_dir} has no {MANIFEST_FILE}; {REBUILD_HINT}")
        try:
            data = json.loads(path.read_text())
            manifest = cls(
                format_version=int(data["format_version"]),
                model=str(data["model"]),
                dimension=int(data["dimension"]),
                store=str(data.get("store", "faiss")),
                created=str(data.get("created", "")),
                backend=str(data.get("backend", "torch")),
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise IndexCorruptError(f"{path} is damaged ({exc}); {REBUILD_HINT}") from exc
        if manifest.format_version > FORMAT_VERSION:
            raise IndexMismatchError(
                f"the index in {index_dir} has format {manifest.format_version}, newer than this qa "
                f"reads ({FORMAT_VERSION}); upgrade qa, or {REBUILD_HINT}"
            )
        if manifest.format_version < FORMAT_VERSION:
            raise IndexMismatchError(
                f"the index in {index_dir} has the old format {manifest.format_version}; {REBUILD_HINT}"
            )
        return manifest

    def check_model(self, model: str, dimension: int, index_dir: Path | str, backend: str | None = None) -> None:
        """Refuse to mix vectors of two models (or two encoder precisions) in one index."""
        if self.model != model or self.dimension != dimension:
            raise IndexMismatchError(
                f"the index in {index_dir} was built with {self.model} ({self.dimension} dimensions) "
                f"but qa is using {model} ({dimension}); {REBUILD_HINT}"
            )
        if backend is not None and backend != self.backend:
            raise IndexMismatchError(
                f"the index in {index_dir} holds vectors of the {self.backend} backend, not {backend}; "
                f"use --backend {self.backend}, or `qa index --rebuild --backend {backend}`"
            )


def vectors_path(index_dir: Path, generation: int) -> Path:
    return index_dir / f"vectors-{generation:06d}.faiss"


def new_manifest(model: str, dimension: int, backend: str = "torch", store: str = "faiss") -> Manifest:
    return Manifest(FORMAT_VERSION, model, dimension, store, time.strftime("%Y-%m-%dT%H:%M:%S%z"), backend)


def index_backend(location: Path | StoreLocation) -> str | None:
    """The backend an existing index was built with, or None where there is no readable index."""
    from qa.location import StoreLocation

    try:
        if isinstance(location, StoreLocation) and location.kind == "milvus":
            from qa.milvus import MilvusCollections, load_manifest

            collections = MilvusCollections(location)
            try:
                return load_manifest(collections).backend
            finally:
                collections.close()
        directory = location.index_dir if isinstance(location, StoreLocation) else location
        return Manifest.load(directory).backend
    except QAError:
        return None


class Index:
    """A loaded index for reading: catalog plus the vectors of its committed generation."""

    # FAISS and SQLite both let go of the GIL, so the retriever runs the vector search in a
    # thread beside the keyword query (the vectors in memory are not touched by SQLite).
    concurrent_search = True

    def __init__(self, index_dir: Path, manifest: Manifest, catalog: Catalog, vectors: FaissVectorStore,
                 generation: int) -> None:
        self.dir = index_dir
        self.manifest = manifest
        self.catalog = catalog
        self.vectors = vectors
        self.generation = generation

    @classmethod
    def open(cls, index_dir: Path) -> Index:
        """Open the last committed state of the index in `index_dir`."""
        manifest = Manifest.load(index_dir)
        catalog = Catalog.open(index_dir / CATALOG_FILE)
        try:
            generation, vectors = _load_committed(index_dir, manifest, catalog)
        except BaseException:
            catalog.close()
            raise
        return cls(index_dir, manifest, catalog, vectors, generation)

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

    def close(self) -> None:
        self.catalog.close()

    # What retrieval asks (the Milvus store answers the same questions) ----------------------------

    def chunk_count(self) -> int:
        return len(self.vectors)

    def dense_search(self, vector: np.ndarray, k: int, filters: SearchFilters | None = None) -> list[int]:
        """The `k` nearest chunk ids; filters are left to the caller, who checks every candidate."""
        return [chunk_id for chunk_id, _ in self.vectors.search(vector, k)]

    def keyword_search(self, terms: Sequence[str], k: int, filters: SearchFilters | None = None) -> list[tuple[int, float]]:
        """BM25 over the chunks holding any of `terms`, best first."""
        return self.catalog.keyword_search(fts_query(terms), k) if terms else []

    def document_frequencies(self, terms: Sequence[str]) -> dict[str, int]:
        """How many chunks hold each term (after stemming)."""
        return {term: self.catalog.document_frequency(term) for term in terms}

    def chunks(self, chunk_ids: Sequence[int]) -> dict[int, ChunkRecord]:
        return self.catalog.chunks(chunk_ids)

    def chunk_vectors(self, chunk_ids: Sequence[int]) -> np.ndarray:
        return self.vectors.vectors(chunk_ids)

    def sentence_vectors(self, records: Sequence[ChunkRecord]) -> dict[int, tuple[list[Span], np.ndarray]]:
        return self.catalog.sentence_vectors(records, self.manifest.dimension)

    def counts(self) -> tuple[int, int]:
        return self.catalog.counts()

    def chunk_ids(self) -> list[int]:
        return self.catalog.all_chunk_ids()

    def documents(self) -> dict[str, DocumentRecord]:
        """Every indexed document, by path."""
        return self.catalog.documents()

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

    def sources(self) -> list[str]:
        return self.catalog.sources()

    def stats(self) -> IndexStats:
        documents, chunks = self.catalog.counts()
        size = sum(p.stat().st_size for p in self.dir.iterdir() if p.is_file())
        return IndexStats(
            index_dir=str(self.dir),
            documents=documents,
            chunks=chunks,
            model=self.manifest.model,
            dimension=self.manifest.dimension,
            size_bytes=size,
            sources=tuple(self.catalog.sources()),
        )

    def document(self, doc_id: str) -> Article | None:
        return self.catalog.document(doc_id)


def open_index(location: StoreLocation) -> Index | MilvusIndex:
    """The index at `location` opened for reading: a local folder, or a Milvus store."""
    if location.kind == "milvus":
        from qa.milvus import MilvusIndex

        return MilvusIndex.open(location)
    return Index.open(location.index_dir)


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


def check_index(location: Path | StoreLocation) -> list[str]:
    """Problems found in an index, one line each; an empty list means vectors, keyword index and
    metadata agree and every chunk's span still cuts its document's text."""
    import numpy as np

    from qa.location import StoreLocation

    if isinstance(location, StoreLocation):
        if location.kind == "milvus":
            from qa.milvus import check_milvus_index

            return check_milvus_index(location)
        location = location.index_dir
    index = Index.open(location)  # manifest, catalog, vector file and their counts
    problems: list[str] = []
    try:
        catalog = index.catalog
        with catalog.snapshot():
            chunk_ids = set(catalog.all_chunk_ids())
            vector_ids = set(index.vectors.ids())
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
                if not 0 <= start < end <= len(text):
                    problems.append(f"chunk {chunk_id} spans {start}–{end}, outside its document ({len(text)} characters)")
                elif chunk_id in bodies and bodies[chunk_id] != text[start:end]:
                    problems.append(f"chunk {chunk_id}: the keyword index text differs from its document span")
            for doc_id, start, end, size in catalog.sentence_rows():
                text = texts.get(doc_id)
                if text is None:
                    problems.append(f"sentence {start}–{end} belongs to a document that is not indexed")
                elif not 0 <= start < end <= len(text):
                    problems.append(f"a sentence of {doc_id} spans {start}–{end}, outside its document")
                if size != index.manifest.dimension * 2:
                    problems.append(f"a sentence vector of {doc_id} has {size} bytes, not {index.manifest.dimension * 2}")
            sample = sorted(vector_ids)[:: max(1, len(vector_ids) // 500)]
            if sample:
                norms = np.linalg.norm(index.vectors.vectors(sample), axis=1)
                if not np.allclose(norms, 1.0, atol=1e-3):
                    problems.append("some vectors are not unit length: the vector file is damaged")
    finally:
        index.close()
    return problems
