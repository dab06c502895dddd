"""Full index build: chunks/s of the whole pipeline beside a bare model.encode on the same texts.

    .venv/bin/python bench/index.py --articles 100 [--backend onnx-int8] [--json] [FILES…]
    QA_COMMIT_EVERY_CHUNKS=64 .venv/bin/python bench/index.py --articles 100   # many commits

It also counts the bytes the build wrote to vector files (every FAISS file saved, merges included)
against the final vector files' size, and the bytes the whole process wrote to disk (catalog too).

The pipeline reads each chunk through the model once, led by its article's headline, and pools
its sentences' vectors from the same pass; the bare encode is timed on exactly those texts, and
their time ratio is the pipeline's efficiency. For scale, the bare encode of what index format 1
embedded (every chunk, then every sentence again on its own) is timed too. Model loading is
outside every timing.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import tempfile
from pathlib import Path

from common import machine_facts, report, squad_articles, timed, write_articles

from qa.chunk import embedding_text
from qa.embed import Embedder
from qa.indexer import update_index
from qa.ingest import article_heading


def _vector_bytes_counter() -> dict:
    """Count the bytes of every vector file saved from now on (FaissVectorStore.save is the one writer)."""
    from qa.stores.local.vectors import FaissVectorStore

    counted = {"bytes": 0, "files": 0}
    save = FaissVectorStore.save

    def counting_save(self, path: Path) -> None:
        save(self, path)
        counted["bytes"] += path.stat().st_size
        counted["files"] += 1

    FaissVectorStore.save = counting_save
    return counted


def _disk_bytes_written() -> int:
    """Bytes this process has caused to be written to storage (/proc/self/io), or 0 where unknown."""
    try:
        for line in Path("/proc/self/io").read_text().splitlines():
            if line.startswith("write_bytes:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


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
        counted = _vector_bytes_counter()
        disk_before = _disk_bytes_written()
        with timed() as pipeline:
            result = update_index(index_dir, corpus, embedder=embedder)
        os.sync()
        disk_written = _disk_bytes_written() - disk_before
        final_vector_bytes = sum(p.stat().st_size for p in index_dir.glob("*.faiss"))
        index_bytes = sum(p.stat().st_size for p in index_dir.iterdir() if p.is_file())
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
        f"Vector bytes written: {counted['bytes']:,} in {counted['files']} file(s), "
        f"{counted['bytes'] / max(final_vector_bytes, 1):.2f}x the final vector files ({final_vector_bytes:,} bytes).",
        f"All bytes the build wrote to disk (catalog, WAL, vectors): {disk_written:,}, "
        f"{disk_written / max(index_bytes, 1):.2f}x the final index ({index_bytes:,} bytes).",
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
