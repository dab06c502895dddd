"""What every store is: the `Store` and `StoreWriter` protocols, the manifest, and the backend seam.

A store is the whole index, in the manner of Haystack's `DocumentStore` protocol: chunk vectors,
sentence vectors, document text and the keyword index together, because Milvus keeps them in one
engine. The protocols are structural (`typing.Protocol`): a backend implements the methods, it
inherits nothing. Retrieval, the indexer, the chat, `migrate`, `eval` and `doctor` use these
methods and nothing else of a store; which backend serves a location is the registry's business
(`qa.stores`).

A backend is a subpackage of `qa.stores` whose module has the three functions of `Backend`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Protocol

from qa.errors import ConfigError, IndexCorruptError, IndexMismatchError
from qa.text import counted

if TYPE_CHECKING:
    import numpy as np

    from qa.stores.location import StoreLocation
    from qa.types import (
        Article,
        ArticleMatch,
        ChunkRecord,
        CommitGroup,
        DocumentRecord,
        ExportedDocument,
        IndexStats,
        SearchFilters,
        Span,
    )

# 2: chunks are embedded led by their article's headline (qa.chunk.embedding_text);
# 3: sentence vectors are pooled from their chunk's token states (Embedder.encode_passages);
# 4: the local keyword index holds qa.text's Snowball stems, as the Milvus store's always did
#    (FTS5's porter tokenizer stemmed 4% of words otherwise). A Milvus store of format 3 holds
#    the same as one of format 4 (see OLDEST_FORMAT in qa.stores.milvus.store);
# 5: the local vectors are a log of segment files listed in the catalog (qa.stores.local.segments),
#    not one file per generation. A Milvus store of format 3 or 4 holds the same as one of format 5.
FORMAT_VERSION = 5
REBUILD_HINT = "run `qa index --rebuild` to build it again"


def not_an_index_hint(store: str) -> str:
    """What to do when a manifest is another program's: name a qa index or a new place for one, in
    the option that names a store of `store`'s kind."""
    if store == "milvus":
        return "name a qa store, or a new collection for one, with --store"
    return "name a qa index, or an empty or new folder for one, with --index"


def _is_another_programs_manifest(data: object) -> bool:
    """Whether a manifest.json's JSON is whole but names neither a format nor a model: another
    program's file, in a folder given as --index, which a rebuild there would overwrite."""
    return isinstance(data, dict) and not {"format_version", "model"} & data.keys()


def file_stamp(size: int, mtime_ns: int) -> str:
    """What tells a file unchanged since it was indexed: its size and modification time, ``"1234:1700000000000000000"``."""
    return f"{size}:{mtime_ns}"


# A file modified this close to when it was indexed may change again within the same clock tick,
# leaving size and time alone: its stamp is not trusted.
SETTLE_SECONDS = 2


def settled_stamp(size: int, mtime_ns: int, indexed_at: float) -> str | None:
    """An indexed file's `file_stamp`, or None when it was modified within SETTLE_SECONDS of being
    indexed, so its content must be read. (The local catalog computes the same in SQL.)"""
    return file_stamp(size, mtime_ns) if mtime_ns / 1e9 < indexed_at - SETTLE_SECONDS else None


@dataclass(frozen=True)
class Manifest:
    """Build settings saved with the index and checked every time it is opened."""

    format_version: int
    model: str
    dimension: int
    store: str = "faiss"
    created: str = ""
    backend: str = "torch"  # the encoder backend whose vectors the index holds

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2) + "\n"

    @classmethod
    def from_json(cls, raw: str, where: str, store: str, oldest: int = FORMAT_VERSION) -> Manifest:
        """The manifest saved as `raw` (JSON) by a store of kind `store`, its format checked: the one
        reader every store uses. `where` names it in messages ("…/manifest.json"); `oldest` is the
        oldest format the store reads as it is."""
        try:
            data = json.loads(raw)
        except ValueError as exc:
            raise IndexCorruptError(f"{where} is damaged ({exc}); {REBUILD_HINT}") from exc
        if _is_another_programs_manifest(data):
            raise ConfigError(f"{where} is not a qa index's manifest; {not_an_index_hint(store)}")
        try:
            manifest = cls(
                format_version=int(data["format_version"]),
                model=str(data["model"]),
                dimension=int(data["dimension"]),
                store=str(data.get("store", store)),
                created=str(data.get("created", "")),
                backend=str(data.get("backend", "torch")),
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise IndexCorruptError(f"{where} is damaged ({exc}); {REBUILD_HINT}") from exc
        if manifest.format_version > FORMAT_VERSION:
            raise IndexMismatchError(
                f"the index of {where} has format {manifest.format_version}, newer than this qa "
                f"reads ({FORMAT_VERSION}); upgrade qa, or {REBUILD_HINT}"
            )
        if manifest.format_version < oldest:
            raise IndexMismatchError(
                f"the index of {where} has the old format {manifest.format_version}; {REBUILD_HINT}"
            )
        return manifest

    def check_model(self, model: str, dimension: int, where: str, backend: str | None = None) -> None:
        """Refuse to mix vectors of two models (or two encoder precisions) in one index."""
        if self.model != model or self.dimension != dimension:
            raise IndexMismatchError(
                f"the index in {where} was built with {self.model} ({self.dimension} dimensions) "
                f"but qa is using {model} ({dimension}); {REBUILD_HINT}"
            )
        if backend is not None and backend != self.backend:
            raise IndexMismatchError(
                f"the index in {where} holds vectors of the {self.backend} backend, not {backend}; "
                f"use --backend {self.backend}, or `qa index --rebuild --backend {backend}`"
            )


def new_manifest(model: str, dimension: int, backend: str = "torch", store: str = "faiss") -> Manifest:
    return Manifest(FORMAT_VERSION, model, dimension, store, time.strftime("%Y-%m-%dT%H:%M:%S%z"), backend)


class Store(Protocol):
    """An index opened for reading: what retrieval, the chat, `eval`, `migrate` and `doctor` ask."""

    location: StoreLocation
    manifest: Manifest
    # Whether retrieval may run the vector search in a thread beside the keyword query.
    concurrent_search: bool
    # Whether dense_search and keyword_search return only chunks the filters admit: then a filtered
    # search reads as many candidates as any other, not eight times as many to check.
    searches_within_filters: bool

    def reading(self) -> AbstractContextManager[None]:
        """Hold one committed state for the reads inside (where the store has such states)."""
        ...

    def revision(self) -> int | None:
        """A number that changes whenever a writer commits, or None where the store cannot tell
        (then nothing read from it may be kept between searches by its caller)."""
        ...

    def close(self) -> None: ...

    # Search ---------------------------------------------------------------------------------------

    def chunk_count(self) -> int: ...

    def dense_search(self, vector: np.ndarray, k: int, filters: SearchFilters | None = None) -> list[int]:
        """The `k` nearest chunk ids, best first. A store may apply what it can of `filters`; the
        caller checks every candidate with `SearchFilters.admits`."""
        ...

    def keyword_search(self, terms: Sequence[str], k: int,
                       filters: SearchFilters | None = None) -> list[tuple[int, float]]:
        """BM25 over the chunks holding any of `terms` (query words, unstemmed), best first, higher
        scores better; `filters` as for `dense_search`."""
        ...

    def article_search(self, terms: Sequence[str], k: int, filters: SearchFilters | None = None,
                       min_passages: int = 1) -> list[ArticleMatch]:
        """BM25 over whole articles (title and text; the local store sums its chunks') holding any
        of `terms`: the `k` best of those cut into at least `min_passages` passages, best first;
        empty where the store keeps no article keywords. The local store lists only articles
        `filters` admit; Milvus, whose articles collection keeps no path or date, lists the best
        of all, and the caller reads scores for its (admitted) candidates only."""
        ...

    def document_frequencies(self, terms: Sequence[str]) -> dict[str, int]:
        """How many chunks hold each term (after stemming), for every term asked."""
        ...

    def chunks(self, chunk_ids: Sequence[int]) -> dict[int, ChunkRecord]:
        """The chunks found among `chunk_ids`, with their document's title, path and date."""
        ...

    def chunks_with_vectors(self, chunk_ids: Sequence[int]) -> tuple[list[ChunkRecord], np.ndarray]:
        """The chunks found among `chunk_ids`, in the order asked, and their vectors, one row each:
        what retrieval scores its candidates with, in one read."""
        ...

    def chunk_vectors(self, chunk_ids: Sequence[int]) -> np.ndarray:
        """The stored vectors of these chunks, one row each."""
        ...

    def sentence_vectors(self, records: Sequence[ChunkRecord]) -> dict[int, tuple[list[Span], np.ndarray]]:
        """For each chunk, its sentences' spans (in text order) and their stored vectors."""
        ...

    # Contents -------------------------------------------------------------------------------------

    def chunk_ids(self) -> list[int]: ...

    def counts(self) -> tuple[int, int]:
        """(documents, chunks)."""
        ...

    def documents(self) -> dict[str, DocumentRecord]:
        """Every indexed document, by path."""
        ...

    def document(self, doc_id: str) -> Article | None: ...

    def sources(self) -> list[str]: ...

    def export(self) -> Iterator[ExportedDocument]:
        """Every document with its chunks and vectors, for copying to another store."""
        ...

    def stats(self) -> IndexStats: ...

    def check(self) -> list[str]:
        """Problems found, one line each (`qa doctor`); an empty list means the store agrees with
        itself: every chunk has its vector and keywords, and its span still cuts its document."""
        ...

    def unfinished_copies(self) -> list[str]:
        """The --store names of the stores a copy into this one started from and did not finish."""
        ...


class StoreWriter(Protocol):
    """What an update (`qa index`) or a copy (`--from-store`) needs of a store."""

    manifest: Manifest
    committed: bool  # whether anything was ever committed
    existed: bool  # whether an index was at this location before this run, even an empty or damaged one

    def sources(self) -> list[str]: ...

    def documents(self, under: Sequence[str] | None = None) -> dict[str, DocumentRecord]:
        """Indexed documents by path: all of them, or those at or under the paths in `under`."""
        ...

    def file_stamps(self, under: Sequence[str] | None = None) -> dict[str, str | None]:
        """What a scan compares each indexed file with, by path (as `documents`): its `file_stamp`,
        or None when it was modified too close to being indexed to trust one. Far lighter than
        `documents`: a scan that finds nothing changed reads only these."""
        ...

    def counts(self) -> tuple[int, int]: ...

    def commit(self, commit: CommitGroup) -> None:
        """Drop `commit.drop_docs`, write its articles with their vectors, and record its sources
        and file facts: after a crash at any instant, a reader finds the store whole."""
        ...

    def finish(self) -> None: ...

    def close(self) -> None: ...


class Backend(Protocol):
    """A backend module (`qa.stores.local`, `qa.stores.milvus`): how the registry uses it."""

    def open_store(self, location: StoreLocation) -> Store: ...

    def read_manifest(self, location: StoreLocation, upgrade: bool = False) -> Manifest:
        """The manifest of the index at `location`; IndexMissingError when there is no index. With
        `upgrade` (a writer, holding the writer lock), an older format the backend can bring up to
        date in place, without embedding, is upgraded first."""
        ...

    def open_writer(self, location: StoreLocation, manifest: Manifest, fresh: bool, rebuild: bool) -> StoreWriter:
        """A writer for `location`, whose index is (or, `fresh`, will be) built as `manifest` says."""
        ...

    def read_sources(self, location: StoreLocation) -> list[str]:
        """The folders and files the index remembers, read without opening the store (no vectors
        loaded): what `qa watch` looks at now and then. IndexMissingError when there is no index."""
        ...

    def refuse_another_programs(self, location: StoreLocation) -> None:
        """ConfigError when `location` holds another program's data that a writer there would
        overwrite; called before anything (a folder, the writer lock) is made for a writer."""
        ...


def index_stats(store: Store, size_bytes: int) -> IndexStats:
    """What `qa stats` reports of a store, from the protocol's own methods."""
    from qa.types import IndexStats

    documents, chunks = store.counts()
    return IndexStats(
        index_dir=store.location.describe(),
        documents=documents,
        chunks=chunks,
        model=store.manifest.model,
        dimension=store.manifest.dimension,
        size_bytes=size_bytes,
        sources=tuple(store.sources()),
    )


def sentences_by_chunk(
    chunk_ids: Sequence[int], spans: Sequence[Span], vectors: np.ndarray
) -> dict[int, tuple[list[Span], np.ndarray]]:
    """What `Store.sentence_vectors` returns, from one row per sentence (its chunk's id, its span,
    its vector) with each chunk's rows together and in text order: ``{chunk id: (spans, vectors)}``."""
    found: dict[int, tuple[list[Span], np.ndarray]] = {}
    first = 0
    for n in range(1, len(chunk_ids) + 1):
        if n == len(chunk_ids) or chunk_ids[n] != chunk_ids[first]:
            found[chunk_ids[first]] = (list(spans[first:n]), vectors[first:n])
            first = n
    return found


def unit_length_problems(vectors: np.ndarray) -> list[str]:
    """`doctor`'s check of a sample of stored vectors: all of unit length, as qa writes them."""
    import numpy as np

    if len(vectors) and not np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-3):
        return ["some vectors are not unit length: the stored vectors are damaged"]
    return []


def coverage_problems(index: str, held: set, expected: set, unit: str) -> list[str]:
    """`doctor`'s check of a keyword index: it holds a row for each of `expected` and no other,
    ``("the keyword index", rows, chunk ids, "chunks")``."""
    if held == expected:
        return []
    return [f"{index} holds {len(held - expected)} unknown {unit} and misses {len(expected - held)}"]


def sentence_vector_problems(wanted: dict[str, set[tuple[int, int]]], stored: dict[str, set[tuple[int, int]]]) -> list[str]:
    """`doctor`'s check of the sentence vectors: each document has one for each distinct sentence
    span of its chunks (`wanted`, by doc id) and no other (`stored`). A copy to another store and
    the answer stage pair them with the sentences by position, so one missing shifts the rest."""
    off = sorted(doc_id for doc_id in wanted.keys() | stored.keys() if wanted.get(doc_id, set()) != stored.get(doc_id, set()))
    if not off:
        return []
    missing = sum(len(wanted.get(d, set()) - stored.get(d, set())) for d in off)
    extra = sum(len(stored.get(d, set()) - wanted.get(d, set())) for d in off)
    return [f"the sentence vectors of {counted(len(off), 'document')} do not match their sentences ({missing} missing, "
            f"{extra} unknown; the first, {off[0]})"]


# The meta key under which a store keeps the sources (their --store names, a JSON list) of copies
# into it that have not finished.
UNFINISHED_COPIES_KEY = "unfinished_copies"
# How doctor's line for one begins (qa.cli tells it from damage by this).
UNFINISHED_COPY_PROBLEM = "a copy from "


def unfinished_copies(value: str | None) -> list[str]:
    """The sources of the unfinished copies a store's UNFINISHED_COPIES_KEY holds."""
    try:
        found = json.loads(value) if value else []
    except ValueError:
        return []
    return [str(source) for source in found] if isinstance(found, list) else []


def with_copies_marked(value: str | None, commit: CommitGroup, rebuilt: bool = False) -> str | None:
    """The new UNFINISHED_COPIES_KEY value after `commit` (None: as it was). A rebuild's first
    commit (`rebuilt`) drops every mark: the store is built again from its folders."""
    if commit.copy_started is None and commit.copy_finished is None and not rebuilt:
        return None
    sources = [] if rebuilt else unfinished_copies(value)
    if commit.copy_started is not None and commit.copy_started not in sources:
        sources.append(commit.copy_started)
    if commit.copy_finished is not None:
        sources = [source for source in sources if source != commit.copy_finished]
    return json.dumps(sources)


def unfinished_copy_problems(sources: Sequence[str], target: StoreLocation) -> list[str]:
    """`doctor`'s lines for the copies into the store at `target` that stopped before their end."""
    return [f"{UNFINISHED_COPY_PROBLEM}{source} into it stopped before it finished: it lacks some of that store's "
            f"articles; run `qa index --from-store {source} --store {target.argument()}` again to finish it"
            for source in sources]


def span_problem(chunk_id: int, start: int, end: int, text: str) -> str | None:
    """`doctor`'s check of one chunk: its span lies inside its document's `text`."""
    if not 0 <= start < end <= len(text):
        return f"chunk {chunk_id} spans {start}–{end}, outside its document ({len(text)} characters)"
    return None
