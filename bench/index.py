"""Full index build: chunks/s of the whole pipeline beside a bare model.encode on the same texts.

    .venv/bin/python bench/index.py --articles 100 [--backend onnx-int8] [--json] [FILES…]

The pipeline embeds every chunk and every sentence (sentence vectors feed hybrid retrieval and the
answer), so the bare encode is timed on exactly those texts too; their time ratio is the
pipeline's efficiency. Model loading is outside both timings.
"""

from __future__ import annotations

import argparse
import sqlite3
import tempfile
from pathlib import Path

from common import machine_facts, report, squad_articles, timed, write_articles

from qa.embed import Embedder
from qa.indexer import update_index


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="*", type=Path, help="real article files or folders (default: SQuAD articles)")
    parser.add_argument("--articles", type=int, default=100, help="how many SQuAD-made articles (default 100)")
    parser.add_argument("--backend", choices=["torch", "onnx", "onnx-int8"], default=None)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    embedder = Embedder(backend=args.backend)
    embedder.load()
    with tempfile.TemporaryDirectory() as tmp:
        corpus = [*args.files] or [Path(tmp) / "corpus"]
        if not args.files:
            write_articles(corpus[0], squad_articles(args.articles))
        index_dir = Path(tmp) / "index"
        with timed() as pipeline:
            result = update_index(index_dir, corpus, embedder=embedder)
        texts, chunk_texts = _embedded_texts(index_dir / "catalog.sqlite")
        model = embedder.load()
        by_length = sorted(texts, key=len)
        with timed() as bare:
            model.encode(by_length, batch_size=embedder.batch_size)
        with timed() as bare_chunks:
            model.encode(sorted(chunk_texts, key=len), batch_size=embedder.batch_size)

    rows = [
        {"what": "qa index (whole pipeline)", "seconds": pipeline["seconds"], "chunks": result.chunks,
         "texts embedded": len(texts), "chunks/s": result.chunks / pipeline["seconds"],
         "texts/s": len(texts) / pipeline["seconds"]},
        {"what": "bare model.encode, same texts", "seconds": bare["seconds"], "texts embedded": len(texts),
         "chunks/s": result.chunks / bare["seconds"], "texts/s": len(texts) / bare["seconds"]},
        {"what": "bare model.encode, chunks only", "seconds": bare_chunks["seconds"], "chunks": len(chunk_texts),
         "texts embedded": len(chunk_texts), "chunks/s": len(chunk_texts) / bare_chunks["seconds"]},
    ]
    efficiency = bare["seconds"] / pipeline["seconds"]
    notes = [
        f"{result.documents} articles; {result.chunks} chunks and {len(texts) - result.chunks} sentences embedded.",
        f"Pipeline efficiency (bare encode time / pipeline time, same texts, same backend): {efficiency:.3f}",
    ]
    report("bench/index.py: full index build", rows, machine_facts(embedder.backend), args.json, notes)


def _embedded_texts(catalog: Path) -> tuple[list[str], list[str]]:
    """Every text the pipeline sent to the model: chunks, then sentences."""
    db = sqlite3.connect(str(catalog))
    chunks = [r[0] for r in db.execute(
        "SELECT substr(d.text, c.start_char + 1, c.end_char - c.start_char) FROM chunks c JOIN documents d USING(doc_id)")]
    sentences = [r[0] for r in db.execute(
        "SELECT substr(d.text, s.start_char + 1, s.end_char - s.start_char) FROM sentences s JOIN documents d USING(doc_id)")]
    db.close()
    return chunks + sentences, chunks


if __name__ == "__main__":
    main()
