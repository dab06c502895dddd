"""The metric code of `qa eval` on hand-made cases with known answers."""

from __future__ import annotations

import math

import pytest

from qa.evaluate import auroc, contains_answer, ndcg_at, reciprocal_rank, recall_at, resolve_eval_set, squad_normalize
from qa.errors import ConfigError


def test_ranking_metrics_on_a_known_ranking() -> None:
    ranked = ["b", "a", "c"]
    gold = {"a"}
    assert recall_at(ranked, gold, 1) == 0.0
    assert recall_at(ranked, gold, 2) == 1.0
    assert reciprocal_rank(ranked, gold) == 0.5
    assert reciprocal_rank(["x"] * 10 + ["a"], gold, k=10) == 0.0
    assert ndcg_at(ranked, gold) == pytest.approx(1 / math.log2(3))
    assert ndcg_at(["a", "b"], {"a", "b"}) == pytest.approx(1.0)
    assert ndcg_at(["b", "x", "a"], {"a", "b"}) == pytest.approx((1 + 0.5) / (1 + 1 / math.log2(3)))


def test_squad_normalization_and_answer_containment() -> None:
    assert squad_normalize("The  $8 billion!") == "8 billion"
    assert contains_answer("repayment of Baghdad's $8 billion debt to Russia.", ["$8 billion"])
    assert contains_answer("It began in October 1973.", ["Denver", "October 1973"])
    assert not contains_answer("It cost 18 billion.", ["8 billion"])  # whole words only
    assert not contains_answer("anything", [""])
    # News pages write curly quotes, dashes and possessives, which SQuAD's normalization keeps.
    assert contains_answer("Her political slogan is “Safer with Susan”, Sky News added.", ["Safer with Susan"])
    assert contains_answer("It will publish Roald Dahl’s novels again.", ["Roald Dahl"])
    assert contains_answer("The debate is in Simi Valley, California—at the library.", ["California"])
    assert contains_answer("“Rockin’ Around the Christmas Tree” topped the chart.", ["Rockin' Around the Christmas Tree"])
    assert not contains_answer("Roald Dahlberg wrote it.", ["Roald Dahl"])
    # Whatever SQuAD's rule finds is still found, and a currency sign is no punctuation.
    assert contains_answer("I dont know", ["don't"]) and contains_answer("It's complicated", ["its complicated"])
    assert not contains_answer("It cost €5 billion.", ["$5 billion"])


def test_auroc_counts_ordered_pairs_and_ties() -> None:
    assert auroc([0.9, 0.8], [0.1, 0.2]) == 1.0
    assert auroc([0.1], [0.9]) == 0.0
    assert auroc([0.5], [0.5]) == 0.5
    assert auroc([0.9, 0.3], [0.5]) == 0.5


def test_eval_set_is_found_from_prefix_or_file(tmp_path) -> None:
    (tmp_path / "tiny.corpus.jsonl").write_text('{"id": "d1", "title": "T", "text": "x"}\n')
    (tmp_path / "tiny.queries.jsonl").write_text('{"id": "q1", "question": "x?", "gold_doc_ids": ["d1"], "answers": ["x"]}\n')
    for location in (tmp_path / "tiny", tmp_path / "tiny.corpus.jsonl", tmp_path):
        found = resolve_eval_set(location)
        assert found.corpus_path == tmp_path / "tiny.corpus.jsonl"
        assert found.queries_path == tmp_path / "tiny.queries.jsonl"
    with pytest.raises(ConfigError):
        resolve_eval_set(tmp_path / "missing")
