"""`qa eval`: how often retrieval finds the gold passage and the answer cites the gold sentence.

An eval set is two JSON Lines files sharing a prefix (see ../shared/eval/README.md):
``PREFIX.corpus.jsonl`` with ``{id, title, text}`` documents and ``PREFIX.queries.jsonl`` with
``{id, question, gold_doc_ids, answers}``. The corpus goes through the same pipeline as a user's
articles (files on disk -> `qa index`), into an index of its own that is cached by the corpus's
content hash, so a second run embeds nothing.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import shutil
import string
import time
import unicodedata
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from qa.answer import JUDGMENT_THRESHOLD, answer_probability, answers_question, score_sentences, searched_question
from qa.config import cache_dir
from qa.errors import ConfigError, IndexMismatchError, QAError
from qa.retrieve import MODES, Retriever, clean_query
from qa.types import Hit

RETRIEVE_K = 20


# At most this many passages' token states are kept through an eval run (about 260 KB each).
EVAL_CACHED_PASSAGES = 4096
# A cached eval index is built again when this changes: raised whenever the same corpus would be
# embedded differently by the same model and backend, so that figures never come from vectors an
# older qa made (2: ONNX reads one text a pass, 2026-12-05; before, a passage's vectors depended
# on the batch it was embedded in). One number for every backend: a torch cache, whose vectors
# did not change then, is built again too, once. 3: a sentence ending on an hour runs on into
# its day, date or zone ("at 11 a.m. Saturday", qa.chunk), 2026-12-06. 4: a photo credit that
# opens a caption is a sentence of its own ("Pavel Mikheyev/Reuters", qa.text.PHOTO_CREDIT).
# 5: accents composed with their letters (qa.ingest._composed), 2026-12-07. 6: a list's number
# is no sentence of its own ("2." before "Boil all tap water", qa.chunk; in 56 of 2024's 1,744
# news articles, none of SQuAD's paragraphs), 2026-12-07.
EVAL_INDEX_REVISION = 6


@dataclass(frozen=True)
class EvalQuestion:
    """One question with the documents and answer strings that count as right."""

    id: str
    question: str
    gold_doc_ids: tuple[str, ...]
    answers: tuple[str, ...]


@dataclass(frozen=True)
class EvalSet:
    name: str
    corpus_path: Path
    queries_path: Path


@dataclass
class ModeResult:
    """Figures of one retrieval mode over the questions asked."""

    mode: str
    questions: int = 0
    # The questions that name gold documents: recall, MRR and nDCG are over these alone.
    questions_with_gold: int = 0
    recall_at_1: float = 0.0
    recall_at_5: float = 0.0
    recall_at_20: float = 0.0
    mrr_at_10: float = 0.0
    ndcg_at_10: float = 0.0
    answer_in_top_sentence: float = 0.0
    answerable_questions: int = 0
    seconds_per_question: float = 0.0
    # The "does not answer" judgment: the share of answerable questions it lets be answered, and
    # (SQuAD v2) the share of unanswerable ones it declines and how well it separates the two.
    answered: float = 0.0
    unanswerable_questions: int = 0
    declined: float | None = None
    answerability_auroc: float | None = None
    answerability_accuracy: float | None = None
    # With `--off-topic`: questions about articles the corpus lacks, and the share declined.
    off_topic_questions: int = 0
    off_topic_declined: float | None = None


@dataclass
class QuestionResult:
    """One question's outcome in one mode (`qa eval --questions-out`): what two runs are compared by,
    question by question (bench/paired.py)."""

    mode: str
    id: str
    question: str  # as the set asks it (qa eval may search it respelled, as `qa ask` would)
    gold: list[str]
    ranked: list[str]  # the distinct documents of the first RETRIEVE_K passages, best first
    first_gold_rank: int | None  # 1-based; None when no gold document was retrieved
    answer_in_top_sentence: bool | None  # None for a question with no answer strings (SQuAD v2)
    answered: bool  # the judgment let the answer be given
    # The sentence the answer would quote first, and the document it is in: where a miss is read.
    top_sentence: str | None = None
    top_sentence_doc: str | None = None


@dataclass
class EvalReport:
    eval_set: str
    documents: int
    index_seconds: float
    backend: str = "torch"
    results: list[ModeResult] = field(default_factory=list)
    # Questions asked with a mistyped word read as the corpus spells it, as `qa ask` reads them
    # (qa.spelling), off-topic ones included; with `--no-align` (as `qa search` ranks) none is.
    respelled_questions: int = 0


def resolve_eval_set(location: str | os.PathLike[str]) -> EvalSet:
    """Find the corpus and queries files from a prefix, either file, or a folder holding one set."""
    raw = str(location)
    for suffix in (".corpus.jsonl", ".queries.jsonl"):
        if raw.endswith(suffix):
            raw = raw[: -len(suffix)]
    prefix = Path(os.path.expanduser(raw))
    if prefix.is_dir():
        corpora = sorted(prefix.glob("*.corpus.jsonl"))
        if len(corpora) != 1:
            raise ConfigError(f"{prefix} holds {len(corpora)} eval sets; name one, e.g. {prefix}/NAME")
        prefix = Path(str(corpora[0])[: -len(".corpus.jsonl")])
    corpus = Path(f"{prefix}.corpus.jsonl")
    queries = Path(f"{prefix}.queries.jsonl")
    for path in (corpus, queries):
        if not path.is_file():
            raise ConfigError(f"no eval file {path}: expected PREFIX.corpus.jsonl and PREFIX.queries.jsonl")
    return EvalSet(prefix.name, corpus, queries)


# What each line of a set's files must hold: key -> (the kinds it may be, whether it must be there).
_QUESTION_FIELDS = {"id": ((str, int), True), "question": ((str,), True), "gold_doc_ids": ((list,), False),
                    "answers": ((list,), False)}
_DOCUMENT_FIELDS = {"id": ((str, int), True), "text": ((str,), True), "title": ((str, type(None)), False)}
_KIND_NAMES = {str: "a string", int: "a whole number", list: "a list of strings", type(None): "null"}


def read_rows(path: Path, fields: dict[str, tuple[tuple[type, ...], bool]],
              check: Callable[[dict[str, Any]], object] | None = None) -> Iterator[dict[str, Any]]:
    """The rows of a JSON Lines eval file, each checked to hold `fields` as they must be, and to
    pass `check` (a QAError of its names the row); a row that does not is a ConfigError naming the
    file and line, so a broken set is never scored as zeros (a string where a list belongs would be
    read letter by letter). A byte-order mark, as Windows tools write one, is read past."""
    try:
        with open(path, encoding="utf-8-sig") as handle:
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                where = f"{path} line {number}"
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise ConfigError(f"{where} is not JSON ({exc.msg})") from None
                if not isinstance(row, dict):
                    raise ConfigError(f"{where} is not a JSON object")
                for key, (kinds, required) in fields.items():
                    if key not in row:
                        if required:
                            raise ConfigError(f"{where} has no {key!r}")
                        continue
                    value = row[key]
                    if not isinstance(value, kinds) or isinstance(value, bool) or (
                        isinstance(value, list) and not all(isinstance(item, str) for item in value)
                    ):
                        wanted = " or ".join(_KIND_NAMES[kind] for kind in kinds)
                        raise ConfigError(f"{where}: {key!r} must be {wanted}")
                if check is not None:
                    try:
                        check(row)
                    except QAError as exc:
                        raise ConfigError(f"{where} (id {row['id']!r}): {exc}") from None
                yield row
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path} is not UTF-8 text ({exc.reason})") from None


def load_questions(path: Path, limit: int | None = None) -> list[EvalQuestion]:
    questions = []
    # Each question is read as `qa ask` reads it, here rather than after the corpus is indexed.
    for row in read_rows(path, _QUESTION_FIELDS, lambda row: clean_query(row["question"])):
        questions.append(EvalQuestion(
            str(row["id"]), row["question"], tuple(row.get("gold_doc_ids", ())), tuple(row.get("answers", ()))
        ))
        if limit is not None and len(questions) >= limit:
            break
    if not questions:
        raise ConfigError(f"{path} holds no questions")
    return questions


# Metrics ------------------------------------------------------------------------------------------------


_NO_PUNCTUATION = str.maketrans("", "", string.punctuation)


def squad_normalize(text: str) -> str:
    """SQuAD's answer normalization: lower case, no punctuation, no articles, single spaces.

    >>> squad_normalize("The  $8 billion!")
    '8 billion'
    """
    text = text.lower().translate(_NO_PUNCTUATION)
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


# Punctuation past ASCII (curly quotes, dashes), which SQuAD's normalization keeps, and the
# possessive "’s": news pages write “Safer with Susan”, “Powering up Britain” and Roald Dahl’s,
# and a sentence holding the answer so was counted as missing it. Read so (2026-12-07, hybrid,
# rankings unchanged), the top sentence holds the answer for 13 more of RealTimeQA 2023's 600 news
# questions, 13 more of 2024's 554, and 47 more of SQuAD v1.1 dev's 10,570.
_POSSESSIVE = re.compile(r"['’]s\b")


def answer_words(text: str) -> str:
    """`text` as an answer is looked for in a sentence: a possessive "'s" dropped, a curly
    apostrophe read as a straight one, every other punctuation mark past ASCII made a space, then
    SQuAD's normalization. Currency signs and other symbols stay: "€5" is not "$5".

    >>> answer_words("Her slogan is “Safer with Susan”—and Roald Dahl’s books don’t")
    'her slogan is safer with susan and roald dahl books dont'
    """
    text = _POSSESSIVE.sub("", text).replace("’", "'")
    text = "".join(" " if c > "\x7f" and unicodedata.category(c)[0] == "P" else c for c in text)
    return squad_normalize(text)


def contains_answer(sentence: str, answers: Sequence[str]) -> bool:
    """Whether any gold answer appears in the sentence on word boundaries, both normalized by
    SQuAD's rule or both by answer_words: whatever SQuAD's rule finds is still found."""
    readings = [(read, f" {read(sentence)} ") for read in (squad_normalize, answer_words)]
    return any(f" {wanted} " in haystack for answer in answers for read, haystack in readings
               if (wanted := read(answer)))


def recall_at(ranked: Sequence[str], gold: set[str], k: int) -> float:
    """1 if a gold document is among the first k, else 0: ``(["b", "a"], {"a"}, 1) -> 0.0``."""
    return 1.0 if any(doc in gold for doc in ranked[:k]) else 0.0


def reciprocal_rank(ranked: Sequence[str], gold: set[str], k: int = 10) -> float:
    """1/rank of the first gold document within k: ``(["b", "a"], {"a"}) -> 0.5``."""
    for rank, doc in enumerate(ranked[:k], start=1):
        if doc in gold:
            return 1.0 / rank
    return 0.0


def ndcg_at(ranked: Sequence[str], gold: set[str], k: int = 10) -> float:
    """Binary-relevance nDCG@k: ``(["b", "a"], {"a"}) -> 1/log2(3) = 0.631``."""
    dcg = sum(1.0 / math.log2(rank + 1) for rank, doc in enumerate(ranked[:k], start=1) if doc in gold)
    ideal = sum(1.0 / math.log2(rank + 1) for rank in range(1, min(len(gold), k) + 1))
    return dcg / ideal if ideal else 0.0


def auroc(positives: Sequence[float], negatives: Sequence[float]) -> float:
    """Probability that a random positive outscores a random negative (ties count half)."""
    if not positives or not negatives:
        return float("nan")
    ranked = sorted([(s, 1) for s in positives] + [(s, 0) for s in negatives])
    # Mann-Whitney U with average ranks for ties.
    rank_sum = 0.0
    i = 0
    while i < len(ranked):
        j = i
        while j + 1 < len(ranked) and ranked[j + 1][0] == ranked[i][0]:
            j += 1
        average = (i + j) / 2 + 1
        rank_sum += average * sum(1 for t in range(i, j + 1) if ranked[t][1] == 1)
        i = j + 1
    n_pos, n_neg = len(positives), len(negatives)
    return (rank_sum - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)


# Running ------------------------------------------------------------------------------------------------


def prepare_corpus(eval_set: EvalSet, root: Path) -> tuple[Path, dict[str, str]]:
    """Write the corpus as one Markdown file per document (once); map file paths to corpus ids."""
    digest = hashlib.sha256(eval_set.corpus_path.read_bytes()).hexdigest()[:16]
    workdir = root / f"{eval_set.name}-{digest}"
    corpus_dir = workdir / "corpus"
    done = workdir / "corpus.complete"
    path_to_id: dict[str, str] = {}
    rows = list(read_rows(eval_set.corpus_path, _DOCUMENT_FIELDS, _has_words))
    if not rows:
        raise ConfigError(f"{eval_set.corpus_path} holds no documents")
    write = not done.is_file()
    if write:
        corpus_dir.mkdir(parents=True, exist_ok=True)
    for n, row in enumerate(rows):
        path = corpus_dir / f"{n:06d}.md"
        path_to_id[str(path.absolute())] = str(row["id"])
        if write:
            title = " ".join(str(row.get("title") or "").replace("_", " ").split())
            # A document of a title alone is its title (it would be skipped as an empty file, and
            # a question whose gold it is scored as a miss).
            text = row["text"].strip() or title
            path.write_text(f"---\ntitle: {title}\n---\n\n{text}\n", encoding="utf-8")
    if write:
        done.write_text(digest + "\n")
    return workdir, path_to_id


def _has_words(row: dict[str, Any]) -> None:
    """Refuse a corpus document with neither text nor title: nothing of it could be indexed."""
    if not row["text"].strip() and not str(row.get("title") or "").strip():
        raise ConfigError("the document has no text and no title")


def cached_index_name(workdir: Path, kind: str, backend: str) -> str:
    """The name of the eval cache's index of `kind` ("index" or "milvus") for `backend`, at
    EVAL_INDEX_REVISION; the same index of an earlier revision is deleted (it is only a cache,
    and a news index takes hundreds of megabytes)."""
    suffix = ".db" if kind == "milvus" else ""
    current = f"{kind}-{backend}-r{EVAL_INDEX_REVISION}{suffix}"
    stale = [f"{kind}-{backend}{suffix}"] + [f"{kind}-{backend}-r{n}{suffix}" for n in range(2, EVAL_INDEX_REVISION)]
    # A Milvus Lite store keeps qa's own state in a folder beside it (StoreLocation.state_dir).
    for name in stale + [f"{name}.qa" for name in stale if kind == "milvus"]:
        path = workdir / name
        if path.is_symlink() or path.is_file():
            path.unlink(missing_ok=True)
        elif path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
    return current


class _Tally:
    """Running sums of one mode's figures."""

    def __init__(self, mode: str, rows: list[QuestionResult] | None = None) -> None:
        self.result = ModeResult(mode=mode)
        self.sums = dict(r1=0.0, r5=0.0, r20=0.0, mrr=0.0, ndcg=0.0, answer=0.0)
        self.answerable_scores: list[float] = []
        self.unanswerable_scores: list[float] = []
        self.answered = 0
        self.declined = 0
        self.rows = rows  # where each question's outcome goes, when kept

    def add(self, question: EvalQuestion, hits, weights: dict[str, float], path_to_id: dict[str, str],
            collection_chunks: int) -> None:
        documents = [path_to_id.get(h.path, h.path) for h in hits]
        ranked = list(dict.fromkeys(documents))
        gold = set(question.gold_doc_ids)
        if gold:  # a question that names no gold document is no retrieval miss
            self.result.questions_with_gold += 1
            self.sums["r1"] += recall_at(ranked, gold, 1)
            self.sums["r5"] += recall_at(ranked, gold, 5)
            self.sums["r20"] += recall_at(ranked, gold, 20)
            self.sums["mrr"] += reciprocal_rank(ranked, gold, 10)
            self.sums["ndcg"] += ndcg_at(ranked, gold, 10)
        scored = score_sentences(hits, weights, question.question)
        probability = answer_probability(scored, hits, collection_chunks)
        judged_answerable = probability >= JUDGMENT_THRESHOLD
        found = None
        if question.answers:
            self.result.answerable_questions += 1
            found = bool(scored) and contains_answer(scored[0].text, question.answers)
            self.sums["answer"] += found
            self.answerable_scores.append(probability)
            self.answered += judged_answerable
        else:
            self.unanswerable_scores.append(probability)
            self.declined += not judged_answerable
        self.result.questions += 1
        if self.rows is not None:
            first = next((rank for rank, doc in enumerate(ranked, start=1) if doc in gold), None)
            top = scored[0] if scored else None
            self.rows.append(QuestionResult(self.result.mode, question.id, question.question,
                                            list(question.gold_doc_ids), ranked, first, found, judged_answerable,
                                            top.text if top else None, documents[top.hit_rank] if top else None))

    def finish(self, shared_seconds: float) -> ModeResult:
        r = self.result
        n = max(r.questions, 1)
        with_gold = max(r.questions_with_gold, 1)
        r.recall_at_1 = self.sums["r1"] / with_gold
        r.recall_at_5 = self.sums["r5"] / with_gold
        r.recall_at_20 = self.sums["r20"] / with_gold
        r.mrr_at_10 = self.sums["mrr"] / with_gold
        r.ndcg_at_10 = self.sums["ndcg"] / with_gold
        r.answer_in_top_sentence = self.sums["answer"] / max(r.answerable_questions, 1)
        r.seconds_per_question = shared_seconds / n
        r.unanswerable_questions = len(self.unanswerable_scores)
        r.answered = self.answered / max(r.answerable_questions, 1)
        if self.unanswerable_scores:
            r.declined = self.declined / len(self.unanswerable_scores)
        if self.unanswerable_scores and self.answerable_scores:
            r.answerability_auroc = auroc(self.answerable_scores, self.unanswerable_scores)
            r.answerability_accuracy = (self.answered + self.declined) / n
        return r


def evaluate_modes(
    retriever: Retriever,
    questions: Sequence[EvalQuestion],
    vectors,
    modes: Sequence[str],
    path_to_id: dict[str, str],
    advance: Callable[[int], None] | None = None,
    align: bool = True,
    question_states: Sequence | None = None,
    question_results: list[QuestionResult] | None = None,
) -> list[ModeResult]:
    """Ask every question (retrieving once for all modes) and average each mode's figures; when
    `question_results` is a list, each question's outcome is added to it, mode by mode in `modes`'
    order, each mode's in the questions' order.

    The time per question covers retrieval in every mode plus answer selection, query embedding
    excluded (read before, a question at a time); with one mode it is that mode's own latency. With `align`, hybrid
    reads its first passages again as `qa ask` does (qa.align); dense and keyword stay single-stage.
    """
    tallies = {mode: _Tally(mode, [] if question_results is not None else None) for mode in modes}
    collection_chunks = retriever.store.chunk_count()
    started = time.perf_counter()
    for question, weights, by_mode in _asked(retriever, questions, vectors, modes, align, question_states, advance):
        for mode, hits in by_mode.items():
            tallies[mode].add(question, hits, weights, path_to_id, collection_chunks)
    elapsed = time.perf_counter() - started
    if question_results is not None:
        question_results.extend(row for mode in modes for row in tallies[mode].rows or [])
    return [tallies[mode].finish(elapsed) for mode in modes]


def _asked(
    retriever: Retriever,
    questions: Sequence[EvalQuestion],
    vectors,
    modes: Sequence[str],
    align: bool,
    question_states: Sequence | None,
    advance: Callable[[int], None] | None,
) -> Iterator[tuple[EvalQuestion, dict[str, float], dict[str, list[Hit]]]]:
    """Each question searched in every mode at once (retrieving once for all): the question, its
    term weights and its hits by mode; `advance(1)` once it has been dealt with."""
    for n, (question, vector) in enumerate(zip(questions, vectors)):
        states = question_states[n] if question_states is not None else None
        by_mode = retriever.search_modes(
            question.question, RETRIEVE_K, modes, query_vector=vector, align=align, query_states=states
        )
        yield question, retriever.term_weights(question.question), by_mode
        if advance is not None:
            advance(1)


def respelled_questions(questions: Sequence[EvalQuestion], retriever: Retriever) -> tuple[list[EvalQuestion], int]:
    """The questions as `qa ask` searches them (`searched_question`: a mistyped word read as the
    corpus spells it), and how many of them that changed."""
    asked = []
    for question in questions:
        cleaned = clean_query(question.question)
        searched = searched_question(retriever, cleaned)
        asked.append(replace(question, question=searched) if searched != cleaned else question)
    return asked, sum(a is not q for a, q in zip(asked, questions))


def off_topic_questions_for(eval_set: EvalSet, other: EvalSet, limit: int | None = None) -> list[EvalQuestion]:
    """`other`'s questions about articles `eval_set`'s corpus lacks: every gold document's title
    is one the corpus does not hold (SQuAD v1.1 dev's 13 articles that v2.0 dev lacks)."""
    own_titles = set(corpus_titles(eval_set.corpus_path).values())
    other_titles = corpus_titles(other.corpus_path)
    if not any(other_titles.values()):
        raise ConfigError(f"{other.corpus_path} has no titles, so its off-topic questions cannot be told apart")
    chosen = [
        q for q in load_questions(other.queries_path)
        if q.gold_doc_ids and all(other_titles.get(d) and other_titles[d] not in own_titles for d in q.gold_doc_ids)
    ]
    if not chosen:
        raise ConfigError(f"every question of {other.name} is about an article {eval_set.name} holds; "
                          "name a set about other articles")
    return chosen[:limit] if limit else chosen


def corpus_titles(corpus_path: Path) -> dict[str, str]:
    """Each corpus document's title by id ("" where it has none)."""
    return {str(row["id"]): str(row.get("title") or "") for row in read_rows(corpus_path, _DOCUMENT_FIELDS)}


def off_topic_declined_shares(
    retriever: Retriever,
    questions: Sequence[EvalQuestion],
    vectors,
    modes: Sequence[str],
    advance: Callable[[int], None] | None = None,
    align: bool = True,
    question_states: Sequence | None = None,
) -> dict[str, float]:
    """For each mode, the share of `questions` (none of them answerable here) its judgment declines."""
    declined = dict.fromkeys(modes, 0)
    collection_chunks = retriever.store.chunk_count()
    for question, weights, by_mode in _asked(retriever, questions, vectors, modes, align, question_states, advance):
        for mode, hits in by_mode.items():
            scored = score_sentences(hits, weights, question.question)
            declined[mode] += not answers_question(scored, hits, collection_chunks)
    return {mode: count / max(1, len(questions)) for mode, count in declined.items()}


def run_eval(
    location: str | os.PathLike[str],
    modes: Sequence[str] = MODES,
    limit: int | None = None,
    progress=None,
    embedder=None,
    reranker: str | None = None,
    store: str | None = None,
    align: bool = True,
    off_topic: str | os.PathLike[str] | None = None,
    question_results: list[QuestionResult] | None = None,
) -> EvalReport:
    """Index the eval corpus (cached), then evaluate each mode on its questions.

    `store` keeps the eval index in a store: "milvus" for a Milvus Lite store in the eval cache,
    or any --store value (faiss:DIR, milvus:FILE.db, milvus://HOST:PORT/COLLECTION).
    `off_topic` names another eval set: its questions about articles this corpus lacks (by title)
    are asked too, and each mode reports the share its judgment declines. When `question_results`
    is a list, each of the set's questions' outcome in each mode is added to it (evaluate_modes;
    off-topic questions are not), under the question as the set asks it.
    """
    import numpy as np

    from qa.embed import Embedder, mean_vector
    from qa.indexer import update_index
    from qa.stores import open_store
    from qa.stores.location import StoreLocation, parse_store

    for mode in modes:
        if mode not in MODES:
            raise ConfigError(f"unknown mode {mode!r}; choose from {', '.join(MODES)}")
    eval_set = resolve_eval_set(location)
    off_topic_questions = off_topic_questions_for(eval_set, resolve_eval_set(off_topic), limit) if off_topic else []
    # The questions are read first: a broken queries file stops the run before anything is indexed.
    questions = load_questions(eval_set.queries_path, limit)
    embedder = embedder or Embedder()
    workdir, path_to_id = prepare_corpus(eval_set, cache_dir() / "eval")
    corpus_ids = set(path_to_id.values())
    lacking = [q for q in questions if q.gold_doc_ids and corpus_ids.isdisjoint(q.gold_doc_ids)]
    if lacking:
        raise ConfigError(
            f"{len(lacking)} of {len(questions)} questions in {eval_set.queries_path} name only gold documents "
            f"{eval_set.corpus_path.name} does not hold (the first: {lacking[0].id!r}, gold {list(lacking[0].gold_doc_ids)})"
        )
    started = time.perf_counter()
    if store == "milvus":
        location = parse_store(f"milvus:{workdir / cached_index_name(workdir, 'milvus', embedder.backend)}")
    elif store:
        location = parse_store(store)
    else:
        location = StoreLocation("faiss", workdir / cached_index_name(workdir, "index", embedder.backend))
    try:
        update_index(location, [workdir / "corpus"], embedder=embedder, progress=progress)
    except IndexMismatchError:
        # A cached eval index from an older qa (or another model): it is only a cache, so it is
        # built again rather than left to the user to delete.
        update_index(location, [workdir / "corpus"], embedder=embedder, progress=progress, rebuild=True)
    index_seconds = time.perf_counter() - started
    index = open_store(location)
    try:
        from qa.embed import Reranker

        if isinstance(embedder, Embedder) and embedder.bulk:
            # The questions are asked one at a time: the encoder that built the index in bulk
            # would busy-wait between them (see Embedder).
            embedder = Embedder(embedder.model_path, embedder.batch_size, embedder.backend, bulk=False)
        retriever = Retriever(index, embedder, Reranker(reranker) if reranker else None)
        # Thousands of questions ask about the same few thousand passages: keep every passage's
        # token states once read (about 260 KB each) instead of the chat's few hundred.
        retriever.aligner().cached_passages = min(index.counts()[1], EVAL_CACHED_PASSAGES)
        asked = len(questions) + len(off_topic_questions)
        respelled = 0
        as_asked = [q.question for q in questions]  # the set's wording, for question_results
        if align:
            # Before the questions are read in batches, so the time per question leaves it out
            # (about 1 ms a question on SQuAD v2.0's index, 2.5 ms on a news index).
            questions, respelled = respelled_questions(questions, retriever)
            off_topic_questions, respelled_off_topic = respelled_questions(off_topic_questions, retriever)
            respelled += respelled_off_topic
        if progress is not None:
            progress.start("Questions", asked)

        def read(texts: list[str]) -> tuple[np.ndarray, list | None]:
            # Read as `qa ask` and `qa search` read a question: cleaned, and by the int8 encoder
            # alone (qa.embed), so that the figures are those of the commands they stand for.
            cleaned = [clean_query(text) for text in texts]
            if not (align and "hybrid" in modes):
                return embedder.encode(cleaned, progress=progress.advance if progress else None), None
            # The aligned hybrid search reads each question token by token too. One pass gives
            # both: the question's vector is the mean of its token states, as the model pools.
            # Read as search reads them, so each token's offsets point into the same text.
            states = []
            for text in cleaned:  # a question a call, so that the progress bar moves
                states.extend(embedder.token_states([text]))
                if progress is not None:
                    progress.advance(1)
            return np.stack([mean_vector(hidden) for hidden, _ in states]), states

        vectors, states = read([q.question for q in questions])
        off_vectors, off_states = read([q.question for q in off_topic_questions]) if off_topic_questions else (None, None)
        report = EvalReport(eval_set.name, index.counts()[0], index_seconds, embedder.backend,
                            respelled_questions=respelled)
        if progress is not None:
            progress.start("Asking", asked)
        advance = progress.advance if progress else None
        first_row = len(question_results) if question_results is not None else 0
        report.results = evaluate_modes(retriever, questions, vectors, modes, path_to_id, advance, align, states,
                                        question_results)
        if question_results is not None:
            # Each mode's rows come in the questions' order. They keep the set's wording: a run
            # that respells a question and one that does not (--no-align) ask the same question.
            for row, original in zip(question_results[first_row:], as_asked * len(modes)):
                row.question = original
        if off_topic_questions:
            declined = off_topic_declined_shares(retriever, off_topic_questions, off_vectors, modes, advance, align,
                                                 off_states)
            for result in report.results:
                result.off_topic_questions = len(off_topic_questions)
                result.off_topic_declined = declined[result.mode]
    finally:
        index.close()
    return report

