"""Embedding throughput on Ray (local workers) beside the in-process encoder, on the same chunks.

    .venv/bin/python bench/ray_embed.py [--chunks 2000] [--workers 2] [--backend onnx-int8] [--json]

The chunks are real text: SQuAD v1.1 dev paragraphs, made into articles and cut by qa's own
chunker. In-process, the model is loaded before the clock starts. On Ray, starting the local Ray
(`ray.init`) is timed apart, once; each `encode` then pays for its actors (a process and a model
load each), as every commit group of `qa index --ray` does, so the Ray figure includes that.
The two paths take turns for --rounds rounds, which shows how steady the figures are. Needs Ray: pip install 'qa[scale]'.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
from common import machine_facts, report, squad_articles, timed

from qa.chunk import chunk_text
from qa.embed import Embedder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chunks", type=int, default=2000, help="how many chunks to embed (default 2000)")
    parser.add_argument("--workers", type=int, default=2, help="Ray actors, one CPU each (default 2)")
    parser.add_argument("--backend", choices=["torch", "onnx", "onnx-int8"], default=None)
    parser.add_argument("--rounds", type=int, default=2, help="in-process then Ray, this many times (default 2)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    from qa.distributed import RayEmbedder, ray_available

    if not ray_available():
        raise SystemExit("needs Ray: pip install 'qa[scale]'")
    embedder = Embedder(backend=args.backend)
    texts = _squad_chunks(args.chunks, embedder)
    embedder.load()
    distributed = RayEmbedder(backend=embedder.backend, workers=args.workers)
    started = time.perf_counter()
    distributed.connect()  # ray.init, timed apart: a CLI run pays it once, not per commit group
    startup = time.perf_counter() - started

    # The two paths take turns, so that a burst of load from elsewhere on the machine falls on
    # both rather than on one; each Ray pass is compared with the in-process pass just before it.
    rows = []
    n = len(texts)
    load_before = os.getloadavg()[0]
    for round_ in range(1, args.rounds + 1):
        with timed() as local:
            reference = embedder.encode(texts)
        with timed() as remote:
            vectors = distributed.encode(texts)
        rows.append({"what": f"in-process Embedder.encode, round {round_}", "workers": None,
                     "seconds": local["seconds"], "chunks": n, "chunks/s": n / local["seconds"]})
        rows.append({"what": f"RayEmbedder.encode, round {round_}", "workers": args.workers,
                     "seconds": remote["seconds"], "chunks": n, "chunks/s": n / remote["seconds"],
                     "vs in-process": local["seconds"] / remote["seconds"]})
    distributed.close()
    load_after = os.getloadavg()[0]

    difference = float(np.abs(vectors - reference).max())
    notes = [
        f"{n} chunks of SQuAD text, {sum(embedder.count_tokens(texts)) / n:.0f} word pieces each on average.",
        f"Starting the local Ray (ray.init, {args.workers} CPUs) took {startup:.1f} s, outside the Ray figures.",
        f"Largest difference between a Ray vector and the in-process one: {difference:.2e}.",
        "'vs in-process': the Ray pass's throughput over the in-process pass of its round (above 1: Ray is faster).",
        f"In-process, one encoder uses every core ({os.cpu_count()} threads); on Ray, each actor's encoder uses one.",
        f"Load average (1 min) {load_before:.1f} before the timed passes, {load_after:.1f} after: above "
        f"{os.cpu_count()}, other work shared the cores and the figures are noisy.",
    ]
    facts = machine_facts(embedder.backend)
    facts["versions"]["ray"] = _version("ray")
    report("bench/ray_embed.py: embedding on Ray beside in-process", rows, facts, args.json, notes)


def _squad_chunks(count: int, embedder: Embedder) -> list[str]:
    """The first `count` chunks qa's chunker makes of SQuAD-made articles."""
    texts: list[str] = []
    articles = 50
    while True:
        texts = []
        for n, (title, body) in enumerate(squad_articles(articles)):
            texts += [chunk.text for chunk in chunk_text(f"squad-{n}", f"{title}\n\n{body}", embedder.count_tokens)]
            if len(texts) >= count:
                return texts[:count]
        articles *= 2  # the guess fell short; squad_articles says when there are no more to make


def _version(package: str) -> str:
    from importlib import metadata

    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


if __name__ == "__main__":
    main()
