"""Incremental updates against a full rebuild, on the same corpus in the same run.

    .venv/bin/python bench/incremental.py --articles 200 [--backend onnx-int8] [--json]
    .venv/bin/python bench/incremental.py --articles 50 --base-articles 10000

Times `qa index` (in-process, model loaded) after adding 1 article, changing 1, deleting 1 and
with nothing changed, and a full rebuild; and, as the floor of a scan, a bare listing of the same
folders with one stat per file. With --base-articles N, the index also holds N more
article files whose vectors are RANDOM (embedding them all would take hours here), written as one
segment, as one large update would: every update still stats all N files and commits to the same
catalog, so the update figures are real; the rebuild of the whole corpus is then estimated from
the measured embedding rate, and says so. Each step shows how much of its time the model took.
"""

from __future__ import annotations

import argparse
import os
import random
import tempfile
import time
from pathlib import Path

import numpy as np
from common import machine_facts, report, squad_articles, timed, write_articles

from qa.stores.local.catalog import Catalog
from qa.types import IndexedArticle
from qa.chunk import chunk_text
from qa.embed import Embedder
from qa.stores.local.store import CATALOG_FILE, save_segment
from qa.indexer import update_index
from qa.ingest import read_article
from qa.stores.local.vectors import FaissVectorStore


def add_random_base(index_dir: Path, folder: Path, count: int, embedder: Embedder) -> int:
    """Write `count` article files of recombined real sentences and index them with random vectors."""
    from query import _real_sentences, _unit

    sentences = _real_sentences()
    shuffle = random.Random(1)
    folder.mkdir(parents=True)
    paths = []
    for n in range(count):
        text = " ".join(shuffle.sample(sentences, 12))
        path = folder / f"base_{n:06d}.md"
        path.write_text(f"---\ntitle: Base article {n}\n---\n\n{text}\n", encoding="utf-8")
        paths.append(path)
    time.sleep(2.1)  # files settle, as real ones would have long before an update
    rng = np.random.default_rng(1)
    catalog = Catalog.open(index_dir / CATALOG_FILE)
    generation = catalog.generation
    vectors = FaissVectorStore(embedder.dimension)  # one more segment, as one big update would write
    next_id = first_id = catalog.next_chunk_id()
    made = 0
    for begin in range(0, count, 1000):
        items, ids, sentence_vectors = [], [], []
        for path in paths[begin : begin + 1000]:
            article = read_article(path)
            chunks = chunk_text(article.doc_id, article.text, embedder.count_tokens)
            stat = path.stat()
            items.append(IndexedArticle(article, tuple(chunks), stat.st_size, stat.st_mtime_ns))
            ids += list(range(next_id, next_id + len(chunks)))
            next_id += len(chunks)
            sentence_vectors.append(_unit(rng, len({s for c in chunks for s in c.sentences}), embedder.dimension))
        vectors.add(ids, _unit(rng, len(ids), embedder.dimension))
        with catalog.transaction():
            catalog.insert_documents(items, ids, sentence_vectors)
            catalog.add_sources([str(folder)])
        made += len(ids)
    segment = save_segment(index_dir, catalog, vectors, first_id, next_id - 1)
    with catalog.transaction():
        catalog.add_segment(segment)
        catalog.set_meta("next_segment_id", segment.id + 1)
        catalog.set_meta("generation", generation + 1)
        catalog.set_meta("next_chunk_id", next_id)
    catalog.close()
    return made


def bare_walk(folders: list[Path]) -> int:
    """List `folders` (recursively) and stat each file once, as cheaply as Python can: what a scan
    that finds nothing changed cannot go below. Returns the number of files."""
    count = 0
    pending = [str(folder) for folder in folders]
    while pending:
        with os.scandir(pending.pop()) as entries:
            for entry in entries:
                if entry.is_dir(follow_symlinks=False):
                    pending.append(entry.path)
                else:
                    entry.stat()
                    count += 1
    return count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--articles", type=int, default=200, help="real SQuAD-made articles, embedded for real")
    parser.add_argument("--base-articles", type=int, default=0, help="extra articles with random vectors")
    parser.add_argument("--backend", choices=["torch", "onnx", "onnx-int8"], default=None)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    embedder = Embedder(backend=args.backend)
    embedder.load()
    # The model's share of each step, apart from what the index itself costs.
    encoding = {"seconds": 0.0}
    encode_passages = embedder.encode_passages

    def timed_encode(*args, **kwargs):
        started = time.perf_counter()
        try:
            return encode_passages(*args, **kwargs)
        finally:
            encoding["seconds"] += time.perf_counter() - started

    embedder.encode_passages = timed_encode
    articles = squad_articles(args.articles + 1)
    rows = []
    notes = []
    with tempfile.TemporaryDirectory() as tmp:
        corpus = Path(tmp) / "corpus"
        write_articles(corpus, articles[:-1])
        index_dir = Path(tmp) / "index"
        with timed() as first:
            built = update_index(index_dir, [corpus], embedder=embedder)
        rows.append({"step": f"first build, {built.documents} articles", "seconds": first["seconds"],
                     "chunks embedded": built.chunks_embedded})
        chunks_per_second = built.chunks_embedded / first["seconds"]
        base_chunks = 0
        if args.base_articles:
            base_chunks = add_random_base(index_dir, Path(tmp) / "base", args.base_articles, embedder)
            notes.append(f"+{args.base_articles} base articles ({base_chunks} chunks) hold RANDOM vectors, in one "
                         "segment; their files are scanned on every update, as real ones would be.")
        time.sleep(2.1)  # so size+mtime alone tell that the first build's files did not change

        steps = []
        new_path = write_articles(corpus, articles[-1:], start=len(articles) - 1)[0]
        steps.append(("add 1 article", None))
        # The same article again under another name, told to `qa index --only` (no scan).
        told = corpus / "told.md"
        steps.append(("add 1 article, qa index --only FILE", lambda: told.write_text(new_path.read_text())))
        changed = corpus / "article_00000.md"
        steps.append(("change 1 article", lambda: changed.write_text(
            changed.read_text() + "\nA late correction was added to this article on Monday.\n")))
        steps.append(("delete 1 article", lambda: (corpus / "article_00001.md").unlink()))
        steps.append(("nothing changed", lambda: None))
        for name, action in steps:
            if action:
                action()
            encoding["seconds"] = 0.0
            with timed() as step:
                if "--only" in name:
                    result = update_index(index_dir, [told], embedder=embedder, only=True)
                else:
                    result = update_index(index_dir, embedder=embedder)
            rows.append({"step": name, "seconds": step["seconds"], "chunks embedded": result.chunks_embedded,
                         "of which embedding s": encoding["seconds"]})

        # The floor of any scan: the same folders listed, and each file stat'ed, with nothing else.
        with timed() as bare:
            statted = bare_walk([corpus, Path(tmp) / "base"] if args.base_articles else [corpus])
        rows.append({"step": f"bare walk: list + stat {statted} files, nothing else", "seconds": bare["seconds"]})
        documents = result.documents
        if args.base_articles:
            with timed() as rebuild_real:
                update_index(Path(tmp) / "rebuild", [corpus], embedder=embedder, rebuild=True)
            estimate = rebuild_real["seconds"] * (documents / (documents - args.base_articles))
            rows.append({"step": f"full rebuild, {documents} articles (ESTIMATED)", "seconds": estimate})
            notes.append(f"The rebuild of all {documents} articles is estimated: a measured rebuild of the "
                         f"{documents - args.base_articles} real ones ({rebuild_real['seconds']:.1f} s) scaled by article count.")
            rebuild_seconds = estimate
        else:
            with timed() as rebuild:
                update_index(index_dir, embedder=embedder, rebuild=True)
            rows.append({"step": f"full rebuild, {documents} articles", "seconds": rebuild["seconds"]})
            rebuild_seconds = rebuild["seconds"]
    for row in rows[1:6]:
        row["× faster than rebuild"] = rebuild_seconds / row["seconds"]
    notes.append(f"Pipeline rate in the first build: {chunks_per_second:.1f} chunks/s (each chunk read once by the model; "
                 "its sentences' vectors are pooled from that pass).")
    report("bench/incremental.py: update vs rebuild", rows, machine_facts(embedder.backend), args.json, notes)


if __name__ == "__main__":
    main()
