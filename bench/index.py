"""Full index build: chunks/s of the whole pipeline beside a bare model.encode on the same texts.

    .venv/bin/python bench/index.py --articles 100 [--backend onnx-int8] [--json] [FILES…]

The pipeline reads each chunk through the model once, led by its article's headline, and pools
its sentences' vectors from the same pass; the bare encode is timed on exactly those texts, and
their time ratio is the pipeline's efficiency. For scale, the bare encode of what index format 1
embedded (every chunk, then every sentence again on its own) is timed too. Model loading is
outside every timing.
"""

from __future__ import annotations

import argparse
import sqlite3
import tempfile
from pathlib import Path

from common import machine_facts, report, squad_articles, timed, write_articles

from qa.chunk import embedding_text
from qa.embed import Embedder
from qa.indexer import update_index
from qa.ingest import article_heading


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
        texts, sentences = _embedded_texts(index_dir / "catalog.sqlite")
        model = embedder.load()
        with timed() as bare:
            model.encode(sorted(texts, key=len), batch_size=embedder.batch_size)
        with timed() as separately:
            model.encode(sorted(texts + sentences, key=len), batch_size=embedder.batch_size)

    rows = [
        {"what": "qa index (whole pipeline)", "seconds": pipeline["seconds"], "chunks": result.chunks,
         "texts embedded": len(texts), "chunks/s": result.chunks / pipeline["seconds"]},
        {"what": "bare model.encode, same texts", "seconds": bare["seconds"], "chunks": result.chunks,
         "texts embedded": len(texts), "chunks/s": result.chunks / bare["seconds"]},
        {"what": "bare model.encode, chunks + sentences alone (format 1)", "seconds": separately["seconds"],
         "chunks": result.chunks, "texts embedded": len(texts) + len(sentences),
         "chunks/s": result.chunks / separately["seconds"]},
    ]
    efficiency = bare["seconds"] / pipeline["seconds"]
    notes = [
        f"{result.documents} articles; {result.chunks} chunks embedded, {len(sentences)} sentence vectors pooled from them.",
        f"Pipeline efficiency (bare encode time / pipeline time, same texts, same backend): {efficiency:.3f}",
    ]
    report("bench/index.py: full index build", rows, machine_facts(embedder.backend), args.json, notes)


def _embedded_texts(catalog: Path) -> tuple[list[str], list[str]]:
    """The texts the pipeline sent to the model (headline-led chunks), and the indexed sentences."""
    db = sqlite3.connect(str(catalog))
    chunks = [
        embedding_text(article_heading(title, path), text)
        for title, path, text in db.execute(
            "SELECT d.title, d.path, substr(d.text, c.start_char + 1, c.end_char - c.start_char) "
            "FROM chunks c JOIN documents d USING(doc_id)"
        )
    ]
    sentences = [r[0] for r in db.execute(
        "SELECT substr(d.text, s.start_char + 1, s.end_char - s.start_char) FROM sentences s JOIN documents d USING(doc_id)")]
    db.close()
    return chunks, sentences


if __name__ == "__main__":
    main()
