"""The Milvus store: the same index as the local FAISS + SQLite one, kept in Milvus collections.

pymilvus is the only heavy library here and is imported lazily. `milvus:FILE.db` opens Milvus Lite
(the engine inside this process); `milvus://HOST:PORT/NAME` a server or cluster, which then needs
nothing local: every field a citation needs lives in the collections.

Collections, for a store named NAME:

    NAME            one row per chunk: vector, citation fields, its text, and the BM25 input
    NAME_sentences  one row per sentence: its span and vector (the hybrid score reads them)
    NAME_documents  one row per document part: file facts for change detection, and the text
    NAME_meta       the manifest and the remembered source folders

Milvus has no multi-row transactions, so writes are ordered to be safe at any instant: a
document's row is written after its chunks and sentences, and deleted after them. A run killed
in between leaves a document whose row says "old content" (so the next run indexes it again) or
chunks with no document row yet (cleared when the next run indexes that file). A rebuild writes
a new set of collections beside the live ones and renames them into place when it has finished
(REBUILDING_SUFFIX), so readers never see a store half rebuilt.

Keywords: Milvus computes BM25 from a text field. Milvus Lite's analyzers do not stem, so qa
stems the words itself (`qa.text.keyword_text`) and gives Milvus the stems; the same field then
serves a server or a cluster unchanged.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, NoReturn

from qa.errors import ConfigError, IndexCorruptError, IndexMissingError, IndexUnavailableError, QAError
from qa.paths import path_is_under
from qa.stores.base import (
    REBUILD_HINT,
    UNFINISHED_COPIES_KEY,
    Manifest,
    coverage_problems,
    index_stats,
    settled_stamp,
    sentence_vector_problems,
    sentences_by_chunk,
    span_problem,
    unfinished_copies,
    unfinished_copy_problems,
    unit_length_problems,
    with_copies_marked,
)
from qa.stores.location import refuse_another_kind
from qa.text import counted, keyword_text, stems
from qa.types import (
    Article,
    ArticleMatch,
    Chunk,
    ChunkRecord,
    CommitGroup,
    DocumentRecord,
    ExportedDocument,
    IndexedArticle,
    IndexStats,
    SearchFilters,
    Span,
    article_sentences,
)

if TYPE_CHECKING:
    from pathlib import Path

    import numpy as np

    from qa.stores.location import StoreLocation

# Milvus caps a VARCHAR at 65,535 bytes; text is cut into parts of this many characters (4 bytes
# each at most in UTF-8).
TEXT_PART_CHARS = 16_000
MAX_PATH_BYTES = 4096
# Rows per insert call and ids per `in [...]` filter: well inside gRPC's 64 MB message limit.
INSERT_BATCH = 512
ID_BATCH = 1000
# Spans read in one sentence query (MilvusStore.sentence_vectors): each is a clause of its filter.
SPAN_BATCH = 200
SHARDS_ENV = "QA_MILVUS_SHARDS"
MARKER_DIM = 2
# Format 4 changed the local keyword index only: this store's rows are the same in formats 3 and 4.
OLDEST_FORMAT = 3
# The meta row naming the documents of the commit under way (see MilvusWriter.commit).
PENDING_KEY = "pending"
# Set to "1" while a writer fills the articles collection of a store written before it
# (MilvusWriter._fill_articles): a writer stopped halfway leaves it so, and the next one fills
# the collection again from the start instead of keeping it half full.
ARTICLES_FILLING_KEY = "articles_filling"
# A meta value longer than this is kept in several rows (4 bytes a character at most in UTF-8).
META_PART_CHARS = 16_000
_GRPC_OPTIONS = {"grpc.keepalive_time_ms": 300_000, "grpc.keepalive_permit_without_calls": False}  # Milvus wants a vector field in every collection; the bookkeeping ones get a dummy.


class MilvusError(QAError):
    """Milvus refused or could not be reached."""


class MilvusUnavailableError(MilvusError, IndexUnavailableError):
    """A Milvus Lite file another process holds, or a server that could not be reached."""


def _client(location: StoreLocation, wait_seconds: float = 0.0) -> Any:
    """A client of the store; a Milvus Lite file another process holds is waited for up to
    `wait_seconds` (a writer that got the writer lock: the one before it is still exiting)."""
    import logging

    try:
        from pymilvus import MilvusClient
    except ImportError as exc:
        raise ConfigError("the Milvus store needs pymilvus: pip install 'qa[scale]'") from exc
    # pymilvus logs every failed call and some harmless fallbacks itself; qa reports failures in
    # one line of its own.
    for name in ("pymilvus", "milvus_lite"):
        logging.getLogger(name).setLevel(logging.CRITICAL)
    # Before Milvus Lite makes its folders in a local index named as a Milvus store.
    refuse_another_kind(location)
    if location.path is not None and location.path.exists() and not location.path.is_dir():
        raise ConfigError(f"{location.path} is a file, not a Milvus Lite store (Milvus Lite keeps a folder there)")
    deadline = time.monotonic() + wait_seconds
    while True:
        try:
            if location.path is not None:
                location.path.parent.mkdir(parents=True, exist_ok=True)
                settle_flushed_wals(location.path)
            # pymilvus pings an idle connection every 10 s, and a gRPC server (Milvus Lite's
            # included) hangs up on a client that pings an idle line more than every 5 minutes: a
            # chat left alone for 30 s would lose its store. Ping only while a call is waiting.
            return MilvusClient(uri=location.uri, grpc_options=_GRPC_OPTIONS)
        except Exception as exc:  # pymilvus raises its own MilvusException, or grpc/OS errors
            held = location.path is not None and "open local milvus failed" in str(exc).lower()
            if held and time.monotonic() < deadline:
                time.sleep(0.5)
                continue
            _open_failure(location, exc, held)


def settle_flushed_wals(data_dir: Path) -> None:
    """Delete the write-ahead logs of a Milvus Lite store that its collections' manifests say were
    already flushed, as Milvus Lite's flush does right after it commits the manifest.

    A process killed between those two steps leaves a log whose rows are also in the flushed
    file, and Milvus Lite's recovery replays it: every such row is then read twice, with the same
    primary key and sequence number, until the store is next closed (a document's part row twice
    makes it look half written to `check`). A log numbered below the manifest's active one holds
    nothing that is not in its files. Only while no process has the store open (its LOCK is free)."""
    import os

    try:
        import fcntl
    except ImportError:  # Windows: Milvus Lite locks with msvcrt there; leave its logs to it
        return
    lock = data_dir / "LOCK"
    if not lock.is_file():
        return
    fd = os.open(lock, os.O_RDWR)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return  # open in a process (this one included): it has replayed its logs already
        for manifest in [*data_dir.glob("collections/*/manifest.json"),
                         *data_dir.glob("databases/*/collections/*/manifest.json")]:
            try:
                active = int(json.loads(manifest.read_text(encoding="utf-8"))["active_wal_number"])
            except (OSError, ValueError, KeyError, TypeError):
                continue
            wal_dir = manifest.parent / "wal"
            for log in wal_dir.glob("wal_*.arrow") if wal_dir.is_dir() else ():
                found = re.fullmatch(r"wal_(?:data|delta)_(\d+)\.arrow", log.name)
                if found and int(found.group(1)) < active:
                    log.unlink(missing_ok=True)
    finally:
        os.close(fd)  # releases the lock, for Milvus Lite to take


def _open_failure(location: StoreLocation, exc: Exception, held: bool) -> NoReturn:
    if held:
        raise MilvusUnavailableError(
            f"the Milvus Lite store {location.describe()} is open in another process; Milvus Lite "
            "serves one process at a time (use a Milvus server to index while a chat is open)"
        ) from exc
    # A server that does not answer is out of reach, not damaged; a Lite file that will not open may be.
    kind = MilvusError if location.path is not None else MilvusUnavailableError
    raise kind(f"cannot open Milvus at {location.describe()}: {_first_line(exc)}") from exc


# How long a writer waits for a Milvus Lite file another process still holds.
WRITER_WAIT_SECONDS = 15.0

# The names a store gives its other collections after its own, in MilvusCollections' order:
# sentences, documents, meta, terms, articles.
SIDE_SUFFIXES = ("_sentences", "_documents", "_meta", "_terms", "_articles")
# `qa index --rebuild` writes a whole new store beside the live one, under the live one's name plus
# REBUILDING_SUFFIX, and puts it in place only when it is whole (MilvusWriter.finish): until then
# every reader searches the live store as it was, and a rebuild that stops on the way (Ctrl-C, a
# crash, a lost server) leaves the live store whole. Putting in place renames each live collection
# to the RETIRED_SUFFIX name and the new one to the live name, the manifest's collection last,
# then drops the retired ones. The rebuild's meta collection says whose rebuild it is
# (REBUILD_OF_KEY, written before anything else of it) and, once the renames have begun, that
# they have (RENAMING_KEY): collections that merely carry such a name (a store named so before
# these names were taken) are never taken for a rebuild's.
REBUILDING_SUFFIX = "_rebuilding"
RETIRED_SUFFIX = "_retired"
REBUILD_OF_KEY = "rebuild_of"
RENAMING_KEY = "renaming"


def _check_new_name(collection: str) -> None:
    """Refuse a new store named as another store's side collection would be: a store "news_articles"
    and a store "news" would each take the other's collections (and a rebuild drop them)."""
    clash = next(
        (suffix for suffix in (*SIDE_SUFFIXES, REBUILDING_SUFFIX, RETIRED_SUFFIX) if collection.endswith(suffix)), None
    )
    if clash:
        raise ConfigError(
            f"a store's name may not end in {clash}: the store {collection[: -len(clash)]!r} names collections "
            "so; choose another name"
        )


def put_in_place(live: MilvusCollections) -> None:
    """A finished rebuild's collections take the live ones' names, and the old ones are dropped.

    Run again after a stop halfway, it goes on where it stopped: a kind whose new collection is
    still under the rebuild's name has not been put in place yet."""
    built, retired = live.sibling(REBUILDING_SUFFIX), live.sibling(RETIRED_SUFFIX)
    client = live.client
    with live.calls("putting the rebuilt collections in place"):
        if client.has_collection(built.meta):
            built.set_meta(RENAMING_KEY, "1")
        for new, current, old in zip(built.names(), live.names(), retired.names()):
            if client.has_collection(new):
                if client.has_collection(current):
                    client.rename_collection(current, old)
                client.rename_collection(new, current)
    # A renamed collection is not loaded (Milvus Lite).
    live.load()
    # The live store is whole from here: what is left is the old one's collections, dropped now
    # or, if this stops, by the next writer (the markers go last).
    retired.drop()
    live.delete_meta([REBUILD_OF_KEY, RENAMING_KEY])


def _is_rebuild_of(collections: MilvusCollections, live: MilvusCollections, renaming: bool = False) -> bool:
    """Whether `collections` hold a rebuild of `live` (whose renames have begun, with `renaming`)."""
    with live.calls("listing collections"):
        if not live.client.has_collection(collections.meta):
            return False
        live.client.load_collection(collections.meta)  # a collection a process finds is not loaded
    if collections.get_meta(REBUILD_OF_KEY) != live.chunks:
        return False
    return not renaming or collections.get_meta(RENAMING_KEY) is not None


def settle_earlier_rebuild(live: MilvusCollections) -> None:
    """What a rebuild left that stopped on the way: put in place when its renames had begun (the
    rebuild was whole), dropped when they had not (the live store is as it was)."""
    building = live.sibling(REBUILDING_SUFFIX)
    if _is_rebuild_of(building, live):
        if building.get_meta(RENAMING_KEY) is not None:
            put_in_place(live)
        else:
            building.drop()
    elif _is_rebuild_of(live, live, renaming=True):
        put_in_place(live)  # every rename done, the old collections (some) not yet dropped


def check_room_to_rebuild(live: MilvusCollections) -> None:
    """Refuse a rebuild where collections of its names are another store's (named so before qa
    took those names); a writer has settled any rebuild of its own before this."""
    with live.calls("listing collections"):
        existing = set(live.client.list_collections())
    taken = [name for sibling in (live.sibling(REBUILDING_SUFFIX), live.sibling(RETIRED_SUFFIX))
             for name in sibling.names() if name in existing]
    if taken:
        raise ConfigError(
            f"cannot rebuild {live.location.describe()}: a rebuild writes beside the store under the names "
            f"{live.chunks}{REBUILDING_SUFFIX}… and {live.chunks}{RETIRED_SUFFIX}…, and {taken[0]} is another "
            "store's; copy this store to a new name with `qa index --from-store`, or rename that one"
        )


def _first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "message", "") or exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__


def stable_id(*parts: object) -> int:
    """A 62-bit id from the parts: the same chunk gets the same id on every machine and run."""
    digest = hashlib.blake2b("\x1f".join(map(str, parts)).encode("utf-8", "replace"), digest_size=8).digest()
    return int.from_bytes(digest, "big") >> 2


def filter_expression(filters: SearchFilters | None) -> str:
    """The part of the filters Milvus can apply itself; the rest is checked on the results.

    >>> filter_expression(SearchFilters(source="reuters", since="2016-01-01"))
    'path like "%reuters%" and date >= "2016-01-01"'
    >>> filter_expression(SearchFilters(source="new_york_[0-9]*.txt"))
    'path like "%new_york__%.txt%"'
    """
    if filters is None:
        return ""
    clauses: list[str] = []
    if filters.source and not any(ch in filters.source for ch in '"\\'):
        # Every form SearchFilters.admits accepts (whole path, file name, substring) lies inside
        # this LIKE; the exact glob is checked on the results. Milvus's LIKE cannot escape "%" or
        # "_", so one in a file name is left a wildcard, and a glob's "[abc]" becomes one too:
        # the LIKE admits more, never less ("new_york*" is "%new_york%").
        pattern = re.sub(r"\[[^\]]*\]", "_", filters.source).replace("*", "%").replace("?", "_")
        clauses.append(f'path like "%{pattern}%"')
    if filters.since:
        clauses.append(f'date >= "{filters.since}"')
    if filters.until:
        clauses.append(f'date <= "{filters.until}" and date != ""')
    return " and ".join(clauses)


def _merged_spans(records: Sequence[ChunkRecord]) -> list[tuple[str, int, int]]:
    """(doc_id, start, end) covering the records' spans, overlapping or touching ones of one
    document merged (a chunk overlaps its neighbour by a sentence), in document order."""
    merged: list[tuple[str, int, int]] = []
    for record in sorted(records, key=lambda r: (r.doc_id, r.start)):
        if merged and merged[-1][0] == record.doc_id and record.start <= merged[-1][2]:
            merged[-1] = (record.doc_id, merged[-1][1], max(merged[-1][2], record.end))
        else:
            merged.append((record.doc_id, record.start, record.end))
    return merged


def _add_bm25(schema: Any, name: str) -> None:
    """A `sparse` field that Milvus fills with BM25 term weights of the `keywords` field itself."""
    from pymilvus import DataType, Function, FunctionType

    schema.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
    schema.add_function(
        Function(name=name, function_type=FunctionType.BM25, input_field_names=["keywords"], output_field_names=["sparse"])
    )


def article_row(doc_id: str, title: str, text: str, passages: int) -> dict:
    """A document's row in the articles collection: its title twice (a headline names the story)
    and its text, as stems, cut to what a Milvus text field holds (the first ~60,000 characters of
    stems, some 9,000 words), and how many chunks it has."""
    return {"doc_id": doc_id, "keywords": _clip_bytes(keyword_text(title, f"{title}\n{text}"), 65535), "passages": passages}


class MilvusCollections:
    """The six collections of one store, created on first use."""

    def __init__(self, location: StoreLocation, wait_seconds: float = 0.0, *, name: str | None = None,
                 client: Any = None) -> None:
        self.location = location
        # A store's rebuild (`sibling`) shares the live collections' client: Milvus Lite serves
        # one client a process.
        self._owns_client = client is None
        self.client = _client(location, wait_seconds) if client is None else client
        name = name or location.collection
        self.chunks = name
        # The articles collection holds whole articles' keywords (title twice and full text, as
        # stems), one row per document, for hybrid search's article evidence
        # (qa.fusion.ARTICLE_KEYWORD_WEIGHT).
        self.sentences, self.documents, self.meta, self.terms, self.articles = (name + s for s in SIDE_SUFFIXES)

    def close(self) -> None:
        if not self._owns_client:
            return
        try:
            self.client.close()
        except Exception:
            pass

    def delete_meta(self, keys: Sequence[str]) -> None:
        with self.calls("writing settings"):
            self.client.delete(self.meta, filter=f"key in {json.dumps(list(keys))}")

    def names(self) -> tuple[str, ...]:
        """Every collection of the store: the chunks first, the manifest's last."""
        return (self.chunks, self.sentences, self.documents, self.terms, self.articles, self.meta)

    def sibling(self, suffix: str) -> MilvusCollections:
        """The same store's collections under its name plus `suffix` (a rebuild's, REBUILDING_SUFFIX)."""
        return MilvusCollections(self.location, name=self.chunks + suffix, client=self.client)

    @contextmanager
    def calls(self, what: str) -> Iterator[None]:
        """Turn any pymilvus failure into one line naming what qa was doing."""
        try:
            yield
        except QAError:
            raise
        except Exception as exc:
            raise MilvusError(f"Milvus {what} failed at {self.location.describe()}: {_first_line(exc)}") from exc

    def exists(self) -> bool:
        with self.calls("listing collections"):
            return self.client.has_collection(self.meta) and self.client.has_collection(self.chunks)

    def load(self) -> None:
        """Load every collection into memory: a collection a new process finds is "released"."""
        with self.calls("loading collections"):
            for name in self.names():
                if self.client.has_collection(name):
                    self.client.load_collection(name)

    def drop(self) -> None:
        with self.calls("dropping collections"):
            for name in self.names():
                if self.client.has_collection(name):
                    self.client.drop_collection(name)

    def create(self, dimension: int) -> None:
        from pymilvus import DataType

        client = self.client
        with self.calls("creating collections"):
            self.create_meta()
            if not client.has_collection(self.chunks):
                schema = client.create_schema(auto_id=False)
                schema.add_field("id", DataType.INT64, is_primary=True)
                schema.add_field("doc_id", DataType.VARCHAR, max_length=64)
                schema.add_field("path", DataType.VARCHAR, max_length=MAX_PATH_BYTES)
                schema.add_field("title", DataType.VARCHAR, max_length=4096)
                schema.add_field("date", DataType.VARCHAR, max_length=16)
                schema.add_field("start_char", DataType.INT64)
                schema.add_field("end_char", DataType.INT64)
                schema.add_field("text", DataType.VARCHAR, max_length=65535)
                schema.add_field("sentences", DataType.VARCHAR, max_length=65535)
                schema.add_field(
                    "keywords", DataType.VARCHAR, max_length=65535, enable_analyzer=True
                )
                schema.add_field("vector", DataType.FLOAT_VECTOR, dim=dimension)
                _add_bm25(schema, "keywords_bm25")
                index = client.prepare_index_params()
                # FLAT is exact, as the local default is; on a cluster, change the index type in
                # Milvus (HNSW, IVF_PQ …): qa reads vectors back by id and rescoring stays exact.
                index.add_index("vector", index_type="FLAT", metric_type="IP")
                index.add_index("sparse", index_type="SPARSE_INVERTED_INDEX", metric_type="BM25")
                index.add_index("doc_id", index_type="INVERTED")
                client.create_collection(
                    self.chunks, schema=schema, index_params=index, consistency_level="Strong", **_shards()
                )
            if not client.has_collection(self.sentences):
                schema = client.create_schema(auto_id=False)
                schema.add_field("id", DataType.INT64, is_primary=True)
                schema.add_field("doc_id", DataType.VARCHAR, max_length=64)
                schema.add_field("start_char", DataType.INT64)
                schema.add_field("end_char", DataType.INT64)
                schema.add_field("vector", DataType.FLOAT_VECTOR, dim=dimension)
                index = client.prepare_index_params()
                index.add_index("vector", index_type="FLAT", metric_type="IP")
                index.add_index("doc_id", index_type="INVERTED")
                client.create_collection(
                    self.sentences, schema=schema, index_params=index, consistency_level="Strong", **_shards()
                )
            if not client.has_collection(self.documents):
                schema = client.create_schema(auto_id=False)
                schema.add_field("key", DataType.VARCHAR, is_primary=True, max_length=80)
                schema.add_field("doc_id", DataType.VARCHAR, max_length=64)
                schema.add_field("part", DataType.INT64)
                schema.add_field("parts", DataType.INT64)
                schema.add_field("path", DataType.VARCHAR, max_length=MAX_PATH_BYTES)
                schema.add_field("title", DataType.VARCHAR, max_length=4096)
                schema.add_field("date", DataType.VARCHAR, max_length=16)
                schema.add_field("content_hash", DataType.VARCHAR, max_length=80)
                schema.add_field("size", DataType.INT64)
                schema.add_field("mtime_ns", DataType.INT64)
                schema.add_field("indexed_at", DataType.DOUBLE)
                schema.add_field("text", DataType.VARCHAR, max_length=65535)
                schema.add_field("marker", DataType.FLOAT_VECTOR, dim=MARKER_DIM)
                index = client.prepare_index_params()
                index.add_index("marker", index_type="FLAT", metric_type="L2")
                index.add_index("doc_id", index_type="INVERTED")
                client.create_collection(self.documents, schema=schema, index_params=index, consistency_level="Strong")
            if not client.has_collection(self.articles):
                schema = client.create_schema(auto_id=False)
                schema.add_field("doc_id", DataType.VARCHAR, is_primary=True, max_length=64)
                schema.add_field("keywords", DataType.VARCHAR, max_length=65535, enable_analyzer=True)
                schema.add_field("passages", DataType.INT64)
                _add_bm25(schema, "article_bm25")
                index = client.prepare_index_params()
                index.add_index("sparse", index_type="SPARSE_INVERTED_INDEX", metric_type="BM25")
                client.create_collection(self.articles, schema=schema, index_params=index, consistency_level="Strong")
            if not client.has_collection(self.terms):
                schema = client.create_schema(auto_id=False)
                schema.add_field("stem", DataType.VARCHAR, is_primary=True, max_length=256)
                schema.add_field("df", DataType.INT64)
                schema.add_field("marker", DataType.FLOAT_VECTOR, dim=MARKER_DIM)
                index = client.prepare_index_params()
                index.add_index("marker", index_type="FLAT", metric_type="L2")
                client.create_collection(self.terms, schema=schema, index_params=index, consistency_level="Strong")

    def create_meta(self) -> None:
        """The settings collection alone (`create` makes it first)."""
        from pymilvus import DataType

        client = self.client
        with self.calls("creating collections"):
            if not client.has_collection(self.meta):
                schema = client.create_schema(auto_id=False)
                schema.add_field("key", DataType.VARCHAR, is_primary=True, max_length=80)
                schema.add_field("value", DataType.VARCHAR, max_length=65535)
                schema.add_field("marker", DataType.FLOAT_VECTOR, dim=MARKER_DIM)
                index = client.prepare_index_params()
                index.add_index("marker", index_type="FLAT", metric_type="L2")
                client.create_collection(self.meta, schema=schema, index_params=index, consistency_level="Strong")

    # Settings -------------------------------------------------------------------------------------

    def get_meta(self, key: str) -> str | None:
        with self.calls("reading settings"):
            rows = self.client.query(self.meta, filter=f'key == "{key}"', output_fields=["value"])
        return str(rows[0]["value"]) if rows else None

    def set_meta(self, key: str, value: str) -> None:
        with self.calls("writing settings"):
            self.client.upsert(self.meta, [{"key": key, "value": value, "marker": [0.0] * MARKER_DIM}])

    def set_long_meta(self, key: str, value: str) -> None:
        """A setting that may outgrow one row's 65,535 bytes (the documents of a commit that drops
        thousands, the folders of `qa index ~/news/*.txt`): kept in parts of META_PART_CHARS,
        written before the row that names how many, so a reader never sees half of them."""
        if len(value) <= META_PART_CHARS:
            self.set_meta(key, value)
            return
        parts = [value[i : i + META_PART_CHARS] for i in range(0, len(value), META_PART_CHARS)]
        for number, part in enumerate(parts):
            self.set_meta(f"{key}.{number}", part)
        self.set_meta(key, json.dumps({"parts": len(parts)}))

    def get_long_meta(self, key: str) -> str | None:
        value = self.get_meta(key)
        if value is None or not value.startswith('{"parts"'):
            return value
        return "".join(self.get_meta(f"{key}.{number}") or "" for number in range(int(json.loads(value)["parts"])))

    def sources(self) -> list[str]:
        """The folders and files the store remembers."""
        return json.loads(self.get_long_meta("sources") or "[]")

    def count(self, collection: str, expression: str = "") -> int:
        with self.calls("counting rows"):
            rows = self.client.query(collection, filter=expression, output_fields=["count(*)"])
        return int(rows[0]["count(*)"]) if rows else 0

    def iterate(self, collection: str, expression: str, fields: list[str], batch: int = 2000) -> Iterator[dict]:
        """Every row matching `expression`, a batch at a time (a query alone stops at 16,384 rows)."""
        with self.calls("reading rows"):
            iterator = self.client.query_iterator(collection, batch_size=batch, filter=expression, output_fields=fields)
            try:
                while True:
                    rows = iterator.next()
                    if not rows:
                        break
                    yield from rows
            finally:
                iterator.close()

    def insert(self, collection: str, rows: list[dict]) -> None:
        with self.calls("writing rows"):
            for begin in range(0, len(rows), INSERT_BATCH):
                self.client.insert(collection, rows[begin : begin + INSERT_BATCH])

    def term_counts(self, stems: Sequence[str]) -> dict[str, int]:
        """Chunks per stem, from the terms collection."""
        found: dict[str, int] = {}
        with self.calls("reading term counts"):
            for begin in range(0, len(stems), ID_BATCH):
                batch = json.dumps(list(stems[begin : begin + ID_BATCH]), ensure_ascii=False)
                for row in self.client.query(self.terms, filter=f"stem in {batch}", output_fields=["stem", "df"]):
                    found[row["stem"]] = int(row["df"])
        return found

    def add_term_counts(self, deltas: dict[str, int]) -> None:
        """Add `deltas` to the chunks-per-stem counts (one writer at a time, so read-add-write is safe)."""
        # A "word" longer than the key field is a run of symbols no question asks about.
        changed = sorted(stem for stem, delta in deltas.items() if delta and len(stem.encode()) <= 256)
        if not changed:
            return
        current = self.term_counts(changed)
        rows = [{"stem": stem, "df": current.get(stem, 0) + deltas[stem], "marker": [0.0] * MARKER_DIM} for stem in changed]
        with self.calls("writing term counts"):
            gone = [row["stem"] for row in rows if row["df"] <= 0]
            for begin in range(0, len(gone), ID_BATCH):
                self.client.delete(self.terms, filter=f"stem in {json.dumps(gone[begin:begin + ID_BATCH], ensure_ascii=False)}")
            kept = [row for row in rows if row["df"] > 0]
            for begin in range(0, len(kept), INSERT_BATCH):
                self.client.upsert(self.terms, kept[begin : begin + INSERT_BATCH])

    def chunk_stems(self, doc_ids: Sequence[str]) -> dict[str, int]:
        """How many of these documents' chunks hold each stem (what deleting them takes away)."""
        counts: dict[str, int] = {}
        for begin in range(0, len(doc_ids), ID_BATCH):
            batch = json.dumps(list(doc_ids[begin : begin + ID_BATCH]))
            for row in self.iterate(self.chunks, f"doc_id in {batch}", ["keywords"]):
                for stem in set(row["keywords"].split()):
                    counts[stem] = counts.get(stem, 0) + 1
        return counts

    def delete_documents(self, doc_ids: Sequence[str]) -> None:
        """Delete chunks and sentences first, the document rows last (see the module notes)."""
        with self.calls("deleting rows"):
            for begin in range(0, len(doc_ids), ID_BATCH):
                batch = json.dumps(list(doc_ids[begin : begin + ID_BATCH]))
                for collection in (self.chunks, self.sentences, self.articles, self.documents):
                    self.client.delete(collection, filter=f"doc_id in {batch}")


def refuse_missing_lite_file(location: StoreLocation) -> None:
    """IndexMissingError for a Milvus Lite file that is not there: opening it would make it (and
    its folders), and a mistyped path read by `qa ask` should leave nothing behind."""
    if location.path is not None and not location.path.exists():
        raise _no_index(location)


def _no_index(location: StoreLocation) -> IndexMissingError:
    where = location.describe()
    return IndexMissingError(f"no index in {where}: run `qa index PATH --store {where}` to build one")


def load_manifest(collections: MilvusCollections) -> Manifest:
    where = collections.location.describe()
    if _is_rebuild_of(collections.sibling(REBUILDING_SUFFIX), collections, renaming=True):
        # Old and new collections side by side: a rebuild is renaming its collections into place
        # (milliseconds), or stopped while it did. A reader writes nothing; the next writer finishes it.
        raise IndexCorruptError(
            f"a rebuild of the Milvus store {where} is putting its new collections in place, or stopped while it "
            f"did: ask again in a moment, or run `qa index --store {where}` to finish it"
        )
    if not collections.exists():
        raise _no_index(collections.location)
    collections.load()
    raw = collections.get_meta("manifest")
    if raw is None:
        raise IndexCorruptError(f"the Milvus store {where} has no manifest; {REBUILD_HINT}")
    return Manifest.from_json(raw, f"the manifest of {where}", "milvus", oldest=OLDEST_FORMAT)


def save_manifest(collections: MilvusCollections, manifest: Manifest) -> None:
    collections.set_meta("manifest", manifest.to_json())


# Corpus statistics (chunk count, chunks per stem) are read again after this many seconds: IDF
# needs the corpus's size and counts, not their last digit, and the answer stage asks a question's
# counts again right after its search.
STATISTICS_SECONDS = 1.0
# Counts per stem kept at most, then all dropped: a mistyped question word asks for ~500 one-edit
# spellings of it (qa.spelling), which a smaller cap would make flush the counts of real words.
CACHED_TERM_COUNTS = 100_000


class MilvusStore:
    """A Milvus store opened for reading (`qa.stores.base.Store`)."""

    # Milvus Lite serves one request at a time; a cluster does its own parallel work.
    concurrent_search = False
    # Milvus is given a wider LIKE than the source glob (filter_expression): candidates are checked.
    searches_within_filters = False

    def __init__(self, collections: MilvusCollections, manifest: Manifest) -> None:
        self.collections = collections
        self.location = collections.location
        self.manifest = manifest
        self._chunk_total: tuple[float, int] | None = None
        self._articles_checked: tuple[float, bool] | None = None  # (when, whether the collection exists)
        self._term_counts: dict[str, tuple[float, int]] = {}

    @classmethod
    def open(cls, location: StoreLocation) -> MilvusStore:
        refuse_missing_lite_file(location)
        collections = MilvusCollections(location)
        try:
            manifest = load_manifest(collections)
        except BaseException:
            collections.close()
            raise
        return cls(collections, manifest)

    @contextmanager
    def reading(self) -> Iterator[None]:
        # Milvus shows each write as it lands: there is no committed state to hold.
        yield

    def revision(self) -> None:
        # Nor a number that says a commit landed: callers keep nothing between searches.
        return None

    def close(self) -> None:
        self.collections.close()

    # Search ---------------------------------------------------------------------------------------

    def chunk_count(self) -> int:
        now = time.monotonic()
        if self._chunk_total is None or now - self._chunk_total[0] > STATISTICS_SECONDS:
            self._chunk_total = (now, self.collections.count(self.collections.chunks))
        return self._chunk_total[1]

    def dense_search(self, vector: np.ndarray, k: int, filters: SearchFilters | None = None) -> list[int]:
        c = self.collections
        with c.calls("vector search"):
            results = c.client.search(
                c.chunks,
                data=[[float(x) for x in vector]],
                anns_field="vector",
                limit=min(k, 16_384),
                filter=filter_expression(filters),
                search_params={"metric_type": "IP"},
            )
        return [int(hit["id"]) for hit in results[0]]

    def keyword_search(self, terms: Sequence[str], k: int, filters: SearchFilters | None = None) -> list[tuple[int, float]]:
        if not terms:
            return []
        hits = self._bm25_search(self.collections.chunks, terms, k, filter=filter_expression(filters))
        # Milvus Lite reports BM25 as a negative distance, a server as a positive score: either
        # way the magnitude is the score and the order is best first.
        return [(int(hit["id"]), abs(float(hit["distance"]))) for hit in hits]

    def article_search(self, terms: Sequence[str], k: int, filters: SearchFilters | None = None,
                       min_passages: int = 1) -> list[ArticleMatch]:
        """Milvus's BM25 over the articles collection (title twice and full text), articles of at
        least `min_passages` passages; filters are left to the caller, who reads these scores for
        its candidates only. A store written before that collection has none until `qa index`
        runs: then this is empty and ranking is as before."""
        if not terms:
            return []
        c = self.collections
        now = time.monotonic()
        if self._articles_checked is None or now - self._articles_checked[0] > STATISTICS_SECONDS:
            with c.calls("listing collections"):
                self._articles_checked = (now, c.client.has_collection(c.articles))
        if not self._articles_checked[1]:
            return []
        longer = {"filter": f"passages >= {int(min_passages)}"} if min_passages > 1 else {}
        hits = self._bm25_search(c.articles, terms, k, output_fields=["doc_id", "passages"], **longer)
        return [ArticleMatch(str(hit["doc_id"]), abs(float(hit["distance"])), int(hit["passages"])) for hit in hits]

    def _bm25_search(self, collection: str, terms: Sequence[str], k: int, **options: Any) -> list:
        """Milvus's BM25 over `collection`'s keywords for the stems of `terms`, best first."""
        with self.collections.calls("keyword search"):
            results = self.collections.client.search(
                collection,
                data=[" ".join(stems(list(terms)))],
                anns_field="sparse",
                limit=min(k, 16_384),
                search_params={"metric_type": "BM25"},
                **options,
            )
        return list(results[0])

    def document_frequencies(self, terms: Sequence[str]) -> dict[str, int]:
        """How many chunks hold each term's stem: one lookup in the terms collection the writer
        keeps (Milvus does not expose its BM25 statistics, and a TEXT_MATCH count per word cost
        ~150 ms here). Counts read in the last STATISTICS_SECONDS are not read again."""
        stemmed = dict(zip(terms, stems([term.lower() for term in terms])))
        now = time.monotonic()
        fresh = {stem for stem in stemmed.values()
                 if stem in self._term_counts and now - self._term_counts[stem][0] <= STATISTICS_SECONDS}
        wanted = sorted(set(stemmed.values()) - fresh)
        if wanted:
            counts = self.collections.term_counts(wanted)
            if len(self._term_counts) > CACHED_TERM_COUNTS:
                self._term_counts.clear()
            self._term_counts.update((stem, (now, counts.get(stem, 0))) for stem in wanted)
        return {term: self._term_counts[stem][1] for term, stem in stemmed.items()}

    def chunks(self, chunk_ids: Sequence[int]) -> dict[int, ChunkRecord]:
        return {record.chunk_id: record for record, _ in self._chunk_rows(chunk_ids, with_vectors=False)}

    def chunks_with_vectors(self, chunk_ids: Sequence[int]) -> tuple[list[ChunkRecord], np.ndarray]:
        """The chunks and their vectors in one round trip: the rows hold both."""
        found = {record.chunk_id: (record, vector) for record, vector in self._chunk_rows(chunk_ids, with_vectors=True)}
        rows = [found[int(c)] for c in chunk_ids if int(c) in found]
        return [record for record, _ in rows], self._matrix([vector for _, vector in rows])

    def chunk_vectors(self, chunk_ids: Sequence[int]) -> np.ndarray:
        c = self.collections
        ids = [int(i) for i in chunk_ids]
        found: dict[int, list[float]] = {}
        with c.calls("reading vectors"):
            for begin in range(0, len(ids), ID_BATCH):
                rows = c.client.query(c.chunks, filter=f"id in {ids[begin:begin + ID_BATCH]}", output_fields=["id", "vector"])
                found.update((int(row["id"]), row["vector"]) for row in rows)
        return self._matrix([found[i] for i in ids if i in found])

    def _matrix(self, rows: Sequence[Sequence[float]]) -> np.ndarray:
        import numpy as np

        return np.asarray(rows, dtype=np.float32).reshape(len(rows), self.manifest.dimension)

    def _chunk_rows(self, chunk_ids: Sequence[int], with_vectors: bool) -> Iterator[tuple[ChunkRecord, Any]]:
        c = self.collections
        fields = ["id", "doc_id", "title", "path", "date", "start_char", "end_char", "text", "sentences"]
        fields += ["vector"] if with_vectors else []
        ids = [int(i) for i in chunk_ids]
        with c.calls("reading chunks"):
            for begin in range(0, len(ids), ID_BATCH):
                rows = c.client.query(c.chunks, filter=f"id in {ids[begin:begin + ID_BATCH]}", output_fields=fields)
                for row in rows:
                    record = ChunkRecord(
                        chunk_id=int(row["id"]),
                        doc_id=row["doc_id"],
                        title=row["title"],
                        path=row["path"],
                        date=row["date"] or None,
                        start=int(row["start_char"]),
                        end=int(row["end_char"]),
                        text=row["text"],
                        sentences=tuple(tuple(span) for span in json.loads(row["sentences"])),  # type: ignore[misc]
                    )
                    yield record, row.get("vector")

    def sentence_vectors(self, records: Sequence[ChunkRecord]) -> dict[int, tuple[list[Span], np.ndarray]]:
        c = self.collections
        by_doc: dict[str, list[tuple[int, int, list[float]]]] = {}
        # Only the sentences inside the chunks asked for: a long news article's other sentences
        # (a hundred or more an article, a few dozen articles a question) once came back too, and
        # reading their vectors over gRPC took most of a question's time.
        ranges = _merged_spans(records)
        with c.calls("reading sentence vectors"):
            for begin in range(0, len(ranges), SPAN_BATCH):
                clauses = " or ".join(f"(doc_id == {json.dumps(doc_id)} and start_char >= {start} and end_char <= {end})"
                                      for doc_id, start, end in ranges[begin:begin + SPAN_BATCH])
                rows = c.client.query(c.sentences, filter=clauses,
                                      output_fields=["doc_id", "start_char", "end_char", "vector"])
                for row in rows:
                    by_doc.setdefault(row["doc_id"], []).append((int(row["start_char"]), int(row["end_char"]), row["vector"]))
        # A chunk's sentences are those of its document inside its span.
        chunk_ids: list[int] = []
        spans: list[Span] = []
        vectors: list[list[float]] = []
        for record in records:
            for start, end, vector in sorted(
                (row for row in by_doc.get(record.doc_id, ()) if record.start <= row[0] and row[1] <= record.end),
                key=lambda row: row[0],
            ):
                chunk_ids.append(record.chunk_id)
                spans.append((start, end))
                vectors.append(vector)
        return sentences_by_chunk(chunk_ids, spans, self._matrix(vectors))

    def unfinished_copies(self) -> list[str]:
        return unfinished_copies(self.collections.get_meta(UNFINISHED_COPIES_KEY))

    def check(self) -> list[str]:
        """Problems found, one line each: chunks whose document is missing or half written, spans
        that do not cut their document's text, and vectors that are not unit length.

        The rows of a commit that was killed halfway are not problems: they are listed as in
        flight, and the next `qa index` clears them before it writes anything (MilvusWriter).
        """
        c = self.collections
        in_flight = set(pending_documents(c))
        problems: list[str] = []
        documents: dict[str, Article | None] = {}
        for head in c.iterate(c.documents, "part == 0", ["doc_id"]):
            documents[head["doc_id"]] = self.document(head["doc_id"])
        half = [doc_id for doc_id, article in documents.items() if article is None and doc_id not in in_flight]
        if half:
            problems.append(f"{len(half)} documents are half written (run `qa index` to finish them)")
        orphans = 0
        sample: list[list[float]] = []
        wanted: dict[str, set[tuple[int, int]]] = {}
        held: dict[str, int] = {}  # chunks found, by document
        for row in c.iterate(c.chunks, "", ["id", "doc_id", "start_char", "end_char", "text", "sentences", "vector"]):
            article = documents.get(row["doc_id"])
            if row["doc_id"] in in_flight:
                continue
            wanted.setdefault(row["doc_id"], set()).update((start, end) for start, end in json.loads(row["sentences"]))
            held[row["doc_id"]] = held.get(row["doc_id"], 0) + 1
            if row["doc_id"] not in documents:
                orphans += 1
            elif article is not None:
                start, end = int(row["start_char"]), int(row["end_char"])
                problem = span_problem(int(row["id"]), start, end, article.text)
                if problem:
                    problems.append(problem)
                elif article.text[start:end] != row["text"]:
                    problems.append(f"chunk {row['id']}: its text differs from its document span")
            if len(sample) < 2000:
                sample.append(row["vector"])
        if orphans:
            problems.append(f"{orphans} chunks belong to no indexed document")
        if c.client.has_collection(c.sentences):
            stored: dict[str, set[tuple[int, int]]] = {}
            for row in c.iterate(c.sentences, "", ["doc_id", "start_char", "end_char"]):
                if row["doc_id"] not in in_flight:
                    stored.setdefault(row["doc_id"], set()).add((int(row["start_char"]), int(row["end_char"])))
            problems += sentence_vector_problems(wanted, stored)
        else:
            problems.append(f"the collection of sentence vectors, {c.sentences}, is missing")
        problems += unfinished_copy_problems(self.unfinished_copies(), self.location)
        if c.client.has_collection(c.articles):  # a store from before it gains it on `qa index`
            passages = {row["doc_id"]: int(row["passages"]) for row in c.iterate(c.articles, "", ["doc_id", "passages"])}
            rows = set(passages) - in_flight
            problems += coverage_problems("the article keyword index", rows, set(documents) - in_flight, "articles")
            # Each article row counts its chunks: a chunk row lost (a damaged segment) shows here.
            short = sorted(d for d in rows & set(documents) if held.get(d, 0) != passages[d])
            if short:
                lack = "lacks" if len(short) == 1 else "lack"
                problems.append(f"{counted(len(short), 'document')} {lack} chunks their article rows count (the first, {short[0]})")
        return problems + unit_length_problems(self._matrix(sample))

    # Contents -------------------------------------------------------------------------------------

    def export(self, batch: int = 200) -> Iterator[ExportedDocument]:
        """Every document with its chunks and vectors, for copying to another store."""
        c = self.collections
        heads = list(c.iterate(c.documents, "part == 0", ["doc_id", "size", "mtime_ns"]))
        for begin in range(0, len(heads), batch):
            facts = {row["doc_id"]: row for row in heads[begin : begin + batch]}
            ids = json.dumps(sorted(facts))
            chunk_rows = list(c.iterate(c.chunks, f"doc_id in {ids}", ["doc_id", "start_char", "end_char", "text", "sentences", "vector"]))
            sentence_rows = list(c.iterate(c.sentences, f"doc_id in {ids}", ["doc_id", "start_char", "end_char", "vector"]))
            for doc_id, head in facts.items():
                article = self.document(doc_id)
                if article is None:
                    continue
                mine = sorted((r for r in chunk_rows if r["doc_id"] == doc_id), key=lambda r: int(r["start_char"]))
                chunks = tuple(
                    Chunk(doc_id, n, int(r["start_char"]), int(r["end_char"]), r["text"],
                          tuple(tuple(span) for span in json.loads(r["sentences"])))  # type: ignore[misc]
                    for n, r in enumerate(mine)
                )
                sentences = sorted((r for r in sentence_rows if r["doc_id"] == doc_id), key=lambda r: int(r["start_char"]))
                yield ExportedDocument(
                    IndexedArticle(article, chunks, int(head["size"]), int(head["mtime_ns"])),
                    self._matrix([r["vector"] for r in mine]),
                    self._matrix([r["vector"] for r in sentences]),
                )

    def counts(self) -> tuple[int, int]:
        c = self.collections
        return c.count(c.documents, "part == 0"), c.count(c.chunks)

    def sources(self) -> list[str]:
        return self.collections.sources()

    def chunk_ids(self) -> list[int]:
        return [int(row["id"]) for row in self.collections.iterate(self.collections.chunks, "", ["id"])]

    def documents(self) -> dict[str, DocumentRecord]:
        """Every indexed document, by path."""
        return _document_records(self.collections)

    def stats(self) -> IndexStats:
        path = self.location.path
        size = 0
        if path is not None and path.exists():
            # Milvus Lite keeps a folder under the .db name.
            files = [path] if path.is_file() else path.rglob("*")
            size = sum(p.stat().st_size for p in files if p.is_file())
        return index_stats(self, size)

    def document(self, doc_id: str) -> Article | None:
        c = self.collections
        with c.calls("reading a document"):
            rows = c.client.query(
                c.documents,
                filter=f"doc_id == {json.dumps(doc_id)}",
                output_fields=["part", "parts", "path", "title", "date", "content_hash", "text"],
            )
        if not rows:
            return None
        rows.sort(key=lambda row: int(row["part"]))
        head = rows[0]
        if int(head["part"]) != 0 or len(rows) != int(head["parts"]):
            return None  # half written: the next `qa index` writes it again
        text = "".join(row["text"] for row in rows)
        return Article(doc_id, head["path"], head["title"], text, head["content_hash"], head["date"] or None)


class MilvusWriter:
    """Applies an update's commit groups to the Milvus collections (see the module notes for order)."""

    def __init__(self, location: StoreLocation, manifest: Manifest, rebuild: bool) -> None:
        # The writer lock is held: a Milvus Lite file still open is the last writer's, exiting.
        self.live = MilvusCollections(location, WRITER_WAIT_SECONDS)
        # The collections written: the live ones, or a rebuild's beside them (REBUILDING_SUFFIX).
        self.collections = self.live
        self.manifest = manifest
        c = self.collections
        # A rebuild of a store that exists starts its new collections at its first commit, not
        # here: until then (the whole corpus embedded, or a refusal such as a folder that is not
        # there) nothing is written, and the live store stays as it is until finish().
        self._drop_first = False
        self._building = False
        try:
            settle_earlier_rebuild(c)
            self.existed = c.exists()  # an index was here before this run (qa.indexer gives a new one seeds/)
            if self.existed:
                c.load()
            if not self.existed:
                _check_new_name(location.collection)
            if rebuild and self.existed:
                check_room_to_rebuild(c)  # now, not after the corpus is embedded
                self._drop_first = True
                self.committed = True
                return
            fresh = not self.existed
            with c.calls("listing collections"):
                # A store written before whole-article keywords: its documents get them below.
                has_articles = fresh or c.client.has_collection(c.articles)
            missing_articles = not fresh and (not has_articles or c.get_meta(ARTICLES_FILLING_KEY) == "1")
            if missing_articles:
                c.set_meta(ARTICLES_FILLING_KEY, "1")
                if has_articles:  # filled halfway by a writer that was stopped: from the start
                    with c.calls("dropping collections"):
                        c.client.drop_collection(c.articles)
            self._create(fresh, [])
            self._roll_back_interrupted()
            if missing_articles:
                self._fill_articles()
                c.set_meta(ARTICLES_FILLING_KEY, "0")
        except BaseException:
            c.close()
            raise
        self.committed = not fresh

    def _create(self, fresh: bool, sources: Sequence[str]) -> None:
        """The collections that are missing; a fresh store's manifest and remembered folders."""
        c = self.collections
        c.create(self.manifest.dimension)
        if fresh:
            save_manifest(c, self.manifest)
            c.set_long_meta("sources", json.dumps(list(sources)))
        c.load()

    def _start_over(self) -> None:
        """The rebuild's start: every collection anew beside the live ones, the remembered folders kept."""
        kept_sources = self._read_sources()
        building = self.live.sibling(REBUILDING_SUFFIX)
        building.drop()
        # Marked as this store's rebuild before anything else of it exists (settle_earlier_rebuild).
        building.create_meta()
        building.set_meta(REBUILD_OF_KEY, self.live.chunks)
        self.collections = building
        self._building = True
        self._create(True, kept_sources)
        self._drop_first = False

    def _roll_back_interrupted(self) -> None:
        """Clear what a commit killed halfway left: every row of the documents it was writing or
        dropping. Its changed and new files then have no document row, so this run indexes them
        again, and what it was dropping is gone, as it was meant to be."""
        c = self.collections
        pending = pending_documents(c)
        if pending:
            c.delete_documents(pending)
            c.set_meta(PENDING_KEY, "[]")

    def _fill_articles(self) -> None:
        """One articles row for every document already stored, read back part by part, a batch of
        documents at a time (a store this is done to may hold millions)."""
        c = self.collections
        heads = list(c.iterate(c.documents, "part == 0", ["doc_id", "title"]))
        for begin in range(0, len(heads), ID_BATCH):
            batch = heads[begin : begin + ID_BATCH]
            parts: dict[str, list[tuple[int, str]]] = {}
            ids = json.dumps([row["doc_id"] for row in batch])
            for row in c.iterate(c.documents, f"doc_id in {ids}", ["doc_id", "part", "text"]):
                parts.setdefault(row["doc_id"], []).append((int(row["part"]), row["text"]))
            passages: dict[str, int] = {}
            for row in c.iterate(c.chunks, f"doc_id in {ids}", ["doc_id"]):
                passages[row["doc_id"]] = passages.get(row["doc_id"], 0) + 1
            c.insert(c.articles, [
                article_row(row["doc_id"], row["title"], "".join(text for _, text in sorted(parts.get(row["doc_id"], []))),
                            passages.get(row["doc_id"], 0))
                for row in batch
            ])

    def _read_sources(self) -> list[str]:
        try:
            return self.collections.sources()
        except (QAError, ValueError):
            return []

    def close(self) -> None:
        self.live.close()

    def sources(self) -> list[str]:
        return self._read_sources()

    def documents(self, under: Sequence[str] | None = None) -> dict[str, DocumentRecord]:
        try:
            records = _document_records(self.collections)
        except QAError:
            if not self._drop_first:
                raise
            # A rebuild of a store too damaged to read: there is nothing to keep, start over now.
            self._start_over()
            return {}
        if under is None:
            return records
        # Filtered here rather than in a Milvus expression, where a path would need escaping.
        return {path: record for path, record in records.items() if path_is_under(path, under)}

    def file_stamps(self, under: Sequence[str] | None = None) -> dict[str, str | None]:
        return {path: settled_stamp(r.size, r.mtime_ns, r.indexed_at) for path, r in self.documents(under).items()}

    def counts(self) -> tuple[int, int]:
        c = self.collections
        return c.count(c.documents, "part == 0"), c.count(c.chunks)

    def commit(self, commit: CommitGroup) -> None:
        """Drop `commit.drop_docs` and write its articles with their vectors."""
        if self._drop_first:
            self._start_over()
        c = self.collections
        dropping = sorted(set(commit.drop_docs) | {item.article.doc_id for item in commit.items})
        chunk_rows, sentence_rows, document_rows = self.rows(commit.items, commit.chunk_vectors, commit.sentence_vectors)
        article_rows = [
            article_row(item.article.doc_id, item.article.title, item.article.text, len(item.chunks)) for item in commit.items
        ]
        # Term counts move with the chunks. A run killed between the two leaves counts a little
        # off, which only nudges IDF weights; `qa index --rebuild` recounts.
        deltas = {stem: -count for stem, count in c.chunk_stems(dropping).items()}
        for row in chunk_rows:
            for stem in set(row["keywords"].split()):
                deltas[stem] = deltas.get(stem, 0) + 1
        # Which documents this commit touches is written down first: if it is killed halfway, the
        # next writer clears them (_roll_back_interrupted) and `doctor` knows their rows are in flight.
        c.set_long_meta(PENDING_KEY, json.dumps(dropping))
        # Documents about to be written again lose their old rows first, so no old chunk outlives them.
        c.delete_documents(dropping)
        c.insert(c.chunks, chunk_rows)
        c.insert(c.sentences, sentence_rows)
        c.insert(c.articles, article_rows)
        # Part 0 is what marks a document as indexed: it goes in last.
        c.insert(c.documents, [row for row in document_rows if row["part"] != 0])
        c.insert(c.documents, [row for row in document_rows if row["part"] == 0])
        c.add_term_counts(deltas)
        if commit.touched:
            self._touch(commit.touched)
        if commit.add_sources or commit.remove_sources:
            sources = (set(self.sources()) | set(commit.add_sources)) - set(commit.remove_sources)
            c.set_long_meta("sources", json.dumps(sorted(sources)))
        if commit.copy_started is not None or commit.copy_finished is not None:  # a copy's first or last commit
            c.set_meta(UNFINISHED_COPIES_KEY, with_copies_marked(c.get_meta(UNFINISHED_COPIES_KEY), commit) or "[]")
        c.set_meta(PENDING_KEY, "[]")
        self.committed = True

    def rows(
        self,
        group: Sequence[IndexedArticle],
        chunk_vectors: np.ndarray | None,
        sentence_vectors: Sequence[np.ndarray] | None,
    ) -> tuple[list[dict], list[dict], list[dict]]:
        chunk_rows: list[dict] = []
        sentence_rows: list[dict] = []
        document_rows: list[dict] = []
        now = time.time()
        row = 0
        for position, item in enumerate(group):
            a = item.article
            kept: set[tuple[int, int]] = set()  # the sentences the chunk rows list, clipped as they are
            for chunk in item.chunks:
                text = chunk.text
                end = chunk.end
                if len(text) > TEXT_PART_CHARS:
                    # A chunk is at most 160 word pieces, but one "word" can be a 50 kB run of
                    # symbols: keep a true, shorter quote rather than fail the update.
                    text, end = text[:TEXT_PART_CHARS], chunk.start + TEXT_PART_CHARS
                chunk_rows.append({
                    "id": stable_id(a.doc_id, a.content_hash, chunk.ordinal),
                    "doc_id": a.doc_id,
                    "path": _clip_bytes(a.path, MAX_PATH_BYTES),
                    "title": _clip_bytes(a.title, 4096),
                    "date": a.date or "",
                    "start_char": chunk.start,
                    "end_char": end,
                    "text": text,
                    "sentences": json.dumps([list(s) for s in chunk.sentences if s[1] <= end]),
                    "keywords": _clip_bytes(keyword_text(a.title, text)[:TEXT_PART_CHARS * 3], 65535),
                    "vector": [float(x) for x in chunk_vectors[row]] if chunk_vectors is not None else None,
                })
                row += 1
                kept.update((int(s[0]), int(s[1])) for s in chunk.sentences if s[1] <= end)
            if sentence_vectors is not None:
                for (start, end), vector in zip(article_sentences(item), sentence_vectors[position]):
                    if (int(start), int(end)) not in kept:
                        # Past a clipped chunk's end: no chunk row lists it, and a vector kept for
                        # it would be one more than the document's sentences (doctor, a copy).
                        continue
                    sentence_rows.append({
                        "id": stable_id(a.doc_id, a.content_hash, start, end),
                        "doc_id": a.doc_id,
                        "start_char": int(start),
                        "end_char": int(end),
                        "vector": [float(x) for x in vector],
                    })
            parts = [a.text[i : i + TEXT_PART_CHARS] for i in range(0, len(a.text), TEXT_PART_CHARS)] or [""]
            for number, part in enumerate(parts):
                document_rows.append({
                    "key": f"{a.doc_id}:{number}",
                    "doc_id": a.doc_id,
                    "part": number,
                    "parts": len(parts),
                    "path": _clip_bytes(a.path, MAX_PATH_BYTES),
                    "title": _clip_bytes(a.title, 4096),
                    "date": a.date or "",
                    "content_hash": a.content_hash,
                    "size": item.size,
                    "mtime_ns": item.mtime_ns,
                    "indexed_at": now,
                    "text": part,
                    "marker": [0.0] * MARKER_DIM,
                })
        return chunk_rows, sentence_rows, document_rows

    def _touch(self, touched: Sequence[tuple[str, int, int]]) -> None:
        """New file facts for documents whose content did not change (part 0 rows are upserted)."""
        c = self.collections
        facts = {doc_id: (size, mtime_ns) for doc_id, size, mtime_ns in touched}
        fields = ["key", "doc_id", "part", "parts", "path", "title", "date", "content_hash", "size", "mtime_ns",
                  "indexed_at", "text", "marker"]
        every = sorted(facts)
        # A part-0 row holds up to TEXT_PART_CHARS of text: read and written INSERT_BATCH at a
        # time, as inserts are, so that touching a whole archive stays inside gRPC's message limit.
        with c.calls("updating file facts"):
            for begin in range(0, len(every), INSERT_BATCH):
                ids = json.dumps(every[begin : begin + INSERT_BATCH])
                rows = c.client.query(c.documents, filter=f"part == 0 and doc_id in {ids}", output_fields=fields)
                for row in rows:
                    row["size"], row["mtime_ns"] = facts[row["doc_id"]]
                    row["indexed_at"] = time.time()
                    row["marker"] = [float(x) for x in row["marker"]]
                if rows:
                    c.client.upsert(c.documents, rows)

    def finish(self) -> None:
        if self._building:
            c = self.collections
            with c.calls("listing collections"):
                whole = set(c.names()) <= set(c.client.list_collections())
            if not whole or not _is_rebuild_of(c, self.live):
                # Dropped under this rebuild: by a writer on another machine, which took it for one
                # that had stopped (writers on two machines are not kept apart).
                raise MilvusError(
                    f"the rebuilt collections of {self.live.location.describe()} are gone (another `qa index` "
                    "dropped them?); the store is as it was: run the rebuild again"
                )
            put_in_place(self.live)
            self.collections = self.live
            self._building = False


def _shards() -> dict[str, int]:
    """$QA_MILVUS_SHARDS: how many shards a new collection of chunks or sentences gets (a cluster
    spreads writes over them); unset, the server's default."""
    import os

    value = os.environ.get(SHARDS_ENV, "").strip()
    if not value:
        return {}
    if not value.isdigit() or int(value) < 1:
        raise ConfigError(f"${SHARDS_ENV} must be a whole number of shards, not {value!r}")
    return {"num_shards": int(value)}


def _document_records(collections: MilvusCollections) -> dict[str, DocumentRecord]:
    fields = ["doc_id", "path", "title", "date", "content_hash", "size", "mtime_ns", "indexed_at"]
    return {
        row["path"]: DocumentRecord(
            row["doc_id"], row["path"], row["title"], row["date"] or None, row["content_hash"],
            int(row["size"]), int(row["mtime_ns"]), float(row["indexed_at"]),
        )
        for row in collections.iterate(collections.documents, "part == 0", fields)
    }


def _clip_bytes(text: str, limit: int) -> str:
    data = text.encode("utf-8", "replace")
    if len(data) <= limit:
        return text.encode("utf-8", "replace").decode("utf-8")
    return data[:limit].decode("utf-8", "ignore")


def pending_documents(collections: MilvusCollections) -> list[str]:
    """The documents of a commit that was interrupted (none when the last one finished)."""
    try:
        return list(json.loads(collections.get_long_meta(PENDING_KEY) or "[]"))
    except ValueError:
        return []
