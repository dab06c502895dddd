"""Fit and report the offline answer's two tuned parts in qa/answer.py: the "do the passages answer?"
judgment (JUDGMENT_COEFFICIENTS, a logistic model) and the answer sentence's ranking
(SENTENCE_WEIGHTS, a conditional logit over each question's candidate sentences).

Data nobody here wrote. The index is SQuAD v2.0 dev's corpus (1,204 paragraphs, 35 articles), built
as `qa eval` builds it. Its answerable questions should be answered; SQuAD v1.1 dev questions about
the 13 articles v2.0 lacks are off topic for it and should be declined. Articles are split in two
halves (titles in sorted order, alternately): the coefficients are fitted on the "fit" half, and
every figure printed as the report is from the other half, which nothing was chosen on.

The judgment also weighs the collection's size, so the same questions are asked of small
collections too: COLLECTIONS draws of 10 to 300 paragraphs of one half, each indexed on its own
(under the eval cache), asked their own answerable questions and 100 off-topic ones of that half.

    .venv/bin/python bench/judgment.py            # the shipped coefficients, on the report half
    .venv/bin/python bench/judgment.py --fit      # fit on the fit half, then report
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from common import SHARED_EVAL, machine_facts

import qa.answer as answer_module
import qa.text
from qa.answer import collection_size, judgment_features, score_sentences
from qa.evaluate import (EVAL_CACHED_PASSAGES, auroc, contains_answer, corpus_titles, load_questions,
                         off_topic_questions_for)
from qa.fusion import keyword_coverage

# The share of off-topic questions the fitted threshold must decline on the fit half.
DECLINE_GOAL = 0.90
# The fitted sentence weights are scaled so that alignment keeps this weight (see SENTENCE_WEIGHTS).
ALIGNMENT_WEIGHT = 4.0
# Small collections: (paragraphs, draws) from each half; up to 100 answerable and 100 off-topic
# questions asked of each. Collections of at most SMALL_CHUNKS chunks are reported apart.
COLLECTIONS = ((10, 6), (30, 3), (100, 2), (300, 1))
COLLECTION_QUESTIONS = 100
SMALL_CHUNKS = 60


def logistic_fit(rows: list[list[float]], labels: list[int], l2: float = 1e-3, steps: int = 50) -> list[float]:
    """Logistic regression by Newton's method (a few features, thousands of rows): intercept first."""
    import numpy as np

    x = np.hstack([np.ones((len(rows), 1)), np.array(rows, dtype=np.float64)])
    y = np.array(labels, dtype=np.float64)
    w = np.zeros(x.shape[1])
    for _ in range(steps):
        p = 1 / (1 + np.exp(-np.clip(x @ w, -30, 30)))
        gradient = x.T @ (p - y) + l2 * np.r_[0.0, w[1:]]
        hessian = (x * (p * (1 - p))[:, None]).T @ x + l2 * np.diag(np.r_[0.0, np.ones(len(w) - 1)])
        step = np.linalg.solve(hessian, gradient)
        w -= step
        if np.abs(step).max() < 1e-8:
            break
    return [round(float(v), 4) for v in w]


def conditional_logit_fit(questions: list[list[tuple[list[float], bool]]], l2: float = 1e-2) -> list[float]:
    """Weights that make a softmax over each question's candidate sentences put its mass on those
    holding the answer (questions where all or none do teach nothing and are skipped)."""
    import numpy as np
    from scipy.optimize import minimize  # scipy comes with sentence-transformers

    groups = []
    for candidates in questions:
        labels = np.array([holds for _, holds in candidates], dtype=bool)
        if labels.any() and not labels.all():
            groups.append((np.array([signals for signals, _ in candidates], dtype=np.float64), labels))

    def loss(w: np.ndarray) -> tuple[float, np.ndarray]:
        total, gradient = l2 * float(w @ w), 2 * l2 * w
        for x, labels in groups:
            e = np.exp(x @ w - (x @ w).max())
            positive = e[labels].sum()
            total -= math.log(positive / e.sum())
            gradient -= (x[labels] * (e[labels] / positive)[:, None]).sum(0) - (x * (e / e.sum())[:, None]).sum(0)
        return total, gradient

    start = np.array(answer_module.SENTENCE_WEIGHTS, dtype=np.float64)
    return [float(v) for v in minimize(loss, start, jac=True, method="L-BFGS-B").x]


def judgment_row(scored: Sequence, chunks: int) -> list[float] | None:
    """What the judgment reads: judgment_features and the collection's log size (held at
    JUDGMENT_LARGEST_COLLECTION, as answer_probability holds it)."""
    if not scored:
        return None
    return [*judgment_features(scored), collection_size(chunks)]


def asked_as(retriever, question: str) -> str:
    """The question as `qa ask` searches it: cleaned, a mistyped word read as the corpus spells it."""
    from qa.answer import searched_question
    from qa.retrieve import clean_query

    return searched_question(retriever, clean_query(question))


def small_collection_rows(root: Path, paragraph_files: dict[str, Path], half_of_paragraph: dict[str, str],
                          answerable: list, off_topic_by_half: dict[str, list], embedder, query_embedder) -> list[dict]:
    """Judgment rows from COLLECTIONS: each a fresh index of paragraphs drawn from one half."""
    import shutil

    from qa.indexer import update_index
    from qa.retrieve import open_retriever
    from qa.stores.location import StoreLocation

    rng = random.Random(7)
    rows = []
    for half in ("fit", "report"):
        ids = [i for i, h in half_of_paragraph.items() if h == half]
        for size, draws in COLLECTIONS:
            for draw in range(draws):
                chosen = set(rng.sample(ids, size))
                name = f"{half}-{size}-{draw}"
                corpus = root / name / "corpus"
                shutil.rmtree(root / name, ignore_errors=True)
                corpus.mkdir(parents=True)
                for i in chosen:
                    shutil.copy(paragraph_files[i], corpus / paragraph_files[i].name)
                location = StoreLocation("faiss", root / name / "index")
                update_index(location, [corpus], embedder=embedder)
                retriever = open_retriever(location, embedder=query_embedder)
                chunks = retriever.store.chunk_count()
                own = [q for q in answerable if q.gold_doc_ids[0] in chosen]
                asked = [(q, 1) for q in rng.sample(own, min(COLLECTION_QUESTIONS, len(own)))]
                asked += [(q, 0) for q in rng.sample(off_topic_by_half[half], COLLECTION_QUESTIONS)]
                for question, label in asked:
                    text = asked_as(retriever, question.question)
                    by_mode = retriever.search_modes(text, 5, ("hybrid", "dense"), align=True)
                    weights = retriever.term_weights(text)
                    row = {"half": half, "collection": name, "chunks": chunks, "label": label, "question": text}
                    for mode, hits in by_mode.items():
                        row[mode] = judgment_row(score_sentences(hits, weights, text), chunks)
                    rows.append(row)
                retriever.store.close()
                print(f"collection {name}: {chunks} chunks, {len(asked)} questions", file=sys.stderr, flush=True)
    return rows


def row_logit(row: dict, mode: str, coefficients: Sequence[float], columns: Sequence[int]) -> float:
    """The judgment's logit for a row's `mode` features (the `columns` its coefficients weigh);
    -inf when no sentence could answer, as answer_probability gives 0 then."""
    if row[mode] is None:
        return -math.inf
    return coefficients[0] + sum(w * row[mode][c] for w, c in zip(coefficients[1:], columns))


def size_class(row: dict) -> str:
    """The row's collection: "whole", or how many paragraphs its small collection drew ("10")."""
    return "whole" if row["collection"] == "whole" else row["collection"].split("-")[1]


def calibrate_size(rows: list[dict], mode: str, coefficients: list[float], columns: Sequence[int],
                   threshold: float, step: float = 0.05) -> list[float]:
    """The size coefficient (the last) made as negative as it can be, in `step`s, while each size
    class of small collections on the fit half still declines DECLINE_GOAL of its off-topic
    questions; the intercept moves with it so that the largest collection is judged as before.

    The likelihood fit weighs every question alike and leaves small collections declining 97 to
    99.7% of off-topic questions while refusing 1 to 2% of answerable ones; the threshold is set
    on the whole corpus for DECLINE_GOAL. This sets the same goal for every size, so that a small
    collection answers as readily as that allows (a wrong refusal costs a new user more trust
    than a weak quote)."""
    largest = math.log(answer_module.JUDGMENT_LARGEST_COLLECTION)
    cut = _logit(threshold)
    small = [r for r in rows if r["half"] == "fit" and not r["label"] and r["collection"] != "whole"]
    if not small:
        return coefficients

    def shifted(size: float) -> list[float]:
        moved = list(coefficients)
        moved[0] = round(coefficients[0] - (size - coefficients[-1]) * largest, 4)
        moved[-1] = round(size, 4)
        return moved

    def declines_enough(moved: list[float]) -> bool:
        by_class: dict[str, list[bool]] = {}
        for r in small:
            by_class.setdefault(size_class(r), []).append(row_logit(r, mode, moved, columns) < cut)
        return all(sum(v) / len(v) >= DECLINE_GOAL for v in by_class.values())

    size = coefficients[-1]
    while declines_enough(shifted(size - step)):
        size -= step
    return shifted(size)


def _logit(p: float) -> float:
    p = min(max(p, 1e-12), 1 - 1e-12)
    return math.log(p / (1 - p))


def ask_questions(args: argparse.Namespace) -> tuple[list[dict], float, str]:
    """Every question's judgment rows (and its candidate sentences), seconds per question, backend."""
    from qa.config import cache_dir
    from qa.embed import Embedder
    from qa.errors import IndexMismatchError
    from qa.evaluate import cached_index_name, prepare_corpus, resolve_eval_set
    from qa.indexer import update_index
    from qa.stores.location import StoreLocation
    from qa.retrieve import open_retriever

    v2 = resolve_eval_set(SHARED_EVAL / "squad-dev-v2.0")
    v1 = resolve_eval_set(SHARED_EVAL / "squad-dev-v1.1")
    embedder = Embedder(bulk=True)
    workdir, path_to_id = prepare_corpus(v2, cache_dir() / "eval")
    location = StoreLocation("faiss", workdir / cached_index_name(workdir, "index", embedder.backend))
    try:
        update_index(location, [workdir / "corpus"], embedder=embedder)
    except IndexMismatchError:  # a cached eval index from an older qa: built again, as `qa eval` does
        update_index(location, [workdir / "corpus"], embedder=embedder, rebuild=True)
    retriever = open_retriever(location, embedder=Embedder(bulk=False))
    # As `qa eval` does: thousands of questions about the same passages, each read once.
    retriever.aligner().cached_passages = min(retriever.store.counts()[1], EVAL_CACHED_PASSAGES)

    v2_titles, v1_titles = corpus_titles(v2.corpus_path), corpus_titles(v1.corpus_path)
    known = set(v2_titles.values())
    half_of = {title: ("fit" if i % 2 == 0 else "report") for i, title in enumerate(sorted(known))}
    others = sorted(set(v1_titles.values()) - known)
    half_of.update({title: ("fit" if i % 2 == 0 else "report") for i, title in enumerate(others)})
    rng = random.Random(1)
    answerable = [q for q in load_questions(v2.queries_path) if q.answers]
    off_topic = off_topic_questions_for(v2, v1)
    asked = [(q, v2_titles[q.gold_doc_ids[0]], 1) for q in rng.sample(answerable, min(args.answerable, len(answerable)))]
    asked += [(q, v1_titles[q.gold_doc_ids[0]], 0) for q in rng.sample(off_topic, min(args.off_topic, len(off_topic)))]

    rows = []
    chunks = retriever.store.chunk_count()
    started = time.perf_counter()
    for number, (question, title, label) in enumerate(asked, start=1):
        if number % 500 == 0:
            print(f"{number}/{len(asked)} questions", file=sys.stderr, flush=True)
        text = asked_as(retriever, question.question)
        by_mode = retriever.search_modes(text, 5, ("hybrid", "dense"), align=True)
        weights = retriever.term_weights(text)
        # Candidate signals written with --rows, for fitting other models offline: "known" is the
        # weighted share of the question's words that the corpus holds at all.
        terms = qa.text.query_terms(text)
        with retriever.store.reading():
            frequencies = retriever.store.document_frequencies(terms)
        term_stems = qa.text.stems(terms)
        total_weight = sum(weights.get(stem, 0.0) for stem in term_stems) or 1.0
        known = sum(weights.get(stem, 0.0) for term, stem in zip(terms, term_stems) if frequencies.get(term, 0) > 0)
        row = {"known": known / total_weight, "half": half_of[title], "label": label, "question": text,
               "collection": "whole", "chunks": chunks}
        for mode, hits in by_mode.items():
            scored = score_sentences(hits, weights, text)
            row[mode] = judgment_row(scored, chunks)
            if scored:
                best = max(scored, key=lambda s: s.support)
                row[mode + "_extra"] = {
                    "union": keyword_coverage(" ".join(h.text for h in hits), weights, " ".join(h.title for h in hits)),
                    "top_cov": keyword_coverage(hits[0].text, weights, hits[0].title),
                    "max_align": max(s.alignment for s in scored),
                    "best_cos": best.cosine,
                    "top_score": [scored[0].support, scored[0].alignment, scored[0].keyword, scored[0].cosine],
                    "n_terms": len(weights), "weight_sum": sum(weights.values()),
                    "max_weight": max(weights.values(), default=0.0),
                    "hit_score": hits[0].score, "hit_margin": hits[0].score - (hits[1].score if len(hits) > 1 else 0.0),
                }
            if mode == "hybrid":
                # Each candidate sentence's signals and whether it holds a gold answer (never, for
                # an off-topic question: its candidates show what a judgment must decline).
                row["sentences"] = [
                    (list(s.signals), bool(label) and contains_answer(s.text, question.answers)) for s in scored
                ]
        rows.append(row)
    seconds = time.perf_counter() - started
    if not args.no_collections:
        paragraph_files = {doc_id: Path(path) for path, doc_id in path_to_id.items()}
        off_topic_by_half = {h: [q for q in off_topic if half_of[v1_titles[q.gold_doc_ids[0]]] == h]
                             for h in ("fit", "report")}
        rows += small_collection_rows(workdir / "collections", paragraph_files,
                                      {i: half_of[t] for i, t in v2_titles.items()}, answerable,
                                      off_topic_by_half, embedder, Embedder(bulk=False))
    retriever.store.close()
    return rows, seconds / max(1, len(rows)), embedder.backend


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--answerable", type=int, default=3000, help="answerable v2.0 questions, both halves")
    parser.add_argument("--off-topic", type=int, default=1500, help="off-topic v1.1 questions, both halves")
    parser.add_argument("--fit", action="store_true", help="fit on the fit half instead of using the shipped values")
    parser.add_argument("--background", type=int, help="qa.text.BACKGROUND_CHUNKS for this run")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--rows", type=Path, help="also write every question's features to this JSON file")
    parser.add_argument("--no-collections", action="store_true", help="the whole corpus only, no small collections")
    parser.add_argument("--from-rows", type=Path, help="fit and report from a --rows file instead of asking again")
    args = parser.parse_args()
    if args.background is not None:
        qa.text.BACKGROUND_CHUNKS = args.background

    if args.from_rows:
        rows, seconds_per_question, backend = json.loads(args.from_rows.read_text()), 0.0, None
    else:
        rows, seconds_per_question, backend = ask_questions(args)
    if args.rows:
        args.rows.write_text(json.dumps(rows))

    report: dict = {"machine": machine_facts(backend), "background_chunks": qa.text.BACKGROUND_CHUNKS,
                    "questions": len(rows), "seconds_per_question": round(seconds_per_question, 4)}
    # The sentence weights: the share of answerable questions whose top sentence holds the answer.
    def top_share(half: str, weights: Sequence[float]) -> float:
        chosen = [r for r in rows if r["half"] == half and r["label"] and r["collection"] == "whole"]
        hits = sum(max(r["sentences"], key=lambda c: sum(w * x for w, x in zip(weights, c[0])))[1]
                   for r in chosen if r.get("sentences"))
        return hits / max(1, len(chosen))

    shipped = answer_module.SENTENCE_WEIGHTS
    report["answer_in_top_sentence"] = {"shipped": {h: round(top_share(h, shipped), 4) for h in ("fit", "report")}}
    if args.fit:
        fitted = conditional_logit_fit([r["sentences"] for r in rows if r["half"] == "fit" and r.get("sentences")
                                        and r["collection"] == "whole"])
        scale = ALIGNMENT_WEIGHT / fitted[answer_module.SENTENCE_SIGNALS.index("alignment")]
        fitted = [round(w * scale, 4) for w in fitted]
        report["sentence_weights"] = dict(zip(answer_module.SENTENCE_SIGNALS, fitted))
        report["answer_in_top_sentence"]["fitted"] = {h: round(top_share(h, fitted), 4) for h in ("fit", "report")}

    # Hybrid (passages read again): support, alignment, keyword coverage, log size; dense (not read
    # again): support, keyword coverage, log size. One threshold serves both: it declines
    # DECLINE_GOAL of the fit half's off-topic questions asked of the whole corpus, and the dense
    # model's intercept is moved so that it does too.
    groups = {"whole": lambda r: r["collection"] == "whole",
              f"small (<={SMALL_CHUNKS} chunks)": lambda r: r["collection"] != "whole" and r["chunks"] <= SMALL_CHUNKS,
              "larger collections": lambda r: r["collection"] != "whole" and r["chunks"] > SMALL_CHUNKS}
    threshold = answer_module.JUDGMENT_THRESHOLD
    for mode, names, columns in (("hybrid", "JUDGMENT_COEFFICIENTS", (0, 1, 2, 3)),
                                 ("dense", "UNALIGNED_JUDGMENT_COEFFICIENTS", (0, 2, 3))):
        fit_rows = [r for r in rows if r["half"] == "fit" and r[mode] is not None]
        coefficients = list(getattr(answer_module, names))
        if args.fit:
            coefficients = logistic_fit([[r[mode][c] for c in columns] for r in fit_rows],
                                        [r["label"] for r in fit_rows])

        def probability(row: dict) -> float:
            logit = row_logit(row, mode, coefficients, columns)
            return 0.0 if logit == -math.inf else 1 / (1 + math.exp(-max(-30.0, min(30.0, logit))))

        if args.fit:
            # The highest probability an off-topic question of the fit half may have and still be
            # declined, DECLINE_GOAL of them at least.
            negatives = sorted(probability(r) for r in rows
                               if r["half"] == "fit" and not r["label"] and r["collection"] == "whole")
            own = negatives[min(len(negatives) - 1, math.ceil(DECLINE_GOAL * len(negatives)))]
            if mode == "hybrid":
                threshold = round(own, 4)
            else:
                coefficients[0] = round(coefficients[0] - (_logit(own) - _logit(threshold)), 4)
        # Shipped values come back unchanged when they are calibrated for these rows already.
        coefficients = calibrate_size(rows, mode, coefficients, columns, threshold)
        figures: dict = {"coefficients": coefficients, "threshold": threshold}
        for half in ("fit", "report"):
            for group, within in groups.items():
                chosen = [r for r in rows if r["half"] == half and within(r)]
                if not chosen:
                    continue
                positives = [probability(r) for r in chosen if r["label"]]
                negatives = [probability(r) for r in chosen if not r["label"]]
                figures[f"{half}, {group}"] = {
                    "answerable": len(positives), "off_topic": len(negatives),
                    "answered": round(sum(p >= threshold for p in positives) / max(1, len(positives)), 4),
                    "declined": round(sum(p < threshold for p in negatives) / max(1, len(negatives)), 4),
                    "auroc": round(auroc(positives, negatives), 4),
                }
        report[mode] = figures
    if args.json:
        print(json.dumps(report, indent=2))
        return
    print(json.dumps(report["machine"]))
    for key, value in report.items():
        if key != "machine":
            print(f"{key:24s} {json.dumps(value)}")


if __name__ == "__main__":
    main()
