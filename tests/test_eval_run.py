"""`qa eval` end to end on a slice of the real SQuAD dev set, and the reranker hook."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from qa.cli import main
from qa.embed import Reranker
from qa.errors import ConfigError
from qa.evaluate import contains_answer, run_eval
from qa.stores import open_store
from qa.indexer import update_index
from qa.retrieve import Retriever

SQUAD = Path(__file__).resolve().parent.parent.parent / "shared" / "eval" / "squad-dev-v1.1"
DOCS = 12


@pytest.fixture(scope="module")
def tiny_squad(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The first paragraphs of SQuAD v1.1 dev and their questions, as an eval set of its own."""
    if not Path(f"{SQUAD}.corpus.jsonl").is_file():
        pytest.skip("the shared SQuAD eval files are not beside the checkout")
    folder = tmp_path_factory.mktemp("squad")
    with open(f"{SQUAD}.corpus.jsonl", encoding="utf-8") as handle:
        corpus = [next(handle) for _ in range(DOCS)]
    ids = {json.loads(line)["id"] for line in corpus}
    with open(f"{SQUAD}.queries.jsonl", encoding="utf-8") as handle:
        queries = [line for line in handle if set(json.loads(line)["gold_doc_ids"]) <= ids]
    (folder / "tiny.corpus.jsonl").write_text("".join(corpus), encoding="utf-8")
    (folder / "tiny.queries.jsonl").write_text("".join(queries[:40]), encoding="utf-8")
    return folder / "tiny"


def test_eval_reports_every_mode_and_caches_the_index(tiny_squad: Path, embedder, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("QA_CACHE_DIR", str(tmp_path / "cache"))
    report = run_eval(tiny_squad, ["hybrid", "dense", "keyword"], limit=20, embedder=embedder)
    assert report.documents == DOCS
    assert [r.mode for r in report.results] == ["hybrid", "dense", "keyword"]
    for result in report.results:
        assert result.questions == 20
        assert 0.0 <= result.recall_at_1 <= result.recall_at_5 <= result.recall_at_20 <= 1.0
        assert result.answerability_auroc is None  # v1.1 has no unanswerable questions
    hybrid = report.results[0]
    # Twelve paragraphs on three topics: the right one is easy to find, and usually holds the answer.
    assert hybrid.recall_at_5 >= 0.9
    assert hybrid.answer_in_top_sentence >= 0.5

    # The second run finds the cached index: nothing is embedded again.
    index_dirs = list((tmp_path / "cache" / "eval").glob("tiny-*/index-*"))
    assert len(index_dirs) == 1
    again = update_index(index_dirs[0], embedder=embedder)
    assert again.chunks_embedded == 0 and again.unchanged == DOCS


def test_an_eval_index_an_older_qa_cached_is_built_again(tiny_squad: Path, embedder, tmp_path, monkeypatch) -> None:
    # An older qa embedded in batches, and int8 vectors depended on the batch: figures from its
    # cached index would not be the ones a fresh build gives, and a wrong figure looks like a right one.
    monkeypatch.setenv("QA_CACHE_DIR", str(tmp_path / "cache"))
    run_eval(tiny_squad, ["keyword"], limit=2, embedder=embedder)
    (built,) = (tmp_path / "cache" / "eval").glob("tiny-*/index-*")
    older = built.with_name(f"index-{embedder.backend}")
    built.rename(older)
    run_eval(tiny_squad, ["keyword"], limit=2, embedder=embedder)
    assert not older.exists() and [p.name for p in built.parent.glob("index-*")] == [built.name]
    assert update_index(built, embedder=embedder).chunks_embedded == 0


@pytest.fixture(scope="module")
def other_squad(tiny_squad: Path) -> Path:
    """The last paragraphs of SQuAD v1.1 dev (other articles than tiny_squad's) and their questions."""
    with open(f"{SQUAD}.corpus.jsonl", encoding="utf-8") as handle:
        corpus = handle.readlines()[-DOCS:]
    ids = {json.loads(line)["id"] for line in corpus}
    with open(f"{SQUAD}.queries.jsonl", encoding="utf-8") as handle:
        queries = [line for line in handle if set(json.loads(line)["gold_doc_ids"]) <= ids]
    folder = tiny_squad.parent
    (folder / "other.corpus.jsonl").write_text("".join(corpus), encoding="utf-8")
    (folder / "other.queries.jsonl").write_text("".join(queries[:40]), encoding="utf-8")
    return folder / "other"


def test_eval_asks_off_topic_questions_and_reports_the_share_declined(
        tiny_squad: Path, other_squad: Path, embedder, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("QA_CACHE_DIR", str(tmp_path / "cache"))
    report = run_eval(tiny_squad, ["hybrid", "keyword"], limit=10, embedder=embedder, off_topic=other_squad)
    for result in report.results:
        assert result.questions == 10 and result.off_topic_questions == 10
        # Twelve paragraphs on three topics, asked about others: nearly all declined.
        assert result.off_topic_declined is not None and result.off_topic_declined >= 0.8
    # A set about the same articles has no off-topic questions to give.
    with pytest.raises(ConfigError, match="about an article"):
        run_eval(tiny_squad, ["hybrid"], limit=10, embedder=embedder, off_topic=tiny_squad)


def test_eval_command_prints_json(tiny_squad: Path, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("QA_CACHE_DIR", str(tmp_path / "cache"))
    result = CliRunner().invoke(main, ["eval", str(tiny_squad), "--mode", "hybrid", "--limit", "3", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output[result.output.index("{"):])
    assert data["results"][0]["mode"] == "hybrid" and data["results"][0]["questions"] == 3


def test_eval_table_fits_an_80_column_terminal(tiny_squad: Path, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("QA_CACHE_DIR", str(tmp_path / "cache"))
    result = CliRunner().invoke(main, ["eval", str(tiny_squad), "--limit", "3"], env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    table = lines[next(n for n, line in enumerate(lines) if "keyword" in line):]
    assert all(len(line) <= 80 and "…" not in line for line in table)
    header = next(line for line in lines if "keyword" in line)
    assert header.split() == ["hybrid", "dense", "keyword"]
    assert any(line.split()[:4] == ["answer", "in", "top", "sentence"] for line in lines)
    assert "ms a question (the modes together)" in result.output


def test_eval_command_takes_no_align(tiny_squad: Path, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("QA_CACHE_DIR", str(tmp_path / "cache"))
    result = CliRunner().invoke(main, ["eval", str(tiny_squad), "--mode", "hybrid", "--limit", "3", "--no-align", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output[result.output.index("{"):])
    assert data["results"][0]["questions"] == 3


def _tiny_cross_encoder(folder: Path, model_path: Path) -> Path:
    """A randomly initialised two-layer BERT cross-encoder, saved like a real one."""
    from sentence_transformers import CrossEncoder
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    tokenizer = AutoTokenizer.from_pretrained(str(model_path))
    config = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=2,
                        num_attention_heads=2, intermediate_size=64, num_labels=1)
    BertForSequenceClassification(config).save_pretrained(str(folder))
    tokenizer.save_pretrained(str(folder))
    CrossEncoder(str(folder), device="cpu").save(str(folder))
    return folder


def test_reranker_reorders_hits_by_its_own_scores(tmp_path: Path, embedder, write_corpus) -> None:
    index_dir = tmp_path / "index"
    update_index(index_dir, [write_corpus(tmp_path / "corpus")], embedder=embedder)
    reranker = Reranker(_tiny_cross_encoder(tmp_path / "cross", embedder.model_path))
    query = "Kestrel Bay Bridge cost"
    index = open_store(index_dir)
    try:
        first_stage = Retriever(index, embedder).search(query, k=20)
        reranked = Retriever(index, embedder, reranker).search(query, k=5)
    finally:
        index.close()
    # Each hit now carries the cross-encoder's own score for it, and the hits are in that order.
    expected = reranker.score(query, [h.text for h in reranked])
    assert [h.score for h in reranked] == pytest.approx(expected, abs=1e-3)
    assert [h.score for h in reranked] == sorted((h.score for h in reranked), reverse=True)
    # The reranker chose among the first-stage passages, and the best of them by its own score.
    all_scores = reranker.score(query, [h.text for h in first_stage])
    assert {h.chunk_id for h in reranked} <= {h.chunk_id for h in first_stage}
    assert reranked[0].score == pytest.approx(max(all_scores), abs=1e-3)


def test_eval_writes_each_questions_outcome_for_a_paired_comparison(tiny_squad: Path, tmp_path, monkeypatch) -> None:
    import subprocess
    import sys

    monkeypatch.setenv("QA_CACHE_DIR", str(tmp_path / "cache"))
    out = tmp_path / "run.jsonl"
    result = CliRunner().invoke(main, ["eval", str(tiny_squad), "--mode", "hybrid", "--mode", "keyword",
                                       "--limit", "6", "--questions-out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output[result.output.index("{"):])
    assert "question_results" not in data  # in the file, not in the report
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [row["mode"] for row in rows] == ["hybrid"] * 6 + ["keyword"] * 6
    answers = {q["id"]: q["answers"] for q in map(json.loads, Path(f"{tiny_squad}.queries.jsonl").read_text(
        encoding="utf-8").splitlines())}
    for figures in data["results"]:
        mine = [row for row in rows if row["mode"] == figures["mode"]]
        # The rows add up to the report's figures.
        ranks = [row["first_gold_rank"] for row in mine]
        assert sum(rank == 1 for rank in ranks) / 6 == pytest.approx(figures["recall_at_1"])
        assert sum(rank is not None and rank <= 5 for rank in ranks) / 6 == pytest.approx(figures["recall_at_5"])
        assert sum(1 / rank for rank in ranks if rank and rank <= 10) / 6 == pytest.approx(figures["mrr_at_10"])
        assert sum(bool(row["answer_in_top_sentence"]) for row in mine) / 6 == pytest.approx(
            figures["answer_in_top_sentence"])
        for row in mine:
            assert row["ranked"] and (row["first_gold_rank"] is None) == (not set(row["gold"]) & set(row["ranked"]))
            # The sentence judged, from one of the documents listed: where a miss is read.
            assert row["top_sentence"] and row["top_sentence_doc"] in row["ranked"]
            assert row["answer_in_top_sentence"] == contains_answer(row["top_sentence"], answers[row["id"]])

    def paired(*files: Path | str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "bench/paired.py", *map(str, files), "--mode", "keyword"],
                              capture_output=True, text=True, cwd=Path(__file__).resolve().parents[1])

    # A second run where the first keyword question lost its gold article, and the second found it first.
    worse = [dict(row) for row in rows]
    keyword = [row for row in worse if row["mode"] == "keyword"]
    keyword[0]["first_gold_rank"], keyword[1]["first_gold_rank"] = None, 1
    after = tmp_path / "after.jsonl"
    after.write_text("".join(json.dumps(row) + "\n" for row in worse), encoding="utf-8")
    before_r1 = sum(row["first_gold_rank"] == 1 for row in rows if row["mode"] == "keyword")
    after_r1 = sum(row["first_gold_rank"] == 1 for row in keyword)
    compared = paired(out, after)
    assert compared.returncode == 0, compared.stderr
    line = next(line for line in compared.stdout.splitlines() if line.startswith("R@1"))
    assert f"{100 * (after_r1 - before_r1) / 6:+.2f}p" in line
    assert "6 questions, mode keyword" in paired(out, out).stdout
    # --gold 1 keeps the questions one article answers: give the first a second gold article.
    keyword[0]["gold"] = keyword[0]["gold"] + ["another"]
    after.write_text("".join(json.dumps(row) + "\n" for row in worse), encoding="utf-8")
    single = paired(out, after, "--gold", "1")
    assert "5 questions, mode keyword" in single.stdout
    line = next(line for line in single.stdout.splitlines() if line.startswith("R@1"))
    assert f"{100 * (after_r1 - before_r1 + (rows[6]['first_gold_rank'] == 1)) / 5:+.2f}p" in line
    assert "1 question, mode keyword" in paired(out, after, "--gold", "2").stdout
    none = paired(out, after, "--gold", "3")
    assert none.returncode != 0 and "no question has exactly 3" in none.stderr
    # Runs of other questions, or a file that is not a run, are refused in one line.
    fewer = tmp_path / "fewer.jsonl"
    fewer.write_text("".join(json.dumps(row) + "\n" for row in rows[:-1]), encoding="utf-8")  # a keyword one fewer
    assert paired(out, fewer).returncode != 0 and "same questions" in paired(out, fewer).stderr
    (tmp_path / "other.jsonl").write_text('{"answer": 42}\n', encoding="utf-8")
    refused = paired(out, tmp_path / "other.jsonl")
    assert refused.returncode != 0 and "not a `qa eval --questions-out` file" in refused.stderr
    assert "Traceback" not in refused.stderr
    # A file that cannot be written stops the run before it starts, with a one-line reason, and
    # leaves an earlier file as it was.
    blocked = CliRunner().invoke(main, ["eval", str(tiny_squad), "--limit", "1", "--questions-out",
                                        str(tmp_path / "no-such-folder" / "run.jsonl")])
    assert blocked.exit_code != 0 and "cannot write" in blocked.output and "Traceback" not in blocked.output
    kept = out.read_text(encoding="utf-8")
    failed = CliRunner().invoke(main, ["eval", str(tmp_path / "no-such-set"), "--questions-out", str(out)])
    assert failed.exit_code != 0 and out.read_text(encoding="utf-8") == kept


GOOD_DOCUMENT = '{"id": "d1", "title": "Seals", "text": "Grey seals pup in winter on the beaches of Norfolk."}\n'
GOOD_QUESTION = '{"id": "q1", "question": "When do grey seals pup?", "gold_doc_ids": ["d1"], "answers": ["in winter"]}\n'


def test_eval_ranks_each_question_as_qa_ask_does_in_a_process_of_its_own(tiny_squad: Path, embedder, tmp_path,
                                                                        monkeypatch) -> None:
    # qa eval reads its questions and their passages in one process, through one passage cache;
    # its figures stand for `qa ask`, which reads one question in a fresh process.
    from qa.evaluate import RETRIEVE_K, load_questions, prepare_corpus, resolve_eval_set

    monkeypatch.setenv("QA_CACHE_DIR", str(tmp_path / "cache"))
    out = tmp_path / "run.jsonl"
    result = CliRunner().invoke(main, ["eval", str(tiny_squad), "--mode", "hybrid", "--limit", "30",
                                       "--questions-out", str(out)])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    (index_dir,) = (tmp_path / "cache" / "eval").glob("tiny-*/index-*")
    _, path_to_id = prepare_corpus(resolve_eval_set(tiny_squad), index_dir.parent.parent)
    store = open_store(index_dir)
    try:
        for question, row in zip(load_questions(resolve_eval_set(tiny_squad).queries_path, 30), rows):
            hits = Retriever(store, embedder).search(question.question, k=RETRIEVE_K, mode="hybrid", align=True)
            assert row["ranked"] == list(dict.fromkeys(path_to_id[h.path] for h in hits)), question.question
    finally:
        store.close()


@pytest.mark.parametrize(
    "corpus, queries, expected",
    [
        (GOOD_DOCUMENT, GOOD_QUESTION + '{"id": "q2", "question": \n', "queries.jsonl line 2 is not JSON"),
        (GOOD_DOCUMENT, '{"id": "q1", "gold_doc_ids": ["d1"]}\n', "queries.jsonl line 1 has no 'question'"),
        (GOOD_DOCUMENT, "[1, 2, 3]\n", "queries.jsonl line 1 is not a JSON object"),
        # A string where a list belongs would be read letter by letter and scored as zeros.
        (GOOD_DOCUMENT, '{"id": "q1", "question": "When?", "gold_doc_ids": "d1"}\n', "'gold_doc_ids' must be a list of strings"),
        (GOOD_DOCUMENT, '{"id": "q1", "question": "When?", "answers": "in winter"}\n', "'answers' must be a list of strings"),
        (GOOD_DOCUMENT, "\n\n", "holds no questions"),
        ('{"id": "d1", "title": "Seals"}\n', GOOD_QUESTION, "corpus.jsonl line 1 has no 'text'"),
        ("", GOOD_QUESTION, "holds no documents"),
        (GOOD_DOCUMENT, GOOD_QUESTION.replace('["d1"]', '["d9"]'), "name only gold documents"),
        # Said before the corpus is indexed, with where, as `qa ask` would say it.
        (GOOD_DOCUMENT, '{"id": "q1", "question": "   "}\n', "queries.jsonl line 1 (id 'q1'): the question is empty"),
        (GOOD_DOCUMENT, '{"id": 7, "question": "???"}\n', "queries.jsonl line 1 (id 7): the question has no words in it"),
        (GOOD_DOCUMENT, '{"id": "q1", "question": "' + "why " * 600 + '"}\n', "the question is longer than 2000"),
        ('{"id": "d1", "text": " ", "title": ""}\n', GOOD_QUESTION,
         "corpus.jsonl line 1 (id 'd1'): the document has no text and no title"),
        (GOOD_DOCUMENT, '{"id": 1.5, "question": "When?"}\n', "'id' must be a string or a whole number"),
    ],
)
def test_a_broken_eval_set_is_a_one_line_error_naming_the_file_and_line(
    corpus: str, queries: str, expected: str, tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.setenv("QA_CACHE_DIR", str(tmp_path / "cache"))
    (tmp_path / "set.corpus.jsonl").write_text(corpus, encoding="utf-8")
    (tmp_path / "set.queries.jsonl").write_text(queries, encoding="utf-8")
    result = CliRunner().invoke(main, ["eval", str(tmp_path / "set"), "--mode", "keyword"])
    assert result.exit_code == 1, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.output
    assert expected in lines[0]


def test_an_eval_file_that_is_not_utf8_is_a_one_line_error(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("QA_CACHE_DIR", str(tmp_path / "cache"))
    (tmp_path / "set.corpus.jsonl").write_bytes(GOOD_DOCUMENT.replace("Norfolk", "Norf\xf6lk").encode("latin-1"))
    (tmp_path / "set.queries.jsonl").write_text(GOOD_QUESTION, encoding="utf-8")
    result = CliRunner().invoke(main, ["eval", str(tmp_path / "set"), "--mode", "keyword"])
    assert result.exit_code == 1, result.output
    assert "set.corpus.jsonl is not UTF-8 text" in result.output and "Traceback" not in result.output


def test_a_title_alone_is_a_document_and_a_byte_order_mark_is_read_past(tmp_path: Path, monkeypatch) -> None:
    # A document of a title alone was once skipped as an empty file, unsaid, and a queries file
    # as Windows tools write it (a UTF-8 byte-order mark first) refused as not JSON.
    monkeypatch.setenv("QA_CACHE_DIR", str(tmp_path / "cache"))
    (tmp_path / "set.corpus.jsonl").write_text(
        GOOD_DOCUMENT + '{"id": "d2", "title": "Harbour porpoises return to the Thames", "text": ""}\n', encoding="utf-8")
    (tmp_path / "set.queries.jsonl").write_text(
        '\ufeff{"id": "q1", "question": "Which porpoises return to the Thames?", "gold_doc_ids": ["d2"]}\n', encoding="utf-8")
    result = CliRunner().invoke(main, ["eval", str(tmp_path / "set"), "--mode", "keyword", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["documents"] == 2 and report["results"][0]["recall_at_1"] == 1.0, report


def test_a_question_that_names_no_gold_document_is_no_retrieval_miss(tmp_path: Path, monkeypatch) -> None:
    # `gold_doc_ids` is optional; a question without it once counted as a miss in R@k and MRR.
    monkeypatch.setenv("QA_CACHE_DIR", str(tmp_path / "cache"))
    (tmp_path / "set.corpus.jsonl").write_text(GOOD_DOCUMENT, encoding="utf-8")
    (tmp_path / "set.queries.jsonl").write_text(
        GOOD_QUESTION + '{"id": "q2", "question": "Who won the 1998 World Cup?", "answers": []}\n', encoding="utf-8")
    result = CliRunner().invoke(main, ["eval", str(tmp_path / "set"), "--mode", "keyword", "--json"])
    assert result.exit_code == 0, result.output
    figures = json.loads(result.stdout)["results"][0]
    assert (figures["questions"], figures["questions_with_gold"]) == (2, 1)
    assert figures["recall_at_1"] == figures["mrr_at_10"] == 1.0
