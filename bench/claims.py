"""How well the claim checker (qa/claims.py) tells supported sentences from unsupported ones.

Claims are made from SQuAD v1.1 dev (data nobody here wrote), five kinds per question:
- gold_sentence: the paragraph's sentence that holds the answer, against its paragraph (true);
- question_answer: the question and its answer, "How much does Baghdad owe Russia? $8 billion",
  worded unlike the passage as generated text is (true);
- swapped_sentence / swapped_answer: the same two with the answer swapped for another question's
  answer of the same kind, from another article (a number for a number, a date for a date, a
  name for a name; false). A swap whose every number, date and name the paragraph also holds is
  drawn again: it might be true;
- wrong_paragraph: the gold sentence against another paragraph of the same article (false);
- negated_sentence: the gold sentence made to deny what it says, "not" put after its first
  auxiliary verb ("was" -> "was not"), where it has one and denies nothing already (false);
- swapped_roles: a gold sentence with two names that have one word between them swapped
  ("Denver beat Carolina" -> "Carolina beat Denver"), or a passive's two ("Carolina was defeated
  by Denver" -> "Denver was defeated by Carolina"; false), found by a pattern of its own, not
  by the checker's reading of roles; a word that goes both ways ("met") makes a claim that may
  be true, which the checker rightly passes;
- denial_dropped: a gold sentence that denies something with its one denial taken out ("did
  not win" -> "did win", "wasn't" -> "was", "never won" -> "won"), so that it says the opposite
  of its paragraph (false);
- no_dropped: a gold sentence whose one denial is a "no" before a word, taken out ("there was no
  rain" -> "there was rain", "with no survivors" -> "with survivors"; false).

Every claim cites all chunks of its paragraph, as a generated sentence cites its passages, and is
checked with its question, as `qa ask --llm` checks with the question asked.
Questions are taken evenly across the set; the even-numbered ones are where the checker's
weight and threshold were chosen (`--fit` prints the search), the odd-numbered ones are the report.

    .venv/bin/python bench/claims.py --questions 2000
    .venv/bin/python bench/claims.py --questions 2000 --fit --json
"""

from __future__ import annotations

import argparse
import json
import random
import re
import time
from collections import defaultdict
from pathlib import Path

from common import SHARED_EVAL, machine_facts

from qa.chunk import chunk_text, split_sentences
from qa.claims import (
    ALIGN_SHARE,
    SUPPORT_THRESHOLD,
    SUPPORTED,
    ClaimChecker,
    extract_facts,
    passage_facts,
    stated_denial,
)
from qa.evaluate import auroc, load_questions
from qa.text import STOPWORDS
from qa.types import Hit

TRUE_KINDS = ("gold_sentence", "question_answer")
FALSE_KINDS = ("swapped_sentence", "swapped_answer", "wrong_paragraph", "negated_sentence", "denial_dropped",
               "swapped_roles", "no_dropped")
_AUXILIARY = re.compile(r"\b(?:is|was|are|were|has|had|have|can|could|will|would|did|does|do|should|may|might|must)\b")


def negated(sentence: str) -> str | None:
    """`sentence` with "not" after its first auxiliary verb, or None where it has none or denies already."""
    found = _AUXILIARY.search(sentence)
    if found is None or stated_denial(sentence):
        return None
    return f"{sentence[:found.end()]} not{sentence[found.end():]}"


_ONE_DENIAL = re.compile(r"\s+(?:not|never)\b|n['’]t\b", re.IGNORECASE)
_NOT_A_DENIAL_OF_THE_NEXT_WORD = re.compile(r"-|\s+(?:until|since|before|least|only|just|merely)\b", re.IGNORECASE)
_CONTRACTED = {"wo": "will", "ca": "can", "sha": "shall"}  # won't, can't, shan't


# Two capitalised names with one lower-case word (and maybe "the") between them, or a passive
# with "by": "Denver beat Carolina", "Obama called the Kremlin", "Carolina was defeated by Denver".
# Written here apart from qa.claims' own reading of roles.
_NAME_VERB_NAME = re.compile(
    r"\b([A-Z][a-z]+(?: [A-Z][a-z]+)*) ((?:was|were|is|are) [a-z]{3,}ed by|[a-z]{3,}) (?:the )?"
    r"([A-Z][a-z]+(?: [A-Z][a-z]+)*)\b(?!['’])")


def roles_swapped(sentence: str) -> str | None:
    """`sentence` with its first two names that a word between them relates put the other way
    round ("Denver beat Carolina" -> "Carolina beat Denver"), or None where it has none."""
    for found in _NAME_VERB_NAME.finditer(sentence):
        (a, a_end), b = found.span(1), found.span(3)
        first = found.group(1)
        if first.split()[0].lower() in STOPWORDS:  # "The Broncos": the name is what follows
            if " " not in first:
                continue
            a += len(first.split()[0]) + 1
            first = first.split(" ", 1)[1]
        verb = found.group(2)
        if verb in STOPWORDS or verb.endswith("ly") or first == found.group(3):
            continue
        return sentence[:a] + found.group(3) + sentence[a_end:b[0]] + first + sentence[b[1]:]
    return None


def undenied(sentence: str) -> str | None:
    """`sentence` with its one denial taken out ("did not win" -> "did win", "wasn't" -> "was",
    "never won" -> "won"), or None where it denies nothing, more than once, or otherwise ("no")."""
    found = list(_ONE_DENIAL.finditer(sentence))
    if len(found) != 1 or stated_denial(sentence[:found[0].start()] + sentence[found[0].end():]):
        return None
    start, end = found[0].span()
    if not stated_denial(sentence) or _NOT_A_DENIAL_OF_THE_NEXT_WORD.match(sentence, end):
        return None  # "not only", "whether or not", "not until 1990", "not-for-profit": it denies no fact
    if found[0].group(0).lower().startswith("n"):  # n't
        head = re.search(r"(\w+)$", sentence[:start])
        if head and head.group(1).lower() in _CONTRACTED:
            return sentence[:head.start()] + _CONTRACTED[head.group(1).lower()] + sentence[end:]
    return sentence[:start] + sentence[end:]


_ONE_NO = re.compile(r"\s+no\s+(?=[a-z])")
_NO_THAT_DENIES_NO_FACT = re.compile(r"\s*(?:longer|more|less|fewer|later|sooner|earlier|matter|doubt)\b")


def no_dropped(sentence: str) -> str | None:
    """`sentence` with its one "no" before a lower-case word taken out ("there was no rain" ->
    "there was rain"), or None where it has none, denies otherwise too, or the "no" denies no
    fact ("no longer", "no doubt")."""
    found = list(_ONE_NO.finditer(sentence))
    if len(found) != 1 or _NO_THAT_DENIES_NO_FACT.match(sentence, found[0].end()):
        return None
    dropped = sentence[:found[0].start()] + " " + sentence[found[0].end():]
    return None if stated_denial(dropped) else dropped


def answer_kind(answer: str) -> str | None:
    """'date', 'number' or 'name' when the answer is one, else None (not swapped)."""
    facts, _ = extract_facts(answer)
    if facts.months:
        return "date"
    if facts.numbers:
        return "number"
    words = re.findall(r"[^\W\d_][\w'-]*", answer)
    if facts.names and words and all(w[0].isupper() or w.lower() in ("of", "the", "and", "de") for w in words):
        return "name"
    return None


def paragraph_passages(doc_id: str, title: str, text: str, count_tokens) -> list[Hit]:
    return [
        Hit(i, doc_id, title, f"{doc_id}.txt", c.start, c.end, c.text, 0.0, None, c.sentences)
        for i, c in enumerate(chunk_text(doc_id, text, count_tokens))
    ]


def build_claims(prefix: Path, questions: int, seed: int) -> list[dict]:
    corpus = {}
    by_title = defaultdict(list)
    with open(f"{prefix}.corpus.jsonl", encoding="utf-8") as handle:
        for line in handle:
            row = json.loads(line)
            corpus[row["id"]] = row
            by_title[row["title"]].append(row["id"])
    every = load_questions(Path(f"{prefix}.queries.jsonl"))
    step = max(1, len(every) // questions)
    chosen = every[::step][:questions]
    pools = defaultdict(list)
    for q in every:
        for answer in dict.fromkeys(q.answers):
            kind = answer_kind(answer)
            if kind:
                pools[kind].append((corpus[q.gold_doc_ids[0]]["title"], answer))
    rng = random.Random(seed)
    claims = []
    for number, q in enumerate(chosen):
        doc = corpus[q.gold_doc_ids[0]]
        text = doc["text"]
        answer = next((a for a in q.answers if a and a in text), None)
        if answer is None:
            continue
        at = text.index(answer)
        span = next(((s, e) for s, e in split_sentences(text) if s <= at < e), None)
        if span is None:
            continue
        sentence = text[span[0]:span[1]]
        half = "tune" if number % 2 == 0 else "report"
        base = {"question_id": q.id, "question": q.question, "half": half, "doc_id": doc["id"]}
        claims.append({**base, "kind": "gold_sentence", "text": sentence})
        claims.append({**base, "kind": "question_answer", "text": f"{q.question} {answer}"})
        denial = negated(sentence)
        if denial is not None:
            claims.append({**base, "kind": "negated_sentence", "text": denial})
        turned = roles_swapped(sentence)
        if turned is not None:
            claims.append({**base, "kind": "swapped_roles", "text": turned})
        dropped = undenied(sentence)
        if dropped is not None:
            claims.append({**base, "kind": "denial_dropped", "text": dropped})
        dropped = no_dropped(sentence)
        if dropped is not None:
            claims.append({**base, "kind": "no_dropped", "text": dropped})
        kind = answer_kind(answer)
        if kind and answer in sentence:
            paragraph_facts = passage_facts(doc["title"]) | passage_facts(text)
            for _ in range(20):
                other_title, swap = rng.choice(pools[kind])
                facts, _ = extract_facts(swap)
                if other_title == doc["title"]:
                    continue
                if not facts - facts.found_in(paragraph_facts):
                    continue  # the paragraph states every fact of the swap: the claim might be true
                claims.append({**base, "kind": "swapped_sentence", "text": sentence.replace(answer, swap, 1)})
                claims.append({**base, "kind": "swapped_answer", "text": f"{q.question} {swap}"})
                break
        others = [d for d in by_title[doc["title"]] if d != doc["id"] and sentence not in corpus[d]["text"]]
        if others:
            other = corpus[rng.choice(others)]
            claims.append({**base, "kind": "wrong_paragraph", "text": sentence, "doc_id": other["id"]})
    return claims, corpus


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--eval-set", type=Path, default=SHARED_EVAL / "squad-dev-v1.1")
    parser.add_argument("--questions", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--fit", action="store_true", help="also search the weight and threshold on the tuning half")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    from qa.align import TokenAligner
    from qa.embed import Embedder

    embedder = Embedder(bulk=False)
    embedder.load()
    checker = ClaimChecker(TokenAligner(embedder, cached_passages=64))
    claims, corpus = build_claims(args.eval_set, args.questions, args.seed)
    passages_of = {}
    seconds = 0.0
    for claim in claims:
        doc = corpus[claim["doc_id"]]
        if doc["id"] not in passages_of:
            passages_of[doc["id"]] = paragraph_passages(doc["id"], doc["title"], doc["text"], embedder.count_tokens)
        passages = passages_of[doc["id"]]
        # The paragraph is read once, as retrieval reads it before an answer; the time is the check.
        checker.read(passages)
        started = time.perf_counter()
        result = checker.check(claim["text"], range(1, len(passages) + 1), passages, question=claim["question"])
        seconds += time.perf_counter() - started
        claim.update(verdict=result.verdict, support=result.support, missing=list(result.missing),
                     contradicted=list(result.contradicted))
        if args.fit:
            claim["alignment"], claim["coverage"], claim["missing_count"] = checker.features(claim["text"], passages, claim["question"])

    report = {"machine": machine_facts(embedder.backend), "eval_set": str(args.eval_set),
              "questions": args.questions, "claims": len(claims), "align_share": ALIGN_SHARE,
              "threshold": SUPPORT_THRESHOLD, "ms_per_claim": round(1000 * seconds / max(1, len(claims)), 2),
              "halves": {}}
    for half in ("tune", "report"):
        rows = [c for c in claims if c["half"] == half]
        kinds = {}
        for kind in TRUE_KINDS + FALSE_KINDS:
            of_kind = [c for c in rows if c["kind"] == kind]
            unsupported = sum(c["verdict"] != SUPPORTED for c in of_kind)
            kinds[kind] = {"claims": len(of_kind), "unsupported": round(unsupported / max(1, len(of_kind)), 4)}
        # AUROC of the support score alone, and of the verdict's order (a missing fact ranks lowest).
        score = [c["support"] - (10 if c["missing"] or c["contradicted"] else 0) for c in rows]
        positives = [s for s, c in zip(score, rows) if c["kind"] in TRUE_KINDS]
        negatives = [s for s, c in zip(score, rows) if c["kind"] in FALSE_KINDS]
        report["halves"][half] = {"kinds": kinds, "auroc": round(auroc(positives, negatives), 4)}
    if args.fit:
        report["fit"] = fit(claims)
    if args.json:
        print(json.dumps(report, indent=2))
        return
    print(json.dumps(report["machine"]))
    print(f"{len(claims)} claims from {args.questions} questions of {args.eval_set.name}; "
          f"check {report['ms_per_claim']} ms a claim; align share {ALIGN_SHARE}, threshold {SUPPORT_THRESHOLD}")
    for half, figures in report["halves"].items():
        print(f"{half} half: AUROC {figures['auroc']}")
        for kind, row in figures["kinds"].items():
            goal = "true: want <= 0.03" if kind in TRUE_KINDS else "false: want >= 0.97"
            print(f"  {kind:18s} {row['claims']:5d} claims, marked unsupported {row['unsupported']:.3f}  ({goal})")
    if args.fit:
        print("fit on the tune half (share, threshold, worst true-kind unsupported, worst false-kind unsupported):")
        for row in report["fit"][:10]:
            print("  ", row)


def fit(claims: list[dict]) -> list[tuple]:
    """Every (align share, threshold) on the tuning half, best first by the worse of the two goals' margins."""
    rows = [c for c in claims if c["half"] == "tune"]
    results = []
    for share in [i / 20 for i in range(21)]:
        for threshold in [i / 100 for i in range(20, 96)]:
            worst_true, worst_false = 0.0, 1.0
            for kind in TRUE_KINDS + FALSE_KINDS:
                of_kind = [c for c in rows if c["kind"] == kind]
                if not of_kind:
                    continue
                unsupported = sum(
                    c["missing_count"] > 0 or share * c["alignment"] + (1 - share) * c["coverage"] < threshold
                    for c in of_kind) / len(of_kind)
                if kind in TRUE_KINDS:
                    worst_true = max(worst_true, unsupported)
                else:
                    worst_false = min(worst_false, unsupported)
            results.append((share, threshold, round(worst_true, 4), round(worst_false, 4)))
    results.sort(key=lambda r: min(0.03 - r[2], r[3] - 0.97), reverse=True)
    return results


if __name__ == "__main__":
    main()
