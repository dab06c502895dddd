"""Warm query latency (search and ask, each mode) and resident memory at 10k and 100k chunks, and the
vector index alone, exact and approximate, at 100k, 150k, 300k and 1M vectors.

    .venv/bin/python bench/query.py [--sizes 10000 100000] [--queries 200] [--json]
        [--ann-sizes 100000 150000 300000 1000000] [--ann-data real-like random] [--article-chunks 3]

Embedding 100,000 chunks takes hours on two cores, so this bench builds its indexes directly:
real text (sentences of SQuAD paragraphs, recombined into distinct articles of 3 chunks, or of
`--article-chunks`: 12 is a news story's length, whose articles hybrid search also scores whole
for questions of 8 content words or more)
with RANDOM unit vectors in FAISS and for the sentences. Latency and memory are real; dense rankings are not, so
no quality figure is printed for them (see `qa eval` for quality).

The vector-index section times one dense search (k=64, the retriever's candidate pool) in the exact
flat index and in the approximate IVF index that `FaissVectorStore` switches to past its threshold,
and counts how many of the exact top 64 (and top 5) the approximate one finds. It does so on random
unit vectors (no structure: the worst case for an IVF index) and on real-like ones: blends of two
embedded SQuAD sentences plus noise, searched with embedded SQuAD questions. `--sizes` or
`--ann-sizes` with no numbers skips that section.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from common import machine_facts, report, shared_eval_lines

from qa.answer import answer_question
from qa.stores.local.catalog import Catalog
from qa.types import IndexedArticle
from qa.chunk import split_sentences
from qa.embed import Embedder
from qa.stores import open_store
from qa.stores.base import new_manifest
from qa.stores.local.store import CATALOG_FILE, save_manifest, save_segment
from qa.ingest import content_hash
from qa.stores.local.vectors import ANN_THRESHOLD, TUNED_K, FaissVectorStore
from qa.types import Article, Chunk, SearchFilters

REAL_LIKE_SENTENCES = 4000
SENTENCES_PER_CHUNK = 4
CHUNKS_PER_ARTICLE = 3


def _real_sentences() -> list[str]:
    rows = [json.loads(line) for line in shared_eval_lines("squad-dev-v1.1.corpus.jsonl")]
    sentences = []
    for row in rows:
        text = row["text"]
        sentences += [text[a:b] for a, b in split_sentences(text)]
    return sentences


def build_index(folder: Path, chunks_wanted: int, sentences: list[str], dimension: int, model: str,
                article_chunks: int = CHUNKS_PER_ARTICLE) -> None:
    """An index of recombined real sentences with random unit vectors (see the module docstring)."""
    rng = np.random.default_rng(0)
    shuffle = random.Random(0)
    folder.mkdir(parents=True)
    save_manifest(folder, new_manifest(model, dimension))
    catalog = Catalog.open(folder / CATALOG_FILE, create=True)
    vectors = FaissVectorStore(dimension)
    next_id = 1
    batch: list[IndexedArticle] = []
    batch_sentence_vectors = []
    batch_ids: list[int] = []
    made = 0
    n = 0
    while made < chunks_wanted:
        picked = shuffle.sample(sentences, SENTENCES_PER_CHUNK * article_chunks)
        text = " ".join(picked)
        spans, offset = [], 0
        for sentence in picked:  # the spans are known: no need to split the text again
            spans.append((offset, offset + len(sentence)))
            offset += len(sentence) + 1
        chunks = []
        per = max(1, len(spans) // article_chunks)
        for ordinal, begin in enumerate(range(0, len(spans), per)):
            group = spans[begin : begin + per]
            start, end = group[0][0], group[-1][1]
            chunks.append(Chunk(f"doc{n}", ordinal, start, end, text[start:end], tuple(group)))
        article = Article(f"doc{n}", f"/bench/article_{n:06d}.md", f"Article {n}", text, content_hash(text.encode()))
        batch.append(IndexedArticle(article, tuple(chunks), len(text), 0))
        sentence_count = len({s for c in chunks for s in c.sentences})
        batch_sentence_vectors.append(_unit(rng, sentence_count, dimension))
        batch_ids += list(range(next_id, next_id + len(chunks)))
        next_id += len(chunks)
        made += len(chunks)
        n += 1
        if len(batch) >= 2000 or made >= chunks_wanted:
            vectors.add(batch_ids, _unit(rng, len(batch_ids), dimension))
            with catalog.transaction():
                catalog.insert_documents(batch, batch_ids, batch_sentence_vectors)
            batch, batch_sentence_vectors, batch_ids = [], [], []
    segment = save_segment(folder, catalog, vectors, 1, next_id - 1)
    with catalog.transaction():
        catalog.add_segment(segment)
        catalog.set_meta("generation", 1)
        catalog.set_meta("next_chunk_id", next_id)
    catalog.close()


def _unit(rng: np.random.Generator, rows: int, dimension: int) -> np.ndarray:
    matrix = rng.standard_normal((rows, dimension)).astype(np.float32)
    return matrix / np.linalg.norm(matrix, axis=1, keepdims=True)


def _rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=" ".join(__doc__.split("\n\n")[0].split()))
    parser.add_argument("--sizes", type=int, nargs="*", default=[10_000, 100_000])
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--ann-sizes", type=int, nargs="*", default=[100_000, 150_000, 300_000, 1_000_000])
    parser.add_argument("--ann-data", nargs="+", choices=["real-like", "random"], default=["real-like", "random"])
    parser.add_argument("--backend", choices=["torch", "onnx", "onnx-int8"], default=None)
    parser.add_argument("--article-chunks", type=int, default=CHUNKS_PER_ARTICLE,
                        help="chunks per built article (12 for news-length stories)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    from qa.retrieve import ARTICLE_MIN_PASSAGES, ARTICLE_MIN_QUESTION_WORDS, Retriever
    from qa.text import query_terms

    embedder = Embedder(backend=args.backend, bulk=False)  # a question at a time, as `qa ask` runs it
    embedder.load()
    questions = [json.loads(line)["question"] for line in
                 shared_eval_lines("squad-dev-v1.1.queries.jsonl")[: args.queries]]
    vectors = embedder.encode(questions)
    long_questions = sum(len(query_terms(q)) >= ARTICLE_MIN_QUESTION_WORDS for q in questions)
    sentences = _real_sentences()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for size in args.sizes:
            folder = Path(tmp) / f"index-{size}"
            started = time.perf_counter()
            build_index(folder, size, sentences, embedder.dimension, embedder.name, args.article_chunks)
            build_seconds = time.perf_counter() - started
            before = _rss_mib()
            index = open_store(folder)
            loaded = _rss_mib() - before
            # Each mode on a store opened afresh, so no query meets terms an earlier mode read (the
            # local store caches each term's postings); then hybrid again, its terms cached.
            for mode in ("dense", "keyword", "hybrid", "hybrid, terms cached"):
                if not mode.endswith("cached"):
                    index.close()
                    index = open_store(folder)
                retriever = Retriever(index, embedder)
                latencies = []
                for question, vector in zip(questions, vectors):
                    t = time.perf_counter()
                    retriever.search(question, k=5, mode=mode.split(",")[0], query_vector=vector)
                    latencies.append((time.perf_counter() - t) * 1000)
                rows.append(_row(size, f"search {mode}", latencies, loaded, build_seconds))
            # Filtered: searched inside the articles the filter admits (their chunks are read from
            # the catalog at the first search under a filter and kept for the next ones).
            for label, source in (("narrow", "article_0001??.md"), ("broad", "article_*")):
                filters = SearchFilters(source=source)
                t = time.perf_counter()
                admitted = len(index.filtered_chunks(filters))
                first = (time.perf_counter() - t) * 1000
                latencies = []
                for question, vector in zip(questions, vectors):
                    t = time.perf_counter()
                    retriever.search(question, k=5, mode="hybrid", query_vector=vector, filters=filters)
                    latencies.append((time.perf_counter() - t) * 1000)
                rows.append(_row(size, f"search hybrid, {label} filter ({admitted:,} chunks; first read "
                                 f"{first:.0f} ms)", latencies, loaded, build_seconds))
            latencies = []
            for question in questions:
                t = time.perf_counter()
                answer_question(retriever, question)  # embeds the question too, as `qa ask` does
                latencies.append((time.perf_counter() - t) * 1000)
            rows.append(_row(size, "ask hybrid (with query embedding)", latencies, loaded, build_seconds))
            index.close()
    notes = [
        "Indexes are real text with RANDOM unit vectors (chunks in FAISS, sentences in SQLite): latency and "
        "memory are real, dense rankings are not. Search times exclude embedding the query; ask includes it.",
        "Each search mode runs on a store opened afresh (no term postings cached); 'hybrid, terms cached' "
        "asks the same questions again, as a server or chat that has met their words does; ask follows it.",
        "RSS = resident memory added by opening the index (FAISS flat index loaded; SQLite pages on demand).",
        "Filtered rows: --source article_0001??.md (100 articles) and article_* (all), terms cached; 'first "
        "read' is the one-off read of which chunks the filter admits, kept for the searches after it.",
        f"Articles of {args.article_chunks} chunks each; hybrid search also scores whole articles of "
        f"{ARTICLE_MIN_PASSAGES} chunks or more"
        + (" (none here)" if args.article_chunks < ARTICLE_MIN_PASSAGES else "")
        + f" for questions of {ARTICLE_MIN_QUESTION_WORDS} content words or more ({long_questions} of these "
        f"{len(questions)}).",
    ]
    ann_rows = []
    if args.ann_sizes:
        real_like_base = embedder.encode(random.Random(1).sample(sentences, REAL_LIKE_SENTENCES))
        for kind in args.ann_data:
            for size in args.ann_sizes:
                ann_rows += vector_index_rows(kind, size, real_like_base, vectors)
    ann_notes = [
        f"One dense search, k={TUNED_K} (the retriever's candidate pool), one thread, in FaissVectorStore: the "
        f"exact flat index, and the IVF index it turns into past {ANN_THRESHOLD:,} vectors (forced here at "
        "every size). 'default' marks the one a store of that size uses. recall@k = share of the flat "
        "index's top k that the IVF index also returns.",
        "random: RANDOM unit vectors and queries, which have no clusters for an IVF index to use (its tuning "
        "then probes nearly every list). real-like: blends (1-w)a + wb + noise, w in [0, 0.5], of two "
        f"embedded SQuAD sentences ({REAL_LIKE_SENTENCES:,} embedded), searched with embedded SQuAD "
        "questions; not a real corpus of that size, which would take days to embed here.",
        "convert s = the one-off cost, at the commit that crosses the threshold, of training the IVF lists, "
        "filling them and tuning nprobe. file MiB = the saved index, about what it takes in memory once "
        "loaded; vectors MiB = the raw float32 vectors.",
    ]
    facts = machine_facts(embedder.backend)
    if args.json:
        print(json.dumps({"benchmark": "bench/query.py", "machine": facts, "results": rows, "notes": notes,
                          "vector_index": ann_rows, "vector_index_notes": ann_notes}, indent=2))
        return
    if rows:
        report("bench/query.py: warm in-process latency", rows, facts, False, notes)
    if ann_rows:
        report("bench/query.py: vector index, exact and approximate", ann_rows, facts, False, ann_notes)


def vector_index_rows(kind: str, size: int, real_like_base: np.ndarray, questions: np.ndarray) -> list[dict]:
    """The exact and the approximate index over `size` vectors of one kind: search time, recall, size."""
    rng = np.random.default_rng(size)
    dimension = real_like_base.shape[1]
    if kind == "random":
        stored = _unit(rng, size, dimension)
        queries = _unit(rng, len(questions), dimension)
    else:
        stored = _real_like(rng, real_like_base, size)
        queries = np.ascontiguousarray(questions, dtype=np.float32)
    ids = rng.choice(2**62, size, replace=False)  # chunk ids are arbitrary int64s, not positions
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        exact = FaissVectorStore(dimension, threshold=size)  # at its threshold: stays flat on save
        exact.add(ids, stored)
        latencies, truth = _timed_searches(exact, queries)
        exact.save(Path(tmp) / "flat.faiss")
        rows.append(_ann_row(kind, size, exact, latencies, truth, truth, 0.0, Path(tmp) / "flat.faiss"))
        del exact  # the two indexes are never in memory together, so 1M vectors fit easily

        approximate = FaissVectorStore(dimension, threshold=0)
        approximate.add(ids, stored)
        del stored
        started = time.perf_counter()
        approximate.choose_index()
        convert = time.perf_counter() - started
        latencies, found = _timed_searches(approximate, queries)
        approximate.save(Path(tmp) / "ivf.faiss")
        rows.append(_ann_row(kind, size, approximate, latencies, found, truth, convert, Path(tmp) / "ivf.faiss"))
    return rows


def _real_like(rng: np.random.Generator, base: np.ndarray, rows: int) -> np.ndarray:
    """Unit vectors between pairs of real embeddings: (1-w)a + wb + noise, w in [0, 0.5]."""
    out = np.empty((rows, base.shape[1]), dtype=np.float32)
    for begin in range(0, rows, 100_000):  # in slices, so the temporaries stay small
        n = min(100_000, rows - begin)
        a = base[rng.integers(0, len(base), n)]
        b = base[rng.integers(0, len(base), n)]
        w = rng.uniform(0.0, 0.5, (n, 1)).astype(np.float32)
        noise = rng.standard_normal(a.shape).astype(np.float32) * (0.3 / np.sqrt(base.shape[1]))
        mixed = (1 - w) * a + w * b + noise
        out[begin : begin + n] = mixed / np.linalg.norm(mixed, axis=1, keepdims=True)
    return out


def _timed_searches(store: FaissVectorStore, queries: np.ndarray) -> tuple[list[float], list[list[int]]]:
    latencies, found = [], []
    for query in queries:
        started = time.perf_counter()
        hits = store.search(query, TUNED_K)
        latencies.append((time.perf_counter() - started) * 1000)
        found.append([i for i, _ in hits])
    return latencies, found


def _ann_row(kind: str, size: int, store: FaissVectorStore, latencies: list[float], found: list[list[int]],
             truth: list[list[int]], convert: float, path: Path) -> dict:
    ordered = sorted(latencies)
    default = store.approximate == (size > ANN_THRESHOLD)
    return {
        "data": kind,
        "chunks": size,
        "index": store.describe() + (" (default)" if default else ""),
        "p50 ms": statistics.median(ordered),
        "p95 ms": ordered[int(0.95 * (len(ordered) - 1))],
        f"recall@{TUNED_K}": _recall(found, truth, TUNED_K),
        "recall@5": _recall(found, truth, 5),
        "convert s": convert,
        "file MiB": path.stat().st_size / 2**20,
        "vectors MiB": size * store.dimension * 4 / 2**20,
    }


def _recall(found: list[list[int]], truth: list[list[int]], k: int) -> float:
    return statistics.mean(len(set(f[:k]) & set(t[:k])) / len(t[:k]) for f, t in zip(found, truth))


def _row(size: int, mode: str, latencies: list[float], loaded_mib: float, build_seconds: float) -> dict:
    ordered = sorted(latencies)
    return {
        "chunks": size,
        "mode": mode,
        "p50 ms": statistics.median(ordered),
        "p95 ms": ordered[int(0.95 * (len(ordered) - 1))],
        "index RSS MiB": loaded_mib,
        "build s": build_seconds,
    }


if __name__ == "__main__":
    main()
