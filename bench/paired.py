"""Compare two `qa eval` runs question by question: is a change in the figures more than chance?

Each run writes its questions' outcomes with `--questions-out`; this pairs them (same set, same
questions in the same order) and prints, for R@1, R@5, MRR@10 and the answer-in-top-sentence
share, each run's figure, the difference, a 95% paired bootstrap interval for it, and how many
questions went better and worse. On a set of 200 questions one question is half a point, so a
difference of a point or two can be one or two questions moving: the interval says how far the
figure could move with other questions of the same kind.

    qa eval news-dev --mode hybrid --questions-out before.jsonl     # on the code before a change
    qa eval news-dev --mode hybrid --questions-out after.jsonl      # on the code after it
    .venv/bin/python bench/paired.py before.jsonl after.jsonl
    .venv/bin/python bench/paired.py before.jsonl after.jsonl --gold 1   # one gold article only

A RealTimeQA question's gold is every search result that holds its answer, so a search that
finds any article about the story scores. `--gold 1` compares only the questions one article
answers, where finding the story is not enough: the nearest this data comes to a set whose gold
is the one article a quiz cited.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

RESAMPLES = 10_000
FIGURES = ("R@1", "R@5", "MRR@10", "answer in top sentence")


# The fields this reads from each row (qa.evaluate.QuestionResult).
FIELDS = ("mode", "id", "first_gold_rank", "answer_in_top_sentence")
# Resamples drawn at once: a draw is as many indexes as questions, and SQuAD dev has 10,570.
DRAWS_AT_ONCE = 500


def read_run(path: Path, mode: str) -> list[dict]:
    """The questions of one mode in a --questions-out file, in the order asked."""
    try:
        with open(path, encoding="utf-8") as handle:
            rows = [json.loads(line) for line in handle if line.strip()]
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        sys.exit(f"paired: cannot read {path}: {error}")
    if not all(isinstance(row, dict) and all(name in row for name in FIELDS) for row in rows):
        sys.exit(f"paired: {path} is not a `qa eval --questions-out` file (each line needs {', '.join(FIELDS)})")
    chosen = [row for row in rows if row.get("mode") == mode]
    if not chosen:
        modes = sorted({str(row.get("mode")) for row in rows})
        sys.exit(f"paired: {path} has no {mode!r} questions (it has: {', '.join(modes) or 'none'})")
    return chosen


def with_gold_count(before: list[dict], after: list[dict], count: int) -> tuple[list[dict], list[dict]]:
    """The pairs whose question has exactly `count` gold documents (from either run's rows: both
    asked the same set)."""
    if not any("gold" in row for row in before + after):
        sys.exit("paired: --gold needs rows that list each question's gold documents (qa eval --questions-out writes them)")
    kept = [n for n, (a, b) in enumerate(zip(before, after)) if len(b.get("gold", a.get("gold")) or []) == count]
    if not kept:
        sys.exit(f"paired: no question has exactly {count} gold document{'s' * (count != 1)}")
    return [before[n] for n in kept], [after[n] for n in kept]


def outcomes(rows: list[dict]) -> np.ndarray:
    """One row a question: reached first, in the first five, reciprocal rank within ten, answer in
    the top sentence (NaN for a question without answer strings)."""
    table = np.zeros((len(rows), len(FIGURES)))
    for n, row in enumerate(rows):
        rank = row["first_gold_rank"]
        table[n, 0] = rank == 1
        table[n, 1] = rank is not None and rank <= 5
        table[n, 2] = 1.0 / rank if rank is not None and rank <= 10 else 0.0
        answer = row["answer_in_top_sentence"]
        table[n, 3] = np.nan if answer is None else float(answer)
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("before", type=Path, help="the first run's --questions-out file")
    parser.add_argument("after", type=Path, help="the second run's, on the same eval set")
    parser.add_argument("--mode", default="hybrid", help="which mode's questions to compare (default hybrid)")
    parser.add_argument("--seed", type=int, default=0, help="the bootstrap's random seed")
    parser.add_argument("--gold", type=int, metavar="N",
                        help="only the questions with exactly N gold documents (--gold 1: one article answers)")
    args = parser.parse_args()
    before, after = read_run(args.before, args.mode), read_run(args.after, args.mode)
    # Paired by position, the ids checked: a set may hold one id twice (RealTimeQA 2023 does).
    if [r["id"] for r in before] != [r["id"] for r in after]:
        sys.exit("paired: the two runs did not ask the same questions in the same order "
                 "(same eval set and --limit for both?)")
    if args.gold is not None:
        before, after = with_gold_count(before, after, args.gold)
    first, second = outcomes(before), outcomes(after)
    rng = np.random.default_rng(args.seed)
    print(f"{len(before)} question{'s' * (len(before) != 1)}, mode {args.mode}; 95% paired bootstrap interval of the difference "
          f"({RESAMPLES:,} resamples)")
    print(f"{'':24} {'before':>8} {'after':>8} {'diff':>8}   {'95% interval':>17}   better / worse")
    for column, name in enumerate(FIGURES):
        kept = ~np.isnan(first[:, column])
        a, b = first[kept, column], second[kept, column]
        if not len(a):
            print(f"{name:24} no question has answer strings")
            continue
        change = b - a
        means = np.concatenate([
            change[rng.integers(0, len(change), size=(min(DRAWS_AT_ONCE, RESAMPLES - done), len(change)))].mean(axis=1)
            for done in range(0, RESAMPLES, DRAWS_AT_ONCE)
        ])
        low, high = np.percentile(means, [2.5, 97.5])
        print(f"{name:24} {a.mean():8.4f} {b.mean():8.4f} {100 * change.mean():+7.2f}p   "
              f"[{100 * low:+6.2f}, {100 * high:+6.2f}]p   {int((change > 0).sum())} / {int((change < 0).sum())}")
    print("p: points (hundredths). An interval that holds 0 is a difference chance alone could make.")


if __name__ == "__main__":
    main()
