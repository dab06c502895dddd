"""Warm query latency (search and ask, each mode) and resident memory at 10k and 100k chunks.

    .venv/bin/python bench/query.py [--sizes 10000 100000] [--queries 200] [--json]

Embedding 100,000 chunks takes hours on two cores, so this bench builds its indexes directly:
real text (sentences of SQuAD paragraphs, recombined into distinct articles) with RANDOM unit
vectors in FAISS and for the sentences. Latency and memory are real; dense rankings are not, so
no quality figure is printed here (see `qa eval` for quality).
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
from common import SHARED_EVAL, machine_facts, report

from qa.answer import answer_question
from qa.catalog import Catalog, IndexedArticle
from qa.chunk import split_sentences
from qa.embed import Embedder
from qa.index import CATALOG_FILE, Index, new_manifest, vectors_path
from qa.ingest import content_hash
from qa.store import FaissVectorStore
from qa.types import Article, Chunk

SENTENCES_PER_CHUNK = 4
CHUNKS_PER_ARTICLE = 3


def _real_sentences() -> list[str]:
    rows = [json.loads(line) for line in (SHARED_EVAL / "squad-dev-v1.1.corpus.jsonl").read_text().splitlines()]
    sentences = []
    for row in rows:
        text = row["text"]
        sentences += [text[a:b] for a, b in split_sentences(text)]
    return sentences


def build_index(folder: Path, chunks_wanted: int, sentences: list[str], dimension: int, model: str) -> None:
    """An index of recombined real sentences with random unit vectors (see the module docstring)."""
    rng = np.random.default_rng(0)
    shuffle = random.Random(0)
    folder.mkdir(parents=True)
    new_manifest(model, dimension).save(folder)
    catalog = Catalog.open(folder / CATALOG_FILE, create=True)
    vectors = FaissVectorStore(dimension)
    next_id = 1
    batch: list[IndexedArticle] = []
    batch_sentence_vectors = []
    batch_ids: list[int] = []
    made = 0
    n = 0
    while made < chunks_wanted:
        picked = shuffle.sample(sentences, SENTENCES_PER_CHUNK * CHUNKS_PER_ARTICLE)
        text = " ".join(picked)
        spans, offset = [], 0
        for sentence in picked:  # the spans are known: no need to split the text again
            spans.append((offset, offset + len(sentence)))
            offset += len(sentence) + 1
        chunks = []
        per = max(1, len(spans) // CHUNKS_PER_ARTICLE)
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
    vectors.save(vectors_path(folder, 1))
    with catalog.transaction():
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
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--backend", choices=["torch", "onnx", "onnx-int8"], default=None)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    from qa.retrieve import Retriever

    embedder = Embedder(backend=args.backend)
    embedder.load()
    questions = [json.loads(line)["question"] for line in
                 (SHARED_EVAL / "squad-dev-v1.1.queries.jsonl").read_text().splitlines()[: args.queries]]
    vectors = embedder.encode(questions)
    sentences = _real_sentences()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for size in args.sizes:
            folder = Path(tmp) / f"index-{size}"
            started = time.perf_counter()
            build_index(folder, size, sentences, embedder.dimension, embedder.name)
            build_seconds = time.perf_counter() - started
            before = _rss_mib()
            index = Index.open(folder)
            loaded = _rss_mib() - before
            retriever = Retriever(index, embedder)
            for mode in ("dense", "keyword", "hybrid"):
                latencies = []
                for question, vector in zip(questions, vectors):
                    t = time.perf_counter()
                    retriever.search(question, k=5, mode=mode, query_vector=vector)
                    latencies.append((time.perf_counter() - t) * 1000)
                rows.append(_row(size, f"search {mode}", latencies, loaded, build_seconds))
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
        "RSS = resident memory added by opening the index (FAISS flat index loaded; SQLite pages on demand).",
    ]
    report("bench/query.py: warm in-process latency", rows, machine_facts(embedder.backend), args.json, notes)


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
