"""Mistyped question words (qa.spelling) on a real index of two short articles, real model."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from qa.embed import Embedder
from qa.indexer import update_index
from qa.spelling import corrected_query, edit_likelihood, likely_typos, one_edit_words
from qa.stores import open_store
from qa.stores.base import Store

FLOODS = """Floods cut off Varlen

Heavy rain cut off the mountain village of Varlen on Monday, and the road to nearby Varden was
closed. Mobile phone service failed across the valley for most of the day.
"""

HARVEST = """Apple harvest begins early

Farmers in the valley began picking apples on Tuesday, a week earlier than last year, after a warm
spring.
"""


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder) -> Iterator[Store]:
    folder = tmp_path_factory.mktemp("spelling") / "articles"
    folder.mkdir()
    (folder / "floods.txt").write_text(FLOODS, encoding="utf-8")
    (folder / "harvest.txt").write_text(HARVEST, encoding="utf-8")
    index = folder.parent / "index"
    update_index(index, [folder], embedder=embedder)
    opened = open_store(index)
    yield opened
    opened.close()


def test_a_rare_word_the_articles_hold_is_left_alone(store: Store) -> None:
    # "Varlen" is one edit from "Varden", which the articles also hold: neither is a typo.
    assert corrected_query("Which road was closed near Varlen?", store) is None


def test_a_mistyped_word_keeps_the_case_it_was_typed_in(store: Store) -> None:
    assert corrected_query("Which road was closed near Varlenn?", store) == "Which road was closed near Varlen?"
    assert corrected_query("WHAT FAILED ACROSS THE VALEEY?", store) == "WHAT FAILED ACROSS THE VALLEY?"


def test_an_accent_typed_as_its_own_mark_does_not_split_a_word(store: Store) -> None:
    # Decomposed, "Jose\u0301phine" reads as "jose" and "phine", one edit from the articles' "phone".
    assert corrected_query("Did Jose\u0301phine lose her phone?", store) is None


def test_a_string_longer_than_any_english_word_is_no_typo(store: Store) -> None:
    # A pasted hash or a key held down: its one-edit neighbours (54 a letter) were each looked up,
    # 4-5 s for 2,000 letters. A word of ordinary length absent from the articles still is one.
    assert likely_typos("Was the road to " + "x" * 2000 + " closed?", store) == []
    assert likely_typos("Was the road to " + "varden" * 5 + " closed?", store) == []
    assert likely_typos("Was the road to Vardenn closed?", store) == ["vardenn"]


def test_one_edit_drops_adds_changes_or_swaps_a_letter() -> None:
    near = one_edit_words("sinse")
    assert {"sines", "since", "sine", "sinsee", "rinse", "snise"} <= near
    assert "sinse" not in near
    assert "sixes" not in near  # two edits


def test_a_swap_or_a_doubled_letter_is_the_likeliest_slip() -> None:
    assert edit_likelihood("sinse", "sines") > edit_likelihood("sinse", "sine")
    assert edit_likelihood("departmentt", "department") > edit_likelihood("departmentt", "departments")


def test_a_typo_is_read_as_a_word_english_knows_not_as_another_slip(tmp_path, embedder: Embedder) -> None:
    # It used to be "secretely" (Zipf 1.38), held through the stem of the articles' "secrets" and
    # a better keyword fit with "Top Gun", in place of the "secretary" the articles hold.
    folder = tmp_path / "articles"
    folder.mkdir()
    (folder / "award.txt").write_text("Cruise honoured by the Navy\n\nNavy Secretary Carlos Del Toro gave Tom Cruise "
                                      "the Distinguished Public Service Award for the Top Gun films.\n", encoding="utf-8")
    (folder / "scene.txt").write_text("Top Gun secrets\n\nThe secrets of Top Gun: why its love scene was shot "
                                      "again months after filming ended.\n", encoding="utf-8")
    # A name English does not know beside an everyday word one edit away: the articles spell both.
    (folder / "milei.txt").write_text("Milei on prices\n\nPresident Javier Milei said inflation in Argentina "
                                      "fell for the third month.\n", encoding="utf-8")
    (folder / "race.txt").write_text("City marathon\n\nThe runners covered 26 miles, and the last mile was "
                                     "uphill.\n", encoding="utf-8")
    update_index(tmp_path / "index", [folder], embedder=embedder)
    index = open_store(tmp_path / "index")
    try:
        assert corrected_query("What did the secretery say about Top Gun?", index) == \
            "What did the secretary say about Top Gun?"
        assert corrected_query("What did Milie say about inflation?", index) == "What did Milei say about inflation?"
        assert corrected_query("Who is the secretery?", index) == "Who is the secretary?"  # no other word to fit
    finally:
        index.close()
