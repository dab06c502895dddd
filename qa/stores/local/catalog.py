"""The local store's catalog: documents, chunks, sentences, sources and a keyword index, in one SQLite file.

SQLite gives the index its transactions: the list of live vector segments and the chunks whose
vectors are dead are recorded in the same transaction that changes documents and chunks, so the
metadata, the keyword index (FTS5, which lives in the same file) and the vectors always describe the
same set of chunks.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from qa.errors import IndexCorruptError, IndexLockedError
from qa.stores.base import SETTLE_SECONDS, sentences_by_chunk
from qa.stores.local.keywords import TITLE_WEIGHT
from qa.text import keyword_stems, marked_stems
from qa.types import Article, Chunk, ChunkRecord, DocumentRecord, IndexedArticle, Span, article_sentences

if TYPE_CHECKING:
    import numpy as np

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS sources(path TEXT PRIMARY KEY, added_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS documents(
    doc_id TEXT PRIMARY KEY,
    path TEXT NOT NULL UNIQUE,
    title TEXT NOT NULL,
    date TEXT,
    content_hash TEXT NOT NULL,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    text TEXT NOT NULL,
    indexed_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS chunks(
    id INTEGER PRIMARY KEY,
    doc_id TEXT NOT NULL REFERENCES documents(doc_id),
    ordinal INTEGER NOT NULL,
    start_char INTEGER NOT NULL,
    end_char INTEGER NOT NULL,
    sentences TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS chunks_by_doc ON chunks(doc_id);
CREATE TABLE IF NOT EXISTS sentences(
    id INTEGER PRIMARY KEY,
    doc_id TEXT NOT NULL REFERENCES documents(doc_id),
    start_char INTEGER NOT NULL,
    end_char INTEGER NOT NULL,
    vector BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS sentences_by_doc ON sentences(doc_id, start_char);
CREATE INDEX IF NOT EXISTS documents_by_date ON documents(date);
-- What a scan compares files with, apart from the document rows (which hold each article's text):
-- reading it for 100,000 files touches a few hundred pages instead of 100,000.
CREATE INDEX IF NOT EXISTS documents_file_facts ON documents(path, size, mtime_ns, indexed_at);
-- The live vector files (qa.stores.local.segments): segment N holds the vectors of chunk ids
-- first_id..last_id, less those in dead_vectors, and is the file segment-N.faiss.
CREATE TABLE IF NOT EXISTS segments(
    id INTEGER PRIMARY KEY,
    first_id INTEGER NOT NULL,
    last_id INTEGER NOT NULL,
    vectors INTEGER NOT NULL,
    approximate INTEGER NOT NULL
);
-- Chunks removed since their segment was written: their vectors stay in its file until a merge.
CREATE TABLE IF NOT EXISTS dead_vectors(chunk_id INTEGER PRIMARY KEY);
-- The stems of each chunk's title and text (qa.text.keyword_stems): FTS5 does not stem them again.
CREATE VIRTUAL TABLE IF NOT EXISTS chunk_terms USING fts5(title, body, tokenize='unicode61');
"""


# The most of the catalog file read through a memory map (SQLite clamps it to what its build allows).
MMAP_BYTES = 2**31


FileSignature = tuple[int, int, int]


def file_signature(path: Path) -> FileSignature | None:
    """What tells a file rewritten: its inode, size and modification time (None when it is gone)."""
    try:
        found = path.stat()
    except OSError:
        return None
    return (found.st_ino, found.st_size, found.st_mtime_ns)


def _read_only(path: Path, refused: sqlite3.OperationalError) -> tuple[sqlite3.Connection, FileSignature | None] | None:
    """The catalog at `path` opened read-only, when SQLite refused to write it (`refused`), or None;
    with the file's signature when it was opened as immutable.

    Read-only opens WAL's shared memory beside the file, which a folder this user may not write
    cannot hold; then the file is read as immutable (no locks), which is exact only while no log
    of commits (-wal) is beside it and the file does not change: the store opens it again when its
    signature does (`Catalog.changed_on_disk`)."""
    if "readonly" not in str(refused) and "unable to open" not in str(refused):
        return None
    uri = path.resolve().as_uri()
    try:
        connection = sqlite3.connect(f"{uri}?mode=ro", uri=True, timeout=30.0, isolation_level=None)
        connection.execute("SELECT count(*) FROM meta").fetchone()
        return connection, None
    except sqlite3.DatabaseError:
        pass
    if path.with_name(path.name + "-wal").exists():
        raise IndexLockedError(
            f"the index in {path.parent} is being updated by a user who may write it, and this one "
            "cannot read it meanwhile (it may not write beside it); try again when that is done"
        )
    signature = file_signature(path)
    try:
        connection = sqlite3.connect(f"{uri}?immutable=1", uri=True, timeout=30.0, isolation_level=None)
        connection.execute("SELECT count(*) FROM meta").fetchone()
    except sqlite3.DatabaseError:
        return None
    return connection, signature


def is_damage(exc: sqlite3.DatabaseError) -> bool:
    """Whether SQLite's error says the catalog's file is damaged: "database disk image is
    malformed", "file is not a database" (a DatabaseError itself), or a constraint the writer
    never breaks failing (one changed byte in an index page: "UNIQUE constraint failed", though
    quick_check passes). Not a full disk or a lock (OperationalError, which
    qa.indexer.write_failure reads) nor a misuse such as a closed database (ProgrammingError),
    which a rebuild would not mend."""
    return not isinstance(exc, (sqlite3.OperationalError, sqlite3.ProgrammingError))


def unreadable_catalog(path: Path, exc: sqlite3.DatabaseError) -> IndexCorruptError:
    """The error for a catalog SQLite cannot read: a rebuild must be told the folders, which only
    the catalog listed."""
    return IndexCorruptError(
        f"the catalog {path.name} cannot be read ({exc}); build it again with `qa index PATH --rebuild`, "
        "naming your folders (the catalog held the list of them)"
    )


class Catalog:
    """SQLite store of documents, chunks, sources and settings."""

    def __init__(self, connection: sqlite3.Connection, path: Path, signature: FileSignature | None = None) -> None:
        self._db = connection
        self.path = path
        # Whether it was opened immutable (`_read_only`: another user's, on a folder this one may
        # not write), and the file this connection reads, as it was then (see file_state and
        # changed_on_disk). An immutable one's is taken before it was opened.
        self.read_without_locks = signature is not None
        self._opened = signature or file_signature(path)

    def check_sound(self) -> None:
        """Raise IndexCorruptError (and close) unless SQLite finds every page of the file sound: it
        reads all of it, so only a rebuild asks, which reads it whole anyway. Opening reads the
        first pages alone, and a page damaged further in failed mid-way through the rebuild."""
        try:
            found = self._db.execute("PRAGMA quick_check").fetchone()[0]
        except sqlite3.DatabaseError as exc:
            found = str(exc)
        if found != "ok":
            self.close()
            raise IndexCorruptError(f"the catalog {self.path.name} is damaged ({found})")

    def file_state(self) -> str:
        """"same" while the file this catalog was opened from is still at its path; "gone" when the
        path holds none (the index folder deleted under a server), "replaced" when it holds another
        (the index deleted and built again there): this connection reads the old file either way."""
        now = file_signature(self.path)
        if now is None:
            return "gone"
        return "same" if self._opened is None or now[0] == self._opened[0] else "replaced"

    def changed_on_disk(self) -> bool:
        """Whether a catalog read without locks (`_read_only`) was written since it was opened:
        then what SQLite holds of it may be stale, and it must be opened again."""
        if not self.read_without_locks:
            return False
        return file_signature(self.path) != self._opened or self.path.with_name(self.path.name + "-wal").exists()

    @classmethod
    def open(cls, path: Path, create: bool = False, mapped: bool = False) -> Catalog:
        """Open the catalog file; with `create`, make it (and its tables) if missing; `mapped`, for a
        reader that will search it many times, reads its pages through a memory map."""
        if not create and not path.is_file():
            raise IndexCorruptError(
                f"the catalog {path.name} is missing; build it again with `qa index PATH --rebuild`, naming your "
                "folders (the catalog held the list of them)"
            )
        connection = None
        signature = None
        try:
            connection = sqlite3.connect(str(path), timeout=30.0, isolation_level=None)
            try:
                connection.execute("PRAGMA journal_mode=WAL")
            except sqlite3.OperationalError as exc:
                # Another user's index, or one on a read-only disk: searched as it is, not called
                # damaged (setting the journal mode writes, even when it is WAL already).
                connection.close()
                read_only = None if create else _read_only(path, exc)
                if read_only is None:
                    raise
                connection, signature = read_only
            connection.execute("PRAGMA synchronous=FULL")
            if mapped:
                # Pages are read through a memory map, not a read() call each: a search looks up a
                # few hundred rows at random (chunks, sentence vectors, postings) in a file far
                # larger than SQLite's own 2 MB cache. 1.1 to 1.8 ms less per hybrid search at
                # 100,000 chunks (paired, 400-600 questions). Not for a writer, which opens the file
                # once per update: mapping it cost an add 0.02 s there. The file is never shrunk in
                # place (no VACUUM), so the map stays valid; a disk that vanishes under a mapped
                # file ends the reader with SIGBUS rather than an I/O error, as with any mmap.
                connection.execute(f"PRAGMA mmap_size={MMAP_BYTES}")
            if create:
                connection.executescript(_SCHEMA)
            else:
                connection.execute("SELECT count(*) FROM meta").fetchone()
        except sqlite3.DatabaseError as exc:
            if connection is not None:
                connection.close()
            raise unreadable_catalog(path, exc) from exc
        return cls(connection, path, signature)

    @property
    def connection(self) -> sqlite3.Connection:
        """The SQLite connection, for readers of the same file that need their own queries (keywords)."""
        return self._db

    def close(self) -> None:
        self._db.close()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """All writes inside land together or not at all."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    @property
    def in_snapshot(self) -> bool:
        return self._db.in_transaction

    @contextmanager
    def snapshot(self) -> Iterator[None]:
        """Reads inside see one committed state, whatever writers commit meanwhile (WAL mode)."""
        if self._db.in_transaction:
            yield
            return
        self._db.execute("BEGIN")
        try:
            # A deferred transaction takes its snapshot at the first read.
            self._db.execute("SELECT value FROM meta WHERE key = 'generation'").fetchone()
            yield
        finally:
            if self._db.in_transaction:
                self._db.execute("COMMIT")

    # Settings -----------------------------------------------------------------------------------

    def get_meta(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str | int) -> None:
        self._db.execute(
            "INSERT INTO meta(key, value) VALUES(?, ?) "
            "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            (key, str(value)),
        )

    @property
    def generation(self) -> int:
        """A number that every commit changing the vectors raises: readers reload when it moved."""
        return int(self.get_meta("generation") or 0)

    # Vector segments ------------------------------------------------------------------------------

    def segments(self) -> list[SegmentRow]:
        """The live segments, oldest (lowest chunk ids) first."""
        rows = self._db.execute("SELECT id, first_id, last_id, vectors, approximate FROM segments ORDER BY first_id")
        return [SegmentRow(*row[:4], bool(row[4])) for row in rows]

    def add_segment(self, segment: SegmentRow) -> None:
        self._db.execute(
            "INSERT INTO segments(id, first_id, last_id, vectors, approximate) VALUES(?, ?, ?, ?, ?)",
            (segment.id, segment.first_id, segment.last_id, segment.vectors, int(segment.approximate)),
        )

    def replace_segments(self, merged: Sequence[SegmentRow], into: SegmentRow) -> None:
        """Swap merged segments for the one they became; their dead vectors are gone with them."""
        self._db.executemany("DELETE FROM segments WHERE id = ?", [(s.id,) for s in merged])
        self._db.execute(
            "DELETE FROM dead_vectors WHERE chunk_id BETWEEN ? AND ?", (into.first_id, into.last_id)
        )
        self.add_segment(into)

    def clear_segments(self) -> None:
        """No segment is live any more (a rebuild's first commit): their files become leftovers."""
        self._db.execute("DELETE FROM segments")
        self._db.execute("DELETE FROM dead_vectors")

    def next_segment_id(self) -> int:
        row = self._db.execute("SELECT max(id) FROM segments").fetchone()
        floor = int(self.get_meta("next_segment_id") or 1)
        return max(floor, (row[0] or 0) + 1)

    def dead_vectors(self) -> set[int]:
        return {row[0] for row in self._db.execute("SELECT chunk_id FROM dead_vectors")}

    def dead_counts(self) -> dict[int, int]:
        """Dead vectors per segment id."""
        rows = self._db.execute(
            "SELECT s.id, count(*) FROM segments s JOIN dead_vectors d "
            "ON d.chunk_id BETWEEN s.first_id AND s.last_id GROUP BY s.id"
        )
        return {int(segment): int(count) for segment, count in rows}

    def mark_dead(self, chunk_ids: Sequence[int]) -> None:
        self._db.executemany("INSERT OR IGNORE INTO dead_vectors(chunk_id) VALUES(?)", [(c,) for c in chunk_ids])

    # Sources --------------------------------------------------------------------------------------

    def sources(self) -> list[str]:
        return [row[0] for row in self._db.execute("SELECT path FROM sources ORDER BY path")]

    def add_sources(self, paths: Iterable[str]) -> None:
        now = time.time()
        self._db.executemany(
            "INSERT OR IGNORE INTO sources(path, added_at) VALUES(?, ?)", [(p, now) for p in paths]
        )

    def remove_sources(self, paths: Iterable[str]) -> None:
        self._db.executemany("DELETE FROM sources WHERE path = ?", [(p,) for p in paths])

    # Documents and chunks -------------------------------------------------------------------------

    def documents(self, under: Sequence[str] | None = None) -> dict[str, DocumentRecord]:
        """Every indexed document by path, or only those at or under the paths in `under`."""
        columns = "SELECT doc_id, path, title, date, content_hash, size, mtime_ns, indexed_at FROM documents"
        if under is None:
            return {row[1]: DocumentRecord(*row) for row in self._db.execute(columns)}
        found: dict[str, DocumentRecord] = {}
        for root in under:
            rows = self._db.execute(f"{columns} WHERE {_AT_OR_UNDER}", _at_or_under(root))
            found.update((row[1], DocumentRecord(*row)) for row in rows)
        return found

    def file_stamps(self, under: Sequence[str] | None = None) -> dict[str, str | None]:
        """Every indexed file's stamp by path (qa.stores.base.settled_stamp, computed here by SQLite
        from the covering index), or those at or under `under`.

        The trusted stamps come back as one string, path and stamp after path and stamp with a NUL
        between each (no path holds one), cut apart by `str.split`. At 100,000 files that takes
        about as long as a row per file (0.11 to 0.12 s), but most of it is SQLite's own work,
        which lets other threads run: the indexer walks the folders meanwhile."""
        settled = f"mtime_ns / 1e9 < indexed_at - {SETTLE_SECONDS}"
        stamp = "size || ':' || mtime_ns"
        scopes = [("", ())] if under is None else [(f" WHERE {_AT_OR_UNDER}", _at_or_under(root)) for root in under]
        found: dict[str, str | None] = {}
        for where, arguments in scopes:
            try:
                trusted, untrusted = self._db.execute(
                    f"SELECT group_concat(CASE WHEN {settled} THEN path || char(0) || {stamp} END, char(0)),"
                    f" group_concat(CASE WHEN NOT ({settled}) THEN path END, char(0)) FROM documents{where}",
                    arguments,
                ).fetchone()
            except sqlite3.DataError:
                # Longer than SQLite's longest string (1 GB by default, some ten million files): a row each.
                found.update(self._db.execute(
                    f"SELECT path, CASE WHEN {settled} THEN {stamp} END FROM documents{where}", arguments
                ))
                continue
            if trusted:
                parts = trusted.split("\0")
                found.update(zip(parts[::2], parts[1::2]))
            if untrusted:
                found.update(dict.fromkeys(untrusted.split("\0")))
        return found

    def touch_document(self, doc_id: str, size: int, mtime_ns: int) -> None:
        """Record new file facts for a document whose content did not change."""
        self._db.execute(
            "UPDATE documents SET size = ?, mtime_ns = ?, indexed_at = ? WHERE doc_id = ?",
            (size, mtime_ns, time.time(), doc_id),
        )

    def places(self) -> Iterator[tuple[str, str, str | None]]:
        """(doc id, path, date) of every document: what search filters read."""
        yield from self._db.execute("SELECT doc_id, path, date FROM documents")

    def chunk_ids_of(self, doc_ids: Sequence[str]) -> list[int]:
        ids: list[int] = []
        for batch in _batches(list(doc_ids)):
            marks = ",".join("?" * len(batch))
            ids += [r[0] for r in self._db.execute(f"SELECT id FROM chunks WHERE doc_id IN ({marks})", batch)]
        return ids

    def remove_documents(self, doc_ids: Sequence[str]) -> None:
        """Delete documents with their chunks and keyword entries."""
        chunk_ids = self.chunk_ids_of(doc_ids)
        for batch in _batches(chunk_ids):
            marks = ",".join("?" * len(batch))
            self._db.execute(f"DELETE FROM chunk_terms WHERE rowid IN ({marks})", batch)
        for batch in _batches(list(doc_ids)):
            marks = ",".join("?" * len(batch))
            self._db.execute(f"DELETE FROM chunks WHERE doc_id IN ({marks})", batch)
            self._db.execute(f"DELETE FROM sentences WHERE doc_id IN ({marks})", batch)
            self._db.execute(f"DELETE FROM documents WHERE doc_id IN ({marks})", batch)

    def insert_documents(
        self,
        items: Sequence[IndexedArticle],
        chunk_ids: Sequence[int],
        sentence_vectors: Sequence[np.ndarray] | None = None,
    ) -> None:
        """Insert articles and their chunks; `chunk_ids` numbers the chunks in order.

        `sentence_vectors` holds, per article, one row per span of `article_sentences(item)`; they
        are stored as float16, which keeps cosines to about three decimals at half the size.
        """
        import numpy as np

        now = time.time()
        ids = iter(chunk_ids)
        for position, item in enumerate(items):
            a = item.article
            title_stems = keyword_stems(a.title)
            self._db.execute(
                "INSERT INTO documents(doc_id, path, title, date, content_hash, size, mtime_ns, text, "
                "indexed_at) VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (a.doc_id, a.path, a.title, a.date, a.content_hash, item.size, item.mtime_ns, a.text, now),
            )
            for chunk in item.chunks:
                chunk_id = next(ids)
                self._db.execute(
                    "INSERT INTO chunks(id, doc_id, ordinal, start_char, end_char, sentences) "
                    "VALUES(?, ?, ?, ?, ?, ?)",
                    (chunk_id, a.doc_id, chunk.ordinal, chunk.start, chunk.end, json.dumps(chunk.sentences)),
                )
                self._db.execute(
                    "INSERT INTO chunk_terms(rowid, title, body) VALUES(?, ?, ?)",
                    (chunk_id, title_stems, keyword_body(chunk)),
                )
            if sentence_vectors is not None:
                spans = article_sentences(item)
                vectors = np.asarray(sentence_vectors[position], dtype=np.float16)
                self._db.executemany(
                    "INSERT INTO sentences(doc_id, start_char, end_char, vector) VALUES(?, ?, ?, ?)",
                    [(a.doc_id, start, end, vectors[i].tobytes()) for i, (start, end) in enumerate(spans)],
                )

    def chunk_id_range(self) -> tuple[int, int]:
        """The lowest and highest chunk id held ((0, 0) when there are none)."""
        low, high = self._db.execute("SELECT min(id), max(id) FROM chunks").fetchone()
        return (int(low or 0), int(high or 0))

    def next_chunk_id(self) -> int:
        row = self._db.execute("SELECT max(id) FROM chunks").fetchone()
        floor = int(self.get_meta("next_chunk_id") or 1)
        return max(floor, (row[0] or 0) + 1)

    def chunks(self, chunk_ids: Sequence[int]) -> dict[int, ChunkRecord]:
        """Chunk rows with their document's title, path, date and the chunk's own text."""
        found: dict[int, ChunkRecord] = {}
        for batch in _batches(list(chunk_ids)):
            marks = ",".join("?" * len(batch))
            rows = self._db.execute(
                "SELECT c.id, c.doc_id, d.title, d.path, d.date, c.start_char, c.end_char, "
                "substr(d.text, c.start_char + 1, c.end_char - c.start_char), c.sentences, t.body "
                "FROM chunks c JOIN documents d ON d.doc_id = c.doc_id "
                f"LEFT JOIN chunk_terms t ON t.rowid = c.id WHERE c.id IN ({marks})",
                batch,
            )
            for row in rows:
                sentences = tuple(tuple(span) for span in json.loads(row[8]))
                found[row[0]] = ChunkRecord(*row[:8], sentences=sentences, stems=row[9])  # type: ignore[arg-type]
        return found

    def document_chunks(self, article: Article) -> tuple[list[int], list[Chunk]]:
        """A document's chunk ids and chunks, in order."""
        rows = self._db.execute(
            "SELECT id, ordinal, start_char, end_char, sentences FROM chunks WHERE doc_id = ? ORDER BY ordinal",
            (article.doc_id,),
        ).fetchall()
        chunks = [
            Chunk(article.doc_id, ordinal, start, end, article.text[start:end],
                  tuple(tuple(span) for span in json.loads(sentences)))  # type: ignore[misc]
            for _, ordinal, start, end, sentences in rows
        ]
        return [row[0] for row in rows], chunks

    def document_sentences(self, doc_id: str, dimension: int) -> tuple[list[Span], np.ndarray]:
        """A document's stored sentence spans and vectors (float32), in text order."""
        import numpy as np

        rows = self._db.execute(
            "SELECT start_char, end_char, vector FROM sentences WHERE doc_id = ? ORDER BY start_char, end_char",
            (doc_id,),
        ).fetchall()
        matrix = np.frombuffer(b"".join(row[2] for row in rows), dtype=np.float16).reshape(len(rows), dimension)
        return [(row[0], row[1]) for row in rows], matrix.astype(np.float32)

    def all_chunk_ids(self) -> list[int]:
        return [r[0] for r in self._db.execute("SELECT id FROM chunks")]

    def chunk_spans(self) -> Iterator[tuple[int, str, int, int]]:
        """(chunk id, doc id, start, end) of every chunk, for consistency checks."""
        yield from self._db.execute("SELECT id, doc_id, start_char, end_char FROM chunks")

    def document_text(self, doc_id: str) -> str | None:
        row = self._db.execute("SELECT text FROM documents WHERE doc_id = ?", (doc_id,)).fetchone()
        return None if row is None else str(row[0])

    def document(self, doc_id: str) -> Article | None:
        row = self._db.execute(
            "SELECT doc_id, path, title, text, content_hash, date FROM documents WHERE doc_id = ?",
            (doc_id,),
        ).fetchone()
        return None if row is None else Article(*row)

    def counts(self) -> tuple[int, int]:
        """(documents, chunks)."""
        docs = self._db.execute("SELECT count(*) FROM documents").fetchone()[0]
        chunks = self._db.execute("SELECT count(*) FROM chunks").fetchone()[0]
        return int(docs), int(chunks)

    def sentence_vectors(
        self, records: Sequence[ChunkRecord], dimension: int
    ) -> dict[int, tuple[list[Span], np.ndarray]]:
        """For each chunk, the spans of its sentences and their stored vectors (float32 rows)."""
        import numpy as np

        chunk_ids: list[int] = []
        spans: list[Span] = []
        blobs: list[bytes] = []
        # Only the sentences inside each chunk are read: a range of the (doc_id, start_char) index
        # per chunk, not every sentence of its document (a long article has many).
        for batch in _batches(list(records), 200):
            values = ",".join("(?,?,?,?)" for _ in batch)
            rows = self._db.execute(
                f"WITH wanted(chunk_id, doc_id, first, last) AS (VALUES {values}) "
                "SELECT w.chunk_id, s.start_char, s.end_char, s.vector FROM wanted w JOIN sentences s "
                "ON s.doc_id = w.doc_id AND s.start_char >= w.first AND s.start_char < w.last "
                "AND s.end_char <= w.last ORDER BY w.chunk_id, s.start_char",
                [value for r in batch for value in (r.chunk_id, r.doc_id, r.start, r.end)],
            )
            for chunk_id, start, end, blob in rows:
                chunk_ids.append(chunk_id)
                spans.append((start, end))
                blobs.append(blob)
        if not blobs:
            return {}
        # One conversion for every row: per-chunk float16 -> float32 copies cost more than the query.
        matrix = np.frombuffer(b"".join(blobs), dtype=np.float16).reshape(len(blobs), dimension).astype(np.float32)
        return sentences_by_chunk(chunk_ids, spans, matrix)

    def keyword_search(self, match: str, k: int) -> list[tuple[int, float]]:
        """FTS5 BM25 search; returns (chunk id, score) with higher scores better."""
        if not match:
            return []
        try:
            rows = self._db.execute(
                f"SELECT rowid, bm25(chunk_terms, {TITLE_WEIGHT}, 1.0) AS rank FROM chunk_terms "
                "WHERE chunk_terms MATCH ? ORDER BY rank LIMIT ?",
                (match, k),
            ).fetchall()
        except sqlite3.OperationalError:
            return []
        # FTS5's bm25() is negative, lower is better; flip it so every score reads "higher is better".
        return [(int(rowid), -float(rank)) for rowid, rank in rows]

    def documents_of(self, chunk_ids: Sequence[int]) -> dict[int, str]:
        """The document id of each of `chunk_ids` still indexed."""
        found: dict[int, str] = {}
        for batch in _batches(list(chunk_ids)):
            marks = ",".join("?" * len(batch))
            found.update(self._db.execute(f"SELECT id, doc_id FROM chunks WHERE id IN ({marks})", batch))
        return found

    def drop_article_terms(self) -> None:
        """Remove the FTS5 table of whole articles that indexes written in December 2026 hold
        (whole articles are scored from the chunks' postings now); nothing where there is none."""
        if self._db.execute("SELECT 1 FROM sqlite_master WHERE name = 'article_terms'").fetchone():
            with self.transaction():
                self._db.execute("DROP TABLE article_terms")
                self._db.execute("DELETE FROM meta WHERE key = 'article_terms'")

    def document_frequency(self, term: str) -> int:
        """How many chunks contain `term` (a stem, as the keyword index holds them)."""
        try:
            row = self._db.execute(
                "SELECT count(*) FROM chunk_terms WHERE chunk_terms MATCH ?",
                ('"' + term.replace('"', '""') + '"',),
            ).fetchone()
        except sqlite3.OperationalError:
            return 0
        return int(row[0])

    def keyword_bodies(self) -> dict[int, str]:
        return {int(r[0]): str(r[1]) for r in self._db.execute("SELECT rowid, body FROM chunk_terms")}

    def chunk_sentences(self) -> Iterator[tuple[str, str]]:
        """(doc id, the chunk's sentence spans as JSON) of every chunk, for consistency checks."""
        yield from self._db.execute("SELECT doc_id, sentences FROM chunks")

    def sentence_rows(self) -> Iterator[tuple[str, int, int, int]]:
        """(doc id, start, end, vector bytes) of every stored sentence."""
        yield from self._db.execute("SELECT doc_id, start_char, end_char, length(vector) FROM sentences")


@dataclass(frozen=True)
class SegmentRow:
    """One live vector file: its number, the chunk ids it covers, how many vectors it holds, and
    whether it is an approximate (IVF) index."""

    id: int
    first_id: int
    last_id: int
    vectors: int
    approximate: bool


def fts_query(terms: Sequence[str]) -> str:
    """An FTS5 MATCH expression that finds any of the terms; each is quoted so none is an operator."""
    return " OR ".join('"' + term.replace('"', '""') + '"' for term in terms)


def keyword_body(chunk: Chunk) -> str:
    """What the keyword index keeps of a chunk's text: its stems, with its sentences marked when
    they can be (qa.text.marked_stems), which FTS5 reads as the very same tokens. Hybrid search
    reads the stems back with the chunk instead of cutting its text into words again."""
    spans = tuple((start - chunk.start, end - chunk.start) for start, end in chunk.sentences)
    marked = marked_stems(chunk.text, spans)
    return keyword_stems(chunk.text) if marked is None else marked


def _batches(items: list, size: int = 500) -> Iterator[list]:
    # SQLite caps the number of bound parameters in one statement.
    for begin in range(0, len(items), size):
        yield items[begin : begin + size]


# What lies at or under a path is a range of the path index: the path itself, and from "root/" up
# to the next separator character, so no table scan however many documents there are.
_AT_OR_UNDER = "(path = ? OR (path >= ? AND path < ?))"


def _at_or_under(root: str) -> tuple[str, str, str]:
    """The arguments of `_AT_OR_UNDER` for `root`."""
    folder = root.rstrip(os.sep) + os.sep
    return root, folder, folder[:-1] + chr(ord(os.sep) + 1)
