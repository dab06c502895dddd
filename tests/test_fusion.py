"""Hybrid fusion (qa.fusion.mode_scores) with article evidence: a passage of the article that
speaks of the question as a whole is lifted, every passage of one article alike, and the lift is
taken over articles, not passages; and the retriever reads whole articles only for a question of
enough words (qa.retrieve.ARTICLE_MIN_QUESTION_WORDS)."""

from __future__ import annotations

import pytest

from qa.fusion import ARTICLE_KEYWORD_WEIGHT, Features, mode_scores


def _features(
    article_keyword: dict[int, float] | None = None, documents: dict[int, str] | None = None, several: str = "abcd"
) -> Features:
    # Four passages that tie on every passage signal but BM25, where passage 4 leads.
    # `several`: the long articles, the only ones the article search lists (and scores).
    ids = [1, 2, 3, 4]
    documents = documents or {}
    return Features(
        ids=ids,
        dense=dict.fromkeys(ids, 0.5),
        best_sentence=dict.fromkeys(ids, 0.5),
        keyword={1: 2.0, 2: 1.0, 3: 1.0, 4: 3.0},
        article_keyword={c: s for c, s in (article_keyword or {}).items() if documents.get(c) in set(several)},
        document=documents,
    )


def test_the_whole_articles_score_lifts_each_of_its_passages_alike() -> None:
    before = mode_scores("hybrid", _features())
    assert max(before, key=before.get) == 4
    # Passages 1-3 are one story that holds the question's words throughout; 4 is a story that
    # mentions them once.
    after = mode_scores("hybrid", _features({1: 9.0, 2: 9.0, 3: 9.0, 4: 3.0}, {1: "a", 2: "a", 3: "a", 4: "b"}))
    assert max(after, key=after.get) == 1
    lifts = {c: after[c] - before[c] for c in before}
    assert lifts[1] == lifts[2] == lifts[3] > 0 > lifts[4]
    # z-scored over the two articles, not the four passages: +1 and -1 standard deviation.
    assert lifts[1] == pytest.approx(ARTICLE_KEYWORD_WEIGHT)
    assert lifts[4] == pytest.approx(-ARTICLE_KEYWORD_WEIGHT)


def test_articles_that_score_alike_change_nothing() -> None:
    before = mode_scores("hybrid", _features())
    after = mode_scores("hybrid", _features(dict.fromkeys([1, 2, 3, 4], 5.0), {1: "a", 2: "b", 3: "c", 4: "d"}))
    assert after == before
    # Three copies of one story, scored alike where the short one beside them is not scored: a
    # mean of 0.1s is not exactly 0.1, and the rounding error once counted as their spread.
    copies = _features(dict.fromkeys([1, 2, 3], 0.1), {1: "a", 2: "b", 3: "c", 4: "d"}, "abc")
    assert mode_scores("hybrid", copies) == before


def test_two_articles_that_score_nearly_alike_barely_move() -> None:
    # Over two articles a z-score is ±1 however near their scores are: in a small folder, an
    # article scoring 10.5 against 10.0 lifted its passages past passage 4's better BM25.
    before = mode_scores("hybrid", _features())
    near = mode_scores("hybrid", _features({1: 10.5, 2: 10.5, 3: 10.0, 4: 10.0}, {1: "a", 2: "a", 3: "b", 4: "b"}))
    assert max(near, key=near.get) == 4 == max(before, key=before.get)
    assert 0 < near[1] - before[1] < 0.3 * ARTICLE_KEYWORD_WEIGHT
    # Scores far apart still count as a whole standard deviation.
    far = mode_scores("hybrid", _features({1: 30.0, 2: 30.0, 3: 10.0, 4: 10.0}, {1: "a", 2: "a", 3: "b", 4: "b"}))
    assert far[1] - before[1] == pytest.approx(ARTICLE_KEYWORD_WEIGHT)
    assert max(far, key=far.get) == 1


def test_a_short_article_is_neither_lifted_nor_lowered() -> None:
    # Passage 4's article is short (fewer than qa.retrieve.ARTICLE_MIN_PASSAGES passages).
    before = mode_scores("hybrid", _features())
    after = mode_scores("hybrid", _features({1: 9.0, 2: 9.0, 3: 1.0, 4: 1.0}, {1: "a", 2: "a", 3: "b", 4: "c"}, "ab"))
    assert after[4] == before[4]
    # z over the two long articles (9 and 1): +1 and -1 standard deviation.
    assert after[1] - before[1] == pytest.approx(ARTICLE_KEYWORD_WEIGHT)
    assert after[3] - before[3] == pytest.approx(-ARTICLE_KEYWORD_WEIGHT)
    # One-paragraph documents only (SQuAD): nothing moves.
    alone = _features({1: 9.0, 2: 5.0, 3: 1.0, 4: 1.0}, {1: "a", 2: "b", 3: "c", 4: "d"}, "")
    assert mode_scores("hybrid", alone) == before


def test_dense_and_keyword_modes_do_not_read_articles() -> None:
    features = _features({1: 9.0, 2: 9.0, 3: 9.0, 4: 3.0}, {1: "a", 2: "a", 3: "a", 4: "b"})
    assert mode_scores("keyword", features) == mode_scores("keyword", _features())
    assert mode_scores("dense", features) == mode_scores("dense", _features())


def test_only_a_question_of_many_words_reads_whole_articles(seeds_index, embedder) -> None:
    # A short question's words all fit in one passage; the article's score adds nothing there
    # (qa.retrieve.ARTICLE_MIN_QUESTION_WORDS), so it is not even read.
    from qa.retrieve import ARTICLE_MIN_PASSAGES, ARTICLE_MIN_QUESTION_WORDS, Retriever
    from qa.stores import open_store
    from qa.text import query_terms

    store = open_store(seeds_index)
    read: list[list[str]] = []
    article_search = store.article_search

    def recorded(terms, k, filters=None, min_passages=1):
        # Only long articles are listed, so only they are lifted (qa.retrieve.ARTICLE_MIN_PASSAGES).
        assert min_passages == ARTICLE_MIN_PASSAGES
        read.append(list(terms))
        return article_search(terms, k, filters, min_passages)

    store.article_search = recorded
    try:
        retriever = Retriever(store, embedder)
        short = "How much does Baghdad owe Russia?"
        assert len(query_terms(short)) < ARTICLE_MIN_QUESTION_WORDS
        hits = retriever.search(short)
        assert read == [] and "$8 billion" in hits[0].text
        retriever.search_modes(short, 5, ("hybrid", "dense"))  # as qa eval asks
        assert read == []
        long = ("Moscow wants Iraq rebuilding contracts, oil contracts and repayment: "
                "how much debt does Baghdad owe Russia?")
        assert len(query_terms(long)) >= ARTICLE_MIN_QUESTION_WORDS
        retriever.search(long)
        assert len(read) == 1 and read[0] and set(read[0]) <= set(query_terms(long))
        # Dense and keyword modes never read articles, whatever the length.
        retriever.search(long, mode="keyword")
        retriever.search(long, mode="dense")
        assert len(read) == 1
    finally:
        store.close()


# Town names for the made-up chess club articles of the two retrieval tests below.
_TOWNS = ("Elmsford", "Brookhaven", "Dunmore", "Fairview", "Glenwood", "Hollis", "Ironton", "Jasper", "Kingston",
          "Lakewood", "Marlow", "Newbury", "Oakdale", "Preston", "Quincy", "Redmond", "Salem", "Trenton", "Upton",
          "Vernon", "Weston", "Yardley", "Zionsville")


def test_one_long_article_does_not_fill_a_result_list(tmp_path, embedder) -> None:
    # A long article about the question's story has many passages that match it; the list shows
    # two of them, then the short article about the same story, then the long one's others.
    from conftest import retriever_over
    from qa.retrieve import PASSAGES_PER_ARTICLE
    from qa.types import SearchFilters

    long_article = "Riverton chess club tournament\n\n" + "\n\n".join(
        f"The Riverton chess club tournament drew players from {town} this week. The Riverton chess club "
        f"tournament pairs each of its players against the others; the {town} players met their rivals "
        f"at the club on the second day of the tournament, and the club's captain kept the scores."
        for town in _TOWNS
    )
    short_article = ("Town news\n\nThe council met on Monday about the bridge. Separately, a chess "
                     "tournament was held in Riverton this week.")
    retriever = retriever_over(tmp_path, embedder, {"long.txt": long_article, "short.txt": short_article})
    try:
        question = "Riverton chess club tournament"
        hits = retriever.search(question, k=4, mode="keyword")
        sources = [hit.path.rsplit("/", 1)[-1] for hit in hits]
        assert sources.count("long.txt") == 3 and sources[:PASSAGES_PER_ARTICLE] == ["long.txt"] * 2
        assert sources[2] == "short.txt"  # ahead of the long article's third passage
        # Whatever the scores, a third passage of the long article never comes before the short one.
        for mode in ("hybrid", "dense"):
            listed = [hit.path.rsplit("/", 1)[-1] for hit in retriever.search(question, k=3, mode=mode)]
            assert "short.txt" in listed, mode
        # Within one article every passage is still listed, in its order.
        within = retriever.search(question, k=5, mode="keyword", filters=SearchFilters(source="long.txt"))
        assert len(within) > PASSAGES_PER_ARTICLE and all(hit.path.endswith("long.txt") for hit in within)
        assert [h.score for h in within] == sorted((h.score for h in within), reverse=True)
    finally:
        retriever.store.close()


def test_a_passage_is_listed_once(tmp_path, embedder) -> None:
    # The same text saved in two files is one passage to the reader, and chunks of one article
    # that overlap say the same sentences twice: a list holds neither repeat, even one that reads
    # every candidate because it never fills.
    from conftest import retriever_over
    from qa.types import SearchFilters

    story = "Riverton chess club tournament\n\n" + "\n\n".join(
        f"The Riverton chess club tournament drew players from {town} this week, and the {town} "
        f"players met their rivals at the club on the second day."
        for town in _TOWNS[:12]
    )
    retriever = retriever_over(tmp_path, embedder, {"story.txt": story, "copy.txt": story})
    try:
        question = "Riverton chess club tournament"
        for filters in (SearchFilters(), SearchFilters(source="story.txt")):
            for mode in ("hybrid", "keyword", "dense"):
                hits = retriever.search(question, k=10, mode=mode, filters=filters)
                # Six chunks hold the words, three texts twice over; each text once, none overlapping.
                assert len(hits) >= (1 if filters.active else 2), (mode, filters)
                assert len({hit.text for hit in hits}) == len(hits), (mode, filters)
                for n, hit in enumerate(hits):
                    assert not any(other.doc_id == hit.doc_id and other.start < hit.end and hit.start < other.end
                                   for other in hits[n + 1:]), (mode, filters)
        # The chunks do overlap, so the check above had overlapping passages to leave out.
        chunks = sorted(retriever.store.chunks(list(range(1, 100))).values(), key=lambda c: (c.doc_id, c.start))
        assert any(a.doc_id == b.doc_id and b.start < a.end for a, b in zip(chunks, chunks[1:]))
    finally:
        retriever.store.close()


def test_a_question_that_reads_whole_articles_reads_more_passages_again(tmp_path, embedder) -> None:
    # The lift crowds the first passages with a long article's, so such a question's second look
    # reads deeper (qa.align.ARTICLE_ALIGN_DEPTH); a short question's stays at ALIGN_DEPTH.
    from conftest import retriever_over
    from qa.align import ALIGN_DEPTH, ARTICLE_ALIGN_DEPTH
    from qa.retrieve import ARTICLE_MIN_QUESTION_WORDS
    from qa.text import query_terms

    long_article = "Riverton chess club tournament\n\n" + "\n\n".join(
        f"Round {n} of the Riverton chess club tournament ended late; the club's captain kept the scores "
        f"and the players from the valley towns met their rivals again on the board the next morning."
        for n in range(1, 31)
    )
    articles = {f"{town.lower()}.txt": f"{town} news\n\nThe {town} chess club held a tournament this week; "
                f"its captain kept the scores." for town in _TOWNS[:16]}
    retriever = retriever_over(tmp_path, embedder, {"long.txt": long_article, **articles})
    read: list[int] = []
    aligner = retriever.aligner()
    align = aligner.align
    aligner.align = lambda question, passages: read.append(len(passages)) or align(question, passages)
    try:
        short = "Who kept the chess scores?"
        long = "Which captain kept the scores of the Riverton chess club tournament rounds in the valley towns?"
        assert len(query_terms(short)) < ARTICLE_MIN_QUESTION_WORDS <= len(query_terms(long))
        retriever.search(short, align=True)
        retriever.search(long, align=True)
        assert read == [ALIGN_DEPTH, ARTICLE_ALIGN_DEPTH]
    finally:
        retriever.store.close()
