"""The ONNX encoder backends against the torch reference, on real text with the packaged model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from qa.embed import Embedder
from qa.errors import IndexMismatchError, ModelError
from qa.indexer import update_index

TEXTS = [
    "The proposed link was contained in an informal document that Foreign Minister Igor Ivanov gave "
    "U.S. Secretary of State Madeleine Albright.",
    "Russia may send peacekeepers to Iraq.",
    "Moscow has pushed for repayment of Baghdad's $8 billion debt to Russia. " * 12,  # long: truncated at 256
    "Short.",
]


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> Path:
    cache = tmp_path_factory.mktemp("cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("QA_MODEL_CACHE", str(cache))
        for backend in ("onnx", "onnx-int8"):
            Embedder(backend=backend).load()  # exports once into the cache
    return cache


@pytest.mark.parametrize(("backend", "floor"), [("onnx", 0.9999), ("onnx-int8", 0.97)])
def test_onnx_vectors_match_torch(exported: Path, monkeypatch, backend: str, floor: float) -> None:
    monkeypatch.setenv("QA_MODEL_CACHE", str(exported))
    reference = Embedder(backend="torch").encode(TEXTS)
    vectors = Embedder(backend=backend).encode(TEXTS)
    assert vectors.shape == reference.shape and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)
    assert (vectors * reference).sum(axis=1).min() >= floor


def test_exports_live_in_the_cache_not_in_site_packages(exported: Path) -> None:
    embedder = Embedder()
    assert sorted(p.name for p in exported.glob("*/*.onnx")) == [
        "model-int8-matmul-perchannel.onnx",
        "model.onnx",
    ]
    assert not (embedder.model_path / "onnx").exists()


def test_unknown_backend_is_a_clear_error() -> None:
    with pytest.raises(ModelError, match="unknown backend"):
        Embedder(backend="tpu")


def test_an_index_remembers_its_backend(exported: Path, tmp_path: Path, monkeypatch, write_corpus) -> None:
    monkeypatch.setenv("QA_MODEL_CACHE", str(exported))
    corpus = write_corpus(tmp_path / "corpus", seeds=False)
    index_dir = tmp_path / "index"
    update_index(index_dir, [corpus], embedder=Embedder(backend="onnx-int8"))
    assert '"backend": "onnx-int8"' in (index_dir / "manifest.json").read_text()
    with pytest.raises(IndexMismatchError, match="--backend onnx-int8"):
        update_index(index_dir, embedder=Embedder(backend="torch"))


def test_onnx_int8_reads_each_text_alone(exported: Path, monkeypatch) -> None:
    # The int8 model quantizes a forward pass's input on one scale: read beside others, a text got
    # other vectors, and a search ranked by what happened to be embedded with each passage.
    monkeypatch.setenv("QA_MODEL_CACHE", str(exported))
    embedder = Embedder(backend="onnx-int8")
    together = embedder.encode(TEXTS)
    for row, text in enumerate(TEXTS):
        assert np.array_equal(embedder.encode([text])[0], together[row])
    passages = [(text, [(0, min(len(text), 30))]) for text in TEXTS]
    vectors, sentences = embedder.encode_passages(passages)
    for row, passage in enumerate(passages):
        alone, alone_sentences = embedder.encode_passages([passage])
        assert np.array_equal(vectors[row], alone[0]) and np.array_equal(sentences[row], alone_sentences[0])


def test_an_article_added_later_gets_the_vectors_of_a_rebuild(
    exported: Path, tmp_path: Path, monkeypatch, write_corpus, extra_article
) -> None:
    # An incremental `qa index` embeds the new article alone; a rebuild embeds it among all the
    # others. Both must hold the same vectors, or an index's answers would depend on its history.
    from qa.stores import open_store

    monkeypatch.setenv("QA_MODEL_CACHE", str(exported))
    corpus = write_corpus(tmp_path / "corpus", seeds=False)
    embedder = Embedder(backend="onnx-int8")
    update_index(tmp_path / "later", [corpus], embedder=embedder)
    (corpus / extra_article.name).write_text(extra_article.text)
    update_index(tmp_path / "later", [corpus], embedder=embedder)
    update_index(tmp_path / "rebuilt", [corpus], embedder=embedder, rebuild=True)

    def vectors(index: Path) -> dict[str, np.ndarray]:
        store = open_store(index)
        try:
            records, matrix = store.chunks_with_vectors(store.chunk_ids())
            return {f"{Path(r.path).name}#{r.start}": matrix[i] for i, r in enumerate(records)}
        finally:
            store.close()

    later, rebuilt = vectors(tmp_path / "later"), vectors(tmp_path / "rebuilt")
    assert later.keys() == rebuilt.keys() and any(key.startswith(extra_article.name) for key in later)
    for key, vector in later.items():
        assert np.array_equal(vector, rebuilt[key]), key


@pytest.mark.parametrize("backend", ["onnx", "onnx-int8"])
def test_a_damaged_export_is_made_again(tmp_path: Path, monkeypatch, backend: str) -> None:
    monkeypatch.setenv("QA_MODEL_CACHE", str(tmp_path))
    reference = Embedder(backend=backend).encode(TEXTS[:2])
    name = "model-int8-matmul-perchannel.onnx" if backend == "onnx-int8" else "model.onnx"
    (export,) = tmp_path.glob(f"*/{name}")
    export.write_bytes(export.read_bytes()[:1000])  # a disk that filled, a copy cut short
    # It once ended every command with onnxruntime's traceback (InvalidProtobuf).
    assert np.array_equal(Embedder(backend=backend).encode(TEXTS[:2]), reference)
    assert export.stat().st_size > 1000
