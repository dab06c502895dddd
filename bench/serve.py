"""Load while writing: `qa serve --watch` on loopback, N concurrent clients of /search and /ask while
articles are added to the watched folder.

    .venv/bin/python bench/serve.py [--articles 40] [--clients 1 4 16] [--seconds 20] [--adds 4] [--json]

First one client sends /search alone with nothing being written (the HTTP cost against the same
search made in this process). Then for each N, N client threads send /search and /ask in turn (SQuAD dev questions) for --seconds,
while --adds new articles are written into the watched folder, one at a time. It prints
requests/s, p50/p95 latency of each endpoint, errors (a failed request or a non-200 answer),
torn reads (a passage or citation whose span is not the served document's text there, or whose
document the server cannot serve), and the seconds from writing an article until /search finds
it. For comparison it times the same search in this process, with no server between. The articles
are SQuAD v1.1 dev paragraphs grouped into articles (text nobody here wrote).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
from common import REPO, machine_facts, report, shared_eval_lines, squad_articles, write_articles

START_SECONDS = 600


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--articles", type=int, default=40, help="articles indexed before the load starts")
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--seconds", type=float, default=20.0, help="how long each client count runs")
    parser.add_argument("--adds", type=int, default=4, help="articles written into the watched folder per run")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    pool = squad_articles(args.articles + args.adds * len(args.clients))
    questions = [json.loads(line)["question"] for line in
                 shared_eval_lines("squad-dev-v1.1.queries.jsonl")[:400]]
    work = Path(tempfile.mkdtemp(prefix="qa-bench-serve-"))
    corpus, index_dir = work / "news", work / "index"
    write_articles(corpus, pool[: args.articles])
    port = _free_port()
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    log = (work / "serve.log").open("wb")
    server = subprocess.Popen([sys.executable, "-c", "from qa.cli import run; run()", "serve", "--watch", str(corpus),
                               "--index", str(index_dir), "--port", str(port)],
                              stdout=subprocess.DEVNULL, stderr=log, env=env, cwd=REPO)
    url = f"http://127.0.0.1:{port}"
    rows = []
    try:
        _wait_healthy(url, server)
        in_process = _in_process_search_ms(index_dir, questions[:40])
        rows.append({"what": "search, in this process", "clients": "–", "search p50 ms": in_process})
        rows.append(_run(url, corpus, 1, min(args.seconds, 10.0), questions, [], 0, endpoints=("search",)))
        next_article = args.articles
        for clients in args.clients:
            adds = pool[next_article: next_article + args.adds]
            rows.append(_run(url, corpus, clients, args.seconds, questions, adds, next_article))
            next_article += args.adds
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()
    notes = [
        f"{args.articles} articles indexed first; each run writes {args.adds} more into the watched folder while it runs.",
        "torn = a hit or citation whose span is not the served document's text there, or whose document is not served.",
        "answerable = seconds from writing an article's file until /search finds it (polled every 0.1 s).",
        f"server log: {work / 'serve.log'}",
    ]
    report("qa serve --watch under load (loopback)", rows, machine_facts(), args.json, notes)
    shutil.rmtree(work, ignore_errors=True)


def _run(url: str, corpus: Path, clients: int, seconds: float, questions: list[str],
         adds: list[tuple[str, str]], first_number: int, endpoints: tuple[str, ...] = ("search", "ask")) -> dict:
    latencies: dict[str, list[float]] = {"search": [], "ask": []}
    counts = {"errors": 0, "torn": 0}
    texts: dict[str, str | None] = {}
    lock = threading.Lock()
    stop = threading.Event()

    def client(seed: int) -> None:
        rng = random.Random(seed)
        with httpx.Client(base_url=url, timeout=120) as http:
            turn = seed
            while not stop.is_set():
                endpoint = endpoints[turn % len(endpoints)]
                turn += 1
                key = "query" if endpoint == "search" else "question"
                started = time.perf_counter()
                try:
                    response = http.post(f"/{endpoint}", json={key: rng.choice(questions)})
                    ok = response.status_code == 200
                except httpx.HTTPError:
                    ok = False
                elapsed = time.perf_counter() - started
                with lock:
                    latencies[endpoint].append(elapsed)
                    counts["errors"] += not ok
                if ok:
                    spans = response.json()["hits" if endpoint == "search" else "citations"]
                    torn = sum(not _span_holds(http, texts, span, "text" if endpoint == "search" else "quote")
                               for span in spans)
                    with lock:
                        counts["torn"] += torn

    answerable: list[float] = []

    def adder() -> None:
        with httpx.Client(base_url=url, timeout=120) as http:
            for n, article in enumerate(adds):
                if stop.is_set():
                    return
                path = write_articles(corpus, [article], start=first_number + n)[0]
                written = time.perf_counter()
                probe = " ".join(article[1].split()[:30])
                while not stop.is_set():
                    hits = http.post("/search", json={"query": probe, "k": 5, "mode": "keyword"}).json()["hits"]
                    if any(hit["path"] == str(path) for hit in hits):
                        answerable.append(time.perf_counter() - written)
                        break
                    time.sleep(0.1)
                stop.wait(seconds / (len(adds) + 1))

    threads = [threading.Thread(target=client, args=(seed,)) for seed in range(clients)]
    threads.append(threading.Thread(target=adder))
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    stop.wait(seconds)
    stop.set()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    total = len(latencies["search"]) + len(latencies["ask"])
    return {
        "what": " and ".join(f"/{e}" for e in endpoints) + (", adding articles" if adds else ", no writes"),
        "clients": clients,
        "requests": total, "requests/s": total / elapsed,
        "search p50 ms": _ms(latencies["search"], 50), "search p95 ms": _ms(latencies["search"], 95),
        "ask p50 ms": _ms(latencies["ask"], 50), "ask p95 ms": _ms(latencies["ask"], 95),
        "errors": counts["errors"], "torn": counts["torn"],
        "added": f"{len(answerable)}/{len(adds)}",
        "answerable p50 s": statistics.median(answerable) if answerable else None,
        "answerable max s": max(answerable) if answerable else None,
    }


def _span_holds(http: httpx.Client, texts: dict[str, str | None], span: dict, field: str) -> bool:
    """Whether the span's words are the served document's text at start:end (documents here never change)."""
    doc_id = span["doc_id"]
    if doc_id not in texts:
        response = http.get(f"/documents/{doc_id}")
        texts[doc_id] = response.json()["text"] if response.status_code == 200 else None
    text = texts[doc_id]
    return text is not None and text[span["start"]:span["end"]] == span[field]


def _in_process_search_ms(index_dir: Path, questions: list[str]) -> float:
    """Median milliseconds of the same /search call made in this process (warm)."""
    from qa.retrieve import open_retriever

    retriever = open_retriever(index_dir)
    try:
        retriever.search(questions[0], k=5)
        times = []
        for question in questions:
            started = time.perf_counter()
            retriever.search(question, k=5)
            times.append(time.perf_counter() - started)
    finally:
        retriever.store.close()
    return statistics.median(times) * 1000


def _ms(values: list[float], percentile: int) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(percentile / 100 * (len(ordered) - 1)))] * 1000


def _wait_healthy(url: str, server: subprocess.Popen) -> None:
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit("qa serve exited before answering; see its log")
        try:
            if httpx.get(f"{url}/health", timeout=5).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.25)
    raise SystemExit("qa serve did not answer /health in time")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


if __name__ == "__main__":
    main()
