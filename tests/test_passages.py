"""Passage and sentence vectors from one forward pass (Embedder.encode_passages), on real text."""

from __future__ import annotations

import numpy as np
import pytest

from qa.chunk import embedding_text, split_sentences
from qa.embed import Embedder, pool_passage
from qa.ingest import read_article

from conftest import SEEDS


def test_pooling_averages_the_tokens_inside_each_span() -> None:
    hidden = np.array([[9.0, 9.0], [1.0, 0.0], [3.0, 0.0], [0.0, 2.0], [9.0, 9.0]], dtype=np.float32)
    offsets = [(0, 0), (0, 3), (4, 7), (8, 12), (0, 0)]  # [CLS] two words, one word [SEP]
    whole, sentences = pool_passage(hidden, offsets, [(0, 7), (8, 12), (20, 30)])
    np.testing.assert_allclose(sentences[0], [1.0, 0.0])  # mean (2, 0), normalized
    np.testing.assert_allclose(sentences[1], [0.0, 1.0])
    mean = hidden.mean(axis=0)
    np.testing.assert_allclose(whole, mean / np.linalg.norm(mean), rtol=1e-6)
    np.testing.assert_allclose(sentences[2], whole)  # no token inside: the whole text stands in


@pytest.fixture(scope="module")
def passage() -> tuple[str, list[tuple[int, int]], list[str]]:
    """A seed article's opening, led by its headline, with its sentences' spans and texts."""
    article = read_article(sorted(SEEDS.iterdir())[0])
    body = article.text[:700]
    spans = split_sentences(body)[:4]
    text = embedding_text(article.title, body)
    shift = len(text) - len(body)
    return text, [(a + shift, b + shift) for a, b in spans], [body[a:b] for a, b in spans]


@pytest.mark.parametrize("backend", ["onnx-int8", "torch"])
def test_pooled_sentences_keep_their_own_meaning(backend: str, passage) -> None:
    text, spans, sentences = passage
    embedder = Embedder(backend=backend)
    vectors, pooled = embedder.encode_passages([(text, spans), ("Short text.", [])])
    assert vectors.shape == (2, 384) and pooled[0].shape == (len(spans), 384) and pooled[1].shape == (0, 384)
    # The passage vector is the same mean pooling as encode().
    assert float(vectors[0] @ embedder.encode([text])[0]) > 0.99
    np.testing.assert_allclose(np.linalg.norm(pooled[0], axis=1), 1.0, rtol=1e-5)
    # Read in context, a sentence's vector leans toward its neighbours, but it stays nearer its own
    # text than the others' on the whole, and a question still finds the sentence that answers it.
    similarity = pooled[0] @ embedder.encode(sentences).T
    assert np.trace(similarity) / len(spans) > (similarity.sum() - np.trace(similarity)) / (len(spans) ** 2 - len(spans)) + 0.15
    question = embedder.encode_query("Who did Igor Ivanov give the informal document to?")
    assert "informal document" in sentences[int(np.argmax(pooled[0] @ question))]


def test_torch_and_onnx_pool_the_same_tokens(passage) -> None:
    text, spans, _ = passage
    _, torch_pooled = Embedder(backend="torch").encode_passages([(text, spans)])
    _, onnx_pooled = Embedder(backend="onnx").encode_passages([(text, spans)])
    assert (np.sum(torch_pooled[0] * onnx_pooled[0], axis=1) > 0.999).all()
