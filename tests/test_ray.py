"""Distributed embedding on a local Ray (2 CPUs) against the in-process encoder, on real text."""

from __future__ import annotations

import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from qa.chunk import chunk_text, split_sentences
from qa.embed import Embedder
from qa.errors import ConfigError, QAError
from qa.stores.local.store import LocalStore
from qa.indexer import update_index
from qa.ingest import read_article

from conftest import SEEDS

ray = pytest.importorskip("ray")

from qa.distributed import MISSING_RAY, RayEmbedder, ray_available  # noqa: E402


@pytest.fixture(scope="module")
def local_ray() -> Iterator[None]:
    """One local Ray with 2 CPUs for the module; RayEmbedder joins it rather than starting its own."""
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def texts() -> list[str]:
    """32 real texts of mixed lengths: the seeds' sentences and chunks, in article order."""
    sentences, chunks = [], []
    for path in sorted(SEEDS.iterdir()):
        article = read_article(path)
        sentences += [article.text[start:end] for start, end in split_sentences(article.text)]
        chunks += [chunk.text for chunk in chunk_text(article.doc_id, article.text, Embedder().count_tokens)]
    return sentences[:24] + chunks[:8]


def test_a_local_ray_that_cannot_start_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Placed before the tests that share one Ray (local_ray): RayEmbedder starts its own only
    # where none runs in the process.
    if ray.is_initialized():
        pytest.skip("a Ray is already running in this process")
    (tmp_path / "a-file").write_text("not a folder")
    monkeypatch.setenv("RAY_TMPDIR", str(tmp_path / "a-file" / "ray"))  # where Ray cannot make its folder
    with pytest.raises(ConfigError, match="could not start a local Ray: .*Not a directory"):
        RayEmbedder().connect()


def test_ray_vectors_equal_the_in_process_ones(local_ray: None, texts: list[str]) -> None:
    reference = Embedder(backend="onnx-int8").encode(texts)
    done: list[int] = []
    vectors = RayEmbedder(backend="onnx-int8", workers=2).encode(texts, progress=done.append)
    assert vectors.shape == reference.shape == (len(texts), 384)
    assert vectors.dtype == np.float32
    assert sum(done) == len(texts)
    # Ray batches are the in-process path's own groups, so even the int8 model (whose activation
    # scales depend on the batch) gives the same vectors; allow for thread-count rounding.
    assert np.abs(vectors - reference).max() < 1e-5


def test_order_survives_many_batches_on_two_actors(local_ray: None, texts: list[str]) -> None:
    """Batches of 5 texts spread over both actors and come back in any order; rows keep their text's place."""
    shuffled = [texts[i] for i in np.random.default_rng(7).permutation(len(texts))]
    reference = Embedder(backend="onnx").encode(shuffled)
    done: list[int] = []
    vectors = RayEmbedder(backend="onnx", workers=2, group_size=5).encode(shuffled, progress=done.append)
    assert len(done) == 7 and sum(done) == len(texts)  # one report per batch, as it lands
    # Other batches mean other padding: the float model's vectors move by rounding only.
    assert np.abs(vectors - reference).max() < 1e-5
    similarity = vectors @ reference.T
    assert (similarity.argmax(axis=1) == np.arange(len(texts))).all()


def test_ray_passages_equal_the_in_process_ones(local_ray: None, texts: list[str]) -> None:
    """Passage vectors and the sentence vectors pooled from them come back as the local path makes them."""
    passages = [(text, split_sentences(text)[:3]) for text in texts[24:]]
    reference, reference_sentences = Embedder(backend="onnx-int8").encode_passages(passages)
    done: list[int] = []
    vectors, sentences = RayEmbedder(backend="onnx-int8", workers=2).encode_passages(passages, progress=done.append)
    assert sum(done) == len(passages)
    assert np.abs(vectors - reference).max() < 1e-5
    for got, expected, (_, spans) in zip(sentences, reference_sentences, passages):
        assert got.shape == expected.shape == (len(spans), 384)
        assert np.abs(got - expected).max() < 1e-5


def test_an_index_built_on_ray_equals_the_in_process_one(
    local_ray: None, tmp_path: Path, seeds_index: Path, embedder: Embedder
) -> None:
    """The indexer's incremental path, unchanged, with vectors from Ray; a second run embeds nothing."""
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for seed in SEEDS.iterdir():
        shutil.copyfile(seed, corpus / seed.name)
    ray_embedder = RayEmbedder(workers=2)
    first = update_index(tmp_path / "index", [corpus], embedder=ray_embedder)
    again = update_index(tmp_path / "index", [corpus], embedder=ray_embedder)
    assert first.chunks_embedded > 0 and again.chunks_embedded == 0 and again.unchanged == first.added

    built, reference = _vectors(tmp_path / "index", embedder), _vectors(seeds_index, embedder)
    assert built.shape == reference.shape
    assert np.abs(built - reference).max() < 1e-5


def test_missing_ray_is_one_clear_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` now fails as if it were not installed
    assert not ray_available()
    with pytest.raises(ConfigError) as caught:
        RayEmbedder()
    assert isinstance(caught.value, QAError)
    assert str(caught.value) == "Ray is not installed: pip install 'qa[scale]'" == MISSING_RAY


def test_an_address_nothing_listens_at_fails_at_once() -> None:
    """Ray itself would retry for minutes; qa says in one line that the cluster is not there."""
    with pytest.raises(ConfigError, match=r"could not reach the Ray cluster at 127\.0\.0\.1:9: "):
        RayEmbedder("127.0.0.1:9")


def test_an_open_port_that_is_not_a_ray_head_fails_in_seconds(tmp_path: Path) -> None:
    """Ray would retry "Failed to connect to GCS" for many minutes; an HTTP server is not a head."""
    import subprocess

    from llm_servers import free_port

    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"],
                              cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        import socket
        import time

        deadline = time.monotonic() + 30
        while True:  # until it listens
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline and server.poll() is None
                time.sleep(0.1)
        with pytest.raises(ConfigError, match=f"127.0.0.1:{port} answers, but not as a Ray cluster's head"):
            RayEmbedder(f"127.0.0.1:{port}")
    finally:
        server.kill()
        server.wait()


def test_a_ray_client_address_is_refused() -> None:
    with pytest.raises(ConfigError, match="Ray Client addresses cannot run Ray Data"):
        RayEmbedder("ray://127.0.0.1:10001")


def test_bad_worker_count_is_refused() -> None:
    with pytest.raises(ConfigError, match="at least 1"):
        RayEmbedder(workers=0)


def _vectors(index_dir: Path, embedder: Embedder) -> np.ndarray:
    store = LocalStore.open(index_dir)
    try:
        return store.vectors.vectors(sorted(store.vectors.ids()))
    finally:
        store.close()
